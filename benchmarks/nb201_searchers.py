"""Searchers on NAS-Bench-201 under a latency budget: regret vs evaluations and vs simulated time, violations.

Objective: ``hwnas.searchers.objectives.nb201.make_objective`` (CIFAR-10 accuracy of one random training run
per query; simulated time = the table's training time of each queried cell; latency measured on ``--device``).
Budgets at the 25th and 50th percentile of the device's latency. Regret = true best feasible accuracy (mean
of runs, from the table) minus the true accuracy of the searcher's incumbent (chosen on what it observed),
in accuracy points. Violations = evaluations whose measured latency broke the budget.

Searchers: regularised evolution (P, S as in ../shared/papers/003, "regularized evolution"), random search
with rejection of predicted-infeasible samples, HyperPower BO (cost model in the acquisition) and vanilla
constrained BO (Optuna's GP sampler with constraints, no cost model). The cost-aware ones (random, evolution,
HyperPower) read the latency model named by ``--cost-model`` (fit: from ``--cost-samples`` measured cells;
table: every cell measured).

    .venv/bin/python benchmarks/nb201_searchers.py [--seeds 20] [--evals 100] [--searchers ...]
        [--seeds-for bo_vanilla=5] [--out benchmarks/out/nb201_searchers]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hwnas.searchers.objectives.nb201 import make_objective
from hwnas.searchers.registry import make_searcher

COST_AWARE = {"random_search", "evolution", "hyperpower"}


def searcher_kwargs(name: str, seed: int, args: argparse.Namespace) -> dict:
    if name == "evolution":
        return {"population_size": args.population, "sample_size": args.sample}
    if name == "hyperpower":
        from hwnas.searchers.surrogate import GPSurrogate

        # One marginal-likelihood fit per step without restarts: the 30-dim one-hot GP otherwise dominates.
        return {"surrogate": GPSurrogate(seed=seed, n_restarts=0, max_iter=25)}
    return {}


def run_one(obj, name: str, seed: int, n_evals: int, best_acc: float, args: argparse.Namespace) -> dict:
    obj._rng = np.random.default_rng(10_000 + seed)  # the training-noise draw of this run
    cm = obj.cost_model if name in COST_AWARE else None
    kwargs = searcher_kwargs(name, seed, args)
    if name != "hyperpower":  # the registry gives HyperPower its cost model; the others on request
        kwargs["use_cost_model"] = cm is not None
    s = make_searcher(
        name,
        obj.space,
        constraints=[obj.constraint],
        cost_model=cm,
        seed=seed,
        early_termination=False,
        **kwargs,
    )
    t0 = time.perf_counter()
    hist = s.run(obj, n_evals)
    wall = time.perf_counter() - t0
    regret, times, inc_obs, inc_true = [], [], np.inf, np.nan
    clock = 0.0
    for t in hist.trials:
        clock += t.eval_time_s
        if t.feasible and t.objective is not None and t.objective < inc_obs:
            inc_obs, inc_true = t.objective, obj.true_error(t.config)
        regret.append(best_acc - 100 * (1 - inc_true) if np.isfinite(inc_true) else np.nan)
        times.append(clock)
    return {
        "regret": regret,
        "time_s": times,
        "violations": hist.n_violations(),
        "wall_s": wall,
    }


def summarise(runs: list[dict], grid_s: np.ndarray) -> dict:
    reg = np.array([r["regret"] for r in runs], float)
    worst = np.nanmax(reg[np.isfinite(reg)]) if np.isfinite(reg).any() else np.nan
    reg_filled = np.where(np.isnan(reg), worst, reg)  # before the first feasible point: the worst regret seen
    by_time = []
    for r, rf in zip(runs, reg_filled, strict=True):
        idx = np.searchsorted(np.asarray(r["time_s"]), grid_s, side="right") - 1
        by_time.append(np.where(idx >= 0, rf[np.maximum(idx, 0)], worst))
    return {
        "mean_regret_by_eval": np.nanmean(reg_filled, axis=0).tolist(),
        "mean_regret_by_time": np.mean(by_time, axis=0).tolist(),
        "violations_mean": float(np.mean([r["violations"] for r in runs])),
        "violations_max": int(np.max([r["violations"] for r in runs])),
        "wall_s_mean": float(np.mean([r["wall_s"] for r in runs])),
        "n_seeds": len(runs),
    }


def plot(results: dict, grid_s: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = list(results)
    fig, axes = plt.subplots(len(budgets), 2, figsize=(11, 3.6 * len(budgets)), squeeze=False)
    for row, b in enumerate(budgets):
        for name, s in results[b]["searchers"].items():
            n = len(s["mean_regret_by_eval"])
            label = f"{name} ({s['n_seeds']} seeds, {s['violations_mean']:.1f} viol.)"
            axes[row, 0].plot(np.arange(1, n + 1), s["mean_regret_by_eval"], label=label)
            axes[row, 1].plot(grid_s / 3600, s["mean_regret_by_time"], label=name)
        for ax, xl in zip(axes[row], ("evaluations", "simulated training time (h)"), strict=True):
            ax.set_yscale("log")
            ax.axhline(0.3, color="grey", ls=":", lw=1)
            ax.set_xlabel(xl)
            ax.set_ylabel("regret (accuracy points)")
            ax.set_title(f"{results[b]['title']}")
        axes[row, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="pixel3")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--budgets", default="25,50")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seeds-for", default="", help="per-searcher seed counts, e.g. bo_vanilla=5")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first..first+n-1 (to split runs)")
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--searchers", default="random_search,evolution,hyperpower,bo_vanilla")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--sample", type=int, default=5)
    ap.add_argument("--cost-model", default="table", choices=("fit", "table"))
    ap.add_argument("--cost-samples", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/out/nb201_searchers")
    ap.add_argument("--replot", default="", help="only redraw: comma-separated result JSONs into --out .png")
    args = ap.parse_args()
    if args.replot:  # e.g. the two budgets run as two processes
        merged: dict = {}
        for path in args.replot.split(","):  # later files add or replace searchers of the same budget
            for key, res in json.loads(Path(path).read_text()).items():
                merged.setdefault(key, {**res, "searchers": {}})["searchers"].update(res["searchers"])
        table = make_objective(args.dataset, args.device, cost_model="none").table
        grid = np.linspace(0, args.evals * float(table["train_time_s"].median()), 200)
        plot(merged, grid, Path(args.out).with_suffix(".png"))
        Path(args.out).with_suffix(".json").write_text(json.dumps(merged, indent=1))
        return
    seeds_for = dict(kv.split("=") for kv in args.seeds_for.split(",") if kv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for pct in (float(b) for b in args.budgets.split(",")):
        obj = make_objective(
            args.dataset,
            args.device,
            budget_percentile=pct,
            seed=0,
            cost_model=args.cost_model,
            n_cost_samples=args.cost_samples,
        )
        best_err = obj.best_feasible([obj.constraint])
        best_acc = 100 * (1 - best_err)
        grid_s = np.linspace(0, args.evals * float(obj.table["train_time_s"].median()), 200)
        key = f"p{pct:g}"
        results[key] = {
            "title": f"{args.dataset}, {args.device} latency <= {obj.budget_ms:.3f} ms (p{pct:g})",
            "budget_ms": obj.budget_ms,
            "best_feasible_acc": best_acc,
            "cost_model": obj.cost_model_source,
            "searchers": {},
        }
        print(f"\n== {results[key]['title']}: true best feasible accuracy {best_acc:.3f} %")
        print(f"   cost model of the cost-aware searchers: {obj.cost_model_source}", flush=True)
        for name in args.searchers.split(","):
            n_seeds = int(seeds_for.get(name, args.seeds))
            seeds = range(args.first_seed, args.first_seed + n_seeds)
            runs = [run_one(obj, name, seed, args.evals, best_acc, args) for seed in seeds]
            (out.parent / f"{out.name}_{key}_{name}_runs.json").write_text(json.dumps(runs))
            s = summarise(runs, grid_s)
            results[key]["searchers"][name] = s
            r = s["mean_regret_by_eval"]
            print(
                f"   {name:14s} seeds {n_seeds:2d}  regret@25 {r[min(24, len(r) - 1)]:.3f}  "
                f"@50 {r[min(49, len(r) - 1)]:.3f}  @{len(r)} {r[-1]:.3f}  violations mean "
                f"{s['violations_mean']:.2f} max {s['violations_max']}  ({s['wall_s_mean']:.1f} s/run)",
                flush=True,
            )
            out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    plot(results, grid_s, out.with_suffix(".png"))
    print("\nbest searcher per budget (mean regret after the last evaluation; goal <= 0.3 at p25):")
    for key, r in results.items():
        name, s = min(r["searchers"].items(), key=lambda kv: kv[1]["mean_regret_by_eval"][-1])
        print(
            f"  {key}: {name} {s['mean_regret_by_eval'][-1]:.3f} points, "
            f"violations {s['violations_mean']:.2f}"
        )
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
