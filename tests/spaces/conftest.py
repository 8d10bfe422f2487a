"""Fixtures for search-space tests."""

from __future__ import annotations

import hwnas.plugins

hwnas.plugins.load()  # the registry tests look nb201-* featurizers up by name
