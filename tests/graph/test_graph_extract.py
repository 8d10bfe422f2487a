"""Layer extraction from torch modules and ONNX files: ops, shapes, names, SE folding, unknown ops, keys."""

from __future__ import annotations

from collections import Counter

import onnx
import pytest
import torch
import torchvision
from onnx import TensorProto, helper
from torch import nn

from hwnas.errors import InputError
from hwnas.graph.builders.onnx import module_to_onnx
from hwnas.graph.from_onnx import extract_layers_onnx
from hwnas.graph.from_torch import extract_layers
from hwnas.graph.layer import LayerSpec, make_layer


@pytest.fixture(scope="module")
def mbv2_spec():
    return extract_layers(torchvision.models.mobilenet_v2(weights=None), (1, 3, 224, 224), name="mbv2")


def test_mobilenet_v2_layers(mbv2_spec):
    ops = Counter(layer.op for layer in mbv2_spec.layers)
    assert ops["conv2d"] == 52 and ops["batchnorm"] == 52 and ops["relu6"] == 35 and ops["add"] == 10
    assert ops["linear"] == 1 and ops["global_avgpool"] == 1
    depthwise = [layer for layer in mbv2_spec.layers if layer.is_depthwise]
    assert len(depthwise) == 17
    assert all(layer.kernel == (3, 3) and layer.groups == layer.in_channels for layer in depthwise)
    first = mbv2_spec.layers[0]
    assert first.name == "features.0.0"
    assert first.input_shape == (1, 3, 224, 224) and first.output_shape == (1, 32, 112, 112)
    assert first.stride == (2, 2) and first.padding == (1, 1)
    assert mbv2_spec.layers[-1].op == "linear" and mbv2_spec.layers[-1].output_shape == (1, 1000)
    # residual adds carry both operands and the module they ran in
    add = next(layer for layer in mbv2_spec.layers if layer.op == "add")
    assert add.name.startswith("features.") and add.extra_input_shapes == (add.input_shape,)
    assert mbv2_spec.source == "torch-fx"


def test_execution_order_chains_shapes(mbv2_spec):
    """For a plain chain (stem), each layer's input is the previous layer's output."""
    for a, b in zip(mbv2_spec.layers[:3], mbv2_spec.layers[1:4], strict=True):
        assert a.output_shape == b.input_shape


def test_resnet_has_pool_and_adds():
    spec = extract_layers(torchvision.models.resnet18(weights=None), (2, 3, 64, 64))
    ops = Counter(layer.op for layer in spec.layers)
    assert ops == Counter(
        {
            "conv2d": 20,
            "batchnorm": 20,
            "relu": 17,
            "add": 8,
            "maxpool2d": 1,
            "global_avgpool": 1,
            "flatten": 1,
            "linear": 1,
        }
    )
    pool = next(layer for layer in spec.layers if layer.op == "maxpool2d")
    assert pool.kernel == (3, 3) and pool.stride == (2, 2) and pool.padding == (1, 1)
    assert all(layer.batch_size == 2 for layer in spec.layers)


def test_se_modules_become_one_layer():
    spec = extract_layers(torchvision.models.mobilenet_v3_small(weights=None), (1, 3, 64, 64))
    se = [layer for layer in spec.layers if layer.op == "se"]
    assert len(se) == 9
    first = se[0]
    assert first.attr("squeeze_channels") == 8 and first.in_channels == 16
    assert first.se_ratio == pytest.approx(0.5)
    assert first.attr("gate") == "hardsigmoid"
    assert first.input_shape == first.output_shape
    # the SE insides are not listed separately
    assert not any(".fc1" in layer.name for layer in spec.layers)


class _Custom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, 1, dims=1)


