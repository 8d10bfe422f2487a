"""TensorFlow tests: one TF import per session (slow), skipped with the reason when hwnas[tf] is missing.

TensorFlow is imported through ``hwnas.graph.builders.keras.import_tf`` (torchvision first: importing
torchvision after TensorFlow segfaults), never with ``pytest.importorskip("tensorflow")``.
"""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def tf():
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: pip install 'hwnas[tf]'")
    from hwnas.graph.builders.keras import import_tf

    return import_tf()


@pytest.fixture(scope="session")
def litert(tf):
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("ai-edge-litert is not installed: pip install 'hwnas[tf]'")
    from ai_edge_litert import interpreter

    return interpreter
