"""`hwnas new-device`: a device you have at hand, from ten measurements to a searched cell (NAS-Bench-201).

Four steps in one command (library: :mod:`hwnas.workflows.new_device`):

1. ``suggest-samples``: the k cells to measure first (designed on the 13 reference devices);
2. measure them with the device's backend (``nb201:<arch>`` networks profiled whole; on the local CPU
   for real), each record going to the store as it finishes;
3. ``predict-device``: the few-shot model of every cell, with its interval (``--predictions`` writes it);
4. search under ``--constraint`` with measure-before-train: accuracy comes from the NAS-Bench-201 table
   (the training it recorded for the dataset), and a candidate whose feasibility is uncertain is measured
   on the device before it is "trained"; every measurement refits the few-shot model.

Interrupted, it resumes: a cell the store already holds for the device is read back, not measured again,
and the search (seeded, deterministic given the measurements) replays to where it was.
"""

from __future__ import annotations

from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, err, open_store, out, print_json, store_file, table
from hwnas.errors import InputError


def new_device(
    device: str = typer.Option("local-cpu", "--device", "-d", help="Device config name or YAML path."),
    k: int = typer.Option(10, "--k", min=5, max=200, help="How many designed cells to measure first (>= 5)."),
    constraint: str = typer.Option(..., "--constraint", "-c", help="Latency budget, e.g. latency<=12ms."),
    dataset: str = typer.Option("cifar10", "--dataset", help="cifar10, cifar100 or imagenet16_120."),
    evals: int = typer.Option(50, "--evals", min=1, max=10000, help="Trainings the search may spend."),
    searcher: str = typer.Option(
        "cell_bo_prob", "--searcher", help="Any registered searcher that reads a cost model."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the search and of the accuracy draws."),
    low: float = typer.Option(
        0.01, "--low", help="P(feasible) at or below which a cell is rejected unmeasured."
    ),
    high: float = typer.Option(
        0.99, "--high", help="P(feasible) from which a cell is trained without a check."
    ),
    max_checks: int | None = typer.Option(
        None, "--max-checks", min=0, help="Stop the search once this many latency checks are spent."
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Also write the few-shot predictions of every cell (CSV)."
    ),
    clock: str = typer.Option("auto", "--clock", help="auto, wall or cpu (as `hwnas profile --clock`)."),
    store_path: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Measure k suggested cells on DEVICE, predict every cell, and search under the latency budget."""
    import numpy as np

    import hwnas.plugins
    from hwnas.cost_models.fewshot import suggest_samples
    from hwnas.io import atomic_output, check_outputs
    from hwnas.searchers.constraints import Constraint
    from hwnas.searchers.registry import SEARCHERS, USES_COST_MODEL
    from hwnas.workflows.new_device import device_measurer, fewshot_model, objective_for, search

    hwnas.plugins.load()
    c = Constraint.parse(constraint)
    if c.name != "latency_ms" or c.op != "<=":
        raise InputError(f"--constraint {constraint!r}: new-device searches under a latency budget",
                         hint="give latency<=Xms (or latency<=Xs)")  # fmt: skip
    if dataset not in ("cifar10", "cifar100", "imagenet16_120"):
        raise InputError(f"--dataset {dataset!r}: unknown", hint="one of cifar10, cifar100, imagenet16_120")
    if searcher not in SEARCHERS:
        raise InputError(f"--searcher {searcher!r}: unknown", hint=f"known: {', '.join(SEARCHERS)}")
    if searcher not in USES_COST_MODEL and searcher not in ("random_search", "evolution"):
        raise InputError(f"--searcher {searcher}: it reads no cost model, so checks could not be chosen",
                         hint="cell_bo_prob, hyperpower_prob, hyperpower, cell_bo, random_search, "
                         "evolution")  # fmt: skip
    if not 0 <= low < high <= 1:
        raise InputError(f"--low {low} / --high {high}: need 0 <= low < high <= 1")
    check_outputs({"--predictions": predictions}, {"--store": store_file(store_path)})
    from hwnas.cli.profile import _resolve_clock
    from hwnas.device_config import load_device

    config = load_device(device)
    chosen_clock, why = _resolve_clock(clock, config, None)
    quiet = as_json
    say = (lambda *a, **k: None) if quiet else err.print
    say(f"clock: {why}", highlight=False)

    with open_store(store_path) as store:
        n_measured = {"n": 0}

        def progress(arch: str, reused: bool) -> None:
            n_measured["n"] += 1
            say(
                f"  [{n_measured['n']}] {'read back' if reused else 'measured'} nb201:{arch}", highlight=False
            )

        measure, config, counts = device_measurer(device, store, clock=chosen_clock, progress=progress)
        cells = suggest_samples(k=k)["arch"].astype(str).tolist()
        say(f"1-2. measuring the {k} suggested cells on {config.name}", highlight=False)
        values = [measure(a) for a in cells]
        initial = dict(counts)
        objective = objective_for(config.name, dataset, c.budget, measure, seed=seed)
        for a, v in zip(cells, values, strict=True):
            objective.measured[a] = v
        model = fewshot_model(cells, values, key=objective.arch_id)
        factor = float(np.exp(model.estimator.band_log_))
        say(f"3. few-shot model: {model.method_} on {k} cells, interval x/÷ {factor:.3f} "
            f"at level {model.level:.2f}", highlight=False)  # fmt: skip
        if predictions is not None:
            frame = model.estimator.predict_all()
            with atomic_output(predictions) as tmp:
                frame.to_csv(tmp, index=False)
        n_pred_feasible = int(np.sum(model.values <= c.budget))
        say(f"4. searching: {searcher}, {evals} trainings, checks at {low} < P(feasible) < {high}; "
            f"{n_pred_feasible} cells predicted within {c.budget:g} ms", highlight=False)  # fmt: skip
        hist, mbt = search(objective, searcher, model, evals, seed=seed, measure_first=True, low=low,
                           high=high, max_checks=max_checks)  # fmt: skip
    best = hist.best()
    result = {
        "device": config.name,
        "constraint": str(c),
        "dataset": dataset,
        "clock": chosen_clock,
        "suggested_cells": cells,
        "initial_measurements": {"measured": initial["measured"], "read_back": initial["reused"]},
        "measurements": {"measured": counts["measured"], "read_back": counts["reused"]},
        "fewshot": {
            "method": model.method_,
            "interval_factor": factor,
            "level": model.level,
            "samples_at_end": model.n_samples,
            "refits": model.n_refits,
        },  # fmt: skip
        "search": {"searcher": searcher, "seed": seed, **mbt},
        "best": None
        if best is None
        else {
            "arch": objective.arch_id(best.config),
            "observed_error": best.objective,
            "table_accuracy": 100 * (1 - objective.true_error(best.config)),
            "latency_ms": best.measured_costs.get("latency_ms"),
        },
        "predictions": str(predictions) if predictions else None,
    }
    if as_json:
        print_json(result)
    else:
        rows = [[k2, v] for k2, v in mbt.items()]
        out.print(table(f"new device {config.name}: search under {c}", ["", ""], rows))
        if best is None:
            out.print("no trained cell met the budget", highlight=False)
        else:
            b = result["best"]
            out.print(f"best cell: {b['arch']}  accuracy {b['table_accuracy']:.2f} % ({dataset}, table), "
                      f"latency {b['latency_ms']:.4g} ms measured", highlight=False)  # fmt: skip
        out.print(f"device measurements: {counts['measured']} new, {counts['reused']} read back from the "
                  "store",
                  highlight=False)  # fmt: skip
    if best is None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("new-device")(new_device)
