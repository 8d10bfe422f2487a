"""Fit, validate and evaluate cost models on store data or tabular files; what `hwnas fit`/`evaluate` run.

Per-layer fitting: the estimator learns layer cost from LayerSpec features (or layer keys, for the LUT);
a model's cost is the sum over its layers, then an affine overhead ``a + b · Σ`` fitted on whole-model
measurements of the training architectures. Validation holds out whole architectures (by ``model_id``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models import metrics
from hwnas.cost_models.data import KEY, TrainingData, layer_design, split_by_model
from hwnas.cost_models.export import CostTable, build_cost_table
from hwnas.cost_models.features import LAYER_FEATURE_COLUMNS
from hwnas.errors import InputError


def estimator_names() -> tuple[str, ...]:
    """The registered cost-model kinds (``hwnas.cost_models.kinds``)."""
    from hwnas.cost_models.kinds import kind_names

    return kind_names()


def __getattr__(name: str) -> Any:  # ESTIMATOR_NAMES stays importable, read from the registry
    if name == "ESTIMATOR_NAMES":
        return estimator_names()
    raise AttributeError(name)


def make_estimator(
    name: str,
    *,
    fallback: str | None = None,
    seed: int = 0,
    device_config: Any = None,
    n_estimators: int = 300,
    tabular: bool = False,
) -> Any:
    """An unfitted estimator of the registered kind ``name`` (``lut`` takes an optional ``fallback``
    kind; ``tabular`` builds it for architecture rows rather than layers)."""
    from hwnas.cost_models.kinds import get_kind

    return get_kind(name).make(
        fallback=fallback, seed=seed, device_config=device_config, n_estimators=n_estimators, tabular=tabular
    )


def _is_lut(est: Any) -> bool:
    """Whether ``est`` fits on layer keys (a lookup table) rather than on features alone."""
    return bool(getattr(est, "fits_layer_keys", False))


OVERHEADS = ("affine", "per-op", "none")


def aggregate_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """One row per layer key: median value and band, the key's features (a layer key fixes them)."""
    if layers.empty:
        return layers
    feats = layers.drop_duplicates(KEY).set_index(KEY)[list(LAYER_FEATURE_COLUMNS)]
    stats = layers.groupby(KEY, sort=False)[["value", "lo", "hi"]].median()
    counts = layers.groupby(KEY, sort=False).size().rename("n")
    return pd.concat([stats, counts, feats.loc[stats.index]], axis=1).reset_index()


def fit_layerwise(
    estimator: Any,
    data: TrainingData,
    overhead: str | bool = "affine",
    aggregate: bool = True,
    model_layers: pd.DataFrame | None = None,
) -> Any:
    """Fit on layer rows, then the model overhead on architectures measured whole (if >= 2).

    ``aggregate``: fit on one row per layer key (median over its measurements), so a key repeated in
    many architectures does not dominate, and boosting stays fast. ``overhead``: ``affine``
    (``a + b·Σ``), ``per-op`` (``a + Σ_k b_k·Σ_k`` over op kinds) or ``none``. ``model_layers``: the
    layer lists (``model_id``, ``layer_key``, layer features) of the architectures measured whole, when
    they are not all in ``data.layers`` (e.g. architectures profiled whole only, their layer lists built
    from the search space); default ``data.layers``.
    """
    if overhead is True:
        overhead = "affine"
    if overhead is False or overhead is None:
        overhead = "none"
    if overhead not in OVERHEADS:
        raise InputError(f"overhead {overhead!r} is not one of {', '.join(OVERHEADS)}")
    if data.layers.empty:
        raise InputError(
            "no layer-scope measurements to fit a per-layer cost model on",
            hint="profile with per-layer timing (hwnas profile --per-layer)",
        )
    lut = _is_lut(estimator)
    rows_fit = aggregate_layers(data.layers) if aggregate else data.layers
    X = layer_design(rows_fit, with_key=lut)
    y = rows_fit["value"].to_numpy(float)
    if lut:
        estimator.fit(X, y, y_lo=rows_fit["lo"].to_numpy(float), y_hi=rows_fit["hi"].to_numpy(float))
    else:
        estimator.fit(X, y)
    whole = data.models.set_index("model_id")["value"]
    lists = data.layers if model_layers is None else model_layers
    rows = lists[lists["model_id"].isin(whole.index)]
    if overhead != "none" and rows["model_id"].nunique() >= 2:
        by = rows["op_code"].to_numpy() if overhead == "per-op" else None
        estimator.fit_overhead(
            layer_design(rows, with_key=lut), rows["model_id"].to_numpy(), whole.to_dict(), by=by
        )
    return estimator


