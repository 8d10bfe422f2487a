"""The search loop with several trials in flight, journalled in the store, resumable after a crash.

It is :meth:`Searcher.run` spread over an executor: ask up to ``workers`` proposals, measure their costs
here (cheap; the device is attached to the driver), send the ones within budget to be trained, and tell
each result back *as it finishes* (asynchronous; evolution and random search need nothing else, HyperPower
spreads a batch with its constant liar, vanilla BO through Optuna's handling of running trials). With
``sync=True`` a batch is told back in trial order once all of it is done, so that for a fixed seed the
history does not depend on which worker finished first.

Every told trial is appended to the store's journal of the search (``search_id``). A driver that is killed
loses only the trials in flight; run the same search again and the journal is replayed into the searcher
(``ask_fixed`` + ``tell``), so no finished trial is run twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hwnas.distributed.executor import Executor, Outcome
from hwnas.errors import InputError
from hwnas.searchers.constraints import constraint_values, is_feasible


def search_id_for(spec: Mapping[str, Any]) -> str:
    """A stable id for a search: the hash of what defines it (searcher, seed, objective, budgets, ...)."""
    blob = json.dumps(dict(spec), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def for_worker(objective: Any) -> Any:
    """A copy of ``objective`` that a worker can unpickle: the driver-side cost function (which holds the
    device's profiler and the store's connection) stays here, since costs are measured on the driver."""
    import copy

    if getattr(objective, "cost_fn", None) is None:
        return objective
    twin = copy.copy(objective)
    twin.cost_fn = None
    return twin


def evaluate_trial(objective: Any, config: Mapping[str, Any], stopper: Any) -> dict[str, Any]:
    """Train one config (runs on a worker); reports the CPU seconds it took there."""
    c0 = time.process_time()
    ev = objective.evaluate(config, stopper=stopper)
    return {
        "objective": ev.objective,
        "measured_costs": dict(ev.measured_costs),
        "early_stopped": bool(ev.early_stopped),
        "stop_reason": ev.stop_reason,
        "eval_time_s": float(ev.eval_time_s),
        "info": {**dict(ev.info), "worker_cpu_s": time.process_time() - c0},
    }


@dataclass
class LoopStats:
    resumed: int = 0  # trials replayed from the journal
    failed: int = 0  # trials whose job failed (crash, or a worker that died more than `retries` times)
    submitted: int = 0  # jobs sent to the executor in this run


def replay(searcher: Any, records: list[dict[str, Any]]) -> int:
    """Feed journalled trials back into a fresh searcher (same state as if it had run them), and restore
    its random generator as it was at the last journalled tell: a seeded searcher started afresh would
    otherwise draw the same proposals again."""
    for rec in records:
        t = searcher.ask_fixed(rec["config"])
        searcher.tell(
            t,
            rec.get("objective"),
            rec.get("measured_costs") or {},
            bool(rec.get("early_stopped")),
            stop_reason=rec.get("stop_reason", ""),
            eval_time_s=float(rec.get("eval_time_s") or 0.0),
            info={**(rec.get("info") or {}), "replayed_from_seq": rec.get("seq")},
        )
        t.wall_time_s = float(rec.get("wall_time_s") or 0.0)
    state = next(
        (r["info"]["searcher_rng"] for r in reversed(records) if "searcher_rng" in (r.get("info") or {})),
        None,
    )
    if state is not None and hasattr(searcher, "rng"):
        searcher.rng.bit_generator.state = state
    return len(records)


def run_search(
    searcher: Any,
    objective: Any,
    n_trials: int,
    *,
    executor: Executor,
    store: Any = None,
    search_id: str | None = None,
    meta: Mapping[str, Any] | None = None,
    sync: bool = False,
    train_infeasible: bool = False,
    callback: Callable[[Any], None] | None = None,
    stats: LoopStats | None = None,
) -> Any:
    """Run ``searcher`` on ``objective`` until ``n_trials`` trials are told; returns its History."""
    missing = [c.name for c in searcher.constraints if c.name not in objective.cost_names]
    if missing:
        raise InputError(
            f"the objective measures {list(objective.cost_names) or 'no costs'}, "
            f"but there are constraints on {missing}",
            hint="constrain a cost the objective (or device) measures",
        )
    stats = stats if stats is not None else LoopStats()
    searcher.projector = getattr(objective, "project", None)
    searcher.candidate_pool = getattr(objective, "configs", None)
    journal = store is not None and search_id is not None
    if journal:
        store.add_search(search_id, dict(meta or {}))
        stats.resumed = replay(searcher, store.search_trials(search_id))
        for t in searcher.history.trials:
            if callback is not None:
                callback(t)
    worker_obj = executor.put(for_worker(objective))
    pending: dict[int, tuple[Any, dict[str, float]]] = {}

    def told(trial: Any) -> None:
        if hasattr(searcher, "rng"):
            trial.info["searcher_rng"] = searcher.rng.bit_generator.state
        if journal:
            store.add_search_trial(search_id, trial.to_dict())
        if callback is not None:
            callback(trial)

    def finish(o: Outcome) -> None:
        trial, costs = pending.pop(o.key)
        if o.ok:
            r = o.value
            searcher.tell(
                trial,
                r["objective"],
                {**costs, **r["measured_costs"]},
                r["early_stopped"],
                stop_reason=r["stop_reason"],
                eval_time_s=r["eval_time_s"],
                info=r["info"],
            )
        else:
            stats.failed += 1
            searcher.tell(
                trial,
                None,
                costs,
                stop_reason=f"failed: {o.error}",
                info={"attempts": o.attempts, "worker_died": o.worker_died},
            )
        told(trial)

    def n_told() -> int:
        return sum(1 for t in searcher.history.trials if t.done)

    while n_told() < n_trials:
        room = min(executor.workers - len(pending), n_trials - n_told() - len(pending))
        if room > 0 and not (sync and pending):
            for trial in searcher.ask_batch(room):
                costs = objective.measure_costs(trial.config)
                values = constraint_values(searcher.constraints, costs)
                if not is_feasible(values) and not train_infeasible:
                    broken = ", ".join(f"{k} over by {v:.4g}" for k, v in values.items() if v > 0)
                    searcher.tell(
                        trial, None, costs, stop_reason=f"not trained: constraint violated: {broken}"
                    )
                    told(trial)
                    continue
                pending[trial.number] = (trial, costs)
                executor.submit(trial.number, evaluate_trial, worker_obj, trial.config, searcher.stopper)
                stats.submitted += 1
        if not pending:
            continue
        if sync:
            outcomes: list[Outcome] = []
            while len(outcomes) < len(pending):
                outcomes.extend(executor.wait())
            for o in sorted(outcomes, key=lambda o: o.key):
                finish(o)
        else:
            for o in executor.wait():
                finish(o)
    return searcher.history


def history_from_store(store: Any, search_id: str) -> Any:
    """A journalled search as a :class:`History` (for `hwnas report` and scripts)."""
    from hwnas.searchers.base import History, Trial

    meta = store.get_search(search_id)
    if meta is None:
        raise InputError(f"no search {search_id!r} in the store", hint="list them with `hwnas searches`")
    trials = []
    for i, rec in enumerate(store.search_trials(search_id)):
        t = Trial.from_dict(rec)
        t.number = i
        trials.append(t)
    return History(trials, meta)
