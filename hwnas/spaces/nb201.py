"""The NAS-Bench-201 search space: cells, their strings, sampling, mutation and the CIFAR-size network.

A cell is a DAG on four nodes; each of its six edges (j <- i, i < j) carries one of five operations
(Dong & Yang, ICLR 2020; ../shared/papers/002_*). Node j sums its incoming edges; node 3 is the output.
The string form is NAS-Bench-201's own: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

The network (as NAS-Bench-201 trains it): 3x3 stem conv (16 ch) + BN, three stages of five copies of the cell
with 16/32/64 channels separated by two ResNet basic blocks (stride 2), BN + ReLU, global average pooling and
a linear classifier. :func:`layers` gives it as LayerSpecs, :func:`build_network` as a torch module; the
analytic counts of :func:`table_flops_m` / :func:`table_params_m` reproduce the benchmark's columns.

Dead edges matter for latency: an edge whose output never reaches the cell output ("unused") is removed by
runtimes that eliminate dead code and still runs on others; an edge fed only by ``none`` edges ("zero input")
computes on an all-zero tensor. :func:`edge_status` names each edge's state so cost models can learn what a
runtime does with it instead of assuming.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, ModelSpec, make_layer

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edges in the order of the arch string: (to_node, from_node).
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
N_EDGES = len(EDGES)
N_CELLS = len(OPS) ** N_EDGES  # 15,625
STAGE_CHANNELS: tuple[int, int, int] = (16, 32, 64)
CELLS_PER_STAGE = 5
EDGE_STATES: tuple[str, ...] = ("none", "live", "unused", "zero_input")

_ARCH_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2| with ops " + ", ".join(OPS)


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-201 cell: the operation on each of the six edges, in arch-string order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != N_EDGES:
            raise InputError(
                f"a NAS-Bench-201 cell has {N_EDGES} edges, got {len(self.ops)}", hint=_ARCH_FORMAT
            )
        bad = [op for op in self.ops if op not in OPS]
        if bad:
            raise InputError(f"unknown NAS-Bench-201 operation(s) {bad}", hint=f"ops are {', '.join(OPS)}")

    @property
    def codes(self) -> tuple[int, ...]:
        """Operation indices into :data:`OPS` (the categorical encoding searchers use)."""
        return tuple(OPS.index(op) for op in self.ops)

    @classmethod
    def from_codes(cls, codes: Any) -> Cell:
        return cls(tuple(OPS[int(c)] for c in codes))

    def __str__(self) -> str:
        return to_string(self)

    def edge(self, to_node: int, from_node: int) -> str:
        return self.ops[EDGES.index((to_node, from_node))]


def to_string(cell: Cell) -> str:
    """NAS-Bench-201's arch string of ``cell``."""
    parts, k = [], 0
    for j in (1, 2, 3):
        nodes = []
        for i in range(j):
            nodes.append(f"{cell.ops[k]}~{i}")
            k += 1
        parts.append("|" + "|".join(nodes) + "|")
    return "+".join(parts)


def parse_arch(text: str | Cell) -> Cell:
    """Parse an arch string (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``) into a :class:`Cell`."""
    if isinstance(text, Cell):
        return text
    s = str(text).strip()
    if s.startswith("nb201:"):
        s = s[len("nb201:") :]
    groups = s.split("+")
    if len(groups) != 3:
        raise InputError(
            f"not a NAS-Bench-201 arch string: {text!r} (expected 3 node groups joined by '+')",
            hint=_ARCH_FORMAT,
        )
    ops: list[str] = []
    for j, group in enumerate(groups, start=1):
        items = [t for t in group.strip().strip("|").split("|") if t]
        if len(items) != j:
            raise InputError(
                f"not a NAS-Bench-201 arch string: {text!r} (node {j} needs {j} inputs, got {len(items)})",
                hint=_ARCH_FORMAT,
            )
        for i, item in enumerate(items):
            op, sep, src = item.partition("~")
            if not sep or src != str(i):
                raise InputError(
                    f"not a NAS-Bench-201 arch string: {text!r} (bad edge {item!r} into node {j})",
                    hint=_ARCH_FORMAT,
                )
            ops.append(op)
    return Cell(tuple(ops))


