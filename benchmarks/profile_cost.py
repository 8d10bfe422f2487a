"""How long a per-layer profile of MobileNetV2 takes, and how many layers reach the CI target.

Runs the per-layer isolation profile on a fresh store under the device config's repeat policy, and under
the same policy with the caps lifted (so every layer must reach the target half-width, e.g. ±2 %).

    .venv/bin/python benchmarks/profile_cost.py [--model mobilenet_v2] [--device local-cpu] [--target 0.02]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

import hwnas.spaces  # noqa: F401  (registers the mbv2: / nb201: model-name families)
from hwnas.device_config import load_device
from hwnas.graph.models import resolve_model
from hwnas.profilers.fingerprint import cpu_model
from hwnas.profilers.registry import get_profiler
from hwnas.store import SQLiteStore


def run(model, cfg, label: str, clock: str) -> None:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "cost.db") as store:
        prof = get_profiler(cfg, clock=clock)
        res = prof.profile(model, store, whole_model=False, memory=False)
        recs = [r for r in res.measured if r.metric == "latency_ms"]
        distinct = {r.extra["measured_at_layer_index"]: r for r in recs}.values()
        reached = sum(r.stats.ci_half_width_rel <= cfg.repeat.target_ci_rel for r in distinct)
        reasons = {
            k: sum(r.extra["stop_reason"] == k for r in distinct)
            for k in ("ci", "max_repeats", "max_seconds")
        }
        n = np.array([r.stats.n for r in distinct])
        print(f"{label:<34} {res.elapsed_s:>7.1f} s  {len(recs)} layers, {len(distinct)} distinct; "
              f"{reached}/{len(distinct)} within ±{cfg.repeat.target_ci_rel:.0%}; stop {reasons}; "
              f"repeats median {int(np.median(n))} max {n.max()}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--device", default="local-cpu")
    ap.add_argument("--target", type=float, default=0.02)
    ap.add_argument("--uncapped", action=argparse.BooleanOptionalAction, default=True,
                    help="also run with max_repeats/max_seconds lifted")  # fmt: skip
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args()
    model = resolve_model(args.model)
    cfg = load_device(args.device)
    rep = dataclasses.replace(cfg.repeat, target_ci_rel=args.target)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"# {cpu_model()}; {args.model} on {cfg.name} ({cfg.backend}), {cfg.threads} thread(s); load {load}; "
        f"{args.clock} clock"
    )
    run(
        model,
        dataclasses.replace(cfg, repeat=rep),
        f"config policy {rep.max_repeats} reps/{rep.max_seconds} s",
        args.clock,
    )
    if args.uncapped:
        loose = dataclasses.replace(rep, max_repeats=5000, max_seconds=30.0)
        run(model, dataclasses.replace(cfg, repeat=loose), "caps lifted (5000 reps / 30 s)", args.clock)


if __name__ == "__main__":
    main()
