"""Keras models → ``.tflite`` files: float32, or int8 post-training quantisation with representative data.

``convert`` writes one file; ``model_to_tflite`` a whole torch network (through ``builders.keras``);
``units_to_tflite`` one file per fused unit (a chain of LayerSpecs), for per-unit timing in isolation,
with a ``units.json`` manifest naming each file's layers. int8 is full-integer quantisation (int8 weights,
activations, inputs and outputs: what phone NPUs and XNNPACK's int8 path run), calibrated on
``representative_data`` or, by default, on seeded standard-normal inputs — a timing model only needs
plausible ranges, not accuracy; pass real images when accuracy matters.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, Shape

QUANTIZATIONS = ("float32", "int8")
log = logging.getLogger(__name__)


def _tf() -> Any:
    from hwnas.graph.builders.keras import import_tf

    return import_tf()


def random_representative_data(
    input_shapes: Sequence[Shape], n: int = 8, seed: int = 0
) -> Callable[[], Iterator]:
    """A representative-dataset generator: ``n`` seeded standard-normal samples per input (NHWC shapes)."""

    def gen() -> Iterator[list[np.ndarray]]:
        rng = np.random.default_rng(seed)
        for _ in range(n):
            yield [rng.standard_normal(tuple(s)).astype(np.float32) for s in input_shapes]

    return gen


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The converter prints SavedModel notes on stdout; library code must not (ARCHITECTURE.md)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # int8 with random calibration: TF warns that input statistics were not given; they are not needed
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        yield


def convert(model: Any, path: str | Path, *, quantization: str = "float32",
            representative_data: Callable[[], Iterable[list[np.ndarray]]] | None = None,
            calibration_samples: int = 8, seed: int = 0) -> Path:  # fmt: skip
    """Write ``model`` (a Keras model) as a ``.tflite`` file and return its path."""
    if quantization not in QUANTIZATIONS:
        raise InputError(f"unknown quantization {quantization!r}", hint=f"one of {', '.join(QUANTIZATIONS)}")
    tf = _tf()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantization == "int8":
            shapes = [tuple(int(d) for d in t.shape) for t in model.inputs]
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative_data or random_representative_data(
                shapes, calibration_samples, seed
            )
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        try:
            blob = conv.convert()
        except Exception as exc:  # the converter raises ConverterError and plain exceptions alike
            raise InputError(f"TFLite conversion of {model.name} ({quantization}) failed: {exc}") from exc
    path.write_bytes(blob)
    return path


def model_to_tflite(module: Any, input_shape: Shape, path: str | Path, *, name: str = "model",
                    quantization: str = "float32", **kw: Any) -> Path:  # fmt: skip
    """A whole torch network (eval mode, its weights) as a ``.tflite`` file."""
    from hwnas.graph.builders.keras import torch_to_keras

    return convert(torch_to_keras(module, [input_shape], name=name), path, quantization=quantization, **kw)


def unit_file_name(specs: Sequence[LayerSpec], quantization: str) -> str:
    """A stable file name per unit: the op chain plus a hash of the layer keys."""
    ops = "-".join(s.op for s in specs)[:60]
    digest = hashlib.sha1("||".join(s.key() for s in specs).encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{ops}_{digest}_{quantization}.tflite")


def units_to_tflite(units: Sequence[Sequence[LayerSpec]], workdir: str | Path, *,
                    quantization: str = "float32", **kw: Any) -> list[dict[str, Any]]:  # fmt: skip
    """One ``.tflite`` per unit (identical units share a file); writes and returns the ``units.json`` list.

    Each manifest entry: ``file``, ``layers`` (names), ``keys`` (LayerSpec keys), ``quantization``.
    """
    from hwnas.graph.builders.keras import unit_to_keras

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, Any]] = []
    for specs in units:
        fname = unit_file_name(specs, quantization)
        target = workdir / fname
        if not target.exists():
            convert(unit_to_keras(list(specs), name=fname[:-7]), target, quantization=quantization, **kw)
        manifest.append({"file": fname, "layers": [s.name for s in specs], "keys": [s.key() for s in specs],
                         "quantization": quantization})  # fmt: skip
    (workdir / "units.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def run_tflite_file(path: str | Path, x_nchw: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """Run a float32 ``.tflite`` file from ``model_to_tflite`` on one NCHW input (transposed to the
    file's NHWC layout where it is 4-d) with the LiteRT interpreter; returns its first output. Used to
    check an exported file against the torch network it came from."""
    try:
        from ai_edge_litert import interpreter as litert
    except ModuleNotFoundError as exc:
        raise InputError("running a .tflite file needs LiteRT", hint="pip install 'hwnas[tf]'") from exc
    interp = litert.Interpreter(model_path=str(path), num_threads=int(threads))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = np.asarray(x_nchw, np.float32)
    if x.ndim == 4:
        x = np.transpose(x, (0, 2, 3, 1))
    if tuple(inp["shape"]) != x.shape:
        raise InputError(f"{path}: input shape {tuple(inp['shape'])}, got an input of {x.shape}")
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return np.asarray(interp.get_tensor(interp.get_output_details()[0]["index"]))
