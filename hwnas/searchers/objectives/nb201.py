"""NAS-Bench-201 as a tabular objective for searchers, under a latency budget on one measured device.

A config is the cell: six categorical parameters ``e10, e20, e21, e30, e31, e32`` (edge to<-from) with the
five NAS-Bench-201 operations. Evaluating it looks the cell up in the shipped table: the objective is the
validation error (1 - accuracy/100) of *one of the three training runs, drawn at random per query* (the
benchmark's own training noise; the third run is missing for about half of the cells, then one of two), the
simulated time is the table's training time of that cell, and the measured cost is the device's latency.
Regret is judged against the true (mean-of-runs) accuracy, known for every cell.

The latency model the cost-aware searchers use (``objective.cost_model``) is, by default, *fitted from a few
measured cells* (``cost_model="fit"``: ``n_cost_samples`` random cells, an edge-op LUT sum learnt by
non-negative least squares on ``nb201-edgeop`` features, so it learns whether the device's runtime prunes dead
edges), inflated by the worst relative under-prediction seen in 5-fold CV on those cells so that it errs on
the safe side of the budget. ``cost_model="table"`` uses the measured latency of every cell instead (a device
profiled on the whole space, as in HW-NAS-Bench).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.interface import CostPredictor
from hwnas.cost_models.predictors import ArchCostPredictor, ModelPredictor
from hwnas.errors import InputError
from hwnas.searchers.constraints import Constraint
from hwnas.searchers.objectives.base import Evaluation, Stopper
from hwnas.searchers.objectives.tabular import TabularObjective
from hwnas.searchers.space import CategoricalParam, SearchSpace
from hwnas.spaces.nb201 import EDGES, OPS, Cell, to_string

EDGE_PARAMS: tuple[str, ...] = tuple(f"e{j}{i}" for j, i in EDGES)
_DATASETS = ("cifar10", "cifar100", "imagenet16_120")


def nb201_search_space() -> SearchSpace:
    """The cell as six categorical edges, each one of the five operations."""
    return SearchSpace.of([CategoricalParam(name, OPS) for name in EDGE_PARAMS], name="nb201")


def config_of(arch: str) -> dict[str, str]:
    from hwnas.spaces.nb201 import parse_arch

    return dict(zip(EDGE_PARAMS, parse_arch(arch).ops, strict=True))


def arch_of(config: Mapping[str, Any]) -> str:
    return to_string(Cell(tuple(str(config[p]) for p in EDGE_PARAMS)))


def _edgeop_features(configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    from hwnas.spaces.nb201_features import nb201_edgeop

    return nb201_edgeop(pd.DataFrame({"arch": [arch_of(c) for c in configs]})).to_numpy(float)


def fit_latency_model(
    table: pd.DataFrame, column: str, n_samples: int = 100, seed: int = 0
) -> tuple[ModelPredictor, pd.DataFrame]:
    """Fit the edge-op LUT sum on ``n_samples`` random connected cells of ``column``; return it as a cost
    predictor over configs (point inflated by the safety scale, interval from the 5-fold CV residuals
    of the scaled model, CV RMSPE in ``errors()``) and the cells it saw."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold

    from hwnas.cost_models.base import relative_residual_quantiles
    from hwnas.spaces.nb201_features import nb201_edgeop

    if n_samples < 10:
        raise InputError(f"fitting the NB201 latency model needs at least 10 cells, got {n_samples}")
    pool = table[table["connected"] == 1] if "connected" in table.columns else table
    cells = pool.sample(n=min(n_samples, len(pool)), random_state=seed)
    X = nb201_edgeop(cells).to_numpy(float)
    y = cells[column].to_numpy(float)
    pred_cv = np.empty(len(y))
    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
        m = LinearRegression(positive=True).fit(X[train], y[train])
        pred_cv[test] = np.maximum(m.predict(X[test]), 1e-9)
    ratio = y / pred_cv
    scale = float(max(1.0, ratio.max()))
    est = LinearRegression(positive=True).fit(X, y)
    est.cv_rmspe_ = float(100 * np.sqrt(np.mean((1 / ratio - 1) ** 2)))
    model = ModelPredictor(
        {"latency_ms": est},
        _edgeop_features,
        bands={"latency_ms": relative_residual_quantiles(y, scale * pred_cv, 0.90)},
        scales={"latency_ms": scale},
        source="fitted:edgeop",
        description=f"edge-op LUT sum fitted on {len(y)} measured cells of {column} "
        f"(CV RMSPE {est.cv_rmspe_:.1f} %, safety scale x{scale:.3f})",
    )
    return model, cells


