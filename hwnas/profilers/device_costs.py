"""Costs of a search-space point measured on a device: what a training objective's ``cost_fn`` is.

HyperPower measures power and memory of a candidate before training it (thesis §3.2: they do not change
as the network trains). :func:`device_cost_fn` returns that step for one device: it profiles the built
torch module whole (no per-layer jobs) with the device's profiler, records into the store, and returns
the costs under the names constraints use (``latency_ms``, ``memory_mb``, ``energy_mj``, ``power_mw``).
It fails early, with the reason, when a constrained cost cannot be measured on the device.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hwnas.errors import DeviceUnavailableError, InputError, MeasurementError

DEVICE_COSTS = ("latency_ms", "memory_mb", "power_mw", "energy_mj")
POWER_COSTS = ("power_mw", "energy_mj")


def device_cost_fn(
    device: str, cost_names: Sequence[str], store: Any, *, model_name: str = "hyperpower-cnn"
) -> Callable[[Mapping[str, Any], Any, tuple[int, ...]], dict[str, float]]:
    """``measure(config, module, input_shape) -> costs`` on ``device`` (a device-config name).

    Power/energy need a power sensor (RAPL, NVML, rails), which a VM usually lacks: asking for them
    there raises :class:`~hwnas.errors.DeviceUnavailableError` before any work."""
    from hwnas.device_config import load_device
    from hwnas.graph.models import from_module
    from hwnas.profilers.registry import get_profiler

    unknown = [c for c in cost_names if c not in DEVICE_COSTS]
    if unknown:
        raise InputError(
            f"device {device} cannot measure {unknown}", hint=f"device costs: {', '.join(DEVICE_COSTS)}"
        )
    config = load_device(device)
    profiler = get_profiler(config)
    if any(c in POWER_COSTS for c in cost_names):
        sampler = profiler.power_sampler()
        ok, why = sampler.available() if sampler is not None else (False, "its config names no power sampler")
        if not ok:
            raise DeviceUnavailableError(
                f"device {config.name} cannot measure power: {why}",
                hint="drop the power constraint (latency and memory work here), or use a device with a power "
                "sensor (RAPL on bare metal, an NVIDIA GPU, a Jetson board)",
            )
    want_memory = "memory_mb" in cost_names

    def measure(cfg: Mapping[str, Any], module: Any, input_shape: tuple[int, ...]) -> dict[str, float]:
        key = hashlib.sha1(json.dumps(dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:10]
        rm = from_module(module.eval(), input_shape, name=model_name, model_id=f"{model_name}:{key}")
        res = profiler.profile(rm, store, per_layer=False, whole_model=True, memory=want_memory, force=True)
        got = {m.metric: float(m.value) for m in res.measured if m.scope == "model"}
        costs: dict[str, float] = {}
        if "latency_ms" in got:
            costs["latency_ms"] = got["latency_ms"]
        if "peak_memory_bytes" in got:
            costs["memory_mb"] = got["peak_memory_bytes"] / 1e6
        if "energy_mj" in got:
            costs["energy_mj"] = got["energy_mj"]
            if got.get("latency_ms"):
                costs["power_mw"] = got["energy_mj"] / (got["latency_ms"] / 1e3)  # mJ / s = mW
        if "power_mw" in got:  # sampled backends (NVML, Jetson rails) measure average power directly
            costs["power_mw"] = got["power_mw"]
        missing = [c for c in cost_names if c not in costs]
        if missing:
            raise MeasurementError(
                f"the {device} profiler did not measure {missing} for {rm.model_id}",
                hint="; ".join(res.failures + res.notes) or None,
            )
        return costs

    return measure


def stored_cost_fn(
    device: str, store: Any, *, want_energy: bool, clock: str | None = None, model_name: str = "adaptive-net"
) -> tuple[Callable[[Mapping[str, Any], Any, tuple[int, ...]], dict[str, float]], bool, Any]:
    """``(measure, has_energy, config)``: whole-model ``latency_ms`` (and ``energy_mj`` where the device
    has a readable power sensor and ``want_energy``) of a torch module on ``device``.

    Unlike :func:`device_cost_fn` it resumes: a network already in the store is read back, not measured
    again (the adaptive-DNN search prices the same networks in every θ sweep and every rerun)."""
    from hwnas.device_config import load_device
    from hwnas.graph.models import from_module
    from hwnas.profilers.registry import availability, get_profiler

    config = load_device(device)
    ok, why = availability(config)
    if not ok:
        raise DeviceUnavailableError(f"device {config.name} is not usable here: {why}")
    profiler = get_profiler(config, **({"clock": clock} if clock else {}))
    has_energy = False
    if want_energy:
        sampler = profiler.power_sampler()
        has_energy = bool(sampler is not None and sampler.available()[0])

    def measure(cfg: Mapping[str, Any], module: Any, input_shape: tuple[int, ...]) -> dict[str, float]:
        key = hashlib.sha1(json.dumps(dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:10]
        rm = from_module(module.eval(), input_shape, name=model_name, model_id=f"{model_name}:{key}")
        profiler.profile(rm, store, per_layer=False, whole_model=True, memory=False)
        records = store.query(model_id=rm.model_id, scope="model", device=config.name)
        got = {m.metric: float(m.value) for m in records}
        if "latency_ms" not in got:
            raise InputError(f"device {config.name} measured no latency for {rm.model_id}")
        return {k: v for k, v in got.items() if k in ("latency_ms", "energy_mj")}

    return measure, has_energy, config
