"""Device configs: one YAML file per target device, validated on load with errors naming file and field."""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hwnas.errors import ConfigError, InputError

# Upper bounds at the boundary: a YAML typo (warmup: 1e30, max_seconds: .inf, batch_size: 1e12) must fail
# when the file is read, not hang or exhaust memory hours later. Each is far above any sensible set-up.
MAX_THREADS = 1024
MAX_BATCH = 65536
MAX_REPEATS = 100_000
MAX_SECONDS = 3600.0

BACKENDS = ("onnxruntime-cpu", "torch-cpu", "nvml-gpu", "jetson", "android-tflite", "tpu")


@dataclass(frozen=True)
class RepeatPolicy:
    """Warm-up, then repeat until the 95 % CI half-width is under ``target_ci_rel`` or a cap is hit."""

    warmup: int = 10
    min_repeats: int = 10
    max_repeats: int = 200
    target_ci_rel: float = 0.02
    max_seconds: float = 5.0
    # Units timed alone cycle over copies of themselves (separate weights) adding up to at least this many
    # MiB, so that each run reads its weights from memory as it does inside a model; 0: one copy (its
    # weights stay in cache across repeats, which makes memory-bound layers look faster than in a model).
    cold_weights_mib: float = 0.0


@dataclass(frozen=True)
class PowerConfig:
    """How power is read: ``sampler`` names the source (rapl, nvml, ina3221, tegrastats, battery, none)."""

    sampler: str = "none"
    sampling_hz: float = 10.0
    rails: tuple[str, ...] = ()
    idle_power_mw: float | None = None
    # Energy windows last at least max(min_window_s, 10 x the sensor's polled update period); 1 s by
    # default (hwnas.profilers.power.energy). Lower it only for tests of the measurement path itself.
    min_window_s: float = 1.0


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    backend: str
    description: str = ""
    threads: int | None = None
    batch_size: int = 1
    connection: dict[str, Any] = field(default_factory=dict)
    repeat: RepeatPolicy = field(default_factory=RepeatPolicy)
    power: PowerConfig = field(default_factory=PowerConfig)
    peak_flops: float | None = None  # FLOP/s, for roofline estimates
    memory_bandwidth_bytes_s: float | None = None  # bytes/s, for roofline estimates
    allocator: str = "default"  # "warm": a profile keeps freed memory in the process (profilers/allocator.py)
    source_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _backend_module_exists(name: Any) -> bool:
    """A backend outside BACKENDS counts when its module exists (``hwnas.profilers.backend`` naming
    convention: ``my-npu`` -> ``hwnas/profilers/my_npu.py``); found by file, nothing is imported."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        return False
    return (Path(__file__).resolve().parent / "profilers" / (name.replace("-", "_") + ".py")).is_file()


def config_dirs() -> list[Path]:
    """Where device configs are looked up: ``$HWNAS_DEVICE_CONFIGS`` (os.pathsep-separated), then the
    repository's ``device_configs/``."""
    dirs = [Path(p) for p in os.environ.get("HWNAS_DEVICE_CONFIGS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "device_configs")
    return dirs


def list_configs() -> list[Path]:
    seen: dict[str, Path] = {}
    for d in config_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                seen.setdefault(p.stem, p)
    return list(seen.values())


def load_device(name_or_path: str) -> DeviceConfig:
    """Load a device config by name (``local-cpu``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise InputError(f"device config {path}: file not found", hint="check the path, or give a "
                             "device name (see `hwnas devices`)")  # fmt: skip
        return load_config_file(path)
    for p in list_configs():
        if p.stem == name_or_path:
            return load_config_file(p)
    known = ", ".join(p.stem for p in list_configs()) or "none"
    raise InputError(f"unknown device {name_or_path!r}", hint=f"known devices: {known}; or pass a YAML path")


MAX_CONFIG_BYTES = 1 << 20  # a device config is a few hundred bytes; a huge file is the wrong file


def load_config_file(path: Path) -> DeviceConfig:
    """Read and validate one YAML file; every file-system or encoding problem is a ConfigError."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"device config {path}: is a directory, not a YAML file",
                          hint="pass the path of a .yaml file, or a device name")  # fmt: skip
    try:
        raw = path.read_bytes()
    except PermissionError as exc:
        raise ConfigError(f"device config {path}: not readable (permission denied)",
                          hint="fix the file's permissions") from exc  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"device config {path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"device config {path}: {len(raw)} bytes, too large for a device config",
                          hint="pass the device's YAML file")  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"device config {path}: not UTF-8 text (byte {exc.start})",
                          hint="save the file as UTF-8") from exc  # fmt: skip
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: YAML nested too deeply") from exc
    return parse_config(data, str(path))


