"""``--where`` never runs code (finding 2); outputs never destroy inputs and are written atomically, and
long jobs check them first (findings 3 and 8)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from hwnas.cli.app import main
from hwnas.errors import InputError
from hwnas.where import filter_rows, parse_where, where_mask


@pytest.fixture
def table_csv(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.uniform(1, 5, 60), "b": rng.uniform(1, 5, 60), "connected": [0, 1] * 30})
    df["y"] = 2 * df["a"] + df["b"]
    path = tmp_path / "T.csv"
    df.to_csv(path, index=False)
    return path


ATTACKS = [
    "@pd.io.common.os.system('touch {F}') == 0",
    "@Path('{F}').touch()",
    "a.__class__.__init__.__globals__['os'].system('touch {F}') == 0",
    "__import__('os').system('touch {F}') == 0",
    "a == 1 or @pd.io.common.os.system('touch {F}')",
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_where_runs_no_code(capsys, tmp_path, table_csv, attack, command):
    flag = tmp_path / "F"
    where = attack.format(F=flag)
    if command == "fit":
        args = ["fit", "--data", str(table_csv), "--target", "y", "--kind", "linear",
                "--out", str(tmp_path / "t.json"), "--where", where]  # fmt: skip
    else:
        table = tmp_path / "t.json"
        assert main(["fit", "--data", str(table_csv), "--target", "y", "--kind", "linear",
                     "--out", str(table)]) == 0  # fmt: skip
        args = ["evaluate", "--table", str(table), "--data", str(table_csv), "--target", "y",
                "--where", where]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: --where" in err and "hint:" in err
    assert not flag.exists()


def test_where_grammar_selects_the_rows_pandas_would():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.integers(0, 5, 200), "b": rng.normal(size=200),
                       "s": rng.choice(["x", "y", "z"], 200), "my col": rng.normal(size=200)})  # fmt: skip
    for text in ("a == 1", "a != 1 and b > 0", "not (a >= 3) or s == 'y'", "(a < 2 or a > 3) and s != \"z\"",
                 "`my col` <= -0.5", "~(a == 2) & (b < 0.1) | s == 'x'", "1 < a", "a == b"):  # fmt: skip
        expect = df.query(text).index.to_numpy()
        got = np.flatnonzero(where_mask(df, text).to_numpy())
        assert np.array_equal(got, expect), text
    assert len(filter_rows(df, "a == 0 and a == 1")) == 0


@pytest.mark.parametrize(
    "text,needle",
    [("", "empty"), ("a >", "ends too early"), ("a > 1 b", "unexpected"), ("a < b < c", "chained"),
     ("(a > 1", "ends too early"), ("a + 1 > 2", "unexpected '+'"), ("1 == 1", "at least one column"),
     ("f(a) > 1", "found '('"), ("@x > 1", "'@'"), ("a" + " and a > 1" * 5000, "characters long"),
     ("(" * 60 + "a > 1" + ")" * 60, "nested deeper")],  # fmt: skip
)
def test_where_errors_name_the_problem(text, needle):
    with pytest.raises(InputError, match=None) as info:
        parse_where(text)
    assert needle in info.value.message


def test_where_type_and_column_errors():
    df = pd.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    for text, needle in (("nope > 1", "no column"), ("s > 1", "holds text"), ("a == 'x'", "is numeric")):
        with pytest.raises(InputError) as info:
            where_mask(df, text)
        assert needle in info.value.message


# --- outputs -------------------------------------------------------------------------------------------


def _store(tmp_path):
    from hwnas.store import SQLiteStore

    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    return path


def _bytes(path):
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["profile-csv", "export", "fit", "predict-device", "symlink"])
def test_an_output_that_is_an_input_is_refused_before_any_work(capsys, tmp_path, table_csv, kind):
    if kind == "profile-csv":
        victim = _store(tmp_path)
        args = ["profile", "-m", "resnet18", "--store", str(victim), "--csv", str(victim)]
    elif kind == "export":
        victim = _store(tmp_path)
        args = ["export", "--format", "csv", "--out", str(victim), "--store", str(victim)]
    elif kind == "fit":
        victim = table_csv
        args = ["fit", "--data", str(victim), "--target", "y", "--out", str(victim)]
    elif kind == "predict-device":
        from hwnas.spaces.nb201_table import load_table

        victim = tmp_path / "S.csv"
        df = load_table()
        df[df.connected == 1].head(8).rename(columns={"lat_pixel3_ms": "latency_ms"})[
            ["arch", "latency_ms"]].to_csv(victim, index=False)  # fmt: skip
        args = ["predict-device", "--samples", str(victim), "--out", str(victim)]
    else:
        victim = table_csv
        link = tmp_path / "link.json"
        link.symlink_to(victim)
        args = ["fit", "--data", str(victim), "--target", "y", "--out", str(link)]
    before = _bytes(victim)
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is the same file as" in err and "hint:" in err
    assert _bytes(victim) == before


def test_unwritable_outputs_fail_before_the_long_work(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    calls = []
    import hwnas.searchers.registry as registry

    real = registry.make_searcher
    monkeypatch.setattr(registry, "make_searcher", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = ["search", "--objective", "hyperpower-digits", "--searcher", "random_search", "--evals", "2",
            "--history", str(blocker / "h.json")]  # fmt: skip
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--history" in err and "hint:" in err and not calls
    store = _store(tmp_path)
    assert main(["profile", "-m", "resnet18", "--store", str(store), "--csv", str(blocker / "x.csv")]) == 2
    assert "--csv" in capsys.readouterr().err
    assert main(["suggest-samples", "--k", "3", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_outputs_into_missing_folders_are_created(capsys, tmp_path):
    out = tmp_path / "new" / "deeper" / "cells.csv"
    assert main(["suggest-samples", "--k", "3", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 3


def test_atomic_output_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from hwnas.io import atomic_output, write_text_atomic

    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.csv"]
    with atomic_output(tmp_path / "t.parquet") as tmp:  # the suffix is kept: writers infer the format
        assert tmp.name.endswith("t.parquet") and tmp.parent == tmp_path
        pd.DataFrame({"a": [1]}).to_parquet(tmp)
    assert pd.read_parquet(tmp_path / "t.parquet")["a"].tolist() == [1]
