"""Extract a ModelSpec from an ONNX model, with shapes from ``onnx.shape_inference``.

Dynamic dimensions of the graph inputs are pinned first (batch to ``batch_size``, or all of them to
``input_shape``) so that inference yields concrete shapes. Nodes whose inputs are all constants (weight
plumbing such as ``Identity`` on an initializer) or whose outputs are not floating point (shape arithmetic:
``Shape``, ``Gather``, ``Unsqueeze`` on int64) are not layers. The squeeze-and-excitation pattern
GlobalAveragePool/ReduceMean → Conv → Relu → Conv → (Hard)Sigmoid → Mul becomes one ``se`` layer; the
decompositions torch exports for SiLU (Sigmoid, Mul), exact GELU (Div, Erf, Add, Mul, Mul) and a linear
layer on a >2-D input (MatMul, Add) become one layer each. Any other op without a mapping is kept as an
``unknown`` layer with ``source_op``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, ModelSpec, Shape, make_layer

log = logging.getLogger(__name__)

_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT: 4,
    onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.BFLOAT16: 2,
    onnx.TensorProto.DOUBLE: 8,
}
_ACT = {
    "Relu": "relu",
    "HardSwish": "hardswish",
    "HardSigmoid": "hardsigmoid",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Gelu": "gelu",
}
_SHAPE_OPS = {
    "Reshape": "reshape",
    "Squeeze": "reshape",
    "Unsqueeze": "reshape",
    "Identity": "identity",
    "Dropout": "dropout",
    "Pad": "pad",
}


def load_onnx(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Load and check an ONNX model; InputError for a missing or corrupt file."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if path.is_dir():
        raise InputError(f"ONNX file {path} is a directory, not a file", hint="give the .onnx file path")
    if not path.is_file():
        raise InputError(
            f"ONNX file {path} does not exist", hint="check the path, or give a torchvision model name"
        )
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        why = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise InputError(
            f"ONNX file {path} cannot be read: {type(exc).__name__}: {why}",
            hint="re-export the model (torch.onnx.export) or check that the file is complete",
        ) from exc
    if not proto.graph.node or not proto.graph.input:
        raise InputError(
            f"ONNX file {path} cannot be read: it holds no graph (empty or not an ONNX model)",
            hint="re-export the model (torch.onnx.export) or check that the file is complete",
        )
    check_onnx(proto, path)
    return proto


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def check_onnx(proto: onnx.ModelProto, path: Path | str) -> None:
    """``onnx.checker`` with full checks: structural errors (a dangling edge, unsorted nodes, a bad
    attribute) are an InputError; strict shape inference is an error too, except for models with
    operators outside the standard domains, whose shapes onnx cannot infer, and value infos that only
    lack a shape (common in hand-made and older exports; onnxruntime infers it): a warning then."""
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises ValidationError and a few C++-side types
        if "Field 'shape'" in str(exc):
            log.warning("ONNX file %s: %s (shapes are inferred)", path, _first_line(exc))
            return
        raise InputError(
            f"ONNX file {path} is not a valid model: onnx.checker: {_first_line(exc)}",
            hint="re-export the model (torch.onnx.export) or repair the graph",
        ) from exc
    custom = sorted({n.domain for n in proto.graph.node if n.domain not in ("", "ai.onnx", "ai.onnx.ml")})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        if custom:
            log.warning("ONNX file %s: shapes not checked for custom domain(s) %s (%s)", path, custom,
                        _first_line(exc))  # fmt: skip
            return
        raise InputError(
            f"ONNX file {path} is not a valid model: onnx.checker (full check, shape inference): "
            f"{_first_line(exc)}",
            hint="re-export the model, or fix the shapes the message names",
        ) from exc


def check_onnxruntime_loads(path: Path | str) -> None:
    """Open the model in an onnxruntime CPU session once, turning its load errors (an operator without a
    kernel, a custom op, an unsupported type) into an InputError before any measuring starts."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidArgument / NotImplemented types
        why = _first_line(exc)
        hint = "re-export the model with standard ONNX operators, or profile it with a torch-cpu device"
        if "not a registered function/op" in why or "Could not find an implementation" in why:
            hint = ("the model uses an operator onnxruntime has no CPU kernel for: register its custom-op "
                    "library, or re-export with standard operators")  # fmt: skip
        raise InputError(f"ONNX file {path}: onnxruntime cannot load it: {why}", hint=hint) from exc


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    out: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def _pin_inputs(proto: onnx.ModelProto, input_shape: Shape | None, batch_size: int) -> onnx.ModelProto:
    proto2 = onnx.ModelProto()
    proto2.CopyFrom(proto)
    init_names = {i.name for i in proto2.graph.initializer}
    real_inputs = [i for i in proto2.graph.input if i.name not in init_names]
    for k, vi in enumerate(real_inputs):
        dims = vi.type.tensor_type.shape.dim
        for j, d in enumerate(dims):
            want: int | None = None
            if k == 0 and input_shape is not None and j < len(input_shape):
                want = int(input_shape[j])
            elif not d.HasField("dim_value") or d.dim_value <= 0:
                if j == 0:
                    want = batch_size
                else:
                    raise InputError(
                        f"ONNX input {vi.name!r} has a dynamic dimension {j} ({d.dim_param or '?'})",
                        hint="give --input-shape to pin it, e.g. 1,3,224,224",
                    )
            if want is not None:
                d.ClearField("dim_param")
                d.dim_value = want
    return proto2


