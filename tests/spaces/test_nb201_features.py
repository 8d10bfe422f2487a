"""NAS-Bench-201 featurizers: shapes, speed, agreement with LayerSpecs, registry names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwnas.errors import InputError
from hwnas.spaces import nb201
from hwnas.spaces import nb201_features as F
from hwnas.spaces.nb201_table import load_table


@pytest.fixture(scope="module")
def table():
    return load_table(required=("arch",))


def test_whole_space_featurizes(table):
    # Speed is measured by benchmarks, not asserted here (shared CI machines vary).
    for f in F.FEATURIZERS.values():
        out = f(table)
        assert len(out) == len(table) and np.isfinite(out.to_numpy(float)).all()
        assert out.index.equals(table.index)


def test_onehot_rows_sum_to_six(table):
    oh = F.nb201_onehot(table)
    assert oh.shape[1] == 30
    assert (oh.sum(axis=1) == 6).all()


def test_edgeop_counts_account_for_every_edge(table):
    e = F.nb201_edgeop(table)
    per_edge = e[[c for c in e.columns if c.startswith(("live_", "unused_", "zeroin_")) or c == "none"]]
    assert (per_edge.sum(axis=1) == 6).all()
    assert int(e["connected"].sum()) == 15625 - 341


def test_layer_features_equal_summed_layerspecs(table):
    rows = table.sample(15, random_state=2)
    feats = F.nb201_layers(rows)
    for (_, r), arch in zip(feats.iterrows(), rows["arch"], strict=True):
        for prune, suffix in ((False, "all"), (True, "dce")):
            want = F._stats(nb201.layers(arch, prune_dead=prune).layers)
            got = [r[f"{n}_{suffix}"] for n in F._LAYER_STATS]
            assert np.allclose(want, got)


def test_missing_or_bad_arch_is_named():
    with pytest.raises(InputError, match="arch"):
        F.nb201_onehot(pd.DataFrame({"x": [1]}))
    with pytest.raises(InputError):
        F.nb201_opcount(pd.DataFrame({"arch": ["|bogus~0|"]}))


def test_registry_resolves_nb201_names():
    features = pytest.importorskip("hwnas.cost_models.features")
    for name in ("nb201-onehot", "nb201-opcount", "nb201-layers", "nb201-edgeop"):
        assert features.get_featurizer(name) is F.FEATURIZERS[name]


def test_hwnas_fit_and_evaluate_on_a_nb201_table(tmp_path, table):
    """`hwnas fit --data <nb201 table> --target lat_<device>_ms --features nb201-*` end to end."""
    from hwnas.cli.app import main
    from hwnas.spaces.nb201_table import load_table

    full = load_table()
    rows = full[full["connected"] == 1].sample(400, random_state=0)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    rows.iloc[:300].to_csv(train, index=False)
    rows.iloc[300:].to_csv(test, index=False)
    out = tmp_path / "gold.json"
    for feats in ("nb201-onehot", "nb201-edgeop"):
        rc = main(
            [
                "fit",
                "--data",
                str(train),
                "--target",
                "lat_gold_6240_ms",
                "--features",
                feats,
                "--kind",
                "linear",
                "--out",
                str(out),
                "--json",
            ]
        )
        assert rc == 0 and out.exists()
        rc = main(
            ["evaluate", "--table", str(out), "--data", str(test), "--target", "lat_gold_6240_ms", "--json"]
        )
        assert rc == 0
