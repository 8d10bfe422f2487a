"""Tabular objectives: a table of architecture -> error and device costs, so searchers can be compared over
many seeds in minutes.

Two lookups: ``exact`` (the table is a full grid, e.g. NAS-Bench-201: every config of the space is a row)
and ``nearest`` (the table holds configs sampled from a continuous space, e.g. the HyperPower digits
table: a config is *projected* onto the nearest row in the unit encoding before it is evaluated, so
the searcher logs, predicts and models the row it actually gets). Per-epoch accuracy columns, when the
table has them, let a ``Stopper`` end a run early; its time is then the recorded training time scaled
by the epochs run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.constraints import Constraint, parse_constraints
from hwnas.searchers.objectives.base import Evaluation, Stopper
from hwnas.searchers.space import Param, SearchSpace


class TabularObjective:
    def __init__(
        self,
        table: Any,
        space: SearchSpace,
        *,
        objective_column: str = "val_error",
        cost_columns: Sequence[str] = (),
        epoch_accuracy_columns: Sequence[str] = (),
        time_column: str | None = None,
        lookup: str = "exact",
        chance_accuracy: float = 0.1,
        name: str = "",
    ) -> None:
        if lookup not in ("exact", "nearest"):
            raise InputError(f"tabular objective: lookup must be 'exact' or 'nearest', got {lookup!r}")
        needed = [*space.names, objective_column, *cost_columns, *epoch_accuracy_columns]
        needed += [time_column] if time_column else []
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise InputError(
                f"tabular objective {name!r}: table lacks column(s) {missing}",
                hint=f"columns present: {list(table.columns)}",
            )
        self.table = table.reset_index(drop=True)
        self.space = space
        self.objective_column = objective_column
        self.cost_names = tuple(cost_columns)
        self.epoch_accuracy_columns = tuple(epoch_accuracy_columns)
        self.time_column = time_column
        self.lookup = lookup
        self.chance_accuracy = chance_accuracy
        self.name = name
        # Optional richer cost-model features for this table's space (``cost_features="layer"``).
        self.cost_featurizer: Any = None
        configs = self.table[space.names].to_dict("records")
        self._configs = [self._clean(c) for c in configs]
        self._unit = space.to_unit_matrix(self._configs)
        self._index = {space.key(c): i for i, c in enumerate(self._configs)}

    def _clean(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for p in self.space.params:
            v = config[p.name]
            out[p.name] = int(v) if p.kind == "int" else (float(v) if p.kind in ("float", "log-float") else v)
        return out

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        param_columns: Sequence[str] | None = None,
        objective_column: str = "val_error",
        cost_columns: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> TabularObjective:
        """Load a CSV/Parquet table. The space is inferred from ``param_columns`` (ints, floats, strings;
        default: every column that is not the objective, a cost (``*_ms``, ``*_mb``, ``*_mw``, ``*_mj``),
        a per-epoch accuracy ``val_acc_epoch<k>`` or a time ``*_s``)."""
        import pandas as pd

        path = Path(path)
        if not path.exists():
            raise InputError(f"table {path}: file not found")
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        if cost_columns is None:
            cost_columns = [c for c in df.columns if c.endswith(("_ms", "_mb", "_mw", "_mj"))]
        epochs = [c for c in df.columns if c.startswith("val_acc_epoch")]
        if param_columns is None:  # everything that is not a result column
            results = {objective_column, *cost_columns, *epochs, "config_id", "train_time_s"}
            param_columns = [c for c in df.columns if c not in results and not c.endswith("_s")]
        if not param_columns:
            raise InputError(f"table {path}: no parameter columns", hint="pass param_columns=[...]")
        params = []
        for c in param_columns:
            col = df[c]
            if col.dtype.kind in "iu":
                params.append(Param(c, "int", int(col.min()), int(col.max())))
            elif col.dtype.kind == "f":
                params.append(Param(c, "float", float(col.min()), float(col.max())))
            else:
                params.append(Param(c, "categorical", choices=tuple(sorted(col.astype(str).unique()))))
        space = SearchSpace.of(params, name=path.stem)
        if epochs and "epoch_accuracy_columns" not in kwargs:
            kwargs["epoch_accuracy_columns"] = sorted(epochs, key=lambda c: int(c[len("val_acc_epoch") :]))
        if "train_time_s" in df.columns and "time_column" not in kwargs:
            kwargs["time_column"] = "train_time_s"
        lookup = kwargs.pop("lookup", "exact" if all(p.kind == "categorical" for p in params) else "nearest")
        return cls(
            df,
            space,
            objective_column=objective_column,
            cost_columns=cost_columns,
            lookup=lookup,
            name=path.stem,
            **kwargs,
        )

    # -- lookups -------------------------------------------------------------------------------------
    def row_of(self, config: Mapping[str, Any]) -> int:
        if self.lookup == "exact":
            key = self.space.key(self._clean(config))
            if key not in self._index:
                raise InputError(f"tabular objective {self.name!r}: no row for {dict(config)}")
            return self._index[key]
        d = np.sum((self._unit - self.space.to_unit(config)) ** 2, axis=1)
        return int(np.argmin(d))

    def project(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config of the row ``config`` is evaluated as (itself, for an exact table)."""
        return dict(self._configs[self.row_of(config)])

    @property
    def configs(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._configs]

    def measure_costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        row = self.table.iloc[self.row_of(config)]
        return {c: float(row[c]) for c in self.cost_names}

    def evaluate(self, config: Mapping[str, Any], stopper: Stopper | None = None) -> Evaluation:
        i = self.row_of(config)
        row = self.table.iloc[i]
        final = float(row[self.objective_column])
        total_time = float(row[self.time_column]) if self.time_column else 0.0
        accs = [float(row[c]) for c in self.epoch_accuracy_columns]
        accs = [a for a in accs if math.isfinite(a)]
        info: dict[str, Any] = {"row": i}
        if stopper is not None and accs:
            n = len(self.epoch_accuracy_columns)
            for epoch, acc in enumerate(accs[:-1], start=1):
                if stopper(epoch, acc, 0.0):
                    return Evaluation(
                        objective=1.0 - acc,
                        early_stopped=True,
                        stop_reason=f"diverging: val accuracy {acc:.3f} after {epoch} epoch(s)",
                        eval_time_s=total_time * epoch / n,
                        info={**info, "epochs_run": epoch},
                    )
        return Evaluation(objective=final, eval_time_s=total_time, info=info)

    def best_feasible(self, constraints: Sequence[str | Constraint]) -> float:
        """The lowest objective among the rows that meet every budget (the oracle optimum)."""
        mask = np.ones(len(self.table), bool)
        for c in parse_constraints(constraints):
            if c.name not in self.table.columns:
                raise InputError(f"tabular objective {self.name!r}: no column {c.name!r} for constraint {c}")
            mask &= np.array([c.value(v) <= 0 for v in self.table[c.name]])
        if not mask.any():
            return math.nan
        return float(self.table.loc[mask, self.objective_column].min())


