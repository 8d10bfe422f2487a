"""Kernel predictor vs FLOPs-proportional vs a one-space LUT on torchvision CNNs never profiled (issue 26).

Side by side in one run, on this machine's CPU (onnxruntime, 1 thread, 224 px, batch 1, the ``--clock``,
default ``cpu`` because the machine is shared):

1. the kernel dataset: the store ``hwnas build-predictor`` filled (``--store``), its sample count and
   profiling time; the predictor it wrote (``--predictor``, with its fitted overhead on calibration
   networks of the MobileNetV2 / NAS-Bench-201 spaces), or one fitted here from the store;
2. whole-model latency of each benchmark CNN, measured here with the device config's repeat policy;
3. predictions by (a) the kernel predictor (Σ units + overhead, conformal interval, out-of-range units
   counted), (b) a FLOPs-proportional model ``latency = α · FLOPs`` with α fitted on the same kernels (its
   interval from the kernels' log residuals), (c) a per-layer LUT with a boosted fallback fitted on random
   MobileNetV2-space networks at 224 px (the existing ``hwnas fit --kind lut --fallback boosted`` path,
   those networks profiled per layer and whole here, into ``--lut-store``, resumable);
4. per model: measured, each prediction and error, the kernel predictor's interval and whether it covers;
   per predictor: % within ±10 % / ±20 %, max error, interval coverage; and the check that no benchmark unit's
   exact configuration is in the kernel dataset.

    PYTHONPATH=. .venv/bin/python benchmarks/kernel_predictor_cnns.py --store runs/k.db \\
        --predictor runs/p.json --out benchmarks/results/kernel_predictor_cnns.txt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hwnas.spaces  # noqa: F401  (registers mbv2:)
from hwnas.cost_models.kernel_predictor import KernelPredictor, load_kernel_predictor
from hwnas.device_config import load_device
from hwnas.graph import kernels as K
from hwnas.graph.fusion import fuse
from hwnas.graph.models import resolve_model
from hwnas.profilers.registry import get_profiler

MODELS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_b1",
    "mnasnet1_0",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "densenet121",
    "googlenet",
    "vgg11",
]
LEVEL = 0.90


def uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure_whole(
    names: list[str], device: str, clock: str, cache: Path | None, shape: tuple | None = (1, 3, 224, 224)
) -> dict[str, dict]:
    """Whole-model latency (median ms) of each model, the device config's repeat policy and ``clock``."""
    done: dict[str, dict] = json.loads(cache.read_text()) if cache and cache.exists() else {}
    cfg = load_device(device)
    prof = get_profiler(cfg, threads=1, clock=clock)
    with tempfile.TemporaryDirectory() as tmp, prof.runner.session():
        for name in names:
            if name in done:
                continue
            model = resolve_model(name, shape)
            art = prof.builder.model(model, Path(tmp))
            t0 = time.perf_counter()
            raw = prof.runner.time(art, "inference", cfg.repeat)
            done[name] = {
                "ms": float(statistics.median(raw.samples_ms)),
                "n": len(raw.samples_ms),
                "wall_s": time.perf_counter() - t0,
                "load": os.getloadavg()[0],
            }
            log(f"measured {name}: {done[name]['ms']:.2f} ms ({uptime()})")
            if cache:
                cache.write_text(json.dumps(done, indent=1))
    return done


def flops_model(df) -> tuple[float, float]:
    """(α ms per FLOP, log half-width q): latency = α · FLOPs with α = Σ latency / Σ FLOPs over the kernels
    (the dataset's mean throughput), q the conformal quantile of the kernels' |log(latency / α·FLOPs)|."""
    from hwnas.cost_models.kernel_predictor import _conformal_q, feature_frame

    f = feature_frame(df)["flops"].to_numpy(float)
    y = df["latency_ms"].to_numpy(float)
    keep = f > 0
    alpha = float(y[keep].sum() / f[keep].sum())
    return alpha, _conformal_q(np.abs(np.log(y[keep] / (alpha * f[keep]))), LEVEL)


# The LUT's networks are profiled per layer with a shorter repeat policy than the kernels (a 224 px
# MobileNetV2 has ~150 layers: the device default takes 3-4 min per network on this loaded machine).
LUT_POLICY = dict(warmup=3, min_repeats=5, max_repeats=200, target_ci_rel=0.05, max_seconds=0.4)


