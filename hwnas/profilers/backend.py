"""A profiler backend in three parts — builder, runner, parser — and the one registry that names them.

- A :class:`Builder` turns what is to be measured (one unit: a LayerSpec or a fused unit of the runtime's
  kernels; or the whole model) into the artefact the backend runs: an ONNX model, a torch module with its
  inputs, a ``.tflite`` file.
- A :class:`Runner` runs an artefact where it lives (in this process, on a GPU, over adb) and returns
  :class:`RawTiming`: raw per-run samples plus device readings. An in-process runner
  (:class:`InProcessRunner`) only says how to call the artefact once and hwnas times the calls here; a
  runner that times itself (a phone's ``benchmark_model``, CUDA events) overrides :meth:`Runner.time` and
  returns its own samples.
- A parser is a pure function from a tool's output (text or JSON) to plain data (``ort_profile`` for
  onnxruntime's profile JSON), tested on recordings in ``tests/profilers/recordings/``; runners call it.

The shared job loop (``hwnas.profilers.base.Profiler``) does the rest for every backend: one store write per
finished job, resume, peak memory in a child process, the energy window. Power samplers and fingerprints are
looked up here by name (``config.power.sampler``, ``Backend.fingerprint``), never by a type switch.

A new backend is one module ``hwnas/profilers/<name with - as _>.py`` that calls :func:`register_backend`
at import, plus one YAML in ``device_configs/`` naming it: :func:`get_backend` imports the module by that
convention the first time the backend is asked for.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import itertools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.device_config import DeviceConfig, RepeatPolicy
from hwnas.errors import InputError

if TYPE_CHECKING:  # the graph types are only named in signatures
    from hwnas.graph.fusion import Unit
    from hwnas.graph.models import ResolvedModel
    from hwnas.profilers.power.base import PowerSampler
    from hwnas.store.records import Fingerprint

# "wall": time.perf_counter, what a user waits for. "cpu": time.process_time, CPU time of all the
# process's threads; on a shared, oversubscribed machine wall time of a long run mostly measures the
# scheduler, CPU time measures the work (it misses waits for memory paging or I/O).
CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class RawTiming:
    """Per-run latencies in ms as a runner measured them, and what the device said meanwhile.

    ``source`` names the clock or tool (``wallclock``, ``cputime``, ``benchmark_model``, ``cuda-event``);
    ``readings`` holds device readings taken during the run (clocks, temperature, ...) as JSON-able data.
    """

    samples_ms: tuple[float, ...]
    source: str
    calls_per_sample: int = 1
    warmup: int = 0
    stop_reason: str = ""
    elapsed_s: float = 0.0
    readings: Mapping[str, Any] = field(default_factory=dict)

    def extra(self) -> dict[str, Any]:
        """What goes into a record's ``extra`` besides the statistics."""
        out: dict[str, Any] = {
            "calls_per_sample": self.calls_per_sample,
            "warmup": self.warmup,
            "stop_reason": self.stop_reason,
            "timing_elapsed_s": round(self.elapsed_s, 4),
        }
        if self.readings:
            out["readings"] = dict(self.readings)
        return out


@dataclass(frozen=True)
class Breakdown:
    """Per-layer times measured inside the whole model by the runtime's own profiler (parsed tool output).

    ``per_layer[i]`` holds one ms value per profiled run for layer index ``i``; ``kernels[i]`` names the
    runtime kernels charged to it; ``unmapped_ms`` is the per-run time of kernels that map to no layer.
    """

    per_layer: dict[int, list[float]]
    kernels: dict[int, list[str]]
    unmapped_ms: list[float]
    source: str


@dataclass(frozen=True)
class Copies:
    """One unit built several times (separate weights), run in turn: each run finds its weights out of
    cache, as a layer inside a model does (``RepeatPolicy.cold_weights_mib``). Runners that cannot cycle
    artefacts time the first."""

    artefacts: tuple[Any, ...]


