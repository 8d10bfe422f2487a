"""The FBNetV2 / DMaskingNAS search space as data (Wan thesis ch. 3, tables 3.2-3.3), and its derived nets.

A space is a list of *rows*, one per line of the thesis's macro-architecture table: block type ``b``
(``conv3x3``/``conv1x1`` fixed convolutions, ``tbs`` = "to be searched" inverted-residual blocks, ``avgpool``,
``fc``), expansion ``e``, filters ``f``, repeats ``n`` and stride ``s`` of the first block. ``e`` and ``f``
are a number or a ``(low, high, step)`` triple of options. Input resolutions are a list of options too.
The micro-architecture (table 3.3) is the list of block types a ``tbs`` block may take: ``ir_k3``,
``ir_k5`` (relu), ``ir_k3_hs``, ``ir_k5_hs`` (hard-swish) and ``skip`` (only where a block keeps its shape:
a repeat inside a row).

Decisions of a point (:class:`FBNetV2Arch`): one input resolution; one filter count per row with filter
options (shared by the row's repeats, so their residual adds stay shape-consistent); per ``tbs`` block one
block type and one expansion rate. The expanded width of a block is ``divisible(e · C_in)`` of its *actual*
input channels, as in FBNet.

Two configurations ship: :func:`table_3_2` (ImageNet, the thesis's largest space) and :func:`reduced` (for
32×32 inputs: CIFAR-10 or scikit-learn's digits resized). Others load from a dict / YAML file with the same
fields (:func:`space_from_dict`). A derived point builds as LayerSpecs (analytic, milliseconds), as a torch
module and through the graph package as ONNX; the LayerSpecs equal ``extract_layers`` on the module (tested).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, ModelSpec, make_layer, same_conv

ROW_TYPES = ("conv3x3", "conv1x1", "tbs", "avgpool", "fc")
BLOCK_TYPES: dict[str, tuple[int, str]] = {  # name -> (depthwise kernel, activation); table 3.3 without SE
    "ir_k3": (3, "relu"),
    "ir_k5": (5, "relu"),
    "ir_k3_hs": (3, "hardswish"),
    "ir_k5_hs": (5, "hardswish"),
}
SKIP = "skip"


def _options(value: Any, what: str, integer: bool) -> tuple[Any, ...]:
    """A number → (number,); a ``(low, high, step)`` triple → low, low+step, ..., high (inclusive)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        vals: list[float] = [float(value)]
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, (int, float)) for v in value)
    ):
        low, high, step = (float(v) for v in value)
        if step <= 0 or high < low:
            raise InputError(f"{what}: (low, high, step) = {tuple(value)} needs step > 0 and high >= low")
        n = int(round((high - low) / step))
        vals = [low + i * step for i in range(n + 1)]
        if abs(vals[-1] - high) > 1e-9:
            raise InputError(f"{what}: ({low:g}, {high:g}, {step:g}) does not reach high in whole steps")
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        vals = [float(v) for v in value]  # an explicit list of options
    else:
        raise InputError(
            f"{what}: expected a number or a (low, high, step) triple, got {value!r}",
            hint="e.g. 16 or [16, 28, 4]",
        )
    if integer:
        if any(v != int(v) or v <= 0 for v in vals):
            raise InputError(f"{what}: channel counts must be positive integers, got {vals}")
        return tuple(int(v) for v in vals)
    if any(v <= 0 for v in vals):
        raise InputError(f"{what}: expansion rates must be positive, got {vals}")
    return tuple(round(v, 6) for v in vals)


@dataclass(frozen=True)
class Row:
    """One line of the macro-architecture table."""

    block: str
    expansion: tuple[float, ...] = (1.0,)
    filters: tuple[int, ...] = ()
    repeats: int = 1
    stride: int = 1

    @property
    def searched_filters(self) -> bool:
        return len(self.filters) > 1

    @property
    def searched_expansion(self) -> bool:
        return len(self.expansion) > 1

    @property
    def has_expand_conv(self) -> bool:
        """An inverted-residual block has its 1×1 expansion unless the only expansion rate is 1."""
        return self.expansion != (1.0,)


