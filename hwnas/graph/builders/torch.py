"""LayerSpec → runnable torch module (random weights, eval mode) and matching random inputs.

Profilers time one layer by running ``build_layer_module(spec)(*make_inputs(spec))``. The module is built
so that ``extract_layers`` on it gives back a layer with the same key (tests check this for every op).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import InputError
from hwnas.graph.fusion import Unit
from hwnas.graph.layer import LayerSpec, Shape

_DTYPES = {2: torch.float16, 4: torch.float32, 8: torch.float64}

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


class Combine(nn.Module):
    """add / mul / concat of its inputs; an add or mul with one input uses a scalar operand (+1, ×0.5).

    Subclasses fix the number of inputs in ``forward``'s signature, because fx cannot trace ``*args``
    (see ``build_layer_module``); ``extract_layers`` then sees the same op again.
    """

    def __init__(self, kind: str, axis: int = 1) -> None:
        super().__init__()
        self.kind = kind
        self.axis = axis

    def combine(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.kind == "concat":
            return torch.cat(xs, dim=self.axis)
        x = xs[0]
        if len(xs) == 1:
            return x + 1.0 if self.kind == "add" else x * 0.5
        for o in xs[1:]:
            x = x + o if self.kind == "add" else x * o
        return x


class Combine1(Combine):
    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.combine(a)


class Combine2(Combine):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.combine(a, b)


class Combine3(Combine):
    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.combine(a, b, c)


class Combine4(Combine):
    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return self.combine(a, b, c, d)


class CombineN(Combine):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:  # not fx-traceable; hooks see it as one module
        return self.combine(*xs)


_COMBINE = {1: Combine1, 2: Combine2, 3: Combine3, 4: Combine4}


class MatMul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = tuple(shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    def __init__(self, perm: tuple[int, ...]) -> None:
        super().__init__()
        self.perm = perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.perm)


class Pad(nn.Module):
    """Zero padding from the input to the output spatial size (extra row/column at the end)."""

    def __init__(self, in_shape: Shape, out_shape: Shape) -> None:
        super().__init__()
        pads: list[int] = []
        for i, o in reversed(list(zip(in_shape[2:], out_shape[2:], strict=False))):
            d = int(o) - int(i)
            pads += [d // 2, d - d // 2]
        self.pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class Zero(nn.Module):
    """NAS-Bench-201's ``none`` op: zeros of the output size (strided like the op it replaces)."""

    def __init__(self, in_shape: Shape, out_shape: Shape) -> None:
        super().__init__()
        self.step = tuple(
            max(1, int(i) // max(1, int(o))) for i, o in zip(in_shape[2:], out_shape[2:], strict=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.step) == 2 and self.step != (1, 1):
            x = x[:, :, :: self.step[0], :: self.step[1]]
        return x.mul(0.0)


def _conv(spec: LayerSpec) -> nn.Module:
    pads = spec.attr("pads")
    conv = nn.Conv2d(
        int(spec.in_channels or spec.input_shape[1]),
        int(spec.out_channels or spec.output_shape[1]),
        spec.kernel or (1, 1),
        stride=spec.stride or (1, 1),
        padding=spec.padding or (0, 0) if not pads else 0,
        dilation=spec.dilation or (1, 1),
        groups=spec.groups,
        bias=spec.bias,
    )
    if pads:  # asymmetric ONNX pads (top, left, bottom, right): pad explicitly first
        t, left, b, r = (int(p) for p in str(pads).split(","))
        return nn.Sequential(nn.ZeroPad2d((left, r, t, b)), conv)
    return conv


def _se(spec: LayerSpec) -> nn.Module:
    from torchvision.ops.misc import SqueezeExcitation

    c = int(spec.in_channels or spec.input_shape[1])
    s = int(spec.attr("squeeze_channels", max(1, round(c * (spec.se_ratio or 0.25)))))
    gate = nn.Hardsigmoid if spec.attr("gate", "sigmoid") == "hardsigmoid" else nn.Sigmoid
    act = {"silu": nn.SiLU, "hardswish": nn.Hardswish}.get(str(spec.attr("act", "relu")), nn.ReLU)
    return SqueezeExcitation(c, s, activation=act, scale_activation=gate)


def build_layer_module(spec: LayerSpec) -> nn.Module:
    """A torch module (random weights, eval mode) that computes ``spec``; InputError for unknown ops."""
    op = spec.op
    m: nn.Module
    if op == "conv2d":
        m = _conv(spec)
    elif op == "linear":
        fin = int(spec.in_channels or spec.input_shape[-1])
        m = nn.Linear(fin, int(spec.out_channels or spec.output_shape[-1]), bias=spec.bias)
    elif op == "matmul" and not spec.extra_input_shapes:  # a constant right operand: a bias-free linear
        m = nn.Linear(
            int(spec.attr("inner_dim", spec.input_shape[-1])), int(spec.output_shape[-1]), bias=False
        )
    elif op == "matmul":
        m = MatMul()
    elif op == "maxpool2d":
        m = nn.MaxPool2d(
            spec.kernel or 1, spec.stride, spec.padding or 0, ceil_mode=bool(spec.attr("ceil_mode"))
        )
    elif op == "avgpool2d":
        m = nn.AvgPool2d(
            spec.kernel or 1,
            spec.stride,
            spec.padding or 0,
            ceil_mode=bool(spec.attr("ceil_mode")),
            count_include_pad=bool(spec.attr("count_include_pad", True)),
        )
    elif op == "global_avgpool":
        m = nn.AdaptiveAvgPool2d(1)
    elif op == "batchnorm":
        m = nn.BatchNorm2d(int(spec.in_channels or spec.input_shape[1]))
    elif op == "layernorm":
        norm_shape = tuple(spec.input_shape[-int(spec.attr("norm_dims", 1)) :])
        m = nn.LayerNorm(norm_shape, elementwise_affine=bool(spec.attr("affine", True)), bias=spec.bias)
    elif op == "permute":
        m = Permute(tuple(int(v) for v in str(spec.attr("perm")).split(",")))
    elif op in _ACTIVATIONS:
        m = _ACTIVATIONS[op]()
    elif op == "softmax":
        m = nn.Softmax(dim=int(spec.attr("axis", -1)))
    elif op in ("add", "mul", "concat"):
        m = _COMBINE.get(1 + len(spec.extra_input_shapes), CombineN)(op, int(spec.attr("axis", 1)))
    elif op == "flatten":
        m = nn.Flatten(int(spec.attr("start_dim", 1)))
    elif op == "reshape":
        m = Reshape(spec.output_shape)
    elif op == "identity":
        m = nn.Identity()
    elif op == "dropout":
        m = nn.Dropout(0.1)
    elif op == "pad":
        m = Pad(spec.input_shape, spec.output_shape)
    elif op == "zero":
        m = Zero(spec.input_shape, spec.output_shape)
    elif op == "se":
        m = _se(spec)
    else:
        raise InputError(
            f"cannot build layer {spec.name or spec.key()}: op {op!r} (source op {spec.attr('source_op')!r}) "
            "has no torch builder",
            hint="unknown ops are kept in the layer list for reporting; profile the whole model instead",
        )
    dtype = _DTYPES.get(spec.dtype_bytes, torch.float32)
    return m.to(dtype).eval()


def make_inputs(spec: LayerSpec, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs for ``build_layer_module(spec)``: the input, then each extra input (add/mul/concat)."""
    gen = torch.Generator().manual_seed(seed)
    dtype = _DTYPES.get(spec.dtype_bytes, torch.float32)
    shapes = [spec.input_shape, *spec.extra_input_shapes]
    return tuple(torch.randn(*s, generator=gen).to(dtype) for s in shapes)


class UnitChain(nn.Module):
    """A fused unit as one module: each layer's module fed as ``Unit.wiring`` says (eager: no fusion)."""

    def __init__(self, unit: Unit) -> None:
        super().__init__()
        self.steps = nn.ModuleList(build_layer_module(layer) for layer in unit.layers)
        self.wiring = unit.wiring()[1]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        h = xs[0]
        for step, src in zip(self.steps, self.wiring, strict=True):
            h = step(*[h if k < 0 else xs[k] for k in src])
        return h


def build_unit_module(unit: Unit) -> nn.Module:
    """A module that runs ``unit`` (the layer's own module for a one-layer unit)."""
    if not unit.fused:
        return build_layer_module(unit.layers[0])
    return UnitChain(unit).eval()


def make_unit_inputs(unit: Unit, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs for ``build_unit_module(unit)`` (its external inputs, ``Unit.wiring`` order)."""
    if not unit.fused:
        return make_inputs(unit.layers[0], seed)
    gen = torch.Generator().manual_seed(seed)
    dtype = _DTYPES.get(unit.layers[0].dtype_bytes, torch.float32)
    return tuple(torch.randn(*s, generator=gen).to(dtype) for s in unit.wiring()[0])
