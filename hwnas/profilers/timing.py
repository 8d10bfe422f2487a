"""Latency as a distribution: warm-up, adaptive repeats, median / IQR / distribution-free 95 % CI.

Latencies are skewed (a long right tail from interrupts and cache misses), so the summary is the median
and its confidence interval comes from binomial order statistics, which assume nothing about the shape
of the distribution: with ``n`` sorted samples, ``[x_(l), x_(n-l+1)]`` covers the median with probability
``1 - 2 * P(Binomial(n, 1/2) < l)``. Repeats stop when that interval is narrow enough relative to the
median (``repeat.target_ci_rel``), or when ``max_repeats`` / ``max_seconds`` is hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from hwnas.device_config import RepeatPolicy
from hwnas.store.records import Stats

# Fast calls (a few microseconds) are dominated by timer and dispatch noise; each sample then averages
# several back-to-back calls so that one sample lasts at least this long.
MIN_SAMPLE_S = 1e-4
# How often the stopping rule is checked once min_repeats samples exist (checking sorts the samples).
_CHECK_EVERY = 5


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (binomial with p = 1/2).

    Below 6 samples no pair of order statistics reaches 95 % coverage; the full range is returned.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        return (math.nan, math.nan)
    alpha = 1.0 - confidence
    # Largest l (1-based) with P(B <= l-1) <= alpha/2, i.e. P(B < l) <= alpha/2.
    l_rank = int(binom.ppf(alpha / 2.0, n, 0.5))
    if l_rank >= 1 and binom.cdf(l_rank - 1, n, 0.5) > alpha / 2.0:
        l_rank -= 1
    if l_rank < 1:
        return (float(x[0]), float(x[-1]))
    u_rank = n - l_rank + 1
    return (float(x[l_rank - 1]), float(x[u_rank - 1]))


def summarize(samples: Sequence[float], confidence: float = 0.95) -> Stats:
    """Median, mean, std, IQR and the median's CI; every sample is kept in ``Stats.samples``."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("summarize() needs at least one sample")
    q1, q3 = np.percentile(x, [25, 75])
    lo, hi = median_ci(x, confidence)
    return Stats(
        median=float(np.median(x)),
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        iqr=float(q3 - q1),
        ci_low=lo,
        ci_high=hi,
        n=int(x.size),
        samples=tuple(float(v) for v in x),
    )


@dataclass(frozen=True)
class TimingResult:
    """Stats in milliseconds plus how they were obtained (kept in the record's ``extra``)."""

    stats: Stats
    calls_per_sample: int
    warmup: int
    stop_reason: str  # "ci" | "max_repeats" | "max_seconds"
    elapsed_s: float

    def extra(self) -> dict[str, object]:
        return {
            "calls_per_sample": self.calls_per_sample,
            "warmup": self.warmup,
            "stop_reason": self.stop_reason,
            "timing_elapsed_s": round(self.elapsed_s, 4),
        }


def _calls_per_sample(fn: Callable[[], object], min_sample_s: float) -> int:
    """Smallest power of ten of back-to-back calls that lasts ``min_sample_s`` (like timeit.autorange)."""
    k = 1
    while k < 10_000:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        if time.perf_counter() - t0 >= min_sample_s:
            return k
        k *= 10
    return k


def measure(
    fn: Callable[[], object],
    policy: RepeatPolicy,
    *,
    min_sample_s: float = MIN_SAMPLE_S,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingResult:
    """Time ``fn()`` under ``policy``; samples are per-call milliseconds.

    ``fn`` must do the whole unit of work (and synchronise if the device is asynchronous). The thread
    count is whatever the caller fixed beforehand (the profiler sets and records it). Warm-up stops
    early once it has lasted ``max_seconds`` (at least one call), so slow models do not warm up for ages.
    """
    warmed = warm_up(fn, policy, clock)
    k = _calls_per_sample(fn, min_sample_s) if min_sample_s > 0 else 1

    def sample() -> float:
        t0 = clock()
        for _ in range(k):
            fn()
        return (clock() - t0) * 1e3 / k

    samples, stop, start = sample_until(sample, policy, clock)
    return TimingResult(summarize(samples), k, warmed, stop, clock() - start)


def warm_up(fn: Callable[[], object], policy: RepeatPolicy, clock: Callable[[], float]) -> int:
    """Call ``fn`` ``policy.warmup`` times, stopping early once warm-up has lasted ``max_seconds`` (a slow
    model is warm enough by then); returns the calls made."""
    t_warm, warmed = clock(), 0
    for _ in range(policy.warmup):
        fn()
        warmed += 1
        if clock() - t_warm >= policy.max_seconds:
            break
    return warmed


def sample_until(
    sample: Callable[[], float], policy: RepeatPolicy, clock: Callable[[], float]
) -> tuple[list[float], str, float]:
    """The adaptive repeat rule every timer shares: take samples until the median's CI is within
    ``target_ci_rel``, or ``max_seconds`` / ``max_repeats`` is hit. Returns (samples, why it stopped,
    start time on ``clock``)."""
    samples: list[float] = []
    start = clock()
    stop = "max_repeats"
    while len(samples) < policy.max_repeats:
        samples.append(sample())
        n = len(samples)
        if n >= policy.min_repeats and (n - policy.min_repeats) % _CHECK_EVERY == 0:
            lo, hi = median_ci(samples)
            med = float(np.median(samples))
            if med > 0 and (hi - lo) / 2.0 / med <= policy.target_ci_rel:
                stop = "ci"
                break
        if n >= policy.min_repeats and clock() - start >= policy.max_seconds:
            stop = "max_seconds"
            break
    return samples, stop, start
