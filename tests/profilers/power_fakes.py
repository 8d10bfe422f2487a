"""Fake power sources for the energy-core tests: sensors that update on a real clock like hardware does."""

from __future__ import annotations

import threading
import time

from hwnas.profilers.power.sampling import PowerSource


class SteppedSensor(PowerSource):
    """Reports ``idle_mw`` (or ``busy_mw`` while ``busy`` is set), refreshed only every ``period_s``, like
    NVML's power reading; the energy counter (if ``counter``) integrates the true power exactly, scaled by
    ``counter_scale`` to simulate a disagreeing counter."""

    name = "fake"
    total_rule = "single sensor"

    def __init__(self, idle_mw=1000.0, busy_mw=3000.0, period_s=0.01, counter=False, counter_scale=1.0,
                 frozen=False):  # fmt: skip
        self.idle_mw, self.busy_mw, self.period_s = idle_mw, busy_mw, period_s
        self.counter, self.counter_scale, self.frozen = counter, counter_scale, frozen
        self.busy = threading.Event()
        self._lock = threading.Lock()
        self._t_last = time.monotonic()
        self._energy_mj = 0.0
        self._shown = idle_mw
        self._t_shown = self._t_last

    def _true_mw(self) -> float:
        return self.busy_mw if self.busy.is_set() else self.idle_mw

    def _advance(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._energy_mj += self._true_mw() * (now - self._t_last)
            self._t_last = now
            if not self.frozen and now - self._t_shown >= self.period_s:
                self._shown = self._true_mw() + (now * 1e3 % 1.0) * 1e-3  # tiny jitter: values change
                self._t_shown = now

    def read_rails_mw(self):
        self._advance()
        return {"GPU": self._shown}

    def total_mw(self, rails_mw):
        return rails_mw["GPU"]

    def energy_counter_mj(self):
        if not self.counter:
            return None
        self._advance()
        return self._energy_mj * self.counter_scale

    def run(self, seconds=0.004):
        """A workload: busy for ``seconds``."""
        self.busy.set()
        self._advance()
        time.sleep(seconds)
        self._advance()
        self.busy.clear()
