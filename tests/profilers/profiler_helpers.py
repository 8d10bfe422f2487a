"""Helpers for profiler tests: a fast repeat policy and a tiny model, so tests take seconds.

A uniquely named module, not conftest.py: `from conftest import ...` picks whichever test directory's
conftest was imported first when the whole suite runs.
"""

from __future__ import annotations

FAST_REPEAT = {"warmup": 1, "min_repeats": 5, "max_repeats": 8, "target_ci_rel": 0.5, "max_seconds": 0.2}


def fast_config(backend: str = "onnxruntime-cpu", name: str = "test-cpu", **kw):
    from hwnas.device_config import parse_config

    data = {
        "name": name,
        "backend": backend,
        "threads": 1,
        "repeat": FAST_REPEAT,
        "power": {"sampler": "none"},
    }
    data.update(kw)
    return parse_config(data, "<test>")


def tiny_model(name: str = "tiny", twin_convs: bool = False):
    import torch
    from torch import nn

    from hwnas.graph.models import from_module

    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
    if twin_convs:  # two layers with the same key: measured once, recorded for both
        layers += [nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)]
    return from_module(nn.Sequential(*layers).eval(), (1, 3, 16, 16), name, f"test:{name}")
