"""λ tuning (thesis §6.3, eq. 6.2) through the black-box searcher contract."""

from __future__ import annotations

import math

import pytest

from hwnas.errors import InputError
from hwnas.searchers.objectives.lambda_tuning import (
    LambdaTuningObjective,
    SearchOutcome,
    reward,
    tune_lambda,
)


def test_reward_is_eq_6_2() -> None:
    assert reward(0.8, 70.0, 80.0) == 0.8  # w = 0 at or under the target
    assert reward(0.8, 80.0, 80.0) == 0.8
    assert reward(0.8, 100.0, 80.0) == pytest.approx(0.8 * 80 / 100)  # w = -1 over it


def synthetic_search(lam: float) -> SearchOutcome:
    """Larger λ: faster and less accurate networks (the trade-off λ controls)."""
    runtime = 60.0 + 60.0 / (1.0 + 10 * lam)
    acc = 0.9 - 0.05 * math.log10(1 + 10 * lam)
    return SearchOutcome(acc, runtime, {"lam_seen": lam})


@pytest.mark.parametrize("searcher", ["bo_vanilla", "random_search"])
def test_tuning_finds_the_lambda_that_just_meets_the_target(searcher) -> None:
    obj = LambdaTuningObjective(synthetic_search, 80.0, low=1e-3, high=10.0)
    h = tune_lambda(obj, searcher, 12, seed=0)
    assert len(h) == 12 and all(t.measured_costs["latency_ms"] > 0 for t in h)
    best = h.best()
    assert best is not None
    # The reward peaks where R(λ) = R_T: λ = 0.2 here; 12 evaluations get near it.
    assert best.info["reward"] == pytest.approx(1 - best.objective)
    assert best.info["reward"] > 0.85
    assert 0.05 < best.config["lam"] < 1.0
    assert best.info["lam_seen"] == best.config["lam"]


def test_bad_settings() -> None:
    with pytest.raises(InputError, match="target"):
        LambdaTuningObjective(synthetic_search, 0.0)
    with pytest.raises(InputError, match="range"):
        LambdaTuningObjective(synthetic_search, 80.0, low=1.0, high=0.5)
