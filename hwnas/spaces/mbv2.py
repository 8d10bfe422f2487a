"""The MobileNetV2-style search space of Single-Path NAS (Stamoulis thesis, ch. 5; Fig. 5.4).

Backbone (MnasNet/Single-Path NAS filter numbers): a 3×3 stride-2 stem with 32 channels, 22 MBConv blocks
in seven stages, then a 1×1 head conv with 1280 channels, global average pooling and a linear classifier.

    stage  blocks  out channels  first stride
    0      0       16            1     (fixed MBConv k3 e1 unless search_ends=True)
    1      1-4     24            2
    2      5-8     40            2
    3      9-12    80            2
    4      13-16   96            1
    5      17-20   192           2
    6      21      320           1     (fixed MBConv k3 e6 unless search_ends=True)

Each searchable block picks one of ``k3e3``, ``k3e6``, ``k5e3``, ``k5e6`` (depthwise kernel k, expansion e);
the blocks that are not first in their stage (stride 1, equal in/out channels, hence a residual path) may
also be ``skip`` (the whole block dropped). In the published search blocks 0 and 21 are fixed and the
Pixel 1 runtime table (/work/shared/data/single_path) counts them in a constant. The Single-Path+ extension
(ch. 6) adds an SE path: pass ``se_ratios=(0, 0.25, 0.5)`` and tokens may carry ``se25``/``se50``
(``k5e6se25``); the squeeze width is ``se × expanded channels`` ("the ratio between the number of channels
in the intermediate convolution and the input of the SE path").

Arch strings list the 22 block tokens joined by ``-`` (``k3e1-k3e6-skip-...-k3e6``); with fixed ends a
20-token string (searchable blocks only) is also accepted. ``encode(decode(s))`` is canonical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, ModelSpec, make_layer, same_conv

# (out channels, number of blocks, first stride) per stage
STAGES: tuple[tuple[int, int, int], ...] = (
    (16, 1, 1),
    (24, 4, 2),
    (40, 4, 2),
    (80, 4, 2),
    (96, 4, 1),
    (192, 4, 2),
    (320, 1, 1),
)
NUM_BLOCKS = sum(n for _, n, _ in STAGES)
KERNELS = (3, 5)
EXPANSIONS = (3, 6)
OPS = ("k3e3", "k3e6", "k5e3", "k5e6")
SKIP = "skip"
FIXED_FIRST = "k3e1"
FIXED_LAST = "k3e6"
_TOKEN = re.compile(r"^k(\d+)e(\d+)(?:se(\d+))?$")


@dataclass(frozen=True)
class BlockChoice:
    """One block's decision: depthwise kernel, expansion ratio, SE ratio (0 = none), or skip."""

    kernel: int = 3
    expansion: int = 6
    se_ratio: float = 0.0
    skip: bool = False

    @property
    def token(self) -> str:
        if self.skip:
            return SKIP
        se = f"se{round(self.se_ratio * 100)}" if self.se_ratio else ""
        return f"k{self.kernel}e{self.expansion}{se}"

    @property
    def code(self) -> int | None:
        """Code in the Single-Path NAS runtime table: 0 k3e3, 1 k3e6, 2 k5e3, 3 k5e6; None otherwise."""
        base = f"k{self.kernel}e{self.expansion}"
        return OPS.index(base) if not self.skip and base in OPS else None


