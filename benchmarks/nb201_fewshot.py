"""Few-shot latency prediction, leave each of the 13 NAS-Bench-201 devices out in turn.

For each held-out device the reference table is the shipped one *without that column*; the predictor sees the
held-out device only through k sampled cells (random connected cells, R draws, and the designed set of
`hwnas suggest-samples`, which is computed from the references alone). Spearman ρ over the connected cells.

Printed side by side: FLOPs as a proxy (no samples), plain ridge on the reference log-latencies (the
baseline), and the few-shot predictor with its leave-one-out method choice. Goal at k = 10: mean ρ >= 0.96,
no device below 0.90. Published, HELP's six *test* devices with 10 samples: HELP mean ρ 0.932, FLOPs 0.787.

    .venv/bin/python benchmarks/nb201_fewshot.py [--draws 20] [--ks 5,10,20,50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import stats

import hwnas.plugins
from hwnas.cost_models.fewshot import FewShotLatencyPredictor, suggest_samples
from hwnas.spaces.nb201_table import LATENCY_COLUMNS, load_table

hwnas.plugins.load()  # the nb201 few-shot space (cost models never import a space)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.spearmanr(a, b).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--ks", default="5,10,20,50")
    ap.add_argument("--devices", default="", help="comma-separated subset of latency columns")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    devices = [d for d in args.devices.split(",") if d] or list(LATENCY_COLUMNS)
    table = load_table()
    conn = table["connected"].to_numpy() == 1
    pool = np.flatnonzero(conn)
    archs = table["arch"].to_numpy()
    rng = np.random.default_rng(args.seed)
    results: dict = {}
    t0 = time.perf_counter()
    for col in devices:
        truth = table[col].to_numpy()
        reference = table.drop(columns=[col])
        ours = FewShotLatencyPredictor(reference=reference)
        ridge = FewShotLatencyPredictor(reference=reference, method="ridge")
        r: dict = {"flops": spearman(table["flops_cifar10_m"].to_numpy()[conn], truth[conn])}
        for k in ks:
            draws = [rng.choice(pool, k, replace=False) for _ in range(args.draws)]
            designed = table.index[
                table["arch"].isin(suggest_samples(k, reference=reference)["arch"])
            ].to_numpy()
            for name, sets in (("random", draws), ("designed", [designed])):
                rows_ours, rows_ridge, chosen = [], [], []
                for idx in sets:
                    ours.fit(archs[idx], truth[idx])
                    ridge._feats_cache = ours._feats_cache  # same references: share the features
                    ridge.fit(archs[idx], truth[idx])
                    rows_ours.append(spearman(ours.predict_all()["latency_ms"].to_numpy()[conn], truth[conn]))
                    rows_ridge.append(
                        spearman(ridge.predict_all()["latency_ms"].to_numpy()[conn], truth[conn])
                    )
                    chosen.append(ours.method_)
                r[f"k{k}_{name}"] = {
                    "ours": float(np.mean(rows_ours)),
                    "ours_min_draw": float(np.min(rows_ours)),
                    "ridge": float(np.mean(rows_ridge)),
                    "methods": {m: chosen.count(m) for m in sorted(set(chosen))},
                }
        results[col] = r
        print(f"[{time.perf_counter() - t0:6.0f} s] {col} done", flush=True)

    print("\nSpearman rho on the held-out device (connected cells), k = 10")
    print(
        f"{'device':24s} {'FLOPs':>6s} {'ridge':>6s} {'ours':>6s} {'min':>6s} | "
        f"{'ridge':>6s} {'ours':>6s}  (designed set)"
    )
    for col, r in results.items():
        a, d = r.get("k10_random"), r.get("k10_designed")
        if a is None:
            continue
        print(
            f"{col:24s} {r['flops']:6.3f} {a['ridge']:6.3f} {a['ours']:6.3f} {a['ours_min_draw']:6.3f} | "
            f"{d['ridge']:6.3f} {d['ours']:6.3f}"
        )
    for name in ("random", "designed"):
        print(f"\nrho vs k ({name} samples): mean over devices [worst device]")
        for k in ks:
            key = f"k{k}_{name}"
            ours = [r[key]["ours"] for r in results.values()]
            ridge = [r[key]["ridge"] for r in results.values()]
            print(
                f"  k={k:3d}  ours {np.mean(ours):.3f} [{np.min(ours):.3f}]   ridge {np.mean(ridge):.3f} "
                f"[{np.min(ridge):.3f}]"
            )
    flops = [r["flops"] for r in results.values()]
    print(f"\nFLOPs as a proxy: mean {np.mean(flops):.3f} [worst {np.min(flops):.3f}]")
    print(
        "published (HELP's 6 test devices, 10 samples): HELP mean 0.932 (Pixel 2 0.802, RPi4 0.890), "
        "FLOPs 0.787"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
