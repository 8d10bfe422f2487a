"""Parse onnxruntime's profiling JSON and map its kernel times back to LayerSpecs (pure functions).

onnxruntime writes Chrome-trace events: one ``model_run`` (cat ``Session``) per run and one
``<node>_kernel_time`` (cat ``Node``) per executed kernel. After graph optimisation a kernel may be a
fusion of several layers (Conv + BatchNorm + Clip -> ``FusedConv``) renamed after one of their tensors
(``hardtanh_nchwc``, ``.../Mul/QuickGeluFusion/``). Mapping: kernel name -> an ONNX node (by node name
or output tensor name, after stripping optimiser suffixes) -> a layer (by the torch module scope the
exporter recorded, the ``/a/a.b/Op`` path of the TorchScript exporter, or the node name itself); a fused
kernel whose op does not match the layer it landed on walks back to the nearest earlier layer of its op
(the conv that the BatchNorm and activation were folded into), except inside a composite layer (an SE
block owns its kernels). Kernels that map nowhere (layout reorders) stay unmapped.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Suffixes onnxruntime's optimisers append to the names of nodes they rewrite (one stripped per step).
_SUFFIX_RE = re.compile(r"(?<=.)(_nchwc|_token_\d+|_fused|/[A-Za-z]+Fusion/?)$")
# onnxruntime kernel op -> LayerSpec op(s) it implements (for fused kernels landing on another layer)
_ORT_OP_TO_LAYER = {
    "Conv": {"conv2d"},
    "FusedConv": {"conv2d"},
    "NhwcFusedConv": {"conv2d"},
    "QLinearConv": {"conv2d"},
    "Gemm": {"linear", "matmul"},
    "FusedGemm": {"linear", "matmul"},
    "MatMul": {"linear", "matmul"},
    "FusedMatMul": {"linear", "matmul"},
    "Add": {"add"},
    "Sum": {"add"},
    "Mul": {"mul"},
    "GlobalAveragePool": {"global_avgpool"},
    "AveragePool": {"avgpool2d"},
    "MaxPool": {"maxpool2d"},
    "BatchNormalization": {"batchnorm"},
    "Concat": {"concat"},
    "Flatten": {"flatten"},
    "Reshape": {"reshape", "flatten"},
    "Relu": {"relu"},
    "Sigmoid": {"sigmoid"},
    "HardSigmoid": {"hardsigmoid"},
    "HardSwish": {"hardswish"},
}
_WALK_BACK = 4
_COMPOSITE = frozenset({"se"})


@dataclass
class KernelTimes:
    """Per-run kernel durations in ms: ``runs[i][kernel] = ms`` (kernels of one run summed by name)."""

    runs: list[dict[str, float]] = field(default_factory=list)
    op_of: dict[str, str] = field(default_factory=dict)  # kernel name -> onnxruntime op type


def parse_profile(events: list[dict[str, Any]] | str | Path) -> KernelTimes:
    """Group ``Node`` kernel events into the ``model_run`` windows that contain them."""
    if not isinstance(events, list):
        events = json.loads(Path(events).read_text())
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    out = KernelTimes(runs=[defaultdict(float) for _ in runs])
    starts = [r[0] for r in runs]
    import bisect

    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if i < 0 or e["ts"] > runs[i][1]:
            continue
        name = e["name"][: -len("_kernel_time")]
        out.runs[i][name] += e["dur"] / 1e3  # us -> ms
        out.op_of[name] = (e.get("args") or {}).get("op_name", "")
    out.runs = [dict(r) for r in out.runs]
    return out


def _scopes(node: Any) -> list[str]:
    """Module names a node belongs to, most specific first (dynamo name_scopes, TorchScript path)."""
    cands: list[str] = []
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                cands += [s for s in reversed(ast.literal_eval(p.value)) if s]
            except (ValueError, SyntaxError):
                pass
    if node.name.startswith("/"):
        cands += list(reversed(torchscript_scopes(node.name)))
    cands.append(node.name)
    return cands


def torchscript_scopes(node_name: str) -> list[str]:
    """``/features/features.1/conv/conv.0/Conv`` -> ``[features, features.1, features.1.conv,
    features.1.conv.0]``: the TorchScript exporter names each scope relative to its parent's name."""
    parts = [s for s in node_name.split("/") if s][:-1]
    out: list[str] = []
    prev = ""
    for seg in parts:
        comp = seg[len(prev) + 1 :] if prev and seg.startswith(prev + ".") else seg
        out.append(f"{out[-1]}.{comp}" if out else comp)
        prev = seg
    return out


def node_layer_map(
    onnx_model: Any, layer_names: list[str], layer_ops: list[str] | None = None
) -> dict[str, int]:
    """ONNX node names and output tensor names -> index of the layer they belong to."""
    index: dict[str, int] = {}
    for i, name in enumerate(layer_names):
        if name:
            index.setdefault(name, i)
    out: dict[str, int] = {}
    taken: set[int] = set()
    last = -1
    for node in onnx_model.graph.node:
        idx = next((index[c] for c in _scopes(node) if c in index), None)
        if idx is None and layer_ops is not None:
            # functional ops (x + y, torch.flatten) carry no module scope: take the next free layer of
            # the same op after the last one placed (graph order is execution order)
            wanted = _ORT_OP_TO_LAYER.get(node.op_type, set())
            free = (j for j in range(last + 1, len(layer_ops)) if layer_ops[j] in wanted and j not in taken)
            idx = next(free, None)
        if idx is None:
            continue
        taken.add(idx)
        last = max(last, idx)
        out[node.name] = idx
        for o in node.output:
            out.setdefault(o, idx)
    return out


