"""The ``jetson`` backend: torch on a Jetson's integrated GPU, power from the INA3221/INA238 rails.

Rails are scanned (``connection.sysfs_root``, default ``/``: every path is under it), the total input taken by
the board's rule (named in every record). Clocks (GPU devfreq, EMC), nvpmodel mode and L4T release go into
the fingerprint and readings. Tegra has no NVML memory API: per-process GPU memory is recorded as not
available; the CUDA allocator's peak (``torch.cuda.max_memory_allocated``) and the shared DRAM from
/proc/meminfo are what is measured. Power sampler ``ina3221`` is registered here.
"""

from __future__ import annotations

import platform
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.profilers import jetson_device as jd
from hwnas.profilers.backend import Backend, register_backend, register_fingerprint, register_power_sampler
from hwnas.profilers.torch_cuda import (
    CudaProfiler,
    CudaRunner,
    CudaTorchBuilder,
    Readings,
    cuda_probe,
    torch_versions,
)
from hwnas.store.records import Fingerprint


def sysfs_root(config: DeviceConfig) -> str:
    return str(config.connection.get("sysfs_root", "/"))


def probe(config: DeviceConfig) -> tuple[bool, str]:
    ok, why = jd.JetsonRails(sysfs_root(config)).available()
    if not ok:
        return False, why
    ok2, why2 = cuda_probe(config)
    return ok2, f"{why}; {why2}"


def fingerprint(config: DeviceConfig, versions: dict[str, str | None], *, threads: int | None = None
                ) -> Fingerprint:  # fmt: skip
    root = sysfs_root(config)
    rails = jd.JetsonRails(root)
    fields: dict[str, Any] = {"backend": config.backend, "versions": versions, "machine": platform.machine(),
                              **jd.fingerprint_fields(root), "rails": [r.describe() for r in rails.rails],
                              "total_rule": rails.total_rule}  # fmt: skip
    return Fingerprint(config.name, fields)


def power_sampler(config: DeviceConfig) -> Any:
    from hwnas.profilers.power.energy import EnergyMeter
    from hwnas.profilers.power.meter_sampler import MeterSampler

    def meter() -> EnergyMeter:
        pw = config.power
        return EnergyMeter(jd.JetsonRails(sysfs_root(config)), sampling_hz=pw.sampling_hz,
                           min_window_s=pw.min_window_s)  # fmt: skip

    return MeterSampler(meter, lambda: jd.JetsonRails(sysfs_root(config)).available())


class JetsonProfiler(CudaProfiler):
    backend = "jetson"

    def _open_device(self) -> tuple[jd.JetsonRails, Readings]:
        root = sysfs_root(self.config)
        return jd.JetsonRails(root), Readings(lambda: jd.state(root))


register_power_sampler("ina3221", power_sampler)
register_fingerprint("jetson", fingerprint)
register_backend(Backend(
    name="jetson",
    builder=CudaTorchBuilder,
    runner=CudaRunner,
    probe=probe,
    versions=torch_versions,
    modes=("inference", "train_step"),
    fusion="none",
    fingerprint="jetson",
    profiler=JetsonProfiler,
    description="torch on a Jetson's GPU; CUDA-event latency, INA3221/INA238 rail power",
))  # fmt: skip
