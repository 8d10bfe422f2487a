"""The profiler split: a backend is a builder, a runner and a registration; the job loop is shared.

A toy backend that "times itself" (as a phone's benchmark_model does) runs through the same loop as the CPU
backends: store writes per job, resume, the memory and energy plans, power samplers and fingerprints found by
name in the registry.
"""

from __future__ import annotations

import pytest
from profiler_helpers import fast_config, tiny_model

from hwnas.errors import InputError
from hwnas.graph.fusion import fuse
from hwnas.profilers import backend as bk
from hwnas.profilers.base import Profiler
from hwnas.profilers.onnxruntime_cpu import OnnxRuntimeCPUProfiler
from hwnas.profilers.power.base import EnergyWindow, PowerSampler
from hwnas.profilers.power.rapl import RaplSampler
from hwnas.profilers.registry import availability, get_profiler
from hwnas.profilers.torch_cpu import TorchCPUProfiler
from hwnas.store.records import Fingerprint


class ToyBuilder(bk.Builder):
    def unit(self, unit):
        return ("unit", unit.key(), unit.macs)

    def model(self, model, workdir):
        return ("model", model.model_id, model.spec.macs)


class SelfTimedRunner(bk.Runner):
    """Returns its own samples (1 ms per million MACs), like a remote tool that prints them."""

    clocks = ("device",)
    calls: list = []

    def time(self, artefact, mode, policy):
        SelfTimedRunner.calls.append(artefact[0])
        ms = 1.0 + artefact[2] / 1e6
        samples = tuple(ms * (1 + 0.01 * k) for k in range(policy.min_repeats))
        return bk.RawTiming(samples, "toy-tool", readings={"temp_c": 41.5})

    def run_for(self, artefact, mode, *, min_runs, min_seconds):
        return max(min_runs, 10)


class FixedPower(PowerSampler):
    source = "toy-rail"

    def available(self):
        return True, "toy"

    def _snapshot(self):
        return None

    def _window(self, key, start_s, end_s, begin):
        return EnergyWindow(key, start_s, end_s, {"rail": 50.0}, 50.0, self.source)


def _toy_fingerprint(config, versions, *, threads):
    return Fingerprint(config.name, {"board": "toy-1", "versions": versions, "threads": threads})


@pytest.fixture
def toy_backend():
    bk.register_fingerprint("toy-board", _toy_fingerprint)
    bk.register_power_sampler("toy-rail", lambda config: FixedPower())
    b = bk.register_backend(bk.Backend(
        name="toy-remote", builder=ToyBuilder, runner=SelfTimedRunner, probe=lambda c: (True, "toy here"),
        versions=lambda: {"toytool": "1.0"}, fingerprint="toy-board", fusion="onnxruntime-cpu",
    ))  # fmt: skip
    SelfTimedRunner.calls = []
    yield b
    bk._BACKENDS.pop("toy-remote", None)
    bk._FINGERPRINTS.pop("toy-board", None)
    bk._POWER_SAMPLERS.pop("toy-rail", None)


def _toy_config(**kw):
    from hwnas.device_config import parse_config

    data = {"name": "toy", "backend": "onnxruntime-cpu", "repeat": {"min_repeats": 5, "max_repeats": 8}}
    data.update(kw)
    cfg = parse_config(data, "<test>")
    from dataclasses import replace

    return replace(cfg, backend="toy-remote")  # a name outside BACKENDS, registered at run time


