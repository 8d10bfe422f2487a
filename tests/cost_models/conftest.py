"""Fixtures for cost-model tests."""

from __future__ import annotations

import pytest
from cost_model_helpers import build_store


@pytest.fixture
def synthetic_store(tmp_path):
    store = build_store(tmp_path / "s.db")
    yield store
    store.close()
