"""The ``nvml-gpu`` backend: torch on an NVIDIA GPU, power/energy/memory/clocks through NVML.

``connection.gpu`` selects the GPU by NVML index (``0``) or UUID (``GPU-...``); the torch device is the CUDA
device with the same UUID where torch can tell (CUDA may enumerate in another order than NVML), else
``connection.torch_device``. ``connection.runtime`` is ``torch`` (default: eager, CUDA events) or
``onnxruntime`` (its CUDA provider where installed, :mod:`hwnas.profilers.ort_cuda`; the runtime is part of
the fingerprint, so the two never mix).
Power sampler ``nvml`` (registered here) serves any backend whose config names it.
"""

from __future__ import annotations

import platform
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.profilers.backend import Backend, register_backend, register_fingerprint, register_power_sampler
from hwnas.profilers.nvml_device import NvmlGpu, NvmlUnavailable
from hwnas.profilers.torch_cuda import (
    CudaProfiler,
    CudaRunner,
    CudaTorchBuilder,
    Readings,
    cuda_probe,
    torch_versions,
)
from hwnas.store.records import Fingerprint

RUNTIMES = ("torch", "onnxruntime")


def runtime(config: DeviceConfig) -> str:
    rt = str(config.connection.get("runtime", "torch"))
    if rt not in RUNTIMES:
        from hwnas.errors import InputError

        raise InputError(f"{config.source_path}: field 'connection.runtime': expected one of "
                         f"{list(RUNTIMES)}, got {rt!r}")  # fmt: skip
    return rt


def _builder(config: DeviceConfig) -> Any:
    if runtime(config) == "onnxruntime":
        from hwnas.profilers.ort_cuda import OrtCudaBuilder

        return OrtCudaBuilder(config)
    return CudaTorchBuilder(config)


def _runner(config: DeviceConfig, **kw: Any) -> Any:
    if runtime(config) == "onnxruntime":
        from hwnas.profilers.ort_cuda import OrtCudaRunner

        return OrtCudaRunner(config, **kw)
    return CudaRunner(config, **kw)


def gpu_selector(config: DeviceConfig) -> int | str:
    return config.connection.get("gpu", config.connection.get("gpu_index", 0))


def open_gpu(config: DeviceConfig) -> NvmlGpu:
    return NvmlGpu.open(gpu_selector(config))


def probe(config: DeviceConfig) -> tuple[bool, str]:
    """NVML sees the selected GPU and torch can run on it (never raises)."""
    try:
        gpu = open_gpu(config)
    except Exception as exc:  # noqa: BLE001 - a probe says why, it does not raise
        return False, getattr(exc, "message", None) or f"NVML unusable: {type(exc).__name__}: {exc}"
    try:
        if runtime(config) == "onnxruntime":
            from hwnas.profilers.ort_cuda import cuda_provider_available

            ok, why = cuda_provider_available()
            return ok, f"NVML: {gpu.gpu_name} ({gpu.uuid}); {why}"
        ok, why = cuda_probe(config)
        counter = "energy counter" if gpu.supports_energy_counter() else "no energy counter (pre-Volta)"
        if ok:
            mismatch = _uuid_mismatch(config, gpu.uuid)
            if mismatch:
                return False, mismatch
        return ok, f"NVML: {gpu.gpu_name} ({gpu.uuid}, {counter}); {why}"
    finally:
        gpu.close()


def _uuid_mismatch(config: DeviceConfig, nvml_uuid: str) -> str | None:
    """CUDA may number GPUs differently from NVML: the torch device must be the GPU NVML reads."""
    from hwnas.profilers.torch_cuda import torch_device

    dev = torch_device(config)
    if dev == "cpu":
        return None
    import torch

    try:
        cuda_uuid = str(torch.cuda.get_device_properties(torch.device(dev)).uuid)
    except Exception:  # noqa: BLE001 - older torch without .uuid: cannot check
        return None
    if cuda_uuid and cuda_uuid.removeprefix("GPU-") != nvml_uuid.removeprefix("GPU-"):
        return (
            f"torch device {dev} is GPU {cuda_uuid} but NVML reads {nvml_uuid}: power and latency would "
            "come from different GPUs; set CUDA_DEVICE_ORDER=PCI_BUS_ID or connection.torch_device"
        )
    return None


def fingerprint(config: DeviceConfig, versions: dict[str, str | None], *, threads: int | None = None
                ) -> Fingerprint:  # fmt: skip
    """The GPU (name, UUID, driver, compute capability, memory, max clocks, power limit) and versions."""
    fields: dict[str, Any] = {"backend": config.backend, "versions": versions, "machine": platform.machine(),
                              "torch_device": config.connection.get("torch_device", "cuda"),
                              "runtime": runtime(config)}  # fmt: skip
    try:
        gpu = open_gpu(config)
    except NvmlUnavailable as exc:
        fields["gpu"] = f"unavailable: {exc.message}"
    else:
        try:
            fields.update(gpu.fingerprint_fields())
        finally:
            gpu.close()
    return Fingerprint(config.name, fields)


def power_sampler(config: DeviceConfig) -> Any:
    from hwnas.profilers.power.energy import EnergyMeter
    from hwnas.profilers.power.meter_sampler import MeterSampler

    def available() -> tuple[bool, str]:
        try:
            g = open_gpu(config)
        except Exception as exc:  # noqa: BLE001
            return False, getattr(exc, "message", None) or str(exc)
        g.close()
        return True, f"NVML power of {g.gpu_name}"

    def meter() -> EnergyMeter:
        pw = config.power
        return EnergyMeter(open_gpu(config), sampling_hz=pw.sampling_hz, min_window_s=pw.min_window_s)

    return MeterSampler(meter, available)


class NvmlGpuProfiler(CudaProfiler):
    backend = "nvml-gpu"

    def units(self, layers: list[Any], units: str = "layers") -> list[Any]:
        """onnxruntime fuses as on the CPU (conv+bn+act ...); torch eager fuses nothing."""
        if units == "fused" and runtime(self.config) == "onnxruntime":
            from hwnas.graph.fusion import fuse

            return fuse(layers, "onnxruntime-cpu")
        return super().units(layers, units)

    def _open_device(self) -> tuple[NvmlGpu, Readings]:
        gpu = open_gpu(self.config)
        return gpu, Readings(gpu.state, gpu.track_begin, gpu.track_end)


register_power_sampler("nvml", power_sampler)
register_fingerprint("nvml-gpu", fingerprint)
register_backend(Backend(
    name="nvml-gpu",
    builder=_builder,
    runner=_runner,
    probe=probe,
    versions=torch_versions,
    modes=("inference", "train_step"),
    fusion="none",  # torch eager: every module is its own kernel(s)
    fingerprint="nvml-gpu",
    profiler=NvmlGpuProfiler,
    description="torch on an NVIDIA GPU; CUDA-event latency, NVML power/energy/memory/clocks",
))  # fmt: skip
