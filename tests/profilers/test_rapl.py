from pathlib import Path

import pytest

from hwnas.profilers.power.base import SamplerUnavailable
from hwnas.profilers.power.rapl import RaplSampler, counter_delta_uj, discover_zones


def _zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


@pytest.fixture
def fake_powercap(tmp_path):
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control-type directory, not a zone
    (root / "intel-rapl" / "enabled").write_text("1\n")
    _zone(root, "intel-rapl:0", "package-0", 1_000_000, 262_143_328_850)
    _zone(root, "intel-rapl:0:0", "core", 500_000, 262_143_328_850)
    _zone(root, "intel-rapl:0:1", "dram", 200_000, 65_712_999_613)
    return root


def _set(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_discover_zones_real_layout(fake_powercap):
    zones = discover_zones(fake_powercap)
    assert [z.name for z in zones] == ["package-0", "package-0/core", "package-0/dram"]
    assert [z.counted for z in zones] == [True, False, True]


def test_window_energy_and_total(fake_powercap):
    s = RaplSampler(fake_powercap)
    assert s.available()[0]
    s.begin_window("a")
    _set(fake_powercap, "intel-rapl:0", 3_000_000)  # +2 J
    _set(fake_powercap, "intel-rapl:0:0", 1_500_000)  # +1 J core (inside package)
    _set(fake_powercap, "intel-rapl:0:1", 700_000)  # +0.5 J dram
    w = s.end_window("a")
    assert w.source == "rapl-counter"
    assert w.energy_mj == {"package-0": 2000.0, "package-0/core": 1000.0, "package-0/dram": 500.0}
    assert w.total_mj == 2500.0  # package + dram; core is already inside package


def test_wraparound(fake_powercap):
    s = RaplSampler(fake_powercap)
    _set(fake_powercap, "intel-rapl:0", 262_143_328_000)
    s.begin_window("w")
    _set(fake_powercap, "intel-rapl:0", 150)  # wrapped
    w = s.end_window("w")
    assert w.energy_mj["package-0"] == pytest.approx((850 + 150) / 1e3)
    assert counter_delta_uj(10, 5, 100) == 95


def test_window_keys(fake_powercap):
    s = RaplSampler(fake_powercap)
    s.begin_window("x")
    with pytest.raises(ValueError):
        s.begin_window("x")
    with pytest.raises(ValueError):
        s.end_window("y")


def test_missing_powercap_says_why(tmp_path):
    s = RaplSampler(tmp_path / "nope")
    ok, why = s.available()
    assert not ok and "does not exist" in why
    with pytest.raises(SamplerUnavailable, match="energy: unavailable"):
        s.begin_window("k")


def test_unreadable_counter_names_the_fix(fake_powercap):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can read files without permission bits")
    (fake_powercap / "intel-rapl:0" / "energy_uj").chmod(0)
    ok, why = RaplSampler(fake_powercap).available()
    assert not ok and "permission denied" in why and "chmod" in why
