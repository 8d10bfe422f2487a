"""UnitLUT: fused-unit records looked up by unit key and added as one model run pays them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profilers"))
from profiler_helpers import fast_config, tiny_model  # noqa: E402

from hwnas.cost_models.base import UnknownKeyError  # noqa: E402
from hwnas.cost_models.interface import CostPredictor  # noqa: E402
from hwnas.cost_models.unit_lut import UnitLUT  # noqa: E402
from hwnas.errors import InputError, SchemaError  # noqa: E402
from hwnas.graph.fusion import UnitTiming, in_model_sum  # noqa: E402
from hwnas.profilers.onnxruntime_cpu import OnnxRuntimeCPUProfiler  # noqa: E402
from hwnas.store import SQLiteStore  # noqa: E402


@pytest.fixture
def profiled(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    model = tiny_model("twins", twin_convs=True)
    OnnxRuntimeCPUProfiler(fast_config()).profile(model, store, whole_model=False, units="fused")
    yield store, model
    store.close()


def test_unit_table_prices_a_network_from_its_units(profiled, tmp_path):
    store, model = profiled
    lut = UnitLUT.from_store(store, device="test-cpu")
    assert lut.fusion == "onnxruntime-cpu" and isinstance(lut, CostPredictor)
    recs = store.query(scope="unit", metric="latency_ms")
    ordered = sorted(recs, key=lambda r: r.layer_index)
    chain = [UnitTiming.from_readings(r.value, r.extra["readings"]) for r in ordered]
    assert lut.predict_layers(model.spec.layers) == pytest.approx(in_model_sum(chain))
    assert lut.predict_layers(model.spec.layers) < sum(r.value for r in recs)  # conversions, calls split off
    est = lut.predict([model.spec, model.spec.layers])["latency_ms"]
    assert len(est) == 2 and est.value[0] == est.value[1] > 0
    assert (est.lower <= est.value).all() and (est.value <= est.upper).all() and est.source[0] == "unit-lut"
    assert lut.prob_within([model.spec], "latency_ms", 1e6)[0] > 0.99
    back = UnitLUT.load(lut.save(tmp_path / "units.json"))
    assert back.predict_layers(model.spec.layers) == pytest.approx(lut.predict_layers(model.spec.layers))


def test_unit_table_refuses_what_it_does_not_know(profiled, tmp_path):
    store, _ = profiled
    lut = UnitLUT.from_store(store, device="test-cpu")
    batch2 = [layer.with_batch(2) for layer in tiny_model("plain").spec.layers]  # same layers, other shapes
    with pytest.raises(UnknownKeyError, match="not in the table"):
        lut.predict_layers(batch2)
    with pytest.raises(InputError, match="no fused-unit latencies"):
        UnitLUT.from_store(store, device="elsewhere")
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    with pytest.raises(SchemaError, match="not a unit table"):
        UnitLUT.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot price"):
        lut.predict([42])
