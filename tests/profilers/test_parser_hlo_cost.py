"""HLO cost analysis on a recorded optimised HLO module (recordings/xla/README.md): the counting rules of
XLA's HloCostAnalysis, hand-checked per op; hypothesis: only clear InputErrors on junk."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.errors import InputError
from hwnas.profilers.parsers.hlo_cost import analyze_hlo

HLO = (Path(__file__).parent / "recordings" / "xla" / "conv_bn_relu6_dw_gap_fc_optimized.hlo").read_text()


def test_recorded_module_per_op() -> None:
    cost = analyze_hlo(HLO, "opt.hlo")
    by = {op.op_name: op for op in cost.ops if op.flops or op.transcendentals}
    conv = by["model_1/0_1/convolution"]
    assert conv.flops == 2 * (8 * 8 * 8) * 9 * 3  # 2 × out × window × in-features
    assert conv.bytes_accessed == 4 * (8 * 8 * 8 + 16 * 16 * 3 + 3 * 3 * 3 * 8)  # out + input + kernel
    dw = by["model_1/3_1/depthwise"]
    assert dw.flops == 2 * (8 * 8 * 8) * 9 * 1  # feature_group_count=8: one input feature per filter
    fc = by["model_1/6_1/BiasAdd"]  # the dot + bias fusion
    assert fc.flops == 2 * 4 * 8 + 4
    assert by["model_1/1_1/batchnorm/Rsqrt"].transcendentals == 8  # rsqrt is not a FLOP
    assert cost.flops == sum(op.flops for op in cost.ops) and not cost.unknown_ops
    # fusions count bytes at their boundary only: the BN+ReLU6 fusion reads 4 vectors and the conv output
    bn = by["model_1/2_1/Relu6"]
    assert bn.bytes_accessed == 4 * (4 * 8 + 8 * 8 * 8 + 8 * 8 * 8)


def test_not_hlo_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="x.hlo: not XLA HLO text"):
        analyze_hlo("HloModule m\nfoo", "x.hlo")


_LINES = st.sampled_from(HLO.splitlines())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_LINES, st.text(max_size=40)), max_size=30))
def test_fuzz_only_clear_errors(lines: list[str]) -> None:
    try:
        cost = analyze_hlo("\n".join(lines), "fuzz.hlo")
    except InputError as exc:
        assert "fuzz.hlo" in exc.message
        return
    assert cost.flops >= 0 and cost.bytes_accessed >= 0
