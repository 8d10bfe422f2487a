"""The NAS-Bench-201 table shipped with hwnas: accuracies, training times and 13 devices' measured latencies.

``hwnas/data/nb201.csv.gz`` (attribution in ``hwnas/data/NB201_ATTRIBUTION.md``) has one row per cell. A
user's own table "in this format" needs only ``arch`` and the columns a job uses (e.g. one ``lat_<dev>_ms``);
:func:`load_table` checks what is asked for and names every missing or malformed column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hwnas.errors import InputError
from hwnas.spaces.nb201 import OPS

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16_120")
DEVICES: tuple[str, ...] = (
    "1080ti_1",
    "1080ti_32",
    "1080ti_256",
    "titanx_1",
    "titanx_32",
    "titanx_256",
    "silver_4114",
    "silver_4210r",
    "gold_6240",
    "pixel3",
    "samsung_a50",
    "samsung_s7",
    "essential_ph_1",
)
# Device classes (for class-restricted and cross-class few-shot splits); the table has no accelerator.
DEVICE_CLASSES: dict[str, tuple[str, ...]] = {
    "gpu": ("1080ti_1", "1080ti_32", "1080ti_256", "titanx_1", "titanx_32", "titanx_256"),
    "cpu": ("silver_4114", "silver_4210r", "gold_6240"),
    "phone": ("pixel3", "samsung_a50", "samsung_s7", "essential_ph_1"),
}
# Devices whose latencies are whole milliseconds (BRP-NAS phones): rank metrics there must be tie-aware.
WHOLE_MS_DEVICES: frozenset[str] = frozenset({"samsung_a50", "samsung_s7", "essential_ph_1"})
LATENCY_COLUMNS: tuple[str, ...] = tuple(f"lat_{d}_ms" for d in DEVICES)
ACCURACY_COLUMNS: tuple[str, ...] = tuple(
    c
    for ds in DATASETS
    for c in (f"{ds}_valid_acc", f"{ds}_valid_acc_s0", f"{ds}_valid_acc_s1", f"{ds}_valid_acc_s2")
)
TRAIN_TIME_COLUMNS: tuple[str, ...] = tuple(f"{ds}_train_time_s" for ds in DATASETS)
ALL_COLUMNS: tuple[str, ...] = (
    ("index", "arch", "flops_cifar10_m", "params_cifar10_m", "connected", "source_params_match")
    + ACCURACY_COLUMNS
    + TRAIN_TIME_COLUMNS
    + LATENCY_COLUMNS
)
# Columns allowed to hold missing values (the third training run is absent for about half of the cells).
_MAY_BE_MISSING = frozenset(f"{ds}_valid_acc_s2" for ds in DATASETS)
_LAT_RE = re.compile(r"^lat_(.+)_ms$")
_OP = "(?:" + "|".join(OPS) + ")"
ARCH_RE = re.compile(rf"^\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|$")
_FORMAT_HINT = "see hwnas/data/NB201_ATTRIBUTION.md and `hwnas.spaces.nb201_table.ALL_COLUMNS` for the format"


def default_path() -> Path:
    """Where the shipped table lives inside the installed package."""
    return Path(str(resources.files("hwnas") / "data" / "nb201.csv.gz"))


def latency_column(device: str) -> str:
    """``pixel3`` -> ``lat_pixel3_ms``; a full column name passes through."""
    return device if _LAT_RE.match(device) else f"lat_{device}_ms"


def device_name(column: str) -> str:
    """``lat_pixel3_ms`` -> ``pixel3``."""
    m = _LAT_RE.match(column)
    if not m:
        raise InputError(
            f"{column!r} is not a latency column", hint="latency columns are named lat_<device>_ms"
        )
    return m.group(1)


def latency_columns(df: pd.DataFrame) -> list[str]:
    """Every ``lat_<device>_ms`` column of ``df``, in table order."""
    return [c for c in df.columns if _LAT_RE.match(str(c))]


def validate_table(
    df: pd.DataFrame, required: Iterable[str] = ("arch",), source: str = "table"
) -> pd.DataFrame:
    """Check that ``required`` columns exist and hold well-formed values; one InputError names all problems.

    Checks: ``arch`` strings parse; numeric columns are numbers (latency and time columns finite and >= 0,
    accuracies within 0-100, flags 0/1); ``index`` unique integers in 0-15624. Returns ``df`` unchanged.
    """
    req = list(dict.fromkeys(required))
    missing = [c for c in req if c not in df.columns]
    problems: list[str] = []
    if missing:
        problems.append("missing column(s) " + ", ".join(missing))
    for col in [c for c in req if c in df.columns]:
        bad = _column_problem(df[col], col)
        if bad:
            problems.append(f"column {col!r}: {bad}")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems), hint=_FORMAT_HINT)
    return df


def _column_problem(s: pd.Series, col: str) -> str | None:
    if col == "arch":
        text = s.astype("string")
        ok = text.str.fullmatch(ARCH_RE.pattern).fillna(False).to_numpy(bool)
        if not ok.all():
            first = s[~ok].iloc[0]
            return f"{int((~ok).sum())} malformed arch string(s), first {first!r}"
        return None
    values = pd.to_numeric(s, errors="coerce")
    n_text = int((values.isna() & s.notna()).sum())
    if n_text:
        return f"{n_text} non-numeric value(s), first {s[values.isna() & s.notna()].iloc[0]!r}"
    v = values.to_numpy(float)
    if col not in _MAY_BE_MISSING and np.isnan(v).any():
        return f"{int(np.isnan(v).sum())} missing value(s)"
    finite = v[~np.isnan(v)]
    if np.isinf(finite).any():
        return "infinite value(s)"
    if col == "index":
        if (finite != np.round(finite)).any() or (finite < 0).any() or (finite > 15624).any():
            return "indices must be integers in 0-15624"
        if len(np.unique(finite)) != len(finite):
            return "duplicate indices"
    elif col in ("connected", "source_params_match"):
        if not np.isin(finite, (0, 1)).all():
            return "flags must be 0 or 1"
    elif "_valid_acc" in col:
        if ((finite < 0) | (finite > 100)).any():
            return "accuracies must be percentages in 0-100"
    elif (finite < 0).any():
        return "negative value(s)"
    return None


@lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise InputError(
            f"{path}: no such file", hint="pass the path of a table in the nb201.csv.gz format"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable CSV table: {exc}", hint=_FORMAT_HINT) from exc


def load_table(path: str | Path | None = None, required: Sequence[str] | None = None) -> pd.DataFrame:
    """Load a NAS-Bench-201 table (default: the shipped one) and validate ``required`` columns.

    ``required`` defaults to every column for the shipped table and to ``("arch",)`` for a user's table.
    Returns a fresh copy (callers may add columns). Reading is cached per file and modification time.
    """
    p = Path(path) if path is not None else default_path()
    if not p.exists():
        raise InputError(f"{p}: no such file", hint="pass the path of a table in the nb201.csv.gz format")
    if required is None:
        required = ALL_COLUMNS if path is None else ("arch",)
    df = _read(str(p.resolve()), p.stat().st_mtime)
    validate_table(df, required, source=str(p))
    return df.copy()


@lru_cache(maxsize=1)
def _arch_index() -> dict[str, int]:
    df = load_table(required=("index", "arch"))
    return dict(zip(df["arch"].tolist(), df["index"].astype(int).tolist(), strict=True))


def index_of(arch: str) -> int:
    """NAS-Bench-201's index of an arch string (from the shipped table)."""
    from hwnas.spaces.nb201 import parse_arch, to_string

    key = to_string(parse_arch(arch))
    return _arch_index()[key]
