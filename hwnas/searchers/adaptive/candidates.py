"""The candidate networks of an adaptive DNN: the thesis's CaffeNet-like family, trained for real.

Thesis §4.4 varies the networks around the nominal CaffeNet hyperparameters: conv feature maps 32-448,
kernel 2-5, fully connected units 500-4000. hwnas uses HyperPower's AlexNet-style family
(``hwnas.spaces.hyperpower_cnn``: two conv/ReLU/max-pool stages, one hidden FC layer) with those ranges
*scaled* to the dataset: feature maps and FC units are multiplied by ``scale`` (default ``sqrt(H·W/32²)``,
1.0 on CIFAR-10, 0.25 on the 8×8 digits), so a small dataset does not train networks far larger than it
can use. Training hyperparameters are fixed (the thesis searches structure only).

A trained network is kept as its per-image softmax outputs on the design split and the test split (and
its validation error), cached in the store (``SQLiteStore.put_artifact``) under a key of its config, the
dataset, the split and the training budget: a θ sweep never retrains, and a killed search resumes without
retraining finished networks.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.objectives.training import ImageData, load_dataset, train_config
from hwnas.spaces import hyperpower_cnn

FEATURES = (32, 448)
KERNEL = (2, 5)
FC_UNITS = (500, 4000)
TRAINING = {"learning_rate": 0.02, "momentum": 0.9, "weight_decay": 5e-4}
POOL_KERNEL = 2


def default_scale(input_shape: tuple[int, int, int]) -> float:
    """``sqrt(H·W / 32²)``, capped at 1: the thesis's ranges on 32×32 CIFAR-10, smaller for smaller images."""
    _, h, w = input_shape
    return min(1.0, math.sqrt(h * w / 1024.0))


