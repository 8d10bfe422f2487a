"""`hwnas report`: a static HTML page of a store's profiles, cost tables and search histories."""

from __future__ import annotations

from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, err, out, print_json


def report(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder to write index.html, img/ and data/ into."),
    tables: list[Path] = typer.Option(
        [], "--table", "-t", help="Cost table (JSON/CSV/Parquet) to report on; repeatable."
    ),
    histories: list[Path] = typer.Option(
        [],
        "--history",
        "-H",
        help="Search history (`hwnas search --history`) or comparison (`compare-searchers --histories`); "
        "repeatable.",
    ),
    models: list[str] = typer.Option(
        [], "--model", "-m", help="Only these model ids from the store (e.g. torchvision:mobilenet_v2)."
    ),
    max_models: int = typer.Option(
        4, "--max-models", min=0, help="Models per device set-up drawn layer by layer."
    ),
    no_store: bool = typer.Option(
        False, "--no-store", help="Leave the store out (tables and histories only)."
    ),
    embed: bool = typer.Option(False, "--embed", help="Also inline the images, so index.html stands alone."),
    title: str = typer.Option("hwnas report", "--title", help="Page title."),
    store_path: Path | None = STORE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Write a static HTML report (no server): device profiles, cost models, searches, comparisons."""
    from hwnas.errors import InputError
    from hwnas.report import build_report
    from hwnas.store import SQLiteStore, default_store_path

    for p in [*tables, *histories]:
        if not p.exists():
            raise InputError(f"{p}: file not found")
    store = None
    if not no_store:
        path = store_path or default_store_path()
        if path.exists():
            store = SQLiteStore(path)
        elif store_path is not None:
            raise InputError(f"store {path}: file not found", hint="pass an existing --store, or --no-store")
        elif not tables and not histories:
            raise InputError(f"store {path}: file not found", hint="profile a model first, or pass --store")
    try:
        res = build_report(
            out_dir,
            store=store,
            tables=tables,
            histories=histories,
            model_ids=models or None,
            max_models=max_models,
            embed=embed,
            title=title,
        )
    finally:
        if store is not None:
            store.close()
    if json_out:
        print_json(res.to_dict())
        return
    for n in res.notes:
        err.print(f"note: {n}", highlight=False)
    out.print(
        f"report: {res.index} ({', '.join(res.sections)}; {len(res.images)} figures, "
        f"{len(res.data_files)} CSV tables)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
