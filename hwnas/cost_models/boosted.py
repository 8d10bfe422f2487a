"""BoostedCostModel: gradient-boosted per-layer predictors (nn-Meter's kernel predictors).

Features come from :func:`hwnas.cost_models.features.layer_features` (op family, shapes, kernel, stride,
groups, MACs, bytes) or any numeric matrix. With ``group_column`` set (``op_code`` for layer features) one
booster is fitted per op kind that has at least ``min_group_size`` rows, as nn-Meter fits one predictor per
kernel type; the rest share one booster fitted on all rows.

Backends: ``sklearn`` (GradientBoostingRegressor, the light default) or ``xgboost``. The target is
modelled in log space when every target is positive (``log_target="auto"``): latencies span orders of
magnitude and relative error is what is reported.

Interval (``interval_kind = "quantile"``): two extra boosters with the quantile (pinball) loss at
``quantiles`` (5 % and 95 % by default) per group.

Export: :meth:`BoostedCostModel.to_payload` writes the fitted ensembles as plain data: sklearn trees as
arrays (children, feature, threshold, leaf value) evaluated by :func:`payload_predict` with numpy alone,
xgboost boosters as xgboost's own JSON model format. Cost tables never hold pickles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from hwnas.cost_models.base import CostModel, validate_X, validate_Xy
from hwnas.errors import InputError

_BACKENDS = ("sklearn", "xgboost")


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:  # pragma: no cover - xgboost is installed in dev
        raise InputError(
            "backend 'xgboost' needs the xgboost package", hint="pip install 'hwnas[xgboost]'"
        ) from exc
    return xgboost


class BoostedCostModel(CostModel):
    """Gradient boosting over layer (or architecture) features, optionally one model per op kind.

    Parameters
    ----------
    backend : "sklearn" | "xgboost"
    n_estimators, learning_rate, max_depth : boosting settings (shared by both backends).
    group_column : str, int or None
        Column (name for DataFrames, index otherwise) whose value selects a per-group model.
    min_group_size : int
        Groups with fewer rows use the shared model.
    log_target : "auto" | bool
        Fit log(y); "auto" does when all y > 0.
    quantiles : (low, high)
        Quantile levels of the interval models; None skips them (the band is then in-sample residuals).
    random_state : int
    """

    interval_kind = "quantile"
    kind = "boosted"

    def __init__(
        self,
        backend: str = "sklearn",
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        group_column: str | int | None = None,
        min_group_size: int = 20,
        log_target: str | bool = "auto",
        quantiles: tuple[float, float] | None = (0.05, 0.95),
        random_state: int = 0,
    ) -> None:
        self.backend = backend
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.group_column = group_column
        self.min_group_size = min_group_size
        self.log_target = log_target
        self.quantiles = quantiles
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------------
    def _make(self, loss: str, alpha: float | None = None) -> Any:
        if self.backend == "sklearn":
            kw: dict[str, Any] = {"loss": loss}
            if alpha is not None:
                kw["alpha"] = alpha
            return GradientBoostingRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                subsample=1.0,
                random_state=self.random_state,
                **kw,
            )
        xgb = _xgboost()
        kw = (
            {"objective": "reg:squarederror"}
            if loss == "squared_error"
            else {"objective": "reg:quantileerror", "quantile_alpha": alpha}
        )
        return xgb.XGBRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            random_state=self.random_state,
            n_jobs=1,
            tree_method="hist",
            **kw,
        )

    def _fit_set(self, X: np.ndarray, z: np.ndarray) -> dict[str, Any]:
        models = {"point": self._make("squared_error").fit(X, z)}
        if self.quantiles is not None:
            models["lo"] = self._make("quantile", float(self.quantiles[0])).fit(X, z)
            models["hi"] = self._make("quantile", float(self.quantiles[1])).fit(X, z)
        return models

    def _group_index(self) -> int | None:
        if self.group_column is None:
            return None
        if isinstance(self.group_column, (int, np.integer)):
            if not 0 <= self.group_column < self.n_features_in_:
                raise ValueError(
                    f"group_column {self.group_column} out of range for {self.n_features_in_} features"
                )
            return int(self.group_column)
        names = list(getattr(self, "feature_names_in_", []))
        if self.group_column not in names:
            raise ValueError(f"group_column {self.group_column!r} is not a column of X")
        return names.index(self.group_column)

    def fit(self, X: Any, y: Any) -> BoostedCostModel:
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {self.backend!r}")
        if self.log_target not in ("auto", True, False):
            raise ValueError(f"log_target must be 'auto', True or False, got {self.log_target!r}")
        if self.quantiles is not None and not (0 < self.quantiles[0] < self.quantiles[1] < 1):
            raise ValueError(f"quantiles must be (low, high) with 0 < low < high < 1, got {self.quantiles!r}")
        X, y = validate_Xy(self, X, y)
        y = np.asarray(y, float)
        positive = bool(np.all(y > 0))
        if self.log_target is True and not positive:
            raise ValueError("log_target=True needs every target > 0")
        self.log_target_ = positive if self.log_target == "auto" else bool(self.log_target)
        z = np.log(y) if self.log_target_ else y
        gi = self._group_index()
        self.group_index_ = gi
        self.models_: dict[Any, dict[str, Any]] = {}
        self.models_["*"] = self._fit_set(X, z)
        if gi is not None:
            values, counts = np.unique(X[:, gi], return_counts=True)
            for v, c in zip(values, counts, strict=True):
                if c >= self.min_group_size:
                    rows = X[:, gi] == v
                    self.models_[float(v)] = self._fit_set(X[rows], z[rows])
        self._fit_band(y, self._predict_part(X, "point"))
        return self

    # -- prediction ------------------------------------------------------------------------------
    def _predict_part(self, X: np.ndarray, part: str) -> np.ndarray:
        out = np.empty(X.shape[0])
        gi = self.group_index_
        assigned = np.zeros(X.shape[0], dtype=bool)
        if gi is not None:
            for g, models in self.models_.items():
                if g == "*":
                    continue
                rows = X[:, gi] == g
                if rows.any():
                    out[rows] = models[part].predict(X[rows])
                    assigned |= rows
        if not assigned.all():
            rest = ~assigned
            out[rest] = self.models_["*"][part].predict(X[rest])
        return np.exp(out) if self.log_target_ else out

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_X(self, X, reset=False)
        return self._predict_part(X, "point")

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Quantile-regression band (``quantiles``), widened if needed to contain the point estimate."""
        check_is_fitted(self)
        if self.quantiles is None:
            return super().predict_interval(X)
        X = validate_X(self, X, reset=False)
        point = self._predict_part(X, "point")
        lo, hi = self._predict_part(X, "lo"), self._predict_part(X, "hi")
        return np.minimum(lo, point), np.maximum(hi, point)

    # -- export ----------------------------------------------------------------------------------
    def to_payload(self) -> dict[str, Any]:
        """The fitted ensembles as JSON-able data (see the module docstring)."""
        check_is_fitted(self)
        names = [
            str(n) for n in getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        ]
        groups = {}
        for g, models in self.models_.items():
            groups[str(g)] = {part: _model_payload(m) for part, m in models.items()}
        return {
            "backend": self.backend,
            "log_target": self.log_target_,
            "group_index": self.group_index_,
            "feature_names": names,
            "groups": groups,
        }


