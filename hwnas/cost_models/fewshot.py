"""Few-shot latency prediction for a new device from a handful of measured NAS-Bench-201 cells.

The features of a cell are its measured latencies on reference devices (default: the 13 devices of the
shipped table). Devices differ mostly by a monotone warp and by the relative cost of a few operations, so a
new device's log-latency is close to a combination of a few reference devices' log-latencies. With k = 10
samples the question is which combination; this module fits several candidates and picks one by
leave-one-out CV on the samples themselves:

- ``ridge``: ridge regression on the reference log-latencies (the plain baseline; alpha = 1).
- ``nn-ridge``: ridge on standardised reference log-latencies with non-negative weights (a faster reference
  device never predicts a slower new one), which averages out the whole-millisecond devices' rounding.
- ``nn-ridge-aug`` / ``nearest-m``: the same, or a fit on the m reference columns best correlated with the
  samples, over the references *augmented with pruning variants*: for each reference device an edge-op LUT
  (non-negative least squares on ``nb201-edgeop`` counts over the whole reference table) gives its per-op
  costs, and re-summing them as an eager runtime (every edge runs), a dead-code-eliminating one (unused
  edges removed) and a constant-folding one (only live edges) yields three synthetic devices. A new device
  whose runtime prunes dead edges differently from every reference is then still close to one of them.
  Three analytic columns join them: the network's MACs counted eagerly, without unused edges and with only
  live edges (FLOPs as a proxy, made aware of pruning).
- ``ensemble``: the mean log-latency of ``nn-ridge``, ``nn-ridge-aug`` and ``nearest-3``.

``method="auto"`` chooses the candidate with the lowest leave-one-out RMSE of log-latency on the samples
(roughly the RMSPE) and keeps every candidate's CV figures in ``cv_scores_``. The held-out device's column is
never read: only the samples given to :meth:`FewShotLatencyPredictor.fit` are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from hwnas.errors import InputError

METHODS: tuple[str, ...] = ("ridge", "nn-ridge", "nn-ridge-aug", "nearest-1", "nearest-3", "ensemble")
_MIN_MS = 1e-3  # floor before taking logs (disconnected cells measure ~0 on constant-folding runtimes)
DEFAULT_SPACE = "nb201"


# ---------------------------------------------------------------------------------------------- spaces


@dataclass(frozen=True)
class FewShotSpace:
    """What few-shot prediction needs from a search space, handed in by the space's plug-in
    (:mod:`hwnas.plugins`): this module never imports a space.

    ``load_table(path | None)``: a reference table (``arch`` + ``lat_<device>_ms`` columns; None = the
    shipped one). ``latency_columns(df)``, ``validate_table(df, required, source)``. ``canonical(arch)``:
    the table's spelling of an architecture id (InputError when malformed); ``arch_pattern``: a regex a
    valid id matches. ``edge_features(df)``: per cell, counts of each op by edge state
    (``live_<op>``, ``unused_<op>``, ``zeroin_<op>``, ``none``, ``adds_all``, ``adds_dce``, ``connected``)
    for the pruning variants; ``layer_features(df)``: MACs counted eagerly, without unused edges and with
    live edges only (``macs_m_all``, ``macs_m_dce``, ``macs_m_live``). Either may be None (no such
    augmented references)."""

    name: str
    load_table: Callable[[Any], pd.DataFrame]
    latency_columns: Callable[[pd.DataFrame], list[str]]
    validate_table: Callable[..., Any]
    canonical: Callable[[str], str]
    arch_pattern: str
    edge_features: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    layer_features: Callable[[pd.DataFrame], pd.DataFrame] | None = None


_SPACES: dict[str, FewShotSpace] = {}


def register_fewshot_space(space: FewShotSpace) -> FewShotSpace:
    _SPACES[space.name] = space
    return space


def get_fewshot_space(space: str | FewShotSpace) -> FewShotSpace:
    if isinstance(space, FewShotSpace):
        return space
    found = _SPACES.get(space)
    if found is None:
        raise InputError(
            f"no few-shot support registered for space {space!r}",
            hint=f"registered: {', '.join(_SPACES) or 'none'}; spaces register through hwnas.plugins "
            "(the CLI loads it; a script calls hwnas.plugins.load())",
        )
    return found


# ---------------------------------------------------------------------------------------------- references


@dataclass
class ReferenceFeatures:
    """Per cell of the reference table: standardised reference log-latencies, plain and augmented."""

    arch: np.ndarray  # [N] arch strings
    index: np.ndarray  # [N] NAS-Bench-201 indices (or row numbers)
    columns: list[str]  # reference latency columns
    log_ref: np.ndarray  # [N, R] raw log-latencies
    z_ref: np.ndarray  # [N, R] standardised
    z_aug: np.ndarray  # [N, R + 3R] standardised, with pruning variants
    aug_names: list[str]
    row_of: dict[str, int]  # arch -> row
    canonical: Callable[[str], str] = str

    def rows(self, archs: Sequence[str]) -> np.ndarray:
        out = np.empty(len(archs), dtype=np.int64)
        for i, a in enumerate(archs):
            r = self.row_of.get(a)
            if r is None:
                r = self.row_of.get(self.canonical(a))  # raises InputError when malformed
            if r is None:
                raise InputError(
                    f"cell {a!r} is not in the reference table",
                    hint="the reference table must cover every cell you sample or predict",
                )
            out[i] = r
        return out


def _standardise(m: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mu = m[mask].mean(axis=0)
    sd = m[mask].std(axis=0)
    sd[sd < 1e-12] = 1.0
    return (m - mu) / sd


def pruning_variants(
    table: pd.DataFrame, columns: Sequence[str], edge_features: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    """Three synthetic devices per reference column (eager / dead-code-eliminated / constant-folded), from a
    non-negative edge-op LUT fitted on that column over the table's connected cells. ``edge_features``:
    the space's per-cell op counts by edge state (see :class:`FewShotSpace`). Returns [N, 3R] ms."""
    e = edge_features
    ops = [c[len("live_") :] for c in e.columns if c.startswith("live_")]
    fit_rows = e["connected"].to_numpy() > 0
    live = {op: e[f"live_{op}"].to_numpy() for op in ops}
    unused = {op: e[f"unused_{op}"].to_numpy() for op in ops}
    zeroin = {op: e[f"zeroin_{op}"].to_numpy() for op in ops}
    out, names = [], []
    for col in columns:
        y = table[col].to_numpy(float)
        lut = _NNRidge(1e-6).fit(e.to_numpy(float)[fit_rows], y[fit_rows])
        c = dict(zip(e.columns, lut.coef_, strict=True))
        cost = {op: c[f"live_{op}"] for op in ops}
        add = c["adds_all"] + c["adds_dce"]
        base = lut.intercept_ + c["none"] * e["none"].to_numpy()
        live_t = sum(cost[op] * live[op] for op in ops)
        unused_t = sum(cost[op] * unused[op] for op in ops)
        zero_t = sum(cost[op] * zeroin[op] for op in ops)
        out += [
            base + live_t + unused_t + zero_t + add * e["adds_all"].to_numpy(),
            base + live_t + zero_t + add * e["adds_dce"].to_numpy(),
            base + live_t + add * e["adds_dce"].to_numpy(),
        ]
        names += [f"{col}:eager", f"{col}:dce", f"{col}:folded"]
    return np.column_stack(out), names


