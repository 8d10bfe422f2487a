"""onnxruntime on the local CPU: builder (ONNX models), in-process runner (sessions), parser (ort_profile).

Per unit, each LayerSpec or fused unit becomes its own tiny ONNX model (``hwnas.graph.builders.onnx``) and
is timed alone: that is what a lookup table needs, independent of its neighbours. The whole model is timed
as one session; a second session with onnxruntime's profiler on gives each kernel's time in context
(fusions included), parsed by ``ort_profile``, mapped back to layers and stored as ``in_model_latency_ms``.
Fusion rules: ``hwnas.graph.fusion.ONNXRUNTIME_CPU``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.device_config import DeviceConfig, RepeatPolicy
from hwnas.graph.fusion import Unit
from hwnas.profilers import ort_profile
from hwnas.profilers.backend import (
    Backend,
    Breakdown,
    Builder,
    Copies,
    InProcessRunner,
    RawTiming,
    register_backend,
)
from hwnas.profilers.base import Profiler

# Runs with onnxruntime's profiler on; the first few are warm-up and dropped.
PROFILED_RUNS = 25
PROFILED_WARMUP = 5


def _session(model: Any, threads: int, profile_prefix: str | None = None,
             optimized_path: str | None = None) -> Any:  # fmt: skip
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    if optimized_path is not None:  # the graph after fusion and layout transforms, to read kernel roles
        opts.optimized_model_filepath = optimized_path
    src = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _feeds(sess: Any, fallback_shapes: list[tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtypes = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
              "tensor(float16)": np.float16}  # fmt: skip
    feeds = {}
    for i, inp in enumerate(sess.get_inputs()):
        shape = inp.shape
        if not all(isinstance(d, int) for d in shape):
            shape = (
                fallback_shapes[i]
                if i < len(fallback_shapes)
                else [d if isinstance(d, int) else 1 for d in shape]
            )
        dt = dtypes.get(inp.type, np.float32)
        arr = rng.standard_normal(shape) if np.issubdtype(dt, np.floating) else np.zeros(shape)
        feeds[inp.name] = arr.astype(dt)
    return feeds


@dataclass
class OnnxArtefact:
    """An ONNX model (in memory or a file) and its input shapes; the runner keeps its session on it."""

    source: Any  # onnx.ModelProto or a path
    input_shapes: list[tuple[int, ...]]
    session: Any = field(default=None, repr=False)
    feeds: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    unit: bool = False  # one unit alone: its time is split by onnxruntime's profiler (UnitSplit)


def add_side_carriers(proto: Any) -> Any:
    """Route each side input (``in1``, ...) through a 1x1 MaxPool so it arrives in onnxruntime's NCHWc
    layout, as a residual produced by a convolution does inside a model; the NCHWc transformer then fuses
    the Add into the convolution as it does there. The carriers are named ``hwnas_carrier*`` and their time
    is split off as ``side`` (``ort_profile.split_unit_profile``)."""
    from onnx import helper

    g = proto.graph
    side = [i.name for i in g.input][1:]
    for k, name in enumerate(side):
        out = f"{ort_profile.CARRIER_PREFIX}_{k}"
        for node in g.node:
            for j, v in enumerate(node.input):
                if v == name:
                    node.input[j] = out
        g.node.insert(0, helper.make_node("MaxPool", [name], [out], name=out, kernel_shape=[1, 1]))
    return proto


class OrtBuilder(Builder):
    def unit(self, unit: Unit) -> OnnxArtefact:
        from hwnas.graph.builders.onnx import unit_to_onnx

        proto = unit_to_onnx(unit)
        if unit.fused and unit.anchor.op == "conv2d" and len(proto.graph.input) > 1:
            proto = add_side_carriers(proto)
        return OnnxArtefact(proto, list(unit.wiring()[0]), unit=True)

    def model(self, model: Any, workdir: Path) -> OnnxArtefact:
        if model.onnx_path is not None and Path(model.onnx_path).exists():
            path = Path(model.onnx_path)
        else:  # export into this profile's workdir without caching the (soon deleted) path on the model
            from hwnas.graph.builders.onnx import module_to_onnx

            path = module_to_onnx(model.module, tuple(model.input_shape), workdir / "model.onnx")
        return OnnxArtefact(Path(path), [tuple(model.input_shape)])


class OrtRunner(InProcessRunner):
    peak_memory = True
    def _open(self, art: OnnxArtefact) -> tuple[Any, dict[str, np.ndarray]]:
        if art.session is None:
            src = str(art.source) if isinstance(art.source, Path) else art.source
            art.session = _session(src, self.threads)
            art.feeds = _feeds(art.session, art.input_shapes)
        return art.session, art.feeds

    def callable(self, artefact: OnnxArtefact, mode: str) -> Callable[[], object]:
        sess, feeds = self._open(artefact)
        return lambda: sess.run(None, feeds)

    def time(self, artefact: OnnxArtefact | Copies, mode: str, policy: RepeatPolicy) -> RawTiming:
        """As an in-process runner; for a unit alone, also where its time goes (``readings["split"]``):
        its own kernels, the NCHWc layout conversions at its ends, the session call."""
        raw = super().time(artefact, mode, policy)
        first = artefact.artefacts[0] if isinstance(artefact, Copies) else artefact
        if not first.unit:
            return raw
        split = self.split(first)
        return replace(raw, readings={**raw.readings, "split": asdict(split)})

    def split(self, artefact: OnnxArtefact, runs: int = 15, warmup: int = 5) -> ort_profile.UnitSplit:
        import onnx

        with tempfile.TemporaryDirectory(prefix="hwnas-unit-") as tmp:
            sess = _session(artefact.source, self.threads, profile_prefix=str(Path(tmp) / "p"),
                            optimized_path=str(Path(tmp) / "opt.onnx"))  # fmt: skip
            feeds = _feeds(sess, artefact.input_shapes)
            for _ in range(runs + warmup):
                sess.run(None, feeds)
            profile = sess.end_profiling()
            graph = onnx.load(str(Path(tmp) / "opt.onnx")).graph
            split = ort_profile.split_unit_profile(profile, graph, warmup)
            Path(profile).unlink(missing_ok=True)
        return split

    def memory_job(self, artefact: OnnxArtefact, mode: str, workdir: Path) -> tuple[str, dict[str, Any]]:
        _, feeds = self._open(artefact)
        shapes = [list(v.shape) for v in feeds.values()]
        return "hwnas.profilers.memory:run_onnx", {"path": str(artefact.source), "input_shapes": shapes,
                                                   "threads": self.threads}  # fmt: skip

    def breakdown(self, artefact: OnnxArtefact, model: Any, mode: str) -> Breakdown:
        import onnx

        path = Path(artefact.source)
        sess = _session(str(path), self.threads, profile_prefix=str(path.parent / "ort_profile"))
        feeds = _feeds(sess, artefact.input_shapes)
        for _ in range(PROFILED_RUNS):
            sess.run(None, feeds)
        times = ort_profile.parse_profile(sess.end_profiling())
        layers = model.spec.layers
        names = ort_profile.node_layer_map(onnx.load(str(path), load_external_data=False),
                                           [la.name for la in layers], [la.op for la in layers])  # fmt: skip
        mapping = ort_profile.map_kernels(times, names, [la.op for la in layers])
        per_layer, unmapped, kernels = ort_profile.layer_breakdown(times, mapping, skip_runs=PROFILED_WARMUP)
        return Breakdown(per_layer, kernels, unmapped, "ort-profiler")


def _versions() -> dict[str, str | None]:
    return {"onnxruntime": importlib.metadata.version("onnxruntime")}


def _probe(config: DeviceConfig) -> tuple[bool, str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return False, "onnxruntime is not installed"
    return True, "onnxruntime on the local CPU"


class OnnxRuntimeCPUProfiler(Profiler):
    backend = "onnxruntime-cpu"


register_backend(Backend(
    name="onnxruntime-cpu",
    builder=OrtBuilder,
    runner=OrtRunner,
    probe=_probe,
    versions=_versions,
    modes=("inference",),
    fusion="onnxruntime-cpu",
    fingerprint="local-cpu",
    profiler=OnnxRuntimeCPUProfiler,
    description="onnxruntime CPUExecutionProvider in this process",
))  # fmt: skip
