"""onnxruntime on the local CPU: per-layer isolation, per-node times inside the model, whole-model latency.

Per layer, each LayerSpec becomes its own tiny ONNX model (``hwnas.graph.builders.onnx.layer_to_onnx``)
and is timed alone: that is what a lookup table needs, independent of its neighbours. The whole model
is timed as one session; a second session with onnxruntime's profiler on gives each kernel's time in
context (fusions included), mapped back to layers and stored as ``in_model_latency_ms``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.graph.layer import LayerSpec
from hwnas.profilers import ort_profile
from hwnas.profilers.base import Profiler, Runner
from hwnas.profilers.timing import summarize
from hwnas.store.records import Measurement

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


class OnnxRuntimeCPUProfiler(Profiler):
    backend = "onnxruntime-cpu"
    supported_modes = ("inference",)

    def backend_versions(self) -> dict[str, str | None]:
        return {"onnxruntime": importlib.metadata.version("onnxruntime")}

    def _layer_runner(self, spec: LayerSpec, mode: str) -> Runner:
        from hwnas.graph.builders.onnx import layer_to_onnx

        sess = _session(layer_to_onnx(spec), self.threads)
        feeds = _feeds(sess, [spec.input_shape, *spec.extra_input_shapes])
        return lambda: sess.run(None, feeds)

    def _prepare(self, model: Any, workdir: Path) -> dict[str, Any]:
        if model.onnx_path is not None and Path(model.onnx_path).exists():
            path = Path(model.onnx_path)
        else:  # export into this profile's workdir without caching the (soon deleted) path on the model
            from hwnas.graph.builders.onnx import module_to_onnx

            path = module_to_onnx(model.module, tuple(model.input_shape), workdir / "model.onnx")
        return {"path": Path(path), "workdir": workdir, "input_shape": tuple(model.input_shape)}

    def _ensure_session(self, ctx: dict[str, Any]) -> tuple[Any, dict[str, np.ndarray]]:
        if "session" not in ctx:
            ctx["session"] = _session(str(ctx["path"]), self.threads)
            ctx["feeds"] = _feeds(ctx["session"], [ctx["input_shape"]])
        return ctx["session"], ctx["feeds"]

    def _model_runner(self, ctx: dict[str, Any], mode: str) -> Runner:
        sess, feeds = self._ensure_session(ctx)
        return lambda: sess.run(None, feeds)

    def _memory_job(self, ctx: dict[str, Any], mode: str) -> tuple[str, dict[str, Any]]:
        _, feeds = self._ensure_session(ctx)
        shapes = [list(v.shape) for v in feeds.values()]
        return "hwnas.profilers.memory:run_onnx", {"path": str(ctx["path"]), "input_shapes": shapes,
                                                   "threads": self.threads}  # fmt: skip

    def _model_breakdown(
        self, ctx: dict[str, Any], model: Any, mode: str, base: dict[str, Any]
    ) -> list[Measurement]:
        import onnx

        prefix = str(ctx["workdir"] / "ort_profile")
        sess = _session(str(ctx["path"]), self.threads, profile_prefix=prefix)
        feeds = _feeds(sess, [ctx["input_shape"]])
        for _ in range(PROFILED_RUNS):
            sess.run(None, feeds)
        times = ort_profile.parse_profile(sess.end_profiling())
        layers = model.spec.layers
        names = ort_profile.node_layer_map(onnx.load(str(ctx["path"]), load_external_data=False),
                                           [la.name for la in layers], [la.op for la in layers])  # fmt: skip
        mapping = ort_profile.map_kernels(times, names, [la.op for la in layers])
        per_layer, unmapped, kernels = ort_profile.layer_breakdown(times, mapping, skip_runs=PROFILED_WARMUP)
        out = []
        for idx in sorted(per_layer):
            stats = summarize(per_layer[idx])
            extra = {
                "kernels": kernels[idx],
                "unmapped_ms_median": float(np.median(unmapped)) if unmapped else 0.0,
            }
            rec = self._record(base, mode, "layer", "in_model_latency_ms", stats.median, layers[idx], idx,
                               stats=stats, source="ort-profiler", extra=extra)  # fmt: skip
            out.append(rec)
        return out
