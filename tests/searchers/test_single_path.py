"""Single-Path NAS: runtime tables and model, superkernels, supernet, search, multi-path baseline, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.errors import InputError
from hwnas.searchers.multi_path import MultiPathSupernet, make_multi_path_searcher
from hwnas.searchers.oneshot import check_supernet, tensor_batches
from hwnas.searchers.single_path import SinglePathSupernet, SuperMBConv, derived_module
from hwnas.searchers.single_path_table import (
    SinglePathTable,
    block_input_sizes,
    build_table,
    check_runtime_model,
    parse_arch,
)
from hwnas.spaces.mbv2 import MBV2Space


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def small_space() -> MBV2Space:
    return MBV2Space(32, 0.25, 10)


def fake_timer(module, shape, name):  # noqa: ANN001
    """A deterministic additive 'device': 1 ms per MMAC of convolutions/linears + 0.05 ms per call."""
    macs = []

    def hook(m, inp, out):  # noqa: ANN001
        if isinstance(m, torch.nn.Conv2d):
            macs.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, torch.nn.Linear):
            macs.append(out.numel() * m.in_features)

    hs = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(torch.zeros(shape))
    for h in hs:
        h.remove()
    return 0.05 + sum(macs) / 1e6


@pytest.fixture(scope="module")
def small_table(small_space) -> SinglePathTable:
    t = build_table(small_space, fake_timer, device="fake", se=False, calibration=("k5e6", "k3e6"))
    t.se_scale = np.full((20, 4), 1.1)  # SE factors priced below; the SE-timing path is tested separately
    return t


def test_pixel1_totals_are_the_shipped_tables() -> None:
    t = SinglePathTable.pixel1()
    sp = MBV2Space()
    assert t.predict(parse_arch("k5e6", sp)) == pytest.approx(131.46, abs=0.005)
    assert t.predict(parse_arch("k3e6", sp)) == pytest.approx(110.65, abs=0.005)
    # e3 layers use the thesis's form: R55_3 * R33_6 / R55_6 (R33_3 unread).
    k3e3 = t.predict(parse_arch("k3e3", sp))
    r = t.table_ms
    assert k3e3 == pytest.approx(t.fixed_ms + float((r[:, 2] * r[:, 1] / r[:, 3]).sum()))
    arch = "-".join(["k3e6", "k5e6", "skip"] + ["k3e6"] * 17)
    assert t.predict(parse_arch(arch, sp)) == pytest.approx(
        t.fixed_ms + r[0, 1] + r[1, 3] + float(r[3:, 1].sum()), abs=1e-9
    )


def test_runtime_cli_prices_pixel1(capsys) -> None:
    from hwnas.cli.app import main

    assert (
        main(["single-path", "runtime", "--device", "pixel1", "--arch", ",".join(["k5e6"] * 20), "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["runtime_ms"] == pytest.approx(131.46, abs=0.005)
    assert main(["single-path", "runtime", "--device", "pixel1", "--arch", "k3e6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime_ms"] == pytest.approx(110.65, abs=0.005)
    assert main(["single-path", "runtime", "--device", "pixel1", "--arch", "k3e6,skip"]) == 2
    assert "expected 22" in capsys.readouterr().err
    assert main(["single-path", "runtime", "--device", "local-cpu", "--arch", "k3e6"]) == 2
    assert "single-path table --device local-cpu" in capsys.readouterr().err


def test_built_table_roundtrips_and_checks(small_space, small_table, tmp_path) -> None:
    assert small_table.table_ms.shape == (20, 4) and (small_table.table_ms > 0).all()
    # The fixed part absorbs stem, fixed blocks, head and the per-call overhead of the isolated blocks, so
    # on an additive device every architecture without k3e3 blocks is priced exactly (k3e3 takes the
    # thesis's ratio form).
    for arch in ("k5e6", "k3e6", "k5e3", "-".join(["k5e3", "k3e6", "skip", "k5e6"] * 5)):
        a = small_space.encode(parse_arch(arch, small_space))
        whole = fake_timer(small_space.build(a).eval(), (1, 3, 32, 32), a)
        assert small_table.predict(small_space.decode(a)) == pytest.approx(whole, rel=1e-9)
    loaded = SinglePathTable.load(small_table.save(tmp_path / "t.json"))
    for tok in ("k3e3", "k5e6", "k3e6se25"):
        sp = MBV2Space(32, 0.25, 10, se_ratios=(0.0, 0.25, 0.5))
        a = parse_arch(tok, sp)
        assert loaded.predict(a) == pytest.approx(small_table.predict(a))
    chk = check_runtime_model(small_table, small_space, fake_timer, n=5, seed=0)
    s = chk.summary()
    assert s["n"] == 5 and s["mean_abs_error_pct"] < 10 and s["rmse_ms"] >= 0
    assert np.allclose(chk.errors_pct, (np.array(chk.predicted_ms) / np.array(chk.measured_ms) - 1) * 100)


def test_se_factors_are_timed(small_space) -> None:
    calls = []

    def timer(module, shape, name):  # noqa: ANN001
        calls.append(name)
        return fake_timer(module, shape, name)

    t = build_table(small_space, timer, device="fake", se=True, calibration=("k5e6",))
    assert t.se_scale is not None and (t.se_scale > 1).all()
    assert sum(n.endswith("se25") for n in calls) == 80 and sum(n.endswith("identity") for n in calls) == 20


def test_repeats_take_the_median_of_interleaved_passes(small_space) -> None:
    passes = {"n": 0}

    def noisy(module, shape, name):  # noqa: ANN001
        passes["n"] += 1
        slow = passes["n"] <= 104  # the whole first pass runs on a 'loaded' host: 3x slower
        return fake_timer(module, shape, name) * (3.0 if slow else 1.0)

    t = build_table(small_space, noisy, device="fake", repeats=3)
    ref = build_table(small_space, fake_timer, device="fake")
    assert passes["n"] == 3 * 104 and t.info["repeats"] == 3
    assert np.allclose(t.table_ms, ref.table_ms) and t.fixed_ms == pytest.approx(ref.fixed_ms)


def test_table_load_errors(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="format"):
        SinglePathTable.load(bad)
    bad.write_text(
        json.dumps({"format": "hwnas-single-path-table", "version": 1, "fixed_ms": 1, "blocks_ms": {}})
    )
    with pytest.raises(InputError, match="blocks_ms"):
        SinglePathTable.load(bad)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        SinglePathTable.load(bad)
    # The published layout loads as is.
    from hwnas.cost_models.torch_costs import load_pixel1_table

    pub = tmp_path / "pixel1_runtime_model.json"
    pub.write_text(json.dumps(load_pixel1_table()))
    assert SinglePathTable.load(pub).predict(parse_arch("k5e6", MBV2Space())) == pytest.approx(131.4578)


def test_block_input_sizes(small_space) -> None:
    sizes = block_input_sizes(small_space)
    spec = small_space.layers(small_space.encode(small_space.default()))
    for b in range(22):
        first = next(layer for layer in spec.layers if layer.attr("block") == b)
        assert first.input_shape[-1] == sizes[b]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_supernet_is_the_derived_network(small_space, small_table, seed) -> None:
    """With hard decisions the superkernels compute exactly the derived MBConv blocks (eq. 5.2-5.3, 6.3)."""
    torch.manual_seed(seed)
    net = SinglePathSupernet(small_space, small_table, search_se=True)
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    for b in net.blocks:  # random thresholds: a random mix of kernels, expansions, skips and SE ratios
        for t in b.thresholds():
            t.data.fill_(float(torch.rand(1, generator=g)) * 0.012)
    net.eval()
    arch = net.derive().config["arch"]
    toks = arch.split("-")
    assert len(set(toks)) > 3
    child = derived_module(net).eval()
    x = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        assert torch.allclose(net(x), child(x), atol=1e-5)
    assert net.derive().costs["latency_ms"] == pytest.approx(small_table.predict(net.space.decode(arch)))
    assert float(net.cost()["latency_ms"]) == pytest.approx(net.derive().costs["latency_ms"])


@pytest.mark.parametrize("mode", ["sigmoid", "ste", "softmax"])
def test_supernet_contract_and_runtime_gradients(small_space, small_table, mode) -> None:
    net = SinglePathSupernet(small_space, small_table, mode=mode)
    d = check_supernet(net, torch.randn(2, 3, 32, 32))
    assert d.config["arch"].split("-")[1:-1] == ["k5e6"] * 20  # thresholds start at 0: the largest net
    assert d.costs["latency_ms"] == pytest.approx(small_table.predict(parse_arch("k5e6", small_space)))
    net.train()
    net.zero_grad()
    torch.log(net.cost()["latency_ms"]).backward()
    # The runtime term pushes every threshold up (softmax: every logit down), towards cheaper choices.
    sign = -1 if mode == "softmax" else 1
    for b in net.blocks:
        assert float(b.t_k5.grad) * sign < 0 and float(b.t_e6.grad) * sign < 0


def test_superkernel_rejects_bad_settings() -> None:
    with pytest.raises(InputError, match="mode"):
        SuperMBConv(8, 8, 1, True, mode="tanh")
    with pytest.raises(InputError, match="cannot be skipped"):
        SuperMBConv(8, 16, 2, True)
    with pytest.raises(InputError, match="SE scaling"):
        SinglePathSupernet(MBV2Space(32, 0.25, 10), SinglePathTable.pixel1(), search_se=True)


def test_kernel_subset_dropout_only_early(small_space, small_table) -> None:
    net = SinglePathSupernet(small_space, small_table, subset_dropout=0.5)
    net.on_epoch_start(0, 8)
    assert all(b.drop_p == 0.5 for b in net.blocks)
    net.on_epoch_start(6, 8)
    assert all(b.drop_p == 0.0 for b in net.blocks)


@pytest.fixture(scope="module")
def tiny_data():
    from hwnas.searchers.single_path_data import load_search_data

    d = load_search_data("digits", 32, batch_size=16, max_train=96, seed=0)
    xv, yv = next(iter(d["val"]))
    d["val"] = tensor_batches(xv[:64], yv[:64], 64, shuffle=False)
    d["arch"] = tensor_batches(xv[64:96], yv[64:96], 16, seed=1)
    return d


def test_digits_are_resized_to_rgb(tiny_data) -> None:
    x, y = next(iter(tiny_data["train"]))
    assert x.shape[1:] == (3, 32, 32) and tiny_data["num_classes"] == 10 and tiny_data["n_train"] == 96


def test_search_lowers_runtime_with_lambda(small_space, small_table, tiny_data) -> None:
    from hwnas.searchers.single_path_run import single_path_search

    start = small_table.predict(parse_arch("k5e6", small_space))
    runs = {}
    for lam in (0.0, 5.0):
        s = single_path_search(
            tiny_data,
            small_space,
            small_table,
            lam=lam,
            epochs=1,
            arch_lr=0.01,
            target_latency_ms=start * 0.8,
            seed=0,
        )
        runs[lam] = s.history.trials[-1]
    # CE alone may drop subsets too (its gradient reaches the thresholds); the runtime term drops more.
    assert runs[5.0].predicted_costs["latency_ms"] < runs[0.0].predicted_costs["latency_ms"] <= start
    t = runs[5.0]
    assert t.searcher == "single-path" and t.info["epoch"] == 1 and "t_k5" in t.info["arch_state"]
    assert t.predicted_constraints["latency_ms"] == pytest.approx(
        t.predicted_costs["latency_ms"] - start * 0.8
    )


def test_multi_path_baseline(small_space, small_table, tiny_data) -> None:
    net = MultiPathSupernet(small_space, small_table)
    check_supernet(net, torch.randn(2, 3, 32, 32))
    n_single = sum(p.numel() for p in SinglePathSupernet(small_space, small_table).weight_parameters())
    assert sum(p.numel() for p in net.weight_parameters()) > 2 * n_single  # every path has its own weights
    s = make_multi_path_searcher(space=small_space, table=small_table, lam=1.0, epochs=1, arch_lr=0.05)
    x, y = next(iter(tiny_data["train"]))
    h = s.run([(x, y)], [(x, y)], arch_data=[(x, y)])  # one step: multi-path steps are the slow ones
    assert h.trials[0].searcher == "multi-path" and h.meta["bilevel"] is True
    assert h.trials[0].predicted_costs["latency_ms"] > 0
