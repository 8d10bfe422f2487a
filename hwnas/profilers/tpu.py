"""TPUs through TensorFlow + XLA; on any other machine the same code runs on XLA:CPU.

Builder: each unit (a LayerSpec or fused chain) and the whole model become Keras models
(``hwnas.graph.builders.keras``) wrapped in ``tf.function(jit_compile=True)``, with fixed seeded inputs
placed on the device. Runner: on a TPU VM (``connection.tpu``: ``auto`` finds one from ``TPU_NAME`` /
``/dev/accel*``; or a TPU name, or ``local``) it connects through ``TPUClusterResolver``, initialises the TPU
system and runs on ``/TPU:0``; elsewhere (``auto`` with no TPU, or ``cpu``) on ``/CPU:0`` through XLA:CPU.
The fingerprint records which (``xla_platform``), so TPU and XLA:CPU tables never mix.

Besides the timings, every unit and the model get XLA cost-analysis records: ``xla_flops`` and
``xla_bytes_accessed`` of the optimised HLO XLA compiled (``hwnas.profilers.parsers.hlo_cost``), source
``xla-hlo-cost``: analytic numbers stored beside the measured ones.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.device_config import DeviceConfig
from hwnas.errors import DeviceUnavailableError, HwnasError, InputError, MeasurementError
from hwnas.profilers.backend import (
    Backend,
    Builder,
    InProcessRunner,
    register_backend,
    register_fingerprint,
)
from hwnas.profilers.base import Profiler, _Job
from hwnas.store.records import Measurement

COST_METRICS = ("xla_flops", "xla_bytes_accessed")


def tpu_setting(config: DeviceConfig) -> str:
    return str((config.connection or {}).get("tpu", "auto"))


def tpu_present() -> str | None:
    """Why this looks like a TPU VM (``TPU_NAME``, ``/dev/accel*``, ``/dev/vfio``), or None."""
    if os.environ.get("TPU_NAME"):
        return f"TPU_NAME={os.environ['TPU_NAME']}"
    accel = glob.glob("/dev/accel*")
    if accel:
        return f"{accel[0]} present"
    if os.environ.get("TPU_ACCELERATOR_TYPE"):
        return f"TPU_ACCELERATOR_TYPE={os.environ['TPU_ACCELERATOR_TYPE']}"
    return None


def platform_for(config: DeviceConfig) -> str:
    """``tpu`` or ``xla-cpu``: where this config runs on this machine."""
    want = tpu_setting(config)
    if want in ("cpu", "none"):
        return "xla-cpu"
    if want == "auto":
        return "tpu" if tpu_present() else "xla-cpu"
    return "tpu"


@dataclass
class XlaArtefact:
    """A Keras model, its NHWC inputs, and the compiled function once built on the device."""

    model: Any
    input_shapes: list[tuple[int, ...]]
    fn: Any = None
    inputs: list[Any] = field(default_factory=list)


class XlaBuilder(Builder):
    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config)
        self._cache: dict[str, XlaArtefact] = {}  # the timing and the cost job share one compile per unit

    def unit(self, unit: Any) -> XlaArtefact:
        from hwnas.graph.builders.keras import unit_to_keras

        key = unit.key()
        if key not in self._cache:
            specs = list(unit.layers)
            shapes = [tuple(specs[0].input_shape), *[tuple(s) for s in unit.extra_input_shapes]]
            self._cache[key] = XlaArtefact(unit_to_keras(specs, name="unit"), shapes)
        return self._cache[key]

    def model(self, model: Any, workdir: Path) -> XlaArtefact:
        from hwnas.graph.builders.keras import torch_to_keras

        return XlaArtefact(torch_to_keras(model.module, [tuple(model.input_shape)], name="model"),
                           [tuple(model.input_shape)])  # fmt: skip

    def check_model(self, model: Any) -> None:
        if model.module is None:
            raise InputError(
                f"model {model.name} has no torch module: the TPU backend builds Keras models from torch",
                hint="use a torchvision name, mbv2:<arch> or nb201:<arch>",
            )


class XlaRunner(InProcessRunner):
    def __init__(self, config: DeviceConfig, *, threads: int, clock: str | None = None) -> None:
        super().__init__(config, threads=threads, clock=clock)
        self.platform = platform_for(config)
        self.device = "/TPU:0" if self.platform == "tpu" else "/CPU:0"

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        from hwnas.graph.builders.keras import import_tf

        tf = import_tf()
        if self.platform == "tpu":
            want = tpu_setting(self.config)
            try:
                resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                    tpu=None if want == "auto" else want
                )
                tf.config.experimental_connect_to_cluster(resolver)
                tf.tpu.experimental.initialize_tpu_system(resolver)
            except Exception as exc:  # resolver/initialisation raise ValueError, NotFoundError, ...
                raise DeviceUnavailableError(
                    f"TPU {want!r} could not be initialised: {type(exc).__name__}: {exc}",
                    hint="on a TPU VM set connection.tpu to local or the TPU name; elsewhere use "
                    "connection.tpu: cpu (XLA:CPU)",
                ) from exc
        else:
            with contextlib.suppress(RuntimeError):  # already initialised in this process
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
        yield

    def compiled(self, art: XlaArtefact) -> tuple[Any, list[Any]]:
        """The jit-compiled call of ``art`` and its device-resident inputs (built once)."""
        if art.fn is None:
            from hwnas.graph.builders.keras import import_tf, nhwc_shape

            tf = import_tf()
            rng = np.random.default_rng(0)
            with tf.device(self.device):
                art.inputs = [tf.constant(rng.standard_normal(nhwc_shape(s)).astype(np.float32))
                              for s in art.input_shapes]  # fmt: skip
                model = art.model

                @tf.function(jit_compile=True)
                def fn(*xs: Any) -> Any:
                    return model(list(xs) if len(xs) > 1 else xs[0], training=False)

                art.fn = fn
                fn(*art.inputs)  # compile outside any timing
        return art.fn, art.inputs

    def callable(self, artefact: XlaArtefact, mode: str) -> Callable[[], object]:
        from hwnas.graph.builders.keras import import_tf

        tf = import_tf()
        fn, xs = self.compiled(artefact)
        sync = getattr(tf.experimental, "sync_devices", None) if self.platform == "tpu" else None

        def run() -> object:
            y = fn(*xs)
            if sync is not None:
                sync()
                return y
            return y.numpy()  # XLA:CPU: the result must exist before the clock stops

        return run

    def cost(self, art: XlaArtefact) -> dict[str, Any]:
        """XLA's cost of the compiled HLO (``parsers.hlo_cost``)."""
        from hwnas.profilers.parsers.hlo_cost import analyze_hlo

        fn, xs = self.compiled(art)
        text = fn.experimental_get_compiler_ir(*xs)(stage="optimized_hlo")
        return analyze_hlo(text, "optimized HLO").to_dict()


