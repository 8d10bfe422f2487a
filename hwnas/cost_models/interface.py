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

import re
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

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """In numpy an estimate is its point values (``np.asarray(est)``, ``est_array / measured``)."""
        return self.value.astype(dtype) if dtype is not None else self.value

    @property
    def width(self) -> np.ndarray:
        """``upper - lower`` per architecture (0 for exact costs)."""
        return self.upper - self.lower

    def take(self, index: Any) -> CostEstimate:
        """The estimates of a subset of the batch (an index array or mask)."""
        pick = lambda a: None if a is None else np.asarray(a)[index]  # noqa: E731
        return CostEstimate(
            self.name, self.unit, self.value[index], self.lower[index], self.upper[index], self.level,
            pick(self.source), pick(self.ood), dict(self.info),
        )  # fmt: skip

    @classmethod
    def exact(cls, name: str, unit: str, value: Any, source: str = "measured") -> CostEstimate:
        """Known costs: a zero-width interval."""
        v = np.asarray(value, float).ravel()
        return cls(name, unit, v, v.copy(), v.copy(), source=np.full(len(v), source, dtype=object))

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
        """The costs this predictor answers (``latency_ms``, ``energy_mj``, ``power_mw``, ``memory_mb``)."""
        ...

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        """One estimate per cost name for the whole batch ``archs``."""
        ...

    def prob_within(self, archs: Sequence[Any], name: str, budget: float) -> np.ndarray:
        """P(cost ``name`` <= ``budget``) per architecture."""
        ...


class PredictorBase:
    """What every hwnas predictor shares: ``prob_within`` and the conveniences searchers log with.

    Subclasses define ``cost_names`` and ``predict``; this gives ``prob_within`` (from the estimate's
    interval), ``predict_one`` (one architecture's point costs as floats), ``predict_values`` (point
    arrays per cost) and ``errors`` (a cross-validated RMSPE per cost, NaN where none is known).
    """

    cost_names: tuple[str, ...] = ()

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:  # pragma: no cover - abstract
        raise NotImplementedError

    def prob_within(self, archs: Sequence[Any], name: str, budget: float) -> np.ndarray:
        return self.estimate(archs, name).prob_within(budget)

    def estimate(self, archs: Sequence[Any], name: str) -> CostEstimate:
        """The estimate of one cost (an unknown name is a clear error)."""
        if name not in self.cost_names:
            from hwnas.errors import InputError

            raise InputError(
                f"this cost predictor has no cost {name!r}", hint=f"it predicts {list(self.cost_names)}"
            )
        return self.predict(archs)[name]

    def predict_values(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        return {k: e.value for k, e in self.predict(archs).items()}

    def predict_one(self, arch: Any) -> dict[str, float]:
        return {k: float(e.value[0]) for k, e in self.predict([arch]).items()}

    def errors(self) -> dict[str, float]:
        return dict.fromkeys(self.cost_names, float("nan"))

    def describe(self) -> str:
        """One line for logs: what this predictor is and where its numbers come from."""
        return type(self).__name__


def check_predictor(obj: Any, what: str = "cost model") -> CostPredictor:
    """``obj`` if it implements :class:`CostPredictor`, else a clear InputError (searchers accept
    nothing else)."""
    if not isinstance(obj, CostPredictor):
        from hwnas.errors import InputError

        raise InputError(
            f"{what}: a {type(obj).__name__} is not a CostPredictor (needs cost_names, predict, prob_within)",
            hint="wrap fitted estimators in hwnas.cost_models.predictors.ModelPredictor, or load a table "
            "with hwnas.cost_models.predictors.load_cost_predictor",
        )
    return obj


_LATENCY_COLUMN = re.compile(r"^lat_(.+)_ms$")


def canonical_cost_name(metric: str) -> str:
    """The constraint name a metric answers: ``lat_<device>_ms`` (a NAS-Bench-201 table column) is
    ``latency_ms``; ``peak_memory_bytes`` stays itself (constraints name ``memory_mb``: convert first)."""
    return "latency_ms" if _LATENCY_COLUMN.match(metric) else metric


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
            specs = (
                list(cand.layers)
                if hasattr(cand, "layers")
                else (list(cand) if isinstance(cand, (list, tuple)) else [cand])
            )
            for s in specs:
                flat.append(s)
                where.append((i, k))
    if flat:
        values = np.asarray(predictor.layer_costs(name, flat), float)
        for (i, k), v in zip(where, values, strict=True):
            costs[i, k] += float(v)
    return costs, mask
