"""Nested leave-one-device-out evaluation and selection of the few-shot method.

A method (with its hyper-parameters and the pool ``auto`` chooses from) tuned on the devices it is scored on
is an in-sample figure. Here the choice for a held-out device D is made from the *other* devices only: each
other device d is predicted in turn from references that exclude D (and d), with the same k-sample draws,
and the configuration with the best mean Spearman ρ over those inner devices is then scored on D. D's
column is dropped from the table before anything is computed for D (see :func:`nested_choice`).

A *configuration* is a pool of base methods (:data:`BASE_METHODS`, ``name@alpha`` spellings): per draw the
member with the lowest leave-one-out error on the k samples predicts (a pool of one is a fixed method).
Everything a configuration needs per (device, references, draw) is computed once per base method and
cached (:class:`Study`), so scoring many configurations costs lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from hwnas.cost_models.fewshot import (
    DEFAULT_SPACE,
    FewShotSpace,
    ReferenceFeatures,
    _fit_predict,
    ensemble_parts,
    get_fewshot_space,
    jackknife_band,
    loo_predictions,
    reference_features,
    subset_features,
)
from hwnas.errors import InputError

BASE_METHODS: tuple[str, ...] = (
    "ridge",
    "ridge@10",
    "nn-ridge@0.1",
    "nn-ridge",
    "nn-ridge@1",
    "nn-ridge@3",
    "nn-ridge-aug@0.1",
    "nn-ridge-aug",
    "nn-ridge-aug@1",
    "nn-ridge-aug@3",
    "nearest-1",
    "nearest-3",
    "nearest-5",
    "ensemble",
)

Config = tuple[str, ...]


def default_configs(methods: Sequence[str] = BASE_METHODS) -> list[Config]:
    """The configurations a nested study chooses among: every base method alone, and pools of them chosen
    per draw by leave-one-out error (one pool per alpha, the old six-method pool, everything)."""
    out: list[Config] = [(m,) for m in methods]
    alphas = ("@0.1", "", "@1", "@3")
    for a in alphas:
        out.append((f"nn-ridge{a}", f"nn-ridge-aug{a}", "nearest-3", "ensemble"))
        out.append((f"nn-ridge{a}", f"nn-ridge-aug{a}"))
    out.append(("ridge", "nn-ridge", "nn-ridge-aug", "nearest-1", "nearest-3", "ensemble"))
    out.append(tuple(m for m in methods if not m.startswith("ridge")))
    out.append(tuple(methods))
    return [c for c in dict.fromkeys(out) if all(m in methods for m in c)]


def spearman_rows(truth_rank: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of ``pred`` [M, N] against a precomputed (tie-averaged) truth ranking."""
    pr = stats.rankdata(pred, axis=1)
    pr = pr - pr.mean(axis=1, keepdims=True)
    tr = truth_rank - truth_rank.mean()
    return (pr @ tr) / (np.sqrt((pr**2).sum(axis=1) * (tr**2).sum()) + 1e-300)


@dataclass
class Scores:
    """One (device, references) pair over the study's draws: per draw × base method, the leave-one-out
    MSE of log-latency on the k samples and the Spearman ρ on the device's evaluation cells."""

    methods: tuple[str, ...]
    loo_mse: np.ndarray  # [R, M]
    rho: np.ndarray  # [R, M]

    def config_rho(self, config: Config) -> np.ndarray:
        """ρ per draw of a configuration (its member with the lowest LOO error predicts)."""
        idx = np.array([self.methods.index(m) for m in config])
        pick = idx[np.argmin(self.loo_mse[:, idx], axis=1)]
        return self.rho[np.arange(len(pick)), pick]

    def config_choice(self, config: Config) -> list[str]:
        idx = np.array([self.methods.index(m) for m in config])
        return [self.methods[i] for i in idx[np.argmin(self.loo_mse[:, idx], axis=1)]]


