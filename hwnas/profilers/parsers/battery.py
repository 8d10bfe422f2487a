"""Android battery state → volts, signed amperes, watts: `dumpsys battery` and power-supply uevent dumps.

Two layouts, told apart by structure:
- ``dumpsys battery``: ``Current Battery Service state:`` then indented ``key: value`` lines. AOSP units:
  ``voltage`` mV, ``temperature`` 0.1 °C, ``Charge counter`` µAh (0 = not reported), ``status`` a
  ``BatteryManager`` code (2 charging, 3 discharging, 4 not charging, 5 full). AOSP prints no current, so
  ``current_a`` and ``power_w`` are null; vendor lines (Samsung's ``current now: ...``) have no documented
  unit and stay in ``unparsed``.
- ``/sys/class/power_supply/<name>/uevent``: ``KEY=value`` lines, with or without the ``POWER_SUPPLY_``
  prefix. Kernel ABI units (``Documentation/ABI/testing/sysfs-class-power``): ``VOLTAGE_NOW`` µV,
  ``CURRENT_NOW`` µA, ``TEMP`` 0.1 °C, ``CHARGE_COUNTER`` µAh, ``CAPACITY`` %.

**Sign.** ``current_a`` is positive when the battery discharges, whatever the vendor's convention. The
direction comes from ``STATUS`` when it says Charging or Discharging (the vendor's sign is then ignored);
otherwise from ``sign_convention``: ``"kernel"`` (the ABI: positive raw = charging), ``"inverted"`` (positive
raw = discharging, as on some Qualcomm and Xiaomi devices) or ``"unknown"`` (the default for ``auto``: no
direction can be told, so ``current_a`` keeps the raw magnitude's ABI reading and the rule says so).
``current_sign_rule`` records which rule decided. **Unit.** ``current_unit`` is ``"uA"`` (the ABI) unless a
device config says ``"mA"``; it is never inferred from the magnitude.

``unparsed`` keeps every field that is not mapped to an output key, under its own spelling (keys that
differ only by case stay apart; a repeated key keeps all its values as a list), empty values as ``""``, and
lines that are not fields under ``line <n>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import InputError

KEYS = (
    "voltage_v", "current_a", "current_sign_rule", "power_w", "charging", "temperature_c",
    "charge_counter_uah", "level_pct", "unparsed",
)  # fmt: skip
SIGN_CONVENTIONS = ("auto", "kernel", "inverted")
CURRENT_UNITS = {"uA": 1e-6, "mA": 1e-3}

_DUMPSYS_STATUS = {"1": "unknown", "2": "charging", "3": "discharging", "4": "not charging", "5": "full"}
_DUMPSYS_LINE = re.compile(r"^(\s*)([^:=]+?):\s*(.*?)\s*$")
_UEVENT_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)=(.*?)\s*$")
_INT = re.compile(r"^[-+]?\d+$")


@dataclass
class BatteryReading:
    """One battery state; ``to_dict`` gives the documented keys."""

    voltage_v: float | None = None
    current_a: float | None = None
    current_sign_rule: str | None = None
    power_w: float | None = None
    charging: bool = False
    temperature_c: float | None = None
    charge_counter_uah: int | None = None
    level_pct: float | None = None
    unparsed: dict[str, Any] = field(default_factory=dict)
    layout: str = ""  # "dumpsys" | "uevent"
    status: str | None = None  # normalised: charging, discharging, not charging, full, unknown
    plugged: tuple[str, ...] = ()  # ac, usb, wireless, dock (dumpsys) / from ONLINE (uevent)
    raw_current: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS}


def _keep(unparsed: dict[str, Any], key: str, value: str) -> None:
    if key in unparsed:
        prev = unparsed[key]
        unparsed[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
    else:
        unparsed[key] = value


def _int(value: str, src: str, key: str) -> int | None:
    if value == "":
        return None
    if not _INT.match(value):
        raise InputError(f"{src}: field {key!r}: expected an integer, got {value!r}")
    return int(value)


def detect_layout(text: str) -> str:
    """``dumpsys`` or ``uevent`` by structure; InputError when it is neither."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    uevent = sum(1 for ln in lines if _UEVENT_LINE.match(ln))
    dumpsys = sum(1 for ln in lines if _DUMPSYS_LINE.match(ln) and "=" not in ln.split(":", 1)[0])
    if any("Battery Service state" in ln for ln in lines) or (dumpsys and dumpsys >= uevent):
        return "dumpsys"
    if uevent:
        return "uevent"
    return ""


def parse_battery(text: str, source: str = "<battery dump>", *, sign_convention: str = "auto",
                  current_unit: str = "uA") -> BatteryReading:  # fmt: skip
    """Parse a ``dumpsys battery`` or power-supply ``uevent`` dump (see the module doc for the rules)."""
    if not isinstance(text, str):
        raise InputError(f"{source}: expected text, got {type(text).__name__}")
    if sign_convention not in SIGN_CONVENTIONS:
        raise InputError(
            f"sign convention {sign_convention!r} is not known", hint=f"one of {SIGN_CONVENTIONS}"
        )
    if current_unit not in CURRENT_UNITS:
        raise InputError(f"current unit {current_unit!r} is not known", hint=f"one of {list(CURRENT_UNITS)}")
    layout = detect_layout(text)
    if layout == "dumpsys":
        return _parse_dumpsys(text, source)
    if layout == "uevent":
        return _parse_uevent(text, source, sign_convention, current_unit)
    raise InputError(
        f"{source}: not a battery dump: no 'key: value' lines of `dumpsys battery` and no 'KEY=value' lines "
        "of a power_supply uevent file",
        hint="capture `adb shell dumpsys battery` or `adb shell cat /sys/class/power_supply/battery/uevent`",
    )


