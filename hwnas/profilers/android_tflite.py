"""An Android phone over adb running TFLite's stock ``benchmark_model`` binary (no root needed).

Builder: :class:`~hwnas.profilers.tflite_artefacts.TfliteBuilder` (a ``.tflite`` per unit and for the whole
model). Runner: pushes the user's ``benchmark_model`` (``connection.benchmark_model``) and each file to
``connection.remote_dir``, runs

    [taskset <affinity>] <remote_dir>/benchmark_model --graph=<file> --num_threads=<threads>
        --enable_op_profiling=true --warmup_runs=<warmup> --num_runs=<n> --max_secs=<s> <delegate flags>

``connection.invocations`` times per measurement (each invocation's average is one sample, its run count
``calls_per_sample``), parses the output (``hwnas.profilers.parsers.benchmark_model``) and, for the whole
model, maps the per-op table back to LayerSpecs (``hwnas.profilers.tflite_ops``) as
``in_model_latency_ms`` records. Every argument is quoted (``hwnas.profilers.adb``). A phone that
disconnects stops the profile with what was stored kept; the same command resumes.

The fingerprint reads ``getprop`` (model, SoC, Android version, build), CPU frequencies and governors from
sysfs, and the SHA-256 of the ``benchmark_model`` binary; the battery power sampler (``power.sampler:
battery``) is in ``hwnas.profilers.power.android_battery``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig, RepeatPolicy
from hwnas.errors import InputError, MeasurementError
from hwnas.profilers.adb import AdbSettings, AdbShell, shared_shell
from hwnas.profilers.backend import (
    Backend,
    Breakdown,
    RawTiming,
    Runner,
    register_backend,
    register_fingerprint,
    register_power_sampler,
)
from hwnas.profilers.parsers.benchmark_model import BenchmarkModelRun, parse_benchmark_model
from hwnas.profilers.tflite_artefacts import TfliteArtefact, TfliteBuilder

# Test seam: a transport (adb-shell BaseTransport) used instead of USB/TCP for every connection.
TRANSPORT_OVERRIDE: dict[str, Any] = {}

_DELEGATE_FLAGS = {
    "cpu": ["--use_xnnpack=false"],
    "xnnpack": ["--use_xnnpack=true"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
}


def shell_for(config: DeviceConfig) -> AdbShell:
    """The process-wide connection to ``config``'s phone."""
    return shared_shell(AdbSettings.from_config(config), TRANSPORT_OVERRIDE.get("transport"))


def benchmark_command(settings: AdbSettings, remote_binary: str, remote_graph: str, threads: int, *,
                      warmup: int, num_runs: int, max_secs: float,
                      op_profiling: bool) -> list[str]:  # fmt: skip
    """The benchmark_model argument list (quoted later, never joined by hand)."""
    argv = [
        remote_binary,
        f"--graph={remote_graph}",
        f"--num_threads={int(threads)}",
        f"--warmup_runs={int(warmup)}",
        f"--num_runs={int(num_runs)}",
        f"--max_secs={float(max_secs):g}",
        f"--enable_op_profiling={'true' if op_profiling else 'false'}",
        *_DELEGATE_FLAGS[settings.delegate],
    ]
    if settings.affinity:
        argv = ["taskset", settings.affinity, *argv]
    return argv


