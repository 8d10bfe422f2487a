"""`hwnas search --searcher <one-shot>`: one supernet training run instead of a loop of trials.

``ONESHOT_CLI`` maps a one-shot searcher name to the function that runs it from the ``search`` command's
options; ``search`` dispatches through it (a registry entry per method, no if-chain). Each function parses
what is specific to its method, calls one library function and prints the result.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.cli._common import err, out, print_json, progress, table
from hwnas.errors import CheckFailedError, InputError

ONESHOT_CLI: dict[str, str] = {
    "fbnetv2": "hwnas.cli.oneshot_search:fbnetv2_command",
    "single-path": "hwnas.cli.single_path:single_path_command",
    "multi-path": "hwnas.cli.single_path:multi_path_command",
}
COST_NAMES = {"flops": "flops", "params": "params", "macs": "macs", "latency": "latency_ms"}


@dataclass
class OneShotOptions:
    """The ``search`` command's options a one-shot searcher reads."""

    searcher: str
    cost: str = "flops"
    budget: str | None = None
    table: Path | None = None
    space: str = "reduced"
    penalty: str | None = None
    dataset: str | None = None
    device: str = "local-cpu"
    epochs: int = 6
    final_epochs: int = 0
    batch_size: int = 64
    seed: int = 0
    max_train: int | None = None
    history_path: Path | None = None
    checkpoint: Path | None = None
    onnx: Path | None = None
    store_path: Path | None = None
    json_out: bool = False
    # single-path (Stamoulis ch. 5-6)
    target_latency: str | None = None
    search_se: bool = False
    lam: float = 0.2
    mode: str = "sigmoid"
    resolution: int | None = None
    width: float | None = None
    export_dir: Path | None = None


def run_oneshot(opts: OneShotOptions) -> None:
    module, fn = ONESHOT_CLI[opts.searcher].split(":")
    getattr(importlib.import_module(module), fn)(opts)


def fbnetv2_command(o: OneShotOptions) -> None:
    """FBNetV2 DMaskingNAS: search, derive, count/measure, optionally retrain and export."""
    from hwnas.searchers.fbnetv2 import fbnetv2_search, search_data
    from hwnas.spaces.fbnetv2 import load_space

    if o.cost not in COST_NAMES:
        raise InputError(f"--cost {o.cost!r} is not known", hint=f"one of {', '.join(COST_NAMES)}")
    cost = COST_NAMES[o.cost]
    predictor = None
    if cost == "latency_ms":
        if o.table is None:
            raise InputError(
                "--cost latency needs --table: a per-layer cost table of the device",
                hint="fit one on profiled layers: hwnas fit --device local-cpu-torch --kind boosted",
            )
        from hwnas.cost_models.predictors import load_cost_predictor

        predictor = load_cost_predictor(o.table)
        if "latency_ms" not in predictor.cost_names:
            raise InputError(
                f"{o.table}: the table predicts {list(predictor.cost_names)}, not latency_ms",
                hint="fit the table on the latency_ms metric",
            )
        if not getattr(predictor, "is_layer_table", True):
            raise InputError(f"{o.table}: a per-architecture table cannot price a supernet's layers",
                             hint="use a per-layer cost table (hwnas fit from profiled layers)")  # fmt: skip
    from hwnas.searchers.fbnetv2 import budget_constraint

    constraint = budget_constraint(cost, o.budget)  # a malformed budget fails before any work
    probe = load_space(o.space)
    data = search_data(o.dataset, probe.max_resolution, seed=o.seed, max_train=o.max_train)
    space = load_space(o.space, in_channels=data.in_channels, num_classes=data.num_classes)
    measure = None
    if cost == "latency_ms":
        from hwnas.cli._common import open_store
        from hwnas.profilers.device_costs import device_cost_fn

        cost_fn = device_cost_fn(o.device, ["latency_ms"], open_store(o.store_path))

        def measure(arch: Any, module: Any) -> dict[str, float]:
            shape = (1, space.in_channels, arch.resolution, arch.resolution)
            return cost_fn(arch.to_config(), module, shape)

    unit = "ms" if cost == "latency_ms" else ""
    with progress(f"fbnetv2 on {data.name} ({space.name}, {o.cost})", o.epochs, not o.json_out) as advance:

        def on_epoch(t: Any) -> None:
            advance(1)
            if not o.json_out:
                c = t.predicted_costs.get(cost, float("nan"))
                relaxed = t.info.get("relaxed_costs", {}).get(cost, float("nan"))
                err.print(
                    f"epoch {t.info['epoch']}/{o.epochs} ({t.info['phase']}): supernet val acc "
                    f"{t.info['val_accuracy']:.3f}, derived {o.cost} {c:.4g}{unit} (relaxed {relaxed:.4g}), "
                    f"tau {t.info['tau']:.3f}, {t.wall_time_s:.1f} s",
                    highlight=False,
                )

        res = fbnetv2_search(
            space, data, cost=cost, budget=constraint, predictor=predictor, penalty=o.penalty,
            epochs=o.epochs, final_epochs=o.final_epochs, measure_final=measure, batch_size=o.batch_size,
            seed=o.seed, warmup_epochs=min(1, o.epochs - 1), callback=on_epoch, checkpoint=o.checkpoint,
        )  # fmt: skip
    hist = res.searcher.history
    hist.meta.update({"objective": f"fbnetv2:{data.name}", "device": o.device if measure else None})
    if o.history_path is not None:
        hist.save_json(o.history_path)
    summary = res.summary()
    if o.onnx is not None:
        from hwnas.graph.builders.onnx import module_to_onnx

        shape = (1, space.in_channels, res.arch.resolution, res.arch.resolution)
        summary["onnx"] = str(module_to_onnx(space.build(res.arch).eval(), shape, o.onnx))
    if o.json_out:
        print_json(summary)
    else:
        rows = [[k, f"{v:.6g}"] for k, v in res.costs.items()]
        rows += [[f"measured {k} on {o.device}", f"{v:.4g}"] for k, v in res.measured.items()]
        if res.final:
            rows.append(
                [
                    f"val accuracy after {o.final_epochs} epochs of retraining",
                    f"{res.final['val_accuracy']:.4f}",
                ]
            )
        out.print(table(f"derived {res.arch.token()}", ["", "value"], rows))
        if summary.get("onnx"):
            out.print(f"ONNX: {summary['onnx']}", highlight=False)
        if res.feasible is not None:
            out.print(f"budget {o.cost}<={o.budget}: {'met' if res.feasible else 'NOT met'}", highlight=False)
    if res.feasible is False:
        raise CheckFailedError(
            f"the derived network breaks the budget {o.cost}<={o.budget}",
            hint="search longer (the temperature anneals per epoch) or stiffen it: --penalty budget:B,lambda",
        )
