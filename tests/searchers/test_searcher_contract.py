"""Shared contract tests run against every searcher (Optuna's pytest_samplers idea, STYLE.md §2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.searchers.base import Searcher, Trial
from hwnas.searchers.cost_model import fit_cost_models
from hwnas.searchers.registry import SEARCHERS, make_searcher

BUDGET = ["latency_ms<=4.55"]
N_TRIALS = 9  # past the BO searchers' random start (n_init=4 below), so their models are exercised


def _make(name: str, objective, seed: int = 0, constraints=BUDGET) -> Searcher:  # noqa: ANN001
    cm, _ = fit_cost_models(objective.space, objective.measure_costs, ["latency_ms"], n_samples=20, seed=0)
    kwargs = (
        {"n_init": 4}
        if name.startswith(("hyperpower", "cell_bo"))
        else {"n_init": 3}
        if name in ("bo_vanilla", "tpe")
        else {}
    )
    if name == "evolution":
        kwargs = {"population_size": 4, "sample_size": 2}
    return make_searcher(name, objective.space, constraints=constraints, cost_model=cm, seed=seed, **kwargs)


class SearcherTestCase:
    """Subclasses set ``searcher_name``; every check runs on a mixed and on a categorical-only space."""

    searcher_name = ""
    n_trials = N_TRIALS

    @pytest.fixture(params=["grid", "cells"])
    def objective(self, request):  # noqa: ANN001, ANN201
        return request.getfixturevalue(request.param)

    def test_ask_returns_valid_configs_and_tell_completes(self, objective) -> None:  # noqa: ANN001
        s = _make(self.searcher_name, objective)
        for _ in range(self.n_trials):
            t = s.ask()
            assert isinstance(t, Trial) and t.state == "running"
            objective.space.validate(t.config)
            costs = objective.measure_costs(t.config)
            ev = objective.evaluate(t.config)
            s.tell(t, ev.objective, costs)
            assert t.done and t.feasible is not None
        assert len(s.history) == self.n_trials

    def test_history_is_complete(self, objective) -> None:  # noqa: ANN001
        s = _make(self.searcher_name, objective)
        h = s.run(objective, self.n_trials)
        assert [t.number for t in h] == list(range(self.n_trials))
        for t in h:
            assert set(t.measured_costs) == {"latency_ms", "memory_mb"}
            assert set(t.constraints) == {"latency_ms"}
            assert t.constraints["latency_ms"] == pytest.approx(t.measured_costs["latency_ms"] - 4.55)
            assert t.feasible == (t.constraints["latency_ms"] <= 0)
            assert t.wall_time_s >= 0 and t.state in ("complete", "early_stopped", "infeasible")
            if not t.feasible:  # a budget breaker is never trained
                assert t.state == "infeasible" and t.objective is None
        best = h.best()
        if best is not None:
            feas = [t.objective for t in h if t.feasible and t.objective is not None]
            assert best.objective == min(feas)
        curve = h.best_so_far()
        ok = curve[~np.isnan(curve)]
        assert np.all(np.diff(ok) <= 0)
        df = h.to_dataframe()
        assert len(df) == self.n_trials and "meas_latency_ms" in df.columns

    def test_seeded_runs_repeat(self, objective) -> None:  # noqa: ANN001
        a = _make(self.searcher_name, objective, seed=3).run(objective, self.n_trials)
        b = _make(self.searcher_name, objective, seed=3).run(objective, self.n_trials)
        assert [t.config for t in a] == [t.config for t in b]

    def test_tell_twice_or_foreign_trial_is_an_error(self, objective) -> None:  # noqa: ANN001
        s = _make(self.searcher_name, objective)
        t = s.ask()
        s.tell(t, 0.5, objective.measure_costs(t.config))
        with pytest.raises(InputError):
            s.tell(t, 0.5, objective.measure_costs(t.config))
        other = _make(self.searcher_name, objective)
        with pytest.raises(InputError):
            other.tell(Trial(number=0, config=t.config), 0.5, {})

    def test_history_round_trips_through_json(self, objective, tmp_path) -> None:  # noqa: ANN001
        from hwnas.searchers.base import History

        h = _make(self.searcher_name, objective).run(objective, 4)
        back = History.load_json(h.save_json(tmp_path / "h.json"))
        assert [t.config for t in back] == [t.config for t in h]
        assert [t.feasible for t in back] == [t.feasible for t in h]


class TestRandomSearch(SearcherTestCase):
    searcher_name = "random_search"


class TestRandomWalk(SearcherTestCase):
    searcher_name = "random_walk"


class TestEvolution(SearcherTestCase):
    searcher_name = "evolution"


class TestVanillaBO(SearcherTestCase):
    searcher_name = "bo_vanilla"
    n_trials = 5  # Optuna's GP step costs ~0.5 s on this 2-core VM; two model-based asks suffice here


class TestHyperPower(SearcherTestCase):
    searcher_name = "hyperpower"


class TestHyperPowerProbability(SearcherTestCase):
    searcher_name = "hyperpower_prob"


class TestTPE(SearcherTestCase):
    searcher_name = "tpe"
    n_trials = 5


class TestCellBO(SearcherTestCase):
    """A categorical-cell searcher: only the categorical space (a mixed one is refused, tested apart)."""

    searcher_name = "cell_bo"

    @pytest.fixture(params=["cells"])
    def objective(self, request):  # noqa: ANN001, ANN201
        return request.getfixturevalue(request.param)


class TestCellBOProbability(TestCellBO):
    searcher_name = "cell_bo_prob"


def test_every_registered_searcher_has_a_contract_test() -> None:
    tested = {c.searcher_name for c in SearcherTestCase.__subclasses__()}
    tested |= {c.searcher_name for c in TestCellBO.__subclasses__()}
    assert tested == set(SEARCHERS)


def test_nan_objective_is_recorded_as_stopped(grid) -> None:  # noqa: ANN001
    s = _make("random_search", grid)
    t = s.ask()
    s.tell(t, math.nan, grid.measure_costs(t.config))
    assert t.objective is None and t.early_stopped
