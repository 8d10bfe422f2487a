"""Cost tables: a fitted cost model as a data file (CSV, JSON or Parquet) that loads without the store.

One table = ``meta`` + ``rows`` + ``payload``:

- ``meta``: schema version, estimator kind, metric and unit, input kind (``layers``: LayerSpec features;
  ``tabular``: architecture rows of a featurised file), device name and fingerprint, fitting-data size,
  validation errors, interval kind, the fitted overhead (model = a + b · Σ layers), the model ids used in
  fitting (so ``hwnas evaluate`` scores only unseen architectures), and a SHA-256 checksum of rows and
  payload.
- ``rows``: per layer key, the predicted statistic and its band (``layer_key, value, lo, hi, n, source``).
  For a lookup table these are the measured entries; for other models, their predictions on every key
  seen in fitting.
- ``payload``: the estimator as plain data, for keys not in ``rows``: linear coefficients, sklearn
  gradient-boosting trees as arrays, xgboost's JSON model dump, roofline constants. Never a pickle.

File layouts: JSON is one object. CSV is the rows with a first line ``# hwnas-cost-table <JSON header>``
(the header holds meta and payload). Parquet is the rows with the header in the schema metadata under
``hwnas-cost-table``. Loading another schema version, a truncated or edited file raises
:class:`~hwnas.errors.SchemaError`; a fingerprint different from the caller's warns.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.base import UnknownKeyError, apply_residual_band, prob_below
from hwnas.cost_models.features import LAYER_FEATURE_COLUMNS, layer_features
from hwnas.errors import InputError, SchemaError

FORMAT = "hwnas-cost-table"
SCHEMA_VERSION = 1
ROW_COLUMNS = ("layer_key", "value", "lo", "hi", "n", "source")
_FORMATS = {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
UNITS = {"latency_ms": "ms", "energy_mj": "mJ", "power_mw": "mW", "peak_memory_bytes": "bytes"}


# --- estimator <-> payload ---------------------------------------------------------------------------


def estimator_payload(est: Any) -> dict[str, Any]:
    """A fitted hwnas cost model as JSON-able data: its kind's payload (``hwnas.cost_models.kinds``),
    the kind name and the residual band."""
    from hwnas.cost_models.kinds import kind_of_estimator

    kind = kind_of_estimator(est)
    return {"kind": kind.payload_name, **kind.to_payload(est), "band": getattr(est, "residual_band_", None)}


def payload_predict(
    payload: dict[str, Any], frame: pd.DataFrame, cache: dict[int, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, lo, hi) of an exported estimator on a feature frame (its kind evaluates the payload; the
    stored residual band applies unless the kind returns its own)."""
    from hwnas.cost_models.kinds import kind_for_payload

    out = kind_for_payload(str(payload.get("kind")))
    res = out.predict(payload, frame, cache)
    if isinstance(res, tuple):
        point, lo, hi = (np.asarray(a, float) for a in res)
        return point, lo, hi
    point = np.asarray(res, float)
    band = payload.get("band")
    if band:
        lo, hi = apply_residual_band(point, band)
    else:
        lo, hi = point, point
    return point, lo, hi


# --- the table ------------------------------------------------------------------------------------------


