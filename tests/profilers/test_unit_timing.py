"""Isolated units as a model runs them: onnxruntime's layout conversions split off, cold weights, the heap."""

from __future__ import annotations

import math

import pytest
from onnx import TensorProto, helper
from profiler_helpers import fast_config, tiny_model

from hwnas.errors import ConfigError
from hwnas.graph.fusion import UnitTiming, fuse, in_model_sum
from hwnas.profilers import allocator
from hwnas.profilers.backend import Copies
from hwnas.profilers.onnxruntime_cpu import OnnxRuntimeCPUProfiler, OrtBuilder, OrtRunner
from hwnas.profilers.ort_profile import split_unit_profile


def _graph():
    t = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8, 4, 4]) for n in ("in0", "in1", "out")]
    nodes = [
        helper.make_node("ReorderInput", ["in0"], ["a"], name="ReorderInput"),
        helper.make_node("MaxPool", ["in1"], ["c"], name="hwnas_carrier_0_nchwc"),
        helper.make_node("Conv", ["a", "c"], ["b"], name="conv_nchwc"),
        helper.make_node("ReorderOutput", ["b"], ["out"], name="ReorderOutput"),
    ]
    return helper.make_graph(nodes, "g", t[:2], t[2:])


def _events(runs=3):
    ev = []
    for r in range(runs):
        t0 = r * 10_000
        ev.append({"cat": "Session", "name": "model_run", "ts": t0, "dur": 1000})
        for name, start, dur in (("ReorderInput", 10, 100), ("hwnas_carrier_0_nchwc", 120, 50),
                                 ("conv_nchwc", 200, 600), ("ReorderOutput", 820, 150)):  # fmt: skip
            ev.append({"cat": "Node", "name": f"{name}_kernel_time", "ts": t0 + start, "dur": dur,
                       "args": {"op_name": name.split("_")[0]}})  # fmt: skip
    return ev


def test_split_unit_profile_by_kernel_role():
    s = split_unit_profile(_events(), _graph(), skip_runs=1)
    got = (s.run_ms, s.body_ms, s.entry_ms, s.side_ms, s.exit_ms)
    assert got == pytest.approx((1.0, 0.6, 0.1, 0.05, 0.15))
    assert s.overhead_ms == pytest.approx(0.1) and s.entry_layout == s.exit_layout == "nchwc"
    assert s.kernels["conv_nchwc"] == "body" and s.kernels["hwnas_carrier_0_nchwc"] == "side"
    with pytest.raises(ValueError, match="no model_run"):
        split_unit_profile(_events(1), _graph(), skip_runs=1)


def test_in_model_sum_counts_conversions_only_between_layouts():
    nchwc = UnitTiming(1.0, body_share=0.6, entry_share=0.1, exit_share=0.2, overhead_share=0.1,
                       entry_layout="nchwc", exit_layout="nchwc")  # fmt: skip
    plain = UnitTiming(1.0, body_share=0.9, overhead_share=0.1)
    # bodies 0.6 + 0.6 + 0.9; the model's input converted once (0.1); nchwc -> plain once (0.2); one call
    assert in_model_sum([nchwc, nchwc, plain]) == pytest.approx(2.1 + 0.1 + 0.2 + 0.1)
    assert in_model_sum([UnitTiming(2.0), UnitTiming(3.0)]) == pytest.approx(5.0)  # no split: plain sum
    split = {"run_ms": 2.0, "body_ms": 1.0, "entry_ms": 0.5, "exit_ms": 0.25, "overhead_ms": 0.25,
             "entry_layout": "nchwc", "exit_layout": ""}  # fmt: skip
    t = UnitTiming.from_readings(4.0, {"split": split})
    assert (t.body_share, t.entry_share, t.exit_share, t.entry_layout) == (0.5, 0.25, 0.125, "nchwc")
    assert UnitTiming.from_readings(4.0, {}).body_share == 1.0


def test_onnxruntime_unit_timing_carries_its_split():
    cfg = fast_config()
    model = tiny_model("twins", twin_convs=True)
    unit = fuse(model.spec.layers, "onnxruntime-cpu")[1]  # an 8 -> 8 channel conv (3-channel input: NCHW)
    raw = OrtRunner(cfg, threads=1).time(OrtBuilder(cfg).unit(unit), "inference", cfg.repeat)
    split = raw.readings["split"]
    assert split["entry_layout"] == "nchwc" and split["body_ms"] > 0 and split["entry_ms"] > 0
    assert split["body_ms"] + split["entry_ms"] + split["exit_ms"] <= split["run_ms"] * 1.001
    assert set(split["kernels"].values()) <= {"body", "entry", "side", "exit"}


def test_cold_weights_cycle_copies_and_change_the_fingerprint(store):
    model = tiny_model()
    warm = OnnxRuntimeCPUProfiler(fast_config())
    cfg = fast_config(repeat={**fast_config().repeat.__dict__, "cold_weights_mib": 1.0})
    cold = OnnxRuntimeCPUProfiler(cfg)
    unit = fuse(model.spec.layers, "onnxruntime-cpu")[0]
    n = cold.copies(unit)
    assert n == min(64, math.ceil(2**20 / unit.layers[0].weight_bytes)) > 1 and warm.copies(unit) == 1
    art = cold.unit_artefact(unit)
    assert isinstance(art, Copies) and len(art.artefacts) == n
    assert warm.fingerprint().id != cold.fingerprint().id
    assert store.get_fingerprint(cold.profile(model, store, whole_model=False, units="fused").fingerprint_id)[
        "cold_weights_mib"] == 1.0  # fmt: skip
    recs = store.query(model_id=model.model_id, scope="unit", metric="latency_ms")
    assert recs and all(r.value > 0 for r in recs)


def test_allocator_is_a_recorded_condition():
    assert allocator.apply("default")
    assert allocator.apply("warm")  # glibc on the development VM and in CI
    with pytest.raises(ValueError, match="unknown allocator"):
        allocator.apply("jemalloc")
    cfg = fast_config(allocator="warm")
    assert OnnxRuntimeCPUProfiler(cfg).fingerprint().fields["allocator"] == "warm"
    with pytest.raises(ConfigError, match="allocator"):
        fast_config(allocator="tcmalloc")
    with pytest.raises(ConfigError, match="cold_weights_mib"):
        fast_config(repeat={"cold_weights_mib": -1})
