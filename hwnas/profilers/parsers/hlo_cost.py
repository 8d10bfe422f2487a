"""XLA HLO text → FLOPs, transcendentals and bytes accessed, by XLA's ``HloCostAnalysis`` counting rules.

Why here: TensorFlow gives the HLO XLA compiled (``tf.function(jit_compile=True)
.experimental_get_compiler_ir(...)(stage="optimized_hlo")``) but no binding to XLA's C++ cost analysis, so
hwnas reads the text and applies the same rules (``xla/service/hlo_cost_analysis.cc``, as documented there):

- element-wise arithmetic, compare, select, clamp: one FLOP per output element; exponential, log, tanh,
  logistic, rsqrt, sqrt, power, erf, sine/cosine: one *transcendental* per element (not FLOPs);
- ``dot``: 2 × output elements × the contracted size; ``convolution``: 2 × output elements × the kernel
  window × the kernel's input features (which already divides by ``feature_group_count``);
- ``reduce`` / ``reduce-window``: one application of the reducer per input element (window element);
- a ``fusion`` costs the FLOPs of the computation it calls, but its bytes accessed are only its own operands
  and output (fused intermediates stay in registers); other instructions access their operands and output;
- ``parameter``, ``constant``, ``tuple``, ``get-tuple-element``, ``bitcast`` cost nothing.

Per-op results carry the op's ``metadata op_name`` (``model_1/blocks__3__conv__0_1/convolution``), so a
caller can charge FLOPs to the Keras layers, hence to LayerSpecs. Unknown ops cost 0 FLOPs and are listed
in ``unknown_ops``: never silently counted as something else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import InputError

_DTYPE_BYTES = {
    "pred": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "s16": 2, "u16": 2, "f16": 2,
    "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
}  # fmt: skip
_ELEMENTWISE = frozenset({
    "add", "subtract", "multiply", "divide", "maximum", "minimum", "negate", "abs", "sign", "compare",
    "select", "clamp", "and", "or", "xor", "not", "floor", "ceil", "round-nearest-afz", "round-nearest-even",
    "remainder", "shift-left", "shift-right-logical", "shift-right-arithmetic", "atan2", "convert",
    "real", "imag", "is-finite",
})  # fmt: skip
_ELEMENTWISE_FREE = frozenset({"convert"})  # XLA counts no FLOPs for a type conversion
_TRANSCENDENTAL = frozenset({
    "exponential", "exponential-minus-one", "log", "log-plus-one", "tanh", "logistic", "rsqrt", "sqrt",
    "cbrt", "power", "erf", "sine", "cosine", "tan",
})  # fmt: skip
_FREE = frozenset({"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all",
                   "partition-id", "replica-id", "iota"})  # fmt: skip
_MOVES = frozenset({"broadcast", "reshape", "transpose", "copy", "slice", "dynamic-slice", "concatenate",
                    "pad", "reverse", "gather", "dynamic-update-slice", "copy-start",
                    "copy-done"})  # fmt: skip

_COMP_HEAD = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\((.*)\)\s*->\s*(.*?)\s*\{\s*$")
_INSTR = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s*=\s*(.+?)\s+([\w\-]+)\((.*)$")
_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([0-9,]*)\]")
_OPERAND = re.compile(r"%([\w.\-]+)")


@dataclass
class HloOp:
    """One instruction of the entry computation (fusions with their called computation's FLOPs)."""

    name: str
    opcode: str
    flops: int
    transcendentals: int
    bytes_accessed: int
    op_name: str = ""  # the frontend op (metadata op_name), e.g. the Keras layer's TF op


@dataclass
class HloCost:
    """Totals over the entry computation, the per-op rows, and what was not understood."""

    flops: int = 0
    transcendentals: int = 0
    bytes_accessed: int = 0
    ops: list[HloOp] = field(default_factory=list)
    unknown_ops: list[str] = field(default_factory=list)
    module: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"flops": self.flops, "transcendentals": self.transcendentals,
                "bytes_accessed": self.bytes_accessed, "unknown_ops": sorted(set(self.unknown_ops)),
                "ops": [op.__dict__ for op in self.ops]}  # fmt: skip


@dataclass
class _Instr:
    name: str
    shape: str
    opcode: str
    rest: str  # operands and attributes, as printed


