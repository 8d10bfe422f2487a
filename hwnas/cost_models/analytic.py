"""Analytic cost models: FLOPs/params/memory, a FLOPs-proportional baseline and a roofline estimate.

These need little or no data, so a device with no measurements still gets a first estimate:

- :func:`model_costs` sums the LayerSpec analytic costs (FLOPs, MACs, params, weight and peak activation
  bytes; conventions in ``hwnas.graph.analytic``).
- :class:`FlopsProportionalModel`: ``y = c · FLOPs`` (+ b), ``c`` fitted by least squares on relative
  error. The usual proxy, and the baseline the boosted and LUT models must beat.
- :class:`RooflineModel`: ``t = max(FLOPs / peak FLOP/s, bytes / bandwidth)`` from the device config's
  ``peak_flops`` and ``memory_bandwidth_bytes_s``; needs no fit. With ``calibrate=True`` and data it fits
  one scale factor (the median ratio measured / roofline), since real kernels rarely reach the roof.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from hwnas.cost_models.base import CostModel, validate_X, validate_Xy
from hwnas.errors import InputError


def model_costs(spec: Any) -> dict[str, float]:
    """FLOPs, MACs, params and memory of a ModelSpec (weights + the largest layer's activations)."""
    totals = spec.totals()
    return {
        "flops": float(totals["flops"]),
        "macs": float(totals["macs"]),
        "params": float(totals["params"]),
        "weight_bytes": float(totals["weight_bytes"]),
        "peak_activation_bytes": float(totals["peak_activation_bytes"]),
        "memory_bytes": float(totals["weight_bytes"] + totals["peak_activation_bytes"]),
    }


def _column(estimator: Any, column: str | int, X_raw: Any) -> int:
    """Index of ``column`` in the validated matrix (a name needs a DataFrame at fit or predict time)."""
    if isinstance(column, (int, np.integer)):
        return int(column)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None and hasattr(X_raw, "columns"):
        names = list(X_raw.columns)
    if names is None or column not in list(names):
        raise InputError(
            f"{type(estimator).__name__}: no column {column!r} in the features",
            hint="pass layer features (hwnas.cost_models.features.layer_features) or an integer column index",
        )
    return list(names).index(column)


class FlopsProportionalModel(CostModel):
    """``y = c · FLOPs`` (+ ``b`` with ``fit_intercept``), fitted to minimise relative squared error."""

    kind = "flops"

    def __init__(self, flops_column: str | int = "flops", fit_intercept: bool = False) -> None:
        self.flops_column = flops_column
        self.fit_intercept = fit_intercept

    def fit(self, X: Any, y: Any) -> FlopsProportionalModel:
        raw = X
        X, y = validate_Xy(self, X, y)
        y = np.asarray(y, float)
        self.column_index_ = _column(self, self.flops_column, raw)
        if not 0 <= self.column_index_ < X.shape[1]:
            raise ValueError(f"flops_column {self.flops_column} out of range for {X.shape[1]} features")
        f = X[:, self.column_index_]
        w = 1.0 / np.abs(y) if np.all(y != 0) else np.ones_like(y)
        A = (np.column_stack([f, np.ones_like(f)]) if self.fit_intercept else f[:, None]) * w[:, None]
        sol, *_ = np.linalg.lstsq(A, y * w, rcond=None)
        self.coef_ = float(sol[0])
        self.intercept_ = float(sol[1]) if self.fit_intercept else 0.0
        self._fit_band(y, self.coef_ * f + self.intercept_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_X(self, X, reset=False)
        return self.coef_ * X[:, self.column_index_] + self.intercept_

    def to_payload(self) -> dict[str, Any]:
        check_is_fitted(self)
        return {"column": self.flops_column, "coef": self.coef_, "intercept": self.intercept_}


class RooflineModel(CostModel):
    """Roofline latency in ms: ``1000 · max(FLOPs / peak_flops, bytes / memory_bandwidth_bytes_s)``.

    ``bytes`` is the sum of ``bytes_columns`` (activation and weight bytes of a layer). Needs no fit; with
    ``calibrate=True``, ``fit`` learns a scale factor (median of measured / roofline).
    """

    kind = "roofline"

    def __init__(
        self,
        peak_flops: float | None = None,
        memory_bandwidth_bytes_s: float | None = None,
        flops_column: str | int = "flops",
        bytes_columns: tuple[str | int, ...] = ("activation_bytes", "weight_bytes"),
        calibrate: bool = False,
    ) -> None:
        self.peak_flops = peak_flops
        self.memory_bandwidth_bytes_s = memory_bandwidth_bytes_s
        self.flops_column = flops_column
        self.bytes_columns = bytes_columns
        self.calibrate = calibrate

    @classmethod
    def from_device_config(cls, config: Any, **kwargs: Any) -> RooflineModel:
        """A roofline from a DeviceConfig's ``peak_flops`` and ``memory_bandwidth_bytes_s``."""
        if not config.peak_flops or not config.memory_bandwidth_bytes_s:
            raise InputError(
                f"device config {config.name!r} has no peak_flops / memory_bandwidth_bytes_s",
                hint=f"add both fields to {config.source_path or 'the device YAML'} for roofline estimates",
            )
        return cls(
            peak_flops=config.peak_flops, memory_bandwidth_bytes_s=config.memory_bandwidth_bytes_s, **kwargs
        )

    def _check_params(self) -> None:
        for name in ("peak_flops", "memory_bandwidth_bytes_s"):
            v = getattr(self, name)
            if v is None or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")

    def _raw(self, X: np.ndarray, raw: Any) -> np.ndarray:
        fi = _column(self, self.flops_column, raw)
        bi = [_column(self, c, raw) for c in self.bytes_columns]
        compute_s = np.abs(X[:, fi]) / float(self.peak_flops)
        memory_s = np.abs(X[:, bi]).sum(axis=1) / float(self.memory_bandwidth_bytes_s)
        return 1000.0 * np.maximum(compute_s, memory_s)

    def fit(self, X: Any, y: Any = None) -> RooflineModel:
        self._check_params()
        raw = X
        if y is None:
            X = validate_X(self, X, reset=True)
        else:
            X, y = validate_Xy(self, X, y)
        self.scale_ = 1.0
        if self.calibrate and y is not None:
            r = self._raw(X, raw)
            ok = r > 0
            if ok.any():
                self.scale_ = float(np.median(np.asarray(y, float)[ok] / r[ok]))
        if y is not None:
            self._fit_band(np.asarray(y, float), self.scale_ * self._raw(X, raw))
        else:
            self.residual_band_ = {"relative": True, "lo": 0.0, "hi": 0.0, "coverage": 0.9}
        return self

    def predict(self, X: Any) -> np.ndarray:
        self._check_params()
        raw = X
        if hasattr(self, "n_features_in_"):
            X = validate_X(self, X, reset=False)
            scale = self.scale_
        else:  # needs no fit: validate without recording anything
            from sklearn.utils import check_array

            X = check_array(X)
            scale = 1.0
        return scale * self._raw(X, raw)

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Residual band when fitted on data; unfitted, the roofline is a lower bound: [t, t]."""
        if not hasattr(self, "residual_band_"):
            p = self.predict(X)
            return p, p
        return super().predict_interval(X)

    def to_payload(self) -> dict[str, Any]:
        return {
            "peak_flops": self.peak_flops,
            "memory_bandwidth_bytes_s": self.memory_bandwidth_bytes_s,
            "flops_column": self.flops_column,
            "bytes_columns": list(self.bytes_columns),
            "scale": getattr(self, "scale_", 1.0),
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    def _more_tags(self) -> dict[str, Any]:
        return {"requires_fit": False, "poor_score": True}
