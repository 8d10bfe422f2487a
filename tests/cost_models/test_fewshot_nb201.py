"""Few-shot latency prediction for a held-out device: accuracy, no leakage, CLI, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hwnas.cli.app import main
from hwnas.cost_models.fewshot import METHODS, FewShotLatencyPredictor, load_samples, suggest_samples
from hwnas.errors import InputError
from hwnas.spaces.nb201_table import load_table

HELD_OUT = "lat_pixel3_ms"  # the hard one: its runtime prunes dead edges


@pytest.fixture(scope="module")
def table():
    return load_table()


@pytest.fixture(scope="module")
def reference(table):
    return table.drop(columns=[HELD_OUT])  # the held-out device's column is not even present


@pytest.fixture(scope="module")
def samples(table):
    rows = table[table["connected"] == 1].sample(10, random_state=4)
    return rows["arch"].to_numpy(), rows[HELD_OUT].to_numpy()


def test_predicts_held_out_device_well_and_beats_flops(table, reference, samples):
    est = FewShotLatencyPredictor(reference=reference, candidates=METHODS).fit(*samples)
    assert est.method_ in METHODS and set(est.cv_scores_) == set(METHODS)
    pred = est.predict_all()
    cols = ["index", "arch", "latency_ms", "lower_ms", "upper_ms", "level"]
    assert list(pred.columns) == cols and len(pred) == 15625
    assert (pred["lower_ms"] <= pred["latency_ms"]).all() and (
        pred["latency_ms"] <= pred["upper_ms"]
    ).all()
    conn = table["connected"].to_numpy() == 1
    truth = table[HELD_OUT].to_numpy()
    rho = stats.spearmanr(pred["latency_ms"].to_numpy()[conn], truth[conn]).statistic
    flops_rho = stats.spearmanr(table["flops_cifar10_m"].to_numpy()[conn], truth[conn]).statistic
    assert rho > 0.9 and rho > flops_rho
    assert HELD_OUT not in est.reference_columns_


def test_predict_matches_predict_all_rows(table, reference, samples):
    est = FewShotLatencyPredictor(reference=reference, method="nn-ridge").fit(*samples)
    archs = table["arch"].iloc[[5, 77, 9000]].tolist()
    assert np.allclose(est.predict(archs), est.predict_all()["latency_ms"].iloc[[5, 77, 9000]])


def test_held_out_column_changes_nothing_outside_samples(table, samples):
    """Scrambling the held-out column away from the sampled rows leaves predictions unchanged (no leakage)."""
    a = FewShotLatencyPredictor(reference=table, exclude_columns=(HELD_OUT,)).fit(*samples)
    scrambled = table.copy()
    scrambled[HELD_OUT] = np.random.default_rng(0).permutation(scrambled[HELD_OUT].to_numpy())
    b = FewShotLatencyPredictor(reference=scrambled, exclude_columns=(HELD_OUT,)).fit(*samples)
    assert np.allclose(a.predict_all()["latency_ms"], b.predict_all()["latency_ms"])


def test_bad_samples_are_rejected(reference, samples):
    archs, lat = samples
    with pytest.raises(InputError, match="at least 5"):
        FewShotLatencyPredictor(reference=reference).fit(archs[:4], lat[:4])
    with pytest.raises(InputError, match="> 0"):
        FewShotLatencyPredictor(reference=reference).fit(archs, -lat)
    with pytest.raises(InputError, match="unknown few-shot method"):
        FewShotLatencyPredictor(reference=reference, method="magic").fit(archs, lat)


def test_suggest_samples_spread_over_ranks(reference):
    s = suggest_samples(k=10, reference=reference)
    assert len(s) == 10 and s["arch"].nunique() == 10
    ranks = s["mean_reference_rank"].to_numpy()
    assert ranks.min() < 0.2 * 15625 and ranks.max() > 0.8 * 15625  # covers fast and slow cells


def test_load_samples_names_missing_column(tmp_path):
    p = tmp_path / "s.csv"
    pd.DataFrame({"arch": ["x"], "lat": [1.0]}).to_csv(p, index=False)
    with pytest.raises(InputError, match="latency_ms"):
        load_samples(p)


def test_cli_predict_device_and_suggest(tmp_path, table, samples, capsys):
    archs, lat = samples
    s = tmp_path / "S.csv"
    pd.DataFrame({"arch": archs, "latency_ms": lat}).to_csv(s, index=False)
    out = tmp_path / "P.csv"
    rc = main(["predict-device", "--samples", str(s), "--out", str(out), "--exclude", HELD_OUT, "--json"])
    assert rc == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert "loo_spearman" in info["cv"] and info["interval"]["columns"] == ["lower_ms", "upper_ms"]
    pred = pd.read_csv(out)
    cols = ["index", "arch", "latency_ms", "lower_ms", "upper_ms", "level"]
    assert list(pred.columns) == cols and len(pred) == 15625
    assert (pred["lower_ms"] <= pred["latency_ms"]).all() and (
        pred["latency_ms"] <= pred["upper_ms"]
    ).all()
    assert main(["suggest-samples", "--k", "5", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert main(["predict-device", "--samples", str(tmp_path / "none.csv"), "--out", str(out)]) == 2
