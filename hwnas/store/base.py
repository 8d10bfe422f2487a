"""The store interface: everything that reads or writes measurements goes through it."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hwnas.store.records import Fingerprint, Measurement

if TYPE_CHECKING:
    import pandas as pd


class Store(abc.ABC):
    """Abstract measurement store (one implementation: :class:`hwnas.store.sqlite.SQLiteStore`)."""

    @abc.abstractmethod
    def add_fingerprint(self, fingerprint: Fingerprint) -> str: ...

    @abc.abstractmethod
    def get_fingerprint(self, fingerprint_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def add_layer_specs(self, specs: Iterable[Any]) -> None:
        """Keep the LayerSpec behind each layer key, so cost models can featurise stored records."""

    @abc.abstractmethod
    def get_layer_specs(
        self, keys: Iterable[str] | None = None, *, decode: Callable[[dict[str, Any]], Any] | None = None
    ) -> dict[str, Any]:
        """key -> the stored spec as a JSON dict, or ``decode(dict)`` (e.g. ``LayerSpec.from_dict``; the
        store knows no graph types)."""

    @abc.abstractmethod
    def add(self, measurement: Measurement) -> None:
        """Write one record now (not at the end of a run), replacing one with the same identity."""

    @abc.abstractmethod
    def has(self, measurement_identity: tuple[Any, ...]) -> bool: ...

    @abc.abstractmethod
    def query(self, **filters: Any) -> list[Measurement]: ...

    @abc.abstractmethod
    def delete(self, **filters: Any) -> int: ...

    def dataframe(self, **filters: Any) -> pd.DataFrame:
        """Records as a flat table (one row a measurement; stats spread into columns)."""
        import pandas as pd  # only here: the record types and the store itself stay pandas-free

        rows = []
        for m in self.query(**filters):
            row = {k: v for k, v in m.to_dict().items() if k not in ("stats", "extra")}
            qa = m.extra.get("qa") if isinstance(m.extra, dict) else None
            row["qa_flagged"] = bool(qa.get("flagged")) if isinstance(qa, dict) else False
            if m.stats is not None:
                for k in ("median", "mean", "std", "iqr", "ci_low", "ci_high", "n"):
                    row[k] = getattr(m.stats, k)
            rows.append(row)
        return pd.DataFrame(rows)

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for stores without resources
        """Release resources (connections); the default has none."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
