"""Phone battery power over adb: the power-supply sysfs sampled on the phone during a window.

``begin_window`` starts a logger on the phone (``/proc/uptime`` and ``<battery_path>/uevent`` every
``1/power.sampling_hz`` s into a file in ``remote_dir``), so sampling never competes with the benchmark for
the adb link; ``end_window`` stops it, reads the log back and averages V × I over uptime (trapezoids);
the window's energy is that mean power times the window's length (the samples cover less than it).
Units and sign per ``hwnas.profilers.parsers.battery`` (``connection.current_unit``,
``connection.sign_convention``; the direction from ``STATUS`` first).

Refused, with the reason, never reported as a number:
- a gauge that reads zero volts or zero amperes (emulators, boards without a fuel gauge);
- a phone that is not discharging: on USB (or any charger) the battery current is the charger's current
  minus the load, or near zero when the charger powers the phone, so it does not measure the device's
  draw. Connect over Wi-Fi (``connection.transport: tcp``) with the cable out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import InputError, MeasurementError
from hwnas.profilers.power.base import EnergyWindow, PowerSampler

CHARGING_CAVEAT = (
    "the phone is not discharging (status {status}): on USB or a charger the battery current is charger "
    "current minus load, not the device's draw; unplug it and connect over Wi-Fi (connection.transport: tcp)"
)


@dataclass(frozen=True)
class BatterySample:
    t_s: float
    voltage_v: float | None
    current_a: float | None
    status: str | None
    rule: str | None


def parse_log(text: str, sign_convention: str = "auto", current_unit: str = "uA") -> list[BatterySample]:
    """The logger's output: blocks of ``<uptime> <idle>`` then uevent lines, separated by ``---``."""
    from hwnas.profilers.parsers.battery import parse_battery

    samples = []
    for block in text.split("---"):
        lines = [ln for ln in block.strip().splitlines() if ln.strip()]
        if len(lines) < 2:
            continue
        try:
            t = float(lines[0].split()[0])
            r = parse_battery("\n".join(lines[1:]), "battery log", sign_convention=sign_convention,
                              current_unit=current_unit)  # fmt: skip
        except (ValueError, IndexError, InputError):
            continue  # a block cut off when the logger was stopped
        samples.append(BatterySample(t, r.voltage_v, r.current_a, r.status, r.current_sign_rule))
    return samples


def energy_mj(samples: list[BatterySample]) -> tuple[float, float]:
    """(energy in mJ, mean power in mW) from the samples, trapezoidal in time; positive = drawn."""
    pts = [(s.t_s, s.voltage_v * s.current_a) for s in samples if s.voltage_v and s.current_a is not None]
    if len(pts) < 2:
        raise MeasurementError(f"battery: {len(pts)} usable sample(s) in the window; need at least 2",
                               hint="raise power.sampling_hz or run longer")  # fmt: skip
    e_j = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(pts, pts[1:], strict=False))
    dur = pts[-1][0] - pts[0][0]
    return e_j * 1000.0, (e_j / dur * 1000.0 if dur > 0 else float("nan"))


class AndroidBatterySampler(PowerSampler):
    source = "android-battery"

    def __init__(self, config: DeviceConfig, shell: Any = None) -> None:
        super().__init__()
        from hwnas.profilers.adb import AdbSettings

        self.config = config
        self.settings = AdbSettings.from_config(config)
        self._shell = shell
        self.hz = float(config.power.sampling_hz)
        self.log = f"{self.settings.remote_dir.rstrip('/')}/battery.log"

    @property
    def shell(self) -> Any:
        if self._shell is None:
            from hwnas.profilers.android_tflite import shell_for

            self._shell = shell_for(self.config)
        return self._shell

    def read_now(self) -> Any:
        from hwnas.profilers.parsers.battery import parse_battery

        text = self.shell.run(["cat", f"{self.settings.battery_path.rstrip('/')}/uevent"])
        return parse_battery(text, "battery uevent", sign_convention=self.settings.sign_convention,
                             current_unit=self.settings.current_unit)  # fmt: skip

    def available(self) -> tuple[bool, str]:
        try:
            r = self.read_now()
        except Exception as exc:  # no phone, no such file: say why
            return False, f"battery uevent unreadable: {getattr(exc, 'message', exc)}"
        if not r.voltage_v or not r.raw_current:
            return False, (f"the battery gauge reports zeros (voltage {r.voltage_v} V, current "
                           f"{r.raw_current}): no real fuel gauge, so no power readings")  # fmt: skip
        if r.status != "discharging":
            return False, CHARGING_CAVEAT.format(status=r.status or "unknown")
        return True, f"battery gauge at {self.settings.battery_path} (status discharging)"

    def _snapshot(self) -> object:
        period = 1.0 / max(self.hz, 0.1)
        uevent = shlex.quote(f"{self.settings.battery_path.rstrip('/')}/uevent")
        log = shlex.quote(self.log)
        loop = (f"while :; do cat /proc/uptime; cat {uevent}; echo ---; sleep {period:.3f}; done "
                f"> {log} 2>/dev/null & echo $!")  # fmt: skip
        pid = self.shell.run(["sh", "-c", loop]).strip().splitlines()[-1].strip()
        if not pid.isdigit():
            raise MeasurementError(f"battery logger did not start on the phone (got {pid!r})")
        return pid

    def _window(self, key: str, start_s: float, end_s: float, begin: object) -> EnergyWindow:
        self.shell.run(["kill", str(begin)], check=False)
        samples = parse_log(self.shell.run(["cat", self.log], check=False), self.settings.sign_convention,
                            self.settings.current_unit)  # fmt: skip
        zeros = [s for s in samples if not s.voltage_v or not s.current_a]
        if samples and len(zeros) == len(samples):
            raise MeasurementError("battery: the gauge read zero volts or amperes in every sample; refused")
        not_dis = sorted({s.status or "unknown" for s in samples if s.status != "discharging"})
        if not_dis:
            raise MeasurementError("battery: " + CHARGING_CAVEAT.format(status=", ".join(not_dis)))
        sampled_mj, mean_mw = energy_mj(samples)
        span_s = samples[-1].t_s - samples[0].t_s
        if not span_s > 0:
            raise MeasurementError(f"battery: {len(samples)} samples all at uptime {samples[0].t_s} s",
                                   hint="run longer, or lower power.sampling_hz")  # fmt: skip
        # The samples span only part of the window (the logger starts after begin_window and its last line
        # comes before end_window, on another clock), while the caller divides by the runs of the whole
        # window: the window's energy is the sampled mean power times the window's length.
        total = mean_mw * (end_s - start_s)  # mW x s = mJ
        notes = (f"{len(samples)} samples at {len(samples) / span_s:.1f} Hz over {span_s:.2f} s of the "
                 f"{end_s - start_s:.2f} s window (phone uptime clock; {sampled_mj:.1f} mJ in that span)",
                 f"mean power {mean_mw:.0f} mW x the window", samples[-1].rule or "")  # fmt: skip
        return EnergyWindow(key, start_s, end_s, {"battery": total}, total,
                            f"android-battery-samples@{self.hz:g}Hz", notes)  # fmt: skip


def from_config(config: DeviceConfig) -> AndroidBatterySampler:
    return AndroidBatterySampler(config)
