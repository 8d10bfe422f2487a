"""Every cost path as a :class:`~hwnas.cost_models.interface.CostPredictor` (the one hand-off to searchers).

- :class:`TablePredictor`: an exported cost table, whatever estimator kind is inside. A *layer* table
  prices an architecture as Σ layers + the fitted overhead; architectures are LayerSpec lists, ModelSpecs,
  or anything ``to_layers`` maps to them (a search-space point, through its space). A *tabular* table
  prices feature rows; architectures are rows (dicts) or ids that ``to_features`` (default: the table's
  own featurizer applied to ``{"arch": id}``) turns into its feature columns. It also prices single
  layers (:meth:`TablePredictor.layer_costs`), the base of the differentiable view.
- :class:`ArchCostPredictor`: a per-architecture cost table (``arch,<cost columns>``, optional
  ``<cost>_lo``/``<cost>_hi`` and ``level``): exact values (zero-width interval) or, for ``predict-device``
  output, the prediction with its interval.
- :class:`ModelPredictor`: fitted regressors over a featurizer (HyperPower's linear models on a space's
  structural parameters, NAS-Bench-201's edge-op model): the band is the model's ``predict_interval`` or a
  residual band given with it.

:func:`load_cost_predictor` reads any of these files: a cost table (JSON, CSV with the
``# hwnas-cost-table`` header, Parquet) or a per-architecture CSV/Parquet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.base import DEFAULT_COVERAGE, apply_overhead, apply_residual_band
from hwnas.cost_models.interface import CostEstimate, PredictorBase, canonical_cost_name
from hwnas.errors import InputError

# metric -> (cost name searchers constrain, factor into its unit, unit)
_CONVERSIONS: dict[str, tuple[str, float, str]] = {"peak_memory_bytes": ("memory_mb", 1e-6, "MB")}
UNITS = {"latency_ms": "ms", "energy_mj": "mJ", "power_mw": "mW", "memory_mb": "MB", "power_w": "W"}


def cost_of_metric(metric: str) -> tuple[str, float, str]:
    """(cost name, factor, unit) under which a table's metric is offered to searchers."""
    if metric in _CONVERSIONS:
        return _CONVERSIONS[metric]
    name = canonical_cost_name(metric)
    return name, 1.0, UNITS.get(name, "")


def _specs(arch: Any) -> list[Any]:
    if hasattr(arch, "layers") and not isinstance(arch, (list, tuple)):
        return list(arch.layers)
    if isinstance(arch, (list, tuple)):
        return list(arch)
    raise InputError(
        f"a layer cost table prices LayerSpec lists or ModelSpecs, got a {type(arch).__name__}",
        hint="pass to_layers= (e.g. the search space's config -> LayerSpecs mapping)",
    )


