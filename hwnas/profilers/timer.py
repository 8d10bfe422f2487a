"""Time one in-memory torch module on a device: the measuring function searches and tables are handed.

Searchers never import a profiler (ARCHITECTURE's dependency rules); a caller that needs measured
latency (``hwnas single-path table``, a search that checks its result on the target) builds a
``module_timer(device)`` here and passes it in as a plain ``time_module(module, input_shape, name) -> ms``.
Each call is one whole-model profile through the device's profiler (warm-up, repeats to the configured
confidence, median), written to the store like every other measurement.
"""

from __future__ import annotations

from collections.abc import Callable
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
