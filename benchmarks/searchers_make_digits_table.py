"""Build the HyperPower tabular benchmark: train random AlexNet-style configs on digits, measure costs.

Each row is one config of ``hwnas.spaces.hyperpower_cnn`` (2 conv stages), drawn uniformly at random,
trained on scikit-learn's digits with ``train_config`` (6 epochs, SGD, batch 32, seed 0) and measured on
this CPU with one torch thread at batch 1:
- ``latency_ms``: median of 50 timed forward passes after 10 warm-up passes (time.perf_counter);
- ``memory_mb``: parameter bytes plus the largest input+output activation bytes of any layer, read from
  the live tensors of one forward pass (forward hooks), in MB (1e6 bytes);
- ``params``: parameter count.
Also stored: per-epoch validation accuracies (for simulated early termination) and training seconds.

Usage:
    .venv/bin/python benchmarks/searchers_make_digits_table.py --n 400 --workers 2 \
        --out hwnas/searchers/data/hyperpower_digits.csv
"""

from __future__ import annotations

import argparse
import platform
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np


def _measure(args: tuple[int, dict]) -> dict:
    import torch

    from hwnas.searchers.objectives.training import load_dataset, train_config
    from hwnas.spaces import hyperpower_cnn

    torch.set_num_threads(1)
    index, cfg = args
    data = load_dataset("digits", seed=0)
    ev = train_config(cfg, data, epochs=6, batch_size=32, seed=0)
    model = hyperpower_cnn.build(cfg, data.input_shape, data.num_classes).eval()
    x = torch.zeros(1, *data.input_shape)
    acts: list[int] = []

    def hook(mod, inp, out):  # noqa: ANN001
        acts.append(sum(t.numel() * t.element_size() for t in inp) + out.numel() * out.element_size())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    times = []
    with torch.no_grad():
        for _ in range(10):
            model(x)
        for _ in range(50):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1e3)
    accs = ev.info["val_acc_per_epoch"] + [float("nan")] * (6 - len(ev.info["val_acc_per_epoch"]))
    row = {
        "config_id": index,
        **cfg,
        "val_error": ev.objective,
        "train_time_s": ev.eval_time_s,
        "latency_ms": float(np.median(times)),
        "memory_mb": (param_bytes + max(acts)) / 1e6,
        "params": sum(p.numel() for p in model.parameters()),
    }
    row.update({f"val_acc_epoch{i + 1}": a for i, a in enumerate(accs)})
    return row


def main() -> None:
    import pandas as pd

    from hwnas.searchers.objectives.training import hyperpower_space

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("hwnas/searchers/data/hyperpower_digits.csv"))
    a = ap.parse_args()
    space = hyperpower_space(2)
    rng = np.random.default_rng(a.seed)
    jobs = [(i, space.sample(rng)) for i in range(a.n)]
    t0 = time.time()
    with get_context("spawn").Pool(a.workers) as pool:
        rows = []
        for k, row in enumerate(pool.imap_unordered(_measure, jobs, chunksize=4)):
            rows.append(row)
            if (k + 1) % 25 == 0:
                print(f"{k + 1}/{a.n} configs in {time.time() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows).sort_values("config_id")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False, float_format="%.6g")
    print(
        f"wrote {len(df)} rows to {a.out} in {time.time() - t0:.0f} s on "
        f"{platform.processor() or platform.machine()}"
    )
    print(df[["val_error", "latency_ms", "memory_mb", "train_time_s"]].describe().to_string())


if __name__ == "__main__":
    main()
