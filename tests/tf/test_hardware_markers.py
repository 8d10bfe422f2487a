"""Runs on real hardware only: a phone over adb, a TPU VM. Skipped here with what to set."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

pytest.importorskip("hwnas.profilers.backend", reason="needs the split profiler (seams issue)")


def _tiny():
    from hwnas.graph.models import from_module

    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4)).eval()  # fmt: skip
    return from_module(net, (1, 3, 32, 32), "tiny-hw")


@pytest.mark.android
def test_real_phone(tf, tmp_path) -> None:
    serial, binary = os.environ.get("HWNAS_ADB_SERIAL"), os.environ.get("HWNAS_BENCHMARK_MODEL")
    if not serial or not binary:
        pytest.skip("no phone: set HWNAS_ADB_SERIAL (adb devices) and HWNAS_BENCHMARK_MODEL (the binary)")
    from hwnas.device_config import parse_config
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    conn = {"serial": serial, "benchmark_model": binary, "invocations": 1}
    cfg = parse_config({"name": "real-phone", "backend": "android-tflite", "threads": 1, "connection": conn})
    res = get_profiler(cfg).profile(_tiny(), SQLiteStore(tmp_path / "p.db"), memory=False)
    assert [m for m in res.measured if m.scope == "model" and m.metric == "latency_ms"]
    assert get_profiler(cfg).fingerprint().fields.get("model")


@pytest.mark.tpu
def test_real_tpu(tf, tmp_path) -> None:
    from hwnas.profilers.tpu import tpu_present

    if not tpu_present():
        pytest.skip("no TPU: run on a TPU VM (TPU_NAME or /dev/accel* present)")
    from hwnas.device_config import load_device
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    prof = get_profiler(load_device("tpu"))
    assert prof.fingerprint().fields["xla_platform"] == "tpu"
    res = prof.profile(_tiny(), SQLiteStore(tmp_path / "t.db"), memory=False)
    assert [m for m in res.measured if m.metric == "xla_flops"]
    torch.manual_seed(0)