def test_self_timed_backend_runs_through_the_shared_loop(store, toy_backend):
    from dataclasses import replace

    from hwnas.device_config import PowerConfig

    cfg = replace(_toy_config(), power=PowerConfig(sampler="toy-rail"))
    assert availability(cfg) == (True, "toy here")
    prof = get_profiler(cfg, clock="device")
    assert type(prof) is Profiler and prof.backend == "toy-remote"
    model = tiny_model()
    res = prof.profile(model, store, units="fused")
    units = fuse(model.spec.layers, "onnxruntime-cpu")
    recs = store.query(model_id=model.model_id, scope="unit", metric="latency_ms")
    assert sorted(r.layer_key for r in recs) == sorted(u.key() for u in units)
    first = next(r for r in recs if r.layer_index == 0)
    assert first.source == "toy-tool-isolated" and first.stats.n == 5
    assert first.stats.samples[0] == pytest.approx(1.0 + units[0].macs / 1e6)
    assert first.extra["readings"] == {"temp_c": 41.5} and first.extra["unit_indices"] == [0, 1, 2]
    (whole,) = store.query(model_id=model.model_id, scope="model", metric="latency_ms")
    assert whole.source == "toy-tool"
    (energy,) = store.query(model_id=model.model_id, metric="energy_mj")
    assert energy.value == pytest.approx(50.0 / 10) and energy.source == "toy-rail"
    assert "peak memory: not measured on backend toy-remote" in res.notes  # no memory job: said, not faked
    assert store.get_fingerprint(res.fingerprint_id)["board"] == "toy-1"
    # resume: nothing runs again
    SelfTimedRunner.calls = []
    again = prof.profile(model, store, units="fused")
    assert again.jobs_skipped == again.jobs_total and SelfTimedRunner.calls == []


def test_runner_refuses_a_clock_it_does_not_have(toy_backend):
    with pytest.raises(InputError, match="unknown clock 'cpu' for backend toy-remote"):
        Profiler(_toy_config(), clock="cpu")


def test_unregistered_fingerprint_and_backend_are_clear_errors(toy_backend):
    from dataclasses import replace

    bk.register_backend(replace(toy_backend, fingerprint="nobody"))
    with pytest.raises(InputError, match="fingerprint 'nobody'"):
        Profiler(_toy_config(), clock="device").fingerprint()
    cfg = replace(_toy_config(), backend="no-such-backend")
    with pytest.raises(InputError, match="has no profiler"):
        Profiler(cfg)


def test_power_samplers_come_from_the_registry(tmp_path):
    cfg = fast_config(power={"sampler": "rapl"}, connection={"powercap_root": str(tmp_path)})
    sampler = OnnxRuntimeCPUProfiler(cfg).power_sampler()
    assert isinstance(sampler, RaplSampler) and sampler.root == tmp_path
    assert OnnxRuntimeCPUProfiler(fast_config()).power_sampler() is None


def test_sampler_named_but_not_registered_is_noted(store, monkeypatch):
    from hwnas.profilers import backend

    # Importing the GPU backend registers 'nvml'; this test is about a sampler nobody registered.
    monkeypatch.delitem(backend._POWER_SAMPLERS, "nvml", raising=False)
    cfg = fast_config(power={"sampler": "nvml"})
    res = OnnxRuntimeCPUProfiler(cfg).profile(tiny_model(), store, per_layer=False, memory=False)
    assert any("no power sampler 'nvml' is registered" in n for n in res.notes)


@pytest.mark.parametrize("cls,backend", [(OnnxRuntimeCPUProfiler, "onnxruntime-cpu"),
                                         (TorchCPUProfiler, "torch-cpu")])  # fmt: skip
def test_cpu_backends_profile_fused_units(store, cls, backend):
    model = tiny_model()
    prof = cls(fast_config(backend))
    res = prof.profile(model, store, whole_model=False, units="fused")
    recs = store.query(model_id=model.model_id, scope="unit", metric="latency_ms")
    units = prof.units(model.spec.layers, "fused")
    assert len(recs) == len(units) == res.jobs_total and all(r.value > 0 for r in recs)
    if backend == "onnxruntime-cpu":  # conv+bn+relu is one kernel there
        assert [len(u.layers) for u in units] == [3, 1, 1, 1]
        keys = store.get_layer_specs([units[0].key()])
        assert len(keys[units[0].key()]["unit"]) == 3  # the unit's spec is stored under its key
    else:  # torch eager fuses nothing
        assert all(len(u.layers) == 1 for u in units)
    assert not store.query(model_id=model.model_id, scope="layer")  # unit records only


def test_unknown_units_choice(store):
    with pytest.raises(InputError, match="unknown units"):
        OnnxRuntimeCPUProfiler(fast_config()).profile(tiny_model(), store, units="kernels")
