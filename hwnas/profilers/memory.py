"""Peak memory of a model run, measured in a child process so that running out of memory is survivable.

The parent starts ``python -m hwnas.profilers.memory <job.json>``. The child (optionally under an
``RLIMIT_AS`` cap) imports the target function, resets the peak-RSS mark, notes the RSS after the
imports (the baseline), runs the target and reports the peak RSS (VmHWM) again; the difference is
what the model itself needed (weights, activations, runtime arenas). A child that raises, is killed
or times out becomes a :class:`~hwnas.errors.MeasurementError` in the parent, which carries on with
the next job.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import MeasurementError

_MARKER = "HWNAS-MEMORY-RESULT "
_PRELOAD = {"run_onnx": ("numpy", "onnxruntime"), "run_torch": ("torch", "torchvision")}


@dataclass(frozen=True)
class MemoryResult:
    peak_bytes: int  # peak RSS above the baseline
    baseline_bytes: int  # peak RSS after imports, before the target ran
    peak_rss_bytes: int  # absolute peak RSS of the child
    source: str = "child-vmhwm"


def measure_peak_memory(
    target: str,
    kwargs: dict[str, Any],
    *,
    limit_bytes: int | None = None,
    timeout_s: float = 300.0,
    label: str = "",
    preload: tuple[str, ...] | None = None,
) -> MemoryResult:
    """Run ``target`` (``"package.module:function"``) with JSON-able ``kwargs`` in a child process.

    ``preload`` names modules imported before the baseline is taken, so that the runtime's own import
    is not charged to the model (defaults per known target, e.g. torch for :func:`run_torch`).
    """
    if preload is None:
        preload = _PRELOAD.get(target.rsplit(":", 1)[-1], ())
    job = {"target": target, "kwargs": kwargs, "limit_bytes": limit_bytes, "preload": list(preload)}
    what = label or target
    with tempfile.TemporaryDirectory(prefix="hwnas-mem-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job))
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "hwnas.profilers.memory", str(job_path)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise MeasurementError(
                f"peak memory of {what}: the child process ran past {timeout_s:.0f} s and was killed",
                hint="raise the timeout or profile a smaller batch",
            ) from exc
    report = None
    for line in proc.stdout.splitlines():
        if line.startswith(_MARKER):
            report = json.loads(line[len(_MARKER) :])
    if proc.returncode != 0 or report is None or not report.get("ok"):
        if report is not None and report.get("error"):
            why = report["error"]
        elif proc.returncode < 0:
            why = f"killed by signal {signal.Signals(-proc.returncode).name}"
        else:
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            why = f"exit code {proc.returncode}" + (f": {' | '.join(tail)}" if tail else "")
        cap = f" under a {limit_bytes / 2**20:.0f} MiB address-space limit" if limit_bytes else ""
        raise MeasurementError(
            f"peak memory of {what}: the child process failed{cap}: {why}",
            hint="the model may not fit in memory; try a smaller batch size",
        )
    return MemoryResult(
        peak_bytes=max(0, report["peak_rss_bytes"] - report["baseline_bytes"]),
        baseline_bytes=report["baseline_bytes"],
        peak_rss_bytes=report["peak_rss_bytes"],
    )


# ---- targets that run inside the child ---------------------------------------------------------------
def run_onnx(path: str, input_shapes: list[list[int]], threads: int = 1, runs: int = 3) -> None:
    """Create an onnxruntime session and run it ``runs`` times on random inputs."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        i.name: rng.standard_normal(shape).astype(np.float32)
        for i, shape in zip(sess.get_inputs(), input_shapes, strict=False)
    }
    for _ in range(runs):
        sess.run(None, feeds)


def run_torch(path: str, input_shapes: list[list[int]], mode: str = "inference", threads: int = 1,
              runs: int = 3) -> None:  # fmt: skip
    """Load a pickled module (torch.save) and run forward (or forward + backward) ``runs`` times."""
    import torch

    torch.set_num_threads(threads)
    module = torch.load(path, weights_only=False)
    inputs = [torch.randn(*s) for s in input_shapes]
    for _ in range(runs):
        if mode == "train_step":
            module.train()
            module.zero_grad(set_to_none=True)
            out = module(*inputs)
            first_tensor(out).float().sum().backward()
        else:
            module.eval()
            with torch.inference_mode():
                module(*inputs)


def first_tensor(out: Any) -> Any:
    """The first tensor of a model output (tuple, list or dict outputs), for backward passes."""
    if isinstance(out, (list, tuple)):
        return first_tensor(out[0])
    if isinstance(out, dict):
        return first_tensor(next(iter(out.values())))
    return out


def allocate(megabytes: int) -> None:
    """Touch ``megabytes`` MiB of memory (used by tests and as a calibration target)."""
    block = bytearray(megabytes * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> int:
    """Reset the peak-RSS mark (Linux: write 5 to /proc/self/clear_refs) and return the current RSS.

    ``ru_maxrss`` cannot serve as the baseline: it survives exec, so a child of a big parent would start
    with the parent's peak.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    current = _status_bytes("VmRSS")
    return current if current is not None else _peak_rss_bytes()


def _peak_rss_bytes() -> int:
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib if sys.platform == "darwin" else kib * 1024


def _child(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    try:
        if job.get("limit_bytes"):
            import resource

            limit = int(job["limit_bytes"])
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for name in job.get("preload", []):
            importlib.import_module(name)
        module_name, func_name = job["target"].split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        baseline = _reset_peak()
        func(**job["kwargs"])
        report = {"ok": True, "baseline_bytes": baseline, "peak_rss_bytes": _peak_rss_bytes()}
        code = 0
    except BaseException as exc:  # MemoryError above all; report it and exit non-zero
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        code = 3
    sys.stdout.write(_MARKER + json.dumps(report) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
