"""`hwnas profile`: measure a model on a device, per layer and whole, into the store (and a CSV)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer

from hwnas.cli._common import (
    JSON_OPTION,
    STORE_OPTION,
    as_file,
    err,
    fmt,
    open_store,
    out,
    print_json,
    progress,
    store_file,
    table,
)

_TOP = 12


def profile(
    device: str = typer.Option("local-cpu", "--device", "-d", help="Device config name or YAML path."),
    models: list[str] = typer.Option(
        ...,
        "--model",
        "-m",
        help="torchvision name, file.onnx, mbv2:<arch> or nb201:<arch>; repeat it to profile several models "
        "in one run (their jobs interleaved, see --interleave).",
    ),
    interleave: bool = typer.Option(
        True,
        "--interleave/--no-interleave",
        help="With several --model: run one job of each model in turn, so a machine whose speed drifts "
        "spreads the drift over every model instead of the ones measured last (--no-interleave: model "
        "after model).",
    ),
    per_layer: bool = typer.Option(True, "--per-layer/--no-per-layer", help="Time each layer in isolation."),
    whole_model: bool = typer.Option(
        True,
        "--whole-model/--no-whole-model",
        help="Time the whole model (plus peak memory and energy where readable).",
    ),
    train_step: bool = typer.Option(
        False, "--train-step", help="Also time forward + backward (torch-cpu devices)."
    ),
    resume: bool = typer.Option(
        True, "--resume", hidden=True, help="Deprecated: resuming is the default (see --force)."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        "--no-resume",
        help="Re-measure everything (default: skip what the store already holds for this set-up; "
        "--no-resume is the old spelling).",
    ),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak memory in a child process."),
    units: str = typer.Option(
        "layers",
        "--units",
        help="Time each LayerSpec alone (layers) or each of the backend's fused "
        "kernels, e.g. TFLite's conv+bn+relu6 (fused; records of scope 'unit').",
    ),
    store_path: Path | None = STORE_OPTION,
    csv: Path | None = typer.Option(None, "--csv", help="Also write the per-layer table to this CSV file."),
    json_out: bool = JSON_OPTION,
    batch_size: int | None = typer.Option(
        None, "--batch-size", "-b", min=1, max=65536, help="Batch size (default: the device config's)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, max=1024, help="Threads (default: the device config's)."
    ),
    input_shape: str | None = typer.Option(None, "--input-shape", help="Input shape, e.g. 1,3,160,160."),
    clock: str = typer.Option(
        "auto",
        "--clock",
        help="auto: cpu when other processes load the machine and the run is single-threaded, else "
        "wall (the choice and why are printed); wall (perf_counter); or cpu (process CPU time: on a "
        "busy shared machine it measures the work, not the scheduler).",
    ),
    remeasure: bool = typer.Option(
        True,
        "--remeasure/--no-remeasure",
        help="Re-measure once every record measurement QA flags (load, steal, throttling, spread, "
        "drift); what is still flagged is kept, marked, and left out of fits.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    devices: str | None = typer.Option(
        None,
        "--devices",
        help="A fleet: comma-separated device configs, one Ray job each on the node that has the Ray "
        "resource of that name (`ray start --resources '{\"jetson-orin\": 1}'`); one store for all.",
    ),
    address: str | None = typer.Option(
        None, "--address", help="With --devices: the Ray cluster (none starts a local one with them all)."
    ),
    retries: int = typer.Option(
        2, "--retries", min=0, max=100, help="With --devices: reruns of a job whose node or worker died."
    ),
) -> None:
    """Profile MODEL on DEVICE (several -m: in one run, jobs interleaved); results go to the store as they
    finish, so an interrupted run resumes."""
    from hwnas.errors import InputError

    if devices is not None:
        if len(models) != 1:
            raise InputError(f"--devices profiles one --model per run, got {len(models)}",
                             hint="run hwnas profile --devices once per model")  # fmt: skip
        return _fleet(devices, models[0], address, retries, store_path, per_layer, memory, clock, threads,
                      batch_size, json_out)  # fmt: skip
    if len(set(models)) != len(models):
        raise InputError(f"--model given twice: {sorted({m for m in models if models.count(m) > 1})}",
                         hint="name each model once")  # fmt: skip
    from hwnas.device_config import load_device
    from hwnas.graph.models import parse_input_shape, resolve_model
    from hwnas.io import atomic_output, check_outputs
    from hwnas.profilers.registry import get_profiler
    from hwnas.profilers.report import layer_table, model_summary

    inputs = {"--store": store_file(store_path), "--device": as_file(device)}
    inputs.update({"--model" if len(models) == 1 else f"--model {m}": as_file(m) for m in models})
    check_outputs({"--csv": csv}, inputs)
    from hwnas.resources import check_input_memory, check_threads, requested_shape

    config = load_device(device)
    check_threads(threads if threads is not None else config.threads, config.backend)
    batch = batch_size or config.batch_size
    shape = parse_input_shape(input_shape)
    check_input_memory(requested_shape(shape, batch), "the input")
    clock, clock_reason = _resolve_clock(clock, config, threads)
    if not quiet and not json_out:
        err.print(f"clock: {clock_reason}", highlight=False)
    profiler = get_profiler(config, threads=threads, clock=clock)
    resolved = []
    for model in models:
        with err.status(f"loading {model}", spinner="dots") if not quiet and not json_out else nullcontext():
            r = resolve_model(model, shape, batch_size=batch)
            if r.onnx_path is not None and config.backend == "onnxruntime-cpu":
                from hwnas.graph.from_onnx import check_onnxruntime_loads

                check_onnxruntime_loads(r.onnx_path)
        resolved.append(r)
    modes = ("inference", "train_step") if train_step else ("inference",)
    from hwnas.profilers.qa import QAStore

    what = resolved[0].name if len(resolved) == 1 else f"{len(resolved)} models"
    with open_store(store_path) as raw_store, profiler:  # the profiler's power source closed after
        store = QAStore(raw_store, clock=clock, target_ci_rel=config.repeat.target_ci_rel)
        with progress(f"profiling {what}", None, enabled=not quiet and not json_out) as advance:
            run = dict(per_layer=per_layer, whole_model=whole_model, modes=modes, memory=memory,
                       units=units, interleave=interleave,
                       progress=lambda e: advance(1, description=_short(e.description),
                                                  total=e.total))  # fmt: skip
            results = profiler.profile_many(resolved, store, force=force, **run)
            qa = {"clock": clock, "clock_reason": clock_reason, "flagged_first": len(store.flagged),
                  "remeasured": 0}  # fmt: skip
            if len(resolved) > 1:
                qa["interleaved"] = interleave
            if remeasure and store.flagged:
                # Delete what QA flagged and resume: exactly those jobs run again (drift is measured
                # against the first try, kept in memory); what is still flagged stays, marked.
                redo = list(store.flagged)
                store.remember(redo)
                for m in redo:
                    raw_store.delete(**_identity_filters(m))
                store.flagged = []
                again = profiler.profile_many(resolved, store, force=False, **run)
                # A record written by a job whose main record was not flagged (e.g. in-model layer
                # times of the whole-model job) is not re-run by resume: put the first try back.
                lost = [m for m in redo if not raw_store.has(m.identity())]
                for m in lost:
                    raw_store.add(m)
                store.flagged.extend(lost)
                qa["remeasured"] = len(redo) - len(lost)
                for result, second in zip(results, again, strict=True):
                    result.measured.extend(second.measured)
                    result.failures.extend(second.failures)
        qa["still_flagged"] = len(store.flagged)
        qa["flags"] = sorted({f for m in store.flagged for f in m.extra["qa"]["flags"]})
        if qa["flagged_first"]:
            results[0].notes.append(
                f"measurement QA: {qa['flagged_first']} record(s) flagged, {qa['remeasured']} "
                f"re-measured, {qa['still_flagged']} still flagged ({', '.join(qa['flags']) or 'none'}); "
                "flagged records are left out of fits (hwnas fit --include-flagged uses them)"
            )
        tables = []
        for r, result in zip(resolved, results, strict=True):
            key = dict(device=config.name, model_id=r.model_id, fingerprint_id=result.fingerprint_id,
                       batch_size=result.batch_size, backend=profiler.backend)  # fmt: skip
            tables.append((layer_table(store, **key), model_summary(store, **key)))
    if csv is not None:
        with atomic_output(csv) as tmp:
            if len(resolved) == 1:
                tables[0][0].to_csv(tmp, index=False)
            else:  # one table, the model of each row in front
                import pandas as pd

                pd.concat([t.assign(model_id=r.model_id)[["model_id", *t.columns]]
                           for r, (t, _) in zip(resolved, tables, strict=True)],
                          ignore_index=True).to_csv(tmp, index=False)  # fmt: skip
    docs = [{"result": result.to_dict(), "model": {"name": r.name, **r.spec.totals()}, "summary": summary,
             "layers": layers.to_dict(orient="records")}
            for r, result, (layers, summary) in zip(resolved, results, tables, strict=True)]  # fmt: skip
    if json_out:
        if len(docs) == 1:
            print_json({**docs[0], "qa": qa, "csv": str(csv) if csv else None})
        else:
            print_json({"models": docs, "qa": qa, "csv": str(csv) if csv else None})
        return
    for r, result, (layers, summary) in zip(resolved, results, tables, strict=True):
        _render(r, result, layers, summary, csv if len(resolved) == 1 else None)
    if csv is not None and len(resolved) > 1:
        out.print(f"per-layer table of {len(resolved)} models: {csv}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def _fleet_job(device: str, model: str, opts: dict) -> dict:
    """Runs on the device's node: the model-name families (mbv2:, nb201:) registered, as in the CLI."""
    import hwnas.spaces  # noqa: F401
    from hwnas.profilers.fleet_job import profile_job

    return profile_job(device, model, opts)


