"""LUTCostModel: per layer key, the measured statistic (the lookup table of FBNet / Single-Path NAS).

A lookup table is exact for what was measured and silent about the rest. A key that is not in the table
raises :class:`~hwnas.cost_models.base.UnknownKeyError`, unless a ``fallback`` estimator was given: it is
fitted on the same rows and answers for missing keys, and :meth:`LUTCostModel.predict_sources` names which
rows it answered (``lut`` or ``fallback:<ClassName>``), so nobody mistakes an estimate for a measurement.

Inputs, in order of preference:
- a DataFrame with a ``key_column`` (default ``layer_key``) of layer keys; the other, numeric columns are
  the fallback's features;
- a 1-D array of keys (no fallback possible);
- a numeric 2-D array: each row's values are its key (this is what sklearn's estimator checks feed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from hwnas.cost_models.base import CostModel, UnknownKeyError, validate_X, validate_Xy

_STATISTICS = ("median", "mean", "min")


class LUTCostModel(CostModel):
    """Lookup table: per key, the ``statistic`` of the measured targets.

    Parameters
    ----------
    statistic : "median" | "mean" | "min"
        How repeated rows of one key are combined (median: robust to a noisy repeat).
    fallback : estimator or None
        Fitted on the same rows and used for keys missing from the table; None raises instead.
    key_column : str
        The DataFrame column holding layer keys.
    """

    interval_kind = "measured-spread"
    kind = "lut"
    fits_layer_keys = True  # fitted on layer keys (plus the fallback's features), with measured spreads

    def __init__(
        self, statistic: str = "median", fallback: Any = None, key_column: str = "layer_key"
    ) -> None:
        self.statistic = statistic
        self.fallback = fallback
        self.key_column = key_column

    # -- inputs ----------------------------------------------------------------------------------
    def _split(self, X: Any, y: Any = None, *, fitting: bool) -> tuple[list[str], Any, Any]:
        """(keys, fallback features or None, validated y)."""
        if isinstance(X, pd.DataFrame) and self.key_column in X.columns:
            keys = X[self.key_column].astype(str).tolist()
            rest = X.drop(columns=[self.key_column])
            feats = None
            if rest.shape[1]:
                # Validated here; the fallback gets the DataFrame itself so it can pick columns by name.
                if fitting:
                    _, y = validate_Xy(self, rest, y)
                else:
                    validate_X(self, rest, reset=False)
                feats = rest.reset_index(drop=True)
            elif fitting:
                self.n_features_in_ = 1
            return keys, feats, (np.asarray(y, float) if y is not None else None)
        arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
        if arr.ndim == 1 and arr.dtype.kind in "OUS":
            if fitting:
                self.n_features_in_ = 1
            return [str(k) for k in arr], None, (np.asarray(y, float) if y is not None else None)
        if fitting:
            feats, y = validate_Xy(self, X, y)
        else:
            feats = validate_X(self, X, reset=False)
        feats = np.asarray(feats, dtype=np.float64)
        keys = [row.tobytes().hex() for row in np.ascontiguousarray(feats)]
        return keys, feats, y

    # -- fit / predict ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, y_lo: Any = None, y_hi: Any = None) -> LUTCostModel:
        """Build the table. ``y_lo``/``y_hi`` (optional) are each row's measured spread (e.g. the 95 % CI
        or IQR bounds from the store); without them the spread of repeated rows of a key is used."""
        if self.statistic not in _STATISTICS:
            raise ValueError(f"statistic must be one of {_STATISTICS}, got {self.statistic!r}")
        keys, feats, y = self._split(X, y, fitting=True)
        if y is None or len(y) != len(keys):
            raise ValueError("y must have one value per row of X")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        frame = pd.DataFrame({"key": keys, "y": y})
        if y_lo is not None and y_hi is not None:
            frame["lo"] = np.asarray(y_lo, float)
            frame["hi"] = np.asarray(y_hi, float)
        grouped = frame.groupby("key", sort=False)
        value = getattr(grouped["y"], self.statistic)()
        if "lo" in frame:
            lo, hi = grouped["lo"].median(), grouped["hi"].median()
        else:
            lo, hi = grouped["y"].quantile(0.05), grouped["y"].quantile(0.95)
        count = grouped["y"].size()
        self.table_ = {
            k: (float(value[k]), float(min(lo[k], value[k])), float(max(hi[k], value[k])), int(count[k]))
            for k in value.index
        }
        self.fallback_ = None
        self.fallback_name_ = None
        if self.fallback is not None:
            if feats is None:
                raise ValueError("a fallback model needs numeric feature columns besides the key column")
            self.fallback_ = clone(self.fallback).fit(feats, y)
            self.fallback_name_ = type(self.fallback).__name__
        # Band for model sums and fallback rows: in-sample residuals (a LUT reproduces its own data).
        y_fit = value.reindex(keys).to_numpy()
        self._fit_band(y, y_fit)
        return self

    def _lookup(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        check_is_fitted(self)
        keys, feats, _ = self._split(X, fitting=False)
        n = len(keys)
        point, lo, hi = np.empty(n), np.empty(n), np.empty(n)
        hit = np.zeros(n, dtype=bool)
        for i, k in enumerate(keys):
            entry = self.table_.get(k)
            if entry is not None:
                point[i], lo[i], hi[i] = entry[0], entry[1], entry[2]
                hit[i] = True
        if not hit.all():
            if self.fallback_ is None:
                missing = [keys[i] for i in np.flatnonzero(~hit)[:3]]
                raise UnknownKeyError(
                    f"{int((~hit).sum())} layer key(s) not in the lookup table, e.g. {missing}",
                    hint="profile these layers first, or fit the LUT with a fallback model "
                    "(e.g. --fallback boosted)",
                )
            miss = ~hit
            fb = self.fallback_
            sub = feats[miss] if isinstance(feats, np.ndarray) else feats.loc[miss]
            fp = fb.predict(sub)
            point[miss] = fp
            if hasattr(fb, "predict_interval"):
                flo, fhi = fb.predict_interval(sub)
            else:
                flo, fhi = fp, fp
            lo[miss], hi[miss] = flo, fhi
        return point, lo, hi, hit

    def predict(self, X: Any) -> np.ndarray:
        return self._lookup(X)[0]

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The measured spread of each entry (5th–95th percentile of repeats, or the given y_lo/y_hi)."""
        _, lo, hi, _ = self._lookup(X)
        return lo, hi

    def predict_sources(self, X: Any) -> list[str]:
        """Per row: ``lut`` (a measured entry) or ``fallback:<ClassName>`` (an estimate)."""
        hit = self._lookup(X)[3]
        return ["lut" if h else f"fallback:{self.fallback_name_}" for h in hit]

    def contains(self, keys: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.array([str(k) in self.table_ for k in keys], dtype=bool)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags
