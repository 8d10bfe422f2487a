"""The Single-Path NAS MobileNetV2 space: structure, arch strings, networks and per-layer specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import InputError
from hwnas.graph.from_torch import extract_layers
from hwnas.spaces.mbv2 import NUM_BLOCKS, OPS, MBV2Space

SKIPPABLE = [2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20]


def test_backbone_structure():
    space = MBV2Space()
    assert NUM_BLOCKS == 22 and len(space.blocks) == 22
    assert [b.out_channels for b in space.blocks] == [16] + [24] * 4 + [40] * 4 + [80] * 4 + [96] * 4 + [
        192
    ] * 4 + [320]
    strides = [b.stride for b in space.blocks]
    assert [i for i, s in enumerate(strides) if s == 2] == [1, 5, 9, 17]
    assert [b.index for b in space.blocks if b.can_skip] == SKIPPABLE
    assert space.searchable_blocks == list(range(1, 21))
    assert space.choices(0) == ["k3e1"] and space.choices(21) == ["k3e6"]
    assert space.choices(1) == list(OPS)  # first of a stride-2 stage: no skip
    assert space.choices(13) == list(OPS)  # stride 1 but 80 -> 96 channels: no skip
    assert space.choices(2) == [*OPS, "skip"]
    assert space.size == 5**15 * 4**5
    assert MBV2Space(search_ends=True).choices(0) == list(OPS)


def test_arch_strings_round_trip_and_sampling_is_seeded():
    space = MBV2Space(seed=7)
    archs = [space.sample() for _ in range(50)]
    assert len(set(archs)) == 50
    for arch in archs:
        assert space.encode(space.decode(arch)) == arch
        assert len(arch.split("-")) == 22
    again = MBV2Space(seed=7)
    assert [again.sample() for _ in range(3)] == archs[:3]
    assert MBV2Space(seed=8).sample() != archs[0]
    rng = np.random.default_rng(0)
    assert space.sample(rng) != space.sample(rng)
    assert space.sample(np.random.default_rng(5)) == space.sample(np.random.default_rng(5))
    # every token of the space shows up under uniform sampling
    tokens = {t for a in archs for t in a.split("-")[1:-1]}
    assert tokens == {*OPS, "skip"}


def test_decode_and_codes():
    space = MBV2Space()
    arch = "k3e1-k5e6-skip-k3e3-k5e3" + "-k3e6" * 17
    choices = space.decode(arch)
    assert choices[1].kernel == 5 and choices[1].expansion == 6 and choices[1].code == 3
    assert choices[2].skip and choices[2].code is None
    assert choices[3].code == 0 and choices[4].code == 2 and choices[5].code == 1
    assert space.encode([c.token for c in choices]) == arch
    assert space.decode("-".join(arch.split("-")[1:-1])) == choices  # 20-token form


@pytest.mark.parametrize(
    "arch,match",
    [
        ("k3e6-k3e6", "22"),
        ("k3e1-skip" + "-k3e6" * 20, "block 1"),  # first block of a stride-2 stage cannot be skipped
        ("k5e6" + "-k3e6" * 21, "block 0"),  # fixed first block
        ("k3e1-k7e6" + "-k3e6" * 20, "k7e6"),
        ("k3e1-k3e6se25" + "-k3e6" * 20, "se25"),  # no SE unless se_ratios allow it
    ],
)
def test_decode_errors(arch, match):
    with pytest.raises(InputError, match=match):
        MBV2Space().decode(arch)


def test_mutate_changes_only_searchable_blocks():
    space = MBV2Space(seed=1)
    arch = space.sample()
    for n in (1, 3):
        new = space.mutate(arch, np.random.default_rng(n), n_blocks=n)
        diff = [i for i, (a, b) in enumerate(zip(arch.split("-"), new.split("-"), strict=True)) if a != b]
        assert len(diff) == n and all(1 <= i <= 20 for i in diff)
        space.decode(new)


@pytest.mark.parametrize(
    "resolution,width", [(96, 1.0), (64, 0.5), pytest.param(128, 1.4, marks=pytest.mark.slow)]
)
def test_build_runs_at_small_resolutions(resolution, width):
    space = MBV2Space(resolution=resolution, width=width, num_classes=10, seed=2)
    net = space.build(space.sample()).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 3, resolution, resolution))
    assert y.shape == (2, 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resolution": 96},
        {"resolution": 128, "width": 0.75, "se_ratios": (0.0, 0.25, 0.5)},
        {"resolution": 160, "search_ends": True, "activation": "relu"},
    ],
)
def test_analytic_layers_equal_traced_layers(kwargs):
    space = MBV2Space(seed=4, **kwargs)
    for _ in range(2):
        arch = space.sample()
        analytic = space.layers(arch, batch_size=2)
        traced = space.layers(arch, batch_size=2, method="trace")
        assert [layer.to_dict() for layer in analytic.layers] == [layer.to_dict() for layer in traced.layers]
        # and the traced list is plain extract_layers on build(arch), plus the block tags
        plain = extract_layers(space.build(arch), (2, *space.input_shape))
        assert [layer.key() for layer in plain.layers] == [layer.key() for layer in analytic.layers]
        assert analytic.params == sum(p.numel() for p in space.build(arch).parameters())


def test_layers_carry_block_tags_outside_the_key():
    space = MBV2Space(resolution=96)
    arch = "k3e1-k5e6-k3e3-skip" + "-k3e6" * 18
    spec = space.layers(arch)
    blocks = [layer.attr("block") for layer in spec.layers]
    assert blocks[0] == "stem" and blocks[-1] == "head"
    assert set(b for b in blocks if isinstance(b, int)) == set(range(22))
    skipped = [layer for layer in spec.layers if layer.attr("block") == 3]
    assert [layer.op for layer in skipped] == ["identity"]
    b1 = [layer for layer in spec.layers if layer.attr("block") == 1]
    assert [layer.op for layer in b1] == ["conv2d", "batchnorm", "relu6"] * 2 + ["conv2d", "batchnorm"]
    dw = b1[3]
    assert dw.is_depthwise and dw.kernel == (5, 5) and dw.stride == (2, 2) and dw.in_channels == 16 * 6
    assert "block" not in dw.key()
    b2 = [layer for layer in spec.layers if layer.attr("block") == 2]
    assert b2[-1].op == "add"  # residual: same stage, stride 1


def test_costs_follow_the_choices():
    space = MBV2Space(resolution=128)
    base = ["k3e1"] + ["k3e3"] * 20 + ["k3e6"]

    def block_macs(tokens: list[str], block: int) -> int:
        spec = space.layers("-".join(tokens))
        return sum(layer.macs for layer in spec.layers if layer.attr("block") == block)

    macs = {}
    for tok in (*OPS, "skip"):
        tokens = list(base)
        tokens[6] = tok
        macs[tok] = block_macs(tokens, 6)
    assert macs["skip"] == 0 < macs["k3e3"] < macs["k5e3"] < macs["k3e6"] < macs["k5e6"]
    # expansion doubles every MAC of the block
    assert macs["k3e6"] == 2 * macs["k3e3"] and macs["k5e6"] == 2 * macs["k5e3"]


def test_bad_constructor_arguments():
    with pytest.raises(InputError):
        MBV2Space(resolution=16)
    with pytest.raises(InputError):
        MBV2Space(width=0)
    with pytest.raises(InputError):
        MBV2Space(activation="gelu")
