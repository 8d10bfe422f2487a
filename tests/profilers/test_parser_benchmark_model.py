"""benchmark_model parser on every recording (sources: recordings/benchmark_model/README.md) and on the
layout variants other TFLite versions print; hypothesis checks it raises only clear InputErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.errors import InputError
from hwnas.profilers.parsers.benchmark_model import OP_KEYS, SUMMARY_KEYS, parse_benchmark_model

REC = Path(__file__).parent / "recordings" / "benchmark_model"


def _read(name: str) -> str:
    return (REC / name).read_text()


def test_imx8_summary_layout() -> None:
    """ruitaodong/imx-benchmarks logs/mobilenet-CPU.log lines 1-17: older 'Peak memory footprint'."""
    run = parse_benchmark_model(_read("imx8_cpu_mobilenet_v1_quant_summary.txt"))
    d = run.to_dict()
    assert tuple(d) == SUMMARY_KEYS
    assert d["count"] == 50
    assert d["avg_ms"] == pytest.approx(162.980)
    assert d["std_ms"] == pytest.approx(0.146)
    assert (d["min_ms"], d["max_ms"]) == (pytest.approx(162.744), pytest.approx(163.299))
    assert d["first_ms"] == pytest.approx(169.816)  # "First inference" (the cold run)
    assert d["warmup_avg_ms"] == pytest.approx(164.822)
    assert run.warmup_count == 4
    assert d["init_ms"] == pytest.approx(2.409)
    assert (d["memory_mb"], d["memory_kind"]) == (pytest.approx(10.332), "peak_overall")
    assert run.memory["peak_init"] == pytest.approx(4.10156)
    assert d["threads"] is None  # this run did not echo the thread count
    assert d["delegate"] == "cpu"  # "Going to apply 0 delegates"
    assert d["ops"] == []
    assert run.params["Graph"] == "mobilenet_v1_1.0_224_quant/mobilenet_v1_1.0_224_quant.tflite"


def test_imx8_op_table_only() -> None:
    """Lines 38-97 of the same log: the op tables alone; counts come from 'Timings (microseconds)'."""
    run = parse_benchmark_model(_read("imx8_cpu_mobilenet_v1_quant_op_profiling.txt"))
    assert run.timing_source == "op-profile-timings"
    assert run.count == 50 and run.avg_ms == pytest.approx(162.910) and run.std_ms == pytest.approx(0.147)
    assert len(run.ops) == 31  # "31 nodes observed"; Top-by-time rows are not counted twice
    assert [op.index for op in run.ops] == list(range(31))  # run order
    first = run.ops[0].to_dict()
    assert tuple(first) == OP_KEYS
    assert first == {"index": 0, "type": "CONV_2D", "name": "MobilenetV1/MobilenetV1/Conv2d_0/Relu6",
                     "avg_ms": 7.640, "first_ms": 7.628, "pct": 4.689, "times_called": 1}  # fmt: skip
    assert run.ops[-1].type == "SOFTMAX" and run.ops[-1].start_ms == pytest.approx(162.930)
    assert sum(op.pct for op in run.ops) == pytest.approx(100.0, abs=0.01)
    assert [t["type"] for t in run.node_types][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]


def test_npu_external_delegate_one_sample_warmup() -> None:
    run = parse_benchmark_model(_read("imx8_npu_vx_delegate_ssd_mobilenet_op_profiling.txt"))
    assert run.delegate == "external"
    assert run.count == 77 and run.avg_ms == pytest.approx(12.8221)
    assert run.warmup_count == 1 and run.warmup_avg_ms == pytest.approx(8454.279)  # 'count=1 curr=8454279'
    assert run.first_ms == pytest.approx(8454.279)
    assert [op.type for op in run.ops] == ["Vx Delegate", "TFLite_Detection_PostProcess"]
    assert [op.index for op in run.ops] == [64, 63]
    assert run.ops[1].name.endswith("TFLite_Detection_PostProcess:3")  # ':N' inside the brackets kept
    assert [op.type for op in run.init_ops] == ["ModifyGraphWithDelegate", "AllocateTensors"]
    assert run.init_ops[0].times_called == 2


def test_riscv_scientific_notation_delta_memory_threads() -> None:
    """NobuoTsukamoto/meta-tensorflow-lite doc/tensorflow-lite-benchmark.md: the newer layout."""
    d = parse_benchmark_model(_read("riscv_qemu_mobilenet_v1_4threads_op_profiling.txt")).to_dict()
    assert d["avg_ms"] == pytest.approx(2950.34)  # avg=2.95034e+06 µs
    assert d["warmup_avg_ms"] == pytest.approx(3512.391)  # one-sample warm-up: count=1 curr=3512391
    assert d["first_ms"] == pytest.approx(3512.391)
    assert (d["memory_mb"], d["memory_kind"]) == (pytest.approx(46.0859), "footprint_delta_overall")
    assert d["threads"] == 4
    assert d["init_ms"] == pytest.approx(17.187)
    assert len(d["ops"]) == 31 and d["ops"][29]["type"] == "SQUEEZE"


@pytest.mark.parametrize("prefix", ["INFO: ", "07-08 15:34:26.201 I/tflite  ( 5395): "])
def test_logger_and_logcat_prefixes(prefix: str) -> None:
    """Newer builds print 'INFO: ' before each line; the Android benchmark app logs through logcat."""
    text = _read("riscv_qemu_mobilenet_v1_4threads_op_profiling.txt")
    prefixed = "\n".join(prefix + line for line in text.splitlines())
    plain = parse_benchmark_model(text).to_dict()
    assert parse_benchmark_model(prefixed).to_dict() == plain


def test_periodic_peak_and_percentiles() -> None:
    text = (
        _read("imx8_cpu_mobilenet_v1_quant_summary.txt")
        .replace(
            "Peak memory footprint (MB): init=4.10156 overall=10.332",
            "Memory footprint delta from the start of the tool (MB): init=4.1 overall=9.5\n"
            "Overall peak memory footprint (MB) via periodic monitoring: 12.25",
        )
        .replace("avg=162980 std=146", "avg=162980 std=146 p5=162750 median=162950 p95=163200")
    )
    run = parse_benchmark_model(text)
    assert (run.memory_mb, run.memory_kind) == (12.25, "peak_periodic")  # a peak beats a delta
    assert run.memory["footprint_delta_overall"] == 9.5
    assert run.percentiles_ms == {"p5": 162.75, "median": 162.95, "p95": 163.2}


@pytest.mark.parametrize(
    ("flag", "created", "expected"),
    [
        ("Use gpu: [1]", "GPU delegate created.", "gpu"),
        ("Use NNAPI: [1]", "NNAPI delegate created.", "nnapi"),
        ("Use xnnpack: [1]", "XNNPACK delegate created.", "xnnpack"),
    ],
)
def test_delegate_flags(flag: str, created: str, expected: str) -> None:
    text = (
        _read("imx8_cpu_mobilenet_v1_quant_summary.txt")
        .replace("Enable op profiling: [1]", f"Enable op profiling: [1]\n{flag}")
        .replace("Going to apply 0 delegates one after another.", created)
    )
    assert parse_benchmark_model(text).delegate == expected


def test_not_benchmark_output_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"x\.txt: not benchmark_model output"):
        parse_benchmark_model("hello\nworld\n", "x.txt")


def test_bad_number_names_the_field() -> None:
    with pytest.raises(InputError, match="timing field 'avg'"):
        parse_benchmark_model("count=5 first=1 avg=1.2.3 std=1\n", "f.txt")


_LINES = st.sampled_from(
    [line for name in sorted(p.name for p in REC.glob("*.txt")) for line in _read(name).splitlines()]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_LINES, st.text(max_size=40)), max_size=30))
def test_fuzz_only_clear_errors(lines: list[str]) -> None:
    """Shuffled recording lines and junk: a result or an InputError, never another exception."""
    try:
        run = parse_benchmark_model("\n".join(lines), "fuzz.txt")
    except InputError as exc:
        assert "fuzz.txt" in exc.message
        return
    d = run.to_dict()
    assert tuple(d) == SUMMARY_KEYS
    assert d["count"] is None or d["count"] >= 0
