"""CostModel: the scikit-learn contract every hwnas cost model follows, plus intervals and model sums.

Every estimator here is a regressor over a numeric feature matrix (one row a layer, or one row an
architecture for tabular data). On top of ``fit``/``predict`` the base class adds:

- ``predict_interval(X)``: a (low, high) band around the point estimate. Each subclass says what the band
  is in ``interval_kind`` (``"quantile"``: quantile regressors; ``"residual-quantile"``: empirical
  quantiles of cross-validated relative residuals, split-conformal style; ``"measured-spread"``: the
  spread of repeated measurements behind a lookup-table entry).
- ``prob_within(X, budget)``: P(cost <= budget), from the band read as a normal distribution, so a
  searcher can turn a constraint into a probability of feasibility (BoTorch-style, STYLE.md §5).
- ``fit_overhead`` / ``predict_models``: model cost = sum of layer costs, then a fitted affine overhead
  ``a + b * sum`` (nn-Meter and Single-Path sum layers; the overhead absorbs what isolated layers miss:
  framework dispatch, cache effects between layers).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from hwnas.errors import InputError

# Two-sided coverage of the default band: 90 % (the 5th and 95th percentiles).
DEFAULT_COVERAGE = 0.90


class UnknownKeyError(InputError, KeyError):
    """A lookup-table cost model was asked for a layer key it has no entry (and no fallback) for."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return InputError.__str__(self)


def relative_residual_quantiles(y_true: np.ndarray, y_pred: np.ndarray, coverage: float) -> dict[str, Any]:
    """Quantiles of the residuals that make a band of the given coverage.

    Relative residuals ``(y - ŷ) / ŷ`` when every prediction is positive (latencies, energies: errors
    scale with the cost), absolute residuals otherwise. Returns ``{"relative": bool, "lo": q, "hi": q}``.
    """
    y_true = np.asarray(y_true, float).ravel()
    y_pred = np.asarray(y_pred, float).ravel()
    alpha = (1.0 - coverage) / 2.0
    relative = bool(np.all(y_pred > 0) and np.all(y_true > 0))
    res = (y_true - y_pred) / y_pred if relative else (y_true - y_pred)
    if res.size == 0:
        return {"relative": relative, "lo": 0.0, "hi": 0.0, "coverage": coverage}
    return {
        "relative": relative,
        "lo": float(np.quantile(res, alpha)),
        "hi": float(np.quantile(res, 1.0 - alpha)),
        "coverage": coverage,
    }


