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
    def fit_overhead(self, X: Any, groups: Any, y_models: Any, by: Any = None) -> CostModel:
        """Fit the model-level overhead on whole-model measurements.

        ``groups[i]`` names the model of layer row ``i``; ``y_models`` maps each name (dict or Series) to
        its measured cost. Without ``by``: ``y ≈ a + b · Σ_layers ŷ`` (affine). With ``by`` (a label per
        row, e.g. the op kind): ``y ≈ a + Σ_k b_k · Σ_{layers of kind k} ŷ``, non-negative, so that ops
        a runtime fuses away inside the whole model (isolated batch-norm, activation) can weigh less
        than ops that run as timed. Weighted by 1/y: relative, not absolute, error is minimised.
        """
        from scipy.optimize import nnls

        check_is_fitted(self)
        pred = np.asarray(self.predict(X), float)
        names = list(dict.fromkeys(np.asarray(groups, dtype=object).tolist()))
        if len(names) < 2:
            raise InputError("fitting an overhead term needs whole-model measurements of >= 2 models")
        y = np.array([float(y_models[n]) for n in names])
        w = 1.0 / np.abs(y)
        labels = None if by is None else [str(v) for v in np.asarray(by, dtype=object)]
        A = self._overhead_design(pred, groups, names, labels)
        kinds = sorted(set(labels)) if labels is not None else None
        if kinds is None:
            (a, b), *_ = np.linalg.lstsq(A * w[:, None], y * w, rcond=None)
            self.overhead_ = {"intercept": float(a), "slope": float(b), "n_models": len(names)}
        else:
            coef, _ = nnls(A * w[:, None], y * w)
            self.overhead_ = {
                "intercept": float(coef[0]),
                "slopes": dict(zip(kinds, map(float, coef[1:]), strict=True)),
                "by": "op_code",
                "n_models": len(names),
            }
        fitted = apply_overhead(self.overhead_, pred, groups, labels)
        self.model_band_ = relative_residual_quantiles(
            y, np.array([fitted[n] for n in names]), DEFAULT_COVERAGE
        )
        return self

    @staticmethod
    def _overhead_design(
        pred: np.ndarray, groups: Any, names: list[Any], labels: list[str] | None
    ) -> np.ndarray:
        index = {n: i for i, n in enumerate(names)}
        kinds = sorted(set(labels)) if labels is not None else ["*"]
        col = {k: j for j, k in enumerate(kinds)}
        A = np.zeros((len(names), 1 + len(kinds)))
        A[:, 0] = 1.0
        for i, (g, v) in enumerate(zip(np.asarray(groups, dtype=object), pred, strict=True)):
            A[index[g], 1 + col[labels[i] if labels is not None else "*"]] += v
        return A

    def predict_models(self, X: Any, groups: Any, by: Any = None) -> dict[Any, float]:
        """Per-model cost: sum of layer predictions, then the fitted overhead if there is one."""
        check_is_fitted(self)
        labels = None if by is None else [str(v) for v in np.asarray(by, dtype=object)]
        return apply_overhead(
            getattr(self, "overhead_", None), np.asarray(self.predict(X), float), groups, labels
        )

    # -- tags ------------------------------------------------------------------------------------
    def __sklearn_tags__(self):  # sklearn >= 1.6
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # sklearn < 1.6
        return {"poor_score": True}


def apply_overhead(
    overhead: dict[str, Any] | None, pred: np.ndarray, groups: Any, labels: list[str] | None = None
) -> dict[Any, float]:
    """Model totals from layer predictions: Σ, then ``a + b·Σ`` or ``a + Σ_k b_k·Σ_k`` (see fit_overhead).

    Layers of a kind the per-kind fit never saw keep slope 1 (their cost as predicted).
    """
    out: dict[Any, float] = {}
    slopes = (overhead or {}).get("slopes")
    if slopes is not None and labels is None:
        raise InputError("this overhead is per op kind: pass the op kind of each layer row")
    for i, (g, v) in enumerate(zip(np.asarray(groups, dtype=object), pred, strict=True)):
        if slopes is not None:
            v = v * slopes.get(labels[i], 1.0)
        out[g] = out.get(g, 0.0) + float(v)
    if overhead is None:
        return out
    if slopes is not None:
        return {k: overhead["intercept"] + v for k, v in out.items()}
    return {k: overhead["intercept"] + overhead["slope"] * v for k, v in out.items()}


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
