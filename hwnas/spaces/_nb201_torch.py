"""Torch modules of the NAS-Bench-201 network (kept apart so that importing the space does not import torch).

Layer names match :func:`hwnas.spaces.nb201.layers` (``stem.0``, ``cells.3.edges.2<-1.op.1``, ...), so a
per-layer profile lines up with the LayerSpecs.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.spaces.nb201 import CELLS_PER_STAGE, EDGES, STAGE_CHANNELS, Cell


class Zero(nn.Module):
    """The ``none`` operation: a zero tensor of the input's shape (NAS-Bench-201 multiplies by 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)
        )


def make_op(op: str, c: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return _Wrap(ReLUConvBN(c, c, 1, 1))
    if op == "nor_conv_3x3":
        return _Wrap(ReLUConvBN(c, c, 3, 1))
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(op)


class _Wrap(nn.Module):
    """Holds a ReLU-Conv-BN under ``op`` (names ``edges.j<-i.op.k`` as in NAS-Bench-201's code)."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class InferCell(nn.Module):
    def __init__(self, cell: Cell, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {f"{j}<-{i}": make_op(op, c) for (j, i), op in zip(EDGES, cell.ops, strict=True)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            total = None
            for i in range(j):
                y = self.edges[f"{j}<-{i}"](nodes[i])
                total = y if total is None else total + y
            nodes.append(total)
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(cin, cout, 1, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201's CIFAR network (TinyNetwork with a fixed cell)."""

    def __init__(self, cell: Cell, num_classes: int = 10) -> None:
        super().__init__()
        c0 = STAGE_CHANNELS[0]
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0))
        cells: list[nn.Module] = []
        prev = c0
        for stage, ch in enumerate(STAGE_CHANNELS):
            if stage > 0:
                cells.append(ResNetBasicBlock(prev, ch))
            cells.extend(InferCell(cell, ch) for _ in range(CELLS_PER_STAGE))
            prev = ch
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))
