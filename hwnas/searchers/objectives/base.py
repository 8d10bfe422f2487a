"""What a searcher evaluates: an objective maps a config to an error and measured device costs.

Costs are split from training on purpose (thesis §3.2: a DNN's power and memory do not change as it
trains, so they are *low-cost* and can be measured, or predicted, before training). ``measure_costs``
is that cheap step; ``evaluate`` trains (or looks up) and may stop early through a ``Stopper``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hwnas.searchers.space import SearchSpace

# (epoch starting at 1, validation accuracy in [0, 1], training loss) -> stop now?
Stopper = Callable[[int, float, float], bool]


@dataclass
class Evaluation:
    """The result of one evaluation. ``objective`` is minimised (validation error in [0, 1])."""

    objective: float
    measured_costs: dict[str, float] = field(default_factory=dict)
    early_stopped: bool = False
    stop_reason: str = ""
    eval_time_s: float = 0.0  # training/evaluation time: measured, or recorded in a table
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Objective(Protocol):
    """The interface searchers' ``run`` loops call. ``cost_names`` are the keys ``measure_costs``
    returns, named with units (``latency_ms``, ``memory_mb``, ``power_mw``)."""

    space: SearchSpace
    cost_names: tuple[str, ...]

    def measure_costs(self, config: Mapping[str, Any]) -> dict[str, float]: ...

    def evaluate(self, config: Mapping[str, Any], stopper: Stopper | None = None) -> Evaluation: ...


@dataclass(frozen=True)
class DivergenceStopper:
    """Early termination (thesis §3.3.3, fig. 3.4): after ``after_epochs`` epochs, a run whose
    validation accuracy is still within ``margin`` of chance is diverging and is stopped. A NaN or
    infinite loss stops it at once. This flags diverging runs; it does not predict final accuracy."""

    chance_accuracy: float = 0.1
    margin: float = 0.05
    after_epochs: int = 2

    def __call__(self, epoch: int, accuracy: float, loss: float) -> bool:
        if not math.isfinite(loss):
            return True
        return epoch >= self.after_epochs and accuracy <= self.chance_accuracy + self.margin
