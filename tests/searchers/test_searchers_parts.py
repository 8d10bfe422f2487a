"""Unit tests of the searcher parts: constraints, space, cost models, acquisition, tabular objective."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.errors import CheckFailedError, InputError
from hwnas.searchers.acquisition import IndicatorFeasibility, ProbabilityFeasibility, expected_improvement
from hwnas.searchers.constraints import Constraint, parse_constraints
from hwnas.searchers.cost_model import config_features, fit_cost_models
from hwnas.searchers.objectives.base import DivergenceStopper
from hwnas.searchers.registry import make_searcher
from hwnas.searchers.space import CategoricalParam, FloatParam, IntParam, SearchSpace


@pytest.mark.parametrize(
    ("text", "name", "budget"),
    [
        ("power<=90W", "power_mw", 90_000),
        ("memory<=1.25GB", "memory_mb", 1250),
        ("latency_ms<=12", "latency_ms", 12),
        ("latency<=0.5s", "latency_ms", 500),
        ("memory<=512KB", "memory_mb", 0.512),
        ("power<=800mW", "power_mw", 800),
        ("params<=1.5M", "params", 1.5e6),
        ("memory_bytes<=2e6", "memory_mb", 2.0),
    ],
)
def test_constraint_units(text: str, name: str, budget: float) -> None:
    c = Constraint.parse(text)
    assert c.name == name and c.budget == pytest.approx(budget)
    assert c.value(budget + 1) == pytest.approx(1) and c.value(budget) == 0


def test_constraint_ge_flips_sign() -> None:
    c = Constraint.parse("accuracy>=0.9")
    assert c.value(0.95) < 0 < c.value(0.8)


@pytest.mark.parametrize("text", ["power<=90", "power<=90parsecs", "latency=5ms", "memory<5MB", "<=3"])
def test_bad_constraints_name_the_expected_form(text: str) -> None:
    with pytest.raises(InputError) as exc:
        Constraint.parse(text)
    assert text in exc.value.message


def test_duplicate_constraints_rejected() -> None:
    with pytest.raises(InputError):
        parse_constraints(["latency<=5ms", "latency_ms<=4"])


def _mixed_space() -> SearchSpace:
    return SearchSpace.of(
        [
            IntParam("units", 200, 700),
            FloatParam("lr", 0.001, 0.1, log=True),
            FloatParam("momentum", 0.8, 0.95),
            CategoricalParam("op", ["a", "b", "c"]),
        ]
    )


def test_space_sampling_stays_in_range_and_round_trips() -> None:
    space = _mixed_space()
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(300)]
    for c in samples:
        space.validate(c)
        back = space.from_unit(space.to_unit(c))
        assert back["units"] == c["units"] and back["op"] == c["op"]
        assert back["lr"] == pytest.approx(c["lr"]) and back["momentum"] == pytest.approx(c["momentum"])
    units = [c["units"] for c in samples]
    assert min(units) < 260 and max(units) > 640  # both ends are reachable
    lrs = np.log10([c["lr"] for c in samples])
    assert abs(np.median(lrs) - (-2.0)) < 0.25  # log-uniform: median near 10^-2


def test_mutate_changes_exactly_one_parameter() -> None:
    space = _mixed_space()
    rng = np.random.default_rng(1)
    c = space.sample(rng)
    for _ in range(50):
        m = space.mutate(c, rng)
        assert sum(m[k] != c[k] for k in c) == 1


def test_validate_rejects_out_of_range() -> None:
    space = _mixed_space()
    with pytest.raises(InputError, match="units"):
        space.validate({"units": 900, "lr": 0.01, "momentum": 0.9, "op": "a"})
    with pytest.raises(InputError, match="missing"):
        space.validate({"units": 300})


def test_linear_cost_model_recovers_a_linear_cost(grid) -> None:  # noqa: ANN001
    cm, data = fit_cost_models(
        grid.space, grid.measure_costs, ["latency_ms", "memory_mb"], n_samples=40, seed=0
    )
    errs = cm.errors()
    assert errs["latency_ms"] < 1e-6 and errs["memory_mb"] < 1e-6  # the grid's costs are exactly linear
    cfg = grid.configs[5]
    assert cm.predict_one(cfg)["latency_ms"] == pytest.approx(grid.measure_costs(cfg)["latency_ms"])
    assert list(data.columns[-2:]) == ["latency_ms", "memory_mb"] and len(data) == 40


def test_config_features_one_hot_categoricals(cells) -> None:  # noqa: ANN001
    X = config_features(cells.space, cells.configs[:3])
    assert X.shape == (3, 12) and set(np.unique(X.to_numpy())) <= {0.0, 1.0}
    assert np.allclose(X.to_numpy().sum(axis=1), 4)


def test_expected_improvement_properties() -> None:
    mean = np.array([0.1, 0.2, 0.3])
    ei = expected_improvement(mean, np.full(3, 0.05), best=0.2)
    assert ei[0] > ei[1] > ei[2] > 0
    assert (
        expected_improvement(np.array([0.2]), np.array([0.1]), 0.2)[0]
        > expected_improvement(np.array([0.2]), np.array([0.01]), 0.2)[0]
    )  # more uncertainty, more expected improvement


def test_feasibility_terms(grid) -> None:  # noqa: ANN001
    cm, _ = fit_cost_models(grid.space, grid.measure_costs, ["latency_ms"], n_samples=30, seed=0)
    cons = parse_constraints(["latency_ms<=4.55"])
    configs = grid.configs
    ind = IndicatorFeasibility(cm, cons)(configs)
    truth = np.array([grid.measure_costs(c)["latency_ms"] <= 4.55 for c in configs], float)
    assert np.array_equal(ind, truth)
    prob = ProbabilityFeasibility(cm, cons)(configs)
    assert np.all((prob >= 0) & (prob <= 1))
    assert prob[truth == 1].mean() > prob[truth == 0].mean()


def test_divergence_stopper() -> None:
    stop = DivergenceStopper(chance_accuracy=0.1, margin=0.05, after_epochs=2)
    assert not stop(1, 0.1, 2.3)  # too early to judge
    assert stop(2, 0.12, 2.3)
    assert not stop(2, 0.6, 1.0)
    assert stop(1, 0.5, math.nan)


def test_tabular_early_termination_saves_time(grid) -> None:  # noqa: ANN001
    diverged = next(c for c in grid.configs if grid.evaluate(c).objective == 0.9)
    full = grid.evaluate(diverged)
    early = grid.evaluate(diverged, DivergenceStopper())
    assert early.early_stopped and not full.early_stopped
    assert early.eval_time_s < full.eval_time_s
    fine = next(c for c in grid.configs if grid.evaluate(c).objective < 0.3)
    assert not grid.evaluate(fine, DivergenceStopper()).early_stopped


def test_tabular_nearest_projection(grid) -> None:  # noqa: ANN001
    c = dict(grid.configs[7])
    c["lr"] = c["lr"] * 1.05  # off the grid: projected back to the row
    assert grid.project(c) == grid.configs[7]
    assert grid.measure_costs(c) == grid.measure_costs(grid.configs[7])


def test_exact_table_rejects_unknown_rows(cells) -> None:  # noqa: ANN001
    from hwnas.searchers.objectives.tabular import TabularObjective

    t = TabularObjective(cells.table.iloc[:5], cells.space, cost_columns=("latency_ms",), lookup="exact")
    with pytest.raises(InputError):
        t.measure_costs(cells.configs[-1])


def test_hyperpower_never_evaluates_a_predicted_infeasible_point(grid) -> None:  # noqa: ANN001
    cm, _ = fit_cost_models(grid.space, grid.measure_costs, ["latency_ms"], n_samples=30, seed=0)
    s = make_searcher(
        "hyperpower", grid.space, constraints=["latency_ms<=4.55"], cost_model=cm, seed=0, n_init=3
    )
    h = s.run(grid, 12)
    assert all(t.predicted_feasible for t in h)
    assert h.n_violations() == 0  # the linear model is exact here, so predicted-feasible = feasible
    assert h.best() is not None


def test_hyperpower_requires_cost_models_for_every_constraint(grid) -> None:  # noqa: ANN001
    from hwnas.searchers.bo_hyperpower import HyperPower

    with pytest.raises(InputError, match="cost model"):
        HyperPower(grid.space, ["latency_ms<=4.55"])
    cm, _ = fit_cost_models(grid.space, grid.measure_costs, ["latency_ms"], n_samples=10, seed=0)
    with pytest.raises(InputError, match="memory_mb"):
        HyperPower(grid.space, ["latency_ms<=4.55", "memory_mb<=3"], cm)


def test_impossible_budget_is_a_check_failure(grid) -> None:  # noqa: ANN001
    cm, _ = fit_cost_models(grid.space, grid.measure_costs, ["latency_ms"], n_samples=20, seed=0)
    s = make_searcher(
        "random_search",
        grid.space,
        constraints=["latency_ms<=0.5"],
        cost_model=cm,
        seed=0,
        use_cost_model=True,
    )
    s.projector = grid.project
    with pytest.raises(CheckFailedError):
        s.ask()


def test_run_rejects_constraints_the_objective_cannot_measure(grid) -> None:  # noqa: ANN001
    s = make_searcher("random_search", grid.space, constraints=["power<=5W"], seed=0)
    with pytest.raises(InputError, match="power_mw"):
        s.run(grid, 2)


def test_evolution_population_ages(grid) -> None:  # noqa: ANN001
    s = make_searcher("evolution", grid.space, seed=0, population_size=5, sample_size=2)
    h = s.run(grid, 12)
    assert len(s.population) == 5
    assert [t.number for t in s.population] == [t.number for t in h.trials[-5:]]  # oldest removed first


def test_hyperpower_digits_table_and_layer_features() -> None:
    """The shipped table: raw hyperparameters cannot model memory linearly (it is a product of them);
    per-layer sizes can (memory = weights + the largest activation)."""
    from hwnas.searchers.objectives import get_objective

    o = get_objective("hyperpower-digits")
    assert len(o.table) >= 300 and set(o.cost_names) == {"latency_ms", "memory_mb"}
    kw = {"n_samples": 50, "seed": 1, "project": o.project}
    raw, _ = fit_cost_models(o.space, o.measure_costs, ["memory_mb"], **kw)
    layer, _ = fit_cost_models(o.space, o.measure_costs, ["memory_mb"], featurizer=o.cost_featurizer, **kw)
    assert layer.errors()["memory_mb"] < 5 < raw.errors()["memory_mb"]
    row = o.configs[0]
    assert o.evaluate(row).objective == pytest.approx(float(o.table.iloc[0]["val_error"]))


def test_hyperpower_cnn_layer_features_match_the_built_network() -> None:
    from hwnas.spaces import hyperpower_cnn

    cfg = {
        "conv1_features": 30,
        "conv1_kernel": 3,
        "pool1_kernel": 3,
        "conv2_features": 50,
        "conv2_kernel": 2,
        "pool2_kernel": 1,
        "fc_units": 300,
    }
    f = hyperpower_cnn.layer_features(cfg, (1, 8, 8))
    net = hyperpower_cnn.build(cfg, (1, 8, 8))
    n_params = sum(p.numel() for p in net.parameters())
    assert f["conv1_params"] + f["conv2_params"] + f["fc1_params"] + f["fc2_params"] == n_params


def test_compare_parallel_runs_match_sequential(grid) -> None:  # noqa: ANN001
    from hwnas.searchers.compare import compare_searchers

    kw = {"seeds": range(2), "n_evals": 6, "constraints": ["latency_ms<=4.55"], "cost_model_samples": 20}
    a = compare_searchers(grid, ["random_search", "random_walk"], n_jobs=1, **kw)
    b = compare_searchers(grid, ["random_search", "random_walk"], n_jobs=2, **kw)
    for name in ("random_search", "random_walk"):
        assert [[t.config for t in h] for h in a.histories[name]] == [
            [t.config for t in h] for h in b.histories[name]
        ]
    assert a.summaries["random_walk"].violations_mean == b.summaries["random_walk"].violations_mean


def test_use_cost_model_flag_is_not_forwarded_to_constructors(grid) -> None:  # noqa: ANN001
    cm, _ = fit_cost_models(grid.space, grid.measure_costs, ["latency_ms"], n_samples=30, seed=0)
    s = make_searcher(
        "hyperpower", grid.space, constraints=["latency_ms<=4.55"], cost_model=cm, seed=0, n_init=3,
        use_cost_model=True,
    )  # fmt: skip
    assert s.cost_model is cm


def test_cost_aware_evolution_falls_back_to_a_feasible_sample(grid) -> None:  # noqa: ANN001
    """Under a tight budget many mutants of a parent are infeasible; evolution must then draw a fresh
    predicted-feasible point rather than evaluate an infeasible child (2.49 ms: about the 1st percentile)."""
    cm, _ = fit_cost_models(grid.space, grid.measure_costs, ["latency_ms"], n_samples=30, seed=0)
    for seed in range(3):
        s = make_searcher(
            "evolution", grid.space, constraints=["latency_ms<=2.49"], cost_model=cm, seed=seed,
            population_size=4, sample_size=2, use_cost_model=True,
        )  # fmt: skip
        h = s.run(grid, 40)
        assert h.n_violations() == 0
