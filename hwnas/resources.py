"""Check resource-hungry requests against this machine before any work (threads, batch, input size).

Why: ``--threads 100000`` crashed onnxruntime with a segfault, ``-b 100000`` or ``batch_size: 1e12``
ended in allocation tracebacks minutes later. These checks turn such requests into an InputError that
names the limit of the machine and the option to change.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from hwnas.errors import InputError

LOCAL_BACKENDS = ("onnxruntime-cpu", "torch-cpu")
THREADS_PER_CPU = 4  # some oversubscription is a legitimate experiment; 100000 threads is not
BYTES_PER_ELEMENT = 4  # float32 inputs and activations


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo (None where unreadable)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_threads(threads: int | None, backend: str, option: str = "--threads") -> None:
    """Threads for a backend running on this machine must fit its CPUs (a few per CPU at most)."""
    if threads is None or backend not in LOCAL_BACKENDS:
        return
    limit = THREADS_PER_CPU * cpu_count()
    if threads > limit:
        raise InputError(
            f"{option} {threads}: this machine has {cpu_count()} CPU(s); at most {limit} threads are allowed",
            hint=f"use {option} {cpu_count()} (one per CPU) or fewer",
        )


def requested_shape(input_shape: Sequence[int] | None, batch_size: int) -> tuple[int, ...]:
    """The input a model will get: ``input_shape`` if given, else batch x 3 x 224 x 224 (the largest
    default of the shipped models), so the check is never looser than the real input."""
    return tuple(input_shape) if input_shape else (int(batch_size), 3, 224, 224)


def check_input_memory(shape: Sequence[int], what: str = "the input", option: str = "--batch-size",
                       factor: float = 4.0) -> None:  # fmt: skip
    """``factor`` times one float32 tensor of ``shape`` must fit in the memory available now."""
    elements = math.prod(int(s) for s in shape)
    need = elements * BYTES_PER_ELEMENT * factor
    avail = available_memory_bytes()
    if avail is not None and need > avail:
        raise InputError(
            f"{what} of shape {'x'.join(map(str, shape))} needs about {need / 2**30:.1f} GiB; this machine "
            f"has {avail / 2**30:.1f} GiB available",
            hint=f"use a smaller {option} or --input-shape",
        )
