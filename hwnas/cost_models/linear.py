"""LinearCostModel: HyperPower's power and memory models (Stamoulis thesis, eq. 3.2–3.3).

    P(â) = Σ_j p_j · â_j      (3.2)        M(â) = Σ_j m_j · â_j      (3.3)

linear in the J structural hyperparameters â (units per layer, kernel sizes, ... : whatever columns X
holds), "trained with a 10-fold cross validation" on the profiled designs. The cross-validated RMSPE
(the thesis' table 3.1 figure) is kept as ``cv_rmspe_``; the cross-validated predictions also give the
residual band of :meth:`predict_interval`.

``fit_intercept=True`` (the default) adds p_0·1, i.e. eq. 3.2 with a constant hyperparameter â_0 = 1; a
device's idle power makes that term non-zero in practice. ``fit_intercept=False`` is the literal form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from hwnas.cost_models import metrics
from hwnas.cost_models.base import CostModel, validate_X, validate_Xy


class LinearCostModel(CostModel):
    """Least squares (or ridge, ``alpha > 0``) in the structural hyperparameters, with k-fold CV.

    Parameters
    ----------
    fit_intercept : bool
        Add a constant term p_0 (see the module docstring).
    alpha : float
        Ridge penalty; 0 is ordinary least squares as in the thesis.
    positive : bool
        Constrain coefficients to be >= 0 (costs that only grow with each hyperparameter).
    cv : int
        Folds for the cross-validated error (10 in the thesis; fewer if there are fewer rows).
    random_state : int
        Seed of the fold shuffle.
    """

    kind = "linear"

    def __init__(
        self,
        fit_intercept: bool = True,
        alpha: float = 0.0,
        positive: bool = False,
        cv: int = 10,
        random_state: int = 0,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.positive = positive
        self.cv = cv
        self.random_state = random_state

    def _regressor(self) -> Any:
        if self.alpha > 0:
            return Ridge(alpha=self.alpha, fit_intercept=self.fit_intercept, positive=self.positive)
        return LinearRegression(fit_intercept=self.fit_intercept, positive=self.positive)

    def fit(self, X: Any, y: Any) -> LinearCostModel:
        if not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise ValueError(f"cv must be an integer >= 2, got {self.cv!r}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        X, y = validate_Xy(self, X, y)
        y = np.asarray(y, float)
        reg = self._regressor().fit(X, y)
        self.coef_ = np.asarray(reg.coef_, float).ravel()
        self.intercept_ = float(reg.intercept_) if self.fit_intercept else 0.0
        n_splits = int(min(self.cv, len(y)))
        if n_splits >= 2:
            folds = KFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
            y_cv = cross_val_predict(self._regressor(), X, y, cv=folds)
        else:
            y_cv = reg.predict(X)
        self.cv_predictions_ = y_cv
        self.cv_folds_ = n_splits
        self.cv_rmspe_ = metrics.rmspe(y, y_cv) if np.all(y != 0) else float("nan")
        self.cv_mape_ = metrics.mape(y, y_cv) if np.all(y != 0) else float("nan")
        self._fit_band(y, y_cv)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_X(self, X, reset=False)
        return X @ self.coef_ + self.intercept_

    def to_payload(self) -> dict[str, Any]:
        """Coefficients as plain data (for cost-table export)."""
        check_is_fitted(self)
        names = [
            str(n) for n in getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        ]
        return {"coef": self.coef_.tolist(), "intercept": self.intercept_, "feature_names": names}