@dataclass(frozen=True)
class NetworkFamily:
    """Ranges of one candidate network's structural hyperparameters (after scaling)."""

    features: tuple[int, int]
    kernel: tuple[int, int]
    fc_units: tuple[int, int]

    @classmethod
    def scaled(cls, scale: float) -> NetworkFamily:
        if not (0 < scale <= 4):
            raise InputError(f"network family scale must lie in (0, 4], got {scale}")
        f = (max(4, round(FEATURES[0] * scale)), max(8, round(FEATURES[1] * scale)))
        u = (max(16, round(FC_UNITS[0] * scale)), max(32, round(FC_UNITS[1] * scale)))
        return cls(f, KERNEL, u)

    def config(self, conv1: int, kernel1: int, conv2: int, kernel2: int, fc: int) -> dict[str, Any]:
        """A full HyperPower-family config (fixed pools and training hyperparameters)."""
        return {
            "conv1_features": int(conv1),
            "conv1_kernel": int(kernel1),
            "pool1_kernel": POOL_KERNEL,
            "conv2_features": int(conv2),
            "conv2_kernel": int(kernel2),
            "pool2_kernel": POOL_KERNEL,
            "fc_units": int(fc),
            **TRAINING,
        }

    def nominal_small(self) -> dict[str, Any]:
        """The "CaffeNet" of the static baseline: the family's nominal low end."""
        lo, hi = self.features
        return self.config(lo + (hi - lo) // 8, 3, lo + (hi - lo) // 4, 3, self.fc_units[0])

    def nominal_large(self) -> dict[str, Any]:
        """The "VGG-19" of the static baseline: the largest member."""
        return self.config(self.features[1], 3, self.features[1], 3, self.fc_units[1])


STRUCTURAL = ("conv1_features", "conv1_kernel", "conv2_features", "conv2_kernel", "fc_units")


class ArtifactCache(Protocol):
    """What the store offers for trained outputs (``hwnas.store.sqlite.SQLiteStore`` implements it)."""

    def put_artifact(self, key: str, kind: str, arrays: dict[str, Any], meta: dict[str, Any]) -> None: ...

    def get_artifact(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None: ...


@dataclass
class TrainedNetwork:
    """A trained candidate: softmax outputs on the design and test splits, and its validation error."""

    config: dict[str, Any]
    probs_design: np.ndarray
    probs_test: np.ndarray
    val_error: float
    train_time_s: float
    cached: bool = False


@dataclass
class DesignData:
    """Train split (to fit weights), design split (to choose networks and θ) and test split (to report)."""

    data: ImageData
    labels_design: np.ndarray
    labels_test: np.ndarray
    x_design: Any
    x_test: Any
    scale: float

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.data.input_shape


def load_design_data(
    dataset: str | None = None, *, seed: int = 0, max_train: int | None = None, scale: float | None = None
) -> DesignData:
    """Split a dataset three ways: the validation part of ``load_dataset`` halves into design and test,
    so the reported error and energy are measured on images the search never saw."""
    data = load_dataset(dataset, seed=seed, max_train=max_train, val_fraction=0.4)
    n = len(data.y_val)
    if n < 20:
        raise InputError(f"dataset {data.name}: only {n} validation images; need at least 20")
    half = n // 2
    y = data.y_val.numpy()
    return DesignData(
        data,
        y[:half],
        y[half:],
        data.x_val[:half],
        data.x_val[half:],
        default_scale(data.input_shape) if scale is None else float(scale),
    )


def network_key(config: Mapping[str, Any], dd: DesignData, *, epochs: int, seed: int) -> str:
    ident = {
        "config": {k: config[k] for k in sorted(config)},
        "dataset": dd.data.name,
        "n_train": int(len(dd.data.y_train)),
        "n_design": int(len(dd.labels_design)),
        "n_test": int(len(dd.labels_test)),
        "epochs": int(epochs),
        "seed": int(seed),
    }
    return "adaptive-net:" + hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


class NetworkTrainer:
    """Trains candidates on demand and caches their outputs; ``train_count`` counts real trainings."""

    def __init__(
        self,
        dd: DesignData,
        *,
        epochs: int = 6,
        batch_size: int = 64,
        seed: int = 0,
        cache: ArtifactCache | None = None,
        threads: int = 1,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if epochs < 1:
            raise InputError(f"epochs must be >= 1, got {epochs}")
        self.dd = dd
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.cache = cache
        self.threads = threads
        self.progress = progress
        self.train_count = 0
        self._memo: dict[str, TrainedNetwork] = {}

    def get(self, config: Mapping[str, Any]) -> TrainedNetwork:
        config = dict(config)
        key = network_key(config, self.dd, epochs=self.epochs, seed=self.seed)
        if key in self._memo:
            return self._memo[key]
        if self.cache is not None:
            hit = self.cache.get_artifact(key)
            if hit is not None:
                arrays, meta = hit
                net = TrainedNetwork(
                    config,
                    arrays["probs_design"],
                    arrays["probs_test"],
                    float(meta["val_error"]),
                    float(meta.get("train_time_s", 0.0)),
                    cached=True,
                )
                self._memo[key] = net
                return net
        net = self._train(config)
        if self.cache is not None:
            self.cache.put_artifact(
                key,
                "adaptive-softmax",
                {"probs_design": net.probs_design, "probs_test": net.probs_test},
                {
                    "config": config,
                    "val_error": net.val_error,
                    "train_time_s": net.train_time_s,
                    "dataset": self.dd.data.name,
                    "epochs": self.epochs,
                },  # fmt: skip
            )
        self._memo[key] = net
        return net

    def _train(self, config: dict[str, Any]) -> TrainedNetwork:
        import torch

        if self.progress is not None:
            self.progress(f"training {describe(config)}")
        got: dict[str, Any] = {}

        def keep(model: Any) -> None:
            with torch.no_grad():
                got["design"] = torch.softmax(model(self.dd.x_design), 1).numpy().astype(np.float32)
                got["test"] = torch.softmax(model(self.dd.x_test), 1).numpy().astype(np.float32)

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            ev = train_config(
                config, self.dd.data, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                on_trained=keep,
            )  # fmt: skip
        finally:
            torch.set_num_threads(previous)
        self.train_count += 1
        return TrainedNetwork(config, got["design"], got["test"], float(ev.objective), ev.eval_time_s)

    def build(self, config: Mapping[str, Any]) -> Any:
        return hyperpower_cnn.build(config, self.dd.input_shape, self.dd.data.num_classes)


def describe(config: Mapping[str, Any]) -> str:
    """``c32k3-c64k3-fc500``: a short readable name of a candidate."""
    return (
        f"c{config['conv1_features']}k{config['conv1_kernel']}-"
        f"c{config['conv2_features']}k{config['conv2_kernel']}-fc{config['fc_units']}"
    )
