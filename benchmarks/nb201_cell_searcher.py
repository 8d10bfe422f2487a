"""A searcher for cell spaces, with a perfect latency model, on all 13 NAS-Bench-201 devices.

CIFAR-10, budget at each device's 25th latency percentile, ``--evals`` evaluations, ``--seeds`` seeds; every
cost-aware searcher reads the measured latency of every cell (``cost_model="table"``), so violations are 0
for all that reject and the comparison is about the search alone. Regret = true best feasible accuracy
minus the true accuracy of the incumbent (chosen on the one-run accuracies it observed), in points.

Settings of ``cell_bo`` (encoding x acquisition optimiser) are compared as arms; the README reports
- *in-sample*: the setting with the lowest mean regret over all 13 devices, scored on the same 13;
- *nested*: for each device, the setting with the lowest mean regret on the other 12, scored on it
  (leave-one-device-out), and a fixed split (choose on 4 devices, score on the other 9).

    PYTHONPATH=. .venv/bin/python benchmarks/nb201_cell_searcher.py --seeds 5 --evals 100 \\
        --out benchmarks/results/nb201_cell_searcher
Runs already in ``OUT.runs.jsonl`` are skipped (the benchmark resumes). Times are process CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from hwnas.searchers.objectives.nb201 import make_objective
from hwnas.searchers.registry import make_searcher

DEVICES = ["1080ti_1", "1080ti_32", "1080ti_256", "titanx_1", "titanx_32", "titanx_256", "silver_4114",
           "silver_4210r", "gold_6240", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1"]  # fmt: skip
TUNE_SPLIT = ["1080ti_1", "silver_4114", "pixel3", "samsung_a50"]  # one per class: the fixed nested split
ARMS: dict[str, tuple[str, dict]] = {
    "random_search": ("random_search", {}),
    "evolution": ("evolution", {"population_size": 20, "sample_size": 5}),
    "hyperpower": ("hyperpower", {}),
    "cell_bo:codes-local": ("cell_bo", {"encoding": "codes", "optimizer": "local"}),
    "cell_bo:path-local": ("cell_bo", {"encoding": "path", "optimizer": "local"}),
    "cell_bo:codes-pool": ("cell_bo", {"encoding": "codes", "optimizer": "pool"}),
    "cell_bo:path-pool": ("cell_bo", {"encoding": "path", "optimizer": "pool"}),
}


def run_one(obj, arm: str, seed: int, n_evals: int, best_acc: float) -> dict:
    name, kwargs = ARMS[arm]
    kwargs = dict(kwargs)
    if name == "hyperpower":
        from hwnas.searchers.surrogate import GPSurrogate

        kwargs["surrogate"] = GPSurrogate(seed=seed, n_restarts=0, max_iter=25)  # as nb201_searchers.py
    elif name != "cell_bo":
        kwargs["use_cost_model"] = True
    obj._rng = np.random.default_rng(10_000 + seed)  # this run's training-noise draws
    s = make_searcher(name, obj.space, constraints=[obj.constraint], cost_model=obj.cost_model, seed=seed,
                      early_termination=False, **kwargs)  # fmt: skip
    t0 = time.process_time()
    hist = s.run(obj, n_evals)
    cpu = time.process_time() - t0
    inc_obs, inc_true, curve = np.inf, np.nan, []
    for t in hist.trials:
        if t.feasible and t.objective is not None and t.objective < inc_obs:
            inc_obs, inc_true = t.objective, obj.true_error(t.config)
        curve.append(best_acc - 100 * (1 - inc_true) if np.isfinite(inc_true) else None)
    return {"regret": curve[-1], "regret_at_50": curve[min(49, len(curve) - 1)],
            "violations": hist.n_violations(), "cpu_s": cpu}  # fmt: skip


def nested_choice(res: dict, cands: list[str], devices: list[str]) -> dict:
    """Leave-one-device-out: per device, the candidate best on the other devices, scored on it."""
    mean = {(a, d): float(np.mean([r["regret"] for r in res[a][d]])) for a in cands for d in devices}
    out = {}
    for d in devices:
        others = [o for o in devices if o != d]
        pick = min(cands, key=lambda a: np.mean([mean[a, o] for o in others]))
        out[d] = {"chosen": pick, "regret": mean[pick, d]}
    return out


def report(res: dict, devices: list[str], n_evals: int, only: list[str] | None = None) -> list[str]:
    arms = [a for a in ARMS if a in res and (only is None or a in only)]
    cell = [a for a in arms if a.startswith("cell_bo")]
    lines = [f"mean regret after {n_evals} evaluations (points) / mean violations; CIFAR-10, p25 budget"]
    head = "| device | " + " | ".join(arms) + " |"
    lines += [head, "|" + "---|" * (len(arms) + 1)]
    for d in devices:
        cells = []
        for a in arms:
            rs = res[a].get(d, [])
            if not rs:
                cells.append("-")
                continue
            cells.append(
                f"{np.mean([r['regret'] for r in rs]):.3f} / {np.mean([r['violations'] for r in rs]):.1f}"
            )
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    full = [a for a in arms if all(res[a].get(d) for d in devices)]
    means = {a: float(np.mean([np.mean([r["regret"] for r in res[a][d]]) for d in devices])) for a in full}
    lines.append("| **mean** | " + " | ".join(f"{means[a]:.3f}" if a in means else "-" for a in arms) + " |")
    cpu = {
        a: float(np.mean([r["cpu_s"] for d in devices for r in res[a].get(d, [])] or [np.nan])) for a in arms
    }
    lines.append("| CPU s / run | " + " | ".join(f"{cpu[a]:.1f}" for a in arms) + " |")
    cands = [a for a in cell if a in full]
    if cands:
        ins = min(cands, key=lambda a: means[a])
        nest = nested_choice(res, cands, devices)
        rnd = means.get("random_search", np.nan)
        lines.append(
            f"in-sample: {ins} chosen on all {len(devices)} devices, scored on them: "
            f"mean regret {means[ins]:.3f}"
        )
        nested_mean = np.mean([v["regret"] for v in nest.values()])
        lines.append(f"nested (leave-one-device-out): mean regret {nested_mean:.3f}; "
                     f"choices {sorted({v['chosen'] for v in nest.values()})}")  # fmt: skip
        split_pick = min(
            cands, key=lambda a: np.mean([np.mean([r["regret"] for r in res[a][d]]) for d in TUNE_SPLIT])
        )
        rest = [d for d in devices if d not in TUNE_SPLIT]
        sp = np.mean([np.mean([r["regret"] for r in res[split_pick][d]]) for d in rest])
        rr = (
            np.mean([np.mean([r["regret"] for r in res["random_search"][d]]) for d in rest])
            if "random_search" in full
            else np.nan
        )
        ev = (
            np.mean([np.mean([r["regret"] for r in res["evolution"][d]]) for d in rest])
            if "evolution" in full
            else np.nan
        )
        lines.append(f"nested (fixed split: chosen on {TUNE_SPLIT}): {split_pick}; "
                     f"on the other {len(rest)} devices "
                     f"mean regret {sp:.3f} vs random search {rr:.3f}, evolution {ev:.3f}")  # fmt: skip
        ahead = (
            [
                d
                for d in devices
                if nest[d]["regret"] < np.mean([r["regret"] for r in res["random_search"][d]])
            ]
            if "random_search" in full
            else []
        )
        lines.append(f"nested choice ahead of random search with rejection on {len(ahead)}/{len(devices)} "
                     "devices; "
                     f"random search mean {rnd:.3f}")  # fmt: skip
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--out", default="benchmarks/results/nb201_cell_searcher")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".runs.jsonl")
    res: dict = {a: {} for a in ARMS}
    done = set()
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            res.setdefault(r["arm"], {}).setdefault(r["device"], []).append(r)
            done.add((r["arm"], r["device"], r["seed"], r["evals"]))
    devices = args.devices.split(",")
    arms = args.arms.split(",")
    print(f"load average {os.getloadavg()}", flush=True)
    for d in devices:
        obj = make_objective("cifar10", d, budget_percentile=25, cost_model="table")
        best_acc = 100 * (1 - obj.best_feasible([obj.constraint]))
        for a in arms:
            for seed in range(args.seeds):
                if (a, d, seed, args.evals) in done:
                    continue
                r = {"arm": a, "device": d, "seed": seed, "evals": args.evals,
                     **run_one(obj, a, seed, args.evals, best_acc)}  # fmt: skip
                with log.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                res.setdefault(a, {}).setdefault(d, []).append(r)
            rs = res[a][d]
            print(f"{d:14s} {a:22s} regret {np.mean([r['regret'] for r in rs]):.3f} "
                  f"viol {np.mean([r['violations'] for r in rs]):.1f} "
                  f"cpu {np.mean([r['cpu_s'] for r in rs]):.1f}s",
                  flush=True)  # fmt: skip
    res = {
        a: {d: [r for r in v if r["evals"] == args.evals][: args.seeds] for d, v in res[a].items()}
        for a in res
    }
    res = {a: {d: v for d, v in res[a].items() if v} for a in res if any(res[a].values())}
    lines = report(res, devices, args.evals, arms)
    lines.append(f"load average at the end {os.getloadavg()}; 2-core AMD EPYC VM, shared; CPU clock")
    text = "\n".join(lines)
    print(text)
    out.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
