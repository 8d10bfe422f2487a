"""Keras builders: a torch network, one LayerSpec or a fused unit of LayerSpecs as a Keras model (NHWC).

Why translate from torch: every architecture hwnas knows (the MobileNetV2 space, NAS-Bench-201 cells,
LayerSpecs through ``builders.torch``) already has one torch build, so the Keras build reuses its structure
and, when asked, its weights; the two then compute the same function (tested with shared weights), and a
Keras model never drifts from the LayerSpecs it is profiled for.

Route: ``torch.fx`` traces the module (SqueezeExcitation kept whole, as ``extract_layers`` does), and each
node becomes Keras layers in channels-last layout. Torch semantics are kept exactly where Keras differs:
- symmetric torch padding becomes an explicit ``ZeroPadding2D`` (or ``-inf`` padding before max pooling)
  unless TF's ``same`` is the same thing (stride 1, odd kernel, padding k//2); TF's ``same`` pads
  asymmetrically at stride 2;
- average pooling with ``count_include_pad=False`` uses TF's ``same`` (which excludes padding) when it
  matches, zero padding plus ``valid`` when padding is counted;
- ``flatten`` of a 4-d tensor transposes to NCHW first, so a following linear layer sees torch's order.
Keras layer names are the torch module names with ``.`` → ``__`` (``blocks__3__conv__0``); the TFLite ops
carry them, which is how ``hwnas.profilers`` maps benchmark ops back to LayerSpecs. TensorFlow and Keras
are imported inside the functions (extra ``hwnas[tf]``).
"""

from __future__ import annotations

import contextlib
import io
import math
import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, Shape

NAME_SEP = "__"


def import_tf() -> Any:
    """Import TensorFlow the one safe way: torchvision first.

    Importing torchvision *after* TensorFlow segfaults in this stack (torch 2.14, torchvision, TF 2.21:
    clashing bundled native libraries), and hwnas imports torchvision lazily in many places, so every
    TensorFlow import in hwnas goes through here. InputError naming the extra when TF is missing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.suppress(ModuleNotFoundError):
        import torchvision  # noqa: F401
        import torchvision.ops.misc  # noqa: F401
    try:
        import tensorflow as tf
    except ModuleNotFoundError as exc:
        raise InputError("this needs TensorFlow", hint="pip install 'hwnas[tf]'") from exc
    return tf


def _keras() -> Any:
    import_tf()
    import keras

    return keras


def keras_name(torch_name: str) -> str:
    """A torch qualified name as a Keras layer name: dots become ``__``, characters TF refuses in op names
    (``/``, ``<``, ...) become ``_``. The model's ``hwnas_names`` maps each name back exactly."""
    import re

    return re.sub(r"[^A-Za-z0-9_]", "_", torch_name.replace(".", NAME_SEP)) or "layer"


def torch_name(name: str) -> str:
    """The inverse of :func:`keras_name` (up to Keras's own ``_1`` suffixes, which callers strip)."""
    return name.replace(NAME_SEP, ".")


def nhwc_shape(shape: Shape) -> tuple[int, ...]:
    """NCHW → NHWC for 4-d shapes; other ranks unchanged."""
    return (shape[0], *shape[2:], shape[1]) if len(shape) == 4 else tuple(shape)


def to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x


def to_nchw(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 3, 1, 2)) if x.ndim == 4 else x


class _Ctx:
    """Translation state: the Keras module, fresh names, and the NCHW rank of every value."""

    def __init__(self, keras: Any, copy_weights: bool) -> None:
        self.k = keras
        self.L = keras.layers
        self.copy = copy_weights
        self.used: dict[str, str] = {}  # Keras layer name -> the torch name it stands for

    def name(self, stem: str) -> str:
        base = keras_name(stem)
        name, i = base, 1
        while name in self.used:
            i += 1
            name = f"{base}{NAME_SEP}{i}"
        self.used[name] = stem
        return name


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pad_layer(ctx: _Ctx, x: Any, pad: tuple[int, int], name: str, value: float = 0.0) -> Any:
    if pad == (0, 0):
        return x
    if value == 0.0:
        return ctx.L.ZeroPadding2D(((pad[0], pad[0]), (pad[1], pad[1])), name=ctx.name(name + ".pad"))(x)
    return _ConstPad(pad, value, name=ctx.name(name + ".pad"))(x)


