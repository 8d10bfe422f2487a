"""Sum of per-layer latencies vs the measured whole-model latency, per backend.

A lookup-table cost model predicts a network as the sum of its layers; this shows how far that sum is from
the real whole-model time on this machine (ratio = sum / whole). For onnxruntime it also shows the sum of
the per-kernel times onnxruntime's own profiler reports inside the model (fusions included).

    .venv/bin/python benchmarks/profile_sum_vs_model.py [--models mobilenet_v2 resnet18] [--store bench.db]

Results go to the store with the device fingerprint (a rerun reuses them; --force re-measures).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import hwnas.spaces  # noqa: F401  (registers the mbv2: / nb201: model-name families)
from hwnas.device_config import load_device
from hwnas.graph.models import resolve_model
from hwnas.profilers.fingerprint import cpu_model
from hwnas.profilers.registry import get_profiler
from hwnas.profilers.report import model_summary
from hwnas.store import SQLiteStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet18"])
    ap.add_argument("--devices", nargs="+", default=["local-cpu", "local-cpu-torch"])
    ap.add_argument("--store", type=Path, default=None, help="default: a temporary file")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process CPU time, steadier on a busy shared machine")  # fmt: skip
    args = ap.parse_args()
    store_path = args.store or Path(tempfile.mkdtemp(prefix="hwnas-bench-")) / "bench.db"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"# {cpu_model()}, {os.cpu_count()} logical cores, load average {load} (other work skews whole-model"
    )
    print(f"# times more than short isolated layers), {args.clock} clock, store {store_path}")
    header = (f"{'model':<14} {'device':<16} {'backend':<16} {'layers':>6} {'whole ms':>9} "
              f"{'sum iso ms':>10} {'iso/whole':>9} {'sum in-model ms':>15} {'in-model/whole':>14} "
              f"{'secs':>6}")  # fmt: skip
    print(header)
    with SQLiteStore(store_path) as store:
        for name in args.models:
            model = resolve_model(name)
            for dev in args.devices:
                cfg = load_device(dev)
                prof = get_profiler(cfg, threads=args.threads, clock=args.clock)
                res = prof.profile(model, store, memory=False, force=args.force)
                key = dict(device=cfg.name, model_id=model.model_id, fingerprint_id=res.fingerprint_id,
                           batch_size=res.batch_size)  # fmt: skip
                (s,) = model_summary(store, **key)
                whole = s["latency_ms"]
                iso = s.get("sum_layers_latency_ms", float("nan"))
                inm = s.get("sum_layers_in_model_latency_ms", float("nan"))
                print(f"{name:<14} {cfg.name:<16} {prof.backend:<16} {s.get('layers_measured', 0):>6} "
                      f"{whole:>9.3f} {iso:>10.3f} {iso / whole:>9.3f} {inm:>15.3f} {inm / whole:>14.3f} "
                      f"{res.elapsed_s:>6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
