"""The shared energy core: update period by polling, ∫P dt, idle baseline, counter cross-check, refusals."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from power_fakes import SteppedSensor  # noqa: E402

from hwnas.profilers.power.energy import (  # noqa: E402
    MIN_WINDOW_S,
    PERIOD_FACTOR,
    EnergyMeter,
    WindowTooShortError,
)
from hwnas.profilers.power.integrate import integrate_mj  # noqa: E402
from hwnas.profilers.power.update_period import find_update_period  # noqa: E402


def test_integral_of_a_ramp_is_exact_and_window_edges_interpolate():
    t = [0.0, 1.0, 2.0, 3.0]
    p = [0.0, 1000.0, 2000.0, 3000.0]  # P = 1000 t mW
    assert integrate_mj(t, p, 0.0, 3.0) == pytest.approx(4500.0)
    assert integrate_mj(t, p, 0.5, 2.5) == pytest.approx(500.0 * (2.5**2 - 0.5**2))


def test_integral_refuses_a_window_the_samples_do_not_cover():
    with pytest.raises(ValueError, match="span"):
        integrate_mj([0.0, 1.0], [1.0, 1.0], 0.5, 1.5)
    with pytest.raises(ValueError, match="at least 2"):
        integrate_mj([0.0], [1.0], 0.0, 1.0)


def test_update_period_found_by_polling_matches_the_sensor():
    s = SteppedSensor(period_s=0.02)
    up = find_update_period(lambda: s.read().total_mw, max_s=1.0, min_changes=8)
    assert not up.lower_bound
    assert 0.015 <= up.period_s <= 0.04  # polling granularity and scheduler noise on a loaded VM


def test_frozen_sensor_gives_a_lower_bound_not_a_guess():
    s = SteppedSensor(frozen=True)
    up = find_update_period(lambda: s.read().total_mw, max_s=0.1)
    assert up.lower_bound and up.period_s >= 0.1
    assert "update period >=" in up.describe()


def test_defaults_follow_the_issue_rules():
    m = EnergyMeter(SteppedSensor())
    assert m.min_window_s == MIN_WINDOW_S == 1.0
    assert m.period_factor == PERIOD_FACTOR == 10.0


def test_required_window_is_the_larger_of_the_floor_and_ten_periods():
    m = EnergyMeter(SteppedSensor(period_s=0.05), min_window_s=0.1, sampling_hz=200, poll_max_s=1.0)
    assert m.required_window_s() == pytest.approx(10 * m.update_period().period_s)
    assert m.required_window_s() >= 0.4


def test_measure_repeats_until_long_enough_and_integrates_power():
    s = SteppedSensor(idle_mw=2000.0, busy_mw=2000.0, period_s=0.005)
    m = EnergyMeter(s, sampling_hz=200, min_window_s=0.3, poll_max_s=0.5)
    r = m.measure(lambda: s.run(0.003), key="model")
    assert r.duration_s >= m.required_window_s()
    assert r.iterations > 10
    assert r.total_mj == pytest.approx(2000.0 * r.duration_s, rel=0.02)
    assert r.per_iteration_mj == pytest.approx(r.total_mj / r.iterations)
    assert r.counter_mj is None and r.source == "fake-samples@200Hz"
    assert r.dynamic_mj is None  # no baseline measured: no dynamic energy claimed


def test_idle_baseline_is_subtracted_for_dynamic_energy():
    s = SteppedSensor(idle_mw=1000.0, busy_mw=3000.0, period_s=0.005)
    m = EnergyMeter(s, sampling_hz=200, min_window_s=0.3, poll_max_s=0.5)
    base = m.measure_idle()
    assert base.power_mw == pytest.approx(1000.0, rel=0.01)
    r = m.measure(lambda: s.run(0.004))
    # nearly always busy: average power close to 3 W, dynamic close to 2 W
    assert 2500.0 < r.average_power_mw <= 3000.0 * 1.01
    assert r.dynamic_mj == pytest.approx(r.total_mj - 1000.0 * r.duration_s)
    assert r.dynamic_power_mw == pytest.approx(r.average_power_mw - 1000.0, rel=1e-6)
    assert r.per_iteration_dynamic_mj < r.per_iteration_mj


def test_energy_counter_is_cross_checked_and_both_are_kept():
    s = SteppedSensor(idle_mw=1500.0, busy_mw=1500.0, period_s=0.005, counter=True)
    m = EnergyMeter(s, sampling_hz=200, min_window_s=0.3, poll_max_s=0.5)
    r = m.measure(lambda: s.run(0.003))
    assert r.source == "fake-counter" and r.total_mj == r.counter_mj
    assert r.integral_mj == pytest.approx(r.counter_mj, rel=0.05)
    assert not r.flagged and r.counter_disagreement < 0.05


def test_a_counter_disagreeing_by_more_than_5_percent_is_flagged():
    s = SteppedSensor(idle_mw=1500.0, busy_mw=1500.0, period_s=0.005, counter=True, counter_scale=1.2)
    m = EnergyMeter(s, sampling_hz=200, min_window_s=0.3, poll_max_s=0.5)
    r = m.measure(lambda: s.run(0.003))
    assert r.flagged
    assert r.counter_disagreement == pytest.approx(1 - 1 / 1.2, abs=0.03)
    assert any("differ by" in n for n in r.notes)


def test_a_window_too_short_for_the_sensor_is_refused_never_zero():
    s = SteppedSensor(period_s=0.02)
    m = EnergyMeter(s, sampling_hz=200, min_window_s=0.3, poll_max_s=0.5)
    m.begin_window("layer")
    s.run(0.002)
    with pytest.raises(WindowTooShortError, match="shorter than") as exc:
        m.end_window("layer")
    assert exc.value.exit_code == 1 and exc.value.hint


def test_too_few_samples_is_refused_with_the_rate_to_raise():
    s = SteppedSensor(period_s=0.005)
    m = EnergyMeter(s, sampling_hz=5, min_window_s=0.3, poll_max_s=0.5)
    with pytest.raises(WindowTooShortError, match="power samples"):
        m.measure(lambda: s.run(0.003))


def test_a_sensor_that_needs_longer_windows_than_allowed_is_refused():
    s = SteppedSensor(frozen=True)
    m = EnergyMeter(s, sampling_hz=100, min_window_s=0.1, poll_max_s=0.2, max_window_s=1.0)
    with pytest.raises(WindowTooShortError, match="max_window_s"):
        m.measure(lambda: None)


def test_a_failing_workload_closes_the_window_and_propagates():
    s = SteppedSensor(period_s=0.005)
    m = EnergyMeter(s, sampling_hz=100, min_window_s=0.1, poll_max_s=0.3)
    calls = []

    def boom():
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError, match="kernel failed"):
        m.measure(boom)
    assert not m._open  # the sampler thread was stopped, a new window can open
    assert math.isfinite(m.required_window_s())


def test_update_period_polled_while_the_workload_runs():
    s = SteppedSensor(idle_mw=1000.0, busy_mw=1000.0, period_s=0.02)
    m = EnergyMeter(s, sampling_hz=200, min_window_s=0.2, poll_max_s=0.6)
    runs = []
    up = m.poll_update_period_under(lambda: runs.append(s.run(0.002)))
    assert runs and not up.lower_bound and 0.015 <= up.period_s <= 0.05
    assert m.update_period() is up  # cached: the windows use it
