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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.cluster import KMeans
from sklearn.linear_model import Ridge
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


def _nearest(z: np.ndarray, y: np.ndarray, m: int) -> tuple[np.ndarray, Ridge]:
    zc = z - z.mean(axis=0)
    yc = y - y.mean()
    denom = np.sqrt((zc**2).sum(axis=0) * (yc**2).sum()) + 1e-12
    corr = np.abs(zc.T @ yc) / denom
    cols = np.argsort(-corr, kind="stable")[:m]
    return cols, Ridge(alpha=0.1).fit(z[:, cols], y)


def _fit_predict(
    method: str, feats: ReferenceFeatures, train: np.ndarray, y: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Fit ``method`` on reference rows ``train`` with log-latencies ``y``; predict rows ``test``."""
    if method == "ridge":
        return Ridge(alpha=1.0).fit(feats.log_ref[train], y).predict(feats.log_ref[test])
    if method == "nn-ridge":
        return _NNRidge(0.3).fit(feats.z_ref[train], y).predict(feats.z_ref[test])
    if method == "nn-ridge-aug":
        return _NNRidge(0.3).fit(feats.z_aug[train], y).predict(feats.z_aug[test])
    if method.startswith("nearest-"):
        cols, model = _nearest(feats.z_aug[train], y, int(method.split("-")[1]))
        return model.predict(feats.z_aug[test][:, cols])
    if method == "ensemble":
        parts = [_fit_predict(m, feats, train, y, test) for m in ("nn-ridge", "nn-ridge-aug", "nearest-3")]
        return np.mean(parts, axis=0)
    raise InputError(f"unknown few-shot method {method!r}", hint=f"methods: auto, {', '.join(METHODS)}")


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
    """Predict a new device's latency for every NAS-Bench-201 cell from k measured cells.

    Parameters
    ----------
    reference : DataFrame, path or None
        Reference table in the ``nb201.csv.gz`` format (``arch`` + ``lat_<device>_ms`` columns); None = the
        shipped table.
    reference_columns : list of str or None
        Which latency columns to use (default: all of them).
    exclude_columns : tuple of str
        Latency columns to leave out (e.g. the device being predicted, in a leave-one-device-out study).
    method : "auto" or one of :data:`METHODS`
        "auto" picks by leave-one-out CV on the samples.
    level : float
        Nominal coverage of the prediction interval (jackknife conformal, see :func:`jackknife_band`).
    space : str or FewShotSpace
        The search space whose cells are predicted (registered by :mod:`hwnas.plugins`; ``nb201``).

    ``fit(X, y)``: ``X`` holds arch strings (a DataFrame with an ``arch`` column, or a sequence), ``y`` their
    latencies in ms. Fitted: ``method_``, ``cv_scores_`` (method -> LOO figures), ``cv_`` (the chosen one's),
    ``reference_columns_``, ``n_samples_``, ``band_log_`` and ``level_`` (the interval's half-width in
    log-latency and the level it holds at).
    """

    def __init__(
        self,
        reference: Any = None,
        reference_columns: Sequence[str] | None = None,
        exclude_columns: Sequence[str] = (),
        method: str = "auto",
        level: float = 0.90,
        space: Any = DEFAULT_SPACE,
    ) -> None:
        self.reference = reference
        self.reference_columns = reference_columns
        self.exclude_columns = exclude_columns
        self.method = method
        self.level = level
        self.space = space

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

    def fit(self, X: Any, y: Any) -> FewShotLatencyPredictor:
        archs = _archs(X)
        y_ms = np.asarray(y, dtype=float).ravel()
        if len(archs) != len(y_ms):
            raise InputError(f"{len(archs)} cells but {len(y_ms)} latencies")
        if len(archs) < 5:
            raise InputError(
                f"few-shot prediction needs at least 5 measured cells, got {len(archs)}",
                hint="measure the cells `hwnas suggest-samples --k 10` lists",
            )
        if not np.all(np.isfinite(y_ms)) or np.any(y_ms <= 0):
            raise InputError("latencies must be finite and > 0 ms")
        if len(set(archs)) != len(archs):
            raise InputError("each sampled cell must appear once (average repeated measurements first)")
        if not 0 < self.level < 1:
            raise InputError(f"interval level must lie in (0, 1), got {self.level}")
        valid = ("auto", *METHODS)
        if self.method not in valid:
            raise InputError(f"unknown few-shot method {self.method!r}", hint=f"methods: {', '.join(valid)}")
        feats = self._features()
        rows = feats.rows(archs)
        y_log = np.log(y_ms)
        candidates = METHODS if self.method == "auto" else (self.method,)
        loo = {m: loo_predictions(m, feats, rows, y_log) for m in candidates}
        self.cv_scores_ = {m: loo_scores(m, feats, rows, y_log, loo[m]) for m in candidates}
        self.method_ = min(candidates, key=lambda m: self.cv_scores_[m]["loo_rmse_log"])
        self.cv_ = dict(self.cv_scores_[self.method_])
        # The band must cover the whole procedure, method choice included: the chosen method's own LOO
        # residuals are the smallest of the candidates' (selection makes them optimistic), so with "auto"
        # each left-out sample is predicted by the method an inner LOO on the other k - 1 picks.
        self.loo_log_ = (
            selection_aware_loo(candidates, feats, rows, y_log) if len(candidates) > 1 else loo[self.method_]
        )
        self.band_log_, self.level_ = jackknife_band(y_log, self.loo_log_, self.level)
        self.reference_columns_ = list(feats.columns)
        self.n_samples_ = len(rows)
        self.train_rows_ = rows
        self.train_log_ = y_log
        return self

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "method_")
        feats = self._features()
        return np.exp(_fit_predict(self.method_, feats, self.train_rows_, self.train_log_, rows))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latency in ms of each cell in ``X`` (arch strings)."""
        check_is_fitted(self, "method_")
        return self._predict_rows(self._features().rows(_archs(X)))

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) latency in ms at ``level_`` (jackknife conformal band around :meth:`predict`)."""
        p = self.predict(X)
        return p * np.exp(-self.band_log_), p * np.exp(self.band_log_)

    def predict_all(self) -> pd.DataFrame:
        """``index, arch, latency_ms, latency_ms_lo, latency_ms_hi, level`` for every cell of the
        reference table (the per-architecture format ``hwnas search --table`` reads)."""
        check_is_fitted(self, "method_")
        feats = self._features()
        pred = self._predict_rows(np.arange(len(feats.arch)))
        return pd.DataFrame(
            {
                "index": feats.index,
                "arch": feats.arch,
                "latency_ms": pred,
                "latency_ms_lo": pred * np.exp(-self.band_log_),
                "latency_ms_hi": pred * np.exp(self.band_log_),
                "level": self.level_,
            }
        )


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


def load_samples(path: str | Path, space: str | FewShotSpace = DEFAULT_SPACE) -> pd.DataFrame:
    """Read ``arch,latency_ms`` samples; raise InputError naming the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file", hint="a CSV with columns arch,latency_ms")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{p}: not a readable CSV: {exc}", hint="a CSV with columns arch,latency_ms"
        ) from exc
    missing = [c for c in ("arch", "latency_ms") if c not in df.columns]
    if missing:
        raise InputError(
            f"{p}: missing column(s) {', '.join(missing)} (found {', '.join(map(str, df.columns))})",
            hint="a CSV with columns arch,latency_ms",
        )
    lat = pd.to_numeric(df["latency_ms"], errors="coerce")
    if lat.isna().any():
        raise InputError(
            f"{p}: column 'latency_ms' has {int(lat.isna().sum())} missing or non-numeric value(s)"
        )
    bad_value = ~np.isfinite(lat.to_numpy(float)) | (lat.to_numpy(float) <= 0)
    if bad_value.any():
        raise InputError(
            f"{p}: column 'latency_ms' has {int(bad_value.sum())} value(s) that are not finite and > 0, "
            f"first {lat[bad_value].iloc[0]!r}",
            hint="latencies are positive milliseconds (few-shot prediction works on their logarithm)",
        )
    bad = ~df["arch"].astype(str).str.fullmatch(get_fewshot_space(space).arch_pattern)
    if bad.any():
        raise InputError(
            f"{p}: column 'arch' has {int(bad.sum())} malformed arch string(s), "
            f"first {df['arch'][bad].iloc[0]!r}"
        )
    return pd.DataFrame({"arch": df["arch"].astype(str), "latency_ms": lat.astype(float)})


