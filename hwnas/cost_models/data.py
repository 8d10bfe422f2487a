"""Training data for cost models: measurements from the store, or a tabular file, as DataFrames.

Splits are always by architecture (``model_id``), never by row: a held-out score must be about
architectures the model has never seen, and layers of one architecture are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.features import LAYER_FEATURE_COLUMNS, layer_features
from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec

KEY = "layer_key"


@dataclass
class TrainingData:
    """Layer rows (one per measured layer of a model, with LayerSpec features) and model rows.

    ``layers`` columns: model_id, layer_index, layer_key, layer_name, value, lo, hi, then
    :data:`~hwnas.cost_models.features.LAYER_FEATURE_COLUMNS`. ``models``: model_id, value, lo, hi.
    """

    layers: pd.DataFrame
    models: pd.DataFrame
    metric: str = "latency_ms"
    mode: str = "inference"
    device: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    layer_metric: str = ""
    zero_ops: list[str] = field(default_factory=list)

    @property
    def model_ids(self) -> list[str]:
        ids = list(dict.fromkeys(self.layers["model_id"].tolist() + self.models["model_id"].tolist()))
        return ids

    def subset(self, model_ids: Any) -> TrainingData:
        keep = set(model_ids)
        return TrainingData(
            layers=self.layers[self.layers["model_id"].isin(keep)].reset_index(drop=True),
            models=self.models[self.models["model_id"].isin(keep)].reset_index(drop=True),
            metric=self.metric,
            mode=self.mode,
            device=self.device,
            fingerprint=self.fingerprint,
            layer_metric=self.layer_metric,
            zero_ops=self.zero_ops,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "layer_rows": int(len(self.layers)),
            "unique_layer_keys": int(self.layers[KEY].nunique()) if len(self.layers) else 0,
            "models_with_layers": int(self.layers["model_id"].nunique()) if len(self.layers) else 0,
            "models_measured_whole": int(len(self.models)),
        }


def load_store_data(
    store: Any,
    *,
    device: str | None = None,
    metric: str = "latency_ms",
    mode: str = "inference",
    backend: str | None = None,
    fingerprint_id: str | None = None,
    batch_size: int | None = None,
    model_ids: Any = None,
    layer_metric: str | None = None,
    include_flagged: bool = False,
) -> TrainingData:
    """Read layer- and model-scope records of one device set-up from the store.

    Records from several fingerprints never mix: if more than one matches, name one with
    ``fingerprint_id``. ``layer_metric`` picks another metric for the layer rows (e.g. onnxruntime's
    ``in_model_latency_ms``, per-layer times measured inside the whole model); default: ``metric``.
    Records the profiler's measurement QA flagged (load, steal, throttling, spread, drift: see
    :mod:`hwnas.profilers.qa`) are left out unless ``include_flagged``.
    """
    metrics_wanted = [metric] if layer_metric in (None, metric) else [metric, layer_metric]
    filters = {
        "device": device,
        "metric": metrics_wanted if len(metrics_wanted) > 1 else metric,
        "mode": mode,
        "backend": backend,
        "fingerprint_id": fingerprint_id,
        "batch_size": batch_size,
    }
    if model_ids is not None:
        filters["model_id"] = list(model_ids)
    df = store.dataframe(**filters)
    if df.empty:
        what = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None and k != "model_id")
        raise InputError(
            f"no measurements in the store for {what}",
            hint="run `hwnas profile` first, or check --store/--device/--metric",
        )
    fps = sorted(df["fingerprint_id"].unique())
    if len(fps) > 1:
        raise InputError(
            f"measurements from {len(fps)} device set-ups (fingerprints {fps}) match; tables never mix them",
            hint="pass --fingerprint with one of them (see `hwnas show`)",
        )
    devices = sorted(df["device"].unique())
    if not include_flagged and "qa_flagged" in df and df["qa_flagged"].any():
        kept = df[~df["qa_flagged"].astype(bool)]
        lost = [s for s in ("model", "layer") if (df["scope"] == s).any() and not (kept["scope"] == s).any()]
        if kept.empty or lost:
            n = int(df["qa_flagged"].sum())
            raise InputError(
                f"{n} of {len(df)} matching records were flagged by measurement QA (measured under load, "
                "with drift or too wide a spread) and too few are left to fit on",
                hint="re-profile on a quieter machine or with --clock cpu, or pass --include-flagged",
            )
        df = kept
    df = df[np.isfinite(df["value"]) & (df["value"] > 0)]
    for col in ("ci_low", "ci_high"):
        if col not in df:
            df[col] = np.nan
    lo = df["ci_low"].fillna(df["value"])
    hi = df["ci_high"].fillna(df["value"])
    df = df.assign(lo=lo, hi=hi)

    lay = df[(df["scope"] == "layer") & (df["metric"] == (layer_metric or metric))]
    lay = lay.sort_values(["model_id", "layer_index"])
    keys = lay["layer_key"].unique().tolist()
    specs = store.get_layer_specs(keys, decode=LayerSpec.from_dict) if len(lay) else {}
    missing = sorted(set(lay["layer_key"]) - set(specs))
    if missing:
        raise InputError(
            f"{len(missing)} layer key(s) have no LayerSpec in the store, e.g. {missing[:2]}",
            hint="profile with a current hwnas (it stores each layer's spec), or re-profile these models",
        )
    zero_ops: list[str] = []
    if layer_metric not in (None, metric):
        # Ops in the models' full layer lists (the `metric` layer rows) that never get a `layer_metric`
        # row: the runtime fused them into a neighbour (batch-norm, activations), so they cost 0 there.
        full = df[(df["scope"] == "layer") & (df["metric"] == metric)]
        timed = {k.split("|", 1)[0] for k in lay["layer_key"].unique()}
        listed = {k.split("|", 1)[0] for k in full["layer_key"].unique()}
        zero_ops = sorted(listed - timed)
    feats = layer_features(specs[k] for k in lay["layer_key"])
    layers = pd.concat(
        [
            lay[["model_id", "layer_index", "layer_key", "layer_name", "value", "lo", "hi"]].reset_index(
                drop=True
            ),
            feats.reset_index(drop=True),
        ],
        axis=1,
    )
    mod = df[(df["scope"] == "model") & (df["metric"] == metric)][["model_id", "value", "lo", "hi"]]
    mod = mod.groupby("model_id", as_index=False, sort=False).median()
    fingerprint = store.get_fingerprint(fps[0]) or {"id": fps[0]}
    return TrainingData(
        layers=layers,
        models=mod.reset_index(drop=True),
        metric=metric,
        mode=mode,
        device=",".join(devices),
        fingerprint=fingerprint,
        layer_metric=layer_metric or metric,
        zero_ops=zero_ops,
    )


def split_by_model(
    data: TrainingData, test_size: float = 0.2, seed: int = 0, require_whole: bool = True
) -> tuple[TrainingData, TrainingData]:
    """Random split of architectures into (train, test). With ``require_whole`` the test set draws only
    from models that have a whole-model measurement (the thing being scored)."""
    if not 0 < test_size < 1:
        raise InputError(f"test size must be a fraction in (0, 1), got {test_size}")
    ids = data.model_ids
    pool = [m for m in ids if m in set(data.models["model_id"])] if require_whole else ids
    if len(pool) < 2:
        raise InputError(f"need >= 2 architectures to split by model_id, have {len(pool)}")
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_size * len(pool))))
    test = set(rng.permutation(pool)[:n_test].tolist())
    train = [m for m in ids if m not in test]
    return data.subset(train), data.subset(test)


def layer_design(frame: pd.DataFrame, with_key: bool) -> pd.DataFrame:
    """The per-layer feature matrix a cost model fits on (``layer_key`` first when ``with_key``)."""
    cols = ([KEY] if with_key else []) + list(LAYER_FEATURE_COLUMNS)
    return frame[cols]


def layer_frame(specs: Any) -> pd.DataFrame:
    """Features (and keys) for LayerSpecs that were never measured, e.g. a model to predict."""
    specs = list(specs)
    feats = layer_features(specs)
    feats.insert(0, KEY, [s.key() for s in specs])
    return feats


AUTO_WHERE = "auto"


def tabular_row_filter(df: pd.DataFrame, where: str | None) -> str | None:
    """The pandas query that selects the rows to fit or score.

    ``auto`` keeps connected cells where the table has a ``connected`` column (NAS-Bench-201 format: the
    341 degenerate cells have a constant output and near-zero latency, which makes relative errors
    meaningless); ``all`` (or None) keeps every row; anything else is a row filter in the grammar of
    :mod:`hwnas.where` (never evaluated as Python: pandas ``query`` would run ``@`` references).
    """
    if where is None or where == "all":
        return None
    if where == AUTO_WHERE:
        return "connected == 1" if "connected" in df.columns else None
    return where


def load_tabular(
    path: Any, target: str, featurizer: str, id_column: str | None = None, where: str | None = AUTO_WHERE
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Read a CSV/Parquet table of architectures: (features, target values, row ids).

    ``where`` selects rows first (see :func:`tabular_row_filter`).
    """
    from pathlib import Path

    from hwnas.cost_models.features import apply_featurizer

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    except Exception as exc:  # pandas raises many types for a bad file
        raise InputError(f"{p}: cannot read as a table: {exc}") from exc
    if target not in df.columns:
        raise InputError(
            f"{p}: no column {target!r}", hint=f"columns: {', '.join(map(str, df.columns[:20]))}"
        )
    query = tabular_row_filter(df, where)
    if query is not None:
        from hwnas.where import filter_rows

        df = filter_rows(df, query)
        if df.empty:
            raise InputError(f"{p}: no rows left after --where {query!r}")
    y = pd.to_numeric(df[target], errors="coerce").to_numpy(float)
    ok = np.isfinite(y)
    df, y = df[ok].reset_index(drop=True), y[ok]
    if id_column is None:
        id_column = next((c for c in ("model_id", "arch", "arch_str", "arch_index") if c in df.columns), None)
    ids = df[id_column].astype(str).tolist() if id_column else [str(i) for i in range(len(df))]
    feats = apply_featurizer(featurizer, df.drop(columns=[target]))
    return feats, y, ids
