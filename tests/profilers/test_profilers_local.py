from __future__ import annotations

import pytest
from profiler_helpers import fast_config, tiny_model

from hwnas.errors import InputError
from hwnas.profilers.onnxruntime_cpu import OnnxRuntimeCPUProfiler
from hwnas.profilers.power.base import EnergyWindow, PowerSampler
from hwnas.profilers.power.rapl import RaplSampler
from hwnas.profilers.torch_cpu import TorchCPUProfiler


def test_onnxruntime_profile_per_layer_whole_and_in_model(store):
    model = tiny_model()
    prof = OnnxRuntimeCPUProfiler(fast_config())
    res = prof.profile(model, store, memory=False)
    n = len(model.spec.layers)
    layer_recs = store.query(model_id=model.model_id, scope="layer", metric="latency_ms")
    assert sorted(r.layer_index for r in layer_recs) == list(range(n))
    assert all(r.stats is not None and r.stats.n == len(r.stats.samples) >= 5 for r in layer_recs)
    assert all(r.source == "wallclock-isolated" and r.value > 0 for r in layer_recs)
    (whole,) = store.query(model_id=model.model_id, scope="model", metric="latency_ms")
    assert whole.value > 0 and whole.stats.ci_low <= whole.value <= whole.stats.ci_high
    # onnxruntime's own profiler: convs and the linear layer map back to their layers
    in_model = store.query(model_id=model.model_id, metric="in_model_latency_ms")
    mapped_ops = {model.spec.layers[r.layer_index].op for r in in_model}
    assert {"conv2d", "linear"} <= mapped_ops
    assert all(r.source == "ort-profiler" for r in in_model)
    fp = store.get_fingerprint(res.fingerprint_id)
    assert fp["threads"] == 1 and fp["versions"]["onnxruntime"] and "cpufreq" in fp
    assert res.failures == [] and res.jobs_skipped == 0


def test_identical_layers_measured_once(store):
    model = tiny_model("twins", twin_convs=True)
    keys = [layer.key() for layer in model.spec.layers]
    res = OnnxRuntimeCPUProfiler(fast_config()).profile(model, store, whole_model=False)
    assert res.jobs_total == len(set(keys)) < len(keys)
    recs = {r.layer_index: r for r in store.query(model_id=model.model_id, metric="latency_ms")}
    i, j = [k for k, key in enumerate(keys) if keys.count(key) == 2 and model.spec.layers[k].op == "conv2d"][
        :2
    ]
    assert recs[i].stats == recs[j].stats and recs[j].extra["measured_at_layer_index"] == i


def test_interrupted_profile_resumes_with_only_the_rest(store):
    model = tiny_model()
    prof = OnnxRuntimeCPUProfiler(fast_config())
    seen = []

    def stop_after_three(event):
        seen.append(event)
        if event.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prof.profile(model, store, memory=False, progress=stop_after_three)
    first = {r.identity(): r.created_at for r in store.query(model_id=model.model_id)}
    assert len(first) == 3  # three single-layer jobs finished and were written at once

    events = []
    res = prof.profile(model, store, memory=False, progress=events.append)
    assert res.jobs_skipped == 3 and [e.skipped for e in events[:3]] == [True] * 3
    assert not any(e.skipped for e in events[3:])
    measured_ids = {r.identity() for r in res.measured}
    assert not measured_ids & set(first)  # nothing measured twice
    after = {r.identity(): r.created_at for r in store.query(model_id=model.model_id)}
    assert all(after[k] == v for k, v in first.items())
    assert len(after) == len(model.spec.layers) + 1 + len(
        store.query(model_id=model.model_id, metric="in_model_latency_ms")
    )

    forced = prof.profile(model, store, memory=False, force=True)
    assert forced.jobs_skipped == 0 and len(forced.measured) == len(after)


