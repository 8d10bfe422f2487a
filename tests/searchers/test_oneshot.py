"""The one-shot searcher contract, end to end on a small multi-path test supernet (digits, 8x8).

The toy supernet has two searchable positions choosing conv3x3 / conv5x5 / skip (a straight-through Gumbel
sample in training, softmax weights in the cost, the argmax when derived), and a
MAC cost priced through the differentiable view of the cost interface (``candidate_cost_matrix`` +
``expected_cost``), as FBNet-style searchers do.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.cost_models.interface import CostEstimate, LayerCostPredictor, candidate_cost_matrix
from hwnas.cost_models.torch_costs import expected_cost
from hwnas.errors import InputError
from hwnas.graph.layer import make_layer
from hwnas.searchers.base import History
from hwnas.searchers.compare import comparison_from_histories
from hwnas.searchers.oneshot import (
    DerivedArchitecture,
    OneShotSearcher,
    Supernet,
    check_supernet,
    tensor_batches,
)
from hwnas.searchers.penalty import LinearPenalty
from hwnas.searchers.plot import comparison_plot_data, plot_comparison

OPS = ("conv3", "conv5", "skip")
C = 8


class MacCosts:
    """A real LayerCostPredictor: cost = analytic MACs (millions) of each LayerSpec."""

    cost_names = ("mmacs",)

    def layer_costs(self, name: str, layers):  # noqa: ANN001
        assert name == "mmacs"
        return np.array([layer.macs / 1e6 for layer in layers], float)

    def predict(self, archs):  # noqa: ANN001
        v = np.array([self.layer_costs("mmacs", a).sum() for a in archs])
        return {"mmacs": CostEstimate("mmacs", "M", v, v, v)}

    def prob_within(self, archs, name, budget):  # noqa: ANN001
        return self.predict(archs)[name].prob_within(budget)


def conv_spec(k: int, hw: int = 8) -> object:
    return make_layer(
        "conv2d",
        (1, C, hw, hw),
        (1, C, hw, hw),
        in_channels=C,
        out_channels=C,
        kernel=k,
        stride=1,
        padding=k // 2,
        groups=1,
        bias=False,
    )


class ToySupernet(Supernet):
    cost_names = ("mmacs",)

    def __init__(self, positions: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU())
        self.ops = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(C, C, 3, padding=1), nn.Conv2d(C, C, 5, padding=2), nn.Identity()])
            for _ in range(positions)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(C * 64, 10))
        self.alpha = nn.Parameter(torch.zeros(positions, len(OPS)))
        predictor = MacCosts()
        assert isinstance(predictor, LayerCostPredictor)
        cands = [[conv_spec(3), conv_spec(5), None] for _ in range(positions)]
        costs, mask = candidate_cost_matrix(predictor, "mmacs", cands)
        self.register_buffer("costs", costs.float())
        self.register_buffer("mask", mask)
        self.fixed = float(predictor.layer_costs("mmacs", [self.stem_spec()])[0])
        self.epochs_seen: list[int] = []

    @staticmethod
    def stem_spec() -> object:
        return make_layer(
            "conv2d",
            (1, 1, 8, 8),
            (1, C, 8, 8),
            in_channels=1,
            out_channels=C,
            kernel=3,
            stride=1,
            padding=1,
            groups=1,
            bias=False,
        )

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.alpha, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        w = self.weights()
        for i, ops in enumerate(self.ops):
            if self.training:  # one path sampled (straight-through Gumbel), as train and eval then agree
                g = nn.functional.gumbel_softmax(self.alpha[i], tau=1.0, hard=True)
                x = sum(g[k] * op(x) for k, op in enumerate(ops))
            else:
                x = ops[int(w[i].argmax())](x)
        return self.head(x)

    def cost(self) -> dict[str, torch.Tensor]:
        return {"mmacs": self.fixed + expected_cost(self.weights(), self.costs, self.mask)}

    def derive(self) -> DerivedArchitecture:
        choice = self.alpha.detach().argmax(-1).tolist()
        layers = [self.stem_spec()] + [conv_spec(3 if c == 0 else 5) for c in choice if c != 2]
        return DerivedArchitecture(
            {f"pos{i}": OPS[c] for i, c in enumerate(choice)},
            layers,
            {"mmacs": float(sum(layer.macs for layer in layers) / 1e6)},
        )

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        self.epochs_seen.append(epoch)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions run faster on one thread than on two contended ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images[:, None] / 16.0, dtype=torch.float32)
    y = torch.as_tensor(d.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(x), generator=g)
    tr, va = idx[:320], idx[320:520]
    return (
        tensor_batches(x[tr], y[tr], 32, seed=0),
        tensor_batches(x[va], y[va], 200, shuffle=False),
    )


def _search(penalty, epochs=2, **kw):  # noqa: ANN001
    torch.manual_seed(0)
    net = ToySupernet()
    s = OneShotSearcher(net, penalty, epochs=epochs, lr=0.1, arch_lr=0.05, **kw)
    return net, s


def test_toy_supernet_passes_contract_checks() -> None:
    d = check_supernet(ToySupernet(), torch.randn(4, 1, 8, 8))
    assert set(d.config) == {"pos0", "pos1"}


def test_end_to_end_history_records_per_epoch(digits, tmp_path) -> None:
    train, val = digits
    net, s = _search(LinearPenalty(0.0), epochs=2, constraints=["mmacs<=0.02"])
    seen = []
    steps = []
    hist = s.run(train, val, callback=seen.append, on_step=steps.append)
    assert len(hist) == 2 and seen == hist.trials and net.epochs_seen == [0, 1]
    assert len(steps) == 2 * len(train) and steps[-1].epoch == 1
    for i, t in enumerate(hist):
        assert t.number == i and t.state == "complete" and t.searcher == "oneshot"
        assert set(t.config) == {"pos0", "pos1"}
        assert 0.0 <= t.objective <= 1.0
        assert t.info["epoch"] == i + 1 and t.info["steps"] == len(train)
        assert t.predicted_costs["mmacs"] > 0 and "mmacs" in t.info["relaxed_costs"]
        assert t.predicted_constraints["mmacs"] == pytest.approx(t.predicted_costs["mmacs"] - 0.02)
        assert t.info["feasible_from"] == "predicted" and t.feasible == t.predicted_feasible
    # Validation accuracy is the derived network's, and real training beats chance (10 classes).
    assert hist.trials[-1].info["val_accuracy"] > 0.3
    loaded = History.load_json(hist.save_json(tmp_path / "h.json"))
    assert [t.to_dict() for t in loaded] == [t.to_dict() for t in hist]
    assert loaded.meta["kind"] == "one-shot" and loaded.meta["penalty"]["kind"] == "linear"


def test_cost_penalty_steers_the_architecture(digits) -> None:
    train, val = digits
    _, free = _search(LinearPenalty(0.0))
    h0 = free.run(train, val)
    _, pushed = _search(LinearPenalty(50.0))
    h1 = pushed.run(train, val)
    # A heavy cost weight makes every position skip (the cheapest op); none does without it.
    assert h1.trials[-1].config == {"pos0": "skip", "pos1": "skip"}
    assert h1.trials[-1].info["relaxed_costs"]["mmacs"] < h0.trials[-1].info["relaxed_costs"]["mmacs"]
    assert h1.trials[-1].predicted_costs["mmacs"] < h0.trials[-1].predicted_costs["mmacs"]


def test_measured_costs_decide_feasibility(digits) -> None:
    train, val = digits
    _, s = _search(LinearPenalty(0.0), epochs=1, constraints=["mmacs<=0.001"])
    t = s.run(train, val, measure=lambda d: {"mmacs": 0.0005}).trials[0]
    assert t.measured_costs == {"mmacs": 0.0005} and t.feasible is True
    assert t.predicted_feasible is False and t.info["feasible_from"] == "measured"


def test_warmup_freezes_arch_and_bilevel_moves_it(digits) -> None:
    train, val = digits
    net, s = _search(LinearPenalty(5.0), epochs=2, warmup_epochs=1, bilevel=True)
    snapshots = []
    xs, ys = next(iter(val))
    arch = tensor_batches(xs[:128], ys[:128], 64, seed=1)
    s.run(train, val, arch_data=arch, callback=lambda t: snapshots.append(net.alpha.detach().clone()))
    assert torch.equal(snapshots[0], torch.zeros_like(snapshots[0]))  # warm-up: weights only
    assert not torch.equal(snapshots[1], snapshots[0])
    assert [t.info["phase"] for t in s.history] == ["warmup", "search"]


def test_interrupted_search_resumes_from_checkpoint(digits, tmp_path) -> None:
    train, val = digits
    ck = tmp_path / "ck.pt"
    _, s = _search(LinearPenalty(1.0), epochs=3)

    def stop_after_first(t):  # noqa: ANN001
        if t.number == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        s.run(train, val, checkpoint=ck, callback=stop_after_first)
    first = s.history.trials[0].to_dict()
    _, again = _search(LinearPenalty(1.0), epochs=3)
    hist = again.run(train, val, checkpoint=ck)
    assert len(hist) == 3 and hist.trials[0].to_dict() == first
    assert [t.info["epoch"] for t in hist] == [1, 2, 3]
    _, done = _search(LinearPenalty(1.0), epochs=3)
    assert len(done.run(train, val, checkpoint=ck)) == 3  # finished: nothing left to train


def test_bad_checkpoint_is_an_input_error(digits, tmp_path) -> None:
    ck = tmp_path / "ck.pt"
    ck.write_text("not a checkpoint")
    _, s = _search(LinearPenalty(1.0), epochs=1)
    with pytest.raises(InputError, match="checkpoint"):
        s.run(*digits, checkpoint=ck)


def test_bad_settings_are_input_errors() -> None:
    with pytest.raises(InputError, match="warmup"):
        OneShotSearcher(ToySupernet(), "linear:1", epochs=2, warmup_epochs=2)
    with pytest.raises(InputError, match="prices"):
        OneShotSearcher(ToySupernet(), "linear:1", cost_name="latency_ms")


def test_one_shot_and_black_box_histories_compare_and_plot(digits, tmp_path) -> None:
    from hwnas.searchers.random_search import RandomSearch
    from tests.searchers.conftest import grid_objective

    train, val = digits
    _, s = _search(LinearPenalty(0.5), epochs=2, constraints=["mmacs<=0.05"])
    one = s.run(train, val)
    obj = grid_objective()
    bb = RandomSearch(obj.space, ["latency_ms<=6"], seed=0).run(obj, 3)
    comp = comparison_from_histories(
        {"oneshot": [one], "random_search": [bb]}, constraints=["mmacs<=0.05"], objective_name="mixed"
    )
    assert comp.n_evals == 3 and set(comp.summaries) == {"oneshot", "random_search"}
    best = one.best()
    assert best is not None
    assert math.isclose(comp.summaries["oneshot"].final_best_mean, best.objective)
    data = comparison_plot_data(comp)
    oneshot_curve = next(c for c in data.curves if c.name == "oneshot")
    assert np.allclose(oneshot_curve.cost, [t.predicted_costs["mmacs"] for t in one])
    assert plot_comparison(comp, tmp_path / "c.png").stat().st_size > 1000
