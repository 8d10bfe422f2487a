"""TFLite op names → LayerSpecs: how benchmark_model's per-op rows and LiteRT's ops are charged to layers.

A TFLite op is named by its output tensors, which carry the Keras layer names the converter saw
(``functional_1/blocks__3__conv__0_1/convolution;functional_1/blocks__3__conv__2_1/Relu6`` for a
convolution with its ReLU6 fused in). ``hwnas.graph.builders.keras`` names every Keras layer after its torch
module and records the exact map (``hwnas_names``), so a name segment, less TF's ``_<n>`` uniquifying
suffix, gives a torch module name, and its longest dotted prefix among the LayerSpec names gives the layer.
An op that names several layers (a fused kernel) is charged to the first of them in model order; the others
are listed as fused into it. The converter renames the tensor of the graph's output to the signature's
(``StatefulPartitionedCall_1:0``), so the last op, when it names no layer that way, is charged to the last
layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_SUFFIX = re.compile(r"_\d+$")
_SIGNATURE_OUTPUT = re.compile(r"^(StatefulPartitionedCall|PartitionedCall|Identity)(_\d+)?(:\d+)?$")


@dataclass
class OpMapping:
    """For each op (by position): the layer indices it names, first = the layer it is charged to."""

    layers: list[list[int]] = field(default_factory=list)

    @property
    def unmapped(self) -> list[int]:
        return [i for i, idx in enumerate(self.layers) if not idx]


def _segments(op_name: str) -> list[str]:
    return [seg for part in op_name.split(";") for seg in part.split("/") if seg]


def map_ops(op_names: Sequence[str], layer_names: Sequence[str], keras_names: Mapping[str, str]) -> OpMapping:
    """Charge each TFLite op to LayerSpec indices (see the module doc).

    ``keras_names`` is the Keras model's ``hwnas_names`` (Keras layer name → torch module name).
    """
    index = {name: i for i, name in enumerate(layer_names) if name}
    out = OpMapping()
    for op in op_names:
        found: list[int] = []
        for seg in _segments(op):
            cand = seg
            torch_name = keras_names.get(cand)
            while torch_name is None and _SUFFIX.search(cand):
                cand = _SUFFIX.sub("", cand)
                torch_name = keras_names.get(cand)
            if torch_name is None:
                continue
            parts = torch_name.split(".")
            for n in range(len(parts), 0, -1):
                hit = index.get(".".join(parts[:n]))
                if hit is not None:
                    if hit not in found:
                        found.append(hit)
                    break
        out.layers.append(sorted(found))
    if out.layers and not out.layers[-1] and index and _SIGNATURE_OUTPUT.match(op_names[-1].split(";")[-1]):
        out.layers[-1] = [len(layer_names) - 1]
    return out