def all_cells() -> Iterator[Cell]:
    """Every cell of the space, in product order of :data:`OPS` (not NAS-Bench-201's index order:
    that order comes from the benchmark's files, see ``nb201_table.index_of``)."""
    for ops in itertools.product(OPS, repeat=N_EDGES):
        yield Cell(ops)


def sample(rng: random.Random | int | None = None) -> Cell:
    """A uniformly random cell."""
    r = rng if isinstance(rng, random.Random) else random.Random(rng)
    return Cell(tuple(r.choice(OPS) for _ in range(N_EDGES)))


def mutate(cell: Cell | str, rng: random.Random | int | None = None) -> Cell:
    """Change the operation of one random edge to another operation (the mutation of regularised evolution
    on NAS-Bench-201)."""
    c = parse_arch(cell)
    r = rng if isinstance(rng, random.Random) else random.Random(rng)
    k = r.randrange(N_EDGES)
    ops = list(c.ops)
    ops[k] = r.choice([op for op in OPS if op != ops[k]])
    return Cell(tuple(ops))


# ---------------------------------------------------------------------------------------------- topology


def _reach_forward(cell: Cell) -> set[int]:
    """Nodes reachable from the cell input (node 0) through non-``none`` edges."""
    seen = {0}
    for (j, i), op in sorted(zip(EDGES, cell.ops, strict=True)):
        if op != "none" and i in seen:
            seen.add(j)
    return seen


def _reach_backward(cell: Cell) -> set[int]:
    """Nodes from which the cell output (node 3) is reachable through non-``none`` edges."""
    seen = {3}
    for (j, i), op in sorted(zip(EDGES, cell.ops, strict=True), key=lambda t: -t[0][0]):
        if op != "none" and j in seen:
            seen.add(i)
    return seen


def is_connected(cell: Cell | str) -> bool:
    """True if the cell output depends on its input (otherwise the network's output is constant)."""
    return 3 in _reach_forward(parse_arch(cell))


def edge_status(cell: Cell | str) -> tuple[str, ...]:
    """Per edge one of :data:`EDGE_STATES`: ``none``; ``live`` (fed by the input, feeds the output);
    ``unused`` (its output never reaches the cell output: dead code); ``zero_input`` (feeds the output but its
    input is an all-zero tensor)."""
    c = parse_arch(cell)
    fwd, bwd = _reach_forward(c), _reach_backward(c)
    states = []
    for (j, i), op in zip(EDGES, c.ops, strict=True):
        if op == "none":
            states.append("none")
        elif j not in bwd:
            states.append("unused")
        elif i not in fwd:
            states.append("zero_input")
        else:
            states.append("live")
    return tuple(states)


# ---------------------------------------------------------------------------------------------- LayerSpecs


def _relu_conv_bn(
    x: tuple[int, ...], cout: int, k: int, stride: int, name: str
) -> tuple[list[LayerSpec], tuple]:
    n, cin, h, w = x
    ho, wo = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
    y = (n, cout, ho, wo)
    return [
        make_layer("relu", x, x, name=f"{name}.0"),
        make_layer(
            "conv2d",
            x,
            y,
            name=f"{name}.1",
            in_channels=cin,
            out_channels=cout,
            kernel=k,
            stride=stride,
            padding=k // 2,
        ),
        make_layer("batchnorm", y, y, name=f"{name}.2", in_channels=cout),
    ], y


def edge_layers(op: str, shape: tuple[int, ...], name: str = "") -> list[LayerSpec]:
    """LayerSpecs of one cell edge carrying ``op`` on an input of ``shape`` (NCHW, shape preserved)."""
    c = shape[1]
    if op == "none":
        return [make_layer("zero", shape, shape, name=name)]
    if op == "skip_connect":
        return [make_layer("identity", shape, shape, name=name)]
    if op == "nor_conv_1x1":
        return _relu_conv_bn(shape, c, 1, 1, f"{name}.op")[0]
    if op == "nor_conv_3x3":
        return _relu_conv_bn(shape, c, 3, 1, f"{name}.op")[0]
    if op == "avg_pool_3x3":
        return [
            make_layer(
                "avgpool2d",
                shape,
                shape,
                name=name,
                kernel=3,
                stride=1,
                padding=1,
                attrs={"count_include_pad": False},
            )
        ]
    raise InputError(f"unknown NAS-Bench-201 operation {op!r}", hint=f"ops are {', '.join(OPS)}")


