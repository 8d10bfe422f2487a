"""Parse ``tegrastats`` output, every format from L4T 28 (TX1) to JetPack 6 (Orin), by structure.

A line is a sequence of fields; each is recognised by its shape, not its position:

- an optional leading ``MM-DD-YYYY HH:MM:SS`` timestamp (``--interval`` logs of JetPack 5+);
- ``RAM used/totalMB (lfb NxSIZE)``, ``SWAP used/totalMB (cached NMB)``, ``IRAM used/totalkB(lfb NkB)``;
- ``CPU [u%@MHz,...,off]`` (one entry per core, ``off`` for an offline core) or the L4T 28 form
  ``cpu [u%,u%,...]@MHz`` (one clock for all cores);
- engines with a load: ``EMC_FREQ u%@MHz``, ``GR3D_FREQ u%@MHz``, per-GPC arrays ``GR3D_FREQ u%@[f0,f1]``,
  no clock when not root (``GR3D_FREQ 0%``), the old names ``EMC``/``GR3D``; engines switched ``off``;
  clock-only engines (``APE 25``, ``NVDEC 1100``: MHz by NVIDIA's tegrastats documentation);
- ``MTS fg u% bg u%``; temperatures ``NAME@41.5C``;
- power rails ``NAME current/average`` in mW: ``5542mW/5542mW`` on JetPack 5+, bare numbers before (the
  same mW, per NVIDIA's documentation; the reading says so under ``extra.rail_units``). ``NC`` channels
  (not connected) are skipped.

Anything else is kept, verbatim, under ``unparsed``; nothing is dropped. A line without a ``RAM`` field, or
a known field whose shape is broken, is a :class:`TegrastatsParseError` naming the line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import InputError
from hwnas.profilers.parsers.jetson_rails import total_input_mw

_NUM = r"\d+(?:\.\d+)?"
_TIMESTAMP = re.compile(r"(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})\s+")
_MEM = re.compile(r"(RAM|SWAP|IRAM) (\d+)/(\d+)(kB|MB|GB)(?:\s*\((lfb|cached) (\d+)(?:x(\d+))?(kB|MB|GB)\))?")
_CPU = re.compile(r"(CPU|cpu) \[([^\]]*)\](?:@(\d+))?")
_LOAD = re.compile(r"([A-Z][A-Z0-9_]*) (\d+)%(?:@(\d+|\[[\d,]*\]))?(?=\s|$)")
_OFF = re.compile(r"([A-Z][A-Z0-9_]*) off(?=\s|$)")
_MTS = re.compile(r"MTS fg (\d+)% bg (\d+)%")
_TEMP = re.compile(rf"([A-Za-z][\w]*)@(-?{_NUM})C(?=\s|$)")
_RAIL = re.compile(r"([A-Za-z][\w]*) (\d+)(mW)?/(\d+)(mW)?(?=\s|$)")
_CLOCK = re.compile(r"([A-Z][A-Z0-9_]*) (\d+)(?=\s|$)")
_UNKNOWN = re.compile(r"(\S+)(?: ([^\sA-Za-z]\S*))?")
# Fields hwnas knows by name: a broken one of these is an error, not an unknown field.
_KNOWN = re.compile(r"(RAM|SWAP|IRAM|CPU|cpu|MTS|EMC_FREQ|GR3D_FREQ|EMC|GR3D)(?=[\s\[]|$)")
# Engines whose bare number is a clock in MHz (tegrastats documentation: APE, NVENC, NVDEC, NVJPG, ...).
_CLOCK_ENGINES = re.compile(r"(APE|NVENC\d*|NVDEC\d*|NVJPG\d*|MSENC|VIC|OFA|NVDLA\d*|PVA\d*|SE)")
_TO_MB = {"kB": 1 / 1024, "MB": 1.0, "GB": 1024.0}  # tegrastats counts in binary units (3956MB of 4 GB)
_GPU_NAMES = ("GR3D_FREQ", "GR3D")
_EMC_NAMES = ("EMC_FREQ", "EMC")
CORE_KEYS = ("timestamp", "rails_mw", "rails_avg_mw", "total_input_mw", "total_rule", "gpu_util_pct",
             "gpu_mhz", "cpu", "ram_used_mb", "ram_total_mb", "temps_c", "unparsed")  # fmt: skip


class TegrastatsParseError(InputError):
    """A line that is not tegrastats output, or a known field with a broken shape."""


@dataclass
class TegrastatsReading:
    """One tegrastats line. Power in mW, clocks in MHz, memory in MB, temperatures in °C."""

    line: int
    timestamp: str | None = None
    rails_mw: dict[str, float] = field(default_factory=dict)
    rails_avg_mw: dict[str, float] = field(default_factory=dict)
    total_input_mw: float | None = None
    total_rule: str = ""
    gpu_util_pct: float | None = None
    gpu_mhz: list[float] | None = None
    cpu: list[dict[str, float | None] | None] | None = None
    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    temps_c: dict[str, float] = field(default_factory=dict)
    unparsed: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line, "timestamp": self.timestamp, "rails_mw": self.rails_mw,
            "rails_avg_mw": self.rails_avg_mw, "total_input_mw": self.total_input_mw,
            "total_rule": self.total_rule, "gpu_util_pct": self.gpu_util_pct, "gpu_mhz": self.gpu_mhz,
            "cpu": self.cpu, "ram_used_mb": self.ram_used_mb, "ram_total_mb": self.ram_total_mb,
            "temps_c": self.temps_c, "unparsed": self.unparsed, "extra": self.extra,
        }  # fmt: skip


def _fail(lineno: int, what: str, text: str, source: str) -> TegrastatsParseError:
    return TegrastatsParseError(
        f"{source}:{lineno}: {what}: {text.strip()[:120]!r}",
        hint="expected tegrastats output, e.g. 'RAM 936/3964MB (lfb 366x4MB) CPU [10%@102,off] "
        "EMC_FREQ 0%@204 GR3D_FREQ 0%@76 GPU@28C VDD_IN 920/920'",
    )


def _cpu_entries(body: str, shared_mhz: str | None, lineno: int, source: str) -> list[dict | None]:
    cores: list[dict | None] = []
    for raw in body.split(","):
        entry = raw.strip()
        if entry == "off":
            cores.append(None)
            continue
        m = re.fullmatch(r"(\d+)%(?:@(\d+))?", entry)
        if not m:
            raise _fail(lineno, f"CPU entry {entry!r} is not 'N%@MHz', 'N%' or 'off'", body, source)
        mhz = m.group(2) or shared_mhz
        cores.append({"util_pct": float(m.group(1)), "mhz": None if mhz is None else float(mhz)})
    return cores


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    """Insert without overwriting: a repeated name gets ``#2``, ``#3`` ..."""
    k, n = key, 1
    while k in d:
        n += 1
        k = f"{key}#{n}"
    d[k] = value


