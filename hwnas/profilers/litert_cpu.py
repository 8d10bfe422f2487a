"""LiteRT (``ai-edge-litert``) on this machine's CPU: the same ``.tflite`` files a phone runs, timed here.

Builder: :class:`hwnas.profilers.tflite_artefacts.TfliteBuilder` (float32 or int8 per
``connection.quantization``). Runner: one LiteRT ``Interpreter`` per file with ``num_threads`` from the
config, inputs set once (seeded random, int8 inputs quantised with the file's own scale), then ``invoke``
timed in this process. ``connection.delegate``: ``xnnpack`` (LiteRT's default CPU delegate) or ``none``
(the builtin kernels only). Peak memory is measured in a child process like the other CPU backends.
The Python interpreter has no per-op profiler, so there is no in-model breakdown here (the Android
backend's ``benchmark_model --enable_op_profiling`` has one).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.device_config import DeviceConfig
from hwnas.errors import InputError
from hwnas.profilers.backend import Backend, InProcessRunner, register_backend, register_fingerprint
from hwnas.profilers.tflite_artefacts import TfliteArtefact, TfliteBuilder, quantization_of

HOST_DELEGATES = ("xnnpack", "none")


def host_delegate(config: DeviceConfig) -> str:
    d = str((config.connection or {}).get("delegate", "xnnpack"))
    if d not in HOST_DELEGATES:
        raise InputError(
            f"{config.source_path or config.name}: field 'connection.delegate': expected one of "
            f"{list(HOST_DELEGATES)} on the host, got {d!r}"
        )
    return d


def make_interpreter(path: str, threads: int, delegate: str = "xnnpack") -> Any:
    """A LiteRT interpreter with tensors allocated (``delegate="none"``: builtin kernels only)."""
    from ai_edge_litert import interpreter as litert

    kw: dict[str, Any] = {}
    if delegate == "none":
        kw["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = litert.Interpreter(model_path=str(path), num_threads=int(threads), **kw)
    interp.allocate_tensors()
    return interp


def random_inputs(interp: Any, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """(tensor index, array) per input: standard normal, quantised for int8/uint8 inputs."""
    rng = np.random.default_rng(seed)
    out = []
    for d in interp.get_input_details():
        x = rng.standard_normal(tuple(d["shape"])).astype(np.float32)
        if d["dtype"] in (np.int8, np.uint8):
            scale, zero = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / (scale or 1.0) + zero), info.min, info.max)
        out.append((d["index"], x.astype(d["dtype"])))
    return out


def run_tflite(path: str, threads: int = 1, delegate: str = "xnnpack", runs: int = 3) -> None:
    """Peak-memory child: load and invoke ``runs`` times (``hwnas.profilers.memory`` calls it)."""
    interp = make_interpreter(path, threads, delegate)
    for idx, x in random_inputs(interp):
        interp.set_tensor(idx, x)
    for _ in range(runs):
        interp.invoke()


class LiteRTRunner(InProcessRunner):
    peak_memory = True

    def __init__(self, config: DeviceConfig, *, threads: int, clock: str | None = None) -> None:
        super().__init__(config, threads=threads, clock=clock)
        self.delegate = host_delegate(config)

    def _open(self, art: TfliteArtefact) -> Any:
        if "interp" not in art.state:
            interp = make_interpreter(str(art.path), self.threads, self.delegate)
            for idx, x in random_inputs(interp):
                interp.set_tensor(idx, x)
            art.state["interp"] = interp
        return art.state["interp"]

    def callable(self, artefact: TfliteArtefact, mode: str) -> Callable[[], object]:
        return self._open(artefact).invoke

    def memory_job(self, artefact: TfliteArtefact, mode: str, workdir: Path) -> tuple[str, dict[str, Any]]:
        return "hwnas.profilers.litert_cpu:run_tflite", {"path": str(artefact.path), "threads": self.threads,
                                                         "delegate": self.delegate}  # fmt: skip


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("ai-edge-litert", "tensorflow-cpu", "tensorflow", "keras"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _probe(config: DeviceConfig) -> tuple[bool, str]:
    for mod, pkg in (("ai_edge_litert", "ai-edge-litert"), ("tensorflow", "tensorflow-cpu")):
        if importlib.util.find_spec(mod) is None:
            return False, f"{pkg} is not installed (pip install 'hwnas[tf]')"
    return True, "LiteRT interpreter on the local CPU"


def _fingerprint(config: DeviceConfig, versions: dict[str, str | None], *, threads: int) -> Any:
    """The local CPU's fingerprint plus what changes LiteRT's numbers: delegate and quantisation."""
    from hwnas.profilers.fingerprint import local_fingerprint
    from hwnas.store.records import Fingerprint

    fp = local_fingerprint(config, versions, threads=threads)
    return Fingerprint(fp.device, {**fp.fields, "delegate": host_delegate(config),
                                   "quantization": quantization_of(config)})  # fmt: skip


register_fingerprint("litert-cpu", _fingerprint)
register_backend(Backend(
    name="litert-cpu",
    builder=TfliteBuilder,
    runner=LiteRTRunner,
    probe=_probe,
    versions=_versions,
    modes=("inference",),
    fusion="tflite",
    fingerprint="litert-cpu",
    description="LiteRT (TFLite) interpreter in this process, .tflite files from the Keras builder",
))  # fmt: skip
