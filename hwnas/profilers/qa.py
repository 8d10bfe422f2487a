"""Measurement QA on a shared machine: what else ran while a record was measured, and whether to trust it.

Why: on the shared 2-core VM, 26 of 48 whole-model latencies re-measured minutes later were off by more than
±10 % (ratio 0.63-1.57) although each run's own ±2 % CI looked tight: the CI describes the noise *within*
a run, not the load that changed *between* runs. So every record carries an interference window (load
average, the share of the machine's CPU time other processes took, steal time, CPU frequency and thermal
throttling where the kernel exposes them), repeated whole-model runs are compared (drift), records beyond
the device config's tolerance are flagged (and re-measured by the caller once), and fits skip flagged
records. The default clock follows what the machine is doing (:func:`choose_clock`).

Everything here reads /proc and /sys only; where a file is absent (containers, VMs without cpufreq) the
field is None, never a guess.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Thresholds of the flags. A record is flagged when another process took more than this share of the
# machine's CPU time while it was measured with the wall clock (the CPU clock is immune to waiting), when
# the hypervisor stole more than STEAL_SHARE, or when the CPU throttled or changed frequency by > FREQ_REL.
OTHERS_SHARE = 0.25
STEAL_SHARE = 0.05
FREQ_REL = 0.10
SPREAD_FACTOR = 2.0  # CI half-width beyond SPREAD_FACTOR x the config's target_ci_rel is "spread"
DRIFT_TOLERANCE = 0.05  # repeated whole-model medians differing by more than this are "drift"

_CPU_SYS = Path("/sys/devices/system/cpu")
_IDENTITY = ("device", "fingerprint_id", "backend", "model_id", "scope", "layer_index", "layer_key", "metric",
             "mode", "batch_size")  # the order of Measurement.identity()  # fmt: skip


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative machine CPU time (``/proc/stat``, seconds) and this process's own CPU time."""

    total_s: float
    idle_s: float
    steal_s: float
    own_s: float
    wall: float


