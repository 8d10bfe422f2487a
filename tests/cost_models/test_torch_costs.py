"""Differentiable costs against hand-computed values and finite differences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hwnas.cost_models.torch_costs import (
    PIXEL1_FIXED_MS,
    EffConv,
    ExpectedCost,
    SinglePathRuntime,
    conv_cost,
    effective_channels,
    effective_shape_cost,
    expected_cost,
    gumbel_softmax_weights,
    indicator,
    load_pixel1_table,
    single_path_layer_runtime,
    single_path_se_runtime,
)

SHARED = Path("/work/shared/data/single_path/pixel1_runtime_model.json")


def test_effective_channels_hand_case():
    w = torch.tensor([0.8, 0.2], dtype=torch.float64)
    assert effective_channels(w, [16, 12]).item() == pytest.approx(15.2)


def test_eq_3_10_flops_and_params_hand_case():
    # 3x3 conv, 8x8 output, 4 effective input channels, 15.2 effective output channels.
    assert conv_cost(3, 8, 8, 4.0, 15.2, 1, "flops").item() == pytest.approx(9 * 64 * 4 * 15.2)
    assert conv_cost(3, 8, 8, 4.0, 15.2, 1, "params").item() == pytest.approx(9 * 4 * 15.2)
    assert conv_cost(1, 2, 2, 8.0, 8.0, 4, "params").item() == pytest.approx(16.0)


def test_effective_shape_propagation_and_depthwise():
    w = torch.tensor([0.8, 0.2], dtype=torch.float64, requires_grad=True)
    layers = [EffConv(3, (16, 12), stride=2), EffConv(3, depthwise=True), EffConv(1, 10)]
    total, per, shape = effective_shape_cost(layers, [w, None, None], in_channels=3, in_size=32.0)
    c = 15.2
    expect = [9 * 16 * 16 * 3 * c, 9 * 16 * 16 * c, 1 * 16 * 16 * c * 10]  # eq. 3.9: dw keeps C̄
    assert [p.item() for p in per] == pytest.approx(expect)
    assert total.item() == pytest.approx(sum(expect))
    assert shape[1] == pytest.approx(10.0) and float(shape[2]) == pytest.approx(16.0)
    total.backward()
    # d total / d w_i = (9·256·3 + 9·256 + 256·10) · C_i
    k = 9 * 256 * 3 + 9 * 256 + 256 * 10
    assert w.grad.tolist() == pytest.approx([k * 16, k * 12])


def test_effective_shape_gradient_matches_finite_differences():
    alpha = torch.tensor([0.3, -0.1, 0.5], dtype=torch.float64, requires_grad=True)
    noise = torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64)
    layers = [EffConv(3, (8, 12, 16)), EffConv(5, depthwise=True, stride=2), EffConv(1, 24)]

    def f(a):
        g = gumbel_softmax_weights(a, tau=0.7, noise=noise)
        return effective_shape_cost(layers, [g, None, None], 3, torch.tensor(16.0, dtype=torch.float64))[0]

    assert torch.autograd.gradcheck(f, (alpha,))


def test_expected_cost_hand_case_and_gradient():
    w = torch.tensor([[0.5, 0.5], [0.25, 0.75]], dtype=torch.float64)
    c = torch.tensor([[2.0, 4.0], [8.0, 4.0]], dtype=torch.float64)
    assert expected_cost(w, c).item() == pytest.approx(0.5 * 2 + 0.5 * 4 + 0.25 * 8 + 0.75 * 4)
    mod = ExpectedCost(c, mode="softmax")
    alpha = torch.tensor([[0.1, 0.2], [-0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: mod(a), (alpha,))
    # softmax of equal logits = plain mean per layer.
    assert mod(torch.zeros(2, 2, dtype=torch.float64)).item() == pytest.approx(3.0 + 6.0)


def test_expected_cost_masks_padding():
    c = torch.tensor([[1.0, 3.0], [5.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False]])
    mod = ExpectedCost(c, mask)
    assert mod(torch.zeros(2, 2, dtype=torch.float64)).item() == pytest.approx(2.0 + 5.0)


def test_gumbel_weights_are_a_distribution_and_seeded():
    a = torch.randn(4, 3, dtype=torch.float64)
    g1 = gumbel_softmax_weights(a, 0.5, torch.Generator().manual_seed(1))
    g2 = gumbel_softmax_weights(a, 0.5, torch.Generator().manual_seed(1))
    assert torch.allclose(g1.sum(-1), torch.ones(4, dtype=torch.float64))
    assert torch.equal(g1, g2)


def test_indicator_modes():
    x = torch.tensor([0.2, 2.0], dtype=torch.float64, requires_grad=True)
    hard = indicator(x, 1.0, "hard")
    assert hard.tolist() == [0.0, 1.0]
    ste = indicator(x, 1.0, "ste")
    assert ste.tolist() == [0.0, 1.0]
    ste.sum().backward()
    s = torch.sigmoid(torch.tensor([-0.8, 1.0], dtype=torch.float64))
    assert x.grad.tolist() == pytest.approx((s * (1 - s)).tolist())


def test_pixel1_table_is_the_published_one():
    table = load_pixel1_table()
    if SHARED.exists():
        assert table == json.loads(SHARED.read_text())
    assert len(table) == 22 and all(len(v) == 4 for v in table.values())


def test_single_path_runtime_of_known_arch_matches_the_block_sum():
    data = load_pixel1_table()
    model = SinglePathRuntime.pixel1()
    # All 5x5-6: eq. 5.10 gives R_5x5,6 exactly for each block.
    all56 = PIXEL1_FIXED_MS + sum(data[str(i)]["3"] for i in range(1, 21))
    assert model.runtime_of([(5, 6)] * 20) == pytest.approx(all56)
    # 3x3-6: ratio · R_5x5,6 = R_3x3,6.
    all36 = PIXEL1_FIXED_MS + sum(data[str(i)]["1"] for i in range(1, 21))
    assert model.runtime_of([(3, 6)] * 20) == pytest.approx(all36)
    # 5x5-3 exact; 3x3-3 is the model's scaled estimate R_5x5,3 · R_3x3,6 / R_5x5,6.
    mixed = [(5, 3), (3, 3), None] + [(5, 6)] * 17
    r = [data[str(i)] for i in range(1, 21)]
    expect = (
        PIXEL1_FIXED_MS + r[0]["2"] + r[1]["2"] * r[1]["1"] / r[1]["3"] + 0.0 + sum(x["3"] for x in r[3:])
    )
    assert model.runtime_of(mixed) == pytest.approx(expect)


def test_single_path_relaxed_runtime_gradient_matches_finite_differences():
    model = SinglePathRuntime.pixel1(mode="sigmoid", temperature=0.5)
    g = torch.Generator().manual_seed(0)
    norms = [torch.rand(20, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    ts = [torch.full((20,), 0.5, dtype=torch.float64) for _ in range(3)]

    def f(n3, n6, n5):
        return model(n3, ts[0], n6, ts[1], n5, ts[2])

    assert torch.autograd.gradcheck(f, tuple(norms))
    # Far from the thresholds the sigmoid relaxation approaches the discrete runtime.
    big = torch.full((20,), 50.0, dtype=torch.float64)
    assert model(big, ts[0], big, ts[1], big, ts[2]).item() == pytest.approx(model.runtime_of([(5, 6)] * 20))


def test_single_path_se_runtime_hand_case():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    s = torch.tensor([[1.1, 1.2, 1.3, 1.4]], dtype=torch.float64)  # codes (3,3) (3,6) (5,3) (5,6)
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    r_ke = single_path_layer_runtime(r, one, one, one)  # 5x5-6 -> 4.0
    assert single_path_se_runtime(r_ke, s, zero, one, one).item() == pytest.approx(4.0)
    assert single_path_se_runtime(r_ke, s, one, one, one).item() == pytest.approx(1.4 * 4.0)
    r_ke = single_path_layer_runtime(r, one, zero, zero)  # 3x3-3 -> 3.0 * 2/4 = 1.5
    assert r_ke.item() == pytest.approx(1.5)
    assert single_path_se_runtime(r_ke, s, one, zero, zero).item() == pytest.approx(1.1 * 1.5)
    # A skipped layer stays free with or without SE.
    r_ke = single_path_layer_runtime(r, zero, one, one)
    assert single_path_se_runtime(r_ke, s, one, one, one).item() == 0.0


def test_single_path_se_model_gradient():
    table = torch.tensor([[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 6.0]], dtype=torch.float64)
    s = torch.tensor([[1.1, 1.2, 1.3, 1.4], [1.05, 1.1, 1.15, 1.2]], dtype=torch.float64)
    model = SinglePathRuntime(table, fixed_ms=5.0, se_scale=s, mode="sigmoid")
    x = [torch.tensor([0.3, 0.9], dtype=torch.float64, requires_grad=True) for _ in range(4)]
    t = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b, c, d: model(a, t, b, t, c, t, d, t), tuple(x))
    assert model.runtime_of([(5, 6), (3, 3)], se=[True, False]) == pytest.approx(
        5.0 + 1.4 * 4.0 + 4.0 * 3 / 6
    )