@dataclass
class CostTable:
    """A loaded (or freshly built) cost table; predicts layers, whole models or tabular rows."""

    meta: dict[str, Any]
    rows: pd.DataFrame
    payload: dict[str, Any] | None = None
    _cache: dict[int, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return str(self.meta.get("estimator", "?"))

    @property
    def metric(self) -> str:
        return str(self.meta.get("metric", ""))

    def check_fingerprint(self, fingerprint_id: str | None) -> bool:
        """Warn (and return False) when the table was fitted under another device fingerprint."""
        mine = (self.meta.get("fingerprint") or {}).get("id")
        if fingerprint_id and mine and fingerprint_id != mine:
            warnings.warn(
                f"cost table fitted on fingerprint {mine}, used for {fingerprint_id}: "
                "other hardware or versions",
                stacklevel=2,
            )
            return False
        return True

    # -- layers ----------------------------------------------------------------------------------
    def predict_layers(self, layers: Any) -> pd.DataFrame:
        """Per layer: ``layer_key, value, lo, hi, source`` (``table`` or ``model:<kind>``).

        ``layers``: LayerSpecs, a ModelSpec, or a frame with ``layer_key`` and layer feature columns.
        """
        if self.meta.get("input") != "layers":
            raise InputError(
                "this cost table was fitted on tabular rows, not layers", hint="use predict_rows"
            )
        frame = _layer_frame(layers)
        idx = self.rows.set_index("layer_key")
        keys = frame["layer_key"].astype(str)
        hit = keys.isin(idx.index).to_numpy()
        point, lo, hi = np.zeros(len(frame)), np.zeros(len(frame)), np.zeros(len(frame))
        src = np.array(["table"] * len(frame), dtype=object)
        zero_ops = set(self.meta.get("zero_ops") or [])
        if zero_ops:  # fused into a neighbour under this table's layer metric: cost 0
            fused = np.array([k.split("|", 1)[0] in zero_ops for k in keys]) & ~hit
            src[fused] = "fused"
            hit = hit | fused
        else:
            fused = np.zeros(len(frame), dtype=bool)
        in_table = hit & ~fused
        if in_table.any():
            sub = idx.loc[keys[in_table]]
            point[in_table], lo[in_table], hi[in_table] = (
                sub[c].to_numpy(float) for c in ("value", "lo", "hi")
            )
        if not hit.all():
            payload = self.payload or {}
            missing = keys[~hit].tolist()
            if not payload:
                raise UnknownKeyError(
                    f"{len(missing)} layer key(s) not in cost table ({self.kind}), e.g. {missing[:2]}",
                    hint="profile these layers and refit, or fit the table with a fallback model",
                )
            miss = ~hit
            try:
                p, lo_, hi_ = payload_predict(payload, frame.loc[miss], self._cache)
            except UnknownKeyError as exc:
                raise UnknownKeyError(
                    f"{len(missing)} layer key(s) not in cost table ({self.kind}), e.g. {missing[:2]}",
                    hint=exc.hint,
                ) from exc
            point[miss], lo[miss], hi[miss] = p, lo_, hi_
            fb = (payload.get("fallback") or {}).get("kind")
            src[miss] = "model:" + (self.meta.get("fallback") or fb or payload["kind"])
        return pd.DataFrame({"layer_key": keys.to_numpy(), "value": point, "lo": lo, "hi": hi, "source": src})

    def predict_model(self, layers: Any, budget: float | None = None) -> dict[str, Any]:
        """Whole-model cost: Σ layers, then the fitted overhead ``a + b · Σ``; band and P(cost <= budget)."""
        from hwnas.cost_models.base import apply_overhead

        frame = _layer_frame(layers)
        per = self.predict_layers(frame)
        s = float(per["value"].sum())
        labels = [str(v) for v in frame["op_code"].to_numpy()] if "op_code" in frame else None
        value = apply_overhead(self.meta.get("overhead"), per["value"].to_numpy(), [0] * len(per), labels)[0]
        band = self.meta.get("model_band")
        if band:
            lo, hi = apply_residual_band(np.array([value]), band)
            lo, hi = float(lo[0]), float(hi[0])
        else:
            lo, hi = float(per["lo"].sum()), float(per["hi"].sum())
        out = {
            "value": value,
            "lo": lo,
            "hi": hi,
            "layer_sum": s,
            "n_layers": int(len(per)),
            "n_from_table": int((per["source"] == "table").sum()),
            "metric": self.metric,
            "unit": self.meta.get("unit", ""),
            "interval": self.meta.get("model_interval", "sum of layer bands"),
        }
        if budget is not None:
            out["budget"] = float(budget)
            out["prob_within_budget"] = float(
                prob_below(np.array([value]), np.array([lo]), np.array([hi]), budget)[0]
            )
        return out

    # -- tabular rows -----------------------------------------------------------------------------
    def predict_rows(self, features: pd.DataFrame) -> pd.DataFrame:
        """For a tabular table: ``value, lo, hi`` per featurised row."""
        if self.payload is None:
            raise SchemaError("cost table has no model payload to predict rows with")
        p, lo, hi = payload_predict(self.payload, features, self._cache)
        return pd.DataFrame({"value": p, "lo": lo, "hi": hi})

    def predict(self, X: Any) -> Any:
        """Dispatch: a ModelSpec → dict (:meth:`predict_model`); LayerSpecs → array of layer values;
        a DataFrame → per-row values (tabular tables) or per-layer values (layer tables)."""
        if hasattr(X, "layers") and hasattr(X, "input_shape"):
            return self.predict_model(X)
        if isinstance(X, pd.DataFrame) and self.meta.get("input") == "tabular":
            return self.predict_rows(X)["value"].to_numpy()
        return self.predict_layers(X)["value"].to_numpy()


def _layer_frame(layers: Any) -> pd.DataFrame:
    if isinstance(layers, pd.DataFrame):
        if "layer_key" not in layers.columns:
            raise InputError("layer frame needs a 'layer_key' column")
        return layers.reset_index(drop=True)
    specs = list(layers.layers if hasattr(layers, "layers") else layers)
    feats = layer_features(specs)
    feats.insert(0, "layer_key", [s.key() for s in specs])
    return feats


# --- building --------------------------------------------------------------------------------------------


def build_cost_table(
    estimator: Any,
    *,
    metric: str = "latency_ms",
    input_kind: str = "layers",
    layer_rows: pd.DataFrame | None = None,
    fingerprint: dict[str, Any] | None = None,
    device: str = "",
    n_fit: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    fit_model_ids: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> CostTable:
    """Freeze a fitted estimator into a CostTable.

    ``layer_rows``: a frame with ``layer_key`` and the layer feature columns for every key to tabulate
    (duplicates are dropped). The estimator's fitted overhead and model band go into meta.
    """
    from hwnas import __version__
    from hwnas.cost_models.kinds import kind_of_estimator

    if input_kind not in ("layers", "tabular"):
        raise InputError(f"input_kind must be 'layers' or 'tabular', got {input_kind!r}")
    rows = pd.DataFrame(columns=list(ROW_COLUMNS))
    kind = kind_of_estimator(estimator)
    if kind.table_rows is not None:
        rows = kind.table_rows(estimator)
    elif layer_rows is not None and len(layer_rows):
        uniq = layer_rows.drop_duplicates("layer_key").reset_index(drop=True)
        X = uniq[list(LAYER_FEATURE_COLUMNS)]
        point, lo, hi = estimator.predict_with_interval(X)
        counts = layer_rows["layer_key"].value_counts()
        rows = pd.DataFrame(
            {
                "layer_key": uniq["layer_key"],
                "value": point,
                "lo": lo,
                "hi": hi,
                "n": counts.reindex(uniq["layer_key"]).to_numpy(),
                "source": "predicted",
            }
        )
    payload = estimator_payload(estimator)
    meta: dict[str, Any] = {
        "estimator": estimator.kind,
        "estimator_class": type(estimator).__name__,
        "params": {k: _plain(v) for k, v in estimator.get_params(deep=False).items()},
        "metric": metric,
        "unit": UNITS.get(metric, ""),
        "input": input_kind,
        "device": device,
        "fingerprint": fingerprint or {},
        "n_fit": n_fit or {},
        "validation": validation or {},
        "interval_kind": estimator.interval_kind,
        "overhead": getattr(estimator, "overhead_", None),
        "model_band": getattr(estimator, "model_band_", None),
        "model_interval": "residual-quantile of the overhead fit"
        if hasattr(estimator, "model_band_")
        else None,
        "fallback": getattr(estimator, "fallback_name_", None),
        "fit_model_ids": list(fit_model_ids or []),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hwnas_version": __version__,
    }
    if extra:
        meta.update(extra)
    return CostTable(meta=meta, rows=rows.reset_index(drop=True), payload=payload)


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return repr(v)


# --- files -----------------------------------------------------------------------------------------------


def _checksum(rows: pd.DataFrame, payload: Any) -> str:
    """The checksum of older hwnas versions (rows and payload only; ``meta`` was not covered)."""
    recs = _rows_records(rows)
    blob = json.dumps({"rows": recs, "payload": payload}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


CHECKSUM_SCOPE = "file"
MAX_PAYLOAD_DEPTH = 64
MAX_PAYLOAD_NODES = 5_000_000


def _file_checksum(header: dict[str, Any], rows: pd.DataFrame) -> str:
    """SHA-256 over everything in the file: format, schema version, meta (but the checksum itself),
    payload and rows, so that editing ``fit_model_ids`` or any other field is detected."""
    meta = {k: v for k, v in (header.get("meta") or {}).items() if k != "checksum"}
    doc = {"format": header.get("format"), "schema_version": header.get("schema_version"), "meta": meta,
           "payload": header.get("payload"), "rows": _rows_records(rows)}  # fmt: skip
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _check_payload_shape(path: Path, payload: Any) -> None:
    """Bound the payload's nesting depth and size (walked iteratively, never recursively) and check every
    tree in it (boosted models) before anything evaluates it."""
    from hwnas.cost_models.boosted import check_tree

    stack: list[tuple[Any, int]] = [(payload, 0)]
    nodes = 0
    while stack:
        obj, depth = stack.pop()
        nodes += 1
        if depth > MAX_PAYLOAD_DEPTH:
            raise _corrupt(path, f"payload nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        if nodes > MAX_PAYLOAD_NODES:
            raise _corrupt(path, f"payload has more than {MAX_PAYLOAD_NODES} values")
        if isinstance(obj, dict):
            if "left" in obj and "right" in obj and "value" in obj:
                why = check_tree(obj)
                if why:
                    raise _corrupt(path, f"bad tree in the payload: {why}")
            stack.extend((v, depth + 1) for v in obj.values() if isinstance(v, (dict, list)))
        elif isinstance(obj, list):
            stack.extend((v, depth + 1) for v in obj if isinstance(v, (dict, list)))


def _rows_records(rows: pd.DataFrame) -> list[list[Any]]:
    out = []
    for r in rows[list(ROW_COLUMNS)].itertuples(index=False):
        out.append(
            [str(r[0]), _num(r[1]), _num(r[2]), _num(r[3]), int(r[4]) if pd.notna(r[4]) else 0, str(r[5])]
        )
    return out


def _num(v: Any) -> float:
    return float(f"{float(v):.12g}")  # 12 significant digits: identical after a CSV/JSON round trip


def _normalise_rows(rows: pd.DataFrame) -> pd.DataFrame:
    recs = _rows_records(rows) if len(rows) else []
    return pd.DataFrame(recs, columns=list(ROW_COLUMNS))


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("json", "csv", "parquet"):
            raise InputError(f"unknown cost-table format {fmt!r}; expected json, csv or parquet")
        return fmt
    f = _FORMATS.get(path.suffix.lower())
    if f is None:
        raise InputError(
            f"{path}: cannot tell the format from the suffix", hint="use .json, .csv or .parquet"
        )
    return f


def save_cost_table(model: Any, path: str | Path, format: str | None = None) -> Path:
    """Write a CostTable (or a fitted estimator, frozen with defaults) as JSON, CSV or Parquet."""
    table = model if isinstance(model, CostTable) else build_cost_table(model)
    path = Path(path)
    fmt = _format_of(path, format)
    rows = _normalise_rows(table.rows)
    meta = {k: v for k, v in table.meta.items() if k != "checksum"}
    meta["checksum_scope"] = CHECKSUM_SCOPE
    header = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "meta": meta, "payload": table.payload}
    header = json.loads(json.dumps(header, default=_json_default))
    header["meta"]["checksum"] = _file_checksum(header, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        doc = dict(header)
        doc["rows"] = {"columns": list(ROW_COLUMNS), "data": _rows_records(rows)}
        path.write_text(json.dumps(doc, separators=(",", ":"), default=_json_default))
    elif fmt == "csv":
        with path.open("w", newline="") as fh:
            fh.write(f"# {FORMAT} " + json.dumps(header, separators=(",", ":")) + "\n")
            rows.to_csv(fh, index=False, float_format="%.12g")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tbl = pa.Table.from_pandas(rows, preserve_index=False)
        tbl = tbl.replace_schema_metadata(
            {**(tbl.schema.metadata or {}), FORMAT.encode(): json.dumps(header).encode()}
        )
        pq.write_table(tbl, path)
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _corrupt(path: Path, why: str) -> SchemaError:
    return SchemaError(
        f"{path}: not a readable hwnas cost table: {why}",
        hint="re-export it with `hwnas fit --out` or `hwnas export`",
    )


def load_cost_table(path: str | Path, fingerprint_id: str | None = None) -> CostTable:
    """Read a cost table written by :func:`save_cost_table`; checks format, schema version and checksum."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: cost table not found")
    fmt = _format_of(path, None)
    try:
        if fmt == "json":
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise _corrupt(path, "top level is not an object")
            header = doc
            rr = doc.get("rows") or {}
            rows = pd.DataFrame(rr.get("data", []), columns=rr.get("columns", list(ROW_COLUMNS)))
        elif fmt == "csv":
            with path.open() as fh:
                first = fh.readline()
                prefix = f"# {FORMAT} "
                if not first.startswith(prefix):
                    raise _corrupt(path, f"first line does not start with '{prefix.strip()}'")
                header = json.loads(first[len(prefix) :])
                rows = pd.read_csv(fh, dtype={"layer_key": str, "source": str}, keep_default_na=False)
        else:
            import pyarrow.parquet as pq

            tbl = pq.read_table(path)
            md = tbl.schema.metadata or {}
            if FORMAT.encode() not in md:
                raise _corrupt(path, f"no '{FORMAT}' metadata in the Parquet schema")
            header = json.loads(md[FORMAT.encode()])
            rows = tbl.to_pandas()
    except SchemaError:
        raise
    except Exception as exc:  # json, csv and arrow parsers raise many types on damaged files
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from exc
    if header.get("format") != FORMAT:
        raise _corrupt(path, f"format is {header.get('format')!r}, expected {FORMAT!r}")
    if not isinstance(header, dict):
        raise _corrupt(path, "the header is not an object")
    version = header.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _corrupt(path, f"schema_version {version!r} is not an integer")
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: cost-table schema version {version}, this hwnas reads version {SCHEMA_VERSION}",
            hint="re-export the table with this hwnas version (hwnas fit ... --out)",
        )
    meta = header.get("meta") or {}
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise _corrupt(path, f"rows lack column(s) {missing}")
    try:
        rows = _normalise_rows(rows)
    except (TypeError, ValueError) as exc:
        raise _corrupt(path, f"bad row values: {exc}") from exc
    payload = header.get("payload")
    if not isinstance(meta, dict):
        raise _corrupt(path, "meta is not an object")
    if meta.get("checksum_scope") != CHECKSUM_SCOPE and meta.get("checksum") == _checksum(rows, payload):
        raise SchemaError(
            f"{path}: written by an older hwnas whose checksum does not cover the table's metadata "
            "(which architectures were fitted on, the metric, the fingerprint), so edits there go unseen",
            hint="re-export it with this hwnas (`hwnas fit ... --out`)",
        )
    if meta.get("checksum") != _file_checksum(header, rows):
        raise _corrupt(path, "checksum mismatch (the file was truncated or edited)")
    _check_payload_shape(path, payload)
    table = CostTable(meta=meta, rows=rows, payload=payload)
    if fingerprint_id is not None:
        table.check_fingerprint(fingerprint_id)
    return table