def analytic_references(layer_features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """MACs of each cell's network as an eager, a dead-code-eliminating and a constant-folding runtime runs
    it (the space's layer featurizer, e.g. ``nb201-layers``): "FLOPs as a proxy", as three more reference
    devices. Returns [N, 3]."""
    lay = layer_features
    names = ["macs_m_all", "macs_m_dce", "macs_m_live"]
    return np.maximum(lay[names].to_numpy(float), _MIN_MS), [f"analytic:{n}" for n in names]


def reference_features(
    table: pd.DataFrame, columns: Sequence[str] | None = None, space: str | FewShotSpace = DEFAULT_SPACE
) -> ReferenceFeatures:
    """Build the features of every cell from a reference table (validates ``arch`` and latency columns)."""
    sp = get_fewshot_space(space)
    cols = list(columns) if columns is not None else sp.latency_columns(table)
    if len(cols) < 2:
        raise InputError(
            f"the reference table needs at least 2 latency columns (lat_<device>_ms), found {cols}",
            hint="use the shipped table (default) or one in the same format with more devices",
        )
    sp.validate_table(table, ["arch", *cols], source="reference table")
    lat = np.maximum(table[cols].to_numpy(float), _MIN_MS)
    log_ref = np.log(lat)
    connected = (
        table["connected"].to_numpy() > 0 if "connected" in table.columns else np.ones(len(table), dtype=bool)
    )
    parts, aug_names = [log_ref], list(cols)
    if sp.edge_features is not None:
        variants, vnames = pruning_variants(table, cols, sp.edge_features(table))
        parts.append(np.log(np.maximum(variants, _MIN_MS)))
        aug_names += vnames
    if sp.layer_features is not None:
        analytic, anames = analytic_references(sp.layer_features(table))
        parts.append(np.log(analytic))
        aug_names += anames
    log_aug = np.hstack(parts)
    arch = table["arch"].astype(str).to_numpy()
    index = table["index"].to_numpy() if "index" in table.columns else np.arange(len(table))
    return ReferenceFeatures(
        arch=arch,
        index=index,
        columns=cols,
        log_ref=log_ref,
        z_ref=_standardise(log_ref, connected),
        z_aug=_standardise(log_aug, connected),
        aug_names=aug_names,
        row_of={a: i for i, a in enumerate(arch)},
        canonical=sp.canonical,
    )


# ---------------------------------------------------------------------------------------------- candidates


class _NNRidge:
    """Ridge with non-negative weights and a free intercept, solved as NNLS on the augmented system
    ``[Xc; sqrt(alpha) I] w = [yc; 0]`` (sklearn's positive ridge uses L-BFGS: 50x slower at this size)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> _NNRidge:
        mx, my = x.mean(axis=0), y.mean()
        a = np.vstack([x - mx, np.sqrt(self.alpha) * np.eye(x.shape[1])])
        b = np.concatenate([y - my, np.zeros(x.shape[1])])
        if a.shape[0] > 3 * a.shape[1]:  # tall: same minimiser on the QR-reduced system, much faster
            q, r = np.linalg.qr(a)
            a, b = r, q.T @ b
        self.coef_ = optimize.nnls(a, b)[0]
        self.intercept_ = my - mx @ self.coef_
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef_ + self.intercept_


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge with a free intercept in closed form (sklearn's ``Ridge`` solves the same system; this is
    10x faster at k = 10, which matters inside leave-one-out loops). Dual form when k < features."""
    mx, my = x.mean(axis=0), float(y.mean())
    xc, yc = x - mx, y - my
    n, p = xc.shape
    if n < p:
        w = xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(n), yc)
    else:
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(p), xc.T @ yc)
    return w, my - float(mx @ w)


