"""INA3221/INA238 rail scanning over sysfs trees built from the documented layouts (recordings README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.profilers.parsers.ina_sysfs import HWMON, INA238, LEGACY, scan_rails
from hwnas.profilers.parsers.jetson_rails import total_input_mw


def _write(d: Path, files: dict[str, object]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for k, v in files.items():
        (d / k).write_text(f"{v}\n")


def _ch(c: int, name: str, mv: int, ma: int, mw: int) -> dict[str, object]:
    return {f"rail_name_{c}": name, f"in_voltage{c}_input": mv, f"in_current{c}_input": ma,
            f"in_power{c}_input": mw}  # fmt: skip


def legacy_tx2(root: Path, iio: str = "iio:device0") -> None:
    """TX2: two chips (0-0040, 0-0041), 0-based channels, driver-computed power in mW."""
    _write(root / f"sys/bus/i2c/drivers/ina3221x/0-0040/{iio}", {
        **_ch(0, "VDD_SYS_GPU", 19136, 180, 1159),
        **_ch(1, "VDD_SYS_SOC", 19136, 40, 765),
        **_ch(2, "VDD_4V0_WIFI", 4000, 10, 40),
        "crit_current_limit_0": 5000, "warn_current_limit_0": 4000,
    })  # fmt: skip
    _write(root / f"sys/bus/i2c/drivers/ina3221x/0-0041/{iio}", {
        **_ch(0, "VDD_IN", 19136, 250, 4784),
        **_ch(1, "VDD_SYS_CPU", 19136, 30, 574),
        **_ch(2, "VDD_SYS_DDR", 4900, 100, 490),
    })  # fmt: skip
    (root / "sys/bus/i2c/drivers/ina3221x/bind").write_text("")  # driver files that are not chips


def hwmon_orin_nx(root: Path) -> None:
    """Orin NX on L4T R36: in1=VDD_IN, in2=VDD_CPU_GPU_CV, in3=VDD_SOC; no power files; in7 = shunt sum."""
    _write(root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3", {
        "name": "ina3221",
        "in1_label": "VDD_IN", "in1_input": 5160, "curr1_input": 1010, "curr1_crit": 7784, "curr1_max": 7784,
        "in2_label": "VDD_CPU_GPU_CV", "in2_input": 5144, "curr2_input": 200,
        "in3_label": "VDD_SOC", "in3_input": 5152, "curr3_input": 300,
        "in4_input": 8000, "in5_input": 1600, "in6_input": 2400,
        "in7_label": "sum of shunt voltages", "in7_input": 12000, "curr4_input": 1510,
        "shunt1_resistor": 5000,
    })  # fmt: skip


def test_legacy_layout(tmp_path):
    legacy_tx2(tmp_path)
    rails = scan_rails(tmp_path)
    assert [r.name for r in rails] == ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU",
                                       "VDD_SYS_DDR"]  # fmt: skip
    assert {r.layout for r in rails} == {LEGACY}
    mw = {r.name: r.read_mw() for r in rails}
    assert mw["VDD_SYS_GPU"] == 1159  # the driver's power file, not 19136 x 180 / 1000
    total, rule = total_input_mw(mw)
    assert total == 4784 and "VDD_IN" in rule


def test_legacy_layout_spelled_iio_device_and_without_power_files(tmp_path):
    d = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio_device"
    _write(d, {"rail_name_0": "POM_5V_IN", "in_voltage0_input": 4500, "in_current0_input": 1000,
               "rail_name_1": "POM_5V_GPU", "in_voltage1_input": 4500, "in_current1_input": 100})  # fmt: skip
    rails = scan_rails(tmp_path)
    assert [(r.name, r.read_mw()) for r in rails] == [("POM_5V_IN", 4500.0), ("POM_5V_GPU", 450.0)]


def test_hwmon_layout_multiplies_voltage_and_current_and_skips_the_sum(tmp_path):
    hwmon_orin_nx(tmp_path)
    rails = scan_rails(tmp_path)
    assert [r.name for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert {r.layout for r in rails} == {HWMON} and all(r.power_file is None for r in rails)
    mw = {r.name: r.read_mw() for r in rails}
    assert mw["VDD_IN"] == pytest.approx(5160 * 1010 / 1000)
    assert total_input_mw(mw)[0] == mw["VDD_IN"]


def test_hwmon_agx_orin_skips_nc_and_sums_with_its_rule(tmp_path):
    _write(tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1", {
        "in1_label": "VDD_GPU_SOC", "in1_input": 5000, "curr1_input": 400,
        "in2_label": "VDD_CPU_CV", "in2_input": 5000, "curr2_input": 100,
        "in3_label": "VIN_SYS_5V0", "in3_input": 5000, "curr3_input": 500})  # fmt: skip
    _write(tmp_path / "sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon2", {
        "in1_label": "NC", "in1_input": 0, "curr1_input": 0,
        "in2_label": "VDDQ_VDD2_1V8AO", "in2_input": 5000, "curr2_input": 60,
        "in3_label": "NC", "in3_input": 0, "curr3_input": 0})  # fmt: skip
    rails = scan_rails(tmp_path)
    assert [r.name for r in rails] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    total, rule = total_input_mw({r.name: r.read_mw() for r in rails})
    assert total == pytest.approx(2000 + 500 + 2500 + 300)
    assert rule.startswith("AGX Orin") and "I/O rail" in rule


def test_ina238_thor_layout_reads_microwatts(tmp_path):
    _write(tmp_path / "sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon5",
           {"name": "ina238", "label": "VIN", "in1_input": 19000, "curr1_input": 2000,
            "power1_input": 38_000_000})  # fmt: skip
    _write(tmp_path / "sys/bus/i2c/drivers/ina238/2-0045/hwmon/hwmon6",
           {"name": "ina238", "in1_input": 5000, "curr1_input": 100})  # no label, no power file
    rails = scan_rails(tmp_path)
    assert [(r.name, r.layout) for r in rails] == [("VIN", INA238), ("2-0045", INA238)]
    assert rails[0].read_mw() == 38_000.0 and rails[1].read_mw() == 500.0
    assert total_input_mw({r.name: r.read_mw() for r in rails})[0] == 38_000.0


def test_no_tree_means_no_rails(tmp_path):
    assert scan_rails(tmp_path) == []


def test_a_non_numeric_sysfs_value_is_an_oserror_naming_the_file(tmp_path):
    hwmon_orin_nx(tmp_path)
    (tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input").write_text("garbage\n")
    with pytest.raises(OSError, match="curr1_input"):
        scan_rails(tmp_path)[0].read_mw()


def test_unknown_rail_sets_give_no_total_rather_than_a_guess():
    total, rule = total_input_mw({"VDD_A": 1.0, "VDD_B": 2.0})
    assert total is None and "not guessing" in rule
