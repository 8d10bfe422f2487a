"""The host LiteRT (litert-cpu) and TPU/XLA (XLA:CPU here) backends, run for real on tiny models:
per-layer, fused-unit and whole-model records, resume, fingerprints, XLA cost records; and the TFLite fusion
rules checked against the kernels the converter really makes."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

pytest.importorskip("hwnas.profilers.backend", reason="needs the split profiler (seams issue)")

FAST = {"warmup": 1, "min_repeats": 5, "max_repeats": 8, "target_ci_rel": 0.5, "max_seconds": 0.2}


@pytest.fixture(scope="module")
def tiny(tf):
    from hwnas.graph.models import from_module

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    ).eval()  # fmt: skip
    return from_module(net, (1, 3, 16, 16), "tiny")


def _config(tmp_path, name: str, backend: str, **connection):
    from hwnas.device_config import load_device

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "backend": backend, "threads": 1, "repeat": FAST,
                                    "connection": connection}))  # fmt: skip
    return load_device(str(path))


def test_tflite_fusion_rules_match_the_converter(tiny, litert, tmp_path) -> None:
    """conv+bn+relu6 is one TFLite op, the depthwise one too, pool and flatten and linear their own."""
    from hwnas.graph.builders.keras import torch_to_keras
    from hwnas.graph.builders.tflite import convert
    from hwnas.graph.fusion import fuse
    from hwnas.profilers.tflite_artefacts import tflite_fusion_rules

    units = fuse(tiny.spec.layers, tflite_fusion_rules())
    assert [u.op for u in units][:2] == ["conv2d+batchnorm+relu6", "conv2d+batchnorm+relu6"]
    path = convert(torch_to_keras(tiny.module, [tiny.input_shape]), tmp_path / "t.tflite")
    interp = litert.Interpreter(model_path=str(path))
    ops = [o["op_name"] for o in interp._get_ops_details()]
    assert ops.count("CONV_2D") == 1 and ops.count("DEPTHWISE_CONV_2D") == 1
    assert "MUL" not in ops and "RELU6" not in ops  # batch-norm folded, activation fused
    kernels = [o for o in ops if o not in ("DELEGATE",)]
    assert len(kernels) == len(units)  # one unit per kernel: conv, dw, mean, reshape, fc


def test_host_litert_layers_units_model_resume(tiny, tmp_path) -> None:
    from hwnas.profilers.registry import get_profiler as Profiler
    from hwnas.store import SQLiteStore

    cfg = _config(tmp_path, "fast-tflite", "litert-cpu", quantization="float32", delegate="xnnpack")
    store = SQLiteStore(tmp_path / "s.db")
    prof = Profiler(cfg)
    res = prof.profile(tiny, store, memory=False)
    layer = [m for m in res.measured if m.scope == "layer"]
    model = [m for m in res.measured if m.scope == "model"]
    assert len(layer) == len(tiny.spec.layers) and all(m.value > 0 for m in layer)
    assert model and model[0].metric == "latency_ms" and model[0].source == "wallclock"
    assert layer[0].source == "wallclock-isolated"
    again = Profiler(cfg).profile(tiny, store, memory=False)
    assert again.jobs_skipped == again.jobs_total and not again.measured  # resumed: nothing left
    fused = Profiler(cfg).profile(tiny, store, memory=False, whole_model=False, units="fused")
    units = [m for m in fused.measured if m.scope == "unit"]
    assert len({m.layer_key for m in units}) == 5 and units[0].layer_key.count(" + ") == 2
    q = Profiler(_config(tmp_path, "fast-tflite", "litert-cpu", quantization="int8", delegate="none"))
    assert q.fingerprint().id != prof.fingerprint().id
    assert q.fingerprint().fields["quantization"] == "int8"


def test_tpu_backend_on_xla_cpu(tiny, tmp_path) -> None:
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    cfg = _config(tmp_path, "fast-tpu", "tpu", tpu="auto")
    prof = get_profiler(cfg)
    assert prof.fingerprint().fields["xla_platform"] == "xla-cpu"
    res = prof.profile(tiny, SQLiteStore(tmp_path / "x.db"), memory=False)
    by = {(m.scope, m.metric, m.layer_index): m for m in res.measured}
    assert by[("model", "latency_ms", -1)].value > 0
    conv = tiny.spec.layers[0]
    flops = by[("layer", "xla_flops", 0)]
    assert flops.source == "xla-hlo-cost" and flops.value == 2 * conv.macs  # no bias: 2 FLOPs per MAC
    assert by[("layer", "xla_bytes_accessed", 0)].value >= 4 * (conv.params + 3 * 16 * 16 + 8 * 8 * 8)
    assert by[("model", "xla_flops", -1)].value >= 2 * tiny.spec.macs
    assert by[("layer", "latency_ms", 0)].value > 0


def test_cli_profile_host_tflite(tiny, tmp_path, capsys) -> None:
    import json

    from hwnas.cli.app import main

    dev = tmp_path / "fast-host.yaml"
    dev.write_text(
        yaml.safe_dump({"name": "fast-host", "backend": "litert-cpu", "threads": 1, "repeat": FAST})
    )
    rc = main(["profile", "-d", str(dev), "-m", "nb201:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
               "--no-per-layer", "--no-memory", "--store", str(tmp_path / "c.db"), "--json"])  # fmt: skip
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"]["backend"] == "litert-cpu" and data["result"]["records_written"] >= 1
    assert data["summary"][0]["latency_ms"] > 0 and data["summary"][0]["latency_ms_source"] == "wallclock"


def test_cli_units_option_is_checked(tmp_path, capsys) -> None:
    from hwnas.cli.app import main

    rc = main(["profile", "-d", "host-tflite", "-m", "nb201:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
               "--units", "kernels", "--store", str(tmp_path / "u.db")])  # fmt: skip
    assert rc == 2 and "unknown units 'kernels'" in capsys.readouterr().err