def _fail(src: str, fld: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{src}: field '{fld}': expected {expected}, got {got!r}")


def _number(src: str, fld: str, value: Any, *, lo: float | None = None, hi: float | None = None,
            integer: bool = False, expected: str | None = None) -> float | int:  # fmt: skip
    if isinstance(value, str):  # PyYAML reads 9.6e10 (no sign in the exponent) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)  # .inf / .nan would make a loop or a budget never end
    if integer:
        ok = ok and float(value).is_integer()
    if ok and lo is not None:
        ok = value > lo if not integer else value >= lo
    if ok and hi is not None:
        ok = value <= hi if integer else value < hi
    if not ok:
        what = expected or ("an integer" if integer else "a number")
        raise _fail(src, fld, what, value)
    return int(value) if integer else float(value)


def parse_config(data: Any, src: str = "<config>") -> DeviceConfig:
    """Validate a parsed YAML mapping and build a DeviceConfig."""
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: expected a mapping of fields at the top level, got {type(data).__name__}")
    allowed = {
        "name", "backend", "description", "threads", "batch_size", "connection", "repeat", "power",
        "peak_flops", "memory_bandwidth_bytes_s", "allocator",
    }  # fmt: skip
    extra = sorted(set(data) - allowed)
    if extra:
        raise ConfigError(f"{src}: unknown field(s) {extra}; expected some of {sorted(allowed)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(src, "name", "a non-empty string", name)
    backend = data.get("backend")
    if backend not in BACKENDS and not _backend_module_exists(backend):
        raise _fail(src, "backend", f"one of {list(BACKENDS)} or a profilers/<backend>.py module", backend)
    threads = data.get("threads")
    if threads is not None:
        threads = _number(src, "threads", threads, lo=1, hi=MAX_THREADS, integer=True,
                          expected=f"a positive integer (at most {MAX_THREADS})")  # fmt: skip
    batch = _number(src, "batch_size", data.get("batch_size", 1), lo=1, hi=MAX_BATCH, integer=True,
                    expected=f"a positive integer (at most {MAX_BATCH})")  # fmt: skip
    connection = data.get("connection", {}) or {}
    if not isinstance(connection, dict):
        raise _fail(src, "connection", "a mapping (e.g. {serial: ABC123})", connection)

    rep = data.get("repeat", {}) or {}
    if not isinstance(rep, dict):
        raise _fail(src, "repeat", "a mapping", rep)
    unknown_rep = sorted(set(rep) - set(RepeatPolicy.__dataclass_fields__))
    if unknown_rep:
        raise ConfigError(f"{src}: unknown field(s) repeat.{unknown_rep}")
    d = RepeatPolicy()
    repeat = RepeatPolicy(
        warmup=_number(src, "repeat.warmup", rep.get("warmup", d.warmup), lo=0, hi=MAX_REPEATS,
                       integer=True, expected=f"an integer in 0..{MAX_REPEATS}"),
        min_repeats=_number(src, "repeat.min_repeats", rep.get("min_repeats", d.min_repeats), lo=3,
                            hi=MAX_REPEATS, integer=True, expected=f"an integer in 3..{MAX_REPEATS}"),
        max_repeats=_number(src, "repeat.max_repeats", rep.get("max_repeats", d.max_repeats), lo=3,
                            hi=MAX_REPEATS, integer=True, expected=f"an integer in 3..{MAX_REPEATS}"),
        target_ci_rel=_number(src, "repeat.target_ci_rel", rep.get("target_ci_rel", d.target_ci_rel), lo=0,
                              hi=1, expected="a fraction in (0, 1), e.g. 0.02 for ±2 %"),
        max_seconds=_number(src, "repeat.max_seconds", rep.get("max_seconds", d.max_seconds), lo=0,
                            hi=MAX_SECONDS, expected=f"seconds in (0, {MAX_SECONDS:g})"),
        cold_weights_mib=_number(src, "repeat.cold_weights_mib", rep.get("cold_weights_mib", 0.0), lo=-1e-12,
                                 expected="a number of MiB >= 0 (e.g. the last-level cache size)"),
    )  # fmt: skip
    if repeat.max_repeats < repeat.min_repeats:
        raise _fail(
            src, "repeat.max_repeats", f"an integer >= min_repeats ({repeat.min_repeats})", repeat.max_repeats
        )

    pw = data.get("power", {}) or {}
    if not isinstance(pw, dict):
        raise _fail(src, "power", "a mapping", pw)
    samplers = ("none", "rapl", "nvml", "ina3221", "tegrastats", "battery")
    sampler = pw.get("sampler", "none")
    if sampler not in samplers:
        raise _fail(src, "power.sampler", f"one of {list(samplers)}", sampler)
    rails = pw.get("rails", []) or []
    if not isinstance(rails, list) or not all(isinstance(r, str) for r in rails):
        raise _fail(src, "power.rails", "a list of rail names", rails)
    idle = pw.get("idle_power_mw")
    power = PowerConfig(
        sampler=sampler,
        sampling_hz=_number(src, "power.sampling_hz", pw.get("sampling_hz", 10.0), lo=0, hi=1e5,
                            expected="a rate in Hz in (0, 100000)"),
        rails=tuple(rails),
        idle_power_mw=None if idle is None else _number(src, "power.idle_power_mw", idle, lo=-1e-12,
                                                         expected="a number of milliwatts >= 0"),
        min_window_s=_number(src, "power.min_window_s", pw.get("min_window_s", 1.0), lo=0,
                             expected="a positive number of seconds (default 1)"),
    )  # fmt: skip
    allocator = data.get("allocator", "default")
    if allocator not in ("default", "warm"):
        raise _fail(src, "allocator", "'default' or 'warm'", allocator)
    peak = data.get("peak_flops")
    bw = data.get("memory_bandwidth_bytes_s")
    return DeviceConfig(
        name=name,
        backend=backend,
        description=str(data.get("description", "")),
        threads=threads,
        batch_size=batch,
        connection=connection,
        repeat=repeat,
        power=power,
        peak_flops=None if peak is None else _number(src, "peak_flops", peak, lo=0, expected="FLOP/s > 0"),
        memory_bandwidth_bytes_s=None
        if bw is None
        else _number(src, "memory_bandwidth_bytes_s", bw, lo=0, expected="bytes/s > 0"),
        allocator=allocator,
        source_path=src,
    )
