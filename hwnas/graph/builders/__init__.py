"""Builders: LayerSpecs and whole architectures as runnable models, one module per backend.

``hwnas.graph.builders.torch`` (torch modules, inputs) and ``hwnas.graph.builders.onnx`` (tiny per-layer
ONNX models, whole-model export). Import the submodule you need; importing this package loads neither.
"""
