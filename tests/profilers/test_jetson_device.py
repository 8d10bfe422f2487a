"""Jetson board readings over sysfs/proc trees built in a temporary directory from the documented layouts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_ina_sysfs import _write, hwmon_orin_nx, legacy_tx2  # noqa: E402

from hwnas.profilers import jetson_device as jd  # noqa: E402
from hwnas.profilers.power.energy import EnergyMeter  # noqa: E402


def board(root: Path) -> None:
    hwmon_orin_nx(root)
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("NVIDIA Orin NX Developer Kit\x00")
    release = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic"
    _write(root / "etc", {"nv_tegra_release": release})
    (root / "etc/nvpmodel.conf").write_text(
        "< POWER_MODEL ID=0 NAME=MAXN >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=2 NAME=15W >\n")
    _write(root / "var/lib/nvpmodel", {"status": "pmode:0002 fmode:quiet"})
    gpu = {"name": "ga10b", "cur_freq": 612000000, "min_freq": 306000000, "max_freq": 918000000}
    _write(root / "sys/class/devfreq/17000000.gpu", gpu)
    _write(root / "sys/class/devfreq/other", {"name": "nvdla", "cur_freq": 1})
    _write(root / "sys/kernel/debug/bpmp/debug/clk/emc", {"rate": 2133000000, "max_rate": 3199000000})
    meminfo = "MemTotal:       15655564 kB\nMemFree:  1 kB\nMemAvailable:   12000000 kB"
    _write(root / "proc", {"meminfo": meminfo})


def test_rails_source_reads_the_total_input_by_rule(tmp_path):
    board(tmp_path)
    src = jd.JetsonRails(tmp_path)
    ok, why = src.available()
    assert ok and "VDD_IN is the module's total input" in why
    s = src.read()
    assert s.total_mw == pytest.approx(5160 * 1010 / 1000)
    assert set(s.rails_mw) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
    assert "VDD_IN" in src.total_rule


def test_legacy_tx2_board_through_the_meter(tmp_path):
    legacy_tx2(tmp_path)
    src = jd.JetsonRails(tmp_path)
    meter = EnergyMeter(src, sampling_hz=100, min_window_s=0.5, poll_max_s=0.1)
    # sysfs values in the tree never change: the polled period is a stated lower bound, so the window grows.
    # The workload sleeps as a real accelerator call does (it waits for the device and releases the GIL);
    # a pure-Python busy loop would starve the sampler thread on a loaded machine.
    r = meter.measure(lambda: time.sleep(0.002))
    assert r.average_power_mw == pytest.approx(4784, rel=1e-6) and r.rails_mj["VDD_SYS_GPU"] > 0
    assert any("update period >=" in n for n in r.notes)


def test_no_rails_is_unavailable_naming_the_paths(tmp_path):
    ok, why = jd.JetsonRails(tmp_path).available()
    assert not ok and "ina3221x" in why and "ina238" in why


def test_unknown_rail_set_is_unavailable_not_guessed(tmp_path):
    _write(tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon0",
           {"in1_label": "VDD_A", "in1_input": 5000, "curr1_input": 10})  # fmt: skip
    ok, why = jd.JetsonRails(tmp_path).available()
    assert not ok and "not guessing" in why


def test_fingerprint_and_state(tmp_path):
    board(tmp_path)
    fp = jd.fingerprint_fields(tmp_path)
    assert fp == {"board": "NVIDIA Orin NX Developer Kit", "l4t": "R36.4.3", "nvpmodel_id": 2,
                  "nvpmodel_name": "15W", "gpu_max_mhz": 918.0, "gpu_min_mhz": 306.0, "emc_max_mhz": 3199.0,
                  "ram_total_mb": pytest.approx(15655564 / 1024)}  # fmt: skip
    st = jd.state(tmp_path)
    assert st["gpu_cur_mhz"] == 612.0 and st["emc_mhz"] == 2133.0
    assert st["ram_used_mb"] == pytest.approx((15655564 - 12000000) / 1024)
    assert "no NVML memory API" in st["gpu_memory"]


def test_missing_files_are_none_not_guesses(tmp_path):
    assert jd.fingerprint_fields(tmp_path) == {"board": None, "l4t": None, "nvpmodel_id": None,
                                               "nvpmodel_name": None, "gpu_max_mhz": None,
                                               "gpu_min_mhz": None, "emc_max_mhz": None,
                                               "ram_total_mb": None}  # fmt: skip
