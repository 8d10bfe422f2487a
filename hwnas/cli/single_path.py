"""`hwnas single-path table|runtime|check|export` and the single-path branch of `hwnas search`.

Thin: each command parses options and calls one library function in ``hwnas.searchers.single_path*``;
measurements come from ``hwnas.profilers.timer.module_timer`` on the named device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, err, out, print_json, progress, table
from hwnas.errors import CheckFailedError, InputError

PIXEL1 = "pixel1"

app = typer.Typer(
    help="Single-Path NAS: device runtime tables, pricing, checks, export.", no_args_is_help=True
)

RESOLUTION_OPTION = typer.Option(None, "--resolution", help="Input size (default: the table's, else 224).")
WIDTH_OPTION = typer.Option(None, "--width", help="Width multiplier (default: the table's, else 1.0).")
CLASSES_OPTION = typer.Option(
    None, "--num-classes", help="Classifier classes (default: the table's, else 1000)."
)
FORMS = ("auto", "in-model", "isolated")
TFLITE_TOL = 1e-4  # float32 TFLite vs torch on one standard-normal input: reorderings only
CLOCK_OPTION = typer.Option(
    "wall", "--clock", help="wall, or cpu (process CPU time: steadier on a loaded host)."
)


def load_table(device: str, table_path: Path | None) -> Any:
    """The table for ``device``: ``--table`` if given, the shipped one for pixel1, else a clear error."""
    from hwnas.searchers.single_path_table import SinglePathTable

    if table_path is not None:
        if not table_path.exists():
            raise InputError(f"single-path table {table_path}: file not found")
        return SinglePathTable.load(table_path)
    if device == PIXEL1:
        return SinglePathTable.pixel1()
    raise InputError(
        f"no single-path runtime table for device {device!r}",
        hint=f"build one: hwnas single-path table --device {device} --out {device}.json, then pass --table; "
        "or use --device pixel1 (the shipped table)",
    )


def space_for(
    tbl: Any, resolution: int | None, width: float | None, num_classes: int | None, se: bool = False
) -> Any:
    from hwnas.spaces.mbv2 import MBV2Space

    sp = tbl.space if tbl is not None else {}
    return MBV2Space(
        resolution or int(sp.get("resolution", 224)),
        width or float(sp.get("width", 1.0)),
        num_classes or int(sp.get("num_classes", 1000)),
        se_ratios=(0.0, 0.25, 0.5) if se else (0.0,),
    )


def build_device_table(
    device: str,
    space: Any,
    *,
    se: bool,
    clock: str,
    store_path: Path | None,
    show_progress: bool,
    repeats: int = 1,
    form: str = "auto",
) -> Any:
    from hwnas.cli._common import open_store
    from hwnas.device_config import load_device
    from hwnas.profilers.timer import IN_MODEL_BACKENDS, chain_timer, module_timer
    from hwnas.searchers.single_path_table import build_table, build_table_in_model

    if form not in FORMS:
        raise InputError(f"--form {form!r} is not known", hint=f"one of {', '.join(FORMS)}")
    if form == "auto":
        in_model = load_device(device).backend in IN_MODEL_BACKENDS and not se
        form = "in-model" if in_model else "isolated"
    if form == "in-model":
        if se:
            raise InputError(
                "--se needs the isolated form (SE scaling factors are timed block by block)",
                hint="add --form isolated",
            )
        tc = chain_timer(device, clock=clock)
        with progress(f"timing the uniform networks on {device}", 4 * repeats, show_progress) as advance:
            return build_table_in_model(
                space,
                tc,
                device=tc.device,  # type: ignore[attr-defined]
                repeats=repeats,
                progress=lambda label: advance(1, description=label),
                info={
                    "fingerprint": tc.fingerprint,  # type: ignore[attr-defined]
                    "clock": clock,
                    "source": "hwnas single-path table --form in-model",
                },
            )
    store = open_store(store_path)
    prefix = f"single-path@{space.resolution}w{space.width:g}c{space.num_classes}"
    timer = module_timer(device, store, clock=clock, prefix=prefix)
    n = (20 * (4 * (2 if se else 1) + 1) + 4) * repeats
    with progress(f"timing candidate blocks on {device}", n, show_progress) as advance:
        return build_table(
            space,
            timer,
            device=timer.device,
            se=se,
            repeats=repeats,
            progress=lambda label: advance(1, description=label),
            info={
                "fingerprint": timer.fingerprint,
                "clock": clock,
                "source": "hwnas single-path table",
                "form": "isolated blocks; fixed part calibrated on uniform whole networks",
            },
        )


@app.command("table")
def table_cmd(
    device: str = typer.Option(..., "--device", "-d", help="Device config to profile on (e.g. local-cpu)."),
    out_path: Path = typer.Option(..., "--out", help="Where to write the table (JSON)."),
    resolution: int | None = RESOLUTION_OPTION,
    width: float | None = WIDTH_OPTION,
    num_classes: int | None = CLASSES_OPTION,
    se: bool = typer.Option(
        False, "--se", help="Also time SE (ratio 0.25) variants: the scaling factors s of eq. 6.5."
    ),
    repeats: int = typer.Option(
        1, "--repeats", min=1, max=100, help="Interleaved passes over all modules; the median is kept."
    ),
    form: str = typer.Option(
        "auto",
        "--form",
        help="in-model: time each block inside the four uniform networks (thesis §5.3.2; torch-cpu); "
        "isolated: each block alone through the device's profiler; auto: in-model where it can.",
    ),
    clock: str = CLOCK_OPTION,
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Profile the 20 searchable blocks' candidate ops on a device: the runtime table of eq. 5.8-5.10."""
    space = space_for(None, resolution, width, num_classes)
    tbl = build_device_table(
        device,
        space,
        se=se,
        clock=clock,
        store_path=store_path,
        show_progress=not json_out,
        repeats=repeats,
        form=form,
    )
    tbl.save(out_path)
    d = tbl.to_dict()
    if json_out:
        print_json(d)
        return
    out.print(
        f"wrote {out_path}: {device}, fixed {tbl.fixed_ms:.3f} ms, all-k3e6 "
        f"{tbl.predict(space.decode('-'.join(['k3e6'] * 20))):.3f} ms, all-k5e6 "
        f"{tbl.predict(space.decode('-'.join(['k5e6'] * 20))):.3f} ms",
        highlight=False,
    )
    if "warning" in tbl.info:
        err.print(f"warning: {tbl.info['warning']}", highlight=False)


