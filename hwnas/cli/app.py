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
from rich.markup import escape

import hwnas.spaces  # noqa: F401  (registers the mbv2: / nb201: model-name families)
from hwnas import __version__
from hwnas.cli._common import err

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware NAS: profile devices, fit cost models, search under device budgets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines its commands as module-level functions (a command group as a module-level
# typer.Typer) and register(app), which only attaches them; a missing module is a packaging bug and
# fails loudly.
COMMAND_MODULES = (
    "hwnas.cli.devices",
    "hwnas.cli.analyze",
    "hwnas.cli.profile",
    "hwnas.cli.build_predictor",
    "hwnas.cli.store_cmds",
    "hwnas.cli.cost_models",
    "hwnas.cli.nb201",
    "hwnas.cli.new_device",
    "hwnas.cli.search",
    "hwnas.cli.parse",
    "hwnas.cli.adaptive",
    "hwnas.cli.single_path",
    "hwnas.cli.report",
)

_state = {"debug": False}


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and context managers run (temporary
    ``hwnas-prof-*`` folders are removed, the store is closed) before the process exits 143."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _install_sigterm() -> object:
    """Install the SIGTERM handler (main thread only); returns the previous one, restored by main()."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, _on_sigterm)
    return None


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

importlib.import_module("hwnas.plugins").load()  # spaces' featurizers etc. into the generic registries


def _click_bases() -> tuple[type[BaseException], type[BaseException]]:
    """(ClickException, UsageError) of whichever click Typer runs on.

    Typer < 0.29 uses the ``click`` package; 0.29 bundles its own copy (``typer._click``) and no longer
    installs ``click``. Both are reached through ``typer.BadParameter``'s bases, so no import can fail."""
    mro = typer.BadParameter.__mro__
    click_exc = next(c for c in mro if c.__name__ == "ClickException")
    usage = next(c for c in mro if c.__name__ == "UsageError")
    return click_exc, usage


def _print_error(message: str, hint: str | None) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    if hint:
        err.print(f"hint: {escape(hint)}", highlight=False)


def _usage_error(exc: BaseException) -> tuple[str, str]:
    """Message and hint of a click usage error (unknown option, missing or out-of-range value)."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "hwnas"
    if type(exc).__name__ == "NoArgsIsHelpError":  # the help text was printed already
        return f"{command}: no command or option given", f"run '{command} --help', or one of its commands"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return f"{command}: {message}", f"run '{command} --help' for the options and their ranges"


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (see :func:`_run`); SIGTERM's previous handler is restored afterwards,
    so a program that calls main() several times (a benchmark, a test) can still be terminated."""
    import signal

    previous = _install_sigterm()
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map errors to ``error: ...``/``hint: ...`` and exit codes.

    0 ok, 1 a requested check failed, 2 bad input (usage errors included), 130 interrupted. Anything
    unexpected is reported the same way (exit 2) with its traceback only under ``--debug``."""
    from hwnas.cli.errors import describe_unexpected
    from hwnas.errors import HwnasError

    click_exc, usage = _click_bases()
    _state["debug"] = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        # In non-standalone mode Typer *returns* the code of a typer.Exit (and 130 for a KeyboardInterrupt,
        # which it turns into Exit(130)) instead of raising it; commands themselves return None.
        rv = app(args=argv, standalone_mode=False, prog_name="hwnas")
        if isinstance(rv, int) and not isinstance(rv, bool):
            if rv == 130:
                err.print("interrupted: what was finished is in the store; run the same command again "
                          "to resume")  # fmt: skip
            return rv
    except HwnasError as exc:
        if _state["debug"]:
            err.print_exception()
        _print_error(exc.message, exc.hint)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except KeyboardInterrupt:
        err.print("interrupted: what was finished is in the store; run the same command again to resume")
        return 130
    except Terminated:
        err.print("terminated: what was finished is in the store; run the same command again to resume")
        return 143
    except usage as exc:
        _print_error(*_usage_error(exc))
        return 2
    except click_exc as exc:  # e.g. a file option click could not open
        _print_error(exc.format_message(), "check the path and its permissions")
        return 2
    except SystemExit as exc:  # a library calling sys.exit: keep its code, never a traceback
        code = exc.code if isinstance(exc.code, int) else 2
        return code
    except Exception as exc:
        if _state["debug"]:
            err.print_exception()
        _print_error(*describe_unexpected(exc))
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
