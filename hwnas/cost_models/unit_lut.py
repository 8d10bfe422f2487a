"""UnitLUT: a lookup table keyed on fused-unit keys; a network costs what its units add up to in one run.

The profiler's ``units="fused"`` jobs time each kernel the runtime runs (``hwnas.graph.fusion.Unit``) alone
and store it under the unit key (scope ``unit``), with the fusion rule set it used and, where the runner
can say, where the time went (``readings["split"]``). This table reads those records back, groups any
network's layers with the same rules, looks every unit up, and adds them as one model run pays them
(``graph.fusion.in_model_sum``: each unit's own kernels, layout conversions only between units of different
layouts, one runtime call). A unit not in the table raises :class:`UnknownKeyError` naming it.

It implements the cost-prediction interface (``cost_models/interface.py``): ``predict(archs)`` gives a
``latency_ms`` estimate per architecture (a LayerSpec list, a ModelSpec or anything with ``.spec.layers``)
with an interval from the units' own 95 % confidence intervals added the same way (a per-unit interval,
not a joint one: it says how well each unit was measured, not how far the sum is from a real run).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cost_models.base import UnknownKeyError
from hwnas.cost_models.interface import CostEstimate
from hwnas.errors import InputError, SchemaError
from hwnas.graph.fusion import Unit, UnitTiming, fuse, in_model_sum
from hwnas.graph.layer import LayerSpec

SCHEMA = "hwnas-unit-lut/1"


def _layers(arch: Any) -> list[LayerSpec]:
    if isinstance(arch, (list, tuple)) and all(isinstance(la, LayerSpec) for la in arch):
        return list(arch)
    for path in ("layers", "spec.layers"):
        obj = arch
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, list):
            return obj
    raise InputError(f"cannot price {type(arch).__name__}: expected LayerSpecs, a ModelSpec or a model")


class UnitLUT:
    """Per unit key, its isolated latency (ms) and split; see the module docstring."""

    cost_names = ("latency_ms",)

    def __init__(self, entries: dict[str, UnitTiming], fusion: str, *,
                 lower: dict[str, float] | None = None, upper: dict[str, float] | None = None,
                 info: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.entries = dict(entries)
        self.fusion = fusion
        self.lower = dict(lower or {})
        self.upper = dict(upper or {})
        self.info = dict(info or {})

    @classmethod
    def from_store(cls, store: Any, *, device: str, fingerprint_id: str | None = None,
                   backend: str | None = None, mode: str = "inference",
                   batch_size: int | None = None) -> UnitLUT:  # fmt: skip
        """The table of every ``unit`` latency record of ``device`` (one set-up: one fingerprint)."""
        recs = store.query(device=device, fingerprint_id=fingerprint_id, backend=backend, mode=mode,
                           batch_size=batch_size, scope="unit", metric="latency_ms")  # fmt: skip
        if not recs:
            raise InputError(
                f"no fused-unit latencies of device {device!r} in the store",
                hint="profile with units='fused' (Profiler.profile) first",
            )
        fps = sorted({r.fingerprint_id for r in recs})
        if len(fps) > 1:
            raise InputError(f"unit records of {device!r} come from {len(fps)} set-ups {fps}",
                             hint="pass fingerprint_id= to pick one (tables never mix set-ups)")  # fmt: skip
        fusions = sorted({str(r.extra.get("fusion", "")) for r in recs})
        if len(fusions) > 1:
            raise InputError(f"unit records of {device!r} were grouped by different rule sets {fusions}")
        by_key: dict[str, list[Any]] = {}
        for r in recs:
            by_key.setdefault(r.layer_key, []).append(r)
        entries, lo, hi = {}, {}, {}
        for key, rs in by_key.items():
            best = sorted(rs, key=lambda r: r.value)[len(rs) // 2]  # the median record of repeats
            entries[key] = UnitTiming.from_readings(best.value, best.extra.get("readings"))
            if best.stats is not None:
                lo[key], hi[key] = best.stats.ci_low, best.stats.ci_high
        info = {"device": device, "fingerprint_id": fps[0], "mode": mode, "records": len(recs)}
        return cls(entries, fusions[0] or "none", lower=lo, upper=hi, info=info)

    # -- lookups -----------------------------------------------------------------------------------
    def units(self, layers: Sequence[LayerSpec]) -> list[Unit]:
        return fuse(layers, self.fusion)

    def _timings(self, layers: Sequence[LayerSpec],
                 scale: dict[str, float] | None = None) -> list[UnitTiming]:  # fmt: skip
        units = self.units(layers)
        missing = [u for u in units if u.key() not in self.entries]
        if missing:
            raise UnknownKeyError(
                f"{len(missing)} of {len(units)} unit(s) are not in the table, e.g. {missing[0].op} "
                f"({missing[0].key()[:120]})",
                hint="profile a model containing them with units='fused' on the same set-up",
            )
        out = []
        for u in units:
            t = self.entries[u.key()]
            if scale is not None:
                t = replace(t, total_ms=scale.get(u.key(), t.total_ms))
            out.append(t)
        return out

    def predict_layers(self, layers: Sequence[LayerSpec]) -> float:
        """The latency (ms) of a network with these layers, as one run pays for its units."""
        return in_model_sum(self._timings(layers))

    def predict(self, archs: Sequence[Any]) -> dict[str, CostEstimate]:
        vals, los, his = [], [], []
        for arch in archs:
            layers = _layers(arch)
            vals.append(in_model_sum(self._timings(layers)))
            los.append(in_model_sum(self._timings(layers, self.lower)))
            his.append(in_model_sum(self._timings(layers, self.upper)))
        n = len(vals)
        est = CostEstimate("latency_ms", "ms", np.array(vals), np.minimum(los, vals), np.maximum(his, vals),
                           level=0.95, source=np.full(n, "unit-lut", dtype=object),
                           info={"fusion": self.fusion, **self.info})  # fmt: skip
        return {"latency_ms": est}

    def prob_within(self, archs: Sequence[Any], name: str, budget: float) -> np.ndarray:
        if name not in self.cost_names:
            raise InputError(f"a unit table answers {list(self.cost_names)}, not {name!r}")
        return self.predict(archs)[name].prob_within(budget)

    # -- files --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "fusion": self.fusion, "info": self.info,
                "entries": {k: asdict(t) for k, t in self.entries.items()},
                "lower": self.lower, "upper": self.upper}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any], src: str = "<unit table>") -> UnitLUT:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise SchemaError(f"{src}: not a unit table (schema {got!r}, expected {SCHEMA!r})")
        entries = {k: UnitTiming(**v) for k, v in data["entries"].items()}
        return cls(entries, data["fusion"], lower=data.get("lower"), upper=data.get("upper"),
                   info=data.get("info"))  # fmt: skip

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), sort_keys=True))
        return p

    @classmethod
    def load(cls, path: str | Path) -> UnitLUT:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{p}: cannot read a unit table: {exc}") from exc
        return cls.from_dict(data, str(p))

    def __repr__(self) -> str:
        med = statistics.median(t.total_ms for t in self.entries.values()) if self.entries else 0.0
        return f"UnitLUT({len(self.entries)} units, fusion={self.fusion!r}, median {med:.3g} ms)"