@dataclass(frozen=True)
class FBNetV2Space:
    """A DMaskingNAS search space: rows, resolution options, block types, input channels, classes."""

    name: str
    rows: tuple[Row, ...]
    resolutions: tuple[int, ...]
    block_types: tuple[str, ...] = ("ir_k3", "ir_k5", SKIP)
    in_channels: int = 3
    num_classes: int = 1000
    divisor: int = 8
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        bad = [b for b in self.block_types if b != SKIP and b not in BLOCK_TYPES]
        if bad:
            raise InputError(
                f"space {self.name}: unknown block types {bad}",
                hint=f"known: {', '.join([*BLOCK_TYPES, SKIP])}",
            )
        if not any(b in BLOCK_TYPES for b in self.block_types):
            raise InputError(f"space {self.name}: block_types needs at least one ir_* type besides skip")
        if not self.resolutions or any(int(r) <= 0 for r in self.resolutions):
            raise InputError(
                f"space {self.name}: resolutions must be positive integers, got {self.resolutions}"
            )
        if not self.rows or self.rows[-1].block != "fc":
            raise InputError(f"space {self.name}: the last row must be 'fc' (the classifier)")
        for i, r in enumerate(self.rows):
            if r.block not in ROW_TYPES:
                raise InputError(
                    f"space {self.name}: row {i}: block {r.block!r} unknown", hint=f"one of {ROW_TYPES}"
                )
            if r.block in ("conv3x3", "conv1x1", "tbs") and not r.filters:
                raise InputError(f"space {self.name}: row {i} ({r.block}) needs filters")
            if r.block != "tbs" and (r.searched_expansion or r.repeats != 1):
                raise InputError(
                    f"space {self.name}: row {i} ({r.block}): only tbs rows take e options or n > 1"
                )

    # --- structure -------------------------------------------------------------------------------------
    @property
    def max_resolution(self) -> int:
        return max(self.resolutions)

    def blocks(self) -> list[tuple[int, int, int]]:
        """Every tbs block as (row index, repeat index j, stride)."""
        out = []
        for i, r in enumerate(self.rows):
            if r.block == "tbs":
                out += [(i, j, r.stride if j == 0 else 1) for j in range(r.repeats)]
        return out

    def block_choices(self, row: int, j: int) -> tuple[str, ...]:
        """Block types allowed at repeat j of a row: skip only for repeats (shape kept, residual path)."""
        return tuple(b for b in self.block_types if b != SKIP or j > 0)

    def filter_rows(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r.searched_filters]

    def mid_channels(self, c_in: int, e: float) -> int:
        return divisible(e * c_in, self.divisor)

    @property
    def size(self) -> int:
        """Number of distinct points (decisions multiplied out)."""
        n = len(self.resolutions)
        for i in self.filter_rows():
            n *= len(self.rows[i].filters)
        for i, j, _ in self.blocks():
            n *= len(self.block_choices(i, j)) * len(self.rows[i].expansion)
        return int(n)

    # --- points ------------------------------------------------------------------------------------------
    def default(self) -> FBNetV2Arch:
        """The largest point: max resolution, max filters, first ir type, max expansion."""
        first = next(b for b in self.block_types if b != SKIP)
        return FBNetV2Arch(
            self.max_resolution,
            tuple(max(self.rows[i].filters) for i in self.filter_rows()),
            tuple((first, max(self.rows[i].expansion)) for i, _, _ in self.blocks()),
        )

    def sample(self, rng: np.random.Generator | int | None = None) -> FBNetV2Arch:
        """A uniformly random point (each decision uniform over its options)."""
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        blocks = []
        for i, j, _ in self.blocks():
            b = str(gen.choice(self.block_choices(i, j)))
            blocks.append((b, float(gen.choice(self.rows[i].expansion)) if b != SKIP else 0.0))
        return FBNetV2Arch(
            int(gen.choice(self.resolutions)),
            tuple(int(gen.choice(self.rows[i].filters)) for i in self.filter_rows()),
            tuple(blocks),
        )

    def validate(self, arch: FBNetV2Arch) -> FBNetV2Arch:
        """``arch`` if every decision is one of its options; else an InputError naming the first bad one."""
        if arch.resolution not in self.resolutions:
            raise InputError(
                f"resolution {arch.resolution} is not an option", hint=f"options: {self.resolutions}"
            )
        rows = self.filter_rows()
        if len(arch.filters) != len(rows):
            raise InputError(
                f"{len(arch.filters)} filter choices given, the space has {len(rows)} filter rows"
            )
        for i, f in zip(rows, arch.filters, strict=True):
            if f not in self.rows[i].filters:
                raise InputError(
                    f"row {i}: filters {f} not an option", hint=f"options: {self.rows[i].filters}"
                )
        blocks = self.blocks()
        if len(arch.blocks) != len(blocks):
            raise InputError(
                f"{len(arch.blocks)} block choices given, the space has {len(blocks)} tbs blocks"
            )
        for k, ((i, j, _), (b, e)) in enumerate(zip(blocks, arch.blocks, strict=True)):
            if b not in self.block_choices(i, j):
                raise InputError(
                    f"block {k}: type {b!r} not allowed", hint=f"allowed: {self.block_choices(i, j)}"
                )
            if b != SKIP and float(e) not in self.rows[i].expansion:
                raise InputError(
                    f"block {k}: expansion {e} not an option", hint=f"options: {self.rows[i].expansion}"
                )
        return arch

    def channels_of(self, arch: FBNetV2Arch) -> list[int]:
        """Output channels of every row of ``arch`` (the fc row: the number of classes)."""
        chosen = dict(zip(self.filter_rows(), arch.filters, strict=True))
        out = []
        for i, r in enumerate(self.rows):
            if r.block == "fc":
                out.append(self.num_classes)
            elif r.block == "avgpool":
                out.append(out[-1])
            else:
                out.append(chosen.get(i, r.filters[0]))
        return out

    # --- derived networks -------------------------------------------------------------------------------
    def layers(self, arch: FBNetV2Arch, batch_size: int = 1) -> ModelSpec:
        """LayerSpecs of the derived network ``arch`` at its resolution (names as in :meth:`build`)."""
        self.validate(arch)
        n = int(batch_size)
        out: list[LayerSpec] = []
        hw = arch.resolution
        c = self.in_channels
        chans = self.channels_of(arch)
        blk = iter(arch.blocks)

        def conv(name: str, cin: int, cout: int, k: int, s: int, groups: int = 1) -> None:
            nonlocal hw
            spec = same_conv(n, cin, cout, hw, k, s, groups, name)
            out.append(spec)
            hw = spec.output_shape[2]

        def same(op: str, name: str, ch: int, **kw: Any) -> None:
            shape = (n, ch, hw, hw)
            out.append(make_layer(op, shape, shape, name=name, **kw))

        def conv_bn(prefix: str, cin: int, cout: int, k: int, s: int, groups: int, act: str | None) -> None:
            conv(f"{prefix}.conv", cin, cout, k, s, groups)
            same("batchnorm", f"{prefix}.bn", cout, in_channels=cout)
            if act:
                same(act, f"{prefix}.act", cout)

        for i, r in enumerate(self.rows):
            p = f"rows.{i}"
            if r.block in ("conv3x3", "conv1x1"):
                conv_bn(p, c, chans[i], 3 if r.block == "conv3x3" else 1, r.stride, 1, "relu")
                c = chans[i]
            elif r.block == "tbs":
                cout = chans[i]
                for j in range(r.repeats):
                    b, e = next(blk)
                    s = r.stride if j == 0 else 1
                    q = f"{p}.{j}"
                    if b == SKIP:
                        same("identity", q, c)
                        continue
                    k, act = BLOCK_TYPES[b]
                    hw_in, cin = hw, c
                    mid = self.mid_channels(cin, e) if r.has_expand_conv else cin
                    if r.has_expand_conv:
                        conv_bn(f"{q}.pw", cin, mid, 1, 1, 1, act)
                    conv_bn(f"{q}.dw", mid, mid, k, s, mid, act)
                    conv_bn(f"{q}.pwl", mid, cout, 1, 1, 1, None)
                    if j > 0:
                        x = (n, cout, hw_in, hw_in)
                        out.append(make_layer("add", x, x, name=f"{q}.add", extra_input_shapes=(x,)))
                    c = cout
            elif r.block == "avgpool":
                out.append(make_layer("global_avgpool", (n, c, hw, hw), (n, c, 1, 1), name=f"{p}.pool"))
                out.append(
                    make_layer("flatten", (n, c, 1, 1), (n, c), name=f"{p}.flatten", attrs={"start_dim": 1})
                )
                hw = 1
            else:  # fc
                out.append(
                    make_layer(
                        "linear",
                        (n, c),
                        (n, self.num_classes),
                        name=f"{p}.fc",
                        in_channels=c,
                        out_channels=self.num_classes,
                        bias=True,
                    )
                )
        return ModelSpec(
            name=f"fbnetv2:{arch.token()}",
            input_shape=(n, self.in_channels, arch.resolution, arch.resolution),
            layers=out,
            source="fbnetv2-analytic",
        )

    def build(self, arch: FBNetV2Arch) -> nn.Module:
        """The derived network as a plain torch module (no masks, no effective shapes; thesis §3.3)."""
        self.validate(arch)
        chans = self.channels_of(arch)
        c = self.in_channels
        blk = iter(arch.blocks)
        rows: list[nn.Module] = []
        for i, r in enumerate(self.rows):
            if r.block in ("conv3x3", "conv1x1"):
                rows.append(ConvBNAct(c, chans[i], 3 if r.block == "conv3x3" else 1, r.stride, 1, "relu"))
                c = chans[i]
            elif r.block == "tbs":
                blocks: list[nn.Module] = []
                for j in range(r.repeats):
                    b, e = next(blk)
                    if b == SKIP:
                        blocks.append(nn.Identity())
                        continue
                    k, act = BLOCK_TYPES[b]
                    mid = self.mid_channels(c, e) if r.has_expand_conv else c
                    blocks.append(
                        IRBlock(c, mid, chans[i], k, r.stride if j == 0 else 1, act, r.has_expand_conv, j > 0)
                    )
                    c = chans[i]
                rows.append(nn.Sequential(*blocks))
            elif r.block == "avgpool":
                rows.append(GlobalPool())
            else:
                rows.append(FC(c, self.num_classes))
        return DerivedNet(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resolutions": list(self.resolutions),
            "block_types": list(self.block_types),
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "divisor": self.divisor,
            "rows": [
                {"b": r.block, "e": list(r.expansion), "f": list(r.filters), "n": r.repeats, "s": r.stride}
                for r in self.rows
            ],
        }


def divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never below 90 % of it (FBNet/MobileNet rule)."""
    if divisor <= 1:
        return max(1, int(round(value)))
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output height of a convolution with padding k // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


@dataclass(frozen=True)
class FBNetV2Arch:
    """A derived point: one resolution, a filter count per filter row, (type, expansion) per tbs block."""

    resolution: int
    filters: tuple[int, ...]
    blocks: tuple[tuple[str, float], ...]

    def token(self) -> str:
        """Compact id, e.g. ``r32-f12.24.32-ir_k3e1-ir_k5e2-skip``."""
        bl = "-".join(SKIP if b == SKIP else f"{b}e{e:g}" for b, e in self.blocks)
        return f"r{self.resolution}-f{'.'.join(str(f) for f in self.filters)}-{bl}"

    def to_config(self) -> dict[str, Any]:
        """As a JSON-ready dict (the ``config`` of a history record)."""
        return {
            "resolution": int(self.resolution),
            "filters": [int(f) for f in self.filters],
            "blocks": [[b, float(e)] for b, e in self.blocks],
            "arch": self.token(),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> FBNetV2Arch:
        try:
            return cls(
                int(cfg["resolution"]),
                tuple(int(f) for f in cfg["filters"]),
                tuple((str(b), float(e)) for b, e in cfg["blocks"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"FBNetV2 architecture config is malformed ({exc})",
                hint="expected {'resolution': int, 'filters': [int], 'blocks': [[type, expansion]]}",
            ) from exc


# --- modules of the derived network ----------------------------------------------------------------------
_ACT = {"relu": nn.ReLU, "hardswish": nn.Hardswish}


class ConvBNAct(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, groups: int, act: str | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = _ACT[act]() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class IRBlock(nn.Module):
    """Inverted residual: 1×1 expand (optional), k×k depthwise, 1×1 linear projection, + x on repeats."""

    def __init__(
        self, cin: int, mid: int, cout: int, k: int, s: int, act: str, expand: bool, residual: bool
    ) -> None:
        super().__init__()
        self.pw = ConvBNAct(cin, mid, 1, 1, 1, act) if expand else nn.Identity()
        self.dw = ConvBNAct(mid, mid, k, s, mid, act)
        self.pwl = ConvBNAct(mid, cout, 1, 1, 1, None)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwl(self.dw(self.pw(x)))
        return x + y if self.residual else y


class GlobalPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(x))


class FC(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class DerivedNet(nn.Module):
    def __init__(self, rows: list[nn.Module]) -> None:
        super().__init__()
        self.rows = nn.ModuleList(rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.rows:
            x = r(x)
        return x


# --- shipped configurations and loading -------------------------------------------------------------------
def _row(b: str, e: Any, f: Any, n: int, s: int, where: str) -> Row:
    return Row(
        b,
        _options(e, f"{where}: e", integer=False) if e is not None else (1.0,),
        _options(f, f"{where}: f", integer=True) if f is not None else (),
        int(n),
        int(s),
    )


def table_3_2(num_classes: int = 1000, resolutions: tuple[int, ...] = (160, 192, 224, 256)) -> FBNetV2Space:
    """Thesis table 3.2: the largest FBNetV2 macro-architecture (max input 256², 22 tbs blocks).

    The thesis gives only the maximum input resolution; the resolution options (default 160-256) are ours.
    """
    r = [
        ("conv3x3", 1, 16, 1, 2),
        ("tbs", 1, (12, 16, 4), 1, 1),
        ("tbs", (0.75, 3.25, 0.5), (16, 28, 4), 1, 2),
        ("tbs", (0.75, 3.25, 0.5), (16, 28, 4), 2, 1),
        ("tbs", (0.75, 3.25, 0.5), (16, 40, 8), 1, 2),
        ("tbs", (0.75, 3.25, 0.5), (16, 40, 8), 2, 1),
        ("tbs", (0.75, 3.75, 0.5), (48, 96, 8), 1, 2),
        ("tbs", (0.75, 3.75, 0.5), (48, 96, 8), 2, 1),
        ("tbs", (0.75, 4.5, 0.75), (72, 128, 8), 4, 1),
        ("tbs", (0.75, 4.5, 0.75), (112, 216, 8), 1, 2),
        ("tbs", (0.75, 4.5, 0.75), (112, 216, 8), 3, 1),
        ("conv1x1", None, 1984, 1, 1),
        ("avgpool", None, None, 1, 1),
        ("fc", None, None, 1, 1),
    ]
    rows = tuple(_row(*x, where=f"table 3.2 row {i}") for i, x in enumerate(r))
    return FBNetV2Space(
        "table3.2",
        rows,
        tuple(resolutions),
        ("ir_k3", "ir_k5", "ir_k3_hs", "ir_k5_hs", SKIP),
        3,
        num_classes,
        8,
    )


def reduced(
    in_channels: int = 3, num_classes: int = 10, resolutions: tuple[int, ...] = (24, 28, 32)
) -> FBNetV2Space:
    """A reduced table-3.2 space for 32×32 inputs (CIFAR-10, or scikit-learn's digits resized): a stride-2
    stem, 7 tbs blocks in four rows (strides 1, 2, 2, 1), filters and expansion searched with 3-4 options
    each, three resolutions."""
    r = [
        ("conv3x3", 1, 16, 1, 2),
        ("tbs", 1, (8, 16, 4), 1, 1),
        ("tbs", (1, 4, 1), (16, 32, 8), 2, 2),
        ("tbs", (1, 4, 1), (24, 48, 8), 2, 2),
        ("tbs", (1, 4, 1), (32, 64, 16), 2, 1),
        ("conv1x1", None, 128, 1, 1),
        ("avgpool", None, None, 1, 1),
        ("fc", None, None, 1, 1),
    ]
    rows = tuple(_row(*x, where=f"reduced row {i}") for i, x in enumerate(r))
    return FBNetV2Space(
        "reduced", rows, tuple(resolutions), ("ir_k3", "ir_k5", SKIP), in_channels, num_classes, 4
    )


SPACES = {"table3.2": table_3_2, "reduced": reduced}


def space_from_dict(data: dict[str, Any], where: str = "space") -> FBNetV2Space:
    """A space from its data form (``to_dict``'s fields; ``e``/``f`` numbers or (low, high, step))."""
    if not isinstance(data, dict) or "rows" not in data:
        raise InputError(
            f"{where}: expected a mapping with 'rows'", hint="see FBNetV2Space.to_dict() for the form"
        )
    rows = []
    for i, r in enumerate(data["rows"]):
        if not isinstance(r, dict) or "b" not in r:
            raise InputError(f"{where}: row {i}: expected a mapping with b (and e, f, n, s)")
        e = r.get("e", 1)
        f = r.get("f")
        rows.append(
            _row(
                str(r["b"]),
                e if e not in ([], None) else None,
                f if f not in ([], None) else None,
                int(r.get("n", 1)),
                int(r.get("s", 1)),
                f"{where}: row {i}",
            )
        )
    try:
        return FBNetV2Space(
            str(data.get("name", "custom")),
            tuple(rows),
            tuple(int(x) for x in data.get("resolutions", [224])),
            tuple(data.get("block_types", ("ir_k3", "ir_k5", SKIP))),
            int(data.get("in_channels", 3)),
            int(data.get("num_classes", 1000)),
            int(data.get("divisor", 8)),
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def load_space(name_or_path: str, **kwargs: Any) -> FBNetV2Space:
    """``table3.2`` / ``reduced`` (overrides: in_channels, num_classes, resolutions) or a JSON/YAML file."""
    if name_or_path in SPACES:
        fn = SPACES[name_or_path]
        if name_or_path == "table3.2":
            kwargs.pop("in_channels", None)
        return fn(**{k: v for k, v in kwargs.items() if v is not None})
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(
            f"FBNetV2 space {name_or_path!r}: neither a shipped name nor a file",
            hint=f"shipped: {', '.join(SPACES)}; or a .json/.yaml file",
        )
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
    for k, v in kwargs.items():
        if v is not None:
            data[k] = list(v) if isinstance(v, tuple) else v
    return space_from_dict(data, where=str(path))
