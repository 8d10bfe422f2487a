"""The profiler interface and the job loop every backend shares.

A profile is a list of jobs (one per distinct layer key and mode, one per whole-model metric and mode).
Each job's records are written to the store as soon as it finishes, so an interrupted profile keeps
what it did; the next run skips every job whose records are already there (unless ``force``).
Backends only say how to build and run things (``_layer_runner``, ``_model_runner``, ...).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import HwnasError, InputError, MeasurementError
from hwnas.graph.layer import LayerSpec
from hwnas.profilers import timing
from hwnas.profilers.fingerprint import local_fingerprint
from hwnas.store.base import Store
from hwnas.store.records import Fingerprint, Measurement

log = logging.getLogger(__name__)

Runner = Callable[[], object]
# "wall": time.perf_counter, what a user waits for. "cpu": time.process_time, CPU time of all the
# process's threads; on a shared, oversubscribed machine wall time of a long run mostly measures the
# scheduler, CPU time measures the work (it misses waits for memory paging or I/O).
CLOCKS = ("wall", "cpu")


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


class Profiler(abc.ABC):
    """One backend on one device config. ``threads`` overrides the config's thread count."""

    backend: str = ""
    supported_modes: tuple[str, ...] = ("inference",)

    def __init__(self, config: DeviceConfig, *, threads: int | None = None, power_sampler: Any = None,
                 memory_limit_bytes: int | None = None, clock: str = "wall") -> None:  # fmt: skip
        self.config = config
        self.threads = int(threads or config.threads or 1)
        self._power_sampler = power_sampler
        self.memory_limit_bytes = memory_limit_bytes  # address-space cap for the peak-memory child
        if clock not in CLOCKS:
            raise InputError(f"unknown clock {clock!r}", hint=f"one of {', '.join(CLOCKS)}")
        self.clock = clock

    def _measure(self, runner: Runner) -> timing.TimingResult:
        # The wall clock is timing.measure's default; only the CPU clock is passed explicitly.
        kw = {"clock": time.process_time} if self.clock == "cpu" else {}
        return timing.measure(runner, self.config.repeat, **kw)

    @property
    def _source(self) -> str:
        return "wallclock" if self.clock == "wall" else "cputime"

    # ---- what a backend provides ----------------------------------------------------------------
    @abc.abstractmethod
    def backend_versions(self) -> dict[str, str | None]: ...

    @abc.abstractmethod
    def _layer_runner(self, spec: LayerSpec, mode: str) -> Runner:
        """A zero-argument callable that runs ``spec`` alone once (built once, called many times)."""

    @abc.abstractmethod
    def _model_runner(self, ctx: Any, mode: str) -> Runner: ...

    @abc.abstractmethod
    def _memory_job(self, ctx: Any, mode: str) -> tuple[str, dict[str, Any]]:
        """(``module:function``, kwargs) that runs the whole model in the child process."""

    @abc.abstractmethod
    def _prepare(self, model: Any, workdir: Path) -> Any:
        """Backend context for the whole model (a session, an exported file...)."""

    def _model_breakdown(self, ctx: Any, model: Any, mode: str, base: dict[str, Any]) -> list[Measurement]:
        """Optional per-layer times measured inside the whole model (onnxruntime's node profiler)."""
        return []

    @contextlib.contextmanager
    def _threads_pinned(self) -> Iterator[None]:
        """Fix the thread count for the duration of a profile (backends override)."""
        yield

    # ---- shared -----------------------------------------------------------------------------------
    def fingerprint(self) -> Fingerprint:
        fp = local_fingerprint(self.config, self.backend_versions(), threads=self.threads)
        return Fingerprint(fp.device, {**fp.fields, "clock": self.clock})  # wall and CPU times never mix

    def power_sampler(self) -> Any:
        if self._power_sampler is None and self.config.power.sampler == "rapl":
            from hwnas.profilers.power.rapl import RaplSampler

            self._power_sampler = RaplSampler()
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
    ) -> ProfileResult:
        """Measure ``model`` (a ResolvedModel) and write records to ``store`` as each job finishes."""
        t_start = time.perf_counter()
        modes = tuple(modes)
        bad = [m for m in modes if m not in self.supported_modes]
        if bad:
            raise InputError(
                f"backend {self.backend} cannot measure mode(s) {bad}; "
                f"it supports {list(self.supported_modes)}",
                hint="use a torch-cpu device (e.g. --device local-cpu-torch) for --train-step",
            )
        fp = self.fingerprint()
        store.add_fingerprint(fp)
        spec = model.spec
        store.add_layer_specs(spec.layers)
        batch = int(model.input_shape[0]) if model.input_shape else 1
        result = ProfileResult(self.config.name, self.backend, model.model_id, fp.id, batch, self.threads)
        base = dict(device=self.config.name, fingerprint_id=fp.id, backend=self.backend,
                    model_id=model.model_id, batch_size=batch)  # fmt: skip

        with tempfile.TemporaryDirectory(prefix="hwnas-prof-") as tmp, self._threads_pinned():
            ctx_box: dict[str, Any] = {}

            def ctx() -> Any:  # prepared lazily: a resumed profile with nothing left exports nothing
                if "ctx" not in ctx_box:
                    ctx_box["ctx"] = self._prepare(model, Path(tmp))
                return ctx_box["ctx"]

            jobs = self._plan(model, modes, per_layer, whole_model, memory, base, ctx, result)
            result.jobs_total = len(jobs)
            for i, job in enumerate(jobs, 1):
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
                if progress is not None:
                    progress(ProgressEvent(i, len(jobs), job.description, skipped))
        result.elapsed_s = time.perf_counter() - t_start
        return result

    def _plan(self, model: Any, modes: tuple[str, ...], per_layer: bool, whole_model: bool, memory: bool,
              base: dict[str, Any], ctx: Callable[[], Any], result: ProfileResult) -> list[_Job]:  # fmt: skip
        jobs: list[_Job] = []
        layers = model.spec.layers
        for mode in modes:
            if per_layer:
                groups: dict[str, list[int]] = {}
                for idx, layer in enumerate(layers):
                    groups.setdefault(layer.key(), []).append(idx)
                for idxs in groups.values():
                    first = layers[idxs[0]]
                    idents = [
                        self._record(base, mode, "layer", "latency_ms", 0.0, layers[i], i).identity()
                        for i in idxs
                    ]
                    desc = f"{mode} layer {first.name or first.op} ({first.op})"
                    jobs.append(_Job(desc, idents, self._layer_job(base, mode, layers, idxs)))
            if whole_model:
                ident = self._record(base, mode, "model", "latency_ms", 0.0).identity()
                jobs.append(
                    _Job(f"{mode} whole model latency", [ident], self._latency_job(base, mode, model, ctx))
                )
                if memory:
                    ident = self._record(base, mode, "model", "peak_memory_bytes", 0.0).identity()
                    jobs.append(
                        _Job(f"{mode} peak memory", [ident], self._memory_record_job(base, mode, ctx))
                    )
                energy = self._energy_plan(base, mode, ctx, result)
                if energy is not None:
                    jobs.append(energy)
        return jobs

    @staticmethod
    def _record(base: dict[str, Any], mode: str, scope: str, metric: str, value: float,
                layer: LayerSpec | None = None, index: int = -1, **kw: Any) -> Measurement:  # fmt: skip
        return Measurement(
            **base, scope=scope, metric=metric, value=value, mode=mode,
            layer_key=layer.key() if layer is not None else "",
            layer_name=layer.name if layer is not None else "", layer_index=index, **kw,
        )  # fmt: skip

    def _layer_job(
        self, base: dict[str, Any], mode: str, layers: list[LayerSpec], idxs: list[int]
    ) -> Callable:
        def run() -> list[Measurement]:
            spec = layers[idxs[0]]
            try:
                runner = self._layer_runner(spec, mode)
                res = self._measure(runner)
            except (HwnasError, NotImplementedError, RuntimeError, ValueError) as exc:
                msg = exc.message if isinstance(exc, HwnasError) else f"{type(exc).__name__}: {exc}"
                raise MeasurementError(
                    f"layer {spec.name or spec.key()} cannot run in isolation: {msg}"
                ) from exc
            extra = {**res.extra(), "measured_at_layer_index": idxs[0], "op": spec.op}
            return [
                self._record(
                    base,
                    mode,
                    "layer",
                    "latency_ms",
                    res.stats.median,
                    layers[i],
                    i,
                    stats=res.stats,
                    source=f"{self._source}-isolated",
                    extra=extra,
                )  # fmt: skip
                for i in idxs
            ]

        return run

    def _latency_job(self, base: dict[str, Any], mode: str, model: Any, ctx: Callable[[], Any]) -> Callable:
        def run() -> list[Measurement]:
            c = ctx()
            breakdown = self._model_breakdown(c, model, mode, base)
            res = self._measure(self._model_runner(c, mode))
            extra = {**res.extra(), "layers": len(model.spec.layers)}
            if breakdown:
                extra["breakdown_layer_ms_sum"] = sum(m.value for m in breakdown)
            rec = self._record(base, mode, "model", "latency_ms", res.stats.median, stats=res.stats,
                               source=self._source, extra=extra)  # fmt: skip
            return [*breakdown, rec]  # the model record last: it marks the job done

        return run

    def _memory_record_job(self, base: dict[str, Any], mode: str, ctx: Callable[[], Any]) -> Callable:
        def run() -> list[Measurement]:
            from hwnas.profilers.memory import measure_peak_memory

            target, kwargs = self._memory_job(ctx(), mode)
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
            return None
        ok, why = sampler.available()
        if not ok:
            note = f"energy: unavailable: {why}"
            if note not in result.notes:
                result.notes.append(note)
            return None
        ident = self._record(base, mode, "model", "energy_mj", 0.0).identity()

        def run() -> list[Measurement]:
            runner = self._model_runner(ctx(), mode)
            runner()
            n, t0 = 0, time.perf_counter()
            sampler.begin_window("model")
            while n < 5 or time.perf_counter() - t0 < 1.0:  # >= 1 s: many counter updates per window
                runner()
                n += 1
            w = sampler.end_window("model")
            per_run = w.total_mj / n
            idle = self.config.power.idle_power_mw
            if idle is not None:
                per_run -= idle * w.duration_s / n  # mW x s = mJ
            extra = {"runs": n, "window_s": w.duration_s, "zones_mj": w.energy_mj, "idle_power_mw": idle,
                     "notes": list(w.notes)}  # fmt: skip
            return [self._record(base, mode, "model", "energy_mj", per_run, source=w.source, extra=extra)]

        return _Job(f"{mode} energy", [ident], run)
