"""`hwnas search` and `hwnas compare-searchers`: thin layers over hwnas.searchers.

`search` runs one searcher on one objective under budgets: real training of HyperPower's CNN family
(costs measured on the device by its profiler) or a tabular objective (costs from the table). Searchers
that use cost models (HyperPower) get linear models (thesis eq. 3.2-3.3) fitted first from
``--profile-samples`` randomly drawn configs whose costs are measured without training, or from a CSV of
earlier profiling (``--cost-data``). `compare-searchers` runs several searchers over seeds and prints
the thesis's comparison (fig. 3.5/3.6 with ``--plot``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import (
    JSON_OPTION,
    STORE_OPTION,
    as_file,
    check_range,
    err,
    out,
    print_json,
    progress,
    store_file,
    table,
)
from hwnas.errors import CheckFailedError, DeviceUnavailableError, InputError

DEVICE_COSTS = ("latency_ms", "memory_mb", "power_mw", "energy_mj")
POWER_COSTS = ("power_mw", "energy_mj")
COST_FEATURES_OPTION = typer.Option(
    "raw",
    "--cost-features",
    help="Cost-model features: raw (the structural hyperparameters, thesis eq. 3.2-3.3) or layer "
    "(per-layer parameter/MAC/activation counts, where the objective provides them).",
)


def device_cost_fn(
    device: str, cost_names: list[str], store_path: Path | None
) -> Callable[..., dict[str, float]]:
    """Costs of a torch module measured by the device's profiler (whole model, no per-layer jobs).

    Fails early, with the reason, when a constrained cost cannot be measured here: power/energy need a
    power sensor (RAPL, NVML, rails), which a VM usually lacks."""
    from hwnas.cli._common import open_store
    from hwnas.device_config import load_device
    from hwnas.graph.models import from_module
    from hwnas.profilers.registry import get_profiler

    unknown = [c for c in cost_names if c not in DEVICE_COSTS]
    if unknown:
        raise InputError(
            f"device {device} cannot measure {unknown}", hint=f"device costs: {', '.join(DEVICE_COSTS)}"
        )
    config = load_device(device)
    profiler = get_profiler(config)
    if any(c in POWER_COSTS for c in cost_names):
        sampler = profiler.power_sampler()
        ok, why = sampler.available() if sampler is not None else (False, "its config names no power sampler")
        if not ok:
            raise DeviceUnavailableError(
                f"device {config.name} cannot measure power: {why}",
                hint="drop the power constraint (latency and memory work here), or use a device with a power "
                "sensor (RAPL on bare metal, an NVIDIA GPU, a Jetson board)",
            )
    store = open_store(store_path)
    want_memory = "memory_mb" in cost_names

    def measure(cfg: Mapping[str, Any], module: Any, input_shape: tuple[int, ...]) -> dict[str, float]:
        key = hashlib.sha1(json.dumps(dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:10]
        rm = from_module(module.eval(), input_shape, name="hyperpower-cnn", model_id=f"hyperpower-cnn:{key}")
        res = profiler.profile(rm, store, per_layer=False, whole_model=True, memory=want_memory, force=True)
        got = {m.metric: float(m.value) for m in res.measured if m.scope == "model"}
        costs: dict[str, float] = {}
        if "latency_ms" in got:
            costs["latency_ms"] = got["latency_ms"]
        if "peak_memory_bytes" in got:
            costs["memory_mb"] = got["peak_memory_bytes"] / 1e6
        if "energy_mj" in got:
            costs["energy_mj"] = got["energy_mj"]
            if got.get("latency_ms"):
                costs["power_mw"] = got["energy_mj"] / (got["latency_ms"] / 1e3)  # mJ / s = mW
        if "power_mw" in got:  # sampled backends (NVML, Jetson rails) measure average power directly
            costs["power_mw"] = got["power_mw"]
        missing = [c for c in cost_names if c not in costs]
        if missing:
            from hwnas.errors import MeasurementError

            raise MeasurementError(
                f"the {device} profiler did not measure {missing} for {rm.model_id}",
                hint="; ".join(res.failures + res.notes) or None,
            )
        return costs

    return measure


def _build_objective(
    name: str,
    *,
    dataset: str | None,
    device: str,
    epochs: int,
    seed: int,
    cost_names: list[str],
    store_path: Path | None,
) -> Any:
    from hwnas.searchers.objectives import get_objective

    if name == "train":
        cost_fn = device_cost_fn(device, cost_names, store_path) if cost_names else None
        return get_objective(
            "train", dataset=dataset, epochs=epochs, seed=seed, cost_fn=cost_fn, cost_names=tuple(cost_names)
        )
    return get_objective(name)


def _cost_model(
    objective: Any,
    cost_features: str,
    cost_names: list[str],
    *,
    samples: int,
    seed: int,
    cost_data: Path | None,
    save_cost_data: Path | None,
    show_progress: bool,
) -> Any:
    """Fit the linear cost models HyperPower needs: from a CSV of earlier profiling, or by profiling."""
    import pandas as pd

    from hwnas.cost_models.linear import LinearCostModel
    from hwnas.searchers.compare import cost_featurizer
    from hwnas.searchers.cost_model import ConfigCostModel, config_features, fit_cost_models

    featurizer = cost_featurizer(objective, cost_features) or config_features
    if cost_data is not None:
        if not cost_data.exists():
            raise InputError(f"cost data {cost_data}: file not found")
        df = pd.read_csv(cost_data)
        configs = df.to_dict("records")
        try:
            X = featurizer(objective.space, configs)
        except KeyError as exc:
            raise InputError(f"cost data {cost_data}: missing parameter column {exc}") from exc
        missing = [c for c in cost_names if c not in df.columns]
        if missing:
            raise InputError(
                f"cost data {cost_data}: no column(s) {missing}", hint=f"columns: {list(df.columns)}"
            )
        models = {c: LinearCostModel().fit(X, df[c].to_numpy(float)) for c in cost_names}
        return ConfigCostModel(objective.space, models, featurizer)
    with progress("profiling configs for the cost models", samples, show_progress) as advance:
        cm, data = fit_cost_models(
            objective.space,
            objective.measure_costs,
            cost_names,
            n_samples=samples,
            seed=seed + 10_000,
            progress=advance,
            project=getattr(objective, "project", None),
            featurizer=featurizer,
        )
    if save_cost_data is not None:
        from hwnas.io import atomic_output

        with atomic_output(save_cost_data) as tmp:
            data.to_csv(tmp, index=False)
    return cm


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search(
        searcher: str = typer.Option(
            "hyperpower",
            "--searcher",
            "-s",
            help="hyperpower, bo_vanilla, random_search, random_walk or evolution; one-shot: fbnetv2, "
            "single-path.",
        ),
        objective: str = typer.Option(
            "train",
            "--objective",
            "-o",
            help="train (real training), hyperpower-digits, nb201, or a table file.",
        ),
        dataset: str | None = typer.Option(
            None,
            "--dataset",
            help="For --objective train: a folder with MNIST/ or "
            "cifar-10-batches-py/ (torchvision layout); default: digits.",
        ),
        device: str = typer.Option(
            "local-cpu", "--device", "-d", help="Device whose costs are measured (train)."
        ),
        constraint: list[str] = typer.Option(
            [], "--constraint", "-c", help="Budget, repeatable: power<=90W, memory<=1.25GB, latency<=5ms."
        ),
        evals: int = typer.Option(20, "--evals", "-n", min=1, max=100_000, help="Function evaluations."),
        seed: int = typer.Option(0, "--seed", help="Searcher seed."),
        epochs: int = typer.Option(
            6, "--epochs", min=1, max=10_000, help="Training epochs per trial (train)."
        ),
        profile_samples: int = typer.Option(
            20,
            "--profile-samples",
            min=3,
            max=100_000,
            help="Random configs profiled to fit the cost models.",
        ),
        cost_data: Path | None = typer.Option(
            None,
            "--cost-data",
            help="CSV of profiled configs (parameters + cost columns) to fit "
            "the cost models from instead of profiling.",
        ),
        save_cost_data: Path | None = typer.Option(
            None, "--save-cost-data", help="Write the profiled configs and costs to this CSV."
        ),
        early_termination: bool | None = typer.Option(
            None,
            "--early-termination/--no-early-termination",
            help="Stop diverging trials (default: per searcher).",
        ),
        history_path: Path | None = typer.Option(None, "--history", help="Write the full history (JSON)."),
        cost_features: str = COST_FEATURES_OPTION,
        cost: str = typer.Option(
            "flops", "--cost", help="One-shot: flops, params, macs or latency (needs --table)."
        ),
        budget: str | None = typer.Option(
            None,
            "--budget",
            help="One-shot: budget on --cost, e.g. 2M (FLOPs), 40k (params), 1.5ms (latency).",
        ),
        cost_table: Path | None = typer.Option(
            None, "--table", help="One-shot, --cost latency: the device's per-layer cost table (hwnas fit)."
        ),
        space: str = typer.Option(
            "reduced", "--space", help="One-shot: reduced, table3.2, or a JSON/YAML space."
        ),
        penalty: str | None = typer.Option(
            None, "--penalty", help="One-shot: linear:lam,scale | fbnet:alpha,beta | budget:B,lam | log:lam."
        ),
        final_epochs: int = typer.Option(
            0, "--final-epochs", min=0, help="One-shot: retrain the derived net."
        ),
        batch_size: int = typer.Option(64, "--batch-size", min=1, help="One-shot: batch size."),
        max_train: int | None = typer.Option(
            None, "--max-train", min=8, help="One-shot: cap the training split."
        ),
        checkpoint: Path | None = typer.Option(
            None, "--checkpoint", help="One-shot: resume file, per epoch."
        ),
        onnx_out: Path | None = typer.Option(
            None, "--onnx", help="One-shot: export the derived net to ONNX."
        ),
        target_latency: str | None = typer.Option(
            None, "--target-latency", help="single-path: latency target on --device, e.g. 80ms."
        ),
        search_se: bool = typer.Option(False, "--search-se", help="single-path: also search SE ratios."),
        lam: float = typer.Option(0.2, "--lambda", help="single-path: runtime weight λ of eq. 5.7."),
        sp_mode: str = typer.Option("sigmoid", "--mode", help="single-path: sigmoid, ste or softmax."),
        resolution: int | None = typer.Option(None, "--resolution", help="single-path: input size."),
        width: float | None = typer.Option(None, "--width", help="single-path: width multiplier."),
        export_dir: Path | None = typer.Option(
            None, "--export", help="single-path: write layers.json, model.pt and model.onnx here."
        ),
        store_path: Path | None = STORE_OPTION,
        json_out: bool = JSON_OPTION,
    ) -> None:
        """Search under hardware budgets (thesis eq. 3.1) with one searcher."""
        from hwnas.cli.oneshot_search import ONESHOT_CLI, OneShotOptions, run_oneshot
        from hwnas.io import check_outputs

        if searcher in ONESHOT_CLI:
            check_outputs({"--history": history_path, "--onnx": onnx_out},
                          {"--table": cost_table, "--store": store_file(store_path)})  # fmt: skip
            opts = OneShotOptions(
                searcher, cost, budget, cost_table, space, penalty, dataset, device, epochs, final_epochs,
                batch_size, seed, max_train, history_path, checkpoint, onnx_out, store_path, json_out,
                target_latency=target_latency, search_se=search_se, lam=lam, mode=sp_mode,
                resolution=resolution, width=width, export_dir=export_dir,
            )  # fmt: skip
            return run_oneshot(opts)
        from hwnas.searchers.constraints import parse_constraints
        from hwnas.searchers.registry import USES_COST_MODEL, make_searcher, searcher_class

        searcher_class(searcher)  # unknown names fail before any work
        check_outputs(
            {"--history": history_path, "--save-cost-data": save_cost_data},
            {"--cost-data": cost_data, "--objective": as_file(objective), "--store": store_file(store_path)},
        )
        cons = parse_constraints(constraint)
        cost_names = [c.name for c in cons]
        obj = _build_objective(
            objective,
            dataset=dataset,
            device=device,
            epochs=epochs,
            seed=seed,
            cost_names=cost_names,
            store_path=store_path,
        )
        missing = [c for c in cost_names if c not in obj.cost_names]
        if missing:
            raise InputError(
                f"objective {objective} does not measure {missing}",
                hint=f"it measures {list(obj.cost_names) or 'nothing'}",
            )
        cm = getattr(obj, "cost_model", None)
        if (
            cost_names
            and searcher in USES_COST_MODEL
            and (cm is None or not all(n in cm.cost_names for n in cost_names))
        ):
            cm = _cost_model(
                obj,
                cost_features,
                cost_names,
                samples=profile_samples,
                seed=seed,
                cost_data=cost_data,
                save_cost_data=save_cost_data,
                show_progress=not json_out,
            )
            for name, e in cm.errors().items():
                err.print(f"cost model {name}: 10-fold CV RMSPE {e:.2f} %", highlight=False)
        s = make_searcher(
            searcher,
            obj.space,
            constraints=cons,
            cost_model=cm,
            seed=seed,
            chance_accuracy=getattr(obj, "chance_accuracy", None),
            early_termination=early_termination,
        )
        with progress(f"{searcher} on {objective}", evals, not json_out) as advance:
            hist = s.run(obj, evals, callback=lambda t: advance(1))
        hist.meta.update({"objective": objective, "device": device if objective == "train" else None})
        if history_path is not None:
            from hwnas.io import atomic_output

            with atomic_output(history_path) as tmp:
                hist.save_json(tmp)
        best = hist.best()
        summary = {
            "searcher": searcher,
            "objective": objective,
            "constraints": [str(c) for c in cons],
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
            },
            "cost_model_cv_rmspe_pct": cm.errors() if cm is not None and hasattr(cm, "errors") else {},
            "trials": hist.to_records(),
        }
        if json_out:
            print_json(summary)
        else:
            _print_trials(hist, cost_names)
            if best is not None:
                costs = ", ".join(f"{k}={v:.4g}" for k, v in best.measured_costs.items())
                out.print(
                    f"best feasible: trial {best.number}, error {best.objective:.4f} ({costs})",
                    highlight=False,
                )
                out.print(f"config: {best.config}", highlight=False)
            out.print(
                f"{hist.n_violations()} constraint-violating and {hist.n_early_stopped()} early-stopped "
                f"evaluations of {len(hist)}",
                highlight=False,
            )
        if best is None:
            raise CheckFailedError(
                f"no feasible trial in {len(hist)} evaluations under {', '.join(constraint)}",
                hint="loosen the budgets or run more evaluations",
            )

    @app.command("compare-searchers")
    def compare(
        objective: str = typer.Option(
            ..., "--objective", "-o", help="hyperpower-digits, nb201, or a table file."
        ),
        seeds: int = typer.Option(10, "--seeds", min=1, max=10_000, help="Seeds per searcher (0..N-1)."),
        evals: int = typer.Option(
            50, "--evals", "-n", min=1, max=100_000, help="Function evaluations per run."
        ),
        constraint: list[str] = typer.Option([], "--constraint", "-c", help="Budget, repeatable."),
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
            min=3,
            max=100_000,
            help="Configs profiled to fit the cost models (once, before the runs).",
        ),
        plot: Path | None = typer.Option(None, "--plot", help="Write the fig. 3.5/3.6-style figure here."),
        histories: Path | None = typer.Option(None, "--histories", help="Write every run's history (JSON)."),
        cost_features: str = COST_FEATURES_OPTION,
        json_out: bool = JSON_OPTION,
    ) -> None:
        """Compare searchers over seeds on one objective and budget (thesis figs. 3.5-3.6)."""
        from hwnas.io import atomic_output, check_outputs, write_text_atomic
        from hwnas.searchers.compare import compare_searchers
        from hwnas.searchers.objectives import get_objective
        from hwnas.searchers.registry import searcher_class

        check_range("--tolerance", tolerance, 0)
        check_outputs({"--plot": plot, "--histories": histories}, {"--objective": as_file(objective)})
        names = [s.strip() for s in searchers.split(",") if s.strip()]
        for n in names:
            searcher_class(n)
        obj = get_objective(objective)
        cons = list(constraint)
        if not cons and getattr(obj, "constraint", None) is not None:
            cons = [str(obj.constraint)]
        with progress(f"{len(names)} searchers x {seeds} seeds", len(names) * seeds, not json_out) as advance:
            comp = compare_searchers(
                obj,
                names,
                seeds=range(seeds),
                n_evals=evals,
                constraints=cons,
                tolerance=tolerance,
                cost_model_samples=cost_samples,
                objective_name=objective,
                cost_features=cost_features,
                progress=lambda name, done, total: advance(1, description=name),
            )
        if plot is not None:
            from hwnas.searchers.plot import plot_comparison

            with atomic_output(plot) as tmp:
                plot_comparison(comp, tmp)
        if histories is not None:
            write_text_atomic(histories, json.dumps(comp.to_dict(with_histories=True), default=str))
        if json_out:
            print_json(comp.to_dict())
            return
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
        if plot is not None:
            out.print(f"figure: {plot}", highlight=False)


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
