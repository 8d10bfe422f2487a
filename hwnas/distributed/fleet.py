"""Device fleets: one profiling job per device, each on the node that owns the device.

A node that has a device attached is started with a Ray custom resource named after the device config
(``ray start --address HEAD:6379 --resources '{"jetson-orin": 1}'``); the job for that device asks for one
unit of it, so Ray places it there and nowhere else. The job profiles into a scratch store on that node and
returns its records (measurements, fingerprints, layer specs); the driver writes them into the one store as
each device finishes. A node that drops out loses only its in-flight job: Ray reruns it (``retries``) when a
node with that resource is back, and a device whose job failed is reported, not silently skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwnas.distributed.executor import Executor


@dataclass
class FleetPayload:
    """What one device's job sends back (plain data: it crosses the network)."""

    device: str
    measurements: list[dict[str, Any]]
    fingerprints: list[dict[str, Any]]
    layer_specs: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class FleetResult:
    device: str
    ok: bool
    records: int = 0
    fingerprint_ids: list[str] = field(default_factory=list)
    error: str = ""
    notes: list[str] = field(default_factory=list)


class _Spec:
    """A stored layer spec handed back to ``Store.add_layer_specs`` (which wants ``key()``/``to_json()``)."""

    def __init__(self, key: str, data: Any) -> None:
        self._key, self._data = key, data

    def key(self) -> str:
        return self._key

    def to_json(self) -> str:
        return self._data if isinstance(self._data, str) else json.dumps(self._data, sort_keys=True)


def write_payload(store: Any, p: FleetPayload) -> FleetResult:
    """Put one device's records into ``store`` (fingerprints and layer specs first: records refer to them)."""
    from hwnas.store import Fingerprint, Measurement, Stats

    fps = []
    for fp in p.fingerprints:
        fields = {k: v for k, v in fp.items() if k not in ("id", "device")}
        fps.append(store.add_fingerprint(Fingerprint(fp["device"], fields)))
    store.add_layer_specs([_Spec(k, v) for k, v in p.layer_specs.items()])
    for d in p.measurements:
        d = dict(d)
        stats = d.pop("stats", None)
        d["stats"] = (
            None if stats is None else Stats(**{**stats, "samples": tuple(stats.get("samples") or ())})
        )
        store.add(Measurement(**d))
    return FleetResult(p.device, True, len(p.measurements), fps, notes=list(p.notes))


def run_fleet(
    jobs: Mapping[str, tuple[Callable[..., Any], Sequence[Any]]],
    executor: Executor,
    store: Any,
    on_done: Callable[[FleetResult], None] | None = None,
) -> list[FleetResult]:
    """``jobs``: device -> (job function, its arguments); each runs where resource ``device`` is, and
    returns a :class:`FleetPayload` or its fields as a dict."""
    for device, (fn, args) in jobs.items():
        executor.submit(device, fn, *args, resources={device: 1})
    results: list[FleetResult] = []
    while executor.in_flight:
        for o in executor.wait():
            if o.ok:
                value = o.value if isinstance(o.value, FleetPayload) else FleetPayload(**o.value)
                r = write_payload(store, value)
            else:
                r = FleetResult(str(o.key), False, error=o.error)
            results.append(r)
            if on_done is not None:
                on_done(r)
    return sorted(results, key=lambda r: list(jobs).index(r.device))