def _hz() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def read_cpu_times() -> CpuTimes | None:
    """Aggregate ``cpu`` line of /proc/stat (user nice system idle iowait irq softirq steal ...)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu" or len(first) < 5:
        return None
    vals = [float(v) for v in first[1:]]
    hz = _hz()
    # guest/guest_nice (fields 9-10) are already counted in user/nice
    total = sum(vals[:8]) if len(vals) >= 8 else sum(vals)
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0.0)
    steal = vals[7] if len(vals) > 7 else 0.0
    own = time.process_time()
    return CpuTimes(total / hz, idle / hz, steal / hz, own, time.perf_counter())


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def cpu_freqs_khz(root: Path = _CPU_SYS) -> list[int] | None:
    """Current frequency of each CPU (``cpufreq/scaling_cur_freq``), None where the kernel has no cpufreq."""
    freqs = [_read_int(p) for p in sorted(root.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))]
    got = [f for f in freqs if f is not None]
    return got or None


def throttle_events(root: Path = _CPU_SYS) -> int | None:
    """Sum of the thermal throttle counters (``thermal_throttle/*_throttle_count``), None where absent."""
    counts = [_read_int(p) for p in sorted(root.glob("cpu[0-9]*/thermal_throttle/*_throttle_count"))]
    got = [c for c in counts if c is not None]
    return sum(got) if got else None


class InterferenceWindow:
    """``begin()`` / ``end()`` around a measurement; ``end`` returns the fields stored in ``extra['qa']``.

    ``others_cpu_share``: share of the whole machine's CPU time (all CPUs) that processes other than this
    one used during the window; 0 on an idle machine, close to 1 - own/total when others saturate it."""

    def __init__(self) -> None:
        self._start: CpuTimes | None = None
        self._freq0: list[int] | None = None
        self._thr0: int | None = None

    def begin(self) -> InterferenceWindow:
        self._start = read_cpu_times()
        self._freq0 = cpu_freqs_khz()
        self._thr0 = throttle_events()
        return self

    def end(self) -> dict[str, Any]:
        end = read_cpu_times()
        freq1 = cpu_freqs_khz()
        thr1 = throttle_events()
        la = load_average()
        out: dict[str, Any] = {"load_avg_1m": None if la is None else round(la[0], 3), "cpus": cpu_count(),
                               "others_cpu_share": None, "steal_share": None, "window_s": None,
                               "cpu_freq_khz_min": None, "cpu_freq_khz_max": None,
                               "throttle_events": None}  # fmt: skip
        s = self._start
        if s is not None and end is not None:
            d_total = end.total_s - s.total_s
            out["window_s"] = round(end.wall - s.wall, 4)
            if d_total > 0:
                busy = d_total - (end.idle_s - s.idle_s) - (end.steal_s - s.steal_s)
                own = end.own_s - s.own_s
                out["others_cpu_share"] = round(min(1.0, max(0.0, (busy - own) / d_total)), 4)
                out["steal_share"] = round(max(0.0, (end.steal_s - s.steal_s) / d_total), 4)
        freqs = (self._freq0 or []) + (freq1 or [])
        if freqs:
            out["cpu_freq_khz_min"], out["cpu_freq_khz_max"] = min(freqs), max(freqs)
        if self._thr0 is not None and thr1 is not None:
            out["throttle_events"] = thr1 - self._thr0
        return out

    def __enter__(self) -> InterferenceWindow:
        return self.begin()

    def __exit__(self, *exc: object) -> None:
        self.result = self.end()


def drift(medians: Sequence[float]) -> float | None:
    """Relative spread of repeated whole-model medians: max / min - 1 (None for fewer than two)."""
    vals = [float(v) for v in medians if v is not None and float(v) > 0]
    if len(vals) < 2:
        return None
    return max(vals) / min(vals) - 1.0


def assess(interference: dict[str, Any] | None, *, clock: str, ci_rel: float | None = None,
           target_ci_rel: float | None = None, drift_rel: float | None = None,
           drift_tolerance: float = DRIFT_TOLERANCE) -> dict[str, Any]:  # fmt: skip
    """Flags of one record and whether it is ``flagged`` (fits skip flagged records).

    ``loaded`` applies to the wall clock only: process CPU time does not count the time spent waiting
    for a CPU another process holds (it still counts cache and memory-bandwidth contention)."""
    q = dict(interference or {})
    flags: list[str] = []
    others = q.get("others_cpu_share")
    if clock == "wall" and others is not None and others > OTHERS_SHARE:
        flags.append("loaded")
    if (q.get("steal_share") or 0.0) > STEAL_SHARE:
        flags.append("steal")
    if (q.get("throttle_events") or 0) > 0:
        flags.append("throttled")
    lo, hi = q.get("cpu_freq_khz_min"), q.get("cpu_freq_khz_max")
    if lo and hi and hi / lo - 1.0 > FREQ_REL:
        flags.append("frequency_changed")
    if ci_rel is not None and target_ci_rel is not None and ci_rel > SPREAD_FACTOR * target_ci_rel:
        flags.append("spread")
    if drift_rel is not None and drift_rel > drift_tolerance:
        flags.append("drift")
    q.update({"clock": clock, "flags": flags, "flagged": bool(flags)})
    if ci_rel is not None:
        q["ci_rel"] = round(ci_rel, 5)
    if drift_rel is not None:
        q["drift_rel"] = round(drift_rel, 5)
    return q


def ci_rel(stats: Any) -> float | None:
    """CI half-width relative to the median of a :class:`hwnas.store.records.Stats`."""
    if stats is None or not stats.median:
        return None
    return (stats.ci_high - stats.ci_low) / 2.0 / abs(stats.median)


def interleave(groups: Iterable[Sequence[T]]) -> list[T]:
    """Round-robin over groups (one job of each architecture in turn), so that slow drift of the machine
    spreads over every model instead of landing on the ones measured last."""
    lists = [list(g) for g in groups]
    out: list[T] = []
    for i in range(max((len(g) for g in lists), default=0)):
        out.extend(g[i] for g in lists if i < len(g))
    return out


def choose_clock(threads: int | None, window_s: float = 0.5) -> tuple[str, str]:
    """``(clock, reason)`` for ``--clock auto``: the CPU clock when other processes are using the machine
    and the run is single-threaded (process CPU time then equals the work's time), the wall clock
    otherwise (idle machine, or several threads whose CPU times would add up)."""
    w = InterferenceWindow().begin()
    time.sleep(window_s)
    q = w.end()
    others, la, n = q.get("others_cpu_share"), q.get("load_avg_1m"), q.get("cpus") or 1
    busy = (others is not None and others > OTHERS_SHARE) or (la is not None and la > 0.5 * n)
    state = (f"load average {la if la is not None else '?'} on {n} CPU(s), other processes used "
             f"{'?' if others is None else f'{others * 100:.0f} %'} of the CPU time")  # fmt: skip
    if busy and (threads or 1) == 1:
        return "cpu", f"cpu clock: the machine is busy ({state}); process CPU time measures the work"
    if busy:
        return "wall", (f"wall clock: the machine is busy ({state}) but {threads} threads would add their "
                        "CPU times; records taken under load are flagged")  # fmt: skip
    return "wall", f"wall clock: the machine is quiet ({state})"


class QAStore:
    """A store wrapper that attaches QA to every record a profiler writes, whatever the backend.

    Profilers write each record as soon as it is measured, so the time between two writes is the
    measurement window of the second: an :class:`InterferenceWindow` runs across it. A whole-model record
    that replaces an earlier one of the same identity (a re-measurement) is compared with it (drift).
    Everything else is passed to the wrapped store unchanged."""

    def __init__(self, store: Any, *, clock: str, target_ci_rel: float | None,
                 drift_tolerance: float = DRIFT_TOLERANCE) -> None:  # fmt: skip
        self._store = store
        self.clock = clock
        self.target_ci_rel = target_ci_rel
        self.drift_tolerance = drift_tolerance
        self.previous: dict[tuple[Any, ...], list[float]] = {}
        self.flagged: list[Any] = []
        self.added = 0
        self._window = InterferenceWindow().begin()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __enter__(self) -> QAStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._store.close()

    def remember(self, measurements: Iterable[Any]) -> None:
        """Keep the medians of records about to be re-measured, for the drift of the new ones."""
        for m in measurements:
            value = m.stats.median if m.stats is not None else m.value
            self.previous.setdefault(m.identity(), []).append(float(value))

    def add(self, measurement: Any) -> None:
        m = measurement
        interference = self._window.end()
        timed = m.metric.endswith("_ms")
        before = list(self.previous.get(m.identity(), []))
        if timed and m.scope == "model" and not before:
            old = self._store.query(**dict(zip(_IDENTITY, m.identity(), strict=True)))
            before = [float(r.stats.median if r.stats else r.value) for r in old]
        value = float(m.stats.median if m.stats is not None else m.value)
        d = drift([*before, value]) if timed and before else None
        q = assess(interference if timed else {**interference, "untimed": True}, clock=self.clock,
                   ci_rel=ci_rel(m.stats) if timed else None,
                   target_ci_rel=self.target_ci_rel, drift_rel=d,
                   drift_tolerance=self.drift_tolerance)  # fmt: skip
        if not timed:
            q["flags"], q["flagged"] = [], False
        if before:
            q["previous_medians"] = [round(v, 6) for v in before]
        m.extra = {**m.extra, "qa": q}
        self._store.add(m)
        self.added += 1
        if q["flagged"]:
            self.flagged.append(m)
        self._window = InterferenceWindow().begin()
