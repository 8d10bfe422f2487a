"""What ``hwnas build-predictor`` runs: a kernel dataset for one device, sampled adaptively, then a fitted
per-kernel predictor written to one JSON file.

Steps (each kernel is written to the store as soon as it is timed, so every step resumes):

1. **initial design**: ``initial_fraction`` x ``samples`` kernels, space-filling per kind
   (:func:`hwnas.profilers.kernel_dataset.initial_design`);
2. **adaptive rounds** (nn-Meter / LitePred): fit the predictor, take its out-of-fold relative error per
   kernel, add half of the round's samples near the worst-predicted kernels and half as fresh space-filling
   samples in the kinds with the highest mean error; until the sample budget (kernels in the store for
   this device set-up) or the time budget (wall clock of this run's kernel profiling) is used up;
3. **final fit** on every kernel of the set-up (QA-flagged records left out);
4. **overhead**: ``calibration_models`` whole networks of the MobileNetV2 and NAS-Bench-201 spaces (never
   the torchvision CNNs a benchmark judges) timed whole on the same set-up, for the predictor's
   per-backend overhead (``model = b * sum(units) + c_unit * n_units + c_0``) and model-level interval;
5. **export** to ``out`` (``KernelPredictor.save``), with what was built recorded under ``meta``.

The predictor is ``hwnas.cost_models.kernel_predictor.KernelPredictor`` unless ``predictor_factory`` gives
another estimator with ``fit(df)``, ``oof_errors(df)``, ``save(path, meta)`` (and ``fit_overhead`` for
step 4).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import InputError

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(text: str | float | int | None, option: str = "--time-budget") -> float | None:
    """``"30m"``, ``"1h30m"``, ``"90s"``, ``"45"`` (seconds) -> seconds; None/``"none"`` -> no limit."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        if raw in ("", "none", "inf", "unlimited"):
            return None
        m = _DURATION.fullmatch(raw)
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            value = float(raw)
        elif m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            value = 3600 * h + 60 * mi + s
        else:
            raise InputError(f"{option} {text!r}: not a duration",
                             hint="e.g. 30m, 1h30m, 90s or a number of seconds")  # fmt: skip
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{option} {text!r}: a duration must be positive", hint="e.g. 30m")
    return value


@dataclass
class BuildSpec:
    """What to build: device, budgets, store, output."""

    device: str
    out: Path
    samples: int = 2000
    time_budget_s: float | None = 1800.0
    initial_fraction: float = 0.5
    store_path: Path | None = None
    clock: str = "wall"  # resolved by the caller ("auto" is the CLI's)
    threads: int = 1
    rounds: int = 4
    seed: int = 0
    calibration_models: int = 10
    predictor_params: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if int(self.samples) < 32:
            raise InputError(f"--samples {self.samples}: too few for a predictor of every kind",
                             hint="at least 32 (the issue's budget is <= 2000)")  # fmt: skip
        if not 0.05 <= float(self.initial_fraction) <= 1.0:
            raise InputError(f"--initial-fraction {self.initial_fraction}: expected a number in [0.05, 1]",
                             hint="e.g. --initial-fraction 0.5")  # fmt: skip
        if int(self.rounds) < 0:
            raise InputError(f"--rounds {self.rounds}: expected >= 0")
        if int(self.calibration_models) and int(self.calibration_models) < 4:
            raise InputError(f"--calibration-models {self.calibration_models}: the overhead fit needs >= 4",
                             hint="or 0 to skip it (the model is then the sum of its units)")  # fmt: skip
        if self.clock not in ("wall", "cpu"):
            raise InputError(f"clock {self.clock!r}: expected wall or cpu")


@dataclass
class BuildResult:
    device: str
    fingerprint_id: str
    store: str
    out: str
    clock: str
    samples_budget: int
    samples_total: int = 0
    measured: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    flagged: int = 0
    remeasured: int = 0
    fitted_on: int = 0
    profiling_wall_s: float = 0.0
    profiling_cpu_s: float = 0.0
    fit_cpu_s: float = 0.0
    elapsed_s: float = 0.0
    stop_reason: str = ""
    rounds: list[dict[str, Any]] = field(default_factory=list)
    per_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    oof_mape_pct: float | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    load_avg: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str, int, int], None]  # (description, done, total)


def _default_factory(params: dict[str, Any]) -> Callable[[], Any]:
    def make() -> Any:
        try:
            from hwnas.cost_models.kernel_predictor import KernelPredictor
        except ModuleNotFoundError as exc:
            raise InputError("no kernel predictor estimator: hwnas.cost_models.kernel_predictor is missing",
                             hint="the kernel dataset is in the store; rerun once it is installed (resumes)"
                             ) from exc  # fmt: skip
        return KernelPredictor(**params)

    return make


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _per_kind(df: Any, err: np.ndarray) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind, idx in df.groupby("kind").indices.items():
        e = err[idx]
        out[str(kind)] = {"n": int(len(idx)), "oof_mape_pct": round(float(100 * np.mean(e)), 2),
                          "within_10pct": round(float(np.mean(e <= 0.10)), 3)}  # fmt: skip
    return out