def _model_payload(model: Any) -> dict[str, Any]:
    if isinstance(model, GradientBoostingRegressor):
        init = float(np.ravel(model.init_.predict(np.zeros((1, model.n_features_in_))))[0])
        trees = []
        for est in model.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                {
                    "left": t.children_left.tolist(),
                    "right": t.children_right.tolist(),
                    "feature": t.feature.tolist(),
                    "threshold": t.threshold.tolist(),
                    "value": t.value[:, 0, 0].tolist(),
                }
            )
        return {
            "type": "sklearn-gbr",
            "init": init,
            "learning_rate": float(model.learning_rate),
            "trees": trees,
        }
    raw = model.get_booster().save_raw(raw_format="json")
    return {"type": "xgboost-json", "model": bytes(raw).decode("utf-8")}


MAX_TREE_DEPTH = 64


def check_tree(tree: dict[str, Any], n_features: int | None = None) -> str | None:
    """Why an exported tree cannot be evaluated safely, or None. Children must come after their parent
    (scikit-learn numbers nodes depth-first), which rules out cycles; depth is bounded; arrays agree."""
    try:
        left = np.asarray(tree["left"], dtype=np.int64)
        right = np.asarray(tree["right"], dtype=np.int64)
        feature = np.asarray(tree["feature"], dtype=np.int64)
        np.asarray(tree["threshold"], dtype=float)
        value = np.asarray(tree["value"], dtype=float)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        return f"malformed arrays ({type(exc).__name__}: {exc})"
    n = len(left)
    if n == 0 or not (left.ndim == right.ndim == feature.ndim == value.ndim == 1):
        return "empty or not flat"
    if not (len(right) == len(feature) == len(value) == len(np.atleast_1d(tree["threshold"])) == n):
        return "arrays of different lengths"
    idx = np.arange(n)
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        return "a node with one child"
    inner = ~leaf
    if (left[inner] <= idx[inner]).any() or (right[inner] <= idx[inner]).any():
        return "a child that does not come after its parent (a cycle or a back edge)"
    if (left[inner] >= n).any() or (right[inner] >= n).any():
        return "a child index out of range"
    if (feature[inner] < 0).any() or (n_features is not None and (feature[inner] >= n_features).any()):
        return "a feature index out of range"
    depth = np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(inner):  # parents precede children, so one pass in index order suffices
        depth[left[i]] = depth[right[i]] = depth[i] + 1
    if depth.max() > MAX_TREE_DEPTH:
        return f"deeper than {MAX_TREE_DEPTH} levels"
    return None


