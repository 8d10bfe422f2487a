"""A fake of nvidia-ml-py's module functions, returning what the real ones return.

Types and units follow pynvml 13 (read from its source): ``nvmlDeviceGetPowerUsage`` -> int mW,
``nvmlDeviceGetTotalEnergyConsumption`` -> int mJ, ``nvmlDeviceGetMemoryInfo`` -> a struct with int
``total``/``free``/``used`` bytes, ``nvmlDeviceGetComputeRunningProcesses`` -> objects with ``pid`` and
``usedGpuMemory`` (bytes, or None when NVML_VALUE_NOT_AVAILABLE), names/UUIDs/driver -> str (the
``convertStrBytes`` decorator), clocks -> int MHz, temperature -> int °C, clock-event reasons -> int mask.
Errors are the real ``pynvml.NVMLError`` subclasses, so code under test sees what it would on a GPU.

The power the fake reports depends on the work done: ``work`` callables (e.g. a MAC counter fed by a torch
forward hook) give a cumulative work count; power = idle + ``mw_per_work_rate`` x work per second over the
last update period, refreshed only every ``update_period_s`` (as NVML refreshes about every 20-100 ms).
With ``work_is_level`` the callable gives a level instead (power = idle + ``mw_per_work_rate`` x level), so a
test's power does not depend on how fast a loaded host happens to run the work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml


@dataclass
class FakeGPU:
    name: str = "NVIDIA H200"
    uuid: str = "GPU-5f1b2c3d-0000-1111-2222-333344445555"
    idle_mw: float = 75_000.0
    mw_per_work_rate: float = 0.0  # mW per (work unit / s)
    max_mw: float = 700_000.0
    update_period_s: float = 0.02
    energy_counter: bool = True  # Volta and newer
    counter_scale: float = 1.0
    memory_total: int = 143_771_000_000
    memory_used: int = 600_000_000
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    sm_mhz: int = 1980
    mem_mhz: int = 3201
    max_sm_mhz: int = 1980
    temperature_c: int = 34
    reasons: int = 0x1  # gpu_idle
    power_limit_mw: int = 700_000
    compute_capability: tuple[int, int] = (9, 0)
    instant_power: bool = False  # NVML_FI_DEV_POWER_INSTANT answered (newer drivers)
    work: object = None  # () -> cumulative work count
    work_is_level: bool = False  # work() is a level (e.g. the size of the kernel running), not a count

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._t = time.monotonic()
        self._w = self._work()
        self._shown = self.idle_mw
        self._t_shown = self._t
        self._energy = 0.0
        self._true = self.idle_mw
        self._updates = 0

    def _work(self) -> float:
        return float(self.work()) if self.work is not None else 0.0

    def tick(self) -> None:
        with self._lock:
            now = time.monotonic()
            dt = now - self._t
            if dt > 0:
                self._energy += self._true * dt
            if now - self._t_shown >= self.update_period_s:
                w = self._work()
                # a level is used as it is: power then follows what runs, not how fast the host runs it
                rate = w if self.work_is_level else (w - self._w) / (now - self._t_shown)
                self._updates += 1
                jitter = (self._updates * 37) % 50  # real readings wander by tens of mW between updates
                self._true = min(self.max_mw, self.idle_mw + self.mw_per_work_rate * rate + jitter)
                self._shown = self._true
                self._w, self._t_shown = w, now
            self._t = now


class FakeNvml(SimpleNamespace):
    """Module-like: the pynvml functions hwnas calls, over a list of FakeGPU."""

    def __init__(self, gpus: list[FakeGPU] | None = None, driver: str = "550.54.15") -> None:
        super().__init__()
        self.gpus = gpus if gpus is not None else [FakeGPU()]
        self.driver = driver
        self.initialised = 0
        self.calls: list[str] = []
        for k in dir(pynvml):  # constants and error classes, as the real module has them
            if k.startswith(("NVML_", "NVMLError")):
                setattr(self, k, getattr(pynvml, k))

    def _gpu(self, handle: FakeGPU) -> FakeGPU:
        if self.initialised <= 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        return handle

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        if self.initialised <= 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGPU:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGPU:
        for g in self.gpus:
            if g.uuid == uuid:
                return g
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetName(self, h: FakeGPU) -> str:
        return self._gpu(h).name

    def nvmlDeviceGetUUID(self, h: FakeGPU) -> str:
        return self._gpu(h).uuid

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetPowerUsage(self, h: FakeGPU) -> int:
        g = self._gpu(h)
        g.tick()
        return int(round(g._shown))

    def nvmlDeviceGetFieldValues(self, handle: FakeGPU, fieldIds: list) -> list:
        g = self._gpu(handle)
        out = []
        for fid in fieldIds:
            v = pynvml.c_nvmlFieldValue_t()
            v.fieldId = fid
            if fid == pynvml.NVML_FI_DEV_POWER_INSTANT and g.instant_power:
                g.tick()
                v.nvmlReturn = pynvml.NVML_SUCCESS
                v.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                v.value.uiVal = int(round(g._shown))
            else:
                v.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
            out.append(v)
        return out

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGPU) -> int:
        g = self._gpu(h)
        if not g.energy_counter:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        g.tick()
        return int(g._energy * g.counter_scale)  # mW x s = mJ

    def nvmlDeviceGetMemoryInfo(self, h: FakeGPU, version=None) -> pynvml.c_nvmlMemory_t:
        g = self._gpu(h)
        m = pynvml.c_nvmlMemory_t()
        m.total, m.used, m.free = g.memory_total, g.memory_used, g.memory_total - g.memory_used
        return m

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGPU) -> list:
        g = self._gpu(h)
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem, gpuInstanceId=0xFFFFFFFF,
                                computeInstanceId=0xFFFFFFFF) for pid, mem in g.processes]  # fmt: skip

    def nvmlDeviceGetClockInfo(self, h: FakeGPU, kind: int) -> int:
        g = self._gpu(h)
        return g.sm_mhz if kind == pynvml.NVML_CLOCK_SM else g.mem_mhz

    def nvmlDeviceGetMaxClockInfo(self, h: FakeGPU, kind: int) -> int:
        g = self._gpu(h)
        return g.max_sm_mhz if kind == pynvml.NVML_CLOCK_SM else g.mem_mhz

    def nvmlDeviceGetTemperature(self, h: FakeGPU, sensor: int) -> int:
        return self._gpu(h).temperature_c

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGPU) -> int:
        return self._gpu(h).reasons

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGPU) -> int:
        return self._gpu(h).power_limit_mw

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeGPU) -> tuple[int, int]:
        return self._gpu(h).compute_capability


FAKED = [k for k in vars(FakeNvml) if k.startswith("nvml")]
