"""The NAS-Bench-201 tabular objective: lookups, training noise, budgets, cost models, searchers on it."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.searchers.objectives import get_objective
from hwnas.searchers.objectives.nb201 import EDGE_PARAMS, arch_of, config_of, make_objective
from hwnas.spaces.nb201_table import load_table


@pytest.fixture(scope="module")
def table():
    return load_table()


@pytest.fixture(scope="module")
def objective():
    return make_objective("cifar10", "pixel3", budget_percentile=25, seed=0, cost_model="table")


def test_registry_entry_and_space(objective):
    assert objective.space.names == list(EDGE_PARAMS)
    assert len(objective.configs) == 15625
    obj = get_objective("nb201", device="gold_6240", budget_percentile=50, cost_model="none")
    assert obj.cost_model is None and obj.constraint.name == "latency_ms"


def test_budget_is_the_percentile_and_best_feasible_is_the_oracle(objective, table):
    lat = table["lat_pixel3_ms"].to_numpy()
    assert objective.budget_ms == pytest.approx(np.percentile(lat, 25))
    ok = lat <= objective.budget_ms
    want = 1 - table.loc[ok, "cifar10_valid_acc"].max() / 100
    assert objective.best_feasible([objective.constraint]) == pytest.approx(want)


def test_evaluate_draws_one_training_run(objective, table):
    arch = table["arch"].iloc[7]
    runs = table.loc[7, ["cifar10_valid_acc_s0", "cifar10_valid_acc_s1", "cifar10_valid_acc_s2"]].to_numpy(
        float
    )
    runs = runs[np.isfinite(runs)]
    seen = {round(1 - objective.evaluate(config_of(arch)).objective, 6) * 100 for _ in range(40)}
    assert seen <= {round(r / 100, 6) * 100 for r in runs} and len(seen) >= 2
    ev = objective.evaluate(config_of(arch))
    assert ev.eval_time_s == pytest.approx(table["cifar10_train_time_s"].iloc[7])
    assert ev.info["arch"] == arch and objective.measure_costs(config_of(arch))[
        "latency_ms"
    ] == pytest.approx(table["lat_pixel3_ms"].iloc[7])
    assert arch_of(config_of(arch)) == arch


def test_fitted_cost_model_is_safe_side_and_reported(table):
    obj = make_objective(
        "cifar10", "gold_6240", budget_percentile=50, seed=1, cost_model="fit", n_cost_samples=60
    )
    assert "60 measured cells" in obj.cost_model_source
    configs = obj.configs[:500]
    pred = obj.cost_model.predict(configs)["latency_ms"]
    true = np.array([obj.measure_costs(c)["latency_ms"] for c in configs])
    assert np.corrcoef(pred, true)[0, 1] > 0.8
    assert np.median(pred / true) >= 1.0  # inflated by the CV safety scale


def test_searchers_run_and_cost_aware_ones_stay_feasible(objective):
    from hwnas.searchers.registry import make_searcher

    for name, kw in (
        ("random_search", {"use_cost_model": True}),
        ("evolution", {"population_size": 10, "sample_size": 3, "use_cost_model": True}),
    ):
        s = make_searcher(
            name,
            objective.space,
            constraints=[objective.constraint],
            cost_model=objective.cost_model,
            seed=0,
            **kw,
        )
        hist = s.run(objective, 30)
        assert len(hist) == 30 and hist.n_violations() == 0  # exact (table) cost model: never over budget
        best = hist.best()
        assert best is not None and objective.true_error(best.config) >= objective.best_feasible(
            [objective.constraint]
        )


def test_bad_arguments():
    with pytest.raises(InputError, match="dataset"):
        make_objective("mnist")
    with pytest.raises(InputError, match="cost_model"):
        make_objective(cost_model="oracle")
