"""The energy measurement every sampled backend shares: idle baseline, long-enough windows, ∫P dt.

Procedure (one :class:`EnergyMeter` per device and sensor):

1. the sensor's update period is found by polling (:mod:`.update_period`), once;
2. an idle baseline: power sampled with nothing running, for a window of the same minimum length;
3. a measured window: the workload (a layer or the model, one inference or one training step per call) is
   repeated until the window is at least ``period_factor`` × the update period *and* ``min_window_s``
   (10× and 1 s by default), with power sampled on a background thread against the monotonic clock;
4. energy = ∫ P dt over the window (trapezoids); dynamic energy = energy − idle power × duration; both are
   divided by the iterations for per-inference figures;
5. where the source has a hardware energy counter (NVML total energy on Volta and newer) it is read at both
   ends of the same window; both numbers are kept and a relative disagreement above ``counter_tolerance``
   (5 %) flags the result.

A window that cannot satisfy the sensor (too short, too few samples) is refused with
:class:`WindowTooShortError` naming the numbers; it is never reported as 0 J.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hwnas.errors import MeasurementError
from hwnas.profilers.power.integrate import integrate_mj, samples_within
from hwnas.profilers.power.sampling import BackgroundSampler, Clock, PowerSample, PowerSource
from hwnas.profilers.power.update_period import UpdatePeriod, find_update_period

MIN_WINDOW_S = 1.0
PERIOD_FACTOR = 10.0
COUNTER_TOLERANCE = 0.05
MIN_SAMPLES = 10  # distinct readings inside a window: fewer and the integral is a few rectangles


class WindowTooShortError(MeasurementError):
    """A window too short for the sensor: it would integrate too few readings to mean anything."""


@dataclass(frozen=True)
class IdleBaseline:
    power_mw: float
    duration_s: float
    n_samples: int
    rails_mw: dict[str, float]


@dataclass(frozen=True)
class EnergyResult:
    """One measured window. Energies in mJ, power in mW, times in s.

    ``total_mj`` is the energy the record reports: the hardware counter where there is one, else the
    integral; ``integral_mj`` and ``counter_mj`` are both kept. ``dynamic_mj`` subtracts idle power.
    """

    key: str
    source: str
    iterations: int
    duration_s: float
    total_mj: float
    integral_mj: float
    counter_mj: float | None
    counter_disagreement: float | None  # |counter − integral| / counter
    flagged: bool
    idle_power_mw: float | None
    dynamic_mj: float | None
    average_power_mw: float
    n_samples: int
    sampling_interval_s: float
    update_period_s: float
    rails_mj: dict[str, float]
    total_rule: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def per_iteration_mj(self) -> float:
        return self.total_mj / self.iterations

    @property
    def per_iteration_dynamic_mj(self) -> float | None:
        return None if self.dynamic_mj is None else self.dynamic_mj / self.iterations

    @property
    def dynamic_power_mw(self) -> float | None:
        return None if self.dynamic_mj is None else self.dynamic_mj / self.duration_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_iteration_mj"] = self.per_iteration_mj
        d["per_iteration_dynamic_mj"] = self.per_iteration_dynamic_mj
        d["notes"] = list(self.notes)
        return d


class EnergyMeter:
    """Measures energy windows over one :class:`PowerSource` (see the module docstring)."""

    def __init__(
        self,
        source: PowerSource,
        *,
        sampling_hz: float = 50.0,
        min_window_s: float = MIN_WINDOW_S,
        period_factor: float = PERIOD_FACTOR,
        max_window_s: float = 60.0,
        counter_tolerance: float = COUNTER_TOLERANCE,
        min_samples: int = MIN_SAMPLES,
        poll_max_s: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if sampling_hz <= 0:
            raise ValueError(f"sampling_hz must be > 0, got {sampling_hz}")
        self.source = source
        self.sampling_hz = float(sampling_hz)
        self.min_window_s = float(min_window_s)
        self.period_factor = float(period_factor)
        self.max_window_s = float(max_window_s)
        self.counter_tolerance = float(counter_tolerance)
        self.min_samples = int(min_samples)
        self.poll_max_s = float(poll_max_s)
        self.clock = clock
        self._period: UpdatePeriod | None = None  # see update_period()
        self.baseline: IdleBaseline | None = None
        self._open: dict[str, tuple[float, BackgroundSampler, float | None]] = {}

    # ---- the sensor ------------------------------------------------------------------------------
    def update_period(self) -> UpdatePeriod:
        """Found by polling the total power once, then cached."""
        if self._period is None:
            self._period = find_update_period(
                lambda: self.source.read(self.clock).total_mw, max_s=self.poll_max_s, clock=self.clock
            )
        return self._period

    def poll_update_period_under(self, run: Callable[[], object], sync: Callable[[], None] | None = None
                                 ) -> UpdatePeriod:  # fmt: skip
        """Find the update period while ``run`` keeps the device busy (an idle sensor may not change at
        all); the poller runs on its own thread, the workload in this one."""
        import threading

        box: dict[str, Any] = {}

        def poll() -> None:
            try:
                box["p"] = find_update_period(lambda: self.source.read(self.clock).total_mw,
                                              max_s=self.poll_max_s, clock=self.clock)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread below
                box["error"] = exc

        t = threading.Thread(target=poll, name="hwnas-update-period", daemon=True)
        t.start()
        while t.is_alive():
            run()
            if sync is not None:
                sync()
        t.join()
        if "error" in box:
            raise box["error"]
        self._period = box["p"]
        return self._period

    def set_update_period(self, period: UpdatePeriod) -> None:
        """Use a period found elsewhere (e.g. polled while the workload ran)."""
        self._period = period

    def required_window_s(self) -> float:
        """max(min_window_s, period_factor × update period)."""
        return max(self.min_window_s, self.period_factor * self.update_period().period_s)

    @property
    def sampling_interval_s(self) -> float:
        return 1.0 / self.sampling_hz

    # ---- windows ---------------------------------------------------------------------------------
    def begin_window(self, key: str) -> None:
        if key in self._open:
            raise ValueError(f"energy window {key!r} is already open")
        self.update_period()  # poll before the window, never inside it
        sampler = BackgroundSampler(self.source, self.sampling_interval_s, self.clock)
        sampler.start()  # first: its opening reading lies before the window, whatever starting it cost
        # The counter and the window's clock are read back to back (as at the end), so the counter and the
        # integral cover the same interval; a thread start between them (tens of ms on a loaded machine)
        # would otherwise count in the counter only and read as a disagreement.
        counter0 = self.source.energy_counter_mj()
        self._open[key] = (self.clock(), sampler, counter0)

    def end_window(self, key: str, iterations: int = 1, *, subtract_idle: bool = True) -> EnergyResult:
        """Close ``key``; raises :class:`WindowTooShortError` when the window cannot satisfy the sensor."""
        if key not in self._open:
            raise ValueError(f"energy window {key!r} was never opened (open: {sorted(self._open)})")
        t0, sampler, counter0 = self._open.pop(key)
        t1 = self.clock()
        counter1 = self.source.energy_counter_mj()
        samples = sampler.stop()
        return self._result(key, t0, t1, samples, counter0, counter1, iterations, subtract_idle)

    def _check_window(self, key: str, duration: float, n_inside: int) -> None:
        period = self.update_period()
        need = self.required_window_s()
        if duration < need:
            raise WindowTooShortError(
                f"energy window {key!r} lasted {duration * 1e3:.1f} ms, shorter than the "
                f"{need * 1e3:.0f} ms the sensor needs (max({self.min_window_s:g} s, "
                f"{self.period_factor:g} x {period.describe()}))",
                hint="repeat the workload inside the window (EnergyMeter.measure does) instead of "
                "reporting 0 J",
            )
        if n_inside < self.min_samples:
            raise WindowTooShortError(
                f"energy window {key!r} holds {n_inside} power samples, fewer than {self.min_samples}",
                hint=f"raise power.sampling_hz (now {self.sampling_hz:g} Hz) or lengthen the window",
            )

    def _result(self, key: str, t0: float, t1: float, samples: list[PowerSample], counter0: float | None,
                counter1: float | None, iterations: int, subtract_idle: bool) -> EnergyResult:  # fmt: skip
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        duration = t1 - t0
        times = [s.t_s for s in samples]
        self._check_window(key, duration, samples_within(times, t0, t1))
        integral = integrate_mj(times, [s.total_mw for s in samples], t0, t1)
        rails = sorted({r for s in samples for r in s.rails_mw})
        rails_mj = {
            r: integrate_mj(times, [s.rails_mw.get(r, float("nan")) for s in samples], t0, t1) for r in rails
        }
        notes: list[str] = []
        counter_mj = disagreement = None
        flagged = False
        if counter0 is not None and counter1 is not None:
            counter_mj = float(counter1 - counter0)
            if counter_mj <= 0:
                notes.append(f"energy counter did not advance ({counter0} -> {counter1} mJ); integral used")
                flagged = True
                counter_mj = None
            else:
                disagreement = abs(counter_mj - integral) / counter_mj
                if disagreement > self.counter_tolerance:
                    flagged = True
                    notes.append(
                        f"energy counter {counter_mj:.1f} mJ and sampled integral {integral:.1f} mJ differ "
                        f"by "
                        f"{disagreement * 100:.1f} % (> {self.counter_tolerance * 100:g} %)"
                    )
        total = counter_mj if counter_mj is not None else integral
        idle = self.baseline.power_mw if (subtract_idle and self.baseline is not None) else None
        dynamic = None if idle is None else total - idle * duration
        if dynamic is not None and dynamic < 0:
            notes.append(
                f"dynamic energy {dynamic:.1f} mJ is negative: the workload drew less than the idle baseline "
                f"({idle:.0f} mW); the baseline is stale or the workload too small to see"
            )
        period = self.update_period()
        if period.lower_bound:
            notes.append(period.describe())
        source = f"{self.source.name}-counter" if counter_mj is not None else (
            f"{self.source.name}-samples@{self.sampling_hz:g}Hz")  # fmt: skip
        return EnergyResult(
            key=key, source=source, iterations=iterations, duration_s=duration, total_mj=total,
            integral_mj=integral, counter_mj=counter_mj, counter_disagreement=disagreement, flagged=flagged,
            idle_power_mw=idle, dynamic_mj=dynamic, average_power_mw=total / duration,
            n_samples=samples_within(times, t0, t1), sampling_interval_s=self.sampling_interval_s,
            update_period_s=period.period_s, rails_mj=rails_mj, total_rule=self.source.total_rule,
            notes=tuple(notes),
        )  # fmt: skip

    # ---- the procedure ---------------------------------------------------------------------------
    def measure_idle(self, seconds: float | None = None, *, settle: Callable[[], None] | None = None
                     ) -> IdleBaseline:  # fmt: skip
        """Sample with nothing running for ``seconds`` (default: the required window) and keep it."""
        if settle is not None:
            settle()
        need = self.required_window_s() if seconds is None else float(seconds)
        sampler = BackgroundSampler(self.source, self.sampling_interval_s, self.clock)
        sampler.start()
        t0 = self.clock()
        while self.clock() - t0 < need:
            time.sleep(min(0.05, need / 20))
        t1 = self.clock()
        samples = sampler.stop()
        times = [s.t_s for s in samples]
        self._check_window("idle", t1 - t0, samples_within(times, t0, t1))
        energy = integrate_mj(times, [s.total_mw for s in samples], t0, t1)
        rails = sorted({r for s in samples for r in s.rails_mw})
        rails_mw = {
            r: integrate_mj(times, [s.rails_mw.get(r, float("nan")) for s in samples], t0, t1) / (t1 - t0)
            for r in rails
        }
        self.baseline = IdleBaseline(energy / (t1 - t0), t1 - t0, samples_within(times, t0, t1), rails_mw)
        return self.baseline

    def measure(self, run: Callable[[], object], *, key: str = "window",
                sync: Callable[[], None] | None = None, warmup: int = 1) -> EnergyResult:  # fmt: skip
        """Repeat ``run`` until the window is long enough, then integrate. ``sync`` (e.g.
        ``torch.cuda.synchronize``) is called before each end of the window so queued GPU work counts."""
        for _ in range(warmup):
            run()
        if sync is not None:
            sync()
        need = self.required_window_s()
        if need > self.max_window_s:
            raise WindowTooShortError(
                f"the sensor needs windows of {need:.1f} s but max_window_s is {self.max_window_s:g} s "
                f"({self.update_period().describe()})",
                hint="raise max_window_s, or check that the sensor updates at all",
            )
        self.begin_window(key)
        n = 0
        t0 = self.clock()
        try:
            while True:
                run()
                n += 1
                if self.clock() - t0 >= need:
                    if sync is not None:
                        sync()
                    if self.clock() - t0 >= need:
                        break
        except BaseException:
            _, sampler, _ = self._open.pop(key)
            try:
                sampler.stop()
            except Exception:  # noqa: BLE001 - the workload's error is the one to report
                pass
            raise
        return self.end_window(key, iterations=n)