def test_unknown_ops_are_kept_and_flagged():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), _Custom(), nn.LocalResponseNorm(2), nn.ReLU())
    spec = extract_layers(model, (1, 3, 8, 8))
    assert [layer.op for layer in spec.layers] == ["conv2d", "unknown", "unknown", "relu"]
    assert spec.layers[1].attr("source_op") == "roll"
    assert spec.layers[2].attr("source_op") == "LocalResponseNorm"
    assert spec.layers[2].attr("module_type") == "LocalResponseNorm"
    assert len(spec.unknown_layers) == 2 and spec.totals()["unknown_layers"] == 2
    assert spec.layers[1].macs == 0 and spec.layers[1].unknown


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if y.sum() > -1e9:  # control flow on values: fx cannot trace this
            y = self.b(y)
        return y


def test_untraceable_model_falls_back_to_hooks():
    reasons: list[str] = []
    model = _DataDependent()
    model.train()
    spec = extract_layers(model, (1, 3, 8, 8), on_fallback=reasons.append)
    assert spec.source == "torch-hooks"
    assert [layer.name for layer in spec.layers] == ["a", "b"]
    assert spec.macs == 8 * 8 * 8 * (3 * 9) + 8 * 8 * 8 * (8 * 9)
    assert reasons and "hooks" in reasons[0]
    assert model.training  # restored


def test_bad_input_shape_is_an_input_error():
    with pytest.raises(InputError, match="input shape"):
        extract_layers(torchvision.models.resnet18(weights=None), (1, 3))
    with pytest.raises(InputError):
        extract_layers(nn.ReLU(), (0, 3))


def test_key_ignores_name_and_block_but_not_shape():
    a = make_layer(
        "conv2d",
        (1, 8, 8, 8),
        (1, 8, 8, 8),
        name="x",
        in_channels=8,
        out_channels=8,
        kernel=3,
        padding=1,
        stride=1,
        attrs={"block": 3},
    )
    b = make_layer(
        "conv2d",
        (1, 8, 8, 8),
        (1, 8, 8, 8),
        name="y",
        in_channels=8,
        out_channels=8,
        kernel=3,
        padding=1,
        stride=1,
    )
    c = make_layer(
        "conv2d",
        (1, 8, 8, 8),
        (1, 8, 8, 8),
        in_channels=8,
        out_channels=8,
        kernel=3,
        padding=1,
        stride=1,
        groups=8,
    )
    assert a.key() == b.key() != c.key()
    assert "g=8" in c.key()
    assert LayerSpec.from_dict(a.to_dict()) == a
    assert a.with_batch(4).macs == 4 * a.macs


# ---- ONNX -------------------------------------------------------------------------------------------------


def test_onnx_extraction_of_exported_model(tmp_path):
    module = torchvision.models.mobilenet_v3_small(weights=None).eval()
    path = module_to_onnx(module, (1, 3, 64, 64), tmp_path / "v3.onnx")
    spec = extract_layers_onnx(path)
    torch_spec = extract_layers(module, (1, 3, 64, 64))
    assert spec.source == "onnx" and spec.input_shape == (1, 3, 64, 64)
    se_onnx = [layer.key() for layer in spec.layers if layer.op == "se"]
    se_torch = [layer.key() for layer in torch_spec.layers if layer.op == "se"]
    assert se_onnx == se_torch and len(se_onnx) == 9
    convs = [layer.key() for layer in torch_spec.layers if layer.op == "conv2d"]
    # BN is folded into conv biases by the exporter: same convs apart from the bias flag
    assert [k.replace("|b", "") for k in convs] == [
        layer.key().replace("|b", "") for layer in spec.layers if layer.op == "conv2d"
    ]
    assert not spec.unknown_layers


