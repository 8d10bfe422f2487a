"""The profiler: the job loop every backend shares, over a backend's builder and runner.

A profile is a list of jobs (one per distinct unit key and mode, one per whole-model metric and mode). A
unit is one layer, or with ``units="fused"`` one kernel the runtime executes (``hwnas.graph.fusion``).
Each job's records are written to the store as soon as it finishes, so an interrupted profile keeps what
it did; the next run skips every job whose records are already there (unless ``force``). Backends say how
to build and run things (``hwnas.profilers.backend``: Builder, Runner); nothing here knows a backend.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import HwnasError, InputError, MeasurementError
from hwnas.graph.fusion import Unit, fuse
from hwnas.profilers import allocator
from hwnas.profilers.backend import (
    Backend,
    RawTiming,
    fingerprint_for,
    get_backend,
    power_sampler_for,
    power_samplers,
)
from hwnas.profilers.timing import summarize
from hwnas.store.base import Store
from hwnas.store.records import Fingerprint, Measurement

log = logging.getLogger(__name__)

UNIT_CHOICES = ("layers", "fused")
MAX_COPIES = 64  # of one unit, for cold-weight isolated timing

@dataclass(frozen=True)
class ProgressEvent:
    """Sent after each job: ``done`` of ``total`` jobs, whether this one was skipped (already stored)."""

    done: int
    total: int
    description: str
    skipped: bool = False


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class ProfileResult:
    """What one ``profile`` call did; the numbers themselves are in the store (and in ``measured``)."""

    device: str
    backend: str
    model_id: str
    fingerprint_id: str
    batch_size: int
    threads: int
    measured: list[Measurement] = field(default_factory=list)
    jobs_total: int = 0
    jobs_skipped: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. "energy: unavailable: <why>"
    failures: list[str] = field(default_factory=list)  # jobs that failed and will be retried next run
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "backend": self.backend,
            "model_id": self.model_id,
            "fingerprint_id": self.fingerprint_id,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "records_written": len(self.measured),
            "jobs_total": self.jobs_total,
            "jobs_skipped": self.jobs_skipped,
            "notes": self.notes,
            "failures": self.failures,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class _Job:
    description: str
    identities: list[tuple[Any, ...]]
    run: Callable[[], list[Measurement]]


class Profiler:
    """One backend on one device config. ``threads`` overrides the config's thread count.

    Subclasses only name their backend (``backend = "onnxruntime-cpu"``); the backend's registration
    (:func:`hwnas.profilers.backend.register_backend`) supplies builder, runner, modes, fusion rules and
    fingerprint. ``Profiler(config)`` itself profiles ``config.backend``.
    """

    backend: str = ""

    def __init__(self, config: DeviceConfig, *, threads: int | None = None, power_sampler: Any = None,
                 memory_limit_bytes: int | None = None, clock: str | None = None) -> None:  # fmt: skip
        name = self.backend or config.backend
        spec = get_backend(name)
        if spec is None:
            raise InputError(
                f"backend {name!r} has no profiler",
                hint=f"no module {name.replace('-', '_')}.py in hwnas/profilers registers it",
            )
        self.spec: Backend = spec
        self.backend = spec.name
        self.supported_modes = spec.modes
        self.config = config
        self.threads = int(threads or config.threads or 1)
        self._power_sampler = power_sampler
        self.memory_limit_bytes = memory_limit_bytes  # address-space cap for the peak-memory child
        self.builder = spec.builder(config)
        self.runner = spec.runner(config, threads=self.threads, clock=clock)
        self.clock = self.runner.clock  # None: the runner's first clock (wall for in-process runners)

    @property
    def _source(self) -> str:
        return self.runner.source

    def backend_versions(self) -> dict[str, str | None]:
        return self.spec.versions()

    def units(self, layers: list[Any], units: str = "layers") -> list[Unit]:
        """The units a profile times: one per layer, or (``"fused"``) the backend's fused kernels."""
        if units not in UNIT_CHOICES:
            raise InputError(f"unknown units {units!r}", hint=f"one of {', '.join(UNIT_CHOICES)}")
        return fuse(layers, self.spec.fusion if units == "fused" else "none")

    def copies(self, unit: Unit) -> int:
        """How many copies of ``unit`` an isolated timing cycles over (``repeat.cold_weights_mib``)."""
        cold = self.config.repeat.cold_weights_mib
        weights = sum(layer.weight_bytes for layer in unit.layers)
        if cold <= 0 or weights <= 0:
            return 1
        return max(1, min(MAX_COPIES, math.ceil(cold * 2**20 / weights)))

    def unit_artefact(self, unit: Unit) -> Any:
        """What the runner times for ``unit`` alone: one artefact, or :class:`Copies` of it."""
        n = self.copies(unit)
        if n == 1:
            return self.builder.unit(unit)
        return self.builder.copies(unit, n)

    def fingerprint(self) -> Fingerprint:
        fp = fingerprint_for(self.spec, self.config, threads=self.threads)
        fields = {**fp.fields, "clock": self.clock}  # wall and CPU times never mix
        if self.config.repeat.cold_weights_mib > 0:  # nor warm- and cold-weight isolated timings
            fields["cold_weights_mib"] = self.config.repeat.cold_weights_mib
        if self.config.allocator != "default":
            fields["allocator"] = self.config.allocator
        return Fingerprint(fp.device, fields)

    def close(self) -> None:
        """Release what the profiler holds open between calls (a tegrastats child, NVML); it reopens on the
        next call. Also ``with get_profiler(config) as p:``."""

    def __enter__(self) -> Profiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def power_sampler(self) -> Any:
        """The sampler passed in, else the one the config's ``power.sampler`` names (None: none)."""
        if self._power_sampler is None:
            self._power_sampler = power_sampler_for(self.config)
        return self._power_sampler

    def profile(
        self,
        model: Any,
        store: Store,
        *,
        per_layer: bool = True,
        whole_model: bool = True,
        modes: tuple[str, ...] | list[str] = ("inference",),
        force: bool = False,
        progress: ProgressCallback | None = None,
        memory: bool = True,
        units: str = "layers",
    ) -> ProfileResult:
        """Measure ``model`` (a ResolvedModel) and write records to ``store`` as each job finishes.

        ``units="layers"`` times each LayerSpec alone (scope ``layer``); ``units="fused"`` times each of the
        backend's fused units alone (scope ``unit``, keyed by ``Unit.key()``).
        """
        return self.profile_many([model], store, per_layer=per_layer, whole_model=whole_model, modes=modes,
                                 force=force, progress=progress, memory=memory, units=units)[0]  # fmt: skip

    def profile_many(
        self,
        models: Sequence[Any],
        store: Store,
        *,
        interleave: bool = True,
        per_layer: bool = True,
        whole_model: bool = True,
        modes: tuple[str, ...] | list[str] = ("inference",),
        force: bool = False,
        progress: ProgressCallback | None = None,
        memory: bool = True,
        units: str = "layers",
    ) -> list[ProfileResult]:
        """Profile several models in one job loop; one :class:`ProfileResult` per model, in order.

        ``interleave`` (the default) runs one job of each model in turn (:func:`.qa.interleave`) instead of
        model after model: on a machine whose speed drifts (other jobs, thermal state) the drift
        then spreads over every model rather than landing on the ones measured last, which would bias any
        cost model fitted on them. Records, resume and failures are as for :meth:`profile`.
        """
        from hwnas.profilers.qa import interleave as round_robin

        t_start = time.perf_counter()
        modes = tuple(modes)
        bad = [m for m in modes if m not in self.supported_modes]
        if bad:
            raise InputError(
                f"backend {self.backend} cannot measure mode(s) {bad}; "
                f"it supports {list(self.supported_modes)}",
                hint="use a torch-cpu device (e.g. --device local-cpu-torch) for --train-step",
            )
        unit_lists = [self.units(model.spec.layers, units) for model in models]
        if whole_model:
            for model in models:
                self.builder.check_model(model)
        fp = self.fingerprint()
        store.add_fingerprint(fp)
        scope = "unit" if units == "fused" else "layer"
        allocator_set = allocator.apply(self.config.allocator)
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.runner.session())
            results: list[ProfileResult] = []
            queues: list[list[tuple[int, _Job]]] = []
            ctxs: list[dict[str, Any]] = []
            for k, (model, unit_list) in enumerate(zip(models, unit_lists, strict=True)):
                store.add_layer_specs(model.spec.layers)
                store.add_layer_specs([u for u in unit_list if u.fused])
                batch = int(model.input_shape[0]) if model.input_shape else 1
                result = ProfileResult(self.config.name, self.backend, model.model_id, fp.id, batch,
                                       self.threads)  # fmt: skip
                if not allocator_set:
                    result.notes.append(f"allocator: {self.config.allocator} could not be set here "
                                        "(not glibc)")  # fmt: skip
                base = dict(device=self.config.name, fingerprint_id=fp.id, backend=self.backend,
                            model_id=model.model_id, batch_size=batch)  # fmt: skip
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hwnas-prof-")))
                box: dict[str, Any] = {}
                ctxs.append(box)

                def ctx(box: dict[str, Any] = box, model: Any = model, tmp: Path = tmp) -> Any:
                    if "ctx" not in box:  # built lazily: a resumed profile with nothing left exports nothing
                        box["ctx"] = self.builder.model(model, tmp)
                    return box["ctx"]

                jobs = self._plan(model, unit_list, scope, modes, per_layer, whole_model, memory, base, ctx,
                                  tmp, result)  # fmt: skip
                result.jobs_total = len(jobs)
                results.append(result)
                queues.append([(k, job) for job in jobs])
            order = round_robin(queues) if interleave else [kj for q in queues for kj in q]
            left = [len(q) for q in queues]
            t_plan = (time.perf_counter() - t_start) / max(len(models), 1)
            for r in results:
                r.elapsed_s = t_plan
            for i, (k, job) in enumerate(order, 1):
                result, t_job = results[k], time.perf_counter()
                skipped = not force and all(store.has(ident) for ident in job.identities)
                if skipped:
                    result.jobs_skipped += 1
                else:
                    try:
                        records = job.run()
                    except MeasurementError as exc:
                        result.failures.append(f"{job.description}: {exc.message}")
                        records = []
                    for r in records:
                        store.add(r)
                    result.measured.extend(records)
                left[k] -= 1
                if not left[k]:
                    ctxs[k].clear()  # the model's last job: free its built artefact (sessions, modules)
                result.elapsed_s += time.perf_counter() - t_job
                if progress is not None:
                    progress(ProgressEvent(i, len(order), job.description, skipped))
        return results

    def _plan(self, model: Any, unit_list: list[Unit], scope: str, modes: tuple[str, ...], per_layer: bool,
              whole_model: bool, memory: bool, base: dict[str, Any], ctx: Callable[[], Any], workdir: Path,
              result: ProfileResult) -> list[_Job]:  # fmt: skip
        jobs: list[_Job] = []
        for mode in modes:
            if per_layer:
                groups: dict[str, list[Unit]] = {}
                for unit in unit_list:
                    groups.setdefault(unit.key(), []).append(unit)
                for same in groups.values():
                    first = same[0]
                    idents = [
                        self._unit_record(base, mode, scope, "latency_ms", 0.0, u).identity() for u in same
                    ]
                    what = "unit" if scope == "unit" else "layer"
                    desc = f"{mode} {what} {first.name or first.op} ({first.op})"
                    jobs.append(_Job(desc, idents, self._unit_job(base, mode, scope, same)))
            if whole_model:
                ident = self._record(base, mode, "model", "latency_ms", 0.0).identity()
                jobs.append(
                    _Job(f"{mode} whole model latency", [ident], self._latency_job(base, mode, model, ctx))
                )
                if memory and not self.runner.peak_memory:
                    note = f"peak memory: not measured on backend {self.backend}"
                    if note not in result.notes:
                        result.notes.append(note)
                elif memory:
                    ident = self._record(base, mode, "model", "peak_memory_bytes", 0.0).identity()
                    jobs.append(_Job(f"{mode} peak memory", [ident],
                                     self._memory_record_job(base, mode, ctx, workdir)))  # fmt: skip
                energy = self._energy_plan(base, mode, ctx, result)
                if energy is not None:
                    jobs.append(energy)
        return jobs

    @staticmethod
    def _record(base: dict[str, Any], mode: str, scope: str, metric: str, value: float,
                layer: Any = None, index: int = -1, **kw: Any) -> Measurement:  # fmt: skip
        return Measurement(
            **base, scope=scope, metric=metric, value=value, mode=mode,
            layer_key=layer.key() if layer is not None else "",
            layer_name=layer.name if layer is not None else "", layer_index=index, **kw,
        )  # fmt: skip

    def _unit_record(self, base: dict[str, Any], mode: str, scope: str, metric: str, value: float,
                     unit: Unit, **kw: Any) -> Measurement:  # fmt: skip
        return self._record(base, mode, scope, metric, value, unit.layers[0] if scope == "layer" else unit,
                            unit.indices[0], **kw)  # fmt: skip

    def _unit_job(self, base: dict[str, Any], mode: str, scope: str, same: list[Unit]) -> Callable:
        def run() -> list[Measurement]:
            unit = same[0]
            try:
                raw = self.runner.time(self.unit_artefact(unit), mode, self.config.repeat)
            except (HwnasError, NotImplementedError, RuntimeError, ValueError) as exc:
                msg = exc.message if isinstance(exc, HwnasError) else f"{type(exc).__name__}: {exc}"
                what = "layer" if scope == "layer" else "unit"
                raise MeasurementError(
                    f"{what} {unit.name or unit.key()} cannot run in isolation: {msg}"
                ) from exc
            stats = summarize(raw.samples_ms)
            extra = {**raw.extra(), "measured_at_layer_index": unit.indices[0], "op": unit.op}
            if scope == "unit":  # the rule set says how a lookup table must group other networks
                extra.update(unit_indices=list(unit.indices), rule=unit.rule, fusion=self.spec.fusion)
            return [
                self._unit_record(base, mode, scope, "latency_ms", stats.median, u, stats=stats,
                                  source=f"{raw.source}-isolated",
                                  extra={**extra, "unit_indices": list(u.indices)} if scope == "unit"
                                  else extra)
                for u in same
            ]  # fmt: skip

        return run

    def _latency_job(self, base: dict[str, Any], mode: str, model: Any, ctx: Callable[[], Any]) -> Callable:
        def run() -> list[Measurement]:
            art = ctx()
            breakdown = self._breakdown_records(art, model, mode, base)
            raw: RawTiming = self.runner.time(art, mode, self.config.repeat)
            stats = summarize(raw.samples_ms)
            extra = {**raw.extra(), "layers": len(model.spec.layers)}
            if breakdown:
                extra["breakdown_layer_ms_sum"] = sum(m.value for m in breakdown)
            rec = self._record(base, mode, "model", "latency_ms", stats.median, stats=stats,
                               source=raw.source, extra=extra)  # fmt: skip
            return [*breakdown, rec]  # the model record last: it marks the job done

        return run

    def _breakdown_records(self, art: Any, model: Any, mode: str, base: dict[str, Any]) -> list[Measurement]:
        """Per-layer times inside the model (the runtime's own profiler), where the runner has them."""
        bd = self.runner.breakdown(art, model, mode)
        if bd is None:
            return []
        layers = model.spec.layers
        out = []
        for idx in sorted(bd.per_layer):
            stats = summarize(bd.per_layer[idx])
            extra = {"kernels": bd.kernels.get(idx, []),
                     "unmapped_ms_median": float(sorted(bd.unmapped_ms)[len(bd.unmapped_ms) // 2])
                     if bd.unmapped_ms else 0.0}  # fmt: skip
            out.append(self._record(base, mode, "layer", "in_model_latency_ms", stats.median, layers[idx],
                                    idx, stats=stats, source=bd.source, extra=extra))  # fmt: skip
        return out

    def _memory_record_job(self, base: dict[str, Any], mode: str, ctx: Callable[[], Any],
                           workdir: Path) -> Callable:  # fmt: skip
        def run() -> list[Measurement]:
            from hwnas.profilers.memory import measure_peak_memory

            job = self.runner.memory_job(ctx(), mode, workdir)
            if job is None:
                raise MeasurementError(f"backend {self.backend} gave no peak-memory job for {mode}")
            target, kwargs = job
            mem = measure_peak_memory(target, kwargs, label=f"{base['model_id']} ({mode})",
                                      limit_bytes=self.memory_limit_bytes)  # fmt: skip
            extra = {"baseline_bytes": mem.baseline_bytes, "peak_rss_bytes": mem.peak_rss_bytes}
            return [self._record(base, mode, "model", "peak_memory_bytes", float(mem.peak_bytes),
                                 source=mem.source, extra=extra)]  # fmt: skip

        return run

    def _energy_plan(self, base: dict[str, Any], mode: str, ctx: Callable[[], Any],
                     result: ProfileResult) -> _Job | None:  # fmt: skip
        sampler = self.power_sampler()
        if sampler is None:
            name = self.config.power.sampler
            if name not in ("", "none"):
                note = (f"energy: unavailable: no power sampler {name!r} is registered "
                        f"(registered: {', '.join(power_samplers())})")  # fmt: skip
                if note not in result.notes:
                    result.notes.append(note)
            return None
        ok, why = sampler.available()
        if not ok:
            note = f"energy: unavailable: {why}"
            if note not in result.notes:
                result.notes.append(note)
            return None
        ident = self._record(base, mode, "model", "energy_mj", 0.0).identity()

        def run() -> list[Measurement]:
            art = ctx()
            self.runner.run_for(art, mode, min_runs=1, min_seconds=0.0)  # warm, outside the window
            sampler.begin_window("model")
            try:  # >= 1 s: many counter updates per window
                n = self.runner.run_for(art, mode, min_runs=5, min_seconds=1.0)
            finally:
                w = sampler.end_window("model")
            per_run = w.total_mj / n
            idle = self.config.power.idle_power_mw
            if idle is not None:
                per_run -= idle * w.duration_s / n  # mW x s = mJ
            extra = {"runs": n, "window_s": w.duration_s, "zones_mj": w.energy_mj, "idle_power_mw": idle,
                     "notes": list(w.notes)}  # fmt: skip
            return [self._record(base, mode, "model", "energy_mj", per_run, source=w.source, extra=extra)]

        return _Job(f"{mode} energy", [ident], run)