def _nearest(z: np.ndarray, y: np.ndarray, m: int) -> tuple[np.ndarray, tuple[np.ndarray, float]]:
    zc = z - z.mean(axis=0)
    yc = y - y.mean()
    denom = np.sqrt((zc**2).sum(axis=0) * (yc**2).sum()) + 1e-12
    corr = np.abs(zc.T @ yc) / denom
    cols = np.argsort(-corr, kind="stable")[:m]
    return cols, _ridge(z[:, cols], y, 0.1)


# name -> (feature matrix, default alpha); "name@alpha" overrides the alpha
_LINEAR = {"ridge": ("log_ref", 1.0), "nn-ridge": ("z_ref", 0.3), "nn-ridge-aug": ("z_aug", 0.3)}
ENSEMBLE_PARTS: tuple[str, ...] = ("nn-ridge", "nn-ridge-aug", "nearest-3")


def parse_method(method: str) -> tuple[str, float | None]:
    """``"nn-ridge-aug@1"`` -> ``("nn-ridge-aug", 1.0)``; a bare name -> ``(name, None)``; an ensemble
    (``ensemble`` or ``ensemble=a+b+...``, the mean log-latency of its members) -> ``("ensemble", None)``.
    InputError when the name is not a method (``ridge``, ``nn-ridge``, ``nn-ridge-aug``, ``nearest-<m>``)."""
    if method.startswith("ensemble="):
        parts = method[len("ensemble=") :].split("+")
        if len(parts) < 2 or any(p.startswith("ensemble") for p in parts):
            raise InputError(
                f"few-shot method {method!r}: an ensemble names two or more methods, e.g. "
                "ensemble=nn-ridge+nearest-3"
            )
        for part in parts:
            parse_method(part)
        return "ensemble", None
    name, _, a = method.partition("@")
    ok = name in _LINEAR or name == "ensemble" or re.fullmatch(r"nearest-[1-9][0-9]?", name) is not None
    alpha = None
    if a:
        try:
            alpha = float(a)
        except ValueError:
            ok = False
        ok = ok and name in _LINEAR and alpha is not None and alpha > 0
    if not ok:
        raise InputError(
            f"unknown few-shot method {method!r}",
            hint=f"methods: auto, {', '.join(METHODS)}; ridge/nn-ridge/nn-ridge-aug take @alpha "
            "(e.g. nn-ridge-aug@1), nearest-<m> any m",
        )
    return name, alpha


