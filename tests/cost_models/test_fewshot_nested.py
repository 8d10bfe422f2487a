"""Nested leave-one-device-out selection, sample design, --given, intervals and --metric for few-shot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hwnas.cli.app import main
from hwnas.cost_models import fewshot_design as fd
from hwnas.cost_models import fewshot_nested as fn
from hwnas.cost_models.fewshot import (
    FewShotPredictor,
    interval_columns,
    parse_method,
    reference_features,
    subset_features,
    suggest_samples,
)
from hwnas.cost_models.predictors import ArchCostPredictor
from hwnas.errors import InputError
from hwnas.spaces.nb201_table import load_table

COLS = ["lat_1080ti_1_ms", "lat_titanx_32_ms", "lat_gold_6240_ms", "lat_pixel3_ms", "lat_samsung_a50_ms"]
METHODS = ("ridge", "nn-ridge", "nn-ridge-aug", "nearest-3", "ensemble")


@pytest.fixture(scope="module")
def table():
    t = load_table()
    keep = [c for c in t.columns if not c.startswith("lat_") or c in COLS]
    return t[keep].copy()


def _choice(table, held_out):
    st = fn.Study(table, fn.random_draws(table, 6, 2, seed=1), methods=METHODS)
    refs = fn.split_refs("all", {}, COLS)
    configs = [(m,) for m in METHODS] + [METHODS]
    return fn.nested_choice(st, held_out, refs, configs, COLS), st


def test_nested_choice_never_reads_the_held_out_column(table):
    """Poison the held-out device's column: the configuration chosen for it and every inner score stay."""
    held = "lat_pixel3_ms"
    (choice, inner), st = _choice(table, held)
    poisoned = table.copy()
    poisoned[held] = np.random.default_rng(3).uniform(1, 1000, len(poisoned))  # garbage latencies
    (choice_p, inner_p), st_p = _choice(poisoned, held)
    assert choice == choice_p and inner == pytest.approx(inner_p)
    # the inner devices were scored from references without it, and the study never scored it
    assert all(held not in refs for (_, refs) in st_p._cache) and all(d != held for d, _ in st_p._cache)
    # sanity: the poison does reach a study that is allowed to look at it (the test can fail)
    assert not np.allclose(
        st.scores(held, [c for c in COLS if c != held]).rho,
        st_p.scores(held, [c for c in COLS if c != held]).rho,
    )


def test_subset_of_a_feature_bank_equals_building_on_the_subset(table):
    bank = reference_features(table, COLS)
    sub = subset_features(bank, COLS[:3])
    direct = reference_features(table, COLS[:3])
    assert sub.aug_names == direct.aug_names
    np.testing.assert_allclose(sub.z_aug, direct.z_aug)
    np.testing.assert_allclose(sub.log_ref, direct.log_ref)


def test_split_refs_classes_and_cross():
    classes = {"gpu": COLS[:2], "cpu": COLS[2:3], "phone": COLS[3:]}
    within = fn.split_refs("within", classes, COLS)
    assert within(COLS[3], None) is None  # one phone reference left: not predictable
    cross = fn.split_refs("cross", classes, COLS, source="gpu")
    assert cross("lat_pixel3_ms", None) == COLS[:2] and cross(COLS[0], None) is None
    assert fn.split_refs("all", classes, COLS)(COLS[0], COLS[1]) == COLS[2:]


def test_method_spellings():
    assert parse_method("nn-ridge-aug@1") == ("nn-ridge-aug", 1.0)
    assert parse_method("ensemble=nn-ridge+nearest-5") == ("ensemble", None)
    for bad in ("magic", "nearest-3@2", "ensemble=nn-ridge", "ridge@-1"):
        with pytest.raises(InputError, match="method"):
            parse_method(bad)


def test_designs_return_distinct_connected_cells(table):
    feats = reference_features(table, COLS[:4])
    pool = np.flatnonzero(table["connected"].to_numpy() == 1)
    for design in fd.DESIGNS:
        rows = fd.design_rows(feats, 8, pool, design, seed=0)
        assert len(set(rows.tolist())) == 8 and np.isin(rows, pool).all()


