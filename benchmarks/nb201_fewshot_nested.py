"""Few-shot prediction for a new device, scored NESTED: leave one of the 13 NAS-Bench-201 devices out, choose
the method on the other 12 only, then score on the held-out one.

For each held-out device D and each protocol (random draws; the designed set of `suggest-samples`; a
designed half plus an adaptive half from `suggest-samples --given`), the configuration (method pool and
hyper-parameters, :func:`hwnas.cost_models.fewshot_nested.default_configs`) with the best mean Spearman ρ over
the OTHER devices — each predicted from references that exclude D — is scored on D. Printed beside it: the
plain (in-sample) figure of the configuration chosen on all 13 devices (the shipped selection), plain ridge
on the reference log-latencies and FLOPs. Splits: all devices; within a class (GPUs, CPUs, phones: the
references are the target's class); cross-class (references one class, targets the others). Intervals
(k = 10): coverage of the jackknife band of the chosen method on held-out cells of held-out devices,
uncalibrated and with a device-level calibration learned nested across devices.

    .venv/bin/python benchmarks/nb201_fewshot_nested.py [--ks 5,10,20,50] [--draws 6] [--quick]
        [--json benchmarks/results/nb201_fewshot_nested.json] [--write-selection]

CPU-bound numpy/NNLS; the wall and CPU (process) clocks and the load average are printed with the result.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # small matrices on a loaded 2-core VM: threaded BLAS is 25x slower

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import hwnas.plugins  # noqa: E402
from hwnas.cost_models import fewshot_design as fd  # noqa: E402
from hwnas.cost_models import fewshot_nested as fn  # noqa: E402
from hwnas.spaces.nb201_table import DEVICE_CLASSES, LATENCY_COLUMNS, load_table  # noqa: E402

hwnas.plugins.load()

CLASSES = {c: [f"lat_{d}_ms" for d in ds] for c, ds in DEVICE_CLASSES.items()}
SELECTION = Path(__file__).resolve().parents[1] / "hwnas" / "data" / "fewshot_selection.json"


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.0f} s, load {os.getloadavg()[0]:.1f}] {msg}", flush=True)


def make_study(table, protocol: str, k: int, draws: int, pool: np.ndarray) -> fn.Study:
    if protocol == "random":
        return fn.Study(table, fn.random_draws(table, k, draws, seed=k))
    if protocol == "designed":
        return fn.Study(
            table,
            np.zeros((draws, k), int),
            sampler=lambda feats, r, _m: fd.design_rows(feats, k, pool, "dopt", seed=r),
        )

    def adaptive(feats, r, measure):
        first = fd.design_rows(feats, k - k // 2, pool, "dopt", seed=r)
        more, _ = fd.next_rows(feats, first, measure(first), k // 2, pool)
        return np.concatenate([first, more])

    return fn.Study(table, np.zeros((draws, k), int), sampler=adaptive)


def nested_split(study, refs_for, targets, devices, configs, ridge=("ridge",)):
    """Per target: nested choice and its ρ, ridge's ρ (mean over draws)."""
    out = {}
    for d in targets:
        refs = refs_for(d, None)
        if refs is None:
            continue
        choice, _ = fn.nested_choice(study, d, refs_for, configs, devices)
        sc = study.scores(d, refs)
        out[d] = {
            "nested": float(sc.config_rho(choice).mean()),
            "nested_min_draw": float(sc.config_rho(choice).min()),
            "choice": list(choice),
            "ridge": float(sc.config_rho(ridge).mean()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="5,10,20,50")
    ap.add_argument("--draws", type=int, default=4, help="random draws per device at k <= 10 (halved above)")
    ap.add_argument("--design-seeds", type=int, default=2)
    ap.add_argument("--interval-draws", type=int, default=10)
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--quick", action="store_true", help="k = 10 only, 2 draws (a smoke run)")
    ap.add_argument("--json", default="benchmarks/results/nb201_fewshot_nested.json")
    ap.add_argument("--write-selection", action="store_true", help=f"write {SELECTION.name}")
    args = ap.parse_args()
    if args.quick:
        args.ks, args.draws, args.design_seeds, args.interval_draws = "10", 2, 1, 3
    ks = [int(k) for k in args.ks.split(",")]
    table = load_table()
    devices = list(LATENCY_COLUMNS)
    conn = table["connected"].to_numpy() == 1
    pool = np.flatnonzero(conn)
    configs = fn.default_configs()
    t0, c0 = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()
    res: dict = {"devices": devices, "configs": [list(c) for c in configs], "k": {}}
    flops = {
        d: float(
            stats.spearmanr(table["flops_cifar10_m"].to_numpy()[conn], table[d].to_numpy()[conn]).statistic
        )
        for d in devices
    }
    res["flops"] = flops
    all_refs = fn.split_refs("all", CLASSES, devices)
    studies: dict = {}
    for k in ks:
        draws = args.draws if k <= 10 else max(2, args.draws // 2)
        rk: dict = {}
        for protocol in ("random", "designed", "adaptive"):
            if protocol == "adaptive" and k != 10:
                continue
            n = (
                draws
                if protocol == "random"
                else (args.design_seeds if k <= 10 else max(1, args.design_seeds // 2))
            )
            st = make_study(table, protocol, k, n, pool)
            studies[(k, protocol)] = st
            per = nested_split(st, all_refs, devices, devices, configs)
            # plain (in-sample): the configuration best on all 13 devices, scored on them
            plain = {
                c: np.mean([st.scores(d, all_refs(d, None)).config_rho(c).mean() for d in devices])
                for c in configs
            }
            best = max(configs, key=lambda c: (plain[c], -len(c)))
            for d in devices:
                per[d]["plain"] = float(st.scores(d, all_refs(d, None)).config_rho(best).mean())
            rk[protocol] = {"per_device": per, "plain_choice": list(best)}
            v = [per[d]["nested"] for d in devices]
            log(
                f"k={k} {protocol}: nested mean {np.mean(v):.4f} worst {np.min(v):.4f}; plain "
                f"{np.mean([per[d]['plain'] for d in devices]):.4f} ({'+'.join(best)})",
                t0,
            )
        res["k"][k] = rk
    # ---- class splits (k = 10, random draws and designed)
    k10 = 10 if 10 in ks else ks[0]
    splits: dict = {}
    for protocol in ("random", "designed"):
        st = studies[(k10, protocol)]
        for cls in CLASSES:
            rf = fn.split_refs("within", CLASSES, devices)
            splits[f"{protocol}: within {cls}"] = nested_split(st, rf, CLASSES[cls], devices, configs)
        for src in CLASSES:
            for dst in CLASSES:
                if src == dst:
                    continue
                rf = fn.split_refs("cross", CLASSES, devices, source=src)
                splits[f"{protocol}: {src} -> {dst}"] = nested_split(st, rf, CLASSES[dst], devices, configs)
        log(f"class splits ({protocol}) done", t0)
    res["splits"] = splits
    # ---- intervals (k = 10): the shipped method, nested device-level calibration
    sel_method = res["k"][k10]["designed"]["plain_choice"]
    method = sel_method[0] if len(sel_method) == 1 else "ensemble"
    ist = fn.Study(table, fn.random_draws(table, k10, args.interval_draws, seed=99))
    outer = {d: fn.coverage_curves(ist, d, all_refs(d, None), method, args.level) for d in devices}
    one = int(np.flatnonzero(fn.COVERAGE_GRID == 1.0)[0])
    intervals: dict = {
        "method": method,
        "k": k10,
        "draws": args.interval_draws,
        "level": args.level,
        "per_device": {},
    }
    for d in devices:
        inner = [fn.coverage_curves(ist, e, all_refs(e, d), method, args.level)[0] for e in devices if e != d]
        c_d = fn.calibration_scale(inner, args.level)
        cov, lev = outer[d]
        gi = int(np.argmin(np.abs(fn.COVERAGE_GRID - c_d)))
        intervals["per_device"][d] = {
            "raw": float(cov[:, one].mean()),
            "scale": c_d,
            "calibrated": float(cov[:, gi].mean()),
            "supported_level": float(lev.mean()),
        }
    intervals["shipped_scale"] = fn.calibration_scale([outer[d][0] for d in devices], args.level)
    res["intervals"] = intervals
    log("intervals done", t0)
    res["meta"] = {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "load_start": load0,
        "load_end": os.getloadavg(),
        "machine": "2-core AMD EPYC VM, loaded",
    }
    report(res, ks)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    if args.write_selection:
        sel = {
            "candidates": res["k"][k10]["designed"]["plain_choice"],
            "design": "dopt",
            "interval_scale": intervals["shipped_scale"],
            "interval_level": args.level,
            "chosen_by": "benchmarks/nb201_fewshot_nested.py: best mean Spearman rho over the 13 devices of "
            f"the shipped table, each left out in turn (k={k10}, designed samples); its figure is the nested "
            "one in benchmarks/results/nb201_fewshot_nested.json",
        }
        SELECTION.write_text(json.dumps(sel, indent=1) + "\n")


def report(res: dict, ks: list[int]) -> None:
    devices = res["devices"]
    for k in ks:
        rk = res["k"][k]
        print(
            f"\nk = {k}: Spearman rho on the held-out device (connected cells); nested = chosen on the "
            "other devices; plain = chosen on all 13 (in-sample)"
        )
        head = f"{'device':22s} {'FLOPs':>6s} " + " ".join(
            f"{p[:4] + ' ' + s:>11s}" for p in rk for s in ("nest", "plain", "ridge")
        )
        print(head)
        for d in devices:
            row = f"{d:22s} {res['flops'][d]:6.3f} "
            row += " ".join(
                f"{rk[p]['per_device'][d][s]:11.3f}" for p in rk for s in ("nested", "plain", "ridge")
            )
            print(row)
        for p in rk:
            per = rk[p]["per_device"]
            for s in ("nested", "plain", "ridge"):
                v = [per[d][s] for d in devices]
                print(
                    f"  {p:9s} {s:7s} mean {np.mean(v):.4f} worst {np.min(v):.4f} "
                    f"({devices[int(np.argmin(v))]})"
                )
            cls = {c: np.mean([per[d]["nested"] - per[d]["ridge"] for d in ds]) for c, ds in CLASSES.items()}
            print(f"  {p:9s} nested - ridge by class: " + ", ".join(f"{c} {v:+.4f}" for c, v in cls.items()))
    print("\nclass splits (k = 10): nested mean rho vs ridge [worst target]")
    for name, per in res["splits"].items():
        if not per:
            continue
        a = [v["nested"] for v in per.values()]
        b = [v["ridge"] for v in per.values()]
        print(
            f"  {name:28s} nested {np.mean(a):.4f} [{np.min(a):.3f}] ridge {np.mean(b):.4f} [{np.min(b):.3f}]"
            f"  {'ahead' if np.mean(a) > np.mean(b) else 'BEHIND'}"
        )
    iv = res["intervals"]
    print(f"\nintervals (k = {iv['k']}, {iv['draws']} draws, method {iv['method']}, nominal {iv['level']}):")
    for d, v in iv["per_device"].items():
        print(
            f"  {d:22s} jackknife {v['raw']:.3f}  calibrated x{v['scale']:.2f} (nested) {v['calibrated']:.3f}"
        )
    raw = [v["raw"] for v in iv["per_device"].values()]
    cal = [v["calibrated"] for v in iv["per_device"].values()]
    print(
        f"  mean jackknife {np.mean(raw):.3f} (worst {np.min(raw):.3f}); "
        f"nested-calibrated {np.mean(cal):.3f} "
        f"(worst {np.min(cal):.3f}, best {np.max(cal):.3f}); scale on all 13: x{iv['shipped_scale']:.2f}"
    )
    m = res["meta"]
    print(
        f"\n{m['wall_s']:.0f} s wall, {m['cpu_s']:.0f} s CPU (process); load {m['load_start'][0]:.1f} -> "
        f"{m['load_end'][0]:.1f}; {m['machine']}"
    )


if __name__ == "__main__":
    main()
