"""`hwnas fit`, `hwnas evaluate`, `hwnas predict`: options in, one call to
:mod:`hwnas.workflows.cost_models`, results out.

Two data sources: the store (per-layer and whole-model measurements of one device set-up) or a tabular
file (``--data T.csv --target COLUMN --features NAME``; rows are architectures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import (
    JSON_OPTION,
    STORE_OPTION,
    as_file,
    check_range,
    err,
    out,
    print_json,
    store_file,
    table,
)
from hwnas.errors import CheckFailedError

_METRIC_ROWS = (
    ("rmspe_pct", "RMSPE %"),
    ("mape_pct", "MAPE %"),
    ("within_5pct", "within ±5 %"),
    ("within_10pct", "within ±10 %"),
    ("kendall_tau_b", "Kendall τ"),
    ("spearman_rho", "Spearman ρ"),
    ("interval_coverage", "band coverage"),
    ("n", "n"),
)


def _metrics_table(title: str, sections: dict[str, dict[str, Any]]) -> Any:
    names = [k for k, v in sections.items() if isinstance(v, dict)]
    rows = []
    for key, label in _METRIC_ROWS:
        if any(key in sections[n] for n in names):
            rows.append([label, *[sections[n].get(key, float("nan")) for n in names]])
    return table(title, ["metric", *names], rows)


FLAGGED_OPTION = typer.Option(
    False,
    "--include-flagged",
    help="Also use records that measurement QA flagged (taken under load, drifting, too wide a spread).",
)

WHERE_OPTION = typer.Option(
    "auto",
    "--where",
    help="With --data: rows to use: column OP value joined by and/or/not, parentheses (e.g. "
    "'connected == 1 and flops < 100'; never run as Python); 'auto' drops "
    "NAS-Bench-201's degenerate cells (connected == 0) when the table has that column; 'all' keeps all.",
)


TABLE_OPTION = typer.Option(..., "--table", "-t", help="Cost table file.")


def fit(
    out_path: Path = typer.Option(..., "--out", "-o", help="Cost table to write (.json, .csv or .parquet)."),
    kind: str = typer.Option(
        "boosted",
        "--kind",
        "-k",
        help="Cost-model kind (registered): lut, boosted, xgboost, linear, flops, roofline.",
    ),
    fallback: str | None = typer.Option(
        None, "--fallback", help="For --kind lut: model for keys not in the table (e.g. boosted)."
    ),
    device: str | None = typer.Option(
        None, "--device", "-d", help="Device name in the store (and config for roofline)."
    ),
    metric: str = typer.Option("latency_ms", "--metric", help="Whole-model metric to predict."),
    layer_metric: str | None = typer.Option(
        None, "--layer-metric", help="Layer metric to fit on (default: --metric; e.g. in_model_latency_ms)."
    ),
    mode: str = typer.Option("inference", "--mode", help="inference or train_step."),
    fingerprint: str | None = typer.Option(None, "--fingerprint", help="Device set-up id, if several match."),
    overhead: str = typer.Option(
        "affine",
        "--overhead",
        help="Model = Σ layers, then: affine (a + b·Σ), per-op (a + Σ_k b_k·Σ_k) or none.",
    ),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of architectures held out for validation."),
    refit: bool = typer.Option(True, "--refit/--no-refit", help="Refit on all data after validating."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and of the estimator."),
    n_estimators: int = typer.Option(300, "--n-estimators", min=1, max=100_000, help="Boosting rounds."),
    data: Path | None = typer.Option(
        None, "--data", help="Tabular file (CSV/Parquet), rows = architectures."
    ),
    target: str | None = typer.Option(None, "--target", help="With --data: the column to predict."),
    features: str = typer.Option("numeric", "--features", help="With --data: featurizer name."),
    where: str = WHERE_OPTION,
    include_flagged: bool = FLAGGED_OPTION,
    max_rmspe: float | None = typer.Option(None, "--max-rmspe", help="Exit 1 if held-out RMSPE % is above."),
    min_within10: float | None = typer.Option(
        None, "--min-within10", help="Exit 1 if the held-out share within ±10 % is below."
    ),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Fit a cost model, validate it on held-out architectures, and write the cost table."""
    from hwnas.cost_models.export import save_cost_table
    from hwnas.io import atomic_output, check_outputs
    from hwnas.workflows.cost_models import DataSpec, FitSpec, check_bounds, fit_cost_table

    check_range("--holdout", holdout, 0, 1, lo_open=True, hi_open=True)
    check_range("--max-rmspe", max_rmspe, 0)
    check_range("--min-within10", min_within10, 0, 1)
    check_outputs({"--out": out_path}, {"--data": data, "--store": store_file(store_path),
                                        "--device": as_file(device)})  # fmt: skip
    spec = DataSpec(
        store_path,
        device,
        metric,
        layer_metric,
        mode,
        fingerprint,
        include_flagged,
        data,
        target,
        features,
        where,
    )
    tbl, validation = fit_cost_table(
        FitSpec(kind, fallback, overhead, holdout, refit, seed, n_estimators),
        spec,
        on_start=None if json_out else (lambda text: err.status(text, spinner="dots")),
    )
    with atomic_output(out_path) as tmp:
        save_cost_table(tbl, tmp)
    failed = check_bounds(validation.get("model"), max_rmspe, min_within10)
    summary = {
        "table": str(out_path),
        "estimator": tbl.meta["estimator"],
        "n_fit": tbl.meta["n_fit"],
        "validation": validation,
        "overhead": tbl.meta.get("overhead"),
        "interval_kind": tbl.meta.get("interval_kind"),
        "checks_failed": failed,
    }
    if json_out:
        print_json(summary)
    else:
        _print_fit(tbl, validation, kind, out_path)
    if failed:
        raise CheckFailedError("; ".join(failed), hint="profile more architectures or try another --kind")


