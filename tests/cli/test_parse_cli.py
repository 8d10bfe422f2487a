"""`hwnas parse benchmark-model|battery FILE --json` on the recordings, and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from hwnas.cli.app import main
from hwnas.profilers.parsers.battery import KEYS as BATTERY_KEYS
from hwnas.profilers.parsers.benchmark_model import SUMMARY_KEYS

REC = Path(__file__).parents[1] / "profilers" / "recordings"


def test_benchmark_model_json(capsys) -> None:
    path = REC / "benchmark_model" / "riscv_qemu_mobilenet_v1_4threads_op_profiling.txt"
    assert main(["parse", "benchmark-model", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert tuple(data) == SUMMARY_KEYS
    assert data["threads"] == 4 and len(data["ops"]) == 31


def test_battery_json_and_table(capsys) -> None:
    path = REC / "android_battery" / "pixel3a_android9_battery_uevent_usb_not_charging.txt"
    assert main(["parse", "battery", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert tuple(data) == BATTERY_KEYS and data["voltage_v"] == 3.815175
    assert main(["parse", "battery", str(path)]) == 0
    assert "current_sign_rule" in capsys.readouterr().out


def test_bad_input_exits_2(tmp_path, capsys) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing here\n")
    assert main(["parse", "benchmark-model", str(junk), "--json"]) == 2
    assert "not benchmark_model output" in capsys.readouterr().err
    assert main(["parse", "battery", str(tmp_path / "missing.txt")]) == 2
    assert "file not found" in capsys.readouterr().err
