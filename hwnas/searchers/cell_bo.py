"""Constrained BO made for categorical cell spaces (NAS-Bench-201): a Hamming-kernel GP, local acquisition.

HyperPower's GP (an ARD Matérn on the 30-dim one-hot encoding, scikit-learn) learns 30 length scales from
a few dozen noisy points and, with a perfect latency model, was level with random search with rejection
on most of the 13 NB201 devices. This searcher keeps HyperPower's acquisition (expected improvement over
the best feasible error times a feasibility term: the indicator of thesis eq. 3.4, or P(feasible) from the
cost model's interval) and changes the two parts that suit a cell space badly:

- **Surrogate** :class:`HammingGP`: ``k(x, x') = s² exp(-d(x, x') / ℓ)``, with ``d`` the number of edges
  whose operation differs (``encoding="codes"``) or of differing BANANAS path bits (``encoding="path"``).
  One length scale and a noise ratio, chosen by the profile marginal likelihood over a fixed grid (one
  Cholesky per grid point, no optimiser restarts: the fit is deterministic and takes milliseconds).
- **Acquisition optimiser**: ``optimizer="local"`` scores the Hamming-1 and -2 neighbourhoods of the
  incumbent, the Hamming-1 neighbourhoods of the ``top_k`` next-best feasible cells and ``n_random``
  random predicted-feasible cells (local search guided by the model, which is what works on NB201 cells:
  White et al., 2021, "local search is state of the art for NAS"); ``optimizer="pool"`` scores every
  unseen cell of the objective's finite pool.

Settings were chosen on some devices and scored on others (``benchmarks/nb201_cell_searcher.py``;
README "A searcher for cell spaces"). Registered as ``cell_bo`` (indicator) and ``cell_bo_prob``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from hwnas.errors import InputError
from hwnas.searchers.acquisition import IndicatorFeasibility, ProbabilityFeasibility, expected_improvement
from hwnas.searchers.base import Searcher
from hwnas.searchers.cell_encoding import encode, hamming, neighbours

_THREADS: list[ThreadpoolController] = []


def _one_thread():  # noqa: ANN202 - a context manager
    """One BLAS thread for small matrices; the controller is built once (threadpoolctl's library scan
    costs ~20 ms, more than a whole GP step)."""
    if not _THREADS:
        _THREADS.append(ThreadpoolController())
    return _THREADS[0].limit(limits=1)


_LENGTHS = np.geomspace(0.25, 40.0, 12)
_NOISES = np.array([1e-3, 1e-2, 0.05, 0.15, 0.4, 1.0])


class HammingGP:
    """GP regression with an exponential kernel on a Hamming distance; hyperparameters from a grid.

    ``y`` is standardised; for each length scale ℓ on the grid ``K0 = exp(-D/ℓ)`` is diagonalised once
    (``K0 = V Λ Vᵀ``), so every noise ratio r costs only ``Λ + r``; the signal variance is profiled out
    (s² = zᵀ(K0 + rI)⁻¹z / n) and the log marginal likelihood is ``-n/2·log s² - ½·log|K0 + rI|``."""

    def __init__(self, lengths: np.ndarray = _LENGTHS, noises: np.ndarray = _NOISES) -> None:
        self.lengths = np.asarray(lengths, float)
        self.noises = np.asarray(noises, float)

    def fit(self, X: np.ndarray, y: np.ndarray) -> HammingGP:
        y = np.asarray(y, float)
        self.mu_, self.sd_ = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mu_) / self.sd_
        D = hamming(X, X)
        n = len(z)
        best: tuple[float, Any] = (-np.inf, None)
        with _one_thread():  # small matrices: one BLAS thread beats several fighting for 2 cores
            self._grid(D, z, n, best_out := [best])
        best = best_out[0]
        self.length_, self.noise_, lam, V, self.s2_ = best[1]
        w = 1.0 / (lam + self.noise_)
        self._alpha = V @ (w * (V.T @ z))
        self._Vw = V * np.sqrt(w)  # k (K0 + rI)^-1 k^T = |k V sqrt(w)|^2
        self.X_ = X
        return self

    def _grid(self, D: np.ndarray, z: np.ndarray, n: int, best_out: list[Any]) -> None:
        best = best_out[0]
        for ell in self.lengths:
            lam, V = np.linalg.eigh(np.exp(-D / ell))
            lam = np.maximum(lam, 0.0)
            zv2 = (V.T @ z) ** 2
            for r in self.noises:
                s2 = max(float(np.sum(zv2 / (lam + r))) / n, 1e-12)
                ll = -0.5 * n * np.log(s2) - 0.5 * float(np.sum(np.log(lam + r)))
                if ll > best[0]:
                    best = (ll, (ell, r, lam, V, s2))
        best_out[0] = best

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent (noise-free) function, in y's units."""
        with _one_thread():
            k = np.exp(-hamming(X, self.X_) / self.length_)
            mean = k @ self._alpha
            var = np.maximum(1.0 - np.sum((k @ self._Vw) ** 2, axis=1), 1e-12) * self.s2_
        return self.mu_ + self.sd_ * mean, self.sd_ * np.sqrt(var)