class TablePredictor(PredictorBase):
    """A :class:`~hwnas.cost_models.export.CostTable` as a cost predictor (see the module docstring)."""

    def __init__(
        self,
        table: Any,
        *,
        name: str | None = None,
        to_layers: Callable[[Any], Any] | None = None,
        to_features: Callable[[Sequence[Any]], pd.DataFrame] | None = None,
    ) -> None:
        self.table = table
        cost, self.factor, self.unit = cost_of_metric(table.metric)
        self.name = name or cost
        self.cost_names = (self.name,)
        self.to_layers = to_layers
        self.to_features = to_features
        band = table.meta.get("model_band") or (table.payload or {}).get("band") or {}
        self.level = float(band.get("coverage", DEFAULT_COVERAGE))
        self.source = f"table:{table.kind}"

    @property
    def is_layer_table(self) -> bool:
        return self.table.meta.get("input") == "layers"

    def describe(self) -> str:
        v = (self.table.meta.get("validation") or {}).get("model") or {}
        err = f", held-out RMSPE {v['rmspe_pct']:.1f} %" if "rmspe_pct" in v else ""
        dev = self.table.meta.get("device") or self.table.meta.get("source") or "?"
        return f"{self.table.kind} cost table of {self.table.metric} ({dev}{err})"

    def errors(self) -> dict[str, float]:
        v = (self.table.meta.get("validation") or {}).get("model") or {}
        return {self.name: float(v.get("rmspe_pct", float("nan")))}

    # -- the interface -------------------------------------------------------------------------------
    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        archs = list(archs)
        if self.is_layer_table:
            value, lo, hi = self._predict_layer_models(archs)
        else:
            value, lo, hi = self._predict_rows(archs)
        f = self.factor
        est = CostEstimate(
            self.name,
            self.unit,
            value * f,
            lo * f,
            hi * f,
            level=self.level,
            source=np.full(len(value), self.source, dtype=object),
        )
        return {self.name: est}

    def layer_costs(self, name: str, layers: Sequence[Any]) -> np.ndarray:
        """Point cost of each LayerSpec (a fused unit, a candidate op) from a layer table."""
        if name != self.name:
            raise InputError(f"this cost table predicts {self.name!r}, not {name!r}")
        if not self.is_layer_table:
            raise InputError(
                "a tabular cost table prices whole architectures, not layers",
                hint="fit a per-layer table (hwnas fit from the store) for a one-shot searcher",
            )
        specs = list(layers)
        if not specs:
            return np.zeros(0)
        return self.table.predict_layers(specs)["value"].to_numpy(float) * self.factor

    # -- layer tables: Σ layers + overhead, batched --------------------------------------------------
    def _predict_layer_models(self, archs: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from hwnas.cost_models.data import layer_frame

        groups: list[int] = []
        specs: list[Any] = []
        for i, a in enumerate(archs):
            layers = _specs(self.to_layers(a) if self.to_layers is not None else a)
            specs += layers
            groups += [i] * len(layers)
        n = len(archs)
        if not specs:
            z = np.zeros(n)
            return z, z.copy(), z.copy()
        frame = layer_frame(specs)
        per = self.table.predict_layers(frame)
        labels = [str(v) for v in frame["op_code"].to_numpy()]
        totals = apply_overhead(self.table.meta.get("overhead"), per["value"].to_numpy(), groups, labels)
        value = np.array([totals.get(i, 0.0) for i in range(n)])
        band = self.table.meta.get("model_band")
        if band:
            lo, hi = apply_residual_band(value, band)
        else:
            g = np.asarray(groups)
            lo = np.bincount(g, weights=per["lo"].to_numpy(float), minlength=n)
            hi = np.bincount(g, weights=per["hi"].to_numpy(float), minlength=n)
        return value, np.asarray(lo, float), np.asarray(hi, float)

    # -- tabular tables: featurised rows -------------------------------------------------------------
    def _features(self, archs: list[Any]) -> pd.DataFrame:
        if self.to_features is not None:
            return self.to_features(archs)
        if all(isinstance(a, Mapping) for a in archs):
            df = pd.DataFrame([dict(a) for a in archs])
        else:
            df = pd.DataFrame({"arch": [str(a) for a in archs]})
        names = (self.table.payload or {}).get("feature_names")
        if names and all(c in df.columns for c in names):
            return df
        featurizer = self.table.meta.get("featurizer") or "numeric"
        from hwnas.cost_models.features import apply_featurizer

        return apply_featurizer(featurizer, df)

    def _predict_rows(self, archs: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pred = self.table.predict_rows(self._features(archs))
        return (pred[c].to_numpy(float) for c in ("value", "lo", "hi"))  # type: ignore[return-value]


def _default_key(arch: Any) -> str:
    if isinstance(arch, str):
        return arch
    if isinstance(arch, Mapping):
        for k in ("arch", "model_id", "arch_str"):
            if k in arch:
                return str(arch[k])
    raise InputError(
        f"a per-architecture cost table looks architectures up by id; cannot tell the id of {arch!r}",
        hint="pass key= (e.g. the space's config -> arch string mapping)",
    )


ID_COLUMNS = ("arch", "model_id", "arch_str", "config_id")
_COST_SUFFIXES = ("_ms", "_mj", "_mw", "_w", "_mb", "_bytes", "_j", "_s")


def _bound_columns(frame: pd.DataFrame, col: str, costs: Sequence[str]) -> tuple[str, str] | None:
    """The interval columns of cost ``col``: ``<col>_lo``/``<col>_hi`` (the old predict-device spelling),
    else ``lower_<unit>``/``upper_<unit>`` (the current one: ``latency_ms`` -> ``lower_ms``) when ``col``
    is the only cost with that unit; None = no interval."""
    if f"{col}_lo" in frame.columns and f"{col}_hi" in frame.columns:
        return f"{col}_lo", f"{col}_hi"
    unit = str(col).rsplit("_", 1)[-1]
    lo, hi = f"lower_{unit}", f"upper_{unit}"
    same_unit = [c for c in costs if str(c).rsplit("_", 1)[-1] == unit]
    if lo in frame.columns and hi in frame.columns and same_unit == [col]:
        return lo, hi
    return None


class ArchCostPredictor(PredictorBase):
    """Per-architecture costs looked up by id (exact, or a prediction with an interval).

    ``frame``: an id column (``arch``, ``model_id``...) and cost columns; ``<cost>_lo``/``<cost>_hi`` or
    ``lower_<unit>``/``upper_<unit>`` (``predict-device``'s ``lower_ms``/``upper_ms``) give an interval (else
    zero width), a ``level`` column (or ``level=``) its nominal coverage.
    ``key(arch) -> id``; ``rename`` maps column names to cost names (default: ``lat_<dev>_ms`` →
    ``latency_ms`` when there is one such column).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        id_column: str | None = None,
        costs: Sequence[str] | None = None,
        key: Callable[[Any], str] | None = None,
        level: float | None = None,
        source: str = "table",
        rename: Mapping[str, str] | None = None,
        origin: str = "",
    ) -> None:
        where = origin or "per-architecture cost table"
        id_column = id_column or next((c for c in ID_COLUMNS if c in frame.columns), None)
        if id_column is None or id_column not in frame.columns:
            raise InputError(
                f"{where}: no architecture id column (one of {', '.join(ID_COLUMNS)})",
                hint="a CSV with columns arch,<cost columns> (e.g. arch,latency_ms)",
            )
        if costs is None:
            costs = [
                c
                for c in frame.columns
                if c != id_column
                and str(c).endswith(_COST_SUFFIXES)
                and not str(c).endswith(("_lo", "_hi"))
                and not str(c).startswith(("lower_", "upper_"))
                and pd.api.types.is_numeric_dtype(frame[c])
            ]
        costs = list(costs)
        if not costs:
            raise InputError(
                f"{where}: no cost columns (numeric, named with a unit: latency_ms, energy_mj, power_mw ...)",
                hint=f"columns: {', '.join(map(str, frame.columns[:12]))}",
            )
        if rename is None:
            lat = [c for c in costs if canonical_cost_name(c) == "latency_ms" and c != "latency_ms"]
            rename = {lat[0]: "latency_ms"} if len(lat) == 1 and "latency_ms" not in costs else {}
        ids = frame[id_column].astype(str)
        if ids.duplicated().any():
            raise InputError(f"{where}: architecture {ids[ids.duplicated()].iloc[0]!r} appears twice")
        self.frame = frame.set_index(ids)
        self.columns = {rename.get(c, c): c for c in costs}
        self.bounds = {c: _bound_columns(frame, c, costs) for c in costs}
        self.cost_names = tuple(self.columns)
        for c in costs:
            bad = ~np.isfinite(pd.to_numeric(frame[c], errors="coerce").to_numpy(float))
            if bad.any():
                raise InputError(
                    f"{where}: column {c!r} has {int(bad.sum())} missing or non-numeric value(s)"
                )
        if level is None:
            level = float(frame["level"].iloc[0]) if "level" in frame.columns else DEFAULT_COVERAGE
        self.level = float(level)
        self.key = key or _default_key
        self.source = source
        self.origin = origin

    def describe(self) -> str:
        kind = "predicted" if any(b is not None for b in self.bounds.values()) else "exact"
        return f"{kind} per-architecture costs {list(self.cost_names)} of {len(self.frame)} architectures" + (
            f" ({self.origin})" if self.origin else ""
        )

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        ids = [self.key(a) for a in archs]
        missing = [i for i in ids if i not in self.frame.index]
        if missing:
            raise InputError(
                f"{len(missing)} architecture(s) not in the cost table {self.origin}".rstrip()
                + f", e.g. {missing[0]!r}",
                hint="the table must cover every architecture the search can propose",
            )
        rows = self.frame.loc[ids]
        out = {}
        for name, col in self.columns.items():
            v = rows[col].to_numpy(float)
            bounds = self.bounds[col]
            lo = rows[bounds[0]].to_numpy(float) if bounds else v
            hi = rows[bounds[1]].to_numpy(float) if bounds else v
            out[name] = CostEstimate(
                name,
                UNITS.get(name, ""),
                v,
                np.minimum(lo, v),
                np.maximum(hi, v),
                level=self.level,
                source=np.full(len(v), self.source, dtype=object),
            )
        return out


class ModelPredictor(PredictorBase):
    """Fitted regressors (one per cost) over ``featurize(archs) -> X``.

    The interval is the model's own ``predict_interval`` when it has one, else ``bands[name]`` (residual
    quantiles, as :func:`~hwnas.cost_models.base.relative_residual_quantiles` returns), else zero width.
    ``scales[name]`` multiplies point and band (a safety factor against under-prediction).
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        featurize: Callable[[Sequence[Any]], Any],
        *,
        bands: Mapping[str, Mapping[str, Any]] | None = None,
        scales: Mapping[str, float] | None = None,
        source: str = "model",
        description: str = "",
    ) -> None:
        self.models = dict(models)
        self.featurize = featurize
        self.bands = dict(bands or {})
        self.scales = dict(scales or {})
        self.source = source
        self.description = description

    @property
    def cost_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.models)

    def describe(self) -> str:
        return self.description or f"fitted {', '.join(type(m).__name__ for m in self.models.values())}"

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        archs = list(archs)
        X = self.featurize(archs)
        out = {}
        for name, m in self.models.items():
            s = float(self.scales.get(name, 1.0))
            point = np.asarray(m.predict(X), float).ravel() * s
            band = self.bands.get(name) or getattr(m, "residual_band_", None)
            if hasattr(m, "predict_interval"):
                lo, hi = (np.asarray(a, float).ravel() * s for a in m.predict_interval(X))
                level = float((band or {}).get("coverage", DEFAULT_COVERAGE))
            elif band:
                lo, hi = apply_residual_band(point, band)
                level = float(band.get("coverage", DEFAULT_COVERAGE))
            else:
                lo, hi, level = point, point, DEFAULT_COVERAGE
            out[name] = CostEstimate(
                name,
                UNITS.get(name, ""),
                point,
                np.minimum(lo, point),
                np.maximum(hi, point),
                level=level,
                source=np.full(len(point), f"{self.source}:{type(m).__name__}", dtype=object),
            )
        return out

    def errors(self) -> dict[str, float]:
        """Cross-validated RMSPE (%) per cost, where the model kept one (thesis table 3.1)."""
        return {k: float(getattr(m, "cv_rmspe_", float("nan"))) for k, m in self.models.items()}


