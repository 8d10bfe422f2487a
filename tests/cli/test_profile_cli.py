"""CLI: hwnas devices / profile / show / export, through hwnas.cli.app.main (exit codes and output)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from hwnas.cli.app import main

FAST = {"warmup": 1, "min_repeats": 5, "max_repeats": 8, "target_ci_rel": 0.5, "max_seconds": 0.2}


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    import torch
    from torch import nn

    from hwnas.graph.builders.onnx import module_to_onnx

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()
    return module_to_onnx(net, (1, 3, 8, 8), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture
def fast_device(tmp_path):
    path = tmp_path / "fast-cpu.yaml"
    path.write_text(yaml.safe_dump({"name": "fast-cpu", "backend": "onnxruntime-cpu", "threads": 1,
                                    "repeat": FAST, "power": {"sampler": "rapl"}}))  # fmt: skip
    return path


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_devices_json_lists_all_backends(capsys):
    assert main(["devices", "--json"]) == 0
    rows = _json(capsys)["devices"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["local-cpu"]["usable"] is True
    from hwnas.device_config import BACKENDS

    assert {r["backend"] for r in rows} >= set(BACKENDS)
    assert all(r["reason"] for r in rows)


def test_profile_onnx_csv_store_resume_show_export(tmp_path, tiny_onnx, fast_device, capsys):
    db, csv = tmp_path / "s.db", tmp_path / "out" / "tiny.csv"
    args = ["profile", "--device", str(fast_device), "--model", str(tiny_onnx), "--store", str(db),
            "--csv", str(csv), "--no-memory", "--json"]  # fmt: skip
    assert main(args) == 0
    doc = _json(capsys)
    n_layers = doc["model"]["layers"]
    assert doc["result"]["jobs_skipped"] == 0 and n_layers >= 3
    assert any(n.startswith("energy: unavailable:") for n in doc["result"]["notes"]) or doc["summary"][0].get(
        "energy_mj"
    )
    table = pd.read_csv(csv)
    assert len(table) == n_layers and (table["latency_ms"] > 0).all()
    assert table["in_model_latency_ms"].notna().sum() >= 2  # conv and gemm kernels mapped to layers

    assert main(args) == 0  # resume: everything is already there
    assert _json(capsys)["result"]["jobs_skipped"] == doc["result"]["jobs_total"]

    assert main(["show", "--store", str(db), "--model", "tiny.onnx", "--scope", "layer", "--json"]) == 0
    rows = _json(capsys)["rows"]
    assert {r["metric"] for r in rows} >= {"latency_ms", "in_model_latency_ms"}
    assert main(["show", "--store", str(db)]) == 0
    text = capsys.readouterr().out
    assert "fast" in text and "latency" in text

    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"m.{fmt}"
        assert (
            main(["export", "--store", str(db), "--format", fmt, "--out", str(out), "--scope", "model"]) == 0
        )
        capsys.readouterr()
    assert len(pd.read_parquet(tmp_path / "m.parquet")) == len(pd.read_csv(tmp_path / "m.csv")) >= 1
    recs = json.loads((tmp_path / "m.json").read_text())["measurements"]
    assert recs and all(r["scope"] == "model" for r in recs)
    assert recs[0]["stats"]["samples"]  # JSON export keeps every sample


def test_profile_text_output_says_energy_unavailable(tmp_path, tiny_onnx, fast_device, capsys):
    args = ["profile", "--device", str(fast_device), "--model", str(tiny_onnx),
            "--store", str(tmp_path / "s.db"), "--no-per-layer", "--no-memory", "-q"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "whole model" in out
    assert "energy: unavailable:" in out or "energy " in out


@pytest.mark.parametrize(
    ("model", "device", "expect"),
    [
        ("missing.onnx", "local-cpu", "does not exist"),
        ("corrupt.onnx", "local-cpu", "corrupt.onnx"),
        ("no_such_net_xyz", "local-cpu", "unknown model"),
        ("tiny", "no-such-device", "unknown device"),
    ],
)
def test_profile_bad_input_exits_2(tmp_path, monkeypatch, capsys, model, device, expect):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00garbage" * 50)
    code = main(["profile", "--device", device, "--model", model, "--store", str(tmp_path / "s.db"), "-q"])
    assert code == 2
    assert expect in " ".join(capsys.readouterr().err.split())  # Rich may wrap long lines


def test_train_step_on_onnxruntime_is_bad_input(tmp_path, tiny_onnx, fast_device, capsys):
    code = main(["profile", "--device", str(fast_device), "--model", str(tiny_onnx), "--train-step",
                 "--store", str(tmp_path / "s.db"), "-q"])  # fmt: skip
    assert code == 2 and "local-cpu-torch" in capsys.readouterr().err


def test_export_bad_format_and_missing_table(tmp_path, capsys):
    assert (
        main(["export", "--format", "xlsx", "--out", str(tmp_path / "x"), "--store", str(tmp_path / "s.db")])
        == 2
    )
    code = main(["export", "--table", str(tmp_path / "nope.json"), "--format", "parquet",
                 "--out", str(tmp_path / "t.parquet")])  # fmt: skip
    assert code == 2 and "nope.json" in capsys.readouterr().err


def test_export_converts_a_cost_table_to_parquet(tmp_path, capsys):
    export = pytest.importorskip("hwnas.cost_models.export")
    rows = pd.DataFrame(
        [("conv2d|in=1x3x8x8|out=1x4x8x8|k=3x3", 1.5, 1.4, 1.6, 7, "measured")],
        columns=list(export.ROW_COLUMNS),
    )
    table = export.CostTable(meta={"estimator": "lut", "metric": "latency_ms", "input": "layers"}, rows=rows)
    src = export.save_cost_table(table, tmp_path / "t.json")
    dst = tmp_path / "t.parquet"
    assert main(["export", "--table", str(src), "--format", "parquet", "--out", str(dst), "--json"]) == 0
    assert _json(capsys)["out"] == str(dst)
    back = export.load_cost_table(dst)
    assert back.rows["value"].tolist() == [1.5] and back.meta["metric"] == "latency_ms"


def test_interrupted_cli_profile_resumes(tmp_path, tiny_onnx, fast_device, monkeypatch, capsys):
    from hwnas.profilers import timing

    real, calls = timing.measure, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(timing, "measure", flaky)
    args = ["profile", "--device", str(fast_device), "--model", str(tiny_onnx),
            "--store", str(tmp_path / "s.db"), "--no-whole-model", "--json"]  # fmt: skip
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(timing, "measure", real)
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)["result"]
    assert res["jobs_skipped"] == 2 and res["jobs_total"] > 2


def test_show_and_export_need_an_existing_store(tmp_path, capsys):
    missing = tmp_path / "none.db"
    assert main(["show", "--store", str(missing)]) == 2
    assert main(["export", "--format", "csv", "--out", str(tmp_path / "x.csv"), "--store", str(missing)]) == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split()) and not missing.exists()


def test_profile_several_models_in_one_interleaved_run(tmp_path, tiny_onnx, fast_device, capsys):
    db, csv = tmp_path / "s.db", tmp_path / "both.csv"
    models = [str(tiny_onnx), "nb201:|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"]
    args = ["profile", "--device", str(fast_device), "-m", models[0], "-m", models[1], "--store", str(db),
            "--csv", str(csv), "--no-memory", "--json", "--clock", "cpu"]  # fmt: skip
    assert main(args) == 0
    doc = _json(capsys)
    assert len(doc["models"]) == 2 and doc["qa"]["interleaved"] is True
    ids = [d["result"]["model_id"] for d in doc["models"]]
    assert len(set(ids)) == 2 and all(d["result"]["jobs_total"] > 1 and d["layers"] for d in doc["models"])
    table = pd.read_csv(csv)
    assert list(table.columns)[0] == "model_id" and set(table["model_id"]) == set(ids)
    # a rerun resumes both models; the same model twice is refused before any work
    assert main([*args, "--no-interleave"]) == 0  # same --clock: the same fingerprint, so it resumes
    assert all(d["result"]["jobs_skipped"] == d["result"]["jobs_total"] for d in _json(capsys)["models"])
    assert main(["profile", "--device", str(fast_device), "-m", models[0], "-m", models[0],
                 "--store", str(db)]) == 2  # fmt: skip
    assert "--model given twice" in capsys.readouterr().err
