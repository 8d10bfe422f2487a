"""Turn an exception nobody anticipated into an ``error: ...`` / ``hint: ...`` pair (CLI only).

Library code raises :mod:`hwnas.errors` types with their own message and hint; this is the safety net for
what slips through (an OS error on a path, memory exhaustion, a sqlite failure), so that a user sees what
failed and what to try instead of a traceback. The traceback is still there with ``hwnas --debug``.
"""

from __future__ import annotations

import errno
import sqlite3

_DEBUG_HINT = "rerun with `hwnas --debug ...` for the traceback, and report it"


def _os_error(exc: OSError) -> tuple[str, str]:
    where = exc.filename if exc.filename is not None else "a file"
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    why = exc.strerror or str(exc)
    hints = {
        errno.ENOENT: "check the path (and that its folder exists)",
        errno.EACCES: "check the file's and its folder's permissions, or choose another path",
        errno.EPERM: "check the file's and its folder's permissions, or choose another path",
        errno.EROFS: "the file system is read-only: choose a path on a writable one",
        errno.ENOSPC: "the disk is full: free space or choose a path on another disk",
        errno.EISDIR: "that path is a directory: give a file path",
        errno.ENOTDIR: "a part of that path is a file, not a directory",
        errno.ENAMETOOLONG: "use a shorter path",
    }
    return f"{where}: {why}", hints.get(exc.errno or -1, "check the path and the file system")


def describe_unexpected(exc: BaseException) -> tuple[str, str]:
    """``(message, hint)`` for an exception that is not an :class:`hwnas.errors.HwnasError`."""
    if isinstance(exc, MemoryError):
        return ("out of memory", "use a smaller --batch-size or --input-shape, or fewer rows/cells at once")
    if isinstance(exc, UnicodeDecodeError):
        return (f"a file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                "save it as UTF-8 (YAML, CSV and JSON inputs are read as UTF-8)")  # fmt: skip
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            return (f"store: {text}", "the store file or its folder is not writable: fix permissions or "
                    "pass another --store")  # fmt: skip
        if "locked" in text or "busy" in text:
            return (f"store: {text}", "another hwnas process holds the store; wait for it or use another "
                    "--store")  # fmt: skip
        return (f"store: {text}", _DEBUG_HINT)
    return (f"internal error: {type(exc).__name__}: {exc}", _DEBUG_HINT)