@dataclass(frozen=True)
class BlockInfo:
    """Where a block sits in the backbone."""

    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    first_in_stage: bool

    @property
    def can_skip(self) -> bool:
        return not self.first_in_stage and self.stride == 1 and self.in_channels == self.out_channels


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10% (MobileNetV2's rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class MBConv(nn.Module):
    """Inverted bottleneck: 1×1 expand, k×k depthwise, optional SE, 1×1 linear project (+ residual)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        expansion: int,
        stride: int,
        se_ratio: float = 0.0,
        activation: type[nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        from torchvision.ops.misc import SqueezeExcitation

        mid = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), activation()]
        layers += [
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            activation(),
        ]
        if se_ratio:
            layers.append(SqueezeExcitation(mid, max(1, int(mid * se_ratio))))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MBV2Space:
    """Single-Path NAS space over a MobileNetV2 backbone; arch strings in, torch modules and layers out."""

    def __init__(
        self,
        resolution: int = 224,
        width: float = 1.0,
        num_classes: int = 1000,
        seed: int = 0,
        search_ends: bool = False,
        se_ratios: tuple[float, ...] = (0.0,),
        activation: str = "relu6",
    ) -> None:
        if resolution < 32:
            raise InputError(
                f"resolution {resolution} is too small for five stride-2 stages", hint="use >= 32"
            )
        if width <= 0:
            raise InputError(f"width {width} must be positive", hint="e.g. 0.5, 0.75, 1.0, 1.4")
        if activation not in ("relu6", "relu"):
            raise InputError(f"activation {activation!r} is not supported", hint="use relu6 or relu")
        self.resolution = int(resolution)
        self.width = float(width)
        self.num_classes = int(num_classes)
        self.seed = seed
        self.search_ends = bool(search_ends)
        self.se_ratios = tuple(float(s) for s in se_ratios)
        self.activation = activation
        self._rng = np.random.default_rng(seed)
        self.blocks = self._block_infos()

    # --- structure ---------------------------------------------------------------------------------------
    def _block_infos(self) -> list[BlockInfo]:
        infos = []
        cin = make_divisible(32 * self.width)
        idx = 0
        for stage, (c, n, s) in enumerate(STAGES):
            cout = make_divisible(c * self.width)
            for j in range(n):
                infos.append(BlockInfo(idx, stage, cin, cout, s if j == 0 else 1, j == 0))
                cin = cout
                idx += 1
        return infos

    @property
    def searchable_blocks(self) -> list[int]:
        if self.search_ends:
            return list(range(NUM_BLOCKS))
        return list(range(1, NUM_BLOCKS - 1))

    def choices(self, block: int) -> list[str]:
        """Allowed tokens of ``block``."""
        if block not in self.searchable_blocks:
            return [FIXED_FIRST if block == 0 else FIXED_LAST]
        tokens = [BlockChoice(int(op[1]), int(op[3]), se).token for op in OPS for se in self.se_ratios]
        return tokens + ([SKIP] if self.blocks[block].can_skip else [])

    @property
    def size(self) -> int:
        """Number of architectures in the space."""
        return int(np.prod([len(self.choices(b)) for b in range(NUM_BLOCKS)], dtype=object))

    # --- arch strings ------------------------------------------------------------------------------------
    def decode(self, arch: str) -> list[BlockChoice]:
        """Arch string → one BlockChoice per block; InputError naming the bad token and what is allowed."""
        tokens = [t.strip() for t in str(arch).strip().split("-") if t.strip()]
        if len(tokens) == NUM_BLOCKS - 2 and not self.search_ends:
            tokens = [FIXED_FIRST, *tokens, FIXED_LAST]
        if len(tokens) != NUM_BLOCKS:
            raise InputError(
                f"mbv2 arch {arch!r} has {len(tokens)} blocks, expected {NUM_BLOCKS}"
                + ("" if self.search_ends else f" (or {NUM_BLOCKS - 2} searchable ones)"),
                hint="tokens k3e3, k3e6, k5e3, k5e6 or skip joined by '-', e.g. "
                + self.encode(self.default()),
            )
        out = []
        for b, tok in enumerate(tokens):
            allowed = self.choices(b)
            if tok not in allowed:
                raise InputError(
                    f"mbv2 arch block {b}: {tok!r} is not allowed here", hint="allowed: " + ", ".join(allowed)
                )
            out.append(_parse_token(tok))
        return out

    def encode(self, choices: list[BlockChoice] | list[str] | tuple[Any, ...]) -> str:
        """BlockChoices (or tokens) → canonical arch string (checked against the space)."""
        tokens = [c.token if isinstance(c, BlockChoice) else str(c) for c in choices]
        arch = "-".join(tokens)
        self.decode(arch)  # validate
        return arch

    def default(self) -> list[BlockChoice]:
        """MobileNetV2's own choice: k3e6 everywhere (fixed ends as published)."""
        return [
            _parse_token(self.choices(b)[0] if b not in self.searchable_blocks else "k3e6")
            for b in range(NUM_BLOCKS)
        ]

    def sample(self, rng: np.random.Generator | int | None = None) -> str:
        """A uniformly random arch string (per block, uniform over its allowed tokens)."""
        gen = self._gen(rng)
        return "-".join(str(gen.choice(self.choices(b))) for b in range(NUM_BLOCKS))

    def mutate(self, arch: str, rng: np.random.Generator | int | None = None, n_blocks: int = 1) -> str:
        """Change ``n_blocks`` random searchable blocks to another allowed token."""
        gen = self._gen(rng)
        tokens = [c.token for c in self.decode(arch)]
        for b in gen.choice(
            self.searchable_blocks, size=min(n_blocks, len(self.searchable_blocks)), replace=False
        ):
            others = [t for t in self.choices(int(b)) if t != tokens[b]]
            if others:
                tokens[b] = str(gen.choice(others))
        return "-".join(tokens)

    def _gen(self, rng: np.random.Generator | int | None) -> np.random.Generator:
        if rng is None:
            return self._rng
        if isinstance(rng, np.random.Generator):
            return rng
        return np.random.default_rng(rng)

    # --- models ------------------------------------------------------------------------------------------
    def model_id(self, arch: str) -> str:
        """Store id of ``arch``: ``mbv2@<resolution>[w<width>]:<arch>`` (``resolve_model`` reads it back)."""
        width = "" if self.width == 1.0 else f"w{self.width:g}"
        return f"mbv2@{self.resolution}{width}:{self.encode(self.decode(arch))}"

    def resolve(self, arch: str, batch_size: int = 1) -> Any:
        """``arch`` as a ``hwnas.graph.models.ResolvedModel`` (module in eval mode + analytic layer list)."""
        from hwnas.graph.models import ResolvedModel

        canonical = self.encode(self.decode(arch))
        return ResolvedModel(
            name=f"mbv2:{canonical}",
            model_id=self.model_id(canonical),
            module=self.build(canonical).eval(),
            onnx_path=None,
            input_shape=(int(batch_size), *self.input_shape),
            spec=self.layers(canonical, batch_size=batch_size),
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def build(self, arch: str) -> nn.Module:
        """The torch network of ``arch`` (random weights, train mode as usual for a fresh module)."""
        choices = self.decode(arch)
        act = nn.ReLU6 if self.activation == "relu6" else nn.ReLU
        stem_c = make_divisible(32 * self.width)
        head_c = make_divisible(1280 * max(1.0, self.width))
        stem = nn.Sequential(nn.Conv2d(3, stem_c, 3, 2, 1, bias=False), nn.BatchNorm2d(stem_c), act())
        blocks: list[nn.Module] = []
        for info, ch in zip(self.blocks, choices, strict=False):
            if ch.skip:
                blocks.append(nn.Identity())
            else:
                blocks.append(
                    MBConv(
                        info.in_channels,
                        info.out_channels,
                        ch.kernel,
                        ch.expansion,
                        info.stride,
                        ch.se_ratio,
                        act,
                    )
                )
        head = nn.Sequential(
            nn.Conv2d(self.blocks[-1].out_channels, head_c, 1, bias=False), nn.BatchNorm2d(head_c), act()
        )
        classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2), nn.Linear(head_c, self.num_classes)
        )
        return MBV2Net(stem, nn.Sequential(*blocks), head, classifier)

    def layers(self, arch: str, batch_size: int = 1, method: str = "analytic") -> ModelSpec:
        """Per-layer LayerSpecs of ``arch``, each with attr ``block`` (0..21, or "stem"/"head").

        Layer names are the module names in ``build(arch)``; a skipped block is one ``identity`` layer.
        ``method="analytic"`` computes the shapes from the structure (milliseconds, for searches that
        cost thousands of archs); ``method="trace"`` builds the network and runs ``extract_layers`` on it.
        Both give identical lists (tested).
        """
        if method == "analytic":
            layers = self._analytic_layers(self.decode(arch), int(batch_size))
            return ModelSpec(
                name=f"mbv2:{self.encode(self.decode(arch))}",
                input_shape=(int(batch_size), *self.input_shape),
                layers=layers,
                source="mbv2-analytic",
            )
        if method != "trace":
            raise InputError(f"unknown layers method {method!r}", hint="use 'analytic' or 'trace'")
        from hwnas.graph.from_torch import extract_layers

        net = self.build(arch)
        shape = (int(batch_size), *self.input_shape)
        spec = extract_layers(net, shape, name=f"mbv2:{self.encode(self.decode(arch))}")
        spec.layers = [_with_block(layer, _block_of(layer.name)) for layer in spec.layers]
        return spec

    def _analytic_layers(self, choices: list[BlockChoice], n: int) -> list[LayerSpec]:
        act = self.activation
        out: list[LayerSpec] = []
        hw = self.resolution

        def conv(name: str, block: int | str, cin: int, cout: int, k: int, s: int, groups: int = 1) -> None:
            nonlocal hw
            spec = same_conv(n, cin, cout, hw, k, s, groups, name)
            hw = spec.output_shape[2]
            out.append(_with_block(spec, block))

        def same(op: str, name: str, block: int | str, c: int, **kw: Any) -> None:
            shape = (n, c, hw, hw)
            out.append(_with_block(make_layer(op, shape, shape, name=name, **kw), block))

        def conv_bn(
            prefix: str,
            block: int | str,
            start: int,
            cin: int,
            cout: int,
            k: int,
            s: int,
            groups: int,
            with_act: bool = True,
        ) -> int:
            conv(f"{prefix}.{start}", block, cin, cout, k, s, groups)
            same("batchnorm", f"{prefix}.{start + 1}", block, cout, in_channels=cout)
            if with_act:
                same(act, f"{prefix}.{start + 2}", block, cout)
            return start + (3 if with_act else 2)

        stem_c = self.blocks[0].in_channels
        conv_bn("stem", "stem", 0, 3, stem_c, 3, 2, 1)
        adds = 0
        for info, ch in zip(self.blocks, choices, strict=True):
            b = info.index
            if ch.skip:
                same("identity", f"blocks.{b}", b, info.in_channels)
                continue
            mid = info.in_channels * ch.expansion
            prefix = f"blocks.{b}.conv"
            hw_in = hw
            j = 0
            if ch.expansion != 1:
                j = conv_bn(prefix, b, j, info.in_channels, mid, 1, 1, 1)
            j = conv_bn(prefix, b, j, mid, mid, ch.kernel, info.stride, mid)
            if ch.se_ratio:
                sq = max(1, int(mid * ch.se_ratio))
                same(
                    "se",
                    f"{prefix}.{j}",
                    b,
                    mid,
                    in_channels=mid,
                    out_channels=mid,
                    se_ratio=sq / mid,
                    bias=True,
                    attrs={"squeeze_channels": sq, "gate": "sigmoid"},
                )
                j += 1
            conv_bn(prefix, b, j, mid, info.out_channels, 1, 1, 1, with_act=False)
            if info.stride == 1 and info.in_channels == info.out_channels:
                x = (n, info.in_channels, hw_in, hw_in)
                name = f"blocks.{b}.add" + (f"_{adds}" if adds else "")
                out.append(_with_block(make_layer("add", x, x, name=name, extra_input_shapes=(x,)), b))
                adds += 1
        head_c = make_divisible(1280 * max(1.0, self.width))
        conv_bn("head", "head", 0, self.blocks[-1].out_channels, head_c, 1, 1, 1)
        pooled = (n, head_c, 1, 1)
        out.append(
            _with_block(
                make_layer("global_avgpool", (n, head_c, hw, hw), pooled, name="classifier.0"), "head"
            )
        )
        flat = (n, head_c)
        out.append(
            _with_block(
                make_layer("flatten", pooled, flat, name="classifier.1", attrs={"start_dim": 1}), "head"
            )
        )
        out.append(_with_block(make_layer("dropout", flat, flat, name="classifier.2"), "head"))
        out.append(
            _with_block(
                make_layer(
                    "linear",
                    flat,
                    (n, self.num_classes),
                    name="classifier.3",
                    in_channels=head_c,
                    out_channels=self.num_classes,
                    bias=True,
                ),
                "head",
            )
        )
        return out


