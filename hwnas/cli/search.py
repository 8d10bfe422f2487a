"""`hwnas search` and `hwnas compare-searchers`: options in, one call to :mod:`hwnas.workflows.search`.

`search` runs one searcher on one objective under budgets: real training of HyperPower's CNN family
(costs measured on ``--device`` by its profiler), NAS-Bench-201 for any device of its table (``--device``,
``--dataset``, a ``latency<=X`` budget or ``--budget-percentile``), or a table file. The searchers' cost
model is ``--table FILE`` (an exported cost table, a per-architecture cost CSV or ``predict-device``
output) when given, else the objective's own, else linear models (thesis eq. 3.2-3.3) fitted on
``--cost-samples`` profiled configs or on ``--cost-data``. `compare-searchers` runs several searchers
over seeds and prints the thesis's comparison (fig. 3.5/3.6 with ``--plot``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import (
    JSON_OPTION,
    STORE_OPTION,
    as_file,
    check_range,
    err,
    open_store,
    out,
    print_json,
    progress,
    progress_phases,
    store_file,
    table,
)
from hwnas.errors import CheckFailedError, InputError

# `--searcher adaptive` designs a cascade of networks and its thresholds (thesis ch. 4, hwnas.cli.adaptive).
ADAPTIVE_SEARCHERS = {"adaptive": "bo+", "adaptive-bo": "bo"}
COST_FEATURES_OPTION = typer.Option(
    "raw",
    "--cost-features",
    help="Cost-model features: raw (the structural hyperparameters, thesis eq. 3.2-3.3) or layer "
    "(per-layer parameter/MAC/activation counts, where the objective provides them).",
)
TABLE_OPTION = typer.Option(
    None,
    "--table",
    "-t",
    help="The searchers' cost model: an exported cost table (hwnas fit), a per-architecture cost CSV "
    "(arch,<cost columns>) or predict-device output.",
)
DEVICE_OPTION = typer.Option(
    None,
    "--device",
    "-d",
    help="train: device config whose costs are measured (default local-cpu); nb201: any lat_<device>_ms "
    "column of the table (default pixel3).",
)
DATASET_OPTION = typer.Option(
    None,
    "--dataset",
    help="train: a folder with MNIST/ or cifar-10-batches-py/ (default: digits); nb201: cifar10, cifar100 "
    "or imagenet16_120 (default cifar10).",
)
DATA_OPTION = typer.Option(
    None, "--data", help="nb201: a table in the nb201.csv.gz format (at least arch + lat_<device>_ms)."
)
PERCENTILE_OPTION = typer.Option(
    None,
    "--budget-percentile",
    help="nb201 without a latency constraint: budget = this percentile of the device's latency (default 25).",
)
SAMPLES_OPTION = typer.Option(
    20,
    "--cost-samples",
    "--profile-samples",
    min=3,
    max=100_000,
    help="Random configs profiled to fit the cost models.",
)
CONSTRAINT_OPTION = typer.Option(
    [], "--constraint", "-c", help="Budget, repeatable: power<=90W, memory<=1.25GB, latency<=5ms."
)


def search(
    searcher: str = typer.Option(
        "hyperpower",
        "--searcher",
        "-s",
        help="hyperpower, bo_vanilla, random_search, random_walk, evolution; one-shot: fbnetv2, single-path, "
        "multi-path (the single-path space with one path per op); "
        "adaptive (BO+, thesis ch. 4) or adaptive-bo.",
    ),
    objective: str = typer.Option(
        "train", "--objective", help="train (real training), nb201, hyperpower-digits, or a table file."
    ),
    dataset: str | None = DATASET_OPTION,
    device: str | None = DEVICE_OPTION,
    data: Path | None = DATA_OPTION,
    constraint: list[str] = CONSTRAINT_OPTION,
    budget_percentile: float | None = PERCENTILE_OPTION,
    cost_table: Path | None = TABLE_OPTION,
    evals: int = typer.Option(20, "--evals", "-n", min=1, max=100_000, help="Function evaluations."),
    seed: int = typer.Option(0, "--seed", help="Searcher seed."),
    epochs: int = typer.Option(6, "--epochs", min=1, max=10_000, help="Training epochs per trial (train)."),
    cost_samples: int = SAMPLES_OPTION,
    cost_data: Path | None = typer.Option(
        None,
        "--cost-data",
        help="CSV of profiled configs (parameters + cost columns) to fit the cost models from instead "
        "of profiling.",
    ),
    save_cost_data: Path | None = typer.Option(
        None, "--save-cost-data", help="Write the profiled configs and costs to this CSV."
    ),
    early_termination: bool | None = typer.Option(
        None,
        "--early-termination/--no-early-termination",
        help="Stop diverging trials (default: per searcher).",
    ),
    history_path: Path | None = typer.Option(
        None, "--history", "--out", "-o", help="Write the full history (JSON)."
    ),
    cost_features: str = COST_FEATURES_OPTION,
    cost: str = typer.Option(
        "flops", "--cost", help="One-shot: flops, params, macs or latency (needs --table)."
    ),
    budget: str | None = typer.Option(
        None, "--budget", help="One-shot: budget on --cost, e.g. 2M (FLOPs), 40k (params), 1.5ms (latency)."
    ),
    space: str = typer.Option(
        "reduced", "--space", help="One-shot: reduced, table3.2, or a JSON/YAML space."
    ),
    penalty: str | None = typer.Option(
        None, "--penalty", help="One-shot: linear:lam,scale | fbnet:alpha,beta | budget:B,lam | log:lam."
    ),
    final_epochs: int = typer.Option(0, "--final-epochs", min=0, help="One-shot: retrain the derived net."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="One-shot: batch size."),
    max_train: int | None = typer.Option(
        None, "--max-train", min=8, help="One-shot: cap the training split."
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="One-shot: resume file, per epoch."),
    onnx_out: Path | None = typer.Option(None, "--onnx", help="One-shot: export the derived net to ONNX."),
    target_latency: str | None = typer.Option(
        None, "--target-latency", help="single-/multi-path: latency target on --device, e.g. 80ms."
    ),
    search_se: bool = typer.Option(False, "--search-se", help="single-path: also search SE ratios."),
    lam: float = typer.Option(0.2, "--lambda", help="single-/multi-path: runtime weight λ of eq. 5.7."),
    sp_mode: str = typer.Option(
        "sigmoid",
        "--mode",
        help="single-path: sigmoid, ste or softmax; multi-path: softmax (default) or gumbel.",
    ),
    resolution: int | None = typer.Option(None, "--resolution", help="single-/multi-path: input size."),
    width: float | None = typer.Option(None, "--width", help="single-/multi-path: width multiplier."),
    export_dir: Path | None = typer.Option(
        None, "--export", help="single-path: write layers.json, model.pt and model.onnx here."
    ),
    edge_device: str | None = typer.Option(
        None, "--edge-device", help="adaptive: the device that runs N1 (default local-cpu)."
    ),
    server_device: str | None = typer.Option(
        None, "--server-device", help="adaptive: run the later networks on this device (eq. 4.4)."
    ),
    link: str | None = typer.Option(None, "--link", help="adaptive: edge-server link, ethernet or wifi."),
    max_error_increase: str | None = typer.Option(
        None, "--max-error-increase", help="adaptive: error budget over the reference network, e.g. 3%."
    ),
    networks: int = typer.Option(2, "--networks", min=2, max=3, help="adaptive: networks in the cascade."),
    edge_power_w: float | None = typer.Option(
        None, "--edge-power-w", min=0.0, help="adaptive: active power of an edge without a sensor (W)."
    ),
    idle_power_w: float | None = typer.Option(
        None, "--idle-power-w", min=0.0, help="adaptive: idle power of the edge waiting for the server (W)."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="adaptive: error-vs-energy Pareto plot (PNG)."),
    executor: str = typer.Option(
        "local", "--executor", help="local (in this process) or ray (a Ray cluster: `[distributed]` extra)."
    ),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (auto, or ray://head:10001); none starts a local one."
    ),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=4096, help="Trials in flight at once."),
    retries: int = typer.Option(
        2, "--retries", min=0, max=100, help="Ray: reruns of a trial whose worker died, then it is failed."
    ),
    sync: bool = typer.Option(
        False, "--sync/--async", help="Tell a batch back in trial order (reproducible) or as trials finish."
    ),
    journal: bool | None = typer.Option(
        None,
        "--journal/--no-journal",
        help="Write each finished trial to the store; a rerun resumes (default: on with --executor ray).",
    ),
    restart: bool = typer.Option(False, "--restart", help="Drop this search's journal and start over."),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Search under hardware budgets (thesis eq. 3.1) with one searcher."""
    from hwnas.cli.oneshot_search import ONESHOT_CLI, OneShotOptions, run_oneshot
    from hwnas.io import atomic_output, check_outputs
    from hwnas.searchers.registry import searcher_class
    from hwnas.workflows.search import TRAIN_DEFAULT_DEVICE, CostSpec, Execution, ObjectiveSpec, run_search

    check_range("--budget-percentile", budget_percentile, 0, 100, lo_open=True)
    if searcher in ADAPTIVE_SEARCHERS:
        from hwnas.cli.adaptive import adaptive_command

        return adaptive_command(
            edge_device=edge_device or device or TRAIN_DEFAULT_DEVICE, server_device=server_device, link=link,
            constraint=constraint, max_error_increase=max_error_increase, networks=networks,
            searcher=ADAPTIVE_SEARCHERS[searcher], evals=evals, dataset=dataset, epochs=epochs, seed=seed,
            edge_power_w=edge_power_w, idle_power_w=idle_power_w, max_train=max_train,
            history_out=history_path, plot=plot, store=store_path, as_json=json_out,
        )  # fmt: skip
    if searcher in ONESHOT_CLI:
        check_outputs({"--history": history_path, "--onnx": onnx_out},
                      {"--table": cost_table, "--store": store_file(store_path)})  # fmt: skip
        opts = OneShotOptions(
            searcher, cost, budget, cost_table, space, penalty, dataset, device or TRAIN_DEFAULT_DEVICE,
            epochs, final_epochs, batch_size, seed, max_train, history_path, checkpoint, onnx_out,
            store_path, json_out, target_latency=target_latency, search_se=search_se, lam=lam, mode=sp_mode,
            resolution=resolution, width=width, export_dir=export_dir,
        )  # fmt: skip
        return run_oneshot(opts)
    searcher_class(searcher)  # unknown names fail before any work
    check_outputs(
        {"--history": history_path, "--save-cost-data": save_cost_data},
        {"--cost-data": cost_data, "--objective": as_file(objective), "--store": store_file(store_path),
         "--table": cost_table, "--data": data},
    )  # fmt: skip

    spec = ObjectiveSpec(
        objective, dataset, device, data, budget_percentile=budget_percentile, epochs=epochs, seed=seed
    )
    costs = CostSpec(cost_table, cost_samples, cost_data, save_cost_data, cost_features)
    if executor not in ("local", "ray"):
        raise InputError(f"--executor must be local or ray, got {executor!r}")
    if address is not None and executor != "ray":
        raise InputError("--address needs --executor ray")
    use_journal = (executor == "ray") if journal is None else journal
    execution = None
    if executor == "ray" or workers > 1 or use_journal:
        execution = Execution(executor, workers, address, retries, sync, use_journal, restart)
    store = open_store(store_path) if (objective == "train" and constraint) or use_journal else None
    try:
        with progress_phases(not json_out) as phase:
            bars: dict[str, Any] = {}

            def on_profile(n: int = 1) -> None:
                if "profile" not in bars:
                    bars["profile"] = phase("profiling configs for the cost models", cost_samples)
                bars["profile"](n)

            def on_trial(trial: Any) -> None:
                if "search" not in bars:
                    bars["search"] = phase(f"{searcher} on {objective}", evals)
                bars["search"](1)

            res = run_search(
                searcher,
                spec,
                constraint,
                costs,
                evals=evals,
                early_termination=early_termination,
                store=store,
                on_profile=on_profile,
                on_trial=on_trial,
                execution=execution,
            )
    finally:
        if store is not None:
            store.close()
    hist = res.history
    if history_path is not None:
        with atomic_output(history_path) as tmp:
            hist.save_json(tmp)
    if json_out:
        print_json(res.summary)
    else:
        err.print(f"cost model: {res.predictor_source}", highlight=False)
        cost_names = [c.name for c in res.constraints]
        _print_trials(hist, cost_names)
        best = hist.best()
        if best is not None:
            costs_txt = ", ".join(f"{k}={v:.4g}" for k, v in best.measured_costs.items())
            out.print(
                f"best feasible: trial {best.number}, error {best.objective:.4f} ({costs_txt})",
                highlight=False,
            )
            out.print(f"config: {best.config}", highlight=False)
        out.print(
            f"{hist.n_violations()} constraint-violating and {hist.n_early_stopped()} early-stopped "
            f"evaluations of {len(hist)}",
            highlight=False,
        )
    if hist.best() is None:
        raise CheckFailedError(
            f"no feasible trial in {len(hist)} evaluations under {', '.join(map(str, res.constraints))}",
            hint="loosen the budgets or run more evaluations",
        )


