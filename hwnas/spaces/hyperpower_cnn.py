"""HyperPower's AlexNet-style CNN family (Stamoulis thesis §3.4.1), scaled to any small image size.

Per conv layer: number of features (20-80) and kernel size (2-5), followed by ReLU and a max-pool whose
kernel is 1-3 (kernel 1 keeps the size; 2 and 3 halve it, so an 8x8 digits image survives two stages);
then one fully connected layer of 200-700 units and the classifier. Training hyperparameters: learning
rate 0.001-0.1 (log), momentum 0.8-0.95 and weight decay 0.0001-0.01 (log). Only the first group is
*structural* (changes the network and so its power, memory and latency; thesis §3.3).

This module describes points as plain data so that it does not import the searchers (which import it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from torch import nn

from hwnas.errors import InputError

FEATURES = (20, 80)
KERNEL = (2, 5)
POOL = (1, 3)
FC_UNITS = (200, 700)
LEARNING_RATE = (0.001, 0.1)
MOMENTUM = (0.8, 0.95)
WEIGHT_DECAY = (0.0001, 0.01)


def param_table(n_conv: int = 2) -> list[dict[str, Any]]:
    """The family's parameters as rows ``{name, kind, low, high, structural}`` (kinds as in
    ``hwnas.searchers.space``: int, float, log-float)."""
    if n_conv < 1:
        raise InputError(f"n_conv must be >= 1, got {n_conv}")
    rows: list[dict[str, Any]] = []
    for i in range(1, n_conv + 1):
        rows += [
            {
                "name": f"conv{i}_features",
                "kind": "int",
                "low": FEATURES[0],
                "high": FEATURES[1],
                "structural": True,
            },
            {
                "name": f"conv{i}_kernel",
                "kind": "int",
                "low": KERNEL[0],
                "high": KERNEL[1],
                "structural": True,
            },
            {"name": f"pool{i}_kernel", "kind": "int", "low": POOL[0], "high": POOL[1], "structural": True},
        ]
    rows += [
        {"name": "fc_units", "kind": "int", "low": FC_UNITS[0], "high": FC_UNITS[1], "structural": True},
        {
            "name": "learning_rate",
            "kind": "log-float",
            "low": LEARNING_RATE[0],
            "high": LEARNING_RATE[1],
            "structural": False,
        },
        {"name": "momentum", "kind": "float", "low": MOMENTUM[0], "high": MOMENTUM[1], "structural": False},
        {
            "name": "weight_decay",
            "kind": "log-float",
            "low": WEIGHT_DECAY[0],
            "high": WEIGHT_DECAY[1],
            "structural": False,
        },
    ]
    return rows


def n_conv_of(config: Mapping[str, Any]) -> int:
    n = 0
    while f"conv{n + 1}_features" in config:
        n += 1
    if n == 0:
        raise InputError(
            "config has no conv1_features: not a HyperPower CNN config", hint=f"keys: {sorted(config)}"
        )
    return n


def _pooled(size: int, kernel: int) -> int:
    if kernel <= 1:
        return size
    pad = kernel // 2 if kernel % 2 else 0
    return (size + 2 * pad - kernel) // 2 + 1


def layer_features(
    config: Mapping[str, Any], input_shape: tuple[int, int, int] = (1, 8, 8), num_classes: int = 10
) -> dict[str, float]:
    """Per-layer sizes of ``config`` computed from its hyperparameters alone (no network is built):
    parameters and MACs of every conv/linear layer and the activation elements after each stage.
    A cost model linear in these is still cheap in an acquisition function, and it can represent the
    products of hyperparameters (features x kernel^2 x spatial size) that dominate memory and latency."""
    n = n_conv_of(config)
    c, h, w = input_shape
    out: dict[str, float] = {}
    for i in range(1, n + 1):
        f, k, p = (
            int(config[f"conv{i}_features"]),
            int(config[f"conv{i}_kernel"]),
            int(config[f"pool{i}_kernel"]),
        )
        out[f"conv{i}_params"] = float(f * (c * k * k + 1))
        out[f"conv{i}_macs"] = float(f * c * k * k * h * w)
        out[f"conv{i}_act"] = float(f * h * w)
        h, w, c = _pooled(h, p), _pooled(w, p), f
    flat = c * h * w
    fc = int(config["fc_units"])
    out["fc1_params"] = float((flat + 1) * fc)
    out["fc2_params"] = float((fc + 1) * num_classes)
    out["flat_act"] = float(flat)
    return out


def _pool(kernel: int) -> nn.Module:
    if kernel <= 1:
        return nn.Identity()
    return nn.MaxPool2d(kernel_size=kernel, stride=2, padding=kernel // 2 if kernel % 2 else 0)


def build(
    config: Mapping[str, Any], input_shape: tuple[int, int, int] = (1, 8, 8), num_classes: int = 10
) -> nn.Module:
    """The torch network of ``config`` for images of ``input_shape`` (C, H, W)."""
    import torch

    n = n_conv_of(config)
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for i in range(1, n + 1):
        f, k, p = (
            int(config[f"conv{i}_features"]),
            int(config[f"conv{i}_kernel"]),
            int(config[f"pool{i}_kernel"]),
        )
        layers += [nn.Conv2d(c, f, kernel_size=k, padding="same"), nn.ReLU(inplace=True), _pool(p)]
        c = f
    features = nn.Sequential(*layers)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        flat = int(features(torch.zeros(1, *input_shape)).numel())
    if flat == 0:
        raise InputError(f"config {dict(config)} pools an input of {h}x{w} down to nothing")
    fc = int(config["fc_units"])
    return nn.Sequential(
        features, nn.Flatten(), nn.Linear(flat, fc), nn.ReLU(inplace=True), nn.Linear(fc, num_classes)
    )
