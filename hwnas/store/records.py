"""Record types that flow from profilers into the store and from the store into cost models."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# Metric names carry their unit (STYLE.md habits).
METRICS = (
    "latency_ms",
    "in_model_latency_ms",  # a layer's kernel time inside the whole model (onnxruntime's profiler)
    "peak_memory_bytes",
    "energy_mj",
    "power_mw",
)
SCOPES = ("layer", "unit", "model")  # unit: a fused unit of the runtime's kernels (hwnas.graph.fusion)
MODES = ("inference", "train_step")


@dataclass(frozen=True)
class Fingerprint:
    """What the numbers depend on: hardware, runtime versions, clocks, threads.

    Tables measured under different fingerprints never mix; ``id`` is a short hash of the fields.
    """

    device: str
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        blob = json.dumps({"device": self.device, **self.fields}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "device": self.device, **self.fields}


@dataclass(frozen=True)
class Stats:
    """A latency (or other) distribution summarised; ``samples`` keeps every repeat."""

    median: float
    mean: float
    std: float
    iqr: float
    ci_low: float
    ci_high: float
    n: int
    samples: tuple[float, ...] = ()

    @property
    def ci_half_width_rel(self) -> float:
        """Half-width of the confidence interval relative to the median (0.02 = ±2 %)."""
        return (self.ci_high - self.ci_low) / 2.0 / self.median if self.median else float("inf")


@dataclass
class Measurement:
    """One measured statistic of one layer or model on one device set-up.

    ``model_id`` names the network (e.g. ``torchvision:mobilenet_v2`` or ``mbv2space:<arch>``);
    ``layer_key`` is the LayerSpec key for scope ``layer``, the unit key (``hwnas.graph.fusion.Unit.key``)
    for scope ``unit`` and ``""`` for scope ``model``.
    ``source`` says how the value was obtained (``wallclock``, ``ort-profiler``, ``rapl-counter``,
    ``nvml-samples@50Hz``, ...), so a reader knows what it is looking at.
    """

    device: str
    fingerprint_id: str
    backend: str
    model_id: str
    scope: str
    metric: str
    value: float
    layer_key: str = ""
    layer_name: str = ""
    layer_index: int = -1
    mode: str = "inference"
    batch_size: int = 1
    stats: Stats | None = None
    source: str = "wallclock"
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def identity(self) -> tuple[Any, ...]:
        """The fields that make a measurement 'the same job' for resume: same identity = already done."""
        return (
            self.device,
            self.fingerprint_id,
            self.backend,
            self.model_id,
            self.scope,
            self.layer_index,
            self.layer_key,
            self.metric,
            self.mode,
            self.batch_size,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.stats is not None:
            d["stats"] = asdict(self.stats)
        return d
