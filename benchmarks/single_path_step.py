"""Search step cost: single-path vs multi-path vs a plain training step of the largest child network.

Stamoulis thesis §5.1/§6.2: a single-path search step should cost about one training step of the largest
network in the space (all k5e6), a multi-path one every path's. Measured on this CPU in one run, per step
(median of ``--steps`` after warm-up), with the process CPU-time clock (the host is shared; wall time is
printed too), and training memory as the bytes autograd saves for the backward pass (activations, via
``torch.autograd.graph.saved_tensors_hooks``) plus parameters, gradients and optimizer state. Ratios are
against the plain step measured in the same run. Goal: single-path <= 1.3x, multi-path >= 3x.

    .venv/bin/python benchmarks/single_path_step.py [--resolution 64] [--width 0.5] [--batch 32] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from hwnas.searchers.multi_path import make_multi_path_searcher
from hwnas.searchers.oneshot import OneShotSearcher
from hwnas.searchers.single_path import make_single_path_searcher
from hwnas.searchers.single_path_table import SinglePathTable
from hwnas.spaces.mbv2 import MBV2Space


class Saved:
    """Bytes of every tensor autograd saves for backward during the forward pass."""

    def __init__(self) -> None:
        self.bytes = 0
        self._seen: set[int] = set()

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in self._seen:
            self._seen.add(key)
            self.bytes += t.untyped_storage().nbytes()
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t


def state_bytes(params: list[nn.Parameter], opt: torch.optim.Optimizer) -> int:
    n = sum(p.numel() * p.element_size() for p in params) * 2  # weights + gradients
    for st in opt.state.values():
        n += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v))
    return n


def time_steps(step, n: int) -> tuple[float, float, int]:  # noqa: ANN001
    step()  # warm-up (allocations, optimizer state)
    cpu, wall = [], []
    saved = 0
    for _ in range(n):
        s = Saved()
        c0, w0 = time.process_time(), time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(s.pack, s.unpack):
            step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        saved = max(saved, s.bytes)
    return statistics.median(cpu), statistics.median(wall), saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/single_path_step.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    space = MBV2Space(a.resolution, a.width, 10)
    table = SinglePathTable.pixel1()
    x = torch.randn(a.batch, 3, a.resolution, a.resolution)
    y = torch.randint(0, 10, (a.batch,))
    rows = {}

    plain = space.build(space.encode(space.decode("-".join(["k5e6"] * 20)))).train()
    opt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)

    def plain_step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(plain(x), y).backward()
        opt.step()

    cpu, wall, saved = time_steps(plain_step, a.steps)
    rows["plain (all-k5e6 child)"] = (cpu, wall, saved + state_bytes(list(plain.parameters()), opt))

    sp: OneShotSearcher = make_single_path_searcher(space=space, table=table, epochs=1)
    cpu, wall, saved = time_steps(lambda: sp.train_step(x, y, True, None), a.steps)
    rows["single-path (joint step)"] = (
        cpu,
        wall,
        saved + state_bytes(sp._w_params, sp.opt_w) + state_bytes(sp.supernet.arch_parameters(), sp.opt_a),
    )

    mp: OneShotSearcher = make_multi_path_searcher(space=space, table=table, epochs=1)

    def mp_state() -> int:
        return state_bytes(mp._w_params, mp.opt_w) + state_bytes(mp.supernet.arch_parameters(), mp.opt_a)

    cpu, wall, saved = time_steps(lambda: mp.train_step(x, y, False, None), a.steps)
    rows["multi-path (weight step)"] = (cpu, wall, saved + mp_state())
    cpu, wall, saved = time_steps(lambda: mp.train_step(x, y, True, (x, y)), a.steps)
    rows["multi-path (weight + arch step)"] = (cpu, wall, saved + mp_state())

    base_cpu, _, base_mem = rows["plain (all-k5e6 child)"]
    load = os.getloadavg()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {a.threads}, "
        f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; input {a.batch}x3x{a.resolution}^2, width {a.width}"
    )
    print(f"{'step':34s} {'CPU ms':>9s} {'wall ms':>9s} {'x plain':>8s} {'memory MB':>10s} {'x plain':>8s}")
    out = {}
    for name, (cpu, wall, mem) in rows.items():
        print(
            f"{name:34s} {cpu * 1e3:9.1f} {wall * 1e3:9.1f} {cpu / base_cpu:8.2f} "
            f"{mem / 1e6:10.1f} {mem / base_mem:8.2f}"
        )
        out[name] = {
            "cpu_ms": cpu * 1e3,
            "wall_ms": wall * 1e3,
            "cpu_ratio": cpu / base_cpu,
            "memory_mb": mem / 1e6,
            "memory_ratio": mem / base_mem,
        }
    sp_r = out["single-path (joint step)"]["cpu_ratio"]
    mp_r = out["multi-path (weight step)"]["cpu_ratio"]
    print(
        f"goal single-path <= 1.3x plain: {'met' if sp_r <= 1.3 else 'NOT met'} ({sp_r:.2f}x); "
        f"multi-path >= 3x plain: {'met' if mp_r >= 3 else 'NOT met'} ({mp_r:.2f}x)"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps({"settings": vars(a) | {"out": str(a.out)}, "load": load, "rows": out}, indent=1)
    )


if __name__ == "__main__":
    main()
