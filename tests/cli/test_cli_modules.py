"""Every CLI module follows one pattern (issue 16): commands are module-level functions (a group a
module-level Typer) and ``register(app)`` only attaches them, so a command is importable and callable."""

from __future__ import annotations

import importlib

import typer.main

from hwnas.cli.app import COMMAND_MODULES, app


def _commands(cmd, path=()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_no_command_is_defined_inside_register() -> None:
    found = [(p, c.callback) for p, c in _commands(typer.main.get_command(app)) if c.callback is not None]
    assert len(found) >= 20  # every top-level command and the parse / nb201 / single-path sub-commands
    nested = [(" ".join(p), cb.__qualname__) for p, cb in found if "register.<locals>" in cb.__qualname__]
    assert not nested, nested


def test_each_module_exposes_its_commands_at_module_level() -> None:
    names = {"hwnas.cli.profile": ["profile"], "hwnas.cli.analyze": ["analyze"],
             "hwnas.cli.store_cmds": ["show", "export"], "hwnas.cli.devices": ["devices"],
             "hwnas.cli.report": ["report"], "hwnas.cli.parse": ["parse_app"]}  # fmt: skip
    for module, attrs in names.items():
        assert module in COMMAND_MODULES
        mod = importlib.import_module(module)
        for a in attrs:
            assert callable(getattr(mod, a)), (module, a)
    parse = importlib.import_module("hwnas.cli.parse")
    tools = {c.name for c in typer.main.get_command(parse.parse_app).commands.values()}
    assert tools == set(parse.PARSERS)  # one sub-command per parser
