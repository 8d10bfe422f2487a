"""Compare searchers over seeds on one objective and budget (thesis §3.4.2, figs. 3.5-3.6).

Per searcher: best feasible objective vs number of evaluations (mean ± std over seeds), evaluations
needed to come within ``tolerance`` of the optimum, constraint-violating evaluations, early-stopped
evaluations, and time (wall time of the search itself, and evaluation time as the objective reports it,
e.g. the training time a table recorded). The optimum is the table's best feasible row when the
objective can say (``best_feasible``), else the best any run found.

Cost models for the searchers that use them are fitted once, from ``cost_model_samples`` random configs
whose costs are measured (cheaply) before any search: HyperPower's offline profiling step (§3.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.cost_models.interface import CostPredictor, check_predictor
from hwnas.errors import InputError
from hwnas.searchers.base import History
from hwnas.searchers.constraints import Constraint, parse_constraints
from hwnas.searchers.cost_model import fit_cost_models
from hwnas.searchers.registry import make_searcher

DEFAULT_SEARCHERS = ("hyperpower", "bo_vanilla", "random_search", "random_walk")


@dataclass
class SearcherSummary:
    name: str
    n_seeds: int
    best_curve_mean: list[float]
    best_curve_std: list[float]
    violations_curve_mean: list[float]
    final_best_mean: float
    final_best_std: float
    evals_to_near_optimal_mean: float  # over the seeds that got there
    evals_to_near_optimal_std: float
    reached_near_optimal: int  # seeds that got within tolerance
    evals_to_near_optimal_censored: (
        float  # mean over all seeds, a seed that never got there counted as n_evals
    )
    mean_curve_evals_to_near_optimal: float  # where the mean best-so-far curve enters the region (fig. 3.5)
    violations_mean: float
    violations_std: float
    early_stopped_mean: float
    wall_time_s_mean: float
    wall_time_s_std: float
    eval_time_s_mean: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Comparison:
    objective: str
    constraints: list[str]
    n_evals: int
    seeds: list[int]
    optimum: float
    tolerance: float
    summaries: dict[str, SearcherSummary]
    histories: dict[str, list[History]] = field(default_factory=dict)
    cost_model_errors: dict[str, float] = field(default_factory=dict)
    cost_model_source: str = ""

    def speedup_vs(self, reference: str = "bo_vanilla") -> dict[str, float]:
        """Evaluations-to-near-optimal of ``reference`` divided by each searcher's (thesis: 3.5x), on the
        censored per-seed means (a seed that never got there counts as all its evaluations, so the ratio
        is a lower bound when the reference often fails)."""
        ref = self.summaries.get(reference)
        if ref is None:
            return {}
        return {
            n: ref.evals_to_near_optimal_censored / s.evals_to_near_optimal_censored
            for n, s in self.summaries.items()
            if s.evals_to_near_optimal_censored > 0
        }

    def to_dict(self, with_histories: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "objective": self.objective,
            "constraints": self.constraints,
            "n_evals": self.n_evals,
            "seeds": self.seeds,
            "optimum": self.optimum,
            "tolerance": self.tolerance,
            "cost_model_cv_rmspe_pct": self.cost_model_errors,
            "cost_model": self.cost_model_source,
            "speedup_vs_bo_vanilla": self.speedup_vs(),
            "searchers": {n: s.to_dict() for n, s in self.summaries.items()},
        }
        if with_histories:
            d["histories"] = {n: [h.to_records() for h in hs] for n, hs in self.histories.items()}
        return d


def evals_to_reach(curve: np.ndarray, target: float) -> int | None:
    """1-based number of evaluations after which ``curve`` (best so far) is <= ``target``."""
    hit = np.flatnonzero(np.nan_to_num(curve, nan=math.inf) <= target + 1e-12)
    return int(hit[0]) + 1 if hit.size else None


def summarize(
    name: str,
    histories: Sequence[History],
    optimum: float,
    tolerance: float,
    n_evals: int,
    wall_times: Sequence[float],
) -> SearcherSummary:
    curves = np.stack([_pad(h.best_so_far(), n_evals) for h in histories])
    viol = np.stack([_pad(h.violations_so_far().astype(float), n_evals) for h in histories])
    # Mean and std only where every seed has a feasible point: averaging over the seeds that have one
    # would make the curve jump up when a late seed finds its first (poor) feasible point.
    complete = ~np.isnan(curves).any(axis=0)
    mean = np.full(n_evals, math.nan)
    std = np.full(n_evals, math.nan)
    mean[complete] = curves[:, complete].mean(axis=0)
    std[complete] = curves[:, complete].std(axis=0)
    reach = [evals_to_reach(c, optimum + tolerance) for c in curves]
    got = [r for r in reach if r is not None]
    finals = curves[:, -1]
    finals = finals[~np.isnan(finals)]
    n_viol = np.array([h.n_violations() for h in histories], float)
    return SearcherSummary(
        name=name,
        n_seeds=len(histories),
        best_curve_mean=mean.tolist(),
        best_curve_std=std.tolist(),
        violations_curve_mean=viol.mean(0).tolist(),
        final_best_mean=float(finals.mean()) if finals.size else math.nan,
        final_best_std=float(finals.std()) if finals.size else math.nan,
        evals_to_near_optimal_mean=float(np.mean(got)) if got else math.nan,
        evals_to_near_optimal_std=float(np.std(got)) if got else math.nan,
        reached_near_optimal=len(got),
        evals_to_near_optimal_censored=float(np.mean([r if r is not None else n_evals for r in reach])),
        mean_curve_evals_to_near_optimal=float(evals_to_reach(mean, optimum + tolerance) or math.nan),
        violations_mean=float(n_viol.mean()),
        violations_std=float(n_viol.std()),
        early_stopped_mean=float(np.mean([h.n_early_stopped() for h in histories])),
        wall_time_s_mean=float(np.mean(wall_times)),
        wall_time_s_std=float(np.std(wall_times)),
        eval_time_s_mean=float(np.mean([sum(t.eval_time_s for t in h) for h in histories])),
    )


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    if a.size >= n:
        return a[:n]
    fill = a[-1] if a.size else math.nan
    return np.concatenate([a, np.full(n - a.size, fill)])


def compare_searchers(
    objective: Any,
    searchers: Sequence[str] = DEFAULT_SEARCHERS,
    *,
    seeds: Sequence[int] = range(10),
    n_evals: int = 50,
    constraints: Sequence[str | Constraint] = (),
    tolerance: float = 0.005,
    cost_model_samples: int = 50,
    objective_name: str = "",
    searcher_kwargs: dict[str, dict[str, Any]] | None = None,
    cost_features: str = "raw",
    cost_model: CostPredictor | None = None,
    n_jobs: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    executor: Any = None,
) -> Comparison:
    """Run each searcher for each seed for ``n_evals`` evaluations on ``objective``; summarise.

    ``cost_model``: the predictor the cost-aware searchers get (e.g. a cost table for the target device);
    default: the objective's own, else linear models fitted on ``cost_model_samples`` profiled configs."""
    cons = parse_constraints(constraints)
    if not searchers:
        raise InputError("no searchers to compare")
    cost_names = [c.name for c in cons]
    if cost_model is not None:
        check_predictor(cost_model, "compare_searchers")
        missing = [n for n in cost_names if n not in cost_model.cost_names]
        if missing:
            raise InputError(
                f"the cost model predicts {list(cost_model.cost_names)}, but there are budgets on {missing}"
            )
    featurizer = cost_featurizer(objective, cost_features)
    if cost_model is None:
        cost_model = getattr(objective, "cost_model", None)  # an objective may ship its own (NB201's)
        if cost_model is not None and (
            featurizer is not None or not all(n in cost_model.cost_names for n in cost_names)
        ):
            cost_model = None
    if cost_names and cost_model is None:
        cost_model, _ = fit_cost_models(
            objective.space,
            objective.measure_costs,
            cost_names,
            n_samples=cost_model_samples,
            seed=10_000,
            project=getattr(objective, "project", None),
            featurizer=featurizer,
        )
    errors = cost_model.errors() if cost_model is not None and hasattr(cost_model, "errors") else {}
    chance = getattr(objective, "chance_accuracy", None)
    histories: dict[str, list[History]] = {n: [] for n in searchers}
    walls: dict[str, list[float]] = {n: [] for n in searchers}
    jobs = [(name, int(seed)) for name in searchers for seed in seeds]
    _JOB.update(
        objective=objective,
        constraints=cons,
        cost_model=cost_model,
        chance=chance,
        n_evals=n_evals,
        searcher_kwargs=searcher_kwargs or {},
    )
    if executor is not None:
        # Each (searcher, seed) run is one job on the executor (e.g. a Ray task); the set-up travels once.
        setup = executor.put(dict(_JOB))
        for i, job in enumerate(jobs):
            executor.submit(i, _run_one_with, job, setup)
        results_by_index: dict[int, tuple[History, float]] = {}
        while executor.in_flight:
            for o in executor.wait():
                if not o.ok:
                    from hwnas.errors import MeasurementError

                    raise MeasurementError(f"comparison run {jobs[o.key]} failed: {o.error}")
                results_by_index[o.key] = o.value
                if progress is not None:
                    progress(jobs[o.key][0], len(results_by_index), len(jobs))
        for i, job in enumerate(jobs):  # in job order, whatever order they finished in
            h, wall = results_by_index[i]
            histories[job[0]].append(h)
            walls[job[0]].append(wall)
    elif n_jobs > 1:
        import multiprocessing
        import pickle

        # A set-up that pickles goes to workers forked from a clean forkserver: forking this process
        # directly can deadlock a child on a lock another thread (torch, OpenMP, a sampler) held at the
        # fork. Only a set-up that does not pickle (closures) falls back to fork, which inherits it.
        try:
            setup: bytes | None = pickle.dumps(dict(_JOB))
        except Exception:  # noqa: BLE001 - any pickling failure means "use fork"
            setup = None
        if setup is not None:
            ctx = multiprocessing.get_context("forkserver")
            pool_cm = ctx.Pool(n_jobs, initializer=_install_setup, initargs=(setup,))
        else:
            pool_cm = multiprocessing.get_context("fork").Pool(n_jobs)
        with pool_cm as pool:
            results = pool.imap(_run_one, jobs)
            for done, ((name, _), (h, wall)) in enumerate(zip(jobs, results, strict=True), start=1):
                histories[name].append(h)
                walls[name].append(wall)
                if progress is not None:
                    progress(name, done, len(jobs))
    else:
        for done, job in enumerate(jobs, start=1):
            h, wall = _run_one(job)
            histories[job[0]].append(h)
            walls[job[0]].append(wall)
            if progress is not None:
                progress(job[0], done, len(jobs))
    for hs in histories.values():
        for h in hs:
            h.meta["objective"] = objective_name
    _JOB.clear()
    optimum = math.nan
    if hasattr(objective, "best_feasible"):
        optimum = objective.best_feasible(cons)
    if not math.isfinite(optimum):
        found = [h.best().objective for hs in histories.values() for h in hs if h.best() is not None]
        optimum = min(found) if found else math.nan
    summaries = {n: summarize(n, hs, optimum, tolerance, n_evals, walls[n]) for n, hs in histories.items()}
    return Comparison(
        objective_name,
        [str(c) for c in cons],
        n_evals,
        [int(s) for s in seeds],
        optimum,
        tolerance,
        summaries,
        histories,
        errors,
        getattr(cost_model, "describe", lambda: "")() if cost_model is not None else "none",
    )