class _Graph:
    """Lookup tables over one shape-inferred ONNX graph."""

    def __init__(self, proto: onnx.ModelProto) -> None:
        g = proto.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
        self.info: dict[str, onnx.ValueInfoProto] = {}
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            self.info[vi.name] = vi
        self.producer: dict[str, onnx.NodeProto] = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.graph_outputs = {o.name for o in g.output}

    def shape(self, name: str) -> Shape | None:
        if name in self.consts:
            return tuple(int(s) for s in self.consts[name].shape)
        vi = self.info.get(name)
        if vi is None:
            return None
        dims = _dims(vi)
        if any(not isinstance(d, int) for d in dims):
            return None
        return tuple(dims)  # type: ignore[arg-type]

    def elem_type(self, name: str) -> int | None:
        if name in self.consts:
            return onnx.helper.np_dtype_to_tensor_dtype(self.consts[name].dtype)
        vi = self.info.get(name)
        return vi.type.tensor_type.elem_type if vi is not None else None

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def dynamic_inputs(self, node: onnx.NodeProto) -> list[str]:
        return [i for i in node.input if i and not self.is_const(i)]

    def only_consumer(self, name: str, op_types: tuple[str, ...]) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        if len(users) == 1 and users[0].op_type in op_types and name not in self.graph_outputs:
            return users[0]
        return None


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _se_activation(g: _Graph, out_name: str) -> tuple[list[onnx.NodeProto], str, str] | None:
    """The SE's inner activation producing ``out_name``: (its nodes, its input, canonical name)."""
    act = g.producer.get(out_name)
    if act is None:
        return None
    if act.op_type in ("Relu", "HardSwish"):
        return [act], act.input[0], _ACT[act.op_type]
    if act.op_type == "Mul" and len(act.input) == 2:  # SiLU exported as x · sigmoid(x)
        for s_in, x_in in ((act.input[1], act.input[0]), (act.input[0], act.input[1])):
            sig = g.producer.get(s_in)
            if sig is not None and sig.op_type == "Sigmoid" and sig.input[0] == x_in:
                return [sig, act], x_in, "silu"
    return None


