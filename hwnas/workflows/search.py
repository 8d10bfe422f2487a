"""What ``hwnas search`` and ``hwnas compare-searchers`` run: objective, cost predictor, searcher, summary.

The searchers' cost model is a :class:`~hwnas.cost_models.interface.CostPredictor` from one of:

1. ``table``: a cost file (an exported cost table, a per-architecture cost CSV, ``predict-device``
   output), loaded by :func:`~hwnas.cost_models.predictors.load_cost_predictor` with the objective's
   config -> architecture mappings (``arch_id``, ``layers_of``);
2. the objective's own (NAS-Bench-201's latency model fitted from measured cells);
3. linear models (thesis eq. 3.2-3.3) fitted on ``cost_data`` (a CSV of earlier profiling) or on
   ``samples`` configs profiled now through the objective's ``measure_costs``.

The NAS-Bench-201 objective takes a device (any ``lat_<device>_ms`` column of the shipped table or of
``data``), a dataset and a budget: a ``latency<=X`` constraint, else the ``budget_percentile``-th
percentile of the device's latency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import InputError

NB201_DEFAULT_DEVICE = "pixel3"
TRAIN_DEFAULT_DEVICE = "local-cpu"
Progress = Callable[..., None]


@dataclass
class ObjectiveSpec:
    """Which objective to build and with what (fields not used by an objective must stay unset)."""

    name: str = "train"
    dataset: str | None = None  # train: a data folder; nb201: cifar10 | cifar100 | imagenet16_120
    device: str | None = None  # train: device config to measure on; nb201: latency column
    data: Path | None = None  # nb201: a table in the nb201.csv.gz format (latency columns at least)
    budget_percentile: float | None = None  # nb201
    epochs: int = 6  # train
    seed: int = 0


@dataclass
class CostSpec:
    """Where the searchers' cost predictor comes from (see the module docstring)."""

    table: Path | None = None
    samples: int = 20
    cost_data: Path | None = None
    save_cost_data: Path | None = None
    features: str = "raw"


@dataclass
class Execution:
    """Where trials run (``hwnas search --executor``): ``local`` or ``ray``; ``journal`` writes every finished
    trial to the store so that a killed run resumes (``restart`` drops the journal first)."""

    executor: str = "local"
    workers: int = 1
    address: str | None = None
    retries: int = 2
    sync: bool = False
    journal: bool = False
    restart: bool = False


@dataclass
class SearchResult:
    history: Any
    objective: Any
    constraints: list[Any]
    predictor: Any
    predictor_source: str
    summary: dict[str, Any] = field(default_factory=dict)


def _latency_budget(constraints: Sequence[Any]) -> float | None:
    lat = [c for c in constraints if c.name == "latency_ms" and c.op == "<="]
    if len(lat) > 1:
        raise InputError("more than one latency budget given", hint="pass one --constraint latency<=Xms")
    return lat[0].budget if lat else None


def build_objective(spec: ObjectiveSpec, constraints: Sequence[Any], store: Any = None) -> Any:
    """The objective ``spec`` names. ``train`` measures costs on ``spec.device`` through its profiler
    (``store`` records them); ``nb201`` reads the device's latency column; others are registered
    objectives or table files, which take no device or dataset."""
    from hwnas.searchers.objectives import get_objective

    cost_names = [c.name for c in constraints]
    if spec.name == "train":
        if spec.data is not None or spec.budget_percentile is not None:
            raise InputError("--data and --budget-percentile apply to the nb201 objective only")
        cost_fn = None
        if cost_names:
            from hwnas.profilers.device_costs import device_cost_fn

            cost_fn = device_cost_fn(spec.device or TRAIN_DEFAULT_DEVICE, cost_names, store)
        return get_objective(
            "train",
            dataset=spec.dataset,
            epochs=spec.epochs,
            seed=spec.seed,
            cost_fn=cost_fn,
            cost_names=tuple(cost_names),
        )
    if spec.name == "nb201":
        return get_objective(
            "nb201",
            dataset=spec.dataset or "cifar10",
            device=spec.device or NB201_DEFAULT_DEVICE,
            budget_ms=_latency_budget(constraints),
            budget_percentile=25 if spec.budget_percentile is None else spec.budget_percentile,
            seed=spec.seed,
            table=None if spec.data is None else str(spec.data),
        )
    given = [
        flag
        for flag, v in (("--device", spec.device), ("--dataset", spec.dataset), ("--data", spec.data))
        if v is not None
    ]
    if given or spec.budget_percentile is not None:
        raise InputError(
            f"{', '.join(given) or '--budget-percentile'}: objective {spec.name!r} takes none of these",
            hint="--device and --dataset apply to train and nb201; --data and --budget-percentile to nb201",
        )
    return get_objective(spec.name)


