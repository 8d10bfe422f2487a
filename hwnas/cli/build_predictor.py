"""`hwnas build-predictor`: a per-kernel latency predictor for one device in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, check_range, err, out, print_json, store_file, table


def build_predictor(
    device: str = typer.Option(..., "--device", "-d", help="Device config name or YAML path."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Where to write the predictor (JSON)."),
    samples: int = typer.Option(
        2000, "--samples", "-n", min=32, max=1_000_000,
        help="Sample budget: kernels in the store for this device set-up, the ones already there "
        "included.",
    ),  # fmt: skip
    time_budget: str = typer.Option(
        "30m", "--time-budget", help="Wall-clock budget of this run's kernel profiling (30m, 1h30m, 90s, "
        "a number of seconds, or none); the fits and the overhead networks come after it.",
    ),  # fmt: skip
    initial_fraction: float = typer.Option(
        0.5, "--initial-fraction", help="Share of the samples in the space-filling initial design; the "
        "rest is added in adaptive rounds where the out-of-fold error is highest.",
    ),  # fmt: skip
    rounds: int = typer.Option(4, "--rounds", min=0, max=100, help="Adaptive rounds (0: initial only)."),
    calibration_models: int = typer.Option(
        10, "--calibration-models", min=0, max=200,
        help="Whole networks (MobileNetV2 / NAS-Bench-201 space points, never torchvision's) timed for "
        "the per-backend overhead and the model-level interval; 0 skips it.",
    ),  # fmt: skip
    store_path: Path | None = STORE_OPTION,
    clock: str = typer.Option(
        "auto", "--clock", help="auto (cpu when the machine is busy and the run single-threaded), wall "
        "or cpu (process CPU time).",
    ),  # fmt: skip
    threads: int = typer.Option(1, "--threads", min=1, max=1024, help="Threads of the runtime."),
    seed: int = typer.Option(0, "--seed", help="Seed of the design (a resumed build must keep it)."),
    json_out: bool = JSON_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Sample kernels over the configuration space, profile each alone on DEVICE (resuming from the
    store), add samples where the predictor errs most, fit and write the predictor to --out."""
    from hwnas.cli.profile import _resolve_clock
    from hwnas.device_config import load_device
    from hwnas.errors import InputError
    from hwnas.resources import check_threads
    from hwnas.workflows.build_predictor import BuildSpec, build_predictor, parse_duration

    budget = parse_duration(time_budget)
    check_range("--initial-fraction", initial_fraction, 0.05, 1.0)
    if clock not in ("auto", "wall", "cpu"):
        raise InputError(f"--clock {clock!r}: expected auto, wall or cpu")
    config = load_device(device)
    check_threads(threads, config.backend)
    clock, reason = _resolve_clock(clock, config, threads)
    show = not quiet and not json_out
    if show:
        err.print(f"clock: {reason}", highlight=False)
    spec = BuildSpec(device=device, out=out_path, samples=samples, time_budget_s=budget,
                     initial_fraction=initial_fraction, store_path=store_file(store_path), clock=clock,
                     threads=threads, rounds=rounds, seed=seed,
                     calibration_models=calibration_models)  # fmt: skip
    spec.check()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if show:
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=err, transient=False) as bar:
            task = bar.add_task("kernels", total=samples)
            res = build_predictor(
                spec,
                progress=lambda desc, done, total: bar.update(task, completed=done, total=total,
                                                              description=desc[:40]),
                on_phase=lambda text: bar.console.print(text, highlight=False),
            )  # fmt: skip
    else:
        res = build_predictor(spec)
    if json_out:
        print_json(res.to_dict())
        return
    _render(res)


def register(app: typer.Typer) -> None:
    app.command("build-predictor")(build_predictor)


def _render(res) -> None:  # noqa: ANN001 - CLI rendering only
    rows = [[k, v["n"], f"{v['oof_mape_pct']:.1f}", f"{100 * v['within_10pct']:.0f}"]
            for k, v in sorted(res.per_kind.items())]  # fmt: skip
    out.print(table("kernel predictor (out-of-fold, per kind)", ["kind", "kernels", "MAPE %", "within ±10 %"],
                    rows))  # fmt: skip
    out.print(
        f"{res.samples_total} kernels in the store for {res.device} (fingerprint {res.fingerprint_id}); "
        f"{res.measured} measured in this run ({res.profiling_wall_s:.0f} s wall, "
        f"{res.profiling_cpu_s:.0f} s CPU, clock {res.clock}), {res.flagged} flagged by QA, "
        f"{len(res.failures)} failed; "
        f"stopped: {res.stop_reason}; out-of-fold MAPE {res.oof_mape_pct} %",
        highlight=False,
    )
    if res.calibration.get("loo_mape_pct") is not None:
        out.print(f"overhead from {len(res.calibration['networks'])} whole networks: "
                  f"leave-one-out MAPE {res.calibration['loo_mape_pct']:.1f} %", highlight=False)  # fmt: skip
    for note in res.notes:
        out.print(f"note: {note}", highlight=False)
    out.print(f"wrote {res.out}", highlight=False)
