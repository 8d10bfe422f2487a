"""The in-model Single-Path runtime table (thesis §5.3.2): blocks timed inside the uniform networks, the
fixed part measured by parts that add up, the chain timer, and the multi-path CLI front end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hwnas.cli.app import main
from hwnas.errors import InputError
from hwnas.searchers.single_path_table import (
    FIXED_PARTS,
    SinglePathTable,
    build_table_in_model,
    check_runtime_model,
    network_chain,
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
def space() -> MBV2Space:
    return MBV2Space(32, 0.25, 10)


def _macs(module: torch.nn.Module, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    macs = []

    def hook(m, inp, out):  # noqa: ANN001
        if isinstance(m, torch.nn.Conv2d):
            macs.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, torch.nn.Linear):
            macs.append(out.numel() * m.in_features)

    hs = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        y = module(x)
    for h in hs:
        h.remove()
    return float(sum(macs)), y


OVERHEAD_MS = 0.3  # what a forward pass of the fake device costs outside every module


def fake_chain(modules, shape, name):  # noqa: ANN001
    """A deterministic additive device: 0.02 ms per module call + 1 ms per MMAC, and a whole pass that
    costs OVERHEAD_MS more than its modules."""
    x = torch.zeros(shape)
    segs = []
    for m in modules:
        macs, x = _macs(m, x)
        segs.append(0.0 if isinstance(m, torch.nn.Identity) else 0.02 + macs / 1e6)  # a skip is free
    return SimpleNamespace(segments_ms=segs, whole_ms=sum(segs) + OVERHEAD_MS, samples=1)


def fake_whole(module, shape, name):  # noqa: ANN001
    return fake_chain(network_chain(module), shape, name).whole_ms


@pytest.fixture(scope="module")
def table(space) -> SinglePathTable:
    return build_table_in_model(space, fake_chain, device="fake", repeats=1)


def test_fixed_parts_add_up_and_price_the_network(space, table) -> None:
    parts = table.fixed_parts_ms
    assert set(parts) == set(FIXED_PARTS)
    assert sum(parts.values()) == pytest.approx(table.fixed_ms, rel=1e-12)
    assert parts["overhead"] == pytest.approx(OVERHEAD_MS)
    # On an additive device a network without k3e3 blocks (k3e3 takes the thesis's ratio form, eq. 5.10)
    # is priced exactly: stem + block0 + 20 blocks + block21 + head + classifier + overhead = whole.
    for arch in ("k5e6", "k3e6", "-".join(["k5e3", "k3e6", "skip", "k5e6"] * 5)):
        a = space.encode(parse_arch(arch, space))
        b = table.breakdown(space.decode(a))
        assert b["total_ms"] == pytest.approx(table.predict(space.decode(a)), rel=1e-12)
        assert sum(v for k, v in b.items() if k in FIXED_PARTS) + sum(b["blocks_ms"]) == pytest.approx(
            b["total_ms"], rel=1e-12
        )
        assert table.predict(space.decode(a)) == pytest.approx(
            fake_whole(space.build(a).eval(), (1, 3, 32, 32), a), rel=1e-9
        )
    # the stem alone is what the fake device charges for it
    stem = space.build(space.encode(parse_arch("k5e6", space))).eval().stem
    assert parts["stem"] == pytest.approx(fake_chain([stem], (1, 3, 32, 32), "s").segments_ms[0])


def test_in_model_table_roundtrips_and_rejects_parts_that_do_not_add_up(space, table, tmp_path) -> None:
    loaded = SinglePathTable.load(table.save(tmp_path / "t.json"))
    assert loaded.fixed_parts_ms == pytest.approx(table.fixed_parts_ms)
    assert np.allclose(loaded.table_ms, table.table_ms)
    d = json.loads((tmp_path / "t.json").read_text())
    d["fixed_parts_ms"]["stem"] += 1.0
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(InputError, match="add up"):
        SinglePathTable.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="repeats"):
        build_table_in_model(space, fake_chain, device="fake", repeats=0)


def test_in_model_repeats_take_the_median(space, table) -> None:
    calls = {"n": 0}

    def noisy(modules, shape, name):  # noqa: ANN001
        calls["n"] += 1
        got = fake_chain(modules, shape, name)
        k = 3.0 if calls["n"] <= 4 else 1.0  # the first pass over the four networks on a loaded host
        return SimpleNamespace(segments_ms=[v * k for v in got.segments_ms], whole_ms=got.whole_ms * k)

    t = build_table_in_model(space, noisy, device="fake", repeats=3)
    assert calls["n"] == 12 and t.info["repeats"] == 3
    assert np.allclose(t.table_ms, table.table_ms) and t.fixed_ms == pytest.approx(table.fixed_ms)


def test_check_repeats_interleave_and_take_the_median(space, table) -> None:
    seen = []

    def noisy(module, shape, name):  # noqa: ANN001
        seen.append(name)
        k = 2.0 if len(seen) <= 4 else 1.0
        return fake_whole(module, shape, name) * k

    chk = check_runtime_model(table, space, noisy, n=4, seed=1, repeats=3)
    assert seen == [f"random-{j}" for j in range(4)] * 3  # interleaved passes
    assert chk.summary()["mean_abs_error_pct"] < 5  # the slow first pass is voted out by the median


def _tiny_device(tmp_path, backend: str = "torch-cpu"):
    p = tmp_path / "tiny.yaml"
    p.write_text(
        f"name: tiny\nbackend: {backend}\nthreads: 1\nbatch_size: 1\n"
        "repeat: {warmup: 1, min_repeats: 3, max_repeats: 3, target_ci_rel: 0.5, max_seconds: 0.05}\n"
    )
    return p


def test_chain_timer_times_a_real_network_inside_its_forward(space, tmp_path) -> None:
    from hwnas.profilers.timer import chain_timer

    tc = chain_timer(str(_tiny_device(tmp_path)), clock="cpu")
    net = space.build(space.encode(parse_arch("k3e6", space))).eval()
    got = tc(network_chain(net), (1, 3, 32, 32), "k3e6")
    assert len(got.segments_ms) == 25 and all(v > 0 for v in got.segments_ms)
    assert got.whole_ms > 0 and got.samples == 3
    with pytest.raises(InputError, match="in-process CPU backend"):
        chain_timer(str(_tiny_device(tmp_path, "onnxruntime-cpu")))


def test_table_cli_in_model_form(tmp_path, capsys) -> None:
    dev = str(_tiny_device(tmp_path))
    out = tmp_path / "t.json"
    args = ["single-path", "table", "--device", dev, "--resolution", "32", "--width", "0.25"]
    args += ["--num-classes", "10", "--clock", "cpu", "--out", str(out), "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["info"]["form"].startswith("in-model") and set(d["fixed_parts_ms"]) == set(FIXED_PARTS)
    t = SinglePathTable.load(out)
    assert sum(t.fixed_parts_ms.values()) == pytest.approx(t.fixed_ms)
    assert (
        main(["single-path", "runtime", "--device", "tiny", "--table", str(out), "--arch", "k5e6", "--json"])
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert r["runtime_ms"] == pytest.approx(sum(r["fixed_parts_ms"].values()) + sum(r["blocks_ms"]))
    # bad input: an unknown form, SE with the in-model form, a backend that cannot time in-model
    assert main([*args[:-3], "--out", str(out), "--form", "inside"]) == 2
    assert "--form" in capsys.readouterr().err
    assert main([*args[:-3], "--out", str(out), "--form", "in-model", "--se"]) == 2
    assert "isolated" in capsys.readouterr().err
    bad = str(_tiny_device(tmp_path, "onnxruntime-cpu"))
    assert main(["single-path", "table", "--device", bad, "--out", str(out), "--form", "in-model"]) == 2
    assert "in-process CPU backend" in capsys.readouterr().err


def test_multi_path_cli_tiny_search(tmp_path, capsys) -> None:
    hist = tmp_path / "mp.json"
    args = ["search", "--searcher", "multi-path", "--device", "pixel1", "--target-latency", "140ms"]
    args += ["--epochs", "1", "--max-train", "32", "--batch-size", "16", "--history", str(hist), "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["searcher"] == "multi-path" and len(d["arch"].split("-")) == 22
    assert d["predicted_latency_ms"] <= 140 and d["epochs"] == 1
    from hwnas.searchers.base import History

    h = History.load_json(hist)
    assert len(h) == 1 and h.meta["mode"] == "softmax" and h.meta["objective"].startswith("multi-path:")
    # the same bar / exit-code contract as single-path: a missed target exits 1
    assert main([*args[:6], "1ms", *args[7:]]) == 1
    capsys.readouterr()
    # bad input: a single-path-only mode or SE search
    assert main([*args, "--mode", "ste"]) == 2
    assert "multi-path" in capsys.readouterr().err
    assert main([*args, "--search-se"]) == 2
    assert "SE" in capsys.readouterr().err
