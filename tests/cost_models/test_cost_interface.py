"""The cost hand-off: every cost path is a CostPredictor; intervals, prob_within, the differentiable view,
and a cost-model kind added by one registration."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from cost_model_helpers import _arch_layers, true_layer_ms

from hwnas.cost_models.base import CostModel, validate_X, validate_Xy
from hwnas.cost_models.data import load_store_data
from hwnas.cost_models.export import load_cost_table, save_cost_table
from hwnas.cost_models.fitting import fit_tabular, fit_with_validation, make_estimator
from hwnas.cost_models.interface import (
    CostEstimate,
    CostPredictor,
    LayerCostPredictor,
    candidate_cost_matrix,
    check_predictor,
)
from hwnas.cost_models.predictors import (
    ArchCostPredictor,
    ModelPredictor,
    TablePredictor,
    load_cost_predictor,
)
from hwnas.cost_models.torch_costs import cost_matrix, expected_cost
from hwnas.errors import InputError


@pytest.fixture(scope="module")
def layer_table(tmp_path_factory):
    from cost_model_helpers import build_store

    store = build_store(tmp_path_factory.mktemp("s") / "s.db")
    table, _ = fit_with_validation("lut", load_store_data(store), fallback="linear", n_estimators=30)
    store.close()
    return table


def _archs(n: int, seed: int = 5) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    return [_arch_layers(rng) for _ in range(n)]


def test_cost_estimate_checks_and_prob_within():
    with pytest.raises(ValueError, match="differ in length"):
        CostEstimate("latency_ms", "ms", [1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="level"):
        CostEstimate("latency_ms", "ms", [1.0], [1.0], [1.0], level=1.0)
    exact = CostEstimate.exact("latency_ms", "ms", [1.0, 3.0])
    np.testing.assert_array_equal(exact.prob_within(2.0), [1.0, 0.0])
    band = CostEstimate("latency_ms", "ms", [2.0], [1.0], [3.0], level=0.9)
    # The budget at the interval's upper end: P = 0.5 + level / 2 (a normal's central interval).
    assert band.prob_within(3.0)[0] == pytest.approx(0.95, abs=1e-6)
    assert band.prob_within(2.0)[0] == pytest.approx(0.5)
    assert band.prob_within(1.0)[0] == pytest.approx(0.05, abs=1e-6)
    assert np.asarray(band)[0] == 2.0 and band.take([0]).upper[0] == 3.0


def test_layer_table_adapter_matches_the_table(layer_table):
    pred = TablePredictor(layer_table)
    assert isinstance(pred, CostPredictor) and isinstance(pred, LayerCostPredictor)
    archs = _archs(4)
    est = pred.predict(archs)["latency_ms"]
    for i, layers in enumerate(archs):
        one = layer_table.predict_model(layers)
        assert est.value[i] == pytest.approx(one["value"], rel=1e-9)
        assert est.lower[i] == pytest.approx(one["lo"], rel=1e-9)
        assert est.upper[i] == pytest.approx(one["hi"], rel=1e-9)
    # near the truth: the synthetic store's models cost 0.3 + 1.1 x the layer sum
    truth = np.array([0.3 + 1.1 * sum(true_layer_ms(s) for s in a) for a in archs])
    assert np.all(np.abs(est.value / truth - 1) < 0.1)
    p = pred.prob_within(archs, "latency_ms", float(np.median(est.value)))
    assert np.all((p >= 0) & (p <= 1)) and p[np.argmin(est.value)] > p[np.argmax(est.value)]
    # a ModelSpec-like and a mapped point price the same
    mapped = TablePredictor(layer_table, to_layers=lambda i: archs[i])
    np.testing.assert_allclose(mapped.predict([0, 1])["latency_ms"].value, est.value[:2])
    with pytest.raises(InputError, match="LayerSpec lists"):
        pred.predict([{"units": 3}])


def test_layer_costs_and_gradient_through_expected_cost(layer_table):
    pred = TablePredictor(layer_table)
    options = _archs(3, seed=9)
    cands = [[options[0][0], None, options[1][:2]], [options[2][0], options[2][1]]]
    costs, mask = candidate_cost_matrix(pred, "latency_ms", cands)
    assert costs.shape == (2, 3) and mask.tolist() == [[True, True, True], [True, True, False]]
    direct = layer_table.predict_layers(options[1][:2])["value"].sum()
    assert costs[0, 2].item() == pytest.approx(direct) and costs[0, 1].item() == 0.0
    assert costs[0, 0].item() == pytest.approx(pred.layer_costs("latency_ms", [options[0][0]])[0])
    alpha = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    logits = alpha.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=1)
    e = expected_cost(w, costs, mask)
    (g,) = torch.autograd.grad(e, alpha)
    # d E / d alpha_lk = w_lk (c_lk - E_l[c]): compare with finite differences
    eps = 1e-6
    for i, k in ((0, 0), (0, 2), (1, 1)):
        a2 = alpha.detach().clone()
        a2[i, k] += eps
        w2 = torch.softmax(a2.masked_fill(~mask, float("-inf")), dim=1)
        fd = (expected_cost(w2, costs, mask) - e.detach()) / eps
        assert g[i, k].item() == pytest.approx(fd.item(), rel=1e-4, abs=1e-9)
    assert g[1, 2].item() == 0.0  # padding
    # torch_costs.cost_matrix is the same path
    c2, m2 = cost_matrix(layer_table, cands)
    assert torch.equal(c2, costs) and torch.equal(m2, mask)


def test_tabular_table_adapter_takes_rows_and_ids(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.uniform(1, 5, 40), "b": rng.uniform(0, 2, 40)})
    y = 2.0 * df["a"] + 0.5 * df["b"] + 1.0
    table, _ = fit_tabular("linear", df, y.to_numpy(), [str(i) for i in range(40)], metric="lat_edge_ms")
    path = save_cost_table(table, tmp_path / "t.json")
    pred = load_cost_predictor(path)
    assert pred.cost_names == ("latency_ms",)  # lat_<device>_ms answers latency constraints
    rows = df.iloc[:5].to_dict("records")
    est = pred.predict(rows)["latency_ms"]
    np.testing.assert_allclose(est.value, y.iloc[:5], rtol=1e-6)
    assert np.all(est.lower <= est.value) and np.all(est.upper >= est.value)
    # ids: looked up through a key and the caller's featurizer
    by_id = load_cost_predictor(path, to_features=lambda ids: df.iloc[[int(i) for i in ids]])
    np.testing.assert_allclose(by_id.predict(["3", "7"])["latency_ms"].value, y.iloc[[3, 7]], rtol=1e-6)
    with pytest.raises(InputError, match="not layers"):
        pred.layer_costs("latency_ms", [])


def test_arch_cost_csv_exact_and_predicted(tmp_path):
    exact = tmp_path / "costs.csv"
    pd.DataFrame({"arch": ["a", "b", "c"], "latency_ms": [1.0, 2.0, 3.0], "energy_mj": [4, 5, 6]}).to_csv(
        exact, index=False
    )
    pred = load_cost_predictor(exact)
    assert isinstance(pred, ArchCostPredictor) and set(pred.cost_names) == {"latency_ms", "energy_mj"}
    est = pred.predict(["c", "a"])
    np.testing.assert_array_equal(est["latency_ms"].value, [3.0, 1.0])
    assert np.all(est["energy_mj"].width == 0)
    np.testing.assert_array_equal(pred.prob_within(["a", "b", "c"], "latency_ms", 2.0), [1, 1, 0])
    with pytest.raises(InputError, match="not in the cost table"):
        pred.predict(["zzz"])
    predicted = tmp_path / "pred.csv"
    pd.DataFrame(
        {
            "index": [0, 1],
            "arch": ["a", "b"],
            "latency_ms": [2.0, 4.0],
            "latency_ms_lo": [1.5, 3.0],
            "latency_ms_hi": [2.5, 5.0],
            "level": [0.8, 0.8],
        }
    ).to_csv(predicted, index=False)
    p2 = load_cost_predictor(predicted, key=lambda cfg: cfg["id"])
    e2 = p2.predict([{"id": "b"}])["latency_ms"]
    assert (e2.lower[0], e2.upper[0], e2.level) == (3.0, 5.0, 0.8) and e2.source[0] == "predicted"
    assert p2.cost_names == ("latency_ms",)  # "index" is no cost
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["a"], "latency_ms": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match="id column"):
        load_cost_predictor(bad)


def test_model_predictor_band_and_check_predictor():
    from hwnas.cost_models.linear import LinearCostModel

    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (60, 2))
    y = 3 * X[:, 0] + X[:, 1] + 1 + 0.05 * rng.standard_normal(60)
    m = LinearCostModel().fit(X, y)
    pred = ModelPredictor({"power_mw": m}, lambda archs: np.asarray(archs, float))
    est = pred.predict(X[:10])["power_mw"]
    lo, hi = m.predict_interval(X[:10])
    np.testing.assert_allclose(est.lower, lo) and np.testing.assert_allclose(est.upper, hi)
    assert est.level == pytest.approx(0.9) and pred.errors()["power_mw"] == pytest.approx(m.cv_rmspe_)
    assert check_predictor(pred) is pred
    with pytest.raises(InputError, match="not a CostPredictor"):
        check_predictor(m)


# --- a kind added by one registration ------------------------------------------------------------------


class MeanPerOpModel(CostModel):
    """A tiny kind: the mean cost of each op code (a test of the registry, not a useful model)."""

    kind: ClassVar[str] = "test-mean"

    def fit(self, X: Any, y: Any) -> MeanPerOpModel:
        Xv, y = validate_Xy(self, X, y)
        codes = Xv[:, 0]
        self.means_ = {float(c): float(np.mean(y[codes == c])) for c in np.unique(codes)}
        self._fit_band(y, self.predict(X))
        return self

    def predict(self, X: Any) -> np.ndarray:
        Xv = validate_X(self, X, reset=False)
        return np.array([self.means_.get(float(c), 0.0) for c in Xv[:, 0]])


def test_a_kind_registers_itself_and_round_trips(tmp_path, synthetic_store):
    from hwnas.cost_models.kinds import EstimatorKind, kind_names, register_kind, unregister_kind

    def predict(payload, frame, cache):
        return np.array([payload["means"].get(str(float(c)), 0.0) for c in frame["op_code"]])

    register_kind(
        EstimatorKind(
            "test-mean",
            lambda **_: MeanPerOpModel(),
            lambda est: {"means": {str(k): v for k, v in est.means_.items()}},
            predict,
        )
    )
    try:
        assert "test-mean" in kind_names()
        table, validation = fit_with_validation("test-mean", load_store_data(synthetic_store))
        assert table.meta["estimator"] == "test-mean" and "model" in validation
        loaded = load_cost_table(save_cost_table(table, tmp_path / "m.csv"))
        layers = _archs(1, seed=3)[0]
        a, b = table.predict_layers(layers), loaded.predict_layers(layers)
        np.testing.assert_allclose(a["value"], b["value"])
        assert TablePredictor(loaded).predict([layers])["latency_ms"].value[0] > 0
    finally:
        unregister_kind("test-mean")
    with pytest.raises(InputError, match="unknown cost model"):
        make_estimator("test-mean")


def test_jackknife_band_rank_and_supported_level():
    from hwnas.cost_models.fewshot import jackknife_band

    y = np.zeros(10)
    loo = np.array([0.01, -0.02, 0.03, -0.04, 0.05, -0.06, 0.07, -0.08, 0.09, -0.10])
    q, level = jackknife_band(y, loo, 0.9)  # rank ceil(11 * 0.9) = 10: the largest residual
    assert q == pytest.approx(0.10) and level == 0.9
    q, level = jackknife_band(y, loo, 0.5)  # rank ceil(11 * 0.5) = 6
    assert q == pytest.approx(0.06) and level == 0.5
    q, level = jackknife_band(y[:5], loo[:5], 0.9)  # ceil(6 * 0.9) = 6 > 5: the level the 5 support
    assert q == pytest.approx(0.05) and level == pytest.approx(5 / 6)
