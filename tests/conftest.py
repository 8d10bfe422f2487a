"""Session-wide isolation: no test reads or writes the user's environment.

A CLI command run without ``--store`` uses ``$HWNAS_STORE`` or ``./hwnas.db`` (the checkout, shared by every
test and every run); each test gets its own default store in a temporary folder instead, and a
``$HWNAS_DEVICE_CONFIGS`` set in the caller's shell does not change which device configs tests see.
Hypothesis runs without deadlines or the too-slow health check: CI machines are shared and slow, and a
property test is about inputs, not speed.
"""

from __future__ import annotations

import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a dev dependency: without it only the property tests fail to import
    pass
else:
    settings.register_profile("hwnas", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("hwnas")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HWNAS_STORE", str(tmp_path_factory.mktemp("default-store") / "hwnas.db"))
    monkeypatch.delenv("HWNAS_DEVICE_CONFIGS", raising=False)