def lut_table(n_nets: int, store_path: Path, device: str, clock: str, seed: int):
    """A per-layer LUT (+ boosted fallback) on ``n_nets`` random MobileNetV2-space networks at 224 px."""
    from dataclasses import replace

    from hwnas.device_config import RepeatPolicy
    from hwnas.profilers.qa import QAStore
    from hwnas.spaces.mbv2 import MBV2Space
    from hwnas.store import SQLiteStore
    from hwnas.workflows.cost_models import DataSpec, FitSpec, fit_cost_table

    cfg = load_device(device)
    cfg = replace(cfg, repeat=RepeatPolicy(**LUT_POLICY))
    prof = get_profiler(cfg, threads=1, clock=clock)
    rng = np.random.default_rng([seed, 2026])
    space = MBV2Space(resolution=224)
    t0 = time.perf_counter()
    store = SQLiteStore(store_path)
    try:
        qa = QAStore(store, clock=clock, target_ci_rel=cfg.repeat.target_ci_rel)
        for i in range(n_nets):
            model = resolve_model(f"mbv2:{space.sample(rng)}", (1, 3, 224, 224))
            prof.profile(model, qa, per_layer=True, whole_model=True, memory=False)
            log(f"LUT network {i + 1}/{n_nets} profiled ({time.perf_counter() - t0:.0f} s, {uptime()})")
    finally:
        store.close()
    table, validation = fit_cost_table(
        FitSpec("lut", "boosted", n_estimators=200), DataSpec(store_path=store_path, device=cfg.name)
    )
    return table, validation, time.perf_counter() - t0


