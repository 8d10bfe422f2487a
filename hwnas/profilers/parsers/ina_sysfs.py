"""Find Jetson power rails by scanning sysfs: INA3221 (legacy IIO and hwmon) and INA238 (Thor) layouts.

Three layouts, each found by walking the driver's directory rather than trusting one path:

- **legacy ``ina3221x`` IIO** (TX1/TX2/Nano, L4T <= R32):
  ``/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<N>/`` (some releases: ``iio_device``), channels
  0-based: ``rail_name_<c>`` (label), ``in_voltage<c>_input`` (mV), ``in_current<c>_input`` (mA),
  ``in_power<c>_input`` (mW, computed by the driver; used when present, else mV × mA / 1000);
- **mainline ``ina3221`` hwmon** (JetPack 5/6, L4T R35+: Xavier NX, Orin):
  ``/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<N>/``, channels 1-3: ``in<k>_label``,
  ``in<k>_input`` (bus voltage, mV), ``curr<k>_input`` (mA); no power file, so mW = mV × mA / 1000.
  ``NC`` (not connected) channels and the ``sum of shunt voltages`` channel (``in7``) are skipped;
- **``ina238`` hwmon** (Jetson Thor; one channel per chip): ``/sys/bus/i2c/drivers/ina238/<bus>-<addr>/
  hwmon/hwmon<N>/`` with ``in1_input`` (bus mV), ``curr1_input`` (mA), ``power1_input`` (**µW**, per the
  kernel's ina238 documentation); the rail name comes from a ``label``/``in1_label``/``power1_label`` file
  where the device tree gives one, else the chip's ``<bus>-<addr>``. This layout follows the kernel
  documentation and has not been checked on a Thor board.

The scanner is pure over a root directory (``/`` on a board, a temporary tree in tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hwnas.profilers.parsers.jetson_rails import SKIP_RAILS

LEGACY = "ina3221x-iio"
HWMON = "ina3221-hwmon"
INA238 = "ina238-hwmon"
DRIVER_DIRS = {
    LEGACY: "sys/bus/i2c/drivers/ina3221x",
    HWMON: "sys/bus/i2c/drivers/ina3221",
    INA238: "sys/bus/i2c/drivers/ina238",
}
_CHIP = re.compile(r"^\d+-[0-9a-fA-F]{4}$")


@dataclass(frozen=True)
class RailChannel:
    """One monitored rail: where its files are and how to turn them into mW."""

    name: str
    layout: str
    directory: Path
    channel: int
    power_file: str | None  # a file with power (legacy: mW, ina238: µW)
    voltage_file: str | None  # mV
    current_file: str | None  # mA

    def read_mw(self) -> float:
        if self.power_file is not None:
            raw = _read_number(self.directory / self.power_file)
            return raw / 1000.0 if self.layout == INA238 else raw
        if self.voltage_file is None or self.current_file is None:
            raise OSError(f"rail {self.name} at {self.directory}: no power file and no voltage/current pair")
        mv = _read_number(self.directory / self.voltage_file)
        ma = _read_number(self.directory / self.current_file)
        return mv * ma / 1000.0

    def describe(self) -> str:
        how = self.power_file or f"{self.voltage_file} x {self.current_file}"
        return f"{self.name} ({self.layout}, {self.directory}, {how})"


def _read_number(path: Path) -> float:
    text = path.read_text().strip()
    try:
        return float(text)
    except ValueError as exc:
        raise OSError(f"{path}: expected a number, got {text!r}") from exc


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _chips(driver_dir: Path) -> list[Path]:
    if not driver_dir.is_dir():
        return []
    return sorted(p for p in driver_dir.iterdir() if _CHIP.match(p.name))


def _legacy(chip: Path) -> list[RailChannel]:
    out: list[RailChannel] = []
    for dev in sorted(chip.glob("iio*device*")):
        for label_file in sorted(dev.glob("rail_name_*")):
            c = int(label_file.name.rsplit("_", 1)[1])
            name = _read_text(label_file) or f"{chip.name}/{c}"
            if name in SKIP_RAILS:
                continue
            power = f"in_power{c}_input"
            v, i = f"in_voltage{c}_input", f"in_current{c}_input"
            out.append(RailChannel(
                name, LEGACY, dev, c, power if (dev / power).exists() else None,
                v if (dev / v).exists() else None, i if (dev / i).exists() else None,
            ))  # fmt: skip
    return out


def _hwmon_dirs(chip: Path) -> list[Path]:
    return sorted((chip / "hwmon").glob("hwmon*")) if (chip / "hwmon").is_dir() else []


def _ina3221_hwmon(chip: Path) -> list[RailChannel]:
    out: list[RailChannel] = []
    for hw in _hwmon_dirs(chip):
        for k in (1, 2, 3):  # in4-6 are shunt voltages, in7 their sum: not rails
            label = _read_text(hw / f"in{k}_label")
            if label is None or label in SKIP_RAILS:
                continue
            if not (hw / f"in{k}_input").exists() or not (hw / f"curr{k}_input").exists():
                continue
            out.append(RailChannel(label, HWMON, hw, k, None, f"in{k}_input", f"curr{k}_input"))
    return out


def _ina238(chip: Path) -> list[RailChannel]:
    out: list[RailChannel] = []
    for hw in _hwmon_dirs(chip):
        label = next((t for t in (_read_text(hw / f) for f in ("label", "in1_label", "power1_label")) if t),
                     None) or _read_text(chip / "label") or chip.name  # fmt: skip
        if label in SKIP_RAILS:
            continue
        power = "power1_input" if (hw / "power1_input").exists() else None
        v = "in1_input" if (hw / "in1_input").exists() else None
        i = "curr1_input" if (hw / "curr1_input").exists() else None
        if power is None and (v is None or i is None):
            continue
        out.append(RailChannel(label, INA238, hw, 1, power, v, i))
    return out


_SCANNERS = {LEGACY: _legacy, HWMON: _ina3221_hwmon, INA238: _ina238}


def scan_rails(root: str | Path = "/") -> list[RailChannel]:
    """Every rail under ``root`` in every known layout, in layout then chip then channel order."""
    root = Path(root)
    rails: list[RailChannel] = []
    for layout, rel in DRIVER_DIRS.items():
        for chip in _chips(root / rel):
            rails.extend(_SCANNERS[layout](chip))
    return rails


def searched_paths(root: str | Path = "/") -> list[str]:
    return [str(Path(root) / rel) for rel in DRIVER_DIRS.values()]
