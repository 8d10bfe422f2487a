"""onnxruntime's CUDA execution provider on the ``nvml-gpu`` backend (``connection.runtime: onnxruntime``).

Only where onnxruntime was built with CUDA (the ``onnxruntime-gpu`` wheel): otherwise the session refuses
with the fix. ``InferenceSession.run`` copies outputs back to the host, so one call is synchronous and the
host clock times it whole. Units are the one-layer / fused-unit ONNX models of the CPU backend, with its
fusion rules (onnxruntime applies its graph fusions before partitioning to providers). Inference only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import DeviceUnavailableError, InputError
from hwnas.profilers.onnxruntime_cpu import OnnxArtefact, OrtBuilder, OrtRunner, _feeds

PROVIDER = "CUDAExecutionProvider"


def cuda_provider_available() -> tuple[bool, str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return False, "onnxruntime is not installed"
    providers = ort.get_available_providers()
    if PROVIDER not in providers:
        return False, (f"onnxruntime {ort.__version__} has no {PROVIDER} (providers: "
                       f"{', '.join(providers)}); install onnxruntime-gpu")  # fmt: skip
    return True, f"onnxruntime {ort.__version__} {PROVIDER}"


def cuda_session(model: Any, device_id: int = 0) -> Any:
    import onnxruntime as ort

    ok, why = cuda_provider_available()
    if not ok:
        raise DeviceUnavailableError(why, hint="pip install onnxruntime-gpu (matching the CUDA runtime)")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    src = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    sess = ort.InferenceSession(src, opts, providers=[(PROVIDER, {"device_id": device_id}),
                                                      "CPUExecutionProvider"])  # fmt: skip
    if sess.get_providers()[0] != PROVIDER:
        raise DeviceUnavailableError(
            f"onnxruntime did not place the model on {PROVIDER}: {sess.get_providers()}"
        )
    return sess


class OrtCudaBuilder(OrtBuilder):
    pass


class OrtCudaRunner(OrtRunner):
    """Sessions on the CUDA provider; host-clock timing of synchronous ``run`` calls."""

    peak_memory = False  # the child-process RSS peak says nothing about GPU memory

    def __init__(self, config: DeviceConfig, *, threads: int, clock: str = "wall") -> None:
        super().__init__(config, threads=threads, clock=clock)
        self.device = "onnxruntime-cuda"
        self.readings: Any = None
        self.device_id = int(config.connection.get("cuda_device_id", 0))

    @property
    def source(self) -> str:
        return "wallclock-ort-cuda"

    def synchronize(self) -> None:  # run() returns host copies: nothing left in flight
        return None

    def _open(self, art: OnnxArtefact) -> tuple[Any, dict]:
        if art.session is None:
            from pathlib import Path

            src = str(art.source) if isinstance(art.source, Path) else art.source
            art.session = cuda_session(src, self.device_id)
            art.feeds = _feeds(art.session, art.input_shapes)
        return art.session, art.feeds

    def callable(self, artefact: OnnxArtefact, mode: str) -> Callable[[], object]:
        if mode != "inference":
            raise InputError(f"onnxruntime CUDA runs inference only, not {mode}",
                             hint="use connection.runtime: torch for --train-step")  # fmt: skip
        return super().callable(artefact, mode)

    def memory_job(self, artefact: Any, mode: str, workdir: Any) -> None:
        return None

    def breakdown(self, artefact: Any, model: Any, mode: str) -> None:
        return None