def constraints_for(objective: Any, constraints: Sequence[Any]) -> list[Any]:
    """The budgets to search under: those given, else the objective's own (NB201's latency budget)."""
    cons = list(constraints)
    if not cons and getattr(objective, "constraint", None) is not None:
        cons = [objective.constraint]
    return cons


def _to_layers(objective: Any) -> Callable[[Any], Any] | None:
    if hasattr(objective, "layers_of"):
        return objective.layers_of
    if hasattr(objective, "build") and hasattr(objective, "data"):  # a training objective: trace the net

        def to_layers(config: Any) -> Any:
            from hwnas.graph.models import from_module

            module = objective.build(config).eval()
            return from_module(module, (1, *objective.data.input_shape), name="candidate").spec

        return to_layers
    return None


def load_table_predictor(path: str | Path, objective: Any) -> Any:
    """A cost file as the searchers' predictor over ``objective``'s configs (see the module docstring)."""
    from hwnas.cost_models.predictors import load_cost_predictor

    return load_cost_predictor(path, key=getattr(objective, "arch_id", None), to_layers=_to_layers(objective))


def cost_predictor(
    objective: Any,
    constraints: Sequence[Any],
    spec: CostSpec,
    *,
    needed: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[Any, str]:
    """The searchers' cost predictor and a line saying where it comes from (``(None, "none")`` when no
    budget is modelled). ``needed``: whether a searcher will read it (else nothing is fitted)."""
    from hwnas.searchers.compare import cost_featurizer
    from hwnas.searchers.cost_model import fit_cost_models, fit_cost_models_from_data

    cost_names = [c.name for c in constraints]
    if spec.table is not None:
        pred = load_table_predictor(spec.table, objective)
        missing = [c for c in cost_names if c not in pred.cost_names]
        if missing:
            raise InputError(
                f"cost table {spec.table} predicts {list(pred.cost_names)}; there are budgets on {missing}",
                hint="constrain a cost the table predicts, or pass a table of that cost",
            )
        return pred, pred.describe()
    if not cost_names or not needed:
        return None, "none"
    own = getattr(objective, "cost_model", None)
    featurizer = cost_featurizer(objective, spec.features)
    if own is not None and featurizer is None and all(n in own.cost_names for n in cost_names):
        return own, getattr(objective, "cost_model_source", "") or own.describe()
    if spec.cost_data is not None:
        pred = fit_cost_models_from_data(objective.space, spec.cost_data, cost_names, featurizer=featurizer)
        return pred, pred.describe()
    pred, data = fit_cost_models(
        objective.space,
        objective.measure_costs,
        cost_names,
        n_samples=spec.samples,
        seed=seed + 10_000,
        progress=progress,
        project=getattr(objective, "project", None),
        featurizer=featurizer,
    )
    if spec.save_cost_data is not None:
        from hwnas.io import atomic_output

        with atomic_output(spec.save_cost_data) as tmp:
            data.to_csv(tmp, index=False)
    errs = ", ".join(f"{k} {v:.2f} %" for k, v in pred.errors().items())
    return pred, f"linear models fitted on {spec.samples} profiled configs (10-fold CV RMSPE {errs})"


def run_search(
    searcher: str,
    objective_spec: ObjectiveSpec,
    constraints: Sequence[str],
    cost_spec: CostSpec,
    *,
    evals: int = 20,
    early_termination: bool | None = None,
    store: Any = None,
    on_profile: Progress | None = None,
    on_trial: Callable[[Any], None] | None = None,
    execution: Execution | None = None,
) -> SearchResult:
    """One searcher on one objective under budgets (thesis eq. 3.1); what ``hwnas search`` runs.

    With ``execution`` the trials go through :func:`hwnas.distributed.search_loop.run_search` (several in
    flight, on Ray if asked; journalled in ``store`` when ``execution.journal``)."""
    from hwnas.searchers.constraints import parse_constraints
    from hwnas.searchers.registry import USES_COST_MODEL, make_searcher, searcher_class

    searcher_class(searcher)  # unknown names fail before any work
    given = parse_constraints(constraints)
    obj = build_objective(objective_spec, given, store)
    cons = constraints_for(obj, given)
    cost_names = [c.name for c in cons]
    missing = [c for c in cost_names if c not in obj.cost_names]
    if missing:
        raise InputError(
            f"objective {objective_spec.name} does not measure {missing}",
            hint=f"it measures {list(obj.cost_names) or 'nothing'}",
        )
    pred, source = cost_predictor(
        obj,
        cons,
        cost_spec,
        needed=searcher in USES_COST_MODEL,
        seed=objective_spec.seed,
        progress=on_profile,
    )
    s = make_searcher(
        searcher,
        obj.space,
        constraints=cons,
        cost_model=pred,
        seed=objective_spec.seed,
        chance_accuracy=getattr(obj, "chance_accuracy", None),
        early_termination=early_termination,
        use_cost_model=cost_spec.table is not None,
    )
    if execution is None:
        hist = s.run(obj, evals, callback=on_trial)
    else:
        hist = _run_distributed(s, obj, evals, execution, store, searcher, objective_spec, cons, cost_spec,
                                on_trial)  # fmt: skip
    device = objective_spec.device
    if objective_spec.name == "train":
        device = device or TRAIN_DEFAULT_DEVICE
    elif objective_spec.name == "nb201":
        device = getattr(obj, "device_column", device)
    hist.meta.update({"objective": objective_spec.name, "device": device, "cost_model": source})
    result = SearchResult(hist, obj, cons, pred, source)
    result.summary = search_summary(result, searcher, objective_spec.name)
    return result


def _run_distributed(
    s: Any,
    obj: Any,
    evals: int,
    ex: Execution,
    store: Any,
    searcher: str,
    objective_spec: ObjectiveSpec,
    cons: Sequence[Any],
    cost_spec: CostSpec,
    on_trial: Callable[[Any], None] | None,
) -> Any:
    from dataclasses import asdict

    from hwnas.distributed.executor import make_executor
    from hwnas.distributed.search_loop import LoopStats, run_search, search_id_for

    spec = {
        "searcher": searcher,
        "objective": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(objective_spec).items()},
        "constraints": sorted(str(c) for c in cons),
        "cost": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cost_spec).items()
                 if k != "save_cost_data"},
    }  # fmt: skip
    search_id = search_id_for(spec) if ex.journal else None
    if search_id is not None and ex.restart:
        store.delete_search(search_id)
    stats = LoopStats()
    with make_executor(ex.executor, workers=ex.workers, address=ex.address, retries=ex.retries) as executor:
        hist = run_search(s, obj, evals, executor=executor, store=store if ex.journal else None,
                          search_id=search_id, meta=spec, sync=ex.sync, callback=on_trial,
                          stats=stats)  # fmt: skip
    hist.meta.update({"search_id": search_id, "executor": ex.executor, "workers": ex.workers,
                      "resumed_trials": stats.resumed, "failed_trials": stats.failed})  # fmt: skip
    return hist


