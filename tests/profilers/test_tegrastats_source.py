"""tegrastats as a live source: a child process replaying a real recording line by line, as tegrastats
prints it every --interval ms; the jetson backend measuring energy from it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from profiler_helpers import FAST_REPEAT, tiny_model  # noqa: E402

from hwnas.device_config import parse_config  # noqa: E402
from hwnas.profilers.registry import availability, get_profiler  # noqa: E402
from hwnas.profilers.tegrastats_source import TegrastatsSource  # noqa: E402

REC = Path(__file__).parent / "recordings" / "tegrastats" / "xavier_nx_jp5_mw_gpu_burn.txt"
REPLAY = ("import sys, time\nlines = open(sys.argv[1]).read().splitlines()\ni = 0\n"
          "while True:\n    print(lines[i % len(lines)], flush=True)\n    i += 1\n    time.sleep(0.02)\n")


def replay(path: Path = REC) -> list[str]:
    return [sys.executable, "-c", REPLAY, str(path)]


def test_live_readings_follow_the_log():
    src = TegrastatsSource(replay())
    try:
        first = src.read_rails_mw()
        assert set(first) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
        assert src.total_mw(first) == first["VDD_IN"] and "VDD_IN" in src.total_rule
    finally:
        src.close()


def test_a_log_without_rails_has_no_total(tmp_path):
    src = TegrastatsSource(replay(REC.with_name("nano_2cores_offline_no_rails.txt")))
    try:
        with pytest.raises(OSError, match="no power rails"):
            src.total_mw(src.read_rails_mw())
    finally:
        src.close()


def test_missing_tegrastats_is_unavailable_with_the_reason():
    ok, why = TegrastatsSource(["no-such-tegrastats-binary"]).available()
    assert not ok and "not on PATH" in why


def test_a_process_that_prints_nothing_times_out(tmp_path):
    src = TegrastatsSource([sys.executable, "-c", "import time; time.sleep(5)"], first_line_timeout_s=0.5)
    try:
        with pytest.raises(OSError, match="printed nothing"):
            src.read_rails_mw()
    finally:
        src.close()


def test_jetson_backend_measures_energy_from_tegrastats(store):
    cfg = parse_config({
        "name": "nx-tegrastats", "backend": "jetson",
        "connection": {"torch_device": "cpu",  # the Nano log: POM_5V_IN changes on almost every line
                       "tegrastats_command": replay(REC.with_name("nano_4gb_pom_5v_sudo.txt"))},
        "repeat": FAST_REPEAT, "power": {"sampler": "tegrastats", "sampling_hz": 100, "min_window_s": 0.3},
    }, "<test>")  # fmt: skip
    ok, why = availability(cfg)
    assert ok and "POM_5V_IN is the module's total input" in why
    with get_profiler(cfg) as prof:  # closing stops the replay child (else it prints until pytest exits)
        res = prof.profile(tiny_model(), store, per_layer=False, memory=False)
        src = prof._meter.source
    assert src._proc.poll() is not None  # the tegrastats child is gone
    pw = next(m for m in res.measured if m.metric == "power_mw")
    assert 900 <= pw.value <= 5300  # the recording's POM_5V_IN range (920 mW idle to 5.2 W under load)
    assert "POM_5V_IN" in pw.extra["total_rule"]
    assert pw.source.startswith("tegrastats-samples") and pw.extra["update_period_s"] < 0.2
