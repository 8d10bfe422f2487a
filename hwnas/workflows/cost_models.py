"""What ``hwnas fit``, ``hwnas evaluate`` and ``hwnas predict`` run: measurements to cost tables, scored,
used. Two data sources: the store (per-layer and whole-model measurements of one device set-up) or a
tabular file (rows are architectures, featurised by a registered featurizer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import InputError


@dataclass
class DataSpec:
    """Which measurements: a store set-up (device, metric, mode, fingerprint) or a tabular file."""

    store_path: Path | None = None
    device: str | None = None
    metric: str | None = "latency_ms"  # evaluate: None = the table's
    layer_metric: str | None = None
    mode: str | None = "inference"  # evaluate: None = the table's
    fingerprint: str | None = None
    include_flagged: bool = False
    data: Path | None = None
    target: str | None = None
    features: str = "numeric"
    where: str = "auto"


@dataclass
class FitSpec:
    kind: str = "boosted"
    fallback: str | None = None
    overhead: str = "affine"
    holdout: float = 0.2
    refit: bool = True
    seed: int = 0
    n_estimators: int = 300


def load_store_training_data(spec: DataSpec) -> Any:
    """The store's layer and model rows of one device set-up (opened read-only)."""
    from hwnas.cost_models.data import load_store_data
    from hwnas.store import SQLiteStore

    with SQLiteStore(spec.store_path, read_only=True) as store:
        return load_store_data(
            store,
            device=spec.device,
            metric=spec.metric,
            mode=spec.mode,
            fingerprint_id=spec.fingerprint,
            layer_metric=spec.layer_metric,
            include_flagged=spec.include_flagged,
        )