class AndroidRunner(Runner):
    """Times artefacts with benchmark_model on the phone: its own wall-clock timer, on the phone (the
    host's CPU clock means nothing there, so ``wall`` is the only clock; records say ``benchmark_model``)."""

    clocks = ("wall",)

    def __init__(self, config: DeviceConfig, *, threads: int, clock: str | None = None) -> None:
        super().__init__(config, threads=threads, clock=clock)
        self.settings = AdbSettings.from_config(config)
        self.binary = Path(self.settings.benchmark_model).expanduser()
        self.remote_binary = f"{self.settings.remote_dir.rstrip('/')}/benchmark_model"
        self._pushed: set[str] = set()

    @property
    def source(self) -> str:
        return "benchmark_model"

    @property
    def shell(self) -> AdbShell:
        return shell_for(self.config)

    @contextmanager
    def session(self) -> Iterator[None]:
        if not self.binary.is_file():
            raise InputError(
                f"benchmark_model binary {self.binary} (connection.benchmark_model) does not exist",
                hint="download the stock binary for the phone's ABI (README: 'Android phones'), e.g. "
                "android_aarch64_benchmark_model, and give its path",
            )
        self.shell.run(["mkdir", "-p", self.settings.remote_dir])
        self.shell.push(self.binary, self.remote_binary, mode=0o755)
        self._pushed.clear()
        yield

    def _remote(self, art: TfliteArtefact) -> str:
        remote = f"{self.settings.remote_dir.rstrip('/')}/{art.path.name}"
        if remote not in self._pushed:
            self.shell.push(art.path, remote)
            self._pushed.add(remote)
        return remote

    def invoke(self, art: TfliteArtefact, *, warmup: int, num_runs: int, max_secs: float,
               op_profiling: bool) -> BenchmarkModelRun:  # fmt: skip
        """One benchmark_model run on the phone, parsed."""
        argv = benchmark_command(self.settings, self.remote_binary, self._remote(art), self.threads,
                                 warmup=warmup, num_runs=num_runs, max_secs=max_secs,
                                 op_profiling=op_profiling)  # fmt: skip
        text = self.shell.run(argv, timeout_s=max(60.0, 4 * max_secs + 60.0))
        try:
            return parse_benchmark_model(text, f"benchmark_model on {art.path.name}")
        except InputError as exc:
            raise MeasurementError(f"benchmark_model gave no timings for {art.path.name}: {exc.message}",
                                   hint=text.strip()[-300:] or None) from exc  # fmt: skip

    def time(self, artefact: TfliteArtefact, mode: str, policy: RepeatPolicy) -> RawTiming:
        t0 = time.perf_counter()
        samples, counts, runs = [], [], []
        for _ in range(self.settings.invocations):
            run = self.invoke(artefact, warmup=policy.warmup, num_runs=max(policy.min_repeats, 10),
                              max_secs=policy.max_seconds,
                              op_profiling=self.settings.op_profiling)  # fmt: skip
            if run.avg_ms is None or not run.count:
                raise MeasurementError(f"benchmark_model printed no average for {artefact.path.name}")
            samples.append(run.avg_ms)
            counts.append(run.count)
            runs.append(run)
        last = runs[-1]
        readings = {"invocations": len(runs), "runs_per_invocation": counts,
                    "std_ms": [r.std_ms for r in runs], "min_ms": [r.min_ms for r in runs],
                    "max_ms": [r.max_ms for r in runs], "first_ms": last.first_ms, "init_ms": last.init_ms,
                    "memory_mb": last.memory_mb, "memory_kind": last.memory_kind, "delegate": last.delegate,
                    "op_profiling": self.settings.op_profiling}  # fmt: skip
        return RawTiming(tuple(samples), self.source, calls_per_sample=min(counts), warmup=policy.warmup,
                         stop_reason=f"{len(runs)} benchmark_model invocations",
                         elapsed_s=time.perf_counter() - t0, readings=readings)  # fmt: skip

    def run_for(self, artefact: TfliteArtefact, mode: str, *, min_runs: int, min_seconds: float) -> int:
        run = self.invoke(artefact, warmup=0, num_runs=max(min_runs, 1), max_secs=max(min_seconds, 1.0) * 4,
                          op_profiling=False)  # fmt: skip
        return int(run.count or min_runs)

    def breakdown(self, artefact: TfliteArtefact, model: Any, mode: str) -> Breakdown | None:
        from hwnas.profilers.tflite_ops import map_ops

        run = self.invoke(artefact, warmup=self.config.repeat.warmup,
                          num_runs=max(self.config.repeat.min_repeats, 10),
                          max_secs=self.config.repeat.max_seconds, op_profiling=True)  # fmt: skip
        if not run.ops:
            return None
        return ops_breakdown(run, [la.name for la in model.spec.layers], artefact.names, map_ops)


def ops_breakdown(run: BenchmarkModelRun, layer_names: list[str], keras_names: dict[str, str],
                  mapper: Any = None) -> Breakdown:  # fmt: skip
    """The per-op table of one run charged to layers: each op's average to the first layer it names."""
    if mapper is None:
        from hwnas.profilers.tflite_ops import map_ops as mapper
    mapping = mapper([op.name for op in run.ops], layer_names, keras_names)
    per_layer: dict[int, list[float]] = {}
    kernels: dict[int, list[str]] = {}
    unmapped = 0.0
    for op, idx in zip(run.ops, mapping.layers, strict=True):
        ms = float(op.avg_ms or 0.0)
        if not idx:
            unmapped += ms
            continue
        per_layer.setdefault(idx[0], [0.0])[0] += ms
        kernels.setdefault(idx[0], []).append(f"{op.type}:{op.index}")
    return Breakdown(per_layer, kernels, [unmapped], "benchmark_model-op-profiling")