def _arrays(shape: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for dt, dims in _ARRAY.findall(shape):
        if dt in _DTYPE_BYTES:
            out.append((dt, tuple(int(d) for d in dims.split(",") if d)))
    return out


def _elements(shape: str) -> int:
    arrays = _arrays(shape)
    return math.prod(arrays[0][1]) if arrays else 0


def _bytes(shape: str) -> int:
    return sum(_DTYPE_BYTES[dt] * math.prod(dims) for dt, dims in _arrays(shape))


def _split_operands(rest: str) -> tuple[str, str]:
    """``"a, b), attr=..."`` → (``"a, b"``, ``"attr=..."``): the operand list ends at its closing paren."""
    depth = 1
    for i, ch in enumerate(rest):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
            if depth == 0:
                return rest[:i], rest[i + 1 :]
    return rest, ""


def parse_computations(text: str, source: str = "<hlo>") -> tuple[dict[str, list[_Instr]], str, str]:
    """(computation name → instructions, entry name, module name); InputError when there is no ENTRY."""
    comps: dict[str, list[_Instr]] = {}
    entry, module, current = "", "", None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("HloModule"):
            module = s.split()[1].rstrip(",") if len(s.split()) > 1 else ""
            continue
        if current is None:
            m = _COMP_HEAD.match(s)
            if m:
                current = m.group(2)
                comps[current] = []
                if m.group(1):
                    entry = current
            continue
        if s == "}":
            current = None
            continue
        m = _INSTR.match(line)
        if m:
            comps[current].append(_Instr(m.group(2), m.group(3), m.group(4), m.group(5)))
    if not entry:
        raise InputError(f"{source}: not XLA HLO text: no ENTRY computation found",
                         hint="pass experimental_get_compiler_ir(...)(stage='optimized_hlo')")  # fmt: skip
    return comps, entry, module


def _attr(attrs: str, key: str) -> str | None:
    m = re.search(rf"\b{re.escape(key)}=(\{{[^}}]*\}}|[^,\s]+)", attrs)
    return m.group(1) if m else None


def _instr_flops(ins: _Instr, shapes: dict[str, str], comps: dict[str, list[_Instr]],
                 unknown: list[str]) -> tuple[int, int]:  # fmt: skip
    """(FLOPs, transcendentals) of one instruction; fusions recurse into their called computation."""
    op = ins.opcode
    operands, attrs = _split_operands(ins.rest)
    out = _elements(ins.shape)
    if op in _FREE or op in _MOVES or op in _ELEMENTWISE_FREE:
        return 0, 0
    if op in _ELEMENTWISE:
        return out, 0
    if op in _TRANSCENDENTAL:
        return 0, out
    names = _OPERAND.findall(operands)
    if op == "dot":
        lhs = _arrays(shapes.get(names[0], "")) if names else []
        dims = _attr(attrs, "lhs_contracting_dims") or "{}"
        contract = [int(d) for d in dims.strip("{}").split(",") if d.strip()]
        size = math.prod(lhs[0][1][d] for d in contract) if lhs else 0
        return 2 * out * size, 0
    if op == "convolution":
        kernel = _arrays(shapes.get(names[1], "")) if len(names) > 1 else []
        labels = _attr(attrs, "dim_labels") or ""
        window = _attr(attrs, "window") or ""
        size_m = re.search(r"size=([0-9x]+)", window)
        win = math.prod(int(v) for v in size_m.group(1).split("x")) if size_m else 1
        kin = 1
        if kernel and "_" in labels:
            kspec = labels.split("_")[1].split("->")[0]
            if "i" in kspec and len(kspec) == len(kernel[0][1]):
                kin = kernel[0][1][kspec.index("i")]
        return 2 * out * win * kin, 0
    if op in ("reduce", "reduce-window"):
        src = _elements(shapes.get(names[0], "")) if names else 0
        if op == "reduce-window":
            window = _attr(attrs, "window") or ""
            size_m = re.search(r"size=([0-9x]+)", window)
            win = math.prod(int(v) for v in size_m.group(1).split("x")) if size_m else 1
            return out * win, 0
        return src, 0
    if op == "fusion":
        called = (_attr(attrs, "calls") or "").lstrip("%")
        if called not in comps:
            unknown.append(f"fusion calls {called!r} (not in the module)")
            return 0, 0
        inner = {i.name: i.shape for i in comps[called]}
        flops = trans = 0
        for sub in comps[called]:
            f, t = _instr_flops(sub, inner, comps, unknown)
            flops, trans = flops + f, trans + t
        return flops, trans
    unknown.append(op)
    return 0, 0


def analyze_hlo(text: str, source: str = "<hlo>") -> HloCost:
    """Cost of the entry computation of an HLO module given as text (see the module doc for the rules)."""
    if not isinstance(text, str):
        raise InputError(f"{source}: expected HLO text, got {type(text).__name__}")
    comps, entry, module = parse_computations(text, source)
    shapes = {i.name: i.shape for i in comps[entry]}
    cost = HloCost(module=module)
    for ins in comps[entry]:
        flops, trans = _instr_flops(ins, shapes, comps, cost.unknown_ops)
        if ins.opcode in _FREE:
            nbytes = 0
        else:
            operands, _ = _split_operands(ins.rest)
            nbytes = _bytes(ins.shape) + sum(_bytes(shapes.get(n, "")) for n in _OPERAND.findall(operands))
        m = re.search(r'op_name="([^"]*)"', ins.rest)
        cost.ops.append(HloOp(ins.name, ins.opcode, flops, trans, nbytes, m.group(1) if m else ""))
        cost.flops += flops
        cost.transcendentals += trans
        cost.bytes_accessed += nbytes
    return cost
