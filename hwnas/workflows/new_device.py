"""A new device end to end on NAS-Bench-201: measure k suggested cells, predict the rest, search with checks.

What ``hwnas new-device`` and ``benchmarks/nb201_new_device_search.py`` share:

- :func:`fewshot_model`: the few-shot fit on the measured cells (``method="auto"`` chosen once) as an
  :class:`~hwnas.cost_models.fewshot_online.OnlineFewShot` over NB201 configs, so that every later
  measurement refits it;
- :class:`MeasuredNB201`: the NB201 objective whose *accuracy* comes from the shipped table (the
  training the benchmark recorded) and whose *latency* comes from ``measure(arch)`` (the device; in the
  benchmark, the held-out column), counting what it measured;
- :func:`search` with or without measure-before-train;
- :func:`device_measurer`: ``arch -> latency_ms`` on a device config through its profiler, resuming from
  the store (a cell already measured there is read back, not measured again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hwnas.errors import InputError
from hwnas.searchers.objectives.base import Evaluation, Stopper


class MeasuredNB201:
    """An NB201 objective whose ``measure_costs`` asks ``measure(arch)`` (the device) for the latency.

    ``base`` is a :class:`~hwnas.searchers.objectives.nb201.NB201Objective` (its table gives accuracy and
    training time); its own latency column is never read here. ``measured`` holds every cell measured
    through this objective (arch -> ms)."""

    cost_names = ("latency_ms",)

    def __init__(self, base: Any, measure: Callable[[str], float]) -> None:
        self.base = base
        self.space = base.space
        self.measure = measure
        self.measured: dict[str, float] = {}
        self._arch = base.table["arch"].astype(str).to_numpy()
        self.constraint = base.constraint
        self.budget_ms = base.budget_ms
        self.chance_accuracy = base.chance_accuracy

    def arch_id(self, config: Mapping[str, Any]) -> str:
        return str(self._arch[self.base.row_of(config)])

    def project(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return self.base.project(config)

    @property
    def configs(self) -> list[dict[str, Any]]:
        return self.base.configs

    def measure_costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        arch = self.arch_id(config)
        if arch not in self.measured:
            value = float(self.measure(arch))
            if not np.isfinite(value) or value <= 0:
                raise InputError(f"the device measured {value} ms for {arch}: not a positive latency")
            self.measured[arch] = value
        return {"latency_ms": self.measured[arch]}

    def evaluate(self, config: Mapping[str, Any], stopper: Stopper | None = None) -> Evaluation:
        return self.base.evaluate(config, stopper)

    def true_error(self, config: Mapping[str, Any]) -> float:
        return self.base.true_error(config)


def fewshot_model(
    archs: Sequence[str],
    latency_ms: Sequence[float],
    *,
    key: Callable[[Any], str],
    exclude_columns: Sequence[str] = (),
    reference: Any = None,
    level: float = 0.9,
    estimator: Any = None,
) -> Any:
    """The few-shot latency model of a new device from its measured cells, refitted on every update."""
    import hwnas.plugins
    from hwnas.cost_models.fewshot import FewShotLatencyPredictor
    from hwnas.cost_models.fewshot_online import OnlineFewShot

    hwnas.plugins.load()
    est = estimator or FewShotLatencyPredictor(
        reference=reference, exclude_columns=tuple(exclude_columns), method="auto", level=level
    )
    return OnlineFewShot(est, list(archs), list(latency_ms), key=key)


def search(
    objective: Any,
    searcher_name: str,
    cost_model: Any,
    n_evals: int,
    *,
    seed: int = 0,
    measure_first: bool = True,
    low: float = 0.01,
    high: float = 0.99,
    max_checks: int | None = None,
    searcher_kwargs: Mapping[str, Any] | None = None,
    callback: Callable[[Any], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """One search of ``n_evals`` trainings; returns (history, counts). Without ``measure_first`` every
    proposal is trained and its latency measured afterwards (the plain pipeline)."""
    from hwnas.searchers.measure_first import MeasureBeforeTrain, run_trained_all
    from hwnas.searchers.registry import USES_COST_MODEL, make_searcher

    kwargs = dict(searcher_kwargs or {})
    if searcher_name not in USES_COST_MODEL and cost_model is not None:
        kwargs["use_cost_model"] = True
    s = make_searcher(searcher_name, objective.space, constraints=[objective.constraint],
                      cost_model=cost_model,
                      seed=seed, early_termination=False, **kwargs)  # fmt: skip
    if measure_first:
        mbt = MeasureBeforeTrain(s, low=low, high=high, max_checks=max_checks)
        hist = mbt.run(objective, n_evals, callback=callback)
        counts = dict(hist.meta["measure_before_train"])
    else:
        hist = run_trained_all(s, objective, n_evals, callback=callback)
        trained = [t for t in hist.trials if t.objective is not None]
        counts = {"checks": 0, "trainings": len(trained),
                  "infeasible_trainings": hist.meta["infeasible_trainings"],
                  "measured_after_training": len(trained)}  # fmt: skip
    return hist, counts


def regret_points(objective: Any, hist: Any) -> float:
    """True best feasible accuracy minus the true accuracy of the incumbent chosen on the observed
    (one-run) accuracies among the trained, measured-feasible trials (NaN when there is none)."""
    best = objective.base.best_feasible([objective.constraint])
    inc = hist.best()
    if inc is None:
        return float("nan")
    return 100.0 * (objective.true_error(inc.config) - best)


def device_measurer(
    device: str,
    store: Any,
    *,
    clock: str = "cpu",
    progress: Callable[[str, bool], None] | None = None,
) -> tuple[Callable[[str], float], Any, dict[str, int]]:
    """``(measure(arch) -> latency_ms, device config, counts)``: the NB201 CIFAR network of ``arch``
    profiled whole on ``device`` (no per-layer jobs, no memory child process); a network the store already
    holds for this device is read back (``counts["reused"]``), else measured (``counts["measured"]``).
    ``progress(arch, reused)`` is called per cell."""
    import hwnas.spaces  # noqa: F401 - registers the nb201: model family
    from hwnas.device_config import load_device
    from hwnas.graph.models import resolve_model
    from hwnas.profilers.registry import availability, get_profiler

    config = load_device(device)
    ok, why = availability(config)
    if not ok:
        from hwnas.errors import DeviceUnavailableError

        raise DeviceUnavailableError(f"device {config.name} is not usable here: {why}")
    profiler = get_profiler(config, clock=clock)
    counts = {"measured": 0, "reused": 0}

    def measure(arch: str) -> float:
        resolved = resolve_model(f"nb201:{arch}", None, batch_size=config.batch_size)
        before = store.query(
            model_id=resolved.model_id, scope="model", device=config.name, metric="latency_ms"
        )
        if not before:
            profiler.profile(resolved, store, per_layer=False, whole_model=True, memory=False)
        got = store.query(model_id=resolved.model_id, scope="model", device=config.name, metric="latency_ms")
        if not got:
            raise InputError(f"device {config.name} measured no latency for {resolved.model_id}")
        counts["reused" if before else "measured"] += 1
        if progress is not None:
            progress(arch, bool(before))
        return float(np.median([float(m.value) for m in got]))

    return measure, config, counts


def objective_for(
    device_label: str, dataset: str, budget_ms: float, measure: Callable[[str], float], seed: int = 0
) -> MeasuredNB201:
    """The NB201 objective on ``dataset`` with budget ``budget_ms`` whose latencies come from ``measure``.
    (The shipped table's columns are only used as the objective's placeholder latency column.)"""
    from hwnas.searchers.objectives.nb201 import make_objective
    from hwnas.spaces.nb201_table import latency_columns, load_table

    table = load_table()
    placeholder = latency_columns(table)[0]
    base = make_objective(
        dataset, placeholder, budget_ms=budget_ms, cost_model="none", table=table, seed=seed
    )
    base.device_column = device_label
    return MeasuredNB201(base, measure)


def samples_frame(archs: Sequence[str], values: Sequence[float]) -> pd.DataFrame:
    return pd.DataFrame({"arch": list(archs), "latency_ms": [float(v) for v in values]})
