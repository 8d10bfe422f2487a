"""Battery parser on every recording (sources: recordings/android_battery/README.md), the sign and unit
rules, vendor-field handling, and a hypothesis check that it raises only clear InputErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.errors import InputError
from hwnas.profilers.parsers.battery import KEYS, parse_battery, signed_current

REC = Path(__file__).parent / "recordings" / "android_battery"


def _read(name: str) -> str:
    return (REC / name).read_text()


def test_pixel_c_dumpsys_charging_on_ac() -> None:
    """google/syzkaller #79: voltage in mV, temperature in 0.1 °C, Charge counter 0 = not reported."""
    r = parse_battery(_read("pixel_c_dragon_ac_charging.txt"))
    d = r.to_dict()
    assert tuple(d) == KEYS
    assert d["voltage_v"] == pytest.approx(3.764)
    assert d["temperature_c"] == pytest.approx(27.5)
    assert d["charging"] is True and r.status == "charging" and r.plugged == ("ac",)
    assert d["level_pct"] == pytest.approx(19.0)
    assert d["charge_counter_uah"] is None
    assert d["current_a"] is None and d["power_w"] is None  # dumpsys prints no current
    assert d["unparsed"]["Max charging current"] == "2400000"
    assert "voltage" not in d["unparsed"]


def test_minimal_dumpsys_zero_gauge() -> None:
    """appium/appium-adb #133: a device without a real gauge prints voltage 0 and temperature 0."""
    d = parse_battery(_read("android_2016_minimal_voltage_zero.txt")).to_dict()
    assert d["voltage_v"] == 0.0 and d["temperature_c"] == 0.0
    assert d["power_w"] is None
    assert d["level_pct"] == 89.0


def test_pixel3a_uevent_usb_not_charging() -> None:
    """MatteCarra/AccA #35: µV and µA (kernel ABI); 'Not charging' gives no direction."""
    r = parse_battery(_read("pixel3a_android9_battery_uevent_usb_not_charging.txt"))
    d = r.to_dict()
    assert d["voltage_v"] == pytest.approx(3.815175)
    assert abs(d["current_a"]) == pytest.approx(976e-6)
    assert "no direction" in d["current_sign_rule"] and "kernel ABI" in d["current_sign_rule"]
    assert d["power_w"] == pytest.approx(d["voltage_v"] * d["current_a"])
    assert d["charging"] is False
    assert d["temperature_c"] == pytest.approx(31.3)
    assert d["level_pct"] == 44.0
    assert d["unparsed"]["CHARGER_TEMP"] == "364" and d["unparsed"]["DIE_HEALTH"] == "Cool"
    assert "VOLTAGE_NOW" not in d["unparsed"]


@pytest.mark.parametrize("raw", [-326171, 326171])
def test_status_decides_the_sign_whatever_the_vendor_prints(raw: int) -> None:
    """Xiaomi Mi 8 prints CURRENT_NOW=-326171 while Charging (AccA #27); either sign reads as charging."""
    text = f"POWER_SUPPLY_STATUS=Charging\nPOWER_SUPPLY_CURRENT_NOW={raw}\nPOWER_SUPPLY_VOLTAGE_NOW=4000000\n"
    d = parse_battery(text).to_dict()
    assert d["current_a"] == pytest.approx(-0.326171)
    assert d["power_w"] == pytest.approx(-4.0 * 0.326171)
    assert d["current_sign_rule"].startswith("status Charging")
    dis = parse_battery(text.replace("Charging", "Discharging")).to_dict()
    assert dis["current_a"] == pytest.approx(0.326171) and dis["charging"] is False


def test_device_conventions_and_units() -> None:
    assert signed_current(500, "full", "inverted", "uA")[0] == pytest.approx(500e-6)
    assert signed_current(500, "full", "kernel", "uA")[0] == pytest.approx(-500e-6)
    amps, rule = signed_current(-250, None, "kernel", "mA")
    assert amps == pytest.approx(0.25) and "mA (config)" in rule
    with pytest.raises(InputError, match="current unit"):
        parse_battery("STATUS=Full\n", current_unit="A")
    with pytest.raises(InputError, match="sign convention"):
        parse_battery("STATUS=Full\n", sign_convention="vendor")


def test_vendor_fields_case_empty_and_mixed_indentation() -> None:
    text = (
        "Current Battery Service state:\n"
        "  AC powered: false\n"
        "\tUSB powered: true\n"
        "  status: 3\n"
        "   level: 50\n"
        "  voltage: 4012\n"
        "  Voltage: 4.01\n"  # a vendor spelling differing only by case stays apart
        "  current now: -310\n"  # Samsung: unit undocumented, never read as a current
        "  LLB CAL: \n"
        "  temperature: 301\n"
        "  BatteryInfoBackUp\n"
        "  current now: -305\n"
    )
    r = parse_battery(text)
    d = r.to_dict()
    assert d["voltage_v"] == pytest.approx(4.012) and d["charging"] is False
    assert r.status == "discharging" and r.plugged == ("usb",)
    assert d["current_a"] is None
    assert d["unparsed"]["Voltage"] == "4.01"
    assert d["unparsed"]["current now"] == ["-310", "-305"]
    assert d["unparsed"]["LLB CAL"] == ""
    assert "BatteryInfoBackUp" in d["unparsed"].values()


def test_bad_known_value_names_field_and_file() -> None:
    with pytest.raises(InputError, match=r"b\.txt: field 'VOLTAGE_NOW'"):
        parse_battery("STATUS=Charging\nVOLTAGE_NOW=3.8V\n", "b.txt")


def test_not_a_battery_dump() -> None:
    with pytest.raises(InputError, match="not a battery dump"):
        parse_battery("just some words\n", "x")


_LINES = st.sampled_from(
    [line for p in sorted(REC.glob("*.txt")) for line in p.read_text().splitlines()]
    + ["CURRENT_NOW=-5", "STATUS=Discharging", "voltage: x", "status: 9", "  : ", "=", "K="]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_LINES, st.text(max_size=30)), max_size=25))
def test_fuzz_only_clear_errors(lines: list[str]) -> None:
    try:
        d = parse_battery("\n".join(lines), "fuzz.txt").to_dict()
    except InputError as exc:
        assert "fuzz.txt" in exc.message or "battery dump" in exc.message
        return
    assert tuple(d) == KEYS
    assert isinstance(d["charging"], bool)
