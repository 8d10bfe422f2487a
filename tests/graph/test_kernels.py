"""Kernel kinds: every fused unit of real torchvision CNNs gets a kind, configs round-trip, ranges explain."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.graph.fusion import fuse
from hwnas.graph.kernels import (
    KERNEL_KINDS,
    SAMPLING_RANGES,
    KernelConfig,
    kernel_layers,
    kernel_of_unit,
    no_kind_reason,
    out_of_range,
)

# One small, in-range config per kind (what the ONNX round trip below runs).
TINY = {
    "conv": KernelConfig("conv", cin=8, cout=16, hw=8, k=3, stride=1, act=1),
    "conv_add": KernelConfig("conv_add", cin=16, cout=16, hw=8, k=1, act=1),
    "grouped_conv": KernelConfig("grouped_conv", cin=16, cout=16, hw=8, k=3, stride=2, groups=4, act=1),
    "dwconv": KernelConfig("dwconv", cin=16, cout=16, hw=8, k=3, stride=1, act=2),
    "maxpool": KernelConfig("maxpool", cin=8, hw=8, k=3, stride=2),
    "avgpool": KernelConfig("avgpool", cin=8, hw=8, k=2, stride=2),
    "global_pool": KernelConfig("global_pool", cin=16, hw=7),
    "se": KernelConfig("se", cin=16, hw=8, squeeze=4, act=1, gate=4),
    "linear": KernelConfig("linear", cin=32, cout=16, act=0),
    "add": KernelConfig("add", cin=8, hw=8),
    "concat": KernelConfig("concat", cout=24, hw=8, parts=3),
    "act": KernelConfig("act", cin=8, hw=8, act=5),
    "bn": KernelConfig("bn", cin=8, hw=8),
    "transpose": KernelConfig("transpose", cin=16, hw=8, groups=2),
    "reshape": KernelConfig("reshape", cin=8, hw=4),
}


def test_tiny_covers_every_kind():
    assert set(TINY) == set(KERNEL_KINDS) == set(SAMPLING_RANGES)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_kernel_layers_fuse_to_one_unit_of_the_same_config(kind):
    cfg = TINY[kind]
    units = fuse(kernel_layers(cfg), "onnxruntime-cpu")
    assert len(units) == 1, [u.op for u in units]
    assert kernel_of_unit(units[0]) == cfg
    assert KernelConfig.from_key(cfg.key()) == cfg
    assert KernelConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("kind", sorted(TINY))
def test_kernel_runs_in_onnxruntime_with_the_predicted_output_shape(kind):
    ort = pytest.importorskip("onnxruntime")
    from hwnas.graph.builders.onnx import unit_to_onnx

    cfg = TINY[kind]
    unit = fuse(kernel_layers(cfg), "onnxruntime-cpu")[0]
    proto = unit_to_onnx(unit)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    shapes = unit.wiring()[0]
    feeds = {i.name: np.ones(s, np.float32) for i, s in zip(sess.get_inputs(), shapes, strict=True)}
    (y,) = sess.run(None, feeds)
    assert tuple(y.shape) == tuple(unit.output_shape)


def test_features_are_the_analytic_costs():
    f = TINY["conv"].features()
    # 3x3 conv 8 -> 16 on 8x8, same padding: 16 * 8 * 9 * 64 MACs; BN folded; relu adds no MACs
    assert f["macs"] == 16 * 8 * 9 * 64
    assert f["input_bytes"] == 8 * 8 * 8 * 4
    assert f["output_bytes"] == 16 * 8 * 8 * 4
    assert f["weight_bytes"] >= 16 * 8 * 9 * 4
    assert f["cin"] == 8 and f["k"] == 3 and f["out_hw"] == 8
    add = TINY["conv_add"].features()
    assert add["input_bytes"] == 2 * 16 * 8 * 8 * 4  # the residual is read too


def test_unused_fields_are_normalised_away():
    a = KernelConfig("add", cin=8, hw=8, k=3, cout=99)
    assert a == KernelConfig("add", cin=8, hw=8)
    assert a.key() == "add|cin=8|hw=8|batch=1"


def test_bad_configs_raise_input_errors():
    with pytest.raises(InputError, match="unknown kernel kind"):
        KernelConfig("winograd", cin=8)
    with pytest.raises(InputError, match="cin"):
        KernelConfig("conv", cin=0, cout=8, hw=8, k=3)
    with pytest.raises(InputError, match="activation code"):
        KernelConfig("act", cin=8, hw=8, act=99)
    with pytest.raises(InputError, match="kernel key"):
        KernelConfig.from_key("conv|cin=x")


def test_out_of_range_names_the_field():
    assert out_of_range(KernelConfig("conv", cin=64, cout=64, hw=56, k=3, stride=1, act=1)) == []
    wide = out_of_range(KernelConfig("conv", cin=64, cout=4096, hw=7, k=3, stride=1))
    assert any(r.startswith("cout=4096") for r in wide)
    big_k = out_of_range(KernelConfig("conv", cin=3, cout=64, hw=224, k=11, stride=4))
    assert [r.split("=")[0] for r in big_k[:2]] == ["k", "stride"]
    assert any(r.startswith("dilation=2") for r in out_of_range(KernelConfig("conv", cin=64, cout=64, hw=28,
                                                                              k=3, dilation=2)))  # fmt: skip
    assert any(r.startswith("batch=8") for r in out_of_range(KernelConfig("add", cin=8, hw=8, batch=8)))
    vgg = out_of_range(KernelConfig("conv", cin=96, cout=96, hw=224, k=3, stride=1))
    assert any(r.startswith("macs=") for r in vgg) and any("elements" in r for r in vgg)
    assert any(r.startswith("act=gelu") for r in out_of_range(KernelConfig("act", cin=8, hw=8, act=8)))


@pytest.fixture(scope="module")
def torchvision_units():
    tv = pytest.importorskip("torchvision")
    from hwnas.graph.from_torch import extract_layers

    out = {}
    for name in ("mobilenet_v2", "resnet18", "mobilenet_v3_small", "efficientnet_b0"):
        model = getattr(tv.models, name)(weights=None).eval()
        out[name] = fuse(extract_layers(model, (1, 3, 224, 224)).layers, "onnxruntime-cpu")
    return out


def test_every_fused_unit_of_four_torchvision_cnns_has_a_kind(torchvision_units):
    seen: set[str] = set()
    for name, units in torchvision_units.items():
        for u in units:
            cfg = kernel_of_unit(u)
            if cfg is None:  # the one stated none-case on these nets: a unit that runs no kernel
                assert {la.op for la in u.layers} <= {"dropout", "identity"}, (name, u.op)
                assert no_kind_reason(u).startswith("no kernel")
                continue
            seen.add(cfg.kind)
            assert no_kind_reason(u) == ""
            # the config rebuilds a unit of the same cost: same analytic MACs as the real unit
            assert cfg.features()["macs"] == pytest.approx(u.macs, rel=0.01), (name, u.key())
            assert out_of_range(cfg) == [], (name, u.key(), out_of_range(cfg))
    assert {"conv", "conv_add", "dwconv", "se", "linear", "act", "global_pool", "maxpool"} <= seen
