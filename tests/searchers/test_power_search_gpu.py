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
