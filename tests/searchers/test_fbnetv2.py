"""FBNetV2 / DMaskingNAS: effective shapes by hand, derived costs equal to the analytic counter, masking
equal to the derived network, resolution subsampling, the contract, and a tiny search end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwnas.cost_models.torch_costs import effective_layer_cost
from hwnas.errors import InputError
from hwnas.graph.from_torch import extract_layers
from hwnas.searchers.dmasking import DMaskingSupernet, Quantity, TableCost, inherit_weights, place_back
from hwnas.searchers.fbnetv2 import FBNetV2Supernet, SearchData, run_search, subsample
from hwnas.searchers.oneshot import check_supernet
from hwnas.spaces.fbnetv2 import reduced, space_from_dict, table_3_2

TINY = {
    "name": "tiny",
    "resolutions": [8, 12],
    "in_channels": 1,
    "num_classes": 3,
    "divisor": 1,
    "block_types": ["ir_k3", "ir_k5", "skip"],
    "rows": [
        {"b": "conv3x3", "f": [4, 8, 4], "s": 2},
        {"b": "tbs", "e": [1, 3, 2], "f": [4, 8, 4], "n": 2, "s": 1},
        {"b": "tbs", "e": [2, 4, 2], "f": [8, 12, 4], "n": 1, "s": 2},
        {"b": "conv1x1", "f": 16},
        {"b": "avgpool"},
        {"b": "fc"},
    ],
}


def test_effective_channels_by_hand() -> None:
    q = Quantity.choice("f", [16, 12])
    g = {"f": torch.tensor([0.8, 0.2], dtype=torch.float64)}
    assert float(q.mean(g)) == pytest.approx(15.2)  # 0.8·16 + 0.2·12 (thesis §3.3)
    m = q.mask(g, 16)
    assert torch.allclose(m[:12], torch.ones(12)) and torch.allclose(m[12:], torch.full((4,), 0.8))
    # eq. 3.10 on the effective shape: a 3×3 conv from 8 channels to 15.2 on a 4×4 map (MACs), and
    # eq. 3.9: a depthwise conv propagates the effective channels (γ = C̄_in).
    macs = effective_layer_cost("conv2d", "macs", c_in=8, c_out=q.mean(g), h_out=4, kernel=3)
    assert float(macs) == pytest.approx(9 * 16 * 8 * 15.2)
    dw = effective_layer_cost("conv2d", "macs", c_in=15.2, c_out=15.2, h_out=4, kernel=3, groups=15.2)
    assert float(dw) == pytest.approx(9 * 16 * 15.2)


def test_joint_quantity_of_expansion() -> None:
    """Expanded width = e · C_in over the joint grid: its mean is Σ g_e e · C̄_in."""
    c = Quantity.choice("f", [8, 12])
    e = Quantity.choice("e", [0, 1])
    mid = Quantity.combine(lambda cv, ei: [1, 3][ei] * cv, c, e)
    g = {
        "f": torch.tensor([0.25, 0.75], dtype=torch.float64),
        "e": torch.tensor([0.5, 0.5], dtype=torch.float64),
    }
    assert mid.values.tolist() == [[8, 24], [12, 36]]
    assert float(mid.mean(g)) == pytest.approx(2.0 * 11.0)


@pytest.mark.parametrize("make", [lambda: reduced(in_channels=1), table_3_2, lambda: space_from_dict(TINY)])
def test_one_hot_cost_equals_analytic_counter(make) -> None:
    sp = make()
    net = DMaskingSupernet(sp)
    rng = np.random.default_rng(0)
    for _ in range(4):
        arch = sp.sample(rng)
        g = net.weights_of(arch)
        spec = sp.layers(arch)
        assert net.derive(g) == arch
        assert float(net.cost(g, "flops")) == spec.flops  # exactly
        assert float(net.cost(g, "params")) == spec.params
        assert float(net.cost(g, "macs")) == spec.macs


def test_derived_layers_equal_traced_module() -> None:
    sp = reduced(in_channels=3)
    for seed in range(2):
        arch = sp.sample(seed)
        spec = sp.layers(arch)
        net = sp.build(arch)
        traced = extract_layers(net, (1, 3, arch.resolution, arch.resolution))
        assert (traced.flops, traced.params, traced.macs) == (spec.flops, spec.params, spec.macs)
        assert spec.params == sum(p.numel() for p in net.parameters())


def test_masked_supernet_computes_the_derived_network() -> None:
    """One-hot masks + resolution subsampling = the derived net with the supernet's weights sliced in."""
    torch.manual_seed(0)
    sp = space_from_dict(TINY)
    net = DMaskingSupernet(sp)
    x = torch.randn(6, 1, 12, 12)
    for seed in range(4):
        arch = sp.sample(seed)
        derived = inherit_weights(net, arch).train()  # BN on batch statistics, as in the supernet
        with torch.no_grad():
            a = net(x, net.weights_of(arch))
            b = derived(subsample(x, arch.resolution))
        assert torch.allclose(a, b, atol=1e-5), arch.token()