@dataclass
class Study:
    """Cached per-(device, references) scores for one table, one k and one set of draws.

    ``draws``: [R, k] row indices of the sampled cells (the same for every device and method).
    ``eval_rows``: the cells ρ is computed on (default: the connected cells).
    ``sampler(feats, r, measure) -> rows``: optional, replaces the random draws by a designed or adaptive
    sample; it sees the reference features and may call ``measure(rows)`` for the device's log-costs of
    the cells it has chosen so far (as a user measures them), never the device's other cells."""

    table: pd.DataFrame
    draws: np.ndarray
    methods: tuple[str, ...] = BASE_METHODS
    space: str | FewShotSpace = DEFAULT_SPACE
    eval_rows: np.ndarray | None = None
    sampler: Callable[[ReferenceFeatures, int, Callable[[np.ndarray], np.ndarray]], np.ndarray] | None = None
    _bank: dict[str, ReferenceFeatures] = field(default_factory=dict, repr=False)
    _cache: dict[tuple[str, frozenset[str]], Scores] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.space = get_fewshot_space(self.space)
        if self.eval_rows is None:
            conn = self.table["connected"].to_numpy() > 0 if "connected" in self.table else None
            self.eval_rows = np.flatnonzero(conn) if conn is not None else np.arange(len(self.table))
        self._truth_rank: dict[str, np.ndarray] = {}

    def features(self, refs: Sequence[str]) -> ReferenceFeatures:
        """Reference features of ``refs``: the columns of one bank built over every latency column, which
        equals building on ``refs`` alone (every feature is per column: :func:`subset_features`; the
        poisoning test checks that no other column enters)."""
        if "all" not in self._bank:
            self._bank["all"] = reference_features(
                self.table, self.space.latency_columns(self.table), self.space
            )
        return subset_features(self._bank["all"], sorted(refs, key=self._bank["all"].columns.index))

    def scores(self, device: str, refs: Sequence[str]) -> Scores:
        if device in refs:
            raise InputError(f"{device} cannot be its own reference")
        key = (device, frozenset(refs))
        if key in self._cache:
            return self._cache[key]
        feats = self.features(refs)
        y_all = np.log(np.maximum(self.table[device].to_numpy(float), 1e-3))
        if device not in self._truth_rank:
            self._truth_rank[device] = stats.rankdata(y_all[self.eval_rows])
        tr = self._truth_rank[device]
        n_draws = len(self.draws)
        loo = np.empty((n_draws, len(self.methods)))
        rho = np.empty_like(loo)
        for r in range(n_draws):
            rows = self.draws[r] if self.sampler is None else self.sampler(feats, r, lambda q: y_all[q])
            y = y_all[rows]
            loo_pred: dict[str, np.ndarray] = {}
            full: dict[str, np.ndarray] = {}
            for m in self.methods:
                parts = ensemble_parts(m) if m.startswith("ensemble") else ()
                if parts and all(p in loo_pred for p in parts):
                    loo_pred[m] = np.mean([loo_pred[p] for p in parts], axis=0)
                    full[m] = np.mean([full[p] for p in parts], axis=0)
                else:
                    loo_pred[m] = loo_predictions(m, feats, rows, y)
                    full[m] = _fit_predict(m, feats, rows, y, slice(None))[self.eval_rows]
            loo[r] = [np.mean((loo_pred[m] - y) ** 2) for m in self.methods]
            rho[r] = spearman_rows(tr, np.vstack([full[m] for m in self.methods]))
        out = Scores(tuple(self.methods), loo, rho)
        self._cache[key] = out
        return out


RefsFor = Callable[[str, str | None], list[str] | None]


