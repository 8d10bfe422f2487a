"""KernelPredictor: per-kernel latency predictors that price any network (nn-Meter's / LitePred's job).

A network on a runtime is the fused units the runtime executes (``graph.fusion``); each unit is a *kernel*
of some kind (conv k×k, depthwise conv, conv+add, pooling, SE, linear ...) with a configuration
(``graph.kernels.KernelConfig``). A kernel dataset samples configurations of every kind over ranges that
cover common CNNs and times each alone; this estimator learns, per kind, latency from the configuration's
features, so a network that was never profiled is priced as the sum of its units plus a fitted overhead.

Per kind (``fit``):

- target: ``log(latency_ms)`` (latencies span four orders of magnitude; relative error is what is judged);
- a *work baseline*: ``log latency = c + Σ_j b_j · log1p(w_j)`` over the work features ``w`` (FLOPs/MACs
  and bytes moved), with ``b_j >= 0`` (scikit-learn's non-negative least squares). It carries the
  power law outside the sampled region, where trees would extrapolate flat;
- a gradient-boosted residual (``HistGradientBoostingRegressor``) on every feature of
  ``KernelConfig.features()``, *non-decreasing* in each work feature (``monotonic_cst = +1``): the same
  kernel doing more arithmetic or moving more bytes never gets faster. Both parts are monotone in work, so
  the sum is, and a sparse sample cannot produce a smaller prediction for a larger kernel.

Intervals are split-conformal on held-out kernels: ``cv``-fold out-of-fold log residuals per kind (pooled
with all kinds when a kind has too few rows) give the half-width ``q_k`` with ``ceil((n+1)·level)/n``
coverage, so a unit's interval is ``[ŷ·e^-q_k, ŷ·e^q_k]``. A unit outside the sampled region
(``kernels.out_of_range``) gets ``[ŷ/ood_factor, ŷ·ood_factor]``; a unit of no known kind is priced by a
pooled FLOPs/bytes baseline with ``[ŷ/unknown_factor, ŷ·unknown_factor]``. Both are named in the output.

Whole model (``fit_overhead``): ``latency = b·Σ units + c_unit·n_units + c_0``, the per-backend overhead
(isolated timings pay one session call and layout conversions per unit that a model run pays once),
fitted by relative least squares on a few whole-model measurements of networks that are not the ones
being judged. Its interval is conformal on those models held out one at a time (jackknife+ residuals).

The fitted trees are kept as plain arrays (``boosted.check_tree`` layout) and every prediction, fitted or
loaded, goes through the same numpy evaluator, so an export → load round trip predicts identically.
``save``/``load_kernel_predictor`` write and read one JSON file (format ``hwnas-kernel-predictor``);
``cost_models.predictors.load_cost_predictor`` recognises it and serves it as a CostPredictor.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from hwnas.errors import InputError, SchemaError

FORMAT = "hwnas-kernel-predictor"
SCHEMA_VERSION = 1
TARGET = "latency_ms"
DEFAULT_FUSION = "onnxruntime-cpu"
# Work features (monotone, in the baseline): a feature name containing one of these.
WORK_MARKERS = ("flops", "macs", "bytes")
BASE_FEATURES = ("flops", "bytes")
NO_KERNEL = "none"  # a unit the runtime runs no kernel for (Dropout / Identity alone)


def is_work_feature(name: str) -> bool:
    """Whether a feature measures work (FLOPs, MACs, bytes): predictions are non-decreasing in it."""
    low = name.lower()
    return any(m in low for m in WORK_MARKERS) and not low.startswith(("log_", "ratio", "per_"))


# --- features ------------------------------------------------------------------------------------------


def _kernels() -> Any:
    from hwnas.graph import kernels

    return kernels


def config_fields() -> list[str]:
    """The configuration fields of ``KernelConfig`` (besides ``kind``)."""
    import dataclasses

    return [f.name for f in dataclasses.fields(_kernels().KernelConfig) if f.name != "kind"]


def config_of_row(row: Any) -> Any:
    """The ``KernelConfig`` a dataset row describes (its config columns; absent or NaN fields default)."""
    names = {"kind", *config_fields()}
    data = {}
    for k in names:
        if k in row:
            v = row[k]
            if isinstance(v, float) and math.isnan(v):
                continue
            data[k] = v
    return _kernels().KernelConfig.from_dict(data)


def feature_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``kind`` plus one column per feature of ``KernelConfig.features()``, for a kernel-dataset frame.

    Features are always recomputed from the config columns through ``KernelConfig``, so a dataset row and
    a real network's unit (``kernel_of_unit(unit).features()``) are described by the same function.
    """
    if "kind" not in df.columns:
        raise InputError(
            "a kernel frame needs a 'kind' column", hint="one row per kernel: kind, config, latency_ms"
        )
    try:
        rows = [config_of_row(r).features() for _, r in df.iterrows()]
    except (TypeError, ValueError) as exc:
        raise InputError(f"kernel frame rows are not KernelConfigs: {exc}",
                         hint=f"config columns: {', '.join(config_fields())}") from exc  # fmt: skip
    out = pd.concat([df[["kind"]].reset_index(drop=True).astype(str), pd.DataFrame(rows)], axis=1)
    return out


