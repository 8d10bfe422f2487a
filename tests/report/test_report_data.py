"""The report's tables (hwnas.report.data): numbers checked against the inputs they were built from."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from report_helpers import build_store, history

from hwnas.cost_models import fitting
from hwnas.cost_models.data import load_store_data
from hwnas.cost_models.export import save_cost_table
from hwnas.errors import InputError
from hwnas.report import data as rd


@pytest.fixture
def store(tmp_path):
    s = build_store(tmp_path / "s.db")
    yield s
    s.close()


def test_profile_tables_match_the_store(store) -> None:
    profiles = rd.profile_data(store)
    assert [(d.device, len(d.models)) for d in profiles] == [("cpu-a", 12), ("cpu-b", 1)]
    a = profiles[0]
    assert a.fingerprint["cpu"] == "test A"
    m0 = next(m for m in a.models if m.model_id == "synthetic:0")
    recs = store.query(device="cpu-a", model_id="synthetic:0", scope="layer", metric="latency_ms")
    assert m0.layer_sum_ms == pytest.approx(sum(r.value for r in recs))
    assert list(m0.layers["layer_index"]) == sorted(r.layer_index for r in recs)
    assert (m0.layers["ci_low"] < m0.layers["latency_ms"]).all()
    whole = store.query(device="cpu-a", model_id="synthetic:0", scope="model", metric="latency_ms")[0]
    assert m0.whole["median"] == pytest.approx(whole.value) and m0.whole["n"] == 20
    assert m0.peak_memory_mb == pytest.approx(2.0)
    assert m0.energy_mj is None and profiles[1].models[0].energy_mj == 5.0
    assert "thermal throttling seen during the run" in m0.flags
    assert any("1 of" in f and "max_repeats" in f for f in m0.flags)
    m1 = next(m for m in a.models if m.model_id == "synthetic:1")
    assert m1.flags == []
    summary = a.summary
    assert len(summary) == 12 and summary["flags"].str.len().gt(0).sum() == 1


def test_profile_model_filter(store) -> None:
    profiles = rd.profile_data(store, ["synthetic:0"])
    assert sum(len(d.models) for d in profiles) == 2


def test_comparison_across_devices(store) -> None:
    comps = rd.comparison_data(rd.profile_data(store))
    assert [c.model_id for c in comps] == ["synthetic:0"]  # the only model on two set-ups
    t = comps[0].table.set_index("device")
    assert t.loc["cpu-a", "× fastest"] == 1.0
    assert t.loc["cpu-b", "× fastest"] == pytest.approx(
        t.loc["cpu-b", "latency_ms"] / t.loc["cpu-a", "latency_ms"]
    )
    assert 1.7 < t.loc["cpu-b", "× fastest"] < 2.3  # built 2x slower, with 2 % noise
    assert t.loc["cpu-b", "energy_mj"] == 5.0 and math.isnan(t.loc["cpu-a", "energy_mj"])


def _fit_table(store, tmp_path, model_ids):
    data = load_store_data(store, device="cpu-a").subset(model_ids)
    tbl, _ = fitting.fit_with_validation("flops", data)
    return save_cost_table(tbl, tmp_path / "t.json")


def test_cost_model_scored_on_held_out_architectures(store, tmp_path) -> None:
    path = _fit_table(store, tmp_path, [f"synthetic:{i}" for i in range(8)])
    cd = rd.cost_model_data(path, store)
    assert cd.eval_kind == "held-out"
    assert set(cd.evaluation["model_id"]) == {f"synthetic:{i}" for i in range(8, 12)}
    assert cd.eval_metrics["n"] == 4
    rel = (cd.evaluation["predicted"] - cd.evaluation["measured"]) / cd.evaluation["measured"]
    assert cd.eval_metrics["rmspe_pct"] == pytest.approx(100 * float(np.sqrt(np.mean(rel**2))))
    et = cd.error_table()
    assert et["scored on"].str.contains("held out at fit time").any()  # the table's own validation
    assert et["scored on"].str.contains("not used in fitting").any()
    assert cd.fingerprint["device"] == "cpu-a" and cd.n_fit


def test_cost_model_in_sample_is_labelled(store, tmp_path) -> None:
    path = _fit_table(store, tmp_path, [f"synthetic:{i}" for i in range(12)])
    cd = rd.cost_model_data(path, store)
    assert cd.eval_kind == "in-sample" and "in-sample" in cd.note
    assert cd.error_table()["scored on"].str.contains("optimistic").any()
    no_store = rd.cost_model_data(path, None)
    assert no_store.evaluation is None and "no store" in no_store.note


def test_search_curves_pareto_and_choice(tmp_path) -> None:
    # searcher A, 3 seeds; budget latency <= 2: infeasible trials are not trained (objective None)
    a = [
        history("A", 0, [(0.5, True, 1.0), (None, False, 3.0), (0.2, True, 1.5), (0.3, True, 0.5)]),
        history("A", 1, [(None, False, 3.0), (0.4, True, 1.0), (0.4, True, 1.0), (0.1, True, 1.9)]),
        history("A", 2, [(None, False, 3.0), (None, False, 4.0), (0.6, True, 0.2), (0.6, True, 0.2)]),
    ]
    b = [history("B", 0, [(0.9, True, 0.1), (0.8, True, 0.3)])]
    runs = [rd.SearchRun(h.meta["searcher"], h.meta["seed"], h, "mem") for h in a + b]
    (g,) = rd.search_data(runs)
    ca = next(c for c in g.curves if c.searcher == "A")
    # best so far per seed: [.5 .5 .2 .2], [inf .4 .4 .1], [inf inf .6 .6] -> median [inf .5 .4 .2]
    assert np.isinf(ca.median[0]) and list(ca.median[1:]) == [0.5, 0.4, 0.2]
    assert list(ca.lo) == [0.5, 0.4, 0.2, 0.1]
    assert list(ca.violations_median) == [1, 1, 1, 1]  # per seed [0 1 1 1], [1 1 1 1], [1 2 2 2]
    # time: every trial takes 1 s of evaluation time, so after 2.5 s each seed has seen 2 trials
    assert g.time_kind == "evaluation time"
    i = int(np.searchsorted(ca.time_grid, 2.5))
    assert ca.time_median[i] == 0.5
    assert g.budgets == {"latency_ms": 2.0}
    front = g.pareto["latency_ms"]
    # feasible trained points (cost, err): the front is the staircase of lowest error at rising cost
    assert list(zip(front["cost"], front["objective"], strict=True)) == [
        (0.1, 0.9), (0.2, 0.6), (0.5, 0.3), (1.5, 0.2), (1.9, 0.1)]  # fmt: skip
    assert g.chosen["searcher"] == "A" and g.chosen["seed"] == 1 and g.chosen["trial"] == 3
    assert g.chosen["accuracy_pct"] == pytest.approx(90.0)
    s = g.summary.set_index("searcher")
    assert s.loc["A", "runs with a feasible point"] == "3/3"
    assert s.loc["A", "infeasible evals per run (mean)"] == pytest.approx(4 / 3)
    assert s.loc["A", "final best error % (median)"] == pytest.approx(20.0)


def test_load_history_formats_and_errors(tmp_path) -> None:
    h = history("A", 3, [(0.5, True, 1.0), (0.4, True, 1.2)])
    one = h.save_json(tmp_path / "one.json")
    comp = tmp_path / "comp.json"
    comp.write_text(json.dumps({"objective": "toy", "constraints": ["latency_ms<=2"], "seeds": [7, 8],
                                "histories": {"B": [h.to_records(), h.to_records()]}}))  # fmt: skip
    runs = rd.load_histories([one, comp])
    assert [(r.searcher, r.seed) for r in runs] == [("A", 3), ("B", 7), ("B", 8)]
    assert len(rd.search_data(runs)) == 1  # same objective and budgets: one group
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        rd.load_histories([bad])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": []}))
    with pytest.raises(InputError, match="no 'trials'"):
        rd.load_histories([other])
    with pytest.raises(InputError, match="not found"):
        rd.load_histories([tmp_path / "missing.json"])


def test_flags_from_nested_profiler_extras() -> None:
    extra = {
        "qa": {"flags": ["load average 12 > 2 cores"], "flagged": True},
        "throttle": {"throttled": True, "throttle_notes": ["throttled: sw power cap"]},
        "flagged": True,
        "stop_reason": "ci",
    }
    assert rd._flags(extra) == ["load average 12 > 2 cores", "throttled", "throttled: sw power cap"]
    assert rd._flags({"flagged": False, "qa": {"flags": []}}) == []
