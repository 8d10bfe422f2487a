"""How often a power sensor really updates, found by polling it (as Zeus does), never assumed.

NVML's power reading is refreshed by the driver every few tens of milliseconds (the interval varies by
GPU generation and driver), INA3221 monitors average over a programmable conversion time. Polling much
faster than that returns the same value repeatedly; the time between *changes* is the update period.
A window shorter than a few periods integrates a handful of distinct readings and is refused.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class UpdatePeriod:
    """``period_s``: median time between value changes. ``lower_bound``: fewer than 2 changes were seen
    in ``polled_s``, so the period is at least that long (the sensor looks frozen or very slow)."""

    period_s: float
    changes: int
    polls: int
    polled_s: float
    lower_bound: bool = False

    def describe(self) -> str:
        if self.lower_bound:
            return (f"sensor value changed {self.changes} time(s) in {self.polled_s:.2f} s of polling "
                    f"({self.polls} polls): update period >= {self.period_s * 1e3:.0f} ms")  # fmt: skip
        return (f"sensor update period {self.period_s * 1e3:.1f} ms (median of {self.changes} changes "
                f"over {self.polled_s:.2f} s, {self.polls} polls)")  # fmt: skip


def find_update_period(
    read: Callable[[], float],
    *,
    max_s: float = 2.0,
    min_changes: int = 10,
    poll_interval_s: float = 0.0005,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> UpdatePeriod:
    """Poll ``read`` until ``min_changes`` value changes have been seen or ``max_s`` has passed.

    The first change is only a phase reference (the poll started somewhere inside a period), so
    intervals are measured between consecutive changes after it.
    """
    if max_s <= 0 or min_changes < 2:
        raise ValueError("max_s must be > 0 and min_changes >= 2")
    t_start = clock()
    last = read()
    polls = 1
    change_times: list[float] = []
    while True:
        now = clock()
        if now - t_start >= max_s or len(change_times) >= min_changes + 1:
            break
        value = read()
        polls += 1
        if value != last:
            change_times.append(clock())
            last = value
        sleep(poll_interval_s)
    polled = clock() - t_start
    gaps = [b - a for a, b in zip(change_times[:-1], change_times[1:], strict=True)]
    if not gaps:
        return UpdatePeriod(polled, len(change_times), polls, polled, lower_bound=True)
    return UpdatePeriod(statistics.median(gaps), len(change_times), polls, polled)
