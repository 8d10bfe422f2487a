"""FLOPs- and latency-budgeted FBNetV2 searches on a small dataset vs random search with rejection.

Space: ``hwnas.spaces.fbnetv2.reduced`` (32×32 inputs; three resolutions, channels, expansion and block
type searched). Data: scikit-learn's digits resized to 32×32 (``--dataset`` for a CIFAR-10 folder),
capped by ``--max-train``; 80 % of the training split trains weights, 20 % the architecture parameters
(and scores random-search candidates), the held-out validation split scores everything reported.

Per budget kind and seed:
- **FBNetV2**: ``--epochs`` supernet epochs (τ from 5.0, × e^−0.045 per epoch), hard-budget penalty; the
  derived network's FLOPs are counted by ``hwnas.graph`` and its latency measured on ``--device`` by the
  profiler; then it is trained from scratch for ``--final-epochs`` on the weights split.
- **Random search with rejection**: uniform samples, rejected unless the counted FLOPs (or the cost table's
  predicted latency) meet the budget, until ``--random-n`` are accepted; each is trained for
  ``--final-epochs`` on the weights split, the best on the arch split is kept, its latency measured.

Budgets are percentiles (``--percentile``) of the counted FLOPs / predicted latency of 300 random points.
The latency cost table is fitted here: ``--profile-nets`` random derived networks are profiled layer by
layer and whole on ``--device`` and a boosted per-layer table is fitted (``hwnas fit``). Everything is CPU
time on this machine (``--clock cpu`` by default for profiling and measuring); the load average is printed
with the results.

    .venv/bin/python benchmarks/fbnetv2_search.py [--seeds 2] [--epochs 10] [--kinds flops latency]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hwnas.device_config import load_device
from hwnas.graph.models import from_module
from hwnas.profilers.registry import get_profiler
from hwnas.searchers.fbnetv2 import fbnetv2_search, search_data, train_derived
from hwnas.spaces.fbnetv2 import reduced
from hwnas.store import SQLiteStore


def load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def measure_latency(profiler, store, space, arch) -> float:
    net = space.build(arch).eval()
    shape = (1, space.in_channels, arch.resolution, arch.resolution)
    rm = from_module(net, shape, name="fbnetv2", model_id=f"fbnetv2:{arch.token()}")
    res = profiler.profile(rm, store, per_layer=False, whole_model=True, memory=False, force=True)
    return next(float(m.value) for m in res.measured if m.scope == "model" and m.metric == "latency_ms")


def fit_table(space, device: str, n: int, workdir: Path, seed: int, clock: str) -> Path:
    """Profile ``n`` random derived networks per layer and whole; fit a boosted per-layer table."""
    store_path = workdir / "fbnetv2_profile.db"
    store = SQLiteStore(store_path)
    profiler = get_profiler(load_device(device), clock=clock)
    rng = np.random.default_rng(seed + 999)
    t = time.perf_counter()
    for i in range(n):
        arch = space.sample(rng)
        net = space.build(arch).eval()
        shape = (1, space.in_channels, arch.resolution, arch.resolution)
        rm = from_module(net, shape, name="fbnetv2", model_id=f"fbnetv2:{arch.token()}")
        profiler.profile(rm, store, per_layer=True, whole_model=True, memory=False)
        print(f"# profiled {i + 1}/{n} ({time.perf_counter() - t:.0f} s)", flush=True)
    table = workdir / "fbnetv2_table.json"
    name = load_device(device).name  # the store knows the device by its config's name
    cmd = [sys.executable, "-m", "hwnas.cli.app", "fit", "--store", str(store_path), "--device", name,
           "--kind", "boosted", "--out", str(table), "--include-flagged", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        raise SystemExit(f"hwnas fit failed: {proc.stderr[-2000:]}")
    rep = json.loads(proc.stdout)
    print(f"# cost table {table}: {json.dumps(rep.get('validation', rep), default=str)[:400]}", flush=True)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["flops", "latency"], choices=["flops", "latency"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--final-epochs", type=int, default=15)
    ap.add_argument("--random-n", type=int, default=4)
    ap.add_argument("--percentile", type=float, default=30.0)
    ap.add_argument("--max-train", type=int, default=800)
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--device", default="local-cpu-torch")
    ap.add_argument("--profile-nets", type=int, default=10)
    ap.add_argument("--table", type=Path, default=None, help="reuse a fitted table instead of profiling")
    ap.add_argument("--arch-lr", type=float, default=0.05)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                    help="clock for profiling and measuring (cpu: steadier on a loaded machine)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# start {time.strftime('%H:%M:%S')} UTC, load average {load()}", flush=True)
    probe = reduced()
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="fbnetv2-bench-"))
    store = SQLiteStore(workdir / "measure.db")
    profiler = get_profiler(load_device(args.device), clock=args.clock)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        data = search_data(args.dataset, probe.max_resolution, seed=seed, max_train=args.max_train)
        space = reduced(in_channels=data.in_channels, num_classes=data.num_classes)
        rng = np.random.default_rng(1234)
        pool = [space.sample(rng) for _ in range(300)]
        predictor = None
        if "latency" in args.kinds and predictor is None:
            from hwnas.cost_models.predictors import load_cost_predictor

            table = args.table or fit_table(space, args.device, args.profile_nets, workdir, seed, args.clock)
            args.table = table
            predictor = load_cost_predictor(table)
        for kind in args.kinds:
            cost = "flops" if kind == "flops" else "latency_ms"
            if kind == "flops":
                values = np.array([space.layers(a).flops for a in pool], float)
            else:
                values = predictor.predict([space.layers(a).layers for a in pool])["latency_ms"].value
            budget = float(np.percentile(values, args.percentile))
            # FBNetV2
            t = time.process_time()
            res = fbnetv2_search(
                space, data, cost=cost, budget=budget, predictor=predictor, epochs=args.epochs,
                final_epochs=args.final_epochs, final_train_on="weights", seed=seed, warmup_epochs=1,
                arch_lr=args.arch_lr,
            )  # fmt: skip
            cpu = time.process_time() - t
            lat = measure_latency(profiler, store, space, res.arch)
            spec = space.layers(res.arch)
            row = {
                "kind": kind, "seed": seed, "method": "fbnetv2", "budget": budget, "arch": res.arch.token(),
                "flops": spec.flops, "predicted_latency_ms": res.costs.get("latency_ms"),
                "measured_latency_ms": lat,
                "val_accuracy": res.final["val_accuracy"], "cpu_s": cpu,
            }  # fmt: skip
            row["meets_budget"] = (spec.flops if kind == "flops" else lat) <= budget
            rows.append(row)
            print(json.dumps(row), flush=True)
            # random search with rejection at the same budget
            t = time.process_time()
            gen = np.random.default_rng(seed + 77)
            accepted, drawn = [], 0
            while len(accepted) < args.random_n and drawn < 10000:
                a = space.sample(gen)
                drawn += 1
                c = (
                    space.layers(a).flops
                    if kind == "flops"
                    else float(predictor.predict([space.layers(a).layers])["latency_ms"].value[0])
                )
                if c <= budget:
                    accepted.append(a)
            scored = [
                (train_derived(space, a, data, epochs=args.final_epochs, seed=seed, train_on="weights"), a)
                for a in accepted
            ]
            best, arch = max(scored, key=lambda r: r[0]["arch_accuracy"])
            cpu = time.process_time() - t
            lat = measure_latency(profiler, store, space, arch)
            spec = space.layers(arch)
            row = {
                "kind": kind, "seed": seed, "method": "random+rejection", "budget": budget,
                "arch": arch.token(), "flops": spec.flops, "measured_latency_ms": lat,
                "val_accuracy": best["val_accuracy"], "cpu_s": cpu,
                "drawn": drawn, "accepted": len(accepted),
            }  # fmt: skip
            row["meets_budget"] = (spec.flops if kind == "flops" else lat) <= budget
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n# end {time.strftime('%H:%M:%S')} UTC, load average {load()}")
    print(
        "| budget | method | seeds meeting it | counted FLOPs / measured ms vs budget | val acc | CPU s |"
    )
    print("|---|---|---|---|---|---|")
    for kind in args.kinds:
        for method in ("fbnetv2", "random+rejection"):
            rs = [r for r in rows if r["kind"] == kind and r["method"] == method]
            if not rs:
                continue
            used = [(r["flops"] if kind == "flops" else r["measured_latency_ms"]) / r["budget"] for r in rs]
            acc = [r["val_accuracy"] for r in rs]
            print(
                f"| {kind} | {method} | {sum(r['meets_budget'] for r in rs)}/{len(rs)} "
                f"| {np.mean(used):.2f} (max {max(used):.2f}) | {np.mean(acc):.3f} ± {np.std(acc):.3f} "
                f"| {np.mean([r['cpu_s'] for r in rs]):.0f} |"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
