"""Figures of a searcher comparison, like thesis figs. 3.5 and 3.6. Data first, drawing second.

``comparison_plot_data`` builds plain arrays (so a test or another renderer can use them);
``plot_comparison`` draws three panels with matplotlib: best feasible error vs evaluations (mean ± std
over seeds), cumulative constraint-violating evaluations vs evaluations, and error against the first
constrained cost of every evaluated design with the budget as a vertical line.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from hwnas.searchers.compare import Comparison
from hwnas.searchers.constraints import Constraint


class SearcherCurves(NamedTuple):
    name: str
    evals: np.ndarray
    best_mean: np.ndarray
    best_std: np.ndarray
    violations_mean: np.ndarray
    cost: np.ndarray  # first constrained cost of every evaluation, all seeds
    error: np.ndarray  # its objective (NaN where it was not trained)


class ComparisonPlotData(NamedTuple):
    title: str
    cost_name: str
    budget: float
    optimum: float
    tolerance: float
    curves: list[SearcherCurves]


def comparison_plot_data(comp: Comparison) -> ComparisonPlotData:
    cons = [Constraint.parse(c) if "<=" in c or ">=" in c else None for c in comp.constraints]
    first = cons[0] if cons and cons[0] is not None else None
    cost_name = first.name if first else ""
    curves = []
    for name, s in comp.summaries.items():
        hs = comp.histories.get(name, [])
        # Measured where the search measured it; a one-shot search without a device logs predictions only.
        cost = [
            t.measured_costs.get(cost_name, t.predicted_costs.get(cost_name, np.nan)) for h in hs for t in h
        ]
        err = [np.nan if t.objective is None else t.objective for h in hs for t in h]
        curves.append(
            SearcherCurves(
                name,
                np.arange(1, comp.n_evals + 1),
                np.asarray(s.best_curve_mean),
                np.asarray(s.best_curve_std),
                np.asarray(s.violations_curve_mean),
                np.asarray(cost, float),
                np.asarray(err, float),
            )
        )
    budgets = ", ".join(comp.constraints) or "no constraints"
    title = f"{comp.objective or 'objective'}: {budgets}, {len(comp.seeds)} seeds"
    return ComparisonPlotData(
        title, cost_name, first.budget if first else np.nan, comp.optimum, comp.tolerance, curves
    )


def plot_comparison(comp: Comparison, path: str | Path) -> Path:
    """Write the three-panel figure to ``path`` (PNG/PDF/SVG by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = comparison_plot_data(comp)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax_best, ax_viol, ax_scatter = axes
    for c in data.curves:
        line = ax_best.plot(c.evals, c.best_mean * 100, label=c.name)[0]
        ax_best.fill_between(
            c.evals,
            (c.best_mean - c.best_std) * 100,
            (c.best_mean + c.best_std) * 100,
            color=line.get_color(),
            alpha=0.15,
        )
        ax_viol.plot(c.evals, c.violations_mean, color=line.get_color(), label=c.name)
        ok = ~np.isnan(c.cost)
        ax_scatter.scatter(
            c.cost[ok], c.error[ok] * 100, s=10, alpha=0.5, color=line.get_color(), label=c.name
        )
    if np.isfinite(data.optimum):
        ax_best.axhline(data.optimum * 100, color="k", lw=0.8, ls=":", label="optimum")
        ax_best.axhline(
            (data.optimum + data.tolerance) * 100, color="gray", lw=0.8, ls="--", label="near-optimal"
        )
    ax_best.set(
        xlabel="function evaluations", ylabel="best feasible error (%)", title="best error (mean ± std)"
    )
    ax_viol.set(
        xlabel="function evaluations", ylabel="constraint-violating evaluations", title="violations (mean)"
    )
    if np.isfinite(data.budget):
        ax_scatter.axvline(data.budget, color="r", lw=1, ls="--", label="budget")
    ax_scatter.set(
        xlabel=data.cost_name or "cost",
        ylabel="error (%) of trained designs, log scale",
        title="designs evaluated (budget-breakers are not trained)",
        yscale="log",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    ax_best.legend(fontsize=8)
    ax_viol.legend(fontsize=8)
    fig.suptitle(data.title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
