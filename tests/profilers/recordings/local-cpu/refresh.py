"""Refresh the onnxruntime profiling recording used by tests/profilers/test_ort_recording.py.

    .venv/bin/python tests/profilers/recordings/local-cpu/refresh.py

Writes tiny.onnx (a conv-bn-relu-pool-linear net exported by hwnas's module_to_onnx), layers.json (the
LayerSpec names and ops hwnas extracts from the torch module) and ort_profile.json (onnxruntime's own
profile of 4 runs), plus meta.json with device, versions, date and this command.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from hwnas.graph.builders.onnx import module_to_onnx
from hwnas.graph.models import from_module
from hwnas.profilers.fingerprint import cpu_model

HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()  # fmt: skip
    model = from_module(net, (1, 3, 16, 16), "tiny")
    onnx_path = module_to_onnx(net, (1, 3, 16, 16), HERE / "tiny.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(HERE / "tmp_profile")
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    for _ in range(4):
        sess.run(None, {sess.get_inputs()[0].name: x})
    shutil.move(sess.end_profiling(), HERE / "ort_profile.json")
    (HERE / "layers.json").write_text(json.dumps([{"name": s.name, "op": s.op} for s in model.spec.layers]))
    meta = {
        "device": cpu_model(),
        "machine": platform.machine(),
        "versions": {p: importlib.metadata.version(p) for p in ("onnxruntime", "torch", "onnx")},
        "date": datetime.date.today().isoformat(),
        "command": ".venv/bin/python tests/profilers/recordings/local-cpu/refresh.py",
        "runs": 4,
    }
    (HERE / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
