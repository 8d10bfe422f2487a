"""TFLite ``benchmark_model`` output → one record: summary timings, memory, threads, delegate, per-op table.

Layouts accepted (recordings in ``tests/profilers/recordings/benchmark_model``):
- the plain stdout of old builds and the ``INFO: ``-prefixed stdout of newer ones, and logcat lines
  (``07-08 15:34:26.201 I/tflite  ( 5395): ...``) of the Android benchmark app;
- the timing lines ``count=50 first=... curr=... min=... max=... avg=... std=...`` in µs, numbers in plain or
  scientific notation (``avg=2.95034e+06``), with or without ``p5= median= p95=``; a one-sample warm-up
  prints only ``count=1 curr=8454279``;
- ``Inference timings in us: Init: ..., First inference: ..., Warmup (avg): ..., Inference (avg): ...``;
- memory as ``Peak memory footprint (MB): init=... overall=...`` (older), ``Memory footprint delta from the
  start of the tool (MB): init=... overall=...`` (newer) and ``Overall peak memory footprint (MB) via periodic
  monitoring: ...``; ``memory_kind`` says which one ``memory_mb`` is;
- the op-profiling tables (``--enable_op_profiling=true``): ``Run Order``, ``Top by Computation Time`` and
  ``Summary by node type`` under ``Profiling Info for Benchmark Initialization:`` and ``Operator-wise
  Profiling Info for Regular Benchmark Runs:``. Columns are found by their bracketed header names, so a
  version that reorders or adds columns still parses; ``[start]``/``[first]``/``[avg ms]`` are in ms.

A file holding only the op-profiling part (no summary lines) takes its counts from the table's own
``Timings (microseconds): count=...`` line; ``timing_source`` says where the summary numbers came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import InputError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# Prefixes benchmark_model's logger and Android's logcat put in front of each message.
_PREFIX = re.compile(
    r"^(?:\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+(?:\d+\s+\d+\s+)?[VDIWEF][/ ]\s*[\w.-]*\s*(?:\(\s*\d+\))?:\s?)?"
    r"(?:(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG):\s)?"
)
_COUNT_LINE = re.compile(r"^\s*(?:Timings \(microseconds\):\s*)?count=(\d+)((?:\s+\w+=\S+)*)\s*$")
_KV = re.compile(r"(\w+)=(\S+)")
_RUNNING = re.compile(r"Running benchmark for at least (\d+) iterations")
_SUMMARY = re.compile(
    rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
    rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})"
)
_INIT_SESSION = re.compile(rf"Initialized session in ({_NUM})\s*ms")
_PEAK = re.compile(rf"^Peak memory footprint \(MB\): init=({_NUM}) overall=({_NUM})")
_DELTA = re.compile(
    rf"^Memory footprint delta from the start of the tool \(MB\): init=({_NUM}) overall=({_NUM})"
)
_PERIODIC = re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})")
_PARAM = re.compile(r"^([A-Za-z#][\w #()/.,'-]*?): \[(.*)\]\s*$")
_SECTION = re.compile(r"^(.*Profiling Info for .*):\s*$")
_TABLE = re.compile(r"^=+ (.+?) =+\s*$")
_OP_NAME = re.compile(r"^\[(.*)\]:(\d+)$|^(.*?):(\d+)$|^(.*)/(\d+)$")

# Parameter echo lines that name the thread count, in the spellings of different versions.
_THREAD_PARAMS = ("Num threads", "#threads used for CPU inference")
_DELEGATE_PARAMS = {
    "Use gpu": "gpu",
    "Use NNAPI": "nnapi",
    "Use xnnpack": "xnnpack",
    "Use Hexagon": "hexagon",
    "Use coreml": "coreml",
}
_DELEGATE_CREATED = re.compile(
    r"(?:^|\b)(XNNPACK|GPU|NNAPI|Hexagon|EXTERNAL|CoreML) delegate created|"
    r"Created TensorFlow Lite (XNNPACK|delegate for GPU|delegate for NNAPI)"
)
_APPLIED = re.compile(r"Explicitly applied (\w+) delegate")
_GOING_TO_APPLY = re.compile(r"Going to apply (\d+) delegates")

SUMMARY_KEYS = (
    "count", "avg_ms", "std_ms", "min_ms", "max_ms", "first_ms", "warmup_avg_ms", "init_ms", "memory_mb",
    "memory_kind", "threads", "delegate", "ops",
)  # fmt: skip
OP_KEYS = ("index", "type", "name", "avg_ms", "first_ms", "pct", "times_called")


@dataclass
class OpRow:
    """One row of a Run Order table (times in ms as printed; ``pct`` of the run's total)."""

    index: int
    type: str
    name: str
    avg_ms: float | None
    first_ms: float | None
    pct: float | None
    times_called: int | None
    start_ms: float | None = None
    mem_kb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in OP_KEYS}