class CellBO(Searcher):
    name = "cell_bo"

    def __init__(
        self,
        *args: Any,
        n_init: int = 10,
        feasibility: str = "indicator",
        encoding: str = "codes",
        optimizer: str = "local",
        top_k: int = 5,
        n_random: int = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if feasibility not in ("indicator", "probability"):
            raise InputError(
                f"cell_bo: feasibility must be 'indicator' or 'probability', got {feasibility!r}"
            )
        if optimizer not in ("local", "pool"):
            raise InputError(f"cell_bo: optimizer must be 'local' or 'pool', got {optimizer!r}")
        if n_init < 2:
            raise InputError(f"cell_bo: n_init must be >= 2, got {n_init}")
        encode(self.space, [self.space.sample(np.random.default_rng(0))], encoding)  # a clear error early
        self.n_init = n_init
        self.encoding = encoding
        self.optimizer_kind = optimizer
        self.top_k = top_k
        self.n_random = n_random
        self.feasibility_kind = feasibility
        self.feasibility: Any = None
        if self.cost_model is not None:
            term = IndicatorFeasibility if feasibility == "indicator" else ProbabilityFeasibility
            self.feasibility = term(self.cost_model, self.constraints)
        self.surrogate = HammingGP()
        self._pool_feas: np.ndarray | None = None
        self._pool_index: dict[tuple[Any, ...], int] | None = None

    def cost_model_updated(self) -> None:
        super().cost_model_updated()
        self._pool_feas = None

    def _feas(self, configs: list[dict[str, Any]]) -> np.ndarray:
        if self.feasibility is None or not configs:
            return np.ones(len(configs))
        return np.asarray(self.feasibility(configs), float)

    def _propose(self) -> dict[str, Any]:
        done = [t for t in self.history.trials if t.objective is not None]
        if len(done) < self.n_init or len({t.objective for t in done}) < 2:
            return self.sample_predicted_feasible()
        X = encode(self.space, [t.config for t in done], self.encoding)
        y = np.asarray([t.objective for t in done], float)
        running = [t for t in self.history.trials if t.state == "running"]
        if running:  # constant liar (CL-min), as HyperPower does for batches
            X = np.concatenate([X, encode(self.space, [t.config for t in running], self.encoding)])
            y = np.concatenate([y, np.full(len(running), float(y.min()))])
        self.surrogate.fit(X, y)
        feasible = [t for t in done if t.feasible]
        if feasible:  # the incumbent by the model's mean (the observations are single noisy runs)
            mean_f, _ = self.surrogate.predict(
                encode(self.space, [t.config for t in feasible], self.encoding)
            )
            best = float(mean_f.min())
            ranked = [feasible[i] for i in np.argsort(mean_f, kind="stable")]
        else:
            best, ranked = float(y.max()), sorted(done, key=lambda t: t.objective)
        seen = {self.space.key(t.config) for t in self.history.trials}
        cands, feas = self._candidates(ranked, seen)
        if not cands:
            return self.sample_predicted_feasible(max_tries=20000)
        mean, std = self.surrogate.predict(encode(self.space, cands, self.encoding))
        score = expected_improvement(mean, std, best) * feas
        return dict(cands[int(np.argmax(score))])

    def _pool(self) -> tuple[dict[tuple[Any, ...], int], np.ndarray | None] | None:
        """The objective's finite pool as key -> index (built once) and, for ``optimizer="pool"``, its
        feasibility term (one batched prediction per cost-model state instead of one per step)."""
        pool = self.candidate_pool
        if not pool:
            return None
        if getattr(self, "_pool_index", None) is None or len(self._pool_index) != len(pool):
            self._pool_index = {self.space.key(c): i for i, c in enumerate(pool)}
            self._pool_feas = None
        if self.optimizer_kind == "pool" and self._pool_feas is None:
            self._pool_feas = self._feas(pool)
        return self._pool_index, self._pool_feas

    def _candidates(
        self, ranked: list[Any], seen: set[tuple[Any, ...]]
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Unseen, predicted-feasible candidates and their feasibility term."""
        pooled = self._pool()
        if self.optimizer_kind == "pool" and pooled is not None and pooled[1] is not None:
            index, feas = pooled
            pool = self.candidate_pool or []
            idx = [i for k, i in index.items() if feas[i] > 0 and k not in seen]
            return [pool[i] for i in idx], feas[idx]
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        if ranked:
            for c in neighbours(self.space, ranked[0].config, radius=2):
                out.setdefault(self.space.key(c), c)
        for t in ranked[1 : self.top_k]:
            for c in neighbours(self.space, t.config, radius=1):
                out.setdefault(self.space.key(c), c)
        for _ in range(self.n_random):
            c = self.space.sample(self.rng)
            out.setdefault(self.space.key(c), c)
        fresh = [(k, c) for k, c in out.items() if k not in seen]
        if pooled is not None:  # an exact table: a candidate is its pool row (no projection needed)
            index = pooled[0]
            pool = self.candidate_pool or []
            cands = [pool[index[k]] for k, _ in fresh if k in index]
        else:
            cands = [self._project(c) for _, c in fresh]
        feas = self._feas(cands)
        keep = np.flatnonzero(feas > 0)
        return [cands[i] for i in keep], feas[keep]

    def describe(self) -> Mapping[str, Any]:
        return {"encoding": self.encoding, "optimizer": self.optimizer_kind, "n_init": self.n_init,
                "feasibility": self.feasibility_kind}  # fmt: skip
