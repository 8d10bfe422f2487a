"""The `hwnas` command: one Typer app, one module per command group, errors turned into exit codes.

Exit codes (as ruff): 0 ok; 1 the job ran but a requested check failed; 2 bad input, configuration or an
unavailable device. Errors read ``error: <what failed>: <why>`` then ``hint: <how to fix>``; the
traceback only with ``--debug``.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from hwnas import __version__
from hwnas.cli._common import err

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware NAS: profile devices, fit cost models, search under device budgets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app); a missing module is a packaging bug and fails loudly.
COMMAND_MODULES = (
    "hwnas.cli.devices",
    "hwnas.cli.analyze",
    "hwnas.cli.profile",
    "hwnas.cli.store_cmds",
    "hwnas.cli.cost_models",
    "hwnas.cli.nb201",
    "hwnas.cli.search",
    "hwnas.cli.parse",
    "hwnas.cli.adaptive",
    "hwnas.cli.report",
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwnas {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map hwnas errors to messages and exit codes."""
    from hwnas.errors import HwnasError

    try:
        # In non-standalone mode Typer *returns* the code of a typer.Exit (and 130 for a KeyboardInterrupt,
        # which it turns into Exit(130)) instead of raising it; commands themselves return None.
        rv = app(args=argv, standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            if rv == 130:
                err.print("interrupted: what was finished is in the store; run the same command again "
                          "to resume")  # fmt: skip
            return rv
    except HwnasError as exc:
        if _state["debug"]:
            err.print_exception()
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"hint: {exc.hint}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except KeyboardInterrupt:
        err.print("interrupted: what was finished is in the store; run the same command again to resume")
        return 130
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        if _state["debug"]:
            raise
        err.print(f"[red]error:[/red] internal error: {type(exc).__name__}: {exc}", highlight=False)
        err.print("hint: rerun with --debug for the traceback, and report it")
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
