"""`hwnas parse TOOL FILE`: turn a saved device-tool log into readings to inspect (--json) or store.

Parsers are looked up in :data:`PARSERS` (tool name -> :class:`ToolParser`); adding a tool is one entry
pointing at a pure parser in ``hwnas.profilers.parsers`` (text in, JSON-ready dicts out) and, optionally,
a function turning those dicts into store records.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, err, open_store, out, print_json, table
from hwnas.errors import InputError


@dataclass(frozen=True)
class ToolParser:
    """``parse``: ``"module:function"`` taking (text, source name) and returning a list of dicts, each
    with a ``line`` key. ``records``: ``"module:function"`` taking (readings, device, file name,
    fingerprint id) and returning ``Measurement``s, or None when the tool's readings are not stored."""

    parse: str
    records: str | None = None
    help: str = ""


PARSERS: dict[str, ToolParser] = {
    "tegrastats": ToolParser(
        "hwnas.profilers.parsers.tegrastats:parse_to_dicts",
        "hwnas.profilers.parsers.tegrastats:to_measurements",
        "Jetson tegrastats log: rails (mW), total input with its rule, GPU/CPU load and clocks, RAM, temps",
    ),
}


def _load(ref: str) -> Callable[..., Any]:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def parse_file(tool: str, path: Path) -> list[dict[str, Any]]:
    if tool not in PARSERS:
        raise InputError(f"no parser for tool {tool!r}", hint=f"known tools: {', '.join(sorted(PARSERS))}")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc
    return _load(PARSERS[tool].parse)(text, str(path))


def store_readings(tool: str, path: Path, readings: list[dict[str, Any]], device: str,
                   store_path: Path | None) -> int:  # fmt: skip
    from hwnas.store.records import Fingerprint

    ref = PARSERS[tool].records
    if ref is None:
        raise InputError(f"{tool} readings have no store form yet", hint="use --json to inspect them")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    fp = Fingerprint(device, {"tool": tool, "log_sha256": digest, "log_file": path.name})
    records = _load(ref)(readings, device, path.name, fp.id)
    with open_store(store_path) as store:
        store.add_fingerprint(fp)
        for r in records:
            store.add(r)
    return len(records)


def register(app: typer.Typer) -> None:
    @app.command("parse")
    def parse(
        tool: str = typer.Argument(..., help=f"Tool whose log FILE is: {', '.join(sorted(PARSERS))}."),
        file: Path = typer.Argument(..., help="The saved log."),
        device: str | None = typer.Option(
            None, "--device", "-d", help="Device name to store the readings under (with --store)."
        ),
        store_path: Path | None = STORE_OPTION,
        json_out: bool = JSON_OPTION,
    ) -> None:
        """Parse a saved device-tool log (e.g. tegrastats) into readings; store them with --store."""
        readings = parse_file(tool, file)
        if store_path is not None or device is not None:
            if store_path is None or device is None:
                raise InputError("--store and --device go together", hint="give both, or neither")
            n = store_readings(tool, file, readings, device, store_path)
            err.print(f"stored {n} records from {len(readings)} lines in {store_path}", highlight=False)
        if json_out:
            print_json(readings)
            return
        _print_summary(tool, file, readings)


def _print_summary(tool: str, file: Path, readings: list[dict[str, Any]]) -> None:
    if tool != "tegrastats":
        out.print(f"{len(readings)} readings from {file}", highlight=False)
        return
    rows = []
    for r in readings:
        rows.append([
            r["line"], r["timestamp"] or "-",
            "-" if r["total_input_mw"] is None else r["total_input_mw"],
            "-" if r["gpu_util_pct"] is None else r["gpu_util_pct"],
            "-" if not r["gpu_mhz"] else "/".join(f"{x:g}" for x in r["gpu_mhz"]),
            f"{r['ram_used_mb']:g}/{r['ram_total_mb']:g}",
            ", ".join(sorted(r["unparsed"])) or "-",
        ])  # fmt: skip
    out.print(table(f"{file}: {len(readings)} lines", ["line", "time", "total input mW", "GPU %", "GPU MHz",
                                                       "RAM MB", "unparsed"], rows))  # fmt: skip
    rules = sorted({r["total_rule"] for r in readings})
    for rule in rules:
        out.print(f"total input: {rule}", highlight=False)