def _match_se(g: _Graph, mul: onnx.NodeProto) -> tuple[list[onnx.NodeProto], str, str, str, int] | None:
    """Match the SE pattern ending in ``mul``: (nodes, input name, gate, activation, squeeze) or None."""
    if mul.op_type != "Mul" or len(mul.input) != 2:
        return None
    for gate_in, x_in in ((mul.input[1], mul.input[0]), (mul.input[0], mul.input[1])):
        gate = g.producer.get(gate_in)
        if gate is None or gate.op_type not in ("Sigmoid", "HardSigmoid"):
            continue
        up = g.producer.get(gate.input[0])
        if up is None or up.op_type != "Conv":
            continue
        act = _se_activation(g, up.input[0])
        if act is None:
            continue
        act_nodes, act_in, act_name = act
        down = g.producer.get(act_in)
        pool = g.producer.get(down.input[0]) if down is not None and down.op_type == "Conv" else None
        if pool is None or pool.op_type not in ("GlobalAveragePool", "ReduceMean") or pool.input[0] != x_in:
            continue
        chain = [pool, down, *act_nodes, up, gate]
        # every intermediate feeds only nodes of the pattern (the SiLU input feeds its Sigmoid and Mul)
        members = {id(n) for n in chain} | {id(mul)}
        if any(id(u) not in members for n in chain for u in g.consumers.get(n.output[0], [])):
            continue
        if any(n.output[0] in g.graph_outputs for n in chain):
            continue
        w = g.consts.get(down.input[1])  # type: ignore[union-attr]
        if w is None:
            continue
        gate_name = "hardsigmoid" if gate.op_type == "HardSigmoid" else "sigmoid"
        return [*chain, mul], x_in, gate_name, act_name, int(w.shape[0])
    return None


def _conv(g: _Graph, n: onnx.NodeProto, x: Shape, y: Shape, name: str) -> LayerSpec:
    a = _attrs(n)
    w = g.shape(n.input[1]) or ()
    k = tuple(a.get("kernel_shape", w[2:]))
    strides = tuple(int(v) for v in a.get("strides", [1, 1]))
    dilations = tuple(int(v) for v in a.get("dilations", [1, 1]))
    pads = [int(p) for p in a.get("pads", [0] * 4)]
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and len(k) == 2:  # explicit pads from the shapes
        begin, end = [], []
        for i, o, kk, st, d in zip(x[2:], y[2:], k, strides, dilations, strict=False):
            total = max(0, (o - 1) * st + (kk - 1) * d + 1 - i)
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
        pads = begin + end
    attrs: dict[str, Any] = {}
    if len(pads) == 4 and (pads[0] != pads[2] or pads[1] != pads[3]):
        attrs["pads"] = ",".join(str(p) for p in pads)
    return make_layer(
        "conv2d",
        x,
        y,
        name=name,
        in_channels=x[1],
        out_channels=y[1],
        kernel=k,
        stride=strides,
        padding=(pads[0], pads[1]) if len(pads) >= 2 else 0,
        dilation=dilations,
        groups=int(a.get("group", 1)),
        bias=len(n.input) > 2 and bool(n.input[2]),
        attrs=attrs,
    )


def _pool(op: str, n: onnx.NodeProto, x: Shape, y: Shape, name: str) -> LayerSpec:
    a = _attrs(n)
    pads = list(a.get("pads", [0, 0, 0, 0]))
    k = tuple(a.get("kernel_shape", (1, 1)))
    attrs: dict[str, Any] = {"ceil_mode": True} if a.get("ceil_mode", 0) else {}
    if op == "avgpool2d" and any(int(v) for v in pads) and not a.get("count_include_pad", 0):
        attrs["count_include_pad"] = False  # ONNX's default, unlike torch's
    return make_layer(
        op,
        x,
        y,
        name=name,
        kernel=k,
        stride=tuple(a.get("strides", k)),
        padding=(pads[0], pads[1]),
        attrs=attrs,
    )


def _node_layer(g: _Graph, n: onnx.NodeProto) -> LayerSpec | None:
    op = n.op_type
    name = n.name or (n.output[0] if n.output else op)
    if op == "Constant":
        return None
    dyn = g.dynamic_inputs(n)
    if not dyn:  # computes only on constants: folded weights, not a layer
        return None
    if op == "Slice":
        user = g.only_consumer(n.output[0], ("Mul",))
        if user is not None and _zero_const(g, user):
            return None  # folded into the "zero" layer of its Mul
    out_types = [g.elem_type(o) for o in n.output if o]
    if out_types and all(t is not None and t not in _FLOAT_TYPES for t in out_types):
        return None  # shape arithmetic (int64), not tensor data
    x = g.shape(dyn[0])
    y = g.shape(n.output[0]) if n.output else None
    if x is None or y is None:
        return make_layer(op, x or (), y or (), name=name, attrs={"shape": "unknown"})
    dtb = _FLOAT_TYPES.get(g.elem_type(n.output[0]) or onnx.TensorProto.FLOAT, 4)
    spec = _map(g, n, op, x, y, dyn, name)
    if dtb != 4:
        from dataclasses import replace

        from hwnas.graph.analytic import fill_costs

        spec = fill_costs(replace(spec, dtype_bytes=dtb))
    return spec