class XlaProfiler(Profiler):
    """The shared job loop plus one analytic job per distinct unit and per model: XLA's cost analysis."""

    backend = "tpu"

    def _plan(self, model: Any, unit_list: list[Any], scope: str, modes: tuple[str, ...], per_layer: bool,
              whole_model: bool, memory: bool, base: dict[str, Any], ctx: Callable[[], Any], workdir: Path,
              result: Any) -> list[_Job]:  # fmt: skip
        jobs = super()._plan(model, unit_list, scope, modes, per_layer, whole_model, memory, base, ctx,
                             workdir, result)  # fmt: skip
        mode = "inference"
        if per_layer:
            groups: dict[str, list[Any]] = {}
            for unit in unit_list:
                groups.setdefault(unit.key(), []).append(unit)
            for same in groups.values():
                idents = [self._unit_record(base, mode, scope, m, 0.0, u).identity() for u in same
                          for m in COST_METRICS]  # fmt: skip
                jobs.append(_Job(f"xla cost {same[0].name or same[0].op}", idents,
                                 self._cost_job(base, mode, scope, same)))  # fmt: skip
        if whole_model:
            idents = [self._record(base, mode, "model", m, 0.0).identity() for m in COST_METRICS]
            jobs.append(_Job("xla cost whole model", idents, self._model_cost_job(base, mode, ctx)))
        return jobs

    def _cost_records(self, cost: dict[str, Any], make: Callable[[str, float, dict[str, Any]], Measurement]
                      ) -> list[Measurement]:  # fmt: skip
        extra = {"transcendentals": cost["transcendentals"], "unknown_ops": cost["unknown_ops"],
                 "platform": self.runner.platform}  # fmt: skip
        return [make("xla_flops", float(cost["flops"]), extra),
                make("xla_bytes_accessed", float(cost["bytes_accessed"]), extra)]  # fmt: skip

    def _cost_job(self, base: dict[str, Any], mode: str, scope: str, same: list[Any]) -> Callable:
        def run() -> list[Measurement]:
            try:
                cost = self.runner.cost(self.builder.unit(same[0]))
            except (HwnasError, RuntimeError, ValueError) as exc:
                msg = exc.message if isinstance(exc, HwnasError) else f"{type(exc).__name__}: {exc}"
                raise MeasurementError(f"XLA cost of {same[0].name or same[0].key()}: {msg}") from exc
            out: list[Measurement] = []
            for u in same:
                out += self._cost_records(cost, lambda m, v, e, u=u: self._unit_record(
                    base, mode, scope, m, v, u, source="xla-hlo-cost", extra=e))  # fmt: skip
            return out

        return run

    def _model_cost_job(self, base: dict[str, Any], mode: str, ctx: Callable[[], Any]) -> Callable:
        def run() -> list[Measurement]:
            cost = self.runner.cost(ctx())
            return self._cost_records(
                cost, lambda m, v, e: self._record(base, mode, "model", m, v, source="xla-hlo-cost", extra=e)
            )

        return run


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("tensorflow-cpu", "tensorflow", "keras"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[pkg] = importlib.metadata.version(pkg)
    return out


def _probe(config: DeviceConfig) -> tuple[bool, str]:
    if importlib.util.find_spec("tensorflow") is None:
        return False, "tensorflow is not installed (pip install 'hwnas[tf]')"
    where = platform_for(config)
    if where == "tpu":
        return True, f"TensorFlow + XLA on a TPU ({tpu_present() or tpu_setting(config)})"
    return True, "TensorFlow + XLA on XLA:CPU (no TPU here; connection.tpu: auto)"


def _fingerprint(config: DeviceConfig, versions: dict[str, str | None], *, threads: int) -> Any:
    from hwnas.profilers.fingerprint import local_fingerprint
    from hwnas.store.records import Fingerprint

    fp = local_fingerprint(config, versions, threads=threads)
    where = platform_for(config)
    fields = {**fp.fields, "xla_platform": where}
    if where == "tpu":
        fields["tpu"] = os.environ.get("TPU_ACCELERATOR_TYPE") or tpu_setting(config)
    return Fingerprint(fp.device, fields)


register_fingerprint("tpu", _fingerprint)
register_backend(Backend(
    name="tpu",
    builder=XlaBuilder,
    runner=XlaRunner,
    probe=_probe,
    versions=_versions,
    modes=("inference",),
    fusion="none",
    fingerprint="tpu",
    profiler=XlaProfiler,
    description="TensorFlow with XLA (jit_compile): a TPU on a TPU VM, XLA:CPU elsewhere",
))  # fmt: skip
