"""Test helpers for the report (a uniquely named module; see tests/cost_models/cost_model_helpers.py).

A synthetic store with two device set-ups measuring the same model, chains of conv/relu layers whose
latency depends on FLOPs, one throttling flag and one layer that hit its repeat cap; and hand-made search
histories whose curves, Pareto fronts and best trials are known.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from hwnas.graph.layer import make_layer
from hwnas.searchers.base import History, Trial
from hwnas.store import Fingerprint, Measurement, SQLiteStore, Stats


def _layers(rng: np.random.Generator) -> list:
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
            )  # fmt: skip
        )
        layers.append(make_layer("relu", (1, cout, hw, hw), (1, cout, hw, hw)))
        c = cout
    return layers


def layer_ms(spec, scale: float = 1.0) -> float:
    return scale * ((0.02 if spec.op == "relu" else 0.05) + spec.flops * 2e-7)


def build_store(path: Path, n_models: int = 12, seed: int = 0) -> SQLiteStore:
    """``synthetic:0..n-1`` on device ``cpu-a``; ``synthetic:0`` also on ``cpu-b`` (2× slower, with
    energy). ``synthetic:0`` on cpu-a carries a throttling flag and one layer that stopped at its cap."""
    rng = np.random.default_rng(seed)
    store = SQLiteStore(path)
    fa = Fingerprint(device="cpu-a", fields={"cpu": "test A", "threads": 1})
    fb = Fingerprint(device="cpu-b", fields={"cpu": "test B", "threads": 1})
    store.add_fingerprint(fa)
    store.add_fingerprint(fb)
    archs = [_layers(rng) for _ in range(n_models)]
    for m, layers in enumerate(archs):
        store.add_layer_specs(layers)
        setups = [("cpu-a", fa, 1.0)] + ([("cpu-b", fb, 2.0)] if m == 0 else [])
        for device, fp, scale in setups:
            rec = partial(Measurement, device=device, fingerprint_id=fp.id, backend="test",
                          model_id=f"synthetic:{m}")  # fmt: skip
            total = 0.0
            for i, spec in enumerate(layers):
                v = layer_ms(spec, scale) * (1 + 0.02 * rng.standard_normal())
                total += v
                st = Stats(median=v, mean=v, std=0.0, iqr=0.0, ci_low=v * 0.98, ci_high=v * 1.02, n=10)
                extra = {"op": spec.op, "stop_reason": "max_repeats" if (m == 0 and i == 1) else "ci"}
                store.add(rec(scope="layer", metric="latency_ms", value=v, stats=st, layer_key=spec.key(),
                              layer_name=f"l{i}", layer_index=i, extra=extra))  # fmt: skip
            whole = 0.3 + 1.1 * total
            st = Stats(
                median=whole, mean=whole, std=0.0, iqr=0.0, ci_low=whole * 0.99, ci_high=whole * 1.01, n=20
            )
            extra = {"stop_reason": "ci"}
            if m == 0 and device == "cpu-a":
                extra["flags"] = ["thermal throttling seen during the run"]
            store.add(rec(scope="model", metric="latency_ms", value=whole, stats=st, extra=extra))
            store.add(rec(scope="model", metric="peak_memory_bytes", value=2e6 * scale, source="child-vmhwm"))
            if device == "cpu-b":
                store.add(rec(scope="model", metric="energy_mj", value=5.0, source="rapl-counter"))
    return store


def trial(number: int, objective: float | None, feasible: bool, lat: float, eval_s: float = 1.0) -> Trial:
    return Trial(
        number=number,
        config={"x": number},
        searcher="s",
        state="complete" if objective is not None else "infeasible",
        objective=objective,
        measured_costs={"latency_ms": lat},
        feasible=feasible,
        eval_time_s=eval_s,
        wall_time_s=0.01,
    )


def history(searcher: str, seed: int, rows: list[tuple[float | None, bool, float]]) -> History:
    ts = [trial(i, o, f, c) for i, (o, f, c) in enumerate(rows)]
    for t in ts:
        t.searcher = searcher
    return History(
        ts, {"searcher": searcher, "seed": seed, "objective": "toy", "constraints": ["latency_ms<=2"]}
    )
