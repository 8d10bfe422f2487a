"""The nvml-gpu and jetson backends end to end, without a GPU: a fake of pynvml's functions (power that
depends on the work done), sysfs trees in tmp dirs, and torch on the CPU (``connection.torch_device: cpu``,
host-clock events). The real-GPU and real-board tests carry the ``gpu`` / ``jetson`` markers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("hwnas.profilers.backend", reason="needs the split profiler (seams issue, item 4)")

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGPU, FakeNvml  # noqa: E402
from profiler_helpers import FAST_REPEAT, tiny_model  # noqa: E402
from test_ina_sysfs import legacy_tx2  # noqa: E402

from hwnas.device_config import parse_config  # noqa: E402
from hwnas.profilers.registry import availability, get_profiler  # noqa: E402


def gpu_config(**power):
    return parse_config({
        "name": "fake-h200", "backend": "nvml-gpu", "connection": {"gpu": 0, "torch_device": "cpu"},
        "repeat": FAST_REPEAT, "power": {"sampler": "nvml", "sampling_hz": 200, "min_window_s": 0.2, **power},
    }, "<test>")  # fmt: skip


class MacCounter:
    """Counts conv/linear multiply-accumulates as torch runs them (a global forward hook): the 'work'."""

    def __init__(self):
        import torch

        self.macs = 0
        self._h = torch.nn.modules.module.register_module_forward_hook(self._hook)

    def _hook(self, mod, inp, out):
        import torch

        if isinstance(mod, torch.nn.Conv2d):
            kh, kw = mod.kernel_size
            self.macs += out.numel() * (mod.in_channels // mod.groups) * kh * kw
        elif isinstance(mod, torch.nn.Linear):
            self.macs += out.numel() * mod.in_features

    def __call__(self):
        return self.macs

    def close(self):
        self._h.remove()


@pytest.fixture
def fake_nvml(monkeypatch):
    counter = MacCounter()
    gpu = FakeGPU(idle_mw=60_000, mw_per_work_rate=2e-5, update_period_s=0.01, work=counter)
    nv = FakeNvml([gpu])
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    yield nv
    counter.close()


def test_probe_names_the_gpu_and_says_why_when_nvml_is_missing(fake_nvml, monkeypatch):
    ok, why = availability(gpu_config())
    assert ok and "NVIDIA H200" in why and "energy counter" in why
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    ok, why = availability(gpu_config())
    assert not ok and "pynvml is not installed" in why


def test_profile_writes_layer_latency_and_model_power_energy_with_fingerprint(fake_nvml, store):
    prof = get_profiler(gpu_config())
    res = prof.profile(tiny_model(), store, memory=True)
    assert not res.failures, res.failures
    got = {(m.scope, m.metric) for m in res.measured}
    want = {("layer", "latency_ms"), ("model", "latency_ms"), ("model", "energy_mj"), ("model", "power_mw")}
    assert want <= got
    en = next(m for m in res.measured if m.metric == "energy_mj")
    pw = next(m for m in res.measured if m.metric == "power_mw")
    e = en.extra
    assert en.source == "nvml-counter" and e["counter_mj"] and e["integral_mj"]
    assert e["counter_disagreement"] < 0.05 and not e["flagged"]
    assert e["idle_power_mw"] == pytest.approx(60_000, rel=0.01)
    assert pw.value > e["idle_power_mw"]  # the work drew power above idle
    assert en.value == pytest.approx(e["total_mj"] / e["iterations"])
    assert e["per_iteration_dynamic_mj"] < en.value and e["duration_s"] >= 0.2
    assert e["device"]["sm_mhz"] == 1980 and "throttle" in e
    fp = store.get_fingerprint(res.fingerprint_id)
    assert fp["gpu_name"] == "NVIDIA H200" and fp["driver"] == "550.54.15" and fp["runtime"] == "torch"
    assert any("peak memory: not measured" in n for n in res.notes)  # CPU torch: no CUDA allocator


def test_power_grows_with_the_work_done(fake_nvml, store):
    import torch
    from torch import nn

    from hwnas.graph.models import from_module

    prof = get_profiler(gpu_config())
    powers = []
    for width in (4, 64):
        m = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))
        torch.manual_seed(0)
        rm = from_module(m.eval(), (1, 3, 32, 32), f"w{width}", f"test:w{width}")
        res = prof.profile(rm, store, per_layer=False, memory=False)
        powers.append(next(x.value for x in res.measured if x.metric == "power_mw"))
    assert powers[1] > powers[0] * 1.05


def test_pre_volta_gpu_uses_the_integral_alone(monkeypatch, store):
    nv = FakeNvml([FakeGPU(name="NVIDIA GeForce GTX 1070", energy_counter=False, update_period_s=0.01)])
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    res = get_profiler(gpu_config()).profile(tiny_model(), store, per_layer=False, memory=False)
    en = next(m for m in res.measured if m.metric == "energy_mj")
    assert en.source == "nvml-samples@200Hz" and en.extra["counter_mj"] is None


def test_a_throttled_window_is_flagged(monkeypatch, store):
    gpu = FakeGPU(reasons=0x4 | 0x20, update_period_s=0.01)  # sw power cap + sw thermal slowdown
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([gpu]))
    res = get_profiler(gpu_config()).profile(tiny_model(), store, per_layer=False, memory=False)
    en = next(m for m in res.measured if m.metric == "energy_mj")
    assert en.extra["flagged"] and en.extra["throttle"]["throttled"]
    assert any("sw_power_cap" in n for n in res.notes)


def test_too_short_windows_are_recorded_failures_not_zero(monkeypatch, store):
    gpu = FakeGPU(update_period_s=0.01)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([gpu]))
    cfg = gpu_config(sampling_hz=2)  # 2 Hz over a 0.2 s window: too few samples
    res = get_profiler(cfg).profile(tiny_model(), store, per_layer=False, memory=False)
    assert not [m for m in res.measured if m.metric in ("energy_mj", "power_mw")]
    assert any("power samples" in f for f in res.failures)


def test_bad_gpu_selector_is_a_clear_error(fake_nvml):
    cfg = parse_config({"name": "g", "backend": "nvml-gpu", "connection": {"gpu": "GPU-missing",
                                                                           "torch_device": "cpu"}}, "<t>")
    ok, why = availability(cfg)
    assert not ok and "no GPU with UUID GPU-missing" in why


def jetson_config(root: Path):
    return parse_config({
        "name": "fake-tx2", "backend": "jetson",
        "connection": {"sysfs_root": str(root), "torch_device": "cpu"},
        "repeat": FAST_REPEAT, "power": {"sampler": "ina3221", "sampling_hz": 100, "min_window_s": 0.2},
    }, "<test>")  # fmt: skip


def test_jetson_backend_on_a_legacy_tx2_tree(tmp_path, store):
    legacy_tx2(tmp_path)
    cfg = jetson_config(tmp_path)
    ok, why = availability(cfg)
    assert ok and "VDD_IN is the module's total input" in why
    res = get_profiler(cfg).profile(tiny_model(), store, per_layer=False, memory=False)
    pw = next(m for m in res.measured if m.metric == "power_mw")
    assert pw.value == pytest.approx(4784) and pw.source.startswith("ina3221-samples")
    assert "VDD_IN" in pw.extra["total_rule"] and "no NVML memory API" in pw.extra["device"]["gpu_memory"]
    fp = store.get_fingerprint(res.fingerprint_id)
    assert len(fp["rails"]) == 6 and "VDD_IN" in fp["total_rule"]


def test_jetson_without_rails_says_where_it_looked(tmp_path):
    ok, why = availability(jetson_config(tmp_path))
    assert not ok and "ina3221x" in why


@pytest.mark.gpu
def test_real_gpu_profiles_mobilenet_v2(store):
    pytest.importorskip("pynvml")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    from hwnas.device_config import load_device
    from hwnas.graph.models import resolve_model

    res = get_profiler(load_device("nvidia-gpu")).profile(resolve_model("mobilenet_v2"), store)
    assert {m.metric for m in res.measured} >= {"latency_ms", "energy_mj", "power_mw", "peak_memory_bytes"}


@pytest.mark.jetson
def test_real_jetson_rails_are_readable():
    from hwnas.profilers.jetson_device import JetsonRails

    ok, why = JetsonRails("/").available()
    if not ok:
        pytest.skip(f"not a Jetson: {why}")
    assert JetsonRails("/").read().total_mw > 0