def kernel_keys(df) -> set[str]:
    return {str(k) for k in df["key"]} if "key" in df.columns else set()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="kernel-dataset store (hwnas build-predictor)")
    ap.add_argument("--predictor", type=Path, default=None, help="its predictor JSON (else fitted here)")
    ap.add_argument("--device", default="local-cpu")
    ap.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--calibration-models", type=int, default=10, help="without --predictor: overhead nets")
    ap.add_argument("--lut-nets", type=int, default=8, help="random MobileNetV2-space nets for the LUT")
    ap.add_argument(
        "--lut-store", type=Path, default=Path(tempfile.gettempdir()) / "hwnas-kernel-bench-lut.db"
    )
    ap.add_argument(
        "--measure-cache",
        type=Path,
        default=None,
        help="reuse whole-model measurements from this JSON (development only; the results say so)",
    )
    ap.add_argument("--out", type=Path, default=None, help="write the report here too (.txt, and .json)")
    args = ap.parse_args()

    from hwnas.profilers.kernel_dataset import load_kernel_dataset
    from hwnas.store import SQLiteStore

    lines: list[str] = []

    def say(s: str = "") -> None:
        lines.append(s)
        print(s, flush=True)

    start_load = uptime()
    store = SQLiteStore(args.store, read_only=True)
    try:
        df_all = load_kernel_dataset(store, device=args.device, include_flagged=True)
        df = df_all[df_all["usable"]].reset_index(drop=True)
    finally:
        store.close()
    if args.predictor is not None:
        kp = load_kernel_predictor(args.predictor)
        meta = getattr(kp, "meta_", {}) or {}
    else:
        from hwnas.workflows.build_predictor import calibration_networks

        kp = KernelPredictor().fit(df)
        meta = {}
        names = calibration_networks(args.calibration_models, 0)
        cal = measure_whole(names, args.device, args.clock, args.measure_cache, shape=None)
        nets = [resolve_model(n, None).spec.layers for n in names]
        kp.fit_overhead(nets, [cal[n]["ms"] for n in names], names)
    keys = kernel_keys(df_all)
    say(f"# Kernel predictor benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    say(
        f"machine: 2-core AMD EPYC VM, 24 GiB, no GPU, shared ({start_load} at start); onnxruntime 1 "
        f"thread, batch 1, 224 px; clock: {args.clock} (process CPU time)"
    )
    wall, cpu = meta.get("profiling_wall_s"), meta.get("profiling_cpu_s")
    took = f"; kernel profiling {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU" if wall and cpu else ""
    say(
        f"kernel dataset: {len(df_all)} kernels profiled ({len(df)} usable after QA, fitted on) of "
        f"{df['kind'].nunique()} kinds{took}; built {meta.get('created_at', '?')} under load "
        f"{meta.get('load_avg', '?')}"
    )
    say("per kind: " + ", ".join(f"{k} {n}" for k, n in df["kind"].value_counts().sort_index().items()))
    oh = kp.overhead_ or {}
    if oh:
        say(
            f"overhead (fitted on {oh.get('n_models')} calibration networks, none a benchmark model): "
            f"model = {oh['scale']:.3f}·Σ units + {oh['per_unit_ms'] * 1e3:.1f} µs·units + "
            f"{oh['constant_ms']:.3f} ms; held-out (leave-one-out) MAPE "
            f"{oh.get('loo_mape_pct', float('nan')):.1f} %"
        )
    alpha, q_flops = flops_model(df)

    log("profiling the LUT's MobileNetV2-space networks ...")
    table, lut_val, lut_s = lut_table(args.lut_nets, args.lut_store, args.device, args.clock, 0)
    say(
        f"LUT: {args.lut_nets} random MobileNetV2-space nets at 224 px profiled per layer and whole in "
        f"{lut_s / 60:.1f} min (this run, resumable store); held-out within ±10 % on that space: "
        f"{100 * (lut_val.get('model') or {}).get('within_10pct', float('nan')):.0f} %"
    )

    log("measuring the benchmark models whole ...")
    measured = measure_whole(args.models, args.device, args.clock, args.measure_cache)
    if args.measure_cache:
        say(f"NOTE: whole-model measurements read from/kept in {args.measure_cache} (development run)")

    rows = []
    for name in args.models:
        model = resolve_model(name, (1, 3, 224, 224))
        layers = model.spec.layers
        units = fuse(layers, kp.fusion)
        cfgs = [K.kernel_of_unit(u) for u in units]
        in_data = sum(1 for c in cfgs if c is not None and c.key() in keys)
        r = kp.predict_model(layers)
        flops = float(sum(la.flops for la in layers))
        f_pred = alpha * flops
        lut = table.predict_model(model.spec)
        y = measured[name]["ms"]
        rows.append(
            {
                "model": name,
                "measured_ms": y,
                "units": len(units),
                "units_in_dataset": in_data,
                "n_ood": r["n_ood"],
                "ood": [u["name"] for u in r["ood_units"]],
                "ood_reasons": sorted(
                    {x.split(" outside")[0].split(" beyond")[0] for u in r["ood_units"] for x in u["reasons"]}
                ),
                "kernel": r["value"],
                "kernel_lo": r["lo"],
                "kernel_hi": r["hi"],
                "unit_sum": r["unit_sum"],
                "flops": f_pred,
                "flops_lo": f_pred * math.exp(-q_flops),
                "flops_hi": f_pred * math.exp(q_flops),
                "lut": lut["value"],
                "lut_lo": lut["lo"],
                "lut_hi": lut["hi"],
                "lut_from_table": f"{lut['n_from_table']}/{lut['n_layers']}",
            }
        )

    say()
    say(
        "| model | measured ms | kernel predictor ms (90 % interval) | err | covers | out-of-range units "
        "| FLOPs-prop. ms | err | LUT ms | err | units in dataset |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e = lambda k, r=r: 100 * (r[k] / r["measured_ms"] - 1)  # noqa: E731
        cov = r["kernel_lo"] <= r["measured_ms"] <= r["kernel_hi"]
        say(
            f"| {r['model']} | {r['measured_ms']:.2f} | {r['kernel']:.2f} ({r['kernel_lo']:.2f}–"
            f"{r['kernel_hi']:.2f}) | {e('kernel'):+.1f} % | {'yes' if cov else 'no'} "
            f"| {r['n_ood']}/{r['units']} "
            f"| {r['flops']:.2f} | {e('flops'):+.1f} % | {r['lut']:.2f} | {e('lut'):+.1f} % "
            f"| {r['units_in_dataset']}/{r['units']} |"
        )
    say()
    summary = {}
    for key, label in (
        ("kernel", "kernel predictor"),
        ("flops", "FLOPs-proportional"),
        ("lut", "one-space LUT"),
    ):
        err = np.array([r[key] / r["measured_ms"] - 1 for r in rows])
        cov = np.array([r[f"{key}_lo"] <= r["measured_ms"] <= r[f"{key}_hi"] for r in rows])
        summary[key] = {
            "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
            "within_20pct": float(np.mean(np.abs(err) <= 0.20)),
            "max_abs_err_pct": float(100 * np.max(np.abs(err))),
            "mape_pct": float(100 * np.mean(np.abs(err))),
            "coverage": float(np.mean(cov)),
        }
        s = summary[key]
        say(
            f"{label}: within ±10 % {100 * s['within_10pct']:.0f} %, "
            f"within ±20 % {100 * s['within_20pct']:.0f} %, "
            f"MAPE {s['mape_pct']:.1f} %, max |error| {s['max_abs_err_pct']:.1f} %, interval coverage "
            f"{100 * s['coverage']:.0f} % ({len(rows)} models)"
        )
    s = summary["kernel"]
    goal = s["within_10pct"] >= 0.9 and s["max_abs_err_pct"] <= 20 and s["coverage"] >= 0.85
    say(f"goal (≥ 90 % within ±10 %, none beyond ±20 %, coverage ≥ 85 %): {'met' if goal else 'NOT met'}")
    overlap = sum(r["units_in_dataset"] for r in rows)
    say(
        f"benchmark units whose exact kernel configuration is in the dataset: {overlap} of "
        f"{sum(r['units'] for r in rows)}"
    )
    for r in rows:
        if r["n_ood"]:
            say(f"  {r['model']}: out of range: {', '.join(r['ood_reasons'])}")
    say(f"({uptime()} at the end)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(
            json.dumps(
                {
                    "rows": rows,
                    "summary": summary,
                    "kernels": len(df),
                    "meta": meta,
                    "overhead": oh,
                    "flops_alpha_ms": alpha,
                    "lut_validation": lut_val,
                    "measured": measured,
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