def _map(g: _Graph, n: onnx.NodeProto, op: str, x: Shape, y: Shape, dyn: list[str], name: str) -> LayerSpec:
    a = _attrs(n)
    if op == "Conv" and len(x) == 4:
        return _conv(g, n, x, y, name)
    if op == "Gemm":
        w = g.consts.get(n.input[1])
        if w is not None and len(dyn) == 1 and not a.get("transA", 0):
            fout = w.shape[0] if a.get("transB", 0) else w.shape[1]
            fin = w.shape[1] if a.get("transB", 0) else w.shape[0]
            return make_layer(
                "linear",
                x,
                y,
                name=name,
                in_channels=int(fin),
                out_channels=int(fout),
                bias=len(n.input) > 2 and bool(n.input[2]),
            )
        extra = tuple(sh for sh in (g.shape(i) for i in dyn[1:2]) if sh is not None)
        return make_layer(
            "matmul", x, y, name=name, extra_input_shapes=extra, attrs={"inner_dim": int(x[-1])}
        )
    if op == "MatMul":
        if g.is_const(n.input[1]) and len(dyn) == 1:
            w = g.consts[n.input[1]]
            if w.ndim == 2:
                return make_layer(
                    "linear", x, y, name=name, in_channels=int(w.shape[0]), out_channels=int(w.shape[1])
                )
        extra = tuple(s for s in (g.shape(i) for i in dyn[1:]) if s is not None)
        return make_layer(
            "matmul", x, y, name=name, extra_input_shapes=extra, attrs={"inner_dim": int(x[-1])}
        )
    if op == "Transpose":
        perm = [int(v) for v in a.get("perm", list(range(len(x)))[::-1])]
        return make_layer("permute", x, y, name=name, attrs={"perm": ",".join(map(str, perm))})
    if op == "LayerNormalization" and len(n.input) >= 2:
        axis = int(a.get("axis", -1)) % len(x)
        bias = len(n.input) > 2 and bool(n.input[2])
        attrs: dict[str, Any] = {"norm_dims": len(x) - axis}
        scale = g.consts.get(n.input[1])
        if not bias and scale is not None and np.all(scale == 1):
            attrs["affine"] = False  # torch exports elementwise_affine=False as a constant scale of ones
        return make_layer("layernorm", x, y, name=name, bias=bias, attrs=attrs)
    if op == "BatchNormalization":
        return make_layer("batchnorm", x, y, name=name, in_channels=x[1])
    if op in _ACT:
        return make_layer(_ACT[op], x, y, name=name)
    if op == "Clip":
        lo = g.consts.get(n.input[1]) if len(n.input) > 1 and n.input[1] else a.get("min")
        hi = g.consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else a.get("max")
        lo_v = float(np.asarray(lo)) if lo is not None else None
        hi_v = float(np.asarray(hi)) if hi is not None else None
        if lo_v == 0.0 and hi_v == 6.0:
            return make_layer("relu6", x, y, name=name)
        if lo_v == 0.0 and hi_v is None:
            return make_layer("relu", x, y, name=name)
        return make_layer("Clip", x, y, name=name)
    if op == "Softmax":
        return make_layer("softmax", x, y, name=name, attrs={"axis": int(a.get("axis", -1)) % len(x)})
    if op == "Mul" and len(dyn) == 1 and _zero_const(g, n):
        src = g.producer.get(dyn[0])
        if src is not None and src.op_type == "Slice" and g.shape(src.input[0]) is not None:
            x = g.shape(src.input[0])  # type: ignore[assignment]
        return make_layer("zero", x, y, name=name)
    if op in ("Add", "Mul"):
        canon = op.lower()
        if len(dyn) >= 2:
            extra = tuple(s for s in (g.shape(i) for i in dyn[1:]) if s is not None)
            return make_layer(canon, g.shape(dyn[0]) or x, y, name=name, extra_input_shapes=extra)
        return make_layer(
            canon,
            x,
            y,
            name=name,
            attrs={"operand": "scalar"} if _scalar_const(g, n) else {"operand": "tensor"},
        )
    if op == "Concat":
        shapes = [g.shape(i) for i in n.input]
        if all(s is not None for s in shapes):
            return make_layer(
                "concat",
                shapes[0],
                y,
                name=name,
                extra_input_shapes=tuple(shapes[1:]),  # type: ignore[arg-type]
                attrs={"axis": int(a.get("axis", 0)) % len(y)},
            )
    if op == "Flatten":
        return make_layer("flatten", x, y, name=name, attrs={"start_dim": int(a.get("axis", 1))})
    if op == "MaxPool":
        return _pool("maxpool2d", n, x, y, name)
    if op == "AveragePool":
        return _pool("avgpool2d", n, x, y, name)
    if op == "GlobalAveragePool":
        return make_layer("global_avgpool", x, y, name=name)
    if (
        op == "ReduceMean"
        and len(x) == 4
        and tuple(y[:2]) == tuple(x[:2])
        and int(np.prod(y[2:] or (1,))) == 1
    ):
        return make_layer("global_avgpool", x, (*x[:2], 1, 1), name=name)
    if op in _SHAPE_OPS:
        return make_layer(_SHAPE_OPS[op], x, y, name=name)
    return make_layer(op, x, y, name=name)


