"""Typed errors that the CLI turns into `error: ...` / `hint: ...` messages and exit codes.

Library code raises these and never prints or exits (see ARCHITECTURE.md). Exit codes follow ruff:
0 ok, 1 the job ran but a requested check failed, 2 bad input, configuration or unavailable device.
"""

from __future__ import annotations


class HwnasError(Exception):
    """Base class: a message saying what failed and why, and an optional hint on how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class InputError(HwnasError):
    """A file, model name, option or field the user gave is missing or malformed."""


class ConfigError(InputError):
    """A device config (YAML) failed validation; the message names the file and the field."""


class DeviceUnavailableError(HwnasError):
    """The device or one of its sensors cannot be used on this machine (missing hardware or permission)."""


class SchemaError(InputError):
    """A stored file (store, cost table) has another schema version or is corrupt."""


class CheckFailedError(HwnasError):
    """The job ran but a requested check failed (error bound exceeded, no feasible point)."""

    exit_code = 1


class MeasurementError(HwnasError):
    """A measurement could not be taken (the run crashed, ran out of memory or timed out)."""

    exit_code = 1
