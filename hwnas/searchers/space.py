"""Search-space description: integer, float, log-float and categorical parameters.

Searchers work in two views of a point: the *config* (a dict of parameter values, what objectives and
cost models see) and the *unit encoding* (a float vector in [0, 1]^D, what surrogates and random walks
see). Numeric parameters take one dimension each (log-scaled for log-floats); a categorical parameter
takes one dimension per choice (one-hot), so purely categorical spaces such as NAS-Bench-201
(6 edges x 5 ops) work with the same code as mixed ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.errors import InputError

KINDS = ("int", "float", "log-float", "categorical")


@dataclass(frozen=True)
class Param:
    """One hyperparameter. ``structural`` marks those that change the network (and so its hardware cost,
    thesis §3.3: cost models are fitted on the structural subset only)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    structural: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"parameter {self.name!r}: kind {self.kind!r} is not one of {list(KINDS)}")
        if self.kind == "categorical":
            if len(self.choices) < 1:
                raise InputError(
                    f"parameter {self.name!r}: a categorical parameter needs at least one choice"
                )
            return
        if self.low is None or self.high is None or not self.low <= self.high:
            raise InputError(
                f"parameter {self.name!r}: needs low <= high, got low={self.low}, high={self.high}"
            )
        if self.kind == "log-float" and self.low <= 0:
            raise InputError(f"parameter {self.name!r}: a log-float needs low > 0, got {self.low}")

    @property
    def width(self) -> int:
        """Number of unit-encoding dimensions this parameter takes."""
        return len(self.choices) if self.kind == "categorical" else 1

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        return self.decode(np.array([rng.random()]))

    def encode(self, value: Any) -> np.ndarray:
        if self.kind == "categorical":
            out = np.zeros(len(self.choices))
            try:
                out[self.choices.index(value)] = 1.0
            except ValueError as exc:
                raise InputError(
                    f"parameter {self.name!r}: {value!r} is not one of {list(self.choices)}"
                ) from exc
            return out
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if hi == lo:
            return np.array([0.5])
        v = float(value)
        u = (
            (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
            if self.kind == "log-float"
            else (v - lo) / (hi - lo)
        )
        return np.array([min(max(u, 0.0), 1.0)])

    def decode(self, u: np.ndarray) -> Any:
        if self.kind == "categorical":
            return self.choices[int(np.argmax(u))]
        x = min(max(float(u[0]), 0.0), 1.0)
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.kind == "int":
            # Equal-width bins so that every integer is equally likely under a uniform u.
            return int(min(math.floor(lo + x * (hi - lo + 1)), hi))
        if self.kind == "log-float":
            return float(math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo))))
        return float(lo + x * (hi - lo))

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        if self.kind == "int" and not float(v).is_integer():
            return False
        return float(self.low) - 1e-12 <= v <= float(self.high) + 1e-12  # type: ignore[arg-type]


def IntParam(name: str, low: int, high: int, structural: bool = True) -> Param:  # noqa: N802
    return Param(name, "int", low, high, structural=structural)


def FloatParam(name: str, low: float, high: float, log: bool = False, structural: bool = False) -> Param:  # noqa: N802
    return Param(name, "log-float" if log else "float", low, high, structural=structural)


def CategoricalParam(name: str, choices: Sequence[Any], structural: bool = True) -> Param:  # noqa: N802
    return Param(name, "categorical", choices=tuple(choices), structural=structural)


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters with sampling, mutation and the unit encoding."""

    params: tuple[Param, ...]
    name: str = ""
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise InputError(f"search space {self.name!r}: duplicate parameter names in {names}")
        if not names:
            raise InputError(f"search space {self.name!r}: no parameters")
        self._index.update({n: i for i, n in enumerate(names)})

    @classmethod
    def of(cls, params: Iterable[Param], name: str = "") -> SearchSpace:
        return cls(tuple(params), name=name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def structural_names(self) -> list[str]:
        return [p.name for p in self.params if p.structural]

    @property
    def n_dims(self) -> int:
        return sum(p.width for p in self.params)

    def __getitem__(self, name: str) -> Param:
        return self.params[self._index[name]]

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {p.name: p.sample(rng) for p in self.params}

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check that ``config`` names every parameter with a value in range; return a plain dict."""
        missing = [n for n in self.names if n not in config]
        if missing:
            raise InputError(f"config is missing parameter(s) {missing} of space {self.name!r}")
        bad = [f"{p.name}={config[p.name]!r}" for p in self.params if not p.contains(config[p.name])]
        if bad:
            raise InputError(f"config values out of the space {self.name!r}: {', '.join(bad)}")
        return {n: config[n] for n in self.names}

    def to_unit(self, config: Mapping[str, Any]) -> np.ndarray:
        return np.concatenate([p.encode(config[p.name]) for p in self.params])

    def from_unit(self, u: np.ndarray) -> dict[str, Any]:
        u = np.asarray(u, dtype=float).ravel()
        if u.size != self.n_dims:
            raise InputError(
                f"unit vector has {u.size} values; space {self.name!r} has {self.n_dims} dimensions"
            )
        out: dict[str, Any] = {}
        i = 0
        for p in self.params:
            out[p.name] = p.decode(u[i : i + p.width])
            i += p.width
        return out

    def to_unit_matrix(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not configs:
            return np.zeros((0, self.n_dims))
        return np.stack([self.to_unit(c) for c in configs])

    def neighbour(
        self,
        config: Mapping[str, Any],
        rng: np.random.Generator,
        sigma: float,
        categorical_flip: float | None = None,
    ) -> dict[str, Any]:
        """A point ~ N(config, sigma^2) in the unit encoding (random walk, thesis §3.4.1): numeric
        parameters get Gaussian steps (clipped to the range); each categorical is redrawn uniformly with
        probability ``categorical_flip`` (default: one categorical on average), since Gaussian noise on a
        one-hot vector almost never changes its argmax."""
        cats = [p for p in self.params if p.kind == "categorical"]
        flip = categorical_flip if categorical_flip is not None else (1.0 / len(cats) if cats else 0.0)
        out = dict(config)
        for p in self.params:
            if p.kind == "categorical":
                if rng.random() < flip:
                    out[p.name] = p.sample(rng)
            else:
                u = p.encode(config[p.name]) + rng.normal(0.0, sigma, size=1)
                out[p.name] = p.decode(np.clip(u, 0.0, 1.0))
        return out

    def mutate(self, config: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Change exactly one parameter to a different value (regularised evolution's mutation): a
        categorical takes another choice, a numeric one a new uniform draw (ints: another integer)."""
        mutable = [p for p in self.params if p.width > 1 or p.low != p.high]
        if not mutable:
            return dict(config)
        p = mutable[int(rng.integers(len(mutable)))]
        out = dict(config)
        for _ in range(32):
            v = p.sample(rng)
            if v != config[p.name]:
                out[p.name] = v
                break
        return out

    def key(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        """A hashable identity for a config (rounds floats so that decode/encode noise does not matter)."""
        return tuple(round(config[n], 12) if isinstance(config[n], float) else config[n] for n in self.names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "low": p.low,
                    "high": p.high,
                    "choices": list(p.choices),
                    "structural": p.structural,
                }
                for p in self.params
            ],
        }
