"""`hwnas parse TOOL FILE`: run one of hwnas's device-tool parsers on a saved output file.

``PARSERS`` maps a tool name to ``"module:function"``; the function takes ``(text, source)`` and returns a
record with ``to_dict()``. Adding a tool is one entry here plus its parser under ``hwnas/profilers/parsers/``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import JSON_OPTION, out, print_json, table

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
}


def parse_file(tool: str, path: Path) -> dict[str, Any]:
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
    module, func = PARSERS[tool][0].split(":")
    return getattr(importlib.import_module(module), func)(text, str(path)).to_dict()


def _show(tool: str, data: dict[str, Any]) -> None:
    scalars = [[k, v] for k, v in data.items() if not isinstance(v, (list, dict))]
    out.print(table(f"{tool}", ["field", "value"], scalars))
    for k, v in data.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            cols = list(v[0])
            out.print(table(k, cols, [[row.get(c) for c in cols] for row in v]))
        elif isinstance(v, dict) and v:
            out.print(table(k, ["key", "value"], [[kk, vv] for kk, vv in v.items()]))


def _command(tool: str, helptext: str):  # noqa: ANN202
    def command(
        file: Path = typer.Argument(..., help="The saved output file."),
        json_out: bool = JSON_OPTION,
    ) -> None:
        data = parse_file(tool, file)
        if json_out:
            print_json(data)
        else:
            _show(tool, data)

    command.__doc__ = helptext
    return command


def register(app: typer.Typer) -> None:
    parse_app = typer.Typer(help="Parse saved device-tool output (one sub-command per tool).",
                            no_args_is_help=True)  # fmt: skip
    for tool, (_, helptext) in PARSERS.items():
        parse_app.command(tool)(_command(tool, helptext))
    app.add_typer(parse_app, name="parse")
