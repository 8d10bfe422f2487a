"""Acquisition optimiser over mixed spaces: score random and local candidates, keep the best.

Candidates are uniform samples of the space plus Gaussian neighbours (unit encoding) of the best
observed points; the feasibility term is evaluated first and candidates with zero feasibility are
dropped, so the acquisition is maximised over the predicted-feasible region only (HyperPower never
spends an evaluation on a point its models say breaks a budget). Cheap with linear cost models, which is
why the thesis chose them (§3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.searchers.space import SearchSpace


class CandidateOptimizer:
    def __init__(
        self, n_random: int = 1000, n_local: int = 300, local_sigma: float = 0.1, top_k: int = 5
    ) -> None:
        self.n_random = n_random
        self.n_local = n_local
        self.local_sigma = local_sigma
        self.top_k = top_k

    def candidates(
        self, space: SearchSpace, rng: np.random.Generator, incumbents: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        out = [space.sample(rng) for _ in range(self.n_random)]
        inc = list(incumbents)[: self.top_k]
        for i in range(self.n_local if inc else 0):
            out.append(space.neighbour(inc[i % len(inc)], rng, self.local_sigma))
        return out

    def maximize(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        acquisition: Callable[[list[dict[str, Any]]], np.ndarray],
        feasibility: Callable[[list[dict[str, Any]]], np.ndarray] | None,
        incumbents: Sequence[Mapping[str, Any]] = (),
        exclude: set[tuple[Any, ...]] | None = None,
        project: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any] | None, dict[str, float]]:
        """The candidate maximising acquisition × feasibility; None when no candidate is feasible."""
        cands = self.candidates(space, rng, incumbents)
        if project is not None:  # score the points that would really be evaluated, once each
            uniq = {space.key(c): c for c in map(project, cands)}
            cands = list(uniq.values())
        if exclude:
            cands = [c for c in cands if space.key(c) not in exclude]
        if not cands:
            return None, {"n_candidates": 0, "n_feasible": 0}
        feas = feasibility(cands) if feasibility is not None else np.ones(len(cands))
        keep = np.flatnonzero(feas > 0)
        stats = {"n_candidates": float(len(cands)), "n_feasible": float(len(keep))}
        if keep.size == 0:
            return None, stats
        kept = [cands[i] for i in keep]
        score = acquisition(kept) * feas[keep]
        j = int(np.argmax(score))
        stats.update({"acquisition": float(score[j]), "feasibility": float(feas[keep][j])})
        return kept[j], stats