_JOB: dict[str, Any] = {}


def _install_setup(setup: bytes) -> None:
    """Pool initializer: the comparison's set-up, pickled by the driver, installed in this worker."""
    import pickle

    _JOB.update(pickle.loads(setup))  # noqa: S301 - bytes the driver pickled itself, never from outside


def _run_one_with(job: tuple[str, int], setup: dict[str, Any]) -> tuple[History, float]:
    """``_run_one`` on a worker that did not fork from the driver: the set-up comes as an argument."""
    _JOB.update(setup)
    return _run_one(job)


def _run_one(job: tuple[str, int]) -> tuple[History, float]:
    """One (searcher, seed) run of the comparison set up in ``_JOB`` (a worker's entry point)."""
    name, seed = job
    s = make_searcher(
        name,
        _JOB["objective"].space,
        constraints=_JOB["constraints"],
        cost_model=_JOB["cost_model"],
        seed=seed,
        chance_accuracy=_JOB["chance"],
        **dict(_JOB["searcher_kwargs"].get(name, {})),
    )
    t0 = time.perf_counter()
    h = s.run(_JOB["objective"], _JOB["n_evals"])
    h.meta["seed"] = seed
    return h, time.perf_counter() - t0


def cost_featurizer(objective: Any, kind: str) -> Any:
    """``raw``: the structural hyperparameters (thesis eq. 3.2-3.3; None = the default featurizer);
    ``layer``: the objective's per-layer sizes (``objective.cost_featurizer``)."""
    if kind == "raw":
        return None
    if kind == "layer":
        f = getattr(objective, "cost_featurizer", None)
        if f is None:
            raise InputError(
                "this objective has no layer featurizer for its cost models", hint="use raw features"
            )
        return f
    raise InputError(f"cost features must be 'raw' or 'layer', got {kind!r}")