def _fleet(devices, model, address, retries, store_path, per_layer, memory, clock, threads, batch_size,  # noqa: ANN001
           json_out) -> None:  # noqa: ANN001  # fmt: skip
    """``hwnas profile --devices a,b``: one Ray job per device (:mod:`hwnas.distributed.fleet`)."""
    from hwnas.device_config import load_device
    from hwnas.distributed.fleet import run_fleet
    from hwnas.distributed.ray_executor import RayExecutor
    from hwnas.errors import InputError

    names = [d.strip() for d in devices.split(",") if d.strip()]
    if not names or len(set(names)) != len(names):
        raise InputError(f"--devices: expected distinct comma-separated device configs, got {devices!r}")
    for n in names:
        load_device(n)  # a bad name or YAML fails here, before any job starts
    opts = {"per_layer": per_layer, "memory": memory, "threads": threads, "batch_size": batch_size,
            "clock": "wall" if clock == "auto" else clock}  # fmt: skip
    jobs = {n: (_fleet_job, (n, model, opts)) for n in names}
    local = {n: 1 for n in names} if address is None else None
    with RayExecutor(workers=len(names), address=address, retries=retries, resources=local) as ex, \
            open_store(store_path) as store:  # fmt: skip
        results = run_fleet(jobs, ex, store, on_done=None if json_out else lambda r: err.print(
            f"{r.device}: {'ok, ' + str(r.records) + ' records' if r.ok else 'failed: ' + r.error}",
            highlight=False))  # fmt: skip
    if json_out:
        print_json([r.__dict__ for r in results])
    failed = [r.device for r in results if not r.ok]
    if failed:
        from hwnas.errors import MeasurementError

        raise MeasurementError(f"fleet profile failed on {failed}", hint="; ".join(r.error for r in results
                                                                                if not r.ok))  # fmt: skip


