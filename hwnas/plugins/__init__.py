"""Built-in plug-ins: the space-specific parts handed to the generic registries.

Cost models never import a search space and spaces never import cost models (``.importlinter``); what
connects them lives here. Each module in this package registers one space's parts when imported —
NAS-Bench-201's tabular featurizers (``nb201-*``) and its few-shot reference space — and :func:`load`
imports them all (idempotent). The CLI and :mod:`hwnas.workflows` call it; a script that uses a
space's featurizers by name calls ``hwnas.plugins.load()`` first. A third-party space adds a module of
its own, or calls the same ``register_*`` functions.
"""

from __future__ import annotations

import importlib
import pkgutil

_loaded = False


def load() -> None:
    """Import every plug-in module of this package (each registers itself)."""
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True
