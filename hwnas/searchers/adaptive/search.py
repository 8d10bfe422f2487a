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

from hwnas.searchers.acquisition import expected_improvement
from hwnas.searchers.adaptive.problem import AdaptiveProblem, DesignPoint
from hwnas.searchers.base import History, Searcher, Trial
from hwnas.searchers.surrogate import GPSurrogate


class AdaptiveBO(Searcher):
    """BO (``plus=False``) or BO+ (``plus=True``) for one :class:`AdaptiveProblem`."""

    name = "adaptive_bo"

    def __init__(
        self,
        problem: AdaptiveProblem,
        *,
        plus: bool = False,
        seed: int = 0,
        n_init: int = 5,
        n_candidates: int = 800,
        max_sweep_points: int = 21,
    ) -> None:
        super().__init__(problem.space, [problem.constraint_text], seed=seed)
        self.name = "adaptive_bo_plus" if plus else "adaptive_bo"
        self.history.meta["searcher"] = self.name
        self.problem = problem
        self.plus = plus
        self.n_init = n_init
        self.n_candidates = n_candidates
        self.max_sweep_points = max_sweep_points
        self.projector = problem.project
        self._X: list[np.ndarray] = []
        self._obj: list[float] = []
        self._con: list[float] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._gp_obj = GPSurrogate(seed=seed)
        self._gp_con = GPSurrogate(seed=seed + 1)

    # -- proposal ---------------------------------------------------------------------------------------
    def _propose(self) -> dict[str, Any]:
        told = sum(1 for t in self.history.trials if t.done)
        if told < self.n_init or len(self._X) < 2:
            return self._fresh_sample()
        X = np.vstack(self._X)
        self._gp_obj.fit(X, np.asarray(self._obj))
        self._gp_con.fit(X, np.asarray(self._con))
        cands = self._candidates()
        U = self.space.to_unit_matrix(cands)
        mo, so = self._gp_obj.predict(U)
        mc, sc = self._gp_con.predict(U)
        pf = norm.cdf(-mc / sc)
        feasible = np.asarray(self._con) <= 0
        if feasible.any():
            best = float(np.min(np.asarray(self._obj)[feasible]))
            score = expected_improvement(mo, so, best) * pf
        else:  # nothing feasible yet: find the feasible region first
            score = pf
        return cands[int(np.argmax(score))]

    def _fresh_sample(self) -> dict[str, Any]:
        for _ in range(200):
            z = self._project(self.space.sample(self.rng))
            if self.space.key(z) not in self._seen:
                return z
        return self._project(self.space.sample(self.rng))

    def _candidates(self) -> list[dict[str, Any]]:
        out = [self._project(self.space.sample(self.rng)) for _ in range(self.n_candidates)]
        ranked = sorted((i for i in range(len(self._obj)) if self._con[i] <= 0), key=lambda i: self._obj[i])[
            :5
        ]
        for i in ranked:  # local moves around the incumbents
            base = self.space.from_unit(self._X[i])
            out += [self._project(self.space.neighbour(base, self.rng, 0.1)) for _ in range(40)]
        uniq = {self.space.key(c): c for c in out if self.space.key(c) not in self._seen}
        return list(uniq.values()) or out

    # -- observation --------------------------------------------------------------------------------------
    def _add(self, z: Mapping[str, Any], obj: float, con: float) -> None:
        self._X.append(self.space.to_unit(z))
        self._obj.append(float(obj))
        self._con.append(float(con))
        self._seen.add(self.space.key(z))

    def _observe(self, trial: Trial) -> None:
        if trial.objective is None:
            return
        self._add(trial.config, trial.objective, next(iter(trial.constraints.values())))
        for z, obj, con in trial.info.get("_swept", []):
            self._add(z, obj, con)
        trial.info.pop("_swept", None)


def evaluate_trial(problem: AdaptiveProblem, searcher: Searcher, trial: Trial, plus: bool,
                   max_sweep_points: int = 21) -> dict[str, Any]:  # fmt: skip
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
    if ordered_by_cost:
        pool.sort(key=lambda c: problem.costs.edge(c)["energy_mj"])
        tuples = itertools.combinations(pool, problem.m)
    else:
        tuples = itertools.permutations(pool, problem.m)
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
