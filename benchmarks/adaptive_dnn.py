"""Adaptive DNNs: BO and BO+ vs grid search and the static design (Stamoulis thesis table 4.1 / 4.2).

Every network is trained for real (digits by default, or a CIFAR-10 folder), once, and cached in a store:
a factorial pool of the CaffeNet-like family (scaled to the dataset). Edge latency of each network is
measured by the local-cpu profiler (onnxruntime, CPU-time clock: the VM is shared), server latency by the
local-cpu-torch profiler. This VM has no power sensor, so edge energy = stated active power × measured
latency and the remote term uses a stated idle power (printed; change with --edge-power-w/--idle-power-w).

For each set-up (local, Ethernet, Wi-Fi) and problem form (min error s.t. energy <= E_T, the median
network's energy; min energy s.t. error increase <= 3 % over the reference network), with the thesis's
protocol (N_1 and θ searched, N_2 fixed to the family's largest network, as VGG-19 there) and, locally,
the joint one (both networks searched), it runs grid search (every pool network or pair × 101 θ),
the static design (fixed nominal small/large networks, θ tuned), and BO and BO+ for ``--seeds`` seeds of
``--evals`` evaluations each, then reports the best objective (design split; and the chosen design's
test-split figure), and how many evaluations BO+ and BO need to come within 5 % of grid. ``--three`` adds
the three-network local case on a sub-pool (thesis table 4.2). Usage:

    .venv/bin/python benchmarks/adaptive_dnn.py [--seeds 5] [--evals 30] [--epochs 6] [--three]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def pool_configs(fam, quick: bool) -> list[dict]:
    lo, hi = fam.features
    mid = (lo + hi) // 4
    f1 = [lo, mid, hi]
    f2 = [2 * lo, hi] if quick else [2 * lo, (lo + hi) // 2, hi]
    ks = [3] if quick else [2, 3, 5]
    us = [fam.fc_units[0], fam.fc_units[1]]
    return [fam.config(a, k, b, k, u) for a, b, k, u in itertools.product(f1, f2, ks, us)]


def evals_to_within(history_best: np.ndarray, target: float, tol: float = 0.05) -> int | None:
    """First evaluation (1-based) whose best-so-far is within ``tol`` of ``target`` (None: never)."""
    for i, v in enumerate(history_best, start=1):
        if np.isfinite(v) and v <= target * (1 + tol) + 1e-12:
            return i
    return None


def run_case(prob, pool, args, label: str) -> dict:
    from hwnas.searchers.adaptive import AdaptiveBO, grid_design, run_design, static_design

    t0 = time.perf_counter()
    grid, _ = grid_design(prob, pool)
    ref = prob.reference_error_pct() if prob.form == "error" else 0.0
    obj = lambda p: None if p is None else prob.values(p.error_pct, p.energy_mj, ref)[0]  # noqa: E731
    test = lambda p: None if p is None else (p.test_error_pct if prob.form == "energy" else p.test_energy_mj)  # noqa: E731
    static = static_design(prob)
    row = {"case": label, "objective": prob.objective_name, "constraint": prob.constraint_text,
           "grid": obj(grid), "grid_test": test(grid), "static": obj(static), "static_test": test(static),
           "grid_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    for plus in (False, True):
        name = "bo_plus" if plus else "bo"
        bests, tests, reach, infeasible = [], [], [], []
        for seed in range(args.seeds):
            bo = AdaptiveBO(prob, plus=plus, seed=seed, n_init=5, max_sweep_points=args.sweep_points)
            h = run_design(prob, bo, args.evals)
            curve = h.best_so_far()
            b = h.best()
            bests.append(b.objective if b is not None else np.nan)
            d = b.info["design"] if b is not None else None
            tests.append(np.nan if d is None else (d["test_error_pct"] if prob.form == "energy"
                                                   else d["test_energy_mj"]))  # fmt: skip
            reach.append(evals_to_within(curve, row["grid"]) if row["grid"] is not None else None)
            infeasible.append(h.n_violations())
        row[name] = float(np.nanmean(bests))
        row[f"{name}_std"] = float(np.nanstd(bests))
        row[f"{name}_test"] = float(np.nanmean(tests))
        row[f"{name}_reached"] = sum(r is not None for r in reach)
        row[f"{name}_evals_to_5pct"] = float(np.median([r for r in reach if r is not None])) if any(
            r is not None for r in reach) else None  # fmt: skip
        row[f"{name}_per_seed"] = bests
        row[f"{name}_infeasible"] = float(np.mean(infeasible))
        if row["grid"]:
            row[f"{name}_gap_pct"] = 100.0 * (row[name] / row["grid"] - 1.0)
    row["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps({k: v for k, v in row.items() if not k.endswith("per_seed")}), flush=True)
    return row


def main() -> None:
    from hwnas.profilers.device_costs import stored_cost_fn
    from hwnas.searchers.adaptive import (
        AdaptiveProblem,
        NetworkCosts,
        NetworkFamily,
        NetworkTrainer,
        link_from,
        load_design_data,
    )
    from hwnas.store.sqlite import SQLiteStore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--evals", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--sweep-points", type=int, default=11, help="swept points per BO+ step given to the GP")
    ap.add_argument("--edge-power-w", type=float, default=10.0)
    ap.add_argument("--idle-power-w", type=float, default=1.5)
    ap.add_argument("--store", default="benchmarks/out/adaptive.db")
    ap.add_argument("--json", default="benchmarks/results/adaptive_dnn.json")
    ap.add_argument("--quick", action="store_true", help="a 12-network pool (smoke run)")
    ap.add_argument("--three", action="store_true", help="also the three-network local case")
    ap.add_argument("--setups", default="local,wifi,ethernet")
    ap.add_argument("--only", default=None, help="run only these case numbers (comma list, 0-based)")
    args = ap.parse_args()

    t_start = time.perf_counter()
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(args.store)
    dd = load_design_data(args.dataset, seed=0)
    trainer = NetworkTrainer(dd, epochs=args.epochs, cache=store, progress=lambda s: print(s, flush=True))
    fam = NetworkFamily.scaled(dd.scale)
    pool = pool_configs(fam, args.quick)
    for extra in (fam.nominal_small(), fam.nominal_large()):
        if extra not in pool:
            pool.append(extra)
    t0 = time.perf_counter()
    for c in pool:
        trainer.get(c)
    train_s = time.perf_counter() - t0

    edge, _, _ = stored_cost_fn("local-cpu", store, want_energy=False, clock="cpu")
    server, _, _ = stored_cost_fn("local-cpu-torch", store, want_energy=False, clock="cpu")
    t0 = time.perf_counter()
    base = NetworkCosts(trainer.build, dd.input_shape, edge, server_cost_fn=server,
                        edge_power_w=args.edge_power_w, idle_power_w=args.idle_power_w)  # fmt: skip
    mono = sorted(base.edge(c)["energy_mj"] for c in pool)
    for c in pool:
        base.server_ms(c)
    profile_s = time.perf_counter() - t0
    e_budget = float(np.median(mono))  # the median monolithic network's energy
    rows = []
    large = fam.nominal_large()
    forms = (("error", 3.0), ("energy", e_budget))
    cases = []  # the thesis's protocol first (N1 and θ searched, N2 fixed), then the joint and 3-net ones
    for setup in args.setups.split(","):
        cases.append((setup, "N2 fixed", {1: large}, 2, pool))
    cases.insert(2, ("local", "joint", None, 2, pool))
    if args.three:
        sub = sorted(pool, key=lambda c: base.edge(c)["energy_mj"])[:: max(1, len(pool) // 14)]
        cases.insert(3, ("local", "3 networks (N3 fixed)", {2: large}, 3, sub))
    if args.only:
        keep = {int(i) for i in args.only.split(",")}
        cases = [c for i, c in enumerate(cases) if i in keep]
    for setup, proto, fixed, m, cands in cases:
        costs = base.with_link(None if setup == "local" else link_from(setup))  # measured once, shared
        placement = "local" if setup == "local" else "remote"
        for form, budget in forms:
            prob = AdaptiveProblem(trainer, costs, n_networks=m, form=form, budget=budget,
                                   placement=placement, pool=cands, fixed=fixed)  # fmt: skip
            rows.append(run_case(prob, cands, args, f"{setup}, {proto}, {prob.constraint_text}"))
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"meta": {"partial": True}, "rows": rows}, indent=1))
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()}",
        "dataset": dd.data.name, "pool": len(pool), "networks_trained_now": trainer.train_count,
        "train_s": round(train_s, 1), "profile_s": round(profile_s, 1), "epochs": args.epochs,
        "edge_power_w": args.edge_power_w, "idle_power_w": args.idle_power_w,
        "energy_budget_mj": e_budget, "seeds": args.seeds, "evals": args.evals,
        "total_s": round(time.perf_counter() - t_start, 1),
        "links": {s: link_from(s).to_dict() for s in ("ethernet", "wifi")},
    }  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(json.dumps(meta, indent=1))
    cols = [
        "case",
        "static",
        "bo",
        "bo_plus",
        "grid",
        "bo_gap_pct",
        "bo_plus_gap_pct",
        "bo_reached",
        "bo_plus_reached",
        "bo_evals_to_5pct",
        "bo_plus_evals_to_5pct",
    ]
    print("| " + " | ".join(cols) + " |")
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
