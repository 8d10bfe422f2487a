"""`hwnas analyze`: totals and per-layer JSON, tables, and exit code 2 with a clear message for bad input."""

from __future__ import annotations

import json

import pytest

import hwnas.spaces  # noqa: F401  (registers the mbv2: / nb201: model-name families)
from hwnas.cli.app import main


def _run_json(capsys, args: list[str]) -> dict:
    code = main(["analyze", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_analyze_json_totals_match_layers(capsys):
    data = _run_json(capsys, ["--model", "resnet18", "--input-shape", "1,3,64,64"])
    assert data["model_id"] == "torchvision:resnet18" and data["input_shape"] == [1, 3, 64, 64]
    assert data["params"] == 11689512
    assert data["macs"] == sum(layer["macs"] for layer in data["layers"])
    assert data["flops"] == sum(layer["flops"] for layer in data["layers"])
    assert data["num_layers"] == len(data["layers"]) == 69
    conv = data["layers"][0]
    assert conv["op"] == "conv2d" and conv["name"] == "conv1" and conv["output_shape"] == [1, 64, 32, 32]
    assert conv["macs"] == 64 * 32 * 32 * 3 * 7 * 7
    assert {r["op"] for r in data["by_op"]} >= {"conv2d", "linear", "batchnorm"}


def test_analyze_mbv2_and_onnx_agree(capsys, tmp_path):
    from hwnas.graph.models import resolve_model
    from hwnas.spaces.mbv2 import MBV2Space

    arch = MBV2Space(seed=1).sample()
    d1 = _run_json(capsys, ["-m", f"mbv2:{arch}", "--input-shape", "1,3,96,96"])
    assert d1["model_id"] == f"mbv2:{arch}"
    path = resolve_model(f"mbv2:{arch}", input_shape=(1, 3, 96, 96)).onnx(tmp_path)
    d2 = _run_json(capsys, ["-m", str(path)])
    assert d2["macs"] == d1["macs"] and d2["input_shape"] == [1, 3, 96, 96]


def test_analyze_table_output(capsys):
    code = main(["analyze", "-m", "mobilenet_v2", "--input-shape", "1x3x64x64"])
    out = capsys.readouterr().out
    assert code == 0
    assert "by op" in out and "torchvision:mobilenet_v2" in out
    assert out.count("conv2d") == 52 + 1  # one row per conv, plus the by-op summary
    code = main(["analyze", "-m", "mobilenet_v2", "--input-shape", "1x3x64x64", "--no-layers"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("conv2d") == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["-m", "no_such_net"], "unknown model"),
        (["-m", "missing.onnx"], "does not exist"),
        (["-m", "resnet18", "--input-shape", "1,3,abc"], "input shape"),
        (["-m", "resnet18", "--input-shape", "1,3"], "does not run on input shape"),
        (["-m", "mbv2:k3e6"], "mbv2 arch"),
    ],
)
def test_analyze_bad_input_exits_2(capsys, args, message):
    code = main(["analyze", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and message in " ".join(err.split())
    assert "Traceback" not in err


def test_analyze_corrupt_onnx_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("garbage")
    assert main(["analyze", "-m", str(bad)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot be read" in err and "hint:" in err


def test_analyze_warns_about_unknown_layers(capsys, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("LRN", ["x"], ["h"], size=3), helper.make_node("Relu", ["h"], ["y"])]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    path = tmp_path / "lrn.onnx"
    onnx.save(model, str(path))
    code = main(["analyze", "-m", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)
    assert data["unknown_layers"] == 1 and data["layers"][0]["attrs"]["source_op"] == "LRN"
    assert "LRN" in captured.err and "warning" in captured.err and "unknown" in captured.err


def test_analyze_help():
    from typer.testing import CliRunner

    from hwnas.cli.app import app

    result = CliRunner().invoke(app, ["analyze", "--help"])
    assert result.exit_code == 0 and "--input-shape" in result.output
