"""NvmlGpu against a fake of pynvml's functions (types and units as nvidia-ml-py returns them)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pynvml
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FAKED, FakeGPU, FakeNvml  # noqa: E402

from hwnas.errors import InputError  # noqa: E402
from hwnas.profilers.nvml_device import NvmlGpu, NvmlUnavailable, decode_reasons  # noqa: E402
from hwnas.profilers.power.energy import EnergyMeter  # noqa: E402


def test_the_fake_mirrors_real_pynvml_function_signatures():
    for name in FAKED:
        real = getattr(pynvml, name)
        fake = getattr(FakeNvml, name)
        want = [p for p in inspect.signature(real).parameters]
        got = [p for p in inspect.signature(fake).parameters if p != "self"]
        assert got == want or len(got) == len(want), (name, got, want)


def test_open_by_index_and_by_uuid():
    a, b = FakeGPU(name="NVIDIA GeForce GTX 1070", uuid="GPU-aaaa"), FakeGPU(uuid="GPU-bbbb")
    nv = FakeNvml([a, b])
    g = NvmlGpu.open(1, nvml=nv)
    assert g.uuid == "GPU-bbbb" and g.index == 1
    g2 = NvmlGpu.open("GPU-aaaa", nvml=nv)
    assert g2.gpu_name == "NVIDIA GeForce GTX 1070" and g2.index is None
    g.close()
    g2.close()
    assert nv.initialised == 0


def test_bad_selectors_are_input_errors_and_shut_nvml_down():
    nv = FakeNvml()
    with pytest.raises(InputError, match="only 1 GPU"):
        NvmlGpu.open(3, nvml=nv)
    with pytest.raises(InputError, match="no GPU with UUID"):
        NvmlGpu.open("GPU-nope", nvml=nv)
    with pytest.raises(InputError, match="expected an index"):
        NvmlGpu.open("first", nvml=nv)
    assert nv.initialised == 0


def test_nvml_that_cannot_start_is_unavailable_with_a_hint():
    class Broken(FakeNvml):
        def nvmlInit(self):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    with pytest.raises(NvmlUnavailable, match="NVML cannot start") as exc:
        NvmlGpu.open(0, nvml=Broken())
    assert "nvidia-smi" in exc.value.hint


def test_power_energy_counter_and_pre_volta():
    g = NvmlGpu.open(0, nvml=FakeNvml([FakeGPU(idle_mw=81_250)]))
    assert g.read_rails_mw()["gpu"] == pytest.approx(81_250.0, abs=50)  # the fake wanders < 50 mW
    assert g.total_mw({"gpu": 5.0}) == 5.0
    assert g.supports_energy_counter() and isinstance(g.energy_counter_mj(), float)
    old = NvmlGpu.open(0, nvml=FakeNvml([FakeGPU(name="NVIDIA GeForce GTX 1070", energy_counter=False)]))
    assert not old.supports_energy_counter() and old.energy_counter_mj() is None


def test_memory_device_and_this_process():
    import os

    gpu = FakeGPU(memory_used=2_000_000_000, processes=[(os.getpid(), 1_500_000_000), (1, None)])
    m = NvmlGpu.open(0, nvml=FakeNvml([gpu])).memory()
    assert m == {"device_used_bytes": 2_000_000_000, "device_total_bytes": gpu.memory_total,
                 "process_bytes": 1_500_000_000, "processes": 2}  # fmt: skip
    withheld = FakeGPU(processes=[(os.getpid(), None)])
    assert NvmlGpu.open(0, nvml=FakeNvml([withheld])).memory()["process_bytes"] is None


def test_state_and_fingerprint_fields():
    g = NvmlGpu.open(0, nvml=FakeNvml([FakeGPU(reasons=0x1 | 0x4)]))
    s = g.state()
    assert s["sm_mhz"] == 1980 and s["mem_mhz"] == 3201 and s["temperature_c"] == 34
    assert s["clock_event_reasons"] == ["gpu_idle", "sw_power_cap"]
    fp = g.fingerprint_fields()
    assert fp["compute_capability"] == "9.0" and fp["driver"] == "550.54.15" and fp["energy_counter"]
    assert "sm_mhz" not in fp  # the current clock is per record, not in the fingerprint


def test_decode_reasons_keeps_unknown_bits():
    assert decode_reasons(0x40 | 0x8000) == ["hw_thermal_slowdown", "unknown_0x8000"]


def test_a_window_under_power_cap_or_clock_drop_is_flagged():
    gpu = FakeGPU(reasons=0)
    g = NvmlGpu.open(0, nvml=FakeNvml([gpu]))
    g.track_begin()
    g.read_rails_mw()
    assert not g.track_end()["throttled"]
    g.track_begin()
    gpu.reasons = 0x4
    g.read_rails_mw()
    gpu.reasons = 0
    t = g.track_end()
    assert t["throttled"] and "sw_power_cap" in t["throttle_notes"][0]
    g.track_begin()
    gpu.sm_mhz = 1400
    g.read_rails_mw()
    t = g.track_end()
    assert t["throttled"] and "1980 to 1400" in t["throttle_notes"][0]


def test_energy_meter_on_nvml_cross_checks_the_counter():
    gpu = FakeGPU(idle_mw=100_000, update_period_s=0.01)
    g = NvmlGpu.open(0, nvml=FakeNvml([gpu]))
    m = EnergyMeter(g, sampling_hz=200, min_window_s=0.3, poll_max_s=0.5)
    r = m.measure(lambda: None)
    assert r.source == "nvml-counter" and r.counter_mj is not None
    assert r.counter_disagreement < 0.05 and not r.flagged
    assert r.total_mj == pytest.approx(100_000 * r.duration_s, rel=0.05)


def test_instant_power_field_is_preferred_where_the_driver_has_it():
    g = NvmlGpu.open(0, nvml=FakeNvml([FakeGPU(idle_mw=90_000, instant_power=True)]))
    assert g.power_reading() == "instant" and "POWER_INSTANT" in g.total_rule
    assert g.read_rails_mw()["gpu"] == pytest.approx(90_000, abs=50)
    old = NvmlGpu.open(0, nvml=FakeNvml([FakeGPU(idle_mw=90_000)]))
    assert old.power_reading() == "power-usage" and "1 s moving average" in old.total_rule
    assert old.read_rails_mw()["gpu"] == pytest.approx(90_000, abs=50)


def test_readings_an_older_driver_lacks_are_none_not_errors():
    class OldDriver(FakeNvml):
        def nvmlDeviceGetCurrentClocksEventReasons(self, h):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

        def nvmlDeviceGetComputeRunningProcesses(self, h):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)

    g = NvmlGpu.open(0, nvml=OldDriver())
    s = g.state()
    assert s["clock_event_reasons"] is None and s["process_bytes"] is None and s["sm_mhz"] == 1980


def test_other_nvml_errors_are_not_swallowed():
    class Lost(FakeNvml):
        def nvmlDeviceGetTemperature(self, h, sensor):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    with pytest.raises(pynvml.NVMLError):
        NvmlGpu.open(0, nvml=Lost()).state()