@dataclass
class BenchmarkModelRun:
    """Everything read from one benchmark_model run; ``to_dict`` gives the documented summary keys."""

    count: int | None = None
    avg_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    first_ms: float | None = None
    warmup_avg_ms: float | None = None
    warmup_count: int | None = None
    init_ms: float | None = None
    memory_mb: float | None = None
    memory_kind: str | None = None  # "peak_overall" | "footprint_delta_overall" | "peak_periodic"
    memory: dict[str, float] = field(default_factory=dict)  # every memory figure printed, by kind
    threads: int | None = None
    delegate: str | None = None
    ops: list[OpRow] = field(default_factory=list)
    init_ops: list[OpRow] = field(default_factory=list)  # the "Benchmark Initialization" profile
    node_types: list[dict[str, Any]] = field(default_factory=list)  # "Summary by node type"
    params: dict[str, str] = field(default_factory=dict)  # the parameter echo, "Graph: [...]" etc.
    percentiles_ms: dict[str, float] = field(default_factory=dict)  # p5/median/p95 where printed
    timing_source: str = ""  # "summary" or "op-profile-timings"
    unparsed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in SUMMARY_KEYS if k != "ops"}
        d["ops"] = [op.to_dict() for op in self.ops]
        return d


def _f(text: str, src: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{src}: {what}: expected a number, got {text!r}") from None


def _timing_fields(rest: str, src: str) -> dict[str, float]:
    return {k: _f(v, src, f"timing field {k!r}") for k, v in _KV.findall(rest)}


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


def _split_row(line: str) -> list[str]:
    cells = [c.strip() for c in line.split("\t")]
    if cells and cells[0] == "":
        cells = cells[1:]
    if len(cells) <= 1:  # some copies lose the tabs: fall back to runs of two or more spaces
        cells = [c for c in re.split(r"\s{2,}", line.strip()) if c]
    return cells


def _header(cells: list[str]) -> list[str] | None:
    if cells and all(c.startswith("[") and c.endswith("]") for c in cells):
        return [c[1:-1].strip().lower() for c in cells]
    return None


def _opt_float(cells: dict[str, str], *names: str) -> float | None:
    for n in names:
        if n in cells and cells[n] != "":
            try:
                return float(cells[n].rstrip("%"))
            except ValueError:
                return None
    return None


def _op_row(cols: list[str], cells: list[str], position: int) -> OpRow | None:
    if len(cells) != len(cols):
        return None
    row = dict(zip(cols, cells, strict=True))
    typ = row.get("node type", "")
    raw_name = row.get("name", "")
    index, name = position, raw_name
    m = _OP_NAME.match(raw_name)
    if m:
        if m.group(2) is not None:
            name, index = m.group(1), int(m.group(2))
        elif m.group(4) is not None:
            name, index = m.group(3), int(m.group(4))
        else:
            name, index = m.group(5), int(m.group(6))
    times = _opt_float(row, "times called")
    avg = _opt_float(row, "avg ms", "avg")
    if not typ or avg is None:
        return None
    return OpRow(
        index=index,
        type=typ,
        name=name,
        avg_ms=avg,
        first_ms=_opt_float(row, "first"),
        pct=_opt_float(row, "%", "avg %"),
        times_called=None if times is None else int(times),
        start_ms=_opt_float(row, "start"),
        mem_kb=_opt_float(row, "mem kb"),
    )


def parse_benchmark_model(text: str, source: str = "<benchmark_model output>") -> BenchmarkModelRun:
    """Parse one run's output. InputError (naming ``source``) when no timing is found at all."""
    if not isinstance(text, str):
        raise InputError(f"{source}: expected text, got {type(text).__name__}")
    run = BenchmarkModelRun()
    lines = [_strip(raw) for raw in text.splitlines()]
    count_lines: list[tuple[int | None, dict[str, float], int]] = []  # (min iterations, fields, count)
    pending_iters: int | None = None
    section = ""  # "init" | "runs" | "" (before any profiling section)
    table = ""
    cols: list[str] | None = None
    table_timing: dict[str, float] = {}
    summary: tuple[float, float, float, float] | None = None
    delegates_created: list[str] = []
    applied: str | None = None
    going_to_apply: int | None = None
    flags: dict[str, bool] = {}

    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if m := _SECTION.match(stripped):
            section = "init" if "Initialization" in m.group(1) else "runs"
            table, cols = "", None
            continue
        if m := _TABLE.match(stripped):
            table, cols = m.group(1).strip().lower(), None
            if not section:
                section = "runs"
            continue
        if table:
            cells = _split_row(line)
            hdr = _header(cells)
            if hdr is not None:
                cols = hdr
                continue
            if cols is not None and line.startswith(("\t", " ")) and len(cells) == len(cols):
                if table == "run order":
                    target = run.init_ops if section == "init" else run.ops
                    op = _op_row(cols, cells, len(target))
                    if op is not None:
                        target.append(op)
                        continue
                elif table.startswith("top by"):
                    continue  # the same rows as Run Order, sorted
                elif table.startswith("summary by node type"):
                    if section == "init":
                        continue
                    row = dict(zip(cols, cells, strict=True))
                    run.node_types.append(
                        {
                            "type": row.get("node type", ""),
                            "count": _opt_float(row, "count"),
                            "avg_ms": _opt_float(row, "avg ms"),
                            "pct": _opt_float(row, "avg %"),
                            "times_called": _opt_float(row, "times called"),
                        }
                    )
                    continue
        if m := _COUNT_LINE.match(stripped):
            fields = _timing_fields(m.group(2), source)
            if stripped.startswith("Timings (microseconds)"):
                if section != "init":
                    table_timing = {"count": float(m.group(1)), **fields}
            else:
                count_lines.append((pending_iters, fields, int(m.group(1))))
                pending_iters = None
            table, cols = "", None
            continue
        if stripped.startswith(("Memory (bytes):", "Number of nodes executed")) or re.match(
            r"^\d+ nodes observed$", stripped
        ):
            table, cols = "", None
            continue
        if m := _RUNNING.search(stripped):
            pending_iters = int(m.group(1))
            continue
        if m := _SUMMARY.search(stripped):
            summary = tuple(_f(g, source, "Inference timings") for g in m.groups())  # type: ignore[assignment]
            continue
        if m := _INIT_SESSION.search(stripped):
            run.init_ms = _f(m.group(1), source, "Initialized session")
            continue
        if m := _PEAK.match(stripped):
            run.memory["peak_init"] = float(m.group(1))
            run.memory["peak_overall"] = float(m.group(2))
            continue
        if m := _DELTA.match(stripped):
            run.memory["footprint_delta_init"] = float(m.group(1))
            run.memory["footprint_delta_overall"] = float(m.group(2))
            continue
        if m := _PERIODIC.match(stripped):
            run.memory["peak_periodic"] = float(m.group(1))
            continue
        if m := _GOING_TO_APPLY.search(stripped):
            going_to_apply = int(m.group(1))
            continue
        if m := _APPLIED.search(stripped):
            applied = m.group(1).lower()
            continue
        if m := _DELEGATE_CREATED.search(stripped):
            name = (m.group(1) or m.group(2) or "").lower()
            name = {"delegate for gpu": "gpu", "delegate for nnapi": "nnapi"}.get(name, name)
            delegates_created.append("external" if name == "external" else name)
            continue
        if m := _PARAM.match(stripped):
            key, value = m.group(1).strip(), m.group(2).strip()
            run.params[key] = value
            if key in _THREAD_PARAMS:
                try:
                    run.threads = int(value)
                except ValueError:
                    run.unparsed.append(line)
            if key in _DELEGATE_PARAMS:
                flags[_DELEGATE_PARAMS[key]] = value in ("1", "true")
            if key == "External delegate path" and value:
                flags["external"] = True
            continue
        run.unparsed.append(line)

    _fill_timings(run, count_lines, table_timing, summary, source)
    _fill_memory(run)
    run.delegate = _delegate(delegates_created, applied, going_to_apply, flags)
    return run


def _fill_timings(run: BenchmarkModelRun, count_lines: list[tuple[int | None, dict[str, float], int]],
                  table_timing: dict[str, float], summary: tuple[float, ...] | None,
                  source: str) -> None:  # fmt: skip
    regular: tuple[dict[str, float], int] | None = None
    warmup: tuple[dict[str, float], int] | None = None
    if count_lines:
        # The tool runs a warm-up phase ("at least 1 iterations") and then the regular runs; the last count
        # line is the regular one. A lone count line is the regular run.
        regular = (count_lines[-1][1], count_lines[-1][2])
        if len(count_lines) >= 2:
            warmup = (count_lines[-2][1], count_lines[-2][2])
        run.timing_source = "summary"
    elif table_timing:
        fields = dict(table_timing)
        regular = (fields, int(fields.pop("count")))
        run.timing_source = "op-profile-timings"
    elif summary is None:
        raise InputError(
            f"{source}: not benchmark_model output: no timing line ('count=N first=... avg=...', "
            "'Timings (microseconds): ...' or 'Inference timings in us: ...') found",
            hint="pass the full stdout of TFLite's benchmark_model (or its logcat lines)",
        )
    if regular is not None:
        fields, count = regular
        run.count = count
        us = {k: v / 1000.0 for k, v in fields.items()}
        one = us.get("curr") if count == 1 else None  # a one-sample line prints only curr=
        run.avg_ms = us.get("avg", one)
        run.std_ms = us.get("std", 0.0 if count == 1 else None)
        run.min_ms = us.get("min", one)
        run.max_ms = us.get("max", one)
        run.percentiles_ms = {k: v for k, v in us.items() if k in ("p5", "median", "p95")}
    # first_ms is the tool's "First inference" (the cold first run, the warm-up phase's first); without the
    # summary line, the warm-up line's first (or lone curr), then the regular runs' own first.
    if warmup is not None:
        fields, count = warmup
        run.warmup_count = count
        one = fields.get("curr") if count == 1 else None
        warm_avg, warm_first = fields.get("avg", one), fields.get("first", one)
        run.warmup_avg_ms = None if warm_avg is None else warm_avg / 1000.0
        run.first_ms = None if warm_first is None else warm_first / 1000.0
    if summary is not None:
        init_us, first_us, warm_us, avg_us = summary
        run.init_ms = init_us / 1000.0
        run.first_ms = first_us / 1000.0
        if run.warmup_avg_ms is None:
            run.warmup_avg_ms = warm_us / 1000.0
        if run.avg_ms is None:
            run.avg_ms = avg_us / 1000.0
            run.timing_source = run.timing_source or "summary"
    if run.first_ms is None and regular is not None:
        fields, count = regular
        first = fields.get("first", fields.get("curr") if count == 1 else None)
        run.first_ms = None if first is None else first / 1000.0


def _fill_memory(run: BenchmarkModelRun) -> None:
    for kind in ("peak_overall", "peak_periodic", "footprint_delta_overall"):
        if kind in run.memory:
            run.memory_mb, run.memory_kind = run.memory[kind], kind
            return


def _delegate(
    created: list[str], applied: str | None, going: int | None, flags: dict[str, bool]
) -> str | None:
    """The delegate the timed runs used: an applied one by name, else ``cpu`` when none was applied."""
    if applied:
        return applied if applied != "external" else "external"
    explicit = [k for k, on in flags.items() if on and k != "xnnpack"]
    if explicit:
        return explicit[0]
    if "xnnpack" in created or flags.get("xnnpack"):
        return "xnnpack"
    non_cpu = [c for c in created if c != "xnnpack"]
    if non_cpu:
        return non_cpu[0]
    if going == 0 or created == [] and going is not None:
        return "cpu"
    return None