def search_summary(result: SearchResult, searcher: str, objective: str) -> dict[str, Any]:
    """The JSON summary of a search (what ``hwnas search --json`` prints)."""
    hist = result.history
    best = hist.best()
    pred = result.predictor
    return {
        "searcher": searcher,
        "objective": objective,
        "device": hist.meta.get("device"),
        "constraints": [str(c) for c in result.constraints],
        "cost_model": result.predictor_source,
        "evaluations": len(hist),
        "violations": hist.n_violations(),
        "early_stopped": hist.n_early_stopped(),
        "best": None
        if best is None
        else {
            "number": best.number,
            "objective": best.objective,
            "config": best.config,
            "measured_costs": best.measured_costs,
            "predicted_costs": best.predicted_costs,
        },
        "cost_model_cv_rmspe_pct": pred.errors() if pred is not None and hasattr(pred, "errors") else {},
        "execution": {k: hist.meta[k] for k in ("search_id", "executor", "workers", "resumed_trials",
                                                "failed_trials") if k in hist.meta},  # fmt: skip
        "trials": hist.to_records(),
    }


def run_comparison(
    searchers: Sequence[str],
    objective_spec: ObjectiveSpec,
    constraints: Sequence[str],
    cost_spec: CostSpec,
    *,
    seeds: int = 10,
    evals: int = 50,
    tolerance: float = 0.005,
    n_jobs: int = 1,
    store: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    execution: Execution | None = None,
) -> Any:
    """Several searchers over seeds on one objective and budget (thesis figs. 3.5-3.6); what
    ``hwnas compare-searchers`` runs. Returns a :class:`~hwnas.searchers.compare.Comparison`."""
    from hwnas.searchers.compare import compare_searchers
    from hwnas.searchers.constraints import parse_constraints
    from hwnas.searchers.registry import searcher_class

    names = [s.strip() for s in searchers if s.strip()]
    for n in names:
        searcher_class(n)
    given = parse_constraints(constraints)
    obj = build_objective(objective_spec, given, store)
    cons = constraints_for(obj, given)
    pred = None
    if cost_spec.table is not None:
        pred, _ = cost_predictor(obj, cons, cost_spec)
    executor = None
    if execution is not None and execution.executor == "ray":
        from hwnas.distributed.executor import make_executor

        executor = make_executor("ray", workers=execution.workers, address=execution.address,
                                 retries=execution.retries)
    try:
        return compare_searchers(
            obj,
            names,
            seeds=range(seeds),
            n_evals=evals,
            constraints=cons,
            tolerance=tolerance,
            cost_model_samples=cost_spec.samples,
            objective_name=objective_spec.name,
            cost_features=cost_spec.features,
            cost_model=pred,
            n_jobs=n_jobs,
            progress=progress,
            executor=executor,
        )
    finally:
        if executor is not None:
            executor.shutdown()