# ---------------------------------------------------------------------------------------------- sample design


def suggest_samples(
    k: int = 10,
    reference: Any = None,
    seed: int = 0,
    exclude_columns: Sequence[str] = (),
    space: str | FewShotSpace = DEFAULT_SPACE,
) -> pd.DataFrame:
    """A designed set of ``k`` cells to measure first: k-means on the leading principal components of the
    reference devices' standardised log-latencies (connected cells), one cell nearest each centre, so the
    samples cover the latency range and the directions in which devices disagree. Ordered fastest first.
    Returns ``index, arch`` plus each cell's mean reference latency rank (0 = fastest)."""
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    sp = get_fewshot_space(space)
    table = _load_reference(reference, sp)
    cols = [c for c in sp.latency_columns(table) if c not in set(exclude_columns)]
    feats = reference_features(table, cols, sp)
    connected = (
        table["connected"].to_numpy() > 0 if "connected" in table.columns else np.ones(len(table), bool)
    )
    pool = np.flatnonzero(connected)
    if k > len(pool):
        raise InputError(f"k = {k} is more than the {len(pool)} connected cells of the reference table",
                         hint=f"ask for at most {len(pool)} cells")  # fmt: skip
    z = feats.z_aug[pool]
    u, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    n_pc = int(min(3, len(s)))
    scores = u[:, :n_pc] * s[:n_pc]
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(scores)
    chosen: list[int] = []
    for centre in km.cluster_centers_:
        order = np.argsort(((scores - centre) ** 2).sum(axis=1))
        chosen.append(next(int(i) for i in order if int(i) not in chosen))
    rows = pool[chosen]
    mean_rank = stats.rankdata(feats.log_ref.mean(axis=1)) - 1
    out = pd.DataFrame(
        {"index": feats.index[rows], "arch": feats.arch[rows], "mean_reference_rank": mean_rank[rows]}
    )
    return out.sort_values("mean_reference_rank").reset_index(drop=True)
