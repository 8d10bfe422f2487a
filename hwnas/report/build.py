"""Build the report directory: ``index.html``, ``img/*.png`` beside it and ``data/*.csv`` of every table.

With ``embed=True`` the PNGs are also inlined as data URIs, so ``index.html`` alone can be mailed; the
files beside it are still written.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hwnas.errors import InputError
from hwnas.report import data as rd
from hwnas.report import plots
from hwnas.report.html import Page, esc, figure, flatten, kv_table, note, table


@dataclass
class ReportResult:
    """What was written: the page, its images and data files, and which sections it has."""

    index: Path
    sections: list[str]
    images: list[Path] = field(default_factory=list)
    data_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": str(self.index),
            "sections": self.sections,
            "images": [str(p) for p in self.images],
            "data_files": [str(p) for p in self.data_files],
            "notes": self.notes,
        }


def _slug(text: str, n: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s[:n] or "x"


class _Writer:
    def __init__(self, out: Path, embed: bool) -> None:
        self.out = out
        self.embed = embed
        self.images: list[Path] = []
        self.data_files: list[Path] = []
        self._names: set[str] = set()
        (out / "img").mkdir(parents=True, exist_ok=True)
        (out / "data").mkdir(parents=True, exist_ok=True)

    def name(self, stem: str, ext: str) -> str:
        # Long model ids and budgets are cut in the middle; the end (which figure it is) stays.
        base = _slug(stem, 10**6)
        if len(base) > 72:
            base = base[:40] + "-" + base[-31:]
        name, i = f"{base}.{ext}", 2
        while name in self._names:
            name, i = f"{base}-{i}.{ext}", i + 1
        self._names.add(name)
        return name

    def img(self, stem: str) -> Path:
        return self.out / "img" / self.name(stem, "png")

    def keep(self, p: Path | None) -> str | None:
        if p is None:
            return None
        self.images.append(p)
        return str(p.relative_to(self.out))

    def src(self, rel: str) -> str:
        if not self.embed:
            return rel
        return "data:image/png;base64," + base64.b64encode((self.out / rel).read_bytes()).decode()

    def csv(self, stem: str, df: pd.DataFrame) -> str:
        p = self.out / "data" / self.name(stem, "csv")
        df.to_csv(p, index=False)
        self.data_files.append(p)
        return f'<a href="{esc(p.relative_to(self.out))}">{esc(p.name)}</a>'


def build_report(
    out_dir: str | Path,
    *,
    store: Any | None = None,
    tables: Sequence[str | Path] = (),
    histories: Sequence[str | Path] = (),
    model_ids: Sequence[str] | None = None,
    max_models: int = 4,
    embed: bool = False,
    title: str = "hwnas report",
) -> ReportResult:
    """Write the report for a store (may be None), cost tables and history files into ``out_dir``."""
    profiles = rd.profile_data(store, model_ids) if store is not None else []
    if store is not None and model_ids and not profiles:
        raise InputError(f"no measurements of {list(model_ids)} in the store", hint="see `hwnas show`")
    cost = [rd.cost_model_data(t, store) for t in tables]
    runs = rd.load_histories(histories)
    groups = rd.search_data(runs)
    comps = rd.comparison_data(profiles)
    if not (profiles or cost or groups):
        raise InputError(
            "nothing to report: the store holds no measurements and no --table or --history was given",
            hint="profile a model first (`hwnas profile -d local-cpu -m mobilenet_v2`), "
            "or pass --table/--history",
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out, embed)
    inputs = []
    if store is not None:
        inputs.append(f"store <code>{esc(getattr(store, 'path', store))}</code>")
    inputs += [f"cost table <code>{esc(t)}</code>" for t in tables]
    inputs += [f"history <code>{esc(h)}</code>" for h in histories]
    page = Page(
        title,
        [
            f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by <code>hwnas report</code>",
            "inputs: " + ", ".join(inputs),
        ],
    )
    notes: list[str] = []
    if profiles:
        _profiles_section(page, w, profiles, max_models, notes)
    if cost:
        _cost_section(page, w, cost)
    if groups:
        _search_section(page, w, groups)
    if comps:
        _comparison_section(page, w, comps)
    index = out / "index.html"
    index.write_text(page.render(), encoding="utf-8")
    return ReportResult(index, list(page.sections), w.images, w.data_files, notes)


# --- sections --------------------------------------------------------------------------------------------


def _profiles_section(
    page: Page, w: _Writer, profiles: list[rd.DeviceProfile], max_models: int, notes: list[str]
) -> None:
    sid = "device-profiles"
    page.add(
        sid,
        "<p>Per device set-up (a device config and the fingerprint of the machine and runtime it ran on): "
        "every model's whole-model latency beside the sum of its layers, peak memory and energy where "
        "measured, then per-layer latency for the models detailed below. Latency is the median of repeats, "
        "with the distribution-free 95 % confidence interval of the median.</p>",
    )
    for d in profiles:
        head = f"{d.device} <small>(fingerprint {esc(d.fingerprint_id)})</small>"
        page.add(sid, f'<h3 id="{_slug("dev-" + d.device + "-" + d.fingerprint_id)}">{head}</h3>')
        fp = [(k, v) for k, v in flatten(d.fingerprint) if k not in ("id",)]
        page.add(sid, f"<details><summary>fingerprint ({len(fp)} fields)</summary>{kv_table(fp)}</details>")
        summ = d.summary
        link = w.csv(f"profile-{d.device}-{d.fingerprint_id}-models", summ)
        page.add(sid, f"<h4>Models ({len(d.models)}) — {link}</h4>{table(summ)}")
        energy = [m for m in d.models if m.energy_mj is not None]
        if not energy:
            page.add(sid, note("energy: not measured on this set-up (no power sensor sampled)"))
        detailed = [m for m in d.models if not m.layers.empty][:max_models]
        rest = [m for m in d.models if not m.layers.empty][max_models:]
        for m in detailed:
            page.add(sid, f"<h4>{esc(m.label)} — {esc(m.mode)}, batch {m.batch_size}</h4>")
            for f in m.flags:
                page.add(sid, note("flag: " + esc(f), "flag"))
            if not m.flags:
                page.add(sid, '<p class="ok">no flags: every layer reached its CI target; no throttling or '
                              "refused sensor window recorded</p>")  # fmt: skip
            stem = f"{d.device}-{m.model_id}-{m.mode}"
            page.add(
                sid,
                figure(
                    w.keep(plots.plot_whole_vs_sum(m, w.img(stem + "-sum"))),
                    f"whole model vs sum of layers, {m.label}",
                    "Whole-model latency (with its 95 % CI) beside the sum of the layers timed in isolation "
                    "and "
                    "the sum of per-layer kernel times inside the whole model (onnxruntime's profiler). The "
                    "isolated sum misses fusion and overlap, so it rarely equals the whole model.",
                    w.src,
                ),
            )
            page.add(
                sid,
                figure(
                    w.keep(plots.plot_top_layers(m, w.img(stem + "-top"))),
                    f"slowest layers of {m.label}",
                    "The slowest layers by isolated latency: index in execution order, layer name, op.",
                    w.src,
                ),
            )
            page.add(
                sid,
                figure(
                    w.keep(plots.plot_layers(m, w.img(stem + "-layers"))),
                    f"per-layer latency of {m.label}",
                    "Every layer in execution order, coloured by op, whisker = 95 % CI of the median; black "
                    "ticks: the layer's kernel time inside the whole model, where the runtime reports it.",
                    w.src,
                ),
            )
            link = w.csv(stem + "-layers", m.layers)
            page.add(
                sid,
                f"<details><summary>all {len(m.layers)} layers (table; also {link})</summary>"
                f"{table(m.layers.drop(columns=['layer_key']))}</details>",
            )
        if rest:
            msg = (f"{len(rest)} more model(s) with per-layer data are in the table above but not drawn: "
                   "pass <code>--model ID</code> to pick, or <code>--max-models N</code>")  # fmt: skip
            page.add(sid, note(msg))
            notes.append(re.sub("<[^>]+>", "", msg))


def _cost_section(page: Page, w: _Writer, cost: list[rd.CostModelData]) -> None:
    sid = "cost-models"
    page.add(
        sid,
        "<p>Each cost table: its held-out scores from fit time, and predicted vs measured whole-model cost "
        "on the store's architectures of the table's device set-up. Relative errors are of the prediction "
        "against "
        "the measured median; the interval coverage is the share of measured values inside the table's "
        "prediction interval.</p>",
    )
    for cd in cost:
        page.add(sid, f"<h3>{esc(Path(cd.path).name)} — {esc(cd.kind)}, {esc(cd.metric)}</h3>")
        n_fit = ", ".join(f"{k} {v}" for k, v in cd.n_fit.items() if not isinstance(v, (list, dict)))
        items = [
            ("file", cd.path),
            ("estimator", cd.kind),
            ("metric", f"{cd.metric} ({cd.unit})"),
            ("fitted on", cd.input),
            ("device", cd.device or "–"),
            ("fitting data", n_fit or "–"),
            ("fingerprint", cd.fingerprint.get("id", "–")),
            ("written", cd.created_at),
        ]
        page.add(sid, kv_table(items))
        if cd.fingerprint:
            fp = [(k, v) for k, v in flatten(cd.fingerprint) if k != "id"]
            page.add(
                sid, f"<details><summary>fingerprint of the fitting data</summary>{kv_table(fp)}</details>"
            )
        if cd.note:
            page.add(sid, note(esc(cd.note)))
        et = cd.error_table()
        if not et.empty:
            link = w.csv(f"cost-{Path(cd.path).stem}-errors", et)
            page.add(sid, f"<h4>Errors — {link}</h4>{table(et)}")
        if cd.evaluation is not None and len(cd.evaluation):
            stem = f"cost-{Path(cd.path).stem}"
            cov = cd.eval_metrics.get("interval_coverage")
            covtxt = (
                f"; {100 * cov:.0f} % of measured values lie inside their interval" if cov is not None else ""
            )
            page.add(
                sid,
                figure(
                    w.keep(plots.plot_cost_scatter(cd, w.img(stem + "-scatter"))),
                    f"predicted vs measured, {cd.kind}",
                    f"Predicted vs measured whole-model {esc(cd.metric)} on {len(cd.evaluation)} "
                    f"{esc(cd.eval_kind)} architectures; grey band: within ±10 % of measured{covtxt}.",
                    w.src,
                ),
            )
            link = w.csv(stem + "-predictions", cd.evaluation)
            page.add(
                sid, f"<details><summary>predictions (also {link})</summary>{table(cd.evaluation)}</details>"
            )


def _search_section(page: Page, w: _Writer, groups: list[rd.SearchGroup]) -> None:
    sid = "searches"
    page.add(
        sid,
        "<p>Per objective and set of budgets: the best feasible validation error found so far, per searcher, "
        "over evaluations and over time (the median over seeds, with the spread), the evaluations that broke "
        "a budget, accuracy against each measured cost with the Pareto front, and the design chosen (the "
        "lowest-error feasible trial of all runs).</p>",
    )
    for g in groups:
        page.add(sid, f"<h3>{esc(g.title)}</h3>")
        n_runs = len(g.runs)
        srcs = sorted({r.source for r in g.runs})
        page.add(sid, f"<p>{n_runs} run(s) of {len(g.curves)} searcher(s) from "
                      f"{', '.join(f'<code>{esc(s)}</code>' for s in srcs)}.</p>")  # fmt: skip
        stem = f"search-{g.objective}-{'-'.join(g.constraints)}"
        link = w.csv(stem + "-summary", g.summary)
        page.add(sid, f"<h4>Searchers — {link}</h4>{table(g.summary)}")
        page.add(
            sid,
            figure(
                w.keep(plots.plot_search_curves(g, w.img(stem + "-evals"), "evals")),
                "best feasible error vs evaluations",
                "Best feasible error after each evaluation; a seed with no feasible point yet counts as "
                "worse "
                "than any, so a median line starts once half the seeds have one.",
                w.src,
            ),
        )
        page.add(
            sid,
            figure(
                w.keep(plots.plot_search_curves(g, w.img(stem + "-time"), "time")),
                "best feasible error vs time",
                f"The same against cumulative {esc(g.time_kind)} (for a tabular objective: the training "
                "time the table records for each design).",
                w.src,
            ),
        )
        page.add(
            sid,
            figure(
                w.keep(plots.plot_violations(g, w.img(stem + "-violations"))),
                "infeasible evaluations",
                "Evaluations whose measured costs broke a budget (they are not trained), cumulative.",
                w.src,
            ),
        )
        page.add(
            sid,
            figure(
                w.keep(plots.plot_pareto(g, w.img(stem + "-pareto"))),
                "accuracy vs cost",
                "Every trained trial of every run; black: the Pareto front of the feasible ones (no other "
                "feasible trial is both cheaper and more accurate); dashed red: the budget; star: the "
                "chosen design.",
                w.src,
            ),
        )
        if g.chosen is not None:
            ch = g.chosen
            items = [
                ("searcher", ch["searcher"]),
                ("seed", ch["seed"]),
                ("trial", ch["trial"]),
                ("validation error", f"{100 * ch['error']:.3f} %"),
            ]
            items += [(f"measured {k}", v) for k, v in ch["measured_costs"].items()]
            items += [(f"config: {k}", v) for k, v in ch["config"].items()]
            page.add(sid, f"<h4>Chosen architecture</h4>{kv_table(items)}")
        else:
            page.add(sid, note("no feasible trial in any run: nothing to choose", "flag"))
        link = w.csv(stem + "-best", g.best_per_searcher)
        page.add(sid, f"<h4>Best feasible per searcher — {link}</h4>{table(g.best_per_searcher)}")
        link = w.csv(stem + "-trials", g.trials)
        page.add(sid, f"<p>every trial: {link}</p>")


def _comparison_section(page: Page, w: _Writer, comps: list[rd.DeviceComparison]) -> None:
    sid = "device-comparisons"
    page.add(sid, "<p>Models the store holds for more than one device set-up, side by side.</p>")
    for c in comps:
        page.add(sid, f"<h3>{esc(rd.short_model(c.model_id))} — {esc(c.mode)}, batch {c.batch_size}</h3>")
        stem = f"compare-{c.model_id}-{c.mode}"
        page.add(
            sid,
            figure(
                w.keep(plots.plot_device_comparison(c, w.img(stem))),
                f"{c.model_id} across devices",
                "Whole-model latency (95 % CI) per device set-up, and peak memory / energy where measured.",
                w.src,
            ),
        )
        link = w.csv(stem, c.table)
        page.add(sid, f"{table(c.table.drop(columns=['device']))}<p>{link}</p>")
