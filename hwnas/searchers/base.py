"""The searcher contract: ``ask() -> Trial``, ``tell(trial, objective, measured_costs)``; ``run`` loops.

As in Optuna (STYLE.md §2) ask/tell is the core and ``run`` is only a loop over it, so a caller can
evaluate trials anywhere (another process, a device farm) and tell the results back. Constraints are
named ``cost - budget`` values, <= 0 feasible, logged twice per trial: as *predicted* by the cost model
at ask time (when the searcher has one) and as *measured* at tell time. The best trial is chosen among
the measured-feasible ones.
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hwnas.cost_models.interface import CostPredictor, check_predictor
from hwnas.errors import InputError
from hwnas.searchers.constraints import Constraint, constraint_values, is_feasible, parse_constraints
from hwnas.searchers.objectives.base import Objective, Stopper
from hwnas.searchers.space import CategoricalParam, FloatParam, IntParam, Param, SearchSpace

__all__ = [
    "CategoricalParam",
    "Constraint",
    "FloatParam",
    "History",
    "IntParam",
    "Param",
    "SearchSpace",
    "Searcher",
    "Trial",
]

# Trial states. "infeasible": measured costs broke a budget, so it was not trained (thesis §3.4.1:
# constraint-violating samples are terminated early); "early_stopped": training diverged (§3.3.3).
STATES = ("running", "complete", "early_stopped", "infeasible", "failed")


@dataclass
class Trial:
    """One evaluated (or pending) point and everything logged about it."""

    number: int
    config: dict[str, Any]
    searcher: str = ""
    state: str = "running"
    objective: float | None = None
    predicted_costs: dict[str, float] = field(default_factory=dict)
    predicted_constraints: dict[str, float] = field(default_factory=dict)
    predicted_feasible: bool | None = None
    measured_costs: dict[str, float] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)  # measured cost - budget
    feasible: bool | None = None
    early_stopped: bool = False
    stop_reason: str = ""
    wall_time_s: float = 0.0  # ask -> tell, on this machine
    eval_time_s: float = 0.0  # as the objective reports it (training time; a table's recorded time)
    info: dict[str, Any] = field(default_factory=dict)
    _asked_at: float = field(default=0.0, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.state != "running"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_asked_at", None)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "_asked_at"}
        return cls(**known)


class History:
    """Every trial of one search in ask order, with the summaries searchers are compared on."""

    def __init__(self, trials: Iterable[Trial] = (), meta: Mapping[str, Any] | None = None) -> None:
        self.trials: list[Trial] = list(trials)
        self.meta: dict[str, Any] = dict(meta or {})

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self):  # noqa: ANN204
        return iter(self.trials)

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.done]

    def best(self) -> Trial | None:
        """The lowest-objective trial among the measured-feasible ones (None when there is none)."""
        ok = [t for t in self.trials if t.feasible and t.objective is not None and math.isfinite(t.objective)]
        return min(ok, key=lambda t: t.objective) if ok else None  # type: ignore[arg-type,return-value]

    def best_so_far(self) -> np.ndarray:
        """Best feasible objective after each evaluation (NaN until the first feasible one)."""
        out, best = [], math.inf
        for t in self.trials:
            if t.feasible and t.objective is not None and math.isfinite(t.objective):
                best = min(best, t.objective)
            out.append(best if math.isfinite(best) else math.nan)
        return np.asarray(out, float)

    def n_violations(self) -> int:
        """Evaluations whose measured costs broke a budget."""
        return sum(1 for t in self.trials if t.feasible is False)

    def violations_so_far(self) -> np.ndarray:
        return np.cumsum([1 if t.feasible is False else 0 for t in self.trials])

    def n_early_stopped(self) -> int:
        return sum(1 for t in self.trials if t.early_stopped)

    def to_records(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.trials]

    def to_dataframe(self) -> Any:
        """One row per trial: config values, objective, costs (``pred_``/``meas_`` prefixes), state."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row: dict[str, Any] = {
                "number": t.number,
                "searcher": t.searcher,
                "state": t.state,
                **t.config,
                "objective": t.objective,
                "feasible": t.feasible,
                "predicted_feasible": t.predicted_feasible,
                "early_stopped": t.early_stopped,
                "wall_time_s": t.wall_time_s,
                "eval_time_s": t.eval_time_s,
            }
            row.update({f"pred_{k}": v for k, v in t.predicted_costs.items()})
            row.update({f"meas_{k}": v for k, v in t.measured_costs.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"meta": self.meta, "trials": self.to_records()}, indent=1, default=str))
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> History:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"history file {path}: cannot read it ({exc})") from exc
        return cls([Trial.from_dict(t) for t in data.get("trials", [])], data.get("meta"))