def _conformal_q(abs_res: np.ndarray, level: float) -> float:
    """Split-conformal half-width: the ceil((n+1)·level)-th smallest |residual| (the largest if beyond)."""
    r = np.sort(np.asarray(abs_res, float))
    if r.size == 0:
        return float("inf")
    k = math.ceil((r.size + 1) * level) - 1
    return float(r[min(k, r.size - 1)])


# --- plain trees -------------------------------------------------------------------------------------------


def _hgb_trees(model: Any) -> dict[str, Any]:
    """A fitted HistGradientBoostingRegressor as plain arrays (leaves: children -1; shrinkage is already in
    the leaf values)."""
    trees = []
    for (pred,) in model._predictors:
        nodes = pred.nodes
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        trees.append({
            "left": left.tolist(), "right": right.tolist(),
            "feature": np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)).tolist(),
            "threshold": nodes["num_threshold"].astype(float).tolist(),
            "value": nodes["value"].astype(float).tolist(),
        })  # fmt: skip
    return {"baseline": float(np.ravel(model._baseline_prediction)[0]), "trees": trees}


def _eval_trees(payload: dict[str, Any] | None, X: np.ndarray) -> np.ndarray:
    from hwnas.cost_models.boosted import _eval_tree

    if not payload:
        return np.zeros(X.shape[0])
    out = np.full(X.shape[0], float(payload["baseline"]))
    for tree in payload["trees"]:
        out += _eval_tree(tree, X)
    return out


