"""`hwnas devices`: the device configs found, and whether each one can be profiled from this machine."""

from __future__ import annotations

import typer

from hwnas.cli._common import JSON_OPTION, out, print_json, table


def devices(json_out: bool = JSON_OPTION) -> None:
    """List device configs (device_configs/, $HWNAS_DEVICE_CONFIGS) and whether each is usable here."""
    from hwnas.device_config import list_configs, load_config_file
    from hwnas.errors import ConfigError
    from hwnas.profilers.registry import availability

    rows = []
    for path in list_configs():
        try:
            cfg = load_config_file(path)
        except ConfigError as exc:
            rows.append({"name": path.stem, "backend": None, "usable": False, "reason": exc.message,
                         "description": "", "path": str(path)})  # fmt: skip
            continue
        ok, why = availability(cfg)
        rows.append({"name": cfg.name, "backend": cfg.backend, "usable": ok, "reason": why,
                     "description": cfg.description, "path": str(path)})  # fmt: skip
    if json_out:
        print_json({"devices": rows})
        return
    out.print(
        table(
            "devices",
            ["name", "backend", "usable here", "why"],
            [[r["name"], r["backend"], "yes" if r["usable"] else "no", r["reason"]] for r in rows],
        )
    )


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)
