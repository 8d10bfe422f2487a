"""The suite's isolation (tests/conftest.py) holds: a command without --store never touches ./hwnas.db."""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.cli.app import main
from hwnas.store import default_store_path


def test_default_store_is_per_test_and_outside_the_checkout(capsys) -> None:
    path = default_store_path()
    assert path.resolve().parent != Path.cwd().resolve() and "default-store" in str(path)
    assert "HWNAS_DEVICE_CONFIGS" not in os.environ
    before = (Path.cwd() / "hwnas.db").stat().st_mtime_ns if (Path.cwd() / "hwnas.db").exists() else None
    assert main(["export", "--format", "csv", "--out", str(path.parent / "x.csv")]) == 2  # no store yet
    capsys.readouterr()
    after = (Path.cwd() / "hwnas.db").stat().st_mtime_ns if (Path.cwd() / "hwnas.db").exists() else None
    assert after == before
