"""Framework-neutral layer IR: LayerSpec, extraction from torch/ONNX, builders and analytic costs.

- ``layer``: LayerSpec (one layer, its key), ModelSpec (a network), ``make_layer``.
- ``analytic``: MACs, FLOPs, params and bytes per layer (counting conventions in its docstring).
- ``from_torch.extract_layers`` (fx + shape propagation, hooks as fallback) and
  ``from_onnx.extract_layers_onnx`` (ONNX shape inference, SE/SiLU/GELU/linear fusions).
- ``builders.torch`` / ``builders.onnx``: a LayerSpec as a runnable module or tiny ONNX model; a whole
  torch model exported to ONNX.
- ``models.resolve_model``: a model name, ONNX path or search-space point as a ResolvedModel.

- ``fusion``: fused units (the kernels a runtime executes) by per-backend rules; ``Unit`` and its key.

Imports none of the other hwnas parts (ARCHITECTURE.md, "Which way dependencies point"; checked by the
import-linter contracts in ``.importlinter``): ``mbv2:`` / ``nb201:`` names resolve through a registry that
``hwnas.spaces`` fills (``models.register_model_family``). Importing this package does not import torch or
onnx.
"""

from hwnas.graph.layer import KNOWN_OPS, UNKNOWN_OP, LayerSpec, ModelSpec, make_layer

__all__ = ["KNOWN_OPS", "UNKNOWN_OP", "LayerSpec", "ModelSpec", "make_layer"]
