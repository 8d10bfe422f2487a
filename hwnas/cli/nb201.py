"""`hwnas nb201 suggest-samples` and `hwnas nb201 predict-device`: few-shot latency prediction for a new
device on NAS-Bench-201 (library: hwnas.cost_models.fewshot). They work on NAS-Bench-201 only, hence the
group; the old top-level names stay as hidden aliases.

The new-device pipeline: ``hwnas nb201 suggest-samples --k 10 -o S.csv`` → measure those cells on the
device (``arch,latency_ms``; ``suggest-samples --given S.csv --k 5`` asks for the next most informative
ones) → ``hwnas nb201 predict-device --samples S.csv -o P.csv`` (every cell, with a calibrated jackknife
conformal interval ``lower_ms``/``upper_ms``; ``--metric energy_mj`` for any other cost) →
``hwnas search --objective nb201 --table P.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from hwnas.cli._common import JSON_OPTION, err, out, print_json, table
from hwnas.errors import InputError

# Few-shot leave-one-out CV grows faster than linearly (200 samples: ~16 s CPU on the 2-core VM);
# thousands of samples ran for many minutes with no progress. k-means over >1000 centres is no "first few".
MAX_FEWSHOT_SAMPLES = 500
MAX_SUGGEST = 1000


def predict_device(
    samples: Path = typer.Option(
        ..., "--samples", help="CSV with columns arch,<metric> (default arch,latency_ms; k >= 5 cells)."
    ),
    out_path: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Where to write index,arch,latency_ms,lower_ms,upper_ms,level for every cell "
        "(for --metric energy_mj: energy_mj,lower_mj,upper_mj).",
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Reference table in the nb201.csv.gz format (default: the shipped table)."
    ),
    method: str = typer.Option(
        "auto",
        "--method",
        help="auto (the shipped nested selection; leave-one-out CV on the samples when it is a pool) or a "
        "method: ridge, nn-ridge, nn-ridge-aug (@alpha), nearest-<m>, ensemble, ensemble=a+b.",
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Reference column to leave out (repeatable), e.g. lat_pixel3_ms."
    ),
    reference_columns: list[str] = typer.Option(
        [], "--reference-column", help="Use these reference columns (repeatable; default: every lat_*_ms)."
    ),
    metric: str = typer.Option(
        "latency_ms",
        "--metric",
        help="The samples' cost column to predict (latency_ms, energy_mj, power_w, peak_memory_bytes ...).",
    ),
    level: float = typer.Option(0.9, "--level", help="Nominal coverage of the prediction interval."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Predict a new device's latency (or any --metric) for all NAS-Bench-201 cells from k measured cells."""
    from hwnas.cost_models.fewshot import FewShotLatencyPredictor, interval_columns, load_samples
    from hwnas.io import atomic_output, check_outputs

    check_outputs({"--out": out_path}, {"--samples": samples, "--reference": reference})
    s = load_samples(samples, metric=metric)
    if len(s) > MAX_FEWSHOT_SAMPLES:
        raise InputError(
            f"--samples {samples}: {len(s)} measured cells; few-shot prediction (leave-one-out CV over "
            f"every method) is meant for a few, at most {MAX_FEWSHOT_SAMPLES}",
            hint="with this many cells measured, fit a model directly: `hwnas fit --data FILE --target "
            "latency_ms --features nb201-edgeop`, or pass a subset",
        )
    est = FewShotLatencyPredictor(
        reference=reference,
        reference_columns=list(reference_columns) or None,
        exclude_columns=tuple(exclude),
        method=method,
        level=level,
        metric=metric,
    )
    est.fit(s[["arch"]], s[metric].to_numpy())
    pred = est.predict_all()
    with atomic_output(out_path) as tmp:
        pred.to_csv(tmp, index=False)
    lower, upper = interval_columns(metric)
    result = {
        "metric": metric,
        "method": est.method_,
        "samples": est.n_samples_,
        "reference_columns": est.reference_columns_,
        "cv": est.cv_,
        "cv_all_methods": est.cv_scores_,
        "interval": {
            "kind": "jackknife conformal, calibrated across devices (nested)",
            "level": est.level_,
            "calibration": est.calibration_,
            "factor": float(np.exp(est.band_log_)),
            "columns": [lower, upper],
        },
        "out": str(out_path),
        "cells": len(pred),
    }
    if as_json:
        print_json(result)
        return
    out.print(
        f"method: {est.method_} (the shipped nested selection"
        + (f", chosen by leave-one-out CV on {est.n_samples_} samples)" if len(est.cv_scores_) > 1 else ")")
        if method == "auto"
        else f"method: {est.method_} (as asked)"
    )
    out.print(
        f"cross-validated estimate of its accuracy: RMSPE {est.cv_['loo_rmspe_pct']:.1f} %, "
        f"Spearman rho {est.cv_['loo_spearman']:.3f} (leave-one-out on the samples)"
    )
    rows = [
        [m, v["loo_rmspe_pct"], v["loo_spearman"], "<-" if m == est.method_ else ""]
        for m, v in est.cv_scores_.items()
    ]
    out.print(table("leave-one-out CV per method", ["method", "RMSPE %", "Spearman", ""], rows))
    f = float(np.exp(est.band_log_))
    out.print(
        f"interval ({lower}, {upper}): x/÷ {f:.3f} around each prediction, nominal level {est.level_:.2f} "
        f"(jackknife conformal x {est.calibration_:.3f} device-level calibration)"
    )
    out.print(f"wrote {len(pred)} predictions of {metric} to {out_path}; search with them: "
              f"hwnas search --objective nb201 --device <device> --table {out_path}")  # fmt: skip
    err.print(f"reference columns: {', '.join(est.reference_columns_)}")


