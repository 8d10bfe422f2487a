"""Cost penalties: values, gradients and parsing."""

from __future__ import annotations

import math

import pytest
import torch

from hwnas.errors import InputError
from hwnas.searchers.penalty import BudgetPenalty, FBNetPenalty, LinearPenalty, LogPenalty, make_penalty


def _grad(p, ce: float, cost: float) -> tuple[float, float]:  # noqa: ANN001
    c = torch.tensor(cost, dtype=torch.float64, requires_grad=True)
    loss = p(torch.tensor(ce, dtype=torch.float64), c)
    loss.backward()
    return float(loss.detach()), float(c.grad)


def test_log_penalty_is_eq_5_7() -> None:
    loss, g = _grad(LogPenalty(0.2), 1.5, 80.0)
    assert loss == pytest.approx(1.5 + 0.2 * math.log(80.0))
    assert g == pytest.approx(0.2 / 80.0)


def test_linear_penalty() -> None:
    loss, g = _grad(LinearPenalty(0.1, scale=10.0), 1.0, 50.0)
    assert loss == pytest.approx(1.5) and g == pytest.approx(0.01)


def test_fbnet_penalty_is_multiplicative() -> None:
    loss, g = _grad(FBNetPenalty(0.2, 0.6), 2.0, 30.0)
    assert loss == pytest.approx(2.0 * 0.2 * math.log(30.0) ** 0.6)
    assert g == pytest.approx(2.0 * 0.2 * 0.6 * math.log(30.0) ** -0.4 / 30.0)
    with pytest.raises(InputError, match="log"):
        FBNetPenalty()(torch.tensor(1.0), torch.tensor(0.5))


def test_budget_penalty_is_free_below_budget() -> None:
    p = BudgetPenalty(80.0, lam=10.0, power=2.0)
    loss, g = _grad(p, 1.0, 70.0)
    assert loss == 1.0 and g == 0.0
    loss, g = _grad(p, 1.0, 88.0)
    assert loss == pytest.approx(1.0 + 10.0 * 0.1**2)
    assert g == pytest.approx(10.0 * 2 * 0.1 / 80.0)
    with pytest.raises(InputError, match="budget"):
        BudgetPenalty(0.0)


def test_log_of_nonpositive_cost_is_an_error() -> None:
    with pytest.raises(InputError, match="positive"):
        LogPenalty()(torch.tensor(1.0), torch.tensor(0.0))


def test_make_penalty_parses_text() -> None:
    assert make_penalty("log:0.3") == LogPenalty(0.3)
    assert make_penalty("fbnet:0.2,0.6") == FBNetPenalty(0.2, 0.6)
    assert make_penalty("budget:80,5") == BudgetPenalty(80.0, 5.0)
    assert make_penalty("linear:0.01,2") == LinearPenalty(0.01, 2.0)
    assert make_penalty(None) == LogPenalty()
    assert make_penalty("log:0.5").to_dict() == {"kind": "log", "lam": 0.5}
    for bad, msg in [
        ("cubic:1", "unknown"),
        ("log:x", "not a number"),
        ("log:1,2", "2 values"),
        ("budget", "budget"),
    ]:
        with pytest.raises(InputError, match=msg):
            make_penalty(bad)