def test_place_back_intersperses_zeros() -> None:
    y = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    out = place_back(y, 4)
    assert out.shape == (1, 1, 4, 4)
    assert float(out.sum()) == float(y.sum())
    assert torch.equal(out[0, 0, :3, :3], y[0, 0]) and float(out[0, 0, 3].abs().sum()) == 0.0
    big = place_back(torch.ones(1, 1, 2, 2), 4)[0, 0]
    assert big.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_table_cost_is_the_expected_cost_and_differentiable() -> None:
    sp = space_from_dict(TINY)
    net = DMaskingSupernet(sp)

    class FlopsTable:  # a per-layer "cost table" pricing each LayerSpec by its analytic FLOPs
        def layer_costs(self, name, layers):
            return np.array([s.flops for s in layers], float)

    tc = TableCost(net, FlopsTable(), "flops")
    for seed in range(3):
        arch = sp.sample(seed)
        assert float(tc(net.weights_of(arch))) == sp.layers(arch).flops
    g = net.sample_weights(5.0)
    tc(g).backward()
    assert all(a.grad is not None and float(a.grad.abs().sum()) > 0 for a in net.alphas.values())


def test_contract_conformance_and_temperature() -> None:
    sp = space_from_dict(TINY)
    sn = FBNetV2Supernet(sp, "flops")
    d = check_supernet(sn, torch.randn(4, 1, 12, 12))
    assert d.costs["flops"] == sp.layers(sp.validate(type(sp.default()).from_config(d.config))).flops
    sn.on_epoch_start(10, 90)
    assert sn.tau == pytest.approx(5.0 * math.exp(-0.45))
    with pytest.raises(InputError, match="per-layer cost table"):
        FBNetV2Supernet(sp, "latency_ms")


def test_space_as_data_errors() -> None:
    sp = table_3_2()
    assert sp.rows[2].expansion == (0.75, 1.25, 1.75, 2.25, 2.75, 3.25)
    assert sp.rows[8].filters == tuple(range(72, 129, 8)) and len(sp.blocks()) == 18
    bad = dict(TINY, rows=[{"b": "conv3x3", "f": [4, 9, 4]}, {"b": "avgpool"}, {"b": "fc"}])
    with pytest.raises(InputError, match="whole steps"):
        space_from_dict(bad)
    with pytest.raises(InputError, match="unknown block types"):
        space_from_dict(dict(TINY, block_types=["ir_k7"]))
    with pytest.raises(InputError, match="not an option"):
        s = space_from_dict(TINY)
        a = s.default()
        s.validate(type(a)(16, a.filters, a.blocks))


def test_tiny_search_end_to_end() -> None:
    sp = space_from_dict(TINY)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 1, 12, 12, generator=g)
    y = (x[:, 0, :6].mean((1, 2)) > 0).long() + (x[:, 0, 6:].mean((1, 2)) > 0).long()
    data = SearchData("toy", x[:32], y[:32], x[32:40], y[32:40], x[40:], y[40:], 3)
    budget = sp.layers(sp.default()).flops * 0.6
    seen = []
    s = run_search(
        sp,
        data,
        cost="flops",
        penalty=f"budget:{budget},10",
        constraints=[f"flops<={budget}"],
        epochs=3,
        warmup_epochs=1,
        batch_size=16,
        callback=seen.append,
    )
    h = s.history
    assert len(h) == 3 == len(seen) and h.meta["arch_schedule"] == "epoch"
    assert [t.info["phase"] for t in h] == ["warmup", "search", "search"]
    last = h.trials[-1]
    assert last.predicted_costs["flops"] == sp.layers(type(sp.default()).from_config(last.config)).flops
    assert "flops" in last.predicted_constraints and last.info["tau"] < 5.0


def test_budget_constraint_units() -> None:
    from hwnas.searchers.fbnetv2 import budget_constraint

    assert budget_constraint("flops", "2M").budget == 2e6
    assert budget_constraint("params", "40k").name == "params"
    c = budget_constraint("latency_ms", "1.5ms")
    assert (c.name, c.budget) == ("latency_ms", 1.5)
    assert budget_constraint("latency_ms", 2.5).budget == 2.5  # a number: the cost's own unit (ms)
    assert budget_constraint("latency_ms", "0.002s").budget == pytest.approx(2.0)
    with pytest.raises(InputError, match="unit"):
        budget_constraint("flops", "2ms")
