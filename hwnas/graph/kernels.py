"""Kernel kinds: what one fused unit of a runtime *is*, as a small integer configuration that can be sampled.

A per-kernel latency predictor (nn-Meter, LitePred) is fitted on kernels sampled over a configuration space,
not on the layers of the networks someone happened to profile. This module is that space for the kernels
onnxruntime's CPU provider runs, as :mod:`hwnas.graph.fusion` forms them (``ONNXRUNTIME_CPU``):

- :data:`KERNEL_KINDS`: one kind per fused unit type (dense conv, conv + residual add, grouped and depthwise
  conv, pools, SE, linear, add, concat, activation, batchnorm, channel-shuffle transpose, reshape), each
  with the integer fields that determine its cost.
- :class:`KernelConfig`: one point of that space; ``features()`` adds the analytic costs (MACs, FLOPs,
  bytes moved) a predictor regresses on; ``key()`` is its stable identity.
- :func:`kernel_of_unit`: the config of a real network's unit (or None, with :func:`no_kind_reason`).
- :data:`SAMPLING_RANGES` / :data:`SAMPLING_LIMITS` and :func:`out_of_range`: the sampled region and the
  reasons a config lies outside it (a predictor must not answer those with a confident point).
- :func:`kernel_layers`: the LayerSpecs of one kernel, fused by the backend into exactly one unit, so the
  existing per-unit profiling path builds and times it alone.

Units with no kind (``kernel_of_unit`` returns None): a unit of only Dropout/Identity (runs no kernel on
onnxruntime: cost 0), ``mul`` of two tensors, ``matmul``, ``layernorm``, ``softmax``, ``pad``, ``zero``,
unknown ops, a concat not on the channel axis, a permute that is not a channel shuffle. A predictor answers
those from a fallback and names them as out of distribution.

Conventions: batch is a field (sampled only at 1); ``hw`` is the input height = width (a non-square input
is mapped to the square of the same area, and :func:`out_of_range` says so); convolutions are "same"
padded (``k // 2``, dilation 1 sampled); pools pad ``(k - 1) // 2``. BatchNorm after a convolution is
folded into it by onnxruntime, so conv and conv+bn share a config.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from hwnas.errors import InputError
from hwnas.graph.fusion import Unit
from hwnas.graph.layer import ACTIVATION_OPS, LayerSpec, make_layer, same_conv

#: activation codes (the ``act`` and ``gate`` fields); 0 is "no activation"
ACTIVATIONS: tuple[str, ...] = ("none", "relu", "relu6", "hardswish", "sigmoid", "silu", "tanh",
                                "hardsigmoid", "gelu")  # fmt: skip
ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}
_NO_KERNEL_OPS = frozenset({"dropout", "identity"})  # removed by onnxruntime at inference


@dataclass(frozen=True)
class KernelKind:
    """A kind of kernel: its name, the config fields that determine its cost, and what it covers."""

    name: str
    fields: tuple[str, ...]
    doc: str


_CONV = ("cin", "cout", "hw", "k", "stride", "act", "dilation", "batch")
KERNEL_KINDS: dict[str, KernelKind] = {k.name: k for k in (
    KernelKind("conv", _CONV, "dense conv k x k (groups 1), alone or + folded BatchNorm, + fused activation"),
    KernelKind("conv_add", (*_CONV, "groups"), "conv (+ BN) + residual add (+ activation): NCHWc Conv+Sum"),
    KernelKind("grouped_conv", (*_CONV, "groups"), "grouped conv, 1 < groups < cin (+ BN, + activation)"),
    KernelKind("dwconv", _CONV, "depthwise conv, groups = cin (+ BN, + activation)"),
    KernelKind("maxpool", ("cin", "hw", "k", "stride", "batch"), "max pooling, padding (k - 1) // 2"),
    KernelKind("avgpool", ("cin", "hw", "k", "stride", "batch"), "average pooling, padding (k - 1) // 2"),
    KernelKind("global_pool", ("cin", "hw", "batch"), "global average pooling"),
    KernelKind("se", ("cin", "hw", "squeeze", "act", "gate", "batch"),
               "squeeze-excitation: pool, 1x1 down to `squeeze`, act, 1x1 up, gate, scale"),
    KernelKind("linear", ("cin", "cout", "act", "batch"), "fully connected (Gemm) + fused activation"),
    KernelKind("add", ("cin", "hw", "batch"), "element-wise add of two tensors (a residual not fused)"),
    KernelKind("concat", ("cout", "hw", "parts", "batch"), "channel concat of `parts` tensors"),
    KernelKind("act", ("cin", "hw", "act", "batch"), "an activation alone (SiLU, or one after a BN/add)"),
    KernelKind("bn", ("cin", "hw", "batch"), "BatchNorm alone (pre-activation nets: DenseNet)"),
    KernelKind("transpose", ("cin", "hw", "groups", "batch"),
               "channel shuffle (N,g,C/g,H,W) -> (N,C/g,g,H,W)"),
    KernelKind("reshape", ("cin", "hw", "batch"), "flatten / reshape (a copy or a view)"),
)}  # fmt: skip
_ALL_FIELDS = ("cin", "cout", "hw", "k", "stride", "groups", "act", "gate", "squeeze", "parts", "dilation",
               "batch")  # fmt: skip
_DEFAULTS = {"k": 1, "stride": 1, "groups": 1, "act": 0, "gate": 0, "dilation": 1, "batch": 1}


@dataclass(frozen=True)
class KernelConfig:
    """One kernel: a kind and its integer fields (fields the kind does not use are normalised away).

    Build one as ``KernelConfig("conv", cin=32, cout=64, hw=56, k=3, stride=1, act=1)``.
    """

    kind: str
    cin: int = 0
    cout: int = 0
    hw: int = 0
    k: int = 0
    stride: int = 0
    groups: int = 0
    act: int = 0
    gate: int = 0
    squeeze: int = 0
    parts: int = 0
    dilation: int = 0
    batch: int = 1

    def __post_init__(self) -> None:
        spec = KERNEL_KINDS.get(self.kind)
        if spec is None:
            raise InputError(f"unknown kernel kind {self.kind!r}", hint=f"one of {', '.join(KERNEL_KINDS)}")
        for name in _ALL_FIELDS:
            v = getattr(self, name)
            if name not in spec.fields:
                object.__setattr__(self, name, 0)
                continue
            v = int(v) if v else _DEFAULTS.get(name, 0)
            object.__setattr__(self, name, v)
            if name in ("act", "gate"):
                if not 0 <= v < len(ACTIVATIONS):
                    raise InputError(f"kernel {self.kind}: {name}={v} is no activation code",
                                     hint=f"0..{len(ACTIVATIONS) - 1}: {', '.join(ACTIVATIONS)}")  # fmt: skip
            elif v < 1:
                raise InputError(f"kernel {self.kind}: field {name} must be a positive integer, got {v}")

    @property
    def spec(self) -> KernelKind:
        return KERNEL_KINDS[self.kind]

    def values(self) -> dict[str, int]:
        """The kind's own fields and their values, in the kind's field order."""
        return {name: getattr(self, name) for name in self.spec.fields}

    def key(self) -> str:
        """Stable identity: ``conv|cin=32|cout=64|hw=56|k=3|stride=1|act=1|dilation=1|batch=1``."""
        return "|".join([self.kind, *(f"{n}={v}" for n, v in self.values().items())])

    @classmethod
    def from_key(cls, key: str) -> KernelConfig:
        kind, *parts = str(key).split("|")
        try:
            vals = {p.split("=", 1)[0]: int(p.split("=", 1)[1]) for p in parts}
        except (IndexError, ValueError) as exc:
            raise InputError(f"not a kernel key: {key!r}", hint="kind|field=int|...") from exc
        return cls(kind, **vals)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.values()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: (v if k == "kind" else int(v)) for k, v in data.items() if k in names})

    @property
    def out_hw(self) -> int:
        if self.kind in ("conv", "conv_add", "grouped_conv", "dwconv"):
            return (self.hw + 2 * (self.k // 2) - self.dilation * (self.k - 1) - 1) // self.stride + 1
        if self.kind in ("maxpool", "avgpool"):
            return (self.hw + 2 * ((self.k - 1) // 2) - self.k) // self.stride + 1
        if self.kind == "global_pool":
            return 1
        return self.hw

    def features(self) -> dict[str, float]:
        """The kind's fields plus analytic costs of :func:`kernel_layers` (counting as ``graph.analytic``):
        ``macs``, ``flops``, ``params``, ``weight_bytes``, ``input_bytes`` (every input), ``output_bytes``,
        ``bytes`` (their sum), ``out_hw``."""
        return dict(_features(self))


@functools.lru_cache(maxsize=65536)
def _features(cfg: KernelConfig) -> tuple[tuple[str, float], ...]:
    layers = kernel_layers(cfg)
    unit = Unit(tuple(layers))
    shapes, _ = unit.wiring()
    dt = layers[0].dtype_bytes
    in_bytes = sum(math.prod(s) for s in shapes) * dt
    out_bytes = math.prod(unit.output_shape) * dt
    wbytes = sum(layer.weight_bytes for layer in layers)
    out: dict[str, float] = {k: float(v) for k, v in cfg.values().items()}
    out.update(macs=float(unit.macs), flops=float(unit.flops), params=float(unit.params),
               weight_bytes=float(wbytes), input_bytes=float(in_bytes), output_bytes=float(out_bytes),
               bytes=float(in_bytes + out_bytes + wbytes), out_hw=float(cfg.out_hw))  # fmt: skip
    return tuple(out.items())


# ----------------------------------------------------------------------------------------------- ranges
@dataclass(frozen=True)
class FieldRange:
    """How one field is sampled: ``values`` (a choice, with optional ``weights``), or ``lo``..``hi``
    (log-uniform when ``log``), rounded by ``snap``: ``channels`` (3, or a multiple of 8), ``spatial``
    (the nearest of :data:`SPATIAL_SIZES`) or ``int``."""

    lo: int = 0
    hi: int = 0
    values: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()
    log: bool = True
    snap: str = "int"

    def contains(self, v: int) -> bool:
        if self.values:
            return v in self.values
        return self.lo <= v <= self.hi

    def describe(self) -> str:
        if self.values:
            return "{" + ", ".join(str(v) for v in self.values) + "}"
        return f"{self.lo}-{self.hi}" + (" (log)" if self.log else "")


#: Feature-map sizes real CNNs run at for 32-224 px inputs (224/192/160/128/96/64/32 halved, and the odd
#: sizes of unpadded stems: SqueezeNet/AlexNet 55/27/13).
SPATIAL_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 14, 16, 20, 24, 27, 28, 32, 40, 48, 55, 56, 64, 80, 96,
                 112, 128, 160, 192, 224)  # fmt: skip

_CH = FieldRange(8, 2048, snap="channels")
_CH_IN = FieldRange(3, 2048, snap="channels")
_HW = FieldRange(4, 224, snap="spatial")
_K = FieldRange(values=(1, 3, 5, 7), weights=(0.4, 0.4, 0.1, 0.1))
_K_DW = FieldRange(values=(3, 5, 7), weights=(0.5, 0.35, 0.15))
_STRIDE = FieldRange(values=(1, 2), weights=(0.7, 0.3))
_ACT_CONV = FieldRange(values=(0, 1, 2, 3), weights=(0.3, 0.4, 0.15, 0.15))  # what ORT fuses into a conv
_ONE = FieldRange(values=(1,))
_POOL_K = FieldRange(values=(1, 2, 3), weights=(0.1, 0.4, 0.5))  # k 1: an adaptive pool that keeps the size
SAMPLING_RANGES: dict[str, dict[str, FieldRange]] = {
    "conv": {"cin": _CH_IN, "cout": _CH, "hw": _HW, "k": _K, "stride": _STRIDE, "act": _ACT_CONV,
             "dilation": _ONE, "batch": _ONE},
    "conv_add": {"cin": _CH, "cout": _CH, "hw": FieldRange(4, 112, snap="spatial"),
                 "k": FieldRange(values=(1, 3), weights=(0.6, 0.4)),
                 "stride": FieldRange(values=(1, 2), weights=(0.8, 0.2)),
                 "act": FieldRange(values=(0, 1), weights=(0.5, 0.5)), "dilation": _ONE, "groups": _ONE,
                 "batch": _ONE},
    "grouped_conv": {"cin": FieldRange(16, 2048, snap="channels"), "cout": _CH, "hw": FieldRange(4, 112,
                     snap="spatial"), "k": FieldRange(values=(3, 5), weights=(0.85, 0.15)), "stride": _STRIDE,
                     "groups": FieldRange(2, 128), "act": FieldRange(values=(0, 1), weights=(0.3, 0.7)),
                     "dilation": _ONE, "batch": _ONE},
    "dwconv": {"cin": _CH, "cout": _CH, "hw": _HW, "k": _K_DW, "stride": _STRIDE, "act": _ACT_CONV,
               "dilation": _ONE, "batch": _ONE},
    "maxpool": {"cin": _CH, "hw": _HW, "k": _POOL_K, "stride": FieldRange(values=(1, 2), weights=(0.3, 0.7)),
                "batch": _ONE},
    "avgpool": {"cin": _CH, "hw": _HW, "k": _POOL_K, "stride": FieldRange(values=(1, 2), weights=(0.3, 0.7)),
                "batch": _ONE},
    "global_pool": {"cin": _CH, "hw": FieldRange(1, 56, snap="spatial"), "batch": _ONE},
    "se": {"cin": FieldRange(16, 2048, snap="channels"), "hw": FieldRange(1, 112, snap="spatial"),
           "squeeze": FieldRange(4, 512), "act": FieldRange(values=(1, 3, 5)),
           "gate": FieldRange(values=(4, 7)), "batch": _ONE},
    "linear": {"cin": FieldRange(16, 4096, snap="channels"), "cout": FieldRange(8, 4096, snap="channels"),
               "act": FieldRange(values=(0, 1, 3), weights=(0.6, 0.2, 0.2)), "batch": _ONE},
    "add": {"cin": _CH, "hw": _HW, "batch": _ONE},
    "concat": {"cout": FieldRange(16, 2048, snap="channels"), "hw": _HW, "parts": FieldRange(1, 64),
               "batch": _ONE},
    "act": {"cin": _CH, "hw": _HW, "act": FieldRange(values=(1, 2, 3, 4, 5, 7)), "batch": _ONE},
    "bn": {"cin": _CH, "hw": _HW, "batch": _ONE},
    "transpose": {"cin": FieldRange(16, 2048, snap="channels"), "hw": FieldRange(4, 112, snap="spatial"),
                  "groups": FieldRange(values=(2, 3, 4, 8)), "batch": _ONE},
    "reshape": {"cin": _CH, "hw": FieldRange(1, 112, snap="spatial"), "batch": _ONE},
}
#: Joint limits of the sampled region: what real CNNs at 32-224 px stay within, and what keeps one kernel's
#: profiling cheap. ``max_ratio``: max(cin, cout) / min(cin, cout) of convolutions and linear layers (the
#: 3 -> 96 stem of SqueezeNet is 32, GoogLeNet's 480 -> 16 reduce 30); ``max_elems``: input or output
#: tensor elements (64 x 224 x 224); ``max_macs``: multiply-accumulates of one kernel (VGG's 3x3 convs at
#: 224 px, 1.8 G, lie outside).
SAMPLING_LIMITS: dict[str, float] = {"max_ratio": 32.0, "max_elems": 64 * 224 * 224, "max_macs": 1.0e9}


def out_of_range(cfg: KernelConfig) -> list[str]:
    """Why ``cfg`` lies outside the sampled region, one reason per field or limit (empty: inside)."""
    reasons: list[str] = []
    ranges = SAMPLING_RANGES[cfg.kind]
    for name, value in cfg.values().items():
        r = ranges.get(name)
        if r is not None and not r.contains(value):
            what = ACTIVATIONS[value] if name in ("act", "gate") and value < len(ACTIVATIONS) else value
            reasons.append(f"{name}={what} outside the sampled {r.describe()}")
    reasons.extend(_joint_reasons(cfg))
    return reasons


def _joint_reasons(cfg: KernelConfig) -> list[str]:
    out: list[str] = []
    if cfg.kind in ("conv", "conv_add", "grouped_conv", "linear"):
        ratio = max(cfg.cin, cfg.cout) / min(cfg.cin, cfg.cout)
        if ratio > SAMPLING_LIMITS["max_ratio"]:
            lim = SAMPLING_LIMITS["max_ratio"]
            out.append(f"cout/cin={cfg.cout}/{cfg.cin} beyond the sampled ratio {lim:g}")
    if cfg.kind == "dwconv" and cfg.cout != cfg.cin:
        out.append(f"cout={cfg.cout} != cin={cfg.cin}: only multiplier-1 depthwise convs are sampled")
    if cfg.kind == "grouped_conv":
        if cfg.cout != cfg.cin:
            out.append(f"cout={cfg.cout} != cin={cfg.cin}: grouped convs are sampled with cout = cin")
        if cfg.cin % cfg.groups or cfg.groups >= cfg.cin:
            out.append(f"groups={cfg.groups} does not divide cin={cfg.cin} into groups of >= 2 channels")
    if cfg.kind == "se" and cfg.squeeze > cfg.cin:
        out.append(f"squeeze={cfg.squeeze} exceeds cin={cfg.cin}")
    if cfg.kind == "concat" and cfg.parts > cfg.cout:
        out.append(f"parts={cfg.parts} exceeds cout={cfg.cout}")
    if cfg.kind == "transpose" and cfg.cin % cfg.groups:
        out.append(f"groups={cfg.groups} does not divide cin={cfg.cin}")
    if cfg.kind in ("conv", "conv_add", "grouped_conv", "dwconv", "maxpool", "avgpool") and cfg.out_hw < 1:
        out.append(f"hw={cfg.hw} too small for k={cfg.k}, stride={cfg.stride}")
        return out
    f = cfg.features()
    elems = max(f["input_bytes"], f["output_bytes"]) / 4
    if elems > SAMPLING_LIMITS["max_elems"]:
        out.append(f"tensor of {elems:.3g} elements beyond the sampled {SAMPLING_LIMITS['max_elems']:.3g}")
    if f["macs"] > SAMPLING_LIMITS["max_macs"]:
        out.append(f"macs={f['macs']:.3g} beyond the sampled {SAMPLING_LIMITS['max_macs']:.3g}")
    return out


def snap(value: float, how: str) -> int:
    """Round a sampled value to one real nets use (see :class:`FieldRange`)."""
    if how == "channels":
        return 3 if value < 5.5 else max(8, int(round(value / 8.0)) * 8)
    if how == "spatial":
        return min(SPATIAL_SIZES, key=lambda s: abs(math.log(s) - math.log(max(value, 1e-9))))
    return max(1, int(round(value)))


# ----------------------------------------------------------------------------------- unit <-> config
def _hw_of(shape: Sequence[int]) -> int:
    if len(shape) < 4:
        return 1
    h, w = int(shape[-2]), int(shape[-1])
    return h if h == w else max(1, round(math.sqrt(h * w)))


def _core(unit: Unit) -> list[LayerSpec]:
    return [layer for layer in unit.layers if layer.op not in _NO_KERNEL_OPS]


def _conv_config(layers: list[LayerSpec]) -> KernelConfig | None:
    conv, rest = layers[0], [la.op for la in layers[1:]]
    if conv.kernel is None or len(conv.input_shape) != 4:
        return None
    allowed = ["batchnorm", "add", *sorted(ACTIVATION_OPS)]
    if any(op not in allowed for op in rest) or rest.count("add") > 1:
        return None
    acts = [op for op in rest if op in ACTIVATION_OPS]
    act = ACT_CODE.get(acts[-1], 0) if acts else 0
    cin = int(conv.in_channels or conv.input_shape[1])
    cout = int(conv.out_channels or conv.output_shape[1])
    k = int(max(conv.kernel))
    stride = int(max(conv.stride or (1, 1)))
    dil = int(max(conv.dilation or (1, 1)))
    common = dict(cin=cin, cout=cout, hw=_hw_of(conv.input_shape), k=k, stride=stride, act=act, dilation=dil,
                  batch=int(conv.input_shape[0]))  # fmt: skip
    if "add" in rest:
        return KernelConfig("conv_add", groups=conv.groups, **common)
    if conv.groups == 1:
        return KernelConfig("conv", **common)
    if conv.groups == cin:
        return KernelConfig("dwconv", **common)
    return KernelConfig("grouped_conv", groups=conv.groups, **common)


def kernel_of_unit(unit: Unit) -> KernelConfig | None:
    """The kind and config of one fused unit of a real network (None: no kind, see :func:`no_kind_reason`)."""
    layers = _core(unit)
    if not layers:
        return None
    a = layers[0]
    shape = a.input_shape
    n = int(shape[0]) if shape else 1
    if a.op == "conv2d":
        return _conv_config(layers)
    if a.op == "linear":
        rest = [la.op for la in layers[1:]]
        if any(op not in ACTIVATION_OPS for op in rest):
            return None
        act = ACT_CODE.get(rest[-1], 0) if rest else 0
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        return KernelConfig("linear", cin=int(shape[-1]), cout=int(a.output_shape[-1]), act=act, batch=rows)
    if len(layers) > 1 or len(shape) < 2:
        return None
    c, hw = int(shape[1]), _hw_of(shape)
    if a.op in ("maxpool2d", "avgpool2d") and a.kernel is not None and len(shape) == 4:
        kind = "maxpool" if a.op == "maxpool2d" else "avgpool"
        return KernelConfig(kind, cin=c, hw=hw, k=int(max(a.kernel)), stride=int(max(a.stride or a.kernel)),
                            batch=n)  # fmt: skip
    if a.op == "global_avgpool" and len(shape) == 4:
        return KernelConfig("global_pool", cin=c, hw=hw, batch=n)
    if a.op == "se" and len(shape) == 4:
        sq = int(a.attr("squeeze_channels", max(1, round(c * (a.se_ratio or 0.25)))))
        return KernelConfig("se", cin=c, hw=hw, squeeze=sq, act=ACT_CODE.get(str(a.attr("act", "relu")), 1),
                            gate=ACT_CODE.get(str(a.attr("gate", "sigmoid")), 4), batch=n)  # fmt: skip
    if a.op == "add" and len(a.extra_input_shapes) == 1 and len(shape) == 4:
        return KernelConfig("add", cin=c, hw=hw, batch=n)
    if a.op == "concat" and int(a.attr("axis", 1)) == 1 and len(shape) == 4:
        return KernelConfig("concat", cout=int(a.output_shape[1]), hw=hw, parts=1 + len(a.extra_input_shapes),
                            batch=n)  # fmt: skip
    if a.op in ACTIVATION_OPS and a.op != "softmax" and len(shape) == 4:
        return KernelConfig("act", cin=c, hw=hw, act=ACT_CODE[a.op], batch=n)
    if a.op == "batchnorm" and len(shape) == 4:
        return KernelConfig("bn", cin=c, hw=hw, batch=n)
    if a.op == "permute" and len(shape) == 5 and str(a.attr("perm")) == "0,2,1,3,4":
        g = int(shape[1])
        return KernelConfig("transpose", cin=g * int(shape[2]), hw=_hw_of(shape), groups=g, batch=n)
    if a.op in ("flatten", "reshape"):
        hw = _hw_of(shape) if len(shape) >= 4 else 1
        return KernelConfig("reshape", cin=max(1, math.prod(shape[1:]) // (hw * hw)), hw=hw, batch=n)
    return None


def no_kind_reason(unit: Unit) -> str:
    """Why :func:`kernel_of_unit` gives ``unit`` no kind ("" when it has one)."""
    layers = _core(unit)
    if not layers:
        return "no kernel: onnxruntime removes Dropout/Identity at inference (cost 0)"
    if kernel_of_unit(unit) is not None:
        return ""
    return f"no kernel kind for {unit.op} on input {list(unit.input_shape)}"


def kernel_layers(cfg: KernelConfig) -> list[LayerSpec]:
    """The layers of one kernel; ``fuse(..., "onnxruntime-cpu")`` makes them exactly one unit."""
    n, c, hw = cfg.batch, cfg.cin, cfg.hw
    x = (n, c, hw, hw)
    act = [make_layer(ACTIVATIONS[cfg.act], _out(cfg), _out(cfg), name="act")] if cfg.act else []
    if cfg.kind in ("conv", "conv_add", "grouped_conv", "dwconv"):
        groups = {"conv": 1, "dwconv": c}.get(cfg.kind, cfg.groups)
        conv = same_conv(n, c, cfg.cout, hw, cfg.k, cfg.stride, groups=groups, name="conv")
        if cfg.dilation != 1:
            conv = make_layer("conv2d", x, _out(cfg), name="conv", in_channels=c, out_channels=cfg.cout,
                              kernel=cfg.k, stride=cfg.stride, padding=cfg.k // 2, dilation=cfg.dilation,
                              groups=groups)  # fmt: skip
        o = conv.output_shape
        bn = make_layer("batchnorm", o, o, name="bn", in_channels=cfg.cout)
        add = [make_layer("add", o, o, name="add", extra_input_shapes=(o,))] if cfg.kind == "conv_add" else []
        return [conv, bn, *add, *act]
    if cfg.kind in ("maxpool", "avgpool"):
        op = "maxpool2d" if cfg.kind == "maxpool" else "avgpool2d"
        return [make_layer(op, x, _out(cfg), name="pool", kernel=cfg.k, stride=cfg.stride,
                           padding=(cfg.k - 1) // 2)]  # fmt: skip
    if cfg.kind == "global_pool":
        return [make_layer("global_avgpool", x, (n, c, 1, 1), name="pool")]
    if cfg.kind == "se":
        attrs = {"squeeze_channels": cfg.squeeze, "gate": ACTIVATIONS[cfg.gate]}
        if cfg.act != ACT_CODE["relu"]:
            attrs["act"] = ACTIVATIONS[cfg.act]
        return [make_layer("se", x, x, name="se", in_channels=c, out_channels=c, se_ratio=cfg.squeeze / c,
                           bias=True, attrs=attrs)]  # fmt: skip
    if cfg.kind == "linear":
        lin = make_layer("linear", (n, c), (n, cfg.cout), name="fc", in_channels=c, out_channels=cfg.cout,
                         bias=True)  # fmt: skip
        return [lin, *([make_layer(ACTIVATIONS[cfg.act], (n, cfg.cout), (n, cfg.cout), name="act")]
                       if cfg.act else [])]  # fmt: skip
    if cfg.kind == "add":
        return [make_layer("add", x, x, name="add", extra_input_shapes=(x,))]
    if cfg.kind == "concat":
        base, extra = divmod(cfg.cout, cfg.parts)
        parts = [(n, base + (1 if i < extra else 0), hw, hw) for i in range(cfg.parts)]
        return [make_layer("concat", parts[0], (n, cfg.cout, hw, hw), name="cat",
                           extra_input_shapes=tuple(parts[1:]), attrs={"axis": 1})]  # fmt: skip
    if cfg.kind == "act":
        return [make_layer(ACTIVATIONS[cfg.act], x, x, name="act")]
    if cfg.kind == "bn":
        return [make_layer("batchnorm", x, x, name="bn", in_channels=c)]
    if cfg.kind == "transpose":
        g = cfg.groups
        return [make_layer("permute", (n, g, c // g, hw, hw), (n, c // g, g, hw, hw), name="shuffle",
                           attrs={"perm": "0,2,1,3,4"})]  # fmt: skip
    if cfg.kind == "reshape":
        return [make_layer("flatten", x, (n, c * hw * hw), name="flatten", attrs={"start_dim": 1})]
    raise InputError(f"kernel kind {cfg.kind!r} has no layers")  # pragma: no cover - kinds are closed


def _out(cfg: KernelConfig) -> tuple[int, ...]:
    if cfg.kind == "linear":
        return (cfg.batch, cfg.cout)
    c = cfg.cout if cfg.kind in ("conv", "conv_add", "grouped_conv", "dwconv") else cfg.cin
    return (cfg.batch, c, cfg.out_hw, cfg.out_hw)


def configs_to_dicts(cfgs: Sequence[KernelConfig]) -> list[dict[str, Any]]:
    """Plain dicts (every field, unused ones 0), e.g. for a DataFrame."""
    return [asdict(c) for c in cfgs]
