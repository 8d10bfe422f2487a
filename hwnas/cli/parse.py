"""`hwnas parse TOOL FILE`: run one of hwnas's device-tool parsers on a saved output file.

``PARSERS`` maps a tool name to ``"module:function"``; the function takes ``(text, source)`` and returns a
record with ``to_dict()`` (a dict, or a list of per-line dicts for logs such as tegrastats). Adding a tool is
one entry here plus its parser under ``hwnas/profilers/parsers/``. A tool listed in ``STORERS`` also gets
``--store S --device D``: its function turns the parsed dict(s) into store records.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, err, open_store, out, print_json, table

# tool -> (parser "module:function", one-line description for --help)
PARSERS: dict[str, tuple[str, str]] = {
    "benchmark-model": (
        "hwnas.profilers.parsers.benchmark_model:parse_benchmark_model",
        "TFLite benchmark_model stdout (summary, memory, --enable_op_profiling tables).",
    ),
    "battery": (
        "hwnas.profilers.parsers.battery:parse_battery",
        "`dumpsys battery` or /sys/class/power_supply/*/uevent dump (volts, signed amperes, watts).",
    ),
    "tegrastats": (
        "hwnas.profilers.parsers.tegrastats:parse_log",
        "Jetson tegrastats log, one reading per line: rails (mW), total input and its rule, GPU/CPU load "
        "and clocks, RAM, temperatures; unknown fields under `unparsed`.",
    ),
}
# tool -> "module:function" (parsed data, device, file name, fingerprint id) -> list of Measurement
STORERS: dict[str, str] = {
    "tegrastats": "hwnas.profilers.parsers.tegrastats:to_measurements",
}


def _load(ref: str) -> Callable[..., Any]:
    module, func = ref.split(":")
    return getattr(importlib.import_module(module), func)


def parse_file(tool: str, path: Path) -> Any:
    """Read ``path`` and parse it with ``tool``'s parser; InputError for a missing file or unknown tool."""
    from hwnas.errors import InputError

    if tool not in PARSERS:
        raise InputError(f"no parser for tool {tool!r}", hint=f"one of {', '.join(sorted(PARSERS))}")
    if not path.is_file():
        raise InputError(f"{path}: file not found", hint="give the path of a saved tool output")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}") from exc
    return _load(PARSERS[tool][0])(text, str(path)).to_dict()


def store_parsed(tool: str, path: Path, data: Any, device: str, store_path: Path | None) -> int:
    """Write ``data`` (parsed from ``path``) to the store under ``device``; returns the records written.
    The fingerprint names the tool and the log's hash, so two logs never mix."""
    from hwnas.store.records import Fingerprint

    fp = Fingerprint(device, {"tool": tool, "log_file": path.name,
                              "log_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]})  # fmt: skip
    records = _load(STORERS[tool])(data, device, path.name, fp.id)
    with open_store(store_path) as store:
        store.add_fingerprint(fp)
        for r in records:
            store.add(r)
    return len(records)


def _show(tool: str, data: Any) -> None:
    if isinstance(data, list):
        _show_lines(tool, data)
        return
    scalars = [[k, v] for k, v in data.items() if not isinstance(v, (list, dict))]
    out.print(table(f"{tool}", ["field", "value"], scalars))
    for k, v in data.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            cols = list(v[0])
            out.print(table(k, cols, [[row.get(c) for c in cols] for row in v]))
        elif isinstance(v, dict) and v:
            out.print(table(k, ["key", "value"], [[kk, vv] for kk, vv in v.items()]))


def _show_lines(tool: str, readings: list[dict[str, Any]]) -> None:
    """tegrastats-style logs: one row per line, then the total-input rule(s) used."""
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
    cols = ["line", "time", "total input mW", "GPU %", "GPU MHz", "RAM MB", "unparsed"]
    out.print(table(f"{tool}: {len(readings)} lines", cols, rows))
    for rule in sorted({r["total_rule"] for r in readings}):
        out.print(f"total input: {rule}", highlight=False)


def _command(tool: str, helptext: str):  # noqa: ANN202
    if tool not in STORERS:

        def command(
            file: Path = typer.Argument(..., help="The saved output file."),
            json_out: bool = JSON_OPTION,
        ) -> None:
            data = parse_file(tool, file)
            if json_out:
                print_json(data)
            else:
                _show(tool, data)

    else:

        def command(  # type: ignore[misc]
            file: Path = typer.Argument(..., help="The saved output file."),
            json_out: bool = JSON_OPTION,
            store_path: Path | None = STORE_OPTION,
            device: str | None = typer.Option(
                None, "--device", "-d", help="Device name the readings are stored under (with --store)."
            ),
        ) -> None:
            from hwnas.errors import InputError

            data = parse_file(tool, file)
            if (store_path is None) != (device is None):
                raise InputError("--store and --device go together", hint="give both, or neither")
            if store_path is not None and device is not None:
                n = store_parsed(tool, file, data, device, store_path)
                msg = f"stored {n} records from {file} in {store_path} (device {device})"
                err.print(msg, highlight=False)
            if json_out:
                print_json(data)
            else:
                _show(tool, data)

    command.__doc__ = helptext
    return command


parse_app = typer.Typer(help="Parse saved device-tool output (one sub-command per tool).",
                        no_args_is_help=True)  # fmt: skip
for _tool, (_, _helptext) in PARSERS.items():
    parse_app.command(_tool)(_command(_tool, _helptext))


def register(app: typer.Typer) -> None:
    app.add_typer(parse_app, name="parse")