def _const_pad_class() -> Any:
    keras = _keras()

    class ConstPad(keras.layers.Layer):
        """Symmetric spatial padding with a constant (``-inf`` before max pooling, as torch pads)."""

        def __init__(self, pad: tuple[int, int], value: float, **kw: Any) -> None:
            super().__init__(**kw)
            self.pad, self.value = tuple(pad), float(value)

        def call(self, x: Any) -> Any:
            (ph, pw) = self.pad
            return keras.ops.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=self.value)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "pad": self.pad, "value": self.value}

    return ConstPad


_CONST_PAD: list[Any] = []


def _ConstPad(pad: tuple[int, int], value: float, name: str) -> Any:  # noqa: N802 - a layer factory
    if not _CONST_PAD:
        _CONST_PAD.append(_const_pad_class())
    return _CONST_PAD[0](pad, value, name=name)


def _same_is_torch(k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], d: tuple[int, int]) -> bool:
    """TF 'same' equals torch's symmetric padding only at stride 1 with padding d·(k-1)/2 (odd k)."""
    pads = zip(k, p, d, strict=True)
    return s == (1, 1) and all(kk % 2 == 1 and pp == dd * (kk - 1) // 2 for kk, pp, dd in pads)


def _conv(ctx: _Ctx, m: Any, x: Any, name: str) -> Any:
    if isinstance(m.padding, str):
        raise InputError(f"conv {name}: string padding {m.padding!r} is not translated", hint="use ints")
    k, s, p, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(m.dilation)
    same = _same_is_torch(k, s, p, d)
    if not same:
        x = _pad_layer(ctx, x, p, name)
    padding = "same" if same else "valid"
    bias = m.bias is not None
    cin, cout, g = int(m.in_channels), int(m.out_channels), int(m.groups)
    w = _np(m.weight)  # (out, in/groups, kh, kw)
    if g == 1:
        layer = ctx.L.Conv2D(cout, k, strides=s, padding=padding, dilation_rate=d, use_bias=bias,
                             name=ctx.name(name))  # fmt: skip
        y = layer(x)
        weights = [np.transpose(w, (2, 3, 1, 0))]
    elif g == cin and cout % cin == 0:
        mult = cout // cin
        layer = ctx.L.DepthwiseConv2D(k, strides=s, padding=padding, dilation_rate=d, depth_multiplier=mult,
                                      use_bias=bias, name=ctx.name(name))  # fmt: skip
        y = layer(x)
        # torch output channel i*mult + j is input channel i's j-th filter
        weights = [np.transpose(w.reshape(cin, mult, k[0], k[1]), (2, 3, 0, 1))]
    else:
        raise InputError(
            f"conv {name}: grouped convolution (groups={g}, {cin}→{cout}) has no Keras translation here",
            hint="plain and depthwise convolutions are supported",
        )
    if ctx.copy:
        layer.set_weights(weights + ([_np(m.bias)] if bias else []))
    return y


def _bn(ctx: _Ctx, m: Any, x: Any, name: str) -> Any:
    layer = ctx.L.BatchNormalization(axis=-1, epsilon=float(m.eps), name=ctx.name(name))
    y = layer(x)
    c = int(m.num_features)
    gamma = _np(m.weight) if m.weight is not None else np.ones(c, np.float32)
    beta = _np(m.bias) if m.bias is not None else np.zeros(c, np.float32)
    mean = _np(m.running_mean) if m.running_mean is not None else np.zeros(c, np.float32)
    var = _np(m.running_var) if m.running_var is not None else np.ones(c, np.float32)
    if ctx.copy:
        layer.set_weights([gamma, beta, mean, var])
    return y


def _linear(ctx: _Ctx, m: Any, x: Any, name: str) -> Any:
    layer = ctx.L.Dense(int(m.out_features), use_bias=m.bias is not None, name=ctx.name(name))
    y = layer(x)
    if ctx.copy:
        layer.set_weights([_np(m.weight).T] + ([_np(m.bias)] if m.bias is not None else []))
    return y


def _act(ctx: _Ctx, kind: str, x: Any, name: str) -> Any:
    L, acts = ctx.L, ctx.k.activations
    if kind == "relu":
        return L.ReLU(name=ctx.name(name))(x)
    if kind == "relu6":
        return L.ReLU(max_value=6.0, name=ctx.name(name))(x)
    fn = {
        "sigmoid": acts.sigmoid,
        "tanh": acts.tanh,
        "silu": acts.silu,
        "hardsigmoid": acts.hard_sigmoid,  # Keras 3: relu6(x + 3) / 6, torch's definition
        "hardswish": acts.hard_silu,  # x · relu6(x + 3) / 6
        "gelu": lambda t: acts.gelu(t, approximate=False),  # torch's default is the exact erf form
    }[kind]
    return L.Activation(fn, name=ctx.name(name))(x)


def _maxpool(ctx: _Ctx, m: Any, x: Any, name: str) -> Any:
    k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
    if m.ceil_mode or _pair(m.dilation) != (1, 1):
        raise InputError(f"maxpool {name}: ceil_mode/dilation are not translated")
    if _same_is_torch(k, s, p, (1, 1)):
        return ctx.L.MaxPooling2D(k, s, padding="same", name=ctx.name(name))(x)
    x = _pad_layer(ctx, x, p, name, value=-math.inf)
    return ctx.L.MaxPooling2D(k, s, padding="valid", name=ctx.name(name))(x)


def _avgpool(ctx: _Ctx, m: Any, x: Any, name: str) -> Any:
    k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
    if m.ceil_mode:
        raise InputError(f"avgpool {name}: ceil_mode is not translated")
    if p == (0, 0):
        return ctx.L.AveragePooling2D(k, s, padding="valid", name=ctx.name(name))(x)
    if not m.count_include_pad and _same_is_torch(k, s, p, (1, 1)):
        return ctx.L.AveragePooling2D(k, s, padding="same", name=ctx.name(name))(x)  # TF excludes padding
    if m.count_include_pad:
        x = _pad_layer(ctx, x, p, name)
        return ctx.L.AveragePooling2D(k, s, padding="valid", name=ctx.name(name))(x)
    raise InputError(f"avgpool {name}: count_include_pad=False with this padding/stride is not translated")


def _se(ctx: _Ctx, m: Any, x: Any, name: str) -> Any:
    """torchvision SqueezeExcitation: pool → 1×1 conv → act → 1×1 conv → gate → scale the input."""
    from torch import nn

    h = ctx.L.GlobalAveragePooling2D(keepdims=True, name=ctx.name(name + ".pool"))(x)
    h = _conv(ctx, m.fc1, h, name + ".fc1")
    act = {nn.SiLU: "silu", nn.Hardswish: "hardswish"}.get(type(m.activation), "relu")
    h = _act(ctx, act, h, name + ".act")
    h = _conv(ctx, m.fc2, h, name + ".fc2")
    gate = "hardsigmoid" if isinstance(m.scale_activation, nn.Hardsigmoid) else "sigmoid"
    h = _act(ctx, gate, h, name + ".gate")
    return ctx.L.Multiply(name=ctx.name(name))([x, h])


def _flatten(ctx: _Ctx, x: Any, name: str, start_dim: int = 1) -> Any:
    if start_dim != 1:
        raise InputError(f"flatten {name}: start_dim={start_dim} is not translated", hint="use 1")
    if len(x.shape) == 4 and tuple(x.shape[1:3]) != (1, 1):
        x = ctx.L.Permute((3, 1, 2), name=ctx.name(name + ".to_nchw"))(x)  # torch's element order
    return ctx.L.Flatten(name=ctx.name(name))(x)


def _module(ctx: _Ctx, m: Any, args: list[Any], name: str) -> Any:
    from torch import nn
    from torchvision.ops.misc import SqueezeExcitation

    x = args[0]
    acts = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SiLU: "silu",
            nn.Hardsigmoid: "hardsigmoid", nn.Hardswish: "hardswish", nn.GELU: "gelu"}  # fmt: skip
    if isinstance(m, nn.Conv2d):
        return _conv(ctx, m, x, name)
    if isinstance(m, nn.BatchNorm2d):
        return _bn(ctx, m, x, name)
    if isinstance(m, nn.Linear):
        return _linear(ctx, m, x, name)
    if type(m) in acts:
        return _act(ctx, acts[type(m)], x, name)
    if isinstance(m, nn.MaxPool2d):
        return _maxpool(ctx, m, x, name)
    if isinstance(m, nn.AvgPool2d):
        return _avgpool(ctx, m, x, name)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if _pair(m.output_size) != (1, 1):
            raise InputError(f"adaptive pool {name}: only output size 1 is translated")
        return ctx.L.GlobalAveragePooling2D(keepdims=True, name=ctx.name(name))(x)
    if isinstance(m, nn.Flatten):
        return _flatten(ctx, x, name, int(m.start_dim))
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return ctx.L.Identity(name=ctx.name(name))(x)  # inference: dropout is the identity
    if isinstance(m, nn.Softmax):
        axis = -1 if m.dim in (1, -1) or len(x.shape) == 2 else None
        if axis is None:
            raise InputError(f"softmax {name}: dim={m.dim} is not translated")
        return ctx.L.Softmax(axis=-1, name=ctx.name(name))(x)
    if isinstance(m, SqueezeExcitation):
        return _se(ctx, m, x, name)
    raise InputError(
        f"module {name} ({type(m).__name__}) has no Keras translation",
        hint="supported: conv (plain/depthwise), batch-norm, linear, activations, pooling, SE, flatten",
    )


