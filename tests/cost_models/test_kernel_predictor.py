"""KernelPredictor: the estimator contract, monotonicity, intervals and the out-of-range flag, the export
round trip, the cost interface and `hwnas predict` with a kernel predictor.

Latencies here are synthetic (a roofline-like sum of a call cost, compute and bytes, with log-normal noise)
over configurations drawn from ``graph.kernels.SAMPLING_RANGES``: these tests check the estimator's logic,
not a device (the benchmark does that, ``benchmarks/kernel_predictor_cnns.py``).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor

import hwnas.spaces  # noqa: F401  (mbv2: model names)
from hwnas.cli.app import main
from hwnas.cost_models import kernel_predictor as kpm
from hwnas.cost_models.interface import CostPredictor, LayerCostPredictor
from hwnas.cost_models.kernel_predictor import KernelPredictor, load_kernel_predictor
from hwnas.cost_models.predictors import KernelCostPredictor, load_cost_predictor
from hwnas.errors import InputError, SchemaError
from hwnas.graph import kernels as K
from hwnas.graph.layer import make_layer
from hwnas.graph.models import resolve_model

KINDS = ("conv", "conv_add", "dwconv", "maxpool", "global_pool", "reshape", "linear")
SMALL = {"max_iter": 30, "cv": 3}


def _latency(cfg: K.KernelConfig, rng: np.random.Generator) -> float:
    f = cfg.features()
    return (0.01 + 2e-8 * f["flops"] + 1e-9 * f["bytes"]) * float(np.exp(rng.normal(0, 0.03)))


def _sample(kind: str, rng: np.random.Generator) -> K.KernelConfig | None:
    kw = {}
    for name, r in K.SAMPLING_RANGES[kind].items():
        if r.values:
            kw[name] = int(rng.choice(r.values))
        else:
            v = float(np.exp(rng.uniform(np.log(max(r.lo, 1)), np.log(r.hi))))
            kw[name] = K.snap(v, r.snap)
    if kind == "dwconv":
        kw["cout"] = kw["cin"]
    try:
        cfg = K.KernelConfig(kind, **kw)
    except InputError:
        return None
    return None if K.out_of_range(cfg) else cfg


def kernel_frame(n_per_kind: int = 24, kinds: tuple[str, ...] = KINDS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for kind in kinds:
        got = 0
        while got < n_per_kind:
            cfg = _sample(kind, rng)
            if cfg is not None:
                rows.append({**cfg.to_dict(), "latency_ms": _latency(cfg, rng)})
                got += 1
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return kernel_frame()


@pytest.fixture(scope="module")
def fitted(frame) -> KernelPredictor:
    return KernelPredictor(**SMALL).fit(frame)


def _mbv2(width: str = "k3e3", other: str | None = None) -> list:
    body = [width if i % 2 == 0 or other is None else other for i in range(20)]
    arch = "-".join(["k3e1", *body, "k3e6"])
    return resolve_model("mbv2:" + arch, (1, 3, 32, 32)).spec.layers


def test_estimator_contract(frame, fitted):
    est = KernelPredictor(**SMALL)
    assert clone(est).get_params() == est.get_params()
    assert est.set_params(max_iter=10).max_iter == 10
    pred = fitted.predict(frame)
    assert pred.shape == (len(frame),) and np.all(pred > 0)
    lo, hi = fitted.predict_interval(frame)
    assert np.all(lo <= pred) and np.all(pred <= hi)
    assert set(fitted.kinds_) == set(KINDS)
    assert np.median(np.abs(pred / frame["latency_ms"] - 1)) < 0.10
    with pytest.raises(InputError, match="latency_ms"):
        KernelPredictor().fit(frame.drop(columns="latency_ms"))
    with pytest.raises(InputError, match="> 0"):
        KernelPredictor().fit(frame.assign(latency_ms=-1.0))


def test_oof_errors_are_out_of_fold_and_cached(frame, fitted):
    cached = fitted.oof_errors(frame)
    assert cached.shape == (len(frame),) and np.all(cached >= 0)
    fresh = KernelPredictor(**SMALL).oof_errors(frame)  # no fit: its own cross-validation
    np.testing.assert_allclose(cached, fresh)
    in_sample = np.abs(fitted.predict(frame) / frame["latency_ms"].to_numpy() - 1)
    assert cached.mean() > in_sample.mean()  # held-out rows are predicted worse than fitted ones


def test_exported_trees_equal_sklearn():
    rng = np.random.default_rng(1)
    X = rng.random((80, 4))
    y = X[:, 0] * 3 + rng.normal(0, 0.1, 80)
    hgb = HistGradientBoostingRegressor(max_iter=20, monotonic_cst=[1, 0, 0, 0]).fit(X, y)
    np.testing.assert_allclose(kpm._eval_trees(kpm._hgb_trees(hgb), X), hgb.predict(X), rtol=1e-10)


def test_predictions_never_fall_as_work_grows(fitted, frame):
    feats = kpm.feature_frame(frame[frame["kind"] == "conv"].head(8))
    for col in ("flops", "bytes", "macs"):
        preds = []
        for f in (1.0, 1.5, 3.0, 10.0, 100.0):
            grown = feats.copy()
            grown[col] = grown[col] * f
            preds.append(np.exp(fitted._predict_log(fitted.models_, fitted.pooled_, grown)[0]))
        assert np.all(np.diff(np.array(preds), axis=0) >= -1e-12), col


def test_out_of_range_unit_is_flagged_with_a_wider_interval(fitted):
    inside = K.KernelConfig("conv", cin=32, cout=64, hw=56, k=3, stride=1, act=1)
    outside = K.KernelConfig("conv", cin=32, cout=64, hw=448, k=3, stride=1, act=1)
    assert not K.out_of_range(inside) and K.out_of_range(outside)
    a = fitted.price_units(K.kernel_layers(inside))
    b = fitted.price_units(K.kernel_layers(outside))
    assert len(a) == len(b) == 1
    assert not a["ood"][0] and b["ood"][0]
    assert any("hw=448" in r for r in b["reasons"][0])
    rel = lambda d: float(d["hi"][0] / d["lo"][0])  # noqa: E731
    assert rel(b) > rel(a) * 2
    ln = make_layer("layernorm", (1, 64, 8, 8), (1, 64, 8, 8), name="ln")  # a unit of no kernel kind
    c = fitted.price_units([ln])
    assert c["ood"][0] and c["kind"][0] == "?" and "no kernel kind" in c["reasons"][0][0]
    assert c["hi"][0] / c["lo"][0] >= fitted.unknown_factor**2 - 1e-9
    drop = make_layer("dropout", (1, 64), (1, 64), name="drop")  # runs no kernel: 0, not flagged
    d = fitted.price_units([drop])
    assert d["kind"][0] == "none" and not d["ood"][0] and d["value"][0] == d["hi"][0] == 0.0


def test_overhead_fit_and_model_interval(fitted):
    pairs = (("k3e3",), ("k3e6",), ("k5e3",), ("k5e6",), ("k3e3", "k5e6"), ("k5e3", "k3e6"))
    nets = [_mbv2(*w) for w in pairs]
    sums = np.array([fitted.price_units(n)["value"].sum() for n in nets])
    measured = 1.2 * sums + 0.4
    fitted_oh = copy.deepcopy(fitted).fit_overhead(nets, measured, ids=[str(i) for i in range(6)])
    oh = fitted_oh.overhead_
    assert oh["scale"] == pytest.approx(1.2, rel=0.05) and oh["n_models"] == 6
    r = fitted_oh.predict_model(nets[0])
    assert r["lo"] <= measured[0] * 1.001 and r["hi"] >= measured[0] * 0.999
    assert r["value"] == pytest.approx(measured[0], rel=0.02)
    with pytest.raises(InputError, match="at least 4"):
        fitted_oh.fit_overhead(nets[:2], measured[:2])


def test_export_load_round_trip_and_cost_interface(fitted, frame, tmp_path):
    path = fitted.save(tmp_path / "kp.json", meta={"device": "test-cpu"})
    assert kpm.is_kernel_predictor_file(path)
    loaded = load_kernel_predictor(path)
    np.testing.assert_array_equal(loaded.predict(frame), fitted.predict(frame))
    for a, b in zip(loaded.predict_interval(frame), fitted.predict_interval(frame), strict=True):
        np.testing.assert_array_equal(a, b)
    net = _mbv2()
    assert loaded.predict_model(net) == fitted.predict_model(net)
    pred = load_cost_predictor(path)
    assert isinstance(pred, KernelCostPredictor)
    assert isinstance(pred, CostPredictor) and isinstance(pred, LayerCostPredictor)
    est = pred.predict([net, _mbv2("k5e6")])["latency_ms"]
    assert len(est) == 2 and np.all(est.lower <= est.value) and np.all(est.value <= est.upper)
    assert est.value[1] > est.value[0]  # wider kernels, larger expansion: slower
    p = pred.prob_within([net], "latency_ms", float(est.upper[0]) * 10)
    assert p[0] > 0.9
    assert pred.layer_costs("latency_ms", net[:3]).shape == (3,)


def test_bad_files_are_clear_errors(fitted, tmp_path):
    path = fitted.save(tmp_path / "kp.json")
    doc = json.loads(path.read_text())
    doc["q"]["conv"] = 0.0  # an edit
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc, separators=(",", ":")))
    with pytest.raises(SchemaError, match="checksum"):
        load_kernel_predictor(edited)
    truncated = tmp_path / "cut.json"
    truncated.write_text(path.read_text()[:500])
    with pytest.raises(SchemaError, match="not a readable kernel predictor"):
        load_kernel_predictor(truncated)
    doc["schema_version"] = 99
    doc["checksum"] = kpm._checksum(doc)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc, separators=(",", ":")))
    with pytest.raises(SchemaError, match="schema version 99"):
        load_kernel_predictor(newer)


def test_cli_predict_names_out_of_range_units(fitted, tmp_path, capsys):
    path = fitted.save(tmp_path / "kp.json")
    args = ["predict", "--table", str(path), "--model", "resnet18", "--input-shape", "1,3,448,448"]
    assert main(args) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "outside the sampled kernels" in text and "conv1" in text and "hw=448" in text
    assert main([*args, "--json", "--per-layer"]) == 0
    out = json.loads(capsys.readouterr().out)
    pred = out["predictions"][0]
    assert pred["n_ood"] >= 1 and pred["lo"] <= pred["value"] <= pred["hi"]
    names = {u["name"] for u in pred["ood_units"]}
    assert "conv1" in names
    assert len(pred["units"]) == pred["n_units"]


def test_cli_predict_bad_kernel_file_exits_2(fitted, tmp_path, capsys):
    path = fitted.save(tmp_path / "kp.json")
    cut = tmp_path / "cut.json"
    cut.write_text(path.read_text()[:300])
    assert main(["predict", "--table", str(cut), "--model", "resnet18"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not a readable kernel predictor" in err and "cut.json" in err
    assert main(["predict", "--table", str(tmp_path / "missing.json"), "--model", "resnet18"]) == 2
    assert "not found" in capsys.readouterr().err


def test_search_table_path_takes_a_kernel_predictor(fitted, tmp_path):
    from hwnas.workflows.search import load_table_predictor

    class Objective:  # what `hwnas search --table` hands the loader: configs -> LayerSpecs
        def layers_of(self, config):
            return _mbv2(config["block"])

    pred = load_table_predictor(fitted.save(tmp_path / "kp.json"), Objective())
    assert isinstance(pred, KernelCostPredictor)
    configs = [{"block": "k3e3"}, {"block": "k5e6"}]
    est = pred.predict(configs)["latency_ms"]
    assert est.value[1] > est.value[0] and est.ood.dtype == bool and len(est.ood) == 2
    p = pred.prob_within(configs, "latency_ms", float(est.value[0]))
    assert 0.2 < p[0] < 0.8 and p[1] < p[0]
