"""tegrastats parser: every shared recording, the newer formats, errors with line numbers, properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.profilers.parsers.tegrastats import CORE_KEYS, TegrastatsParseError, parse, parse_line

REC = Path(__file__).parent / "recordings" / "tegrastats"
needs_rec = pytest.mark.skipif(not REC.is_dir(), reason=f"shared recordings not at {REC}")


def _rec(name: str) -> list:
    return parse((REC / name).read_text(), name)


@needs_rec
def test_every_recording_parses_with_nothing_unparsed():
    files = sorted(REC.glob("*.txt"))
    assert len(files) == 7
    for f in files:
        readings = parse(f.read_text(), f.name)
        assert readings, f
        for r in readings:
            assert r.unparsed == {}, (f.name, r.line, r.unparsed)
            assert r.ram_total_mb > r.ram_used_mb > 0
            assert set(CORE_KEYS) <= set(r.to_dict())


@needs_rec
def test_tx1_legacy_lowercase_cpu_shares_one_clock_and_has_no_rails():
    r = _rec("tx1_l4t28_legacy_format.txt")[1]
    assert [c["util_pct"] for c in r.cpu] == [17, 11, 65, 0]
    assert {c["mhz"] for c in r.cpu} == {1734}
    assert r.gpu_util_pct == 39 and r.gpu_mhz == [76]
    assert r.extra["emc_mhz"] == 1600 and r.rails_mw == {}
    assert r.total_input_mw is None and "no power rails" in r.total_rule


@needs_rec
def test_tx2_vdd_in_is_the_total_and_other_rails_are_not_added():
    r = _rec("tx2_jetpack3_vdd_in.txt")[0]
    assert r.rails_mw["VDD_IN"] == 1931 and r.rails_avg_mw["VDD_DDR"] == 326
    assert r.total_input_mw == 1931  # not 1931 + 231 + 154 + ...
    assert "not added" in r.total_rule
    assert r.temps_c["Tdiode"] == 37.25 and r.extra["mts_bg_pct"] == 8
    assert len(r.cpu) == 6 and r.cpu[0] == {"util_pct": 0.0, "mhz": 1303.0}
    assert "mW" in r.extra["rail_units"]  # bare numbers: the assumption is stated, not silent


@needs_rec
def test_tx2_l4t32_clockless_engines_and_renamed_rails():
    r = _rec("tx2_l4t32_vdd_sys_rails.txt")[0]
    assert r.gpu_util_pct == 0 and r.gpu_mhz is None
    assert r.total_input_mw == 3140 and r.rails_mw["VDD_SYS_GPU"] == 153


@needs_rec
def test_agx_xavier_has_no_input_rail_so_rails_are_summed():
    r = _rec("xavier_agx_jetpack42.txt")[0]
    assert r.total_input_mw == 463 + 618 + 2936 + 0 + 309 + 3306
    assert r.total_rule.startswith("AGX Xavier")
    assert len(r.cpu) == 8


@needs_rec
def test_nano_pom_5v_and_iram_and_the_load_transition():
    rs = _rec("nano_4gb_pom_5v_sudo.txt")
    assert len(rs) == 40 and [r.line for r in rs] == list(range(1, 41))
    assert all(r.total_input_mw == r.rails_mw["POM_5V_IN"] for r in rs)
    assert rs[0].extra["iram_total_mb"] == pytest.approx(252 / 1024)
    assert rs[0].extra["engines"]["APE"] == {"util_pct": None, "mhz": [25.0]}
    assert rs[-1].gpu_util_pct == 99 and rs[-1].gpu_mhz == [921]
    assert max(r.total_input_mw for r in rs[29:]) > 2 * rs[0].total_input_mw


@needs_rec
def test_nano_offline_cores_are_null():
    r = _rec("nano_2cores_offline_no_rails.txt")[0]
    assert r.cpu[2] is None and r.cpu[3] is None and r.cpu[0]["mhz"] == 921
    assert r.total_input_mw is None


@needs_rec
def test_xavier_nx_jp5_timestamps_mw_suffix_and_lfb_units():
    rs = _rec("xavier_nx_jp5_mw_gpu_burn.txt")
    assert rs[0].timestamp == "2025-10-01T20:05:55"
    assert rs[0].rails_mw == {"VDD_IN": 5542, "VDD_CPU_GPU_CV": 1594, "VDD_SOC": 1234}
    assert "rail_units" not in rs[0].extra  # units were printed
    kb = [r for r in rs if r.extra["ram_lfb"]["block"] == "128kB"]
    assert kb and kb[0].extra["ram_lfb"]["blocks"] == 2
    assert rs[0].cpu[4] is None and rs[-1].gpu_util_pct == 99 and rs[-1].total_input_mw == 13791


ORIN = (
    "08-21-2023 10:58:27 RAM 4585/30536MB (lfb 5388x4MB) SWAP 0/15268MB (cached 0MB) "
    "CPU [0%@2201,1%@2201,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 39%@[305,0] NVENC off NVDEC 1100 NVJPG off "
    "VIC off OFA off NVDLA0 off PVA0_FREQ off APE 174 cpu@45.5C soc2@42.468C gpu@42.468C tj@45.5C "
    "VDD_GPU_SOC 2390mW/2390mW VDD_CPU_CV 398mW/398mW VIN_SYS_5V0 2817mW/2817mW NC 0mW/0mW "
    "VDDQ_VDD2_1V8AO 302mW/302mW NC 0mW/0mW"
)


def test_orin_format_per_gpc_clocks_off_engines_and_nc_rails():
    r = parse_line(ORIN, 7)
    assert r.line == 7 and r.timestamp == "2023-08-21T10:58:27"
    assert r.gpu_util_pct == 39 and r.gpu_mhz == [305, 0]
    eng = r.extra["engines"]
    assert eng["NVENC"] == "off" and eng["PVA0_FREQ"] == "off" and eng["NVDEC"]["mhz"] == [1100]
    assert "NC" not in r.rails_mw and r.extra["skipped_rails"] == {"NC": 2}
    assert r.total_rule.startswith("AGX Orin") and r.total_input_mw == 2390 + 398 + 2817 + 302
    assert r.temps_c["cpu"] == 45.5 and r.unparsed == {}


def test_unknown_fields_are_kept_verbatim():
    r = parse_line("RAM 1/2MB FOO 12kB VDD_IN 5/5 NEWTHING@x BAR")
    assert r.unparsed == {"FOO": "FOO 12kB", "NEWTHING": "NEWTHING@x", "BAR": "BAR"}
    assert r.total_input_mw == 5


def test_rail_in_watts_is_not_guessed_as_milliwatts():
    r = parse_line("RAM 1/2MB VDD_IN 5.5W/5.5W")
    assert r.rails_mw == {} and "VDD_IN" in r.unparsed


@pytest.mark.parametrize(
    "line, what",
    [
        ("hello world", "no RAM field"),
        ("RAM 1/2MB CPU [12%@x]", "CPU entry"),
        ("RAM 1/2MB GR3D_FREQ high", "GR3D_FREQ"),
        ("RAM 1/2MB VDD_IN 5mW/5", "unit"),
        ("RAM x/2MB", "field RAM is not in a form"),
    ],
)
def test_malformed_lines_name_the_line_number(line, what):
    with pytest.raises(TegrastatsParseError, match=what) as exc:
        parse(f"RAM 1/2MB\n\n{line}\n", "log.txt")
    assert exc.value.message.startswith("log.txt:3:")


# ---- properties -------------------------------------------------------------------------------------
_names = st.from_regex(r"[A-Z][A-Z0-9]{1,6}_[A-Z0-9]{1,5}", fullmatch=True)
_core = st.one_of(st.none(), st.tuples(st.integers(0, 100), st.integers(1, 3000)))


@st.composite
def tegrastats_line(draw):
    parts, expect = [], {}
    if draw(st.booleans()):
        parts.append("03-04-2024 05:06:07")
        expect["timestamp"] = "2024-03-04T05:06:07"
    used, total = draw(st.integers(0, 10**5)), draw(st.integers(10**5 + 1, 10**6))
    parts.append(f"RAM {used}/{total}MB (lfb {draw(st.integers(0, 999))}x4MB)")
    cores = draw(st.lists(_core, min_size=1, max_size=12))
    parts.append("CPU [" + ",".join("off" if c is None else f"{c[0]}%@{c[1]}" for c in cores) + "]")
    gpu = draw(st.tuples(st.integers(0, 100), st.lists(st.integers(0, 3000), max_size=3)))
    clk = "" if not gpu[1] else ("@" + str(gpu[1][0]) if len(gpu[1]) == 1 else
                                 "@[" + ",".join(map(str, gpu[1])) + "]")  # fmt: skip
    parts.append(f"GR3D_FREQ {gpu[0]}%{clk}")
    temps = draw(st.dictionaries(st.sampled_from(["CPU", "GPU", "AO", "tj", "soc0"]),
                                 st.integers(-400, 1200).map(lambda x: x / 4)))  # fmt: skip
    parts += [f"{k}@{v:g}C" for k, v in temps.items()]
    rails = draw(st.dictionaries(_names, st.tuples(st.integers(0, 60000), st.integers(0, 60000)), max_size=5))
    suffix = draw(st.sampled_from(["", "mW"]))
    parts += [f"{k} {a}{suffix}/{b}{suffix}" for k, (a, b) in rails.items()]
    unknown = draw(st.lists(st.from_regex(r"ZZ[a-z]{1,5}", fullmatch=True), max_size=3, unique=True))
    parts += unknown
    expect.update(used=used, total=total, cores=cores, gpu=gpu, temps=temps, rails=rails, unknown=unknown)
    return " ".join(parts), expect


@settings(max_examples=150, deadline=None)
@given(tegrastats_line())
def test_property_every_generated_field_round_trips(case):
    line, e = case
    r = parse_line(line)
    assert r.timestamp == e.get("timestamp")
    assert (r.ram_used_mb, r.ram_total_mb) == (e["used"], e["total"])
    assert r.cpu == [None if c is None else {"util_pct": c[0], "mhz": c[1]} for c in e["cores"]]
    assert r.gpu_util_pct == e["gpu"][0] and r.gpu_mhz == (e["gpu"][1] or None)
    assert r.temps_c == e["temps"]
    assert r.rails_mw == {k: a for k, (a, _) in e["rails"].items()}
    assert r.rails_avg_mw == {k: b for k, (_, b) in e["rails"].items()}
    assert sorted(r.unparsed) == sorted(e["unknown"])
    if "VDD_IN" not in r.rails_mw and r.total_input_mw is not None:
        assert "sum" in r.total_rule


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
def test_property_any_text_parses_or_raises_a_clear_error(text):
    try:
        rs = parse("RAM 1/2MB " + text.replace("\n", " ").replace("\r", " "))
    except TegrastatsParseError as exc:
        assert exc.message.startswith("<tegrastats>:1:")
    else:
        assert len(rs) == 1 and rs[0].ram_total_mb == 2


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_names, st.integers(0, 50000), min_size=1, max_size=6))
def test_property_vdd_in_alone_is_the_total_whatever_else_is_there(rails):
    rails = {**rails, "VDD_IN": 4321}
    r = parse_line("RAM 1/2MB " + " ".join(f"{k} {v}/{v}" for k, v in rails.items()))
    assert r.total_input_mw == 4321