def test_suggest_given_returns_new_cells_and_bad_csv_is_rejected(tmp_path, capsys):
    t = load_table()
    first = suggest_samples(6, exclude_columns=("lat_pixel3_ms",))
    measured = t.set_index("arch").loc[first["arch"], "lat_pixel3_ms"]
    given = tmp_path / "S.csv"
    pd.DataFrame({"arch": first["arch"], "latency_ms": measured.to_numpy()}).to_csv(given, index=False)
    rc = main(["nb201", "suggest-samples", "--given", str(given), "--k", "4", "--exclude", "lat_pixel3_ms",
               "--json"])  # fmt: skip
    assert rc == 0
    new = json.loads(capsys.readouterr().out)
    assert len(new) == 4 and not set(r["arch"] for r in new) & set(first["arch"])
    assert all(r["committee_spread"] >= 0 for r in new)
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,lat\n|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    assert main(["nb201", "suggest-samples", "--given", str(bad), "--k", "3"]) == 2
    assert "missing column(s) latency_ms" in capsys.readouterr().err
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("arch,latency_ms\nnot-a-cell,1.0\n")
    assert main(["nb201", "suggest-samples", "--given", str(garbage), "--k", "3"]) == 2
    assert "malformed arch" in capsys.readouterr().err


def test_interval_columns_and_old_spelling_both_load(tmp_path):
    assert interval_columns("latency_ms") == ("lower_ms", "upper_ms")
    assert interval_columns("energy_mj") == ("lower_mj", "upper_mj")
    new = pd.DataFrame({"arch": ["a", "b"], "latency_ms": [2.0, 4.0], "lower_ms": [1.5, 3.0],
                        "upper_ms": [2.5, 5.0], "level": 0.9})  # fmt: skip
    est = ArchCostPredictor(new).predict(["b"])["latency_ms"]
    assert est.lower[0] == 3.0 and est.upper[0] == 5.0 and est.value[0] == 4.0
    assert ArchCostPredictor(new).cost_names == ("latency_ms",)  # lower_/upper_ are not costs themselves
    old = new.rename(columns={"lower_ms": "latency_ms_lo", "upper_ms": "latency_ms_hi"})
    assert ArchCostPredictor(old).predict(["a"])["latency_ms"].lower[0] == 1.5


def test_metric_on_a_real_non_latency_column(tmp_path, capsys):
    """NAS-Bench-201's measured CIFAR-10 training time per cell (seconds) as the cost to predict."""
    t = load_table()
    metric = "cifar10_train_time_s"
    rows = t[t["connected"] == 1].sample(12, random_state=7)
    s = tmp_path / "S.csv"
    pd.DataFrame({"arch": rows["arch"], metric: rows[metric]}).to_csv(s, index=False)
    out = tmp_path / "P.csv"
    rc = main(["nb201", "predict-device", "--samples", str(s), "--metric", metric, "-o", str(out), "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metric"] == metric and info["interval"]["columns"] == ["lower_s", "upper_s"]
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["index", "arch", metric, "lower_s", "upper_s", "level"]
    assert (pred["lower_s"] <= pred[metric]).all() and (pred[metric] <= pred["upper_s"]).all()
    conn = t["connected"].to_numpy() == 1
    rho = stats.spearmanr(pred[metric].to_numpy()[conn], t[metric].to_numpy()[conn]).statistic
    assert rho > 0.8  # training time follows the cell's cost, which the reference latencies carry
    # the samples must carry the metric's column
    assert main(["nb201", "predict-device", "--samples", str(s), "-o", str(out)]) == 2
    assert "latency_ms" in capsys.readouterr().err
    est = FewShotPredictor(metric=metric).fit(rows["arch"], rows[metric])
    assert est.predict(rows["arch"].iloc[:2]).shape == (2,)
