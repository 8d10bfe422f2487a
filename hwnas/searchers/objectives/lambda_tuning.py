"""Tuning the runtime weight λ of a one-shot search as a black-box problem (Stamoulis thesis §6.3).

Eq. 6.2: maximise over λ  Acc(λ) · (R(λ) / R_T)^w,  w = 0 if R(λ) <= R_T else −1,
where each evaluation is a *whole* one-shot search run with that λ (accuracy and runtime of the network
it derives). As an :class:`~hwnas.searchers.objectives.base.Objective` it plugs into every black-box
searcher of ``searchers/`` unchanged (vanilla BO, random search: thesis methods 1 and 3, and HyperPower's
machinery), minimising ``1 − reward``. The search itself is injected (``run_search(λ) -> SearchOutcome``),
so the same objective tunes Single-Path NAS, the multi-path baseline or FBNetV2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import InputError
from hwnas.searchers.objectives.base import Evaluation, Stopper
from hwnas.searchers.space import FloatParam, SearchSpace


@dataclass
class SearchOutcome:
    """What one search run with a given λ produced."""

    accuracy: float  # validation accuracy of the derived network, in [0, 1]
    runtime_ms: float  # its runtime R (predicted by the runtime model, or measured)
    info: dict[str, Any] = field(default_factory=dict)


def reward(accuracy: float, runtime_ms: float, target_ms: float) -> float:
    """Eq. 6.2's objective value: accuracy, divided by R/R_T when R exceeds the target."""
    w = 0.0 if runtime_ms <= target_ms else -1.0
    return float(accuracy * (runtime_ms / target_ms) ** w)


class LambdaTuningObjective:
    """Black-box objective over ``lam`` (log scale in ``[low, high]``): ``1 − reward`` (eq. 6.2)."""

    cost_names = ("latency_ms",)
    chance_accuracy = None

    def __init__(
        self,
        run_search: Callable[[float], SearchOutcome],
        target_ms: float,
        *,
        low: float = 1e-3,
        high: float = 10.0,
    ) -> None:
        if not target_ms > 0:
            raise InputError(f"target runtime must be > 0 ms, got {target_ms}")
        if not 0 < low < high:
            raise InputError(f"λ range must satisfy 0 < low < high, got [{low}, {high}]")
        self.run_search = run_search
        self.target_ms = float(target_ms)
        self.space = SearchSpace.of([FloatParam("lam", low, high, log=True)], name="one-shot-lambda")

    def measure_costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {}  # R is known only once the search has run; no budget is checked before it

    def evaluate(self, config: Mapping[str, Any], stopper: Stopper | None = None) -> Evaluation:
        t0 = time.perf_counter()
        out = self.run_search(float(config["lam"]))
        r = reward(out.accuracy, out.runtime_ms, self.target_ms)
        return Evaluation(
            objective=1.0 - r,
            measured_costs={"latency_ms": float(out.runtime_ms)},
            eval_time_s=time.perf_counter() - t0,
            info={"accuracy": out.accuracy, "reward": r, "target_ms": self.target_ms, **out.info},
        )


def tune_lambda(
    objective: LambdaTuningObjective,
    searcher: str = "bo_vanilla",
    n_evals: int = 8,
    *,
    seed: int = 0,
    callback: Callable[[Any], None] | None = None,
) -> Any:
    """Run black-box ``searcher`` (``bo_vanilla``, ``random_search`` ...) for ``n_evals`` searches;
    returns its History (best = highest eq. 6.2 reward)."""
    from hwnas.searchers.registry import make_searcher

    s = make_searcher(searcher, objective.space, seed=seed, early_termination=False)
    h = s.run(objective, n_evals, callback=callback)
    h.meta.update({"objective": "lambda-tuning (eq. 6.2)", "target_ms": objective.target_ms})
    return h
