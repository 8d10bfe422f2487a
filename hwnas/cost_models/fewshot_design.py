"""Which cells to measure on a new device: designed first samples and adaptive next samples.

A few-shot fit regresses the new device's log-latency on the reference devices' (standardised) ones, so the
informative cells are those that spread the samples over the directions in which the references vary and
disagree. Designs work in the leading principal components of the augmented reference features
(:class:`~hwnas.cost_models.fewshot.ReferenceFeatures.z_aug`) of the connected cells:

- ``dopt``: greedy D-optimal (Fedorov's sequential rule): each next cell maximises the prediction variance
  ``x' (X'X + λI)^-1 x`` of a linear model in those components given the cells already chosen, which is
  the cell that shrinks the volume of the coefficient confidence ellipsoid most. A random half of the pool is
  searched per seed, so seeds give different designs.
- ``kcenter``: greedy max-min distance (each next cell is the one farthest from every chosen cell).
- ``kmeans``: the previous design (k-means centres, the cell nearest each).

Adaptive (:func:`next_rows`): given measured cells, the next ones maximise the disagreement of the fitted
candidate methods (query by committee: the spread of their predicted log-latencies, which is large where the
current fit is unsure which references to trust) plus the D-optimal variance, updated after every pick so
that one batch does not crowd one region.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans

from hwnas.cost_models.fewshot import ReferenceFeatures, _fit_predict
from hwnas.errors import InputError

DESIGNS: tuple[str, ...] = ("dopt", "kcenter", "kmeans")
DEFAULT_DESIGN = "dopt"
N_COMPONENTS = 6
COMMITTEE: tuple[str, ...] = ("nn-ridge", "nn-ridge-aug", "nearest-3", "nearest-5", "nn-ridge-aug@3")


def _components(feats: ReferenceFeatures, pool: np.ndarray, n: int) -> np.ndarray:
    """Scores of every cell on the leading ``n`` principal components of the pool's augmented features,
    each scaled to unit variance (so the design is not dominated by the first component)."""
    z = feats.z_aug
    mu = z[pool].mean(axis=0)
    zc = z[pool] - mu
    w, v = np.linalg.eigh(zc.T @ zc)  # the covariance's eigenvectors: the SVD's, 30x faster here
    n = int(min(n, len(w)))
    scores = (z - mu) @ v[:, ::-1][:, :n]
    sd = scores[pool].std(axis=0)
    sd[sd < 1e-12] = 1.0
    return scores / sd


def _variance(p: np.ndarray, minv: np.ndarray) -> np.ndarray:
    return np.einsum("ij,jk,ik->i", p, minv, p)


def _dopt(p: np.ndarray, cand: np.ndarray, k: int, start: Sequence[int], ridge: float = 1e-2) -> list[int]:
    x = np.hstack([np.ones((len(p), 1)), p])
    minv = np.eye(x.shape[1]) / ridge
    chosen = list(start)
    for r in chosen:
        v = x[r]
        mv = minv @ v
        minv -= np.outer(mv, mv) / (1.0 + v @ mv)
    taken = set(chosen)
    while len(chosen) < len(start) + k:
        var = _variance(x[cand], minv)
        for i in np.argsort(-var):
            if int(cand[i]) not in taken:
                best = int(cand[i])
                break
        else:  # pragma: no cover - the pool is checked to be large enough
            break
        v = x[best]
        mv = minv @ v
        minv -= np.outer(mv, mv) / (1.0 + v @ mv)
        chosen.append(best)
        taken.add(best)
    return chosen[len(start) :]


def _kcenter(
    p: np.ndarray, cand: np.ndarray, k: int, start: Sequence[int], rng: np.random.Generator
) -> list[int]:
    chosen = list(start) or [int(cand[np.argmin(((p[cand] - p[cand].mean(axis=0)) ** 2).sum(axis=1))])]
    first_new = len(start)
    d = np.min([((p[cand] - p[c]) ** 2).sum(axis=1) for c in chosen], axis=0)
    while len(chosen) < len(start) + k:
        best = int(cand[np.argmax(d + 1e-9 * rng.random(len(d)))])
        chosen.append(best)
        d = np.minimum(d, ((p[cand] - p[best]) ** 2).sum(axis=1))
    return chosen[first_new:] if start else chosen[:k]


def design_rows(
    feats: ReferenceFeatures,
    k: int,
    pool: np.ndarray,
    design: str = DEFAULT_DESIGN,
    seed: int = 0,
) -> np.ndarray:
    """``k`` rows of ``pool`` (candidate cells, e.g. the connected ones) to measure first."""
    if design not in DESIGNS:
        raise InputError(f"unknown sample design {design!r}", hint=f"designs: {', '.join(DESIGNS)}")
    if k > len(pool):
        raise InputError(
            f"k = {k} is more than the {len(pool)} candidate cells", hint=f"ask for at most {len(pool)}"
        )
    rng = np.random.default_rng(seed)
    p = _components(feats, pool, N_COMPONENTS if design != "kmeans" else 3)
    if design == "kmeans":
        km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(p[pool])
        chosen: list[int] = []
        for centre in km.cluster_centers_:
            order = np.argsort(((p[pool] - centre) ** 2).sum(axis=1))
            chosen.append(next(int(pool[i]) for i in order if int(pool[i]) not in chosen))
        return np.array(chosen)
    cand = pool if len(pool) < 4 * k else np.sort(rng.choice(pool, len(pool) // 2, replace=False))
    if design == "kcenter":
        return np.array(_kcenter(p, cand, k, [], rng))
    return np.array(_dopt(p, cand, k, []))


def next_rows(
    feats: ReferenceFeatures,
    given: np.ndarray,
    y_log: np.ndarray,
    k: int,
    pool: np.ndarray,
    committee: Sequence[str] = COMMITTEE,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most informative next cells of ``pool`` (not in ``given``) after measuring ``given``
    (rows, with log-latencies ``y_log``): committee disagreement plus D-optimal variance, greedy.
    Returns (rows, the committee's spread of predicted log-latency at each)."""
    given = np.asarray(given, dtype=np.int64)
    cand = np.setdiff1d(pool, given)
    if k > len(cand):
        raise InputError(f"asked for {k} new cells but only {len(cand)} unmeasured candidates remain")
    preds = np.vstack([_fit_predict(m, feats, given, y_log, slice(None)) for m in committee])
    spread = preds.std(axis=0)
    p = _components(feats, pool, N_COMPONENTS)
    x = np.hstack([np.ones((len(p), 1)), p])
    minv = np.eye(x.shape[1]) / 1e-2
    for r in given:
        mv = minv @ x[r]
        minv -= np.outer(mv, mv) / (1.0 + x[r] @ mv)
    s_norm = spread[cand] / (np.median(spread[cand]) + 1e-12)
    chosen: list[int] = []
    alive = np.ones(len(cand), bool)
    for _ in range(k):
        var = _variance(x[cand], minv)
        score = s_norm + var / (np.median(var) + 1e-12)
        score[~alive] = -np.inf
        i = int(np.argmax(score))
        alive[i] = False
        r = int(cand[i])
        chosen.append(r)
        mv = minv @ x[r]
        minv -= np.outer(mv, mv) / (1.0 + x[r] @ mv)
    rows = np.array(chosen)
    return rows, spread[rows]
