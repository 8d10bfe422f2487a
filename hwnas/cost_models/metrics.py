"""Error metrics every cost model reports about itself on held-out data."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def _arrays(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("no values to score")
    if np.any(t == 0):
        raise ValueError("relative errors need non-zero true values (drop zero-latency rows first)")
    return t, p


def rmspe(y_true: Any, y_pred: Any) -> float:
    """Root mean square percentage error, in percent (Stamoulis thesis, table 3.1)."""
    t, p = _arrays(y_true, y_pred)
    return float(100.0 * np.sqrt(np.mean(((p - t) / t) ** 2)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in percent."""
    t, p = _arrays(y_true, y_pred)
    return float(100.0 * np.mean(np.abs((p - t) / t)))


def within(y_true: Any, y_pred: Any, tolerance: float) -> float:
    """Share (0–1) of predictions within ±tolerance relative error (0.10 = ±10 %, as nn-Meter reports)."""
    t, p = _arrays(y_true, y_pred)
    return float(np.mean(np.abs((p - t) / t) <= tolerance + 1e-12))


def kendall_tau(y_true: Any, y_pred: Any) -> float:
    """Kendall τ-b (tie-aware: whole-millisecond phone latencies have many ties)."""
    t, p = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    return float(stats.kendalltau(t, p, variant="b").statistic)


def spearman_rho(y_true: Any, y_pred: Any) -> float:
    """Spearman ρ with average ranks for ties."""
    t, p = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    return float(stats.spearmanr(t, p).statistic)


def report(y_true: Any, y_pred: Any) -> dict[str, float]:
    """All the figures `hwnas evaluate` prints, in one dict."""
    t, p = _arrays(y_true, y_pred)
    return {
        "n": int(t.size),
        "rmspe_pct": rmspe(t, p),
        "mape_pct": mape(t, p),
        "within_5pct": within(t, p, 0.05),
        "within_10pct": within(t, p, 0.10),
        "kendall_tau_b": kendall_tau(t, p),
        "spearman_rho": spearman_rho(t, p),
    }