def parse_line(text: str, lineno: int = 1, source: str = "<tegrastats>") -> TegrastatsReading:
    """One tegrastats line into a :class:`TegrastatsReading` (see the module docstring)."""
    r = TegrastatsReading(line=lineno)
    s = text.strip()
    pos = 0
    m = _TIMESTAMP.match(s)
    if m:
        mo, dd, yy, hh, mi, ss = m.groups()
        r.timestamp = f"{yy}-{mo}-{dd}T{hh}:{mi}:{ss}"
        pos = m.end()
    engines: dict[str, Any] = {}
    bare_rails = False
    skipped_rails = 0
    while pos < len(s):
        if s[pos].isspace():
            pos += 1
            continue
        if (m := _MEM.match(s, pos)) is not None:
            kind, used, total, unit = m.group(1), float(m.group(2)), float(m.group(3)), m.group(4)
            f = _TO_MB[unit]
            if kind == "RAM":
                r.ram_used_mb, r.ram_total_mb = used * f, total * f
            else:
                r.extra[f"{kind.lower()}_used_mb"] = used * f
                r.extra[f"{kind.lower()}_total_mb"] = total * f
            if m.group(5) == "lfb":
                blocks = int(m.group(6)) if m.group(7) else 1
                block = f"{m.group(7) or m.group(6)}{m.group(8)}"
                r.extra[f"{kind.lower()}_lfb"] = {"blocks": blocks, "block": block}
            elif m.group(5) == "cached":
                r.extra["swap_cached_mb"] = float(m.group(6)) * _TO_MB[m.group(8)]
        elif (m := _CPU.match(s, pos)) is not None:
            r.cpu = _cpu_entries(m.group(2), m.group(3), lineno, source)
        elif (m := _MTS.match(s, pos)) is not None:
            r.extra["mts_fg_pct"], r.extra["mts_bg_pct"] = float(m.group(1)), float(m.group(2))
        elif (m := _LOAD.match(s, pos)) is not None:
            name, util, clk = m.group(1), float(m.group(2)), m.group(3)
            mhz = (
                None
                if clk is None
                else (
                    [float(x) for x in clk.strip("[]").split(",") if x]
                    if clk.startswith("[")
                    else [float(clk)]
                )
            )
            if name in _GPU_NAMES:
                r.gpu_util_pct, r.gpu_mhz = util, mhz
            elif name in _EMC_NAMES:
                r.extra["emc_util_pct"] = util
                r.extra["emc_mhz"] = None if mhz is None else (mhz[0] if len(mhz) == 1 else mhz)
            else:
                engines[name] = {"util_pct": util, "mhz": mhz}
        elif (m := _OFF.match(s, pos)) is not None:
            name = m.group(1)
            if name in _GPU_NAMES:
                r.gpu_util_pct, r.gpu_mhz = 0.0, None
                r.extra["gpu_state"] = "off"
            else:
                engines[name] = "off"
        elif (m := _TEMP.match(s, pos)) is not None:
            _put(r.temps_c, m.group(1), float(m.group(2)))
        elif (m := _RAIL.match(s, pos)) is not None:
            name = m.group(1)
            if (m.group(3) is None) != (m.group(5) is None):
                raise _fail(lineno, f"rail {name}: current and average disagree on their unit", m.group(0),
                            source)  # fmt: skip
            bare_rails = bare_rails or m.group(3) is None
            if name == "NC":
                skipped_rails += 1
            else:
                _put(r.rails_mw, name, float(m.group(2)))
                _put(r.rails_avg_mw, name, float(m.group(4)))
        elif (m := _CLOCK.match(s, pos)) is not None and _CLOCK_ENGINES.fullmatch(m.group(1)):
            engines[m.group(1)] = {"util_pct": None, "mhz": [float(m.group(2))]}
        elif (m := _KNOWN.match(s, pos)) is not None:
            raise _fail(lineno, f"field {m.group(1)} is not in a form tegrastats prints", s[pos:pos + 60],
                        source)  # fmt: skip
        else:
            m = _UNKNOWN.match(s, pos)
            assert m is not None
            name = m.group(1)
            _put(r.unparsed, re.split(r"[@/\[(]", name)[0] or name, m.group(0))
        pos = m.end()
    if r.ram_total_mb is None:
        raise _fail(lineno, "no RAM field (every tegrastats line starts with 'RAM used/totalMB')", s, source)
    if engines:
        r.extra["engines"] = engines
    if bare_rails:
        r.extra["rail_units"] = "printed without a unit: mW, as NVIDIA documents for this tegrastats"
    if skipped_rails:
        r.extra["skipped_rails"] = {"NC": skipped_rails}
    r.total_input_mw, r.total_rule = total_input_mw(r.rails_mw)
    return r


