"""Regularised (aging) evolution (Real et al. 2019; lecture notes 003, "regularized evolution").

Keep a population of the P most recent evaluated trials. Until it is full, sample at random; then draw
S members at random, take the best of the sample (lowest objective; unevaluated / infeasible ones rank
last) as the parent, and propose a one-parameter mutation of it. When a child is told, it joins the
population and the *oldest* member leaves, whatever its fitness (the "aging" that regularises).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from hwnas.errors import InputError
from hwnas.searchers.base import Searcher, Trial


class RegularizedEvolution(Searcher):
    name = "evolution"

    def __init__(self, *args: Any, population_size: int = 20, sample_size: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise InputError(
                f"evolution: need population_size >= 2 and 1 <= sample_size <= population_size, "
                f"got P={population_size}, S={sample_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[Trial] = deque()

    def _fitness(self, t: Trial) -> float:
        if t.objective is None or not t.feasible:
            return math.inf
        return t.objective

    def _propose(self) -> dict[str, Any]:
        if len(self.population) < self.population_size:
            return self.sample_predicted_feasible()
        idx = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        parent = min((self.population[int(i)] for i in idx), key=self._fitness)
        child = self.space.mutate(parent.config, self.rng)
        if self.cost_model is not None:  # mutate again (a few times) while the child is predicted infeasible
            for _ in range(20):
                vals = self.predict_constraints([child])
                if all(v[0] <= 0 for v in vals.values()):
                    return child
                child = self.space.mutate(parent.config, self.rng)
            # Every mutant of this parent is predicted infeasible: a fresh predicted-feasible sample keeps
            # the cost-aware searcher from spending an evaluation on a design that breaks the budget.
            return self.sample_predicted_feasible()
        return child

    def _observe(self, trial: Trial) -> None:
        self.population.append(trial)
        while len(self.population) > self.population_size:
            self.population.popleft()