class Searcher(ABC):
    """Base of all searchers. Subclasses implement ``_propose`` (and optionally ``_observe``).

    ``cost_model`` (optional) is a :class:`~hwnas.cost_models.interface.CostPredictor` whose
    architectures are this space's configs (nothing else is accepted); predicted costs, their intervals
    and constraint values are logged on every trial, and searchers that use them (HyperPower,
    constrained random search) read them through ``predict_constraints``. ``stopper`` is the
    early-termination rule ``run`` passes to the objective.
    """

    name: ClassVar[str] = "searcher"

    def __init__(
        self,
        space: SearchSpace,
        constraints: Sequence[str | Constraint] = (),
        cost_model: CostPredictor | None = None,
        seed: int = 0,
        stopper: Stopper | None = None,
    ) -> None:
        self.space = space
        self.constraints = parse_constraints(constraints)
        self.cost_model = None if cost_model is None else check_predictor(cost_model, f"searcher {self.name}")
        self.seed = seed
        self.stopper = stopper
        self.rng = np.random.default_rng(seed)
        # Maps a proposal to the point that will really be evaluated (a tabular objective's nearest row);
        # ``run`` sets it from ``objective.project`` so that logs, predictions and surrogates see that point.
        self.projector: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
        # The finite set of points an objective can evaluate (a table's rows), when it has one; searchers
        # that optimise an acquisition may then score all of them instead of random candidates.
        self.candidate_pool: list[dict[str, Any]] | None = None
        self.history = History(
            meta={"searcher": self.name, "seed": seed, "constraints": [str(c) for c in self.constraints]}
        )

    # -- the contract --------------------------------------------------------------------------------
    def ask(self) -> Trial:
        """Propose the next point; the returned trial is logged as running until told."""
        return self._new_trial(self.space.validate(self._project(self._propose())))

    def ask_batch(self, n: int) -> list[Trial]:
        """``n`` proposals to evaluate at once. Each later proposal sees the earlier ones as running trials
        (searchers that model running trials, e.g. HyperPower's constant liar, spread the batch)."""
        return [self.ask() for _ in range(max(0, int(n)))]

    def ask_fixed(self, config: Mapping[str, Any]) -> Trial:
        """A trial at a given config, logged as ``ask`` logs it: a resumed search replays its journal so."""
        return self._new_trial(self.space.validate(dict(config)))

    def _new_trial(self, config: dict[str, Any]) -> Trial:
        trial = Trial(
            number=len(self.history), config=config, searcher=self.name, _asked_at=time.perf_counter()
        )
        if self.cost_model is not None:
            est = self.cost_model.predict([config])
            trial.predicted_costs = {k: float(e.value[0]) for k, e in est.items()}
            trial.info["predicted_interval"] = {
                k: [float(e.lower[0]), float(e.upper[0]), e.level] for k, e in est.items()
            }
            modelled = [c for c in self.constraints if c.name in trial.predicted_costs]
            trial.predicted_constraints = constraint_values(modelled, trial.predicted_costs)
            trial.predicted_feasible = is_feasible(trial.predicted_constraints) if modelled else None
        self.history.trials.append(trial)
        return trial

    def tell(
        self,
        trial: Trial,
        objective: float | None,
        measured_costs: Mapping[str, float] | None = None,
        early_stopped: bool = False,
        *,
        stop_reason: str = "",
        eval_time_s: float = 0.0,
        info: Mapping[str, Any] | None = None,
    ) -> Trial:
        """Record the result of ``trial``. ``objective`` None means it was not evaluated (a measured
        constraint violation, or a crash); costs must include every constrained cost."""
        if trial.number >= len(self.history) or self.history.trials[trial.number] is not trial:
            raise InputError(f"trial {trial.number} was not asked from this searcher")
        if trial.done:
            raise InputError(f"trial {trial.number} was already told ({trial.state})")
        costs = {k: float(v) for k, v in (measured_costs or {}).items()}
        trial.measured_costs = costs
        trial.constraints = constraint_values(self.constraints, costs)
        trial.feasible = is_feasible(trial.constraints)
        if objective is not None and not math.isfinite(float(objective)):
            objective, early_stopped = None, True
            stop_reason = stop_reason or "objective is not finite"
        trial.objective = None if objective is None else float(objective)
        trial.early_stopped = bool(early_stopped)
        trial.stop_reason = stop_reason
        trial.eval_time_s = float(eval_time_s)
        trial.info.update(info or {})
        if trial.objective is None:
            trial.state = "infeasible" if not trial.feasible else "failed"
        else:
            trial.state = "early_stopped" if early_stopped else "complete"
        trial.wall_time_s = time.perf_counter() - trial._asked_at
        self._observe(trial)
        return trial

    def run(
        self,
        objective: Objective,
        n_trials: int,
        *,
        train_infeasible: bool = False,
        callback: Callable[[Trial], None] | None = None,
    ) -> History:
        """Ask, measure costs (cheap), train unless a budget is broken, tell; ``n_trials`` times."""
        self.attach(objective)
        for _ in range(n_trials):
            trial = self.ask()
            costs = objective.measure_costs(trial.config)
            values = constraint_values(self.constraints, costs)
            if not is_feasible(values) and not train_infeasible:
                broken = ", ".join(f"{k} over by {v:.4g}" for k, v in values.items() if v > 0)
                self.tell(trial, None, costs, stop_reason=f"not trained: constraint violated: {broken}")
            else:
                ev = objective.evaluate(trial.config, stopper=self.stopper)
                self.tell(
                    trial,
                    ev.objective,
                    {**costs, **ev.measured_costs},
                    ev.early_stopped,
                    stop_reason=ev.stop_reason,
                    eval_time_s=ev.eval_time_s,
                    info=ev.info,
                )
            if callback is not None:
                callback(trial)
        return self.history

    def attach(self, objective: Objective) -> None:
        """Check that ``objective`` measures every constrained cost and take its projection and finite
        pool (what ``run`` does first; a loop of its own, e.g. measure-before-train, calls it too)."""
        missing = [c.name for c in self.constraints if c.name not in objective.cost_names]
        if missing:
            raise InputError(
                f"the objective measures {list(objective.cost_names) or 'no costs'}, "
                f"but there are constraints on {missing}",
                hint="constrain a cost the objective (or device) measures",
            )
        self.projector = getattr(objective, "project", None)
        self.candidate_pool = getattr(objective, "configs", None)

    # -- for subclasses ------------------------------------------------------------------------------
    @abstractmethod
    def _propose(self) -> dict[str, Any]:
        """The next config."""

    def _observe(self, trial: Trial) -> None:  # noqa: B027 - optional hook
        """Called after each tell."""

    def cost_model_updated(self) -> None:  # noqa: B027 - optional hook
        """The cost model's predictions changed (it was refitted in place, e.g. by measure-before-train
        adding a measured cell): searchers that cache predicted feasibility drop the cache here."""

    def _project(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return self.projector(config) if self.projector is not None else dict(config)

    def predict_constraints(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """Predicted ``cost - budget`` per modelled constraint, one value per config."""
        if self.cost_model is None or not configs:
            return {}
        pred = self.cost_model.predict(configs)
        return {
            c.name: np.asarray([c.value(v) for v in pred[c.name].value])
            for c in self.constraints
            if c.name in pred
        }

    def sample_predicted_feasible(self, max_tries: int = 2000) -> dict[str, Any]:
        """A uniform sample of the space, rejected until the cost model predicts it feasible (or the
        plain sample when there is no cost model). Draws in batches for speed."""
        if self.cost_model is None or not any(c.name in self.cost_model.cost_names for c in self.constraints):
            return self.space.sample(self.rng)
        drawn = 0
        while drawn < max_tries:
            batch = [self._project(self.space.sample(self.rng)) for _ in range(64)]
            drawn += len(batch)
            vals = self.predict_constraints(batch)
            ok = np.all(np.stack(list(vals.values())) <= 0, axis=0)
            if ok.any():
                return batch[int(np.flatnonzero(ok)[0])]
        from hwnas.errors import CheckFailedError

        raise CheckFailedError(
            f"no predicted-feasible point in {drawn} random draws under "
            f"{', '.join(str(c) for c in self.constraints)}",
            hint="the budgets may be below what any config of the space costs; loosen them",
        )

    def completed_xy(self) -> tuple[np.ndarray, np.ndarray, list[Trial]]:
        """Unit-encoded configs and objectives of the trials told with an objective."""
        done = [t for t in self.history.trials if t.objective is not None]
        X = self.space.to_unit_matrix([t.config for t in done])
        return X, np.asarray([t.objective for t in done], float), done
