"""Backend name -> profiler class and availability probe, looked up lazily (nothing imported up front)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from hwnas.device_config import BACKENDS, DeviceConfig
from hwnas.errors import DeviceUnavailableError, InputError

# backend -> "module:Class" of its profiler (None: availability probe only, no profiler yet)
_PROFILERS: dict[str, str | None] = {
    "onnxruntime-cpu": "hwnas.profilers.onnxruntime_cpu:OnnxRuntimeCPUProfiler",
    "torch-cpu": "hwnas.profilers.torch_cpu:TorchCPUProfiler",
    "nvml-gpu": None,
    "jetson": None,
    "android-tflite": None,
    "tpu": None,
}
_PROBES: dict[str, str] = {
    "nvml-gpu": "hwnas.profilers.probes:probe_nvml",
    "jetson": "hwnas.profilers.probes:probe_jetson",
    "android-tflite": "hwnas.profilers.probes:probe_adb",
    "tpu": "hwnas.profilers.probes:probe_tpu",
}
assert set(_PROFILERS) == set(BACKENDS), "every backend in device_config.BACKENDS needs a registry entry"


def _load(ref: str) -> Callable:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def _local_cpu(package: str) -> Callable[[DeviceConfig], tuple[bool, str]]:
    def probe(config: DeviceConfig) -> tuple[bool, str]:
        if importlib.util.find_spec(package) is None:
            return False, f"{package} is not installed"
        return True, f"{package} on the local CPU"

    return probe


def availability(config: DeviceConfig) -> tuple[bool, str]:
    """(usable here, why or why not). Never raises for a known backend."""
    if config.backend == "onnxruntime-cpu":
        return _local_cpu("onnxruntime")(config)
    if config.backend == "torch-cpu":
        return _local_cpu("torch")(config)
    if config.backend not in _PROBES:
        return False, f"unknown backend {config.backend!r}"
    ok, why = _load(_PROBES[config.backend])(config)
    if ok and _PROFILERS[config.backend] is None:
        return False, f"{why}, but hwnas has no {config.backend} profiler yet (availability probe only)"
    return ok, why


def get_profiler(config: DeviceConfig, *, threads: int | None = None, **kwargs: Any):  # noqa: ANN201
    """The profiler (a :class:`hwnas.profilers.base.Profiler`) for ``config``'s backend.

    DeviceUnavailableError, with the reason, where it cannot run here. ``kwargs`` go to the profiler
    (``power_sampler``, ``memory_limit_bytes``).
    """
    if config.backend not in _PROFILERS:
        raise InputError(f"unknown backend {config.backend!r}", hint=f"one of {list(BACKENDS)}")
    ok, why = availability(config)
    if not ok:
        raise DeviceUnavailableError(
            f"device {config.name} ({config.backend}) is not usable here: {why}",
            hint="`hwnas devices` lists what this machine can profile",
        )
    return _load(_PROFILERS[config.backend])(config, threads=threads, **kwargs)
