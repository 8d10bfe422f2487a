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


TEGRA = REC / "tegrastats"
TEGRA_KEYS = {"timestamp", "rails_mw", "rails_avg_mw", "total_input_mw", "total_rule", "gpu_util_pct",
              "gpu_mhz", "cpu", "ram_used_mb", "ram_total_mb", "temps_c", "unparsed"}  # fmt: skip


def test_tegrastats_json_one_object_per_line_with_the_issue_keys(capsys) -> None:
    assert main(["parse", "tegrastats", str(TEGRA / "xavier_nx_jp5_mw_gpu_burn.txt"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list) and len(data) == 25
    assert TEGRA_KEYS <= set(data[0])
    assert data[0]["timestamp"] == "2025-10-01T20:05:55" and data[0]["rails_mw"]["VDD_IN"] == 5542
    assert data[0]["cpu"][5] is None and data[0]["cpu"][0] == {"util_pct": 99.0, "mhz": 1189.0}
    assert data[0]["unparsed"] == {}


def test_tegrastats_table_says_the_total_rule(capsys) -> None:
    assert main(["parse", "tegrastats", str(TEGRA / "xavier_agx_jetpack42.txt")]) == 0
    assert "AGX Xavier: no total input rail" in capsys.readouterr().out


def test_tegrastats_malformed_line_exits_2_naming_the_line(tmp_path, capsys) -> None:
    log = tmp_path / "t.log"
    log.write_text((TEGRA / "tx2_jetpack3_vdd_in.txt").read_text() + "RAM 1/2MB CPU [zz]\n")
    assert main(["parse", "tegrastats", str(log), "--json"]) == 2
    assert f"{log}:4: CPU entry" in capsys.readouterr().err


def test_tegrastats_store_writes_rail_records(tmp_path, capsys) -> None:
    from hwnas.store import SQLiteStore

    db = tmp_path / "s.db"
    path = TEGRA / "nano_4gb_pom_5v_sudo.txt"
    assert main(["parse", "tegrastats", str(path), "--store", str(db), "--device", "jetson-nano"]) == 0
    with SQLiteStore(db) as s:
        recs = s.query(device="jetson-nano", metric="power_mw")
    assert len(recs) == 40 * 4  # 3 rails + the total input per line
    total = [r for r in recs if r.layer_key == "rail:total_input"]
    assert len(total) == 40 and total[-1].value == 5206 and "POM_5V_IN" in total[-1].extra["rule"]
    assert main(["parse", "tegrastats", str(path), "--store", str(db)]) == 2  # --device missing
    assert "go together" in capsys.readouterr().err