def comparison_from_histories(
    histories: dict[str, Sequence[History]],
    *,
    constraints: Sequence[str | Constraint] = (),
    tolerance: float = 0.005,
    objective_name: str = "",
    n_evals: int | None = None,
) -> Comparison:
    """Summarise histories that were run elsewhere (one-shot searches, saved ``--history`` files) as one
    :class:`Comparison`, so that its table and figure cover black-box and one-shot searches alike. An
    evaluation is a trial: an evaluated point for a black-box searcher, an epoch for a one-shot one;
    ``n_evals`` defaults to the longest history."""
    if not histories or not any(histories.values()):
        raise InputError("no histories to compare")
    cons = parse_constraints(constraints) if constraints else []
    n = n_evals or max(len(h) for hs in histories.values() for h in hs)
    found = [h.best().objective for hs in histories.values() for h in hs if h.best() is not None]
    optimum = min(found) if found else math.nan
    summaries = {
        name: summarize(name, list(hs), optimum, tolerance, n, [sum(t.wall_time_s for t in h) for h in hs])
        for name, hs in histories.items()
        if hs
    }
    seeds = sorted({int(h.meta.get("seed", 0)) for hs in histories.values() for h in hs})
    return Comparison(
        objective_name,
        [str(c) for c in cons],
        n,
        seeds,
        optimum,
        tolerance,
        summaries,
        {k: list(v) for k, v in histories.items() if v},
    )
