"""Keras builds of LayerSpecs and whole architectures compute the torch build's function with shared
weights and count the same MACs; the TFLite converter writes float32 and int8 files that LiteRT runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.graph.layer import make_layer
from hwnas.spaces import nb201
from hwnas.spaces.mbv2 import MBV2Space

SPECS = [
    make_layer("conv2d", (1, 3, 9, 9), (1, 8, 5, 5), name="stem", in_channels=3, out_channels=8, kernel=3,
               stride=2, padding=1),  # stride 2: TF 'same' would pad differently
    make_layer("conv2d", (1, 8, 8, 8), (1, 8, 4, 4), name="dw", in_channels=8, out_channels=8, kernel=5,
               stride=2, padding=2, groups=8),
    make_layer("conv2d", (1, 8, 6, 6), (1, 4, 6, 6), name="pw", in_channels=8, out_channels=4, kernel=1,
               bias=True),
    make_layer("se", (1, 16, 4, 4), (1, 16, 4, 4), name="se", in_channels=16, out_channels=16, se_ratio=0.25,
               bias=True, attrs={"squeeze_channels": 4, "gate": "hardsigmoid", "act": "silu"}),
    make_layer("maxpool2d", (1, 4, 7, 7), (1, 4, 4, 4), name="mp", kernel=3, stride=2, padding=1),
    make_layer("avgpool2d", (1, 4, 6, 6), (1, 4, 6, 6), name="ap", kernel=3, stride=1, padding=1,
               attrs={"count_include_pad": False}),
    make_layer("avgpool2d", (1, 4, 6, 6), (1, 4, 3, 3), name="ap2", kernel=2, stride=2),
    make_layer("global_avgpool", (1, 4, 5, 5), (1, 4, 1, 1), name="gap"),
    make_layer("linear", (2, 12), (2, 5), name="fc", in_channels=12, out_channels=5, bias=True),
    make_layer("hardswish", (1, 4, 3, 3), (1, 4, 3, 3), name="hs"),
    make_layer("relu6", (1, 4, 3, 3), (1, 4, 3, 3), name="r6"),
    make_layer("flatten", (1, 4, 2, 2), (1, 16), name="fl", attrs={"start_dim": 1}),
    make_layer("add", (1, 4, 3, 3), (1, 4, 3, 3), name="add", extra_input_shapes=((1, 4, 3, 3),)),
]  # fmt: skip


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_layer_same_function_and_macs(tf, spec) -> None:
    from hwnas.graph.builders.keras import keras_macs, run_keras, torch_to_keras
    from hwnas.graph.builders.torch import build_layer_module, make_inputs

    torch.manual_seed(1)
    module = build_layer_module(spec)
    inputs = make_inputs(spec, seed=2)
    km = torch_to_keras(module, [spec.input_shape, *spec.extra_input_shapes], name=spec.name)
    with torch.no_grad():
        ref = module(*inputs).numpy()
    out = run_keras(km, [x.numpy() for x in inputs])
    assert out.shape == ref.shape == tuple(spec.output_shape)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert keras_macs(km) == spec.macs


@pytest.fixture(scope="module")
def mbv2_case(tf):
    from hwnas.graph.builders.keras import torch_to_keras

    space = MBV2Space(resolution=32, width=0.35, num_classes=10, se_ratios=(0.0, 0.25))
    arch = space.encode(["k3e1"] + ["k5e3se25", "k3e6", "skip", "k5e6"] * 5 + ["k3e6"])
    net = space.build(arch).eval()
    _randomise_bn(net)
    return space, arch, net, torch_to_keras(net, [(2, 3, 32, 32)], name="mbv2")


def test_mbv2_space_same_function_and_macs(mbv2_case) -> None:
    from hwnas.graph.builders.keras import keras_macs, run_keras

    space, arch, net, km = mbv2_case
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = net(x).numpy()
    np.testing.assert_allclose(run_keras(km, [x.numpy()]), ref, rtol=1e-4, atol=1e-5)
    assert keras_macs(km) == space.layers(arch, batch_size=2).macs
    assert "blocks__1__conv__6" in km.hwnas_names  # the SE block keeps its torch name


def test_nb201_cell_same_function_and_macs(tf) -> None:
    from hwnas.graph.builders.keras import keras_macs, run_keras, torch_to_keras

    cell = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    net = nb201.build_network(cell).eval()
    _randomise_bn(net, seed=4)
    km = torch_to_keras(net, [(1, 3, 32, 32)], name="nb201")
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = net(x).numpy()
    np.testing.assert_allclose(run_keras(km, [x.numpy()]), ref, rtol=1e-4, atol=1e-5)
    assert keras_macs(km) == nb201.layers(cell).macs


def test_untranslatable_module_is_a_clear_error(tf) -> None:
    from hwnas.errors import InputError
    from hwnas.graph.builders.keras import torch_to_keras

    with pytest.raises(InputError, match="grouped convolution"):
        torch_to_keras(torch.nn.Conv2d(4, 8, 3, groups=2), [(1, 4, 6, 6)])


def _run_tflite(litert, path, x_nhwc):
    interp = litert.Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x_nhwc = np.clip(np.round(x_nhwc / scale + zero), -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], x_nhwc)
    interp.invoke()
    y = interp.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y, inp["dtype"]


@pytest.fixture(scope="module")
def small_net(tf):
    """Conv-BN-ReLU6, depthwise, SE, pooling, linear: the MBConv parts, small enough to convert fast."""
    from torch import nn
    from torchvision.ops.misc import SqueezeExcitation

    from hwnas.graph.builders.keras import torch_to_keras

    torch.manual_seed(7)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, 1, 1, groups=8), SqueezeExcitation(8, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()  # fmt: skip
    _randomise_bn(net)
    return net, torch_to_keras(net, [(1, 3, 16, 16)], name="small")


def test_tflite_float32_and_int8(small_net, litert, tmp_path) -> None:
    from hwnas.graph.builders.keras import to_nhwc
    from hwnas.graph.builders.tflite import convert

    net, km = small_net
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = net(x).numpy()
    f32 = convert(km, tmp_path / "m.tflite")
    y, dtype = _run_tflite(litert, f32, to_nhwc(x.numpy()))
    assert dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    q = convert(km, tmp_path / "m_int8.tflite", quantization="int8")
    yq, dtype = _run_tflite(litert, q, to_nhwc(x.numpy()))
    assert dtype == np.int8
    ops = {d["op_name"] for d in litert.Interpreter(model_path=str(q))._get_ops_details()}
    assert "DEPTHWISE_CONV_2D" in ops and "CONV_2D" in ops
    assert np.abs(yq - ref).max() < 0.1 * np.abs(ref).max() + 0.05  # quantised, not garbage


def test_units_one_file_each_identical_units_share(tf, litert, tmp_path) -> None:
    from hwnas.graph.builders.tflite import units_to_tflite

    conv, bn = (make_layer("conv2d", (1, 4, 6, 6), (1, 4, 6, 6), name=n, in_channels=4, out_channels=4,
                           kernel=3, padding=1) for n in ("c1", "c2"))  # fmt: skip
    bn1 = make_layer("batchnorm", (1, 4, 6, 6), (1, 4, 6, 6), name="b1", in_channels=4)
    act = make_layer("relu6", (1, 4, 6, 6), (1, 4, 6, 6), name="r1")
    add = make_layer("add", (1, 4, 6, 6), (1, 4, 6, 6), name="a", extra_input_shapes=((1, 4, 6, 6),))
    manifest = units_to_tflite([[conv, bn1, act], [bn], [conv, bn1, act, add]], tmp_path)
    files = [m["file"] for m in manifest]
    assert len(set(files)) == 3 and all((tmp_path / f).is_file() for f in files)
    assert json.loads((tmp_path / "units.json").read_text())[0]["layers"] == ["c1", "b1", "r1"]
    again = units_to_tflite([[bn, bn1, act]], tmp_path / "x")  # same keys as unit 0 under other names
    assert again[0]["file"] == files[0]
    interp = litert.Interpreter(model_path=str(tmp_path / files[2]))
    assert len(interp.get_input_details()) == 2  # the residual operand is a second input
