"""Extract a ModelSpec (ordered LayerSpecs) from a torch ``nn.Module`` and an input shape.

Route: ``torch.fx.symbolic_trace`` + ``ShapeProp`` give every op with its real shapes, functional ops
(``x + y``, ``torch.flatten``) included. Models that fx cannot trace (data-dependent control flow) fall
back to forward hooks on leaf modules, which see modules only; such a spec has ``source="torch-hooks"``.
torchvision's ``SqueezeExcitation`` (and any module named in ``leaf_types``) is kept whole as one ``se``
layer. Ops with no mapping become ``unknown`` layers with ``source_op``; nothing is silently dropped,
except shape plumbing that moves no tensor data (``size``, ``getattr``, ``getitem``, ``contiguous``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, ModelSpec, Shape, make_layer

log = logging.getLogger(__name__)

_ACT_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid",
    nn.Sigmoid: "sigmoid",
    nn.SiLU: "silu",
    nn.GELU: "gelu",
    nn.Tanh: "tanh",
}
_ACT_FUNCS: dict[Any, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.relu6: "relu6",
    F.hardswish: "hardswish",
    F.hardsigmoid: "hardsigmoid",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    F.silu: "silu",
    F.gelu: "gelu",
    torch.tanh: "tanh",
    F.tanh: "tanh",
}
_ACT_METHODS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_ADD = {operator.add, operator.iadd, torch.add}
_MUL = {operator.mul, operator.imul, torch.mul}
# Nodes that only move metadata or views around: not layers.
_PLUMBING_FUNCS = {operator.getitem, getattr, len}
_PLUMBING_METHODS = {"size", "dim", "contiguous", "type_as", "to", "float", "clone", "detach", "numel"}


def _se_types() -> tuple[type[nn.Module], ...]:
    from torchvision.ops.misc import SqueezeExcitation

    return (SqueezeExcitation,)


class _Tracer(fx.Tracer):
    """fx tracer that keeps SE modules (and user-named types) whole."""

    def __init__(self, leaf_types: tuple[type[nn.Module], ...]) -> None:
        super().__init__()
        self._leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self._leaf_types) or super().is_leaf_module(m, module_qualified_name)


def _shape(meta: Any) -> Shape | None:
    tm = meta.get("tensor_meta") if isinstance(meta, dict) else None
    if tm is None or not hasattr(tm, "shape"):
        return None
    return tuple(int(s) for s in tm.shape)


def _dtype_bytes(meta: dict[str, Any]) -> int:
    tm = meta.get("tensor_meta")
    dtype = getattr(tm, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return torch.empty((), dtype=dtype).element_size()
    return 4


def module_layer(m: nn.Module, in_shape: Shape, out_shape: Shape, name: str) -> LayerSpec:
    """LayerSpec of one leaf module call (shared by the fx route and the hook fallback)."""
    se_types = _se_types()
    if isinstance(m, nn.Conv2d):
        return make_layer(
            "conv2d",
            in_shape,
            out_shape,
            name=name,
            in_channels=m.in_channels,
            out_channels=m.out_channels,
            kernel=m.kernel_size,
            stride=m.stride,
            padding=_conv_padding(m, in_shape, out_shape),
            dilation=m.dilation,
            groups=m.groups,
            bias=m.bias is not None,
        )
    if isinstance(m, nn.Linear):
        return make_layer(
            "linear",
            in_shape,
            out_shape,
            name=name,
            in_channels=m.in_features,
            out_channels=m.out_features,
            bias=m.bias is not None,
        )
    if isinstance(m, nn.BatchNorm2d):
        return make_layer("batchnorm", in_shape, out_shape, name=name, in_channels=m.num_features)
    if isinstance(m, nn.LayerNorm):
        affine = m.elementwise_affine
        return make_layer(
            "layernorm",
            in_shape,
            out_shape,
            name=name,
            bias=affine and m.bias is not None,
            attrs={"norm_dims": len(m.normalized_shape), **({} if affine else {"affine": False})},
        )
    for cls, op in _ACT_MODULES.items():
        if type(m) is cls:
            return make_layer(op, in_shape, out_shape, name=name)
    if isinstance(m, nn.Softmax):
        return make_layer("softmax", in_shape, out_shape, name=name, attrs={"axis": _axis(m.dim, in_shape)})
    if isinstance(m, nn.MaxPool2d):
        return _pool("maxpool2d", m.kernel_size, m.stride, m.padding, m.ceil_mode, in_shape, out_shape, name)
    if isinstance(m, nn.AvgPool2d):
        return _pool(
            "avgpool2d",
            m.kernel_size,
            m.stride,
            m.padding,
            m.ceil_mode,
            in_shape,
            out_shape,
            name,
            count_include_pad=m.count_include_pad,
        )
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return _adaptive_avg(in_shape, out_shape, name)
    if isinstance(m, nn.Flatten):
        return make_layer("flatten", in_shape, out_shape, name=name, attrs=_flatten_attrs(m.start_dim))
    if isinstance(m, (nn.Dropout, nn.Dropout2d)):
        return make_layer("dropout", in_shape, out_shape, name=name)
    if isinstance(m, nn.Identity):
        return make_layer("identity", in_shape, out_shape, name=name)
    if isinstance(m, se_types):
        return se_layer(m, in_shape, out_shape, name)
    return make_layer(
        type(m).__name__, in_shape, out_shape, name=name, attrs={"module_type": type(m).__name__}
    )


def se_layer(m: nn.Module, in_shape: Shape, out_shape: Shape, name: str) -> LayerSpec:
    """One ``se`` layer from torchvision's SqueezeExcitation (pool, 1×1 down, act, 1×1 up, gate, scale)."""
    c = int(m.fc1.in_channels)
    s = int(m.fc1.out_channels)
    gate = "hardsigmoid" if isinstance(m.scale_activation, nn.Hardsigmoid) else "sigmoid"
    act = {nn.SiLU: "silu", nn.Hardswish: "hardswish"}.get(type(m.activation), "relu")
    attrs: dict[str, Any] = {"squeeze_channels": s, "gate": gate} | ({"act": act} if act != "relu" else {})
    return make_layer(
        "se",
        in_shape,
        out_shape,
        name=name,
        in_channels=c,
        out_channels=c,
        se_ratio=s / c,
        bias=True,
        attrs=attrs,
    )