@app.command("runtime")
def runtime_cmd(
    device: str = typer.Option(
        PIXEL1, "--device", "-d", help="Target device (pixel1 uses the shipped table)."
    ),
    arch: str = typer.Option(
        ...,
        "--arch",
        help="20 block choices k3e3|k3e6|k5e3|k5e6|skip, comma-separated; or one token for all (k5e6).",
    ),
    table_path: Path | None = typer.Option(None, "--table", help="A table from `hwnas single-path table`."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Price an architecture with the runtime model (eq. 5.8-5.10), without searching."""
    from hwnas.searchers.single_path_table import parse_arch

    tbl = load_table(device, table_path)
    se = any("se" in t for t in arch.replace(",", "-").split("-"))
    space = space_for(tbl, None, None, None, se=se)
    choices = parse_arch(arch, space)
    ms = tbl.predict(choices)
    per = tbl.per_block(choices)
    res = {
        "device": device,
        "table": str(table_path) if table_path else "shipped pixel1",
        "arch": space.encode(choices),
        "runtime_ms": ms,
        "fixed_ms": tbl.fixed_ms,
        "blocks_ms": per,
    }
    if tbl.fixed_parts_ms is not None:
        res["fixed_parts_ms"] = tbl.fixed_parts_ms
    if json_out:
        print_json(res)
        return
    out.print(
        f"{ms:.2f} ms on {device} (fixed {tbl.fixed_ms:.2f} ms + 20 blocks {sum(per):.2f} ms)",
        highlight=False,
    )


@app.command("check")
def check_cmd(
    device: str = typer.Option(..., "--device", "-d", help="Device to measure whole networks on."),
    table_path: Path = typer.Option(..., "--table", help="The device's table."),
    n: int = typer.Option(100, "--n", min=1, help="Random architectures (thesis: 100)."),
    seed: int = typer.Option(0, "--seed"),
    repeats: int = typer.Option(
        1, "--repeats", min=1, max=100, help="Interleaved passes over the N networks; the median is kept."
    ),
    max_error: float | None = typer.Option(
        None, "--max-error", help="Exit 1 if the mean error (%) exceeds this."
    ),
    clock: str = CLOCK_OPTION,
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Runtime-model accuracy as in thesis §5.3.2: N random networks measured whole vs predicted."""
    from hwnas.cli._common import open_store
    from hwnas.profilers.timer import module_timer
    from hwnas.searchers.single_path_table import check_runtime_model

    tbl = load_table(device, table_path)
    space = space_for(tbl, None, None, None)
    timer = module_timer(
        device,
        open_store(store_path),
        clock=clock,
        prefix=f"single-path@{space.resolution}w{space.width:g}c{space.num_classes}",
    )
    with progress(f"measuring {n} random networks on {device}", n * repeats, not json_out) as advance:
        chk = check_runtime_model(
            tbl, space, timer, n=n, seed=seed, repeats=repeats, progress=lambda _: advance(1)
        )
    summ = chk.summary()
    if json_out:
        print_json(
            {**summ, "archs": chk.archs, "measured_ms": chk.measured_ms, "predicted_ms": chk.predicted_ms}
        )
    else:
        out.print(
            f"{summ['n']} random networks on {device}: mean error {summ['mean_abs_error_pct']:.2f} % "
            f"(signed {summ['mean_signed_error_pct']:+.2f} %), RMSE {summ['rmse_ms']:.3f} ms, "
            f"max {summ['max_abs_error_pct']:.2f} %",
            highlight=False,
        )
    if max_error is not None and summ["mean_abs_error_pct"] > max_error:
        raise CheckFailedError(f"runtime model mean error {summ['mean_abs_error_pct']:.2f} % > {max_error} %")


@app.command("export")
def export_cmd(
    arch: str | None = typer.Option(None, "--arch", help="Architecture (20 or 22 tokens)."),
    history: Path | None = typer.Option(
        None, "--history", help="Take the last epoch's architecture of a search."
    ),
    out_dir: Path = typer.Option(..., "--out", help="Folder for layers.json, model.pt, model.onnx."),
    device: str = typer.Option(
        PIXEL1, "--device", "-d", help="Target device (measured when profilable here)."
    ),
    table_path: Path | None = typer.Option(None, "--table", help="The device's table (for the prediction)."),
    resolution: int | None = RESOLUTION_OPTION,
    width: float | None = WIDTH_OPTION,
    num_classes: int | None = CLASSES_OPTION,
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Also write model.onnx (verified vs torch)."),
    tflite: bool = typer.Option(
        False,
        "--tflite/--no-tflite",
        help="Also write model.tflite (float32, NHWC; needs hwnas[tf]), checked against torch on one input.",
    ),
    tflite_device: str = typer.Option(
        "host-tflite",
        "--tflite-device",
        help="Device config that times model.tflite's network (LiteRT backend); 'none' to skip.",
    ),
    clock: str = CLOCK_OPTION,
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Export a searched architecture (LayerSpecs, torch, ONNX, TFLite); measured latency next to the
    prediction. Exit 1 when the .tflite output differs from torch's by more than 1e-4."""
    from hwnas.searchers.single_path_run import export_architecture, tflite_matches

    tbl = load_table(device, table_path)
    if history is not None:
        from hwnas.searchers.base import History

        h = History.load_json(history)
        if not h.trials or "arch" not in h.trials[-1].config:
            raise InputError(f"history {history}: no single-path architecture in its last record")
        arch = h.trials[-1].config["arch"]
        sp = h.meta.get("trained_space") or {}
        resolution = resolution or sp.get("resolution")
        width = width or sp.get("width")
        num_classes = num_classes or sp.get("num_classes")
    if arch is None:
        raise InputError("give --arch or --history")
    space = space_for(tbl, resolution, width, num_classes, se="se" in arch)
    from hwnas.searchers.single_path_table import parse_arch

    canonical = space.encode(parse_arch(arch, space))
    net = space.build(canonical).eval()
    # Measured before anything imports TensorFlow: its thread pools count in the process CPU clock.
    measured = measure_on_device(device, space, canonical, clock, store_path)
    if tflite:
        with progress("converting to TFLite", None, not json_out):
            paths = export_architecture(canonical, space, out_dir, module=net, onnx=onnx, tflite=True)
    else:
        paths = export_architecture(canonical, space, out_dir, module=net, onnx=onnx)
    res: dict[str, Any] = {
        "arch": canonical,
        "files": {k: str(v) for k, v in paths.items()},
        "predicted_ms": tbl.predict(space.decode(canonical)),
        "device": device,
        **measured,
    }
    if tflite:
        res["tflite_max_abs_diff"] = tflite_matches(net, paths["tflite"], (1, *space.input_shape))
        if tflite_device != "none":
            got = measure_on_device(tflite_device, space, canonical, clock, store_path)
            res["tflite_device"] = tflite_device
            res.update({f"tflite_{k}": v for k, v in got.items()})
    if json_out:
        print_json(res)
        _check_tflite(res)
        return
    for k, v in paths.items():
        out.print(f"{k}: {v}", highlight=False)
    meas = res.get("measured_ms")
    out.print(
        f"predicted {res['predicted_ms']:.3f} ms; measured "
        + (f"{meas:.3f} ms" if meas is not None else f"- ({res.get('not_measured')})"),
        highlight=False,
    )
    if tflite:
        tm = res.get("tflite_measured_ms")
        out.print(
            f"model.tflite vs torch: max |difference| {res['tflite_max_abs_diff']:.2e}"
            + (f"; {tflite_device}: {tm:.3f} ms" if tm is not None else ""),
            highlight=False,
        )
    _check_tflite(res)


def _check_tflite(res: dict[str, Any]) -> None:
    diff = res.get("tflite_max_abs_diff")
    if diff is not None and not diff <= TFLITE_TOL:
        raise CheckFailedError(
            f"model.tflite differs from the torch network by {diff:.3g} (> {TFLITE_TOL:g})",
            hint="an op the Keras builder translates differently; compare per layer with hwnas.graph",
        )


def measure_on_device(
    device: str, space: Any, arch: str, clock: str, store_path: Path | None
) -> dict[str, Any]:
    """``{"measured_ms": ...}`` on ``device`` if it can be profiled here, else ``{"not_measured": why}``."""
    from hwnas.cli._common import open_store
    from hwnas.errors import DeviceUnavailableError, HwnasError
    from hwnas.profilers.timer import module_timer

    if device == PIXEL1:
        return {"not_measured": "pixel1 is priced from the shipped table; no phone backend measures it here"}
    try:
        timer = module_timer(device, open_store(store_path), clock=clock, prefix="single-path-derived")
    except DeviceUnavailableError as exc:
        return {"not_measured": exc.message}
    except HwnasError as exc:
        return {"not_measured": str(exc)}
    return {"measured_ms": timer(space.build(arch).eval(), (1, *space.input_shape), arch)}


def run_search(
    *,
    device: str,
    table_path: Path | None,
    target_latency: str | None,
    dataset: str | None,
    epochs: int,
    seed: int,
    lam: float,
    mode: str,
    search_se: bool,
    resolution: int | None,
    width: float | None,
    batch_size: int,
    history_path: Path | None,
    export_dir: Path | None,
    checkpoint: Path | None,
    clock: str,
    store_path: Path | None,
    json_out: bool,
    penalty: str | None = None,
    final_epochs: int = 0,
    max_train: int | None = None,
    onnx_path: Path | None = None,
    searcher: str = "single-path",
) -> None:
    """`hwnas search --searcher single-path|multi-path`: table → search with a per-epoch bar → history,
    export, check. Both searchers use the same table, space, loss and data."""
    from hwnas.searchers.single_path_run import MULTI_PATH_WEIGHTINGS

    if searcher == "multi-path":
        if mode == "sigmoid":  # the search command's default: multi-path's default weighting instead
            mode = "softmax"
        if mode not in MULTI_PATH_WEIGHTINGS:
            raise InputError(
                f"--mode {mode!r} does not apply to multi-path",
                hint=f"its path weighting: {', '.join(MULTI_PATH_WEIGHTINGS)}",
            )
        if search_se:
            raise InputError("the multi-path baseline has no SE paths", hint="drop --search-se")
    from hwnas.searchers.constraints import Constraint
    from hwnas.searchers.penalty import make_penalty
    from hwnas.searchers.single_path_data import load_search_data
    from hwnas.searchers.single_path_run import single_path_search

    target = None
    if target_latency is not None:
        c = Constraint.parse(f"latency<={target_latency}" if "<" not in target_latency else target_latency)
        target = c.budget
    tbl = None
    if table_path is not None or device == PIXEL1:
        tbl = load_table(device, table_path)
    own = tbl.space if tbl is not None and tbl.device != PIXEL1 else {}  # a table built for a small space
    train_res = resolution or int(own.get("resolution", 32))
    train_width = width or float(own.get("width", 0.25))
    data = load_search_data(
        dataset,
        train_res,
        batch_size=batch_size,
        seed=seed,
        max_train=max_train,
        arch_fraction=0.2 if mode == "softmax" or searcher == "multi-path" else 0.0,
    )
    from hwnas.spaces.mbv2 import MBV2Space

    space = MBV2Space(
        train_res, train_width, data["num_classes"], se_ratios=(0.0, 0.25, 0.5) if search_se else (0.0,)
    )
    if tbl is None:
        err.print(
            f"no --table: building the {device} table for this space first "
            f"({space.resolution}px, width {space.width:g})",
            highlight=False,
        )
        tbl = build_device_table(
            device,
            MBV2Space(space.resolution, space.width, space.num_classes),
            se=search_se,
            clock=clock,
            store_path=store_path,
            show_progress=not json_out,
        )
    elif tbl.space and (int(tbl.space.get("resolution", 0)), float(tbl.space.get("width", 0))) != (
        space.resolution,
        space.width,
    ):
        err.print(
            f"note: the {tbl.device} table prices the {tbl.space.get('resolution')}px, width "
            f"{tbl.space.get('width')} network; the search trains a {space.resolution}px, width "
            f"{space.width:g} proxy of it on {data['name']}",
            highlight=False,
        )
    import torch

    # Where the supernet trains (not the target device): a CUDA GPU when this machine has one.
    train_device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = len(data["train"])
    with progress(f"{searcher} on {data['name']} for {device}", epochs * steps, not json_out) as advance:

        def on_step(s: Any) -> None:
            advance(1, description=f"epoch {s.epoch + 1}/{epochs} CE {s.ce:.3f} R {s.cost:.2f} ms")

        s = single_path_search(
            data,
            space,
            tbl,
            target_latency_ms=target,
            lam=lam,
            mode=mode,
            search_se=search_se,
            epochs=epochs,
            seed=seed,
            on_step=on_step,
            checkpoint=checkpoint,
            penalty=make_penalty(penalty) if penalty else None,
            device=train_device,
            searcher=searcher,
        )
    h = s.history
    h.meta["train_device"] = train_device
    h.meta.update(
        {
            "objective": f"{searcher}:{data['name']}",
            "device": device,
            "trained_space": {
                "resolution": space.resolution,
                "width": space.width,
                "num_classes": space.num_classes,
            },
        }
    )
    final = h.trials[-1]
    arch = final.config["arch"]
    result: dict[str, Any] = {
        "searcher": searcher,
        "device": device,
        "arch": arch,
        "predicted_latency_ms": final.predicted_costs["latency_ms"],
        "target_latency_ms": target,
        "val_accuracy": final.info["val_accuracy"],
        "epochs": len(h),
        "penalty": h.meta["penalty"],
    }
    priced_space = space_for(tbl, None, None, None, se=search_se) if tbl.space else space
    result.update(measure_on_device(device, priced_space, arch, clock, store_path))
    if "measured_ms" in result:
        final.measured_costs = {"latency_ms": result["measured_ms"]}
        if target is not None:
            final.constraints = {"latency_ms": result["measured_ms"] - target}
            final.feasible = result["measured_ms"] <= target
    if final_epochs > 0:
        from hwnas.searchers.single_path_run import train_network

        with progress(f"retraining the derived network for {final_epochs} epochs", None, not json_out):
            result["retrained"] = train_network(space.build(arch), data, final_epochs, seed=seed)
        h.meta["retrained"] = result["retrained"]
    if history_path is not None:
        h.save_json(history_path)
    if export_dir is not None or onnx_path is not None:
        from hwnas.searchers.single_path_run import export_architecture

        folder = export_dir if export_dir is not None else Path(onnx_path).parent  # type: ignore[arg-type]
        files = export_architecture(arch, space, folder)
        if onnx_path is not None and files.get("onnx") != Path(onnx_path):
            files["onnx"] = Path(files["onnx"]).replace(onnx_path)
        result["files"] = {k: str(v) for k, v in files.items()}
    if json_out:
        print_json({**result, "trials": h.to_records()})
    else:
        rows = [
            [
                t.info["epoch"],
                t.info["phase"],
                f"{t.info['train_ce']:.3f}",
                f"{t.info['val_accuracy']:.3f}",
                f"{t.predicted_costs['latency_ms']:.2f}",
                t.config["arch"],
            ]
            for t in h
        ]
        out.print(
            table(f"{searcher} search", ["epoch", "phase", "train CE", "val acc", "R ms", "arch"], rows)
        )
        meas = result.get("measured_ms")
        out.print(
            f"derived: {arch}\npredicted {result['predicted_latency_ms']:.2f} ms, measured "
            + (f"{meas:.2f} ms" if meas is not None else f"- ({result.get('not_measured')})")
            + (f", target {target:g} ms" if target is not None else ""),
            highlight=False,
        )
    got = result.get("measured_ms", result["predicted_latency_ms"])
    if target is not None and got > target:
        raise CheckFailedError(
            f"the derived network's latency {got:.2f} ms is above the target {target:g} ms",
            hint="raise --lambda (the runtime weight of eq. 5.7), or search longer",
        )


def multi_path_command(o: Any) -> None:
    """``hwnas search --searcher multi-path``: the multi-path baseline (one path per op, softmax or
    Gumbel weights, bilevel) with the single-path command's options, table, output and exit codes."""
    single_path_command(o, searcher="multi-path")


def single_path_command(o: Any, searcher: str = "single-path") -> None:
    """``hwnas search --searcher single-path``: the search command's options (``OneShotOptions``)."""
    if o.cost not in ("flops", "latency"):
        raise InputError(f"{searcher} searches latency: --cost does not apply", hint="drop --cost")
    run_search(
        device=o.device,
        table_path=o.table,
        target_latency=o.target_latency or o.budget,
        dataset=o.dataset,
        epochs=o.epochs,
        seed=o.seed,
        lam=o.lam,
        mode=o.mode,
        search_se=o.search_se,
        resolution=o.resolution,
        width=o.width,
        batch_size=o.batch_size,
        history_path=o.history_path,
        export_dir=o.export_dir,
        checkpoint=o.checkpoint,
        clock="wall",
        store_path=o.store_path,
        json_out=o.json_out,
        penalty=o.penalty,
        final_epochs=o.final_epochs,
        max_train=o.max_train,
        onnx_path=o.onnx,
        searcher=searcher,
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="single-path")