class Builder(abc.ABC):
    """Turns units and whole models into the artefacts a backend's runner runs (built once, run often)."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def unit(self, unit: Unit) -> Any:
        """The artefact that runs ``unit`` (one layer or a fused chain) alone."""

    @abc.abstractmethod
    def model(self, model: ResolvedModel, workdir: Path) -> Any:
        """The artefact that runs the whole model; ``workdir`` lives as long as the profile."""

    def copies(self, unit: Unit, n: int) -> Copies:
        """``n`` artefacts of ``unit`` with separate weights, for cold-weight timing; backends whose
        artefacts carry their inputs share one input between copies (inside a model the input is the
        output its producer just wrote: warm)."""
        return Copies(tuple(self.unit(unit) for _ in range(n)))

    def check_model(self, model: ResolvedModel) -> None:  # noqa: B027 - optional hook
        """Raise InputError before any job runs when this backend cannot run ``model`` whole."""


class Runner(abc.ABC):
    """Runs artefacts where they live and reports raw timings; one per profile, built by the backend."""

    #: clocks this runner can time with (a self-timing tool has only its own)
    clocks: tuple[str, ...] = CLOCKS
    #: whether :meth:`memory_job` gives a peak-memory job (else the profile notes that none was measured)
    peak_memory: bool = False

    def __init__(self, config: DeviceConfig, *, threads: int, clock: str | None = None) -> None:
        clock = clock or self.clocks[0]
        if clock not in self.clocks:
            raise InputError(
                f"unknown clock {clock!r} for backend {config.backend}",
                hint=f"its runner times with: {', '.join(self.clocks)}",
            )
        self.config = config
        self.threads = threads
        self.clock = clock

    @property
    def source(self) -> str:
        """The record ``source`` of this runner's timings."""
        return {"wall": "wallclock", "cpu": "cputime"}.get(self.clock, self.clock)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Held for a whole profile: pin threads, open a connection, ... (restored afterwards)."""
        yield

    @abc.abstractmethod
    def time(self, artefact: Any, mode: str, policy: RepeatPolicy) -> RawTiming:
        """Run ``artefact`` under ``policy`` (warm-up, repeats) and return its samples."""

    @abc.abstractmethod
    def run_for(self, artefact: Any, mode: str, *, min_runs: int, min_seconds: float) -> int:
        """Run back to back for at least ``min_runs`` runs and ``min_seconds``; the number of runs
        (the energy window brackets this call)."""

    def memory_job(self, artefact: Any, mode: str, workdir: Path) -> tuple[str, dict[str, Any]] | None:
        """(``module:function``, JSON kwargs) that runs the model in the peak-memory child (set
        ``peak_memory = True`` when overriding it)."""
        return None

    def breakdown(self, artefact: Any, model: ResolvedModel, mode: str) -> Breakdown | None:
        """Per-layer times inside the whole model, where the runtime can say (None: it cannot)."""
        return None


class InProcessRunner(Runner):
    """A runner whose artefacts run in this Python process: it gives a callable and hwnas times it here."""

    @abc.abstractmethod
    def callable(self, artefact: Any, mode: str) -> Callable[[], object]:
        """A zero-argument callable doing one whole run of ``artefact`` (synchronised if asynchronous)."""

    def _cycled(self, artefact: Any, mode: str) -> Callable[[], object]:
        if not isinstance(artefact, Copies):
            return self.callable(artefact, mode)
        fns = [self.callable(a, mode) for a in artefact.artefacts]
        turn = itertools.cycle(fns)
        return lambda: next(turn)()

    def time(self, artefact: Any, mode: str, policy: RepeatPolicy) -> RawTiming:
        from hwnas.profilers import timing

        kw = {"clock": time.process_time} if self.clock == "cpu" else {}
        res = timing.measure(self._cycled(artefact, mode), policy, **kw)
        return RawTiming(res.stats.samples, self.source, res.calls_per_sample, res.warmup, res.stop_reason,
                         res.elapsed_s)  # fmt: skip

    def run_for(self, artefact: Any, mode: str, *, min_runs: int, min_seconds: float) -> int:
        fn = self._cycled(artefact, mode)
        n, t0 = 0, time.perf_counter()
        while n < min_runs or time.perf_counter() - t0 < min_seconds:
            fn()
            n += 1
        return n


Probe = Callable[[DeviceConfig], "tuple[bool, str]"]


@dataclass(frozen=True)
class Backend:
    """What :func:`register_backend` records: how to build, run, probe and fingerprint one backend.

    ``fusion`` names the rule set of :mod:`hwnas.graph.fusion` that says which layers the runtime runs as
    one kernel; ``fingerprint`` names a function registered with :func:`register_fingerprint`;
    ``profiler`` is the :class:`hwnas.profilers.base.Profiler` subclass to instantiate (None: the base).
    """

    name: str
    builder: Callable[[DeviceConfig], Builder]
    runner: Callable[..., Runner]  # (config, *, threads, clock) -> Runner
    probe: Probe
    versions: Callable[[], dict[str, str | None]]
    modes: tuple[str, ...] = ("inference",)
    fusion: str = "none"
    fingerprint: str = "local-cpu"
    profiler: type | None = None
    description: str = ""


_BACKENDS: dict[str, Backend] = {}
# "name" -> factory(config) -> PowerSampler, or "module:function" resolved on first use
_POWER_SAMPLERS: dict[str, Callable[[DeviceConfig], PowerSampler] | str] = {
    "rapl": "hwnas.profilers.power.rapl:from_config",
}
# "name" -> fn(config, versions, threads) -> Fingerprint, or "module:function"
_FINGERPRINTS: dict[str, Callable[..., Fingerprint] | str] = {
    "local-cpu": "hwnas.profilers.fingerprint:local_fingerprint",
}


def _resolve(ref: Callable | str) -> Callable:
    if callable(ref):
        return ref
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def backend_module(name: str) -> str:
    """The module that registers backend ``name``: ``nvml-gpu`` -> ``hwnas.profilers.nvml_gpu``."""
    return "hwnas.profilers." + re.sub(r"[^A-Za-z0-9_]", "_", name)


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` known under ``backend.name`` (registering a name again replaces it)."""
    _BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend | None:
    """The registered backend ``name``, importing its module by convention on first use; None if none."""
    if name not in _BACKENDS:
        try:
            importlib.import_module(backend_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != backend_module(name):  # the module exists but one of its imports is missing
                raise
    return _BACKENDS.get(name)


def registered_backends() -> list[str]:
    return sorted(_BACKENDS)


def register_power_sampler(name: str, factory: Callable[[DeviceConfig], PowerSampler] | str) -> None:
    """Make ``power.sampler: <name>`` in a device config build a sampler with ``factory(config)``."""
    _POWER_SAMPLERS[name] = factory


def power_sampler_for(config: DeviceConfig) -> PowerSampler | None:
    """The sampler ``config.power.sampler`` names, or None for ``none`` or a sampler no module provides."""
    name = config.power.sampler
    if name in ("", "none") or name not in _POWER_SAMPLERS:
        return None
    return _resolve(_POWER_SAMPLERS[name])(config)


def power_samplers() -> list[str]:
    return sorted(_POWER_SAMPLERS)


def register_fingerprint(name: str, fn: Callable[..., Fingerprint] | str) -> None:
    """Register ``fn(config, versions, *, threads) -> Fingerprint`` as ``name`` (``Backend.fingerprint``)."""
    _FINGERPRINTS[name] = fn


def fingerprint_for(backend: Backend, config: DeviceConfig, *, threads: int) -> Fingerprint:
    """The fingerprint of ``config`` on ``backend``, from the function the backend names."""
    if backend.fingerprint not in _FINGERPRINTS:
        raise InputError(
            f"backend {backend.name} names fingerprint {backend.fingerprint!r}, which nothing registered",
            hint=f"registered: {', '.join(sorted(_FINGERPRINTS))}",
        )
    return _resolve(_FINGERPRINTS[backend.fingerprint])(config, backend.versions(), threads=threads)
