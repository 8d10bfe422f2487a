"""`hwnas fit` -> `hwnas evaluate` -> `hwnas export` -> `hwnas predict`, through the CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from cost_model_helpers import build_store

from hwnas.cli.app import main


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.db"
    build_store(path, n_models=30, seed=2).close()
    return path


def test_fit_evaluate_export_predict(tmp_path, store_path, capsys):
    table = tmp_path / "t.json"
    rc = main(
        [
            "fit",
            "--store",
            str(store_path),
            "--kind",
            "lut",
            "--fallback",
            "boosted",
            "--n-estimators",
            "50",
            "--out",
            str(table),
            "--json",
        ]
    )
    assert rc == 0
    fit_out = json.loads(capsys.readouterr().out)
    assert fit_out["estimator"] == "lut"
    assert fit_out["validation"]["split"]["by"] == "model_id"
    assert fit_out["validation"]["model"]["within_10pct"] > 0.5

    # every stored arch was used to fit: evaluate refuses (exit 2) unless told to include them
    assert main(["evaluate", "--store", str(store_path), "--table", str(table)]) == 2
    capsys.readouterr()
    plot = tmp_path / "pvm.png"
    rc = main(
        [
            "evaluate",
            "--store",
            str(store_path),
            "--table",
            str(table),
            "--include-fitted",
            "--plot",
            str(plot),
            "--json",
        ]
    )
    assert rc == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n_models"] == 30 and plot.stat().st_size > 1000
    assert {"rmspe_pct", "mape_pct", "within_5pct", "within_10pct", "kendall_tau_b", "spearman_rho"} <= set(
        ev["model"]
    )
    # a requested bound that fails -> exit 1
    assert (
        main(
            [
                "evaluate",
                "--store",
                str(store_path),
                "--table",
                str(table),
                "--include-fitted",
                "--max-rmspe",
                "0",
            ]
        )
        == 1
    )
    capsys.readouterr()

    # P's `hwnas export` converts the table; the Parquet copy loads in a fresh process without the store
    pq = tmp_path / "t.parquet"
    assert main(["export", "--table", str(table), "--format", "parquet", "--out", str(pq)]) == 0
    store_path.unlink()
    code = (
        "from hwnas.cost_models.export import load_cost_table;"
        "from hwnas.graph.layer import make_layer;"
        f"t = load_cost_table({str(pq)!r});"
        "ls = [make_layer('conv2d', (1, 8, 16, 16), (1, 16, 16, 16), in_channels=8, out_channels=16,"
        " kernel=3, stride=1, padding=1), make_layer('relu', (1, 16, 16, 16), (1, 16, 16, 16))];"
        "print(t.predict_model(ls)['value'])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert float(res.stdout.strip()) > 0


def test_predict_a_model_from_a_table(tmp_path, store_path, capsys):
    table = tmp_path / "b.csv"
    assert (
        main(
            [
                "fit",
                "--store",
                str(store_path),
                "--kind",
                "boosted",
                "--n-estimators",
                "30",
                "--out",
                str(table),
            ]
        )
        == 0
    )
    capsys.readouterr()
    rc = main(
        [
            "predict",
            "--table",
            str(table),
            "--model",
            "mbv2:" + "-".join(["k3e1"] + ["k3e3"] * 20 + ["k3e6"]),
            "--input-shape",
            "1,3,32,32",
            "--budget",
            "1000",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    pred = out["predictions"][0]
    assert pred["lo"] <= pred["value"] <= pred["hi"]
    assert pred["n_layers"] > 50 and 0.0 <= pred["prob_within_budget"] <= 1.0


def test_fit_tabular_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "arch": [f"a{i}" for i in range(60)],
            "units": rng.integers(16, 256, 60),
            "layers": rng.integers(1, 6, 60),
        }
    )
    df["power_mw"] = 50 + 0.3 * df["units"] + 12 * df["layers"] + rng.normal(0, 0.5, 60)
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    table = tmp_path / "lin.json"
    rc = main(
        [
            "fit",
            "--data",
            str(csv),
            "--target",
            "power_mw",
            "--features",
            "numeric",
            "--kind",
            "linear",
            "--out",
            str(table),
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["validation"]["model"]["rmspe_pct"] < 2.0
    assert out["validation"]["cv_rmspe_pct"] < 2.0
    rc = main(["predict", "--table", str(table), "--data", str(csv), "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 60
    assert rows[0]["value"] == pytest.approx(df["power_mw"][0], rel=0.03)


def test_bad_inputs_exit_2(tmp_path, capsys):
    assert main(["fit", "--store", str(tmp_path / "empty.db"), "--out", str(tmp_path / "x.json")]) == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split())  # reading never creates a store
    from hwnas.store import SQLiteStore

    SQLiteStore(tmp_path / "empty.db").close()
    assert main(["fit", "--store", str(tmp_path / "empty.db"), "--out", str(tmp_path / "x.json")]) == 2
    assert "no measurements" in " ".join(capsys.readouterr().err.split())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["predict", "--table", str(bad), "--model", "resnet18"]) == 2
    assert "not a readable hwnas cost table" in " ".join(capsys.readouterr().err.split())


def test_fit_data_drops_degenerate_nb201_cells_by_default(tmp_path) -> None:
    """NAS-Bench-201's disconnected cells have near-zero latency; 'auto' leaves them out, 'all' keeps them."""
    import json

    import pandas as pd

    from hwnas.cli.app import main
    from hwnas.spaces.nb201_table import load_table

    df = load_table()
    sample = pd.concat([df[df.connected == 0].head(20), df[df.connected == 1].head(180)])
    path = tmp_path / "cells.csv"
    sample.to_csv(path, index=False)
    args = ["fit", "--data", str(path), "--target", "lat_pixel3_ms", "--features", "nb201-edgeop",
            "--kind", "linear", "--out", str(tmp_path / "t.json"), "--json"]  # fmt: skip
    counts = {}
    for where in ("auto", "all"):
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main([*args, "--where", where]) == 0
        split = json.loads(buf.getvalue())["validation"]["split"]
        counts[where] = split["n_train"] + split["n_test"]
    assert counts == {"auto": 180, "all": 200}
    assert main([*args, "--where", "no_such_column > 1"]) == 2
