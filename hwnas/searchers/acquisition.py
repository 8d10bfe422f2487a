"""Acquisition pieces for constrained BO (STYLE.md §5): an improvement criterion times a feasibility term.

HyperPower's acquisition (thesis eq. 3.4) is expected improvement over the best feasible value y+
times the indicators I[P(â) <= P_T] · I[M(â) <= M_T] of the *predicted* power and memory. With exact
cost models the indicator is right; with models that carry an error band, ``ProbabilityFeasibility``
(P(cost <= budget) per constraint, multiplied) is the soft version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from scipy.stats import norm

from hwnas.cost_models.interface import CostPredictor
from hwnas.searchers.constraints import Constraint


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI for minimisation: E[max(y+ - y, 0)] with y ~ N(mean, std²) (the integral in eq. 3.4)."""
    std = np.maximum(std, 1e-12)
    z = (best - mean) / std
    return (best - mean) * norm.cdf(z) + std * norm.pdf(z)


class FeasibilityTerm(Protocol):
    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray: ...


class IndicatorFeasibility:
    """∏_c I[predicted cost_c <= budget_c] (eq. 3.4), for exact (or trusted) cost models."""

    def __init__(self, cost_model: CostPredictor, constraints: Sequence[Constraint]) -> None:
        self.cost_model = cost_model
        self.constraints = [c for c in constraints if c.name in cost_model.cost_names]

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        pred = self.cost_model.predict(configs)
        ok = np.ones(len(configs), bool)
        for c in self.constraints:
            ok &= np.array([c.value(v) <= 0 for v in pred[c.name].value])
        return ok.astype(float)


class ProbabilityFeasibility:
    """∏_c P(cost_c <= budget_c) from each cost model's error band (for models with error)."""

    def __init__(self, cost_model: CostPredictor, constraints: Sequence[Constraint]) -> None:
        self.cost_model = cost_model
        self.constraints = [c for c in constraints if c.name in cost_model.cost_names and c.op == "<="]

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        p = np.ones(len(configs))
        for c in self.constraints:
            p *= self.cost_model.prob_within(configs, c.name, c.budget)
        return p