class NB201Objective(TabularObjective):
    """TabularObjective over the NAS-Bench-201 table with one random training run per query."""

    def __init__(self, frame: pd.DataFrame, *, dataset: str, device_column: str, seed: int = 0) -> None:
        super().__init__(
            frame,
            nb201_search_space(),
            objective_column="val_error",
            cost_columns=("latency_ms",),
            time_column="train_time_s",
            lookup="exact",
            chance_accuracy={"cifar10": 0.1, "cifar100": 0.01, "imagenet16_120": 1 / 120}[dataset],
            name=f"nb201-{dataset}-{device_column}",
        )
        self.dataset = dataset
        self.device_column = device_column
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        runs = self.table[[f"run{r}" for r in range(3)]].to_numpy(float)
        self._runs = runs
        self.budget_ms = float("nan")
        self.constraint: Constraint | None = None
        self.cost_model: CostPredictor | None = None
        self.cost_model_source = ""

    def arch_id(self, config: Mapping[str, Any]) -> str:
        """The NAS-Bench-201 arch string of a config (how per-architecture cost tables key it)."""
        return arch_of(config)

    def layers_of(self, config: Mapping[str, Any]) -> Any:
        """The CIFAR network of a config as a ModelSpec (what a layer cost table prices)."""
        from hwnas.spaces.nb201 import layers

        return layers(arch_of(config))

    def evaluate(self, config: Mapping[str, Any], stopper: Stopper | None = None) -> Evaluation:
        i = self.row_of(config)
        runs = self._runs[i][np.isfinite(self._runs[i])]
        acc = float(runs[int(self._rng.integers(len(runs)))])
        row = self.table.iloc[i]
        return Evaluation(
            objective=1.0 - acc / 100.0,
            eval_time_s=float(row["train_time_s"]),
            info={
                "row": i,
                "index": int(row["index"]),
                "arch": row["arch"],
                "true_error": float(row["val_error"]),
            },
        )

    def true_error(self, config: Mapping[str, Any]) -> float:
        """Mean-of-runs validation error of ``config`` (what regret is measured on)."""
        return float(self.table["val_error"].iloc[self.row_of(config)])


def _objective_table(table: pd.DataFrame | str | None, col: str, results: list[str]) -> pd.DataFrame:
    """The table to search: the shipped one, or ``table`` (a path or frame). A table with a device's
    latencies but no training results (a device measured, or predicted, on every cell) is joined to the
    shipped table's results on ``arch``."""
    from hwnas.spaces.nb201_table import latency_columns, load_table

    if table is None:
        df = load_table()
        where = "the shipped NAS-Bench-201 table"
    elif isinstance(table, str):
        df = load_table(table, required=("arch",))
        where = table
    else:
        df = table
        where = "the NAS-Bench-201 table"
    if col not in df.columns:
        devices = ", ".join(c[4:-3] for c in latency_columns(df)) or "none"
        raise InputError(
            f"{where} has no latency column {col!r}",
            hint=f"devices in it: {devices}; or pass --data T with a lat_<device>_ms column",
        )
    missing = [c for c in ["index", *results] if c not in df.columns]
    if missing and table is not None and "arch" in df.columns:
        shipped = load_table()
        take = ["arch", *[c for c in ["index", *results] if c not in df.columns]]
        n = len(df)
        df = df.drop(columns=[c for c in take[1:] if c in df.columns]).merge(
            shipped[take + (["connected"] if "connected" not in df.columns else [])], on="arch", how="inner"
        )
        if len(df) < n:
            raise InputError(f"{where}: {n - len(df)} arch string(s) are not NAS-Bench-201 cells")
    missing = [c for c in ["index", "arch", col, *results] if c not in df.columns]
    if missing:
        raise InputError(
            f"NAS-Bench-201 table lacks column(s) {missing}", hint="see hwnas/data/NB201_ATTRIBUTION.md"
        )
    return df