def _parse_dumpsys(text: str, src: str) -> BatteryReading:
    r = BatteryReading(layout="dumpsys")
    known: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _DUMPSYS_LINE.match(line)
        if m is None:
            _keep(r.unparsed, f"line {n}", line.strip())
            continue
        key, value = m.group(2).strip(), m.group(3)
        if key == "Current Battery Service state" and value == "":
            continue
        if key in _DUMPSYS_KNOWN and key not in known:
            known[key] = value
        else:
            _keep(r.unparsed, key, value)
    mv = _int(known.get("voltage", ""), src, "voltage")
    r.voltage_v = None if mv is None else mv / 1000.0
    t = _int(known.get("temperature", ""), src, "temperature")
    r.temperature_c = None if t is None else t / 10.0
    cc = _int(known.get("Charge counter", ""), src, "Charge counter")
    r.charge_counter_uah = cc if cc else None  # 0 = the gauge does not report it
    level = _int(known.get("level", ""), src, "level")
    scale = _int(known.get("scale", ""), src, "scale") or 100
    r.level_pct = None if level is None else 100.0 * level / scale
    code = known.get("status", "")
    r.status = _DUMPSYS_STATUS.get(code)
    if code and r.status is None:
        _keep(r.unparsed, "status", code)
    r.plugged = tuple(
        kind for kind, key in (("ac", "AC powered"), ("usb", "USB powered"), ("wireless", "Wireless powered"),
                               ("dock", "Dock powered")) if known.get(key) == "true"
    )  # fmt: skip
    r.charging = r.status == "charging"
    r.current_sign_rule = "dumpsys battery prints no current (AOSP); vendor current lines are kept unparsed"
    for key in ("status", "health", "present", "technology", "Max charging current", "Max charging voltage",
                "AC powered", "USB powered", "Wireless powered", "Dock powered", "scale"):  # fmt: skip
        if key in known and key not in ("status", "scale"):
            r.unparsed.setdefault(key, known[key])
    return r


# dumpsys keys read into output fields (exact spelling: AOSP's; other spellings stay unparsed)
_DUMPSYS_KNOWN = frozenset({
    "voltage", "temperature", "Charge counter", "level", "scale", "status", "AC powered", "USB powered",
    "Wireless powered", "Dock powered", "health", "present", "technology", "Max charging current",
    "Max charging voltage",
})  # fmt: skip

_UEVENT_STATUS = {"Charging": "charging", "Discharging": "discharging", "Not charging": "not charging",
                  "Full": "full", "Unknown": "unknown"}  # fmt: skip
_UEVENT_USED = frozenset({"VOLTAGE_NOW", "CURRENT_NOW", "TEMP", "CHARGE_COUNTER", "CAPACITY", "STATUS"})


def _parse_uevent(text: str, src: str, convention: str, unit: str) -> BatteryReading:
    r = BatteryReading(layout="uevent")
    known: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _UEVENT_LINE.match(line)
        if m is None:
            _keep(r.unparsed, f"line {n}", line.strip())
            continue
        raw_key, value = m.group(1), m.group(2)
        key = raw_key[len("POWER_SUPPLY_") :] if raw_key.startswith("POWER_SUPPLY_") else raw_key
        if key in _UEVENT_USED and key not in known:
            known[key] = value
        else:
            _keep(r.unparsed, raw_key, value)
    uv = _int(known.get("VOLTAGE_NOW", ""), src, "VOLTAGE_NOW")
    r.voltage_v = None if uv is None else uv / 1e6
    t = _int(known.get("TEMP", ""), src, "TEMP")
    r.temperature_c = None if t is None else t / 10.0
    cc = _int(known.get("CHARGE_COUNTER", ""), src, "CHARGE_COUNTER")
    r.charge_counter_uah = cc if cc else None
    cap = _int(known.get("CAPACITY", ""), src, "CAPACITY")
    r.level_pct = None if cap is None else float(cap)
    status_text = known.get("STATUS", "")
    r.status = _UEVENT_STATUS.get(status_text)
    if status_text and r.status is None:
        _keep(r.unparsed, "STATUS", status_text)
    r.charging = r.status == "charging"
    raw = _int(known.get("CURRENT_NOW", ""), src, "CURRENT_NOW")
    r.raw_current = raw
    if raw is not None:
        r.current_a, r.current_sign_rule = signed_current(raw, r.status, convention, unit)
        if r.voltage_v:  # 0 V: no real gauge; no power from it
            r.power_w = r.voltage_v * r.current_a
    else:
        r.current_sign_rule = "no CURRENT_NOW field"
    return r


def signed_current(raw: int, status: str | None, convention: str = "auto",
                   unit: str = "uA") -> tuple[float, str]:  # fmt: skip
    """(amperes, positive = discharging; the rule that decided). See the module doc."""
    scale = CURRENT_UNITS[unit]
    mag = abs(raw) * scale
    unit_note = f"raw {raw} {unit.replace('u', 'µ')}" + (
        " (kernel ABI unit)" if unit == "uA" else " (config)"
    )
    if status == "charging":
        return -mag, f"status Charging: into the battery, negative; vendor sign ignored; {unit_note}"
    if status == "discharging":
        return mag, f"status Discharging: out of the battery, positive; vendor sign ignored; {unit_note}"
    why = f"status {status or 'missing'} gives no direction"
    if convention == "inverted":
        return raw * scale, f"{why}; device convention inverted (positive raw = discharging); {unit_note}"
    if convention == "kernel":
        return -raw * scale, f"{why}; kernel ABI convention (positive raw = charging); {unit_note}"
    return -raw * scale, (
        f"{why}; read by the kernel ABI (positive raw = charging), unverified for this device; {unit_note}"
    )
