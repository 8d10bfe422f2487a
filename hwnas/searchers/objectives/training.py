"""Real training objective: HyperPower's AlexNet-style CNN family trained with SGD in torch.

Datasets: scikit-learn's digits (8x8, 1797 images; ships with scikit-learn, the embedded default), or a
folder in torchvision's layout holding MNIST or CIFAR-10 (read with ``download=False``; never fetched at
run time). The objective is the validation error after the last epoch; a ``Stopper`` sees the
validation accuracy after every epoch and may end a diverging run early (thesis §3.3.3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.objectives.base import Evaluation, Stopper
from hwnas.searchers.space import Param, SearchSpace
from hwnas.spaces import hyperpower_cnn


@dataclass
class ImageData:
    """A train/validation split as float tensors (N, C, H, W) and int64 labels."""

    name: str
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]


def hyperpower_space(n_conv: int = 2) -> SearchSpace:
    """The AlexNet-style family as a SearchSpace (``n_conv`` conv/pool stages)."""
    params = [
        Param(r["name"], r["kind"], r["low"], r["high"], structural=r["structural"])
        for r in hyperpower_cnn.param_table(n_conv)
    ]
    return SearchSpace.of(params, name=f"hyperpower-cnn-{n_conv}conv")


def layer_featurizer(input_shape: tuple[int, int, int], num_classes: int = 10) -> Any:
    """A cost-model featurizer: per-layer parameter, MAC and activation counts of each config."""

    def featurize(space: SearchSpace, configs: Any) -> Any:
        import pandas as pd

        return pd.DataFrame([hyperpower_cnn.layer_features(c, input_shape, num_classes) for c in configs])

    return featurize


def _split(
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    seed: int,
    max_train: int | None,
    name: str,
    num_classes: int,
) -> ImageData:
    import torch

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(round(len(x) * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    if max_train is not None:
        train = train[:max_train]
    mean, std = float(x[train].mean()), float(x[train].std()) or 1.0
    t = lambda a: torch.as_tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return ImageData(
        name,
        t(x[train]),
        torch.as_tensor(y[train], dtype=torch.int64),
        t(x[val]),
        torch.as_tensor(y[val], dtype=torch.int64),
        num_classes,
    )


def load_dataset(
    source: str | Path | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
) -> ImageData:
    """``None``/``"digits"``: scikit-learn's digits. A folder: MNIST or CIFAR-10 in torchvision's layout
    (``<root>/MNIST/raw/...`` or ``<root>/cifar-10-batches-py``); its training set is split into train
    and validation with ``seed``."""
    if source is None or str(source) == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.images.astype(np.float32)[:, None, :, :]
        return _split(x, d.target.astype(np.int64), val_fraction, seed, max_train, "digits", 10)
    root = Path(source)
    if not root.is_dir():
        raise InputError(
            f"dataset folder {root}: not found",
            hint="pass a folder holding MNIST/ or cifar-10-batches-py/ (torchvision layout), "
            "or 'digits' for the embedded scikit-learn digits",
        )
    import torchvision

    if (root / "cifar-10-batches-py").is_dir():
        ds = torchvision.datasets.CIFAR10(str(root), train=True, download=False)
        x = np.asarray(ds.data, dtype=np.float32).transpose(0, 3, 1, 2)
        return _split(x, np.asarray(ds.targets, dtype=np.int64), val_fraction, seed, max_train, "cifar10", 10)
    if (root / "MNIST").is_dir():
        try:
            ds = torchvision.datasets.MNIST(str(root), train=True, download=False)
        except RuntimeError as exc:
            raise InputError(
                f"dataset folder {root}/MNIST: {exc}",
                hint="place the MNIST raw files under <root>/MNIST/raw/ (torchvision layout)",
            ) from exc
        x = ds.data.numpy().astype(np.float32)[:, None, :, :]
        return _split(x, ds.targets.numpy().astype(np.int64), val_fraction, seed, max_train, "mnist", 10)
    raise InputError(
        f"dataset folder {root}: holds neither MNIST/ nor cifar-10-batches-py/",
        hint="use torchvision's layout: torchvision.datasets.MNIST(root) or CIFAR10(root) "
        "must find the files with download=False",
    )


def train_config(
    config: Mapping[str, Any],
    data: ImageData,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    stopper: Stopper | None = None,
    on_trained: Callable[[Any], None] | None = None,
) -> Evaluation:
    """Train one config with SGD; return its final validation error and per-epoch accuracies.

    ``on_trained`` receives the trained module (in eval mode) before this returns, for callers that need
    more than the error (the adaptive-DNN search keeps its per-image softmax outputs)."""
    import warnings

    import torch
    from torch import nn

    # padding="same" with an even kernel pads asymmetrically; torch warns once per call about the copy.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = hyperpower_cnn.build(config, data.input_shape, data.num_classes)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=float(config["learning_rate"]),
        momentum=float(config["momentum"]),
        weight_decay=float(config["weight_decay"]),
    )
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    n = len(data.x_train)
    accs: list[float] = []
    stopped, reason, loss_v = False, "", float("nan")
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
            if not torch.isfinite(loss):
                total, count = float("nan"), 1
                break
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        loss_v = total / max(count, 1)
        model.eval()
        with torch.no_grad():
            acc = (
                float((model(data.x_val).argmax(1) == data.y_val).float().mean())
                if np.isfinite(loss_v)
                else 0.0
            )
        accs.append(acc)
        if stopper is not None and epoch < epochs and stopper(epoch, acc, loss_v):
            stopped, reason = True, f"diverging: val accuracy {acc:.3f} after {epoch} epoch(s)"
            break
    if on_trained is not None:
        on_trained(model.eval())
    return Evaluation(
        objective=1.0 - accs[-1],
        early_stopped=stopped,
        stop_reason=reason,
        eval_time_s=time.perf_counter() - t0,
        info={"val_acc_per_epoch": accs, "epochs_run": len(accs), "final_loss": loss_v},
    )


class TrainingObjective:
    """Train the AlexNet-style family on a dataset; costs come from ``cost_fn(config, model, input_shape)``
    (the CLI passes one that runs the device's profiler; the library never imports a profiler)."""

    def __init__(
        self,
        dataset: str | Path | None = None,
        *,
        n_conv: int = 2,
        epochs: int = 6,
        batch_size: int = 32,
        seed: int = 0,
        max_train: int | None = None,
        threads: int = 1,
        cost_fn: Callable[[Mapping[str, Any], Any, tuple[int, ...]], dict[str, float]] | None = None,
        cost_names: tuple[str, ...] = (),
    ) -> None:
        self.dataset = dataset
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.threads = threads
        self.cost_fn = cost_fn
        self.cost_names = tuple(cost_names)
        self.space = hyperpower_space(n_conv)
        self.data = load_dataset(dataset, seed=seed, max_train=max_train)
        self.chance_accuracy = 1.0 / self.data.num_classes
        self.cost_featurizer = layer_featurizer(self.data.input_shape, self.data.num_classes)

    def build(self, config: Mapping[str, Any]) -> Any:
        return hyperpower_cnn.build(config, self.data.input_shape, self.data.num_classes)

    def measure_costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        if self.cost_fn is None:
            return {}
        return dict(self.cost_fn(config, self.build(config), (1, *self.data.input_shape)))

    def evaluate(self, config: Mapping[str, Any], stopper: Stopper | None = None) -> Evaluation:
        import torch

        self.space.validate(config)
        # Small CNNs train fastest on one thread; several threads on a shared 2-core machine thrash.
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return train_config(
                config,
                self.data,
                epochs=self.epochs,
                batch_size=self.batch_size,
                seed=self.seed,
                stopper=stopper,
            )
        finally:
            torch.set_num_threads(previous)