class KernelCostPredictor(PredictorBase):
    """A :class:`~hwnas.cost_models.kernel_predictor.KernelPredictor` as a cost predictor.

    An architecture (LayerSpecs, a ModelSpec, or anything ``to_layers`` maps to them) costs Σ of its fused
    units' kernel predictions plus the fitted overhead; the estimate's ``ood`` marks architectures with a
    unit outside the sampled kernel region (or of no known kind), and ``info["ood_units"]`` names them.
    ``layer_costs`` prices each LayerSpec as a unit alone (the differentiable view).
    """

    cost_names = ("latency_ms",)

    def __init__(
        self, model: Any, *, to_layers: Callable[[Any], Any] | None = None, origin: str = ""
    ) -> None:
        self.model = model
        self.to_layers = to_layers
        self.origin = origin
        self.level = float(model.level)

    def describe(self) -> str:
        meta = getattr(self.model, "meta_", {}) or {}
        dev = meta.get("device", "?")
        oh = self.model.overhead_ or {}
        err = f", held-out whole-model MAPE {oh['loo_mape_pct']:.1f} %" if "loo_mape_pct" in oh else ""
        m = self.model
        return f"kernel predictor ({len(m.models_)} kinds, {m.n_kernels_} kernels, {dev}{err})"

    def errors(self) -> dict[str, float]:
        oh = self.model.overhead_ or {}
        return {"latency_ms": float(oh.get("loo_mape_pct", float("nan")))}

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        res = [self.model.predict_model(_specs(self.to_layers(a) if self.to_layers else a)) for a in archs]
        n = len(res)
        est = CostEstimate(
            "latency_ms", "ms",
            np.array([r["value"] for r in res], float), np.array([r["lo"] for r in res], float),
            np.array([r["hi"] for r in res], float), level=self.level,
            source=np.full(n, "model:kernel", dtype=object),
            ood=np.array([r["n_ood"] > 0 for r in res], bool),
            info={"ood_units": [r["ood_units"] for r in res]},
        )  # fmt: skip
        return {"latency_ms": est}

    def layer_costs(self, name: str, layers: Sequence[Any]) -> np.ndarray:
        if name != "latency_ms":
            raise InputError(f"a kernel predictor predicts 'latency_ms', not {name!r}")
        return np.array([float(self.model.price_units([la])["value"].sum()) for la in layers], float)


