"""SQLite store: one file, WAL mode, numbered migrations recorded in ``PRAGMA user_version``."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError, InputError, SchemaError
from hwnas.store.base import Store
from hwnas.store.records import Fingerprint, Measurement, Stats

# Each entry moves the schema from version i to i+1. Never edit a released entry; append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE fingerprints (
        id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        fields_json TEXT NOT NULL
    );
    CREATE TABLE layer_specs (
        key TEXT PRIMARY KEY,
        spec_json TEXT NOT NULL
    );
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        fingerprint_id TEXT NOT NULL REFERENCES fingerprints(id),
        backend TEXT NOT NULL,
        model_id TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('layer', 'model')),
        layer_index INTEGER NOT NULL,
        layer_key TEXT NOT NULL,
        layer_name TEXT NOT NULL,
        metric TEXT NOT NULL,
        mode TEXT NOT NULL,
        batch_size INTEGER NOT NULL,
        value REAL NOT NULL,
        median REAL, mean REAL, std REAL, iqr REAL, ci_low REAL, ci_high REAL, n INTEGER,
        samples_json TEXT,
        source TEXT NOT NULL,
        extra_json TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (device, fingerprint_id, backend, model_id, scope, layer_index, layer_key, metric, mode,
                batch_size)
    );
    CREATE INDEX measurements_model ON measurements (device, model_id, scope, metric);
    CREATE INDEX measurements_layer ON measurements (layer_key, metric);
    """,
    # 2: named arrays that are expensive to recompute (a trained network's per-image softmax outputs), kept
    # as numpy .npz bytes (loaded with allow_pickle=False) beside a JSON description.
    """
    CREATE TABLE artifacts (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        meta_json TEXT NOT NULL,
        data BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # 3: scope 'unit' (a fused unit of the runtime's kernels, hwnas.graph.fusion); SQLite cannot alter a
    # CHECK constraint, so the table is rebuilt with its rows.
    """
    CREATE TABLE measurements_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        fingerprint_id TEXT NOT NULL REFERENCES fingerprints(id),
        backend TEXT NOT NULL,
        model_id TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('layer', 'unit', 'model')),
        layer_index INTEGER NOT NULL,
        layer_key TEXT NOT NULL,
        layer_name TEXT NOT NULL,
        metric TEXT NOT NULL,
        mode TEXT NOT NULL,
        batch_size INTEGER NOT NULL,
        value REAL NOT NULL,
        median REAL, mean REAL, std REAL, iqr REAL, ci_low REAL, ci_high REAL, n INTEGER,
        samples_json TEXT,
        source TEXT NOT NULL,
        extra_json TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (device, fingerprint_id, backend, model_id, scope, layer_index, layer_key, metric, mode,
                batch_size)
    );
    INSERT INTO measurements_v2 SELECT * FROM measurements;
    DROP TABLE measurements;
    ALTER TABLE measurements_v2 RENAME TO measurements;
    CREATE INDEX measurements_model ON measurements (device, model_id, scope, metric);
    CREATE INDEX measurements_layer ON measurements (layer_key, metric);
    """,
    # 4: search journals. A search writes each finished trial as it is told (``seq`` keeps the order), so a
    # killed driver resumes from here without repeating a finished trial.
    """
    CREATE TABLE searches (
        search_id TEXT PRIMARY KEY,
        meta_json TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE search_trials (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        search_id TEXT NOT NULL REFERENCES searches(search_id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        state TEXT NOT NULL,
        record_json TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX search_trials_search ON search_trials (search_id, seq);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_IDENTITY_COLUMNS = (
    "device",
    "fingerprint_id",
    "backend",
    "model_id",
    "scope",
    "layer_index",
    "layer_key",
    "metric",
    "mode",
    "batch_size",
)
_FILTER_COLUMNS = frozenset(_IDENTITY_COLUMNS) | {"source", "layer_name"}


def default_store_path() -> Path:
    """``$HWNAS_STORE`` if set, else ``./hwnas.db``."""
    return Path(os.environ.get("HWNAS_STORE", "hwnas.db"))


_SQLITE_HEADER = b"SQLite format 3\x00"


def _tables_of_migrations() -> frozenset[str]:
    names = set()
    for script in MIGRATIONS:
        for stmt in _statements(script):
            words = stmt.split()
            if len(words) >= 3 and words[0].upper() == "CREATE" and words[1].upper() in ("TABLE", "INDEX"):
                names.add(words[2])
    return frozenset(names)


def _statements(script: str) -> list[str]:
    """A migration script split into its statements (none of ours holds a ';' inside a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]


class SQLiteStore(Store):
    """A real SQLite database; safe to open from several processes (WAL) and from threads (one lock).

    Creation and every migration run in one ``BEGIN IMMEDIATE`` transaction, so processes that open a new
    store path together serialise on SQLite's write lock and the second finds the schema ready; a crash
    mid-migration rolls back to the previous version. A file that is not an hwnas store (another
    application's SQLite database, a store of a newer schema) is refused before anything is written to
    it, WAL switching included. ``read_only=True`` opens the file with ``mode=ro`` and never creates it."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self._lock = threading.Lock()
        self._check_path()
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30.0)
            else:
                self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
        except sqlite3.OperationalError as exc:
            raise InputError(f"store {self.path}: cannot open: {exc}", hint=self._open_hint()) from exc
        try:
            self._prepare_with_retry()
        except sqlite3.OperationalError as exc:
            self._conn.close()
            text = str(exc)
            if "readonly" in text or "read-only" in text or "unable to open" in text:
                raise InputError(f"store {self.path}: cannot write: {exc}", hint=self._open_hint()) from exc
            raise InputError(f"store {self.path}: {exc}", hint="another process may hold it; retry") from exc
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise SchemaError(
                f"{self.path}: not a readable hwnas store: {exc}",
                hint="pass another --store path, or move the damaged file away",
            ) from exc
        except HwnasError:
            self._conn.close()
            raise

    def _prepare(self) -> None:
        self._migrate()
        if not self.read_only:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")

    def _prepare_with_retry(self, patience_s: float = 30.0) -> None:
        """Migrate and switch to WAL, retrying while other processes do the same.

        SQLite skips its busy handler where waiting could deadlock (a reader asking to write while another
        writer waits for it, or the switch to WAL while another connection reads), so concurrent first use
        of a new store can see "database is locked" at once; backing off and retrying resolves it."""
        deadline = time.monotonic() + patience_s
        delay = 0.01
        while True:
            try:
                self._prepare()
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (1.0 + random.random()))
            delay = min(delay * 2.0, 0.5)

    def _check_path(self) -> None:
        """Reasons a path cannot be a store that SQLite would report obscurely ("unable to open")."""
        p = self.path
        if p.is_dir():
            raise InputError(f"store {p} is a directory", hint="pass a file path, e.g. --store runs/hwnas.db")
        if p.exists():
            if not os.access(p, os.R_OK):
                raise InputError(f"store {p}: not readable (permission denied)", hint="fix its permissions")
            with open(p, "rb") as fh:
                head = fh.read(len(_SQLITE_HEADER))
            if head and head != _SQLITE_HEADER:
                raise SchemaError(f"{p}: not a readable hwnas store: not an SQLite file",
                                  hint="pass another --store path; hwnas never overwrites it")  # fmt: skip
            return
        if self.read_only:
            raise InputError(f"store {p} does not exist",
                             hint="run `hwnas profile` first, or pass --store PATH")  # fmt: skip
        parent = p.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"store {p}: cannot create its folder {parent}: {exc.strerror or exc}",
                             hint="pass a --store path in a writable folder") from exc  # fmt: skip
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"store {p}: cannot create it: folder {parent} is not writable",
                             hint="pass a --store path in a writable folder, or fix its "
                             "permissions")  # fmt: skip

    def _open_hint(self) -> str:
        p = self.path
        if p.exists() and not os.access(p, os.W_OK):
            return "the store file is read-only: fix its permissions, or pass another --store"
        if not os.access(p.parent, os.W_OK):
            return (f"its folder {p.parent} is not writable (SQLite writes a -wal/-shm file beside the "
                    "store): fix the permissions, or copy the store somewhere writable")  # fmt: skip
        return "check the path and its permissions"

    def _foreign_tables(self) -> tuple[list[str], list[str]]:
        """(hwnas tables present, other tables present) in this file."""
        rows = self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        ours = _tables_of_migrations()
        names = [r[0] for r in rows]
        return [n for n in names if n in ours], [n for n in names if n not in ours]

    def _check_version(self, version: int) -> None:
        if not isinstance(version, int):
            raise SchemaError(f"{self.path}: store schema version {version!r} is not a number")
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"{self.path}: store schema version {version} is newer than this hwnas "
                f"understands ({SCHEMA_VERSION})",
                hint="upgrade hwnas, or use another --store",
            )

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchall()[0][0]
        self._check_version(version)
        if version == 0:
            ours, others = self._foreign_tables()
            if others:
                raise SchemaError(
                    f"{self.path}: not an hwnas store (it holds other tables: "
                    f"{', '.join(sorted(others)[:8])})",
                    hint="pass another --store path; hwnas never modifies another application's database",
                )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            if version == 0:
                raise SchemaError(f"{self.path}: an empty SQLite file, not an hwnas store yet",
                                  hint="run `hwnas profile --store ...` to fill it")  # fmt: skip
            raise SchemaError(f"{self.path}: store schema version {version}; this hwnas reads "
                              f"{SCHEMA_VERSION}",
                              hint="run any writing command (e.g. `hwnas profile`) once to upgrade "
                              "it")  # fmt: skip
        saved = self._conn.isolation_level
        self._conn.isolation_level = None  # we issue BEGIN/COMMIT ourselves
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                version = self._conn.execute("PRAGMA user_version").fetchall()[0][0]
                self._check_version(version)
                if version == 0:
                    self._recover_half_created()
                for target in range(version, SCHEMA_VERSION):
                    for stmt in _statements(MIGRATIONS[target]):
                        self._conn.execute(stmt)
                    self._conn.execute(f"PRAGMA user_version = {target + 1}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        finally:
            self._conn.isolation_level = saved

    def _recover_half_created(self) -> None:
        """Drop what an interrupted creation by an older hwnas left (its tables, all empty, at version 0).

        Older versions ran the first migration with ``executescript``, which commits statement by
        statement; a crash between them left some tables and ``user_version`` 0, a file that then never
        opened again. Empty hwnas tables at version 0 hold nothing to lose; rows there are refused."""
        ours, _ = self._foreign_tables()
        tables = [n for n in ours if self._conn.execute(
            "SELECT type FROM sqlite_master WHERE name = ?", (n,)).fetchone()[0] == "table"]  # fmt: skip
        for t in tables:
            if self._conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() is not None:
                raise SchemaError(
                    f"{self.path}: hwnas tables with rows but no schema version (table {t})",
                    hint="the file was changed by something other than hwnas; move it away or pass another "
                    "--store",
                )
        for n in ours:
            kind = self._conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (n,)).fetchone()
            if kind is not None:
                self._conn.execute(f'DROP {kind[0].upper()} IF EXISTS "{n}"')

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    # fingerprints -------------------------------------------------------------------------------
    def add_fingerprint(self, fingerprint: Fingerprint) -> str:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO fingerprints (id, device, fields_json) VALUES (?, ?, ?)",
                (
                    fingerprint.id,
                    fingerprint.device,
                    json.dumps(fingerprint.fields, sort_keys=True, default=str),
                ),
            )
        return fingerprint.id

    def get_fingerprint(self, fingerprint_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT id, device, fields_json FROM fingerprints WHERE id = ?", (fingerprint_id,)
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "device": row[1], **json.loads(row[2])}

    # layer specs --------------------------------------------------------------------------------
    def add_layer_specs(self, specs: Iterable[Any]) -> None:
        rows = [(s.key(), s.to_json()) for s in specs]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR IGNORE INTO layer_specs (key, spec_json) VALUES (?, ?)", rows)

    def get_layer_specs(
        self, keys: Iterable[str] | None = None, *, decode: Callable[[dict[str, Any]], Any] | None = None
    ) -> dict[str, Any]:
        if keys is None:
            rows = self._conn.execute("SELECT key, spec_json FROM layer_specs").fetchall()
        else:
            wanted = list(dict.fromkeys(keys))
            rows = []
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows += self._conn.execute(
                    f"SELECT key, spec_json FROM layer_specs WHERE key IN ({marks})", chunk
                ).fetchall()
        if decode is None:
            return {k: json.loads(j) for k, j in rows}
        return {k: decode(json.loads(j)) for k, j in rows}

    # measurements -------------------------------------------------------------------------------
    def add(self, measurement: Measurement) -> None:
        m = measurement
        s = m.stats
        values = (
            m.device, m.fingerprint_id, m.backend, m.model_id, m.scope, m.layer_index, m.layer_key,
            m.layer_name, m.metric, m.mode, m.batch_size, float(m.value),
            s.median if s else None, s.mean if s else None, s.std if s else None, s.iqr if s else None,
            s.ci_low if s else None, s.ci_high if s else None, s.n if s else None,
            json.dumps(list(s.samples)) if s else None,
            m.source, json.dumps(m.extra, sort_keys=True, default=str), m.created_at,
        )  # fmt: skip
        with self._lock, self._conn:
            self._conn.execute(
                """INSERT OR REPLACE INTO measurements (device, fingerprint_id, backend, model_id, scope,
                   layer_index, layer_key, layer_name, metric, mode, batch_size, value, median, mean, std,
                   iqr, ci_low, ci_high, n, samples_json, source, extra_json, created_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                values,
            )

    def has(self, measurement_identity: tuple[Any, ...]) -> bool:
        where = " AND ".join(f"{c} = ?" for c in _IDENTITY_COLUMNS)
        row = self._conn.execute(f"SELECT 1 FROM measurements WHERE {where} LIMIT 1", measurement_identity)
        return row.fetchone() is not None

    def _where(self, filters: dict[str, Any]) -> tuple[str, list[Any]]:
        clauses, args = [], []
        for name, value in filters.items():
            if value is None:
                continue
            if name not in _FILTER_COLUMNS:
                raise ValueError(f"unknown store filter {name!r}; expected one of {sorted(_FILTER_COLUMNS)}")
            if isinstance(value, (list, tuple, set, frozenset)):
                clauses.append(f"{name} IN ({','.join('?' * len(value))})")
                args.extend(value)
            else:
                clauses.append(f"{name} = ?")
                args.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def query(self, **filters: Any) -> list[Measurement]:
        where, args = self._where(filters)
        cur = self._conn.execute(
            "SELECT device, fingerprint_id, backend, model_id, scope, layer_index, layer_key, layer_name,"
            " metric, mode, batch_size, value, median, mean, std, iqr, ci_low, ci_high, n, samples_json,"
            f" source, extra_json, created_at FROM measurements{where} ORDER BY id",
            args,
        )
        out = []
        for r in cur.fetchall():
            stats = None
            if r[12] is not None:
                stats = Stats(
                    median=r[12], mean=r[13], std=r[14], iqr=r[15], ci_low=r[16], ci_high=r[17], n=r[18],
                    samples=tuple(json.loads(r[19] or "[]")),
                )  # fmt: skip
            out.append(
                Measurement(
                    device=r[0],
                    fingerprint_id=r[1],
                    backend=r[2],
                    model_id=r[3],
                    scope=r[4],
                    layer_index=r[5],
                    layer_key=r[6],
                    layer_name=r[7],
                    metric=r[8],
                    mode=r[9],
                    batch_size=r[10],
                    value=r[11],
                    stats=stats,
                    source=r[20],
                    extra=json.loads(r[21]),
                    created_at=r[22],
                )  # fmt: skip
            )
        return out

    def put_artifact(self, key: str, kind: str, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
        """Keep ``arrays`` (name -> numpy array) under ``key``, replacing an older entry."""
        import io

        import numpy as np

        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO artifacts (key, kind, meta_json, data, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, kind, json.dumps(meta, sort_keys=True, default=str), buf.getvalue(), time.time()),
            )

    def get_artifact(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(arrays, meta)`` stored under ``key``, or None."""
        import io

        import numpy as np

        with self._lock:
            row = self._conn.execute("SELECT meta_json, data FROM artifacts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(row[1]), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return arrays, json.loads(row[0])

    # search journals -----------------------------------------------------------------------------------
    def add_search(self, search_id: str, meta: dict[str, Any]) -> None:
        """Register a search (a no-op when it is already there: a resumed search keeps its first meta)."""
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO searches (search_id, meta_json, created_at) VALUES (?, ?, ?)",
                (search_id, json.dumps(meta, sort_keys=True, default=str), time.time()),
            )

    def get_search(self, search_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT meta_json FROM searches WHERE search_id = ?", (search_id,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def list_searches(self) -> list[tuple[str, dict[str, Any], int]]:
        """``(search_id, meta, finished trials)`` of every journalled search."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.search_id, s.meta_json, COUNT(t.seq) FROM searches s "
                "LEFT JOIN search_trials t ON t.search_id = s.search_id "
                "GROUP BY s.search_id ORDER BY s.created_at"
            ).fetchall()
        return [(r[0], json.loads(r[1]), int(r[2])) for r in rows]

    def add_search_trial(self, search_id: str, record: dict[str, Any]) -> int:
        """Append one finished trial (``Trial.to_dict()``) to a search's journal; returns its ``seq``."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO search_trials (search_id, number, state, record_json, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (search_id, int(record.get("number", -1)), str(record.get("state", "")),
                 json.dumps(record, sort_keys=True, default=str), time.time()),
            )  # fmt: skip
            return int(cur.lastrowid)

    def search_trials(self, search_id: str) -> list[dict[str, Any]]:
        """The journal of one search, in the order the trials finished (each with its ``seq``)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, record_json FROM search_trials WHERE search_id = ? ORDER BY seq", (search_id,)
            ).fetchall()
        return [{**json.loads(r[1]), "seq": int(r[0])} for r in rows]

    def delete_search(self, search_id: str) -> int:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM search_trials WHERE search_id = ?", (search_id,))
            return self._conn.execute("DELETE FROM searches WHERE search_id = ?", (search_id,)).rowcount

    def delete(self, **filters: Any) -> int:
        where, args = self._where(filters)
        with self._lock, self._conn:
            return self._conn.execute(f"DELETE FROM measurements{where}", args).rowcount
