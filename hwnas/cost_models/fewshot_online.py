"""A few-shot latency predictor that takes every new measurement of the device (measure-before-train).

:class:`OnlineFewShot` wraps a fitted :class:`~hwnas.cost_models.fewshot.FewShotLatencyPredictor` as a
:class:`~hwnas.cost_models.interface.CostPredictor` over search-space points (``key(point) -> arch``) and
refits it when :meth:`OnlineFewShot.update` adds a measured cell. Why it is cheap enough to refit after
every check: the method is chosen once, on the first samples (the estimator's ``method="auto"``), and
kept; a refit is then one fit per leave-one-out sample (the jackknife band) plus one prediction of every
cell from the estimator's cached reference features, about 20 ms at 50 samples on the 2-core VM. A
measured cell is priced by its measurement (a zero-width interval), not by the model.

The leave-one-out band costs O(k²) fits, so past ``dense_refits`` samples (30) the model is refitted only
when the sample has grown by ``growth`` (10 %); in between, each new cell is priced by its measurement
at once. A search that checks hundreds of cells (a device with a wide interval) stays in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.cost_models.interface import CostEstimate, PredictorBase
from hwnas.errors import InputError


def _interval_columns(frame: Any) -> tuple[str, str]:
    """(lower, upper) column names of a ``predict_all`` frame (both spellings the estimator has used)."""
    for lo, hi in (("lower_ms", "upper_ms"), ("latency_ms_lo", "latency_ms_hi")):
        if lo in frame.columns and hi in frame.columns:
            return lo, hi
    raise InputError(f"few-shot predictions have no interval columns (columns: {list(frame.columns)})")


class OnlineFewShot(PredictorBase):
    """``latency_ms`` of every reference cell from a few-shot fit that grows with each measurement.

    ``estimator``: a FewShotLatencyPredictor, fitted or not; ``archs``/``latency_ms``: the cells measured
    so far (k >= 5); ``key(point) -> arch string`` maps what the searcher asks about to the table's
    cells (identity by default). ``refit_method``: keep the method the first fit chose (default) or
    re-choose it at every refit (slow: leave-one-out over every method)."""

    cost_names = ("latency_ms",)

    def __init__(
        self,
        estimator: Any,
        archs: Sequence[str],
        latency_ms: Sequence[float],
        *,
        key: Callable[[Any], str] | None = None,
        refit_method: str = "keep",
        dense_refits: int = 30,
        growth: float = 1.1,
    ) -> None:
        if refit_method not in ("keep", "reselect"):
            raise InputError(f"refit_method must be 'keep' or 'reselect', got {refit_method!r}")
        self.estimator = estimator
        self.key = key or (lambda a: str(a))
        self.refit_method = refit_method
        self.measured: dict[str, float] = {}
        for a, v in zip(archs, latency_ms, strict=True):
            self.measured[str(a)] = float(v)
        self.n_refits = 0
        self.dense_refits = dense_refits
        self.growth = growth
        self._row: dict[str, int] | None = None
        self._fit(first=True)

    def _fit(self, first: bool = False) -> None:
        archs = list(self.measured)
        y = np.asarray([self.measured[a] for a in archs], float)
        if not first and self.refit_method == "keep":
            self.estimator.set_params(method=self.method_)
        prefit = first and getattr(self.estimator, "n_samples_", None) == len(archs)
        if not prefit:  # an estimator already fitted on exactly these cells is used as it is
            self.estimator.fit(archs, y)
        if first:
            self.method_ = self.estimator.method_
        frame = self.estimator.predict_all()
        lo, hi = _interval_columns(frame)
        if getattr(self, "_row", None) is None or len(self._row) != len(frame):
            # the reference table's cells, in its row order: the same at every refit, so built once
            self._row = {a: i for i, a in enumerate(frame["arch"].astype(str).tolist())}
        self._value = frame["latency_ms"].to_numpy(float).copy()
        self._lower = frame[lo].to_numpy(float).copy()
        self._upper = frame[hi].to_numpy(float).copy()
        self.level = float(frame["level"].iloc[0]) if "level" in frame.columns else 0.9
        for a, v in self.measured.items():  # a measured cell is its measurement
            i = self._row.get(a) if self._row is not None else None
            if i is not None:
                self._value[i] = self._lower[i] = self._upper[i] = v
        self.n_refits += 0 if first else 1
        self._fitted_at = len(self.measured)

    @property
    def values(self) -> np.ndarray:
        """Point latency of every reference cell, in the table's row order (measured ones as measured)."""
        return self._value.copy()

    @property
    def n_samples(self) -> int:
        return len(self.measured)

    def update(self, point: Any, costs: Mapping[str, float]) -> None:
        """Add one measured point (its ``latency_ms``) and refit."""
        if "latency_ms" not in costs:
            raise InputError(f"a few-shot update needs latency_ms, the measurement gave {sorted(costs)}")
        arch = self.key(point)
        value = float(costs["latency_ms"])
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"measured latency of {arch} must be finite and > 0 ms, got {value}")
        self.measured[arch] = value
        n = len(self.measured)
        if n <= self.dense_refits or n >= self.growth * self._fitted_at:
            self._fit()
        else:  # between refits the new cell is priced by its measurement at once
            i = self._row.get(arch) if self._row is not None else None
            if i is not None:
                self._value[i] = self._lower[i] = self._upper[i] = value

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        rows = np.empty(len(archs), dtype=np.int64)
        for j, a in enumerate(archs):
            arch = self.key(a)
            i = self._row.get(arch) if self._row is not None else None
            if i is None:
                raise InputError(f"cell {arch!r} is not in the few-shot reference table")
            rows[j] = i
        measured = np.asarray([self.key(a) in self.measured for a in archs], bool)
        source = np.where(measured, "measured", "predicted:fewshot").astype(object)
        return {
            "latency_ms": CostEstimate(
                "latency_ms", "ms", self._value[rows], self._lower[rows], self._upper[rows], self.level,
                source=source,
            )
        }  # fmt: skip

    def describe(self) -> str:
        return (
            f"few-shot latency ({self.method_}) on {self.n_samples} measured cells, refitted "
            f"{self.n_refits} time(s); interval at {self.level:.2f}"
        )
