"""Cost models over search-space configs: per-cost regressors on the structural hyperparameters.

HyperPower (thesis §3.3) fits one linear model per cost (power, memory) on the J structural
hyperparameters, from L configs sampled at random and profiled offline. ``ConfigCostModel`` holds those
models (any fitted scikit-learn-style regressor; ``hwnas.cost_models.linear.LinearCostModel`` by
default) and turns configs into their feature rows: numeric structural parameters as they are (â_j),
categorical ones one-hot (so NAS-Bench-201 cell ops work too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.space import SearchSpace


def config_features(space: SearchSpace, configs: Sequence[Mapping[str, Any]]) -> Any:
    """A DataFrame of the structural features of ``configs`` (numeric as is, categoricals one-hot)."""
    import pandas as pd

    cols: dict[str, list[float]] = {}
    for p in space.params:
        if not p.structural:
            continue
        if p.kind == "categorical":
            for choice in p.choices:
                cols[f"{p.name}={choice}"] = [1.0 if c[p.name] == choice else 0.0 for c in configs]
        else:
            cols[p.name] = [float(c[p.name]) for c in configs]
    if not cols:
        raise InputError(
            f"space {space.name!r} has no structural parameters to model costs on",
            hint="mark the parameters that change the network structural=True",
        )
    return pd.DataFrame(cols)


Featurizer = Callable[[SearchSpace, Sequence[Mapping[str, Any]]], Any]


class ConfigCostModel:
    """Fitted cost models keyed by cost name (``power_mw``, ``memory_mb``, ``latency_ms``).

    ``featurizer`` turns configs into the model's feature rows: ``config_features`` (the thesis's raw
    structural hyperparameters, default) or a space's own (e.g. ``hyperpower_cnn.layer_features``)."""

    def __init__(
        self, space: SearchSpace, models: Mapping[str, Any], featurizer: Featurizer | None = None
    ) -> None:
        self.space = space
        self.models = dict(models)
        self.featurizer = featurizer or config_features

    @property
    def cost_names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        X = self.featurizer(self.space, configs)
        return {name: np.asarray(m.predict(X), float).ravel() for name, m in self.models.items()}

    def predict_one(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {k: float(v[0]) for k, v in self.predict([config]).items()}

    def prob_within(self, configs: Sequence[Mapping[str, Any]], name: str, budget: float) -> np.ndarray:
        """P(cost <= budget) from the model's error band (``CostModel.prob_within``); a model without a
        band gives the indicator of its point prediction."""
        X = self.featurizer(self.space, configs)
        m = self.models[name]
        if hasattr(m, "prob_within"):
            return np.asarray(m.prob_within(X, budget), float).ravel()
        return (np.asarray(m.predict(X), float).ravel() <= budget).astype(float)

    def errors(self) -> dict[str, float]:
        """Cross-validated RMSPE (%) per cost, where the model kept one (thesis table 3.1)."""
        return {k: float(getattr(m, "cv_rmspe_", float("nan"))) for k, m in self.models.items()}


def fit_cost_models(
    space: SearchSpace,
    measure: Callable[[Mapping[str, Any]], Mapping[str, float]],
    cost_names: Sequence[str],
    *,
    n_samples: int = 40,
    seed: int = 0,
    estimator: Callable[[], Any] | None = None,
    progress: Callable[[int], None] | None = None,
    project: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    featurizer: Featurizer | None = None,
) -> tuple[ConfigCostModel, Any]:
    """Profile ``n_samples`` random configs with ``measure`` (cheap: no training) and fit one model per
    cost (``project`` maps a sample to the point really measured). Returns the model set and the
    profiled data (a DataFrame: configs + measured costs, the form ``--cost-data`` reads back)."""
    if n_samples < 3:
        raise InputError(f"fitting cost models needs at least 3 profiled configs, got n_samples={n_samples}")
    if estimator is None:
        from hwnas.cost_models.linear import LinearCostModel

        estimator = LinearCostModel
    rng = np.random.default_rng(seed)
    configs = [space.sample(rng) for _ in range(n_samples)]
    if project is not None:  # a table's objective: model the rows that are really measured
        configs = [project(c) for c in configs]
    measured: list[Mapping[str, float]] = []
    for c in configs:
        measured.append(measure(c))
        if progress is not None:
            progress(1)
    featurizer = featurizer or config_features
    X = featurizer(space, configs)
    models = {}
    for name in cost_names:
        try:
            y = np.asarray([float(m[name]) for m in measured])
        except KeyError as exc:
            raise InputError(
                f"cost {name!r} was not measured; the measurement gave {sorted(measured[0])}"
            ) from exc
        models[name] = estimator().fit(X, y)
    import pandas as pd

    data = pd.DataFrame(configs)
    for name in cost_names:
        data[name] = [float(m[name]) for m in measured]
    return ConfigCostModel(space, models, featurizer), data
