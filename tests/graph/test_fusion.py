"""Fused units: rules group layers into the kernels a runtime runs; checked against onnxruntime itself."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.graph.fusion import UNIT_KEY_SEPARATOR, Unit, fuse, fusion_rules, unit_keys
from hwnas.graph.layer import make_layer


def _block(c: int = 8, hw: int = 8):
    """conv -> bn -> add(residual) -> relu, then a lone batchnorm and a dropout after a pool."""
    x = (1, c, hw, hw)
    return [
        make_layer("conv2d", x, x, name="c", in_channels=c, out_channels=c, kernel=3, padding=1, stride=1),
        make_layer("batchnorm", x, x, name="bn", in_channels=c),
        make_layer("add", x, x, name="add", extra_input_shapes=(x,)),
        make_layer("relu", x, x, name="act"),
        make_layer("global_avgpool", x, (1, c, 1, 1), name="gap"),
        make_layer("dropout", (1, c, 1, 1), (1, c, 1, 1), name="drop"),
        make_layer("batchnorm", (1, c, 1, 1), (1, c, 1, 1), name="bn2", in_channels=c),
    ]


def test_onnxruntime_rules_group_conv_bn_add_act():
    layers = _block()
    units = fuse(layers, "onnxruntime-cpu")
    assert [u.indices for u in units] == [(0, 1, 2, 3), (4, 5), (6,)]
    assert units[0].rule == "conv+bn+add+act" and units[1].rule == "absorbed" and units[2].rule == ""
    assert units[0].op == "conv2d+batchnorm+add+relu" and units[0].macs == sum(la.macs for la in layers[:4])
    assert units[0].key() == UNIT_KEY_SEPARATOR.join(la.key() for la in layers[:4])
    assert units[2].key() == layers[6].key()  # a lone layer keeps its own key (old tables still match)
    assert [u.indices for u in fuse(layers, "none")] == [(i,) for i in range(len(layers))]
    assert unit_keys(layers, "onnxruntime-cpu") == [u.key() for u in units]


def test_follower_must_consume_the_previous_output():
    c, x = 8, (1, 8, 8, 8)
    conv = make_layer("conv2d", x, (1, 16, 4, 4), in_channels=c, out_channels=16, kernel=3, stride=2,
                      padding=1)  # fmt: skip
    other_bn = make_layer("batchnorm", x, x, in_channels=c)  # same op, but not fed by the conv's output
    assert [u.indices for u in fuse([conv, other_bn], "onnxruntime-cpu")] == [(0,), (1,)]


def test_unit_round_trip_and_wiring():
    layers = _block()
    unit = fuse(layers, "onnxruntime-cpu")[0]
    back = Unit.from_dict(unit.to_dict())
    assert back.key() == unit.key() and back.rule == unit.rule
    assert Unit.from_dict(layers[0].to_dict()).key() == layers[0].key()
    shapes, wiring = unit.wiring()
    assert shapes == ((1, 8, 8, 8), (1, 8, 8, 8)) and wiring == ((0,), (-1,), (-1, 1), (-1,))
    with pytest.raises(InputError, match="unknown fusion rule set"):
        fusion_rules("tensorrt-9")


def _optimised_ops(model_proto) -> Counter:
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(model_proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        return Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)


def test_fused_unit_builds_as_one_onnxruntime_kernel_and_a_torch_chain():
    import onnxruntime as ort
    import torch

    from hwnas.graph.builders.onnx import unit_to_onnx
    from hwnas.graph.builders.torch import build_unit_module, make_unit_inputs

    layers = _block()
    conv_bn_relu = Unit((layers[0], layers[1], layers[3]), (0, 1, 3), "conv+bn+add+act")
    kinds = _optimised_ops(unit_to_onnx(conv_bn_relu))
    assert not {"BatchNormalization", "Relu"} & set(kinds) and kinds["Conv"] + kinds["FusedConv"] == 1, kinds
    unit = fuse(layers, "onnxruntime-cpu")[0]
    kinds = _optimised_ops(unit_to_onnx(unit))
    # the batch-norm is folded; the residual arrives as an NCHW graph input, so onnxruntime keeps the Add
    # (and the ReLU after it) outside the NCHWc convolution here, unlike inside a model (README, profiling)
    assert "BatchNormalization" not in kinds and kinds["Conv"] + kinds["FusedConv"] == 1, kinds
    proto = unit_to_onnx(unit)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.ones(i.shape, np.float32) for i in sess.get_inputs()}
    assert sess.run(None, feeds)[0].shape == unit.output_shape
    out = build_unit_module(unit)(*make_unit_inputs(unit))
    assert tuple(out.shape) == unit.output_shape and torch.all(out >= 0)  # relu last


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "resnet18"])
def test_rules_agree_with_onnxruntime_kernels(name, tmp_path):
    """Each unit's anchor owns kernels in onnxruntime's profile and no other layer of the unit does."""
    from hwnas.device_config import parse_config
    from hwnas.graph.models import resolve_model
    from hwnas.profilers.onnxruntime_cpu import OrtBuilder, OrtRunner

    cfg = parse_config({"name": "t", "backend": "onnxruntime-cpu", "threads": 1}, "<test>")
    model = resolve_model(name, input_shape=(1, 3, 32, 32))
    bd = OrtRunner(cfg, threads=1).breakdown(OrtBuilder(cfg).model(model, tmp_path), model, "inference")
    units = fuse(model.spec.layers, "onnxruntime-cpu")
    wrong = [(u.op, [i for i in u.indices if bd.kernels.get(i)]) for u in units
             if [i for i in u.indices if bd.kernels.get(i)] != [u.indices[0]]]  # fmt: skip
    assert wrong == []
    assert len(units) < len(model.spec.layers) * 0.6  # batch-norms and activations folded away
