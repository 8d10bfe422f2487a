"""A Jetson/Tegra board read through sysfs: power rails, GPU/EMC clocks, nvpmodel mode, memory.

Power comes from the INA3221/INA238 rails found by :func:`hwnas.profilers.parsers.ina_sysfs.scan_rails`,
the total by the board's rule (:mod:`hwnas.profilers.parsers.jetson_rails`, stated in every record).
Clocks come from the devfreq nodes (``/sys/class/devfreq/*gpu*/cur_freq``, Hz) and, for EMC, from the clock
debugfs files where readable; the power mode from nvpmodel's status and config files. Memory is the board's
shared DRAM from ``/proc/meminfo``: **Tegra has no NVML memory API** (the thesis's footnote: tegrastats
reports utilisation, not a process's memory), so GPU memory per process is not available and is recorded as
such, never estimated. Every path is under ``root`` so tests run on trees built in a temporary directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hwnas.profilers.parsers.ina_sysfs import RailChannel, scan_rails, searched_paths
from hwnas.profilers.parsers.jetson_rails import total_input_mw

__all__ = ["JetsonRails", "total_input_mw", "fingerprint_fields", "state", "NO_NVML_MEMORY"]
from hwnas.profilers.power.sampling import PowerSource

NO_NVML_MEMORY = ("Tegra has no NVML memory API: per-process GPU memory is not measurable here; "
                  "the board's shared DRAM (/proc/meminfo) is recorded instead")  # fmt: skip
_EMC_RATE_FILES = (
    "sys/kernel/debug/bpmp/debug/clk/emc/rate",  # JetPack 4.x+ (Xavier, Orin), root
    "sys/kernel/debug/clk/emc/clk_rate",  # L4T <= 28 (TX1/TX2), root
)
_EMC_MAX_FILES = (
    "sys/kernel/debug/bpmp/debug/clk/emc/max_rate",
    "sys/kernel/debug/clk/emc/max",
)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


class JetsonRails(PowerSource):
    """The board's rails as one power source; ``total_mw`` applies the generation's total-input rule."""

    name = "ina3221"

    def __init__(self, root: str | Path = "/", rails: list[RailChannel] | None = None) -> None:
        self.root = Path(root)
        self.rails = scan_rails(self.root) if rails is None else rails
        try:
            _, self.total_rule = total_input_mw(self._read_all() if self.rails else {})
        except OSError as exc:  # unreadable (permissions): available() says so
            self.total_rule = f"unknown: the rails could not be read ({exc})"

    def available(self) -> tuple[bool, str]:
        if not self.rails:
            return False, "no INA3221/INA238 power rails under " + ", ".join(searched_paths(self.root))
        try:
            total, rule = total_input_mw(self._read_all())
        except PermissionError as exc:
            return False, f"permission denied reading {exc.filename}; run as root or add a udev rule"
        except OSError as exc:
            return False, f"cannot read the rails: {exc}"
        if total is None:
            return False, rule
        return True, f"{len(self.rails)} rails; {rule}"

    def _read_all(self) -> dict[str, float]:
        return {r.name: r.read_mw() for r in self.rails}

    def read_rails_mw(self) -> dict[str, float]:
        return self._read_all()

    def total_mw(self, rails_mw: dict[str, float]) -> float:
        total, rule = total_input_mw(rails_mw)
        if total is None:
            raise OSError(rule)
        return total


def board_model(root: str | Path = "/") -> str | None:
    text = _read(Path(root) / "proc/device-tree/model")
    return text.rstrip("\x00") if text else None


def l4t_release(root: str | Path = "/") -> str | None:
    """``R35 (release), REVISION: 4.1`` -> ``R35.4.1`` from /etc/nv_tegra_release."""
    text = _read(Path(root) / "etc/nv_tegra_release")
    if not text:
        return None
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else text.splitlines()[0]


def nvpmodel_mode(root: str | Path = "/") -> dict[str, Any]:
    """The power mode id (``/var/lib/nvpmodel/status``: ``pmode:0002``) and its name from nvpmodel.conf."""
    root = Path(root)
    status = _read(root / "var/lib/nvpmodel/status")
    mode_id = None
    if status:
        m = re.search(r"pmode:(\d+)", status)
        mode_id = int(m.group(1)) if m else None
    name = None
    conf = _read(root / "etc/nvpmodel.conf")
    if conf and mode_id is not None:
        m = re.search(rf"<\s*POWER_MODEL\s+ID\s*=\s*{mode_id}\s+NAME\s*=\s*([^\s>]+)\s*>", conf)
        name = m.group(1) if m else None
    return {"nvpmodel_id": mode_id, "nvpmodel_name": name}


def devfreq_clocks(root: str | Path = "/") -> dict[str, Any]:
    """GPU clocks (MHz) from the devfreq node whose name or device says gpu; EMC from debugfs (root)."""
    root = Path(root)
    out: dict[str, Any] = {"gpu_cur_mhz": None, "gpu_min_mhz": None, "gpu_max_mhz": None, "emc_mhz": None}
    base = root / "sys/class/devfreq"
    if base.is_dir():
        for d in sorted(base.iterdir()):
            name = (_read(d / "name") or "") + " " + d.name
            if not re.search(r"gpu|g[vpa]1\db", name.lower()):  # gpu, gp10b (TX2), gv11b (Xavier), ga10b
                continue
            for key, f in (("gpu_cur_mhz", "cur_freq"), ("gpu_min_mhz", "min_freq"),
                           ("gpu_max_mhz", "max_freq")):  # fmt: skip
                text = _read(d / f)
                if text and text.isdigit():
                    out[key] = int(text) / 1e6
            break
    for key, files in (("emc_mhz", _EMC_RATE_FILES), ("emc_max_mhz", _EMC_MAX_FILES)):
        for rel in files:
            text = _read(root / rel)
            if text and text.isdigit():
                out[key] = int(text) / 1e6
                break
        else:
            out[key] = None
    return out


def meminfo_mb(root: str | Path = "/") -> dict[str, float | None]:
    text = _read(Path(root) / "proc/meminfo") or ""
    vals = {m.group(1): int(m.group(2)) / 1024 for m in re.finditer(r"^(\w+):\s+(\d+) kB", text, re.M)}
    total, avail = vals.get("MemTotal"), vals.get("MemAvailable")
    return {"ram_total_mb": total, "ram_used_mb": None if total is None or avail is None else total - avail}


def fingerprint_fields(root: str | Path = "/") -> dict[str, Any]:
    clocks = devfreq_clocks(root)
    return {
        "board": board_model(root),
        "l4t": l4t_release(root),
        **nvpmodel_mode(root),
        "gpu_max_mhz": clocks["gpu_max_mhz"],
        "gpu_min_mhz": clocks["gpu_min_mhz"],  # == max when jetson_clocks pinned the GPU clock
        "emc_max_mhz": clocks["emc_max_mhz"],
        "ram_total_mb": meminfo_mb(root)["ram_total_mb"],
    }


def state(root: str | Path = "/") -> dict[str, Any]:
    """Recorded with every window: current GPU/EMC clocks, shared memory in use, and the memory caveat."""
    return {**devfreq_clocks(root), **meminfo_mb(root), "gpu_memory": NO_NVML_MEMORY}
