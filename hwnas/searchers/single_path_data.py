"""Image data for MobileNetV2-space searches: the embedded digits (resized), CIFAR-10, an ImageFolder.

- ``digits`` (default): scikit-learn's 8×8 digits, bilinearly resized to the search resolution and
  repeated to three channels (the backbone's stem takes RGB); ships with a dependency, needs no download.
- a folder with ``cifar-10-batches-py/`` (torchvision's layout, read with ``download=False``);
- a folder with ``train/<class>/*.jpg`` (torchvision ``ImageFolder``; the ImageNet-size configuration for
  users with the data and a GPU): held out by a seeded split, decoded lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hwnas.errors import InputError


def _to_rgb(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = torch.nn.functional.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False
        )
    return x.contiguous()


def load_search_data(
    source: str | Path | None,
    resolution: int,
    *,
    batch_size: int = 64,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
    arch_fraction: float = 0.0,
) -> dict[str, Any]:
    """``{"train", "val", "arch" (or None), "num_classes", "name", "n_train"}``: DataLoaders at
    ``resolution``. ``arch_fraction`` holds part of the training split out for bilevel arch steps."""
    from hwnas.searchers.oneshot import tensor_batches

    if source is not None and str(source) != "digits":
        root = Path(source)
        if (root / "train").is_dir() and not (root / "cifar-10-batches-py").is_dir():
            return _image_folder(root, resolution, batch_size, val_fraction, seed, arch_fraction)
    from hwnas.searchers.objectives.training import load_dataset

    data = load_dataset(source, val_fraction=val_fraction, seed=seed, max_train=max_train)
    xt, yt = _to_rgb(data.x_train, resolution), data.y_train
    xv, yv = _to_rgb(data.x_val, resolution), data.y_val
    arch = None
    if arch_fraction > 0:
        n_arch = max(1, int(len(xt) * arch_fraction))
        arch = tensor_batches(xt[:n_arch], yt[:n_arch], batch_size, seed=seed + 1)
        xt, yt = xt[n_arch:], yt[n_arch:]
    return {
        "train": tensor_batches(xt, yt, batch_size, seed=seed),
        "val": tensor_batches(xv, yv, 256, shuffle=False),
        "arch": arch,
        "num_classes": data.num_classes,
        "name": data.name,
        "n_train": len(xt),
    }


def _image_folder(
    root: Path, resolution: int, batch_size: int, val_fraction: float, seed: int, arch_fraction: float
) -> dict[str, Any]:
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose(
        [transforms.Resize(int(resolution * 1.14)), transforms.CenterCrop(resolution), transforms.ToTensor()]
    )
    try:
        ds = torchvision.datasets.ImageFolder(str(root / "train"), transform=tf)
    except (FileNotFoundError, RuntimeError) as exc:
        raise InputError(f"image folder {root}/train: {exc}", hint="use train/<class>/<image> files") from exc
    g = torch.Generator().manual_seed(seed)
    n = len(ds)
    n_val = max(1, int(n * val_fraction))
    n_arch = int((n - n_val) * arch_fraction)
    parts = torch.utils.data.random_split(ds, [n - n_val - n_arch, n_val, n_arch], generator=g)

    def dl(d: Any, shuffle: bool) -> Any:
        return torch.utils.data.DataLoader(d, batch_size=batch_size, shuffle=shuffle, num_workers=4)

    return {
        "train": dl(parts[0], True),
        "val": dl(parts[1], False),
        "arch": dl(parts[2], True) if n_arch else None,
        "num_classes": len(ds.classes),
        "name": root.name,
        "n_train": len(parts[0]),
    }
