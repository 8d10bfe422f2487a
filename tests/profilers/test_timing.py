import math

import numpy as np
import pytest
from scipy.stats import binom

from hwnas.device_config import RepeatPolicy
from hwnas.profilers.timing import measure, median_ci, summarize


def test_median_ci_order_statistics_cover_median_with_95_percent():
    n = 50
    lo, hi = median_ci(np.arange(1, n + 1, dtype=float))
    l_rank, u_rank = int(lo), int(hi)  # sample i has value i, so values are the 1-based ranks
    assert u_rank == n - l_rank + 1
    coverage = binom.cdf(u_rank - 1, n, 0.5) - binom.cdf(l_rank - 1, n, 0.5)
    assert coverage >= 0.95
    # the next narrower pair would fall under 95 %
    assert binom.cdf(u_rank - 2, n, 0.5) - binom.cdf(l_rank, n, 0.5) < 0.95


def test_median_ci_small_samples_use_full_range():
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert all(math.isnan(v) for v in median_ci([]))


def test_median_ci_covers_true_median_about_95_percent():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        x = rng.lognormal(0.0, 1.0, size=31)  # true median = 1
        lo, hi = median_ci(x)
        hits += lo <= 1.0 <= hi
    assert 0.92 <= hits / 400 <= 0.995


def test_summarize_keeps_every_sample():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.median == 3.0 and s.n == 5 and s.samples == (1.0, 2.0, 3.0, 4.0, 100.0)
    assert s.iqr == pytest.approx(2.0)
    with pytest.raises(ValueError):
        summarize([])


class FakeClock:
    """A clock that each fn() call advances by a scripted duration."""

    def __init__(self, durations):
        self.t = 0.0
        self.durations = iter(durations)

    def __call__(self):
        return self.t

    def work(self):
        self.t += next(self.durations)


def test_measure_stops_on_ci_when_stable():
    clock = FakeClock([0.001] * 10_000)
    policy = RepeatPolicy(warmup=2, min_repeats=10, max_repeats=200, target_ci_rel=0.02, max_seconds=100)
    res = measure(clock.work, policy, min_sample_s=0, clock=clock)
    assert res.stop_reason == "ci" and res.stats.n == 10
    assert res.stats.median == pytest.approx(1.0)


def test_measure_hits_max_repeats_when_noisy():
    rng = np.random.default_rng(1)
    clock = FakeClock(rng.uniform(0.001, 0.01, size=10_000))
    policy = RepeatPolicy(warmup=0, min_repeats=10, max_repeats=40, target_ci_rel=0.001, max_seconds=100)
    res = measure(clock.work, policy, min_sample_s=0, clock=clock)
    assert res.stop_reason == "max_repeats" and res.stats.n == 40
    assert len(res.stats.samples) == 40


def test_measure_hits_max_seconds():
    clock = FakeClock(np.random.default_rng(2).uniform(0.1, 0.5, size=10_000))
    policy = RepeatPolicy(warmup=0, min_repeats=5, max_repeats=1000, target_ci_rel=0.0001, max_seconds=3.0)
    res = measure(clock.work, policy, min_sample_s=0, clock=clock)
    assert res.stop_reason == "max_seconds"
    assert 5 <= res.stats.n < 1000


def test_measure_batches_fast_calls_real_clock():
    calls = []
    policy = RepeatPolicy(warmup=1, min_repeats=5, max_repeats=5, target_ci_rel=0.5, max_seconds=1)
    res = measure(lambda: calls.append(1), policy, min_sample_s=1e-4)
    assert res.calls_per_sample > 1  # an empty lambda lasts far less than 0.1 ms
    assert res.stats.median < 0.1


def test_warmup_is_capped_by_max_seconds_for_slow_calls():
    clock = FakeClock([2.0] * 100)  # each call "takes" 2 s
    policy = RepeatPolicy(warmup=10, min_repeats=3, max_repeats=50, target_ci_rel=0.001, max_seconds=3.0)
    res = measure(clock.work, policy, min_sample_s=0, clock=clock)
    calls = 100 - sum(1 for _ in clock.durations)
    assert calls == 2 + res.stats.n  # two warm-up calls reach 3 s; then the min_repeats
    assert res.stats.n == 3 and res.warmup == 2
