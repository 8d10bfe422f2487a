"""Time one in-memory torch module on a device: the measuring function searches and tables are handed.

Searchers never import a profiler (ARCHITECTURE's dependency rules); a caller that needs measured
latency (``hwnas single-path table``, a search that checks its result on the target) builds a
``module_timer(device)`` here and passes it in as a plain ``time_module(module, input_shape, name) -> ms``.
Each call is one whole-model profile through the device's profiler (warm-up, repeats to the configured
confidence, median), written to the store like every other measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hwnas.errors import MeasurementError

TimeModule = Callable[[Any, tuple[int, ...], str], float]


def module_timer(device: str, store: Any, *, clock: str = "wall", prefix: str = "module") -> TimeModule:
    """A ``time_module`` for device config ``device`` (a name or YAML path) writing to ``store``."""
    from hwnas.device_config import load_device
    from hwnas.graph.models import from_module
    from hwnas.profilers.registry import get_profiler

    config = load_device(device)
    profiler = get_profiler(config, clock=clock)

    def time_module(module: Any, input_shape: tuple[int, ...], name: str) -> float:
        rm = from_module(
            module.eval(), tuple(input_shape), name=f"{prefix}:{name}", model_id=f"{prefix}:{name}"
        )
        res = profiler.profile(rm, store, per_layer=False, whole_model=True, memory=False, force=True)
        got = [m.value for m in res.measured if m.scope == "model" and m.metric == "latency_ms"]
        if not got:
            raise MeasurementError(
                f"the {config.name} profiler measured no latency for {name}",
                hint="; ".join(res.failures + res.notes) or None,
            )
        return float(got[-1])

    time_module.device = config.name  # type: ignore[attr-defined]
    time_module.fingerprint = profiler.fingerprint().id  # type: ignore[attr-defined]
    return time_module


@dataclass(frozen=True)
class ChainTiming:
    """One network run as a chain of modules, timed inside the run.

    ``segments_ms``: the median time of each module of the chain, read off the clock between modules of
    one forward pass (as a per-layer profiler of a whole DNN does). ``whole_ms``: the median of the same
    chain run with no clock reads in between, alternating with the segmented passes, so that both see the
    same load. ``whole_ms - sum(segments_ms)`` is what a forward pass costs outside every module.
    """

    segments_ms: tuple[float, ...]
    whole_ms: float
    samples: int


TimeChain = Callable[[Sequence[Any], tuple[int, ...], str], ChainTiming]

IN_MODEL_BACKENDS = ("torch-cpu",)


def chain_timer(device: str, *, clock: str = "cpu") -> TimeChain:
    """A ``time_chain(modules, input_shape, name)`` for device config ``device``: runs ``modules`` one
    after another on one input and times each inside the forward pass (Single-Path NAS profiles its
    per-layer runtimes this way, from whole DNNs: thesis §5.3.2). In-process torch on the CPU only; the
    device's threads, allocator and repeat policy apply."""
    import time

    import numpy as np

    from hwnas.device_config import load_device
    from hwnas.errors import InputError
    from hwnas.profilers import allocator
    from hwnas.profilers.backend import CLOCKS
    from hwnas.profilers.timing import sample_until, warm_up

    config = load_device(device)
    if config.backend not in IN_MODEL_BACKENDS:
        raise InputError(
            f"device {config.name}: in-model block timing needs an in-process CPU backend "
            f"({', '.join(IN_MODEL_BACKENDS)}), not {config.backend}",
            hint="use the isolated form (--form isolated), which times each block through the profiler",
        )
    if clock not in CLOCKS:
        raise InputError(f"clock {clock!r} is not known", hint=f"one of {', '.join(CLOCKS)}")
    now = time.process_time if clock == "cpu" else time.perf_counter
    policy = config.repeat

    def time_chain(modules: Sequence[Any], input_shape: tuple[int, ...], name: str) -> ChainTiming:
        import torch

        mods = [m.eval() for m in modules]
        x = torch.randn(*tuple(input_shape), generator=torch.Generator().manual_seed(0))
        allocator.apply(config.allocator)
        before = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        seg_samples: list[list[float]] = []
        try:
            with torch.inference_mode():

                def whole() -> None:
                    h = x
                    for m in mods:
                        h = m(h)

                def segmented() -> list[float]:
                    h, out = x, []
                    t = now()
                    for m in mods:
                        h = m(h)
                        t2 = now()
                        out.append((t2 - t) * 1e3)
                        t = t2
                    return out

                warm_up(whole, policy, now)

                def sample() -> float:
                    seg_samples.append(segmented())
                    t0 = now()
                    whole()
                    return (now() - t0) * 1e3

                samples, _, _ = sample_until(sample, policy, now)
        finally:
            torch.set_num_threads(before)
        if not samples:
            raise MeasurementError(f"timing {name} took no samples")
        seg = np.median(np.asarray(seg_samples), axis=0)
        return ChainTiming(tuple(float(v) for v in seg), float(np.median(samples)), len(samples))

    from hwnas.profilers.registry import get_profiler

    time_chain.device = config.name  # type: ignore[attr-defined]
    time_chain.fingerprint = get_profiler(config, clock=clock).fingerprint().id  # type: ignore[attr-defined]
    return time_chain