def _lookup(kernel: str, names: dict[str, int]) -> int | None:
    seen = kernel
    for _ in range(4):
        if seen in names:
            return names[seen]
        stripped = _SUFFIX_RE.sub("", seen)
        if stripped == seen:
            break
        seen = stripped
    return None


def map_kernels(times: KernelTimes, names: dict[str, int], layer_ops: list[str]) -> dict[str, int | None]:
    """Kernel name -> layer index (None where unmapped), fused kernels walked back to their op's layer."""
    out: dict[str, int | None] = {}
    for kernel, op in times.op_of.items():
        idx = _lookup(kernel, names)
        wanted = _ORT_OP_TO_LAYER.get(op)
        # a composite layer (an SE block) owns every kernel inside it; others walk back to their op's layer
        if idx is not None and wanted and layer_ops[idx] not in wanted and layer_ops[idx] not in _COMPOSITE:
            for back in range(1, _WALK_BACK + 1):
                j = idx - back
                if j >= 0 and layer_ops[j] in wanted:
                    idx = j
                    break
        out[kernel] = idx
    return out


def layer_breakdown(times: KernelTimes, mapping: dict[str, int | None], skip_runs: int = 0) -> tuple[
        dict[int, list[float]], list[float], dict[int, list[str]]]:  # fmt: skip
    """Per layer index: ms per run (its kernels summed); unmapped ms per run; kernels of each layer."""
    per_layer: dict[int, list[float]] = defaultdict(list)
    unmapped: list[float] = []
    kernels: dict[int, list[str]] = defaultdict(list)
    for k, idx in mapping.items():
        if idx is not None:
            kernels[idx].append(k)
    for run in times.runs[skip_runs:]:
        sums: dict[int, float] = defaultdict(float)
        other = 0.0
        for k, ms in run.items():
            idx = mapping.get(k)
            if idx is None:
                other += ms
            else:
                sums[idx] += ms
        for idx in kernels:
            per_layer[idx].append(sums.get(idx, 0.0))
        unmapped.append(other)
    return dict(per_layer), unmapped, dict(kernels)


@dataclass(frozen=True)
class UnitSplit:
    """Where the time of one isolated unit's run goes, per run in ms (medians over the profiled runs).

    ``entry_ms``: layout conversions of the unit's main input (``ReorderInput`` of graph input 0) — paid
    inside a model only when the producer computes in another layout; ``side_ms``: conversions and carriers
    of its other inputs (a residual), which a model does not pay; ``exit_ms``: the conversion of its output
    (``ReorderOutput`` producing the graph output); ``body_ms``: every other kernel; ``overhead_ms``: the
    rest of the run (the session call). Layouts say what the unit's kernels consume and produce
    (``"nchwc"`` where a conversion sits at that end, else ``""``).
    """

    run_ms: float
    body_ms: float
    entry_ms: float
    side_ms: float
    exit_ms: float
    overhead_ms: float
    entry_layout: str
    exit_layout: str
    kernels: dict[str, str]  # kernel name -> "body" | "entry" | "side" | "exit"


CARRIER_PREFIX = "hwnas_carrier"  # nodes a builder adds only to give a side input the model's layout


def split_unit_profile(events: list[dict[str, Any]] | str | Path, graph: Any,
                       skip_runs: int = 0) -> UnitSplit:  # fmt: skip
    """Classify an isolated unit's kernels by the optimised graph (``onnx`` GraphProto) they ran in."""
    times = parse_profile(events)
    inputs = [i.name for i in graph.input]
    outputs = {o.name for o in graph.output}
    role: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "ReorderInput" and node.input and node.input[0] in inputs:
            role[node.name] = "entry" if node.input[0] == inputs[0] else "side"
        elif node.op_type == "ReorderOutput" and set(node.output) & outputs:
            role[node.name] = "exit"
        elif node.name.startswith(CARRIER_PREFIX) or any(o.startswith(CARRIER_PREFIX) for o in node.output):
            role[node.name] = "side"
    if not isinstance(events, list):
        events = json.loads(Path(events).read_text())
    run_durs = sorted((e["ts"], e["dur"] / 1e3) for e in events
                      if e.get("cat") == "Session" and e.get("name") == "model_run")  # fmt: skip
    runs = times.runs[skip_runs:]
    durs = [d for _, d in run_durs][skip_runs:]
    if not runs or not durs:
        raise ValueError("the profile holds no model_run after the skipped warm-up runs")
    parts: dict[str, list[float]] = {k: [] for k in ("body", "entry", "side", "exit")}
    for run in runs:
        acc = dict.fromkeys(parts, 0.0)
        for k, ms in run.items():
            acc[role.get(k, "body")] += ms
        for k, v in acc.items():
            parts[k].append(v)

    def med(xs: list[float]) -> float:
        s = sorted(xs)
        return s[len(s) // 2] if s else 0.0

    over = [d - sum(parts[k][i] for k in parts) for i, d in enumerate(durs[: len(runs)])]
    return UnitSplit(
        run_ms=med(durs), body_ms=med(parts["body"]), entry_ms=med(parts["entry"]),
        side_ms=med(parts["side"]), exit_ms=med(parts["exit"]), overhead_ms=max(0.0, med(over)),
        entry_layout="nchwc" if "entry" in role.values() else "",
        exit_layout="nchwc" if "exit" in role.values() else "",
        kernels={k: role.get(k, "body") for k in times.op_of},
    )  # fmt: skip