def _fit_predict(
    method: str, feats: ReferenceFeatures, train: np.ndarray, y: np.ndarray, test: np.ndarray | slice
) -> np.ndarray:
    """Fit ``method`` on reference rows ``train`` with log-latencies ``y``; predict rows ``test`` (a slice
    predicts without copying the feature matrix: ``slice(None)`` = every cell)."""
    name, alpha = parse_method(method)
    if name in _LINEAR:
        attr, default = _LINEAR[name]
        x = getattr(feats, attr)
        a = default if alpha is None else alpha
        if name == "ridge":
            w, b = _ridge(x[train], y, a)
            return x[test] @ w + b
        model = _NNRidge(a).fit(x[train], y)
        return model.predict(x[test])
    if name.startswith("nearest-"):
        cols, (w, b) = _nearest(feats.z_aug[train], y, int(name.split("-")[1]))
        z = feats.z_aug[test, cols] if isinstance(test, slice) else feats.z_aug[test][:, cols]
        return z @ w + b
    parts = [_fit_predict(m, feats, train, y, test) for m in ensemble_parts(method)]
    return np.mean(parts, axis=0)


def ensemble_parts(method: str) -> tuple[str, ...]:
    """The members of an ensemble method (``ensemble`` = :data:`ENSEMBLE_PARTS`; ``ensemble=a+b``)."""
    if method == "ensemble":
        return ENSEMBLE_PARTS
    return tuple(method[len("ensemble=") :].split("+"))


def subset_features(feats: ReferenceFeatures, columns: Sequence[str]) -> ReferenceFeatures:
    """The features built from ``columns`` only (a subset of ``feats.columns``): every reference feature
    (standardisation, pruning variants) is computed per column, so a subset of a bank built on many
    columns equals the bank built on the subset. Lets a study build the features once."""
    cols = list(columns)
    missing = [c for c in cols if c not in feats.columns]
    if missing:
        raise InputError(f"reference columns {missing} are not in the feature bank")
    keep = set(cols)
    ref_idx = [feats.columns.index(c) for c in cols]
    aug_idx = [
        i
        for i, n in enumerate(feats.aug_names)
        if n in keep or n.split(":")[0] in keep or n.startswith("analytic:")
    ]
    return ReferenceFeatures(
        arch=feats.arch,
        index=feats.index,
        columns=cols,
        log_ref=feats.log_ref[:, ref_idx],
        z_ref=feats.z_ref[:, ref_idx],
        z_aug=feats.z_aug[:, aug_idx],
        aug_names=[feats.aug_names[i] for i in aug_idx],
        row_of=feats.row_of,
        canonical=feats.canonical,
    )


def loo_predictions(method: str, feats: ReferenceFeatures, rows: np.ndarray, y_log: np.ndarray) -> np.ndarray:
    """Leave-one-out predicted log-latency of each sample (fitted on the other k - 1)."""
    k = len(rows)
    pred = np.empty(k)
    for i in range(k):
        keep = np.arange(k) != i
        pred[i] = _fit_predict(method, feats, rows[keep], y_log[keep], rows[i : i + 1])[0]
    return pred


def loo_scores(
    method: str,
    feats: ReferenceFeatures,
    rows: np.ndarray,
    y_log: np.ndarray,
    pred: np.ndarray | None = None,
) -> dict[str, float]:
    """Leave-one-out figures of ``method`` on the samples: RMSE of log-latency, RMSPE, Spearman ρ."""
    if pred is None:
        pred = loo_predictions(method, feats, rows, y_log)
    t, p = np.exp(y_log), np.exp(pred)
    rho = stats.spearmanr(y_log, pred).statistic if np.ptp(y_log) > 0 and np.ptp(pred) > 0 else float("nan")
    return {
        "loo_rmse_log": float(np.sqrt(np.mean((pred - y_log) ** 2))),
        "loo_rmspe_pct": float(100 * np.sqrt(np.mean(((p - t) / t) ** 2))),
        "loo_spearman": float(rho),
    }