def table_from_fit(
    estimator: Any,
    data: TrainingData,
    validation: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> CostTable:
    return build_cost_table(
        estimator,
        metric=data.metric,
        input_kind="layers",
        layer_rows=data.layers,
        fingerprint=data.fingerprint,
        device=data.device,
        n_fit=data.summary(),
        validation=validation,
        fit_model_ids=data.model_ids,
        extra={
            "mode": data.mode,
            "layer_metric": data.layer_metric or data.metric,
            "zero_ops": list(data.zero_ops),
            **(extra or {}),
        },
    )


def predict_models_table(table: CostTable, data: TrainingData) -> pd.DataFrame:
    """Per architecture of ``data``: predicted (table) and measured whole-model cost."""
    if data.layers.empty:
        raise InputError("no layer lists in the data: a model's prediction needs its layers")
    per = table.predict_layers(layer_design(data.layers, with_key=True))
    from hwnas.cost_models.base import apply_overhead

    frame = pd.DataFrame(
        {
            "model_id": data.layers["model_id"].to_numpy(),
            "value": per["value"].to_numpy(),
            "lo": per["lo"].to_numpy(),
            "hi": per["hi"].to_numpy(),
            "from_table": (per["source"] == "table").to_numpy(),
        }
    )
    agg = frame.groupby("model_id", sort=False).agg(
        layer_sum=("value", "sum"),
        lo_sum=("lo", "sum"),
        hi_sum=("hi", "sum"),
        n_layers=("value", "size"),
        n_from_table=("from_table", "sum"),
    )
    labels = [str(v) for v in data.layers["op_code"].to_numpy()]
    totals = apply_overhead(
        table.meta.get("overhead"), per["value"].to_numpy(), data.layers["model_id"], labels
    )
    out = agg.assign(predicted=agg.index.map(totals)).reset_index()
    band = table.meta.get("model_band")
    if band:
        from hwnas.cost_models.base import apply_residual_band

        lo, hi = apply_residual_band(out["predicted"].to_numpy(), band)
        out["lo"], out["hi"] = lo, hi
    else:
        out["lo"], out["hi"] = out["lo_sum"], out["hi_sum"]
    measured = data.models.set_index("model_id")["value"]
    out["measured"] = out["model_id"].map(measured)
    return out.drop(columns=["lo_sum", "hi_sum"])


def layer_report(table: CostTable, data: TrainingData) -> dict[str, Any]:
    """Per-layer errors (measured layer cost vs the table's prediction)."""
    per = table.predict_layers(layer_design(data.layers, with_key=True))
    return metrics.report(data.layers["value"].to_numpy(float), per["value"].to_numpy(float))


def fit_with_validation(
    name: str,
    data: TrainingData,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    fallback: str | None = None,
    device_config: Any = None,
    refit: bool = True,
    n_estimators: int = 300,
    overhead: str = "affine",
) -> tuple[CostTable, dict[str, Any]]:
    """Hold out ``test_size`` of the architectures, fit on the rest, score, then refit on everything.

    The table carries the held-out scores (``validation``) and, with ``refit``, the model fitted on all
    data (its ``fit_model_ids`` then list every architecture; `hwnas evaluate` on new ones stays honest).
    """
    kw = {"fallback": fallback, "seed": seed, "device_config": device_config, "n_estimators": n_estimators}
    validation: dict[str, Any] = {}
    n_whole = len(data.models)
    if n_whole >= 4:
        train, test = split_by_model(data, test_size, seed)
        est = fit_layerwise(make_estimator(name, **kw), train, overhead=overhead)
        tmp = table_from_fit(est, train)
        try:
            frame = predict_models_table(tmp, test).dropna(subset=["measured"])
            validation["model"] = metrics.report(frame["measured"], frame["predicted"])
        except InputError as exc:  # e.g. a LUT without fallback meeting unseen layers
            validation["model_error"] = exc.message
        try:
            validation["layer"] = layer_report(tmp, test)
        except InputError as exc:
            validation["layer_error"] = exc.message
        validation["split"] = {
            "by": "model_id",
            "test_size": test_size,
            "seed": seed,
            "n_train_models": len(train.model_ids),
            "n_test_models": len(test.model_ids),
        }
        if not refit:
            return table_from_fit(est, train, validation), validation
    est = fit_layerwise(make_estimator(name, **kw), data, overhead=overhead)
    return table_from_fit(est, data, validation), validation


def evaluate(
    table: CostTable, data: TrainingData, include_fitted: bool = False
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score a table on architectures it was not fitted on (all of ``data`` with ``include_fitted``)."""
    seen = set(table.meta.get("fit_model_ids") or [])
    if not include_fitted:
        data = data.subset([m for m in data.model_ids if m not in seen])
    if not data.model_ids:
        raise InputError(
            "no architectures left to evaluate: every measured model was used to fit this table",
            hint="profile more architectures, or pass --include-fitted (scores are then optimistic)",
        )
    frame = predict_models_table(table, data).dropna(subset=["measured"])
    report: dict[str, Any] = {"n_models": int(len(frame)), "held_out": not include_fitted}
    if len(frame):
        report["model"] = metrics.report(frame["measured"], frame["predicted"])
        inside = (frame["measured"] >= frame["lo"]) & (frame["measured"] <= frame["hi"])
        report["model"]["interval_coverage"] = float(inside.mean())
    report["layer"] = layer_report(table, data)
    return report, frame


def plot_predicted_vs_measured(
    frame: pd.DataFrame, path: str | Path, title: str = "", unit: str = "ms"
) -> Path:
    """Scatter of predicted vs measured whole-model cost with the y = x line and ±10 % bands (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m, p = frame["measured"].to_numpy(float), frame["predicted"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    lo_b, hi_b = float(min(m.min(), p.min())) * 0.95, float(max(m.max(), p.max())) * 1.05
    xs = np.linspace(lo_b, hi_b, 50)
    ax.plot(xs, xs, "k-", lw=1, label="y = x")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.85", label="±10 %")
    if {"lo", "hi"} <= set(frame.columns):
        ax.errorbar(
            m,
            p,
            yerr=[np.maximum(p - frame["lo"], 0), np.maximum(frame["hi"] - p, 0)],
            fmt="none",
            ecolor="tab:blue",
            alpha=0.25,
            lw=0.8,
        )
    ax.scatter(m, p, s=12, color="tab:blue", label="architectures")
    ax.set_xlabel(f"measured ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.set_xlim(lo_b, hi_b)
    ax.set_ylim(lo_b, hi_b)
    ax.set_title(title or "predicted vs measured")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --- tabular (rows = architectures) ----------------------------------------------------------------------


def fit_tabular(
    name: str,
    features: pd.DataFrame,
    y: np.ndarray,
    ids: list[str],
    *,
    test_size: float = 0.2,
    seed: int = 0,
    metric: str = "",
    featurizer: str = "",
    source: str = "",
    n_estimators: int = 300,
) -> tuple[CostTable, dict[str, Any]]:
    """Fit a linear or boosted model on featurised architecture rows; hold out rows (= architectures)."""
    from hwnas.cost_models.kinds import get_kind, kind_names

    if not get_kind(name).tabular:
        ok = [k for k in kind_names() if get_kind(k).tabular]
        raise InputError(f"model {name!r} does not fit tabular rows", hint=f"use {', '.join(ok)}")
    if len(y) < 4:
        raise InputError(f"need >= 4 rows to fit and validate, got {len(y)}")

    def make() -> Any:
        return make_estimator(name, seed=seed, n_estimators=n_estimators, tabular=True)

    # Split by architecture id: repeated rows of one architecture all land on the same side.
    rng = np.random.default_rng(seed)
    uniq = list(dict.fromkeys(ids))
    n_test = max(1, int(round(test_size * len(uniq))))
    test_ids = set(rng.permutation(uniq)[:n_test].tolist())
    is_test = np.array([i in test_ids for i in ids])
    test, train = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    est = make().fit(features.iloc[train], y[train])
    pred = est.predict(features.iloc[test])
    validation = {
        "model": metrics.report(y[test], pred),
        "split": {
            "by": "architecture id",
            "test_size": test_size,
            "seed": seed,
            "n_train": int(len(train)),
            "n_test": int(len(test)),
        },
    }
    if hasattr(est, "cv_rmspe_"):
        validation["cv_rmspe_pct"] = est.cv_rmspe_
    final = make().fit(features, y)
    table = build_cost_table(
        final,
        metric=metric,
        input_kind="tabular",
        n_fit={"rows": int(len(y)), "features": list(features.columns)},
        validation=validation,
        fit_model_ids=[str(i) for i in ids],
        extra={"featurizer": featurizer, "source": source},
    )
    return table, validation
