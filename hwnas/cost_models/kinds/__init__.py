"""Estimator kinds: how each cost-model kind is built, frozen into a cost table, and predicted from it.

A kind is one file in this package that calls :func:`register_kind` at import; the package imports
every module in it on first use, so adding a kind is adding one file (a kind defined elsewhere — a test,
a plug-in — registers the same way). :mod:`hwnas.cost_models.fitting` builds estimators by kind name and
:mod:`hwnas.cost_models.export` writes and evaluates their payloads through this registry alone: neither
switches on estimator types.

A payload is the fitted estimator as plain JSON data (never a pickle). ``predict(payload, frame, cache)``
evaluates it on a feature frame (columns by name) and returns the point estimate, or ``(point, lo, hi)``
when the kind has its own band; otherwise the residual band stored beside the payload applies.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hwnas.errors import InputError, SchemaError

PredictFn = Callable[[dict[str, Any], pd.DataFrame, "dict[int, Any] | None"], Any]


@dataclass(frozen=True)
class EstimatorKind:
    """One cost-model kind.

    ``make(**options)``: an unfitted estimator (options: ``seed``, ``fallback``, ``device_config``,
    ``n_estimators``; a kind ignores those it has no use for). ``to_payload(est)``: the fitted estimator
    as JSON-able data (``kind`` and ``band`` are added by the caller). ``predict``: see the module doc.
    ``payload_kind``: the ``kind`` field written (kinds sharing a payload format, e.g. ``xgboost`` and
    ``boosted``, share it; default: ``name``). ``tabular``: whether the kind fits architecture rows (not
    only layers). ``table_rows(est)``: rows a table stores verbatim (a lookup table's measured entries).
    """

    name: str
    make: Callable[..., Any]
    to_payload: Callable[[Any], dict[str, Any]]
    predict: PredictFn
    payload_kind: str = ""
    tabular: bool = True
    table_rows: Callable[[Any], pd.DataFrame] | None = None
    description: str = ""

    @property
    def payload_name(self) -> str:
        return self.payload_kind or self.name


_KINDS: dict[str, EstimatorKind] = {}
_discovered = False


def register_kind(kind: EstimatorKind, *, replace: bool = False) -> EstimatorKind:
    """Add ``kind`` to the registry (``replace`` to override an existing name)."""
    if kind.name in _KINDS and not replace and _KINDS[kind.name] is not kind:
        raise InputError(f"cost-model kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    _KINDS.pop(name, None)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def kind_names() -> tuple[str, ...]:
    """Every registered kind name, built-ins first in file order."""
    _discover()
    return tuple(_KINDS)


def get_kind(name: str) -> EstimatorKind:
    _discover()
    kind = _KINDS.get(name)
    if kind is None:
        raise InputError(f"unknown cost model {name!r}", hint=f"choose one of {', '.join(_KINDS)}")
    return kind


def kind_for_payload(payload_kind: str) -> EstimatorKind:
    """The kind that reads payloads of ``payload_kind`` (the one named so, else the first sharing it)."""
    _discover()
    if payload_kind in _KINDS and _KINDS[payload_kind].payload_name == payload_kind:
        return _KINDS[payload_kind]
    for kind in _KINDS.values():
        if kind.payload_name == payload_kind:
            return kind
    raise SchemaError(
        f"cost table payload of unknown kind {payload_kind!r}",
        hint=f"known kinds: {', '.join(_KINDS)}; a plug-in kind must be imported before its tables load",
    )


def kind_of_estimator(est: Any) -> EstimatorKind:
    """The kind of a fitted estimator, by its ``kind`` class attribute."""
    name = getattr(est, "kind", None)
    if not isinstance(name, str):
        raise InputError(f"cannot export a {type(est).__name__} as a cost table: it names no kind")
    try:
        return kind_for_payload(name)
    except SchemaError as exc:
        raise InputError(f"cannot export a {type(est).__name__} as a cost table: {exc.message}") from exc


def columns(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The named feature columns as a float matrix; a missing column is a clear error."""
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InputError(f"cost table needs feature column(s) {missing[:5]} that the input lacks")
    return frame[names].to_numpy(float)


def feature_names(est: Any) -> list[str]:
    """The fitted estimator's input column names (``x0, x1, ...`` when fitted on an array)."""
    return [str(n) for n in getattr(est, "feature_names_in_", [f"x{i}" for i in range(est.n_features_in_)])]
