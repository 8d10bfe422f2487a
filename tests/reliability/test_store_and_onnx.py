"""Store creation is atomic and safe under concurrent first use, never touches a file that is not an
hwnas store, and recovers from a half-created one (finding 4); invalid ONNX gets clear errors (finding 5)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from hwnas.cli.app import main
from hwnas.errors import HwnasError, SchemaError
from hwnas.store import SCHEMA_VERSION, SQLiteStore
from hwnas.store import sqlite as store_sqlite


def _open(path: str) -> str:
    try:
        SQLiteStore(path).close()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
        return f"{type(exc).__name__}: {exc}"


def test_concurrent_first_use_of_a_new_store(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        for i in range(4):
            path = str(tmp_path / f"s{i}.db")
            results = pool.map(_open, [path] * 4)
            assert results == ["ok"] * 4, results
            with SQLiteStore(path) as s:
                assert s.schema_version == SCHEMA_VERSION


def _foreign(tmp_path, journal="delete"):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA journal_mode={journal}")
    con.execute("CREATE TABLE contacts (name TEXT)")
    con.execute("INSERT INTO contacts VALUES ('ada')")
    con.commit()
    con.close()
    return path


def test_another_applications_database_is_never_modified(capsys, tmp_path):
    path = _foreign(tmp_path)
    before = path.read_bytes()
    with pytest.raises(SchemaError, match="not an hwnas store"):
        SQLiteStore(path)
    with pytest.raises(SchemaError, match="not an hwnas store"):
        SQLiteStore(path, read_only=True)
    for args in (["show", "--store", str(path)], ["export", "-f", "csv", "-o", str(tmp_path / "x.csv"),
                 "--store", str(path)]):  # fmt: skip
        assert main(args) == 2
        assert "not an hwnas store" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal/-shm, no export file


def test_a_newer_store_is_refused_without_switching_it_to_wal(tmp_path):
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=delete")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    for ro in (False, True):
        with pytest.raises(SchemaError, match="newer"):
            SQLiteStore(path, read_only=ro)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_read_only_show_neither_creates_nor_changes(capsys, tmp_path):
    missing = tmp_path / "none.db"
    assert main(["show", "--store", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err and not missing.exists()
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=delete")
    con.close()
    before = path.read_bytes()
    assert main(["show", "--store", str(path)]) == 0
    assert path.read_bytes() == before


def test_a_half_created_store_recovers(tmp_path):
    """What an interrupted first migration of older hwnas left: some tables, user_version 0."""
    path = tmp_path / "s.db"
    con = sqlite3.connect(path)
    first = store_sqlite._statements(store_sqlite.MIGRATIONS[0])[0]
    con.execute(first)
    con.commit()
    con.close()
    with SQLiteStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.query() == []


def test_a_crash_inside_a_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    broken = (store_sqlite.MIGRATIONS[0] + ";\nCREATE TABLE broken (;",)
    monkeypatch.setattr(store_sqlite, "MIGRATIONS", broken)
    with pytest.raises(HwnasError):
        SQLiteStore(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    con.close()
    monkeypatch.undo()
    with SQLiteStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION


def test_a_store_with_hwnas_tables_but_rows_and_no_version_is_refused(tmp_path):
    path = tmp_path / "s.db"
    con = sqlite3.connect(path)
    con.execute(store_sqlite._statements(store_sqlite.MIGRATIONS[0])[0])
    con.execute("INSERT INTO fingerprints VALUES ('x', 'd', '{}')")
    con.commit()
    con.close()
    with pytest.raises(SchemaError, match="rows but no schema version"):
        SQLiteStore(path)


def test_store_path_errors_say_what_is_wrong(capsys, tmp_path):
    folder = tmp_path / "dir.db"
    folder.mkdir()
    assert main(["show", "--store", str(folder)]) == 2
    assert "is a directory" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HwnasError, match="cannot create its folder"):
        SQLiteStore(blocker / "s.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(SchemaError, match="not an SQLite file"):
        SQLiteStore(garbage)


def test_read_only_store_errors_are_explained():
    from hwnas.cli.errors import describe_unexpected

    msg, hint = describe_unexpected(sqlite3.OperationalError("attempt to write a readonly database"))
    assert "readonly" in msg and "not writable" in hint


# --- ONNX -----------------------------------------------------------------------------------------------


def _save(tmp_path, name, nodes, inputs, outputs, init=(), domains=()):
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(init))
    opsets = [helper.make_opsetid("", 17), *[helper.make_opsetid(d, 1) for d in domains]]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_invalid_onnx_gets_clear_errors(capsys, tmp_path):
    from onnx import TensorProto as T
    from onnx import helper as h

    x = h.make_tensor_value_info("x", T.FLOAT, [1, 3, 8, 8])
    y = h.make_tensor_value_info("y", T.FLOAT, [1, 3, 8, 8])
    dangling = _save(tmp_path, "dangling.onnx", [h.make_node("Relu", ["ghost"], ["y"])], [x], [y])
    for command in ("analyze", "profile"):
        assert main([command, "-m", str(dangling), "--store", str(tmp_path / "s.db")]
                    if command == "profile" else [command, "-m", str(dangling)]) == 2  # fmt: skip
        err = " ".join(capsys.readouterr().err.split())
        assert "not a valid model: onnx.checker" in err and "ghost" in err and "hint:" in err
    custom = _save(tmp_path, "custom.onnx", [h.make_node("MyOp", ["x"], ["y"], domain="com.example")],
                   [x], [y], domains=["com.example"])  # fmt: skip
    assert main(["profile", "-m", str(custom), "--store", str(tmp_path / "s.db"), "--no-memory"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "onnxruntime cannot load it" in err and "MyOp" in err and "custom-op" in err
    assert "Traceback" not in err


def test_an_int64_input_model_profiles(capsys, tmp_path):
    import numpy as np
    import yaml
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper

    emb = numpy_helper.from_array(np.random.default_rng(0).random((10, 4)).astype(np.float32), "emb")
    path = _save(tmp_path, "ids.onnx", [h.make_node("Gather", ["emb", "ids"], ["e"]),
                                        h.make_node("Relu", ["e"], ["y"])],
                 [h.make_tensor_value_info("ids", T.INT64, [1, 5])],
                 [h.make_tensor_value_info("y", T.FLOAT, [1, 5, 4])], init=[emb])  # fmt: skip
    dev = tmp_path / "fast.yaml"
    dev.write_text(yaml.safe_dump({"name": "fast", "backend": "onnxruntime-cpu", "threads": 1, "repeat": {
        "warmup": 1, "min_repeats": 3, "max_repeats": 5, "target_ci_rel": 0.5, "max_seconds": 0.2}}))
    code = main(["profile", "-d", str(dev), "-m", str(path), "--store", str(tmp_path / "s.db"),
                 "--no-memory", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
