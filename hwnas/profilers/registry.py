"""Backend name -> profiler and availability, through the one backend registry (nothing imported up front).

A backend with a module (``hwnas/profilers/<name>.py`` calling ``register_backend``) is probed and built
from its registration. The backends named in ``hwnas.device_config.BACKENDS`` that have no module yet keep
an availability probe here (``probes``), so ``hwnas devices`` can say whether their hardware is present.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from hwnas.device_config import BACKENDS, DeviceConfig
from hwnas.errors import DeviceUnavailableError, InputError
from hwnas.profilers.backend import get_backend

# Probes for backends whose profiler module is not written yet ("module:function").
_PROBES: dict[str, str] = {
    "nvml-gpu": "hwnas.profilers.probes:probe_nvml",
    "jetson": "hwnas.profilers.probes:probe_jetson",
    "android-tflite": "hwnas.profilers.probes:probe_adb",
    "tpu": "hwnas.profilers.probes:probe_tpu",
}


def _load(ref: str) -> Callable:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def availability(config: DeviceConfig) -> tuple[bool, str]:
    """(usable here, why or why not). Never raises for a known backend."""
    backend = get_backend(config.backend)
    if backend is not None:
        return backend.probe(config)
    if config.backend not in _PROBES:
        return False, f"unknown backend {config.backend!r}"
    ok, why = _load(_PROBES[config.backend])(config)
    if ok:
        return False, f"{why}, but hwnas has no {config.backend} profiler yet (availability probe only)"
    return ok, why


def get_profiler(config: DeviceConfig, *, threads: int | None = None, **kwargs: Any):  # noqa: ANN201
    """The profiler (a :class:`hwnas.profilers.base.Profiler`) for ``config``'s backend.

    DeviceUnavailableError, with the reason, where it cannot run here. ``kwargs`` go to the profiler
    (``power_sampler``, ``memory_limit_bytes``, ``clock``).
    """
    backend = get_backend(config.backend)
    if backend is None and config.backend not in _PROBES:
        raise InputError(f"unknown backend {config.backend!r}", hint=f"one of {list(BACKENDS)}")
    ok, why = availability(config)
    if not ok:
        raise DeviceUnavailableError(
            f"device {config.name} ({config.backend}) is not usable here: {why}",
            hint="`hwnas devices` lists what this machine can profile",
        )
    assert backend is not None  # availability() is False for every backend without a registration
    from hwnas.profilers.base import Profiler

    cls = backend.profiler or Profiler
    return cls(config, threads=threads, **kwargs)