def apply_residual_band(point: np.ndarray, band: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Turn a point estimate and residual quantiles into (low, high)."""
    point = np.asarray(point, float)
    if band.get("relative", False):
        lo, hi = point * (1.0 + band["lo"]), point * (1.0 + band["hi"])
    else:
        lo, hi = point + band["lo"], point + band["hi"]
    return np.minimum(lo, point), np.maximum(hi, point)


def prob_below(
    point: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    budget: float | np.ndarray,
    coverage: float = DEFAULT_COVERAGE,
) -> np.ndarray:
    """P(cost <= budget) reading the band [lo, hi] as a normal's central ``coverage`` interval.

    The band's width sets sigma (``(hi - lo) / (2 z)``); a zero-width band gives an indicator.
    """
    point, lo, hi = (np.asarray(a, float) for a in (point, lo, hi))
    z = stats.norm.ppf(0.5 + coverage / 2.0)
    sigma = (hi - lo) / (2.0 * z)
    budget = np.broadcast_to(np.asarray(budget, float), point.shape)
    out = np.where(point <= budget, 1.0, 0.0)
    ok = sigma > 0
    out[ok] = stats.norm.cdf((budget[ok] - point[ok]) / sigma[ok])
    return out


class CostModel(RegressorMixin, BaseEstimator):
    """Base class: sklearn regressor + intervals + layer-sum model costs.

    Subclasses implement ``fit`` (validate inputs, set fitted attributes ending in ``_``, call
    ``self._fit_band(y, y_cv)``) and ``predict``; they may override ``predict_interval``.
    """

    interval_kind: ClassVar[str] = "residual-quantile"
    kind: ClassVar[str] = "base"

    # -- intervals -----------------------------------------------------------------------------
    def _fit_band(
        self, y: np.ndarray, y_pred_heldout: np.ndarray, coverage: float = DEFAULT_COVERAGE
    ) -> None:
        """Keep residual quantiles (from held-out or cross-validated predictions) for the default band."""
        self.residual_band_ = relative_residual_quantiles(y, y_pred_heldout, coverage)

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) arrays bracketing ``predict(X)``; what they are is ``interval_kind``."""
        check_is_fitted(self)
        return apply_residual_band(self.predict(X), self.residual_band_)

    def predict_with_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, low, high) in one call."""
        point = self.predict(X)
        lo, hi = self.predict_interval(X)
        return point, lo, hi

    def prob_within(self, X: Any, budget: float | np.ndarray) -> np.ndarray:
        """P(cost <= budget) per row, e.g. for constrained acquisition functions."""
        point, lo, hi = self.predict_with_interval(X)
        coverage = getattr(self, "residual_band_", {}).get("coverage", DEFAULT_COVERAGE)
        return prob_below(point, lo, hi, budget, coverage)

    # -- model = sum of layers + overhead ------------------------------------------------------
    def fit_overhead(self, X: Any, groups: Any, y_models: Any) -> CostModel:
        """Fit ``y_model ≈ a + b · Σ_layers ŷ`` on whole-model measurements (least squares, relative).

        ``groups[i]`` names the model of layer row ``i``; ``y_models`` maps each name (dict or Series) to
        its measured cost. Weighted by 1/y so the fit minimises relative, not absolute, error.
        """
        check_is_fitted(self)
        sums = self._group_sums(self.predict(X), groups)
        names = list(sums)
        s = np.array([sums[n] for n in names])
        y = np.array([float(y_models[n]) for n in names])
        if len(names) < 2:
            raise InputError("fitting an overhead term needs whole-model measurements of >= 2 models")
        w = 1.0 / np.abs(y)
        A = np.column_stack([np.ones_like(s), s]) * w[:, None]
        (a, b), *_ = np.linalg.lstsq(A, y * w, rcond=None)
        self.overhead_ = {"intercept": float(a), "slope": float(b), "n_models": len(names)}
        # Leave-one-out style band for model-level predictions: residuals of the affine fit.
        fitted = a + b * s
        self.model_band_ = relative_residual_quantiles(y, fitted, DEFAULT_COVERAGE)
        return self

    @staticmethod
    def _group_sums(values: np.ndarray, groups: Any) -> dict[Any, float]:
        out: dict[Any, float] = {}
        for g, v in zip(np.asarray(groups, dtype=object), np.asarray(values, float), strict=True):
            out[g] = out.get(g, 0.0) + float(v)
        return out

    def predict_models(self, X: Any, groups: Any) -> dict[Any, float]:
        """Per-model cost: sum of layer predictions, then the fitted overhead if there is one."""
        check_is_fitted(self)
        sums = self._group_sums(self.predict(X), groups)
        oh = getattr(self, "overhead_", None)
        if oh is None:
            return sums
        return {k: oh["intercept"] + oh["slope"] * v for k, v in sums.items()}

    # -- tags ------------------------------------------------------------------------------------
    def __sklearn_tags__(self):  # sklearn >= 1.6
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # sklearn < 1.6
        return {"poor_score": True}


def validate_X(estimator: BaseEstimator, X: Any, *, reset: bool) -> np.ndarray:
    """sklearn's input validation (records ``n_features_in_``/``feature_names_in_`` when ``reset``)."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # sklearn < 1.6
        return estimator._validate_data(X, reset=reset)  # type: ignore[attr-defined]
    return validate_data(estimator, X, reset=reset)


def validate_Xy(estimator: BaseEstimator, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training pair (numeric, finite, 2-D X; 1-D numeric y)."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # sklearn < 1.6
        return estimator._validate_data(X, y, y_numeric=True)  # type: ignore[attr-defined]
    return validate_data(estimator, X, y, y_numeric=True)
