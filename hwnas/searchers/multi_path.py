"""Multi-path baseline (Stamoulis thesis §6.2 item 1; FBNet / ProxylessNAS / DARTS style) on the same space.

Every searchable block holds one MBConv *per candidate op* (k3e3, k3e6, k5e3, k5e6, and skip where the
block allows it); its output is the softmax-weighted (or Gumbel-softmax-weighted, FBNet) sum of all
paths (eq. 2.2), and runtime is the expectation under those weights of the same per-op runtimes the
single-path model uses (``torch_costs.expected_cost``), so the two searches price architectures alike.
It trains bilevel (eq. 2.3): weights on the training split, op logits on a held-out split. It exists to
measure what single-path saves: every path's weights and activations are kept for every step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hwnas.cost_models.torch_costs import choice_weights, expected_cost
from hwnas.errors import InputError
from hwnas.searchers.oneshot import DerivedArchitecture, OneShotSearcher, Supernet
from hwnas.searchers.single_path_table import SEARCHABLE, SinglePathTable
from hwnas.spaces.mbv2 import OPS, SKIP, MBConv, MBV2Space, _parse_token, make_divisible


class MultiPathSupernet(Supernet):
    """One path per op and block; ``weighting`` ``softmax`` (DARTS/ProxylessNAS expectation) or ``gumbel``."""

    cost_names = ("latency_ms",)

    def __init__(
        self, space: MBV2Space, table: SinglePathTable, *, weighting: str = "softmax", tau: float = 1.0
    ) -> None:
        super().__init__()
        if weighting not in ("softmax", "gumbel"):
            raise InputError(f"weighting must be softmax or gumbel, got {weighting!r}")
        self.space, self.table, self.weighting, self.tau = space, table, weighting, float(tau)
        act = nn.ReLU6 if space.activation == "relu6" else nn.ReLU
        stem_c = make_divisible(32 * space.width)
        head_c = make_divisible(1280 * max(1.0, space.width))
        self.stem = nn.Sequential(nn.Conv2d(3, stem_c, 3, 2, 1, bias=False), nn.BatchNorm2d(stem_c), act())
        b0, b21 = space.blocks[0], space.blocks[-1]
        self.first = MBConv(b0.in_channels, b0.out_channels, 3, 1, b0.stride, 0.0, act)
        self.options: list[list[str]] = []
        paths = []
        for i in SEARCHABLE:
            b = space.blocks[i]
            opts = list(OPS) + ([SKIP] if b.can_skip else [])
            self.options.append(opts)
            paths.append(
                nn.ModuleList(
                    nn.Identity()
                    if op == SKIP
                    else MBConv(b.in_channels, b.out_channels, int(op[1]), int(op[3]), b.stride, 0.0, act)
                    for op in opts
                )
            )
        self.paths = nn.ModuleList(paths)
        self.last = MBConv(b21.in_channels, b21.out_channels, 3, 6, b21.stride, 0.0, act)
        self.head = nn.Sequential(
            nn.Conv2d(b21.out_channels, head_c, 1, bias=False), nn.BatchNorm2d(head_c), act()
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2), nn.Linear(head_c, space.num_classes)
        )
        width = max(len(o) for o in self.options)
        costs = torch.zeros(len(SEARCHABLE), width, dtype=torch.float64)
        mask = torch.zeros(len(SEARCHABLE), width, dtype=torch.bool)
        for j, opts in enumerate(self.options):
            for k, op in enumerate(opts):
                mask[j, k] = True
                costs[j, k] = table.predict_one(j, _parse_token(op))
        self.register_buffer("costs", costs)
        self.register_buffer("mask", mask)
        self.alpha = nn.Parameter(torch.zeros(len(SEARCHABLE), width))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def _logits(self) -> torch.Tensor:
        return self.alpha.masked_fill(~self.mask, float("-inf"))

    def weights(self) -> torch.Tensor:
        mode = self.weighting if self.training else "softmax"
        return choice_weights(self._logits(), mode, self.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.stem(x))
        w = self.weights()
        best = self._logits().argmax(-1).tolist()
        for j, paths in enumerate(self.paths):
            if self.training:
                x = sum(w[j, k] * p(x) for k, p in enumerate(paths))  # eq. 2.2: every path, every step
            else:
                x = paths[best[j]](x)
        return self.classifier(self.head(self.last(x)))

    def cost(self) -> dict[str, torch.Tensor]:
        w = choice_weights(self._logits(), "softmax", self.tau).double()
        return {"latency_ms": self.table.fixed_ms + expected_cost(w, self.costs, self.mask)}

    def derive(self) -> DerivedArchitecture:
        best = self._logits().argmax(-1).tolist()
        tokens = [self.options[j][k] for j, k in enumerate(best)]
        arch = self.space.encode(self.space.decode("-".join(tokens)))
        return DerivedArchitecture(
            {"arch": arch},
            list(self.space.layers(arch).layers),
            {"latency_ms": self.table.predict(self.space.decode(arch))},
            {"arch": arch},
        )

    def arch_state(self) -> dict[str, Any]:
        p = torch.softmax(self._logits().detach(), -1)
        return {
            "probs": [
                [round(float(v), 4) for v in row[: len(o)]] for row, o in zip(p, self.options, strict=True)
            ]
        }


def make_multi_path_searcher(
    *,
    space: MBV2Space,
    table: SinglePathTable,
    lam: float = 0.2,
    penalty: Any = None,
    target_latency_ms: float | None = None,
    weighting: str = "softmax",
    epochs: int = 8,
    warmup_epochs: int = 0,
    lr: float = 0.05,
    arch_lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    **kwargs: Any,
) -> OneShotSearcher:
    """The multi-path search on ``CE + λ log E[R]`` (eq. 5.7 with the expected runtime), bilevel."""
    from hwnas.searchers.penalty import LogPenalty

    torch.manual_seed(seed)
    net = MultiPathSupernet(space, table, weighting=weighting)
    cons = [f"latency_ms<={target_latency_ms}"] if target_latency_ms is not None else []
    return OneShotSearcher(
        net,
        penalty if penalty is not None else LogPenalty(lam),
        constraints=cons,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        lr=lr,
        arch_lr=arch_lr,
        bilevel=True,
        seed=seed,
        device=device,
        name="multi-path",
        **kwargs,
    )
