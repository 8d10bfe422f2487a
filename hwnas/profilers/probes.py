"""Availability probes for the backends this machine may not have: each says yes, or why not.

They touch nothing at import time and never raise: a probe that cannot tell returns (False, reason).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

from hwnas.device_config import DeviceConfig

INA3221_PATHS = (
    Path("/sys/bus/i2c/drivers/ina3221x"),  # Jetson TX2 / Nano / Xavier (L4T < 35)
    Path("/sys/bus/i2c/drivers/ina3221"),  # Orin (mainline hwmon driver)
)


def probe_nvml(config: DeviceConfig) -> tuple[bool, str]:
    if importlib.util.find_spec("pynvml") is None:
        return False, "pynvml is not installed (pip install nvidia-ml-py)"
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
            if count < 1:
                return False, "NVML reports no NVIDIA GPU"
            want = int(config.connection.get("gpu_index", 0))
            if want >= count:
                return False, f"connection.gpu_index {want} but only {count} GPU(s) present"
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(want))
            return True, f"NVML: GPU {want}: {name.decode() if isinstance(name, bytes) else name}"
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return False, f"NVML unusable: {type(exc).__name__}: {exc} (no NVIDIA driver or GPU here?)"


def probe_jetson(config: DeviceConfig, paths: tuple[Path, ...] = INA3221_PATHS) -> tuple[bool, str]:
    for p in paths:
        if p.is_dir():
            return True, f"INA3221 power monitor at {p}"
    return False, "no INA3221 power monitor in sysfs (" + ", ".join(str(p) for p in paths) + "): not a Jetson"


def probe_adb(config: DeviceConfig, timeout_s: float = 10.0) -> tuple[bool, str]:
    adb = shutil.which("adb")
    if adb is None:
        return False, "adb is not on PATH (install Android platform-tools)"
    try:
        out = subprocess.run([adb, "devices"], capture_output=True, text=True, timeout=timeout_s).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`adb devices` failed: {exc}"
    serials = [ln.split()[0] for ln in out.splitlines()[1:] if ln.strip().endswith("device")]
    want = config.connection.get("serial")
    if want:
        if want in serials:
            return True, f"adb device {want}"
        return False, f"adb device {want} (connection.serial) not connected; connected: {serials or 'none'}"
    if not serials:
        return False, "adb sees no device (connect a phone with USB debugging, or set connection.serial)"
    return True, f"adb device {serials[0]}"


def probe_tpu(config: DeviceConfig) -> tuple[bool, str]:
    if importlib.util.find_spec("tensorflow") is None:
        return False, "tensorflow is not installed (pip install tensorflow)"
    return True, "tensorflow importable"
