"""Measurement store: records, the abstract interface and the SQLite implementation."""

from hwnas.store.base import Store
from hwnas.store.records import Fingerprint, Measurement, Stats
from hwnas.store.sqlite import SCHEMA_VERSION, SQLiteStore, default_store_path

__all__ = [
    "SCHEMA_VERSION",
    "Fingerprint",
    "Measurement",
    "SQLiteStore",
    "Stats",
    "Store",
    "default_store_path",
]