def _eval_base(base: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """log of the additive work baseline ``c_0 + Σ_j a_j · w_j`` (every coefficient >= 0)."""
    cols = base["columns"]
    lat = np.full(X.shape[0], float(base["intercept"]))
    if cols:
        lat = lat + np.maximum(X[:, cols], 0.0) @ np.asarray(base["coef"], float)
    return np.log(np.maximum(lat, 1e-9))


def _fit_base(X: np.ndarray, y: np.ndarray, cols: list[int]) -> dict[str, Any]:
    """Non-negative ``c_0 + Σ a_j · w_j`` fitted by relative least squares (each row's error over its
    latency): a roofline-like sum of a fixed call cost, compute and memory traffic, which extrapolates
    linearly in work where trees would go flat."""
    from scipy.optimize import lsq_linear

    y = np.asarray(y, float)
    if not cols or X.shape[0] < 3:
        return {"columns": [], "coef": [], "intercept": float(np.median(y)) if len(y) else 1.0}
    W = np.maximum(X[:, cols], 0.0)
    scale = np.maximum(W.max(axis=0), 1.0)  # conditioning: FLOPs reach 1e9, a call costs 1e-2 ms
    A = np.column_stack([np.ones(len(y)), W / scale]) / y[:, None]
    sol = lsq_linear(A, np.ones(len(y)), bounds=(0.0, np.inf)).x
    if sol[0] <= 0 and not np.any(sol[1:] > 0):  # degenerate: a constant
        sol[0] = float(np.median(y))
    return {"columns": list(cols), "coef": [float(c) for c in sol[1:] / scale], "intercept": float(sol[0])}


# --- the estimator ----------------------------------------------------------------------------------------


class KernelPredictor(RegressorMixin, BaseEstimator):
    """Per-kind boosted kernel-latency models with conformal intervals; see the module docstring.

    ``fit(df)``: a kernel-dataset frame (``kind``, config and/or feature columns, ``latency_ms``) or
    ``fit(df, y)``. ``predict(df)`` gives ms per row; ``predict_interval(df)`` the conformal band;
    ``oof_errors(df)`` the out-of-fold relative error per row (what adaptive sampling ranks by).
    """

    def __init__(
        self,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 8,
        min_samples_leaf: int = 5,
        l2_regularization: float = 1.0,
        monotone: bool = True,
        level: float = 0.90,
        cv: int = 5,
        min_kind_rows: int = 8,
        ood_factor: float = 3.0,
        unknown_factor: float = 5.0,
        fusion: str = DEFAULT_FUSION,
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.monotone = monotone
        self.level = level
        self.cv = cv
        self.min_kind_rows = min_kind_rows
        self.ood_factor = ood_factor
        self.unknown_factor = unknown_factor
        self.fusion = fusion
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise InputError(f"level must lie in (0, 1), got {self.level}")
        if int(self.cv) < 2:
            raise InputError(f"cv must be at least 2 folds, got {self.cv}")
        if self.ood_factor < 1 or self.unknown_factor < 1:
            raise InputError("ood_factor and unknown_factor must be >= 1 (they widen intervals)")

    @staticmethod
    def _target(df: pd.DataFrame, y: Any) -> np.ndarray:
        if y is None:
            if TARGET not in df.columns:
                raise InputError(f"a kernel frame needs a {TARGET!r} column (or pass y)")
            y = df[TARGET]
        y = np.asarray(y, float).ravel()
        if len(y) != len(df):
            raise InputError(f"{len(df)} kernels but {len(y)} targets")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise InputError("kernel latencies must be finite and > 0", hint="drop failed measurements first")
        return y

    def _fit_kind(self, X: np.ndarray, z: np.ndarray, names: list[str]) -> dict[str, Any]:
        from sklearn.ensemble import HistGradientBoostingRegressor

        work = [j for j, n in enumerate(names) if is_work_feature(n)]
        # the baseline's power law on total work: FLOPs and bytes moved (the other work features are
        # parts of these; monotone constraints still hold on every one of them)
        base_cols = [j for j, n in enumerate(names) if n in BASE_FEATURES] or work
        base = _fit_base(X, np.exp(z), base_cols)
        resid = z - _eval_base(base, X)
        trees = None
        if X.shape[0] >= self.min_kind_rows and X.shape[1]:
            cst = [1 if (self.monotone and j in work) else 0 for j in range(len(names))]
            with threadpool_limits(1):  # OpenMP on small data under load: 25x slower than one thread
                hgb = HistGradientBoostingRegressor(
                    max_iter=self.max_iter, learning_rate=self.learning_rate,
                    max_leaf_nodes=self.max_leaf_nodes,
                    min_samples_leaf=min(self.min_samples_leaf, max(1, X.shape[0] // 4)),
                    l2_regularization=self.l2_regularization, monotonic_cst=cst, early_stopping=False,
                    random_state=self.random_state,
                ).fit(X, resid)  # fmt: skip
            trees = _hgb_trees(hgb)
        return {"features": list(names), "work": work, "base": base, "trees": trees, "n": int(X.shape[0])}

    def _matrix(self, feats: pd.DataFrame, rows: np.ndarray, names: list[str]) -> np.ndarray:
        sub = feats.loc[rows]
        X = np.zeros((len(sub), len(names)))
        for j, n in enumerate(names):
            if n in sub.columns:
                X[:, j] = pd.to_numeric(sub[n], errors="coerce").fillna(0.0).to_numpy(float)
        return X

    def _fit_models(self, feats: pd.DataFrame, z: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        models = {}
        for kind in sorted(feats["kind"].unique()):
            rows = (feats["kind"] == kind).to_numpy()
            sub = feats.loc[rows].drop(columns="kind")
            names = [c for c in sub.columns if sub[c].notna().any()]
            models[kind] = self._fit_kind(self._matrix(feats, rows, names), z[rows], names)
        # pooled work baseline over every kind (units of no known kind): log-latency on FLOPs and bytes
        wf = self._generic_work(feats)
        base = _fit_base(wf, np.exp(z), [0, 1])
        return models, {"base": base}

    @staticmethod
    def _generic_work(feats: pd.DataFrame) -> np.ndarray:
        """(FLOPs, bytes) per row from whatever the features call them."""
        cols = [str(c) for c in feats.columns]
        flops = next((c for c in cols if c.lower() == "flops"), None) or next(
            (c for c in cols if "flops" in c.lower() or "macs" in c.lower()), None
        )
        scale = 2.0 if flops and "macs" in flops.lower() else 1.0
        f = feats[flops].fillna(0).to_numpy(float) * scale if flops else np.zeros(len(feats))
        byte_cols = [c for c in cols if "bytes" in c.lower()]
        b = feats[byte_cols].fillna(0).to_numpy(float).sum(axis=1) if byte_cols else np.zeros(len(feats))
        return np.column_stack([f, b])

    def _predict_log(self, models: dict[str, Any], pooled: dict[str, Any], feats: pd.DataFrame
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(log ms, known-kind mask) per row."""
        z = np.zeros(len(feats))
        known = feats["kind"].isin(list(models)).to_numpy()
        for kind, m in models.items():
            rows = (feats["kind"] == kind).to_numpy()
            if rows.any():
                X = self._matrix(feats, rows, m["features"])
                z[rows] = _eval_base(m["base"], X) + _eval_trees(m["trees"], X)
        if (~known).any():
            z[~known] = _eval_base(pooled["base"], self._generic_work(feats.loc[~known]))
        return z, known

    def _folds(self, kinds: np.ndarray) -> np.ndarray:
        """A fold id per row, stratified by kind (each kind's rows dealt round-robin after a shuffle)."""
        rng = np.random.default_rng(self.random_state)
        fold = np.zeros(len(kinds), dtype=int)
        for kind in np.unique(kinds):
            idx = np.flatnonzero(kinds == kind)
            rng.shuffle(idx)
            fold[idx] = np.arange(len(idx)) % int(self.cv)
        return fold

    def _oof_log(self, feats: pd.DataFrame, z: np.ndarray) -> np.ndarray:
        """Out-of-fold log predictions (each row predicted by models fitted without its fold)."""
        kinds = feats["kind"].to_numpy()
        fold = self._folds(kinds)
        out = np.zeros(len(z))
        for f in range(int(self.cv)):
            test = fold == f
            if not test.any() or test.all():
                continue
            models, pooled = self._fit_models(feats.loc[~test].reset_index(drop=True), z[~test])
            out[test], _ = self._predict_log(models, pooled, feats.loc[test].reset_index(drop=True))
        return out

    def fit(self, df: pd.DataFrame, y: Any = None) -> KernelPredictor:
        """Fit every kind's model on ``df`` and calibrate the per-kind conformal half-widths."""
        self._check_params()
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise InputError("KernelPredictor.fit needs a non-empty kernel frame (kind, config, latency_ms)")
        y = self._target(df, y)
        feats = feature_frame(df)
        z = np.log(y)
        t0 = time.process_time()
        oof = self._oof_log(feats, z)
        self.models_, self.pooled_ = self._fit_models(feats, z)
        res = np.abs(z - oof)
        self.oof_rel_error_ = np.abs(np.exp(oof) / y - 1.0)
        self._oof_sig = _signature(feats, y)
        q_all = _conformal_q(res, self.level)
        self.q_ = {}
        for kind in self.models_:
            rows = (feats["kind"] == kind).to_numpy()
            self.q_[kind] = _conformal_q(res[rows], self.level) if rows.sum() >= 10 else q_all
            self.models_[kind]["oof_mape_pct"] = float(100 * np.mean(self.oof_rel_error_[rows]))
        self.q_pooled_ = q_all
        self.n_kernels_ = int(len(df))
        self.fit_cpu_s_ = time.process_time() - t0
        self.overhead_ = None  # refitted kernels: the old whole-model fit no longer applies
        self.model_q_ = None
        return self

    def oof_errors(self, df: pd.DataFrame, y: Any = None) -> np.ndarray:
        """Out-of-fold relative error ``|ŷ/y - 1|`` per row of ``df`` (cached from ``fit`` on the same
        frame)."""
        self._check_params()
        y = self._target(df, y)
        feats = feature_frame(df)
        if getattr(self, "_oof_sig", None) == _signature(feats, y):
            return self.oof_rel_error_.copy()
        oof = self._oof_log(feats, np.log(y))
        return np.abs(np.exp(oof) / y - 1.0)

    # -- prediction ----------------------------------------------------------------------------------
    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Latency (ms) per kernel row."""
        check_is_fitted(self, "models_")
        z, _ = self._predict_log(self.models_, self.pooled_, feature_frame(df))
        return np.exp(z)

    def predict_interval(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Conformal ``(low, high)`` per row at ``level`` (unknown kinds: the ``unknown_factor`` band)."""
        check_is_fitted(self, "models_")
        feats = feature_frame(df)
        z, known = self._predict_log(self.models_, self.pooled_, feats)
        q = np.array([self.q_.get(k, math.log(self.unknown_factor)) for k in feats["kind"]])
        return np.exp(z - q), np.exp(z + q)

    @property
    def kinds_(self) -> tuple[str, ...]:
        check_is_fitted(self, "models_")
        return tuple(self.models_)

    # -- units and whole models ----------------------------------------------------------------------
    def price_units(self, layers: Sequence[Any]) -> pd.DataFrame:
        """Per fused unit of a network (``fusion`` rules): name, op, kind, value, lo, hi, ood, reasons.

        A unit of no known kind (``kernel_of_unit`` None, or a kind this predictor never saw) is priced by
        the pooled work baseline; one outside the sampled ranges by its kind's model; both get the wide
        band and ``ood=True`` with the reason.
        """
        check_is_fitted(self, "models_")
        from hwnas.graph.fusion import fuse

        ks = _kernels()
        units = fuse(list(layers), self.fusion)
        recs, cfgs = [], []
        for u in units:
            cfg = ks.kernel_of_unit(u)
            reasons: list[str] = []
            if cfg is None and ks.no_kind_reason(u).startswith("no kernel:"):
                # Dropout / Identity alone: the runtime removes them, nothing runs (cost 0, no flag)
                cfgs.append({"kind": NO_KERNEL, "flops": 0.0, "bytes": 0.0})
                recs.append({"name": u.name, "op": u.op, "kind": NO_KERNEL, "reasons": [], "known": True})
                continue
            if cfg is None:
                reasons = [f"no kernel kind for unit {u.op}"]
                moved = sum(la.activation_bytes + la.weight_bytes for la in u.layers)
                feats = {"flops": float(u.flops), "bytes": float(moved)}
                kind = "?"
            else:
                kind = cfg.kind
                feats = dict(cfg.features())
                if kind not in self.models_:
                    reasons = [f"kind {kind!r} not in the kernel dataset"]
                else:
                    reasons = list(ks.out_of_range(cfg))
            cfgs.append({"kind": kind if cfg is not None and kind in self.models_ else "?", **feats})
            recs.append({"name": u.name, "op": u.op, "kind": kind, "reasons": reasons,
                         "known": cfg is not None and kind in self.models_})  # fmt: skip
        out = pd.DataFrame(recs, columns=["name", "op", "kind", "reasons", "known"])
        if not len(units):
            for c in ("value", "lo", "hi"):
                out[c] = np.zeros(0)
            out["ood"] = np.zeros(0, dtype=bool)
            return out
        feats = pd.DataFrame(cfgs)
        z, _ = self._predict_log(self.models_, self.pooled_, feats.reset_index(drop=True))
        value = np.exp(z)
        value[(feats["kind"] == NO_KERNEL).to_numpy()] = 0.0
        q = np.array([self.q_.get(k, 0.0) for k in feats["kind"]])
        lo, hi = np.exp(z - q), np.exp(z + q)
        ood = np.array([bool(r) for r in out["reasons"]])
        known = out["known"].to_numpy(bool)
        for mask, factor in ((ood & known, self.ood_factor), (~known, self.unknown_factor)):
            lo[mask] = np.minimum(lo[mask], value[mask] / factor)
            hi[mask] = np.maximum(hi[mask], value[mask] * factor)
        none = (feats["kind"] == NO_KERNEL).to_numpy()
        lo[none] = hi[none] = 0.0
        out["value"], out["lo"], out["hi"], out["ood"] = value, lo, hi, ood
        return out.drop(columns="known")

    def _overhead(self, s: np.ndarray, n: np.ndarray) -> np.ndarray:
        oh = self.overhead_ or {"scale": 1.0, "per_unit_ms": 0.0, "constant_ms": 0.0}
        return oh["scale"] * s + oh["per_unit_ms"] * n + oh["constant_ms"]

    def predict_model(self, layers: Sequence[Any]) -> dict[str, Any]:
        """One network: value and interval (ms), unit sum, unit counts, and the out-of-range units named."""
        per = self.price_units(layers)
        s, n = float(per["value"].sum()), len(per)
        value = float(self._overhead(np.array([s]), np.array([n]))[0])
        scale = (self.overhead_ or {}).get("scale", 1.0)
        ood = per["ood"].to_numpy(bool)
        if self.model_q_ is not None:
            lo, hi = value * math.exp(-self.model_q_), value * math.exp(self.model_q_)
            interval = "conformal on held-out whole models (+ widened by out-of-range units)"
        else:
            lo = float(self._overhead(np.array([per["lo"].sum()]), np.array([n]))[0])
            hi = float(self._overhead(np.array([per["hi"].sum()]), np.array([n]))[0])
            interval = "sum of per-unit conformal intervals (no whole-model calibration)"
        if ood.any() and self.model_q_ is not None:  # the wide unit bands add to the model's
            lo -= scale * float((per["value"] - per["lo"])[ood].sum())
            hi += scale * float((per["hi"] - per["value"])[ood].sum())
        flagged = [{"name": r.name, "op": r.op, "kind": r.kind, "reasons": list(r.reasons),
                    "value": float(r.value), "lo": float(r.lo), "hi": float(r.hi)}
                   for r in per[ood].itertuples()]  # fmt: skip
        return {"value": value, "lo": max(lo, 0.0), "hi": hi, "unit_sum": s, "n_units": n,
                "n_ood": int(ood.sum()), "ood_units": flagged, "level": float(self.level),
                "interval": interval, "metric": TARGET, "unit": "ms"}  # fmt: skip

    def fit_overhead(self, networks: Sequence[Sequence[Any]], measured_ms: Sequence[float],
                     ids: Sequence[str] | None = None) -> KernelPredictor:  # fmt: skip
        """Fit ``model = b·Σ units + c_unit·n_units + c_0`` on whole-model measurements (relative least
        squares), and the model-level conformal half-width from each network held out in turn."""
        check_is_fitted(self, "models_")
        y = np.asarray(measured_ms, float).ravel()
        if len(networks) != len(y):
            raise InputError(f"{len(networks)} networks but {len(y)} measurements")
        if len(y) < 4:
            raise InputError(f"the overhead fit needs at least 4 whole-model measurements, got {len(y)}")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise InputError("whole-model latencies must be finite and > 0")
        s = np.array([float(self.price_units(layers)["value"].sum()) for layers in networks])
        n = np.array([len(_units(layers, self.fusion)) for layers in networks], float)
        coef = _fit_affine(s, n, y)
        loo = np.empty(len(y))
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            c = _fit_affine(s[keep], n[keep], y[keep])
            loo[i] = c[0] * s[i] + c[1] * n[i] + c[2]
        loo = np.maximum(loo, 1e-9)
        r = np.abs(np.log(y / loo))
        self.overhead_ = {"scale": float(coef[0]), "per_unit_ms": float(coef[1]),
                          "constant_ms": float(coef[2]), "n_models": int(len(y)), "ids": list(ids or []),
                          "loo_mape_pct": float(100 * np.mean(np.abs(loo / y - 1))),
                          "loo_within_10pct": float(np.mean(np.abs(loo / y - 1) <= 0.10))}  # fmt: skip
        self.model_q_ = _conformal_q(r, self.level)
        return self

    # -- files ---------------------------------------------------------------------------------------
    def to_dict(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        check_is_fitted(self, "models_")
        body = {
            "params": self.get_params(),
            "models": self.models_, "pooled": self.pooled_, "q": self.q_, "q_pooled": self.q_pooled_,
            "n_kernels": self.n_kernels_, "overhead": self.overhead_, "model_q": self.model_q_,
        }  # fmt: skip
        body = json.loads(json.dumps(body, default=_json_default))
        doc = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "meta": dict(meta or {}), **body}
        doc["checksum"] = _checksum(doc)
        return doc

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the fitted predictor as one JSON file (format first, so a reader can tell it by its head)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        info = {"created_at": stamp, **(meta or getattr(self, "meta_", {}))}
        p.write_text(json.dumps(self.to_dict(info), separators=(",", ":")))
        return p

    @classmethod
    def from_dict(cls, doc: Any, src: str = "<kernel predictor>") -> KernelPredictor:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise SchemaError(f"{src}: not a kernel predictor (format {got!r}, expected {FORMAT!r})")
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise SchemaError(
                f"{src}: kernel-predictor schema version {doc.get('schema_version')!r}, this hwnas reads "
                f"{SCHEMA_VERSION}", hint="rebuild it with `hwnas build-predictor`",
            )  # fmt: skip
        if doc.get("checksum") != _checksum(doc):
            raise SchemaError(f"{src}: checksum mismatch (the file was truncated or edited)",
                              hint="rebuild it with `hwnas build-predictor`")  # fmt: skip
        try:
            est = cls(**doc["params"])
            models = doc["models"]
            _check_models(models)
            est.models_ = models
            est.pooled_ = doc["pooled"]
            est.q_ = {str(k): float(v) for k, v in doc["q"].items()}
            est.q_pooled_ = float(doc["q_pooled"])
            est.n_kernels_ = int(doc["n_kernels"])
            est.overhead_ = doc.get("overhead")
            est.model_q_ = None if doc.get("model_q") is None else float(doc["model_q"])
            est.meta_ = dict(doc.get("meta") or {})
        except SchemaError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"{src}: malformed kernel predictor: {type(exc).__name__}: {exc}") from exc
        return est


def _check_models(models: Any) -> None:
    from hwnas.cost_models.boosted import check_tree

    if not isinstance(models, dict):
        raise SchemaError("models is not an object")
    for kind, m in models.items():
        n = len(m["features"])
        for t in (m.get("trees") or {}).get("trees", []):
            why = check_tree(t, n)
            if why:
                raise SchemaError(f"kind {kind!r}: a tree is not safe to evaluate: {why}")
        if any(not 0 <= int(c) < n for c in m["base"]["columns"]):
            raise SchemaError(f"kind {kind!r}: baseline column out of range")


def _units(layers: Sequence[Any], fusion: str) -> list[Any]:
    from hwnas.graph.fusion import fuse

    return fuse(list(layers), fusion)


def _fit_affine(s: np.ndarray, n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(b, c_unit, c_0) minimising Σ((b·s + c_unit·n + c_0)/y - 1)², with b >= 0 (the unit sum never
    counts against a model)."""
    from scipy.optimize import lsq_linear

    A = np.column_stack([s, n, np.ones_like(s)]) / y[:, None]
    res = lsq_linear(A, np.ones_like(y), bounds=([0.0, -np.inf, -np.inf], [np.inf, np.inf, np.inf]))
    return np.asarray(res.x, float)


def _signature(feats: pd.DataFrame, y: np.ndarray) -> str:
    h = hashlib.sha256(pd.util.hash_pandas_object(feats, index=False).to_numpy().tobytes())
    h.update(np.asarray(y, float).tobytes())
    return h.hexdigest()


def _checksum(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


HEAD_BYTES = 128


def is_kernel_predictor_file(path: str | Path) -> bool:
    """Whether ``path`` is a kernel-predictor JSON (told by its first bytes: the format comes first)."""
    p = Path(path)
    if p.suffix.lower() != ".json" or not p.is_file():
        return False
    with p.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    return f'"format":"{FORMAT}"'.encode() in head.replace(b" ", b"")


def load_kernel_predictor(path: str | Path) -> KernelPredictor:
    """Read a file written by :meth:`KernelPredictor.save` (format, schema version, checksum checked)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: kernel predictor not found")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"{p}: not a readable kernel predictor: {exc}",
                          hint="rebuild it with `hwnas build-predictor`") from exc  # fmt: skip
    return KernelPredictor.from_dict(doc, str(p))


def clone_unfitted(est: KernelPredictor) -> KernelPredictor:
    """A fresh estimator with ``est``'s parameters (sklearn ``clone``)."""
    return clone(est)
