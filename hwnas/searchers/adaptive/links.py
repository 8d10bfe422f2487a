"""Communication time between an edge device and a server (τ_comm of thesis eq. 4.4).

The thesis assumes ideal buffers and a constant cost per image: send the (JPEG) image, receive the label.
``τ_comm = latency + 8 · (image_bytes + result_bytes) / bandwidth``. The link comes from the edge device's
config (``connection: {link: {preset: wifi}}`` or explicit ``bandwidth_mbps`` / ``latency_ms`` /
``image_bytes``), or from ``--link``. The presets are typical sustained figures, stated here so that a
user can see and override them: they are assumptions, not measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hwnas.errors import InputError

# name -> (bandwidth Mbit/s, one-way-plus-reply latency ms). Fast Ethernet; 802.11n Wi-Fi at a typical
# sustained rate with its higher round trip.
PRESETS: dict[str, tuple[float, float]] = {"ethernet": (100.0, 0.5), "wifi": (20.0, 5.0)}
# A 32x32 colour image as JPEG is about 1-2 kB; the result is one class index.
DEFAULT_IMAGE_BYTES = 1500
DEFAULT_RESULT_BYTES = 16


@dataclass(frozen=True)
class LinkModel:
    name: str
    bandwidth_mbps: float
    latency_ms: float
    image_bytes: int = DEFAULT_IMAGE_BYTES
    result_bytes: int = DEFAULT_RESULT_BYTES

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps > 0):
            raise InputError(f"link {self.name}: bandwidth_mbps must be > 0, got {self.bandwidth_mbps}")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise InputError(f"link {self.name}: latency_ms must be >= 0, got {self.latency_ms}")
        if self.image_bytes <= 0 or self.result_bytes < 0:
            raise InputError(f"link {self.name}: image_bytes must be > 0 and result_bytes >= 0")

    @property
    def comm_ms(self) -> float:
        """τ_comm per image in ms."""
        bits = 8.0 * (self.image_bytes + self.result_bytes)
        return self.latency_ms + bits / (self.bandwidth_mbps * 1e6) * 1e3

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bandwidth_mbps": self.bandwidth_mbps,
            "latency_ms": self.latency_ms,
            "image_bytes": self.image_bytes,
            "result_bytes": self.result_bytes,
            "comm_ms": self.comm_ms,
        }


def link_from(spec: str | Mapping[str, Any] | None, *, image_bytes: int | None = None) -> LinkModel:
    """A preset name (``ethernet``, ``wifi``) or a mapping with ``preset`` and/or explicit fields."""
    if spec is None:
        raise InputError("no link given", hint=f"--link one of {', '.join(PRESETS)}, or set connection.link")
    data: dict[str, Any] = {"preset": spec} if isinstance(spec, str) else dict(spec)
    preset = data.pop("preset", None)
    name = str(preset or data.pop("name", "custom"))
    bw, lat = (None, None)
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"unknown link preset {preset!r}", hint=f"one of {', '.join(PRESETS)}")
        bw, lat = PRESETS[preset]
    unknown = set(data) - {"bandwidth_mbps", "latency_ms", "image_bytes", "result_bytes"}
    if unknown:
        raise InputError(
            f"link: unknown field(s) {sorted(unknown)}",
            hint="fields: preset, bandwidth_mbps, latency_ms, image_bytes, result_bytes",
        )
    try:
        bw = float(data.get("bandwidth_mbps", bw))
        lat = float(data.get("latency_ms", lat))
    except (TypeError, ValueError) as exc:
        raise InputError(
            "link: bandwidth_mbps and latency_ms must be numbers (or give a preset)",
            hint=f"presets: {', '.join(PRESETS)}",
        ) from exc
    img = int(image_bytes if image_bytes is not None else data.get("image_bytes", DEFAULT_IMAGE_BYTES))
    res = int(data.get("result_bytes", DEFAULT_RESULT_BYTES))
    return LinkModel(name, bw, lat, img, res)