def _zero_const(g: _Graph, n: onnx.NodeProto) -> bool:
    consts = [g.consts[i] for i in n.input if i in g.consts]
    return len(consts) == 1 and consts[0].size == 1 and float(consts[0].reshape(-1)[0]) == 0.0


def _scalar_const(g: _Graph, n: onnx.NodeProto) -> bool:
    consts = [g.consts[i] for i in n.input if i in g.consts]
    return bool(consts) and all(c.size == 1 for c in consts)


Fusion = tuple[list[onnx.NodeProto], LayerSpec]


def _fuse_se(g: _Graph, n: onnx.NodeProto) -> Fusion | None:
    match = _match_se(g, n)
    if match is None:
        return None
    nodes, x_in, gate, act, squeeze = match
    x = g.shape(x_in)
    if x is None:
        return None
    c = int(x[1])
    attrs: dict[str, Any] = {"squeeze_channels": squeeze, "gate": gate}
    if act != "relu":
        attrs["act"] = act
    spec = make_layer(
        "se",
        x,
        x,
        name=n.name or n.output[0],
        in_channels=c,
        out_channels=c,
        se_ratio=squeeze / c,
        bias=True,
        attrs=attrs,
    )
    return nodes[:-1], spec


def _single_use(g: _Graph, node: onnx.NodeProto | None, op_type: str) -> bool:
    return (
        node is not None
        and node.op_type == op_type
        and len(g.consumers.get(node.output[0], [])) == 1
        and node.output[0] not in g.graph_outputs
    )


def _fuse_silu(g: _Graph, n: onnx.NodeProto) -> Fusion | None:
    """x · sigmoid(x) (how torch exports SiLU before opset 22)."""
    if n.op_type != "Mul" or len(n.input) != 2:
        return None
    for s_in, x_in in ((n.input[1], n.input[0]), (n.input[0], n.input[1])):
        sig = g.producer.get(s_in)
        if _single_use(g, sig, "Sigmoid") and sig.input[0] == x_in:  # type: ignore[union-attr]
            x, y = g.shape(x_in), g.shape(n.output[0])
            if x is not None and y is not None:
                return [sig], make_layer("silu", x, y, name=n.name or n.output[0])  # type: ignore[list-item]
    return None


