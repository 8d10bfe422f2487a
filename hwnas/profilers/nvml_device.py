"""One NVIDIA GPU through NVML (``nvidia-ml-py``, imported as ``pynvml``): power, energy, memory, clocks.

:class:`NvmlGpu` is a :class:`~hwnas.profilers.power.sampling.PowerSource` (``nvmlDeviceGetPowerUsage``,
mW) with the hardware energy counter where the GPU has one (``nvmlDeviceGetTotalEnergyConsumption``, mJ since
the driver loaded; Volta and newer, else NVML says NOT_SUPPORTED and the counter is None). Besides power it
reads device memory (``nvmlDeviceGetMemoryInfo``: bytes used/total), per-process memory
(``nvmlDeviceGetComputeRunningProcesses``: ``usedGpuMemory`` bytes, None where the driver withholds it,
e.g. inside containers), SM/memory clocks (MHz), temperature (°C) and the clock-event ("throttle") reasons.

While a window is tracked (:meth:`track_begin` / :meth:`track_end`) every power read also records the
throttle reasons and the SM clock, so a window during which the GPU throttled (power cap, thermal or
hardware slowdown, power brake) or its SM clock dropped by more than 10 % is flagged, not averaged in
silently.

The NVML module is passed in (``nvml=``) so tests can hand a fake of its functions; by default the real
``pynvml`` is imported. NVML errors become hwnas errors with a fix hint.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import DeviceUnavailableError, InputError
from hwnas.profilers.power.sampling import PowerSource

# Clock-event reason bits (nvml.h nvmlClocksEventReason*; the same values as the older ThrottleReason*).
REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# The reasons that mean the GPU ran slower than it could for this workload: a record taken under them is
# flagged. Idle, application clocks, sync boost and display settings are states, not throttling.
THROTTLING = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
CLOCK_DROP = 0.10


def decode_reasons(mask: int) -> list[str]:
    names = [name for bit, name in REASONS.items() if mask & bit]
    unknown = mask & ~sum(REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


class NvmlUnavailable(DeviceUnavailableError):
    """NVML cannot be used here (no library, no driver, no GPU, no permission)."""


def _load_nvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable("pynvml is not installed",
                              hint="pip install 'hwnas[gpu]' (nvidia-ml-py)") from exc  # fmt: skip
    return pynvml


def _not_supported(nvml: Any, exc: Exception) -> bool:
    """NVML says this reading does not exist here: not supported by the GPU, a symbol the (older) driver
    lacks, or withheld from this user/container. Such readings are recorded as None, not as an error."""
    known = (("NVML_ERROR_NOT_SUPPORTED", 3), ("NVML_ERROR_NO_PERMISSION", 4),
             ("NVML_ERROR_FUNCTION_NOT_FOUND", 13))  # fmt: skip
    codes = {getattr(nvml, name, default) for name, default in known}
    return getattr(exc, "value", None) in codes


@dataclass
class _Track:
    reasons: int = 0
    sm_mhz: list[int] = field(default_factory=list)


class NvmlGpu(PowerSource):
    """One GPU, opened by index (``0``) or UUID (``GPU-8f6c...``); see the module docstring."""

    name = "nvml"
    total_rule = "board power of one GPU (nvmlDeviceGetPowerUsage)"

    def __init__(self, nvml: Any, handle: Any, index: int | None, uuid: str, gpu_name: str) -> None:
        self.nvml = nvml
        self.handle = handle
        self.index = index
        self.uuid = uuid
        self.gpu_name = gpu_name
        self._counter_ok: bool | None = None
        self._instant: bool | None = None
        self._track: _Track | None = None
        self._lock = threading.Lock()

    # ---- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(cls, selector: int | str = 0, *, nvml: Any = None) -> NvmlGpu:
        """Initialise NVML and open GPU ``selector``: an index, or a UUID starting ``GPU-``/``MIG-``."""
        nvml = nvml or _load_nvml()
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            raise NvmlUnavailable(
                f"NVML cannot start: {type(exc).__name__}: {exc}",
                hint="no NVIDIA driver here? `nvidia-smi` should list the GPU",
            ) from exc
        try:
            count = int(nvml.nvmlDeviceGetCount())
            sel = str(selector).strip()
            if sel.isdigit():
                index = int(sel)
                if index >= count:
                    raise InputError(f"GPU index {index}: only {count} GPU(s) present",
                                     hint=f"use 0..{count - 1} (connection.gpu)")  # fmt: skip
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            elif sel.startswith(("GPU-", "MIG-")):
                try:
                    handle = nvml.nvmlDeviceGetHandleByUUID(sel)
                except Exception as exc:
                    raise InputError(f"no GPU with UUID {sel}: {exc}",
                                     hint="`nvidia-smi -L` lists the UUIDs") from exc  # fmt: skip
                index = None
            else:
                raise InputError(f"GPU selector {selector!r}: expected an index (0) or a UUID (GPU-...)")
            uuid = str(nvml.nvmlDeviceGetUUID(handle))
            name = str(nvml.nvmlDeviceGetName(handle))
        except Exception:
            nvml.nvmlShutdown()
            raise
        return cls(nvml, handle, index, uuid, name)

    def close(self) -> None:
        self.nvml.nvmlShutdown()

    # ---- power and energy --------------------------------------------------------------------------
    def _instant_mw(self) -> float | None:
        """``NVML_FI_DEV_POWER_INSTANT`` (mW) where the driver has it; ``nvmlDeviceGetPowerUsage`` is a 1 s
        moving average on Ampere and newer, which smears short windows."""
        fid = getattr(self.nvml, "NVML_FI_DEV_POWER_INSTANT", None)
        if fid is None or not hasattr(self.nvml, "nvmlDeviceGetFieldValues"):
            return None
        try:
            [v] = self.nvml.nvmlDeviceGetFieldValues(self.handle, [fid])
        except Exception as exc:
            if _not_supported(self.nvml, exc) or isinstance(exc, (AttributeError, ValueError)):
                return None
            raise
        if int(v.nvmlReturn) != 0:
            return None
        return float(v.value.uiVal)

    def power_reading(self) -> str:
        """Which NVML reading the samples are (decided once, on the first read)."""
        if self._instant is None:
            self._instant = self._instant_mw() is not None
            self.total_rule = ("instantaneous board power (NVML_FI_DEV_POWER_INSTANT)" if self._instant
                               else "board power from nvmlDeviceGetPowerUsage (a 1 s moving average on Ampere"
                               " and newer GPUs: the energy counter is the reference there)")  # fmt: skip
        return "instant" if self._instant else "power-usage"

    def read_rails_mw(self) -> dict[str, float]:
        mw = None
        if self.power_reading() == "instant":
            mw = self._instant_mw()
        if mw is None:
            mw = float(self.nvml.nvmlDeviceGetPowerUsage(self.handle))
        if self._track is not None:
            self._sample_state()
        return {"gpu": mw}

    def total_mw(self, rails_mw: dict[str, float]) -> float:
        return rails_mw["gpu"]

    def supports_energy_counter(self) -> bool:
        if self._counter_ok is None:
            try:
                self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
                self._counter_ok = True
            except Exception as exc:
                if not _not_supported(self.nvml, exc):
                    raise
                self._counter_ok = False  # pre-Volta GPUs
        return self._counter_ok

    def energy_counter_mj(self) -> float | None:
        if not self.supports_energy_counter():
            return None
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    # ---- state -------------------------------------------------------------------------------------
    def _optional(self, fn: str, *args: Any) -> Any:
        try:
            return getattr(self.nvml, fn)(self.handle, *args)
        except Exception as exc:
            if _not_supported(self.nvml, exc) or isinstance(exc, AttributeError):
                return None
            raise

    def reasons_mask(self) -> int | None:
        mask = self._optional("nvmlDeviceGetCurrentClocksEventReasons")
        if mask is None:  # drivers before r535 name it ...ThrottleReasons
            mask = self._optional("nvmlDeviceGetCurrentClocksThrottleReasons")
        return None if mask is None else int(mask)

    def clocks_mhz(self) -> dict[str, int | None]:
        n = self.nvml
        return {"sm_mhz": self._optional("nvmlDeviceGetClockInfo", n.NVML_CLOCK_SM),
                "mem_mhz": self._optional("nvmlDeviceGetClockInfo", n.NVML_CLOCK_MEM)}  # fmt: skip

    def memory(self, pid: int | None = None) -> dict[str, Any]:
        """Device memory (bytes) and this process's share; per-process figures may be None (withheld)."""
        info = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
        procs = self._optional("nvmlDeviceGetComputeRunningProcesses") or []
        per = {int(p.pid): (None if p.usedGpuMemory is None else int(p.usedGpuMemory)) for p in procs}
        pid = os.getpid() if pid is None else pid
        return {"device_used_bytes": int(info.used), "device_total_bytes": int(info.total),
                "process_bytes": per.get(pid), "processes": len(per)}  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Everything recorded with a window: clocks, temperature, power limit, throttle reasons, memory."""
        mask = self.reasons_mask()
        return {
            **self.clocks_mhz(),
            "temperature_c": self._optional("nvmlDeviceGetTemperature", self.nvml.NVML_TEMPERATURE_GPU),
            "power_limit_mw": self._optional("nvmlDeviceGetEnforcedPowerLimit"),
            "clock_event_reasons": None if mask is None else decode_reasons(mask),
            **self.memory(),
        }

    def fingerprint_fields(self) -> dict[str, Any]:
        """Stable facts only (the current clock is per record, not part of the fingerprint)."""
        n = self.nvml
        cc = self._optional("nvmlDeviceGetCudaComputeCapability")
        info = n.nvmlDeviceGetMemoryInfo(self.handle)
        return {
            "gpu_name": self.gpu_name,
            "gpu_uuid": self.uuid,
            "driver": str(n.nvmlSystemGetDriverVersion()),
            "compute_capability": None if cc is None else f"{cc[0]}.{cc[1]}",
            "memory_total_bytes": int(info.total),
            "max_sm_mhz": self._optional("nvmlDeviceGetMaxClockInfo", n.NVML_CLOCK_SM),
            "max_mem_mhz": self._optional("nvmlDeviceGetMaxClockInfo", n.NVML_CLOCK_MEM),
            "power_limit_mw": self._optional("nvmlDeviceGetEnforcedPowerLimit"),
            "energy_counter": self.supports_energy_counter(),
            "power_reading": self.power_reading(),
        }

    # ---- throttle tracking over a window -----------------------------------------------------------
    def _sample_state(self) -> None:
        mask = self.reasons_mask() or 0
        sm = self._optional("nvmlDeviceGetClockInfo", self.nvml.NVML_CLOCK_SM)
        with self._lock:
            if self._track is not None:
                self._track.reasons |= mask
                if sm is not None:
                    self._track.sm_mhz.append(int(sm))

    def track_begin(self) -> None:
        with self._lock:
            self._track = _Track()
        self._sample_state()

    def track_end(self) -> dict[str, Any]:
        """What happened during the window: reasons seen, SM clock range, and whether to flag it."""
        self._sample_state()
        with self._lock:
            tr, self._track = self._track, None
        if tr is None:
            raise RuntimeError("track_end without track_begin")
        notes: list[str] = []
        if tr.reasons & THROTTLING:
            notes.append("throttled: " + ", ".join(decode_reasons(tr.reasons & THROTTLING)))
        lo = min(tr.sm_mhz) if tr.sm_mhz else None
        hi = max(tr.sm_mhz) if tr.sm_mhz else None
        if lo is not None and hi and (hi - lo) / hi > CLOCK_DROP:
            notes.append(f"SM clock dropped from {hi} to {lo} MHz during the window (> {CLOCK_DROP:.0%})")
        return {"reasons_seen": decode_reasons(tr.reasons), "sm_mhz_min": lo, "sm_mhz_max": hi,
                "throttled": bool(notes), "throttle_notes": notes}  # fmt: skip
