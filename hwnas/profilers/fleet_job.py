"""One device's share of a fleet profile (``hwnas profile --devices``): runs on the node owning the device.

It profiles into a scratch store on that node and returns plain data (records, fingerprints, layer specs)
for the driver to write into the one store (:mod:`hwnas.distributed.fleet`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def profile_job(device: str, model: str, options: dict[str, Any]) -> dict[str, Any]:
    from hwnas.device_config import load_device
    from hwnas.graph.models import resolve_model
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    config = load_device(device)
    profiler = get_profiler(config, threads=options.get("threads"), clock=options.get("clock", "wall"))
    resolved = resolve_model(model, None, batch_size=options.get("batch_size") or config.batch_size)
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "scratch.db")
        try:
            res = profiler.profile(
                resolved,
                store,
                force=True,
                per_layer=options.get("per_layer", True),
                whole_model=True,
                memory=options.get("memory", True),
            )
            ms = store.query()
            fps = [store.get_fingerprint(i) for i in sorted({m.fingerprint_id for m in ms})]
            specs = store.get_layer_specs()
        finally:
            store.close()
    return {
        "device": device,
        "measurements": [m.to_dict() for m in ms],
        "fingerprints": [f for f in fps if f is not None],
        "layer_specs": specs,
        "notes": list(res.notes) + list(res.failures),
    }
