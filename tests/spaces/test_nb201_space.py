"""NAS-Bench-201 space: strings, enumeration, mutation, topology, and the network's analytic counts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.spaces import nb201
from hwnas.spaces.nb201_table import load_table

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_parse_print_round_trip_every_cell():
    cells = list(nb201.all_cells())
    assert len(cells) == nb201.N_CELLS == 15625
    strings = {nb201.to_string(c) for c in cells}
    assert len(strings) == 15625
    for c in random.Random(0).sample(cells, 200):
        assert nb201.parse_arch(nb201.to_string(c)) == c
        assert nb201.Cell.from_codes(c.codes) == c


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|",  # two groups
        "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # wrong source node
        "|none~0|+|none~0|+|none~0|none~1|none~2|",  # node 2 with one input
    ],
)
def test_parse_rejects_malformed(bad):
    with pytest.raises(InputError):
        nb201.parse_arch(bad)


def test_every_table_string_parses_and_connectivity_matches():
    df = load_table(required=("arch", "connected"))
    flags = np.array([nb201.is_connected(a) for a in df["arch"]])
    assert (flags == df["connected"].astype(bool).to_numpy()).all()
    assert int((~flags).sum()) == 341


def test_sample_and_mutate_change_exactly_one_edge():
    rng = random.Random(3)
    seen = set()
    for _ in range(300):
        c = nb201.sample(rng)
        m = nb201.mutate(c, rng)
        assert sum(a != b for a, b in zip(c.ops, m.ops, strict=True)) == 1
        seen.add(m.ops)
    assert len(seen) > 250  # really random


def test_edge_status_dead_edges():
    # Node 1 feeds nothing (edges out of node 1 are none): the conv into node 1 is unused.
    c = nb201.parse_arch("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert nb201.edge_status(c) == ("unused", "live", "none", "none", "none", "live")
    # Node 1 gets nothing from the input: the conv out of node 1 runs on zeros.
    c = nb201.parse_arch("|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    assert nb201.edge_status(c) == ("none", "live", "none", "none", "zero_input", "live")


def test_analytic_counts_equal_table_for_sampled_cells():
    df = load_table(required=("arch", "flops_cifar10_m", "params_cifar10_m")).sample(120, random_state=1)
    for arch, flops, params in zip(df["arch"], df["flops_cifar10_m"], df["params_cifar10_m"], strict=True):
        spec = nb201.layers(arch)
        assert nb201.table_flops_m(spec) == pytest.approx(flops, abs=1e-6)
        assert nb201.table_params_m(spec) == pytest.approx(params, abs=1e-7)


def test_counts_are_closed_forms_over_the_whole_space():
    """All 15,625 cells: FLOPs and params from LayerSpecs (per op, then summed) equal the table."""
    from hwnas.spaces.nb201_features import nb201_layers

    df = load_table(required=("arch", "flops_cifar10_m", "params_cifar10_m"))
    feats = nb201_layers(df)
    # macs of conv+linear; the table adds the 10 classifier bias adds
    assert np.allclose(feats["macs_m_all"] + 10e-6, df["flops_cifar10_m"], atol=1e-6)
    assert np.allclose(feats["params_k_all"] / 1e3, df["params_cifar10_m"], atol=1e-7)


def test_torch_network_matches_layerspecs():
    torch = pytest.importorskip("torch")
    model = nb201.build_network(BEST).eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == nb201.layers(BEST).params
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    names = {n for n, _ in model.named_modules()}
    spec = nb201.layers(BEST)
    assert all(s.name in names for s in spec.layers if s.op in ("conv2d", "batchnorm", "linear"))


def test_none_edges_contribute_zero():
    torch = pytest.importorskip("torch")
    dead = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    model = nb201.build_network(dead).eval()
    with torch.no_grad():
        a = model(torch.randn(1, 3, 32, 32))
        b = model(torch.randn(1, 3, 32, 32))
    assert torch.allclose(a, b)  # output does not depend on the input


def test_onnx_export_runs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = nb201.export_onnx(BEST, tmp_path / "best.onnx")
    sess = ort.InferenceSession(str(path))
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype("float32")
    assert sess.run(None, {sess.get_inputs()[0].name: x})[0].shape == (1, 10)


def test_space_object():
    space = nb201.NB201Space(seed=1)
    a = space.sample()
    assert space.encode(space.decode(a).codes) == a
    assert space.mutate(a) != a
    assert len(space) == 15625
