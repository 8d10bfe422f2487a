"""The Android backend end to end against the fake phone (tests/profilers/fake_adb.py): real .tflite files
pushed over adb-shell's protocol, a `benchmark_model` that replays a recorded run (recordings/benchmark_model,
NobuoTsukamoto/meta-tensorflow-lite), records written; a cable pulled half-way keeps what was measured and
the same profile resumes; TFLite op names from the real converter map back to LayerSpecs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("hwnas.profilers.backend", reason="needs the split profiler (seams issue)")
pytest.importorskip("adb_shell", reason="adb-shell is not installed: pip install 'hwnas[android]'")
sys.path.insert(0, str(Path(__file__).parents[1] / "profilers"))

from fake_adb import FakePhone, FakeTransport  # noqa: E402

RECORDING = Path(__file__).parents[1] / "profilers" / "recordings" / "benchmark_model"
RUN = RECORDING / "riscv_qemu_mobilenet_v1_4threads_op_profiling.txt"
GETPROP = "[ro.product.model]: [Pixel]\n[ro.build.version.release]: [10]\n"  # constructed getprop layout
FAST = {"warmup": 1, "min_repeats": 5, "max_repeats": 8, "target_ci_rel": 0.5, "max_seconds": 0.2}


@pytest.fixture(scope="module")
def tiny(tf):
    from hwnas.graph.models import from_module

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU6(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()  # fmt: skip
    return from_module(net, (1, 3, 8, 8), "tiny-phone")


def _setup(tmp_path: Path, unplug_after: int | None = None):
    from hwnas.device_config import parse_config
    from hwnas.profilers import android_tflite as at

    binary = tmp_path / "android_aarch64_benchmark_model"
    binary.write_text(f"#!/bin/sh\ncat '{RUN}'\n")  # the phone "runs" the recorded benchmark
    cfg = parse_config({"name": "fake-pixel", "backend": "android-tflite", "threads": 4, "repeat": FAST,
                        "connection": {"benchmark_model": str(binary), "remote_dir": str(tmp_path / "dev"),
                                       "affinity": "1", "invocations": 2, "delegate": "xnnpack"}},
                       "fake-pixel.yaml")  # fmt: skip
    phone = FakePhone(tmp_path / "dev", {r"getprop": GETPROP})
    transport = FakeTransport(phone, unplug_after=unplug_after)
    at.TRANSPORT_OVERRIDE["transport"] = transport
    return cfg, phone, transport


@pytest.fixture(autouse=True)
def _clear():
    yield
    from hwnas.profilers import adb, android_tflite

    android_tflite.TRANSPORT_OVERRIDE.clear()
    adb._SHARED.clear()


def test_recorded_run_becomes_records(tiny, tmp_path) -> None:
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    cfg, phone, _ = _setup(tmp_path)
    prof = get_profiler(cfg, clock="wall")  # what `hwnas profile --clock auto` asks for a remote device
    res = prof.profile(tiny, SQLiteStore(tmp_path / "p.db"), memory=False, units="fused")
    units = [m for m in res.measured if m.scope == "unit"]
    model = [m for m in res.measured if m.scope == "model" and m.metric == "latency_ms"]
    assert units and model
    assert all(m.value == pytest.approx(2950.34) for m in units + model)  # avg=2.95034e+06 µs, recorded
    assert model[0].source == "benchmark_model" and model[0].extra["calls_per_sample"] == 50
    assert model[0].stats.n == 2  # two invocations, one sample each
    assert units[0].layer_key.count(" + ") == 2  # conv + bn + relu6: one TFLite kernel
    pushed = sorted(Path(p).name for p in phone.pushed)
    assert "benchmark_model" in pushed and any(p.endswith(".tflite") for p in pushed)
    runs = [c for c in phone.commands if "benchmark_model' " in c or "benchmark_model " in c]
    assert runs and all(c.startswith("taskset 1 ") for c in runs)
    assert all("--num_threads=4" in c and "--use_xnnpack=true" in c for c in runs)
    fp = prof.fingerprint()
    assert fp.fields["model"] == "Pixel" and fp.fields["affinity"] == "1"


def test_disconnect_keeps_measurements_and_resumes(tiny, tmp_path) -> None:
    from hwnas.profilers.adb import PhoneDisconnected
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    store = SQLiteStore(tmp_path / "r.db")
    cfg, phone, transport = _setup(tmp_path, unplug_after=6)  # getprop, mkdir, 2 units x 2 runs... then gone
    prof = get_profiler(cfg)
    with pytest.raises(PhoneDisconnected):
        prof.profile(tiny, store, memory=False)
    kept = store.query(device="fake-pixel")
    assert kept and all(m.scope == "layer" for m in kept)  # the layers timed before the cable came out
    transport.unplugged, transport.unplug_after = False, None  # plugged back in
    again = prof.profile(tiny, store, memory=False)
    assert again.jobs_skipped == len({m.layer_key for m in kept})  # not measured again
    assert {m.layer_index for m in store.query(device="fake-pixel", scope="layer")} == set(
        range(len(tiny.spec.layers))
    )
    assert store.query(device="fake-pixel", scope="model")


def test_converter_op_names_map_to_layerspecs(tiny, litert, tmp_path) -> None:
    from hwnas.graph.builders.keras import torch_to_keras
    from hwnas.graph.builders.tflite import convert
    from hwnas.profilers.tflite_ops import map_ops

    km = torch_to_keras(tiny.module, [tiny.input_shape], name="m")
    path = convert(km, tmp_path / "m.tflite")
    interp = litert.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    op_names = [";".join(names[i] for i in o["outputs"]) for o in ops]  # what benchmark_model prints
    mapping = map_ops(op_names, [la.name for la in tiny.spec.layers], km.hwnas_names)
    types = [o["op_name"] for o in ops]
    conv = types.index("CONV_2D")
    assert mapping.layers[conv][0] == 0  # the conv (bn and relu6 fused into it)
    fc = types.index("FULLY_CONNECTED")
    assert mapping.layers[fc] == [len(tiny.spec.layers) - 1]


def test_energy_window_on_the_phone(tiny, tmp_path) -> None:
    """power.sampler: battery: the logger runs on the (fake) phone around benchmark_model; a discharging
    gauge gives an energy record, the real Pixel 3a dump (on USB, not charging) is refused with the caveat."""
    from hwnas.device_config import parse_config
    from hwnas.profilers.registry import get_profiler
    from hwnas.store import SQLiteStore

    pixel3a = (Path(__file__).parents[1] / "profilers" / "recordings" / "android_battery"
               / "pixel3a_android9_battery_uevent_usb_not_charging.txt").read_text()  # fmt: skip
    battery = tmp_path / "battery"
    battery.mkdir()
    _, _, _ = _setup(tmp_path)
    binary = tmp_path / "android_aarch64_benchmark_model"
    binary.write_text(f"#!/bin/sh\nsleep 1.2\ncat '{RUN}'\n")  # a run long enough for several samples
    cfg = parse_config({"name": "fake-pixel", "backend": "android-tflite", "threads": 1, "repeat": FAST,
                        "connection": {"benchmark_model": str(binary), "remote_dir": str(tmp_path / "dev"),
                                       "invocations": 1, "battery_path": str(battery)},
                        "power": {"sampler": "battery", "sampling_hz": 10}}, "fake-pixel.yaml")  # fmt: skip
    # derived from the Pixel 3a dump: unplugged (STATUS and CURRENT_NOW changed)
    (battery / "uevent").write_text(pixel3a.replace("STATUS=Not charging", "STATUS=Discharging")
                                    .replace("CURRENT_NOW=976", "CURRENT_NOW=-350000"))  # fmt: skip
    res = get_profiler(cfg).profile(tiny, SQLiteStore(tmp_path / "e.db"), memory=False, per_layer=False)
    energy = [m for m in res.measured if m.metric == "energy_mj"]
    assert energy and energy[0].source == "android-battery-samples@10Hz" and energy[0].value > 0
    (battery / "uevent").write_text(pixel3a)
    res = get_profiler(cfg).profile(tiny, SQLiteStore(tmp_path / "f.db"), memory=False, per_layer=False)
    assert not [m for m in res.measured if m.metric == "energy_mj"]
    assert any("not discharging" in n for n in res.notes)


def test_op_table_becomes_a_per_layer_breakdown(tiny, litert, tmp_path) -> None:
    """The op table of a run (rows as benchmark_model prints them, named by the converter's real tensor
    names) charged to layers: the conv row to layer 0, the FC row to the last layer, nothing unmapped."""
    from hwnas.graph.builders.keras import torch_to_keras
    from hwnas.graph.builders.tflite import convert
    from hwnas.profilers.android_tflite import ops_breakdown
    from hwnas.profilers.parsers.benchmark_model import BenchmarkModelRun, OpRow

    km = torch_to_keras(tiny.module, [tiny.input_shape], name="m")
    interp = litert.Interpreter(
        model_path=str(convert(km, tmp_path / "b.tflite")),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    rows = [OpRow(i, o["op_name"], ";".join(names[k] for k in o["outputs"]), 0.5 + i, 0.5 + i, None, 1)
            for i, o in enumerate(interp._get_ops_details())]  # fmt: skip
    bd = ops_breakdown(BenchmarkModelRun(ops=rows), [la.name for la in tiny.spec.layers], km.hwnas_names)
    assert bd.per_layer[0] == [0.5] and bd.kernels[0] == ["CONV_2D:0"]
    assert bd.per_layer[len(tiny.spec.layers) - 1] == [0.5 + len(rows) - 1]
    assert bd.unmapped_ms == [0.0] and bd.source == "benchmark_model-op-profiling"
