"""Fused units: the layers a runtime executes as one kernel, found by per-backend rules (as nn-Meter does).

A layer list from ``extract_layers`` is what the framework describes; the runtime runs fewer, larger kernels:
onnxruntime folds a BatchNorm into the convolution before it, runs the activation inside the convolution
(``FusedConv``) and, on its NCHWc path, adds a residual inside the convolution too. Timing each LayerSpec
alone then charges a BatchNorm and a ReLU that never run, plus one session call per layer. A :class:`Unit`
is one such kernel: a chain of consecutive layers, each consuming the one before, keyed by its layers' keys,
so lookup tables and the profiler agree on what one entry is.

Rules are data (:class:`FusionRule`): an anchor op and the ops that may follow it, in order, each optional.
Ops in ``absorbed`` run as no kernel at all on that backend (onnxruntime removes Dropout and Identity);
they join whatever unit precedes them, also in the middle of a chain (conv + bn + stochastic-depth dropout +
add is one kernel). Rule sets are registered by name
(``register_fusion_rules``); ``"none"`` (torch eager) makes every layer its own unit.

Which rules hold is checked against the runtime itself: ``tests/graph/test_fusion.py`` compares the units of
real models with the kernels onnxruntime's profiler reports.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, Shape

UNIT_KEY_SEPARATOR = " + "


@dataclass(frozen=True)
class Unit:
    """One kernel the runtime runs: consecutive layers (``indices`` into the model's layer list).

    A one-layer unit has the layer's own key, so per-layer records and lookup tables keep their keys; a
    fused unit's key joins its layers' keys with ``" + "``.
    """

    layers: tuple[LayerSpec, ...]
    indices: tuple[int, ...] = ()
    rule: str = ""  # the FusionRule that formed it; "" for a lone layer

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a Unit needs at least one layer")

    @property
    def fused(self) -> bool:
        return len(self.layers) > 1

    @property
    def op(self) -> str:
        return "+".join(layer.op for layer in self.layers)

    @property
    def name(self) -> str:
        return self.layers[0].name

    @property
    def anchor(self) -> LayerSpec:
        """The layer the unit is named after (the convolution of conv+bn+relu)."""
        return self.layers[0]

    @property
    def input_shape(self) -> Shape:
        return self.layers[0].input_shape

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape

    @property
    def extra_input_shapes(self) -> tuple[Shape, ...]:
        """Operands from outside the chain (the residual of a conv+add), in chain order."""
        return tuple(s for layer in self.layers for s in layer.extra_input_shapes)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def wiring(self) -> tuple[tuple[Shape, ...], tuple[tuple[int, ...], ...]]:
        """How builders feed the chain: the shapes of its external inputs, and per layer the source of each
        operand (``-1``: the previous layer's output; ``k >= 0``: external input ``k``, where external
        input 0 is the first layer's input)."""
        shapes: list[Shape] = [self.layers[0].input_shape]
        wiring: list[tuple[int, ...]] = []
        for j, layer in enumerate(self.layers):
            ops = [layer.input_shape, *layer.extra_input_shapes]
            if j == 0:
                src = [0]
                for s in ops[1:]:
                    shapes.append(s)
                    src.append(len(shapes) - 1)
            else:
                prev = self.layers[j - 1].output_shape
                chained = ops.index(prev) if prev in ops else 0
                src = []
                for p, s in enumerate(ops):
                    if p == chained:
                        src.append(-1)
                    else:
                        shapes.append(s)
                        src.append(len(shapes) - 1)
            wiring.append(tuple(src))
        return tuple(shapes), tuple(wiring)

    def key(self) -> str:
        return UNIT_KEY_SEPARATOR.join(layer.key() for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"unit": [layer.to_dict() for layer in self.layers], "rule": self.rule, "key": self.key()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        """A unit from ``to_dict`` output, or a one-layer unit from a LayerSpec dict."""
        if "unit" not in data:
            return cls((LayerSpec.from_dict(data),))
        return cls(tuple(LayerSpec.from_dict(d) for d in data["unit"]), rule=str(data.get("rule", "")))


@dataclass(frozen=True)
class FusionRule:
    """``anchor`` op, then each of ``followers`` (a set of ops) at most once, in order, each optional."""

    name: str
    anchor: frozenset[str]
    followers: tuple[frozenset[str], ...]


@dataclass(frozen=True)
class FusionRules:
    """A backend's rule set: rules tried in order at each layer, and ops that run as no kernel."""

    name: str
    rules: tuple[FusionRule, ...] = ()
    absorbed: frozenset[str] = frozenset()


# Activations onnxruntime runs inside FusedConv / the NCHWc Conv (checked on its optimised graphs: Clip for
# relu6, HardSwish on MobileNetV3). SiLU is not among them: x * sigmoid(x) becomes its own QuickGelu kernel.
_ORT_ACTIVATIONS = frozenset({"relu", "relu6", "sigmoid", "tanh", "hardsigmoid", "hardswish"})
ONNXRUNTIME_CPU = FusionRules(
    "onnxruntime-cpu",
    rules=(
        # ConvBNFusion folds the BatchNorm into the weights; the NCHWc transformer adds a residual (Sum)
        # and ConvActivationFusion runs the activation inside FusedConv.
        FusionRule("conv+bn+add+act", frozenset({"conv2d"}),
                   (frozenset({"batchnorm"}), frozenset({"add"}), _ORT_ACTIVATIONS)),  # fmt: skip
        # GemmActivationFusion (FusedGemm); MatMul + Add becomes one Gemm
        FusionRule("linear+act", frozenset({"linear"}), (_ORT_ACTIVATIONS,)),
    ),
    absorbed=frozenset({"dropout", "identity"}),  # eliminated at inference (Flatten stays a kernel)
)
NONE = FusionRules("none")

_RULE_SETS: dict[str, FusionRules] = {"none": NONE, "onnxruntime-cpu": ONNXRUNTIME_CPU}


def register_fusion_rules(rules: FusionRules) -> None:
    """Make ``rules`` available under ``rules.name`` (a backend names it in its registration)."""
    _RULE_SETS[rules.name] = rules


def fusion_rules(name: str) -> FusionRules:
    if name not in _RULE_SETS:
        raise InputError(f"unknown fusion rule set {name!r}", hint=f"one of {', '.join(sorted(_RULE_SETS))}")
    return _RULE_SETS[name]


def _consumes(prev: LayerSpec, nxt: LayerSpec) -> bool:
    """Whether ``nxt`` can take ``prev``'s output as an operand (same shape as one of its inputs).

    Layer lists carry no edges; extraction order is execution order, so a follower directly after its
    producer with the producer's output shape among its inputs is the chain the runtime fuses.
    """
    return prev.output_shape == nxt.input_shape or prev.output_shape in nxt.extra_input_shapes


def _match(rule: FusionRule, layers: Sequence[LayerSpec], start: int, absorbed: frozenset[str]) -> int:
    """How many layers from ``start`` the rule covers (0: it does not apply there)."""
    if layers[start].op not in rule.anchor:
        return 0
    end = start + 1
    for slot in rule.followers:
        nxt = end
        while nxt < len(layers) and layers[nxt].op in absorbed and _consumes(layers[nxt - 1], layers[nxt]):
            nxt += 1  # no-kernel ops inside the chain
        if nxt < len(layers) and layers[nxt].op in slot and _consumes(layers[nxt - 1], layers[nxt]):
            end = nxt + 1
    return end - start


def fuse(layers: Iterable[LayerSpec], rules: str | FusionRules = "none") -> list[Unit]:
    """Group ``layers`` into the units a runtime with ``rules`` executes; every layer is in exactly one."""
    rs = fusion_rules(rules) if isinstance(rules, str) else rules
    seq = list(layers)
    units: list[tuple[list[int], str]] = []
    i = 0
    while i < len(seq):
        if seq[i].op in rs.absorbed and units and _consumes(seq[units[-1][0][-1]], seq[i]):
            units[-1][0].append(i)
            units[-1] = (units[-1][0], units[-1][1] or "absorbed")
            i += 1
            continue
        n, name = 1, ""
        for rule in rs.rules:
            got = _match(rule, seq, i, rs.absorbed)
            if got > 1:
                n, name = got, rule.name
                break
        units.append((list(range(i, i + n)), name))
        i += n
    return [Unit(tuple(seq[j] for j in idx), tuple(idx), name if len(idx) > 1 else "") for idx, name in units]


def unit_keys(layers: Iterable[LayerSpec], rules: str | FusionRules = "none") -> list[str]:
    """The keys a lookup table needs for a network on a backend with ``rules`` (one per unit, in order)."""
    return [u.key() for u in fuse(layers, rules)]


@dataclass(frozen=True)
class UnitTiming:
    """One unit timed alone, split by where its time went (``RawTiming.readings`` of runners that can say).

    A unit run alone converts its input into the layout its kernels use and its output back (onnxruntime's
    NCHWc reorders) and pays one runtime call; inside a model, neighbours that share a layout pass data
    without conversion and the model pays one call in all. ``*_share`` are fractions of ``total_ms``.
    """

    total_ms: float
    body_share: float = 1.0
    entry_share: float = 0.0
    exit_share: float = 0.0
    overhead_share: float = 0.0
    entry_layout: str = ""
    exit_layout: str = ""

    @classmethod
    def from_readings(cls, total_ms: float, readings: dict[str, Any] | None) -> UnitTiming:
        """From a record's value and ``extra["readings"]["split"]`` (absent: all of it is the unit's own)."""
        split = (readings or {}).get("split")
        if not split or not split.get("run_ms"):
            return cls(total_ms)
        run = float(split["run_ms"])
        return cls(total_ms, split["body_ms"] / run, split["entry_ms"] / run, split["exit_ms"] / run,
                   split["overhead_ms"] / run, split.get("entry_layout", ""),
                   split.get("exit_layout", ""))  # fmt: skip


def in_model_sum(timings: Sequence[UnitTiming]) -> float:
    """The latency a chain of units adds up to inside one model run (units in execution order).

    Each unit counts its own kernels; a layout conversion counts only where the model needs one (the
    producer's output layout differs from what the consumer computes in); one runtime call counts once.
    With no split known (``body_share`` 1) this is the plain sum of the isolated times.
    """
    total = 0.0
    for i, t in enumerate(timings):
        total += t.total_ms * t.body_share
        prev_out = timings[i - 1].exit_layout if i > 0 else ""
        nxt_in = timings[i + 1].entry_layout if i + 1 < len(timings) else ""
        if t.entry_layout != prev_out:
            total += t.total_ms * t.entry_share
        if t.exit_layout != nxt_in:
            total += t.total_ms * t.exit_share
    if timings:
        total += statistics.median(t.total_ms * t.overhead_share for t in timings)
    return total
