"""Single-Path runtime model on this CPU: build the device table, then 100 random networks measured whole.

Thesis §5.3.2 (Pixel 1: RMSE 1.32 ms, 1.76 % mean error). Here: ``hwnas single-path table`` on a local
device (default local-cpu-torch, process CPU-time clock: the host is shared), then
``check_runtime_model`` on ``--n`` uniformly random architectures of the same space. Goal: mean error
<= 3 %. Prints the mean absolute and signed % error, RMSE (ms), the load average, and writes the table
and the per-architecture numbers to ``benchmarks/results/``.

    .venv/bin/python benchmarks/single_path_runtime_model.py [--device local-cpu-torch] [--n 100]
        [--resolution 32] [--width 0.25] [--table existing.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hwnas.profilers.timer import chain_timer, module_timer
from hwnas.searchers.single_path_table import (
    SinglePathTable,
    build_table,
    build_table_in_model,
    check_runtime_model,
    parse_arch,
)
from hwnas.spaces.mbv2 import MBV2Space
from hwnas.store import SQLiteStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="local-cpu-torch")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--clock", default="cpu")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved passes when building the table")
    ap.add_argument("--form", default="in-model", choices=("in-model", "isolated"))
    ap.add_argument("--check-repeats", type=int, default=3, help="interleaved passes over the N networks")
    ap.add_argument("--remeasure", type=int, default=10, help="re-measure this many archs: the noise floor")
    ap.add_argument("--table", type=Path, default=None, help="reuse a table instead of building one")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if a.out is None:
        suffix = "_inmodel" if a.form == "in-model" else ""
        a.out = Path(f"benchmarks/results/single_path_runtime_model{suffix}.json")
    torch.set_num_threads(1)
    space = MBV2Space(a.resolution, a.width, a.num_classes)
    tag = f"{a.device}_{a.resolution}w{a.width:g}" + ("_inmodel" if a.form == "in-model" else "")
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "s.db")
        timer = module_timer(a.device, store, clock=a.clock, prefix=f"bench-sp@{tag}")
        t0 = time.perf_counter()
        if a.table is not None:
            table = SinglePathTable.load(a.table)
        elif a.form == "in-model":
            tc = chain_timer(a.device, clock=a.clock)
            table = build_table_in_model(
                space,
                tc,
                device=a.device,
                repeats=a.repeats,
                info={"clock": a.clock, "fingerprint": tc.fingerprint},
            )
            table.save(a.out.parent / f"single_path_table_{tag}.json")
        else:
            table = build_table(
                space,
                timer,
                device=a.device,
                repeats=a.repeats,
                info={"clock": a.clock, "fingerprint": timer.fingerprint},
            )
            table.save(a.out.parent / f"single_path_table_{tag}.json")
        t_table = time.perf_counter() - t0
        load_table = os.getloadavg()
        chk = check_runtime_model(table, space, timer, n=a.n, seed=0, repeats=a.check_repeats)
        load_check = os.getloadavg()
        # The same networks measured a second time: how far two measurements of one network disagree here.
        again = [
            timer(space.build(arch).eval(), (1, *space.input_shape), f"again-{j}")
            for j, arch in enumerate(chk.archs[: a.remeasure])
        ]
        first = np.asarray(chk.measured_ms[: a.remeasure])
        noise_pct = (
            float(np.mean(np.abs(np.asarray(again) - first) / first * 100)) if a.remeasure else float("nan")
        )
    s = chk.summary()
    print(
        f"# form {a.form}, table repeats {a.repeats}, check repeats {a.check_repeats}; "
        f"device {a.device}, clock {a.clock}, space {a.resolution}px width {a.width}; table built in "
        f"{t_table:.0f} s (load {load_table[0]:.1f}), {a.n} networks measured (load {load_check[0]:.1f})"
    )
    print(
        f"table: fixed {table.fixed_ms:.3f} ms {table.fixed_parts_ms or ''}; "
        f"all-k3e3 {table.predict(parse_arch('k3e3', space)):.3f} / "
        f"all-k5e6 {table.predict(parse_arch('k5e6', space)):.3f} ms"
    )
    print(
        f"runtime model on {s['n']} random networks: mean |error| {s['mean_abs_error_pct']:.2f} %, signed "
        f"{s['mean_signed_error_pct']:+.2f} %, max {s['max_abs_error_pct']:.2f} %, "
        f"RMSE {s['rmse_ms']:.3f} ms "
        f"(measured {s['measured_ms_range'][0]:.2f}-{s['measured_ms_range'][1]:.2f} ms)"
    )
    r = float(np.corrcoef(chk.measured_ms, chk.predicted_ms)[0, 1])
    print(f"predicted vs measured: Pearson r = {r:.3f}")
    print(f"noise floor: {a.remeasure} of the networks measured again differ by {noise_pct:.2f} % on average")
    print(f"goal mean error <= 3 %: {'met' if s['mean_abs_error_pct'] <= 3 else 'NOT met'}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "settings": {k: str(v) for k, v in vars(a).items()},
                "summary": {**s, "pearson_r": r},
                "remeasured_ms": again,
                "noise_floor_pct": noise_pct,
                "load_table": load_table,
                "load_check": load_check,
                "archs": chk.archs,
                "measured_ms": chk.measured_ms,
                "predicted_ms": chk.predicted_ms,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