def selection_aware_loo(
    candidates: Sequence[str], feats: ReferenceFeatures, rows: np.ndarray, y_log: np.ndarray
) -> np.ndarray:
    """Leave-one-out predictions of the *whole* fit, method choice included: for each sample, the method
    with the lowest inner LOO error on the other k - 1 samples, fitted on them, predicts it."""
    k = len(rows)
    out = np.empty(k)
    for i in range(k):
        keep = np.arange(k) != i
        r, y = rows[keep], y_log[keep]
        best = min(candidates, key=lambda m: float(np.mean((loo_predictions(m, feats, r, y) - y) ** 2)))
        out[i] = _fit_predict(best, feats, r, y, rows[i : i + 1])[0]
    return out


def jackknife_band(y_log: np.ndarray, loo_log: np.ndarray, level: float = 0.90) -> tuple[float, float]:
    """Half-width ``q`` (in log-latency) of the jackknife conformal interval ``[ŷ·e^-q, ŷ·e^q]`` and the
    level it is valid at.

    ``q`` is the ⌈(k+1)·level⌉-th smallest leave-one-out residual ``|log y - log ŷ_(-i)|`` (the jackknife
    interval of Barber et al., 2021, with the split-conformal rank; the residuals are those of the whole
    procedure, method choice included: :func:`selection_aware_loo`). With too few samples for ``level``
    (⌈(k+1)·level⌉ > k) the largest residual is used and the level lowered to k / (k+1), the most the k
    residuals support; the returned level says so. Coverage is over new cells drawn like the samples; for
    a designed sample (``suggest-samples``) it is a nominal figure, checked by the few-shot benchmark.
    """
    r = np.sort(np.abs(np.asarray(y_log, float) - np.asarray(loo_log, float)))
    k = len(r)
    if k == 0:
        return 0.0, level
    rank = int(np.ceil((k + 1) * level))
    if rank > k:
        return float(r[-1]), k / (k + 1)
    return float(r[rank - 1]), level


# ---------------------------------------------------------------------------------------------- estimator


