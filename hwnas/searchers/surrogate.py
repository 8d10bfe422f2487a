"""Surrogates of the objective for Bayesian optimisation: scikit-learn's Gaussian process.

One job: ``fit(X, y)`` on unit-encoded configs, ``predict(X) -> (mean, std)``. The kernel is a constant
times an ARD Matérn-5/2 plus a white-noise term (validation error is noisy), the Spearmint default
family the thesis ran on; hyperparameters by maximum marginal likelihood with a few restarts.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits


def _lbfgs(max_iter: int):  # noqa: ANN202 - sklearn's optimizer callable
    from scipy.optimize import minimize

    def optimizer(obj_func, initial_theta, bounds):  # noqa: ANN001, ANN202
        res = minimize(
            obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds, options={"maxiter": max_iter}
        )
        return res.x, res.fun

    return optimizer


class GPSurrogate:
    """``max_iter`` caps each marginal-likelihood optimisation (a BO step refits from scratch, and the
    optimum barely moves after a few dozen L-BFGS steps)."""

    def __init__(self, seed: int = 0, n_restarts: int = 1, noise: float = 1e-3, max_iter: int = 60) -> None:
        self.seed = seed
        self.n_restarts = n_restarts
        self.noise = noise
        self.max_iter = max_iter
        self.gp_: GaussianProcessRegressor | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPSurrogate:
        d = X.shape[1]
        if self.gp_ is not None and self.gp_.X_train_.shape[1] == d:
            # Warm start from the last fit: one BO step adds one point, so the optimum barely moves and
            # one local optimisation from there replaces the random restarts.
            return self._fit_gp(X, y, self.gp_.kernel_, n_restarts=0)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.full(d, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(self.noise, (1e-6, 1e0))
        return self._fit_gp(X, y, kernel, n_restarts=self.n_restarts)

    def _fit_gp(self, X: np.ndarray, y: np.ndarray, kernel: Any, n_restarts: int) -> GPSurrogate:
        gp = GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=True,
            n_restarts_optimizer=n_restarts,
            optimizer=_lbfgs(self.max_iter),
            random_state=self.seed,
        )
        # Small matrices: one BLAS thread is faster than several fighting over the cores.
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(X, y)
        self.gp_ = gp
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.gp_ is not None, "fit first"
        with threadpool_limits(1):
            mean, std = self.gp_.predict(X, return_std=True)
        return np.asarray(mean, float), np.maximum(np.asarray(std, float), 1e-9)
