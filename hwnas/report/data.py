"""The report's numbers as plain tables, built before anything is drawn.

Every figure and table in the HTML page is made from one of these dataclasses, so a test (or another
renderer) can check the numbers without parsing images. Three inputs:

- the **store**: per device set-up (device + fingerprint) and model, per-layer latency with its CI, the
  whole-model latency beside the sums of layers, memory, energy, power, and the flags profilers leave in
  a record's ``extra`` (``flags``, throttling, refused sensor windows, a CI target not reached);
- **cost tables** (:func:`hwnas.cost_models.export.load_cost_table`): their own held-out validation, and
  predicted vs measured on the store's whole-model records of the table's device set-up (held out when
  the store has architectures the table was not fitted on, else in-sample, and labelled so);
- **search histories** (:meth:`History.load_json` files, or a ``compare-searchers --histories`` file):
  best-feasible curves per searcher over evaluations and over time (median and spread over seeds),
  infeasible evaluations, Pareto fronts of accuracy against each measured cost, the chosen architecture.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.errors import InputError

# --- device profiles -------------------------------------------------------------------------------------

# Keys in a record's ``extra`` whose presence is a flag a reader must see (profilers add their own under
# ``flags``: a list of short strings). Matching is by substring of the key.
FLAG_KEYS = ("throttl", "refused", "warning", "flag", "unparsed_sensor")


@dataclass
class ModelProfile:
    """One model measured on one device set-up in one mode and batch size."""

    device: str
    fingerprint_id: str
    backend: str
    model_id: str
    mode: str
    batch_size: int
    layers: pd.DataFrame  # layer_index, layer_name, op, layer_key, latency_ms, ci_low, ci_high, n,
    #                       stop_reason, in_model_latency_ms
    whole: dict[str, float] | None  # median, ci_low, ci_high, n of the whole-model latency (ms)
    layer_sum_ms: float | None  # Σ isolated per-layer latency
    in_model_sum_ms: float | None  # Σ per-layer kernel times inside the whole model
    peak_memory_mb: float | None = None
    energy_mj: float | None = None
    power_mw: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return short_model(self.model_id)

    @property
    def setup(self) -> str:
        return f"{self.device} ({self.backend}, {self.fingerprint_id[:8]})"


@dataclass
class DeviceProfile:
    """All models of one device set-up, and the fingerprint they share."""

    device: str
    fingerprint_id: str
    fingerprint: dict[str, Any]
    models: list[ModelProfile]

    @property
    def summary(self) -> pd.DataFrame:
        rows = []
        for m in self.models:
            rows.append(
                {
                    "model": m.model_id,
                    "mode": m.mode,
                    "batch": m.batch_size,
                    "whole-model latency (ms)": None if m.whole is None else m.whole["median"],
                    "95% CI (ms)": None
                    if m.whole is None
                    else f"{m.whole['ci_low']:.4g}–{m.whole['ci_high']:.4g}",
                    "Σ isolated layers (ms)": m.layer_sum_ms,
                    "Σ in-model layers (ms)": m.in_model_sum_ms,
                    "layers": len(m.layers),
                    "peak memory (MB)": m.peak_memory_mb,
                    "energy (mJ)": m.energy_mj,
                    "flags": "; ".join(m.flags),
                }
            )
        return pd.DataFrame(rows)


def short_model(model_id: str, width: int = 40) -> str:
    """A model id short enough for a legend or an axis label (long arch strings are elided)."""
    name = model_id.removeprefix("torchvision:")
    return name if len(name) <= width else name[: width - 11] + "…" + name[-10:]


def _flags(extra: dict[str, Any]) -> list[str]:
    """Flags in a record's ``extra``, one level of nesting deep (``extra["qa"]["flags"]``,
    ``extra["throttle"]["throttle_notes"]``); ``flagged`` (a summary bool) adds nothing by itself."""
    out: list[str] = []
    for k, v in (extra or {}).items():
        if isinstance(v, dict):
            out.extend(f for f in _flags(v) if f not in out)
            continue
        if k == "flagged" or not any(f in k.lower() for f in FLAG_KEYS) or v in (None, False, "", [], {}):
            continue
        if isinstance(v, (list, tuple)):
            out.extend(str(x) for x in v if str(x) not in out)
        elif v is True:
            out.append(k.replace("_", " "))
        else:
            out.append(f"{k.replace('_', ' ')}: {v}")
    return out


def profile_data(store: Any, model_ids: Sequence[str] | None = None) -> list[DeviceProfile]:
    """Per device set-up, per model: layer table, whole model, sums, memory, energy, flags."""
    ms = store.query()
    if model_ids:
        want = set(model_ids)
        ms = [m for m in ms if m.model_id in want or short_model(m.model_id, 10**6) in want]
    groups: dict[tuple[str, str], dict[tuple[str, str, str, int], list[Any]]] = {}
    for m in ms:
        groups.setdefault((m.device, m.fingerprint_id), {}).setdefault(
            (m.backend, m.model_id, m.mode, m.batch_size), []
        ).append(m)
    out = []
    for (device, fp_id), per_model in groups.items():
        models = [_model_profile(device, fp_id, key, recs) for key, recs in per_model.items()]
        models.sort(key=lambda p: (not p.model_id.startswith("torchvision:"), p.model_id, p.mode))
        out.append(DeviceProfile(device, fp_id, store.get_fingerprint(fp_id) or {}, models))
    out.sort(key=lambda d: (d.device, d.fingerprint_id))
    return out


def _model_profile(device: str, fp_id: str, key: tuple[str, str, str, int], recs: list[Any]) -> ModelProfile:
    backend, model_id, mode, batch = key
    lat = {m.layer_index: m for m in recs if m.scope == "layer" and m.metric == "latency_ms"}
    inm = {m.layer_index: m for m in recs if m.scope == "layer" and m.metric == "in_model_latency_ms"}
    rows = []
    for idx in sorted(set(lat) | set(inm)):
        m = lat.get(idx) or inm[idx]
        st = lat[idx].stats if idx in lat else None
        rows.append(
            {
                "layer_index": idx,
                "layer_name": m.layer_name,
                "op": m.extra.get("op") or m.layer_key.split("|", 1)[0] or "?",
                "layer_key": m.layer_key,
                "latency_ms": lat[idx].value if idx in lat else math.nan,
                "ci_low": st.ci_low if st else math.nan,
                "ci_high": st.ci_high if st else math.nan,
                "n": st.n if st else 0,
                "stop_reason": lat[idx].extra.get("stop_reason", "") if idx in lat else "",
                "in_model_latency_ms": inm[idx].value if idx in inm else math.nan,
            }
        )
    cols = ["layer_index", "layer_name", "op", "layer_key", "latency_ms", "ci_low", "ci_high", "n",
            "stop_reason", "in_model_latency_ms"]  # fmt: skip
    layers = pd.DataFrame(rows, columns=cols)
    model = {m.metric: m for m in recs if m.scope == "model"}
    whole = None
    if "latency_ms" in model:
        w = model["latency_ms"]
        s = w.stats
        whole = {
            "median": float(w.value),
            "ci_low": float(s.ci_low) if s else float(w.value),
            "ci_high": float(s.ci_high) if s else float(w.value),
            "n": int(s.n) if s else 1,
        }
    flags: list[str] = []
    for m in recs:
        for f in _flags(m.extra):
            tag = f if m.scope == "model" else f"layer {m.layer_index}: {f}"
            if tag not in flags:
                flags.append(tag)
    open_ci = layers[layers["stop_reason"].astype(str).str.len().gt(0) & (layers["stop_reason"] != "ci")]
    if len(open_ci):
        reasons = ", ".join(sorted(set(open_ci["stop_reason"].astype(str))))
        flags.append(f"{len(open_ci)} of {len(layers)} layers stopped before their CI target ({reasons})")
    if whole is not None and model["latency_ms"].extra.get("stop_reason") not in (None, "ci"):
        flags.append(f"whole model stopped before its CI target ({model['latency_ms'].extra['stop_reason']})")
    mem = model.get("peak_memory_bytes")
    return ModelProfile(
        device=device,
        fingerprint_id=fp_id,
        backend=backend,
        model_id=model_id,
        mode=mode,
        batch_size=batch,
        layers=layers,
        whole=whole,
        layer_sum_ms=float(layers["latency_ms"].sum()) if layers["latency_ms"].notna().any() else None,
        in_model_sum_ms=float(layers["in_model_latency_ms"].sum())
        if layers["in_model_latency_ms"].notna().any()
        else None,
        peak_memory_mb=float(mem.value) / 1e6 if mem is not None else None,
        energy_mj=float(model["energy_mj"].value) if "energy_mj" in model else None,
        power_mw=float(model["power_mw"].value) if "power_mw" in model else None,
        flags=flags,
    )


@dataclass
class DeviceComparison:
    """The same model measured on several device set-ups (e.g. one network on CPU and GPU)."""

    model_id: str
    mode: str
    batch_size: int
    table: pd.DataFrame  # one row per set-up: setup, latency median/ci, layer sum, memory, energy, ratio


def comparison_data(profiles: Sequence[DeviceProfile]) -> list[DeviceComparison]:
    """Models present on two or more device set-ups, with each set-up's figures and the ratio to the
    fastest one."""
    by_model: dict[tuple[str, str, int], list[ModelProfile]] = {}
    for d in profiles:
        for m in d.models:
            by_model.setdefault((m.model_id, m.mode, m.batch_size), []).append(m)
    out = []
    for (model_id, mode, batch), ms in by_model.items():
        if len(ms) < 2:
            continue
        rows = [
            {
                "setup": m.setup,
                "device": m.device,
                "latency_ms": m.whole["median"] if m.whole else math.nan,
                "ci_low": m.whole["ci_low"] if m.whole else math.nan,
                "ci_high": m.whole["ci_high"] if m.whole else math.nan,
                "layer_sum_ms": m.layer_sum_ms if m.layer_sum_ms is not None else math.nan,
                "peak_memory_mb": m.peak_memory_mb if m.peak_memory_mb is not None else math.nan,
                "energy_mj": m.energy_mj if m.energy_mj is not None else math.nan,
            }
            for m in ms
        ]
        t = pd.DataFrame(rows)
        best = t["latency_ms"].min()
        t["× fastest"] = t["latency_ms"] / best if math.isfinite(best) and best > 0 else math.nan
        out.append(DeviceComparison(model_id, mode, batch, t))
    out.sort(key=lambda c: (not c.model_id.startswith("torchvision:"), c.model_id))
    return out


# --- cost models -----------------------------------------------------------------------------------------


@dataclass
class CostModelData:
    """One cost table: what it is, how it scored when fitted, and how it scores on the store now."""

    path: str
    kind: str
    metric: str
    unit: str
    input: str
    device: str
    fingerprint: dict[str, Any]
    n_fit: dict[str, Any]
    validation: dict[str, Any]  # held-out scores written into the table at fit time
    created_at: str
    evaluation: pd.DataFrame | None = None  # model_id, measured, predicted, lo, hi
    eval_kind: str = ""  # "held-out" | "in-sample" | ""
    eval_metrics: dict[str, Any] = field(default_factory=dict)
    layer_metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def error_table(self) -> pd.DataFrame:
        """RMSPE, ±5/±10 %, τ, ρ, coverage: as fitted (table's own held-out split) and on the store."""
        cols = {
            "n": "architectures",
            "rmspe_pct": "RMSPE (%)",
            "mape_pct": "MAPE (%)",
            "within_5pct": "within ±5 %",
            "within_10pct": "within ±10 %",
            "kendall_tau_b": "Kendall τ-b",
            "spearman_rho": "Spearman ρ",
            "interval_coverage": "interval coverage",
        }
        rows = []
        fitted = (self.validation or {}).get("model")
        if fitted:
            split = (self.validation or {}).get("split") or {}
            rows.append({"scored on": f"held out at fit time ({_split_text(split)})", **_pick(fitted, cols)})
        if self.eval_metrics:
            label = {
                "held-out": "store: architectures not used in fitting",
                "in-sample": "store: architectures used in fitting (in-sample, optimistic)",
            }.get(self.eval_kind, "store")
            rows.append({"scored on": label, **_pick(self.eval_metrics, cols)})
        lay = self.layer_metrics
        if lay:
            rows.append({"scored on": f"store: single layers ({self.eval_kind})", **_pick(lay, cols)})
        return pd.DataFrame(rows)


def _pick(d: dict[str, Any], cols: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, name in cols.items():
        v = d.get(k)
        if v is None:
            out[name] = None
        elif k in ("within_5pct", "within_10pct", "interval_coverage"):
            out[name] = f"{100 * float(v):.1f} %"
        else:
            out[name] = v
    return out


def _split_text(split: dict[str, Any]) -> str:
    if not split:
        return "split unknown"
    tr = split.get("n_train_models", split.get("n_train"))
    te = split.get("n_test_models", split.get("n_test"))
    return f"by {split.get('by', '?')}, {tr} fitted / {te} held out"


def cost_model_data(path: str | Path, store: Any | None) -> CostModelData:
    """Load a cost table and, when the store holds its device set-up, score it there."""
    from hwnas.cost_models.export import load_cost_table

    tbl = load_cost_table(path)
    meta = tbl.meta
    d = CostModelData(
        path=str(path),
        kind=tbl.kind,
        metric=tbl.metric,
        unit=str(meta.get("unit") or ""),
        input=str(meta.get("input") or ""),
        device=str(meta.get("device") or ""),
        fingerprint=dict(meta.get("fingerprint") or {}),
        n_fit=dict(meta.get("n_fit") or {}),
        validation=dict(meta.get("validation") or {}),
        created_at=str(meta.get("created_at") or ""),
    )
    if d.input == "tabular":
        d.note = (
            "a tabular table (fitted on a file of architecture rows, not on the store): only the scores it "
            "was written with are shown; `hwnas evaluate --table T --data FILE --target COL --plot` "
            "draws its predicted-vs-measured figure"
        )
        return d
    if store is None:
        d.note = "no store given: only the scores written into the table are shown"
        return d
    from hwnas.cost_models import fitting
    from hwnas.cost_models.data import load_store_data

    try:
        data = load_store_data(
            store,
            device=d.device or None,
            metric=d.metric,
            mode=str(meta.get("mode") or "inference"),
            fingerprint_id=d.fingerprint.get("id"),
            layer_metric=meta.get("layer_metric"),
        )
    except InputError as exc:
        d.note = f"not scored on the store: {exc.message}"
        return d
    seen = set(meta.get("fit_model_ids") or [])
    held = [m for m in data.models["model_id"] if m not in seen]
    include_fitted = not held
    try:
        report, frame = fitting.evaluate(tbl, data, include_fitted=include_fitted)
    except InputError as exc:
        d.note = f"not scored on the store: {exc.message}"
        return d
    d.eval_kind = "in-sample" if include_fitted else "held-out"
    d.evaluation = frame[["model_id", "measured", "predicted", "lo", "hi"]].reset_index(drop=True)
    d.eval_metrics = dict(report.get("model") or {})
    d.layer_metrics = dict(report.get("layer") or {})
    if include_fitted:
        d.note = (
            "every architecture of this set-up in the store was used to fit the table, so the scatter is "
            "in-sample (optimistic); profile new architectures to get a held-out one"
        )
    return d


# --- searches --------------------------------------------------------------------------------------------


@dataclass
class SearchRun:
    """One searcher run (one seed) read from a history file."""

    searcher: str
    seed: int | None
    history: Any  # hwnas.searchers.base.History
    source: str


@dataclass
class SearchCurves:
    """A searcher's best feasible objective over evaluations and over time, across its seeds."""

    searcher: str
    n_seeds: int
    evals: np.ndarray  # 1..N
    median: np.ndarray  # best feasible objective (inf: fewer than half the seeds have a feasible point)
    q25: np.ndarray
    q75: np.ndarray
    lo: np.ndarray  # min over seeds
    hi: np.ndarray  # max over seeds
    time_grid: np.ndarray  # seconds
    time_median: np.ndarray
    time_q25: np.ndarray
    time_q75: np.ndarray
    violations_median: np.ndarray  # cumulative infeasible evaluations


@dataclass
class SearchGroup:
    """Runs on one objective under one set of budgets (the unit a comparison makes sense in)."""

    objective: str
    constraints: list[str]
    runs: list[SearchRun]
    curves: list[SearchCurves]
    time_kind: str  # what the time axis adds up: "evaluation time" or "wall time"
    summary: pd.DataFrame
    trials: pd.DataFrame  # every trial of every run: searcher, seed, number, objective, feasible, costs
    cost_names: list[str]
    budgets: dict[str, float]
    pareto: dict[str, pd.DataFrame]  # cost -> the non-dominated trained feasible trials (cost asc.)
    chosen: dict[str, Any] | None  # best feasible trial over all runs
    best_per_searcher: pd.DataFrame

    @property
    def title(self) -> str:
        return f"{self.objective or 'objective'} under {', '.join(self.constraints) or 'no budget'}"


def load_histories(paths: Iterable[str | Path]) -> list[SearchRun]:
    """Read ``History.save_json`` files and ``compare-searchers --histories`` files into runs."""
    from hwnas.searchers.base import History, Trial

    runs: list[SearchRun] = []
    for p in paths:
        p = Path(p)
        try:
            doc = json.loads(p.read_text())
        except FileNotFoundError as exc:
            raise InputError(f"history file {p}: not found") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"history file {p}: cannot read it as JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise InputError(f"history file {p}: top level is not an object")
        if "trials" in doc:
            h = History.load_json(p)
            _check_trials(p, h)
            name = str(h.meta.get("searcher") or (h.trials[0].searcher if h.trials else "?"))
            seed = h.meta.get("seed")
            runs.append(SearchRun(name, None if seed is None else int(seed), h, str(p)))
        elif "histories" in doc:
            seeds = list(doc.get("seeds") or [])
            for name, hs in (doc.get("histories") or {}).items():
                for i, recs in enumerate(hs):
                    try:
                        trials = [Trial.from_dict(t) for t in recs]
                    except TypeError as exc:
                        raise InputError(
                            f"history file {p}: searcher {name} run {i}: bad trial ({exc})"
                        ) from exc
                    seed = seeds[i] if i < len(seeds) else i
                    meta = {
                        "searcher": name,
                        "seed": seed,
                        "objective": doc.get("objective", ""),
                        "constraints": list(doc.get("constraints") or []),
                    }
                    h = History(trials, meta)
                    _check_trials(p, h)
                    runs.append(SearchRun(name, int(seed), h, str(p)))
        else:
            raise InputError(
                f"history file {p}: no 'trials' (a search history) or 'histories' (a searcher comparison)",
                hint="write one with `hwnas search --history H.json` or "
                "`hwnas compare-searchers --histories H.json`",
            )
    return runs


def _check_trials(path: Path, h: Any) -> None:
    for t in h.trials:
        if not isinstance(t.config, dict):
            raise InputError(f"history file {path}: trial {t.number}: field 'config' is not an object")


def search_data(runs: Sequence[SearchRun], n_time_points: int = 200) -> list[SearchGroup]:
    """Group runs by objective and budgets, then build curves, Pareto fronts and the chosen design."""
    groups: dict[tuple[str, tuple[str, ...]], list[SearchRun]] = {}
    for r in runs:
        key = (str(r.history.meta.get("objective") or ""), tuple(r.history.meta.get("constraints") or ()))
        groups.setdefault(key, []).append(r)
    return [_group(obj, list(cons), rs, n_time_points) for (obj, cons), rs in groups.items()]


def _best_curve(trials: Sequence[Any]) -> np.ndarray:
    out, best = [], math.inf
    for t in trials:
        if t.feasible and t.objective is not None and math.isfinite(t.objective):
            best = min(best, t.objective)
        out.append(best)
    return np.asarray(out, float)


def _trial_time(t: Any, kind: str) -> float:
    return float(t.eval_time_s if kind == "evaluation time" else t.wall_time_s)


def _quantiles(stack: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Quantiles over seeds (axis 0) where a seed without a feasible point counts as +inf (worse than
    any); a quantile that lands on such seeds is inf, which the plots leave out."""
    with np.errstate(invalid="ignore"):
        res = np.quantile(stack, qs, axis=0, method="inverted_cdf")
    return [np.where(np.isnan(r), np.inf, r) for r in res]


def _group(objective: str, constraints: list[str], runs: list[SearchRun], n_time: int) -> SearchGroup:
    from hwnas.searchers.constraints import Constraint

    budgets: dict[str, float] = {}
    for c in constraints:
        try:
            con = Constraint.parse(c)
        except InputError:
            continue
        if con.op == "<=":
            budgets[con.name] = con.budget
    all_trials = [t for r in runs for t in r.history.trials]
    kind = "evaluation time" if any(t.eval_time_s > 0 for t in all_trials) else "wall time"
    by_searcher: dict[str, list[SearchRun]] = {}
    for r in runs:
        by_searcher.setdefault(r.searcher, []).append(r)
    curves = []
    t_all = [
        float(np.sum([_trial_time(t, kind) for t in r.history.trials])) for r in runs if r.history.trials
    ]
    t_pos = [_trial_time(t, kind) for t in all_trials if _trial_time(t, kind) > 0]
    if t_pos and max(t_all) > 0:
        grid = np.geomspace(max(min(t_pos), 1e-6), max(t_all), n_time)
    else:
        grid = np.zeros(0)
    summary_rows = []
    for name, rs in by_searcher.items():
        n = max(len(r.history.trials) for r in rs)
        stack = np.stack([_pad_inf(_best_curve(r.history.trials), n) for r in rs])
        viol = np.stack(
            [_pad_last(np.cumsum([t.feasible is False for t in r.history.trials]), n) for r in rs]
        )
        med, q25, q75, lo, hi = _quantiles(stack, [0.5, 0.25, 0.75, 0.0, 1.0])
        tstack = np.stack([_curve_on_grid(r.history.trials, grid, kind) for r in rs]) if grid.size else None
        tmed, tq25, tq75 = _quantiles(tstack, [0.5, 0.25, 0.75]) if tstack is not None else (np.zeros(0),) * 3
        curves.append(
            SearchCurves(
                name,
                len(rs),
                np.arange(1, n + 1),
                med,
                q25,
                q75,
                lo,
                hi,
                grid,
                tmed,
                tq25,
                tq75,
                np.median(viol, axis=0),
            )  # fmt: skip
        )
        finals = stack[:, -1]
        feas = finals[np.isfinite(finals)]
        summary_rows.append(
            {
                "searcher": name,
                "seeds": len(rs),
                "evaluations per run": n,
                "runs with a feasible point": f"{len(feas)}/{len(rs)}",
                "final best error % (median)": 100 * float(np.median(finals))
                if len(feas) * 2 > len(rs)
                else None,
                "final best error % (IQR)": _iqr_text(finals),
                "infeasible evals per run (mean)": float(np.mean([r.history.n_violations() for r in rs])),
                "early-stopped per run (mean)": float(np.mean([r.history.n_early_stopped() for r in rs])),
                "failed per run (mean)": float(
                    np.mean([sum(t.state == "failed" for t in r.history.trials) for r in rs])
                ),
                f"{kind} per run (s, median)": float(
                    np.median([sum(_trial_time(t, kind) for t in r.history.trials) for r in rs])
                ),
            }
        )
    trials = _trials_frame(runs)
    cost_names = sorted({k for t in all_trials for k in t.measured_costs})
    pareto = {c: _pareto(trials, c) for c in cost_names}
    chosen = None
    best_rows = []
    best_all = None
    for r in runs:
        b = r.history.best()
        if b is not None and (best_all is None or b.objective < best_all[1].objective):
            best_all = (r, b)
    if best_all is not None:
        r, b = best_all
        chosen = {
            "searcher": r.searcher,
            "seed": r.seed,
            "trial": b.number,
            "error": b.objective,
            "accuracy_pct": 100 * (1 - b.objective),
            "measured_costs": dict(b.measured_costs),
            "config": dict(b.config),
            "source": r.source,
        }
    for name, rs in by_searcher.items():
        bests = [(r, r.history.best()) for r in rs]
        bests = [(r, b) for r, b in bests if b is not None]
        if not bests:
            best_rows.append({"searcher": name, "seed": None, "trial": None, "error %": None})
            continue
        r, b = min(bests, key=lambda rb: rb[1].objective)
        best_rows.append(
            {
                "searcher": name,
                "seed": r.seed,
                "trial": b.number,
                "error %": 100 * b.objective,
                **{k: v for k, v in b.measured_costs.items()},
            }  # fmt: skip
        )
    return SearchGroup(
        objective=objective,
        constraints=constraints,
        runs=runs,
        curves=curves,
        time_kind=kind,
        summary=pd.DataFrame(summary_rows),
        trials=trials,
        cost_names=cost_names,
        budgets=budgets,
        pareto=pareto,
        chosen=chosen,
        best_per_searcher=pd.DataFrame(best_rows),
    )


def _iqr_text(finals: np.ndarray) -> str:
    q25, q75 = _quantiles(finals[:, None], [0.25, 0.75])
    a, b = float(q25[0]), float(q75[0])
    fa = "–" if not math.isfinite(a) else f"{100 * a:.2f}"
    fb = "no feasible point" if not math.isfinite(b) else f"{100 * b:.2f}"
    return f"{fa} – {fb}"


def _pad_inf(a: np.ndarray, n: int) -> np.ndarray:
    if a.size >= n:
        return a[:n]
    return np.concatenate([a, np.full(n - a.size, a[-1] if a.size else np.inf)])


def _pad_last(a: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(a, float)
    if a.size >= n:
        return a[:n]
    return np.concatenate([a, np.full(n - a.size, a[-1] if a.size else 0.0)])


def _curve_on_grid(trials: Sequence[Any], grid: np.ndarray, kind: str) -> np.ndarray:
    """Best feasible objective known by each time in ``grid`` (a trial counts once it has finished)."""
    ends = np.cumsum([_trial_time(t, kind) for t in trials])
    best = _best_curve(trials)
    idx = np.searchsorted(ends, grid, side="right") - 1
    return np.where(idx >= 0, best[np.clip(idx, 0, None)] if best.size else np.inf, np.inf)


def _trials_frame(runs: Sequence[SearchRun]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for t in r.history.trials:
            rows.append(
                {
                    "searcher": r.searcher,
                    "seed": r.seed,
                    "number": t.number,
                    "state": t.state,
                    "objective": t.objective,
                    "feasible": bool(t.feasible),
                    **{f"cost:{k}": v for k, v in t.measured_costs.items()},
                }
            )
    return pd.DataFrame(rows)


def _pareto(trials: pd.DataFrame, cost: str) -> pd.DataFrame:
    """Trained, feasible trials that no other is better than in both error and ``cost``."""
    col = f"cost:{cost}"
    if col not in trials:
        return pd.DataFrame(columns=["cost", "objective", "searcher", "seed", "number"])
    ok = trials[trials["objective"].notna() & trials["feasible"] & trials[col].notna()]
    ok = ok.sort_values([col, "objective"])
    front, best = [], math.inf
    for _, row in ok.iterrows():
        if row["objective"] < best - 1e-12:
            best = row["objective"]
            front.append(
                {
                    "cost": row[col],
                    "objective": row["objective"],
                    "searcher": row["searcher"],
                    "seed": row["seed"],
                    "number": row["number"],
                }  # fmt: skip
            )
    return pd.DataFrame(front, columns=["cost", "objective", "searcher", "seed", "number"])
