"""HyperPower (Stamoulis thesis ch. 3): BO whose acquisition knows the device's cost models.

Pieces (swappable, STYLE.md §5): a GP surrogate of the validation error (scikit-learn), expected
improvement over the best *feasible* error y+, a feasibility term from the fitted per-device power and
memory models (the indicator of eq. 3.4 by default, or the probability for models with error), and a
candidate optimiser that only scores predicted-feasible points. The first ``n_init`` points are random
samples of the predicted-feasible region. Early termination of diverging runs (§3.3.3) is the
``stopper`` the run loop hands to the objective (``DivergenceStopper`` by default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.acq_optimizer import CandidateOptimizer
from hwnas.searchers.acquisition import IndicatorFeasibility, ProbabilityFeasibility, expected_improvement
from hwnas.searchers.base import Searcher
from hwnas.searchers.objectives.base import DivergenceStopper
from hwnas.searchers.surrogate import GPSurrogate

_NOT_GIVEN: Any = object()


class HyperPower(Searcher):
    name = "hyperpower"

    def __init__(
        self,
        *args: Any,
        n_init: int = 5,
        feasibility: str = "indicator",
        optimizer: CandidateOptimizer | None = None,
        surrogate: GPSurrogate | None = None,
        stopper: Any = _NOT_GIVEN,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, stopper=DivergenceStopper() if stopper is _NOT_GIVEN else stopper, **kwargs)
        if self.cost_model is None:
            raise InputError(
                "hyperpower needs a cost model of the constrained costs (thesis eq. 3.2-3.3)",
                hint="fit one with hwnas.searchers.cost_model.fit_cost_models, or use bo_vanilla",
            )
        unmodelled = [c.name for c in self.constraints if c.name not in self.cost_model.cost_names]
        if unmodelled:
            raise InputError(
                f"hyperpower: no cost model for the constraint(s) on {unmodelled}",
                hint=f"the cost model predicts {list(self.cost_model.cost_names)}",
            )
        if feasibility not in ("indicator", "probability"):
            raise InputError(
                f"hyperpower: feasibility must be 'indicator' or 'probability', got {feasibility!r}"
            )
        self.n_init = n_init
        self.feasibility_kind = feasibility
        term = IndicatorFeasibility if feasibility == "indicator" else ProbabilityFeasibility
        self.feasibility = term(self.cost_model, self.constraints)
        self.optimizer = optimizer or CandidateOptimizer()
        self.surrogate = surrogate or GPSurrogate(seed=self.seed)

    def cost_model_updated(self) -> None:
        super().cost_model_updated()
        self._pool_id = None  # the pool's feasibility is recomputed on the next proposal

    def _propose(self) -> dict[str, Any]:
        X, y, done = self.completed_xy()
        if len(done) < self.n_init or len(set(y.tolist())) < 2:
            return self.sample_predicted_feasible()
        running = [t for t in self.history.trials if t.state == "running"]
        if running:
            # Batch proposals (several trials in flight): the constant liar (Ginsbourger et al. 2010, CL-min)
            # pretends each running trial returned the best error so far, so the next proposal moves away.
            X = np.vstack([X, self.space.to_unit_matrix([t.config for t in running])])
            y = np.concatenate([y, np.full(len(running), float(np.min(y)))])
        self.surrogate.fit(X, y)
        feasible_y = [t.objective for t in done if t.feasible]
        best = min(feasible_y) if feasible_y else float(np.max(y))
        order = sorted(done, key=lambda t: (not t.feasible, t.objective))

        def acquisition(configs: list[dict[str, Any]]) -> np.ndarray:
            mean, std = self.surrogate.predict(self.space.to_unit_matrix(configs))
            return expected_improvement(mean, std, best)

        seen = {self.space.key(t.config) for t in self.history.trials}
        if self.candidate_pool:
            return self._propose_from_pool(acquisition, seen)
        config, _ = self.optimizer.maximize(
            self.space,
            self.rng,
            acquisition,
            self.feasibility,
            incumbents=[t.config for t in order],
            exclude=seen,
            project=self.projector,
        )
        if config is None:  # no scored candidate was predicted feasible: a wider rejection search
            return self.sample_predicted_feasible(max_tries=20000)
        return config

    def _propose_from_pool(self, acquisition: Any, seen: set[tuple[Any, ...]]) -> dict[str, Any]:
        """Exact maximisation over a finite pool (a table's rows): feasibility is computed once."""
        pool = self.candidate_pool or []
        if getattr(self, "_pool_id", None) != id(pool):
            self._pool_id = id(pool)
            self._pool_feas = np.asarray(self.feasibility(pool), float)
            self._pool_keys = [self.space.key(c) for c in pool]
        idx = [i for i in np.flatnonzero(self._pool_feas > 0) if self._pool_keys[i] not in seen]
        if not idx:
            return self.sample_predicted_feasible(max_tries=20000)
        score = acquisition([pool[i] for i in idx]) * self._pool_feas[idx]
        return dict(pool[idx[int(np.argmax(score))]])