def _conv_padding(m: nn.Conv2d, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
    if isinstance(m.padding, str):  # "same" / "valid": recover the explicit amount from the shapes
        if m.padding == "valid":
            return (0, 0)
        return tuple(  # type: ignore[return-value]
            max(0, ((o - 1) * s + d * (k - 1) + 1 - i) // 2)
            for i, o, k, s, d in zip(
                in_shape[2:], out_shape[2:], m.kernel_size, m.stride, m.dilation, strict=False
            )
        )
    return tuple(m.padding)  # type: ignore[return-value]


def _pool(
    op: str,
    k: Any,
    s: Any,
    p: Any,
    ceil: bool,
    in_shape: Shape,
    out_shape: Shape,
    name: str,
    count_include_pad: bool = True,
) -> LayerSpec:
    attrs: dict[str, Any] = {"ceil_mode": True} if ceil else {}
    pads = p if isinstance(p, (tuple, list)) else (p,)
    if op == "avgpool2d" and not count_include_pad and any(int(v) for v in pads):
        attrs["count_include_pad"] = False  # averages over fewer elements at the borders
    return make_layer(
        op, in_shape, out_shape, name=name, kernel=k, stride=s if s is not None else k, padding=p, attrs=attrs
    )


def _flatten_attrs(start_dim: Any) -> dict[str, Any]:
    return {"start_dim": int(start_dim)}


def _adaptive_avg(in_shape: Shape, out_shape: Shape, name: str) -> LayerSpec:
    if tuple(out_shape[2:]) == (1, 1):
        return make_layer("global_avgpool", in_shape, out_shape, name=name)
    ih, iw = in_shape[2:]
    oh, ow = out_shape[2:]
    if ih % oh == 0 and iw % ow == 0:  # an exact tiling is a plain average pool
        return make_layer(
            "avgpool2d",
            in_shape,
            out_shape,
            name=name,
            kernel=(ih // oh, iw // ow),
            stride=(ih // oh, iw // ow),
            padding=0,
        )
    return make_layer("AdaptiveAvgPool2d", in_shape, out_shape, name=name)


def _axis(dim: int | None, shape: Shape) -> int:
    d = -1 if dim is None else int(dim)
    return d % len(shape) if shape else d


def _arg_shapes(args: Iterable[Any]) -> list[Shape | None]:
    return [_shape(a.meta) if isinstance(a, fx.Node) else None for a in args]


def _node_layer(node: fx.Node, modules: dict[str, nn.Module]) -> LayerSpec | None:
    """LayerSpec of one fx node, or None for plumbing nodes that are not layers."""
    out_shape = _shape(node.meta)
    if node.op in ("placeholder", "output", "get_attr"):
        return None
    if node.op == "call_function" and node.target in _PLUMBING_FUNCS:
        return None
    if node.op == "call_method" and node.target in _PLUMBING_METHODS:
        return None
    if out_shape is None:  # produces no tensor (a shape, a tuple): plumbing, or a tuple op seen via getitem
        if node.op == "call_module" or (node.op == "call_function" and node.target not in _PLUMBING_FUNCS):
            tensor_in = [s for s in _arg_shapes(node.args) if s is not None]
            if tensor_in:  # a tensor op with tuple output (split, chunk, attention): keep it, flagged
                if node.op == "call_module":
                    kind = type(modules[str(node.target)]).__name__
                    return make_layer(
                        kind, tensor_in[0], tensor_in[0], name=str(node.target), attrs={"module_type": kind}
                    )
                return make_layer(_target_name(node), tensor_in[0], tensor_in[0], name=_scoped_name(node))
        return None
    arg_shapes = _arg_shapes(node.args)
    tensor_args = [s for s in arg_shapes if s is not None]
    in_shape = tensor_args[0] if tensor_args else out_shape
    name = _scoped_name(node)
    dtb = _dtype_bytes(node.meta)
    if node.op == "call_module":
        spec = module_layer(modules[str(node.target)], in_shape, out_shape, str(node.target))
    elif node.op == "call_function":
        spec = _function_layer(node, in_shape, out_shape, tensor_args, name)
    else:  # call_method
        spec = _method_layer(node, in_shape, out_shape, tensor_args, name)
    if dtb != 4 and spec.dtype_bytes == 4:
        from dataclasses import replace

        from hwnas.graph.analytic import fill_costs

        spec = fill_costs(replace(spec, dtype_bytes=dtb))
    return spec


def _scoped_name(node: fx.Node) -> str:
    """fx node name prefixed by the innermost module it ran in (``blocks.3.add``), if fx recorded one."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return node.name
    scope = list(stack.values())[-1]
    scope = scope[0] if isinstance(scope, tuple) else str(scope)
    return f"{scope}.{node.name}" if scope else node.name


def _arg(node: fx.Node, pos: int, key: str, default: Any) -> Any:
    if key in node.kwargs:
        return node.kwargs[key]
    return node.args[pos] if len(node.args) > pos else default


def _target_name(node: fx.Node) -> str:
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _binary(op: str, node: fx.Node, in_shape: Shape, out_shape: Shape, tensor_args: list[Shape], name: str):
    scalars = [a for a in node.args if isinstance(a, (int, float))]
    if op == "mul" and len(tensor_args) == 1 and any(a == 0 for a in scalars):
        return _zero(node, in_shape, out_shape, name)
    if len(tensor_args) >= 2:
        return make_layer(op, tensor_args[0], out_shape, name=name, extra_input_shapes=tuple(tensor_args[1:]))
    return make_layer(op, in_shape, out_shape, name=name, attrs={"operand": "scalar"})


def _zero(node: fx.Node, in_shape: Shape, out_shape: Shape, name: str) -> LayerSpec:
    """``x.mul(0)``, possibly on a strided slice ``x[:, :, ::s, ::s]``: NAS-Bench-201's ``none`` op."""
    src = next(a for a in node.args if isinstance(a, fx.Node))
    if src.op == "call_function" and src.target is operator.getitem and isinstance(src.args[0], fx.Node):
        sliced_from = _shape(src.args[0].meta)
        if sliced_from is not None:
            in_shape = sliced_from
    return make_layer("zero", in_shape, out_shape, name=name)


def _permute(node: fx.Node, in_shape: Shape, out_shape: Shape, name: str) -> LayerSpec:
    """permute / transpose / swapaxes as one ``permute`` layer with the full permutation in ``perm``."""
    rank = len(in_shape)
    target = _target_name(node)
    dims = [a for a in node.args[1:] if isinstance(a, int)]
    if target == "permute":
        given = node.args[1] if len(node.args) == 2 and isinstance(node.args[1], (list, tuple)) else dims
        perm = [int(d) % rank for d in given]
    else:
        d0, d1 = (int(dims[0]) % rank, int(dims[1]) % rank) if len(dims) == 2 else (0, 0)
        perm = list(range(rank))
        perm[d0], perm[d1] = perm[d1], perm[d0]
    if sorted(perm) != list(range(rank)):
        return make_layer(target, in_shape, out_shape, name=name)
    return make_layer("permute", in_shape, out_shape, name=name, attrs={"perm": ",".join(map(str, perm))})


def _function_layer(node: fx.Node, in_shape: Shape, out_shape: Shape, tensor_args: list[Shape], name: str):
    t = node.target
    if t in _ADD:
        return _binary("add", node, in_shape, out_shape, tensor_args, name)
    if t in _MUL:
        return _binary("mul", node, in_shape, out_shape, tensor_args, name)
    if t in _ACT_FUNCS:
        return make_layer(_ACT_FUNCS[t], in_shape, out_shape, name=name)
    if t in (torch.cat, torch.concat):
        tensors = node.args[0]
        shapes = [_shape(a.meta) for a in tensors]  # type: ignore[union-attr]
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        return make_layer(
            "concat",
            shapes[0],
            out_shape,
            name=name,
            extra_input_shapes=tuple(shapes[1:]),
            attrs={"axis": _axis(dim, out_shape)},
        )
    if t is torch.flatten:
        start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
        return make_layer("flatten", in_shape, out_shape, name=name, attrs=_flatten_attrs(start))
    if t in (torch.reshape,):
        return make_layer("reshape", in_shape, out_shape, name=name)
    if t is F.hardtanh and _arg(node, 1, "min_val", -1.0) == 0.0 and _arg(node, 2, "max_val", 1.0) == 6.0:
        return make_layer("relu6", in_shape, out_shape, name=name)
    if t in (F.max_pool2d, F.avg_pool2d):
        k = _arg(node, 1, "kernel_size", 1)
        op = "maxpool2d" if t is F.max_pool2d else "avgpool2d"
        stride = _arg(node, 2, "stride", None) or k
        return _pool(
            op,
            k,
            stride,
            _arg(node, 3, "padding", 0),
            bool(_arg(node, 5 if op == "maxpool2d" else 4, "ceil_mode", False)),
            in_shape,
            out_shape,
            name,
            count_include_pad=bool(_arg(node, 5, "count_include_pad", True)) if op == "avgpool2d" else True,
        )
    if t is F.adaptive_avg_pool2d:
        return _adaptive_avg(in_shape, out_shape, name)
    if t in (F.softmax, torch.softmax):
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else -1)
        return make_layer("softmax", in_shape, out_shape, name=name, attrs={"axis": _axis(dim, in_shape)})
    if t in (torch.matmul, operator.matmul, torch.bmm, torch.mm):
        return make_layer(
            "matmul",
            in_shape,
            out_shape,
            name=name,
            extra_input_shapes=tuple(tensor_args[1:]),
            attrs={"inner_dim": int(in_shape[-1])},
        )
    if t is F.layer_norm:
        norm_shape = _arg(node, 1, "normalized_shape", (in_shape[-1],))
        weight, bias = _arg(node, 2, "weight", None), _arg(node, 3, "bias", None)
        attrs = {"norm_dims": len(norm_shape)} | ({} if weight is not None else {"affine": False})
        return make_layer("layernorm", in_shape, out_shape, name=name, bias=bias is not None, attrs=attrs)
    if t in (torch.permute, torch.transpose, torch.swapaxes):
        return _permute(node, in_shape, out_shape, name)
    if t in (torch.unsqueeze, torch.squeeze):
        return make_layer("reshape", in_shape, out_shape, name=name)
    if t is F.dropout or _target_name(node) == "stochastic_depth":  # both identity at inference
        return make_layer("dropout", in_shape, out_shape, name=name)
    if t is F.pad:
        return make_layer("pad", in_shape, out_shape, name=name)
    return make_layer(_target_name(node), in_shape, out_shape, name=name)


def _method_layer(node: fx.Node, in_shape: Shape, out_shape: Shape, tensor_args: list[Shape], name: str):
    t = str(node.target)
    if t in ("add", "add_"):
        return _binary("add", node, in_shape, out_shape, tensor_args, name)
    if t in ("mul", "mul_"):
        return _binary("mul", node, in_shape, out_shape, tensor_args, name)
    if t.rstrip("_") in _ACT_METHODS:
        return make_layer(_ACT_METHODS[t.rstrip("_")], in_shape, out_shape, name=name)
    if t in ("permute", "transpose", "swapaxes"):
        return _permute(node, in_shape, out_shape, name)
    if t in ("view", "reshape", "unsqueeze", "squeeze", "view_as", "reshape_as"):
        return make_layer("reshape", in_shape, out_shape, name=name)
    if t == "flatten":
        start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
        return make_layer("flatten", in_shape, out_shape, name=name, attrs=_flatten_attrs(start))
    if (
        t == "mean"
        and len(in_shape) == 4
        and tuple(out_shape[2:]) in ((1, 1), ())
        and out_shape[:2] == in_shape[:2]
    ):
        return make_layer("global_avgpool", in_shape, (*in_shape[:2], 1, 1), name=name)
    return make_layer(t, in_shape, out_shape, name=name)


def _propagate_shapes(gm: fx.GraphModule, examples: tuple[torch.Tensor, ...]) -> None:
    """Record every node's output shape: on fake tensors first (no arithmetic; 3-5× faster on big
    inputs), then on real ones if an op lacks a fake kernel."""
    sink = io.StringIO()  # ShapeProp prints a traceback before re-raising; library code must not print
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode

        with contextlib.redirect_stderr(sink):
            ShapeProp(gm, fake_mode=FakeTensorMode(allow_non_fake_inputs=True)).propagate(*examples)
        return
    except Exception as exc:  # no fake kernel for some op, or an older torch: compute for real
        log.debug("fake-tensor shape propagation failed (%s); running on real tensors", exc)
    with contextlib.redirect_stderr(sink):
        ShapeProp(gm).propagate(*examples)


def _fx_layers(
    module: nn.Module, examples: tuple[torch.Tensor, ...], leaf_types: tuple[type[nn.Module], ...]
) -> list[LayerSpec]:
    tracer = _Tracer(leaf_types)
    if tracer.is_leaf_module(module, ""):  # a bare Conv2d, SE, ...: fx would trace into its functional body
        with torch.no_grad():
            out = module(*examples)
        shape_in, shape_out = tuple(examples[0].shape), tuple(out.shape)
        return [module_layer(module, shape_in, shape_out, type(module).__name__)]
    graph = tracer.trace(module)
    gm = fx.GraphModule(tracer.root, graph)
    _propagate_shapes(gm, examples)
    modules = dict(gm.named_modules())
    layers = []
    for node in gm.graph.nodes:
        spec = _node_layer(node, modules)
        if spec is not None:
            layers.append(spec)
    return layers


def _hook_layers(
    module: nn.Module, examples: tuple[torch.Tensor, ...], leaf_types: tuple[type[nn.Module], ...]
) -> list[LayerSpec]:
    """Fallback: forward hooks on leaf modules (and SE modules, whose insides are then skipped)."""
    records: list[tuple[str, nn.Module, Shape, Shape]] = []
    handles = []
    inside_leaf: set[str] = set()
    for qname, m in module.named_modules():
        if any(qname.startswith(p + ".") for p in inside_leaf):
            continue
        is_leaf = isinstance(m, leaf_types)
        if is_leaf:
            inside_leaf.add(qname)
        if is_leaf or not any(True for _ in m.children()):

            def hook(mod: nn.Module, inp: Any, out: Any, qname: str = qname) -> None:
                if isinstance(out, torch.Tensor) and inp and isinstance(inp[0], torch.Tensor):
                    records.append((qname, mod, tuple(inp[0].shape), tuple(out.shape)))

            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(*examples)
    finally:
        for h in handles:
            h.remove()
    return [module_layer(m, i, o, q) for q, m, i, o in records]


def extract_layers(
    module: nn.Module,
    input_shape: tuple[int, ...],
    name: str = "",
    *,
    extra_input_shapes: tuple[tuple[int, ...], ...] = (),
    leaf_types: tuple[type[nn.Module], ...] = (),
    on_fallback: Callable[[str], None] | None = None,
) -> ModelSpec:
    """Layers of ``module`` run on an input of ``input_shape`` (batch first), in execution order.

    LayerSpec names are torch qualified module names (``features.1.conv.0.0``) or fx node names for
    functional ops, prefixed by the module they ran in (``layer1.0.add``, or ``add_3`` at top level).
    The module is run once in eval mode on random data (on its device, in its dtype); its training
    flag is restored afterwards. Modules with several inputs get ``extra_input_shapes`` for the
    others. ``on_fallback(reason)`` is called when fx tracing fails and hooks are used.
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise InputError(
            f"input shape {input_shape} is not valid", hint="give positive sizes, e.g. 1,3,224,224"
        )
    leaves = tuple(leaf_types) + _se_types()
    param = next(iter(module.parameters()), None)  # inputs on the module's device and in its float dtype
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    examples = tuple(torch.randn(*s, device=device, dtype=dtype) for s in (shape, *extra_input_shapes))
    was_training = module.training
    module.eval()
    try:
        try:
            with torch.no_grad():
                layers = _fx_layers(module, examples, leaves)
            source = "torch-fx"
        except Exception as exc:  # untraceable (control flow on values, unsupported ops): use hooks
            reason = f"fx tracing failed ({type(exc).__name__}: {exc}); using forward hooks on leaf modules"
            log.info(reason)
            if on_fallback is not None:
                on_fallback(reason)
            try:
                layers = _hook_layers(module, examples, leaves)
            except RuntimeError as run_exc:
                raise InputError(
                    f"model {name or type(module).__name__} does not run on input shape {shape}: {run_exc}",
                    hint="check --input-shape (batch, channels, height, width)",
                ) from run_exc
            source = "torch-hooks"
    finally:
        module.train(was_training)
    return ModelSpec(name=name or type(module).__name__, input_shape=shape, layers=layers, source=source)
