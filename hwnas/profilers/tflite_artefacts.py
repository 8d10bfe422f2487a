"""The builder shared by the TFLite backends (host LiteRT, Android): units and models as ``.tflite`` files.

A unit (one LayerSpec or a fused chain) becomes one file through ``builders.keras.unit_to_keras`` and
``builders.tflite.convert``; the whole model through ``torch_to_keras`` of its torch module (its own
weights). Files live in a directory owned by the builder (removed with it); identical units share a file.
The quantisation (``float32`` or ``int8``) comes from ``connection.quantization`` of the device config.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import InputError
from hwnas.profilers.backend import Builder


def tflite_fusion_rules() -> Any:
    """The kernels the TFLite converter makes (checked in ``tests/tf/test_tflite_backends.py``): a
    convolution with its batch-norm folded into the weights and a ReLU/ReLU6/tanh as its fused activation
    is one CONV_2D / DEPTHWISE_CONV_2D; a dense layer with its activation one FULLY_CONNECTED; dropout and
    identity vanish."""
    from hwnas.graph.fusion import FusionRule, FusionRules

    acts = frozenset({"relu", "relu6", "tanh"})
    return FusionRules(
        "tflite",
        rules=(
            FusionRule("conv+bn+act", frozenset({"conv2d"}), (frozenset({"batchnorm"}), acts)),
            FusionRule("linear+act", frozenset({"linear"}), (acts,)),
        ),
        absorbed=frozenset({"dropout", "identity"}),
    )


def register_tflite_fusion() -> None:
    from hwnas.graph.fusion import register_fusion_rules

    register_fusion_rules(tflite_fusion_rules())


register_tflite_fusion()


@dataclass
class TfliteArtefact:
    """A ``.tflite`` file, its NCHW input shapes, the Keras → torch layer-name map, and runner state."""

    path: Path
    input_shapes: list[tuple[int, ...]]
    names: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict, repr=False)  # interpreter, remote path, ...


def quantization_of(config: DeviceConfig) -> str:
    q = str((config.connection or {}).get("quantization", "float32"))
    if q not in ("float32", "int8"):
        raise InputError(
            f"{config.source_path or config.name}: field 'connection.quantization': expected float32 or "
            f"int8, got {q!r}"
        )
    return q


class TfliteBuilder(Builder):
    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config)
        self.quantization = quantization_of(config)
        self._dir = Path(tempfile.mkdtemp(prefix="hwnas-tflite-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._cache: dict[str, TfliteArtefact] = {}

    def unit(self, unit: Any) -> TfliteArtefact:
        from hwnas.graph.builders.keras import unit_to_keras
        from hwnas.graph.builders.tflite import convert

        key = hashlib.sha1(unit.key().encode()).hexdigest()[:16]
        if key not in self._cache:
            specs = list(unit.layers)
            km = unit_to_keras(specs, name=f"unit_{key}")
            path = convert(km, self._dir / f"unit_{key}_{self.quantization}.tflite",
                           quantization=self.quantization)  # fmt: skip
            shapes = [tuple(specs[0].input_shape), *[tuple(s) for s in unit.extra_input_shapes]]
            self._cache[key] = TfliteArtefact(path, shapes, dict(km.hwnas_names))
        return self._cache[key]

    def model(self, model: Any, workdir: Path) -> TfliteArtefact:
        from hwnas.graph.builders.keras import torch_to_keras
        from hwnas.graph.builders.tflite import convert

        km = torch_to_keras(model.module, [tuple(model.input_shape)], name="model")
        path = convert(
            km, Path(workdir) / f"model_{self.quantization}.tflite", quantization=self.quantization
        )
        return TfliteArtefact(path, [tuple(model.input_shape)], dict(km.hwnas_names))

    def check_model(self, model: Any) -> None:
        if model.module is None:
            raise InputError(
                f"model {model.name} has no torch module: the TFLite backends build Keras models from torch "
                "(an .onnx file cannot be converted here)",
                hint="use a torchvision name, mbv2:<arch> or nb201:<arch>",
            )
