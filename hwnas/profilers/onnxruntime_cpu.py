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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.device_config import DeviceConfig
from hwnas.graph.fusion import Unit
from hwnas.profilers import ort_profile
from hwnas.profilers.backend import Backend, Breakdown, Builder, InProcessRunner, register_backend
from hwnas.profilers.base import Profiler

# Runs with onnxruntime's profiler on; the first few are warm-up and dropped.
PROFILED_RUNS = 25
PROFILED_WARMUP = 5


def _session(model: Any, threads: int, profile_prefix: str | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
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


class OrtBuilder(Builder):
    def unit(self, unit: Unit) -> OnnxArtefact:
        from hwnas.graph.builders.onnx import unit_to_onnx

        return OnnxArtefact(unit_to_onnx(unit), list(unit.wiring()[0]))

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
