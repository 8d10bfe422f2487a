"""`hwnas search` and `hwnas compare-searchers` end to end (tabular objectives from CSV; real training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas.cli.app import main

RAPL = Path("/sys/class/powercap")


@pytest.fixture
def grid_csv(grid, tmp_path) -> Path:  # noqa: ANN001
    path = tmp_path / "grid.csv"
    grid.table.to_csv(path, index=False)
    return path


def test_search_on_a_table(grid_csv, tmp_path, capsys) -> None:  # noqa: ANN001
    hist = tmp_path / "h.json"
    rc = main(
        [
            "search",
            "--objective",
            str(grid_csv),
            "--searcher",
            "hyperpower",
            "--constraint",
            "latency<=4.55ms",
            "--evals",
            "8",
            "--profile-samples",
            "20",
            "--history",
            str(hist),
            "--json",
        ]
    )
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["evaluations"] == 8 and data["violations"] == 0
    assert data["best"]["measured_costs"]["latency_ms"] <= 4.55
    assert all(t["predicted_costs"] for t in data["trials"])  # HyperPower logs its predictions
    assert len(json.loads(hist.read_text())["trials"]) == 8


def test_search_bad_inputs_exit_2(grid_csv, capsys) -> None:  # noqa: ANN001
    assert main(["search", "--objective", str(grid_csv), "--searcher", "nope", "--evals", "2"]) == 2
    assert main(["search", "--objective", str(grid_csv), "--constraint", "latency<=4", "--evals", "2"]) == 2
    assert "needs a unit" in capsys.readouterr().err
    assert main(["search", "--objective", str(grid_csv), "--constraint", "power<=4W", "--evals", "2"]) == 2


def test_search_impossible_budget_exits_1(grid_csv) -> None:  # noqa: ANN001
    rc = main(
        [
            "search",
            "--objective",
            str(grid_csv),
            "--searcher",
            "random_search",
            "--constraint",
            "latency<=0.1ms",
            "--evals",
            "3",
            "--json",
        ]
    )
    assert rc == 1


@pytest.mark.skipif(RAPL.exists(), reason="this host exposes RAPL, so a power budget is measurable")
def test_power_budget_on_local_cpu_fails_with_the_reason(capsys, tmp_path) -> None:  # noqa: ANN001
    rc = main(
        [
            "search",
            "--device",
            "local-cpu",
            "--constraint",
            "power<=90W",
            "--constraint",
            "memory<=1.25GB",
            "--evals",
            "1",
            "--store",
            str(tmp_path / "s.db"),  # never the default ./hwnas.db of the checkout
        ]
    )
    assert rc == 2
    msg = capsys.readouterr().err
    assert "cannot measure power" in msg and "powercap" in msg


def test_compare_searchers(grid_csv, tmp_path, capsys) -> None:  # noqa: ANN001
    png = tmp_path / "cmp.png"
    rc = main(
        [
            "compare-searchers",
            "--objective",
            str(grid_csv),
            "--seeds",
            "2",
            "--evals",
            "10",
            "--constraint",
            "latency<=4.55ms",
            "--searchers",
            "hyperpower,random_search,random_walk",
            "--cost-samples",
            "20",
            "--tolerance",
            "0.01",
            "--plot",
            str(png),
            "--json",
        ]
    )
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    hp = data["searchers"]["hyperpower"]
    assert hp["violations_mean"] == 0 and len(hp["best_curve_mean"]) == 10
    assert data["optimum"] == pytest.approx(
        min(data["searchers"][n]["final_best_mean"] for n in data["searchers"]), abs=0.2
    )
    assert png.exists() and png.stat().st_size > 10_000


def test_compare_searchers_table_output(grid_csv, capsys) -> None:  # noqa: ANN001
    rc = main(
        [
            "compare-searchers",
            "--objective",
            str(grid_csv),
            "--seeds",
            "2",
            "--evals",
            "6",
            "--constraint",
            "latency<=4.55ms",
            "--searchers",
            "random_search,evolution",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "optimum 12.02 %" in text and "cost models (10-fold CV RMSPE)" in text


@pytest.mark.slow
def test_search_real_training_with_a_memory_budget(tmp_path, capsys) -> None:  # noqa: ANN001
    """Digits training + peak memory measured by the local-cpu profiler in a child process."""
    rc = main(
        [
            "search",
            "--device",
            "local-cpu",
            "--searcher",
            "random_search",
            "--constraint",
            "memory<=500MB",
            "--evals",
            "2",
            "--epochs",
            "1",
            "--store",
            str(tmp_path / "s.db"),
            "--json",
        ]
    )
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    for t in data["trials"]:
        assert 0 < t["measured_costs"]["memory_mb"] <= 500
        assert 0 <= t["objective"] <= 1
