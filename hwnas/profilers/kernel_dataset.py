"""The kernel dataset of one device: kernels sampled over the configuration space, each profiled alone.

Why: a cost model fitted on the layers of one search space answers confidently and wrongly outside it
(issue 26: ResNet-18 predicted 18x low from MobileNetV2-space layers). nn-Meter and LitePred instead sample
each kernel kind over the configurations real CNNs use and fit one predictor per kind; this module builds
that data set.

- :func:`initial_design`: a space-filling design per kind (scrambled Sobol in the unit cube, mapped through
  :data:`hwnas.graph.kernels.SAMPLING_RANGES`: log-scale for channels and spatial size, rounded to values real
  nets use; points outside the joint limits are rejected), the budget split over kinds by :func:`allocate`.
- :func:`neighbours` / :func:`fresh_samples`: where adaptive rounds add samples (near the worst-predicted
  configurations, and in the worst-predicted kinds).
- :class:`KernelProfiler`: each kernel as its own tiny model (``model_id`` ``kernel:<key>``), timed through
  the backend's own per-unit path (``Profiler.profile(units="fused")``: same builder, runner, fingerprint and
  records as ``hwnas profile --units fused``) with measurement QA (:mod:`hwnas.profilers.qa`), written to the
  store as each finishes. Kernels already in the store for the fingerprint are not measured again;
  an interrupt keeps every finished kernel.
- :func:`load_kernel_dataset`: the store's kernels of one fingerprint as a DataFrame.

DataFrame columns (one row per kernel): ``kind``, ``key``, every config field of
:class:`~hwnas.graph.kernels.KernelConfig` (0 where the kind has none), the analytic features of
``KernelConfig.features()`` prefixed ``f_`` (``f_macs``, ``f_flops``, ``f_input_bytes``, ``f_output_bytes``,
``f_weight_bytes``, ``f_bytes``, ``f_params``, ``f_out_hw``), ``latency_ms`` (median), ``ci_low_ms``,
``ci_high_ms``, ``min_ms`` (the fastest sample: contention only adds time), ``n_samples``, ``body_ms``
(the unit's own kernels, without NCHWc reorders at its ends and the session call; NaN where the runner
cannot split), ``flagged`` (QA), ``qa_flags`` (comma-joined), ``usable`` (no flag of
:data:`FIT_EXCLUDED_FLAGS`), ``n_units`` (units the backend split the kernel into: 1 on onnxruntime; the
latency columns sum them), ``load_avg_1m``, ``fingerprint_id``, ``created_at``.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from hwnas.device_config import DeviceConfig, RepeatPolicy
from hwnas.errors import InputError
from hwnas.graph.kernels import (
    KERNEL_KINDS,
    SAMPLING_RANGES,
    FieldRange,
    KernelConfig,
    kernel_layers,
    out_of_range,
    snap,
)
from hwnas.graph.layer import ModelSpec
from hwnas.graph.models import ResolvedModel

MODEL_PREFIX = "kernel:"
_CONFIG_FIELDS = tuple(f for f in KernelConfig.__dataclass_fields__ if f != "kind")
MODE = "inference"

#: Share of the initial design per kind: more for kinds with more fields and more of a CNN's time.
KIND_WEIGHTS: dict[str, float] = {
    "conv": 0.26, "conv_add": 0.09, "grouped_conv": 0.07, "dwconv": 0.15, "maxpool": 0.03, "avgpool": 0.03,
    "global_pool": 0.03, "se": 0.08, "linear": 0.04, "add": 0.04, "concat": 0.05, "act": 0.06, "bn": 0.03,
    "transpose": 0.02, "reshape": 0.02,
}  # fmt: skip
MIN_PER_KIND = 4

#: Repeat policy of one kernel in the data set: a tighter CI costs time the design needs for more kernels
#: (a kernel's own noise is a few % under load; the predictor's error across kernels is what matters).
DATASET_REPEAT = RepeatPolicy(warmup=3, min_repeats=7, max_repeats=40, target_ci_rel=0.05, max_seconds=0.3)
#: QA flags that leave a kernel out of fits: interference that biases a timing (another process holding the
#: CPU under the wall clock, steal, throttling, a frequency change) and a CI wider than twice the target.
#: ``drift`` alone is kept: it marks a re-measurement (the second try is what is stored) whose first try was
#: flagged, and a kernel's few-% noise is what the predictor's out-of-fold error already measures.
FIT_EXCLUDED_FLAGS = frozenset({"loaded", "steal", "throttled", "frequency_changed", "spread"})

# Fields that the mapping derives from others (cout = cin for depthwise and grouped convs, groups from a
# group width, the SE squeeze from a ratio) instead of sampling them directly.
_GROUP_WIDTHS = (4, 8, 16, 24, 32, 48, 64)


def allocate(n: int, weights: dict[str, float] | None = None, minimum: int = MIN_PER_KIND) -> dict[str, int]:
    """Split ``n`` samples over kinds in proportion to ``weights`` (largest remainders), at least
    ``minimum`` each where ``n`` allows."""
    w = {k: float(v) for k, v in (weights or KIND_WEIGHTS).items() if v > 0}
    if n <= 0 or not w:
        return {k: 0 for k in w}
    floor = minimum if n >= minimum * len(w) else 0
    rest = n - floor * len(w)
    total = sum(w.values())
    raw = {k: rest * v / total for k, v in w.items()}
    out = {k: floor + int(math.floor(r)) for k, r in raw.items()}
    left = n - sum(out.values())
    for k in sorted(raw, key=lambda k: raw[k] - math.floor(raw[k]), reverse=True)[:left]:
        out[k] += 1
    return out


def _dims(kind: str) -> list[str]:
    """The unit-cube dimensions of ``kind`` (sampled fields with more than one value, plus derived ones)."""
    dims = [f for f, r in SAMPLING_RANGES[kind].items() if not (r.values and len(r.values) == 1)]
    if kind in ("dwconv", "grouped_conv"):
        dims.remove("cout")
    if kind == "grouped_conv":
        dims[dims.index("groups")] = "group_width"
    if kind == "se":
        dims[dims.index("squeeze")] = "se_ratio"
    return dims


def _pick(r: FieldRange, u: float) -> int:
    if r.values:
        w = np.asarray(r.weights or [1.0] * len(r.values), dtype=float)
        idx = int(np.searchsorted(np.cumsum(w / w.sum()), min(max(u, 0.0), 1.0 - 1e-12), side="right"))
        return int(r.values[min(idx, len(r.values) - 1)])
    if r.log:
        v = math.exp(math.log(r.lo) + u * (math.log(r.hi + 0.999) - math.log(r.lo)))
    else:
        v = r.lo + u * (r.hi + 0.999 - r.lo)
    return min(max(snap(v, r.snap), r.lo), r.hi) if r.snap != "int" else min(max(int(v), r.lo), r.hi)


def config_from_unit(kind: str, u: Sequence[float]) -> KernelConfig | None:
    """Map one point of the unit cube (``len(_dims(kind))`` coordinates) to a config; None if outside the
    sampled region (rejected)."""
    ranges = SAMPLING_RANGES[kind]
    vals: dict[str, int] = {f: int(r.values[0]) for f, r in ranges.items() if r.values and len(r.values) == 1}
    derived: dict[str, float] = {}
    for name, x in zip(_dims(kind), u, strict=True):
        if name == "group_width":
            derived[name] = _GROUP_WIDTHS[min(int(x * len(_GROUP_WIDTHS)), len(_GROUP_WIDTHS) - 1)]
        elif name == "se_ratio":
            derived[name] = math.exp(math.log(1 / 32) + x * (math.log(1 / 2) - math.log(1 / 32)))
        else:
            vals[name] = _pick(ranges[name], float(x))
    if kind == "dwconv":
        vals["cout"] = vals["cin"]
    elif kind == "grouped_conv":
        gw = int(derived["group_width"])
        cin = max(2 * gw, int(round(vals["cin"] / gw)) * gw)
        vals.update(cin=cin, cout=cin, groups=cin // gw)
    elif kind == "se":
        vals["squeeze"] = max(4, int(round(vals["cin"] * derived["se_ratio"])))
    elif kind == "transpose":
        g = vals["groups"]
        step = math.lcm(8, g)
        vals["cin"] = max(step, int(round(vals["cin"] / step)) * step)
    try:
        cfg = KernelConfig(kind, **vals)
    except InputError:
        return None
    return None if out_of_range(cfg) else cfg


def _seed(kind: str, seed: int, salt: int = 0) -> int:
    return (zlib.crc32(kind.encode()) + 1_000_003 * int(seed) + 7919 * int(salt)) % (2**32)


def sample_kind(kind: str, n: int, seed: int = 0, *, salt: int = 0, exclude: Iterable[str] = ()) -> list[
        KernelConfig]:  # fmt: skip
    """``n`` distinct in-range configs of ``kind`` from a scrambled Sobol sequence (deterministic in
    ``seed`` and ``salt``; ``exclude`` keys are skipped). Fewer when the region holds fewer."""
    from scipy.stats import qmc

    if kind not in KERNEL_KINDS:
        raise InputError(f"unknown kernel kind {kind!r}", hint=f"one of {', '.join(KERNEL_KINDS)}")
    if n <= 0:
        return []
    d = len(_dims(kind))
    sobol = qmc.Sobol(d, scramble=True, seed=_seed(kind, seed, salt))
    seen, out = set(exclude), []
    drawn = 0
    while len(out) < n and drawn < 64 * n + 1024:
        m = max(1, int(2 ** math.ceil(math.log2(max(n - len(out), 1) * 2))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # balance needs powers of 2; rejection breaks it anyway
            pts = sobol.random(m)
        drawn += m
        for p in pts:
            cfg = config_from_unit(kind, p)
            if cfg is not None and cfg.key() not in seen:
                seen.add(cfg.key())
                out.append(cfg)
                if len(out) == n:
                    break
    return out


def initial_design(n: int, seed: int = 0, weights: dict[str, float] | None = None) -> list[KernelConfig]:
    """The space-filling initial design: ``n`` kernels over all kinds (:func:`allocate`), kinds interleaved
    so that an interrupted profile has some of every kind."""
    from hwnas.profilers.qa import interleave

    per = allocate(n, weights)
    return interleave([sample_kind(k, m, seed) for k, m in per.items()])


def fresh_samples(kind_counts: dict[str, int], seed: int, salt: int, exclude: Iterable[str] = ()) -> list[
        KernelConfig]:  # fmt: skip
    """New space-filling samples in the kinds given (another Sobol stream per ``salt``)."""
    ex = set(exclude)
    out: list[KernelConfig] = []
    for kind, m in kind_counts.items():
        got = sample_kind(kind, m, seed, salt=salt, exclude=ex)
        ex.update(c.key() for c in got)
        out.extend(got)
    return out


def neighbours(cfg: KernelConfig, n: int, rng: np.random.Generator, *, exclude: Iterable[str] = (),
               scale: float = 0.35, tries: int = 50) -> list[KernelConfig]:  # fmt: skip
    """Up to ``n`` distinct in-range configs near ``cfg``: each sampled field moved in log space
    (``exp(N(0, scale))``) and snapped, a choice field changed with probability 0.3."""
    ranges = SAMPLING_RANGES[cfg.kind]
    seen, out = {cfg.key(), *exclude}, []
    for _ in range(tries * max(n, 1)):
        if len(out) >= n:
            break
        vals = cfg.values()
        for name, r in ranges.items():
            if r.values:
                if len(r.values) > 1 and rng.random() < 0.3:
                    vals[name] = int(rng.choice(r.values))
            elif name in vals:
                v = vals[name] * math.exp(rng.normal(0.0, scale))
                vals[name] = min(max(snap(v, r.snap), r.lo), r.hi)
        if cfg.kind == "dwconv":
            vals["cout"] = vals["cin"]
        if cfg.kind == "grouped_conv":
            gw = max(1, cfg.cin // cfg.groups)
            cin = max(2 * gw, int(round(vals["cin"] / gw)) * gw)
            vals.update(cin=cin, cout=cin, groups=cin // gw)
        if cfg.kind == "se":
            vals["squeeze"] = max(4, int(round(vals["cin"] * cfg.squeeze / cfg.cin)))
        if cfg.kind == "transpose":
            step = math.lcm(8, vals["groups"])
            vals["cin"] = max(step, int(round(vals["cin"] / step)) * step)
        try:
            new = KernelConfig(cfg.kind, **vals)
        except InputError:
            continue
        if new.key() not in seen and not out_of_range(new):
            seen.add(new.key())
            out.append(new)
    return out


def kernel_model(cfg: KernelConfig) -> ResolvedModel:
    """One kernel as a model of its own layers (what the profiler's per-unit path times)."""
    layers = kernel_layers(cfg)
    shape = tuple(layers[0].input_shape)
    spec = ModelSpec(name=cfg.key(), input_shape=shape, layers=layers, source="kernel-dataset")
    return ResolvedModel(cfg.key(), MODEL_PREFIX + cfg.key(), None, None, shape, spec)


@dataclass
class MeasureResult:
    """What one :meth:`KernelProfiler.measure` call did."""

    measured: list[KernelConfig] = field(default_factory=list)
    skipped: int = 0  # already in the store for this fingerprint
    failures: list[str] = field(default_factory=list)
    flagged: int = 0
    remeasured: int = 0
    interrupted: bool = False
    stopped: str = ""  # "time budget" when ``deadline`` stopped it
    elapsed_s: float = 0.0
    cpu_s: float = 0.0


class KernelProfiler:
    """Profiles kernels alone on one device config, through the backend's per-unit path, with QA."""

    def __init__(self, config: DeviceConfig, *, clock: str = "wall", threads: int | None = None,
                 repeat: RepeatPolicy | None = None, remeasure: bool = True) -> None:  # fmt: skip
        """``repeat``: the repeat policy of each kernel (None: :data:`DATASET_REPEAT`)."""
        from hwnas.profilers.registry import get_profiler

        cfg = replace(config, repeat=repeat or DATASET_REPEAT)
        self.config = cfg
        self.profiler = get_profiler(cfg, threads=threads, clock=clock)
        self.clock = clock
        self.remeasure = remeasure

    def fingerprint_id(self) -> str:
        return self.profiler.fingerprint().id

    def measured_keys(self, store: Any) -> set[str]:
        """Kernel keys already in ``store`` for this device set-up."""
        return measured_keys(store, self.fingerprint_id())

    def _identities(self, cfg: KernelConfig) -> list[tuple[Any, ...]]:
        """Record identities of ``cfg``: one per unit the backend's fusion rules make of its layers (one
        on onnxruntime; conv, bn and act apart on an eager backend, summed by the loader)."""
        from hwnas.graph.fusion import fuse
        from hwnas.store.records import Measurement

        out = []
        for unit in fuse(kernel_layers(cfg), self.profiler.spec.fusion):
            m = Measurement(device=self.config.name, fingerprint_id=self.fingerprint_id(),
                            backend=self.profiler.backend, model_id=MODEL_PREFIX + cfg.key(), scope="unit",
                            metric="latency_ms", value=0.0, layer_key=unit.key(), layer_index=unit.indices[0],
                            mode=MODE, batch_size=cfg.batch)  # fmt: skip
            out.append(m.identity())
        return out

    def measure(self, cfgs: Sequence[KernelConfig], store: Any, *,
                progress: Callable[[int, int, KernelConfig, bool], None] | None = None,
                deadline: float | None = None) -> MeasureResult:  # fmt: skip
        """Profile each of ``cfgs`` not yet in ``store`` (in order), one store write per kernel.

        ``deadline`` (``time.monotonic()``) stops before a kernel that would start after it. KeyboardInterrupt
        propagates after ``MeasureResult.interrupted`` is set; every finished kernel is already stored.
        """
        from hwnas.profilers.qa import QAStore

        t0, c0 = time.perf_counter(), time.process_time()
        res = MeasureResult()
        qa = QAStore(store, clock=self.clock, target_ci_rel=self.config.repeat.target_ci_rel)
        try:
            for i, cfg in enumerate(cfgs, 1):
                if deadline is not None and time.monotonic() >= deadline:
                    res.stopped = "time budget"
                    break
                if all(store.has(i) for i in self._identities(cfg)):
                    res.skipped += 1
                    if progress is not None:
                        progress(i, len(cfgs), cfg, True)
                    continue
                self._one(cfg, qa, store, res)
                if progress is not None:
                    progress(i, len(cfgs), cfg, False)
        except KeyboardInterrupt:
            res.interrupted = True
            raise
        finally:
            res.elapsed_s = time.perf_counter() - t0
            res.cpu_s = time.process_time() - c0
        return res

    def _one(self, cfg: KernelConfig, qa: Any, store: Any, res: MeasureResult) -> None:
        model = kernel_model(cfg)
        run = dict(per_layer=True, whole_model=False, memory=False, units="fused")
        before = len(qa.flagged)
        out = self.profiler.profile(model, qa, **run)
        res.failures.extend(out.failures)
        if out.failures:
            return
        if len(qa.flagged) > before:
            res.flagged += 1
            if self.remeasure:  # as `hwnas profile`: delete what QA flagged and measure it once more
                redo = qa.flagged[before:]
                qa.remember(redo)
                del qa.flagged[before:]
                for m in redo:
                    store.delete(model_id=m.model_id, fingerprint_id=m.fingerprint_id, scope="unit",
                                 layer_key=m.layer_key)  # fmt: skip
                again = self.profiler.profile(model, qa, **run)
                res.failures.extend(again.failures)
                res.remeasured += 1
        res.measured.append(cfg)


def measured_keys(store: Any, fingerprint_id: str) -> set[str]:
    """Kernel keys with a latency record in ``store`` under ``fingerprint_id``."""
    recs = store.query(fingerprint_id=fingerprint_id, scope="unit", metric="latency_ms", mode=MODE)
    return {r.model_id[len(MODEL_PREFIX):] for r in recs if r.model_id.startswith(MODEL_PREFIX)}


def load_kernel_dataset(store: Any, fingerprint_id: str | None = None, *, device: str | None = None,
                        include_flagged: bool = True) -> pd.DataFrame:  # fmt: skip
    """The kernel records of one fingerprint (or of the newest fingerprint of ``device``) as a DataFrame
    (columns in the module docstring); ``include_flagged=False`` keeps the ``usable`` rows only.
    InputError when there are none."""
    filters: dict[str, Any] = {"scope": "unit", "metric": "latency_ms", "mode": MODE}
    if fingerprint_id is not None:
        filters["fingerprint_id"] = fingerprint_id
    if device is not None:
        filters["device"] = device
    recs = [r for r in store.query(**filters) if r.model_id.startswith(MODEL_PREFIX)]
    if fingerprint_id is None and recs:  # one set-up only: the most recently measured
        newest = max(recs, key=lambda r: r.created_at).fingerprint_id
        recs = [r for r in recs if r.fingerprint_id == newest]
    if not recs:
        where = fingerprint_id or device or "any device"
        raise InputError(f"the store holds no kernel records for {where}",
                         hint="build them with `hwnas build-predictor --device D`")  # fmt: skip
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in recs:
        groups.setdefault((r.fingerprint_id, r.model_id), []).append(r)
    rows = []
    for (fp, model_id), parts in groups.items():  # one kernel: the sum of the backend's units of it
        cfg = KernelConfig.from_key(model_id[len(MODEL_PREFIX) :])
        flags = sorted({f for r in parts for f in r.extra.get("qa", {}).get("flags", [])})
        body = 0.0
        for r in parts:
            split = (r.extra.get("readings") or {}).get("split") or {}
            run_ms = float(split.get("run_ms") or 0.0)
            body += r.value * float(split["body_ms"]) / run_ms if run_ms else math.nan
        loads = [r.extra.get("qa", {}).get("load_avg_1m") for r in parts]
        row: dict[str, Any] = {"kind": cfg.kind, "key": cfg.key()}
        row.update({name: getattr(cfg, name) for name in _CONFIG_FIELDS})
        row.update({f"f_{k}": v for k, v in cfg.features().items() if k not in cfg.values()})
        stats = [r.stats for r in parts]
        has = all(st is not None for st in stats)
        row.update(latency_ms=float(sum(r.value for r in parts)),
                   ci_low_ms=float(sum(st.ci_low for st in stats)) if has else math.nan,
                   ci_high_ms=float(sum(st.ci_high for st in stats)) if has else math.nan,
                   min_ms=float(sum(min(st.samples) for st in stats)) if has and all(
                       st.samples for st in stats) else math.nan,
                   n_samples=int(min(st.n for st in stats)) if has else 0, n_units=len(parts),
                   body_ms=body, flagged=bool(flags), qa_flags=",".join(flags),
                   usable=not FIT_EXCLUDED_FLAGS.intersection(flags),
                   load_avg_1m=max((v for v in loads if v is not None), default=None),
                   fingerprint_id=fp, created_at=max(r.created_at for r in parts))  # fmt: skip
        rows.append(row)
    df = pd.DataFrame(rows).sort_values(["kind", "key"]).reset_index(drop=True)
    if not include_flagged:
        df = df[df["usable"]].reset_index(drop=True)
    return df
