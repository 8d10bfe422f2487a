"""Power and energy samplers: begin/end windows that return a record naming their source."""

from hwnas.profilers.power.base import EnergyWindow, PowerSampler, SamplerUnavailable

__all__ = ["EnergyWindow", "PowerSampler", "SamplerUnavailable"]