class FewShotLatencyPredictor(RegressorMixin, BaseEstimator):
    """Predict a new device's cost (latency by default) for every NAS-Bench-201 cell from k measured cells.

    Parameters
    ----------
    reference : DataFrame, path or None
        Reference table in the ``nb201.csv.gz`` format (``arch`` + ``lat_<device>_ms`` columns); None = the
        shipped table.
    reference_columns : list of str or None
        Which columns are the reference devices (default: every latency column). Any positive numeric
        per-cell columns work (e.g. reference devices' energies).
    exclude_columns : tuple of str
        Reference columns to leave out (e.g. the device being predicted, in a leave-one-device-out study).
    method : "auto" or a method (:data:`METHODS`, ``name@alpha``, ``ensemble=a+b``)
        "auto" picks among ``candidates`` by leave-one-out CV on the samples.
    level : float
        Nominal coverage of the prediction interval (jackknife conformal, see :func:`jackknife_band`).
    space : str or FewShotSpace
        The search space whose cells are predicted (registered by :mod:`hwnas.plugins`; ``nb201``).
    candidates : methods or None
        The pool "auto" chooses from; None = the shipped selection (:func:`shipped_selection`), chosen by
        nested leave-one-device-out CV on the 13 devices of the shipped table.
    calibration : float or None
        Multiplier on the jackknife half-width (a device-level calibration learned across devices, nested);
        None = the shipped one (1.0 when ``level`` is not the level it was learned at).
    metric : str
        Name of the predicted column (``latency_ms``, ``energy_mj``, ``peak_memory_bytes`` ...): only output
        names and messages depend on it; the machinery works on any positive cost (in log space).

    ``fit(X, y)``: ``X`` holds arch strings (a DataFrame with an ``arch`` column, or a sequence), ``y`` their
    costs. Fitted: ``method_``, ``cv_scores_`` (method -> LOO figures), ``cv_`` (the chosen one's),
    ``reference_columns_``, ``n_samples_``, ``band_log_`` and ``level_`` (the interval's half-width in
    log space, calibration included, and the level it holds at), ``calibration_``.
    """

    def __init__(
        self,
        reference: Any = None,
        reference_columns: Sequence[str] | None = None,
        exclude_columns: Sequence[str] = (),
        method: str = "auto",
        level: float = 0.90,
        space: Any = DEFAULT_SPACE,
        *,
        candidates: Sequence[str] | None = None,
        calibration: float | None = None,
        metric: str = "latency_ms",
    ) -> None:
        self.reference = reference
        self.reference_columns = reference_columns
        self.exclude_columns = exclude_columns
        self.method = method
        self.level = level
        self.space = space
        self.candidates = candidates
        self.calibration = calibration
        self.metric = metric

    # -- reference features are expensive-ish (12 NNLS fits): computed once per estimator instance
    def _features(self) -> ReferenceFeatures:
        key = (
            id(self.reference),
            tuple(self.reference_columns or ()),
            tuple(self.exclude_columns),
            id(self.space),
        )
        cached = getattr(self, "_feats_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        sp = get_fewshot_space(self.space)
        table = _load_reference(self.reference, sp)
        cols = (
            list(self.reference_columns) if self.reference_columns is not None else sp.latency_columns(table)
        )
        missing = [c for c in self.exclude_columns if c not in table.columns]
        if missing and self.reference_columns is None:
            raise InputError(f"exclude_columns {missing} are not in the reference table")
        cols = [c for c in cols if c not in set(self.exclude_columns)]
        feats = reference_features(table, cols, sp)
        self._feats_cache = (key, feats)
        return feats

    def _candidates(self) -> tuple[str, ...]:
        if self.method != "auto":
            parse_method(self.method)
            return (self.method,)
        pool = tuple(self.candidates) if self.candidates is not None else shipped_selection()["candidates"]
        if not pool:
            raise InputError("candidates must name at least one method")
        for m in pool:
            parse_method(m)
        return tuple(pool)

    def fit(self, X: Any, y: Any) -> FewShotLatencyPredictor:
        archs = _archs(X)
        y_ms = np.asarray(y, dtype=float).ravel()
        if len(archs) != len(y_ms):
            raise InputError(f"{len(archs)} cells but {len(y_ms)} values of {self.metric}")
        if len(archs) < 5:
            raise InputError(
                f"few-shot prediction needs at least 5 measured cells, got {len(archs)}",
                hint="measure the cells `hwnas nb201 suggest-samples --k 10` lists",
            )
        if not np.all(np.isfinite(y_ms)) or np.any(y_ms <= 0):
            raise InputError(f"values of {self.metric} must be finite and > 0")
        if len(set(archs)) != len(archs):
            raise InputError("each sampled cell must appear once (average repeated measurements first)")
        if not 0 < self.level < 1:
            raise InputError(f"interval level must lie in (0, 1), got {self.level}")
        candidates = self._candidates()
        feats = self._features()
        rows = feats.rows(archs)
        y_log = np.log(y_ms)
        loo = {m: loo_predictions(m, feats, rows, y_log) for m in candidates}
        self.cv_scores_ = {m: loo_scores(m, feats, rows, y_log, loo[m]) for m in candidates}
        self.method_ = min(candidates, key=lambda m: self.cv_scores_[m]["loo_rmse_log"])
        self.cv_ = dict(self.cv_scores_[self.method_])
        # The band must cover the whole procedure, method choice included: the chosen method's own LOO
        # residuals are the smallest of the candidates' (selection makes them optimistic), so with a pool
        # each left-out sample is predicted by the method an inner LOO on the other k - 1 picks.
        self.loo_log_ = (
            selection_aware_loo(candidates, feats, rows, y_log) if len(candidates) > 1 else loo[self.method_]
        )
        band, self.level_ = jackknife_band(y_log, self.loo_log_, self.level)
        self.calibration_ = self._calibration()
        self.band_log_ = band * self.calibration_
        self.reference_columns_ = list(feats.columns)
        self.n_samples_ = len(rows)
        self.train_rows_ = rows
        self.train_log_ = y_log
        return self

    def _calibration(self) -> float:
        if self.calibration is not None:
            if not self.calibration > 0:
                raise InputError(f"calibration must be > 0, got {self.calibration}")
            return float(self.calibration)
        sel = shipped_selection()
        same = abs(float(sel.get("interval_level", -1)) - self.level) < 1e-9
        return float(sel.get("interval_scale", 1.0)) if same else 1.0

    def _predict_rows(self, rows: np.ndarray | slice) -> np.ndarray:
        check_is_fitted(self, "method_")
        feats = self._features()
        return np.exp(_fit_predict(self.method_, feats, self.train_rows_, self.train_log_, rows))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted cost of each cell in ``X`` (arch strings), in the samples' unit."""
        check_is_fitted(self, "method_")
        return self._predict_rows(self._features().rows(_archs(X)))

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) at ``level_`` (calibrated jackknife conformal band around :meth:`predict`)."""
        p = self.predict(X)
        return p * np.exp(-self.band_log_), p * np.exp(self.band_log_)

    def predict_all(self) -> pd.DataFrame:
        """``index, arch, <metric>, lower_<unit>, upper_<unit>, level`` for every cell of the reference
        table (for latency: ``latency_ms, lower_ms, upper_ms``; the per-architecture format
        ``hwnas search --table`` reads). :func:`interval_columns` gives the names."""
        check_is_fitted(self, "method_")
        feats = self._features()
        pred = self._predict_rows(slice(None))
        lower, upper = interval_columns(self.metric)
        return pd.DataFrame(
            {
                "index": feats.index,
                "arch": feats.arch,
                self.metric: pred,
                lower: pred * np.exp(-self.band_log_),
                upper: pred * np.exp(self.band_log_),
                "level": self.level_,
            }
        )


FewShotPredictor = FewShotLatencyPredictor  # the name for non-latency metrics


def interval_columns(metric: str) -> tuple[str, str]:
    """Names of the interval columns ``predict_all`` writes for ``metric``: the issue's ``lower_ms`` /
    ``upper_ms`` for ``latency_ms``; ``lower_mj`` / ``upper_mj`` for ``energy_mj``; the unit is the part
    after the last underscore (a metric without one: ``lower_<metric>``)."""
    unit = metric.rsplit("_", 1)[1] if "_" in metric else metric
    return f"lower_{unit}", f"upper_{unit}"


_SELECTION_FILE = "fewshot_selection.json"
_FALLBACK_SELECTION: dict[str, Any] = {"candidates": ("ensemble",), "design": "dopt", "interval_scale": 1.0,
                                       "interval_level": 0.9}  # fmt: skip


def shipped_selection() -> dict[str, Any]:
    """The shipped nested selection (``hwnas/data/fewshot_selection.json``, written by
    ``benchmarks/nb201_fewshot_nested.py --write-selection``): the candidate pool, the sample design and
    the interval calibration chosen by leave-one-device-out CV over the 13 devices of the shipped table
    (the figures it reports for them are the nested ones). A missing file gives the fallback."""
    import json
    from importlib import resources

    path = resources.files("hwnas") / "data" / _SELECTION_FILE
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, OSError, ValueError):
        return dict(_FALLBACK_SELECTION)
    out = dict(_FALLBACK_SELECTION)
    out.update(data)
    out["candidates"] = tuple(out["candidates"])
    return out


def _archs(X: Any) -> list[str]:
    if isinstance(X, pd.DataFrame):
        if "arch" not in X.columns:
            raise InputError("samples need an 'arch' column", hint="columns: arch,latency_ms")
        return X["arch"].astype(str).tolist()
    if isinstance(X, str):
        return [X]
    return [str(a) for a in np.asarray(X, dtype=object).ravel()]


def _load_reference(reference: Any, space: FewShotSpace) -> pd.DataFrame:
    if reference is None:
        return space.load_table(None)
    if isinstance(reference, pd.DataFrame):
        return reference
    if isinstance(reference, (str, Path)):
        return space.load_table(reference)
    raise InputError(f"reference must be a table or a path, got {type(reference).__name__}")


def load_samples(
    path: str | Path, space: str | FewShotSpace = DEFAULT_SPACE, metric: str = "latency_ms"
) -> pd.DataFrame:
    """Read ``arch,<metric>`` samples (default ``arch,latency_ms``); raise InputError naming the file and
    the problem. Returns exactly those two columns."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file", hint=f"a CSV with columns arch,{metric}")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable CSV: {exc}", hint=f"a CSV with columns arch,{metric}") from exc
    missing = [c for c in ("arch", metric) if c not in df.columns]
    if missing:
        raise InputError(
            f"{p}: missing column(s) {', '.join(missing)} (found {', '.join(map(str, df.columns))})",
            hint=f"a CSV with columns arch,{metric}",
        )
    lat = pd.to_numeric(df[metric], errors="coerce")
    if lat.isna().any():
        raise InputError(
            f"{p}: column '{metric}' has {int(lat.isna().sum())} missing or non-numeric value(s)"
        )
    bad_value = ~np.isfinite(lat.to_numpy(float)) | (lat.to_numpy(float) <= 0)
    if bad_value.any():
        raise InputError(
            f"{p}: column '{metric}' has {int(bad_value.sum())} value(s) that are not finite and > 0, "
            f"first {lat[bad_value].iloc[0]!r}",
            hint="costs are positive (latency in ms, energy in mJ ...): few-shot works on their logarithm",
        )
    bad = ~df["arch"].astype(str).str.fullmatch(get_fewshot_space(space).arch_pattern)
    if bad.any():
        raise InputError(
            f"{p}: column 'arch' has {int(bad.sum())} malformed arch string(s), "
            f"first {df['arch'][bad].iloc[0]!r}"
        )
    return pd.DataFrame({"arch": df["arch"].astype(str), metric: lat.astype(float)})


