"""Searchers by name, with the defaults each baseline runs with in the thesis's comparison."""

from __future__ import annotations

import importlib
from typing import Any

from hwnas.errors import InputError

SEARCHERS: dict[str, str] = {
    "hyperpower": "hwnas.searchers.bo_hyperpower:HyperPower",
    "bo_vanilla": "hwnas.searchers.bo_vanilla:VanillaConstrainedBO",
    "random_search": "hwnas.searchers.random_search:RandomSearch",
    "random_walk": "hwnas.searchers.random_walk:RandomWalk",
    "evolution": "hwnas.searchers.evolution:RegularizedEvolution",
    "hyperpower_prob": "hwnas.searchers.bo_hyperpower:HyperPower",
    "cell_bo": "hwnas.searchers.cell_bo:CellBO",
    "cell_bo_prob": "hwnas.searchers.cell_bo:CellBO",
    "tpe": "hwnas.searchers.bo_vanilla:VanillaConstrainedBO",
}
# Registered variants: the same class with other defaults. ``hyperpower_prob`` replaces eq. 3.4's
# indicators by P(cost <= budget) from the cost models' cross-validated error band (STYLE.md §5), for
# cost models that are known to err.
# ``cell_bo`` is HyperPower's acquisition with a Hamming-kernel GP and local acquisition search, made for
# categorical cell spaces; ``tpe`` is vanilla constrained BO on Optuna's TPE sampler (what a user picks
# today) instead of its GP.
DEFAULTS: dict[str, dict[str, Any]] = {
    "hyperpower_prob": {"feasibility": "probability"},
    "cell_bo_prob": {"feasibility": "probability"},
    "tpe": {"sampler": "tpe"},
}
# Which searchers use early termination of diverging runs by default (thesis §3.4.1: HyperPower and the
# random search baselines; vanilla BO runs every trial to the end).
EARLY_TERMINATION = {
    "hyperpower_prob": True,
    "hyperpower": True,
    "bo_vanilla": False,
    "random_search": True,
    "random_walk": True,
    "evolution": False,
    "cell_bo": True,
    "cell_bo_prob": True,
    "tpe": False,
}
# Which searchers read a cost model (HyperPower needs one; the rest run without, as thesis baselines).
USES_COST_MODEL = {"hyperpower", "hyperpower_prob", "cell_bo", "cell_bo_prob"}


def searcher_class(name: str) -> type:
    if name not in SEARCHERS:
        raise InputError(f"unknown searcher {name!r}", hint=f"known: {', '.join(SEARCHERS)}")
    module, cls = SEARCHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_searcher(
    name: str,
    space: Any,
    *,
    constraints: Any = (),
    cost_model: Any = None,
    seed: int = 0,
    chance_accuracy: float | None = None,
    early_termination: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Build searcher ``name`` with its default early-termination rule (a ``DivergenceStopper`` at
    ``chance_accuracy``) and, for those that use one, the cost model."""
    from hwnas.searchers.objectives.base import DivergenceStopper

    cls = searcher_class(name)
    use_et = EARLY_TERMINATION.get(name, False) if early_termination is None else early_termination
    stopper = DivergenceStopper(chance_accuracy=chance_accuracy or 0.1) if use_et else None
    use_cost_model = kwargs.pop("use_cost_model", False)  # never forwarded to a constructor
    cm = cost_model if (name in USES_COST_MODEL or use_cost_model) else None
    return cls(space, constraints, cm, seed=seed, stopper=stopper, **{**DEFAULTS.get(name, {}), **kwargs})
