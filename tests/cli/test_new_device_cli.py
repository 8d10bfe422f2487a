"""`hwnas new-device` end to end on the local CPU (NB201 cells profiled for real, few repeats), its resume
(a second run measures nothing new) and its input errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from hwnas.cli.app import main

FAST_CPU = """\
name: fast-cpu
backend: onnxruntime-cpu
description: the local CPU with few repeats (a test)
threads: 1
batch_size: 1
repeat:
  warmup: 1
  min_repeats: 3
  max_repeats: 5
  target_ci_rel: 0.5
  max_seconds: 0.2
"""


def _run(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if cap.out.strip().startswith("{") else {}), cap.err


@pytest.mark.parametrize(
    "bad, message",
    [
        ("latency<=abc", "expected NAME<=VALUE"),
        ("power<=3W", "latency budget"),
        ("latency<=-1ms", "must be > 0"),
        ("latency<=3", "needs a unit"),
    ],
)
def test_bad_constraint_exits_2(tmp_path, capsys, bad, message):
    argv = ["new-device", "--constraint", bad, "--k", "5", "--store", str(tmp_path / "s.db")]
    rc, _, err = _run(capsys, argv)
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "s.db").exists()  # nothing measured, no store created


def test_new_device_end_to_end_on_the_local_cpu_and_resume(tmp_path, capsys):
    dev = tmp_path / "fast-cpu.yaml"
    dev.write_text(FAST_CPU)
    store = tmp_path / "s.db"
    pred = tmp_path / "pred.csv"
    argv = ["new-device", "--device", str(dev), "--k", "5", "--constraint", "latency<=1000ms", "--evals", "2",
            "--max-checks", "1", "--clock", "cpu", "--store", str(store), "--json"]  # fmt: skip
    rc, first, _ = _run(capsys, [*argv, "--predictions", str(pred)])
    assert rc == 0, first
    assert first["initial_measurements"] == {"measured": 5, "read_back": 0}
    assert len(first["suggested_cells"]) == 5
    assert first["search"]["trainings"] == 2 and first["search"]["infeasible_trainings"] == 0
    assert first["best"]["latency_ms"] <= 1000 and 0 < first["best"]["table_accuracy"] < 100
    assert first["fewshot"]["samples_at_end"] >= 5
    import pandas as pd

    frame = pd.read_csv(pred)
    assert len(frame) == 15625 and (frame["latency_ms"] > 0).all()
    # every measurement is in the store: the second run reads them back and measures nothing new
    rc, second, _ = _run(capsys, argv)
    assert rc == 0
    assert second["measurements"]["measured"] == 0
    assert second["measurements"]["read_back"] == first["measurements"]["measured"]
    assert second["best"] == first["best"] and second["search"] == first["search"]