def adaptive_candidates(df: Any, err: np.ndarray, n: int, *, seed: int, salt: int,
                        exclude: set[str]) -> list[Any]:  # fmt: skip
    """``n`` new kernels: half near the rows with the highest out-of-fold error (two neighbours each), the
    rest fresh space-filling samples in kinds weighted by their mean error."""
    from hwnas.graph.kernels import KernelConfig
    from hwnas.profilers.kernel_dataset import allocate, fresh_samples, neighbours

    rng = np.random.default_rng([seed, salt])
    ex = set(exclude)
    near: list[KernelConfig] = []
    want_near = n // 2
    for i in np.argsort(-np.asarray(err))[: max(1, math.ceil(want_near / 2))]:
        if len(near) >= want_near:
            break
        got = neighbours(KernelConfig.from_key(df["key"].iloc[int(i)]), 2, rng, exclude=ex)
        ex.update(c.key() for c in got)
        near.extend(got)
    near = near[:want_near]
    kinds = df.groupby("kind").indices
    weights = {str(k): float(np.mean(err[idx])) + 1e-6 for k, idx in kinds.items()}
    fresh = fresh_samples(allocate(n - len(near), weights, minimum=0), seed, salt, exclude=ex)
    return near + fresh


def calibration_networks(n: int, seed: int = 0) -> list[str]:
    """Model names of ``n`` calibration networks: MobileNetV2-space points at 128-224 px and widths 0.5-1,
    and NAS-Bench-201 cells (ResNet-like) at 32 px, alternating; deterministic in ``seed``."""
    from hwnas.spaces.mbv2 import MBV2Space
    from hwnas.spaces.nb201 import OPS

    rng = np.random.default_rng([seed, 26])
    names: list[str] = []
    for i in range(n):
        if i % 3 == 2:
            edges = [str(rng.choice([op for op in OPS if op != "none"])) for _ in range(6)]
            names.append("nb201:|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*edges))
        else:
            res = int(rng.choice([128, 160, 192, 224]))
            width = float(rng.choice([0.5, 0.75, 1.0]))
            space = MBV2Space(resolution=res, width=width)
            names.append(f"mbv2@{res}w{width:g}:{space.sample(rng)}")
    return names


def _calibrate(spec: BuildSpec, predictor: Any, store: Any, kp: Any, res: BuildResult,
               progress: Progress | None) -> None:  # fmt: skip
    """Time ``spec.calibration_models`` whole networks on the set-up and fit the predictor's overhead."""
    import hwnas.spaces  # noqa: F401  (registers mbv2: / nb201:)
    from hwnas.device_config import load_device
    from hwnas.graph.models import resolve_model
    from hwnas.profilers.qa import QAStore
    from hwnas.profilers.registry import get_profiler

    names = calibration_networks(spec.calibration_models, spec.seed)
    config = load_device(spec.device)
    prof = get_profiler(config, threads=spec.threads, clock=spec.clock)
    qa = QAStore(store, clock=spec.clock, target_ci_rel=config.repeat.target_ci_rel)
    nets, measured, ids = [], [], []
    t0 = time.perf_counter()
    for i, name in enumerate(names, 1):
        model = resolve_model(name, None, batch_size=1)
        out = prof.profile(model, qa, per_layer=False, whole_model=True, memory=False)
        rec = store.query(fingerprint_id=out.fingerprint_id, model_id=model.model_id, scope="model",
                          metric="latency_ms", mode="inference")  # fmt: skip
        if rec:
            nets.append(model.spec.layers)
            measured.append(float(rec[-1].value))
            ids.append(model.model_id)
        else:
            res.failures.extend(out.failures)
        if progress is not None:
            progress(f"overhead: whole network {i}/{len(names)}", i, len(names))
    res.calibration = {"networks": ids, "measured_ms": [round(v, 4) for v in measured],
                       "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    if len(measured) < 4:
        res.notes.append(f"overhead not fitted: {len(measured)} of {len(names)} calibration networks timed")
        return
    predictor.fit_overhead(nets, measured, ids)
    oh = getattr(predictor, "overhead_", None) or {}
    res.calibration.update({k: oh[k] for k in ("scale", "per_unit_ms", "constant_ms", "loo_mape_pct")
                            if k in oh})  # fmt: skip


def build_predictor(spec: BuildSpec, *, progress: Progress | None = None,
                    predictor_factory: Callable[[], Any] | None = None,
                    on_phase: Callable[[str], None] | None = None) -> BuildResult:  # fmt: skip
    """Build the kernel dataset of ``spec.device`` (resuming from the store) and write the predictor."""
    from hwnas.device_config import load_device
    from hwnas.io import check_outputs
    from hwnas.profilers.kernel_dataset import (
        FIT_EXCLUDED_FLAGS,
        KernelProfiler,
        initial_design,
        load_kernel_dataset,
        measured_keys,
    )
    from hwnas.store import SQLiteStore

    spec.check()
    check_outputs({"--out": Path(spec.out)}, {"--store": spec.store_path} if spec.store_path else {})
    config = load_device(spec.device)
    make = predictor_factory or _default_factory(spec.predictor_params)
    t_start = time.perf_counter()
    deadline = None if spec.time_budget_s is None else time.monotonic() + float(spec.time_budget_s)
    phase = on_phase or (lambda _text: None)

    kp = KernelProfiler(config, clock=spec.clock, threads=spec.threads)
    fp = kp.fingerprint_id()
    with SQLiteStore(spec.store_path) as store:
        res = BuildResult(config.name, fp, str(store.path), str(spec.out), spec.clock, int(spec.samples))
        res.load_avg["start_1m"] = _load()
        have = measured_keys(store, fp)
        done = [min(len(have), spec.samples)]

        def tick(_i: int, _n: int, cfg: Any, skipped: bool) -> None:
            if not skipped:
                done[0] += 1
            if progress is not None:
                progress(f"{cfg.kind} {'(stored)' if skipped else ''}".strip(), done[0], spec.samples)

        def run(cfgs: list[Any]) -> Any:
            todo = [c for c in cfgs if c.key() not in have][: max(0, spec.samples - len(have))]
            out = kp.measure(todo, store, progress=tick, deadline=deadline)
            res.measured += len(out.measured)
            res.failures.extend(out.failures)
            res.flagged += out.flagged
            res.remeasured += out.remeasured
            res.profiling_wall_s += out.elapsed_s
            res.profiling_cpu_s += out.cpu_s
            have.update(c.key() for c in out.measured)
            if out.stopped:
                res.stop_reason = out.stopped
            return out

        n_init = max(16, int(round(spec.samples * spec.initial_fraction)))
        phase(f"initial design: {n_init} kernels ({len(have)} already stored for fingerprint {fp})")
        design = initial_design(n_init, spec.seed)
        res.skipped += sum(1 for c in design if c.key() in have)
        run(design)

        def fit() -> tuple[Any, Any, np.ndarray]:
            df = load_kernel_dataset(store, fp)
            usable = df[df["usable"]].reset_index(drop=True)
            if len(usable) >= max(16, len(df) // 4):
                df = usable
            else:  # a machine that flags most records (steal on a VM): fit them all, and say so
                note = (f"fitted on all {len(df)} kernels: only {len(usable)} are free of QA flags "
                        f"{sorted(FIT_EXCLUDED_FLAGS)}")  # fmt: skip
                if note not in res.notes:
                    res.notes.append(note)
            c0 = time.process_time()
            pred = make().fit(df)
            err = np.asarray(pred.oof_errors(df), float)
            res.fit_cpu_s += time.process_time() - c0
            return df, pred, err

        for r in range(1, spec.rounds + 1):
            left = spec.samples - len(have)
            if left <= 0:
                res.stop_reason = res.stop_reason or "sample budget"
                break
            if deadline is not None and time.monotonic() >= deadline:
                res.stop_reason = "time budget"
                break
            df, _, err = fit()
            per_round = math.ceil((spec.samples - n_init) / max(spec.rounds, 1))
            n = min(left, max(per_round, 1))
            cands = adaptive_candidates(df, err, n, seed=spec.seed, salt=r, exclude=set(have))
            phase(f"round {r}: out-of-fold error {100 * float(np.mean(err)):.1f} % on {len(df)} kernels; "
                  f"adding {len(cands)}")  # fmt: skip
            before = res.measured
            run(cands)
            res.rounds.append({"round": r, "kernels_before": int(len(df)),
                               "oof_mape_pct": round(float(100 * np.mean(err)), 2),
                               "per_kind": _per_kind(df, err), "added": res.measured - before})  # fmt: skip
            if res.measured == before:
                res.stop_reason = res.stop_reason or "no new kernels"
                break
        if not res.stop_reason:
            res.stop_reason = "sample budget" if len(have) >= spec.samples else "rounds done"

        if not have:
            why = "every kernel failed" if res.failures else f"time budget {spec.time_budget_s} s spent"
            raise InputError(f"no kernel measured for {config.name}: {why}",
                             hint="; ".join(res.failures[:3]) or "raise --time-budget")  # fmt: skip
        phase("final fit")
        df, pred, err = fit()
        res.fitted_on = int(len(df))
        res.samples_total = len(measured_keys(store, fp))
        res.per_kind = _per_kind(df, err)
        res.oof_mape_pct = round(float(100 * np.mean(err)), 2)
        if spec.calibration_models:
            phase(f"overhead: {spec.calibration_models} whole networks")
            _calibrate(spec, pred, store, kp, res, progress)
        res.load_avg["end_1m"] = _load()
        res.elapsed_s = round(time.perf_counter() - t_start, 1)
        meta = {"device": config.name, "backend": config.backend, "fingerprint_id": fp, "clock": spec.clock,
                "threads": spec.threads, "samples": res.samples_total, "fitted_on": res.fitted_on,
                "profiling_wall_s": round(res.profiling_wall_s, 1),
                "profiling_cpu_s": round(res.profiling_cpu_s, 1), "load_avg": res.load_avg,
                "oof_mape_pct": res.oof_mape_pct, "rounds": len(res.rounds),
                "built_by": "hwnas build-predictor"}  # fmt: skip
        pred.save(Path(spec.out), meta=meta)
    return res
