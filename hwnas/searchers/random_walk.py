"""Random walk (thesis §3.4.1, after Snoek et al.): each next point a_{d+1} ~ N(a+, σ0²) around the best
feasible point a+ so far, in the unit encoding of the space; uniform samples until there is one."""

from __future__ import annotations

from typing import Any

from hwnas.errors import InputError
from hwnas.searchers.base import Searcher


class RandomWalk(Searcher):
    name = "random_walk"

    def __init__(self, *args: Any, sigma: float = 0.15, n_init: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not sigma > 0:
            raise InputError(f"random walk: sigma must be > 0, got {sigma}")
        self.sigma = sigma
        self.n_init = n_init

    def _propose(self) -> dict[str, Any]:
        best = self.history.best()
        if best is None or len(self.history) < self.n_init:
            return self.sample_predicted_feasible()
        seen = {self.space.key(t.config) for t in self.history.trials}
        cand = self._project(self.space.neighbour(best.config, self.rng, self.sigma))
        for _ in range(20):  # avoid re-evaluating a point already tried
            if self.space.key(cand) not in seen:
                break
            cand = self._project(self.space.neighbour(best.config, self.rng, self.sigma))
        return cand
