"""Builders: every op kind builds in torch and ONNX, gives spec.output_shape, and extracts back to its key."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import numpy_helper

from hwnas.errors import InputError
from hwnas.graph.builders.onnx import layer_to_onnx, module_to_onnx, verify_onnx
from hwnas.graph.builders.torch import build_layer_module, make_inputs
from hwnas.graph.from_onnx import extract_layers_onnx
from hwnas.graph.from_torch import extract_layers
from hwnas.graph.layer import KNOWN_OPS, make_layer

SE = {"in_channels": 16, "out_channels": 16, "bias": True}
CASES = {
    "conv": make_layer(
        "conv2d",
        (1, 8, 16, 16),
        (1, 16, 8, 8),
        in_channels=8,
        out_channels=16,
        kernel=3,
        stride=2,
        padding=1,
        dilation=1,
        bias=True,
    ),
    "conv_grouped": make_layer(
        "conv2d",
        (1, 8, 12, 12),
        (1, 16, 12, 12),
        in_channels=8,
        out_channels=16,
        kernel=3,
        stride=1,
        padding=1,
        dilation=1,
        groups=2,
    ),
    "conv_depthwise": make_layer(
        "conv2d",
        (2, 8, 16, 16),
        (2, 8, 16, 16),
        in_channels=8,
        out_channels=8,
        kernel=5,
        stride=1,
        padding=2,
        dilation=1,
        groups=8,
    ),
    "conv_dilated": make_layer(
        "conv2d",
        (1, 4, 16, 16),
        (1, 4, 16, 16),
        in_channels=4,
        out_channels=4,
        kernel=3,
        stride=1,
        padding=2,
        dilation=2,
    ),
    "linear": make_layer("linear", (2, 32), (2, 10), in_channels=32, out_channels=10, bias=True),
    "linear_3d": make_layer("linear", (1, 5, 32), (1, 5, 10), in_channels=32, out_channels=10, bias=True),
    "matmul": make_layer(
        "matmul", (1, 4, 8), (1, 4, 6), extra_input_shapes=((1, 8, 6),), attrs={"inner_dim": 8}
    ),
    "maxpool": make_layer("maxpool2d", (1, 8, 16, 16), (1, 8, 8, 8), kernel=3, stride=2, padding=1),
    "avgpool": make_layer("avgpool2d", (1, 8, 16, 16), (1, 8, 8, 8), kernel=2, stride=2, padding=0),
    "avgpool_exclude_pad": make_layer(
        "avgpool2d",
        (1, 8, 8, 8),
        (1, 8, 8, 8),
        kernel=3,
        stride=1,
        padding=1,
        attrs={"count_include_pad": False},
    ),
    "global_avgpool": make_layer("global_avgpool", (1, 8, 7, 7), (1, 8, 1, 1)),
    "batchnorm": make_layer("batchnorm", (1, 8, 6, 6), (1, 8, 6, 6), in_channels=8),
    **{
        a: make_layer(a, (1, 8, 4, 4), (1, 8, 4, 4))
        for a in ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu", "tanh")
    },
    "layernorm": make_layer("layernorm", (2, 5, 16), (2, 5, 16), bias=True, attrs={"norm_dims": 1}),
    "layernorm_2d_plain": make_layer(
        "layernorm", (1, 4, 6, 6), (1, 4, 6, 6), attrs={"norm_dims": 2, "affine": False}
    ),
    "permute": make_layer("permute", (1, 8, 4, 6), (1, 4, 6, 8), attrs={"perm": "0,2,3,1"}),
    "transpose": make_layer("permute", (2, 5, 7), (2, 7, 5), attrs={"perm": "0,2,1"}),
    "softmax": make_layer("softmax", (2, 10), (2, 10), attrs={"axis": 1}),
    "add": make_layer("add", (1, 8, 4, 4), (1, 8, 4, 4), extra_input_shapes=((1, 8, 4, 4),)),
    "add_scalar": make_layer("add", (1, 8, 4, 4), (1, 8, 4, 4), attrs={"operand": "scalar"}),
    "mul_broadcast": make_layer("mul", (1, 8, 4, 4), (1, 8, 4, 4), extra_input_shapes=((1, 8, 1, 1),)),
    "concat": make_layer(
        "concat", (1, 8, 4, 4), (1, 24, 4, 4), extra_input_shapes=((1, 16, 4, 4),), attrs={"axis": 1}
    ),
    "concat3": make_layer(
        "concat",
        (1, 8, 4, 4),
        (1, 20, 4, 4),
        extra_input_shapes=((1, 8, 4, 4), (1, 4, 4, 4)),
        attrs={"axis": 1},
    ),
    "flatten": make_layer("flatten", (1, 8, 4, 4), (1, 128), attrs={"start_dim": 1}),
    "reshape": make_layer("reshape", (1, 8, 4, 4), (1, 8, 16)),
    "identity": make_layer("identity", (1, 8, 4, 4), (1, 8, 4, 4)),
    "dropout": make_layer("dropout", (1, 8, 4, 4), (1, 8, 4, 4)),
    "pad": make_layer("pad", (1, 8, 7, 7), (1, 8, 8, 8)),
    "zero": make_layer("zero", (1, 8, 8, 8), (1, 8, 8, 8)),
    "zero_strided": make_layer("zero", (1, 8, 8, 8), (1, 8, 4, 4)),
    "se_sigmoid": make_layer(
        "se",
        (1, 16, 8, 8),
        (1, 16, 8, 8),
        se_ratio=0.25,
        attrs={"squeeze_channels": 4, "gate": "sigmoid"},
        **SE,
    ),
    "se_silu": make_layer(
        "se",
        (1, 16, 4, 4),
        (1, 16, 4, 4),
        se_ratio=0.25,
        attrs={"squeeze_channels": 4, "gate": "sigmoid", "act": "silu"},
        **SE,
    ),
    "se_hardsigmoid": make_layer(
        "se",
        (2, 16, 5, 5),
        (2, 16, 5, 5),
        se_ratio=0.5,
        attrs={"squeeze_channels": 8, "gate": "hardsigmoid"},
        **SE,
    ),
}


def test_cases_cover_every_known_op():
    assert {spec.op for spec in CASES.values()} == set(KNOWN_OPS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_builder_output_shape_and_roundtrip(case):
    spec = CASES[case]
    module = build_layer_module(spec)
    inputs = make_inputs(spec, seed=1)
    assert len(inputs) == 1 + len(spec.extra_input_shapes)
    with torch.no_grad():
        out = module(*inputs)
    assert tuple(out.shape) == spec.output_shape
    back = extract_layers(module, spec.input_shape, extra_input_shapes=spec.extra_input_shapes)
    assert [layer.key() for layer in back.layers] == [spec.key()]
    assert back.source == "torch-fx"


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_builder_output_shape_and_roundtrip(case):
    spec = CASES[case]
    model = layer_to_onnx(spec)
    assert [i.name for i in model.graph.input] == [f"in{k}" for k in range(1 + len(spec.extra_input_shapes))]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {f"in{k}": x.numpy() for k, x in enumerate(make_inputs(spec))}
    (out,) = sess.run(None, feeds)
    assert out.shape == spec.output_shape
    assert np.isfinite(out).all()
    back = extract_layers_onnx(model)
    assert [layer.key() for layer in back.layers] == [spec.key()]


@pytest.mark.parametrize(
    "case",
    [
        "conv",
        "conv_depthwise",
        "linear",
        "se_sigmoid",
        "se_silu",
        "relu6",
        "hardswish",
        "gelu",
        "mul_broadcast",
        "avgpool",
        "avgpool_exclude_pad",
        "layernorm",
        "batchnorm",
    ],
)
def test_torch_and_onnx_builders_compute_the_same_function(case):
    """Same op, same numbers once the ONNX weights are copied into the torch module."""
    spec = CASES[case]
    model = layer_to_onnx(spec, seed=3)
    module = build_layer_module(spec)
    inits = {i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in model.graph.initializer}
    if spec.op in ("batchnorm", "layernorm"):  # scale/shift (and BN's running statistics) by name
        by_stem = {k.split("_")[0]: v for k, v in inits.items()}
        targets = {"gamma": module.weight, "beta": module.bias}
        if spec.op == "batchnorm":
            targets |= {"mean": module.running_mean, "var": module.running_var}
        pairs = [(targets[stem], by_stem[stem]) for stem in targets]
    else:
        weights = [v for k, v in inits.items() if k.startswith(("W", "B"))]
        params = list(module.parameters())
        assert len(weights) == len(params)
        pairs = list(zip(params, weights, strict=True))
    with torch.no_grad():
        for p, w in pairs:
            p.copy_(w.reshape(p.shape))
    inputs = make_inputs(spec, seed=2)
    with torch.no_grad():
        ref = module(*inputs).numpy()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {f"in{k}": x.numpy() for k, x in enumerate(inputs)})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_unknown_op_is_not_buildable():
    spec = make_layer("Einsum", (1, 4), (1, 4))
    assert spec.op == "unknown" and spec.attr("source_op") == "Einsum"
    with pytest.raises(InputError, match="Einsum"):
        build_layer_module(spec)
    with pytest.raises(InputError, match="Einsum"):
        layer_to_onnx(spec)


@pytest.mark.parametrize("name", ["resnet18", pytest.param("mobilenet_v3_small", marks=pytest.mark.slow)])
def test_module_to_onnx_matches_torch(tmp_path, name):
    module = torchvision.models.get_model(name, weights=None).eval()
    shape = (1, 3, 64, 64)
    path = module_to_onnx(module, shape, tmp_path / "m.onnx")
    assert path.is_file() and path.stat().st_size > 1000
    assert verify_onnx(module, path, shape) < 1e-3
    spec = extract_layers_onnx(path)
    assert spec.macs == extract_layers(module, shape).macs


@pytest.mark.slow
def test_module_to_onnx_falls_back_to_dynamo(tmp_path, monkeypatch):
    """When the TorchScript exporter is unavailable the dynamo exporter writes one self-contained file."""
    import hwnas.graph.builders.onnx as onnx_builders

    def broken(*args, **kwargs):
        raise RuntimeError("legacy exporter removed")

    monkeypatch.setattr(onnx_builders, "_export_legacy", broken)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 4),
    ).eval()
    path = onnx_builders.module_to_onnx(module, (1, 3, 8, 8), tmp_path / "d.onnx")
    assert not (tmp_path / "d.onnx.data").exists()
    assert verify_onnx(module, path, (1, 3, 8, 8)) < 1e-4


def test_module_to_onnx_verify_rejects_mismatching_exports(tmp_path, monkeypatch):
    import hwnas.graph.builders.onnx as onnx_builders

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    assert onnx_builders.module_to_onnx(module, (1, 3, 8, 8), tmp_path / "ok.onnx", verify=True).is_file()
    monkeypatch.setattr(onnx_builders, "verify_onnx", lambda *a, **k: 1.0)
    monkeypatch.setattr(onnx_builders, "_export_dynamo", onnx_builders._export_legacy)  # keep the test fast
    with pytest.raises(InputError, match="differ from torch"):
        onnx_builders.module_to_onnx(module, (1, 3, 8, 8), tmp_path / "bad.onnx", verify=True)
