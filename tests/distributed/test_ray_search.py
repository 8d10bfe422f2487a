"""Trials on a local Ray cluster (2 CPUs, started in this test process): synchronous batches reproduce the
local run, a worker killed mid-trial is retried (then failed when retries are spent), and a killed driver
resumes from the store's journal without repeating a finished trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is the [distributed] extra (pip install 'hwnas[distributed]')")

import ray_helpers  # noqa: E402
from ray_helpers import SleepyObjective, evaluations  # noqa: E402

from hwnas.distributed.executor import LocalExecutor  # noqa: E402
from hwnas.distributed.ray_executor import RayExecutor  # noqa: E402
from hwnas.distributed.search_loop import LoopStats, run_search  # noqa: E402
from hwnas.searchers.registry import make_searcher  # noqa: E402
from hwnas.store import SQLiteStore  # noqa: E402

HERE = Path(__file__).parent
CONS = ["latency<=0.1864ms", "memory<=0.5831MB"]


@pytest.fixture(scope="module")
def cluster():
    ray.cloudpickle.register_pickle_by_value(ray_helpers)  # workers do not have tests/ on their path
    ray.init(
        num_cpus=2,
        resources={"local-cpu": 1, "local-cpu-torch": 1},  # a two-device "fleet" on this one node
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def digits():
    from hwnas.searchers.objectives import get_objective

    return get_objective("hyperpower-digits")


def _same(h1, h2) -> bool:
    return [(t.config, t.objective, t.state) for t in h1] == [(t.config, t.objective, t.state) for t in h2]


@pytest.mark.parametrize("name", ["evolution", "hyperpower"])
def test_sync_batches_on_ray_equal_the_local_run(cluster, digits, name) -> None:
    from hwnas.searchers.cost_model import fit_cost_models

    cm = None
    if name == "hyperpower":
        cm, _ = fit_cost_models(
            digits.space,
            digits.measure_costs,
            ["latency_ms", "memory_mb"],
            n_samples=20,
            seed=1,
            project=digits.project,
        )

    def searcher():
        return make_searcher(name, digits.space, constraints=CONS, cost_model=cm, seed=3)

    ref = run_search(searcher(), digits, 12, executor=LocalExecutor(2), sync=True)
    with RayExecutor(workers=2) as ex:
        got = run_search(searcher(), digits, 12, executor=ex, sync=True)
    assert len(got) == 12 and _same(ref, got)
    assert any(t.state == "complete" for t in got)  # some trials were trained on the workers


def _kill_when(log: Path, line: int, stop: threading.Event, killed: list[int]) -> None:
    """Kill the worker process that started the ``line``-th evaluation, half a second into it."""
    while not stop.is_set():
        ev = evaluations(log)
        if len(ev) > line:
            time.sleep(0.5)
            pid = ev[line][1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


@pytest.mark.parametrize("retries", [1, 0])
def test_worker_killed_mid_trial_is_retried_then_failed(cluster, tmp_path, retries) -> None:
    log = tmp_path / "evals.log"
    obj = SleepyObjective(log, delay_s=0.2, slow_at=2, slow_s=60)
    s = make_searcher("random_search", obj.space, constraints=["latency<=20ms"], seed=0)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_when, args=(log, 2, stop, killed), daemon=True)
    killer.start()
    store = SQLiteStore(tmp_path / "s.db")
    stats = LoopStats()
    try:
        with RayExecutor(workers=2, retries=retries) as ex:
            hist = run_search(s, obj, 6, executor=ex, store=store, search_id="k", stats=stats)
    finally:
        stop.set()
    assert killed, "the killer never saw the slow trial start"
    x_killed = evaluations(log)[2][0]
    trial = next(t for t in hist if t.config["x"] == x_killed)
    assert len(hist) == 6 and all(t.done for t in hist)
    assert len(store.search_trials("k")) == 6  # every trial told and journalled, none lost
    if retries:
        assert trial.state == "complete" and trial.info["attempt"] == 2  # rerun on a fresh worker
        assert [x for x, _ in evaluations(log)].count(x_killed) == 2 and stats.failed == 0
    else:
        assert trial.state == "failed" and "worker died" in trial.stop_reason and stats.failed == 1
    store.close()


DRIVER = """
import sys, json
sys.path[:0] = {paths}
import ray, ray_helpers
ray.cloudpickle.register_pickle_by_value(ray_helpers)
from ray_helpers import SleepyObjective
from hwnas.distributed.ray_executor import RayExecutor
from hwnas.distributed.search_loop import run_search
from hwnas.searchers.registry import make_searcher
from hwnas.store import SQLiteStore
obj = SleepyObjective({log!r}, delay_s=0.4)
s = make_searcher("evolution", obj.space, constraints=["latency<=20ms"], seed=0, population_size=4,
                  sample_size=2)