def _binary(ctx: _Ctx, kind: str, a: Any, b: Any, name: str) -> Any:
    keras = ctx.k
    if _is_tensor(a) and _is_tensor(b):
        layer = ctx.L.Add if kind == "add" else ctx.L.Multiply
        return layer(name=ctx.name(name))([a, b])
    t, c = (a, b) if _is_tensor(a) else (b, a)
    if not isinstance(c, (int, float)):
        raise InputError(f"{kind} {name}: operand {c!r} is neither a tensor nor a number")
    return (keras.ops.add if kind == "add" else keras.ops.multiply)(t, float(c))


def _is_tensor(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


def _function(ctx: _Ctx, target: Any, args: list[Any], kwargs: dict[str, Any], name: str) -> Any:
    import torch
    import torch.nn.functional as F

    if target in (operator.add, operator.iadd, torch.add):
        return _binary(ctx, "add", args[0], args[1], name)
    if target in (operator.mul, operator.imul, torch.mul):
        return _binary(ctx, "mul", args[0], args[1], name)
    if target in (torch.flatten,):
        return _flatten(ctx, args[0], name, int(args[1] if len(args) > 1 else kwargs.get("start_dim", 0)))
    if target in (torch.cat, torch.concat):
        dim = int(args[1] if len(args) > 1 else kwargs.get("dim", 0))
        rank = len(args[0][0].shape)
        axis = -1 if (rank == 4 and dim == 1) or (rank == 2 and dim in (1, -1)) else None
        if axis is None:
            raise InputError(f"concat {name}: dim {dim} of a rank-{rank} tensor is not translated")
        return ctx.L.Concatenate(axis=-1, name=ctx.name(name))(list(args[0]))
    if target in (F.relu, torch.relu):
        return _act(ctx, "relu", args[0], name)
    if target is F.adaptive_avg_pool2d and _pair(args[1]) == (1, 1):
        return ctx.L.GlobalAveragePooling2D(keepdims=True, name=ctx.name(name))(args[0])
    raise InputError(f"function {getattr(target, '__name__', target)!r} ({name}) has no Keras translation")


def _method(ctx: _Ctx, method: str, args: list[Any], kwargs: dict[str, Any], name: str) -> Any:
    if method in ("add", "mul"):
        return _binary(ctx, method, args[0], args[1], name)
    if method == "flatten":
        return _flatten(ctx, args[0], name, int(args[1] if len(args) > 1 else kwargs.get("start_dim", 0)))
    if method == "relu":
        return _act(ctx, "relu", args[0], name)
    if method in ("contiguous", "clone", "detach", "float"):
        return args[0]
    raise InputError(f"tensor method {method!r} ({name}) has no Keras translation")


def _trace(module: Any) -> Any:
    from torch import fx
    from torchvision.ops.misc import SqueezeExcitation

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return isinstance(m, SqueezeExcitation) or super().is_leaf_module(m, qualname)

    tracer = Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises many types for untraceable control flow
        raise InputError(
            f"cannot trace {type(module).__name__} with torch.fx for the Keras build: {exc}",
            hint="the Keras builder translates fx-traceable modules (the hwnas spaces are)",
        ) from exc
    return fx.GraphModule(tracer.root, graph)


def torch_to_keras(module: Any, input_shapes: Sequence[Shape], *, name: str = "model",
                   copy_weights: bool = True, aliases: dict[str, str] | None = None) -> Any:  # fmt: skip
    """A Keras model (NHWC inputs of fixed batch) computing ``module`` (eval mode), weights copied.

    ``input_shapes`` are torch (NCHW) shapes, batch first. InputError names the first op with no
    translation. The model's ``hwnas_names`` maps Keras layer names to torch module names. ``aliases``
    renames module paths (``{"layers.0": "blocks.3.conv.0"}``) so Keras names follow LayerSpec names.
    """
    keras = _keras()
    import torch
    from torch import nn

    module = module.eval()
    aliases = dict(aliases or {})
    if not list(module.children()) or _is_leaf(module):  # fx would inline a lone leaf into raw ops

        class Root(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.m = module

            def forward(self, *xs: Any) -> Any:
                return self.m(*xs)

        root = _fixed_arity(Root(), len(input_shapes) - 1, attr="")
        aliases = {"m": name, **{f"m.{k}": v for k, v in aliases.items()}}
        module = root
    gm = _trace(module)
    ctx = _Ctx(keras, copy_weights)
    env: dict[str, Any] = {}
    inputs: list[Any] = []
    outputs: list[Any] = []
    modules = dict(gm.named_modules())

    def val(a: Any) -> Any:
        from torch import fx

        if isinstance(a, fx.Node):
            return env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(val(v) for v in a)
        return a

    shapes = list(input_shapes)
    with torch.no_grad():
        for node in gm.graph.nodes:
            args = [val(a) for a in node.args]
            kwargs = {k: val(v) for k, v in node.kwargs.items()}
            if node.op == "placeholder":
                if len(inputs) >= len(shapes):
                    raise InputError(
                        f"{name}: the module takes more inputs than the {len(shapes)} shapes given"
                    )
                shape = nhwc_shape(tuple(int(s) for s in shapes[len(inputs)]))
                inp = keras.Input(shape=shape[1:], batch_size=shape[0], name=ctx.name(f"in{len(inputs)}"))
                inputs.append(inp)
                env[node.name] = inp
            elif node.op == "call_module":
                env[node.name] = _module(ctx, modules[node.target], args, _alias(str(node.target), aliases))
            elif node.op == "call_function":
                env[node.name] = _function(ctx, node.target, args, kwargs, node.name)
            elif node.op == "call_method":
                env[node.name] = _method(ctx, str(node.target), args, kwargs, node.name)
            elif node.op == "get_attr":
                raise InputError(
                    f"{name}: parameters used outside modules ({node.target}) are not translated"
                )
            elif node.op == "output":
                res = args[0]
                outputs = list(res) if isinstance(res, (list, tuple)) else [res]
    model = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                        name=keras_name(name))  # fmt: skip
    model.hwnas_names = dict(ctx.used)
    return model


def _is_leaf(m: Any) -> bool:
    from torchvision.ops.misc import SqueezeExcitation

    return isinstance(m, SqueezeExcitation)


def _alias(target: str, aliases: dict[str, str]) -> str:
    best = max((p for p in aliases if target == p or target.startswith(p + ".")), key=len, default=None)
    return target if best is None else aliases[best] + target[len(best) :]


def layer_to_keras(spec: LayerSpec, *, seed: int = 0) -> Any:
    """One LayerSpec as a Keras model (the torch builder's module, same random weights, translated)."""
    import torch

    from hwnas.graph.builders.torch import build_layer_module

    torch.manual_seed(seed)
    module = build_layer_module(spec)
    return torch_to_keras(module, [spec.input_shape, *spec.extra_input_shapes], name=spec.name or spec.op)


def unit_to_keras(specs: Sequence[LayerSpec], *, name: str = "unit", seed: int = 0) -> Any:
    """A fused unit (a chain of LayerSpecs, e.g. conv → batch-norm → relu6) as one Keras model.

    Each layer's output feeds the next; a layer with extra inputs (a residual add) gets them as extra
    model inputs, in order. InputError if the shapes do not chain.
    """
    import torch
    from torch import nn

    from hwnas.graph.builders.torch import build_layer_module

    if not specs:
        raise InputError(f"unit {name} has no layers")
    for a, b in zip(specs, specs[1:], strict=False):
        if tuple(a.output_shape) != tuple(b.input_shape):
            raise InputError(
                f"unit {name}: {a.name or a.op} gives {a.output_shape}, "
                f"but {b.name or b.op} takes {b.input_shape}",
                hint="a fused unit is a chain of layers",
            )
    torch.manual_seed(seed)
    mods = [build_layer_module(s) for s in specs]
    extra_shapes = [s for spec in specs for s in spec.extra_input_shapes]

    class Chain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(mods)

        def forward(self, x: Any, *extra: Any) -> Any:
            it = iter(extra)
            for spec, m in zip(specs, self.layers, strict=True):
                x = m(x, *[next(it) for _ in spec.extra_input_shapes])
            return x

    chain = Chain()
    aliases = {f"layers.{i}": s.name or f"{name}.{i}" for i, s in enumerate(specs)}
    chain = _fixed_arity(chain, len(extra_shapes))  # fx cannot trace *extra: a fixed signature
    aliases = {f"inner.{k}": v for k, v in aliases.items()}
    return torch_to_keras(chain, [specs[0].input_shape, *extra_shapes], name=name, aliases=aliases)


def _fixed_arity(root: Any, n_extra: int, attr: str = "inner") -> Any:
    """``root`` with a ``forward(x, e0, ..., e{n-1})`` signature fx can trace (it cannot trace ``*args``)."""
    from torch import nn

    if not attr:  # root's own forward takes *xs: give it a fixed signature in place
        params = ", ".join(["x"] + [f"e{i}" for i in range(n_extra)])
        scope: dict[str, Any] = {}
        exec(f"def forward(self, {params}):\n    return self.m({params})\n", scope)  # noqa: S102
        type(root).forward = scope["forward"]
        return root

    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = root

    params = ", ".join(["x"] + [f"e{i}" for i in range(n_extra)])
    scope = {}
    exec(f"def forward(self, {params}):\n    return self.inner.forward({params})\n", scope)  # noqa: S102
    Fixed.forward = scope["forward"]
    return Fixed()


def keras_macs(model: Any) -> int:
    """MACs counted from the Keras model's own layers and shapes (conv, depthwise, dense), bias excluded.

    An independent count of what :mod:`hwnas.graph.analytic` computes from LayerSpecs.
    """
    keras = _keras()
    total = 0
    for layer in _all_layers(model):
        out = layer.output.shape
        n_out = int(np.prod([int(d) for d in out]))
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += n_out * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = int(layer.input.shape[-1])
            total += n_out * kh * kw * cin // int(layer.groups)
        elif isinstance(layer, keras.layers.Dense):
            total += n_out * int(layer.input.shape[-1])
    return int(total)


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if hasattr(layer, "layers") and layer is not model else [layer])
    return out


def run_keras(model: Any, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Run a Keras model on NCHW numpy inputs; the output back in NCHW (for comparisons with torch)."""
    with contextlib.redirect_stdout(io.StringIO()):
        xs = [to_nhwc(np.asarray(x, np.float32)) for x in inputs]
        y = model(xs if len(xs) > 1 else xs[0], training=False)
    return to_nchw(np.asarray(y))


__all__: list[str] = [
    "NAME_SEP", "keras_macs", "keras_name", "layer_to_keras", "nhwc_shape", "run_keras", "to_nchw",
    "to_nhwc", "torch_name", "torch_to_keras", "unit_to_keras",
]  # fmt: skip