# --- files ---------------------------------------------------------------------------------------------


def is_cost_table_file(path: str | Path) -> bool:
    """Whether ``path`` is an exported hwnas cost table (rather than a per-architecture cost file)."""
    from hwnas.cost_models.export import FORMAT

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".json":
        return True
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return FORMAT.encode() in (pq.read_schema(p).metadata or {})
        except Exception as exc:  # arrow raises many types on a damaged file
            raise InputError(f"{p}: not a readable Parquet file: {exc}") from exc
    if suffix in (".csv", ".gz"):
        import gzip

        opener = gzip.open if suffix == ".gz" else open
        try:
            with opener(p, "rt") as fh:  # type: ignore[operator]
                return fh.readline().startswith(f"# {FORMAT} ")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{p}: cannot read it: {exc}") from exc
    raise InputError(f"{p}: cannot tell the format from the suffix", hint="use .json, .csv or .parquet")


def load_arch_costs(path: str | Path, **kwargs: Any) -> ArchCostPredictor:
    """A per-architecture cost file (CSV, CSV.GZ or Parquet) as an :class:`ArchCostPredictor`."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: cost table not found")
    try:
        df = pd.read_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else pd.read_csv(p)
    except Exception as exc:  # pandas raises many types for a bad file
        raise InputError(
            f"{p}: not a readable table: {exc}", hint="a CSV with columns arch,<cost columns>"
        ) from exc
    predicted = any(str(c).endswith("_lo") or str(c).startswith("lower_") for c in df.columns)
    kwargs.setdefault("source", "predicted" if predicted else "table")
    return ArchCostPredictor(df, origin=str(p), **kwargs)


def load_cost_predictor(
    path: str | Path,
    *,
    to_layers: Callable[[Any], Any] | None = None,
    to_features: Callable[[Sequence[Any]], pd.DataFrame] | None = None,
    key: Callable[[Any], str] | None = None,
    fingerprint_id: str | None = None,
    name: str | None = None,
) -> PredictorBase:
    """Any cost file as a predictor: a kernel predictor (``hwnas build-predictor`` output, →
    :class:`KernelCostPredictor`), an exported cost table (→ :class:`TablePredictor`) or a
    per-architecture cost CSV / ``predict-device`` output (→ :class:`ArchCostPredictor`).

    ``to_layers`` maps an architecture (a search-space point) to LayerSpecs for a layer table; ``key``
    maps it to its id for a per-architecture table; ``to_features`` to feature rows for a tabular
    table (default: the table's featurizer on ``{"arch": key(arch)}``)."""
    from hwnas.cost_models.export import load_cost_table
    from hwnas.cost_models.kernel_predictor import is_kernel_predictor_file, load_kernel_predictor

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: cost table not found")
    if is_kernel_predictor_file(p):
        return KernelCostPredictor(load_kernel_predictor(p), to_layers=to_layers, origin=str(p))
    if is_cost_table_file(p):
        table = load_cost_table(p, fingerprint_id)
        feats = to_features
        if feats is None and key is not None and table.meta.get("input") == "tabular":
            probe = TablePredictor(table, name=name)

            def feats(archs: Sequence[Any]) -> pd.DataFrame:
                return probe._features([key(a) for a in archs])

        return TablePredictor(table, name=name, to_layers=to_layers, to_features=feats)
    arch = load_arch_costs(p, key=key)
    if name is not None and name not in arch.cost_names:
        if len(arch.cost_names) != 1:
            raise InputError(f"{p}: several cost columns {list(arch.cost_names)}; cannot name one {name!r}")
        arch.columns = {name: next(iter(arch.columns.values()))}
        arch.cost_names = (name,)
    return arch