def _eval_tree(tree: dict[str, Any], X32: np.ndarray) -> np.ndarray:
    left = np.asarray(tree["left"])
    right = np.asarray(tree["right"])
    feature = np.asarray(tree["feature"])
    threshold = np.asarray(tree["threshold"], float)
    value = np.asarray(tree["value"], float)
    node = np.zeros(X32.shape[0], dtype=int)
    active = left[node] != -1
    rows = np.arange(X32.shape[0])
    for _ in range(len(left) + 1):  # a path visits each node at most once (check_tree: no cycles)
        if not active.any():
            break
        idx = rows[active]
        nd = node[idx]
        go_left = X32[idx, feature[nd]].astype(np.float64) <= threshold[nd]
        node[idx] = np.where(go_left, left[nd], right[nd])
        active = left[node] != -1
    if active.any():
        raise InputError("a boosted tree in the cost table does not reach a leaf (a cycle)",
                         hint="re-export the table with `hwnas fit --out`")  # fmt: skip
    return value[node]


def _eval_model(payload: dict[str, Any], X: np.ndarray, cache: dict[int, Any] | None = None) -> np.ndarray:
    if payload["type"] == "sklearn-gbr":
        X32 = X.astype(np.float32)
        out = np.full(X.shape[0], payload["init"])
        for tree in payload["trees"]:
            out += payload["learning_rate"] * _eval_tree(tree, X32)
        return out
    if payload["type"] == "xgboost-json":
        xgb = _xgboost()
        booster = cache.get(id(payload)) if cache is not None else None
        if booster is None:
            booster = xgb.Booster()
            booster.load_model(bytearray(payload["model"].encode("utf-8")))
            if cache is not None:
                cache[id(payload)] = booster
        return booster.inplace_predict(np.asarray(X, np.float32))
    raise InputError(f"unknown boosted model payload type {payload['type']!r}")


def payload_predict(
    payload: dict[str, Any], X: np.ndarray, part: str = "point", cache: dict[int, Any] | None = None
) -> np.ndarray:
    """Evaluate an exported boosted model on a numeric matrix (columns = ``payload['feature_names']``)."""
    X = np.asarray(X, float)
    out = np.empty(X.shape[0])
    gi = payload.get("group_index")
    assigned = np.zeros(X.shape[0], dtype=bool)
    if gi is not None:
        for g, models in payload["groups"].items():
            if g == "*":
                continue
            rows = X[:, gi] == float(g)
            if rows.any():
                out[rows] = _eval_model(models[part], X[rows], cache)
                assigned |= rows
    if not assigned.all():
        out[~assigned] = _eval_model(payload["groups"]["*"][part], X[~assigned], cache)
    return np.exp(out) if payload["log_target"] else out
