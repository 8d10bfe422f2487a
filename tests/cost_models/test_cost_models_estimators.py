"""Estimators on hand-made data: LUT entries, HyperPower linear models, boosting, analytic models, bands."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from hwnas.cost_models.analytic import FlopsProportionalModel, RooflineModel, model_costs
from hwnas.cost_models.base import UnknownKeyError, prob_below
from hwnas.cost_models.boosted import BoostedCostModel
from hwnas.cost_models.features import (
    LAYER_FEATURE_COLUMNS,
    apply_featurizer,
    available_featurizers,
    get_featurizer,
    layer_features,
    op_kind,
)
from hwnas.cost_models.linear import LinearCostModel
from hwnas.cost_models.lut import LUTCostModel
from hwnas.errors import InputError
from hwnas.graph.layer import ModelSpec, make_layer


def test_lut_median_per_key_and_measured_band():
    X = pd.DataFrame({"layer_key": ["a", "a", "a", "b"]})
    y = np.array([1.0, 2.0, 10.0, 5.0])
    lut = LUTCostModel().fit(X, y)
    assert lut.predict(pd.DataFrame({"layer_key": ["b", "a"]})).tolist() == [5.0, 2.0]
    lo, hi = lut.predict_interval(pd.DataFrame({"layer_key": ["a"]}))
    assert lo[0] == pytest.approx(np.quantile([1, 2, 10], 0.05)) and hi[0] == pytest.approx(
        np.quantile([1, 2, 10], 0.95)
    )
    with pytest.raises(UnknownKeyError, match="not in the lookup table"):
        lut.predict(pd.DataFrame({"layer_key": ["zzz"]}))
    assert LUTCostModel(statistic="min").fit(X, y).predict(pd.DataFrame({"layer_key": ["a"]}))[0] == 1.0


def test_lut_accepts_bare_key_arrays_and_given_spread():
    lut = LUTCostModel().fit(np.array(["x", "y"]), [1.0, 2.0], y_lo=[0.9, 1.5], y_hi=[1.2, 2.5])
    lo, hi = lut.predict_interval(np.array(["y"]))
    assert (lo[0], hi[0]) == (1.5, 2.5)
    assert lut.contains(["x", "q"]).tolist() == [True, False]


def test_lut_fallback_is_named_and_used_only_for_missing_keys():
    X = pd.DataFrame({"layer_key": ["a", "b", "c"], "flops": [1.0, 2.0, 4.0]})
    lut = LUTCostModel(fallback=FlopsProportionalModel()).fit(X, [2.0, 4.0, 8.0])
    Q = pd.DataFrame({"layer_key": ["a", "new"], "flops": [1.0, 3.0]})
    assert lut.predict(Q).tolist() == pytest.approx([2.0, 6.0])
    assert lut.predict_sources(Q) == ["lut", "fallback:FlopsProportionalModel"]


def test_hyperpower_linear_model_recovers_coefficients_with_10_fold_cv():
    rng = np.random.default_rng(0)
    a = rng.integers(1, 500, size=(80, 3)).astype(float)  # structural hyperparameters (units, filters, ...)
    p = np.array([0.05, 0.2, 0.01])
    y = 30.0 + a @ p
    m = LinearCostModel().fit(a, y)
    assert m.coef_ == pytest.approx(p, rel=1e-6) and m.intercept_ == pytest.approx(30.0)
    assert m.cv_folds_ == 10 and m.cv_rmspe_ < 1e-6
    literal = LinearCostModel(fit_intercept=False).fit(a, a @ p)  # eq. 3.2 as written: no constant
    assert literal.intercept_ == 0.0 and literal.coef_ == pytest.approx(p)
    noisy = LinearCostModel(cv=5).fit(a, y * (1 + 0.05 * rng.standard_normal(80)))
    assert 1.0 < noisy.cv_rmspe_ < 15.0
    lo, hi = noisy.predict_interval(a)
    inside = np.mean((y >= lo * 0.9) & (y <= hi * 1.1))
    assert inside > 0.8


def test_clone_and_pickle_keep_params_and_predictions():
    rng = np.random.default_rng(1)
    X = rng.random((60, 4))
    y = 1 + X @ [1.0, 2.0, 0.5, 0.0]
    for est in (
        LinearCostModel(cv=3),
        BoostedCostModel(n_estimators=20),
        FlopsProportionalModel(flops_column=0),
    ):
        fitted = clone(est).fit(X, y)
        again = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_allclose(again.predict(X), fitted.predict(X))
        assert clone(est).get_params() == est.get_params()


def test_boosted_per_op_models_and_quantile_band():
    rng = np.random.default_rng(2)
    n = 300
    op = rng.integers(0, 2, n).astype(float)
    size = rng.random(n) * 10 + 1
    y = np.where(op == 0, 0.5 * size, 3.0 * size) * (1 + 0.05 * rng.standard_normal(n))
    X = pd.DataFrame({"op_code": op, "size": size})
    m = BoostedCostModel(n_estimators=150, group_column="op_code", min_group_size=50).fit(X, y)
    assert set(m.models_) == {"*", 0.0, 1.0} and m.log_target_
    pred = m.predict(X)
    assert np.mean(np.abs(pred - y) / y) < 0.08
    lo, hi = m.predict_interval(X)
    assert np.all(lo <= pred) and np.all(pred <= hi)
    assert 0.6 < np.mean((y >= lo) & (y <= hi)) <= 1.0  # a 90 % band, in-sample


@pytest.mark.slow
def test_xgboost_backend_matches_sklearn_closely():
    rng = np.random.default_rng(3)
    X = rng.random((200, 3))
    y = np.exp(X @ [1.0, 0.5, 0.2])
    a = BoostedCostModel(backend="xgboost", n_estimators=200).fit(X, y).predict(X)
    b = BoostedCostModel(backend="sklearn", n_estimators=200).fit(X, y).predict(X)
    assert np.mean(np.abs(a - y) / y) < 0.05 and np.mean(np.abs(b - y) / y) < 0.05


def _specs():
    conv = make_layer(
        "conv2d",
        (1, 16, 32, 32),
        (1, 32, 32, 32),
        in_channels=16,
        out_channels=32,
        kernel=3,
        stride=1,
        padding=1,
    )
    dw = make_layer(
        "conv2d",
        (1, 32, 32, 32),
        (1, 32, 16, 16),
        in_channels=32,
        out_channels=32,
        kernel=3,
        stride=2,
        padding=1,
        groups=32,
    )
    pw = make_layer("conv2d", (1, 32, 16, 16), (1, 64, 16, 16), in_channels=32, out_channels=64, kernel=1)
    relu = make_layer("relu", (1, 64, 16, 16), (1, 64, 16, 16))
    return [conv, dw, pw, relu]


def test_layer_features_and_op_kinds():
    specs = _specs()
    assert [op_kind(s) for s in specs] == ["conv", "dwconv", "conv1x1", "activation"]
    f = layer_features(specs)
    assert list(f.columns) == list(LAYER_FEATURE_COLUMNS)
    assert f.loc[0, "macs"] == 32 * 32 * 32 * 16 * 9
    assert f.loc[1, "groups"] == 32 and f.loc[1, "stride"] == 2 and f.loc[1, "out_h"] == 16
    assert f["op_code"].tolist() == [0.0, 2.0, 1.0, 6.0]


def test_roofline_from_device_config_and_model_costs():
    from hwnas.device_config import load_device

    cfg = load_device("local-cpu")
    roof = RooflineModel.from_device_config(cfg)
    specs = _specs()
    f = layer_features(specs)
    t = roof.predict(f)  # needs no fit
    expect0 = 1000 * max(
        specs[0].flops / cfg.peak_flops,
        (specs[0].activation_bytes + specs[0].weight_bytes) / cfg.memory_bandwidth_bytes_s,
    )
    assert t[0] == pytest.approx(expect0)
    assert t[3] == pytest.approx(
        1000 * specs[3].activation_bytes / cfg.memory_bandwidth_bytes_s
    )  # memory-bound
    cal = RooflineModel.from_device_config(cfg, calibrate=True).fit(f, 3 * t)
    assert cal.scale_ == pytest.approx(3.0)
    totals = model_costs(ModelSpec("m", (1, 16, 32, 32), specs))
    assert totals["flops"] == sum(s.flops for s in specs)
    assert totals["memory_bytes"] == sum(s.weight_bytes for s in specs) + max(
        s.activation_bytes for s in specs
    )


def test_probability_within_budget():
    p = prob_below(
        np.array([10.0, 10.0, 10.0]),
        np.array([9.0, 9.0, 10.0]),
        np.array([11.0, 11.0, 10.0]),
        np.array([10.0, 12.0, 9.0]),
    )
    assert p[0] == pytest.approx(0.5) and p[1] > 0.95 and p[2] == 0.0
    m = LinearCostModel(cv=3).fit(np.arange(1, 31, dtype=float)[:, None], np.arange(1, 31) * 2.0 + 0.01)
    assert m.prob_within(np.array([[10.0]]), 1000.0)[0] == pytest.approx(1.0)


def test_featurizer_registry_and_nb201_lazy_names():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [True, False]})
    out = apply_featurizer("numeric", df)
    assert list(out.columns) == ["a", "c"] and out["c"].tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match="unknown featurizer"):
        get_featurizer("nope")
    names = available_featurizers()
    assert "numeric" in names
    try:
        import hwnas.spaces.nb201_features  # noqa: F401
    except ImportError:
        pytest.skip("hwnas.spaces.nb201_features not present")
    assert callable(get_featurizer("nb201-onehot"))
    with pytest.raises(InputError, match="no such featurizer"):
        get_featurizer("nb201-doesnotexist")
