"""CPU energy from RAPL counters through the Linux powercap sysfs tree.

Layout (``/sys/class/powercap``): one directory per zone, ``intel-rapl:<pkg>`` for a package and
``intel-rapl:<pkg>:<sub>`` for its sub-zones (core, uncore, dram), each with ``name``, ``energy_uj``
(a monotonically increasing counter in microjoules) and ``max_energy_range_uj`` (where it wraps to 0).
AMD CPUs expose the same tree. Package energy already includes core/uncore; DRAM is separate, so the
total is packages + dram sub-zones. Since 2020 ``energy_uj`` is root-readable only on most kernels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hwnas.device_config import DeviceConfig
from hwnas.profilers.power.base import EnergyWindow, PowerSampler

POWERCAP_ROOT = Path("/sys/class/powercap")
_ZONE_RE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str  # e.g. "package-0", "package-0/dram"
    max_range_uj: int
    counted: bool  # part of the total (packages and dram sub-zones)

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def counter_delta_uj(start_uj: int, end_uj: int, max_range_uj: int) -> int:
    """Energy between two counter reads; a counter that went down wrapped once at ``max_range_uj``."""
    if end_uj >= start_uj:
        return end_uj - start_uj
    return end_uj + max_range_uj - start_uj


def discover_zones(root: Path = POWERCAP_ROOT) -> list[RaplZone]:
    """RAPL zones under ``root``, packages first; raises OSError when a file cannot be read."""
    zones: list[tuple[tuple[int, int], RaplZone]] = []
    if not root.is_dir():
        return []
    pkg_names: dict[int, str] = {}
    entries = sorted(p for p in root.iterdir() if _ZONE_RE.match(p.name))
    for p in entries:
        m = _ZONE_RE.match(p.name)
        assert m is not None
        pkg, sub = int(m.group(1)), m.group(2)
        name = (p / "name").read_text().strip() if (p / "name").exists() else p.name
        max_uj = int((p / "max_energy_range_uj").read_text().strip())
        if sub is None:
            pkg_names[pkg] = name
            zones.append(((pkg, -1), RaplZone(p, name, max_uj, counted=True)))
        else:
            zones.append(((pkg, int(sub)), RaplZone(p, name, max_uj, counted=name.startswith("dram"))))
    out = []
    for (pkg, sub), z in sorted(zones, key=lambda t: t[0]):
        if sub >= 0:
            z = RaplZone(
                z.path, f"{pkg_names.get(pkg, f'package-{pkg}')}/{z.name}", z.max_range_uj, z.counted
            )
        out.append(z)
    return out


def from_config(config: DeviceConfig) -> RaplSampler:
    """The sampler for ``power.sampler: rapl`` (registered in ``hwnas.profilers.backend``)."""
    return RaplSampler(config.connection.get("powercap_root", POWERCAP_ROOT))


class RaplSampler(PowerSampler):
    """Energy counter windows; the counter updates about every millisecond, so keep windows >> 1 ms."""

    source = "rapl-counter"

    def __init__(self, root: str | Path = POWERCAP_ROOT) -> None:
        super().__init__()
        self.root = Path(root)

    def available(self) -> tuple[bool, str]:
        if not self.root.is_dir():
            return False, f"{self.root} does not exist (no RAPL powercap interface on this host, e.g. a VM)"
        try:
            zones = discover_zones(self.root)
        except (OSError, ValueError) as exc:
            return False, f"cannot read RAPL zones under {self.root}: {exc}"
        if not zones:
            return False, f"no intel-rapl:* zones under {self.root} (RAPL not exposed on this host)"
        try:
            for z in zones:
                z.read_uj()
        except PermissionError:
            return False, (
                f"permission denied reading {zones[0].path / 'energy_uj'}; run as root or "
                f"`sudo chmod o+r {self.root}/intel-rapl:*/energy_uj`"
            )
        except (OSError, ValueError) as exc:
            return False, f"cannot read RAPL counter: {exc}"
        return True, "RAPL: " + ", ".join(z.name for z in zones)

    def _snapshot(self) -> object:
        zones = discover_zones(self.root)
        return [(z, z.read_uj()) for z in zones]

    def _window(self, key: str, start_s: float, end_s: float, begin: object) -> EnergyWindow:
        energy: dict[str, float] = {}
        total = 0.0
        for zone, start_uj in begin:  # type: ignore[attr-defined]
            mj = counter_delta_uj(start_uj, zone.read_uj(), zone.max_range_uj) / 1e3
            energy[zone.name] = mj
            if zone.counted:
                total += mj
        notes = (
            ("window shorter than 10 ms; RAPL counters update about every 1 ms",)
            if end_s - start_s < 0.01
            else ()
        )
        return EnergyWindow(key, start_s, end_s, energy, total, self.source, notes)
