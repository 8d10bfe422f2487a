"""Measure the peak memory (bytes above the post-import baseline, child-process VmHWM) of NAS-Bench-201 cells
on this CPU with hwnas's own memory profiler, for `predict-device --metric peak_memory_bytes`.

    .venv/bin/python benchmarks/nb201_measure_memory.py --n 24 \
        --out benchmarks/results/nb201_peak_memory_cpu.csv

Each cell: build the CIFAR-10 network (batch 1), torch.save it, run it 3 times in a fresh child process
(`hwnas.profilers.memory.measure_peak_memory`, target `run_torch`, 1 thread). Cells are a seeded random
sample of connected cells. Rows are written as they finish (an interrupted run keeps them and resumes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd
import torch

from hwnas.profilers.memory import measure_peak_memory
from hwnas.spaces.nb201 import build_network
from hwnas.spaces.nb201_table import load_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/nb201_peak_memory_cpu.csv")
    args = ap.parse_args()
    t = load_table()
    cells = t[t["connected"] == 1].sample(args.n, random_state=args.seed)["arch"].tolist()
    out = Path(args.out)
    done = set(pd.read_csv(out)["arch"]) if out.exists() else set()
    for i, arch in enumerate(cells):
        if arch in done:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            torch.save(build_network(arch).eval(), path)
            job = {"path": str(path), "input_shapes": [[1, 3, 32, 32]], "threads": 1}
            mem = measure_peak_memory("hwnas.profilers.memory:run_torch", job)
        row = pd.DataFrame([{"arch": arch, "peak_memory_bytes": mem.peak_bytes,
                             "baseline_bytes": mem.baseline_bytes, "load": os.getloadavg()[0]}])  # fmt: skip
        row.to_csv(out, mode="a", header=not out.exists(), index=False)
        print(f"{i + 1}/{len(cells)} {mem.peak_bytes / 2**20:.2f} MiB", flush=True)
    got = pd.read_csv(out)["peak_memory_bytes"] / 2**20
    print(f"done: {len(got)} cells, {got.min():.2f}-{got.max():.2f} MiB")


if __name__ == "__main__":
    main()
