"""The new-device flow from the CLI: a cost table or predict-device output drives `hwnas search` (and
`compare-searchers`) for a device other than the local CPU, on NAS-Bench-201."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.cli.app import main
from hwnas.spaces.nb201_table import default_path, load_table

TARGET = "pixel3"  # predicted from 10 measured cells, its own column held out of the references


@pytest.fixture(scope="module")
def nb201():
    return load_table()


def _run(capsys, argv: list[str]) -> tuple[int, dict]:
    rc = main(argv)
    text = capsys.readouterr().out
    return rc, (json.loads(text) if text.strip().startswith(("{", "[")) else {})


def _trial_archs(data: dict) -> list[str]:
    from hwnas.searchers.objectives.nb201 import arch_of

    return [arch_of(t["config"]) for t in data["trials"]]


def test_exported_cost_table_drives_search_for_another_device(tmp_path, nb201, capsys):
    table = tmp_path / "gold.json"
    rc, fit = _run(
        capsys,
        [
            "fit", "--data", str(default_path()), "--target", "lat_gold_6240_ms",
            "--features", "nb201-onehot", "--kind", "linear", "-o", str(table), "--json",
        ],
    )  # fmt: skip
    assert rc == 0 and fit["estimator"] == "linear"
    rc, data = _run(
        capsys,
        [
            "search", "--objective", "nb201", "--device", "gold_6240", "--table", str(table),
            "--searcher", "hyperpower", "--evals", "6", "--budget-percentile", "50", "--json",
        ],
    )  # fmt: skip
    assert rc == 0, data
    assert data["device"] == "lat_gold_6240_ms" and data["cost_model"].startswith("linear cost table")
    budget = float(np.percentile(nb201["lat_gold_6240_ms"], 50))
    assert data["constraints"] == [f"latency_ms<={budget:.6g}"]
    # the searcher's predictions are the table's, its measurements the device's column
    from hwnas.cost_models.predictors import load_cost_predictor

    archs = _trial_archs(data)
    want = load_cost_predictor(table).predict(archs)["latency_ms"]
    got = [t["predicted_costs"]["latency_ms"] for t in data["trials"]]
    np.testing.assert_allclose(got, want.value, rtol=1e-9)
    lat = nb201.set_index("arch")["lat_gold_6240_ms"]
    np.testing.assert_allclose([t["measured_costs"]["latency_ms"] for t in data["trials"]], lat.loc[archs])
    lo, hi, level = data["trials"][0]["info"]["predicted_interval"]["latency_ms"]
    assert lo <= got[0] <= hi and level == pytest.approx(0.9)


def test_predict_device_output_drives_search_and_compare(tmp_path, nb201, capsys):
    held = f"lat_{TARGET}_ms"
    cells = tmp_path / "cells.csv"
    rc, _ = _run(
        capsys, ["nb201", "suggest-samples", "--k", "10", "--exclude", held, "-o", str(cells), "--json"]
    )
    assert rc == 0
    # "measure" the suggested cells on the device: here, read its column of the published table
    lat = nb201.set_index("arch")[held]
    picked = pd.read_csv(cells)
    samples = tmp_path / "samples.csv"
    pd.DataFrame({"arch": picked["arch"], "latency_ms": lat.loc[picked["arch"]].to_numpy()}).to_csv(
        samples, index=False
    )
    pred = tmp_path / "pred.csv"
    rc, info = _run(
        capsys,
        ["nb201", "predict-device", "--samples", str(samples), "--exclude", held, "-o", str(pred), "--json"],
    )
    assert rc == 0 and held not in info["reference_columns"]
    assert info["interval"]["factor"] > 1.0
    rc, data = _run(
        capsys,
        [
            "search", "--objective", "nb201", "--device", TARGET, "--table", str(pred),
            "--searcher", "hyperpower", "--evals", "6",
            "--constraint", f"latency<={float(np.percentile(lat, 40)):.4f}ms", "--json",
        ],
    )  # fmt: skip
    assert rc == 0, data
    assert data["device"] == held and "predicted per-architecture costs" in data["cost_model"]
    p = pd.read_csv(pred).set_index("arch")
    archs = _trial_archs(data)
    np.testing.assert_allclose(
        [t["predicted_costs"]["latency_ms"] for t in data["trials"]], p.loc[archs, "latency_ms"]
    )
    for t, a in zip(data["trials"], archs, strict=True):
        lo, hi, _ = t["info"]["predicted_interval"]["latency_ms"]
        assert lo == pytest.approx(p.loc[a, "lower_ms"]) and hi == pytest.approx(
            p.loc[a, "upper_ms"]
        )
    rc, comp = _run(
        capsys,
        [
            "compare-searchers", "--objective", "nb201", "--device", TARGET, "--table", str(pred),
            "--searchers", "hyperpower,random_search", "--seeds", "2", "--evals", "5", "--json",
        ],
    )  # fmt: skip
    assert rc == 0 and "predicted per-architecture costs" in comp["cost_model"]
    assert comp["constraints"][0].startswith("latency_ms<=")  # the 25th-percentile default budget


def test_nb201_objective_options_and_errors(tmp_path, nb201, capsys):
    rc = main(["search", "--objective", "nb201", "--device", "nope", "--evals", "1"])
    assert rc == 2 and "gold_6240" in capsys.readouterr().err  # the hint lists the devices
    # --data: a table of a device measured on every cell, joined to the shipped training results
    new = tmp_path / "new.csv"
    pd.DataFrame({"arch": nb201["arch"], "lat_mydev_ms": 2.0 * nb201["lat_gold_6240_ms"]}).to_csv(
        new, index=False
    )
    rc, data = _run(
        capsys,
        [
            "search", "--objective", "nb201", "--data", str(new), "--device", "mydev",
            "--dataset", "cifar100", "--searcher", "random_search", "--evals", "3",
            "--budget-percentile", "90", "--json",
        ],
    )  # fmt: skip
    assert rc == 0 and data["device"] == "lat_mydev_ms"
    gold = nb201.set_index("arch")["lat_gold_6240_ms"]
    archs = _trial_archs(data)
    np.testing.assert_allclose(
        [t["measured_costs"]["latency_ms"] for t in data["trials"]], 2 * gold.loc[archs]
    )
    # a cost table of another cost than the budget's is refused with the reason
    energy = tmp_path / "energy.csv"
    pd.DataFrame({"arch": nb201["arch"], "energy_mj": 1.0}).to_csv(energy, index=False)
    rc = main(["search", "--objective", "nb201", "--table", str(energy), "--evals", "1"])
    assert rc == 2 and "budgets on ['latency_ms']" in capsys.readouterr().err
    # device/dataset options on an objective that has none
    rc = main(["search", "--objective", "hyperpower-digits", "--device", "pixel3", "--evals", "1"])
    assert rc == 2 and "takes none of these" in capsys.readouterr().err
