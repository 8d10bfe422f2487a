"""A toy objective for the Ray tests (a uniquely named module; Ray ships it to workers by value).

Each evaluation appends ``<x> <pid>`` to ``log`` before it works, so a test can see which configs ran,
how often, and in which worker process (to kill that process mid-trial). The evaluation started when
the log already has ``slow_at`` lines sleeps ``slow_s`` (first attempts only, so a killed attempt's retry
finishes quickly); the others sleep ``delay_s``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwnas.searchers.objectives.base import Evaluation
from hwnas.searchers.space import IntParam, SearchSpace


class SleepyObjective:
    cost_names = ("latency_ms",)

    def __init__(
        self, log: str | Path, delay_s: float = 0.2, slow_at: int = -1, slow_s: float = 60.0
    ) -> None:
        self.space = SearchSpace((IntParam("x", 0, 1_000_000),), name="toy")
        self.log = str(log)
        self.delay_s = delay_s
        self.slow_at = slow_at
        self.slow_s = slow_s

    def measure_costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {"latency_ms": 1.0 + (config["x"] % 10)}

    def evaluate(self, config: Mapping[str, Any], stopper: Any = None) -> Evaluation:
        x = int(config["x"])
        before = _lines(self.log)
        attempt = 1 + sum(1 for line in before if line.split()[0] == str(x))
        with open(self.log, "a") as fh:
            fh.write(f"{x} {os.getpid()}\n")
        slow = len(before) == self.slow_at and attempt == 1
        time.sleep(self.slow_s if slow else self.delay_s)
        return Evaluation(
            objective=abs(x - 500_000) / 1e6, eval_time_s=self.delay_s, info={"attempt": attempt}
        )


def _lines(path: str) -> list[str]:
    try:
        return [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        return []


def evaluations(path: str | Path) -> list[tuple[int, int]]:
    """``(x, pid)`` of every evaluation started, in order."""
    return [(int(a), int(b)) for a, b in (ln.split() for ln in _lines(str(path)))]