def _tiny_graph(op: str = "Relu", batch: str | int = "N") -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node(op, ["x"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


def test_onnx_dynamic_batch_is_pinned():
    spec = extract_layers_onnx(_tiny_graph(), batch_size=3)
    assert spec.input_shape == (3, 4, 8, 8)
    assert [layer.op for layer in spec.layers] == ["relu", "relu"]
    assert spec.layers[1].output_shape == (3, 4, 8, 8)
    spec2 = extract_layers_onnx(_tiny_graph(), input_shape=(2, 4, 8, 8))
    assert spec2.layers[0].input_shape == (2, 4, 8, 8)


def test_onnx_unknown_op_kept():
    spec = extract_layers_onnx(_tiny_graph("LRN"))
    assert spec.layers[0].op == "unknown" and spec.layers[0].attr("source_op") == "LRN"
    assert spec.layers[0].output_shape == (1, 4, 8, 8)


def test_onnx_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        extract_layers_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not really protobuf at all")
    with pytest.raises(InputError, match="cannot be read"):
        extract_layers_onnx(bad)
    truncated = tmp_path / "trunc.onnx"
    onnx.save(_tiny_graph(), str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-7])
    with pytest.raises(InputError):
        extract_layers_onnx(truncated)


class _TokenMixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: N, C, L
        y = self.fc(self.norm(x.transpose(1, 2)))
        return y.permute(0, 2, 1).unsqueeze(-1)


def test_layernorm_permute_and_views():
    model = _TokenMixer()
    spec = extract_layers(model, (2, 16, 10))
    assert [layer.op for layer in spec.layers] == ["permute", "layernorm", "linear", "permute", "reshape"]
    assert spec.layers[0].attr("perm") == "0,2,1" and spec.layers[0].output_shape == (2, 10, 16)
    assert spec.params == sum(p.numel() for p in model.parameters())
    assert not spec.unknown_layers


def test_half_precision_model_counts_two_bytes_per_value():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).half()
    spec = extract_layers(model, (1, 3, 8, 8))
    assert [layer.dtype_bytes for layer in spec.layers] == [2, 2]
    assert spec.weight_bytes == 2 * spec.params
    assert "dt=2" in spec.layers[0].key()


def test_onnx_se_with_silu_matches_torch(tmp_path):
    """EfficientNet-style SE (SiLU inside, exported as Sigmoid·Mul) is still one se layer."""
    from torchvision.ops.misc import SqueezeExcitation

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.SiLU(), SqueezeExcitation(16, 4, nn.SiLU)).eval()
    torch_spec = extract_layers(model, (1, 3, 8, 8))
    onnx_spec = extract_layers_onnx(module_to_onnx(model, (1, 3, 8, 8), tmp_path / "se.onnx"))
    assert [layer.op for layer in onnx_spec.layers] == ["conv2d", "silu", "se"]
    assert [layer.key() for layer in onnx_spec.layers] == [layer.key() for layer in torch_spec.layers]
    assert onnx_spec.layers[2].attr("act") == "silu"


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_onnx_auto_pad_becomes_explicit_pads(auto_pad):
    """TF-converted models use auto_pad; the layer gets explicit (maybe asymmetric) pads and rebuilds."""
    import numpy as np
    import onnxruntime as ort

    from hwnas.graph.builders.onnx import layer_to_onnx
    from hwnas.graph.builders.torch import build_layer_module, make_inputs

    w = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad=auto_pad)
    model = helper.make_model(
        helper.make_graph([conv], "g", [x], [y], initializer=[w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    (layer,) = extract_layers_onnx(model).layers
    assert layer.attr("pads") == ("0,0,1,1" if auto_pad == "SAME_UPPER" else "1,1,0,0")
    module = build_layer_module(layer)
    with torch.no_grad():
        assert tuple(module(*make_inputs(layer)).shape) == (1, 4, 4, 4)
    sess = ort.InferenceSession(layer_to_onnx(layer).SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"in0": make_inputs(layer)[0].numpy()})[0].shape == (1, 4, 4, 4)


def test_model_spec_round_trips_through_json(mbv2_spec):
    import json

    from hwnas.graph.layer import ModelSpec

    back = ModelSpec.from_dict(json.loads(json.dumps(mbv2_spec.to_dict())))
    assert back.layers == mbv2_spec.layers and back.input_shape == mbv2_spec.input_shape
    assert back.totals() == mbv2_spec.totals()


def test_string_padding_becomes_explicit():
    spec = extract_layers(nn.Sequential(nn.Conv2d(3, 4, 5, padding="same"), nn.Conv2d(4, 4, 3)), (1, 3, 9, 9))
    assert [layer.padding for layer in spec.layers] == [(2, 2), (0, 0)]
    assert spec.layers[1].output_shape == (1, 4, 7, 7)
