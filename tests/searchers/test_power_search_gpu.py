"""`hwnas search --device <nvml-gpu> --constraint power<=...W` end to end on a fake NVML whose power depends
on the work done (MAC rate counted by a torch forward hook): power models fitted on profiled configs (thesis
eq. 3.2), then HyperPower under a budget set between the profiled powers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "profilers"))
from fake_nvml import FakeGPU, FakeNvml  # noqa: E402
from test_gpu_backends import MacCounter  # noqa: E402

from hwnas.cli.app import main  # noqa: E402


@pytest.fixture
def gpu_yaml(tmp_path, monkeypatch):
    counter = MacCounter()
    nv = FakeNvml([FakeGPU(idle_mw=60_000, mw_per_work_rate=5e-4, update_period_s=0.01, work=counter)])
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    path = tmp_path / "fake-gpu.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fake-gpu", "backend": "nvml-gpu", "connection": {"gpu": 0, "torch_device": "cpu"},
        "repeat": {"warmup": 1, "min_repeats": 5, "max_repeats": 8, "target_ci_rel": 0.5, "max_seconds": 0.2},
        "power": {"sampler": "nvml", "sampling_hz": 200, "min_window_s": 0.2},
    }))  # fmt: skip
    yield path
    counter.close()


@pytest.mark.slow
def test_hyperpower_search_under_a_power_budget_on_fake_nvml(gpu_yaml, tmp_path, capsys):
    import pandas as pd

    db, csv = str(tmp_path / "s.db"), tmp_path / "costs.csv"
    common = ["search", "--device", str(gpu_yaml), "--searcher", "hyperpower", "--epochs", "1",
              "--store", db, "--json"]  # fmt: skip
    # 1: profile random configs (no training) to fit the power model; a budget nothing violates
    assert main([*common, "--constraint", "power<=100000W", "--evals", "1", "--profile-samples", "6",
                 "--save-cost-data", str(csv)]) == 0  # fmt: skip
    capsys.readouterr()
    costs = pd.read_csv(csv)
    assert len(costs) == 6 and (costs["power_mw"] > 60_000).all()
    assert costs["power_mw"].max() > costs["power_mw"].min() * 1.02  # configs differ in power
    budget_w = float(costs["power_mw"].median()) / 1e3
    # 2: HyperPower with the fitted linear power model under that budget
    rc = main([*common, "--constraint", f"power<={budget_w:.3f}W", "--evals", "3", "--cost-data", str(csv)])
    out = json.loads(capsys.readouterr().out)
    assert rc in (0, 1)  # 1 = no feasible trial found: a real outcome, not an error
    [con] = out["constraints"]
    assert con.startswith("power_mw<=")
    assert float(con.split("<=")[1]) == pytest.approx(budget_w * 1e3, rel=1e-4)
    assert "power_mw" in out["cost_model_cv_rmspe_pct"]
    for t in out["trials"]:
        if t["state"] == "complete":
            assert t["measured_costs"]["power_mw"] > 60_000
            assert "power_mw" in t["predicted_costs"]
            assert t["feasible"] == (t["measured_costs"]["power_mw"] <= budget_w * 1e3)


@pytest.fixture
def jetson_yaml(tmp_path):
    """A TX2 sysfs tree whose VDD_IN power file a 'monitor' thread rewrites every 10 ms with 3 W plus a
    share proportional to the MAC rate torch is executing: the rails see the work, as on a board."""
    import threading
    import time

    from test_ina_sysfs import legacy_tx2

    legacy_tx2(tmp_path)
    f = tmp_path / "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device0/in_power0_input"
    counter, stop = MacCounter(), threading.Event()

    def monitor():
        last_w, last_t = counter(), time.monotonic()
        while not stop.wait(0.01):
            w, t = counter(), time.monotonic()
            mw = 3000 + 2e-5 * (w - last_w) / (t - last_t)
            last_w, last_t = w, t
            tmp = f.with_suffix(".tmp")
            tmp.write_text(f"{int(mw)}\n")
            tmp.replace(f)

    th = threading.Thread(target=monitor, daemon=True)
    th.start()
    path = tmp_path / "fake-tx2.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fake-tx2", "backend": "jetson",
        "connection": {"sysfs_root": str(tmp_path), "torch_device": "cpu"},
        "repeat": {"warmup": 1, "min_repeats": 5, "max_repeats": 8, "target_ci_rel": 0.5, "max_seconds": 0.2},
        "power": {"sampler": "ina3221", "sampling_hz": 200, "min_window_s": 0.2},
    }))  # fmt: skip
    yield path
    stop.set()
    th.join()
    counter.close()


@pytest.mark.slow
def test_hyperpower_search_under_a_power_budget_on_a_jetson_tree(jetson_yaml, tmp_path, capsys):
    rc = main(["search", "--device", str(jetson_yaml), "--searcher", "hyperpower", "--epochs", "1",
               "--constraint", "power<=1000W", "--evals", "1", "--profile-samples", "3",
               "--store", str(tmp_path / "s.db"), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and "power_mw" in out["cost_model_cv_rmspe_pct"]
    done = [t for t in out["trials"] if t["state"] == "complete"]
    assert done and all(t["measured_costs"]["power_mw"] > 3000 for t in done)  # VDD_IN: above 3 W idle