def make_objective(
    dataset: str = "cifar10",
    device: str = "pixel3",
    budget_percentile: float | None = 25,
    budget_ms: float | None = None,
    seed: int = 0,
    cost_model: str = "fit",
    n_cost_samples: int = 100,
    table: pd.DataFrame | str | None = None,
) -> NB201Objective:
    """The NAS-Bench-201 objective on ``dataset`` with a latency budget on ``device``.

    ``device`` is any ``lat_<device>_ms`` column of ``table`` (default: the shipped table; a table with only
    ``arch`` and latency columns is joined to the shipped training results). The budget is ``budget_ms`` if
    given, else the ``budget_percentile``-th percentile of the device's latency over all cells.
    ``objective.constraint`` holds it as ``latency_ms<=X``; ``objective.cost_model`` is the latency model
    cost-aware searchers use (``"fit"``: from ``n_cost_samples`` measured cells; ``"table"``:
    the measured latency of every cell; ``"none"``: no model); ``objective.cost_model_source`` says which.
    """
    from hwnas.spaces.nb201_features import _space, cell_positions
    from hwnas.spaces.nb201_table import latency_column

    if dataset not in _DATASETS:
        raise InputError(f"unknown NAS-Bench-201 dataset {dataset!r}", hint=f"one of {', '.join(_DATASETS)}")
    if cost_model not in ("fit", "table", "none"):
        raise InputError(f"cost_model must be 'fit', 'table' or 'none', got {cost_model!r}")
    col = latency_column(device)
    acc = f"{dataset}_valid_acc"
    results = [acc, f"{acc}_s0", f"{acc}_s1", f"{acc}_s2", f"{dataset}_train_time_s"]
    df = _objective_table(table, col, results)
    _, all_codes, _ = _space()
    codes = np.asarray(OPS)[all_codes[cell_positions(df)]]
    frame = pd.DataFrame({p: codes[:, k] for k, p in enumerate(EDGE_PARAMS)})
    frame["index"] = df["index"].to_numpy()
    frame["arch"] = df["arch"].to_numpy()
    frame["val_error"] = 1.0 - df[acc].to_numpy(float) / 100.0
    for r in range(3):
        frame[f"run{r}"] = df[f"{acc}_s{r}"].to_numpy(float)
    frame["train_time_s"] = df[f"{dataset}_train_time_s"].to_numpy(float)
    frame["latency_ms"] = df[col].to_numpy(float)
    frame["connected"] = df["connected"].to_numpy() if "connected" in df.columns else 1
    obj = NB201Objective(frame, dataset=dataset, device_column=col, seed=seed)
    if budget_ms is None:
        if budget_percentile is None or not 0 < budget_percentile <= 100:
            raise InputError(f"budget_percentile must be in (0, 100], got {budget_percentile}")
        budget_ms = float(np.percentile(frame["latency_ms"], budget_percentile))
    obj.budget_ms = float(budget_ms)
    obj.constraint = Constraint("latency_ms", obj.budget_ms, "<=", f"latency_ms<={obj.budget_ms:.6g}")
    if cost_model == "fit":
        model, _ = fit_latency_model(df.assign(connected=frame["connected"]), col, n_cost_samples, seed)
        obj.cost_model = model
        obj.cost_model_source = model.describe()
    elif cost_model == "table":
        obj.cost_model = ArchCostPredictor(
            frame[["arch", "latency_ms"]], key=arch_of, source="measured", origin=f"{col} of every cell"
        )
        obj.cost_model_source = "measured latency of every cell (the whole table)"
    elif cost_model == "none":
        obj.cost_model_source = "none"
    else:
        raise InputError(f"cost_model must be 'fit', 'table' or 'none', got {cost_model!r}")
    return obj