# --- fingerprint -------------------------------------------------------------------------------------------
_PROPS = {
    "ro.product.model": "model",
    "ro.product.manufacturer": "manufacturer",
    "ro.product.device": "device",
    "ro.soc.model": "soc",
    "ro.soc.manufacturer": "soc_manufacturer",
    "ro.board.platform": "platform",
    "ro.hardware": "hardware",
    "ro.product.cpu.abi": "abi",
    "ro.build.version.release": "android",
    "ro.build.version.sdk": "sdk",
    "ro.build.fingerprint": "build",
}
_GETPROP = re.compile(r"^\[([^\]]+)\]: \[(.*)\]\s*$")


def parse_getprop(text: str) -> dict[str, str]:
    """``[key]: [value]`` lines of ``getprop`` → a dict (other lines ignored)."""
    out = {}
    for line in text.splitlines():
        m = _GETPROP.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def phone_state(shell: AdbShell) -> dict[str, Any]:
    """getprop fields and per-CPU governor / current / max frequency (kHz), as read now."""
    props = parse_getprop(shell.run(["getprop"]))
    script = ("for c in /sys/devices/system/cpu/cpu[0-9]*; do echo \"$c $(cat $c/cpufreq/scaling_governor "
              "2>/dev/null) $(cat $c/cpufreq/scaling_cur_freq 2>/dev/null) $(cat $c/cpufreq/cpuinfo_max_freq "
              "2>/dev/null)\"; done")  # fmt: skip
    cpus: dict[str, dict[str, Any]] = {}
    for line in shell.run(["sh", "-c", script], check=False).splitlines():
        parts = line.split()
        if parts and parts[0].startswith("/sys/devices/system/cpu/cpu"):
            name = parts[0].rsplit("/", 1)[-1]
            vals = parts[1:] + [None] * 3
            cpus[name] = {"governor": vals[0], "cur_khz": _int(vals[1]), "max_khz": _int(vals[2])}
    return {"props": {v: props.get(k) for k, v in _PROPS.items()}, "cpus": cpus}


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fingerprint(config: DeviceConfig, versions: dict[str, str | None], *, threads: int) -> Any:
    from hwnas.store.records import Fingerprint

    s = AdbSettings.from_config(config)
    state = phone_state(shell_for(config))
    cpus = state["cpus"]
    fields = {
        "backend": config.backend,
        **{k: v for k, v in state["props"].items() if v is not None},
        "cpu_governors": sorted({c["governor"] for c in cpus.values() if c["governor"]}),
        "cpu_max_khz": {n: c["max_khz"] for n, c in cpus.items()},
        "threads": threads,
        "delegate": s.delegate,
        "affinity": s.affinity,
        "quantization": s.quantization,
        "op_profiling": s.op_profiling,
        "benchmark_model_sha256": _sha256(Path(s.benchmark_model).expanduser()),
        "versions": versions,
    }
    return Fingerprint(config.name, fields)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("adb-shell", "tensorflow-cpu", "tensorflow"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _probe(config: DeviceConfig) -> tuple[bool, str]:
    if importlib.util.find_spec("adb_shell") is None:
        return False, "adb-shell is not installed (pip install 'hwnas[android]')"
    if importlib.util.find_spec("tensorflow") is None:
        return False, "tensorflow is not installed (pip install 'hwnas[tf]'): it converts models to .tflite"
    try:
        settings = AdbSettings.from_config(config)
        shell = shell_for(config)
        shell.connect()
        model = parse_getprop(shell.run(["getprop"])).get("ro.product.model", "unknown model")
    except Exception as exc:  # a probe never raises: no phone, no key, no permission
        why = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return False, f"no phone over adb: {why}"
    return True, f"{model} over adb ({settings.transport})"


register_fingerprint("android", _fingerprint)
register_power_sampler("battery", "hwnas.profilers.power.android_battery:from_config")
register_backend(Backend(
    name="android-tflite",
    builder=TfliteBuilder,
    runner=AndroidRunner,
    probe=_probe,
    versions=_versions,
    modes=("inference",),
    fusion="tflite",
    fingerprint="android",
    description="an Android phone over adb running TFLite's benchmark_model",
))  # fmt: skip
