import multiprocessing as mp
import sqlite3

import pytest

from hwnas.errors import SchemaError
from hwnas.store import SCHEMA_VERSION, Fingerprint, Measurement, SQLiteStore, Stats

FP = Fingerprint(device="dev", fields={"cpu_model": "x", "threads": 1})


def _m(i: int, **kw) -> Measurement:
    base = dict(device="dev", fingerprint_id=FP.id, backend="onnxruntime-cpu", model_id="m", scope="layer",
                metric="latency_ms", value=float(i), layer_index=i, layer_key=f"conv2d|k={i}")  # fmt: skip
    base.update(kw)
    return Measurement(**base)


def test_schema_version_and_wal(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION >= 1
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(SchemaError, match="newer"):
        SQLiteStore(path)


def test_corrupt_file_gives_clear_error(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SchemaError, match="not a readable hwnas store") as info:
        SQLiteStore(path)
    assert str(path) in info.value.message and info.value.hint


def test_round_trip_keeps_stats_and_samples(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as s:
        s.add_fingerprint(FP)
        st = Stats(
            median=2.0, mean=2.1, std=0.1, iqr=0.2, ci_low=1.9, ci_high=2.2, n=3, samples=(1.9, 2.0, 2.4)
        )
        s.add(_m(0, stats=st, extra={"calls_per_sample": 10}))
        (got,) = s.query(model_id="m")
        assert got.stats == st and got.extra == {"calls_per_sample": 10}
        assert s.get_fingerprint(FP.id)["cpu_model"] == "x"
        df = s.dataframe(device="dev")
        assert list(df["median"]) == [2.0]


def test_resume_identity_and_replace(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as s:
        s.add_fingerprint(FP)
        m = _m(3)
        assert not s.has(m.identity())
        s.add(m)
        assert s.has(m.identity())
        assert not s.has(_m(3, mode="train_step").identity())
        assert not s.has(_m(3, fingerprint_id="other").identity())
        s.add(_m(3, value=99.0))  # same identity: replaced, not duplicated
        rows = s.query(layer_index=3)
        assert len(rows) == 1 and rows[0].value == 99.0
        assert s.delete(model_id="m") == 1
        with pytest.raises(ValueError, match="unknown store filter"):
            s.query(colour="red")


def _writer(path: str, worker: int, n: int) -> None:
    with SQLiteStore(path) as s:
        s.add_fingerprint(FP)
        for i in range(n):
            s.add(_m(worker * 1000 + i, model_id=f"w{worker}"))


def test_two_processes_write_concurrently_without_losing_records(tmp_path):
    path = str(tmp_path / "s.db")
    SQLiteStore(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 150)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with SQLiteStore(path) as s:
        assert len(s.query(model_id="w1")) == 150
        assert len(s.query(model_id="w2")) == 150