def test_torch_inference_and_train_step(store):
    model = tiny_model()
    prof = TorchCPUProfiler(fast_config("torch-cpu"))
    res = prof.profile(model, store, modes=("inference", "train_step"), memory=False)
    n = len(model.spec.layers)
    for mode in ("inference", "train_step"):
        assert len(store.query(model_id=model.model_id, scope="layer", mode=mode)) == n
    inf = store.query(model_id=model.model_id, scope="model", mode="inference")[0]
    train = store.query(model_id=model.model_id, scope="model", mode="train_step")[0]
    assert train.value > inf.value  # forward + backward includes a forward
    assert not model.module.training  # mode restored
    assert res.fingerprint_id == prof.fingerprint().id


def test_onnxruntime_refuses_train_step(store):
    with pytest.raises(InputError, match="train_step"):
        OnnxRuntimeCPUProfiler(fast_config()).profile(tiny_model(), store, modes=("train_step",))


def test_peak_memory_recorded_and_oom_child_does_not_stop_profile(store):
    model = tiny_model()
    ok = OnnxRuntimeCPUProfiler(fast_config(), memory_limit_bytes=None)
    ok.profile(model, store, per_layer=False)
    (mem,) = store.query(model_id=model.model_id, metric="peak_memory_bytes")
    assert mem.value > 0 and mem.extra["peak_rss_bytes"] > mem.value

    other = tiny_model("tiny2")
    capped = OnnxRuntimeCPUProfiler(fast_config(), memory_limit_bytes=64 * 2**20)
    res = capped.profile(other, store, per_layer=False)
    assert any("peak memory" in f and "address-space limit" in f for f in res.failures)
    assert store.query(model_id=other.model_id, metric="latency_ms", scope="model")  # the rest went on
    assert not store.query(model_id=other.model_id, metric="peak_memory_bytes")  # retried next run


def test_energy_unavailable_is_said_not_invented(store, tmp_path):
    prof = OnnxRuntimeCPUProfiler(fast_config(power={"sampler": "rapl"}), power_sampler=RaplSampler(tmp_path))
    res = prof.profile(tiny_model(), store, per_layer=False, memory=False)
    assert any(n.startswith("energy: unavailable:") for n in res.notes)
    assert not store.query(metric="energy_mj")


class TenWatts(PowerSampler):
    """A sampler that reports a constant 10 W (tests the energy job without RAPL hardware)."""

    source = "test-10W"

    def available(self):
        return True, "test"

    def _snapshot(self):
        return None

    def _window(self, key, start_s, end_s, begin):
        mj = 10_000.0 * (end_s - start_s)
        return EnergyWindow(key, start_s, end_s, {"pkg": mj}, mj, self.source)


def test_energy_per_inference_with_idle_subtracted(store):
    cfg = fast_config(power={"sampler": "rapl", "idle_power_mw": 4000.0})
    prof = OnnxRuntimeCPUProfiler(cfg, power_sampler=TenWatts())
    model = tiny_model()
    prof.profile(model, store, per_layer=False, memory=False)
    (e,) = store.query(metric="energy_mj")
    (lat,) = store.query(metric="latency_ms", scope="model")
    # 6 W above idle for (window / runs) seconds per run
    per_run_s = e.extra["window_s"] / e.extra["runs"]
    assert e.value == pytest.approx(6000.0 * per_run_s, rel=1e-6)
    assert e.source == "test-10W" and e.extra["runs"] >= 5
    assert 0.2 * lat.value < per_run_s * 1e3 < 10 * lat.value


def test_cpu_clock_is_a_separate_fingerprint_and_source(store):
    model = tiny_model()
    wall = OnnxRuntimeCPUProfiler(fast_config())
    cpu = OnnxRuntimeCPUProfiler(fast_config(), clock="cpu")
    assert wall.fingerprint().id != cpu.fingerprint().id
    cpu.profile(model, store, memory=False, per_layer=False)
    (rec,) = store.query(model_id=model.model_id, scope="model", metric="latency_ms")
    assert rec.source == "cputime" and rec.value > 0
    assert store.get_fingerprint(rec.fingerprint_id)["clock"] == "cpu"
    with pytest.raises(InputError, match="unknown clock"):
        OnnxRuntimeCPUProfiler(fast_config(), clock="sundial")
