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
    src = power_source(config)
    ok, why = _source_available(src)
    if hasattr(src, "close"):
        src.close()
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


def power_source(config: DeviceConfig) -> Any:
    """``power.sampler: ina3221`` reads the rail files; ``tegrastats`` runs tegrastats and parses it
    (``connection.tegrastats_command`` overrides the argv)."""
    if config.power.sampler == "tegrastats":
        from hwnas.profilers.tegrastats_source import TegrastatsSource

        interval = max(10, int(1000 / config.power.sampling_hz))
        return TegrastatsSource(config.connection.get("tegrastats_command"), interval_ms=interval)
    return jd.JetsonRails(sysfs_root(config))


def _source_available(src: Any) -> tuple[bool, str]:
    ok, why = src.available()
    if not ok or not hasattr(src, "command"):
        return ok, why
    try:  # tegrastats: one line parsed, and a total the board's rule can give
        total, rule = jd.total_input_mw(src.read_rails_mw())
    except OSError as exc:
        return False, f"tegrastats gave no reading: {exc}"
    return (total is not None), rule


def power_sampler(config: DeviceConfig) -> Any:
    from hwnas.profilers.power.energy import EnergyMeter
    from hwnas.profilers.power.meter_sampler import MeterSampler

    def meter() -> EnergyMeter:
        pw = config.power
        return EnergyMeter(power_source(config), sampling_hz=pw.sampling_hz, min_window_s=pw.min_window_s)

    def available() -> tuple[bool, str]:
        src = power_source(config)
        try:
            return _source_available(src)
        finally:
            if hasattr(src, "close"):
                src.close()

    return MeterSampler(meter, available)


class JetsonProfiler(CudaProfiler):
    backend = "jetson"

    def _open_device(self) -> tuple[Any, Readings]:
        root = sysfs_root(self.config)
        src = power_source(self.config)
        if not hasattr(src, "command"):
            return src, Readings(lambda: jd.state(root))
        ok, why = _source_available(src)
        if not ok:
            from hwnas.profilers.power.base import SamplerUnavailable

            src.close()
            raise SamplerUnavailable(why)
        return src, Readings(lambda: jd.state(root))


register_power_sampler("ina3221", power_sampler)
register_power_sampler("tegrastats", power_sampler)
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
