"""Single-Path export to TFLite: the derived network (supernet weights) as a .tflite file that LiteRT
loads and that computes what the torch network computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.cli.app import main
from hwnas.searchers.single_path import SinglePathSupernet, derived_module
from hwnas.searchers.single_path_run import export_architecture, tflite_matches
from hwnas.searchers.single_path_table import SinglePathTable
from hwnas.spaces.mbv2 import MBV2Space


def test_derived_network_exports_to_a_matching_tflite(litert, tmp_path) -> None:
    torch.manual_seed(0)
    space = MBV2Space(32, 0.25, 10)
    net = SinglePathSupernet(space, SinglePathTable.pixel1())
    with torch.no_grad():  # a mixed architecture: thresholds above the weights' norms drop subsets
        for j, b in enumerate(net.blocks):
            if j % 2:
                b.t_k5.fill_(1e3)
            if j % 3 == 0:
                b.t_e6.fill_(1e3)
            if b.t_e3 is not None and j % 4 == 1:
                b.t_e3.fill_(1e3)
        for m in net.modules():  # non-trivial batch-norm statistics, so a wrong copy would show
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    arch = net.derive().config["arch"]
    toks = arch.split("-")
    assert "skip" in toks and any(t.startswith("k3") for t in toks) and any(t.endswith("e3") for t in toks)
    child = derived_module(net).eval()
    paths = export_architecture(arch, space, tmp_path, module=child, onnx=False, tflite=True)
    interp = litert.Interpreter(model_path=str(paths["tflite"]))
    interp.allocate_tensors()
    assert tuple(interp.get_input_details()[0]["shape"]) == (1, 32, 32, 3)  # NHWC
    diff = tflite_matches(child, paths["tflite"], (1, 3, 32, 32), seed=3)
    assert diff <= 1e-4
    # and it is the supernet's function, not a fresh network's
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        sup = net.eval()(x).numpy()
    from hwnas.graph.builders.tflite import run_tflite_file

    assert np.max(np.abs(run_tflite_file(paths["tflite"], x.numpy()) - sup)) <= 1e-4


def test_export_cli_writes_tflite(litert, tmp_path, capsys) -> None:
    args = [
        "single-path",
        "export",
        "--arch",
        ",".join(["k3e6", "k5e3", "skip", "k5e6"] * 5),
        "--resolution",
        "32",
        "--width",
        "0.25",
    ]
    args += [
        "--num-classes",
        "10",
        "--out",
        str(tmp_path),
        "--no-onnx",
        "--tflite",
        "--tflite-device",
        "none",
    ]
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["files"]["tflite"].endswith("model.tflite") and d["tflite_max_abs_diff"] <= 1e-4
    assert (tmp_path / "model.tflite").stat().st_size > 1000
    net = torch.load(tmp_path / "model.pt", weights_only=False).eval()
    from hwnas.graph.builders.tflite import run_tflite_file

    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = net(x).numpy()
    assert np.max(np.abs(run_tflite_file(tmp_path / "model.tflite", x.numpy()) - ref)) <= 1e-4
    with pytest.raises(Exception, match="shape"):
        run_tflite_file(tmp_path / "model.tflite", np.zeros((1, 3, 16, 16), np.float32))