def parse(text: str | Iterable[str], source: str = "<tegrastats>") -> list[TegrastatsReading]:
    """Every non-empty line of a tegrastats log; line numbers count from 1 in the file."""
    # Only \n ends a line (str.splitlines would also split on form feeds and other separators, shifting
    # the line numbers an error reports); a \r before it is dropped.
    lines = text.split("\n") if isinstance(text, str) else list(text)
    return [parse_line(ln.rstrip("\r"), i, source) for i, ln in enumerate(lines, 1) if ln.strip()]


def to_measurements(readings: list[dict[str, Any]], device: str, source_name: str,
                    fingerprint_id: str) -> list[Any]:  # fmt: skip
    """Store records for parsed readings: one ``power_mw`` per rail per line (and the total input).

    A log is a trace, not a model: ``model_id`` is ``tegrastats:<file>``, ``layer_index`` the line number,
    ``layer_key`` ``rail:<name>`` (``rail:total_input`` for the board's total, with its rule in ``extra``).
    """
    from hwnas.store.records import Measurement

    out: list[Measurement] = []
    for r in readings:
        base = dict(device=device, fingerprint_id=fingerprint_id, backend="jetson",
                    model_id=f"tegrastats:{source_name}", scope="model", metric="power_mw",
                    layer_index=int(r["line"]), source="tegrastats")  # fmt: skip
        for name, mw in r["rails_mw"].items():
            out.append(Measurement(**base, value=float(mw), layer_key=f"rail:{name}", layer_name=name,
                                   extra={"avg_mw": r["rails_avg_mw"].get(name),
                                          "timestamp": r["timestamp"]}))  # fmt: skip
        if r["total_input_mw"] is not None:
            out.append(Measurement(**base, value=float(r["total_input_mw"]), layer_key="rail:total_input",
                                   layer_name="total_input",
                                   extra={"rule": r["total_rule"], "timestamp": r["timestamp"],
                                          "gpu_util_pct": r["gpu_util_pct"], "gpu_mhz": r["gpu_mhz"],
                                          "ram_used_mb": r["ram_used_mb"]}))  # fmt: skip
    return out


@dataclass
class TegrastatsLog:
    """A whole log: ``to_dict()`` is the JSON list ``hwnas parse tegrastats --json`` prints."""

    readings: list[TegrastatsReading]

    def to_dict(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.readings]


def parse_log(text: str, source: str = "<tegrastats>") -> TegrastatsLog:
    """The ``hwnas parse tegrastats`` entry point."""
    return TegrastatsLog(parse(text, source))
