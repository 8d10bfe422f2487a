"""Figures and a Markdown summary from a `tools/gpu_check.sh` output folder (its SQLite store + JSON).

usage: python tools/gpu_figures.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _fmt(v: object, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def main(out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas.store import SQLiteStore

    lines = [f"# nvidia-gpu check, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    with SQLiteStore(out / "gpu.db") as store:
        recs = store.query()
        fps = {r.fingerprint_id for r in recs}
        for fid in sorted(fps):
            fp = store.get_fingerprint(fid) or {}
            if "gpu_name" in fp:
                lines.append(f"- GPU {fp.get('gpu_name')} ({fp.get('gpu_uuid')}), driver {fp.get('driver')}, "
                             f"compute capability {fp.get('compute_capability')}, energy counter "
                             f"{fp.get('energy_counter')}, versions {fp.get('versions')}")
    models = sorted({(r.model_id, r.mode, r.batch_size) for r in recs if r.scope == "model"
                     and not r.model_id.startswith("hyperpower-cnn")})
    lines += ["", "| model | mode | batch | latency ms (median) | avg power W | energy/inf mJ (counter) | "
              "energy/inf mJ (integral) | counter vs integral | dynamic mJ/inf | idle W | peak alloc MB | "
              "SM/mem MHz | temp C | flagged |", "|" + "---|" * 14]
    for mid, mode, batch in models:
        got = {r.metric: r for r in recs if r.scope == "model" and (r.model_id, r.mode, r.batch_size)
               == (mid, mode, batch)}
        lat, en, pw, mem = (got.get(k) for k in ("latency_ms", "energy_mj", "power_mw", "peak_memory_bytes"))
        e = en.extra if en else {}
        n = e.get("iterations") or 1
        dev = e.get("device", {})
        lines.append("| " + " | ".join([
            mid, mode, str(batch), _fmt(lat.value if lat else None),
            _fmt(pw.value / 1e3 if pw else None),
            _fmt(e["counter_mj"] / n if e.get("counter_mj") else None),
            _fmt(e["integral_mj"] / n if e.get("integral_mj") else None),
            _fmt(None if e.get("counter_disagreement") is None else f"{e['counter_disagreement']*100:.2f} %"),
            _fmt(e.get("per_iteration_dynamic_mj")),
            _fmt(e["idle_power_mw"] / 1e3 if e.get("idle_power_mw") else None),
            _fmt(mem.value / 2**20 if mem else None),
            f"{dev.get('sm_mhz')}/{dev.get('mem_mhz')}", _fmt(dev.get("temperature_c")),
            _fmt(e.get("flagged")),
        ]) + " |")
        layers = sorted((r for r in recs if r.scope == "layer" and r.metric == "latency_ms"
                         and r.model_id == mid and r.mode == mode and r.batch_size == batch),
                        key=lambda r: r.layer_index)
        if layers:
            fig, ax = plt.subplots(figsize=(12, 4))
            ax.bar(range(len(layers)), [r.value for r in layers])
            ax.set_xlabel("layer index")
            ax.set_ylabel("isolated latency, ms (CUDA events)")
            total = sum(r.value for r in layers)
            ax.set_title(f"{mid} {mode} b{batch}: sum of {len(layers)} layers {total:.3f} ms, whole model "
                         f"{lat.value if lat else float('nan'):.3f} ms")
            fig.tight_layout()
            name = f"layers_{mid.replace(':', '_')}_{mode}_b{batch}.png"
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
            lines.append(f"\n![{name}]({name})\n")
    hist = out / "search_history.json"
    if hist.exists():
        data = json.loads(hist.read_text())
        trials = data.get("trials", data if isinstance(data, list) else [])
        pts = [(t["measured_costs"].get("power_mw", float("nan")) / 1e3, t.get("objective")) for t in trials
               if t.get("measured_costs") and t.get("objective") is not None]
        if pts:
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.scatter([p for p, _ in pts], [o for _, o in pts])
            ax.set_xlabel("measured power, W (NVML)")
            ax.set_ylabel("validation error")
            search = json.loads((out / "search_hyperpower.json").read_text())
            for c in search.get("constraints", []):
                if c.startswith("power_mw<="):
                    ax.axvline(float(c.split("<=")[1]) / 1e3, color="r", ls="--", label="budget")
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / "hyperpower_power.png", dpi=110)
            plt.close(fig)
            lines += ["", f"HyperPower: {len(pts)} trials, constraints {search.get('constraints')}, "
                      f"violations {search.get('violations')}, best {search.get('best')}",
                      "", "![hyperpower_power.png](hyperpower_power.png)"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_check_out")))