# ---------------------------------------------------------------------------------------------- sample design


def suggest_samples(
    k: int = 10,
    reference: Any = None,
    seed: int = 0,
    exclude_columns: Sequence[str] = (),
    space: str | FewShotSpace = DEFAULT_SPACE,
    *,
    design: str | None = None,
    given: pd.DataFrame | None = None,
    metric: str = "latency_ms",
    reference_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``k`` cells to measure on a new device (:mod:`hwnas.cost_models.fewshot_design`).

    Without ``given``: a designed first set (``design``: ``dopt``, greedy D-optimal in the leading principal
    components of the reference features, the default from :func:`shipped_selection`; ``kcenter``;
    ``kmeans``). With ``given`` (measured cells: ``arch`` + ``metric`` columns, as :func:`load_samples`
    reads them): the ``k`` most informative *new* cells given the current fit (committee disagreement plus
    D-optimal variance). Ordered fastest first. Returns ``index, arch, mean_reference_rank`` (0 = fastest;
    with ``given`` also ``committee_spread``, the spread of the candidate methods' predicted log cost)."""
    from hwnas.cost_models.fewshot_design import design_rows, next_rows

    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    sp = get_fewshot_space(space)
    table = _load_reference(reference, sp)
    cols = list(reference_columns) if reference_columns is not None else sp.latency_columns(table)
    cols = [c for c in cols if c not in set(exclude_columns)]
    feats = reference_features(table, cols, sp)
    connected = (
        table["connected"].to_numpy() > 0 if "connected" in table.columns else np.ones(len(table), bool)
    )
    pool = np.flatnonzero(connected)
    spread = None
    if given is None:
        if k > len(pool):
            raise InputError(f"k = {k} is more than the {len(pool)} connected cells of the reference table",
                             hint=f"ask for at most {len(pool)} cells")  # fmt: skip
        rows = design_rows(feats, k, pool, design or shipped_selection()["design"], seed=seed)
    else:
        if metric not in given.columns or "arch" not in given.columns:
            raise InputError(f"the measured cells need columns arch,{metric}")
        if len(given) < 2:
            raise InputError(
                f"--given has {len(given)} measured cell(s); adaptive suggestions need at least 2",
                hint="start from `hwnas nb201 suggest-samples --k 10`",
            )
        g_rows = feats.rows(given["arch"].astype(str).tolist())
        if len(set(g_rows.tolist())) != len(g_rows):
            raise InputError("each measured cell must appear once in --given (average repeats first)")
        y = given[metric].to_numpy(float)
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise InputError(f"--given: values of {metric} must be finite and > 0")
        rows, spread = next_rows(feats, g_rows, np.log(y), k, pool)
    mean_rank = stats.rankdata(feats.log_ref.mean(axis=1)) - 1
    data = {"index": feats.index[rows], "arch": feats.arch[rows], "mean_reference_rank": mean_rank[rows]}
    if spread is not None:
        data["committee_spread"] = spread
    out = pd.DataFrame(data)
    return out.sort_values("mean_reference_rank").reset_index(drop=True)