def hyperpower_digits(path: str | Path | None = None, **kwargs: Any) -> TabularObjective:
    """The HyperPower table shipped with hwnas: AlexNet-style configs trained on scikit-learn's digits
    with latency and memory measured on a 2-core AMD EPYC VM (see benchmarks/data/hyperpower_digits.md)."""
    import pandas as pd

    from hwnas.searchers.objectives.training import hyperpower_space, layer_featurizer

    path = (
        Path(path)
        if path is not None
        else Path(__file__).resolve().parent.parent / "data" / "hyperpower_digits.csv"
    )
    if not path.exists():
        raise InputError(
            f"HyperPower digits table {path}: not found",
            hint="build it: .venv/bin/python benchmarks/searchers_make_digits_table.py",
        )
    df = pd.read_csv(path)
    epochs = sorted((c for c in df.columns if c.startswith("val_acc_epoch")), key=lambda c: int(c[13:]))
    obj = TabularObjective(
        df,
        hyperpower_space(2),
        objective_column="val_error",
        cost_columns=("latency_ms", "memory_mb"),
        epoch_accuracy_columns=epochs,
        time_column="train_time_s",
        lookup="nearest",
        name="hyperpower-digits",
        **kwargs,
    )
    obj.cost_featurizer = layer_featurizer((1, 8, 8), 10)
    return obj
