"""Measure-before-train: a candidate whose feasibility is uncertain is measured on the device first.

On a new device the latency model is a few-shot fit with a wide interval, so a searcher proposes cells
whose feasibility it cannot tell. Measuring a cell's latency takes seconds, training it hours. This loop
wraps *any* ask/tell searcher (it reads only ``searcher.cost_model``) and, for each proposal, computes
P(feasible) = ∏ P(cost <= budget) from the cost model's interval:

- ``P <= low``: rejected unmeasured and untrained (told infeasible on its predicted costs);
- ``low < P < high``: a **check**: its costs are measured (``objective.measure_costs``); the cost model
  takes the measurement (``cost_model.update(point, costs)``, e.g. :class:`~hwnas.cost_models.
  fewshot_online.OnlineFewShot` refits) and the searcher drops cached predictions
  (``cost_model_updated``); measured infeasible, it is told infeasible *without training*; else trained;
- ``P >= high``: trained at once; its costs are measured after training (as a deployed network's are)
  and also given to the cost model. If they break the budget it is an *infeasible training*.

Only trainings count as evaluations: ``run(objective, n_trainings)`` stops after ``n_trainings`` of them
(or ``max_asks`` proposals, or once ``max_checks`` checks are spent: the search then stops and
``meta["measure_before_train"]["stopped"]`` says why). Every trial's ``info["mbt"]`` says which path it
took and
``history.meta["measure_before_train"]`` holds the counts (checks, measured-infeasible, rejected,
trainings, infeasible trainings). Constraints with ``>=`` are not modelled here (P = 1 for them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.base import History, Searcher, Trial
from hwnas.searchers.constraints import constraint_values, is_feasible
from hwnas.searchers.objectives.base import Objective


@dataclass
class MBTCounts:
    checks: int = 0  # measured before training
    checked_infeasible: int = 0  # ... and found over budget: not trained
    rejected: int = 0  # P(feasible) <= low: neither measured nor trained
    trainings: int = 0
    infeasible_trainings: int = 0  # trained, then measured over budget
    measured_after_training: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class MeasureBeforeTrain:
    """Run ``searcher`` with a latency check before each training whose feasibility is uncertain."""

    searcher: Searcher
    low: float = 0.01
    high: float = 0.95
    update: Callable[[Mapping[str, Any], Mapping[str, float]], None] | None = None
    update_after_training: bool = True
    max_asks: int | None = None
    max_checks: int | None = None
    counts: MBTCounts = field(default_factory=MBTCounts)

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise InputError(
                f"measure-before-train: need 0 <= low < high <= 1, got low={self.low}, high={self.high}"
            )
        if self.searcher.cost_model is None:
            raise InputError(
                "measure-before-train needs a searcher with a cost model (P(feasible) comes from it)",
                hint="give the searcher the few-shot predictor (cost_model=...)",
            )
        if self.update is None and callable(getattr(self.searcher.cost_model, "update", None)):
            self.update = self.searcher.cost_model.update  # type: ignore[union-attr]

    def p_feasible(self, config: Mapping[str, Any]) -> float:
        cm = self.searcher.cost_model
        p = 1.0
        for c in self.searcher.constraints:
            if c.op == "<=" and cm is not None and c.name in cm.cost_names:
                p *= float(np.asarray(cm.prob_within([config], c.name, c.budget))[0])
        return p

    def _learn(self, config: Mapping[str, Any], costs: Mapping[str, float]) -> None:
        if self.update is not None:
            self.update(config, costs)
            self.searcher.cost_model_updated()

    def run(
        self, objective: Objective, n_trainings: int, *, callback: Callable[[Trial], None] | None = None
    ) -> History:
        s = self.searcher
        s.attach(objective)
        max_asks = self.max_asks if self.max_asks is not None else 20 * max(1, n_trainings)
        asks, stopped = 0, ""
        while self.counts.trainings < n_trainings and asks < max_asks:
            if self.max_checks is not None and self.counts.checks >= self.max_checks:
                stopped = f"the {self.max_checks} latency checks allowed are spent"
                break
            trial = s.ask()
            asks += 1
            p = self.p_feasible(trial.config)
            trial.info["p_feasible"] = p
            if p <= self.low:
                self.counts.rejected += 1
                trial.info["mbt"] = "rejected"
                s.tell(trial, None, trial.predicted_costs,
                       stop_reason=f"not measured, not trained: P(feasible) {p:.3g} <= {self.low}",
                       )  # fmt: skip
            elif p < self.high:
                costs = objective.measure_costs(trial.config)
                self.counts.checks += 1
                self._learn(trial.config, costs)
                if not is_feasible(constraint_values(s.constraints, costs)):
                    self.counts.checked_infeasible += 1
                    trial.info["mbt"] = "checked-infeasible"
                    s.tell(
                        trial, None, costs, stop_reason="measured before training: over budget; not trained"
                    )
                else:
                    trial.info["mbt"] = "checked-trained"
                    self._train(objective, trial, costs)
            else:
                trial.info["mbt"] = "trained"
                ev = self._train(objective, trial, None)
                if ev is not None and trial.feasible is False:
                    self.counts.infeasible_trainings += 1
            if callback is not None:
                callback(trial)
        s.history.meta["measure_before_train"] = {
            **self.counts.as_dict(), "low": self.low, "high": self.high, "asks": asks,
            "stopped": stopped
            or ("" if self.counts.trainings >= n_trainings else f"{max_asks} proposals made"),
        }  # fmt: skip
        return s.history

    def _train(self, objective: Objective, trial: Trial, costs: Mapping[str, float] | None) -> Any:
        ev = objective.evaluate(trial.config, stopper=self.searcher.stopper)
        self.counts.trainings += 1
        if costs is None:  # measured after training, as a deployed network is
            costs = objective.measure_costs(trial.config)
            self.counts.measured_after_training += 1
            if self.update_after_training:
                self._learn(trial.config, costs)
        self.searcher.tell(
            trial, ev.objective, {**costs, **ev.measured_costs}, ev.early_stopped,
            stop_reason=ev.stop_reason, eval_time_s=ev.eval_time_s, info=ev.info,
        )  # fmt: skip
        return ev


def run_trained_all(
    searcher: Searcher,
    objective: Objective,
    n_trainings: int,
    callback: Callable[[Trial], None] | None = None,
) -> History:
    """The loop without checks (what a user runs today on predicted costs): every proposal is trained and
    its costs measured afterwards; ``history.meta["infeasible_trainings"]`` counts those over budget."""
    hist = searcher.run(objective, n_trainings, train_infeasible=True, callback=callback)
    hist.meta["infeasible_trainings"] = sum(
        1 for t in hist.trials if t.objective is not None and not t.feasible
    )
    return hist
