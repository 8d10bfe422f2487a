"""The adaptive-DNN system model (Stamoulis thesis ch. 4): a cascade of M networks with score-margin exits.

Network N_1 classifies every image; while the score margin SM_i (top-1 minus top-2 softmax probability,
§4.2) of stage i is below θ_{i,i+1}, the image goes on to N_{i+1}. The final prediction is that of the
stage where the image exits. From each network's per-image softmax outputs on a validation set and each
stage's per-image cost, expected error and expected per-image energy follow exactly (no sampling):

* local execution, eq. 4.3: ``E = Σ_i P_i·R_i · Pr[image reaches stage i]``;
* remote execution of the later stages, eq. 4.4: the edge device waits at its idle power for the server's
  runtime plus the communication time, ``P_idle · (R_server + τ_comm)``, paid for every image sent on
  (τ_comm once, when the image leaves the edge).

The objective of eq. 4.1 is written as the error *increase* over N_2 alone; the joint problem varies N_2
too, so hwnas minimises the full cascade error ``E[L_2] + E[(1-κ)(L_1 - L_2)]`` (the same quantity plus a
term that is constant when a_2 is fixed). Eq. 4.2's ΔL is measured against a *reference* network
("the larger network" of the thesis, VGG-19 there), by default the cascade's last stage alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.errors import InputError


def score_margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per row of ``probs`` [N, K] (K >= 2)."""
    p = np.asarray(probs, float)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(f"softmax outputs must be [images, classes>=2], got shape {p.shape}")
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


@dataclass(frozen=True)
class StageCost:
    """Per-image cost of running one stage: energy on the edge (mJ) and the latency a user waits (ms)."""

    energy_mj: float
    latency_ms: float
    where: str = "edge"  # "edge" or "server"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.energy_mj) and self.energy_mj >= 0):
            raise InputError(f"stage energy must be a finite non-negative mJ value, got {self.energy_mj}")
        if not (np.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise InputError(f"stage latency must be a finite non-negative ms value, got {self.latency_ms}")


def local_stage_cost(power_w: float, runtime_ms: float) -> StageCost:
    """Eq. 4.3's per-network term: P·R (W × ms = mJ)."""
    return StageCost(energy_mj=float(power_w) * float(runtime_ms), latency_ms=float(runtime_ms))


def remote_stage_cost(idle_power_w: float, server_runtime_ms: float, comm_ms: float) -> StageCost:
    """Eq. 4.4's remote term: ``P_idle · (R_server + τ_comm)``; ``comm_ms`` is 0 for stages after the first
    remote one (the image is already on the server)."""
    t = float(server_runtime_ms) + float(comm_ms)
    return StageCost(energy_mj=float(idle_power_w) * t, latency_ms=t, where="server")


@dataclass(frozen=True)
class CascadeResult:
    """Expected error (fraction), energy (mJ/image), latency (ms/image) and where images exit."""

    error: float
    energy_mj: float
    latency_ms: float
    exit_fractions: tuple[float, ...]

    @property
    def forwarded_fraction(self) -> float:
        """Fraction of images sent on past the first stage."""
        return float(1.0 - self.exit_fractions[0])


def _check(probs: Sequence[np.ndarray], labels: np.ndarray, costs: Sequence[StageCost]) -> None:
    if len(probs) < 1:
        raise InputError("a cascade needs at least one network")
    if len(costs) != len(probs):
        raise InputError(f"{len(probs)} networks but {len(costs)} stage costs")
    n = len(labels)
    for i, p in enumerate(probs):
        if np.asarray(p).shape[0] != n:
            raise InputError(f"network {i + 1}: {np.asarray(p).shape[0]} softmax rows for {n} labels")


def evaluate_cascade(
    probs: Sequence[np.ndarray],
    labels: np.ndarray,
    thresholds: Sequence[float],
    costs: Sequence[StageCost],
) -> CascadeResult:
    """Error and energy of one cascade at thresholds θ_{i,i+1} (``len(probs) - 1`` of them)."""
    res = sweep_cascade(probs, labels, [list(thresholds)], costs)
    return res[0]


def sweep_cascade(
    probs: Sequence[np.ndarray],
    labels: np.ndarray,
    threshold_grid: Sequence[Sequence[float]],
    costs: Sequence[StageCost],
) -> list[CascadeResult]:
    """:func:`evaluate_cascade` for many threshold vectors at once (the cheap θ sweep of BO+)."""
    labels = np.asarray(labels)
    _check(probs, labels, costs)
    m = len(probs)
    correct = [np.asarray(p).argmax(1) == labels for p in probs]
    margins = [score_margin(p) for p in probs[:-1]]
    if m == 2 and len(threshold_grid) > 8:
        return _sweep_two(correct, margins[0], threshold_grid, costs)
    out: list[CascadeResult] = []
    for thetas in threshold_grid:
        th = np.asarray(thetas, float).ravel()
        if len(th) != m - 1:
            raise InputError(f"{m} networks need {m - 1} threshold(s), got {len(th)}")
        if np.any(~np.isfinite(th)):
            raise InputError(f"thresholds must be finite, got {th.tolist()}")
        alive = np.ones(len(labels), bool)  # images that reach the current stage
        err = 0.0
        energy = 0.0
        latency = 0.0
        exits = []
        for i in range(m):
            reach = float(alive.mean())
            energy += reach * costs[i].energy_mj
            latency += reach * costs[i].latency_ms
            if i < m - 1:
                leave = alive & (margins[i] >= th[i])  # confident: exit here (κ = 0)
            else:
                leave = alive
            err += float((leave & ~correct[i]).sum())
            exits.append(float(leave.mean()))
            alive = alive & ~leave
        out.append(CascadeResult(err / len(labels), energy, latency, tuple(exits)))
    return out


def _sweep_two(
    correct: list[np.ndarray], margin: np.ndarray, grid: Sequence[Sequence[float]], costs: Sequence[StageCost]
) -> list[CascadeResult]:
    """Two networks, many θ: sort the margins once; counts below each θ come from a binary search."""
    th = np.asarray(grid, float).reshape(len(grid), -1)
    if th.shape[1] != 1:
        raise InputError(f"2 networks need 1 threshold, got {th.shape[1]}")
    if np.any(~np.isfinite(th)):
        raise InputError("thresholds must be finite")
    n = len(margin)
    order = np.argsort(margin, kind="stable")
    sm = margin[order]
    wrong1 = np.concatenate([[0], np.cumsum(~correct[0][order])])  # wrong at N1 among the k lowest margins
    wrong2 = np.concatenate([[0], np.cumsum(~correct[1][order])])
    k = np.searchsorted(sm, th[:, 0], side="left")  # images with SM < θ go on to N2
    err = (wrong2[k] + (wrong1[n] - wrong1[k])) / n
    fwd = k / n
    out = []
    for e, f in zip(err, fwd, strict=True):
        energy = costs[0].energy_mj + f * costs[1].energy_mj
        latency = costs[0].latency_ms + f * costs[1].latency_ms
        out.append(CascadeResult(float(e), float(energy), float(latency), (float(1 - f), float(f))))
    return out


def single_network(probs: np.ndarray, labels: np.ndarray, cost: StageCost) -> CascadeResult:
    """One network on its own (the thesis's monolithic CaffeNet / VGG-19 markers)."""
    return evaluate_cascade([probs], labels, [], [cost])
