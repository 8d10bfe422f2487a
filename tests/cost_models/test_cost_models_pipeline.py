"""Store -> fit (held-out by architecture) -> cost table -> files -> predictions, on a synthetic store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.cost_models.base import UnknownKeyError
from hwnas.cost_models.data import load_store_data, split_by_model
from hwnas.cost_models.export import SCHEMA_VERSION, _normalise_rows, load_cost_table, save_cost_table
from hwnas.cost_models.fitting import evaluate, fit_layerwise, fit_with_validation, make_estimator
from hwnas.errors import InputError, SchemaError
from hwnas.graph.layer import LayerSpec


def test_load_store_data_and_split_by_model(synthetic_store):
    data = load_store_data(synthetic_store)
    assert len(data.models) == 30 and data.layers["model_id"].nunique() == 30
    train, test = split_by_model(data, 0.2, seed=1)
    assert not set(train.model_ids) & set(test.model_ids)
    assert len(test.model_ids) == 6
    # every layer row of a model goes to the same side
    assert set(test.layers["model_id"]) == set(test.model_ids)


def test_store_filters_give_clear_errors(synthetic_store):
    with pytest.raises(InputError, match="no measurements"):
        load_store_data(synthetic_store, device="nope")


@pytest.mark.parametrize("name", ["lut", "boosted", "flops"])
def test_fit_recovers_overhead_and_scores(synthetic_store, name):
    data = load_store_data(synthetic_store)
    table, validation = fit_with_validation(
        name, data, fallback="boosted" if name == "lut" else None, n_estimators=100
    )
    oh = table.meta["overhead"]
    if name != "flops":
        assert oh["slope"] == pytest.approx(1.1, rel=0.05)
        assert validation["model"]["within_10pct"] >= 0.8
    assert table.meta["n_fit"]["models_measured_whole"] == 30
    assert set(validation["model"]) >= {
        "rmspe_pct",
        "mape_pct",
        "within_5pct",
        "within_10pct",
        "kendall_tau_b",
    }


def test_lut_without_fallback_refuses_unknown_keys(synthetic_store):
    data = load_store_data(synthetic_store)
    train, test = split_by_model(data, 0.5, seed=0)
    est = fit_layerwise(make_estimator("lut"), train)
    unseen = test.layers[~test.layers["layer_key"].isin(set(train.layers["layer_key"]))]
    if unseen.empty:
        pytest.skip("split left no unseen keys")
    with pytest.raises(UnknownKeyError, match="not in the lookup table"):
        est.predict(unseen[["layer_key"]])
    fb = fit_layerwise(make_estimator("lut", fallback="flops"), train)
    cols = [
        "layer_key",
        *[
            c
            for c in unseen.columns
            if c not in ("model_id", "layer_index", "layer_name", "value", "lo", "hi", "layer_key")
        ],
    ]
    srcs = fb.predict_sources(unseen[cols])
    assert set(srcs) == {"fallback:FlopsProportionalModel"}


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
@pytest.mark.parametrize("name", ["lut", "boosted", "linear", "xgboost"])
def test_cost_table_round_trip_predicts_the_same(tmp_path, synthetic_store, fmt, name):
    data = load_store_data(synthetic_store)
    table, _ = fit_with_validation(name, data, fallback="linear" if name == "lut" else None, n_estimators=40)
    path = save_cost_table(table, tmp_path / f"t.{fmt}")
    loaded = load_cost_table(path)
    assert loaded.meta["estimator"] == table.meta["estimator"]
    assert loaded.meta["fingerprint"]["id"] == data.fingerprint["id"]
    assert loaded.meta["n_fit"]["layer_rows"] == len(data.layers)
    pd.testing.assert_frame_equal(loaded.rows, _normalise_rows(table.rows), check_dtype=False)
    assert len(loaded.rows) == data.layers["layer_key"].nunique()
    # unseen layers: the payload (trees, coefficients) must give what the estimator gives
    from hwnas.graph.layer import make_layer

    new = [
        make_layer(
            "conv2d",
            (1, 24, 16, 16),
            (1, 40, 16, 16),
            in_channels=24,
            out_channels=40,
            kernel=3,
            stride=1,
            padding=1,
        )
    ]
    a = table.predict_layers(new)
    b = loaded.predict_layers(new)
    assert b["source"].iloc[0].startswith("model:")
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-6)
    np.testing.assert_allclose(a["hi"], b["hi"], rtol=1e-6)


def test_payload_matches_estimator_predictions(synthetic_store):
    from hwnas.cost_models.data import layer_design
    from hwnas.cost_models.export import estimator_payload, payload_predict

    data = load_store_data(synthetic_store)
    for name in ("boosted", "xgboost", "linear", "flops"):
        est = fit_layerwise(make_estimator(name, n_estimators=30), data)
        X = layer_design(data.layers, with_key=False)
        p, lo, hi = payload_predict(estimator_payload(est), X)
        np.testing.assert_allclose(p, est.predict(X), rtol=1e-5)
        elo, ehi = est.predict_interval(X)
        np.testing.assert_allclose(lo, elo, rtol=1e-5)


def test_corrupt_and_wrong_version_tables(tmp_path, synthetic_store):
    data = load_store_data(synthetic_store)
    table, _ = fit_with_validation("lut", data)
    path = save_cost_table(table, tmp_path / "t.json")
    doc = json.loads(path.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    bad = tmp_path / "v.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="schema version"):
        load_cost_table(bad)
    doc["schema_version"] = SCHEMA_VERSION
    doc["rows"]["data"][0][1] *= 2
    edited = tmp_path / "e.json"
    edited.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="checksum"):
        load_cost_table(edited)
    trunc = tmp_path / "c.csv"
    save_cost_table(table, trunc)
    text = trunc.read_text()
    trunc.write_text(text[: len(text) // 2])
    with pytest.raises(SchemaError):
        load_cost_table(trunc)
    junk = tmp_path / "j.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(SchemaError, match="not a readable"):
        load_cost_table(junk)
    with pytest.raises(InputError, match="not found"):
        load_cost_table(tmp_path / "missing.json")


def test_fingerprint_mismatch_warns(tmp_path, synthetic_store):
    data = load_store_data(synthetic_store)
    table, _ = fit_with_validation("lut", data)
    path = save_cost_table(table, tmp_path / "t.json")
    with pytest.warns(UserWarning, match="fingerprint"):
        load_cost_table(path, fingerprint_id="someotherdevice")


def test_evaluate_uses_only_unseen_architectures(tmp_path):
    from cost_model_helpers import build_store

    store = build_store(tmp_path / "a.db", n_models=40, seed=3)
    data = load_store_data(store)
    train, test = split_by_model(data, 0.25, seed=0)
    table, _ = fit_with_validation("boosted", train, n_estimators=60)
    with pytest.raises(InputError, match="no architectures left"):
        evaluate(table, train)
    report, frame = evaluate(table, data)
    assert report["n_models"] == len(test.model_ids) == 10
    assert set(frame["model_id"]) == set(test.model_ids)
    assert 0.0 <= report["model"]["interval_coverage"] <= 1.0
    store.close()


def test_model_prediction_interval_and_probability(synthetic_store):
    data = load_store_data(synthetic_store)
    table, _ = fit_with_validation("boosted", data, n_estimators=60)
    from hwnas.graph.layer import ModelSpec

    specs = synthetic_store.get_layer_specs(
        data.layers[data.layers["model_id"] == "synthetic:0"]["layer_key"], decode=LayerSpec.from_dict
    )
    keys = data.layers[data.layers["model_id"] == "synthetic:0"]["layer_key"].tolist()
    spec = ModelSpec(name="m0", input_shape=(1, 8, 16, 16), layers=[specs[k] for k in keys])
    out = table.predict_model(spec, budget=1e9)
    assert out["lo"] <= out["value"] <= out["hi"]
    assert out["prob_within_budget"] == pytest.approx(1.0)
    measured = float(data.models.set_index("model_id").loc["synthetic:0", "value"])
    assert out["value"] == pytest.approx(measured, rel=0.1)
    assert table.predict_model(spec, budget=0.0)["prob_within_budget"] < 0.01


def test_in_model_layer_metric_marks_fused_ops_and_per_op_overhead(tmp_path):
    from cost_model_helpers import build_store

    from hwnas.graph.layer import ModelSpec

    store = build_store(tmp_path / "im.db", n_models=20, seed=5, in_model=True)
    data = load_store_data(store, layer_metric="in_model_latency_ms")
    assert data.zero_ops == ["relu"] and set(data.layers["layer_key"].str.split("|").str[0]) == {"conv2d"}
    est = fit_layerwise(make_estimator("lut"), data, overhead="per-op")
    assert set(est.overhead_["slopes"]) == {"0.0", "1.0"}  # conv (3x3) and conv1x1 op kinds
    from hwnas.cost_models.fitting import table_from_fit

    table = table_from_fit(est, data)
    keys = data.layers[data.layers["model_id"] == "synthetic:0"]["layer_key"].tolist()
    specs = store.get_layer_specs(keys, decode=LayerSpec.from_dict)
    full = [s for s in store.get_layer_specs(decode=LayerSpec.from_dict).values() if s.op == "relu"][:1] + [
        specs[k] for k in keys
    ]
    per = table.predict_layers(full)
    assert per["source"].tolist()[0] == "fused" and per["value"].iloc[0] == 0.0
    out = table.predict_model(ModelSpec("m", (1, 8, 16, 16), full))
    measured = float(data.models.set_index("model_id").loc["synthetic:0", "value"])
    assert out["value"] == pytest.approx(measured, rel=0.05)
    store.close()


def test_tabular_split_keeps_repeated_architectures_together():
    from hwnas.cost_models.fitting import fit_tabular

    rng = np.random.default_rng(0)
    ids = [f"a{i // 3}" for i in range(60)]  # every architecture measured three times
    x = np.repeat(rng.random(20), 3)
    feats = pd.DataFrame({"x": x})
    y = 2.0 + 3.0 * x + rng.normal(0, 0.01, 60)
    table, validation = fit_tabular("linear", feats, y, ids, test_size=0.25, seed=1)
    assert validation["split"]["n_test"] % 3 == 0 and validation["split"]["by"] == "architecture id"
    assert table.meta["input"] == "tabular" and len(table.meta["fit_model_ids"]) == 60