def _with_block(layer: LayerSpec, block: int | str) -> LayerSpec:
    attrs = dict(layer.attrs)
    attrs["block"] = block
    return replace(layer, attrs=tuple(sorted(attrs.items(), key=lambda kv: kv[0])))


class MBV2Net(nn.Module):
    """stem → blocks → head → classifier (extract_layers names residual adds ``blocks.<i>.add_<k>``)."""

    def __init__(
        self, stem: nn.Module, blocks: nn.Sequential, head: nn.Module, classifier: nn.Module
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = blocks
        self.head = head
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))))


def _parse_token(tok: str) -> BlockChoice:
    if tok == SKIP:
        return BlockChoice(skip=True)
    m = _TOKEN.match(tok)
    if m is None:
        raise InputError(f"mbv2 block token {tok!r} is malformed", hint="e.g. k3e6, k5e3, k5e6se25 or skip")
    se = int(m.group(3)) / 100 if m.group(3) else 0.0
    return BlockChoice(int(m.group(1)), int(m.group(2)), se)


def _block_of(name: str) -> int | str:
    """Block index from a layer name: ``blocks.3.conv.0`` or fx's ``blocks_3_add`` → 3."""
    m = re.match(r"^blocks[._](\d+)", name)
    if m:
        return int(m.group(1))
    return "head" if name.startswith(("head", "classifier")) else "stem"


