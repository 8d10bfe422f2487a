"""Shared CLI plumbing: consoles, JSON output, progress bars, store and device options."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

out = Console(soft_wrap=True)  # results: stdout
err = Console(stderr=True, soft_wrap=True)  # progress, logs, errors: stderr

STORE_OPTION = typer.Option(
    None, "--store", help="SQLite store file (default: $HWNAS_STORE or ./hwnas.db).", show_default=False
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (plain print: no Rich markup or wrapping)."""
    sys.stdout.write(json.dumps(_jsonable(data), indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    return t


def fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a callback ``advance(n=1, description=None)``."""
    if not enabled:
        yield lambda *a, **k: None
        return
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None, total: int | None = None) -> None:
            kwargs: dict[str, Any] = {"advance": n}
            if description is not None:
                kwargs["description"] = description
            if total is not None:
                kwargs["total"] = total
            bar.update(task, **kwargs)

        yield advance


def check_range(option: str, value: float | None, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False, hi_open: bool = False) -> None:  # fmt: skip
    """A numeric option must be finite and in range (open or closed ends); InputError naming it."""
    from hwnas.errors import InputError

    if value is None:
        return
    ok = math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        span = f"{left}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{right}"
        raise InputError(f"{option} {value:g}: expected a finite number in {span}",
                         hint=f"e.g. {option} {_example(lo, hi)}")  # fmt: skip


def _example(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{(lo + hi) / 2:g}"
    if lo is not None:
        return f"{lo + 1:g}"
    return "1"


def store_file(path: Path | None) -> Path:
    """The store file a command will use (``--store`` or the default), for output-vs-input checks."""
    from hwnas.store import default_store_path

    return path if path is not None else default_store_path()


def as_file(text: str | None) -> Path | None:
    """``text`` as a path when it names an existing file (model/device/objective arguments that may be
    names or files), else None."""
    if text is None:
        return None
    p = Path(text)
    return p if p.is_file() else None


def open_store(path: Path | None, *, read_only: bool = False) -> Any:
    """The store at ``path`` (default: $HWNAS_STORE or ./hwnas.db); ``read_only`` for commands that only
    read: the file must exist, is opened with SQLite's ``mode=ro`` and is never created or changed."""
    from hwnas.store import SQLiteStore

    return SQLiteStore(path, read_only=read_only)


@contextmanager
def progress_phases(enabled: bool = True) -> Iterator[Any]:
    """Progress bars on stderr for work in phases whose sizes are known only when they start: yields
    ``phase(description, total) -> advance(n=1)``; a phase that never starts shows no bar."""
    if not enabled:
        yield lambda *a, **k: (lambda *a, **k: None)
        return
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=False) as bar:

        def phase(description: str, total: int | None) -> Any:
            task = bar.add_task(description, total=total)
            return lambda n=1, **_: bar.update(task, advance=n)

        yield phase
