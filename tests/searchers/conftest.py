"""Fixtures for searcher tests: small exact tables whose optimum and costs are known by construction."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from hwnas.searchers.objectives.tabular import TabularObjective
from hwnas.searchers.space import CategoricalParam, FloatParam, IntParam, SearchSpace


def grid_objective(seed: int = 0) -> TabularObjective:
    """A mixed grid: width (int) x depth (int) x op (categorical) x lr (float levels).

    error falls with width and depth and is lowest at lr=0.03 and op 'conv3'; latency is linear in the
    structural parameters (so a linear cost model is exact); one lr level diverges (accuracy at chance).
    """
    rng = np.random.default_rng(seed)
    space = SearchSpace.of(
        [
            IntParam("width", 1, 8),
            IntParam("depth", 1, 4),
            CategoricalParam("op", ["conv1", "conv3", "pool"]),
            FloatParam("lr", 0.001, 0.3, log=True),
        ],
        name="grid",
    )
    rows = []
    for w, d, op, lr in itertools.product(
        range(1, 9), range(1, 5), ["conv1", "conv3", "pool"], [0.001, 0.03, 0.3]
    ):
        diverged = lr == 0.3 and (w + d) % 3 == 0
        err = (
            0.5 / (1 + w * d)
            + {"conv1": 0.05, "conv3": 0.0, "pool": 0.1}[op]
            + abs(np.log10(lr / 0.03)) * 0.05
        )
        err = 0.9 if diverged else err + rng.normal(0, 0.002)
        accs = [0.1, 0.1, 0.1] if diverged else [0.5, 0.8, 1 - err]
        lat = 1.0 + 0.5 * w + 0.8 * d + {"conv1": 0.2, "conv3": 1.0, "pool": 0.1}[op]
        rows.append(
            {
                "width": w,
                "depth": d,
                "op": op,
                "lr": lr,
                "val_error": err,
                "latency_ms": lat,
                "memory_mb": 2.0 * w + d,
                "val_acc_epoch1": accs[0],
                "val_acc_epoch2": accs[1],
                "val_acc_epoch3": accs[2],
                "train_time_s": 1.0 + w * d * 0.1,
            }
        )
    df = pd.DataFrame(rows)
    return TabularObjective(
        df,
        space,
        cost_columns=("latency_ms", "memory_mb"),
        epoch_accuracy_columns=("val_acc_epoch1", "val_acc_epoch2", "val_acc_epoch3"),
        time_column="train_time_s",
        lookup="nearest",
        name="grid",
    )


def nb201_like_objective() -> TabularObjective:
    """A categorical-only space (4 edges x 3 ops), every config a row (exact lookup)."""
    ops = ["none", "conv1", "conv3"]
    space = SearchSpace.of([CategoricalParam(f"edge{i}", ops) for i in range(4)], name="cells")
    rows = []
    for combo in itertools.product(ops, repeat=4):
        n3 = combo.count("conv3")
        n1 = combo.count("conv1")
        rows.append(
            {
                **{f"edge{i}": o for i, o in enumerate(combo)},
                "val_error": 0.5 - 0.08 * n3 - 0.05 * n1 + 0.01 * ops.index(combo[0]),
                "latency_ms": 1.0 + 0.9 * n3 + 0.3 * n1,
                "memory_mb": 1.0,
            }
        )
    return TabularObjective(
        pd.DataFrame(rows), space, cost_columns=("latency_ms", "memory_mb"), lookup="exact", name="cells"
    )


@pytest.fixture
def grid() -> TabularObjective:
    return grid_objective()


@pytest.fixture
def cells() -> TabularObjective:
    return nb201_like_objective()
