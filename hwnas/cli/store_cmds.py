"""`hwnas show` (tables of stored measurements) and `hwnas export` (measurements, or a cost table)."""

from __future__ import annotations

from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, open_store, out, print_json, store_file, table

_FORMATS = ("csv", "json", "parquet")


def _filters(device: str | None, model: str | None, scope: str | None, metric: str | None,
             mode: str | None) -> dict[str, str | None]:  # fmt: skip
    from hwnas.errors import InputError
    from hwnas.store.records import SCOPES

    if scope is not None and scope not in SCOPES:
        raise InputError(f"--scope {scope!r} is not valid", hint=f"one of {', '.join(SCOPES)}")
    return {"device": device, "model_id": model, "scope": scope, "metric": metric, "mode": mode}


def _model_ids(store, model: str | None) -> str | list[str] | None:  # noqa: ANN001
    """Accept a bare model name (``mobilenet_v2``) for the stored id (``torchvision:mobilenet_v2``)."""
    if model is None:
        return None
    ids = sorted({r.model_id for r in store.query()})
    if model in ids:
        return model
    matches = [i for i in ids if i.split(":", 1)[-1] == model or i.split(":", 1)[-1].split("@")[0] == model]
    return matches or model


def _existing_store(path: Path | None):  # noqa: ANN202 - SQLiteStore
    """Open a store that must already exist, read-only (reading commands never create or change a file)."""
    return open_store(store_file(path), read_only=True)


def show(
    device: str | None = typer.Option(None, "--device", "-d", help="Only this device."),
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model (id or name)."),
    scope: str | None = typer.Option(None, "--scope", help="layer or model."),
    metric: str | None = typer.Option(None, "--metric", help="e.g. latency_ms, peak_memory_bytes."),
    mode: str | None = typer.Option(None, "--mode", help="inference or train_step."),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Tables of stored results: a summary per model, or per-layer rows with --model and --scope layer."""
    with _existing_store(store_path) as store:
        filters = _filters(device, None, scope, metric, mode)
        filters["model_id"] = _model_ids(store, model)
        df = store.dataframe(**filters)
    if df.empty:
        if json_out:
            print_json({"rows": []})
        else:
            out.print("no stored measurements match")
        return
    detailed = model is not None and scope == "layer"
    if json_out:
        print_json({"rows": df.drop(columns=["samples"], errors="ignore").to_dict(orient="records")})
        return
    if detailed:
        cols = ["device", "mode", "layer_index", "layer_name", "metric", "median", "ci_low", "ci_high",
                "n", "source"]  # fmt: skip
        df = df.sort_values(["device", "mode", "metric", "layer_index"])
        out.print(table("stored layer measurements", cols, df[cols].values.tolist()))
        return
    keys = ["device", "backend", "model_id", "mode", "batch_size", "scope", "metric"]
    agg = df.groupby(keys, dropna=False).agg(records=("value", "size"), total=("value", "sum"),
                                             median=("value", "median")).reset_index()  # fmt: skip
    agg["value"] = [t if s == "layer" else m for s, t, m in zip(agg["scope"], agg["total"], agg["median"],
                                                                strict=True)]  # fmt: skip
    rows = [[r.device, r.model_id, f"{r.mode} b{r.batch_size}", f"{r.scope} {r.metric}", r.records,
             r.value] for r in agg.itertuples()]  # fmt: skip
    cols = ["device", "model", "mode", "what", "records", "value"]
    out.print(table("stored measurements (layer rows: sum over layers)", cols, rows))


def export(
    fmt: str = typer.Option(..., "--format", "-f", help="csv, json or parquet."),
    out_path: Path = typer.Option(..., "--out", "-o", help="File to write."),
    cost_table: Path | None = typer.Option(
        None, "--table", help="Convert this cost table file instead of measurements."
    ),
    device: str | None = typer.Option(None, "--device", "-d", help="Only this device."),
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model (id or name)."),
    scope: str | None = typer.Option(None, "--scope", help="layer or model."),
    metric: str | None = typer.Option(None, "--metric", help="e.g. latency_ms."),
    mode: str | None = typer.Option(None, "--mode", help="inference or train_step."),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Export stored measurements (one row each; JSON keeps every sample), or convert a cost table."""
    from hwnas.errors import InputError

    if fmt not in _FORMATS:
        raise InputError(f"--format {fmt!r} is not supported", hint=f"one of {', '.join(_FORMATS)}")
    from hwnas.io import atomic_output, check_outputs

    check_outputs({"--out": out_path}, {"--table": cost_table} if cost_table is not None
                  else {"--store": store_file(store_path)})  # fmt: skip
    if cost_table is not None:
        from hwnas.cost_models.export import load_cost_table, save_cost_table

        if not cost_table.exists():
            raise InputError(f"cost table {cost_table} does not exist", hint="check the --table path")
        loaded = load_cost_table(cost_table)
        with atomic_output(out_path) as tmp:
            save_cost_table(loaded, tmp, format=fmt)
        summary = {"converted": str(cost_table), "out": str(out_path), "format": fmt}
    else:
        with _existing_store(store_path) as store:
            filters = _filters(device, None, scope, metric, mode)
            filters["model_id"] = _model_ids(store, model)
            if fmt == "json":
                import json

                from hwnas.io import write_text_atomic

                records = [m.to_dict() for m in store.query(**filters)]
                write_text_atomic(out_path, json.dumps({"measurements": records}, default=str))
                n = len(records)
            else:
                df = store.dataframe(**filters)
                with atomic_output(out_path) as tmp:
                    df.to_csv(tmp, index=False) if fmt == "csv" else df.to_parquet(tmp, index=False)
                n = len(df)
        summary = {"out": str(out_path), "format": fmt, "records": n}
    if json_out:
        print_json(summary)
    else:
        out.print(" ".join(f"{k}={v}" for k, v in summary.items()), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("export")(export)
