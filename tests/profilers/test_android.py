"""Android over adb through adb-shell's own transport interface, against a fake phone (tests/profilers/
fake_adb.py) that replays recorded outputs: quoting, settings validation, battery power rules, fingerprint,
disconnects. Battery inputs: recordings/android_battery (sources in its README); lines marked 'derived' are
those recordings with one field changed, to reach a state no recording shows."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from hwnas.device_config import parse_config
from hwnas.errors import ConfigError, MeasurementError

pytest.importorskip("adb_shell", reason="adb-shell is not installed: pip install 'hwnas[android]'")

from fake_adb import FakePhone, FakeTransport  # noqa: E402

from hwnas.profilers.adb import AdbSettings, AdbShell, PhoneDisconnected, quote_command  # noqa: E402

REC = Path(__file__).parent / "recordings"
PIXEL3A = (REC / "android_battery" / "pixel3a_android9_battery_uevent_usb_not_charging.txt").read_text()
# derived: the Pixel 3a dump as it would read unplugged (STATUS and CURRENT_NOW changed)
DISCHARGING = PIXEL3A.replace("STATUS=Not charging", "STATUS=Discharging").replace(
    "CURRENT_NOW=976", "CURRENT_NOW=-412000"
)
# constructed (not recorded): getprop's [key]: [value] layout
GETPROP = (
    "[ro.build.version.release]: [10]\n[ro.build.version.sdk]: [29]\n[ro.product.model]: [Pixel]\n"
    "[ro.product.manufacturer]: [Google]\n[ro.board.platform]: [msm8996]\n[ro.hardware]: [sailfish]\n"
    "[ro.product.cpu.abi]: [arm64-v8a]\n"
)


def _config(tmp_path: Path, **connection):
    conn = {"remote_dir": str(tmp_path / "device"), **connection}
    return parse_config({"name": "fake-phone", "backend": "android-tflite", "threads": 1, "connection": conn,
                         "power": {"sampler": "battery", "sampling_hz": 20}}, "fake.yaml")  # fmt: skip


@pytest.mark.parametrize(
    "evil",
    [
        "m.tflite; touch PWNED",
        "$(touch PWNED)",
        "`touch PWNED`",
        "a'b; touch PWNED; echo '",
        "x\ntouch PWNED",
    ],
)
def test_a_malicious_path_cannot_run_a_command(tmp_path, evil) -> None:
    """The argument reaches a real `sh -c` on the fake phone as one literal word; nothing else runs."""
    phone = FakePhone(tmp_path / "device", {})
    shell = AdbShell(AdbSettings(), FakeTransport(phone))
    out = shell.run(["printf", "%s|", f"--graph={evil}", "--num_threads=1"])
    assert out == f"--graph={evil}|--num_threads=1|"
    assert not list(tmp_path.rglob("PWNED"))
    assert shlex.split(phone.commands[-1].split("; echo __HWNAS_RC=")[0])[2] == f"--graph={evil}"


def test_benchmark_command_is_a_list_with_taskset(tmp_path) -> None:
    from hwnas.profilers.adb import AdbSettings as S

    pytest.importorskip("hwnas.profilers.backend", reason="needs the split profiler (seams issue)")
    from hwnas.profilers.android_tflite import benchmark_command

    argv = benchmark_command(S(delegate="gpu", affinity="f0"), "/data/local/tmp/hwnas/benchmark_model",
                             "/data/local/tmp/hwnas/a b.tflite", 4, warmup=5, num_runs=50, max_secs=10,
                             op_profiling=True)  # fmt: skip
    assert argv[:2] == ["taskset", "f0"]
    assert "--graph=/data/local/tmp/hwnas/a b.tflite" in argv and "--use_gpu=true" in argv
    assert "--num_threads=4" in argv and "--enable_op_profiling=true" in argv
    assert quote_command(argv).count("'--graph=/data/local/tmp/hwnas/a b.tflite'") == 1


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("transport", "bluetooth", "usb or tcp"),
        ("delegate", "hexagon", "one of"),
        ("affinity", "f0; reboot", "hex"),
        ("remote_dir", "tmp", "absolute"),
        ("invocations", 0, "positive"),
        ("colour", "red", "unknown connection"),
    ],
)
def test_settings_errors_name_file_and_field(tmp_path, field, value, match) -> None:
    with pytest.raises(ConfigError, match=match) as exc:
        AdbSettings.from_config(_config(tmp_path, **{field: value}))
    assert "fake.yaml" in exc.value.message


def test_tcp_needs_a_host(tmp_path) -> None:
    with pytest.raises(ConfigError, match="connection.host"):
        AdbSettings.from_config(_config(tmp_path, transport="tcp"))


def _sampler(tmp_path, uevent: str, **conn):
    from hwnas.profilers.power.android_battery import AndroidBatterySampler

    battery = tmp_path / "sys" / "battery"
    battery.mkdir(parents=True, exist_ok=True)
    (battery / "uevent").write_text(uevent)
    cfg = _config(tmp_path, battery_path=str(battery), **conn)
    phone = FakePhone(tmp_path / "device", {})  # cat, sh, kill really run in the sandbox
    shell = AdbShell(AdbSettings.from_config(cfg), FakeTransport(phone))
    return AndroidBatterySampler(cfg, shell=shell), battery


def test_battery_window_integrates_discharge_power(tmp_path) -> None:
    import time

    sampler, _ = _sampler(tmp_path, DISCHARGING)
    ok, why = sampler.available()
    assert ok, why
    sampler.begin_window("m")
    # The logger is a real shell loop: wait until it has written a few samples (on a loaded machine its
    # first line can take longer than any fixed sleep), but at least 0.6 s.
    log, t0 = tmp_path / "device" / "battery.log", time.monotonic()
    while time.monotonic() - t0 < 0.6 or (_samples_in(log) < 4 and time.monotonic() - t0 < 120):
        time.sleep(0.05)
    w = sampler.end_window("m")
    power_w = 3.815175 * 0.412  # V × |I| of the dump, constant over the window
    assert w.source == "android-battery-samples@20Hz" and w.duration_s >= 0.6
    # the window's energy: the samples' mean power over the whole window (the samples span less of it)
    assert w.total_mj / 1000 / w.duration_s == pytest.approx(power_w, rel=1e-6)
    assert any("samples" in n and "of the" in n for n in w.notes)


def _samples_in(log: Path) -> int:
    try:
        return log.read_text().count("---")
    except FileNotFoundError:
        return 0


def test_battery_on_usb_not_charging_is_refused_with_the_caveat(tmp_path) -> None:
    sampler, _ = _sampler(tmp_path, PIXEL3A)  # the real Pixel 3a dump: on USB, charging disabled
    ok, why = sampler.available()
    assert not ok and "not discharging" in why and "Wi-Fi" in why


def test_zero_gauge_is_refused(tmp_path) -> None:
    # derived: a gauge that reads zeros, as the recorded 2016 device's `voltage: 0` in dumpsys
    zeros = DISCHARGING.replace("VOLTAGE_NOW=3815175", "VOLTAGE_NOW=0").replace(
        "CURRENT_NOW=-412000", "CURRENT_NOW=0"
    )
    sampler, _ = _sampler(tmp_path, zeros)
    ok, why = sampler.available()
    assert not ok and "zeros" in why


def test_battery_log_parse_and_too_few_samples() -> None:
    from hwnas.profilers.power.android_battery import energy_mj, parse_log

    log = "\n---\n".join(f"{10 + i * 0.5:.2f} 5.00\n{DISCHARGING}" for i in range(3)) + "\n---\n12.0 5"
    samples = parse_log(log)
    assert len(samples) == 3 and samples[1].t_s == pytest.approx(10.5)
    e, p = energy_mj(samples)
    assert e == pytest.approx(3.815175 * 0.412 * 1.0 * 1000)
    with pytest.raises(MeasurementError, match="usable sample"):
        energy_mj(samples[:1])


def test_fingerprint_from_getprop_and_cpufreq(tmp_path) -> None:
    pytest.importorskip("hwnas.profilers.backend", reason="needs the split profiler (seams issue)")
    from hwnas.profilers import android_tflite as at

    phone = FakePhone(tmp_path / "device", {r"getprop": GETPROP})
    at.TRANSPORT_OVERRIDE["transport"] = FakeTransport(phone)
    try:
        binary = tmp_path / "benchmark_model"
        binary.write_text("#!/bin/sh\n")
        cfg = _config(tmp_path, benchmark_model=str(binary), affinity="c")
        fp = at._fingerprint(cfg, {"adb-shell": "0.4.4"}, threads=1)
    finally:
        at.TRANSPORT_OVERRIDE.clear()
    assert (
        fp.fields["model"] == "Pixel" and fp.fields["platform"] == "msm8996" and fp.fields["android"] == "10"
    )
    assert fp.fields["affinity"] == "c" and len(fp.fields["benchmark_model_sha256"]) == 64
    assert isinstance(fp.fields["cpu_max_khz"], dict)  # this host's sysfs, read through the fake phone's sh


def test_unplugged_phone_is_a_clear_disconnect(tmp_path) -> None:
    phone = FakePhone(tmp_path / "device", {r"getprop": GETPROP})
    transport = FakeTransport(phone, unplug_after=1)
    shell = AdbShell(AdbSettings(), transport)
    assert "Pixel" in shell.run(["getprop"])
    with pytest.raises(PhoneDisconnected, match="resume"):
        shell.run(["getprop"])
    transport.unplugged, transport.unplug_after = False, None  # plugged back in
    assert "Pixel" in shell.run(["getprop"])
