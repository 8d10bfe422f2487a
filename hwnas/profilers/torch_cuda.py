"""torch on an NVIDIA GPU (discrete or Jetson): builder, CUDA-event runner and the sampled-energy profiler.

Shared by the ``nvml-gpu`` and ``jetson`` backends, which differ only in their power source and the device
readings recorded with each window (NVML vs. Tegra sysfs).

- **Builder**: the torch modules of units (torch eager runs every module as its own kernels: fusion
  ``none``) and of the whole model, moved to the CUDA device with their inputs; batch size from the model's
  input shape (``--batch-size``, else the device config's ``batch_size``).
- **Runner**: launches without synchronising and times with CUDA events (:mod:`hwnas.profilers.cuda_timing`,
  warm-up then a device synchronise); inference and training step (forward + backward). Every timing also
  records the device's readings before and after (clocks, temperature, throttle reasons, memory) and
  ``torch.cuda.max_memory_allocated``. ``connection.torch_device: cpu`` runs the same path on the CPU with
  host-clock events (source ``wallclock``): only for testing the NVML/rail path on machines without CUDA.
- **Profiler**: peak memory is read in-process from the CUDA caching allocator (``max_memory_allocated``
  after ``reset_peak_memory_stats``) plus NVML's device/process figures where the backend has them; energy
  follows :mod:`hwnas.profilers.power.energy` (idle baseline once per profiler, windows of at least
  max(1 s, 10 sensor periods), counter cross-check) and writes ``energy_mj`` (per inference, total; dynamic
  in ``extra``) and ``power_mw`` (window average) records. A window during which the GPU throttled is
  flagged in the records and the profile's notes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig, RepeatPolicy
from hwnas.errors import DeviceUnavailableError, HwnasError, InputError, MeasurementError
from hwnas.graph.fusion import Unit
from hwnas.profilers.backend import InProcessRunner, RawTiming
from hwnas.profilers.base import Profiler, ProfileResult, _Job
from hwnas.profilers.torch_cpu import TorchArtefact, TorchBuilder, make_runner
from hwnas.store.records import Measurement


def torch_device(config: DeviceConfig) -> str:
    """``connection.torch_device`` (``cuda``, ``cuda:1``, ``cpu``); default ``cuda``."""
    dev = str(config.connection.get("torch_device", "cuda"))
    if not (dev == "cpu" or dev == "cuda" or dev.startswith("cuda:")):
        raise InputError(
            f"{config.source_path}: field 'connection.torch_device': expected cuda, cuda:N or cpu, "
            f"got {dev!r}"
        )
    return dev


def cuda_probe(config: DeviceConfig) -> tuple[bool, str]:
    """torch importable and (unless torch_device is cpu) a CUDA device visible to it."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    dev = torch_device(config)
    if dev == "cpu":
        return True, "torch on the CPU (connection.torch_device: cpu; host-clock timing, for tests)"
    import torch

    if not torch.cuda.is_available():
        return False, (f"torch {torch.__version__} sees no CUDA device (CPU-only build, no driver, or "
                       "CUDA_VISIBLE_DEVICES hides it)")  # fmt: skip
    return True, f"CUDA device {torch.cuda.get_device_name(torch.device(dev))}"


