"""The local machine's fingerprint: what a CPU measurement depends on.

Only stable facts go into the fingerprint (its id hashes them): CPU model, core counts, the threads the
profiler pins, library versions, and the frequency governor / limits where the kernel exposes them
(``/sys/devices/system/cpu/cpu0/cpufreq``; on VMs without it the fields are recorded as null, not
guessed). The current clock is not part of it: it changes from second to second.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.store.records import Fingerprint

CPUFREQ_DIR = Path("/sys/devices/system/cpu/cpu0/cpufreq")
_LIBRARIES = ("onnxruntime", "torch", "numpy")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name (``model name`` in /proc/cpuinfo), else platform.processor()."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpufreq_info(cpufreq_dir: Path = CPUFREQ_DIR) -> dict[str, Any]:
    """Governor and min/max frequency in kHz; each None where the file is absent or unreadable."""
    gov = _read(cpufreq_dir / "scaling_governor")
    out: dict[str, Any] = {"governor": gov}
    for key, fname in (("freq_min_khz", "scaling_min_freq"), ("freq_max_khz", "scaling_max_freq")):
        text = _read(cpufreq_dir / fname)
        out[key] = int(text) if text and text.isdigit() else None
    return out


def current_freq_khz(cpufreq_dir: Path = CPUFREQ_DIR) -> int | None:
    """The current clock of cpu0 (kept per record, not in the fingerprint), or None where unreadable."""
    text = _read(cpufreq_dir / "scaling_cur_freq")
    return int(text) if text and text.isdigit() else None


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> dict[str, str | None]:
    """Installed versions without importing the packages (importing torch costs seconds)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or unsupported platform
        return None


def local_fingerprint(
    config: DeviceConfig,
    backend_versions: dict[str, str | None] | None = None,
    *,
    threads: int | None = None,
    cpufreq_dir: Path = CPUFREQ_DIR,
) -> Fingerprint:
    """Fingerprint of this machine for ``config``; ``threads`` overrides the config's thread count."""
    used = threads if threads is not None else config.threads
    fields: dict[str, Any] = {
        "backend": config.backend,
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "threads": used,
        "versions": {**library_versions(), **(backend_versions or {})},
        "cpufreq": cpufreq_info(cpufreq_dir),
    }
    return Fingerprint(device=config.name, fields=fields)