def resolve_name(prefix: str, arch: str, input_shape: tuple[int, ...] | None, batch_size: int) -> Any:
    """``mbv2:<arch>`` (resolution from the input shape, default 224) or ``mbv2@<res>[w<width>]:<arch>``
    as a ResolvedModel (the ``mbv2`` family of ``hwnas.graph.models.resolve_model``)."""
    from hwnas.graph.models import ResolvedModel

    m = re.fullmatch(r"mbv2(?:@(\d+)(?:w(\d+(?:\.\d+)?))?)?", prefix)
    if m is None:
        raise InputError(
            f"model prefix {prefix!r} is malformed", hint="use mbv2:<arch> or mbv2@96w0.5:<arch>"
        )
    res = int(m.group(1)) if m.group(1) else (int(input_shape[-1]) if input_shape is not None else 224)
    if m.group(1) and input_shape is not None and int(input_shape[-1]) != res:
        raise InputError(
            f"input shape {input_shape} disagrees with resolution {res} of {prefix!r}",
            hint="drop --input-shape or the @<resolution> of the model name",
        )
    width = float(m.group(2) or 1.0)
    # decode permissively: SE tokens (Single-Path+) and searched first/last blocks are valid points too
    space = MBV2Space(resolution=res, width=width, se_ratios=(0.0, 0.25, 0.5))
    try:
        canonical = space.encode(space.decode(arch))
    except InputError as first_error:
        space = MBV2Space(resolution=res, width=width, se_ratios=(0.0, 0.25, 0.5), search_ends=True)
        try:
            canonical = space.encode(space.decode(arch))
        except InputError:
            raise first_error from None
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
    else:
        shape = (int(batch_size), *space.input_shape)
    model_id = space.model_id(canonical) if m.group(1) else f"mbv2:{canonical}"
    module = space.build(canonical).eval()
    spec = space.layers(canonical, batch_size=shape[0])
    return ResolvedModel(
        name=f"mbv2:{canonical}",
        model_id=model_id,
        module=module,
        onnx_path=None,
        input_shape=shape,
        spec=spec,
    )
