"""The onnxruntime profile parser and layer mapping on a real recording (recordings/local-cpu/meta.json)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from hwnas.profilers.ort_profile import layer_breakdown, map_kernels, node_layer_map, parse_profile

REC = Path(__file__).parent / "recordings" / "local-cpu"


def test_recorded_profile_maps_fused_kernels_to_their_conv_layers():
    layers = json.loads((REC / "layers.json").read_text())
    names, ops = [la["name"] for la in layers], [la["op"] for la in layers]
    times = parse_profile(REC / "ort_profile.json")
    assert len(times.runs) == json.loads((REC / "meta.json").read_text())["runs"]
    node_map = node_layer_map(onnx.load(str(REC / "tiny.onnx")), names, ops)
    mapping = map_kernels(times, node_map, ops)
    by_layer = {}
    for kernel, idx in mapping.items():
        by_layer.setdefault(idx, []).append(times.op_of[kernel])
    # conv+bn+relu and depthwise conv+relu6 ran as two fused Conv kernels, attributed to the convs
    assert by_layer[0] == ["Conv"] and by_layer[3] == ["Conv"]
    assert by_layer[7] == ["Gemm"] and by_layer[5] == ["GlobalAveragePool"]
    assert all(times.op_of[k].startswith("Reorder") for k in by_layer.get(None, []))
    per_layer, unmapped, _ = layer_breakdown(times, mapping, skip_runs=1)
    assert all(len(v) == len(times.runs) - 1 for v in per_layer.values())
    assert all(ms > 0 for ms in per_layer[0])