def suggest(
    k: int = typer.Option(10, "--k", min=1, max=MAX_SUGGEST, help="How many cells to measure (next)."),
    reference: Path | None = typer.Option(None, "--reference", help="Reference table (default: shipped)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the design."),
    design: str | None = typer.Option(
        None, "--design", help="dopt (greedy D-optimal, the shipped default), kcenter or kmeans."
    ),
    given: Path | None = typer.Option(
        None,
        "--given",
        help="CSV of cells measured so far (arch,<metric>): suggest the k most informative NEW cells "
        "given the current fit.",
    ),
    metric: str = typer.Option("latency_ms", "--metric", help="The --given file's cost column."),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Reference latency column to leave out (repeatable), e.g. lat_pixel3_ms."
    ),
    out_path: Path | None = typer.Option(
        None, "--out", "-o", help="Also write the cells as CSV (index,arch,...)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which NAS-Bench-201 cells to measure on a new device: a designed first set, or (--given) the next
    most informative cells after measuring some (fastest first)."""
    from hwnas.cost_models.fewshot import load_samples, suggest_samples
    from hwnas.io import atomic_output, check_outputs

    check_outputs({"--out": out_path}, {"--reference": reference, "--given": given})
    measured = load_samples(given, metric=metric) if given is not None else None
    if measured is not None and len(measured) > MAX_FEWSHOT_SAMPLES:
        raise InputError(f"--given {given}: {len(measured)} cells; at most {MAX_FEWSHOT_SAMPLES}")
    df = suggest_samples(
        k=k, reference=reference, seed=seed, exclude_columns=tuple(exclude), design=design,
        given=measured, metric=metric,
    )  # fmt: skip
    if out_path is not None:
        with atomic_output(out_path) as tmp:
            df.to_csv(tmp, index=False)
    if as_json:
        print_json(df.to_dict(orient="records"))
        return
    what = f"{k} more cells to measure, given {len(measured)} measured" if measured is not None else (
        f"{k} cells to measure first")  # fmt: skip
    cols = ["index", "arch", "mean reference rank"] + (["committee spread"] if measured is not None else [])
    rows = [
        [int(r["index"]), r["arch"], int(r["mean_reference_rank"])]
        + ([float(r["committee_spread"])] if measured is not None else [])
        for _, r in df.iterrows()
    ]
    out.print(table(what, cols, rows))
    out.print(
        f"measure each (e.g. `hwnas profile nb201:<arch>`), write arch,{metric} to a CSV, then run "
        "`hwnas nb201 predict-device --samples S.csv --out P.csv` (or `suggest-samples --given S.csv` for "
        "more)"
    )


nb201_app = typer.Typer(
    name="nb201", help="Commands that work on NAS-Bench-201 only (few-shot prediction for a new device).",
    no_args_is_help=True,
)  # fmt: skip
nb201_app.command("suggest-samples")(suggest)
nb201_app.command("predict-device")(predict_device)


def register(app: typer.Typer) -> None:
    app.add_typer(nb201_app)
    # the old top-level names, kept as aliases (hidden from --help)
    app.command("predict-device", hidden=True)(predict_device)
    app.command("suggest-samples", hidden=True)(suggest)
