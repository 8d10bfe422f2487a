"""A latency-targeted Single-Path search end to end, and what follows it: export, retraining, checking.

Library functions the CLI and the benchmarks share: :func:`single_path_search` (data → supernet search →
history + derived architecture), :func:`export_architecture` (LayerSpecs JSON, a torch module, ONNX),
:func:`train_network` (train a derived or sampled network from scratch, the thesis's final step and the
random-search baseline's proxy training). Measurements come in through a ``time_module`` callable.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.searchers.oneshot import DerivedArchitecture, OneShotSearcher, StepInfo
from hwnas.searchers.single_path import make_single_path_searcher
from hwnas.searchers.single_path_table import SinglePathTable
from hwnas.spaces.mbv2 import MBV2Space

SEARCHERS = ("single-path", "multi-path")
MULTI_PATH_WEIGHTINGS = ("softmax", "gumbel")


def single_path_search(
    data: dict[str, Any],
    space: MBV2Space,
    table: SinglePathTable,
    *,
    target_latency_ms: float | None = None,
    lam: float = 0.2,
    penalty: Any = None,
    mode: str = "sigmoid",
    search_se: bool = False,
    epochs: int = 8,
    seed: int = 0,
    lr: float = 0.05,
    arch_lr: float = 1e-3,
    callback: Callable[[Any], None] | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    measure: Callable[[DerivedArchitecture], dict[str, float]] | None = None,
    checkpoint: str | Path | None = None,
    searcher: str = "single-path",
    **kwargs: Any,
) -> OneShotSearcher:
    """Run one search on ``data`` (from ``load_search_data``); returns the searcher (history, derived).

    ``searcher="multi-path"`` runs the multi-path baseline (``multi_path.py``) on the same space, table,
    loss and data instead; ``mode`` is then its path weighting, ``softmax`` or ``gumbel``."""
    if searcher not in SEARCHERS:
        raise InputError(f"searcher {searcher!r} is not known", hint=f"one of {', '.join(SEARCHERS)}")
    bilevel = mode == "softmax" or searcher == "multi-path"
    if bilevel and data.get("arch") is None:
        raise InputError(
            f"{searcher} ({mode}) trains bilevel and needs a held-out arch split", hint="arch_fraction=0.2"
        )
    if searcher == "multi-path":
        from hwnas.searchers.multi_path import make_multi_path_searcher

        if search_se:
            raise InputError("the multi-path baseline has no SE paths", hint="drop --search-se")
        if mode not in MULTI_PATH_WEIGHTINGS:
            raise InputError(
                f"multi-path weighting {mode!r} is not known",
                hint=f"one of {', '.join(MULTI_PATH_WEIGHTINGS)}",
            )
        s = make_multi_path_searcher(
            space=space,
            table=table,
            lam=lam,
            penalty=penalty,
            target_latency_ms=target_latency_ms,
            weighting=mode,
            epochs=epochs,
            lr=lr,
            arch_lr=arch_lr,
            seed=seed,
            **kwargs,
        )
        s.history.meta.update({"mode": mode, "table_device": table.device})
    else:
        s = make_single_path_searcher(
            space=space,
            table=table,
            lam=lam,
            penalty=penalty,
            target_latency_ms=target_latency_ms,
            mode=mode,
            search_se=search_se,
            epochs=epochs,
            lr=lr,
            arch_lr=arch_lr,
            seed=seed,
            **kwargs,
        )
    s.run(
        data["train"],
        data["val"],
        arch_data=data.get("arch"),
        callback=callback,
        on_step=on_step,
        measure=measure,
        checkpoint=checkpoint,
    )
    s.history.meta.update({"dataset": data.get("name"), "target_latency_ms": target_latency_ms})
    return s


def lr_at(base: float, step: int, total: int) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * step / max(1, total)))


def train_network(
    net: nn.Module,
    data: dict[str, Any],
    epochs: int,
    *,
    lr: float = 0.05,
    seed: int = 0,
    weight_decay: float = 4e-5,
) -> dict[str, float]:
    """Train ``net`` from its current weights with SGD + cosine decay; returns final val accuracy/time."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    total = epochs * len(data["train"])
    step = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for x, y in data["train"]:
            for g in opt.param_groups:
                g["lr"] = lr_at(lr, step, total)
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            step += 1
    train_s = time.perf_counter() - t0
    net.eval()
    right = n = 0
    with torch.no_grad():
        for x, y in data["val"]:
            right += int((net(x).argmax(1) == y).sum())
            n += int(y.numel())
    return {"val_accuracy": right / max(1, n), "train_s": train_s, "steps": step}


def export_architecture(
    arch: str,
    space: MBV2Space,
    out_dir: str | Path,
    *,
    module: nn.Module | None = None,
    onnx: bool = True,
    tflite: bool = False,
) -> dict[str, Path]:
    """Write ``layers.json`` (LayerSpecs), ``model.pt`` (the torch module), ``model.onnx`` and, with
    ``tflite``, ``model.tflite`` (float32, NHWC input, through the Keras builder; needs ``hwnas[tf]``;
    check it with :func:`tflite_matches`)."""
    from hwnas.graph.builders.onnx import module_to_onnx

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    canonical = space.encode(space.decode(arch))
    spec = space.layers(canonical)
    paths = {"layers": out / "layers.json", "torch": out / "model.pt"}
    paths["layers"].write_text(
        json.dumps(
            {
                "arch": canonical,
                "model_id": space.model_id(canonical),
                "input_shape": list(spec.input_shape),
                "layers": [layer.to_dict() for layer in spec.layers],
            },
            indent=1,
        )
    )
    net = (module if module is not None else space.build(canonical)).eval()
    torch.save(net, paths["torch"])
    if onnx:
        paths["onnx"] = module_to_onnx(net, (1, *space.input_shape), out / "model.onnx", verify=True)
    if tflite:
        from hwnas.graph.builders.tflite import model_to_tflite

        paths["tflite"] = model_to_tflite(
            net, (1, *space.input_shape), out / "model.tflite", name="single_path"
        )
    return paths


def tflite_matches(net: nn.Module, path: str | Path, input_shape: tuple[int, ...], seed: int = 0) -> float:
    """The largest absolute difference between the torch network's output and the ``.tflite`` file's
    on one seeded standard-normal input (NCHW ``input_shape``, batch first)."""
    import numpy as np

    from hwnas.graph.builders.tflite import run_tflite_file

    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = net.eval()(x).numpy()
    got = run_tflite_file(path, x.numpy())
    if got.shape != ref.shape:
        raise InputError(f"{path}: output shape {got.shape}, the torch network gives {ref.shape}")
    return float(np.max(np.abs(got - ref)))
