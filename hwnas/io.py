"""Safe outputs: checked before the work starts, written to a temporary file and renamed into place.

Why: an output path that is also an input (``--csv`` equal to ``--store``, ``--out`` equal to ``--data``)
used to be overwritten after the job; a crash mid-write left a truncated file; an unwritable
``--history`` failed only after a long search had finished, losing its result. Every command that writes
a file calls :func:`check_outputs` first (before any long work) and writes through :func:`atomic_output`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

from hwnas.errors import InputError

_TMP_PREFIX = ".hwnas-tmp-"


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_writable(option: str, path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory", hint="give a file path inside it")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise InputError(f"{option} {path}: {exc.filename} is a file, not a folder",
                         hint="choose another output path") from exc  # fmt: skip
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot create its folder {parent}: {exc.strerror or exc}",
                         hint="choose a path in a writable folder") from exc  # fmt: skip
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{option} {path}: the file exists and is not writable",
                         hint="fix its permissions or choose another path")  # fmt: skip
    probe = parent / f"{_TMP_PREFIX}probe-{secrets.token_hex(4)}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write in {parent}: {exc.strerror or exc}",
                         hint="choose a path in a writable folder") from exc  # fmt: skip
    else:
        probe.unlink(missing_ok=True)


def check_outputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None] = {}) -> None:
    """Refuse, before any work, outputs that resolve to an input, to each other, or are not writable.

    Keys are the option names (``--csv``) used in the messages; ``None`` values are skipped. Missing
    parent folders are created (and the check fails if they cannot be)."""
    outs = {k: Path(v) for k, v in outputs.items() if v is not None}
    ins = {k: Path(v) for k, v in inputs.items() if v is not None}
    for name, path in outs.items():
        for in_name, in_path in ins.items():
            if _same(path, in_path):
                raise InputError(
                    f"{name} {path} is the same file as {in_name} {in_path}: writing it would destroy "
                    "the input",
                    hint=f"choose another {name} path",
                )
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if _same(outs[a], outs[b]):
                raise InputError(f"{a} and {b} are the same file ({outs[a]})", hint="give each its own path")
    for name, path in outs.items():
        _check_writable(name, path)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffixes, so writers infer the format); on success it
    is flushed to disk and renamed over ``path`` in one step, on failure it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{_TMP_PREFIX}{secrets.token_hex(4)}-{target.name}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer produced no file at {tmp}")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
