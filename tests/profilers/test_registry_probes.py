from __future__ import annotations

import os
import stat

import pytest
from profiler_helpers import fast_config

from hwnas.device_config import BACKENDS
from hwnas.errors import DeviceUnavailableError
from hwnas.profilers import probes
from hwnas.profilers.fingerprint import cpufreq_info, current_freq_khz, local_fingerprint
from hwnas.profilers.registry import availability, get_profiler


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_has_an_availability_answer(backend):
    ok, why = availability(fast_config(backend, name=f"t-{backend}"))
    assert isinstance(ok, bool) and why


def test_local_backends_profile_here():
    for backend, cls in (("onnxruntime-cpu", "OnnxRuntimeCPUProfiler"), ("torch-cpu", "TorchCPUProfiler")):
        prof = get_profiler(fast_config(backend), threads=2)
        assert type(prof).__name__ == cls and prof.threads == 2 and prof.backend == backend


def test_unusable_backend_raises_with_reason(monkeypatch):
    monkeypatch.setattr(probes, "INA3221_PATHS", ())
    cfg = fast_config("jetson", name="jet")
    with pytest.raises(DeviceUnavailableError, match="not usable here"):
        get_profiler(cfg)


def test_jetson_probe_finds_ina3221(tmp_path):
    d = tmp_path / "ina3221x"
    assert not probes.probe_jetson(fast_config("jetson"), (d,))[0]
    d.mkdir()
    ok, why = probes.probe_jetson(fast_config("jetson"), (d,))
    assert ok and str(d) in why


def _fake_adb(tmp_path, output: str) -> None:
    adb = tmp_path / "adb"
    adb.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)


def test_adb_probe(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    cfg = fast_config("android-tflite")
    assert "not on PATH" in probes.probe_adb(cfg)[1]
    _fake_adb(tmp_path, "List of devices attached\\n\\n")
    assert "no device" in probes.probe_adb(cfg)[1]
    _fake_adb(tmp_path, "List of devices attached\\nR58M123\\tdevice\\n")
    assert probes.probe_adb(cfg) == (True, "adb device R58M123")
    other = fast_config("android-tflite", connection={"serial": "XYZ"})
    ok, why = probes.probe_adb(other)
    assert not ok and "XYZ" in why and "R58M123" in why
    ok, why = availability(fast_config("android-tflite"))
    assert not ok and "no phone over adb" in why  # the android-tflite backend probes over adb-shell


def test_fingerprint_without_cpufreq_records_null(tmp_path):
    cfg = fast_config()
    fp = local_fingerprint(cfg, {"onnxruntime": "9.9"}, threads=3, cpufreq_dir=tmp_path / "absent")
    assert fp.fields["cpufreq"] == {"governor": None, "freq_min_khz": None, "freq_max_khz": None}
    assert fp.fields["threads"] == 3 and fp.fields["logical_cores"] == os.cpu_count()
    v = fp.fields["versions"]
    assert v["onnxruntime"] == "9.9" and v["python"] and v["numpy"] and "torch" in v
    assert fp.fields["cpu_model"]
    assert fp.id != local_fingerprint(cfg, {"onnxruntime": "9.9"}, threads=1, cpufreq_dir=tmp_path).id


def test_fingerprint_reads_cpufreq(tmp_path):
    (tmp_path / "scaling_governor").write_text("performance\n")
    (tmp_path / "scaling_max_freq").write_text("3500000\n")
    (tmp_path / "scaling_cur_freq").write_text("2100000\n")
    info = cpufreq_info(tmp_path)
    assert info == {"governor": "performance", "freq_min_khz": None, "freq_max_khz": 3500000}
    assert current_freq_khz(tmp_path) == 2100000
