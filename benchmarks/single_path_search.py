"""A latency-targeted Single-Path search on digits on this CPU vs random search with rejection.

Thesis §6.2-6.3 at small scale. Both methods get the same search budget in training epochs:

- single-path: λ tuned by vanilla BO on eq. 6.2 (``--lambda-evals`` searches of ``--search-epochs`` each,
  through the black-box searcher contract), the best search's derived network kept;
- random search with rejection (thesis method 5): ``--lambda-evals`` architectures drawn uniformly until
  the runtime model predicts them within [0.9 T, T], each trained ``--search-epochs`` epochs, the most
  accurate kept.

Each kept network is then retrained from scratch for ``--final-epochs`` and scored on a *test* split that
no choice saw (digits: train / selection / test = 60 / 20 / 20 %); its latency is measured whole on the
device (``--device``, CPU-time clock) next to the target and the prediction. Load average printed.

    .venv/bin/python benchmarks/single_path_search.py --table benchmarks/results/single_path_table_...json
        [--target-ms T] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hwnas.profilers.timer import module_timer
from hwnas.searchers.objectives.lambda_tuning import LambdaTuningObjective, SearchOutcome, tune_lambda
from hwnas.searchers.oneshot import tensor_batches
from hwnas.searchers.single_path_data import load_search_data
from hwnas.searchers.single_path_run import single_path_search, train_network
from hwnas.searchers.single_path_table import SinglePathTable, parse_arch
from hwnas.spaces.mbv2 import MBV2Space
from hwnas.store import SQLiteStore


def split_data(seed: int, resolution: int, batch: int) -> tuple[dict, dict]:
    """(search data: train + selection split, final data: train + test split)."""
    d = load_search_data("digits", resolution, batch_size=batch, val_fraction=0.4, seed=seed)
    xv, yv = next(iter(torch.utils.data.DataLoader(d["val"].dataset, batch_size=10**6)))
    half = len(xv) // 2
    sel = tensor_batches(xv[:half], yv[:half], 256, shuffle=False)
    test = tensor_batches(xv[half:], yv[half:], 256, shuffle=False)
    return {**d, "val": sel}, {**d, "val": test}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--device", default="local-cpu-torch")
    ap.add_argument("--target-ms", type=float, default=None)
    ap.add_argument("--lambda-evals", type=int, default=4)
    ap.add_argument("--search-epochs", type=int, default=4)
    ap.add_argument("--final-epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument(
        "--target-fractions",
        default="0.5",
        help="comma-separated; seed i targets lo + f_i (hi - lo) of the space's predicted range (cycled)",
    )
    ap.add_argument("--measure-repeats", type=int, default=3, help="interleaved timings of each found net")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/single_path_search.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    table = SinglePathTable.load(a.table)
    sp = table.space
    space = MBV2Space(int(sp["resolution"]), float(sp["width"]), int(sp.get("num_classes", 10)))
    lo = table.predict(
        parse_arch("-".join(["k3e3"] + ["skip", "skip", "skip", "k3e3"] * 4 + ["skip"] * 3), space)
    )
    hi = table.predict(parse_arch("k5e6", space))
    fracs = [float(f) for f in a.target_fractions.split(",") if f.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        timer = module_timer(a.device, SQLiteStore(Path(tmp) / "s.db"), clock="cpu", prefix="bench-sp-search")

        def measure(arch: str) -> float:
            net = space.build(arch).eval()
            return float(
                np.median([timer(net, (1, *space.input_shape), arch) for _ in range(a.measure_repeats)])
            )

        for seed in range(a.seeds):
            target = a.target_ms or round(lo + fracs[seed % len(fracs)] * (hi - lo), 3)
            search_data, final_data = split_data(seed, space.resolution, a.batch)
            t0 = time.process_time()

            def run(
                lam: float, search_data: dict = search_data, seed: int = seed, target: float = target
            ) -> SearchOutcome:
                s = single_path_search(
                    search_data,
                    space,
                    table,
                    lam=lam,
                    target_latency_ms=target,
                    epochs=a.search_epochs,
                    seed=seed,
                )
                last = s.history.trials[-1]
                return SearchOutcome(
                    last.info["val_accuracy"],
                    last.predicted_costs["latency_ms"],
                    {"arch": last.config["arch"]},
                )

            obj = LambdaTuningObjective(run, target, low=1e-2, high=10.0)
            h = tune_lambda(obj, "bo_vanilla", a.lambda_evals, seed=seed)
            best = h.best()
            sp_arch = best.info["arch"]
            sp_search_cpu = time.process_time() - t0

            t0 = time.process_time()
            rng = np.random.default_rng(seed)
            cands, drawn = [], 0
            while len(cands) < a.lambda_evals:
                arch = space.sample(rng)
                drawn += 1
                r = table.predict(space.decode(arch))
                if 0.9 * target <= r <= target:
                    cands.append(arch)
            accs = [
                train_network(space.build(c), search_data, a.search_epochs, seed=seed)["val_accuracy"]
                for c in cands
            ]
            rs_arch = cands[int(np.argmax(accs))]
            rs_search_cpu = time.process_time() - t0

            row = {"seed": seed, "target_ms": target}
            for name, arch, cpu in (
                ("single-path", sp_arch, sp_search_cpu),
                ("random-rejection", rs_arch, rs_search_cpu),
            ):
                fin = train_network(space.build(arch), final_data, a.final_epochs, seed=seed)
                pred = table.predict(space.decode(arch))
                meas = measure(arch)
                row[name] = {
                    "arch": arch,
                    "test_accuracy": fin["val_accuracy"],
                    "predicted_ms": pred,
                    "measured_ms": meas,
                    "measured_vs_target_pct": (meas / target - 1) * 100,
                    "predicted_vs_measured_pct": (pred / meas - 1) * 100,
                    "search_cpu_s": cpu,
                }
            row["single-path"]["lambda_history"] = [
                {
                    "lam": t.config["lam"],
                    "reward": t.info["reward"],
                    "accuracy": t.info["accuracy"],
                    "runtime_ms": t.measured_costs["latency_ms"],
                }
                for t in h
            ]
            row["random-rejection"]["drawn"] = drawn
            row["load_after"] = os.getloadavg()
            row["random-rejection"]["selection_accuracies"] = accs
            results.append(row)
    load = os.getloadavg()
    print(
        f"# {a.device}, CPU-time clock, space {space.resolution}px width {space.width:g}; "
        f"targets {sorted({r['target_ms'] for r in results})} ms "
        f"(range {lo:.3f}-{hi:.3f}); found nets timed {a.measure_repeats}x (median); "
        f"budget {a.lambda_evals} x {a.search_epochs} epochs; final "
        f"{a.final_epochs} epochs; load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )
    for row in results:
        for name in ("single-path", "random-rejection"):
            r = row[name]
            print(
                f"seed {row['seed']} T {row['target_ms']:.3f} {name:17s} "
                f"test acc {r['test_accuracy'] * 100:6.2f} %  predicted "
                f"{r['predicted_ms']:.3f} ms  measured {r['measured_ms']:.3f} ms "
                f"({r['measured_vs_target_pct']:+.1f} % vs target, "
                f"model {r['predicted_vs_measured_pct']:+.1f} %)"
                f"  search CPU {r['search_cpu_s']:.0f} s"
            )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {"settings": {k: str(v) for k, v in vars(a).items()}, "load": load, "results": results}, indent=1
        )
    )


if __name__ == "__main__":
    main()
