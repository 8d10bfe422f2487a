"""Fixtures for the reliability tests."""

from __future__ import annotations

import hwnas.plugins

hwnas.plugins.load()  # few-shot samples are validated against the nb201 space's arch pattern
