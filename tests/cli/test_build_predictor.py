"""`hwnas build-predictor`: the adaptive loop over a real store and real onnxruntime timings, resume,
interrupt, and the CLI's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.cli.app import main
from hwnas.device_config import RepeatPolicy, load_device
from hwnas.errors import InputError
from hwnas.profilers import kernel_dataset as kd
from hwnas.workflows.build_predictor import (
    BuildSpec,
    adaptive_candidates,
    build_predictor,
    calibration_networks,
    parse_duration,
)

FAST = RepeatPolicy(warmup=1, min_repeats=3, max_repeats=5, target_ci_rel=0.5, max_seconds=0.05)


class LogLinear:
    """A small real estimator with the build loop's protocol: per-kind least squares of log latency on
    log FLOPs and log bytes, out-of-fold errors by 3-fold cross-validation."""

    def __init__(self) -> None:
        self.fits = 0

    @staticmethod
    def _xy(df):
        x = np.column_stack([np.ones(len(df)), np.log1p(df["f_flops"]), np.log1p(df["f_bytes"])])
        return x, np.log(df["latency_ms"].to_numpy())

    def fit(self, df):
        self.fits += 1
        x, y = self._xy(df)
        self.coef_ = np.linalg.lstsq(x, y, rcond=None)[0]
        return self

    def oof_errors(self, df):
        x, y = self._xy(df)
        fold = np.arange(len(df)) % 3
        pred = np.empty(len(df))
        for f in range(3):
            c = np.linalg.lstsq(x[fold != f], y[fold != f], rcond=None)[0]
            pred[fold == f] = x[fold == f] @ c
        return np.abs(np.exp(pred - y) - 1.0)

    def save(self, path, meta=None):
        path.write_text(json.dumps({"format": "test-loglinear", "coef": list(self.coef_), "meta": meta}))


@pytest.fixture
def fast_repeats(monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(kd, "DATASET_REPEAT", FAST)


def _spec(tmp_path, **kw):
    base = dict(device="local-cpu", out=tmp_path / "p.json", samples=40, time_budget_s=None,
                initial_fraction=0.5, store_path=tmp_path / "k.db", clock="cpu", rounds=2,
                calibration_models=0)  # fmt: skip
    return BuildSpec(**{**base, **kw})


def test_parse_duration_reads_the_forms_the_help_names():
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("45") == 45
    assert parse_duration("none") is None
    for bad in ("30 minutes", "m", "-5", "0"):
        with pytest.raises(InputError):
            parse_duration(bad)


def test_adaptive_candidates_go_near_the_worst_kernels_and_to_the_worst_kinds():
    design = kd.sample_kind("conv", 20, seed=0) + kd.sample_kind("add", 20, seed=0)
    import pandas as pd

    df = pd.DataFrame({"kind": [c.kind for c in design], "key": [c.key() for c in design]})
    err = np.where(df["kind"] == "conv", 0.5, 0.01)
    err[3] = 5.0  # one conv predicted far off
    new = adaptive_candidates(df, err, 20, seed=0, salt=1, exclude=set(df["key"]))
    assert len(new) == 20 and not {c.key() for c in new} & set(df["key"])
    assert sum(c.kind == "conv" for c in new) >= 18  # the kind with the higher error gets the samples
    worst = design[3]
    assert any(abs(np.log(c.cin / worst.cin)) < 1.5 and abs(np.log(c.hw / worst.hw)) < 1.5 for c in new[:2])


def test_build_runs_the_rounds_to_the_sample_budget_then_resumes_measuring_nothing(fast_repeats, tmp_path):
    made: list[LogLinear] = []

    def factory():
        made.append(LogLinear())
        return made[-1]

    res = build_predictor(_spec(tmp_path), predictor_factory=factory)
    assert res.samples_total == 40 and res.measured == 40 and res.stop_reason == "sample budget"
    assert [r["round"] for r in res.rounds] == [1, 2] and all(r["added"] > 0 for r in res.rounds)
    assert 16 <= res.fitted_on <= 40 and res.oof_mape_pct is not None
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["meta"]["samples"] == 40 and saved["meta"]["device"] == "local-cpu"
    again = build_predictor(_spec(tmp_path), predictor_factory=factory)
    assert again.measured == 0 and again.samples_total == 40 and again.skipped == 20


def test_an_interrupted_build_keeps_its_kernels(fast_repeats, tmp_path):
    seen = []

    def stop(desc, done, total):
        seen.append(done)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_predictor(_spec(tmp_path, rounds=0), progress=stop, predictor_factory=LogLinear)
    from hwnas.store import SQLiteStore

    with SQLiteStore(tmp_path / "k.db") as store:
        fp = kd.KernelProfiler(load_device("local-cpu"), clock="cpu").fingerprint_id()
        assert len(kd.measured_keys(store, fp)) == 5
    res = build_predictor(_spec(tmp_path, rounds=0), predictor_factory=LogLinear)
    assert res.skipped == 5 and res.measured == 15 and res.samples_total == 20


def test_a_spent_time_budget_is_a_clear_error_when_nothing_was_measured(fast_repeats, tmp_path):
    with pytest.raises(InputError, match="time budget"):
        build_predictor(_spec(tmp_path, time_budget_s=1e-9), predictor_factory=LogLinear)


def test_calibration_networks_are_space_points_never_torchvision():
    names = calibration_networks(6, seed=0)
    assert names == calibration_networks(6, seed=0) and len(set(names)) == 6
    assert all(n.startswith(("mbv2@", "nb201:")) for n in names)
    assert sum(n.startswith("nb201:") for n in names) == 2


def test_help_lists_the_options():
    pytest.importorskip("typer")
    from typer.testing import CliRunner

    from hwnas.cli.app import app

    r = CliRunner().invoke(app, ["build-predictor", "--help"])
    assert r.exit_code == 0
    for opt in ("--device", "--samples", "--time-budget", "--initial-fraction", "--store", "--clock",
                "--threads", "--out", "--json"):  # fmt: skip
        assert opt in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "no-such-device"], "unknown device"),
        (["--device", "local-cpu", "--time-budget", "30 minutes"], "not a duration"),
        (["--device", "local-cpu", "--initial-fraction", "2"], "--initial-fraction"),
        (["--device", "local-cpu", "--clock", "sundial"], "--clock"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, args, message):
    files = ["--out", str(tmp_path / "p.json"), "--store", str(tmp_path / "k.db")]
    code = main(["build-predictor", *args, *files])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "k.db").exists() and not (tmp_path / "p.json").exists()


def test_cli_builds_a_kernel_predictor_end_to_end(fast_repeats, tmp_path, capsys):
    args = ["build-predictor", "--device", "local-cpu", "--samples", "48", "--rounds", "1",
            "--calibration-models", "0", "--clock", "cpu", "--time-budget", "none", "--store",
            str(tmp_path / "k.db"), "--out", str(tmp_path / "p.json"), "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples_total"] == 48 and out["measured"] == 48
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["format"] == "hwnas-kernel-predictor" and doc["meta"]["samples"] == 48
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["measured"] == 0