def _fuse_gelu(g: _Graph, n: onnx.NodeProto) -> Fusion | None:
    """(x · (erf(x / √2) + 1)) · 0.5 (how torch exports exact GELU before opset 20)."""
    if n.op_type != "Mul" or len(g.dynamic_inputs(n)) != 1:
        return None
    inner = g.producer.get(g.dynamic_inputs(n)[0])
    if not _single_use(g, inner, "Mul"):
        return None
    for a_in, x_in in ((inner.input[1], inner.input[0]), (inner.input[0], inner.input[1])):  # type: ignore[union-attr]
        add = g.producer.get(a_in)
        if not _single_use(g, add, "Add"):
            continue
        erf = next((g.producer.get(i) for i in add.input if g.producer.get(i) is not None), None)  # type: ignore[union-attr]
        div = g.producer.get(erf.input[0]) if _single_use(g, erf, "Erf") else None  # type: ignore[union-attr]
        if _single_use(g, div, "Div") and div.input[0] == x_in:  # type: ignore[union-attr]
            x, y = g.shape(x_in), g.shape(n.output[0])
            if x is not None and y is not None:
                return [div, erf, add, inner], make_layer("gelu", x, y, name=n.name or n.output[0])  # type: ignore[list-item]
    return None


def _fuse_linear_bias(g: _Graph, n: onnx.NodeProto) -> Fusion | None:
    """MatMul(x, W) + b with constant W (2-D) and b (1-D): a linear layer on a >2-D input."""
    if n.op_type != "Add" or len(n.input) != 2:
        return None
    for m_in, b_in in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
        mm = g.producer.get(m_in)
        bias = g.consts.get(b_in)
        if not _single_use(g, mm, "MatMul") or bias is None or bias.ndim != 1:
            continue
        w = g.consts.get(mm.input[1])  # type: ignore[union-attr]
        x, y = g.shape(mm.input[0]), g.shape(n.output[0])  # type: ignore[union-attr]
        if w is not None and w.ndim == 2 and bias.shape[0] == w.shape[1] and x is not None and y is not None:
            spec = make_layer(
                "linear",
                x,
                y,
                name=n.name or n.output[0],
                in_channels=int(w.shape[0]),
                out_channels=int(w.shape[1]),
                bias=True,
            )
            return [mm], spec  # type: ignore[list-item]
    return None


# Passes over the graph; in each, matchers are tried on every node as the last node of a pattern.
_FUSION_PASSES = ((_fuse_se,), (_fuse_silu, _fuse_gelu, _fuse_linear_bias))


def extract_layers_onnx(
    model: str | Path | onnx.ModelProto,
    *,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = 1,
    name: str = "",
) -> ModelSpec:
    """Layers of an ONNX model in graph (topological) order; InputError for a missing or corrupt file."""
    proto = load_onnx(model)
    proto = _pin_inputs(proto, input_shape, batch_size)
    try:
        inferred = shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise InputError(
            f"ONNX shape inference failed: {exc}", hint="check the model with onnx.checker"
        ) from exc
    g = _Graph(inferred)
    fused: dict[str, LayerSpec | None] = {}  # node id -> the fused layer (at its last node) or None
    for matchers in _FUSION_PASSES:  # SE first, so that its inner SiLU is not fused on its own
        for n in inferred.graph.node:
            if id_of(n) in fused:
                continue
            for matcher in matchers:
                match = matcher(g, n)
                if match is None:
                    continue
                members, spec = match
                if any(id_of(m) in fused for m in members):
                    continue
                for member in members:
                    fused[id_of(member)] = None
                fused[id_of(n)] = spec
                break
    layers: list[LayerSpec] = []
    for n in inferred.graph.node:
        key = id_of(n)
        if key in fused:
            if fused[key] is not None:
                layers.append(fused[key])  # type: ignore[arg-type]
            continue
        spec = _node_layer(g, n)
        if spec is not None:
            layers.append(spec)
    real_inputs = [
        i for i in inferred.graph.input if i.name not in {t.name for t in inferred.graph.initializer}
    ]
    in_shape = tuple(int(d) for d in _dims(real_inputs[0])) if real_inputs else ()  # type: ignore[arg-type]
    if isinstance(model, (str, Path)):
        default_name = Path(model).name
    else:
        default_name = inferred.graph.name or "onnx-model"
    return ModelSpec(name=name or default_name, input_shape=in_shape, layers=layers, source="onnx")


def id_of(node: onnx.NodeProto) -> str:
    """A node's identity within one graph: its first output name (unique in valid ONNX)."""
    return node.output[0] if node.output else node.name
