"""Hardware budgets as named constraints: ``value = cost - budget``, feasible when ``value <= 0``.

Parsed from text such as ``power<=90W``, ``memory<=1.25GB``, ``latency_ms<=12`` or ``latency<=0.5s``.
A bare metric name with a unit is turned into the canonical cost key that objectives and cost models
use (units in names): power -> ``power_mw``, memory -> ``memory_mb`` (1 MB = 1e6 bytes), latency ->
``latency_ms``, energy -> ``energy_mj``. ``>=`` flips the sign (``accuracy>=0.9``: value = budget - cost).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hwnas.errors import InputError

# metric -> (canonical key, {unit: factor to the canonical unit})
_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "power": ("power_mw", {"w": 1e3, "mw": 1.0, "kw": 1e6}),
    "memory": (
        "memory_mb",
        {"b": 1e-6, "kb": 1e-3, "mb": 1.0, "gb": 1e3, "kib": 1.024e-3, "mib": 1.048576, "gib": 1073.741824},
    ),
    "latency": ("latency_ms", {"s": 1e3, "ms": 1.0, "us": 1e-3}),
    "energy": ("energy_mj", {"j": 1e3, "mj": 1.0, "uj": 1e-3}),
}
_SUFFIX_UNIT = {
    "_mw": ("power", "mw"),
    "_w": ("power", "w"),
    "_mb": ("memory", "mb"),
    "_gb": ("memory", "gb"),
    "_bytes": ("memory", "b"),
    "_ms": ("latency", "ms"),
    "_s": ("latency", "s"),
    "_mj": ("energy", "mj"),
    "_j": ("energy", "j"),
}
_COUNT_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}
_PATTERN = re.compile(
    r"^\s*([A-Za-z][\w.]*)\s*(<=|>=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$"
)


@dataclass(frozen=True)
class Constraint:
    """One budget on one cost. ``name`` is the cost key (with its unit), ``budget`` in that unit."""

    name: str
    budget: float
    op: str = "<="
    text: str = ""

    def value(self, cost: float) -> float:
        """``cost - budget`` for ``<=`` (``budget - cost`` for ``>=``): <= 0 is feasible."""
        return float(cost) - self.budget if self.op == "<=" else self.budget - float(cost)

    def values_from(self, costs: Mapping[str, float]) -> float:
        if self.name not in costs:
            raise InputError(
                f"constraint {self.text or self.name}: no {self.name!r} among the costs {sorted(costs)}",
                hint="the objective or cost model must report this cost",
            )
        return self.value(costs[self.name])

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.budget:g}"

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``NAME<=VALUE[UNIT]``; the budget must be finite, and positive for an upper bound
        (``latency<=0ms`` or ``<=-5ms`` could never be met, ``<=1e999ms`` is no budget at all)."""
        c = cls._parse(text)
        if not math.isfinite(c.budget):
            raise InputError(f"constraint {text!r}: the budget is not a finite number",
                             hint="give a finite value, e.g. latency<=5ms")  # fmt: skip
        if c.op == "<=" and c.budget <= 0:
            raise InputError(f"constraint {text!r}: an upper bound must be > 0 (got {c.budget:g})",
                             hint="give a positive budget, e.g. latency<=5ms")  # fmt: skip
        return c

    @classmethod
    def _parse(cls, text: str) -> Constraint:
        m = _PATTERN.match(text)
        if not m:
            raise InputError(
                f"constraint {text!r}: expected NAME<=VALUE[UNIT] or NAME>=VALUE[UNIT]",
                hint="e.g. power<=90W, memory<=1.25GB, latency_ms<=12, latency<=0.5s",
            )
        name, op, number, unit = m.group(1), m.group(2), float(m.group(3)), m.group(4).lower()
        metric, key = name.lower(), name
        for suffix, (met, name_unit) in _SUFFIX_UNIT.items():
            if metric.endswith(suffix) and metric[: -len(suffix)] == met:
                factors = _UNITS[met][1]
                if unit and unit not in factors:
                    raise _unit_error(text, met)
                return cls(_UNITS[met][0], number * factors[unit or name_unit], op, text)
        if metric in _UNITS:
            key, factors = _UNITS[metric]
            if not unit:
                raise InputError(
                    f"constraint {text!r}: {metric} needs a unit",
                    hint=f"one of {', '.join(sorted(factors))} (e.g. {metric}<=1{sorted(factors)[0]})",
                )
            if unit not in factors:
                raise _unit_error(text, metric)
            return cls(key, number * factors[unit], op, text)
        if unit:
            if unit not in _COUNT_SUFFIX:
                raise InputError(
                    f"constraint {text!r}: unknown unit {unit!r} for {name!r}",
                    hint="counts take k, M or G (params<=1.5M); put other units in the name",
                )
            number *= _COUNT_SUFFIX[unit]
        return cls(key, number, op, text)


def _unit_error(text: str, metric: str) -> InputError:
    units = ", ".join(sorted(_UNITS[metric][1]))
    return InputError(f"constraint {text!r}: unknown unit for {metric}", hint=f"use one of {units}")


def parse_constraints(texts: Iterable[str | Constraint]) -> tuple[Constraint, ...]:
    out = tuple(t if isinstance(t, Constraint) else Constraint.parse(t) for t in texts)
    names = [c.name for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"more than one constraint on {dup}", hint="give one budget per cost")
    return out


def constraint_values(constraints: Iterable[Constraint], costs: Mapping[str, float]) -> dict[str, float]:
    """``{name: cost - budget}`` for every constraint (all must have their cost in ``costs``)."""
    return {c.name: c.values_from(costs) for c in constraints}


def is_feasible(values: Mapping[str, float]) -> bool:
    return all(v <= 0 for v in values.values())