def _resolve_clock(clock: str, config, threads: int | None) -> tuple[str, str]:  # noqa: ANN001
    """``--clock auto`` picks from what the machine does now (:func:`hwnas.profilers.qa.choose_clock`)."""
    from hwnas.resources import LOCAL_BACKENDS

    if clock != "auto":
        return clock, f"{clock} clock (as asked)"
    if config.backend not in LOCAL_BACKENDS:
        return "wall", "wall clock: the device is not this machine's CPU"
    from hwnas.profilers.qa import choose_clock

    return choose_clock(threads if threads is not None else config.threads)


def _identity_filters(m) -> dict:  # noqa: ANN001
    from hwnas.profilers.qa import _IDENTITY

    return dict(zip(_IDENTITY, m.identity(), strict=True))


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _render(resolved, result, layers, summary, csv) -> None:  # noqa: ANN001 - CLI rendering only
    done = result.jobs_total - result.jobs_skipped
    out.print(
        f"{resolved.name}{'' if resolved.model_id == resolved.name else f' ({resolved.model_id})'} "
        f"on {result.device} ({result.backend}), "
        f"batch {result.batch_size}, "
        f"{result.threads} thread(s): {done} job(s) measured, {result.jobs_skipped} already in the store, "
        f"{result.elapsed_s:.1f} s",
        highlight=False,
    )
    for s in summary:
        lat = s.get("latency_ms")
        ci = s.get("latency_ms_ci")
        parts = [f"[bold]{s['mode']}[/bold]:"]
        if lat is not None:
            parts.append(
                f"whole model {fmt(lat)} ms" + (f" (95% CI {fmt(ci[0])}-{fmt(ci[1])})" if ci else "")
            )
        if "sum_layers_latency_ms" in s:
            parts.append(
                f"sum of {s['layers_measured']} isolated layers {fmt(s['sum_layers_latency_ms'])} ms"
            )
        if "sum_layers_in_model_latency_ms" in s:
            parts.append(f"sum of in-model layer times {fmt(s['sum_layers_in_model_latency_ms'])} ms")
        if "peak_memory_bytes" in s:
            parts.append(f"peak memory {s['peak_memory_bytes'] / 2**20:.1f} MiB")
        if "energy_mj" in s:
            parts.append(f"energy {fmt(s['energy_mj'])} mJ ({s.get('energy_mj_source')})")
        if "power_mw" in s:  # sampled backends (NVML, Jetson rails): the window's average power
            parts.append(f"average power {s['power_mw'] / 1e3:.4g} W")
        out.print("  ".join(parts), highlight=False)
    for note in result.notes:
        out.print(note, highlight=False)
    for failure in result.failures:
        err.print(f"[yellow]failed:[/yellow] {failure}", highlight=False)
    if not layers.empty:
        for mode, df in layers.groupby("mode"):
            top = df.sort_values("latency_ms", ascending=False).head(_TOP)
            rows = [[r.layer_index, r.layer_name, r.op, r.latency_ms,
                     f"{fmt(r.ci_low_ms)}-{fmt(r.ci_high_ms)}", r.n, r.in_model_latency_ms]
                    for r in top.itertuples()]  # fmt: skip
            out.print(table(f"{mode}: slowest {len(top)} of {len(df)} layers (isolated)",
                            ["#", "layer", "op", "ms", "95% CI", "n", "in-model ms"], rows))  # fmt: skip
    if csv is not None:
        out.print(f"per-layer table: {csv}", highlight=False)
