"""Kernel dataset: the design stays in the sampled region; kernels are timed by real onnxruntime into a real
SQLite store, resumed without re-measuring, and an interrupt keeps what finished."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.device_config import RepeatPolicy, load_device
from hwnas.graph.kernels import KERNEL_KINDS, SAMPLING_RANGES, KernelConfig, out_of_range
from hwnas.profilers import kernel_dataset as kd
from hwnas.store import SQLiteStore

FAST = RepeatPolicy(warmup=1, min_repeats=3, max_repeats=5, target_ci_rel=0.5, max_seconds=0.05)
TINY = [
    KernelConfig("conv", cin=8, cout=16, hw=8, k=3, stride=1, act=1),
    KernelConfig("dwconv", cin=16, cout=16, hw=8, k=3, stride=2, act=2),
    KernelConfig("add", cin=8, hw=8),
    KernelConfig("se", cin=16, hw=4, squeeze=4, act=1, gate=4),
]


def test_allocate_splits_the_budget_with_a_minimum_per_kind():
    per = kd.allocate(1000)
    assert sum(per.values()) == 1000 and set(per) == set(KERNEL_KINDS)
    assert min(per.values()) >= kd.MIN_PER_KIND
    assert per["conv"] > per["reshape"]
    small = kd.allocate(10)
    assert sum(small.values()) == 10
    assert kd.allocate(7, {"conv": 1.0, "add": 0.0}, minimum=0) == {"conv": 7}


def test_initial_design_is_inside_the_sampled_ranges_distinct_and_deterministic():
    design = kd.initial_design(300, seed=3)
    assert len(design) == 300
    assert len({c.key() for c in design}) == 300
    assert {c.kind for c in design} == set(KERNEL_KINDS)
    for cfg in design:
        assert out_of_range(cfg) == [], (cfg.key(), out_of_range(cfg))
        for name, value in cfg.values().items():
            assert SAMPLING_RANGES[cfg.kind][name].contains(value), (cfg.key(), name)
    assert [c.key() for c in kd.initial_design(300, seed=3)] == [c.key() for c in design]
    assert [c.key() for c in kd.initial_design(300, seed=4)] != [c.key() for c in design]


def test_design_covers_the_ranges_on_a_log_scale():
    convs = kd.sample_kind("conv", 128, seed=0)
    hw = np.array([c.hw for c in convs])
    cout = np.array([c.cout for c in convs])
    assert hw.min() <= 8 and hw.max() >= 112  # spatial 4-224, log-spread
    assert cout.min() <= 24 and cout.max() >= 1024  # channels 8-2048
    assert {c.k for c in convs} == {1, 3, 5, 7} and {c.stride for c in convs} == {1, 2}
    assert all(c.cout % 8 == 0 for c in convs)  # channels rounded to values real nets use
    groups = kd.sample_kind("grouped_conv", 32, seed=0)
    assert all(c.cin == c.cout and c.cin % c.groups == 0 for c in groups)


def test_neighbours_stay_in_range_and_near():
    rng = np.random.default_rng(0)
    base = KernelConfig("conv", cin=64, cout=128, hw=28, k=3, stride=1, act=1)
    near = kd.neighbours(base, 6, rng, exclude={base.key()})
    assert 1 <= len(near) <= 6 and base not in near
    for c in near:
        assert c.kind == "conv" and out_of_range(c) == []
        assert 64 / 8 <= c.cin <= 64 * 8 and 28 / 8 <= c.hw <= 28 * 8


@pytest.fixture
def profiler():
    pytest.importorskip("onnxruntime")
    return kd.KernelProfiler(load_device("local-cpu"), clock="cpu", threads=1, repeat=FAST, remeasure=False)


def test_kernels_are_timed_alone_into_the_store_and_loaded_as_a_frame(profiler, tmp_path):
    with SQLiteStore(tmp_path / "k.db") as store:
        res = profiler.measure(TINY, store)
        assert [c.key() for c in res.measured] == [c.key() for c in TINY] and not res.failures
        df = kd.load_kernel_dataset(store, profiler.fingerprint_id())
    assert sorted(df["key"]) == sorted(c.key() for c in TINY)
    assert (df["latency_ms"] > 0).all() and (df["ci_high_ms"] >= df["ci_low_ms"]).all()
    assert (df["min_ms"] <= df["latency_ms"]).all() and (df["min_ms"] > 0).all()
    conv = df[df["kind"] == "conv"].iloc[0]
    assert conv["cin"] == 8 and conv["k"] == 3 and conv["f_macs"] == 16 * 8 * 9 * 64
    assert {"flagged", "qa_flags", "usable", "load_avg_1m", "body_ms"} <= set(df.columns)
    # a real-network unit and the data set's kernel are one record key: the store holds the unit key
    with SQLiteStore(tmp_path / "k.db", read_only=True) as store:
        recs = store.query(scope="unit", model_id=kd.MODEL_PREFIX + TINY[0].key())
    assert len(recs) == 1 and recs[0].layer_key.startswith("conv2d|in=1x8x8x8")
    assert recs[0].extra["qa"]["clock"] == "cpu"


def test_a_resumed_measure_times_nothing_twice(profiler, tmp_path):
    with SQLiteStore(tmp_path / "k.db") as store:
        profiler.measure(TINY[:2], store)
        n_before = len(store.query(scope="unit"))
        again = profiler.measure(TINY, store)
        assert again.skipped == 2 and [c.key() for c in again.measured] == [c.key() for c in TINY[2:]]
        assert len(store.query(scope="unit")) == n_before + 2
        assert kd.measured_keys(store, profiler.fingerprint_id()) == {c.key() for c in TINY}


def test_an_interrupted_measure_keeps_the_finished_kernels(profiler, tmp_path):
    def stop_after_second(i, n, cfg, skipped):
        if i == 2:
            raise KeyboardInterrupt

    with SQLiteStore(tmp_path / "k.db") as store:
        with pytest.raises(KeyboardInterrupt):
            profiler.measure(TINY, store, progress=stop_after_second)
        assert kd.measured_keys(store, profiler.fingerprint_id()) == {c.key() for c in TINY[:2]}
        rest = profiler.measure(TINY, store)
        assert rest.skipped == 2 and len(rest.measured) == 2


def test_a_past_deadline_measures_nothing(profiler, tmp_path):
    import time

    with SQLiteStore(tmp_path / "k.db") as store:
        res = profiler.measure(TINY, store, deadline=time.monotonic() - 1)
    assert res.measured == [] and res.stopped == "time budget"


def test_loading_an_empty_store_says_what_to_run(tmp_path):
    from hwnas.errors import InputError

    with SQLiteStore(tmp_path / "k.db") as store, pytest.raises(InputError, match="build-predictor"):
        kd.load_kernel_dataset(store, device="local-cpu")


def test_on_an_eager_backend_a_kernel_is_the_sum_of_its_units(tmp_path):
    pytest.importorskip("torch")
    torch_cpu = load_device("local-cpu-torch")
    kp = kd.KernelProfiler(torch_cpu, clock="cpu", threads=1, repeat=FAST, remeasure=False)
    with SQLiteStore(tmp_path / "k.db") as store:
        kp.measure(TINY[:1], store)  # conv + bn + relu: three kernels in eager torch
        recs = store.query(scope="unit", model_id=kd.MODEL_PREFIX + TINY[0].key())
        df = kd.load_kernel_dataset(store, kp.fingerprint_id())
        assert kp.measure(TINY[:1], store).skipped == 1
    assert len(recs) == 3 and len(df) == 1 and df["n_units"].iloc[0] == 3
    assert df["latency_ms"].iloc[0] == pytest.approx(sum(r.value for r in recs))