def compare(
    objective: str | None = typer.Option(
        None, "--objective", help="hyperpower-digits, nb201, or a table file."
    ),
    from_history: list[Path] = typer.Option(
        [],
        "--from-history",
        help="Compare saved `search --history` files instead of running (black-box or one-shot; "
        "repeatable; grouped by their searcher).",
    ),
    dataset: str | None = DATASET_OPTION,
    device: str | None = DEVICE_OPTION,
    data: Path | None = DATA_OPTION,
    seeds: int = typer.Option(10, "--seeds", min=1, max=10_000, help="Seeds per searcher (0..N-1)."),
    evals: int = typer.Option(50, "--evals", "-n", min=1, max=100_000, help="Function evaluations per run."),
    constraint: list[str] = CONSTRAINT_OPTION,
    budget_percentile: float | None = PERCENTILE_OPTION,
    cost_table: Path | None = TABLE_OPTION,
    searchers: str = typer.Option(
        "hyperpower,bo_vanilla,random_search,random_walk",
        "--searchers",
        help="Comma-separated searcher names.",
    ),
    tolerance: float = typer.Option(
        0.005, "--tolerance", help="Near-optimal region: within this of the best feasible objective."
    ),
    cost_samples: int = typer.Option(
        50,
        "--cost-samples",
        "--profile-samples",
        min=3,
        max=100_000,
        help="Configs profiled to fit the cost models (once, before the runs).",
    ),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="Parallel runs (fork pool over searcher x seed)."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write the fig. 3.5/3.6-style figure here."),
    histories: Path | None = typer.Option(
        None, "--history", "--histories", "--out", "-o", help="Write every run's history (JSON)."
    ),
    cost_features: str = COST_FEATURES_OPTION,
    executor: str = typer.Option(
        "local", "--executor", help="local (this machine, --jobs forks) or ray (one Ray task per run)."
    ),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address; none starts one."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=4096, help="Ray: runs at once."),
    retries: int = typer.Option(
        2, "--retries", min=0, max=100, help="Ray: reruns of a run whose worker died."
    ),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Compare searchers over seeds on one objective and budget (thesis figs. 3.5-3.6)."""
    from hwnas.io import atomic_output, check_outputs, write_text_atomic
    from hwnas.workflows.search import CostSpec, Execution, ObjectiveSpec, run_comparison

    if executor not in ("local", "ray"):
        raise InputError(f"--executor must be local or ray, got {executor!r}")
    execution = Execution("ray", workers, address, retries) if executor == "ray" else None

    check_range("--tolerance", tolerance, 0)
    if from_history:
        check_outputs(
            {"--plot": plot, "--history": histories}, {f"--from-history {p}": p for p in from_history}
        )
        comp = _comparison_from_files(from_history, list(constraint), tolerance, objective)
        objective, evals = comp.objective, comp.n_evals
        seeds = max(len(hs) for hs in comp.histories.values())
    elif objective is None:
        raise InputError("give --objective (run the searchers) or --from-history FILE (compare saved runs)")
    else:
        check_range("--budget-percentile", budget_percentile, 0, 100, lo_open=True)
        check_outputs(
            {"--plot": plot, "--history": histories},
            {"--objective": as_file(objective), "--table": cost_table, "--data": data},
        )
        spec = ObjectiveSpec(objective, dataset, device, data, budget_percentile=budget_percentile)
        names = [s.strip() for s in searchers.split(",") if s.strip()]
        store = open_store(store_path) if objective == "train" and constraint else None
        try:
            with progress(
                f"{len(names)} searchers x {seeds} seeds", len(names) * seeds, not json_out
            ) as advance:
                comp = run_comparison(
                    names,
                    spec,
                    constraint,
                    CostSpec(cost_table, cost_samples, features=cost_features),
                    seeds=seeds,
                    evals=evals,
                    tolerance=tolerance,
                    n_jobs=jobs,
                    store=store,
                    progress=lambda name, done, total: advance(1, description=name),
                    execution=execution,
                )
        finally:
            if store is not None:
                store.close()
    if plot is not None:
        from hwnas.searchers.plot import plot_comparison

        with atomic_output(plot) as tmp:
            plot_comparison(comp, tmp)
    if histories is not None:
        write_text_atomic(histories, json.dumps(comp.to_dict(with_histories=True), default=str))
    if json_out:
        print_json(comp.to_dict())
        return
    _print_comparison(comp, objective, tolerance, evals, seeds)
    if plot is not None:
        out.print(f"figure: {plot}", highlight=False)


def _print_comparison(comp: Any, objective: str, tolerance: float, evals: int, seeds: int) -> None:
    speed = comp.speedup_vs("bo_vanilla")
    rows = []
    for n, s in comp.summaries.items():
        rows.append(
            [
                n,
                f"{s.final_best_mean * 100:.2f} ± {s.final_best_std * 100:.2f}",
                f"{s.evals_to_near_optimal_mean:.1f} ± {s.evals_to_near_optimal_std:.1f}"
                if not math.isnan(s.evals_to_near_optimal_mean)
                else "-",
                f"{s.reached_near_optimal}/{s.n_seeds}",
                f"{speed[n]:.2f}x" if n in speed else "-",
                f"{s.violations_mean:.1f} ± {s.violations_std:.1f}",
                f"{s.early_stopped_mean:.1f}",
                f"{s.wall_time_s_mean:.1f}",
                f"{s.eval_time_s_mean:.0f}",
            ]
        )
    out.print(
        table(
            f"{objective}: {', '.join(comp.constraints) or 'no budget'}; optimum "
            f"{comp.optimum * 100:.2f} %, near-optimal = within {tolerance * 100:.2f} points; "
            f"{evals} evaluations x {seeds} seeds",
            [
                "searcher",
                "best error % (mean ± std)",
                "evals to near-opt",
                "reached",
                "speed-up vs bo_vanilla",
                "violations",
                "early-stopped",
                "search wall s",
                "eval time s",
            ],
            rows,
        )
    )
    if comp.cost_model_errors:
        errs = ", ".join(f"{k} {v:.2f} %" for k, v in comp.cost_model_errors.items())
        out.print(f"cost models (10-fold CV RMSPE): {errs}", highlight=False)
    if comp.cost_model_source:
        out.print(f"cost model: {comp.cost_model_source}", highlight=False)


def _comparison_from_files(
    paths: list[Path], constraints: list[str], tolerance: float, objective: str | None
) -> Any:
    """A Comparison of saved histories (``--history`` files of black-box or one-shot searches)."""
    from hwnas.searchers.base import History
    from hwnas.searchers.compare import comparison_from_histories

    groups: dict[str, list[History]] = {}
    for p in paths:
        h = History.load_json(p)
        groups.setdefault(str(h.meta.get("searcher") or p.stem), []).append(h)
    name = objective or ", ".join(
        sorted({str(h.meta.get("objective")) for hs in groups.values() for h in hs})
    )
    return comparison_from_histories(
        groups, constraints=constraints, tolerance=tolerance, objective_name=name
    )


def _print_trials(hist: Any, cost_names: list[str]) -> None:
    rows = []
    for t in hist:
        pred = " ".join(f"{t.predicted_costs[c]:.4g}" for c in cost_names if c in t.predicted_costs) or "-"
        meas = " ".join(f"{t.measured_costs[c]:.4g}" for c in cost_names if c in t.measured_costs) or "-"
        rows.append(
            [
                t.number,
                t.state,
                "-" if t.objective is None else f"{t.objective:.4f}",
                pred,
                meas,
                "yes" if t.feasible else "no",
                f"{t.wall_time_s:.2f}",
            ]
        )
    cols = [
        "#",
        "state",
        "error",
        f"predicted {'/'.join(cost_names)}",
        f"measured {'/'.join(cost_names)}",
        "feasible",
        "wall s",
    ]
    out.print(table("trials", cols, rows))


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("compare-searchers")(compare)
