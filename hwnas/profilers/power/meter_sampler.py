"""An :class:`EnergyMeter` behind the shared ``PowerSampler`` window interface (begin/end -> EnergyWindow).

The job loop of every backend opens and closes named windows on whatever sampler the config names; this
adapter lets sampled sources (NVML, Jetson rails) serve that loop, refusing windows too short for the
sensor. Backends that know more (the idle baseline, the energy counter, throttling) read
:attr:`MeterSampler.last_result`, the full :class:`~hwnas.profilers.power.energy.EnergyResult`.
"""

from __future__ import annotations

from collections.abc import Callable

from hwnas.profilers.power.base import EnergyWindow, PowerSampler
from hwnas.profilers.power.energy import EnergyMeter, EnergyResult


class MeterSampler(PowerSampler):
    def __init__(self, meter_factory: Callable[[], EnergyMeter], availability: Callable[[], tuple[bool, str]]
                 ) -> None:  # fmt: skip
        super().__init__()
        self._factory = meter_factory
        self._availability = availability
        self._meter: EnergyMeter | None = None
        self.last_result: EnergyResult | None = None

    @property
    def meter(self) -> EnergyMeter:
        """Built on first use (opening NVML or scanning rails happens only when energy is measured)."""
        if self._meter is None:
            self._meter = self._factory()
        return self._meter

    @property
    def source(self) -> str:  # type: ignore[override]
        return self.meter.source.name

    def available(self) -> tuple[bool, str]:
        return self._availability()

    def _snapshot(self) -> object:  # the meter keeps its own state
        return None

    def begin_window(self, key: str) -> None:
        ok, why = self.available()
        if not ok:
            from hwnas.profilers.power.base import SamplerUnavailable

            raise SamplerUnavailable(f"energy: unavailable: {why}")
        self.meter.begin_window(key)

    def end_window(self, key: str) -> EnergyWindow:
        r = self.meter.end_window(key)
        self.last_result = r
        return to_window(r)

    def _window(self, key: str, start_s: float, end_s: float, begin: object) -> EnergyWindow:
        raise NotImplementedError("MeterSampler delegates windows to its EnergyMeter")


def to_window(r: EnergyResult) -> EnergyWindow:
    return EnergyWindow(r.key, 0.0, r.duration_s, dict(r.rails_mj), r.total_mj, r.source, r.notes)
