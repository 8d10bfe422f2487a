"""Analytic MACs and params agree with fvcore and thop where they count the same thing.

Conventions differ on batch-norm, activations, biases and pooling (see hwnas.graph.analytic); these tests
compare what both sides define the same way: conv and linear multiply-accumulates per module, SE
projections, and parameter totals.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
import torchvision
from torch import nn

from hwnas.graph.from_onnx import extract_layers_onnx
from hwnas.graph.from_torch import extract_layers

fvcore_nn = pytest.importorskip("fvcore.nn")
thop = pytest.importorskip("thop")


def _depthwise_se_block() -> nn.Module:
    from torchvision.ops.misc import SqueezeExcitation

    return nn.Sequential(
        nn.Conv2d(16, 96, 1, bias=False),
        nn.BatchNorm2d(96),
        nn.ReLU6(),
        nn.Conv2d(96, 96, 5, stride=2, padding=2, groups=96, bias=False),
        nn.BatchNorm2d(96),
        nn.ReLU6(),
        SqueezeExcitation(96, 24),
        nn.Conv2d(96, 24, 1, bias=True),
        nn.BatchNorm2d(24),
    ).eval()


MODELS = {
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None).eval(), (1, 3, 128, 128)),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None).eval(), (1, 3, 128, 128)),
    "mobilenet_v3_small": (
        lambda: torchvision.models.mobilenet_v3_small(weights=None).eval(),
        (2, 3, 96, 96),
    ),
    "dw_se_block": (_depthwise_se_block, (2, 16, 32, 32)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request):
    build, shape = MODELS[request.param]
    torch.manual_seed(0)
    module = build()
    spec = extract_layers(module, shape, name=request.param)
    return request.param, module, shape, spec


def _fvcore(module: nn.Module, shape: tuple[int, ...]):
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fa = fvcore_nn.FlopCountAnalysis(module, torch.randn(*shape))
            fa.unsupported_ops_warnings(False)
            fa.uncalled_modules_warnings(False)
            by_module = dict(fa.by_module())
            by_module_op = {k: dict(v) for k, v in fa.by_module_and_operator().items()}
            by_op = dict(fa.by_operator())
    finally:
        logging.disable(logging.NOTSET)
    return by_module, by_module_op, by_op


def _thop_per_module(module: nn.Module, shape: tuple[int, ...]) -> tuple[float, float, dict[str, float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ops, params, info = thop.profile(
            module, inputs=(torch.randn(*shape),), verbose=False, ret_layer_info=True
        )
    flat: dict[str, float] = {}

    def walk(prefix: str, tree: dict) -> None:
        for name, (n_ops, _n_params, children) in tree.items():
            q = f"{prefix}.{name}" if prefix else name
            flat[q] = float(n_ops)
            walk(q, children)

    walk("", info)
    return float(ops), float(params), flat


def test_conv_and_linear_macs_match_fvcore_per_module(case):
    name, module, shape, spec = case
    by_module, by_module_op, by_op = _fvcore(module, shape)
    checked = 0
    for layer in spec.layers:
        if layer.op in ("conv2d", "linear"):
            assert layer.macs == by_module[layer.name], (name, layer.name, layer.key())
            checked += 1
        elif layer.op == "se":
            assert layer.macs == by_module_op[layer.name]["conv"], (name, layer.name)
            checked += 1
    assert checked >= 4
    # Batch-norm in eval mode with affine: 2 FLOPs per element (scale, shift) on both sides.
    bn_flops = sum(layer.flops for layer in spec.layers if layer.op == "batchnorm")
    assert bn_flops == by_op.get("batch_norm", 0)
    # Totals: fvcore's conv (SE projections included) + linear equal our MACs, which count nothing else.
    fv_total = by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0)
    assert spec.macs == fv_total


def test_conv_and_linear_macs_match_thop_per_module(case):
    name, module, shape, spec = case
    _ops, thop_params, per_module = _thop_per_module(module, shape)
    checked = 0
    for layer in spec.layers:
        if layer.op in ("conv2d", "linear") and layer.name in per_module:
            # thop 0.1.1 counts weight MACs only (no bias term), as hwnas does for MACs
            assert per_module[layer.name] == layer.macs, (name, layer.name)
            checked += 1
        elif layer.op == "se" and f"{layer.name}.fc1" in per_module:
            assert per_module[f"{layer.name}.fc1"] + per_module[f"{layer.name}.fc2"] == layer.macs
            checked += 1
    assert checked >= 3
    assert int(thop_params) == spec.params


def test_params_match_torch_and_fvcore(case):
    name, module, shape, spec = case
    assert spec.params == sum(p.numel() for p in module.parameters())
    assert spec.params == fvcore_nn.parameter_count(module)[""]
    assert spec.weight_bytes == 4 * spec.params
    assert not spec.unknown_layers, [(layer.name, layer.attr("source_op")) for layer in spec.unknown_layers]


def test_depthwise_macs_formula():
    """A depthwise 5×5 conv costs k·k MACs per output element, not k·k·C."""
    spec = extract_layers(_depthwise_se_block(), (1, 16, 32, 32))
    dw = [layer for layer in spec.layers if layer.is_depthwise]
    assert len(dw) == 1
    assert dw[0].macs == 96 * 16 * 16 * 5 * 5
    assert dw[0].params == 96 * 25


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_onnx_counts_agree_with_torch(tmp_path, name):
    """The ONNX route gives the same MACs; params differ only by batch-norm folded into conv biases."""
    from hwnas.graph.builders.onnx import module_to_onnx

    module = torchvision.models.get_model(name, weights=None).eval()
    shape = (1, 3, 64, 64)
    torch_spec = extract_layers(module, shape)
    path = module_to_onnx(module, shape, tmp_path / f"{name}.onnx")
    onnx_spec = extract_layers_onnx(path)
    assert onnx_spec.macs == torch_spec.macs
    bn_channels = sum(layer.in_channels for layer in torch_spec.layers if layer.op == "batchnorm")
    # BN's scale and shift (2C) fold into the conv weights and a new conv bias (C)
    assert onnx_spec.params == torch_spec.params - bn_channels
    assert not any(layer.op == "batchnorm" for layer in onnx_spec.layers)
