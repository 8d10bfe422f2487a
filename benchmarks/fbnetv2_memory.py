"""Memory and step time of channel search vs the number of channel options: DMaskingNAS masking vs one
path per option (Wan thesis fig. 3.3 step B / fig. 3.7).

k-option channel search over a layer of c channels searches {c/k, 2c/k, ..., c} (thesis §3.4). Both
networks are a stack of ``--layers`` 3×3 conv → BN → ReLU layers of width c = ``--channels`` at 32×32,
batch ``--batch``, each layer's output a Gumbel-weighted mixture over its k options:

- *masking* (``hwnas.searchers.dmasking``): one convolution of c filters, output × M = Σ g_i·1_i (eq. 3.3);
- *one path per option*: k convolutions of c·i/k filters, each zero-padded to c and summed with weight
  g_i (fig. 3.3 step B, conventional DNAS).

Per configuration, measured in one run: the bytes autograd keeps for the backward pass (saved tensors,
deterministic), the peak RSS of a fresh child process during its first training step (above its RSS just
before it; high-water mark reset through /proc/self/clear_refs), and the CPU time of a training step
(process CPU clock: steadier on a loaded VM).
Ratios are against masking at the fewest options, in the same run.

    .venv/bin/python benchmarks/fbnetv2_memory.py [--options 8 16 32] [--channels 64] [--layers 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import torch
from torch import nn

from hwnas.cost_models.torch_costs import gumbel_softmax_weights
from hwnas.searchers.dmasking import MaskedConvBNAct, Quantity


class MaskedStack(nn.Module):
    def __init__(self, c: int, k: int, layers: int) -> None:
        super().__init__()
        self.opts = [c * (i + 1) // k for i in range(k)]
        self.convs = nn.ModuleList(MaskedConvBNAct(c if j else 3, c, 3, 1, 1, "relu") for j in range(layers))
        self.alpha = nn.Parameter(torch.zeros(layers, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j, conv in enumerate(self.convs):
            g = gumbel_softmax_weights(self.alpha[j], 5.0)
            x = conv(x, Quantity.choice("f", self.opts).mask({"f": g}, self.opts[-1]))
        return x.mean()


class PathStack(nn.Module):
    def __init__(self, c: int, k: int, layers: int) -> None:
        super().__init__()
        self.opts = [c * (i + 1) // k for i in range(k)]
        self.c = c
        self.paths = nn.ModuleList(
            nn.ModuleList(MaskedConvBNAct(c if j else 3, o, 3, 1, 1, "relu") for o in self.opts)
            for j in range(layers)
        )
        self.alpha = nn.Parameter(torch.zeros(layers, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j, paths in enumerate(self.paths):
            g = gumbel_softmax_weights(self.alpha[j], 5.0)
            y = 0.0
            for i, p in enumerate(paths):
                out = p(x, None)
                y = y + g[i] * nn.functional.pad(out, (0, 0, 0, 0, 0, self.c - out.shape[1]))
            x = y
        return x.mean()


def build(kind: str, c: int, k: int, layers: int) -> nn.Module:
    return (MaskedStack if kind == "masking" else PathStack)(c, k, layers)


def saved_bytes(net: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward (storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return int(sum(seen.values()))


def step_cpu_s(net: nn.Module, x: torch.Tensor, steps: int) -> float:
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    net(x).backward()  # warm-up
    t = time.process_time()
    for _ in range(steps):
        opt.zero_grad()
        net(x).backward()
        opt.step()
    return (time.process_time() - t) / steps


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _child(kind: str, c: int, k: int, layers: int, batch: int, q: mp.Queue) -> None:
    """Peak RSS of the first training step above the RSS just before it (Linux: the high-water mark is
    reset through /proc/self/clear_refs after the runtime's own first-call allocations)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32)
    nn.Conv2d(3, 4, 3)(x[:2]).sum().backward()  # thread pools, kernels: not the network's memory
    net = build(kind, c, k, layers)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_kb("VmRSS")
    net(x).backward()
    q.put((_status_kb("VmHWM") - base) * 1024)


def peak_rss_delta(kind: str, c: int, k: int, layers: int, batch: int) -> int:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(kind, c, k, layers, batch, q))
    p.start()
    v = q.get(timeout=600)
    p.join()
    return int(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--options", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", type=str, default=None, help="also write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"# c={args.channels}, {args.layers} layers, batch {args.batch}, 32x32, 1 thread; load average {load}"
    )
    rows = []
    x = torch.randn(args.batch, 3, 32, 32)
    for kind in ("masking", "paths"):
        for k in args.options:
            torch.manual_seed(0)
            net = build(kind, args.channels, k, args.layers)
            rows.append(
                {
                    "kind": kind,
                    "options": k,
                    "saved_mb": saved_bytes(net, x) / 1e6,
                    "peak_rss_mb": peak_rss_delta(kind, args.channels, k, args.layers, args.batch) / 1e6,
                    "step_cpu_s": step_cpu_s(net, x, args.steps),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    base = next(r for r in rows if r["kind"] == "masking" and r["options"] == args.options[0])
    k0 = args.options[0]
    print(f"\n| method | options | autograd-saved MB (x masking@{k0}) | peak RSS MB (x) | step CPU s (x) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['options']} | {r['saved_mb']:.1f} ({r['saved_mb'] / base['saved_mb']:.2f}x) "
            f"| {r['peak_rss_mb']:.1f} ({r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x) "
            f"| {r['step_cpu_s']:.3f} ({r['step_cpu_s'] / base['step_cpu_s']:.2f}x) |"
        )
    for kind in ("masking", "paths"):
        lo = next(r for r in rows if r["kind"] == kind and r["options"] == args.options[0])
        hi = next(r for r in rows if r["kind"] == kind and r["options"] == args.options[-1])
        print(
            f"{kind}: memory at {args.options[-1]} options / at {args.options[0]}: "
            f"saved {hi['saved_mb'] / lo['saved_mb']:.2f}x, "
            f"peak RSS {hi['peak_rss_mb'] / lo['peak_rss_mb']:.2f}x"
        )
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
