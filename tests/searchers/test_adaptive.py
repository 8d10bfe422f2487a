"""Adaptive DNNs (thesis ch. 4): the cascade model by hand, the cost terms, real training with the store
cache, BO / BO+ / grid / static on a small trained pool, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.searchers.adaptive import (
    AdaptiveBO,
    AdaptiveProblem,
    LinkModel,
    NetworkCosts,
    NetworkFamily,
    NetworkTrainer,
    StageCost,
    grid_design,
    link_from,
    load_design_data,
    remote_stage_cost,
    run_design,
    score_margin,
    static_design,
    sweep_cascade,
)
from hwnas.store.sqlite import SQLiteStore

# 4 images, 3 classes. N1 is confident on images 0 and 1 (margins 0.8, 0.5), unsure on 2 and 3 (0.1, 0.0).
P1 = np.array([[0.9, 0.1, 0.0], [0.1, 0.7, 0.2], [0.4, 0.3, 0.3], [0.5, 0.0, 0.5]])
P2 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
LABELS = np.array([0, 1, 1, 2])  # N1 right on 0, 1, wrong on 2 (says 0), 3 ties -> argmax 0: wrong
COSTS = [StageCost(2.0, 1.0), StageCost(10.0, 5.0)]


def test_score_margin_is_top1_minus_top2():
    np.testing.assert_allclose(score_margin(P1), [0.8, 0.5, 0.1, 0.0])
    with pytest.raises(InputError):
        score_margin(np.ones((3, 1)))


def test_cascade_by_hand():
    r0, r_mid, r_all = sweep_cascade([P1, P2], LABELS, [[0.0], [0.3], [1.01]], COSTS)
    # θ = 0: every image exits at N1 (SM >= 0): N1's error 2/4, energy E1.
    assert (r0.error, r0.energy_mj, r0.exit_fractions) == (0.5, 2.0, (1.0, 0.0))
    # θ = 0.3: images 2, 3 go on; N2 is right on 2, right on 3 -> error 0; energy 2 + 0.5 * 10.
    assert r_mid.error == 0.0 and r_mid.energy_mj == pytest.approx(7.0) and r_mid.forwarded_fraction == 0.5
    assert r_mid.latency_ms == pytest.approx(1.0 + 0.5 * 5.0)
    # θ > 1: everything on to N2, which is wrong on image 1 only.
    assert r_all.error == 0.25 and r_all.energy_mj == pytest.approx(12.0)


def test_three_network_cascade_exits_in_order():
    p3 = np.eye(3)[LABELS]  # N3 always right
    r = sweep_cascade([P1, P2, p3], LABELS, [[0.3, 1.01]], [*COSTS, StageCost(100.0, 50.0)])[0]
    # 2 exit at N1 (right), 2 reach N2, none trust N2 (θ23 > 1): both go to N3 (right).
    assert r.exit_fractions == (0.5, 0.0, 0.5) and r.error == 0.0
    assert r.energy_mj == pytest.approx(2.0 + 0.5 * 10.0 + 0.5 * 100.0)
    with pytest.raises(InputError, match="threshold"):
        sweep_cascade([P1, P2, p3], LABELS, [[0.3]], [*COSTS, StageCost(1, 1)])


def test_remote_stage_is_idle_power_times_server_time_plus_comm():
    link = LinkModel("t", bandwidth_mbps=8.0, latency_ms=2.0, image_bytes=1000, result_bytes=0)
    assert link.comm_ms == pytest.approx(2.0 + 8000 / 8e6 * 1e3)  # 3 ms
    c = remote_stage_cost(idle_power_w=1.5, server_runtime_ms=4.0, comm_ms=link.comm_ms)
    assert c.energy_mj == pytest.approx(1.5 * 7.0) and c.where == "server"
    assert link_from("wifi").comm_ms > link_from("ethernet").comm_ms
    assert link_from({"preset": "wifi", "latency_ms": 1.0}).latency_ms == 1.0
    with pytest.raises(InputError, match="unknown link preset"):
        link_from("carrier-pigeon")
    with pytest.raises(InputError, match="unknown field"):
        link_from({"preset": "wifi", "bandwith": 3})


# -- real training on a small digits split ------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    dd = load_design_data(None, seed=0, max_train=300)
    store = SQLiteStore(tmp_path_factory.mktemp("adaptive") / "s.db")
    trainer = NetworkTrainer(dd, epochs=2, cache=store)
    fam = NetworkFamily.scaled(dd.scale)
    pool = [fam.config(f, 3, f, 3, u) for f in (8, 40) for u in (125, 600)] + [fam.nominal_large()]
    # Edge latency from the analytic MAC count (deterministic, so the test asserts exact relations);
    # the CLI measures it with the device's profiler.
    from hwnas.spaces import hyperpower_cnn

    def edge(cfg, module, shape):
        f = hyperpower_cnn.layer_features(cfg, dd.input_shape)
        macs = sum(v for k, v in f.items() if k.endswith("_macs")) + f["fc1_params"] + f["fc2_params"]
        return {"latency_ms": macs / 1e6}

    costs = NetworkCosts(trainer.build, dd.input_shape, edge, edge_power_w=2.0)
    for c in pool:
        trainer.get(c)
    return dd, store, trainer, fam, pool, costs


def test_training_is_cached_in_the_store_and_resumes(trained):
    dd, store, trainer, fam, pool, costs = trained
    assert trainer.train_count == len(pool)
    net = trainer.get(pool[0])
    assert net.probs_design.shape == (len(dd.labels_design), 10)
    np.testing.assert_allclose(net.probs_design.sum(1), 1.0, rtol=1e-5)
    fresh = NetworkTrainer(dd, epochs=2, cache=store)  # a new process after a kill: reads, never retrains
    again = fresh.get(pool[0])
    assert fresh.train_count == 0 and again.cached
    np.testing.assert_array_equal(again.probs_test, net.probs_test)
    other = NetworkTrainer(dd, epochs=3, cache=store)  # another training budget is another network
    other.get(pool[0])
    assert other.train_count == 1


@pytest.mark.parametrize("form,budget", [("energy", 3.0), ("error", 2.0)])
def test_grid_bo_and_bo_plus_on_a_trained_pool(trained, form, budget):
    dd, store, trainer, fam, pool, costs = trained
    prob = AdaptiveProblem(trainer, costs, form=form, budget=budget, pool=pool)
    grid_best, front = grid_design(prob, pool)
    static = static_design(prob, [pool[0], fam.nominal_large()])
    assert grid_best is not None and front
    ref = prob.reference_error_pct() if form == "error" else 0.0
    g_obj, g_con = prob.values(grid_best.error_pct, grid_best.energy_mj, ref)
    assert g_con <= 1e-9
    if static is not None:  # the grid includes the static design's networks and θ grid
        assert g_obj <= prob.values(static.error_pct, static.energy_mj, ref)[0] + 1e-9
    for plus in (False, True):
        bo = AdaptiveBO(prob, plus=plus, seed=3, n_init=3, n_candidates=200)
        hist = run_design(prob, bo, 6)
        assert len(hist) == 6 and all(t.done for t in hist.trials)
        for t in hist.trials:
            configs, thetas = prob.split(t.config)
            assert all(c in pool for c in configs)  # projected onto the trained pool
            p = prob.evaluate(t.config, with_test=False)
            assert t.objective == pytest.approx(prob.values(p.error_pct, p.energy_mj, ref)[0])
            if plus and "theta_proposed" in t.info:  # BO+ kept the best swept θ, never a worse one
                z0 = prob.join(configs, t.info["theta_proposed"])
                p0 = prob.evaluate(z0, with_test=False)
                o0, c0 = prob.values(p0.error_pct, p0.energy_mj, ref)
                assert c0 > 0 or t.objective <= o0 + 1e-12
        best = hist.best()
        if best is not None:
            assert best.objective >= g_obj - 1e-9 or bo.plus is False  # BO's free θ may beat the grid's
            assert best.info["design"]["test_error_pct"] is not None


def test_problem_rejects_bad_input(trained):
    dd, store, trainer, fam, pool, costs = trained
    with pytest.raises(InputError, match="form"):
        AdaptiveProblem(trainer, costs, form="latency", budget=1.0)
    with pytest.raises(InputError, match="2 or 3"):
        AdaptiveProblem(trainer, costs, n_networks=4, budget=1.0)
    with pytest.raises(InputError, match="budget"):
        AdaptiveProblem(trainer, costs, budget=float("nan"))
    remote = AdaptiveProblem(trainer, costs, budget=5.0, placement="remote", pool=pool)
    with pytest.raises(InputError, match="idle power"):
        remote.evaluate(remote.join(pool[:2], [0.5]))


# -- CLI ---------------------------------------------------------------------------------------------


def _cli(*args):
    from hwnas.cli.app import main

    return main(list(args))


def test_cli_local_and_remote(tmp_path, capsys):
    store = str(tmp_path / "a.db")
    common = ["--epochs", "1", "--max-train", "200", "--evals", "3", "--store", store, "--json"]
    rc = _cli("adaptive", "--constraint", "energy<=50mJ", "--edge-power-w", "5", *common,
              "--plot", str(tmp_path / "p.png"), "--history", str(tmp_path / "h.json"))  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["problem"]["placement"] == "local" and out["evaluations"] == 3
    assert (tmp_path / "p.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "h.json").read_text())["trials"]) == 3
    trained_first = out["networks_trained"]
    assert trained_first >= 2
    rc = _cli("adaptive", "--max-error-increase", "5%", "--edge-power-w", "5", "--server-device",
              "local-cpu-torch", "--link", "wifi", "--idle-power-w", "1.0", *common)  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["problem"]["placement"] == "remote"
    assert out["problem"]["costs"]["link"]["name"] == "wifi"


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--edge-power-w", "5"], "exactly one budget"),
        (["--constraint", "energy<=5mJ", "--max-error-increase", "1%", "--edge-power-w", "5"], "exactly one"),
        (["--constraint", "latency<=5ms", "--edge-power-w", "5"], "one budget on energy"),
        (["--constraint", "energy<=5mJ"], "no readable power sensor"),
        (["--constraint", "energy<=5mJ", "--edge-power-w", "5", "--link", "wifi"], "needs --server-device"),
        (["--max-error-increase", "lots", "--edge-power-w", "5"], "percentage"),
    ],
)
def test_cli_errors(tmp_path, capsys, args, msg):
    rc = _cli("adaptive", *args, "--store", str(tmp_path / "e.db"), "--evals", "1")
    assert rc == 2
    assert msg in capsys.readouterr().err


def test_fast_two_network_sweep_equals_the_general_loop():
    rng = np.random.default_rng(0)
    p1, p2 = rng.dirichlet(np.ones(5), 200), rng.dirichlet(np.ones(5) * 0.3, 200)
    labels = rng.integers(0, 5, 200)
    grid = [[t] for t in np.linspace(0, 1, 41)]
    fast = sweep_cascade([p1, p2], labels, grid, COSTS)
    slow = [sweep_cascade([p1, p2], labels, [g], COSTS)[0] for g in grid]
    for a, b in zip(fast, slow, strict=True):
        assert a.error == pytest.approx(b.error) and a.energy_mj == pytest.approx(b.energy_mj)
        assert a.exit_fractions == pytest.approx(b.exit_fractions)


def test_fixed_stage_is_not_searched(trained):
    dd, store, trainer, fam, pool, costs = trained
    large = fam.nominal_large()
    prob = AdaptiveProblem(trainer, costs, form="error", budget=3.0, pool=pool, fixed={1: large})
    assert not any(n.startswith("n2_") for n in prob.space.names) and "theta12" in prob.space.names
    z = prob.project(prob.space.sample(np.random.default_rng(0)))
    configs, _ = prob.split(z)
    assert configs[1] == large and configs[0] in pool
    best, _ = grid_design(prob, pool)
    assert best is not None and best.configs[1] == large
    hist = run_design(prob, AdaptiveBO(prob, plus=True, seed=0, n_init=2), 4)
    assert all(prob.split(t.config)[0][1] == large for t in hist.trials)
    with pytest.raises(InputError, match="fixed stages"):
        AdaptiveProblem(trainer, costs, budget=3.0, fixed={0: large, 1: large})


def test_search_command_dispatches_adaptive(tmp_path, capsys):
    rc = _cli("search", "--searcher", "adaptive-bo", "--edge-device", "local-cpu", "--constraint",
              "energy<=50mJ", "--edge-power-w", "5", "--epochs", "1", "--max-train", "200", "--evals", "2",
              "--store", str(tmp_path / "s.db"), "--json")  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["searcher"] == "adaptive_bo" and out["evaluations"] == 2
