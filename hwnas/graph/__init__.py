"""Framework-neutral layer IR: LayerSpec, extraction from torch/ONNX, builders and analytic costs.

Imports none of the other hwnas parts (ARCHITECTURE.md, "Which way dependencies point").
"""

from hwnas.graph.layer import KNOWN_OPS, UNKNOWN_OP, LayerSpec, ModelSpec, make_layer

__all__ = ["KNOWN_OPS", "UNKNOWN_OP", "LayerSpec", "ModelSpec", "make_layer"]
