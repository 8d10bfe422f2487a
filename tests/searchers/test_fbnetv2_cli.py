"""`hwnas search --searcher fbnetv2` end to end on digits with a tiny space: FLOPs and latency budgets."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

from hwnas.cli.app import main
from hwnas.spaces.fbnetv2 import space_from_dict
from hwnas.store import Fingerprint, Measurement, SQLiteStore, Stats

TINY = {
    "name": "tiny",
    "resolutions": [8, 12],
    "divisor": 1,
    "block_types": ["ir_k3", "skip"],
    "rows": [
        {"b": "conv3x3", "f": 8, "s": 2},
        {"b": "tbs", "e": [1, 3, 2], "f": [4, 8, 4], "n": 2, "s": 1},
        {"b": "conv1x1", "f": 16},
        {"b": "avgpool"},
        {"b": "fc"},
    ],
}


@pytest.fixture
def tiny_space(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def _run(args: list[str], capsys, epochs: int = 2) -> tuple[int, dict]:
    rc = main(
        ["search", "--searcher", "fbnetv2", *args, "--epochs", str(epochs), "--max-train", "64", "--json"]
    )
    text = capsys.readouterr().out
    return rc, (json.loads(text) if text.strip() else {})


def test_flops_budget_met_and_broken(tiny_space, tmp_path, capsys) -> None:
    space = space_from_dict({**TINY, "in_channels": 1, "num_classes": 10})
    largest = space.layers(space.default()).flops
    hist = tmp_path / "h.json"
    onnx = tmp_path / "derived.onnx"
    rc, out = _run(
        ["--space", str(tiny_space), "--cost", "flops", "--budget", f"{largest / 1e6:.6f}M",
         "--history", str(hist), "--onnx", str(onnx)],
        capsys,
    )  # fmt: skip
    assert rc == 0 and out["feasible"] is True
    assert out["costs"]["flops"] <= largest and len(out["trials"]) == 2
    assert json.loads(hist.read_text())["meta"]["searcher"] == "fbnetv2" and onnx.stat().st_size > 0
    rc, out = _run(["--space", str(tiny_space), "--cost", "flops", "--budget", "1k"], capsys, epochs=1)
    assert rc == 1 and out["feasible"] is False  # no network of the space has 1000 FLOPs


def test_bad_budget_and_missing_table(tiny_space, capsys) -> None:
    assert main(["search", "-s", "fbnetv2", "--space", str(tiny_space), "--budget", "2ms"]) == 2
    assert "unknown unit" in capsys.readouterr().err
    assert main(["search", "-s", "fbnetv2", "--cost", "latency", "--budget", "2ms"]) == 2
    assert "needs --table" in capsys.readouterr().err


def _latency_store(path, space):
    """A store of the tiny space's layers with a latency linear in FLOPs (a stand-in device)."""
    store = SQLiteStore(path)
    fp = Fingerprint(device="synthetic", fields={"cpu": "test"})
    store.add_fingerprint(fp)
    rng = np.random.default_rng(0)
    for m in range(12):
        layers = space.layers(space.sample(rng)).layers
        store.add_layer_specs(layers)
        rec = partial(
            Measurement, device="synthetic", fingerprint_id=fp.id, backend="test", model_id=f"t:{m}"
        )
        total = 0.0
        for i, spec in enumerate(layers):
            v = 0.002 + spec.flops * 1e-7
            total += v
            st = Stats(median=v, mean=v, std=0.0, iqr=0.0, ci_low=v * 0.98, ci_high=v * 1.02, n=10)
            store.add(rec(scope="layer", metric="latency_ms", value=v, stats=st, layer_key=spec.key(),
                          layer_name=f"l{i}", layer_index=i))  # fmt: skip
        store.add(rec(scope="model", metric="latency_ms", value=0.05 + total))
    return store


def test_latency_budget_through_a_cost_table(tiny_space, tmp_path, capsys) -> None:
    space = space_from_dict({**TINY, "in_channels": 1, "num_classes": 10})
    _latency_store(tmp_path / "s.db", space)
    table = tmp_path / "t.json"
    fit = ["fit", "--store", str(tmp_path / "s.db"), "--device", "synthetic", "--kind", "boosted",
           "--out", str(table), "--json"]  # fmt: skip
    assert main(fit) == 0
    capsys.readouterr()
    rc, out = _run(
        ["--space", str(tiny_space), "--cost", "latency", "--table", str(table), "--budget", "1s",
         "--device", "local-cpu", "--store", str(tmp_path / "m.db")],
        capsys,
    )  # fmt: skip
    assert rc == 0, out
    assert out["cost"] == "latency_ms" and out["costs"]["latency_ms"] > 0
    assert out["measured_costs"]["latency_ms"] > 0 and out["feasible"] is True
    assert out["trials"][-1]["measured_costs"]["latency_ms"] == out["measured_costs"]["latency_ms"]
    # The differentiable expected latency of a one-hot choice is the table's prediction for the derived
    # network (Σ layers plus the fitted whole-model overhead, folded into the per-layer prices).
    from hwnas.cost_models.predictors import load_cost_predictor
    from hwnas.searchers.dmasking import DMaskingSupernet, TableCost
    from hwnas.spaces.fbnetv2 import FBNetV2Arch

    pred = load_cost_predictor(table)
    net = DMaskingSupernet(space)
    tc = TableCost(net, pred, "latency_ms")
    for arch in [FBNetV2Arch.from_config(out["derived"]), space.sample(1), space.sample(2)]:
        want = float(pred.predict([space.layers(arch).layers])["latency_ms"].value[0])
        assert float(tc(net.weights_of(arch))) == pytest.approx(want, rel=1e-9)
    assert out["costs"]["latency_ms"] == pytest.approx(
        float(
            pred.predict([space.layers(FBNetV2Arch.from_config(out["derived"])).layers])["latency_ms"].value[
                0
            ]
        )
    )
