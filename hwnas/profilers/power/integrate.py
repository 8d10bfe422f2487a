"""Energy as the integral of sampled power over a window (trapezoids, linear at the window's edges)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def integrate_mj(times_s: Sequence[float], power_mw: Sequence[float], t0: float, t1: float) -> float:
    """∫ P dt over ``[t0, t1]`` in mJ (mW × s), with P linear between samples.

    Samples must cover the window (one at or before ``t0``, one at or after ``t1``); outside the sampled
    span nothing is extrapolated and a ``ValueError`` says so.
    """
    t = np.asarray(times_s, float)
    p = np.asarray(power_mw, float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError("times and powers must be 1-D and of equal length")
    if len(t) < 2:
        raise ValueError(f"need at least 2 power samples to integrate, got {len(t)}")
    if np.any(np.diff(t) < 0):
        raise ValueError("sample times must be non-decreasing")
    if not t1 > t0:
        raise ValueError(f"window end {t1} is not after its start {t0}")
    if t[0] > t0 or t[-1] < t1:
        raise ValueError(f"samples span [{t[0]:.6f}, {t[-1]:.6f}] s but the window is [{t0:.6f}, {t1:.6f}] s")
    inside = (t > t0) & (t < t1)
    tt = np.concatenate([[t0], t[inside], [t1]])
    pp = np.concatenate([[np.interp(t0, t, p)], p[inside], [np.interp(t1, t, p)]])
    return float(np.trapezoid(pp, tt)) if hasattr(np, "trapezoid") else float(np.trapz(pp, tt))


def samples_within(times_s: Sequence[float], t0: float, t1: float) -> int:
    """How many samples fall inside ``[t0, t1]``."""
    t = np.asarray(times_s, float)
    return int(np.count_nonzero((t >= t0) & (t <= t1)))
