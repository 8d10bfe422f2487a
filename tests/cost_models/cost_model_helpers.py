"""Test helpers (a uniquely named module: `from conftest import` would pick another folder's conftest).

A small synthetic store: chains of conv layers with a latency that depends on FLOPs and op kind."""

from __future__ import annotations

from functools import partial

import numpy as np

from hwnas.graph.layer import make_layer
from hwnas.store import Fingerprint, Measurement, SQLiteStore, Stats


def _arch_layers(rng: np.random.Generator) -> list:
    c, hw, layers = 8, 16, []
    for _ in range(int(rng.integers(3, 6))):
        cout = int(rng.choice([8, 16, 24]))
        k = int(rng.choice([1, 3]))
        layers.append(
            make_layer(
                "conv2d",
                (1, c, hw, hw),
                (1, cout, hw, hw),
                in_channels=c,
                out_channels=cout,
                kernel=k,
                stride=1,
                padding=k // 2,
            )
        )
        layers.append(make_layer("relu", (1, cout, hw, hw), (1, cout, hw, hw)))
        c = cout
    return layers


def true_layer_ms(spec) -> float:
    base = 0.02 if spec.op == "relu" else 0.05
    return base + spec.flops * 2e-7


def build_store(
    path, n_models: int = 30, seed: int = 0, noise: float = 0.0, in_model: bool = False
) -> SQLiteStore:
    rng = np.random.default_rng(seed)
    store = SQLiteStore(path)
    fp = Fingerprint(device="synthetic", fields={"cpu": "test"})
    store.add_fingerprint(fp)
    for m in range(n_models):
        layers = _arch_layers(rng)
        store.add_layer_specs(layers)
        model_id = f"synthetic:{m}"
        record = partial(
            Measurement, device="synthetic", fingerprint_id=fp.id, backend="test", model_id=model_id
        )
        total = 0.0
        for i, spec in enumerate(layers):
            v = true_layer_ms(spec) * (1 + noise * rng.standard_normal())
            total += v
            st = Stats(median=v, mean=v, std=0.0, iqr=0.0, ci_low=v * 0.98, ci_high=v * 1.02, n=10)
            at_layer = {"layer_key": spec.key(), "layer_name": f"l{i}", "layer_index": i}
            store.add(record(scope="layer", metric="latency_ms", value=v, stats=st, **at_layer))
            if in_model and spec.op == "conv2d":  # relu fused into the conv inside the whole model
                store.add(record(scope="layer", metric="in_model_latency_ms", value=0.8 * v, **at_layer))
        whole = 0.3 + 1.1 * total
        store.add(record(scope="model", metric="latency_ms", value=whole))
    return store
