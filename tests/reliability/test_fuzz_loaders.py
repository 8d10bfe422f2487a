"""Property-based tests (hypothesis) for every parser and loader of user input: whatever the input, the
result is a valid object or an :class:`hwnas.errors.HwnasError` naming the problem, never another
exception. Example counts are kept small so the file runs in seconds in CI."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hwnas.errors import ConfigError, HwnasError, InputError

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**13), st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(), max_size=3),
)  # fmt: skip


# --- device YAML ---------------------------------------------------------------------------------------

_repeat = st.dictionaries(st.sampled_from(["warmup", "min_repeats", "max_repeats", "target_ci_rel",
                                           "max_seconds", "bogus"]), _scalars, max_size=4)  # fmt: skip
_power = st.dictionaries(st.sampled_from(["sampler", "sampling_hz", "rails", "idle_power_mw"]), _scalars,
                         max_size=3)  # fmt: skip
_device = st.fixed_dictionaries(
    {"name": st.one_of(st.just("dev"), _scalars),
     "backend": st.one_of(st.just("onnxruntime-cpu"), st.just("torch-cpu"), _scalars)},
    optional={"threads": _scalars, "batch_size": _scalars, "repeat": st.one_of(_repeat, _scalars),
              "power": st.one_of(_power, _scalars), "peak_flops": _scalars, "connection": _scalars,
              "description": _scalars},
)  # fmt: skip


@FAST
@given(_device)
def test_device_config_is_valid_or_a_config_error(data):
    from hwnas.device_config import MAX_BATCH, MAX_REPEATS, MAX_SECONDS, MAX_THREADS, parse_config

    try:
        cfg = parse_config(data, "fuzz.yaml")
    except ConfigError as exc:
        assert "fuzz.yaml" in exc.message
        return
    r = cfg.repeat
    assert cfg.threads is None or 1 <= cfg.threads <= MAX_THREADS
    assert 1 <= cfg.batch_size <= MAX_BATCH
    assert 0 <= r.warmup <= MAX_REPEATS and 3 <= r.min_repeats <= r.max_repeats <= MAX_REPEATS
    assert 0 < r.target_ci_rel < 1 and 0 < r.max_seconds < MAX_SECONDS and math.isfinite(r.max_seconds)
    assert math.isfinite(cfg.power.sampling_hz) and cfg.power.sampling_hz > 0


@FAST
@given(st.binary(max_size=300))
def test_device_yaml_bytes_load_or_raise_a_config_error(raw):
    from hwnas.device_config import load_config_file

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "dev.yaml"
        path.write_bytes(raw)
        try:
            load_config_file(path)
        except ConfigError:
            pass


# --- constraint strings --------------------------------------------------------------------------------

_constraint_text = st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, op, v, u: f"{n}{op}{v}{u}",
              st.sampled_from(["latency", "memory", "power", "energy", "params", "latency_ms", "x",
                               "accuracy"]),
              st.sampled_from(["<=", ">=", "<", "=="]),
              st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                        st.sampled_from(["1e999", "-5", "0", ".5", "1e-300"])),
              st.sampled_from(["", "ms", "s", "us", "MB", "GB", "W", "mW", "J", "mJ", "k", "M", "furlongs"])),
)  # fmt: skip


@FAST
@given(_constraint_text)
def test_constraints_parse_to_a_meetable_budget_or_raise(text):
    from hwnas.searchers.constraints import Constraint

    try:
        c = Constraint.parse(text)
    except InputError as exc:
        assert repr(text) in exc.message or "constraint" in exc.message
        return
    assert math.isfinite(c.budget)
    if c.op == "<=":
        assert c.budget > 0
    again = Constraint.parse(str(c))
    assert again.name == c.name and again.op == c.op and again.budget == pytest.approx(c.budget, rel=1e-5)


# --- --where -------------------------------------------------------------------------------------------

_COLS = ["a", "b", "s"]


@st.composite
def _where_expr(draw, depth=0):
    if depth < 3 and draw(st.booleans()):
        kind = draw(st.sampled_from(["and", "or", "not", "paren"]))
        if kind == "not":
            return f"not ({draw(_where_expr(depth + 1))})"
        if kind == "paren":
            return f"({draw(_where_expr(depth + 1))})"
        return f"({draw(_where_expr(depth + 1))}) {kind} ({draw(_where_expr(depth + 1))})"
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
    if draw(st.booleans()):
        return f"s {op} '{draw(st.sampled_from(['x', 'y', 'q']))}'"
    col = draw(st.sampled_from(["a", "b"]))
    value = draw(st.one_of(st.integers(-3, 8).map(str), st.floats(-3, 8, allow_nan=False).map(repr)))
    return f"{col} {op} {value}" if draw(st.booleans()) else f"{value} {op} {col}"


_FRAME = pd.DataFrame({"a": np.arange(12) % 5, "b": np.linspace(-2, 7, 12), "s": list("xyzxyzxyzxyz")})


@FAST
@given(_where_expr())
def test_where_grammar_agrees_with_pandas_on_safe_filters(text):
    from hwnas.where import where_mask

    expect = _FRAME.query(text).index.to_numpy()
    got = np.flatnonzero(where_mask(_FRAME, text).to_numpy())
    assert np.array_equal(got, expect), text


@FAST
@given(st.text(alphabet=st.sampled_from(list("ab s()'\"`@.=!<>&|~0123456789_andortxyz+-*/[],")), max_size=40))
def test_where_on_any_text_filters_or_raises_an_input_error(text):
    from hwnas.where import where_mask

    try:
        mask = where_mask(_FRAME, text)
    except InputError:
        return
    assert mask.dtype == bool and len(mask) == len(_FRAME)


# --- samples CSV and NB201-format tables ----------------------------------------------------------------


def _valid_arch(rng_ops):
    ops = rng_ops
    return (f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|")


_arch = st.one_of(
    st.lists(st.sampled_from(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]),
             min_size=6, max_size=6).map(_valid_arch),
    st.text(max_size=20),
)  # fmt: skip
_latency = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5), st.none())


@FAST
@given(st.lists(st.tuples(_arch, _latency), max_size=8), st.booleans())
def test_samples_csv_loads_valid_rows_or_raises(rows, drop_column):
    from hwnas.cost_models.fewshot import load_samples

    df = pd.DataFrame(rows, columns=["arch", "latency_ms"])
    if drop_column:
        df = df.drop(columns=["latency_ms"])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "S.csv"
        df.to_csv(path, index=False)
        try:
            s = load_samples(path)
        except InputError as exc:
            assert str(path) in exc.message
            return
    assert list(s.columns) == ["arch", "latency_ms"]
    assert np.isfinite(s["latency_ms"]).all() and (s["latency_ms"] > 0).all()


@FAST
@given(st.binary(max_size=200))
def test_samples_csv_bytes_load_or_raise(raw):
    from hwnas.cost_models.fewshot import load_samples

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "S.csv"
        path.write_bytes(raw)
        try:
            load_samples(path)
        except InputError:
            pass


@FAST
@given(st.lists(st.tuples(_arch, _latency, st.one_of(st.integers(-2, 3), st.floats())), min_size=1,
                max_size=8))  # fmt: skip
def test_nb201_table_validates_or_names_the_problem(rows):
    from hwnas.spaces.nb201_table import ARCH_RE, load_table

    df = pd.DataFrame(rows, columns=["arch", "lat_fuzz_ms", "connected"])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        df.to_csv(path, index=False)
        try:
            got = load_table(path, required=["arch", "lat_fuzz_ms", "connected"])
        except InputError as exc:
            assert str(path) in exc.message
            return
    assert got["arch"].astype(str).str.fullmatch(ARCH_RE.pattern).all()
    lat = pd.to_numeric(got["lat_fuzz_ms"]).to_numpy(float)
    assert np.isfinite(lat).all() and (lat >= 0).all()
    assert set(pd.to_numeric(got["connected"]).tolist()) <= {0, 1}


@FAST
@given(st.binary(max_size=200))
def test_nb201_table_bytes_load_or_raise(raw):
    from hwnas.spaces.nb201_table import load_table

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        path.write_bytes(raw)
        try:
            load_table(path)
        except InputError:
            pass


# --- cost tables ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cost_table_files(tmp_path_factory):
    from hwnas.cli.app import main

    d = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.uniform(1, 5, 40), "b": rng.uniform(1, 5, 40)})
    df["y"] = 2 * df["a"] + df["b"]
    df.to_csv(d / "T.csv", index=False)
    files = {}
    for suffix in ("json", "csv"):
        out = d / f"t.{suffix}"
        assert main(["fit", "--data", str(d / "T.csv"), "--target", "y", "--kind", "linear",
                     "--out", str(out), "--json"]) == 0  # fmt: skip
        files[suffix] = out.read_bytes()
    return files


_edit = st.tuples(st.integers(0, 10**6), st.sampled_from(["flip", "cut", "insert", "delete"]),
                  st.binary(min_size=1, max_size=4))  # fmt: skip


@FAST
@given(st.sampled_from(["json", "csv"]), st.lists(_edit, min_size=1, max_size=3))
def test_damaged_cost_tables_load_or_raise_a_clear_error(cost_table_files, suffix, edits):
    from hwnas.cost_models.export import load_cost_table

    data = bytearray(cost_table_files[suffix])
    for pos, kind, blob in edits:
        i = pos % max(len(data), 1)
        if kind == "flip":
            data[i] ^= blob[0] or 1
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = blob
        else:
            del data[i : i + len(blob)]
    assume(bytes(data) != cost_table_files[suffix])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"t.{suffix}"
        path.write_bytes(bytes(data))
        try:
            load_cost_table(path)
        except HwnasError as exc:
            assert str(path) in exc.message
        # A mutation that keeps the file valid (e.g. whitespace in JSON) may load: that is fine.


@FAST
@given(st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                     st.dictionaries(st.text(max_size=5), kids, max_size=3)),
                    max_leaves=12))  # fmt: skip
def test_cost_table_json_of_any_shape_loads_or_raises(cost_table_files, doc):
    from hwnas.cost_models.export import load_cost_table

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.json"
        path.write_text(json.dumps(doc, default=str))
        try:
            load_cost_table(path)
        except HwnasError:
            pass


# --- device-tool parsers not fuzzed elsewhere ---------------------------------------------------------


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(["cat", "name", "dur", "ts", "args", "ph", "pid"]),
                                _scalars, max_size=6), max_size=6))  # fmt: skip
def test_ort_profile_events_parse_or_raise(events):
    from hwnas.profilers.ort_profile import parse_profile

    try:
        parse_profile(events)
    except HwnasError:
        pass


@FAST
@given(st.dictionaries(st.sampled_from(["VDD_IN", "POM_5V_IN", "GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V",
                                        "NC", "VDD_GPU_SOC", "other"]),
                       st.floats(0, 1e5), max_size=6))  # fmt: skip
def test_jetson_total_input_is_a_number_and_a_rule(rails):
    from hwnas.profilers.parsers.jetson_rails import total_input_mw

    total, rule = total_input_mw(rails)
    assert isinstance(rule, str) and rule
    assert total is None or (math.isfinite(total) and total >= 0)