def _print_fit(tbl: Any, validation: dict[str, Any], kind: str, path: Path) -> None:
    sections = {k: v for k, v in validation.items() if k in ("model", "layer")}
    if sections:
        out.print(_metrics_table(f"{kind}: held-out architectures ({validation['split']})", sections))
    for k in ("model_error", "layer_error"):
        if k in validation:
            out.print(f"{k.replace('_', ' ')}: {validation[k]}", highlight=False)
    oh = tbl.meta.get("overhead")
    if oh and "slopes" in oh:
        from hwnas.cost_models.features import OP_KINDS

        terms = " + ".join(f"{b:.3g}·Σ {OP_KINDS[int(float(k))]}" for k, b in sorted(oh["slopes"].items()))
        out.print(f"overhead: model = {oh['intercept']:.4g} + {terms}", highlight=False)
    elif oh:
        out.print(f"overhead: model = {oh['intercept']:.4g} + {oh['slope']:.4g} · Σ layers", highlight=False)
    out.print(f"wrote {path} ({tbl.meta['estimator']}, {len(tbl.rows)} layer rows)", highlight=False)


def evaluate(
    table_path: Path = TABLE_OPTION,
    device: str | None = typer.Option(None, "--device", "-d", help="Device name in the store."),
    metric: str | None = typer.Option(None, "--metric", help="Default: the table's metric."),
    mode: str | None = typer.Option(None, "--mode", help="Default: the table's mode."),
    fingerprint: str | None = typer.Option(None, "--fingerprint", help="Device set-up id, if several match."),
    include_fitted: bool = typer.Option(
        False, "--include-fitted", help="Also score architectures the table was fitted on (optimistic)."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write a predicted-vs-measured PNG here."),
    data: Path | None = typer.Option(None, "--data", help="Tabular file to score a tabular table on."),
    target: str | None = typer.Option(None, "--target", help="With --data: the measured column."),
    where: str = WHERE_OPTION,
    include_flagged: bool = FLAGGED_OPTION,
    max_rmspe: float | None = typer.Option(None, "--max-rmspe", help="Exit 1 if RMSPE % is above."),
    min_within10: float | None = typer.Option(
        None, "--min-within10", help="Exit 1 if within ±10 % is below."
    ),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Score a cost table on architectures it never saw: RMSPE, MAPE, ±5/±10 %, Kendall τ, Spearman ρ."""
    from hwnas.cost_models import fitting
    from hwnas.cost_models.export import load_cost_table
    from hwnas.io import atomic_output, check_outputs
    from hwnas.workflows.cost_models import DataSpec, check_bounds, evaluate_cost_table

    check_range("--max-rmspe", max_rmspe, 0)
    check_range("--min-within10", min_within10, 0, 1)
    check_outputs({"--plot": plot}, {"--table": table_path, "--data": data,
                                     "--store": store_file(store_path)})  # fmt: skip
    tbl = load_cost_table(table_path)
    spec = DataSpec(
        store_path, device, metric, None, mode, fingerprint, include_flagged, data, target, where=where
    )
    report, frame, warnings = evaluate_cost_table(tbl, spec, include_fitted=include_fitted)
    for w in warnings:
        err.print(f"warning: {w}", highlight=False)
    if plot is not None and len(frame):
        held = "held-out " if report["held_out"] else ""
        title = f"{tbl.kind} cost table: {report['n_models']} {held}archs"
        with atomic_output(plot) as tmp:
            fitting.plot_predicted_vs_measured(frame, tmp, title, tbl.meta.get("unit") or "")
        report["plot"] = str(plot)
    failed = check_bounds(report.get("model"), max_rmspe, min_within10)
    report["checks_failed"] = failed
    if json_out:
        print_json({**report, "predictions": frame.to_dict(orient="records")})
    else:
        sections = {k: report[k] for k in ("model", "layer") if k in report}
        held = "held out" if report["held_out"] else "including fitted"
        out.print(
            _metrics_table(f"{table_path.name} on {report['n_models']} architectures ({held})", sections)
        )
        if plot is not None:
            out.print(f"plot: {plot}", highlight=False)
    if failed:
        raise CheckFailedError("; ".join(failed))


def predict(
    table_path: Path = TABLE_OPTION,
    model: list[str] = typer.Option(
        [], "--model", "-m", help="torchvision name, file.onnx, mbv2:<arch> or nb201:<arch> (repeat)."
    ),
    input_shape: str | None = typer.Option(None, "--input-shape", help="Input shape, e.g. 1,3,128,128."),
    batch_size: int = typer.Option(1, "--batch-size", "-b", min=1, max=65536, help="Batch size."),
    budget: float | None = typer.Option(None, "--budget", help="Also report P(cost <= budget)."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Show each layer's prediction."),
    data: Path | None = typer.Option(None, "--data", help="Tabular table: featurise and predict these rows."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Predict a model's cost from a cost table or a kernel predictor alone (no store, no device)."""
    from hwnas.cost_models.export import load_cost_table
    from hwnas.cost_models.kernel_predictor import is_kernel_predictor_file
    from hwnas.errors import InputError
    from hwnas.workflows.cost_models import predict_models, predict_rows

    check_range("--budget", budget, 0, lo_open=True)
    if not table_path.exists():
        raise InputError(f"{table_path}: cost table not found", hint="check the --table path")
    if is_kernel_predictor_file(table_path):
        _predict_kernel(table_path, model, input_shape, batch_size, budget, per_layer, json_out)
        return
    tbl = load_cost_table(table_path)
    if tbl.meta.get("input") == "tabular":
        if data is None:
            raise InputError("a tabular cost table predicts rows of a file", hint="pass --data FILE")
        pred = predict_rows(tbl, data)
        if json_out:
            print_json({"rows": pred.to_dict(orient="records")})
        else:
            rows = [[i, *r] for i, r in enumerate(pred.values.tolist())]
            out.print(
                table(f"{tbl.metric} predicted by {table_path.name}", ["row", "value", "lo", "hi"], rows)
            )
        return
    results = predict_models(
        tbl, model, input_shape=input_shape, batch_size=batch_size, budget=budget, per_layer=per_layer
    )
    if json_out:
        print_json({"table": str(table_path), "metric": tbl.metric, "predictions": results})
        return
    unit = tbl.meta.get("unit", "")
    cols = ["model", f"{tbl.metric}", "low", "high", "from table"] + (["P(≤ budget)"] if budget else [])
    rows = [
        [
            r["model"],
            r["value"],
            r["lo"],
            r["hi"],
            f"{r['n_from_table']}/{r['n_layers']}",
            *([r["prob_within_budget"]] if budget else []),
        ]
        for r in results
    ]
    band = tbl.meta.get("interval_kind")
    out.print(table(f"predicted by {table_path.name} ({tbl.kind}, {unit}, band: {band})", cols, rows))
    for r in results:
        if "layers" in r:
            out.print(
                table(
                    f"{r['model']}: layers",
                    ["name", "value", "lo", "hi", "source"],
                    [[x["name"], x["value"], x["lo"], x["hi"], x["source"]] for x in r["layers"]],
                )
            )


def _predict_kernel(path: Path, models: list[str], input_shape: str | None, batch_size: int,
                    budget: float | None, per_layer: bool, json_out: bool) -> None:  # fmt: skip
    """`hwnas predict` with a kernel predictor: one row per model, then every out-of-range unit named."""
    from hwnas.cost_models.kernel_predictor import load_kernel_predictor
    from hwnas.workflows.cost_models import predict_models_kernel

    kp = load_kernel_predictor(path)
    results = predict_models_kernel(kp, models, input_shape=input_shape, batch_size=batch_size, budget=budget,
                                    per_layer=per_layer)  # fmt: skip
    if json_out:
        print_json({"table": str(path), "metric": "latency_ms", "kind": "kernel-predictor",
                    "level": kp.level, "predictions": results})  # fmt: skip
        return
    cols = ["model", "latency_ms", "low", "high", "units", "out of range"]
    cols += ["P(≤ budget)"] if budget else []
    rows = [[r["model"], r["value"], r["lo"], r["hi"], r["n_units"], r["n_ood"],
             *([r["prob_within_budget"]] if budget else [])] for r in results]  # fmt: skip
    level = f"{100 * kp.level:.0f} %"
    out.print(table(f"predicted by {path.name} (kernel predictor, ms, {level} interval)", cols, rows))
    for r in results:
        if r["ood_units"]:
            out.print(f"{r['model']}: {r['n_ood']} unit(s) outside the sampled kernels, priced with a wide "
                      "interval:", highlight=False)  # fmt: skip
            for u in r["ood_units"]:
                why = "; ".join(u["reasons"])
                out.print(f"  {u['name']} ({u['kind']}, {u['op']}): {u['value']:.4g} ms "
                          f"[{u['lo']:.4g}, {u['hi']:.4g}]: {why}", highlight=False)  # fmt: skip
        if "units" in r:
            out.print(table(f"{r['model']}: units", ["name", "kind", "value", "lo", "hi", "out of range"],
                            [[u["name"], u["kind"], u["value"], u["lo"], u["hi"], "; ".join(u["reasons"])]
                             for u in r["units"]]))  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
