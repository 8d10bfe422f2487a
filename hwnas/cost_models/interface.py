"""The one cost hand-off from cost models to searchers (the seam every searcher and cost path uses).

A *cost predictor* answers, for a batch of architectures, one :class:`CostEstimate` per cost name: a point
estimate and an interval at a stated nominal level, from which ``prob_within(budget)`` follows. Searchers
accept only this interface; cost tables (whatever estimator kind is inside), predicted tables
(``predict-device`` output) and per-architecture cost CSVs all implement it.

An *architecture* is whatever the predictor's ``arch_to_layers`` maps to LayerSpecs: a LayerSpec list, a
ModelSpec, or a search-space point (a config dict) that the space maps to LayerSpecs. Tabular predictors
(a per-architecture CSV, a NAS-Bench-201 ``predict-device`` table) are keyed by the architecture's string id
and never need LayerSpecs.

One-shot searchers (Single-Path NAS, FBNetV2) need a *differentiable* view: per searchable position, the
cost of each candidate option, as a tensor, so that ``E[cost] = Σ w · c`` has gradients in the choice
weights ``w``. :meth:`CostPredictor.layer_costs` prices candidate LayerSpecs (numpy) and
:func:`candidate_cost_matrix` stacks them into the ``[L, K]`` tensor that
``hwnas.cost_models.torch_costs.expected_cost`` consumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

DEFAULT_LEVEL = 0.90


@dataclass(frozen=True)
class CostEstimate:
    """One cost over a batch of architectures: point ``value`` and ``[lower, upper]`` at ``level``.

    ``source`` says where each estimate came from (``table``, ``model:boosted``, ``measured``,
    ``predicted:fewshot`` ...), so a search log can tell measured costs from predicted ones.
    ``ood`` marks architectures (or units inside them) outside the data the model was fitted on.
    """

    name: str
    unit: str
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float = DEFAULT_LEVEL
    source: np.ndarray | None = None
    ood: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("value", "lower", "upper"):
            object.__setattr__(self, attr, np.asarray(getattr(self, attr), float).ravel())
        if not (len(self.value) == len(self.lower) == len(self.upper)):
            raise ValueError(
                f"cost {self.name!r}: value, lower and upper differ in length "
                f"({len(self.value)}, {len(self.lower)}, {len(self.upper)})"
            )
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"cost {self.name!r}: interval level must lie in (0, 1), got {self.level}")

    def __len__(self) -> int:
        return len(self.value)

    def prob_within(self, budget: float | np.ndarray) -> np.ndarray:
        """P(cost <= budget), reading ``[lower, upper]`` as a normal's central ``level`` interval
        (a zero-width interval gives the indicator of the point estimate)."""
        from hwnas.cost_models.base import prob_below

        return prob_below(self.value, self.lower, self.upper, budget, coverage=self.level)


@runtime_checkable
class CostPredictor(Protocol):
    """What a searcher is given to price architectures; see the module docstring."""

    @property
    def cost_names(self) -> tuple[str, ...]:
        """The costs this predictor answers (``latency_ms``, ``energy_mj``, ``power_w``, ``memory_mb`` ...)."""
        ...

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        """One estimate per cost name for the whole batch ``archs``."""
        ...

    def prob_within(self, archs: Sequence[Any], name: str, budget: float) -> np.ndarray:
        """P(cost ``name`` <= ``budget``) per architecture."""
        ...


@runtime_checkable
class LayerCostPredictor(CostPredictor, Protocol):
    """A predictor that prices single layers (fused units): the base of the differentiable view."""

    def layer_costs(self, name: str, layers: Sequence[Any]) -> np.ndarray:
        """Point cost of each LayerSpec in ``layers`` (a candidate op), in the cost's unit."""
        ...


def candidate_cost_matrix(
    predictor: LayerCostPredictor, name: str, candidates: Sequence[Sequence[Any]], dtype: Any = None
) -> tuple[Any, Any]:
    """``candidates[l][k]``: a LayerSpec, a list of LayerSpecs (a block: costs add up) or ``None`` (skip:
    cost 0). Returns torch tensors ``(costs [L, K], mask [L, K])``, padded to the widest position, for
    ``torch_costs.expected_cost(weights, costs, mask)``."""
    import torch

    if not candidates:
        raise ValueError("no candidate positions given")
    width = max(len(c) for c in candidates)
    costs = torch.zeros(len(candidates), width, dtype=dtype or torch.float64)
    mask = torch.zeros(len(candidates), width, dtype=torch.bool)
    flat: list[Any] = []
    where: list[tuple[int, int]] = []
    for i, options in enumerate(candidates):
        for k, cand in enumerate(options):
            mask[i, k] = True
            if cand is None:
                continue
            specs = list(cand.layers) if hasattr(cand, "layers") else (
                list(cand) if isinstance(cand, (list, tuple)) else [cand]
            )
            for s in specs:
                flat.append(s)
                where.append((i, k))
    if flat:
        values = np.asarray(predictor.layer_costs(name, flat), float)
        for (i, k), v in zip(where, values, strict=True):
            costs[i, k] += float(v)
    return costs, mask
