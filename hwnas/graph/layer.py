"""LayerSpec: one layer, framework-neutral, with its analytic costs and a stable layer key.

The vocabulary is that of ../shared/ARCHITECTURE.md. A LayerSpec is immutable; build one with
:func:`make_layer`, which fills in MACs, FLOPs, params and bytes from the shapes (``hwnas.graph.analytic``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# Canonical op names. Extractors map framework ops onto these; anything else becomes "unknown"
# (kept and flagged, never dropped).
CONV_OPS = frozenset({"conv2d"})
DENSE_OPS = frozenset({"linear", "matmul"})
POOL_OPS = frozenset({"maxpool2d", "avgpool2d", "global_avgpool"})
NORM_OPS = frozenset({"batchnorm", "layernorm"})
ACTIVATION_OPS = frozenset(
    {"relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu", "tanh", "softmax"}
)
ELEMENTWISE_OPS = frozenset({"add", "mul"})
SHAPE_OPS = frozenset({"concat", "flatten", "reshape", "identity", "dropout", "pad", "zero", "permute"})
COMPOSITE_OPS = frozenset({"se"})
KNOWN_OPS = (
    CONV_OPS | DENSE_OPS | POOL_OPS | NORM_OPS | ACTIVATION_OPS | ELEMENTWISE_OPS | SHAPE_OPS | COMPOSITE_OPS
)
UNKNOWN_OP = "unknown"

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerSpec:
    """One layer with everything that determines its cost.

    Shapes include the batch dimension (NCHW for images, N×F for dense layers). ``extra_input_shapes``
    holds the other operands of multi-input ops (add, mul, concat). ``attrs`` keeps op-specific settings
    (e.g. ``squeeze_channels``, ``gate`` and ``act`` of an SE block, ``source_op`` of an unknown op) as
    sorted key/value pairs.
    """

    op: str
    input_shape: Shape
    output_shape: Shape
    name: str = ""
    in_channels: int | None = None
    out_channels: int | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None
    groups: int = 1
    bias: bool = False
    expansion: float | None = None
    se_ratio: float | None = None
    extra_input_shapes: tuple[Shape, ...] = ()
    dtype_bytes: int = 4
    attrs: tuple[tuple[str, Any], ...] = ()
    # Analytic costs, filled in by make_layer().
    macs: int = 0
    flops: int = 0
    params: int = 0
    weight_bytes: int = 0
    activation_bytes: int = 0

    @property
    def unknown(self) -> bool:
        """True for an op the extractor could not map; its costs are unknown, not zero."""
        return self.op == UNKNOWN_OP

    @property
    def batch_size(self) -> int:
        return int(self.input_shape[0]) if self.input_shape else 1

    @property
    def is_depthwise(self) -> bool:
        return self.op == "conv2d" and self.groups > 1 and self.groups == self.in_channels

    def attr(self, key: str, default: Any = None) -> Any:
        return dict(self.attrs).get(key, default)

    def key(self) -> str:
        """Stable string of the fields that determine the layer's cost (not its name).

        Two layers with the same key cost the same on a given device, so lookup tables are keyed by it.
        """
        parts = [self.op, "in=" + _fmt_shape(self.input_shape), "out=" + _fmt_shape(self.output_shape)]
        if self.extra_input_shapes:
            parts.append("x=" + ",".join(_fmt_shape(s) for s in self.extra_input_shapes))
        if self.kernel is not None:
            parts.append(f"k={self.kernel[0]}x{self.kernel[1]}")
        if self.stride is not None:
            parts.append(f"s={self.stride[0]}x{self.stride[1]}")
        if self.padding is not None:
            parts.append(f"p={self.padding[0]}x{self.padding[1]}")
        if self.dilation is not None and tuple(self.dilation) != (1, 1):
            parts.append(f"d={self.dilation[0]}x{self.dilation[1]}")
        if self.groups != 1:
            parts.append(f"g={self.groups}")
        if self.bias:
            parts.append("b")
        for k, v in self.attrs:
            if k not in _NON_COST_ATTRS:
                parts.append(f"{k}={v}")
        if self.dtype_bytes != 4:
            parts.append(f"dt={self.dtype_bytes}")
        return "|".join(parts)

    def with_batch(self, batch_size: int) -> LayerSpec:
        """The same layer at another batch size, costs recomputed."""
        from hwnas.graph.analytic import fill_costs

        def rebatch(shape: Shape) -> Shape:
            return (batch_size, *shape[1:]) if shape else shape

        return fill_costs(
            replace(
                self,
                input_shape=rebatch(self.input_shape),
                output_shape=rebatch(self.output_shape),
                extra_input_shapes=tuple(rebatch(s) for s in self.extra_input_shapes),
            )
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["attrs"] = dict(self.attrs)
        d["key"] = self.key()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerSpec:
        d = dict(data)
        d.pop("key", None)
        for name in ("input_shape", "output_shape", "kernel", "stride", "padding", "dilation"):
            if d.get(name) is not None:
                d[name] = tuple(int(v) for v in d[name])
        d["extra_input_shapes"] = tuple(tuple(int(v) for v in s) for s in d.get("extra_input_shapes", ()))
        d["attrs"] = tuple(sorted((d.get("attrs") or {}).items()))
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Attributes that describe a layer but do not change its cost (excluded from the key).
_NON_COST_ATTRS = frozenset({"source_op", "module_type", "block"})


def _fmt_shape(shape: Shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def _pair(v: int | tuple[int, ...] | list[int] | None) -> tuple[int, int] | None:
    if v is None:
        return None
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def same_conv(
    batch: int, cin: int, cout: int, size: int, kernel: int, stride: int, groups: int = 1, name: str = ""
) -> LayerSpec:
    """A bias-free square conv2d with padding ``kernel // 2`` on a ``size``×``size`` input: the convolution
    every MobileNet-style search space (MobileNetV2, FBNetV2) is built from."""
    out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    return make_layer(
        "conv2d",
        (batch, cin, size, size),
        (batch, cout, out, out),
        name=name,
        in_channels=cin,
        out_channels=cout,
        kernel=kernel,
        stride=stride,
        padding=kernel // 2,
        dilation=1,
        groups=groups,
        bias=False,
    )


def make_layer(op: str, input_shape: Shape, output_shape: Shape, **fields: Any) -> LayerSpec:
    """Build a LayerSpec and fill in its analytic costs.

    ``kernel``/``stride``/``padding``/``dilation`` accept an int or a pair; ``attrs`` accepts a dict.
    An op outside :data:`KNOWN_OPS` is stored as ``unknown`` with ``source_op`` naming the original.
    """
    from hwnas.graph.analytic import fill_costs

    attrs = dict(fields.pop("attrs", {}) or {})
    if op not in KNOWN_OPS:
        attrs.setdefault("source_op", op)
        op = UNKNOWN_OP
    for name in ("kernel", "stride", "padding", "dilation"):
        if name in fields:
            fields[name] = _pair(fields[name])
    spec = LayerSpec(
        op=op,
        input_shape=tuple(int(s) for s in input_shape),
        output_shape=tuple(int(s) for s in output_shape),
        attrs=tuple(sorted(attrs.items())),
        **fields,
    )
    return fill_costs(spec)


@dataclass
class ModelSpec:
    """A whole network as an ordered list of layers, plus where it came from."""

    name: str
    input_shape: Shape
    layers: list[LayerSpec] = field(default_factory=list)
    source: str = ""

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def unknown_layers(self) -> list[LayerSpec]:
        return [layer for layer in self.layers if layer.unknown]

    def totals(self) -> dict[str, int]:
        return {
            "layers": len(self.layers),
            "unknown_layers": len(self.unknown_layers),
            "macs": self.macs,
            "flops": self.flops,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "peak_activation_bytes": max((layer.activation_bytes for layer in self.layers), default=0),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (layers as LayerSpec.to_dict, keys included); ``from_dict`` reads it back."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "source": self.source,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            name=str(data["name"]),
            input_shape=tuple(int(s) for s in data["input_shape"]),
            layers=[LayerSpec.from_dict(d) for d in data.get("layers", [])],
            source=str(data.get("source", "")),
        )
