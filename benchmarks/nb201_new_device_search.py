"""Search on a new device from few measurements: each of the 13 NAS-Bench-201 devices treated as new in turn.

For device D: its latency column is hidden (left out of the few-shot references); the k cells
``suggest_samples`` designs (D's column excluded) are "measured" by reading the hidden column; the few-shot
model (``predict-device``'s estimator, method chosen by LOO on the k cells) prices every cell with its
jackknife interval. Then, CIFAR-10, budget at D's 25th latency percentile, ``--evals`` trainings each:

- ``cell_bo_prob+mbt``: cell_bo (Hamming-kernel GP, EI x P(feasible)) with measure-before-train: a proposal
  with low < P(feasible) < high has its latency read from the hidden column first (a *check*), the few-shot
  model is refitted with it, and a measured-infeasible cell is not trained;
- ``hyperpower_prob+mbt``: HyperPower's own GP with P(feasible), with the same checks;
- ``hyperpower``: HyperPower on point predictions (the plain pipeline), every proposal trained;
- ``random_search``: random search with rejection on the point predictions, every proposal trained;
- ``tpe``: Optuna's TPE with constraints (no cost model; it learns the budget from measured trainings).

Reported per device: regret after the trainings (true best feasible accuracy minus the true accuracy of
the incumbent chosen on observed one-run accuracies, points), infeasible trainings, checks, and measured
cells (k + checks; trained cells are measured after training as well). Goal (issue 22): mean regret
<= 0.3 points with <= 1 infeasible training per 100 evaluations on every device.

    PYTHONPATH=. .venv/bin/python benchmarks/nb201_new_device_search.py --seeds 3 --evals 100 \\
        --out benchmarks/results/nb201_new_device_search
Runs already in OUT.runs.jsonl are skipped (resumes). Times are process CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DEVICES = ["1080ti_1", "1080ti_32", "1080ti_256", "titanx_1", "titanx_32", "titanx_256", "silver_4114",
           "silver_4210r", "gold_6240", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1"]  # fmt: skip
ARMS = {
    "cell_bo_prob+mbt": ("cell_bo_prob", True),
    "hyperpower_prob+mbt": ("hyperpower_prob", True),
    "hyperpower": ("hyperpower", False),
    "random_search": ("random_search", False),
    "tpe": ("tpe", False),
}


def device_setup(device: str, k: int):
    import hwnas.plugins
    from hwnas.cost_models.fewshot import FewShotLatencyPredictor, suggest_samples
    from hwnas.searchers.objectives.nb201 import make_objective
    from hwnas.workflows.new_device import MeasuredNB201

    hwnas.plugins.load()
    col = f"lat_{device}_ms"
    base = make_objective("cifar10", device, budget_percentile=25, cost_model="none")
    hidden = dict(zip(base.table["arch"].astype(str), base.table["latency_ms"].to_numpy(float), strict=True))
    cells = suggest_samples(k, exclude_columns=(col,))["arch"].astype(str).tolist()
    est = FewShotLatencyPredictor(exclude_columns=(col,), method="auto")
    t0 = time.process_time()
    est.fit(cells, [hidden[a] for a in cells])
    fit_cpu = time.process_time() - t0
    return base, hidden, cells, est, fit_cpu, MeasuredNB201


def run_arm(setup, arm: str, seed: int, n_evals: int, low: float, high: float) -> dict:
    from hwnas.cost_models.fewshot_online import OnlineFewShot
    from hwnas.searchers.surrogate import GPSurrogate
    from hwnas.workflows.new_device import regret_points, search

    base, hidden, cells, est, _, MeasuredNB201 = setup
    name, mbt = ARMS[arm]
    obj = MeasuredNB201(base, lambda a: hidden[a])
    base._rng = np.random.default_rng(10_000 + seed)  # this run's training-noise draws
    est_copy = _clone_fitted(est)
    cm = (
        None if name == "tpe" else OnlineFewShot(est_copy, cells, [hidden[a] for a in cells], key=obj.arch_id)
    )
    kwargs = {}
    if name.startswith("hyperpower"):
        kwargs["surrogate"] = GPSurrogate(seed=seed, n_restarts=0, max_iter=25)
    t0 = time.process_time()
    hist, counts = search(obj, name, cm, n_evals, seed=seed, measure_first=mbt, low=low, high=high,
                          searcher_kwargs=kwargs)  # fmt: skip
    cpu = time.process_time() - t0
    return {
        "regret": regret_points(obj, hist),
        "infeasible_trainings": counts["infeasible_trainings"],
        "checks": counts.get("checks", 0),
        "checked_infeasible": counts.get("checked_infeasible", 0),
        "rejected": counts.get("rejected", 0),
        "trainings": counts["trainings"],
        "measured_cells": len(cells) + counts.get("checks", 0),
        "cpu_s": cpu,
        "method": getattr(cm, "method_", None),
    }


def _clone_fitted(est):
    """A copy that shares the (expensive) cached reference features but refits on its own samples."""
    import copy

    c = copy.copy(est)
    c.__dict__ = dict(est.__dict__)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--low", type=float, default=0.01)
    ap.add_argument("--high", type=float, default=0.99)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--out", default="benchmarks/results/nb201_new_device_search")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".runs.jsonl")
    rows: list[dict] = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    tag = {"evals": args.evals, "k": args.k, "low": args.low, "high": args.high}
    done = {(r["arm"], r["device"], r["seed"]) for r in rows if all(r.get(k) == v for k, v in tag.items())}
    arms = args.arms.split(",")
    devices = args.devices.split(",")
    print(f"load average {os.getloadavg()}", flush=True)
    for d in devices:
        setup = None
        for a in arms:
            for seed in range(args.seeds):
                if (a, d, seed) in done:
                    continue
                if setup is None:
                    setup = device_setup(d, args.k)
                    print(f"{d}: few-shot method {setup[3].method_} (fit {setup[4]:.1f} s CPU)", flush=True)
                r = {"arm": a, "device": d, "seed": seed, **tag,
                     **run_arm(setup, a, seed, args.evals, args.low, args.high)}  # fmt: skip
                rows.append(r)
                with log.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"  {d:14s} {a:20s} seed {seed} regret {r['regret']:.3f} infeasible trainings "
                      f"{r['infeasible_trainings']} checks {r['checks']} ({r['cpu_s']:.1f} s)",
                      flush=True)  # fmt: skip
    rows = [r for r in rows if all(r.get(k) == v for k, v in tag.items()) and r["seed"] < args.seeds]
    rows = list({(r["arm"], r["device"], r["seed"]): r for r in reversed(rows)}.values())[::-1]  # first run
    have = {r["device"] for r in rows}
    devices = [d for d in devices if d in have]
    text = "\n".join(report(rows, arms, devices, args))
    print(text)
    out.with_suffix(".txt").write_text(text + "\n")


def report(rows: list[dict], arms: list[str], devices: list[str], args) -> list[str]:
    def cell(a: str, d: str) -> str:
        rs = [r for r in rows if r["arm"] == a and r["device"] == d]
        if not rs:
            return "-"
        reg, inf = np.nanmean([r["regret"] for r in rs]), np.mean([r["infeasible_trainings"] for r in rs])
        s = f"{reg:.2f} / {inf:.1f}"
        if a.endswith("+mbt"):
            s += f" / {np.mean([r['checks'] for r in rs]):.0f}"
        return s

    lines = [
        f"CIFAR-10, p25 budget, {args.evals} trainings, k = {args.k} designed cells, "
        f"seeds 0-{args.seeds - 1}; "
        f"checks at {args.low} < P(feasible) < {args.high}",
        "per cell: mean regret (points) / mean infeasible trainings [/ mean checks for +mbt]",
        "| device | " + " | ".join(arms) + " |",
        "|" + "---|" * (len(arms) + 1),
    ]
    for d in devices:
        lines.append(f"| {d} | " + " | ".join(cell(a, d) for a in arms) + " |")
    for a in arms:
        rs = [r for r in rows if r["arm"] == a]
        if not rs:
            continue
        per_dev = [np.nanmean([r["regret"] for r in rs if r["device"] == d]) for d in devices
                   if any(r["device"] == d for r in rs)]  # fmt: skip
        inf_dev = [np.mean([r["infeasible_trainings"] for r in rs if r["device"] == d]) for d in devices
                   if any(r["device"] == d for r in rs)]  # fmt: skip
        ok = sum(1 for g, i in zip(per_dev, inf_dev, strict=True) if g <= 0.3 and i <= 1)
        lines.append(
            f"{a}: mean regret {np.mean(per_dev):.3f} (worst device {np.max(per_dev):.3f}), infeasible "
            f"trainings {np.mean(inf_dev):.2f} per {args.evals} (worst {np.max(inf_dev):.2f}), checks "
            f"{np.mean([r['checks'] for r in rs]):.1f}, measured cells "
            f"{np.mean([r['measured_cells'] for r in rs]):.1f}; "
            f"goal met on {ok}/{len(per_dev)} devices; {np.mean([r['cpu_s'] for r in rs]):.1f} s CPU/run"
        )  # fmt: skip
    lines.append(f"load average at the end {os.getloadavg()}; 2-core AMD EPYC VM, shared; CPU clock")
    return lines


if __name__ == "__main__":
    main()
