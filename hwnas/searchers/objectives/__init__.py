"""Objectives for searchers, looked up by name: ``get_objective(name, **kwargs)``.

Entries are ``"module:function"`` strings imported on first use, so no dataset or table is read at
import time and an entry may live in another engineer's module (``nb201``).
"""

from __future__ import annotations

import importlib
from typing import Any

from hwnas.errors import InputError

REGISTRY: dict[str, str] = {
    "nb201": "hwnas.searchers.objectives.nb201:make_objective",
    "hyperpower-digits": "hwnas.searchers.objectives.tabular:hyperpower_digits",
    "train": "hwnas.searchers.objectives.training:TrainingObjective",
}


def register_objective(name: str, target: str) -> None:
    """Add an entry ``name -> "module:callable"``."""
    REGISTRY[name] = target


def get_objective(name: str, **kwargs: Any) -> Any:
    """Build the objective registered as ``name`` (a table file path also works: ``*.csv``)."""
    if name not in REGISTRY:
        if name.endswith((".csv", ".csv.gz", ".parquet")):
            from hwnas.searchers.objectives.tabular import TabularObjective

            return TabularObjective.from_file(name, **kwargs)
        raise InputError(
            f"unknown objective {name!r}", hint=f"known: {', '.join(sorted(REGISTRY))}, or a table file"
        )
    module_name, func = REGISTRY[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InputError(f"objective {name!r}: module {module_name} is not available ({exc})") from exc
    return getattr(module, func)(**kwargs)