def split_refs(
    kind: str, classes: Mapping[str, Sequence[str]], devices: Sequence[str], source: str | None = None
) -> RefsFor:
    """``refs_for(target, excluded) -> references or None`` for a split:

    - ``all``: every other device; ``within``: the other devices of the target's class;
    - ``cross``: the devices of class ``source`` (the target must be outside it).
    ``excluded`` (the outer held-out device) is never a reference. None: the target is not predictable
    under this split (fewer than 2 references)."""
    cls_of = {d: c for c, ds in classes.items() for d in ds}

    def refs_for(target: str, excluded: str | None) -> list[str] | None:
        if kind == "all":
            pool = list(devices)
        elif kind == "within":
            pool = list(classes[cls_of[target]])
        elif kind == "cross":
            if source is None or cls_of.get(target) == source:
                return None
            pool = list(classes[source])
        else:
            raise InputError(f"unknown split {kind!r}", hint="all, within, cross")
        refs = [d for d in pool if d not in (target, excluded)]
        return refs if len(refs) >= 2 else None

    return refs_for


def nested_choice(
    study: Study, held_out: str, refs_for: RefsFor, configs: Sequence[Config], devices: Sequence[str]
) -> tuple[Config, dict[Config, float]]:
    """The configuration chosen for ``held_out`` from the other devices only: mean ρ over every inner
    device d != held_out (references ``refs_for(d, held_out)``, which never contain ``held_out``).
    Returns the choice and every configuration's inner mean ρ."""
    inner = [d for d in devices if d != held_out and refs_for(d, held_out) is not None]
    if not inner:
        raise InputError(f"no inner device to choose a method for {held_out} on")
    per = {c: [] for c in configs}
    for d in inner:
        refs = refs_for(d, held_out)
        assert refs is not None and held_out not in refs
        sc = study.scores(d, refs)
        for c in configs:
            per[c].append(float(sc.config_rho(c).mean()))
    inner_rho = {c: float(np.mean(v)) for c, v in per.items()}
    best = max(configs, key=lambda c: (inner_rho[c], -len(c)))
    return best, inner_rho


def random_draws(table: pd.DataFrame, k: int, n: int, seed: int = 0) -> np.ndarray:
    """[n, k] rows of connected cells, the same draws for every device and method."""
    conn = table["connected"].to_numpy() > 0 if "connected" in table else np.ones(len(table), bool)
    pool = np.flatnonzero(conn)
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(pool, k, replace=False) for _ in range(n)])




COVERAGE_GRID = np.round(np.arange(0.50, 2.501, 0.01), 2)  # multipliers on the jackknife half-width


def coverage_curves(
    study: Study, device: str, refs: Sequence[str], method: str, level: float = 0.90
) -> tuple[np.ndarray, np.ndarray]:
    """Observed coverage of the jackknife interval of ``method`` (fixed; no selection) on the device's
    held-out cells (evaluation cells not sampled), per draw, for each half-width multiplier of
    :data:`COVERAGE_GRID`. Returns ([R, G] coverage, [R] supported level)."""
    feats = study.features(refs)
    y_all = np.log(np.maximum(study.table[device].to_numpy(float), 1e-3))
    cover = np.empty((len(study.draws), len(COVERAGE_GRID)))
    levels = np.empty(len(study.draws))
    for r in range(len(study.draws)):
        rows = study.draws[r] if study.sampler is None else study.sampler(feats, r, lambda q: y_all[q])
        y = y_all[rows]
        q, levels[r] = jackknife_band(y, loo_predictions(method, feats, rows, y), level)
        held = np.setdiff1d(study.eval_rows, rows)
        res = np.sort(np.abs(_fit_predict(method, feats, rows, y, slice(None))[held] - y_all[held]))
        cover[r] = np.searchsorted(res, COVERAGE_GRID * q, side="right") / len(res)
    return cover, levels


def calibration_scale(curves: Sequence[np.ndarray], level: float) -> float:
    """The smallest multiplier of :data:`COVERAGE_GRID` whose mean coverage over ``curves`` (devices'
    [R, G] arrays, weighted equally) reaches ``level``."""
    mean = np.mean([c.mean(axis=0) for c in curves], axis=0)
    ok = np.flatnonzero(mean >= level)
    return float(COVERAGE_GRID[ok[0]] if len(ok) else COVERAGE_GRID[-1])
