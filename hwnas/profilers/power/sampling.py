"""Power sources and the background sampler every sampled backend shares (NVML, INA3221 rails, ...).

A :class:`PowerSource` reads instantaneous power per rail (mW), names the rule that turns rails into one
total, and may expose a hardware energy counter (NVML's total energy on Volta and newer). The
:class:`BackgroundSampler` polls a source on its own thread, stamping each reading with the monotonic
clock, so that the measured work in the main thread is never interrupted to read a sensor.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class PowerSample:
    """One reading: monotonic time (s), power per rail (mW) and the total by the source's rule."""

    t_s: float
    rails_mw: dict[str, float]
    total_mw: float


class PowerSource(abc.ABC):
    """Something that reports instantaneous power (and perhaps an energy counter)."""

    #: short name used in record sources, e.g. ``nvml`` or ``ina3221``
    name: str = "power"
    #: how ``total_mw`` is formed from the rails (e.g. "VDD_IN is the module input; other rails not added")
    total_rule: str = "single sensor"

    @abc.abstractmethod
    def read_rails_mw(self) -> dict[str, float]:
        """Instantaneous power per rail in mW."""

    @abc.abstractmethod
    def total_mw(self, rails_mw: dict[str, float]) -> float:
        """The power the measurement reports, from one reading of the rails."""

    def energy_counter_mj(self) -> float | None:
        """A hardware energy counter in mJ (monotonic, since some origin), or None where there is none."""
        return None

    def read(self, clock: Clock = time.monotonic) -> PowerSample:
        rails = self.read_rails_mw()
        return PowerSample(clock(), rails, float(self.total_mw(rails)))


@dataclass
class BackgroundSampler:
    """Polls ``source`` every ``interval_s`` on a daemon thread between :meth:`start` and :meth:`stop`.

    A failing read stops the thread; :meth:`stop` re-raises it, so a broken sensor is never a silent gap.
    """

    source: PowerSource
    interval_s: float
    clock: Clock = time.monotonic
    samples: list[PowerSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError(f"sampling interval must be > 0 s, got {self.interval_s}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _loop(self) -> None:
        next_t = self.clock()
        while not self._stop.is_set():
            try:
                self.samples.append(self.source.read(self.clock))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by stop()
                self._error = exc
                return
            next_t += self.interval_s
            delay = next_t - self.clock()
            if delay < 0:  # the read took longer than the interval: do not try to catch up
                next_t = self.clock()
                delay = 0.0
            self._stop.wait(delay)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self.samples.append(self.source.read(self.clock))  # one reading before the window opens
        self._thread = threading.Thread(target=self._loop, name=f"hwnas-{self.source.name}-sampler",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self) -> list[PowerSample]:
        """Stop, take one last reading (so the window's end is covered) and return every sample."""
        if self._thread is None:
            raise RuntimeError("sampler was never started")
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        self.samples.append(self.source.read(self.clock))
        return self.samples
