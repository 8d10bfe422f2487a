"""One small interface for every power source: named measurement windows (as Zeus's ZeusMonitor).

``begin_window(key)`` notes the counters, ``end_window(key)`` returns an :class:`EnergyWindow` that says
where its numbers came from (``rapl-counter``, ``nvml-samples@50Hz``, ...). A source that is absent says
why (``available()``) instead of returning zero joules.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field

from hwnas.errors import DeviceUnavailableError


class SamplerUnavailable(DeviceUnavailableError):
    """The power source is missing on this host, or readable only with privileges (the hint says how)."""


@dataclass(frozen=True)
class EnergyWindow:
    """Energy over one window: per zone/rail in millijoules, the total, and its source."""

    key: str
    start_s: float
    end_s: float
    energy_mj: dict[str, float]
    total_mj: float
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def average_power_mw(self) -> float:
        return self.total_mj / self.duration_s if self.duration_s > 0 else float("nan")


class PowerSampler(abc.ABC):
    """Named, possibly overlapping windows over one power source."""

    source: str = "unknown"

    def __init__(self) -> None:
        self._open: dict[str, tuple[float, object]] = {}

    @abc.abstractmethod
    def available(self) -> tuple[bool, str]:
        """(True, description) when readable here, else (False, why and how to fix)."""

    @abc.abstractmethod
    def _snapshot(self) -> object:
        """Read the counters (or start a sampling thread) at the start of a window."""

    @abc.abstractmethod
    def _window(self, key: str, start_s: float, end_s: float, begin: object) -> EnergyWindow:
        """Build the record from the snapshot taken at begin and the state now."""

    def begin_window(self, key: str) -> None:
        if key in self._open:
            raise ValueError(f"power window {key!r} is already open")
        ok, why = self.available()
        if not ok:
            raise SamplerUnavailable(f"energy: unavailable: {why}")
        self._open[key] = (time.monotonic(), self._snapshot())

    def end_window(self, key: str) -> EnergyWindow:
        if key not in self._open:
            raise ValueError(f"power window {key!r} was never opened (open: {sorted(self._open)})")
        start, snap = self._open.pop(key)
        return self._window(key, start, time.monotonic(), snap)
