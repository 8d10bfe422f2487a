"""Random search: uniform samples of the space; with a cost model, rejected until predicted feasible.

Without a cost model this is the thesis's constrained random search baseline (§3.4.1): each sample's
costs are measured first and a sample that breaks a budget is terminated before training (``run``).
"""

from __future__ import annotations

from typing import Any

from hwnas.searchers.base import Searcher


class RandomSearch(Searcher):
    name = "random_search"

    def _propose(self) -> dict[str, Any]:
        return self.sample_predicted_feasible()
