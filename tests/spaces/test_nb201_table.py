"""The shipped NAS-Bench-201 table: loads fast, complete, and bad tables are named clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwnas.errors import InputError
from hwnas.spaces import nb201_table as T


def test_shipped_table_is_complete():
    T._read.cache_clear()
    df = T.load_table()
    assert df.shape == (15625, 34)
    assert list(df.columns) == list(T.ALL_COLUMNS)
    assert T.latency_columns(df) == list(T.LATENCY_COLUMNS)
    assert df["cifar10_valid_acc"].max() == pytest.approx(91.607, abs=1e-3)
    assert (T.default_path().parent / "NB201_ATTRIBUTION.md").exists()


def test_load_returns_a_copy():
    a = T.load_table()
    a["arch"] = "x"
    assert T.load_table()["arch"].iloc[0] != "x"


def test_missing_and_malformed_columns_are_named(tmp_path):
    df = T.load_table().head(50).drop(columns=["lat_pixel3_ms", "cifar10_valid_acc"])
    df["lat_gold_6240_ms"] = df["lat_gold_6240_ms"].astype(object)
    df.loc[3, "lat_gold_6240_ms"] = "fast"
    df.loc[4, "arch"] = "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError) as exc:
        T.load_table(path, required=T.ALL_COLUMNS)
    msg = str(exc.value)
    for name in ("lat_pixel3_ms", "cifar10_valid_acc", "lat_gold_6240_ms", "arch"):
        assert name in msg


def test_user_table_needs_only_what_is_asked(tmp_path):
    df = pd.DataFrame({"arch": T.load_table()["arch"].head(5), "lat_myboard_ms": np.arange(5) + 1.0})
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    out = T.load_table(path, required=("arch", "lat_myboard_ms"))
    assert T.latency_columns(out) == ["lat_myboard_ms"]
    df.loc[2, "lat_myboard_ms"] = -1.0
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="lat_myboard_ms"):
        T.load_table(path, required=("arch", "lat_myboard_ms"))


def test_index_of_and_names():
    df = T.load_table()
    assert T.index_of(df["arch"].iloc[1234]) == int(df["index"].iloc[1234])
    assert T.latency_column("pixel3") == "lat_pixel3_ms"
    assert T.device_name("lat_samsung_s7_ms") == "samsung_s7"
