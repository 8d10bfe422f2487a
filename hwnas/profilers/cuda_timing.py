"""Latency of asynchronous GPU work with CUDA events: warm-up, synchronisation, adaptive repeats.

A CUDA kernel launch returns before the kernel runs, so host clocks time the launch, not the work. Each
sample here records a start and an end event on the stream around ``k`` back-to-back calls, synchronises on
the end event and reads ``start.elapsed_time(end)`` (ms, GPU clock, ~0.5 µs resolution). Warm-up calls run
first (cuDNN autotuning, allocator growth, lazy module loading) and the device is synchronised before any
sample. The stopping rule is the CPU backends' (:mod:`hwnas.profilers.timing`): the 95 % CI of the median
within ``target_ci_rel``, or ``max_repeats`` / ``max_seconds``.

``event_factory`` and ``synchronize`` default to ``torch.cuda.Event(enable_timing=True)`` and
``torch.cuda.synchronize``; tests pass host-clock stand-ins to check the loop itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hwnas.device_config import RepeatPolicy
from hwnas.profilers.timing import TimingResult, sample_until, summarize, warm_up

# One sample should last at least this long on the GPU: launch overhead and event resolution (~0.5 µs)
# stay small against it.
MIN_SAMPLE_MS = 0.2


def _torch_events(device: Any = None) -> tuple[Callable[[], Any], Callable[[], None]]:
    import torch

    def factory() -> Any:
        return torch.cuda.Event(enable_timing=True)

    def sync() -> None:
        torch.cuda.synchronize(device)

    return factory, sync


def _sample_ms(fn: Callable[[], object], k: int, factory: Callable[[], Any]) -> float:
    start, end = factory(), factory()
    start.record()
    for _ in range(k):
        fn()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end)) / k


def measure_events(
    fn: Callable[[], object],
    policy: RepeatPolicy,
    *,
    event_factory: Callable[[], Any] | None = None,
    synchronize: Callable[[], None] | None = None,
    min_sample_ms: float = MIN_SAMPLE_MS,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingResult:
    """Time ``fn()`` (which launches GPU work and need not synchronise) with CUDA events under ``policy``."""
    if event_factory is None or synchronize is None:
        f, s = _torch_events()
        event_factory, synchronize = event_factory or f, synchronize or s
    warmed = warm_up(fn, policy, clock)
    synchronize()
    k = 1
    while k < 10_000 and _sample_ms(fn, k, event_factory) * k < min_sample_ms:
        k *= 10
    synchronize()
    samples, stop, start = sample_until(lambda: _sample_ms(fn, k, event_factory), policy, clock)
    return TimingResult(summarize(samples), k, warmed, stop, clock() - start)


class HostEvent:
    """A host-clock stand-in with CUDA events' interface (``record``, ``synchronize``, ``elapsed_time``),
    for running the event loop where there is no GPU (tests, the fake-NVML path). Not a GPU timing."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.t: float | None = None

    def record(self, stream: Any = None) -> None:
        self.t = self._clock()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: HostEvent) -> float:
        if self.t is None or end.t is None:
            raise RuntimeError("both events must be recorded before elapsed_time")
        return (end.t - self.t) * 1e3
