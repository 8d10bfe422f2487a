"""ONNX builders: one LayerSpec as a tiny ONNX model, and a whole torch model exported to ONNX.

``layer_to_onnx`` writes the graph by hand with ``onnx.helper`` (fast, no torch export per layer); weights
are random from a seeded generator. Inputs are named ``in0``, ``in1``, ...; the output is ``out``.

``module_to_onnx`` uses torch's TorchScript exporter (``dynamo=False``; still present in torch 2.11-2.14,
fast and single-file) and falls back to the dynamo exporter (torch.export + onnxscript) when the legacy
one is missing or fails. The written file is loaded and checked before it is returned.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwnas.errors import InputError
from hwnas.graph.fusion import Unit
from hwnas.graph.layer import LayerSpec

_ELEM = {
    2: (TensorProto.FLOAT16, np.float16),
    4: (TensorProto.FLOAT, np.float32),
    8: (TensorProto.DOUBLE, np.float64),
}


class _G:
    """A small graph under construction: nodes, initializers, fresh names."""

    def __init__(self, np_dtype: Any, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.np_dtype = np_dtype
        self.rng = np.random.default_rng(seed)
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value: Any, dtype: Any = None) -> str:
        name = self.name(stem)
        arr = np.asarray(value, dtype=dtype or self.np_dtype)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def weight(self, stem: str, shape: tuple[int, ...], fan_in: int) -> str:
        bound = 1.0 / math.sqrt(max(1, fan_in))
        return self.const(stem, self.rng.uniform(-bound, bound, size=shape))

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        out = out or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out


def _conv(g: _G, spec: LayerSpec, x: str, out: str) -> str:
    cin = int(spec.in_channels or spec.input_shape[1])
    cout = int(spec.out_channels or spec.output_shape[1])
    kh, kw = spec.kernel or (1, 1)
    fan_in = cin // spec.groups * kh * kw
    w = g.weight("W", (cout, cin // spec.groups, kh, kw), fan_in)
    inputs = [x, w] + ([g.weight("B", (cout,), fan_in)] if spec.bias else [])
    if spec.attr("pads"):
        pads = [int(p) for p in str(spec.attr("pads")).split(",")]
    else:
        ph, pw = spec.padding or (0, 0)
        pads = [ph, pw, ph, pw]
    return g.node(
        "Conv",
        inputs,
        out,
        kernel_shape=[kh, kw],
        strides=list(spec.stride or (1, 1)),
        pads=pads,
        dilations=list(spec.dilation or (1, 1)),
        group=spec.groups,
    )


def _pool(g: _G, op: str, spec: LayerSpec, x: str, out: str) -> str:
    kh, kw = spec.kernel or (1, 1)
    ph, pw = spec.padding or (0, 0)
    attrs: dict[str, Any] = {
        "kernel_shape": [kh, kw],
        "strides": list(spec.stride or (kh, kw)),
        "pads": [ph, pw, ph, pw],
        "ceil_mode": int(bool(spec.attr("ceil_mode"))),
    }
    if op == "AveragePool":
        attrs["count_include_pad"] = int(spec.attr("count_include_pad", True))  # torch's default: 1
    return g.node(op, [x], out, **attrs)


def _se(g: _G, spec: LayerSpec, x: str, out: str) -> str:
    c = int(spec.in_channels or spec.input_shape[1])
    s = int(spec.attr("squeeze_channels", max(1, round(c * (spec.se_ratio or 0.25)))))
    p = g.node("GlobalAveragePool", [x])
    h = g.node("Conv", [p, g.weight("W1", (s, c, 1, 1), c), g.weight("B1", (s,), c)], kernel_shape=[1, 1])
    act = str(spec.attr("act", "relu"))
    if act == "silu":
        h = g.node("Mul", [h, g.node("Sigmoid", [h])])
    else:
        h = g.node("HardSwish" if act == "hardswish" else "Relu", [h])
    h = g.node("Conv", [h, g.weight("W2", (c, s, 1, 1), s), g.weight("B2", (c,), s)], kernel_shape=[1, 1])
    if spec.attr("gate", "sigmoid") == "hardsigmoid":
        h = g.node("HardSigmoid", [h], alpha=1.0 / 6.0, beta=0.5)
    else:
        h = g.node("Sigmoid", [h])
    return g.node("Mul", [x, h], out)


def _body(g: _G, spec: LayerSpec, ins: list[str], out: str, opset: int) -> None:
    op, x = spec.op, ins[0]
    if op == "conv2d":
        _conv(g, spec, x, out)
    elif op == "linear":
        fin = int(spec.in_channels or spec.input_shape[-1])
        fout = int(spec.out_channels or spec.output_shape[-1])
        if len(spec.input_shape) == 2:
            inputs = [x, g.weight("W", (fout, fin), fin)] + (
                [g.weight("B", (fout,), fin)] if spec.bias else []
            )
            g.node("Gemm", inputs, out, transB=1)
        elif spec.bias:
            h = g.node("MatMul", [x, g.weight("W", (fin, fout), fin)])
            g.node("Add", [h, g.weight("B", (fout,), fin)], out)
        else:
            g.node("MatMul", [x, g.weight("W", (fin, fout), fin)], out)
    elif op == "matmul":
        other = (
            ins[1]
            if len(ins) > 1
            else g.weight("W", (int(spec.input_shape[-1]), int(spec.output_shape[-1])), 1)
        )
        g.node("MatMul", [x, other], out)
    elif op == "maxpool2d":
        _pool(g, "MaxPool", spec, x, out)
    elif op == "avgpool2d":
        _pool(g, "AveragePool", spec, x, out)
    elif op == "global_avgpool":
        g.node("GlobalAveragePool", [x], out)
    elif op == "batchnorm":
        c = int(spec.in_channels or spec.input_shape[1])
        scale, bias = g.const("gamma", g.rng.uniform(0.5, 1.5, c)), g.const("beta", g.rng.normal(0, 0.1, c))
        mean, var = g.const("mean", g.rng.normal(0, 0.1, c)), g.const("var", g.rng.uniform(0.5, 1.5, c))
        g.node("BatchNormalization", [x, scale, bias, mean, var], out, epsilon=1e-5)
    elif op == "layernorm":
        norm_shape = tuple(int(v) for v in spec.input_shape[-int(spec.attr("norm_dims", 1)) :])
        axis = len(spec.input_shape) - len(norm_shape)
        if spec.attr("affine", True):
            scale = g.const("gamma", g.rng.uniform(0.5, 1.5, norm_shape))
        else:
            scale = g.const("gamma", np.ones(norm_shape))
        inputs = [x, scale] + ([g.const("beta", g.rng.normal(0, 0.1, norm_shape))] if spec.bias else [])
        g.node("LayerNormalization", inputs, out, axis=axis, epsilon=1e-5)
    elif op == "permute":
        g.node("Transpose", [x], out, perm=[int(v) for v in str(spec.attr("perm")).split(",")])
    elif op in ("relu", "sigmoid", "tanh"):
        g.node({"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}[op], [x], out)
    elif op == "relu6":
        g.node("Clip", [x, g.const("lo", 0.0), g.const("hi", 6.0)], out)
    elif op == "hardswish":
        g.node("HardSwish", [x], out)
    elif op == "hardsigmoid":
        g.node("HardSigmoid", [x], out, alpha=1.0 / 6.0, beta=0.5)
    elif op == "silu":
        g.node("Mul", [x, g.node("Sigmoid", [x])], out)
    elif op == "gelu":
        if opset >= 20:
            g.node("Gelu", [x], out)
        else:  # exact GELU: x · 0.5 · (1 + erf(x / √2))
            e = g.node("Erf", [g.node("Div", [x, g.const("sqrt2", math.sqrt(2.0))])])
            h = g.node("Mul", [x, g.node("Add", [e, g.const("one", 1.0)])])
            g.node("Mul", [h, g.const("half", 0.5)], out)
    elif op == "softmax":
        g.node("Softmax", [x], out, axis=int(spec.attr("axis", -1)))
    elif op in ("add", "mul"):
        onnx_op = "Add" if op == "add" else "Mul"
        if len(ins) == 1:
            g.node(onnx_op, [x, g.const("c", 1.0 if op == "add" else 0.5)], out)
        else:
            h = x
            for k, other in enumerate(ins[1:], start=1):
                h = g.node(onnx_op, [h, other], out if k == len(ins) - 1 else None)
    elif op == "concat":
        g.node("Concat", ins, out, axis=int(spec.attr("axis", 1)))
    elif op in ("flatten", "reshape"):
        if op == "flatten" and len(spec.output_shape) == 2 and int(spec.attr("start_dim", 1)) == 1:
            g.node("Flatten", [x], out, axis=1)
        else:
            g.node("Reshape", [x, g.const("shape", list(spec.output_shape), np.int64)], out)
    elif op == "identity":
        g.node("Identity", [x], out)
    elif op == "dropout":  # identity at inference, kept as Dropout so that it extracts back as dropout
        g.node("Dropout", [x], out)
    elif op == "pad":
        pads_begin, pads_end = [0, 0], [0, 0]
        for i, o in zip(spec.input_shape[2:], spec.output_shape[2:], strict=False):
            d = int(o) - int(i)
            pads_begin.append(d // 2)
            pads_end.append(d - d // 2)
        g.node("Pad", [x, g.const("pads", pads_begin + pads_end, np.int64)], out)
    elif op == "zero":
        steps = [
            max(1, int(i) // max(1, int(o)))
            for i, o in zip(spec.input_shape[2:], spec.output_shape[2:], strict=False)
        ]
        h = x
        if any(s != 1 for s in steps):
            big = np.iinfo(np.int64).max
            h = g.node(
                "Slice",
                [
                    x,
                    g.const("st", [0, 0], np.int64),
                    g.const("en", [big, big], np.int64),
                    g.const("ax", [2, 3], np.int64),
                    g.const("sp", steps, np.int64),
                ],
            )
        g.node("Mul", [h, g.const("zero", 0.0)], out)
    elif op == "se":
        _se(g, spec, x, out)
    else:
        raise InputError(
            f"cannot build layer {spec.name or spec.key()}: op {op!r} (source op {spec.attr('source_op')!r}) "
            "has no ONNX builder",
            hint="unknown ops are kept in the layer list for reporting; profile the whole model instead",
        )


def layer_to_onnx(spec: LayerSpec, opset: int = 17, seed: int = 0) -> onnx.ModelProto:
    """One layer as a checked ONNX model with random weights; inputs ``in0``, ``in1``, ..., output ``out``."""
    elem, np_dtype = _ELEM.get(spec.dtype_bytes, _ELEM[4])
    g = _G(np_dtype, seed)
    shapes = [spec.input_shape, *spec.extra_input_shapes]
    ins = [f"in{k}" for k in range(len(shapes))]
    _body(g, spec, ins, "out", opset)
    graph = helper.make_graph(
        g.nodes,
        f"hwnas_{spec.op}",
        [helper.make_tensor_value_info(n, elem, list(s)) for n, s in zip(ins, shapes, strict=False)],
        [helper.make_tensor_value_info("out", elem, list(spec.output_shape))],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hwnas")
    model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9)
    onnx.checker.check_model(model)
    return model


def unit_to_onnx(unit: Unit, opset: int = 17, seed: int = 0) -> onnx.ModelProto:
    """A fused unit (a chain of layers) as one ONNX model, so the runtime can fuse it as in the whole model.

    Inputs ``in0`` (the first layer's input) and ``in1``, ... (operands from outside the chain, e.g. a
    residual) in the order of ``Unit.wiring``; output ``out``. A one-layer unit is ``layer_to_onnx``.
    """
    if not unit.fused:
        return layer_to_onnx(unit.layers[0], opset, seed)
    elem, np_dtype = _ELEM.get(unit.layers[0].dtype_bytes, _ELEM[4])
    g = _G(np_dtype, seed)
    shapes, wiring = unit.wiring()
    ins = [f"in{k}" for k in range(len(shapes))]
    prev = ""
    for j, (layer, src) in enumerate(zip(unit.layers, wiring, strict=True)):
        out = "out" if j == len(unit.layers) - 1 else g.name(f"t{j}")
        _body(g, layer, [prev if k < 0 else ins[k] for k in src], out, opset)
        prev = out
    graph = helper.make_graph(
        g.nodes,
        "hwnas_unit_" + "_".join(layer.op for layer in unit.layers),
        [helper.make_tensor_value_info(n, elem, list(s)) for n, s in zip(ins, shapes, strict=True)],
        [helper.make_tensor_value_info("out", elem, list(unit.output_shape))],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hwnas")
    model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9)
    onnx.checker.check_model(model)
    return model


def _is_oom(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def _out_of_memory(module: Any, input_shape: tuple[int, ...], exc: BaseException) -> InputError:
    shape = "x".join(map(str, input_shape))
    return InputError(
        f"out of memory exporting {type(module).__name__} at input {shape} to ONNX ({type(exc).__name__})",
        hint="use a smaller --batch-size or --input-shape",
    )


def module_to_onnx(
    module: Any,
    input_shape: tuple[int, ...],
    path: str | Path,
    opset: int = 17,
    verify: bool = False,
    atol: float = 1e-3,
) -> Path:
    """Export a torch module (eval mode, CPU) to one self-contained ONNX file at ``path``.

    Tries the TorchScript exporter, then the dynamo one; a file counts when ``onnx.checker`` accepts it and,
    with ``verify=True``, when onnxruntime's output is within ``atol`` of torch's. InputError if none works.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        example = (torch.randn(*input_shape),)
    except (MemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
        raise _out_of_memory(module, input_shape, exc) from exc
    was_training = module.training
    module.eval()
    errors: list[str] = []
    try:
        for exporter in (_export_legacy, _export_dynamo):
            name = exporter.__name__.removeprefix("_export_")
            try:
                exporter(module, example, path, opset)
                onnx.checker.check_model(str(path))
                if verify:
                    diff = verify_onnx(module, path, input_shape)
                    if not diff <= atol:
                        errors.append(f"{name}: outputs differ from torch by {diff:.3g} (> {atol:g})")
                        continue
                return path
            except Exception as exc:  # try the next exporter; report all if none works
                if _is_oom(exc):  # another exporter would run out too; an opset hint would mislead
                    raise _out_of_memory(module, input_shape, exc) from exc
                errors.append(f"{name}: {type(exc).__name__}: {exc}"[:400])
    finally:
        module.train(was_training)
    raise InputError(
        f"could not export {type(module).__name__} to ONNX at {path}: " + "; ".join(errors),
        hint="check that the model runs on the given input shape; unusual ops may need a newer opset",
    )


def _export_legacy(module: Any, example: tuple[Any, ...], path: Path, opset: int) -> None:
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["output"],
            do_constant_folding=True,
        )


def _export_dynamo(module: Any, example: tuple[Any, ...], path: Path, opset: int) -> None:
    import torch

    sink = io.StringIO()  # the dynamo exporter prints progress to stdout; library code must not
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            opset_version=max(opset, 18),
            input_names=["input"],
            output_names=["output"],
        )
        program.save(str(path), external_data=False)


def verify_onnx(module: Any, path: str | Path, input_shape: tuple[int, ...], seed: int = 0) -> float:
    """Largest absolute difference between the torch module and the ONNX file run by onnxruntime."""
    import onnxruntime as ort
    import torch

    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ref = module(x).numpy()
    finally:
        module.train(was_training)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    return float(np.max(np.abs(ref - got)))
