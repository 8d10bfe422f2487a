"""Tables built from stored records (data first; the CLI renders them, STYLE.md §2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwnas.graph.layer import LayerSpec
from hwnas.store.base import Store

LAYER_COLUMNS = [
    "mode", "layer_index", "layer_name", "op", "latency_ms", "ci_low_ms", "ci_high_ms", "iqr_ms", "n",
    "in_model_latency_ms", "macs", "params", "layer_key",
]  # fmt: skip


def layer_table(store: Store, *, device: str, model_id: str, fingerprint_id: str | None = None,
                batch_size: int | None = None, backend: str | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per (mode, layer): isolated latency with its CI, in-model latency where measured."""
    filters: dict[str, Any] = dict(device=device, model_id=model_id, fingerprint_id=fingerprint_id,
                                   batch_size=batch_size, backend=backend, scope="layer")  # fmt: skip
    recs = store.query(**filters)
    specs = store.get_layer_specs({r.layer_key for r in recs}, decode=LayerSpec.from_dict)
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for r in recs:
        row = rows.setdefault((r.mode, r.layer_index), {
            "mode": r.mode, "layer_index": r.layer_index, "layer_name": r.layer_name,
            "layer_key": r.layer_key, "op": r.layer_key.split("|", 1)[0], "latency_ms": np.nan,
            "ci_low_ms": np.nan, "ci_high_ms": np.nan, "iqr_ms": np.nan, "n": 0,
            "in_model_latency_ms": np.nan,
            "macs": getattr(specs.get(r.layer_key), "macs", np.nan),
            "params": getattr(specs.get(r.layer_key), "params", np.nan),
        })  # fmt: skip
        if r.metric == "latency_ms":
            row["latency_ms"] = r.value
            if r.stats is not None:
                row.update(
                    ci_low_ms=r.stats.ci_low, ci_high_ms=r.stats.ci_high, iqr_ms=r.stats.iqr, n=r.stats.n
                )
        elif r.metric == "in_model_latency_ms":
            row["in_model_latency_ms"] = r.value
    df = pd.DataFrame(list(rows.values()), columns=LAYER_COLUMNS)
    return df.sort_values(["mode", "layer_index"]).reset_index(drop=True)


def model_summary(store: Store, *, device: str, model_id: str, fingerprint_id: str | None = None,
                  batch_size: int | None = None,
                  backend: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Whole-model records plus the sums of per-layer and per-unit latencies, one dict per mode."""
    common: dict[str, Any] = dict(device=device, model_id=model_id, fingerprint_id=fingerprint_id,
                                  batch_size=batch_size, backend=backend)  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for r in store.query(**common, scope="model"):
        d = out.setdefault(r.mode, {"mode": r.mode})
        d[r.metric] = r.value
        if r.stats is not None:
            d[f"{r.metric}_ci"] = [r.stats.ci_low, r.stats.ci_high]
            d[f"{r.metric}_n"] = r.stats.n
        d[f"{r.metric}_source"] = r.source
    for r in store.query(**common, scope="layer"):
        d = out.setdefault(r.mode, {"mode": r.mode})
        if r.metric in ("latency_ms", "in_model_latency_ms"):
            d[f"sum_layers_{r.metric}"] = d.get(f"sum_layers_{r.metric}", 0.0) + r.value
            if r.metric == "latency_ms":
                d["layers_measured"] = d.get("layers_measured", 0) + 1
    for r in store.query(**common, scope="unit", metric="latency_ms"):  # fused units (units="fused")
        d = out.setdefault(r.mode, {"mode": r.mode})
        d["sum_units_latency_ms"] = d.get("sum_units_latency_ms", 0.0) + r.value
        d["units_measured"] = d.get("units_measured", 0) + 1
    return [out[m] for m in sorted(out)]
