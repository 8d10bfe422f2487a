"""The CUDA-event timing loop, run with host-clock events (the GPU path itself is a `gpu`-marked test)."""

from __future__ import annotations

import time

import pytest

from hwnas.device_config import RepeatPolicy
from hwnas.profilers.cuda_timing import HostEvent, measure_events


def test_event_loop_warms_up_syncs_and_converges():
    calls, syncs = [], []

    def fn():
        calls.append(1)
        time.sleep(0.001)

    pol = RepeatPolicy(warmup=3, min_repeats=5, max_repeats=40, target_ci_rel=0.5, max_seconds=2.0)
    r = measure_events(fn, pol, event_factory=HostEvent, synchronize=lambda: syncs.append(1))
    assert r.warmup == 3 and len(syncs) >= 2 and r.calls_per_sample == 1
    assert 0.9 <= r.stats.median <= 5.0  # ~1 ms per call on a loaded VM
    assert r.stop_reason == "ci" and r.stats.n >= 5
    assert len(calls) >= 3 + r.stats.n


def test_fast_calls_are_batched_per_sample():
    pol = RepeatPolicy(warmup=1, min_repeats=5, max_repeats=10, target_ci_rel=0.9, max_seconds=1.0)
    r = measure_events(lambda: None, pol, event_factory=HostEvent, synchronize=lambda: None)
    assert r.calls_per_sample >= 10


def test_unrecorded_event_is_an_error():
    with pytest.raises(RuntimeError):
        HostEvent().elapsed_time(HostEvent())


@pytest.mark.gpu
def test_cuda_events_time_a_matmul_on_a_real_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    a = torch.randn(2048, 2048, device="cuda")
    pol = RepeatPolicy(warmup=5, min_repeats=10, max_repeats=50, target_ci_rel=0.05, max_seconds=2.0)
    r = measure_events(lambda: a @ a, pol)
    assert r.stats.median > 0
