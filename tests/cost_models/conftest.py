"""Fixtures for cost-model tests."""

from __future__ import annotations

import pytest
from cost_model_helpers import build_store

import hwnas.plugins

hwnas.plugins.load()  # nb201-* featurizers and the few-shot space (cost models never import a space)


@pytest.fixture
def synthetic_store(tmp_path):
    store = build_store(tmp_path / "s.db")
    yield store
    store.close()
