"""Matplotlib figures of the report's tables (:mod:`hwnas.report.data`); each function writes one PNG.

Readability rules every figure follows: axes carry their unit, every coloured thing is in a legend,
legends sit outside the data when there are many entries, long labels are elided (never overlapped),
and a figure with nothing to show is not drawn (the page says why instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwnas.report.data import CostModelData, DeviceComparison, ModelProfile, SearchGroup, short_model

DPI = 110
SEARCHER_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                   "tab:pink", "tab:gray", "tab:olive", "tab:cyan")  # fmt: skip


def _plt():  # noqa: ANN202 - the pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _op_colors(ops: Sequence[str]) -> dict[str, str]:
    cmap = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:cyan", "tab:pink",
            "tab:brown", "tab:olive", "tab:gray")  # fmt: skip
    uniq = sorted(set(ops), key=lambda o: (o != "conv2d", o))
    return {o: cmap[i % len(cmap)] for i, o in enumerate(uniq)}


def searcher_colors(names: Sequence[str]) -> dict[str, str]:
    return {n: SEARCHER_COLORS[i % len(SEARCHER_COLORS)] for i, n in enumerate(names)}


# --- device profile --------------------------------------------------------------------------------------


def plot_layers(mp: ModelProfile, path: Path) -> Path | None:
    """Per-layer latency in execution order: bars coloured by op with 95 % CI whiskers; the in-model
    kernel time (where the runtime reports one) as black ticks on top."""
    lay = mp.layers
    if lay.empty or lay["latency_ms"].isna().all():
        return None
    plt = _plt()
    colors = _op_colors(lay["op"].tolist())
    fig, ax = plt.subplots(figsize=(11, 3.4))
    x = np.arange(len(lay))
    y = lay["latency_ms"].to_numpy(float)
    ax.bar(x, y, width=0.85, color=[colors[o] for o in lay["op"]], linewidth=0)
    lo = np.clip(y - lay["ci_low"].to_numpy(float), 0, None)
    hi = np.clip(lay["ci_high"].to_numpy(float) - y, 0, None)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(x[ok], y[ok], yerr=[lo[ok], hi[ok]], fmt="none", ecolor="black", elinewidth=0.6, capsize=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    labels = list(colors)
    inm = lay["in_model_latency_ms"].to_numpy(float)
    if np.isfinite(inm).any():
        h = ax.scatter(x[np.isfinite(inm)], inm[np.isfinite(inm)], marker="_", s=40, color="black",
                       linewidths=1.4, zorder=3)  # fmt: skip
        handles.append(h)
        labels.append("in-model kernel time")
    ax.set_xlabel("layer, in execution order (index)")
    ax.set_ylabel("latency (ms)")
    ax.set_xlim(-1, len(lay))
    ax.set_title(f"{mp.label} on {mp.device}: isolated per-layer latency, median with 95 % CI")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="op")
    return _save(fig, path)


def plot_top_layers(mp: ModelProfile, path: Path, k: int = 15) -> Path | None:
    """The ``k`` slowest layers by name, horizontal bars with CI whiskers (names stay readable)."""
    lay = mp.layers.dropna(subset=["latency_ms"])
    if lay.empty:
        return None
    plt = _plt()
    top = lay.nlargest(min(k, len(lay)), "latency_ms").iloc[::-1]
    colors = _op_colors(mp.layers["op"].tolist())
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(top) + 1.0))
    y = np.arange(len(top))
    v = top["latency_ms"].to_numpy(float)
    ax.barh(y, v, color=[colors[o] for o in top["op"]], height=0.7)
    lo = np.clip(v - top["ci_low"].to_numpy(float), 0, None)
    hi = np.clip(top["ci_high"].to_numpy(float) - v, 0, None)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(v[ok], y[ok], xerr=[lo[ok], hi[ok]], fmt="none", ecolor="black", elinewidth=0.7)
    names = [f"#{int(i)} {_elide(n, 28)} ({o})" for i, n, o in zip(top["layer_index"], top["layer_name"],
                                                                      top["op"], strict=True)]  # fmt: skip
    ax.set_yticks(y, names)
    ax.set_xlabel("isolated latency (ms), median with 95 % CI")
    ax.set_title(f"{mp.label}: the {len(top)} slowest layers")
    ax.grid(axis="y", visible=False)
    return _save(fig, path)


def _elide(text: str, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_whole_vs_sum(mp: ModelProfile, path: Path) -> Path | None:
    """Whole-model latency (with its CI) beside the sums of isolated and of in-model layer times."""
    bars: list[tuple[str, float, float, float, str]] = []
    if mp.whole is not None:
        w = mp.whole
        bars.append(("whole model (measured)", w["median"], w["ci_low"], w["ci_high"], "tab:blue"))
    if mp.layer_sum_ms is not None:
        bars.append(("Σ isolated layers", mp.layer_sum_ms, math.nan, math.nan, "tab:orange"))
    if mp.in_model_sum_ms is not None:
        bars.append(("Σ in-model layer times", mp.in_model_sum_ms, math.nan, math.nan, "tab:green"))
    if len(bars) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 0.45 * len(bars) + 0.9))
    y = np.arange(len(bars))[::-1]
    vals = [b[1] for b in bars]
    ax.barh(y, vals, color=[b[4] for b in bars], height=0.6)
    for yi, (_, v, lo, hi, _) in zip(y, bars, strict=True):
        if math.isfinite(lo):
            ax.errorbar([v], [yi], xerr=[[v - lo], [hi - v]], fmt="none", ecolor="black", capsize=3)
        end = hi if math.isfinite(hi) else v
        ax.text(end + 0.015 * max(vals), yi, f"{v:.3g} ms", va="center", fontsize=8)
    ax.set_yticks(y, [b[0] for b in bars])
    ax.set_xlim(0, max(vals) * 1.2)
    ax.set_xlabel("latency (ms)")
    ax.set_title(f"{mp.label}: whole model vs sum of layers")
    ax.grid(axis="y", visible=False)
    return _save(fig, path)


def plot_device_comparison(comp: DeviceComparison, path: Path) -> Path | None:
    """One model on several set-ups: whole-model latency (CI) and, where measured, peak memory."""
    t = comp.table
    if t["latency_ms"].isna().all():
        return None
    plt = _plt()
    panels = [("latency_ms", "whole-model latency (ms)")]
    if t["peak_memory_mb"].notna().any():
        panels.append(("peak_memory_mb", "peak memory (MB)"))
    if t["energy_mj"].notna().any():
        panels.append(("energy_mj", "energy per inference (mJ)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1.5, 0.5 * len(t) + 1.2),
                             squeeze=False)  # fmt: skip
    y = np.arange(len(t))[::-1]
    labels = [_elide(s, 42) for s in t["setup"]]
    for j, (ax, (col, xlabel)) in enumerate(zip(axes[0], panels, strict=True)):
        v = t[col].to_numpy(float)
        ax.barh(y, np.nan_to_num(v), color="tab:blue" if j == 0 else "tab:gray", height=0.6)
        if col == "latency_ms":
            lo = np.clip(v - t["ci_low"].to_numpy(float), 0, None)
            hi = np.clip(t["ci_high"].to_numpy(float) - v, 0, None)
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.errorbar(v[ok], y[ok], xerr=[lo[ok], hi[ok]], fmt="none", ecolor="black", capsize=3)
        finite = v[np.isfinite(v)]
        top = t["ci_high"].to_numpy(float) if col == "latency_ms" else v
        for yi, vi, end in zip(y, v, top, strict=True):
            x = (end if math.isfinite(end) else vi) + 0.02 * (finite.max() if finite.size else 1)
            text = f"{vi:.3g}" if math.isfinite(vi) else "not measured"
            ax.text(x if math.isfinite(vi) else 0, yi, text, va="center", fontsize=8)
        ax.set_xlim(0, (finite.max() if finite.size else 1) * 1.25)
        ax.set_xlabel(xlabel)
        ax.set_yticks(y, labels if j == 0 else [""] * len(y))
        ax.grid(axis="y", visible=False)
    fig.suptitle(f"{short_model(comp.model_id)} ({comp.mode}, batch {comp.batch_size}) across device set-ups")
    return _save(fig, path)


# --- cost models -----------------------------------------------------------------------------------------


def plot_cost_scatter(cd: CostModelData, path: Path) -> Path | None:
    """Predicted vs measured whole-model cost with y = x, the ±10 % band and each prediction's interval."""
    f = cd.evaluation
    if f is None or f.empty:
        return None
    plt = _plt()
    m, p = f["measured"].to_numpy(float), f["predicted"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    lo_b = float(min(m.min(), p.min(), f["lo"].min())) * 0.92
    hi_b = float(max(m.max(), p.max(), f["hi"].max())) * 1.08
    xs = np.linspace(lo_b, hi_b, 50)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.88", label="±10 % of measured", zorder=0)
    ax.plot(xs, xs, "k-", lw=0.8, label="predicted = measured")
    ax.errorbar(m, p, yerr=[np.clip(p - f["lo"], 0, None), np.clip(f["hi"] - p, 0, None)], fmt="none",
                ecolor="tab:blue", alpha=0.45, lw=0.9, label="prediction interval")  # fmt: skip
    inside = (m >= f["lo"].to_numpy(float)) & (m <= f["hi"].to_numpy(float))
    ax.scatter(m[inside], p[inside], s=16, color="tab:blue", label="measured inside interval", zorder=3)
    if (~inside).any():
        ax.scatter(m[~inside], p[~inside], s=22, color="tab:red", marker="D",
                   label="measured outside interval", zorder=3)  # fmt: skip
    unit = cd.unit or ""
    ax.set_xlim(lo_b, hi_b)
    ax.set_ylim(lo_b, hi_b)
    ax.set_xlabel(f"measured {cd.metric.removesuffix('_' + unit) if unit else cd.metric} ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.set_title(f"{cd.kind} table, {len(f)} {cd.eval_kind} architectures")
    ax.legend(loc="upper left", frameon=False)
    ax.set_aspect("equal", adjustable="box")
    return _save(fig, path)


# --- searches --------------------------------------------------------------------------------------------


def _error_axis(ax, values: np.ndarray) -> None:  # noqa: ANN001
    v = values[np.isfinite(values) & (values > 0)]
    if v.size and v.max() / v.min() > 20:
        ax.set_yscale("log")


def plot_search_curves(group: SearchGroup, path: Path, over: str = "evals") -> Path | None:
    """Best feasible error (%) per searcher: median over seeds (line), IQR (band), min–max (dotted)."""
    curves = [c for c in group.curves if (c.evals.size if over == "evals" else c.time_grid.size)]
    if not curves:
        return None
    plt = _plt()
    colors = searcher_colors([c.searcher for c in group.curves])
    fig, ax = plt.subplots(figsize=(5.4, 3.7))
    shown = []
    for c in curves:
        x = c.evals if over == "evals" else c.time_grid
        med, q25, q75 = (
            (c.median, c.q25, c.q75) if over == "evals" else (c.time_median, c.time_q25, c.time_q75)
        )
        col = colors[c.searcher]
        pct = [np.where(np.isfinite(a), 100 * a, np.nan) for a in (med, q25, q75)]
        ax.plot(x, pct[0], color=col, lw=1.6, label=f"{c.searcher} (median of {c.n_seeds})",
                drawstyle="steps-post")  # fmt: skip
        if c.n_seeds > 1:
            ax.fill_between(x, pct[1], pct[2], color=col, alpha=0.13, step="post", lw=0)
            for a in (pct[1], pct[2]):  # thin edges keep overlapping bands apart
                ax.plot(x, a, color=col, lw=0.5, alpha=0.6, drawstyle="steps-post")
        shown.extend(p[np.isfinite(p)] for p in pct)
    allv = np.concatenate(shown) if shown else np.zeros(0)
    _error_axis(ax, allv)
    if over == "evals":
        ax.set_xlabel("evaluations")
    else:
        ax.set_xscale("log")
        ax.set_xlabel(f"cumulative {group.time_kind} (s, log scale)")
    ax.set_ylabel("best feasible error (%)")
    spread = "line: median over seeds; band: 25–75 %"
    ax.set_title(
        f"best feasible error vs {'evaluations' if over == 'evals' else group.time_kind}\n({spread})"
    )
    # below the axes: a legend there never hides a curve
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return _save(fig, path)


def plot_violations(group: SearchGroup, path: Path) -> Path | None:
    """Cumulative constraint-violating evaluations per searcher (median over seeds)."""
    if not group.constraints or not group.curves:
        return None
    plt = _plt()
    colors = searcher_colors([c.searcher for c in group.curves])
    fig, ax = plt.subplots(figsize=(5.4, 3.7))
    for c in group.curves:
        ax.plot(c.evals, c.violations_median, color=colors[c.searcher], lw=1.5, label=c.searcher,
                drawstyle="steps-post")  # fmt: skip
    ax.set_xlabel("evaluations")
    ax.set_ylabel("infeasible evaluations\n(cumulative, median)")
    ax.set_title("evaluations whose measured costs broke a budget")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return _save(fig, path)


def plot_pareto(group: SearchGroup, path: Path) -> Path | None:
    """Accuracy (100·(1 − error)) against each measured cost: every trained trial, the Pareto front of the
    feasible ones, the budget and the chosen design."""
    costs = [c for c in group.cost_names if f"cost:{c}" in group.trials]
    tr = group.trials[group.trials["objective"].notna()] if len(group.trials) else group.trials
    if not costs or tr.empty:
        return None
    plt = _plt()
    colors = searcher_colors([c.searcher for c in group.curves])
    fig, axes = plt.subplots(1, len(costs), figsize=(4.6 * len(costs) + 1.8, 3.8), squeeze=False)
    for j, (ax, cost) in enumerate(zip(axes[0], costs, strict=True)):
        col = f"cost:{cost}"
        for name, sub in tr.groupby("searcher", sort=False):
            feas = sub[sub["feasible"]]
            ax.scatter(feas[col], 100 * (1 - feas["objective"]), s=9, alpha=0.45, color=colors[name],
                       label=f"{name}" if j == 0 else None, lw=0)  # fmt: skip
            inf = sub[~sub["feasible"]]
            if len(inf):
                ax.scatter(inf[col], 100 * (1 - inf["objective"]), s=14, marker="x", alpha=0.6,
                           color=colors[name], lw=0.8)  # fmt: skip
        front = group.pareto.get(cost)
        if front is not None and len(front):
            ax.plot(front["cost"], 100 * (1 - front["objective"]), color="black", lw=1.2, marker="o", ms=3,
                    drawstyle="steps-post", label="Pareto front (feasible)" if j == 0 else None)  # fmt: skip
        if cost in group.budgets:
            ax.axvline(group.budgets[cost], color="tab:red", ls="--", lw=1,
                       label="budget" if j == 0 else None)  # fmt: skip
        ch = group.chosen
        if ch and cost in ch["measured_costs"]:
            ax.scatter([ch["measured_costs"][cost]], [ch["accuracy_pct"]], marker="*", s=160, color="gold",
                       edgecolor="black", zorder=5, label="chosen" if j == 0 else None)  # fmt: skip
        acc = 100 * (1 - tr["objective"].to_numpy(float))
        top = np.nanmax(acc)
        low = np.nanpercentile(acc, 5)
        ax.set_ylim(max(low - 0.1 * (top - low), 0), top + 0.05 * (top - low) + 0.1)
        ax.set_xlabel(_cost_label(cost))
        ax.set_ylabel("accuracy (%) = 100·(1 − error)" if j == 0 else "")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if (~tr["feasible"]).any():
        handles.append(plt.Line2D([], [], marker="x", ls="", color="0.3"))
        labels.append("trained but infeasible")
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, markerscale=1.8)
    fig.suptitle("accuracy against each measured cost (lowest 5 % of accuracies cut off)")
    fig.tight_layout()
    return _save(fig, path)


def _cost_label(name: str) -> str:
    units = {"ms": "ms", "mb": "MB", "mw": "mW", "mj": "mJ", "w": "W", "gb": "GB"}
    base, _, unit = name.rpartition("_")
    if base and unit.lower() in units:
        return f"measured {base} ({units[unit.lower()]})"
    return f"measured {name}"