def torch_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"torch": importlib.metadata.version("torch")}
    try:
        import torch

        out["cuda"] = torch.version.cuda
        out["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    except Exception:  # noqa: BLE001 - a version query must never break a probe
        pass
    return out


class CudaTorchBuilder(TorchBuilder):
    """TorchBuilder's artefacts, on the config's CUDA device."""

    def _to(self, art: TorchArtefact) -> TorchArtefact:
        dev = torch_device(self.config)
        return TorchArtefact(art.module.to(dev), tuple(x.to(dev) for x in art.inputs))

    def unit(self, unit: Unit) -> TorchArtefact:
        return self._to(super().unit(unit))

    def model(self, model: Any, workdir: Path) -> TorchArtefact:
        return self._to(super().model(model, workdir))


@dataclass
class Readings:
    """What a backend reads from its device around a window: ``state()`` a dict; ``track_*`` optional."""

    state: Callable[[], dict[str, Any]]
    track_begin: Callable[[], None] | None = None
    track_end: Callable[[], dict[str, Any]] | None = None


class CudaRunner(InProcessRunner):
    """Runs torch artefacts on the GPU, times them with CUDA events, records device readings."""

    clocks = ("wall",)  # "wall" here means elapsed GPU time between CUDA events

    def __init__(self, config: DeviceConfig, *, threads: int, clock: str = "wall") -> None:
        super().__init__(config, threads=threads, clock=clock)
        self.device = torch_device(config)
        self.readings: Readings | None = None  # set by the profiler once its device is open
        self.peak_memory = self.device != "cpu"  # the CUDA caching allocator's peak; none on the CPU path

    @property
    def source(self) -> str:
        return "cuda-event" if self.device != "cpu" else "wallclock"

    def synchronize(self) -> None:
        if self.device != "cpu":
            import torch

            torch.cuda.synchronize(self.device)

    def callable(self, artefact: TorchArtefact, mode: str) -> Callable[[], object]:
        return make_runner(artefact.module, artefact.inputs, mode)  # launches only: no synchronise

    def _state(self) -> dict[str, Any]:
        out = dict(self.readings.state()) if self.readings is not None else {}
        if self.device != "cpu":
            import torch

            out["torch_max_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        return out

    def time(self, artefact: TorchArtefact, mode: str, policy: RepeatPolicy) -> RawTiming:
        from hwnas.profilers.cuda_timing import HostEvent, measure_events

        fn = self.callable(artefact, mode)
        before = self._state()
        if self.device == "cpu":
            res = measure_events(fn, policy, event_factory=HostEvent, synchronize=lambda: None)
        else:
            res = measure_events(fn, policy, synchronize=self.synchronize)
        after = self._state()
        return RawTiming(res.stats.samples, self.source, res.calls_per_sample, res.warmup, res.stop_reason,
                         res.elapsed_s, readings={"before": before, "after": after})  # fmt: skip

    def run_for(self, artefact: TorchArtefact, mode: str, *, min_runs: int, min_seconds: float) -> int:
        n = super().run_for(artefact, mode, min_runs=min_runs, min_seconds=min_seconds)
        self.synchronize()
        return n

    def memory_job(self, artefact: Any, mode: str, workdir: Path) -> None:
        return None  # GPU memory is read in-process (CudaProfiler._memory_record_job)


class CudaProfiler(Profiler):
    """The shared job loop, with GPU memory from the CUDA allocator and sampled energy windows.

    Subclasses provide ``_open_device()`` -> (PowerSource with ``available()``-style check, Readings)."""

    def __init__(self, config: DeviceConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._meter: Any = None
        self._readings: Readings | None = None
        self._device_error: str | None = None

    # ---- the device --------------------------------------------------------------------------------
    def _open_device(self) -> tuple[Any, Readings]:
        raise NotImplementedError

    def close(self) -> None:
        """Close the power source (a tegrastats child process keeps printing until then)."""
        meter, self._meter, self._readings = self._meter, None, None
        if meter is not None and hasattr(meter.source, "close"):
            meter.source.close()

    def _device(self) -> tuple[Any, Readings] | None:
        """(meter, readings), opened once; None (with the reason kept) where the power source is absent."""
        if self._meter is None and self._device_error is None:
            from hwnas.profilers.power.energy import EnergyMeter

            try:
                source, readings = self._open_device()
            except DeviceUnavailableError as exc:
                self._device_error = exc.message
                return None
            pw = self.config.power
            self._meter = EnergyMeter(source, sampling_hz=pw.sampling_hz, min_window_s=pw.min_window_s)
            self._readings = readings
            self.runner.readings = readings
        return None if self._meter is None else (self._meter, self._readings)

    # ---- memory: the CUDA caching allocator, and what the device says --------------------------------
    def _memory_record_job(self, base: dict[str, Any], mode: str, ctx: Callable[[], Any],
                           workdir: Path) -> Callable:  # fmt: skip
        def run() -> list[Measurement]:
            art = ctx()
            dev = self._device()
            import torch

            fn = self.runner.callable(art, mode)
            fn()
            self.runner.synchronize()
            torch.cuda.reset_peak_memory_stats(self.runner.device)
            base_alloc = int(torch.cuda.memory_allocated(self.runner.device))
            fn()
            self.runner.synchronize()
            peak = int(torch.cuda.max_memory_allocated(self.runner.device))
            extra = {"allocated_before_bytes": base_alloc, "peak_above_before_bytes": peak - base_alloc,
                     "reserved_bytes": int(torch.cuda.memory_reserved(self.runner.device))}  # fmt: skip
            if dev is not None:
                extra["device"] = dev[1].state()
            return [self._record(base, mode, "model", "peak_memory_bytes", float(peak),
                                 source="torch-cuda-max-memory-allocated", extra=extra)]  # fmt: skip

        return run

    # ---- energy: EnergyMeter windows ---------------------------------------------------------------
    def _energy_plan(self, base: dict[str, Any], mode: str, ctx: Callable[[], Any],
                     result: ProfileResult) -> _Job | None:  # fmt: skip
        dev = self._device()
        if dev is None:
            note = f"energy: unavailable: {self._device_error}"
            if note not in result.notes:
                result.notes.append(note)
            return None
        meter, readings = dev
        ok, why = getattr(meter.source, "available", lambda: (True, ""))()
        if not ok:
            note = f"energy: unavailable: {why}"
            if note not in result.notes:
                result.notes.append(note)
            return None
        idents = [self._record(base, mode, "model", m, 0.0).identity() for m in ("energy_mj", "power_mw")]

        def run() -> list[Measurement]:
            try:
                return measure()
            except HwnasError:
                raise
            except Exception as exc:  # the sensor failed mid-run (NVMLError, an unreadable sysfs file)
                if readings.track_end is not None and getattr(meter.source, "_track", None) is not None:
                    readings.track_end()
                raise MeasurementError(
                    f"power sensor {meter.source.name} failed during the energy window: "
                    f"{type(exc).__name__}: {exc}",
                    hint="check the device (nvidia-smi, or the rail files' permissions); the job is retried "
                    "on the next run",
                ) from exc

        def measure() -> list[Measurement]:
            art = ctx()
            fn = self.runner.callable(art, mode)
            if meter._period is None:  # found while the model runs: an idle sensor may never change
                meter.poll_update_period_under(fn, self.runner.synchronize)
            if meter.baseline is None:  # once per profiler: the GPU idle, nothing of ours running
                self.runner.synchronize()
                time.sleep(0.5 * meter.required_window_s())  # let clocks and power settle after the work
                meter.measure_idle()
            if readings.track_begin is not None:
                readings.track_begin()
            try:
                r = meter.measure(fn, key=f"{base['model_id']}:{mode}", sync=self.runner.synchronize)
            except MeasurementError:
                if readings.track_end is not None:
                    readings.track_end()
                raise
            throttle = readings.track_end() if readings.track_end is not None else {}
            state = readings.state()
            flagged = r.flagged or bool(throttle.get("throttled"))
            extra = {**{k: v for k, v in r.to_dict().items() if k not in ("key", "source")},
                     "throttle": throttle, "device": state, "flagged": flagged,
                     "idle_baseline": None if meter.baseline is None else vars(meter.baseline)}  # fmt: skip
            for n in [*r.notes, *throttle.get("throttle_notes", [])]:
                msg = f"energy {base['model_id']} ({mode}): {n}"
                if msg not in result.notes:
                    result.notes.append(msg)
            per = r.per_iteration_mj
            return [
                self._record(
                    base, mode, "model", "power_mw", r.average_power_mw, source=r.source, extra=extra
                ),
                self._record(base, mode, "model", "energy_mj", per, source=r.source, extra=extra),
            ]  # energy last: it marks the job done

        return _Job(f"{mode} energy and power", idents, run)
