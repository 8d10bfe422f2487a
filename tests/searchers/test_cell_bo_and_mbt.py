"""The cell-space searcher (ask/tell, deterministic under a seed) and measure-before-train (never trains a
measured-infeasible candidate, counts its checks, refits the few-shot model with every measurement)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost_models.interface import CostEstimate, PredictorBase
from hwnas.errors import InputError
from hwnas.searchers.cell_bo import CellBO, HammingGP
from hwnas.searchers.cell_encoding import hamming, nb201_path_encoding, neighbours
from hwnas.searchers.measure_first import MeasureBeforeTrain
from hwnas.searchers.objectives.nb201 import config_of, make_objective, nb201_search_space
from hwnas.searchers.registry import make_searcher


@pytest.fixture(scope="module")
def gold():
    return make_objective("cifar10", "gold_6240", budget_percentile=25, cost_model="table")


class Uncertain(PredictorBase):
    """The true latency times ``bias`` with a wide interval [v / f, v * f]: most cells near the budget are
    uncertain. ``update`` records what it was given and makes the cell exact."""

    cost_names = ("latency_ms",)

    def __init__(self, obj, bias: float = 0.8, factor: float = 1.6) -> None:
        self.obj, self.bias, self.factor = obj, bias, factor
        self.exact: dict[str, float] = {}
        self.updates: list[str] = []

    def update(self, config, costs) -> None:
        arch = self.obj.arch_id(config)
        self.updates.append(arch)
        self.exact[arch] = float(costs["latency_ms"])

    def predict(self, archs):
        ids = [self.obj.arch_id(a) for a in archs]
        true = np.asarray([self.obj.measure_costs(a)["latency_ms"] for a in archs])
        v = np.asarray([self.exact.get(i, t * self.bias) for i, t in zip(ids, true, strict=True)])
        wide = np.asarray([i not in self.exact for i in ids])
        lo = np.where(wide, v / self.factor, v)
        hi = np.where(wide, v * self.factor, v)
        return {"latency_ms": CostEstimate("latency_ms", "ms", v, lo, hi, 0.9)}


class Spy:
    """The objective with its trainings and measurements recorded."""

    def __init__(self, obj) -> None:
        self.obj, self.trained, self.measured = obj, [], []
        self.space, self.cost_names = obj.space, obj.cost_names
        self.project, self.configs = obj.project, obj.configs

    def measure_costs(self, config):
        self.measured.append(self.obj.arch_id(config))
        return self.obj.measure_costs(config)

    def evaluate(self, config, stopper=None):
        self.trained.append(self.obj.arch_id(config))
        return self.obj.evaluate(config, stopper)


def test_measure_before_train_never_trains_a_measured_infeasible_cell(gold):
    cm = Uncertain(gold)
    s = make_searcher("random_search", gold.space, constraints=[gold.constraint], cost_model=cm, seed=3,
                      use_cost_model=True)  # fmt: skip
    spy = Spy(gold)
    mbt = MeasureBeforeTrain(s, low=0.01, high=0.95)
    hist = mbt.run(spy, 15)
    counts = hist.meta["measure_before_train"]
    by_path = {p: [t for t in hist.trials if t.info.get("mbt") == p] for p in
               ("checked-infeasible", "checked-trained", "trained", "rejected")}  # fmt: skip
    assert counts["trainings"] == 15 == len(spy.trained)
    assert counts["checks"] == len(by_path["checked-infeasible"]) + len(by_path["checked-trained"]) > 0
    assert counts["checked_infeasible"] == len(by_path["checked-infeasible"]) > 0  # the bias makes some
    trained = set(spy.trained)
    for t in by_path["checked-infeasible"]:
        arch = gold.arch_id(t.config)
        assert arch not in trained and t.objective is None and t.state == "infeasible"
        assert gold.measure_costs(t.config)["latency_ms"] > gold.budget_ms
    for t in by_path["checked-trained"]:
        assert t.feasible and t.objective is not None
    # every check was measured before its training, and each measurement went to the cost model
    assert set(cm.updates) == set(spy.measured)
    assert all(
        0 < t.info["p_feasible"] < 0.95 for t in by_path["checked-trained"] + by_path["checked-infeasible"]
    )
    # what was trained without a check and broke the budget is counted as an infeasible training
    over = [t for t in by_path["trained"] if not t.feasible]
    assert counts["infeasible_trainings"] == len(over)


def test_measure_before_train_rejects_bad_thresholds_and_stops_at_max_checks(gold):
    s = make_searcher("random_search", gold.space, constraints=[gold.constraint], cost_model=Uncertain(gold),
                      seed=0, use_cost_model=True)  # fmt: skip
    with pytest.raises(InputError, match="low < high"):
        MeasureBeforeTrain(s, low=0.9, high=0.5)
    hist = MeasureBeforeTrain(s, low=0.0, high=1.0, max_checks=3).run(gold, 50)
    meta = hist.meta["measure_before_train"]
    assert meta["checks"] == 3 and meta["trainings"] < 50 and "checks allowed are spent" in meta["stopped"]
    with pytest.raises(InputError, match="cost model"):
        MeasureBeforeTrain(make_searcher("random_search", gold.space, constraints=[gold.constraint], seed=0))


def _trace(obj, seed: int, n: int = 16, **kw) -> list[str]:
    s = CellBO(obj.space, [obj.constraint], obj.cost_model, seed=seed, n_init=5, n_random=50, **kw)
    s.attach(obj)
    obj._rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):  # ask/tell by hand, as a caller evaluating elsewhere would
        t = s.ask()
        costs = obj.measure_costs(t.config)
        ev = obj.evaluate(t.config)
        s.tell(t, ev.objective, costs)
        out.append(obj.arch_id(t.config))
    assert len(set(out)) == n  # never proposes a cell twice
    return out


@pytest.mark.parametrize("encoding", ["codes", "path"])
def test_cell_bo_is_ask_tell_deterministic_and_feasible(gold, encoding):
    a = _trace(gold, 7, encoding=encoding)
    assert a == _trace(gold, 7, encoding=encoding)
    assert a != _trace(gold, 8, encoding=encoding)
    # the perfect cost model: never over budget
    assert all(gold.measure_costs(config_of(x))["latency_ms"] <= gold.budget_ms for x in a)


def test_cell_bo_registered_and_bad_settings(gold):
    s = make_searcher("cell_bo_prob", gold.space, constraints=[gold.constraint], cost_model=gold.cost_model)
    assert isinstance(s, CellBO) and s.feasibility_kind == "probability"
    with pytest.raises(InputError, match="encoding"):
        CellBO(gold.space, [gold.constraint], gold.cost_model, encoding="bogus")
    from hwnas.searchers.space import FloatParam, SearchSpace

    with pytest.raises(InputError, match="categorical"):
        CellBO(SearchSpace.of([FloatParam("lr", 0.1, 1.0)]), [], None)


def test_path_encoding_and_hamming_gp():
    none = dict.fromkeys(["e10", "e20", "e21", "e30", "e31", "e32"], "none")
    conv = dict.fromkeys(none, "nor_conv_3x3")
    enc = nb201_path_encoding([none, conv, {**none, "e30": "skip_connect"}])
    assert enc.shape == (3, 100) and enc[0].sum() == 0 and enc[1].sum() == 4 and enc[2].sum() == 1
    assert len(neighbours(nb201_search_space(), conv, radius=1)) == 24
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(40, 6)).astype(np.int16)
    y = (X == 3).sum(axis=1).astype(float)  # a smooth function of the codes
    gp = HammingGP().fit(X, y)
    mean, std = gp.predict(X)
    assert np.max(np.abs(mean - y)) < 0.5 and np.all(std >= 0)
    assert hamming(X[:2], X[:2])[0, 0] == 0


def test_online_fewshot_refits_with_each_measurement():
    import hwnas.plugins
    from hwnas.cost_models.fewshot import FewShotLatencyPredictor
    from hwnas.cost_models.fewshot_online import OnlineFewShot
    from hwnas.spaces.nb201_table import load_table

    hwnas.plugins.load()
    t = load_table()
    col = "lat_gold_6240_ms"
    cells = t[t["connected"] == 1].sample(8, random_state=0)
    est = FewShotLatencyPredictor(exclude_columns=(col,), method="nn-ridge")
    m = OnlineFewShot(est, cells["arch"].tolist(), cells[col].tolist())
    new = t[t["connected"] == 1].iloc[[5000]]
    arch = str(new["arch"].iloc[0])
    before = m.predict([arch])["latency_ms"]
    m.update(arch, {"latency_ms": float(new[col].iloc[0])})
    after = m.predict([arch])["latency_ms"]
    assert m.n_samples == 9 and m.n_refits == 1
    assert after.value[0] == after.lower[0] == after.upper[0] == pytest.approx(float(new[col].iloc[0]))
    assert before.upper[0] > before.lower[0]
    assert after.source[0] == "measured"
    with pytest.raises(InputError, match="latency_ms"):
        m.update(arch, {"energy_mj": 1.0})
