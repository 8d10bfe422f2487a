"""HyperPower vs vanilla constrained BO vs random search vs random walk on a tabular objective.

Reproduces the comparison of the Stamoulis thesis §3.4.2 (figs. 3.5-3.6): evaluations needed to reach
the near-optimal region (ratio to vanilla BO; the thesis reports 3.5x fewer for HyperPower) and the
number of constraint-violating evaluations (HyperPower's should be 0 when its cost models are right).

Default objective: ``hyperpower-digits`` (AlexNet-style configs trained on digits, latency and memory
measured on this CPU; see hwnas/searchers/data/README.md). Default budgets: the given percentiles of the
table's latency and memory, so that the unconstrained optimum is out of budget. Usage:

    .venv/bin/python benchmarks/searchers_hyperpower.py [--seeds 10] [--evals 50] [--plot PNG] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from hwnas.searchers.compare import compare_searchers
    from hwnas.searchers.objectives import get_objective
    from hwnas.searchers.plot import plot_comparison

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objective", default="hyperpower-digits")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=50)
    ap.add_argument("--searchers", default="hyperpower,bo_vanilla,random_search,random_walk")
    ap.add_argument(
        "--layer-searchers",
        default="hyperpower,hyperpower_prob",
        help="also run these with cost models on per-layer features (empty: skip)",
    )
    ap.add_argument("--constraint", action="append", default=None, help="e.g. latency<=0.2ms (repeatable)")
    ap.add_argument("--latency-pct", type=float, default=30.0, help="latency budget percentile (default 30)")
    ap.add_argument("--memory-pct", type=float, default=30.0, help="memory budget percentile (default 30)")
    ap.add_argument("--tolerance", type=float, default=0.01, help="near-optimal: within this error (abs)")
    ap.add_argument("--cost-samples", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2, help="parallel (searcher, seed) runs")
    ap.add_argument("--plot", type=Path, default=Path("benchmarks/results/searchers_hyperpower.png"))
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/searchers_hyperpower.json"))
    a = ap.parse_args()

    obj = get_objective(a.objective)
    t = obj.table
    cons = a.constraint
    if cons is None:
        lat = float(np.percentile(t["latency_ms"], a.latency_pct))
        mem = float(np.percentile(t["memory_mb"], a.memory_pct))
        cons = [f"latency<={lat:.4g}ms", f"memory<={mem:.4g}MB"]
    optimum = obj.best_feasible(cons)
    feasible = np.ones(len(t), bool)
    from hwnas.searchers.constraints import parse_constraints

    for c in parse_constraints(cons):
        feasible &= np.array([c.value(v) <= 0 for v in t[c.name]])
    print(
        f"objective {a.objective}: {len(t)} rows, {feasible.sum()} within {', '.join(cons)}; "
        f"best error overall {t['val_error'].min() * 100:.2f} %, best feasible {optimum * 100:.2f} %; "
        f"rows within {a.tolerance * 100:.2f} points of it: "
        f"{int(((t['val_error'] <= optimum + a.tolerance) & feasible).sum())}"
    )
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    names = [s for s in a.searchers.split(",") if s]
    t0 = time.time()
    comp = compare_searchers(
        obj,
        names,
        seeds=range(a.seeds),
        n_evals=a.evals,
        constraints=cons,
        tolerance=a.tolerance,
        cost_model_samples=a.cost_samples,
        objective_name=a.objective,
        n_jobs=a.jobs,
        progress=lambda n, d, tot: print(f"  {n}: {d}/{tot} runs ({time.time() - t0:.0f} s)", flush=True),
    )
    layer_names = [s for s in a.layer_searchers.split(",") if s]
    if layer_names and hasattr(obj, "cost_featurizer") and obj.cost_featurizer is not None:
        comp2 = compare_searchers(
            obj,
            layer_names,
            seeds=range(a.seeds),
            n_evals=a.evals,
            constraints=cons,
            tolerance=a.tolerance,
            cost_model_samples=a.cost_samples,
            objective_name=a.objective,
            cost_features="layer",
            progress=lambda n, d, tot: print(
                f"  {n} (layer features): {d}/{tot} runs ({time.time() - t0:.0f} s)", flush=True
            ),
        )
        for n in layer_names:
            key = f"{n}+layer"
            comp.summaries[key] = comp2.summaries[n]
            comp.summaries[key].name = key
            comp.histories[key] = comp2.histories[n]
        comp.cost_model_errors.update(
            {f"{k} (layer features)": v for k, v in comp2.cost_model_errors.items()}
        )
    speed = comp.speedup_vs("bo_vanilla")
    print()
    print(
        f"cost models (linear, eq. 3.2-3.3; 10-fold CV RMSPE): "
        f"{', '.join(f'{k} {v:.1f} %' for k, v in comp.cost_model_errors.items())}"
    )
    hdr = (
        f"{'searcher':20s} {'best err % (mean±std)':>22s} {'evals→near-opt':>15s} {'censored':>9s} "
        f"{'mean curve':>10s} {'reached':>8s} {'vs bo_vanilla':>13s} {'violations':>11s} {'early-stop':>10s} "
        f"{'search s':>9s}"
    )
    print(hdr)
    print("-" * len(hdr))
    for n, s in comp.summaries.items():
        e2n = (
            "-"
            if math.isnan(s.evals_to_near_optimal_mean)
            else f"{s.evals_to_near_optimal_mean:.1f}±{s.evals_to_near_optimal_std:.1f}"
        )
        print(
            f"{n:20s} {s.final_best_mean * 100:>13.2f} ± {s.final_best_std * 100:<6.2f} {e2n:>15s} "
            f"{s.evals_to_near_optimal_censored:>9.1f} {s.mean_curve_evals_to_near_optimal:>10.0f} "
            f"{s.reached_near_optimal:>5d}/{s.n_seeds:<2d} {speed.get(n, math.nan):>12.2f}x "
            f"{s.violations_mean:>6.1f}±{s.violations_std:<4.1f} {s.early_stopped_mean:>10.1f} "
            f"{s.wall_time_s_mean:>9.1f}"
        )
    print()
    print("evals→near-opt: mean ± std over the seeds that reached the region (within the tolerance of the")
    print("best feasible row); censored: over all seeds, one that never got there counted as all its")
    print(
        "evaluations (the speed-up ratio uses this); mean curve: where the mean best-so-far curve (fig. 3.5)"
    )
    print("enters the region.")
    a.plot.parent.mkdir(parents=True, exist_ok=True)
    plot_comparison(comp, a.plot)
    a.json.write_text(
        json.dumps(
            {**comp.to_dict(), "machine": platform.platform(), "load_average": os.getloadavg()[0]},
            indent=1,
            default=str,
        )
    )
    print(f"figure: {a.plot}; summary: {a.json}; total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
