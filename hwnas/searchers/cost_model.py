"""Cost models over search-space configs: per-cost regressors on the structural hyperparameters.

Searchers accept only :class:`~hwnas.cost_models.interface.CostPredictor`; ``ConfigCostModel`` is the
one built here (a :class:`~hwnas.cost_models.predictors.ModelPredictor` over configs).

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

from hwnas.cost_models.predictors import ModelPredictor
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


class ConfigCostModel(ModelPredictor):
    """Fitted cost models keyed by cost name (``power_mw``, ``memory_mb``, ``latency_ms``) over a search
    space's configs: a :class:`~hwnas.cost_models.interface.CostPredictor` whose architectures are configs.

    ``featurizer`` turns configs into the model's feature rows: ``config_features`` (the thesis's raw
    structural hyperparameters, default) or a space's own (e.g. ``hyperpower_cnn.layer_features``). The
    interval of each cost is its model's band (``CostModel.predict_interval``: the 10-fold CV residual
    quantiles of ``LinearCostModel``); a model without one gives a zero-width interval."""

    def __init__(
        self,
        space: SearchSpace,
        models: Mapping[str, Any],
        featurizer: Featurizer | None = None,
        **kwargs: Any,
    ) -> None:
        self.space = space
        self.featurizer = featurizer or config_features
        super().__init__(models, self._features, **kwargs)

    def _features(self, configs: Any) -> Any:
        # a bound method, not a lambda, so the model pickles (parallel comparisons send it to workers)
        return self.featurizer(self.space, configs)

    def describe(self) -> str:
        errs = ", ".join(f"{k} CV RMSPE {v:.2f} %" for k, v in self.errors().items())
        return self.description or f"models fitted on {self.space.name!r} configs ({errs})"


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


def fit_cost_models_from_data(
    space: SearchSpace,
    data: Any,
    cost_names: Sequence[str],
    *,
    featurizer: Featurizer | None = None,
    estimator: Callable[[], Any] | None = None,
    origin: str = "cost data",
) -> ConfigCostModel:
    """Fit one model per cost on earlier profiling: a DataFrame (or CSV path) of configs (parameter
    columns) and measured cost columns, the form ``fit_cost_models`` returns and ``--save-cost-data``
    writes."""
    from pathlib import Path

    import pandas as pd

    if estimator is None:
        from hwnas.cost_models.linear import LinearCostModel

        estimator = LinearCostModel
    if not isinstance(data, pd.DataFrame):
        path = Path(data)
        if not path.exists():
            raise InputError(f"cost data {path}: file not found")
        origin = str(path)
        try:
            data = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"cost data {path}: not a readable CSV: {exc}") from exc
    featurizer = featurizer or config_features
    missing = [c for c in cost_names if c not in data.columns]
    if missing:
        raise InputError(f"{origin}: no column(s) {missing}", hint=f"columns: {list(data.columns)}")
    try:
        X = featurizer(space, data.to_dict("records"))
    except KeyError as exc:
        raise InputError(f"{origin}: missing parameter column {exc}") from exc
    models = {c: estimator().fit(X, data[c].to_numpy(float)) for c in cost_names}
    return ConfigCostModel(space, models, featurizer, description=f"linear models fitted on {origin}")
