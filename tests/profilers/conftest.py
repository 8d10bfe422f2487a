"""Fixtures for profiler tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path):
    from hwnas.store import SQLiteStore

    with SQLiteStore(tmp_path / "store.db") as s:
        yield s