def fit_cost_table(
    fit: FitSpec, data: DataSpec, on_start: Callable[[str], Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Fit, validate on held-out architectures, refit: ``(CostTable, validation)``. ``on_start(text)``
    may return a context manager shown while fitting (a spinner)."""
    import contextlib

    from hwnas.cost_models import fitting

    if data.data is not None:
        from hwnas.cost_models.data import load_tabular

        if data.target is None:
            raise InputError("--data needs --target COLUMN", hint="e.g. --target latency_ms")
        feats, y, ids = load_tabular(data.data, data.target, data.features, where=data.where)
        return fitting.fit_tabular(
            fit.kind,
            feats,
            y,
            ids,
            test_size=fit.holdout,
            seed=fit.seed,
            metric=data.target,
            featurizer=data.features,
            source=str(data.data),
            n_estimators=fit.n_estimators,
        )
    config = None
    if fit.kind == "roofline":
        from hwnas.device_config import load_device

        if data.device is None:
            raise InputError("--kind roofline needs --device", hint="e.g. --device local-cpu")
        config = load_device(data.device)
    train = load_store_training_data(data)
    status = (
        on_start(f"fitting {fit.kind} on {train.summary()['layer_rows']} layer rows") if on_start else None
    )
    with status or contextlib.nullcontext():
        return fitting.fit_with_validation(
            fit.kind,
            train,
            test_size=fit.holdout,
            seed=fit.seed,
            fallback=fit.fallback,
            device_config=config,
            refit=fit.refit,
            n_estimators=fit.n_estimators,
            overhead=fit.overhead,
        )


def check_bounds(
    report: dict[str, Any] | None, max_rmspe: float | None, min_within10: float | None
) -> list[str]:
    """The requested accuracy checks that failed (empty: all passed or none asked)."""
    if max_rmspe is None and min_within10 is None:
        return []
    if report is None:
        return ["no model-level scores (no held-out architectures measured whole)"]
    failed = []
    if max_rmspe is not None and report.get("rmspe_pct", float("inf")) > max_rmspe:
        failed.append(f"RMSPE {report['rmspe_pct']:.2f} % > {max_rmspe} %")
    if min_within10 is not None and report.get("within_10pct", 0.0) < min_within10:
        failed.append(f"share within ±10 % {report['within_10pct']:.3f} < {min_within10}")
    return failed


def evaluate_cost_table(
    table: Any, data: DataSpec, include_fitted: bool = False
) -> tuple[dict[str, Any], Any, list[str]]:
    """Score a table on architectures it was not fitted on: ``(report, per-architecture frame,
    warnings)``. A tabular table is scored on ``data.data``/``data.target``; a layer table on the store."""
    import pandas as pd

    from hwnas.cost_models import fitting, metrics

    warnings: list[str] = []
    if table.meta.get("input") != "tabular":
        spec = DataSpec(**{**data.__dict__})
        spec.metric = data.metric or table.metric
        spec.layer_metric = table.meta.get("layer_metric")
        spec.mode = data.mode or table.meta.get("mode", "inference")
        store_data = load_store_training_data(spec)
        table.check_fingerprint(store_data.fingerprint.get("id"))
        report, frame = fitting.evaluate(table, store_data, include_fitted=include_fitted)
        return report, frame, warnings
    if data.data is None or data.target is None:
        raise InputError("a tabular cost table is scored on a file", hint="pass --data FILE --target COLUMN")
    from hwnas.cost_models.data import load_tabular

    feats, y, ids = load_tabular(
        data.data, data.target, table.meta.get("featurizer") or "numeric", where=data.where
    )
    if table.metric and data.target != table.metric:
        warnings.append(
            f"the table predicts {table.metric!r}; scoring it against column {data.target!r} "
            "(another device or metric: the scores measure transfer, not fit)"
        )
    seen = set(table.meta.get("fit_model_ids") or [])
    keep = [i for i, m in enumerate(ids) if include_fitted or m not in seen]
    if not keep:
        raise InputError(
            "every row of --data was used to fit this table", hint="pass other rows, or --include-fitted"
        )
    pred = table.predict_rows(feats.iloc[keep])
    frame = pd.DataFrame(
        {
            "model_id": [ids[i] for i in keep],
            "measured": y[keep],
            "predicted": pred["value"],
            "lo": pred["lo"],
            "hi": pred["hi"],
        }
    )
    report = {
        "n_models": len(keep),
        "held_out": not include_fitted,
        "model": metrics.report(frame["measured"], frame["predicted"]),
    }
    return report, frame, warnings


def predict_rows(table: Any, data: Path) -> Any:
    """A tabular table's predictions (``value, lo, hi``) for the rows of a file."""
    import pandas as pd

    from hwnas.cost_models.features import apply_featurizer

    if not Path(data).exists():
        raise InputError(f"{data}: file not found")
    try:
        df = pd.read_parquet(data) if Path(data).suffix == ".parquet" else pd.read_csv(data)
    except Exception as exc:  # pandas raises many types for a bad file
        raise InputError(f"{data}: not a readable table: {exc}") from exc
    return table.predict_rows(apply_featurizer(table.meta.get("featurizer") or "numeric", df))


def _resolve_models(models: list[str], input_shape: str | None, batch_size: int) -> Iterator[tuple[str, Any]]:
    """``(name, ResolvedModel)`` for each model to predict, one at a time, after the checks every predictor
    shares."""
    from hwnas.graph.models import parse_input_shape, resolve_model
    from hwnas.resources import check_input_memory, requested_shape

    if not models:
        raise InputError("nothing to predict", hint="pass --model NAME (repeatable)")
    shape = parse_input_shape(input_shape)
    check_input_memory(requested_shape(shape, batch_size), "the input")
    for text in models:
        yield text, resolve_model(text, shape, batch_size=batch_size)


def predict_models(
    table: Any,
    models: list[str],
    *,
    input_shape: str | None = None,
    batch_size: int = 1,
    budget: float | None = None,
    per_layer: bool = False,
) -> list[dict[str, Any]]:
    """Whole-model predictions of a layer table for named models (torchvision, ONNX, ``mbv2:``/``nb201:``):
    value, band, layers from the table, P(cost <= budget); per layer with ``per_layer``."""
    results = []
    for text, resolved in _resolve_models(models, input_shape, batch_size):
        res = {"model": text, "model_id": resolved.model_id, **table.predict_model(resolved.spec, budget)}
        if per_layer:
            per = table.predict_layers(resolved.spec)
            per.insert(0, "name", [la.name for la in resolved.spec.layers])
            res["layers"] = per.to_dict(orient="records")
        results.append(res)
    return results


def predict_models_kernel(
    predictor: Any,
    models: list[str],
    *,
    input_shape: str | None = None,
    batch_size: int = 1,
    budget: float | None = None,
    per_layer: bool = False,
) -> list[dict[str, Any]]:
    """Whole-model predictions of a kernel predictor (``hwnas build-predictor`` output) for named models:
    value, interval, units, the out-of-range units named; per unit with ``per_layer``."""
    import numpy as np

    from hwnas.cost_models.base import prob_below

    results = []
    for text, resolved in _resolve_models(models, input_shape, batch_size):
        res = {"model": text, "model_id": resolved.model_id, **predictor.predict_model(resolved.spec.layers)}
        if budget is not None:
            p = prob_below(np.array([res["value"]]), np.array([res["lo"]]), np.array([res["hi"]]), budget,
                           coverage=res["level"])  # fmt: skip
            res["budget"], res["prob_within_budget"] = float(budget), float(p[0])
        if per_layer:
            per = predictor.price_units(resolved.spec.layers)
            res["units"] = [{**r, "reasons": list(r["reasons"])} for r in per.to_dict(orient="records")]
        results.append(res)
    return results
