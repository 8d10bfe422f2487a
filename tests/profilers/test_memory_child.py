import pytest

from hwnas.errors import MeasurementError
from hwnas.profilers.memory import measure_peak_memory


def test_peak_memory_above_baseline():
    res = measure_peak_memory("hwnas.profilers.memory:allocate", {"megabytes": 64})
    assert 60 * 2**20 <= res.peak_bytes <= 200 * 2**20
    assert res.peak_rss_bytes >= res.baseline_bytes + res.peak_bytes


def test_out_of_memory_child_fails_and_parent_continues():
    with pytest.raises(MeasurementError, match="address-space limit") as info:
        measure_peak_memory("hwnas.profilers.memory:allocate", {"megabytes": 2048}, limit_bytes=512 * 2**20,
                            label="big")  # fmt: skip
    assert "MemoryError" in info.value.message
    # the parent is fine and can measure the next job
    assert measure_peak_memory("hwnas.profilers.memory:allocate", {"megabytes": 8}).peak_bytes > 0


def test_child_crash_is_a_measurement_error():
    with pytest.raises(MeasurementError, match="ModuleNotFoundError"):
        measure_peak_memory("hwnas.no_such_module:f", {})
