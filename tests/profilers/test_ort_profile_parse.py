from __future__ import annotations

import onnx
from onnx import helper

from hwnas.profilers.ort_profile import (
    KernelTimes,
    layer_breakdown,
    map_kernels,
    node_layer_map,
    parse_profile,
    torchscript_scopes,
)


def _events():
    ev = []
    for run, t0 in enumerate((0, 1000)):
        ev.append({"cat": "Session", "name": "model_run", "ts": t0, "dur": 900})
        ev.append({"cat": "Node", "name": "conv_out_nchwc_kernel_time", "ts": t0 + 10, "dur": 300 + run * 100,
                   "args": {"op_name": "Conv"}})  # fmt: skip
        ev.append(
            {
                "cat": "Node",
                "name": "gemm_kernel_time",
                "ts": t0 + 500,
                "dur": 50,
                "args": {"op_name": "Gemm"},
            }
        )
        ev.append({"cat": "Node", "name": "ReorderOutput_kernel_time", "ts": t0 + 400, "dur": 20,
                   "args": {"op_name": "ReorderOutput"}})  # fmt: skip
        ev.append({"cat": "Node", "name": "conv_out_nchwc_fence_before", "ts": t0 + 9, "dur": 0})
    ev.append({"cat": "Session", "name": "session_initialization", "ts": -500, "dur": 400})
    return ev


def test_parse_groups_kernels_by_run():
    t = parse_profile(_events())
    assert len(t.runs) == 2
    assert t.runs[0]["conv_out_nchwc"] == 0.3 and t.runs[1]["conv_out_nchwc"] == 0.4
    assert t.op_of["gemm"] == "Gemm"


def _graph():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/features/features.0/Conv"),
        helper.make_node("Relu", ["c"], ["conv_out"], name="/features/features.1/Relu"),
        helper.make_node("GlobalAveragePool", ["conv_out"], ["p"], name="/GlobalAveragePool"),
        helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
        helper.make_node("Gemm", ["f", "w2"], ["y"], name="gemm"),
    ]
    g = helper.make_graph(nodes, "g", [], [])
    return onnx.helper.make_model(g)


def test_map_kernels_fused_walks_back_to_conv():
    names = ["features.0", "features.1", "pool", "flatten", "gemm"]
    ops = ["conv2d", "relu", "global_avgpool", "flatten", "linear"]
    node_map = node_layer_map(_graph(), names, ops)
    assert node_map["/features/features.1/Relu"] == 1 and node_map["conv_out"] == 1
    assert node_map["/GlobalAveragePool"] == 2 and node_map["/Flatten"] == 3  # by op order, no scope
    times = parse_profile(_events())
    mapping = map_kernels(times, node_map, ops)
    # the fused Conv kernel is named after the Relu's output; it belongs to the conv layer
    assert mapping == {"conv_out_nchwc": 0, "gemm": 4, "ReorderOutput": None}
    per_layer, unmapped, kernels = layer_breakdown(times, mapping)
    assert per_layer == {0: [0.3, 0.4], 4: [0.05, 0.05]} and unmapped == [0.02, 0.02]
    assert layer_breakdown(times, mapping, skip_runs=1)[0][0] == [0.4]
    assert kernels[0] == ["conv_out_nchwc"]


def test_torchscript_scope_names():
    assert torchscript_scopes("/features/features.1/conv/conv.0/conv.0.2/Clip") == [
        "features", "features.1", "features.1.conv", "features.1.conv.0", "features.1.conv.0.2"]  # fmt: skip
    assert torchscript_scopes("/Flatten") == []
    assert KernelTimes().runs == []
