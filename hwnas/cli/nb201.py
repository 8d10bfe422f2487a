"""`hwnas nb201 suggest-samples` and `hwnas nb201 predict-device`: few-shot latency prediction for a new
device on NAS-Bench-201 (library: hwnas.cost_models.fewshot). They work on NAS-Bench-201 only, hence the
group; the old top-level names stay as hidden aliases.

The new-device pipeline: ``hwnas nb201 suggest-samples --k 10 -o S.csv`` → measure those cells on the
device (``arch,latency_ms``) → ``hwnas nb201 predict-device --samples S.csv -o P.csv`` (every cell, with a
jackknife conformal interval) → ``hwnas search --objective nb201 --table P.csv``.
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
    samples: Path = typer.Option(..., "--samples", help="CSV with columns arch,latency_ms (k >= 5 cells)."),
    out_path: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Where to write index,arch,latency_ms,latency_ms_lo,latency_ms_hi,level for every cell.",
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Reference table in the nb201.csv.gz format (default: the shipped table)."
    ),
    method: str = typer.Option(
        "auto", "--method", help="auto (leave-one-out CV on the samples) or a method."
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Reference latency column to leave out (repeatable), e.g. lat_pixel3_ms."
    ),
    level: float = typer.Option(0.9, "--level", help="Nominal coverage of the prediction interval."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Predict a new device's latency for all NAS-Bench-201 cells from k measured cells."""
    from hwnas.cost_models.fewshot import METHODS, FewShotLatencyPredictor, load_samples
    from hwnas.io import atomic_output, check_outputs

    check_outputs({"--out": out_path}, {"--samples": samples, "--reference": reference})
    s = load_samples(samples)
    if len(s) > MAX_FEWSHOT_SAMPLES:
        raise InputError(
            f"--samples {samples}: {len(s)} measured cells; few-shot prediction (leave-one-out CV over "
            f"every method) is meant for a few, at most {MAX_FEWSHOT_SAMPLES}",
            hint="with this many cells measured, fit a model directly: `hwnas fit --data FILE --target "
            "latency_ms --features nb201-edgeop`, or pass a subset",
        )
    est = FewShotLatencyPredictor(
        reference=reference, exclude_columns=tuple(exclude), method=method, level=level
    )
    est.fit(s[["arch"]], s["latency_ms"].to_numpy())
    pred = est.predict_all()
    with atomic_output(out_path) as tmp:
        pred.to_csv(tmp, index=False)
    result = {
        "method": est.method_,
        "samples": est.n_samples_,
        "reference_columns": est.reference_columns_,
        "cv": est.cv_,
        "cv_all_methods": est.cv_scores_,
        "interval": {
            "kind": "jackknife conformal",
            "level": est.level_,
            "factor": float(np.exp(est.band_log_)),
        },
        "out": str(out_path),
        "cells": len(pred),
    }
    if as_json:
        print_json(result)
        return
    out.print(
        f"method: {est.method_} (chosen by leave-one-out CV on {est.n_samples_} samples)"
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
        f"interval: x/÷ {f:.3f} around each prediction, nominal level {est.level_:.2f} (jackknife conformal)"
    )
    out.print(f"wrote {len(pred)} predictions to {out_path}; search with them: "
              f"hwnas search --objective nb201 --device <device> --table {out_path}")  # fmt: skip
    err.print(f"reference devices: {', '.join(est.reference_columns_)}; methods: {', '.join(METHODS)}")


def suggest(
    k: int = typer.Option(10, "--k", min=1, max=MAX_SUGGEST, help="How many cells to measure."),
    reference: Path | None = typer.Option(None, "--reference", help="Reference table (default: shipped)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the k-means design."),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Reference latency column to leave out (repeatable), e.g. lat_pixel3_ms."
    ),
    out_path: Path | None = typer.Option(
        None, "--out", "-o", help="Also write the cells as CSV (index,arch)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which NAS-Bench-201 cells to measure first on a new device (a designed set, fastest first)."""
    from hwnas.cost_models.fewshot import suggest_samples
    from hwnas.io import atomic_output, check_outputs

    check_outputs({"--out": out_path}, {"--reference": reference})
    df = suggest_samples(k=k, reference=reference, seed=seed, exclude_columns=tuple(exclude))
    if out_path is not None:
        with atomic_output(out_path) as tmp:
            df.to_csv(tmp, index=False)
    if as_json:
        print_json(df.to_dict(orient="records"))
        return
    rows = [[int(r["index"]), r["arch"], int(r["mean_reference_rank"])] for _, r in df.iterrows()]
    out.print(table(f"{k} cells to measure first", ["index", "arch", "mean reference rank"], rows))
    out.print(
        "measure each (e.g. `hwnas profile nb201:<arch>`), write arch,latency_ms to a CSV, then run "
        "`hwnas nb201 predict-device --samples S.csv --out P.csv`"
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