def cell_layers(
    cell: Cell | str, shape: tuple[int, ...], name: str = "cell", prune_dead: bool = False
) -> list[LayerSpec]:
    """LayerSpecs of one cell in execution order: each node's incoming edges, then the adds that sum them.

    ``prune_dead`` drops ``none`` edges and edges whose output is unused (what a dead-code-eliminating runtime
    runs); otherwise every edge is listed, ``none`` as a ``zero`` layer (what an eager runtime runs)."""
    c = parse_arch(cell)
    states = edge_status(c)
    out: list[LayerSpec] = []
    for j in (1, 2, 3):
        kept = 0
        for k, ((to, i), op) in enumerate(zip(EDGES, c.ops, strict=True)):
            if to != j:
                continue
            if prune_dead and states[k] in ("none", "unused"):
                continue
            out.extend(edge_layers(op, shape, name=f"{name}.edges.{j}<-{i}"))
            kept += 1
        for a in range(max(0, kept - 1)):
            out.append(
                make_layer("add", shape, shape, name=f"{name}.node{j}.add{a}", extra_input_shapes=(shape,))
            )
    return out


def _resblock_layers(x: tuple[int, ...], cout: int, name: str) -> tuple[list[LayerSpec], tuple]:
    a, y = _relu_conv_bn(x, cout, 3, 2, f"{name}.conv_a")
    b, y = _relu_conv_bn(y, cout, 3, 1, f"{name}.conv_b")
    n, cin, h, w = x
    pooled = (n, cin, h // 2, w // 2)
    down = [
        make_layer("avgpool2d", x, pooled, name=f"{name}.downsample.0", kernel=2, stride=2, padding=0),
        make_layer(
            "conv2d",
            pooled,
            y,
            name=f"{name}.downsample.1",
            in_channels=cin,
            out_channels=cout,
            kernel=1,
            stride=1,
            padding=0,
        ),
    ]
    add = make_layer("add", y, y, name=f"{name}.add", extra_input_shapes=(y,))
    return a + b + down + [add], y


def layers(
    arch: Cell | str,
    batch_size: int = 1,
    resolution: int = 32,
    num_classes: int = 10,
    prune_dead: bool = False,
) -> ModelSpec:
    """The CIFAR-size NAS-Bench-201 network of ``arch`` as LayerSpecs, in execution order."""
    c = parse_arch(arch)
    x = (batch_size, 3, resolution, resolution)
    c0 = STAGE_CHANNELS[0]
    s = (batch_size, c0, resolution, resolution)
    specs = [
        make_layer(
            "conv2d", x, s, name="stem.0", in_channels=3, out_channels=c0, kernel=3, stride=1, padding=1
        ),
        make_layer("batchnorm", s, s, name="stem.1", in_channels=c0),
    ]
    idx = 0
    for stage, ch in enumerate(STAGE_CHANNELS):
        if stage > 0:
            block, s = _resblock_layers(s, ch, f"cells.{idx}")
            specs.extend(block)
            idx += 1
        for _ in range(CELLS_PER_STAGE):
            specs.extend(cell_layers(c, s, name=f"cells.{idx}", prune_dead=prune_dead))
            idx += 1
    cl = STAGE_CHANNELS[-1]
    specs.append(make_layer("batchnorm", s, s, name="lastact.0", in_channels=cl))
    specs.append(make_layer("relu", s, s, name="lastact.1"))
    pooled = (batch_size, cl, 1, 1)
    specs.append(make_layer("global_avgpool", s, pooled, name="global_pooling"))
    specs.append(make_layer("flatten", pooled, (batch_size, cl), name="flatten"))
    specs.append(
        make_layer(
            "linear",
            (batch_size, cl),
            (batch_size, num_classes),
            name="classifier",
            in_channels=cl,
            out_channels=num_classes,
            bias=True,
        )
    )
    return ModelSpec(name=f"nb201:{to_string(c)}", input_shape=x, layers=specs, source="hwnas.spaces.nb201")


def table_flops_m(spec: ModelSpec) -> float:
    """FLOPs in millions by NAS-Bench-201's convention: multiply-accumulates of conv and linear layers plus
    linear layers' bias adds, per image (batch 1); BN, ReLU, pooling and additions not counted."""
    n = 0
    for layer in spec.layers:
        if layer.op == "conv2d":
            n += layer.macs
        elif layer.op == "linear":
            n += layer.macs + (int(layer.output_shape[-1]) * _rows(layer) if layer.bias else 0)
    batch = spec.input_shape[0] if spec.input_shape else 1
    return n / batch / 1e6


def _rows(layer: LayerSpec) -> int:
    rows = 1
    for d in layer.output_shape[:-1]:
        rows *= int(d)
    return rows


def table_params_m(spec: ModelSpec) -> float:
    """Parameters in millions (BN affine scale and shift included), as NAS-Bench-201 counts them."""
    return spec.params / 1e6


# ---------------------------------------------------------------------------------------------- torch


def build_network(arch: Cell | str, num_classes: int = 10) -> Any:
    """The NAS-Bench-201 network of ``arch`` as a torch ``nn.Module`` (random weights; input N×3×32×32)."""
    from hwnas.spaces._nb201_torch import NB201Network

    return NB201Network(parse_arch(arch), num_classes=num_classes)


def export_onnx(arch: Cell | str, path: str | Path, num_classes: int = 10, batch_size: int = 1) -> Path:
    """Export the network of ``arch`` to ONNX (for onnxruntime profiling on this machine)."""
    import torch

    model = build_network(arch, num_classes=num_classes).eval()
    x = torch.randn(batch_size, 3, 32, 32)
    p = Path(path)
    try:
        from hwnas.graph.builders.onnx import module_to_onnx  # G's exporter, when present
    except ImportError:
        module_to_onnx = None
    if module_to_onnx is not None:
        return Path(module_to_onnx(model, tuple(x.shape), p))
    with torch.no_grad():
        torch.onnx.export(
            model,
            (x,),
            str(p),
            input_names=["input"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
        )
    return p


class NB201Space:
    """NAS-Bench-201 as a search space object: sample, mutate, build, layers, export."""

    def __init__(self, num_classes: int = 10, resolution: int = 32, seed: int = 0) -> None:
        self.num_classes = num_classes
        self.resolution = resolution
        self.seed = seed
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return N_CELLS

    def __iter__(self) -> Iterator[str]:
        return (to_string(c) for c in all_cells())

    def sample(self, rng: random.Random | None = None) -> str:
        return to_string(sample(rng or self._rng))

    def mutate(self, arch: str, rng: random.Random | None = None) -> str:
        return to_string(mutate(arch, rng or self._rng))

    def decode(self, arch: str) -> Cell:
        return parse_arch(arch)

    def encode(self, cell: Cell | tuple[str, ...] | list[int]) -> str:
        if isinstance(cell, Cell):
            return to_string(cell)
        items = list(cell)
        return to_string(
            Cell.from_codes(items) if items and not isinstance(items[0], str) else Cell(tuple(items))
        )

    def build(self, arch: str) -> Any:
        return build_network(arch, num_classes=self.num_classes)

    def layers(self, arch: str, batch_size: int = 1, prune_dead: bool = False) -> ModelSpec:
        return layers(
            arch,
            batch_size=batch_size,
            resolution=self.resolution,
            num_classes=self.num_classes,
            prune_dead=prune_dead,
        )

    def onnx(self, arch: str, path: str | Path, batch_size: int = 1) -> Path:
        return export_onnx(arch, path, num_classes=self.num_classes, batch_size=batch_size)


def resolve_name(prefix: str, arch: str, input_shape: tuple[int, ...] | None, batch_size: int) -> Any:
    """``nb201:<arch string>`` as a ResolvedModel (the ``nb201`` family of ``resolve_model``)."""
    from hwnas.graph.models import from_module

    module = build_network(arch, num_classes=10).eval()
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else (int(batch_size), 3, 32, 32)
    return from_module(module, shape, f"nb201:{arch}", f"nb201:{arch}")
