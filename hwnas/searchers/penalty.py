"""Cost penalties of one-shot searchers: the loss ``L(CE, cost)`` a supernet is trained on.

A one-shot search (Single-Path NAS, FBNet/FBNetV2) adds the architecture's differentiable cost to the
training loss; which form it takes is what separates the methods, so each is a small callable here:

- :class:`LinearPenalty`   ``CE + λ · cost / scale``              (ProxylessNAS-style expected-latency term)
- :class:`LogPenalty`      ``CE + λ · log(cost)``                 (Single-Path NAS, Stamoulis eq. 5.7)
- :class:`FBNetPenalty`    ``CE · α · log(cost)^β``               (FBNet, Wu et al. 2019: α = 0.2, β = 0.6)
- :class:`BudgetPenalty`   ``CE + λ · max(0, cost/budget − 1)^p`` (a hard budget: no pull below it)

``cost`` is a 0-d tensor in the cost's unit (ms, MFLOP ...), the output of a supernet's ``cost()``; it
must be positive for the log forms. ``make_penalty("log:0.2")`` builds one from text (CLI use).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from hwnas.errors import InputError

_EPS = 1e-12


@runtime_checkable
class CostPenalty(Protocol):
    """``penalty(ce, cost) -> loss``; ``kind`` names the form, ``to_dict()`` its parameters (for logs)."""

    kind: ClassVar[str]

    def __call__(self, ce: torch.Tensor, cost: torch.Tensor) -> torch.Tensor: ...

    def to_dict(self) -> dict[str, Any]: ...


def _positive(cost: torch.Tensor, kind: str) -> torch.Tensor:
    if not torch.is_tensor(cost):
        cost = torch.as_tensor(float(cost))
    if bool((cost.detach() <= 0).any()):
        raise InputError(
            f"{kind} penalty: the cost must be positive to take its log, got "
            f"{float(cost.detach().min()):.4g}",
            hint="price the fixed part of the network too (a stem/head constant), or use a linear penalty",
        )
    return cost.clamp_min(_EPS)


@dataclass(frozen=True)
class LinearPenalty:
    """``CE + λ · cost / scale`` (``scale`` puts the cost in units where λ ≈ 0.1–1 is sensible)."""

    lam: float = 0.1
    scale: float = 1.0
    kind: ClassVar[str] = "linear"

    def __call__(self, ce: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        return ce + self.lam * cost.to(ce.dtype) / self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class LogPenalty:
    """Single-Path NAS, eq. 5.7: ``L = CE + λ · log(R)``, R the runtime in ms."""

    lam: float = 0.2
    kind: ClassVar[str] = "log"

    def __call__(self, ce: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        return ce + self.lam * torch.log(_positive(cost, self.kind)).to(ce.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class FBNetPenalty:
    """FBNet (Wu et al., CVPR 2019): ``L = CE · α · log(LAT)^β``, multiplicative (α = 0.2, β = 0.6 there).

    ``log(cost)`` must exceed 0 (cost > 1 in its unit) for the power to be real: price in ms or μs so
    that it does."""

    alpha: float = 0.2
    beta: float = 0.6
    kind: ClassVar[str] = "fbnet"

    def __call__(self, ce: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        log_c = torch.log(_positive(cost, self.kind))
        if bool((log_c.detach() <= 0).any()):
            raise InputError(
                f"fbnet penalty: log(cost) must be > 0, cost is {float(cost.detach()):.4g}",
                hint="express the cost in a unit where it exceeds 1 (ms, not s; MFLOP, not GFLOP)",
            )
        return ce * self.alpha * log_c.to(ce.dtype) ** self.beta

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class BudgetPenalty:
    """A hard budget: ``CE + λ · max(0, cost/budget − 1)^p``. Zero gradient from the cost below the
    budget (the search is free to spend it), a steep one above (λ large, p = 1 or 2)."""

    budget: float
    lam: float = 10.0
    power: float = 2.0
    kind: ClassVar[str] = "budget"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"budget penalty: the budget must be a positive number, got {self.budget}")
        if self.power <= 0:
            raise InputError(f"budget penalty: power must be > 0, got {self.power}")

    def __call__(self, ce: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        over = torch.relu(cost.to(ce.dtype) / self.budget - 1.0)
        return ce + self.lam * over**self.power

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


PENALTIES: dict[str, type] = {
    "linear": LinearPenalty,
    "log": LogPenalty,
    "fbnet": FBNetPenalty,
    "budget": BudgetPenalty,
}
_ARGS = {
    "linear": ("lam", "scale"),
    "log": ("lam",),
    "fbnet": ("alpha", "beta"),
    "budget": ("budget", "lam", "power"),
}


def make_penalty(spec: str | CostPenalty | None, **kwargs: Any) -> CostPenalty:
    """A penalty from text ``kind[:v1[,v2...]]`` (``log:0.2``, ``fbnet:0.2,0.6``, ``budget:80,10``,
    ``linear:0.01``), positional values in the order of the class's fields, or from ``kind`` + kwargs."""
    if spec is None:
        spec = "log"
    if not isinstance(spec, str):
        return spec
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in PENALTIES:
        raise InputError(
            f"unknown cost penalty {kind!r}", hint=f"known: {', '.join(PENALTIES)} (e.g. log:0.2)"
        )
    values = [v.strip() for v in rest.split(",") if v.strip()] if rest else []
    names = _ARGS[kind]
    if len(values) > len(names):
        raise InputError(
            f"cost penalty {spec!r}: {len(values)} values for {len(names)} parameters",
            hint=f"{kind}:{','.join(names)}",
        )
    params: dict[str, float] = {}
    for n, v in zip(names, values, strict=False):
        try:
            params[n] = float(v)
        except ValueError as exc:
            raise InputError(f"cost penalty {spec!r}: {n}={v!r} is not a number") from exc
    params.update(kwargs)
    if kind == "budget" and "budget" not in params:
        raise InputError("budget penalty needs the budget", hint="budget:80 (in the cost's unit)")
    return PENALTIES[kind](**params)
