"""Searchers for adaptive DNNs (thesis Algorithm 1): BO, BO+ (θ fine-tuning), grid search, static.

* **BO** — Bayesian optimisation over z = (a_1, …, a_M, θ) with an unknown constraint: one GP on the
  objective and one on the constraint value (the energy or the error increase is known only once the
  networks are trained, since both depend on how many images N_1 passes on), and the acquisition
  EI(z) · Pr[constraint(z) <= 0], the constrained EI that Spearmint (the thesis's tool) uses. Before
  ``n_init`` points it samples at random.
* **BO+** — Algorithm 1 lines 11-16: after each trained tuple, sweep θ over [0, 1] at no training cost and
  add every swept point to the observations D. The trial then records the best feasible θ of its sweep
  (the evaluation is "train the networks, then tune κ"); the proposed θ stays in ``info``.
* **Grid** — every tuple of a finite candidate pool × a θ grid: the reference the thesis compares with.
* **Static** — fixed off-the-shelf networks (the family's nominal small and large members, CaffeNet and
  VGG-19 in the thesis), θ tuned on a grid: the prior work [92].

Every searcher is a black-box searcher (``ask``/``tell`` on ``hwnas.searchers.base.Searcher``), so the
same histories, plots and comparisons apply; :func:`run_design` is the loop.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

from hwnas.errors import InputError
from hwnas.searchers.acquisition import expected_improvement
from hwnas.searchers.adaptive.candidates import describe
from hwnas.searchers.adaptive.problem import AdaptiveProblem, DesignPoint
from hwnas.searchers.base import History, Searcher, Trial
from hwnas.searchers.surrogate import GPSurrogate


class AdaptiveBO(Searcher):
    """BO (``plus=False``) or BO+ (``plus=True``) for one :class:`AdaptiveProblem`.

    ``encoding`` is the GP's view of z: ``"size"`` (default) maps each network to its log MACs and log
    parameter count (computed from its hyperparameters, scaled to [0, 1] over the family) and keeps θ;
    ``"hyper"`` uses the unit-scaled hyperparameters themselves. Energy and accuracy follow network size far
    more smoothly than they follow any single hyperparameter, so the size map needs fewer evaluations (see
    the benchmark). Energy objectives are modelled in log space. With a candidate pool, the acquisition is
    scored on every pool tuple (sampled when there are too many) at every θ of a grid; BO+ scores a tuple
    by its best θ, since it tunes θ after training anyway.
    """

    name = "adaptive_bo"

    def __init__(
        self,
        problem: AdaptiveProblem,
        *,
        plus: bool = False,
        seed: int = 0,
        n_init: int = 5,
        n_candidates: int = 3000,
        max_sweep_points: int = 6,
        encoding: str = "size",
        theta_steps: int = 11,
    ) -> None:
        super().__init__(problem.space, [problem.constraint_text], seed=seed)
        if encoding not in ("size", "hyper"):
            raise InputError(f"unknown encoding {encoding!r}", hint="size or hyper")
        self.name = "adaptive_bo_plus" if plus else "adaptive_bo"
        self.history.meta.update({"searcher": self.name, "encoding": encoding})
        self.problem = problem
        self.plus = plus
        self.n_init = n_init
        self.n_candidates = n_candidates
        self.max_sweep_points = max_sweep_points
        self.encoding = encoding
        self.theta_steps = theta_steps
        self.projector = problem.project
        self._X: list[np.ndarray] = []
        self._Z: list[dict[str, Any]] = []  # the points behind _X (for local moves)
        self._obj: list[float] = []
        self._con: list[float] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._tuples_tried: set[tuple[str, ...]] = set()
        self._gp_obj = GPSurrogate(seed=seed, max_iter=40)
        self._gp_con = GPSurrogate(seed=seed + 1, max_iter=40)
        self._size_bounds = _size_bounds(problem)

    # -- encoding ---------------------------------------------------------------------------------------
    def encode(self, zs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self.encoding == "hyper":
            return self.space.to_unit_matrix(zs)
        (lo_m, hi_m), (lo_p, hi_p) = self._size_bounds
        rows = []
        for z in zs:
            configs, thetas = self.problem.split(z)
            r: list[float] = []
            for c in [configs[i] for i in self.problem.free]:
                m, p = _log_size(c, self.problem)
                r += [(m - lo_m) / (hi_m - lo_m), (p - lo_p) / (hi_p - lo_p)]
            rows.append(r + list(thetas))
        return np.asarray(rows, float)

    def _target(self, obj: float) -> float:
        return float(np.log(max(obj, 1e-12))) if self.problem.form == "error" else float(obj)

    # -- proposal ---------------------------------------------------------------------------------------
    def _propose(self) -> dict[str, Any]:
        told = sum(1 for t in self.history.trials if t.done)
        if told < self.n_init or len(self._X) < 2:
            return self._fresh_sample()
        X = np.vstack(self._X)
        self._gp_obj.fit(X, np.asarray(self._obj))
        self._gp_con.fit(X, np.asarray(self._con))
        cands = self._candidates()
        mo, so = self._gp_obj.predict(self.encode(cands))
        mc, sc = self._gp_con.predict(self.encode(cands))
        pf = norm.cdf(-mc / sc)
        feasible = np.asarray(self._con) <= 0
        if feasible.any():
            best = float(np.min(np.asarray(self._obj)[feasible]))
            score = expected_improvement(mo, so, best) * pf
        else:  # nothing feasible yet: find the feasible region first
            score = pf
        if self.plus:  # a tuple is worth its best θ: BO+ tunes θ after training
            by_tuple: dict[tuple[str, ...], int] = {}
            for i, z in enumerate(cands):
                k = self._tuple_key(z)
                if k not in by_tuple or score[i] > score[by_tuple[k]]:
                    by_tuple[k] = i
            idx = max(by_tuple.values(), key=lambda i: score[i])
        else:
            idx = int(np.argmax(score))
        return cands[idx]

    def _tuple_key(self, z: Mapping[str, Any]) -> tuple[str, ...]:
        configs, _ = self.problem.split(z)
        return tuple(describe(c) for c in configs)

    def _fresh_sample(self) -> dict[str, Any]:
        for _ in range(200):
            z = self._project(self.space.sample(self.rng))
            if self.space.key(z) not in self._seen and self._tuple_key(z) not in self._tuples_tried:
                return z
        return self._project(self.space.sample(self.rng))

    def _candidates(self) -> list[dict[str, Any]]:
        thetas = np.linspace(0.0, 1.0, self.theta_steps)
        pool = self.problem.pool
        m, free = self.problem.m, self.problem.free
        if pool is not None:
            n_tuples = len(pool) ** len(free)
            budget = max(1, self.n_candidates // (self.theta_steps ** (m - 1)))
            if n_tuples <= budget:
                picks = list(itertools.product(pool, repeat=len(free)))
            else:
                picks = [[pool[i] for i in self.rng.integers(0, len(pool), len(free))] for _ in range(budget)]
            tuples = []
            for pick in picks:
                t = [self.problem.fixed.get(i) for i in range(m)]
                for i, c in zip(free, pick, strict=True):
                    t[i] = c
                tuples.append(t)
            tuples = [t for t in tuples if len({describe(c) for c in t}) == m]
            if self.plus:  # a tried tuple's θ is already swept
                tuples = [t for t in tuples if tuple(describe(c) for c in t) not in self._tuples_tried]
            grid = list(itertools.product(thetas, repeat=m - 1))
            out = [self.problem.join(t, g) for t in tuples for g in grid]
        else:
            out = [self._project(self.space.sample(self.rng)) for _ in range(self.n_candidates)]
        ranked = sorted((i for i in range(len(self._obj)) if self._con[i] <= 0), key=lambda i: self._obj[i])[
            :5
        ]
        for i in ranked:  # local moves around the incumbents
            base = self._Z[i]
            out += [self._project(self.space.neighbour(base, self.rng, 0.1)) for _ in range(40)]
        uniq = {self.space.key(c): c for c in out if self.space.key(c) not in self._seen}
        return list(uniq.values()) or out

    # -- observation --------------------------------------------------------------------------------------
    def _add(self, z: Mapping[str, Any], obj: float, con: float) -> None:
        self._X.append(self.encode([z])[0])
        self._Z.append(dict(z))
        self._obj.append(self._target(obj))
        self._con.append(float(con))
        self._seen.add(self.space.key(z))

    def _observe(self, trial: Trial) -> None:
        self._tuples_tried.add(self._tuple_key(trial.config))
        if trial.objective is None:
            return
        self._add(trial.config, trial.objective, next(iter(trial.constraints.values())))
        for z, obj, con in trial.info.get("_swept", []):
            self._add(z, obj, con)
        trial.info.pop("_swept", None)


def _log_size(config: Mapping[str, Any], problem: AdaptiveProblem) -> tuple[float, float]:
    from hwnas.spaces import hyperpower_cnn

    f = hyperpower_cnn.layer_features(
        config, problem.trainer.dd.input_shape, problem.trainer.dd.data.num_classes
    )
    macs = sum(v for k, v in f.items() if k.endswith("_macs")) + f["fc1_params"] + f["fc2_params"]
    params = sum(v for k, v in f.items() if k.endswith("_params"))
    return float(np.log(macs)), float(np.log(params))


def _size_bounds(problem: AdaptiveProblem) -> tuple[tuple[float, float], tuple[float, float]]:
    fam = problem.family
    small = fam.config(fam.features[0], fam.kernel[0], fam.features[0], fam.kernel[0], fam.fc_units[0])
    large = fam.config(fam.features[1], fam.kernel[1], fam.features[1], fam.kernel[1], fam.fc_units[1])
    (m0, p0), (m1, p1) = _log_size(small, problem), _log_size(large, problem)
    return (m0, max(m1, m0 + 1e-6)), (p0, max(p1, p0 + 1e-6))


def evaluate_trial(problem: AdaptiveProblem, searcher: Searcher, trial: Trial, plus: bool,
                   max_sweep_points: int = 6) -> dict[str, Any]:  # fmt: skip
    """Train/cached-load the trial's networks, score its θ; for BO+ sweep θ and keep the best feasible."""
    t0 = time.perf_counter()
    before = problem.trainer.train_count
    point = problem.evaluate(trial.config, with_test=False)
    ref = problem.reference_error_pct() if problem.form == "error" else 0.0
    obj, con = problem.values(point.error_pct, point.energy_mj, ref)
    info: dict[str, Any] = {"networks_trained": problem.trainer.train_count - before,
                            "forwarded_fraction": point.forwarded}  # fmt: skip
    chosen = point
    if plus:
        configs, thetas = problem.split(trial.config)
        swept = problem.sweep(configs)
        scored = [(p, *problem.values(p.error_pct, p.energy_mj, ref)) for p in swept]
        step = max(1, len(scored) // max_sweep_points)  # the GP gets a thinned sweep; the best uses all
        info["_swept"] = [(problem.join(p.configs, p.thresholds), o, c) for p, o, c in scored[::step]]
        best = problem.best_of(swept)
        if best is not None:
            b_obj, b_con = problem.values(best.error_pct, best.energy_mj, ref)
            if con > 0 or b_obj < obj:
                info["theta_proposed"] = thetas
                trial.config = problem.join(best.configs, best.thresholds)
                chosen, obj, con = best, b_obj, b_con
    costs = {problem.constraint_name: con + problem.budget, "energy_mj": chosen.energy_mj,
             "error_pct": chosen.error_pct, "latency_ms": chosen.latency_ms}  # fmt: skip
    info["design"] = problem.add_test_metrics(chosen).to_dict()
    searcher.tell(trial, obj, costs, eval_time_s=time.perf_counter() - t0, info=info)
    return info


def run_design(
    problem: AdaptiveProblem,
    searcher: AdaptiveBO,
    n_evals: int,
    *,
    callback: Callable[[Trial], None] | None = None,
) -> History:
    """Algorithm 1's outer loop: ask, train (or load) the networks, evaluate, tell — ``n_evals`` times."""
    for _ in range(n_evals):
        trial = searcher.ask()
        evaluate_trial(problem, searcher, trial, searcher.plus, searcher.max_sweep_points)
        if callback is not None:
            callback(trial)
    searcher.history.meta.update({"problem": describe_problem(problem)})
    return searcher.history


def describe_problem(problem: AdaptiveProblem) -> dict[str, Any]:
    return {
        "form": problem.form,
        "placement": problem.placement,
        "n_networks": problem.m,
        "objective": problem.objective_name,
        "constraint": problem.constraint_text,
        "costs": problem.costs.summary(),
    }


def grid_design(
    problem: AdaptiveProblem,
    pool: Sequence[Mapping[str, Any]],
    *,
    ordered_by_cost: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[DesignPoint | None, list[DesignPoint]]:
    """Every tuple of ``pool`` (distinct networks; with ``ordered_by_cost`` each later stage costs more on
    the edge than the one before, the only useful order) × the θ grid. Returns (best, Pareto front)."""
    pool = [dict(c) for c in pool]
    free = problem.free
    if ordered_by_cost:
        pool.sort(key=lambda c: problem.costs.edge(c)["energy_mj"])
        picks = itertools.combinations(pool, len(free))
    else:
        picks = itertools.permutations(pool, len(free))

    def full(pick: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]] | None:
        t: list[Any] = [problem.fixed.get(i) for i in range(problem.m)]
        for i, c in zip(free, pick, strict=True):
            t[i] = c
        return t if len({describe(c) for c in t}) == problem.m else None

    tuples = (t for t in map(full, picks) if t is not None)
    points: list[DesignPoint] = []
    best: DesignPoint | None = None
    for tup in tuples:
        swept = problem.sweep(tup)
        cand = problem.best_of(swept + ([best] if best is not None else []))
        best = cand if cand is not None else best
        points += pareto_front(swept)
        if progress is not None:
            progress(1)
    if best is not None:
        problem.add_test_metrics(best)
    return best, pareto_front(points)


def static_design(
    problem: AdaptiveProblem, configs: Sequence[Mapping[str, Any]] | None = None
) -> DesignPoint | None:
    """Fixed networks (default: the family's nominal small … large), only θ tuned on the grid."""
    if configs is None:
        fam = problem.family
        configs = [fam.nominal_small(), fam.nominal_large()]
        if problem.m == 3:
            mid = fam.config(
                (fam.features[0] + fam.features[1]) // 2, 3, (fam.features[0] + fam.features[1]) // 2, 3,
                (fam.fc_units[0] + fam.fc_units[1]) // 2,
            )  # fmt: skip
            configs = [configs[0], mid, configs[1]]
    best = problem.best_of(problem.sweep(configs))
    if best is not None:
        problem.add_test_metrics(best)
    return best


def pareto_front(points: Sequence[DesignPoint]) -> list[DesignPoint]:
    """Points not dominated in (error, energy), lowest energy first."""
    pts = sorted(points, key=lambda p: (p.energy_mj, p.error_pct))
    front: list[DesignPoint] = []
    best_err = np.inf
    for p in pts:
        if p.error_pct < best_err - 1e-12:
            front.append(p)
            best_err = p.error_pct
    return front


def best_design(history: History) -> dict[str, Any] | None:
    """The best feasible trial's design (networks, θ, design- and test-split metrics)."""
    t = history.best()
    return None if t is None else t.info.get("design")