ex = RayExecutor(workers=2, address={address!r})
run_search(s, obj, {n}, executor=ex, store=SQLiteStore({store!r}), search_id="d", meta={{"n": {n}}})
"""


def test_killed_driver_resumes_without_repeating_a_trial(cluster, tmp_path) -> None:
    log, db, n = tmp_path / "evals.log", tmp_path / "s.db", 14
    code = DRIVER.format(
        paths=json.dumps([str(HERE), *sys.path]), log=str(log), address=cluster, n=n, store=str(db)
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    store = SQLiteStore(db)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(store.search_trials("d")) >= 4:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    proc.send_signal(signal.SIGKILL)  # the driver dies with trials in flight
    proc.wait()
    before = store.search_trials("d")
    assert 4 <= len(before) < n
    obj = SleepyObjective(log, delay_s=0.05)
    s = make_searcher(
        "evolution", obj.space, constraints=["latency<=20ms"], seed=0, population_size=4, sample_size=2
    )
    stats = LoopStats()
    with RayExecutor(workers=2) as ex:
        hist = run_search(s, obj, n, executor=ex, store=store, search_id="d", stats=stats)
    after = store.search_trials("d")
    assert stats.resumed == len(before) and len(hist) == n and len(after) == n
    assert [r["seq"] for r in after[: len(before)]] == [r["seq"] for r in before]  # journal kept as it was
    done_before = [r["config"]["x"] for r in before]
    runs = [x for x, _ in evaluations(log)]
    assert all(runs.count(x) == 1 for x in done_before)  # a finished trial never ran again
    assert stats.submitted == n - len(before)
    store.close()


def test_cli_search_on_ray(cluster, tmp_path, capsys) -> None:
    from hwnas.cli.app import main

    db = tmp_path / "s.db"
    args = [
        "search",
        "--objective",
        "hyperpower-digits",
        "--searcher",
        "hyperpower",
        "-c",
        CONS[0],
        "-c",
        CONS[1],
        "--evals",
        "8",
        "--cost-samples",
        "20",
        "--executor",
        "ray",
        "--address",
        cluster,
        "--workers",
        "2",
        "--store",
        str(db),
        "--json",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["evaluations"] == 8 and first["execution"]["resumed_trials"] == 0
    assert main([*args[: args.index("--evals") + 1], "10", *args[args.index("--evals") + 2 :]]) == 0
    second = json.loads(capsys.readouterr().out)  # the same search, 2 more: the 8 are replayed, not rerun
    assert second["execution"]["resumed_trials"] == 8 and second["evaluations"] == 10

    def keys(trials):  # the journal replays in finishing order, the first history is in ask order
        return sorted(json.dumps(t["config"], sort_keys=True) for t in trials)

    assert keys(second["trials"][:8]) == keys(first["trials"])


def test_fleet_profile_writes_each_device_to_one_store(cluster, tmp_path, capsys) -> None:
    from hwnas.cli.app import main

    db = tmp_path / "fleet.db"
    cell = "nb201:|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    args = [
        "profile",
        "-m",
        cell,
        "--devices",
        "local-cpu,local-cpu-torch",
        "--address",
        cluster,
        "--no-per-layer",
        "--no-memory",
        "--store",
        str(db),
        "--json",
    ]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["device"] for r in res] == ["local-cpu", "local-cpu-torch"] and all(r["ok"] for r in res)
    store = SQLiteStore(db)
    lat = store.query(scope="model", metric="latency_ms")
    assert sorted(m.device for m in lat) == ["local-cpu", "local-cpu-torch"]
    fps = {m.device: store.get_fingerprint(m.fingerprint_id) for m in lat}
    assert fps["local-cpu"]["backend"] != fps["local-cpu-torch"]["backend"]  # each device's own fingerprint
    store.close()
    assert main(["profile", "-m", cell, "--devices", "local-cpu,local-cpu", "--store", str(db)]) == 2


def test_cli_compare_searchers_on_ray_equals_local(cluster, capsys) -> None:
    from hwnas.cli.app import main

    base = [
        "compare-searchers",
        "--objective",
        "hyperpower-digits",
        "--searchers",
        "random_search,evolution",
        "--seeds",
        "2",
        "--evals",
        "10",
        "-c",
        CONS[0],
        "-c",
        CONS[1],
        "--json",
    ]
    assert main(base) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*base, "--executor", "ray", "--address", cluster, "--workers", "2"]) == 0
    on_ray = json.loads(capsys.readouterr().out)
    for name in ("random_search", "evolution"):  # each run is deterministic: Ray changes where, not what
        assert on_ray["searchers"][name]["best_curve_mean"] == local["searchers"][name]["best_curve_mean"]
