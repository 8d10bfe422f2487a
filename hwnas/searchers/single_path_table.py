"""Single-Path NAS runtime tables: per searchable MBConv block, R for 3×3/5×5 × e3/e6 (+ SE scaling).

A table prices an architecture of the MobileNetV2 space (``spaces/mbv2.py``) with the runtime model of
the Stamoulis thesis: R = fixed + Σ_i R^i (eq. 5.8), R^i from eq. 5.9–5.10, and with SE paths eq. 6.5–6.8
(``hwnas.cost_models.torch_costs.SinglePathRuntime`` does the arithmetic, differentiably).

Form of eq. 5.9–5.10 used for e3 layers: the thesis's own. R_e takes the 5×5 entries (R_5x5,3, or
R_5x5,6 with e6), and the 3×3 kernel scales R_e by R_3x3,6 / R_5x5,6, so a k3e3 block costs
R_5x5,3 · R_3x3,6 / R_5x5,6: the table's R_3x3,3 entry is recorded but never read (as in the published
code). This keeps the model linear in each indicator, which is what makes it differentiable in the
thresholds.

Tables come from two places: the shipped Pixel 1 table (``SinglePathTable.pixel1()``), or
:func:`build_table`, which times every candidate block in isolation through a ``time_module`` function
the caller supplies (the CLI passes one that runs the device's profiler; this module never imports a
profiler) and calibrates the fixed part (stem, fixed blocks 0 and 21, head, per-call overheads) as the
mean of measured-whole minus summed-blocks over a few uniform architectures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hwnas.cost_models.torch_costs import PIXEL1_FIXED_MS, SinglePathRuntime, load_pixel1_table
from hwnas.errors import InputError
from hwnas.spaces.mbv2 import OPS, BlockChoice, MBConv, MBV2Space

FORMAT = "hwnas-single-path-table"
VERSION = 1
SEARCHABLE = tuple(range(1, 21))
CODES = ((3, 3), (3, 6), (5, 3), (5, 6))  # code order of the Pixel 1 table: k3e3, k3e6, k5e3, k5e6

# time_module(module, input_shape, name) -> milliseconds
TimeModule = Callable[[Any, tuple[int, ...], str], float]


@dataclass
class SinglePathTable:
    """Per-block runtimes ``table_ms[i, code]`` (blocks 1–20), a fixed part, optional SE factors."""

    device: str
    fixed_ms: float
    table_ms: np.ndarray  # [20, 4] ms, code order k3e3, k3e6, k5e3, k5e6
    se_scale: np.ndarray | None = None  # [20, 4] R(se=0.25)/R(se=0), eq. 6.5
    space: dict[str, Any] = field(default_factory=dict)  # resolution, width, num_classes
    info: dict[str, Any] = field(default_factory=dict)
    # What fixed_ms is made of, where it was measured by parts (in-model tables): stem, block0, block21,
    # head, classifier, overhead (a forward pass outside every module). They add up to fixed_ms.
    fixed_parts_ms: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self.table_ms = np.asarray(self.table_ms, float)
        if self.table_ms.shape != (len(SEARCHABLE), 4):
            raise InputError(f"single-path table: expected [20, 4] runtimes, got {self.table_ms.shape}")
        if self.se_scale is not None:
            self.se_scale = np.asarray(self.se_scale, float)
            if self.se_scale.shape != self.table_ms.shape:
                raise InputError(f"single-path table: se_scale is {self.se_scale.shape}, expected [20, 4]")
        if self.fixed_parts_ms is not None:
            parts = {str(k): float(v) for k, v in self.fixed_parts_ms.items()}
            if not math.isclose(sum(parts.values()), float(self.fixed_ms), rel_tol=1e-9, abs_tol=1e-9):
                raise InputError(
                    f"single-path table: fixed_parts_ms add up to {sum(parts.values()):.6f} ms, "
                    f"fixed_ms is {float(self.fixed_ms):.6f} ms",
                    hint="fixed_ms must be the sum of its parts (stem, block0, block21, head, ...)",
                )
            self.fixed_parts_ms = parts

    # -- sources ------------------------------------------------------------------------------------
    @classmethod
    def pixel1(cls) -> SinglePathTable:
        """The published Pixel 1 table (TFLite, one thread; 224×224, width 1.0, 1000 classes)."""
        data = load_pixel1_table()
        rows = [[data[str(i)][str(c)] for c in range(4)] for i in SEARCHABLE]
        return cls(
            "pixel1",
            PIXEL1_FIXED_MS,
            np.asarray(rows),
            None,
            {"resolution": 224, "width": 1.0, "num_classes": 1000},
            {"source": "Single-Path NAS public repository (pixel1_runtime_model.json), TFLite, 1 thread"},
        )

    @classmethod
    def load(cls, path: str | Path) -> SinglePathTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"single-path table {path}: cannot read it ({exc})") from exc
        if not isinstance(data, dict):
            raise InputError(f"single-path table {path}: expected a JSON object")
        if data.get("format") != FORMAT:
            if all(str(i) in data for i in SEARCHABLE):  # the published layout {"<block>": {"<code>": ms}}
                try:
                    rows = [[float(data[str(i)][str(c)]) for c in range(4)] for i in SEARCHABLE]
                except (KeyError, TypeError, ValueError) as exc:
                    raise InputError(
                        f"single-path table {path}: block rows need codes '0'-'3' in ms ({exc})"
                    ) from exc
                return cls(path.stem, PIXEL1_FIXED_MS, np.asarray(rows), None, {}, {"source": str(path)})
            raise InputError(
                f"single-path table {path}: field 'format' is {data.get('format')!r}, expected {FORMAT!r}",
                hint="build one with `hwnas single-path table --device D --out T.json`",
            )
        if int(data.get("version", 0)) > VERSION:
            raise InputError(
                f"single-path table {path}: version {data.get('version')} is newer than {VERSION}"
            )
        try:
            blocks = data["blocks_ms"]
            rows = [[float(blocks[str(i)][tok]) for tok in OPS] for i in SEARCHABLE]
            se = data.get("se_scale")
            se_rows = None if se is None else [[float(se[str(i)][tok]) for tok in OPS] for i in SEARCHABLE]
            fixed = float(data["fixed_ms"])
            parts = data.get("fixed_parts_ms")
            parts = None if parts is None else {str(k): float(v) for k, v in dict(parts).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"single-path table {path}: missing or bad field ({exc!r})",
                hint="blocks_ms: blocks '1'-'20', each k3e3, k3e6, k5e3, k5e6 in ms; fixed_ms: a number",
            ) from exc
        return cls(
            str(data.get("device", "")),
            fixed,
            np.asarray(rows),
            se_rows,
            dict(data.get("space", {})),
            dict(data.get("info", {})),
            parts,
        )

    def to_dict(self) -> dict[str, Any]:
        blocks = {
            str(i): dict(zip(OPS, map(float, self.table_ms[j]), strict=True))
            for j, i in enumerate(SEARCHABLE)
        }
        d: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "device": self.device,
            "unit": "ms",
            "space": self.space,
            "fixed_ms": float(self.fixed_ms),
            "blocks_ms": blocks,
            "info": self.info,
        }
        if self.fixed_parts_ms is not None:
            d["fixed_parts_ms"] = dict(self.fixed_parts_ms)
        if self.se_scale is not None:
            d["se_scale"] = {
                str(i): dict(zip(OPS, map(float, self.se_scale[j]), strict=True))
                for j, i in enumerate(SEARCHABLE)
            }
        return d

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    # -- pricing ------------------------------------------------------------------------------------
    def runtime_model(self, mode: str = "ste", temperature: float = 1.0) -> SinglePathRuntime:
        import torch

        se = None if self.se_scale is None else torch.as_tensor(self.se_scale)
        return SinglePathRuntime(
            torch.as_tensor(self.table_ms), self.fixed_ms, se_scale=se, mode=mode, temperature=temperature
        )

    def predict(self, choices: Sequence[BlockChoice]) -> float:
        """Runtime (ms) of one architecture: 20 searchable-block choices, or all 22 blocks."""
        ch = list(choices)
        if len(ch) == len(SEARCHABLE) + 2:
            ch = ch[1:-1]
        if len(ch) != len(SEARCHABLE):
            raise InputError(f"expected 20 searchable-block choices (or 22 blocks), got {len(choices)}")
        kes = [None if c.skip else (c.kernel, c.expansion) for c in ch]
        se = [bool(c.se_ratio) for c in ch]
        if any(se) and self.se_scale is None:
            raise InputError(
                f"the {self.device or 'given'} table has no SE scaling factors",
                hint="build the table with --se to price SE blocks",
            )
        return self.runtime_model().runtime_of(kes, se if self.se_scale is not None else None)

    def breakdown(self, choices: Sequence[BlockChoice]) -> dict[str, Any]:
        """``predict(choices)`` by parts: the fixed part's components (where the table has them, else one
        ``fixed`` entry) and R^i of the 20 searchable blocks. ``total_ms`` is their sum."""
        parts: dict[str, Any] = dict(self.fixed_parts_ms or {"fixed": float(self.fixed_ms)})
        blocks = self.per_block(choices)
        parts["blocks_ms"] = blocks
        parts["total_ms"] = float(sum(v for k, v in parts.items() if k != "blocks_ms") + sum(blocks))
        return parts

    def per_block(self, choices: Sequence[BlockChoice]) -> list[float]:
        """R^i of each searchable block (same model as ``predict``)."""
        ch = list(choices)[1:-1] if len(choices) == 22 else list(choices)
        return [self.predict_one(j, c) for j, c in enumerate(ch)]

    def predict_one(self, j: int, c: BlockChoice) -> float:
        if c.skip:
            return 0.0
        r33_6, r55_3, r55_6 = self.table_ms[j, 1], self.table_ms[j, 2], self.table_ms[j, 3]
        r_e = r55_6 if c.expansion == 6 else r55_3
        r = r_e if c.kernel == 5 else r_e * r33_6 / r55_6
        if c.se_ratio and self.se_scale is not None:
            r *= self.se_scale[j, CODES.index((c.kernel, c.expansion))]
        return float(r)


def parse_arch(text: str, space: MBV2Space) -> list[BlockChoice]:
    """``k5e6,k3e3,skip,...`` (20 searchable blocks, commas or dashes), all 22 blocks, or one token for
    every searchable block (``k5e6``)."""
    tokens = [t.strip() for t in str(text).replace(",", "-").split("-") if t.strip()]
    if len(tokens) == 1:
        tokens = tokens * len(SEARCHABLE)
    return space.decode("-".join(tokens))


def block_input_sizes(space: MBV2Space) -> list[int]:
    """Spatial input size (H = W) of each of the 22 blocks."""
    hw = (space.resolution + 2 - 3) // 2 + 1  # stem: 3×3, stride 2, padding 1
    sizes = []
    for info in space.blocks:
        sizes.append(hw)
        hw = (hw - 1) // info.stride + 1  # k×k, padding k//2: same for k = 3 and 5
    return sizes


def build_table(
    space: MBV2Space,
    time_module: TimeModule,
    *,
    device: str,
    se: bool = False,
    calibration: Sequence[str] = ("k3e3", "k3e6", "k5e3", "k5e6"),
    repeats: int = 1,
    progress: Callable[[str], None] | None = None,
    info: dict[str, Any] | None = None,
) -> SinglePathTable:
    """Time each candidate MBConv block of ``space`` alone (and with SE 0.25 when ``se``), less the
    timing overhead of an identity at the same input, then the uniform ``calibration`` architectures whole
    to fix the constant part. With ``repeats`` > 1 every timing is taken that many times in interleaved
    passes over all modules (so a load change on a shared host hits every entry alike) and the median
    kept. ``progress(label)`` is called after each timing."""
    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats}")
    sizes = block_input_sizes(space)
    act = nn.ReLU6 if space.activation == "relu6" else nn.ReLU
    jobs: list[tuple[str, Any, tuple[int, ...]]] = []  # (label, module, input shape)
    for i in SEARCHABLE:
        b = space.blocks[i]
        shape = (1, b.in_channels, sizes[i], sizes[i])
        # What timing a module costs beyond its work (harness, dispatch): an identity at the same input.
        # Subtracted from each entry, so that a skipped block (no call inside the network) costs 0.
        jobs.append((f"block{i}-identity", nn.Identity(), shape))
        for k, e in CODES:
            for ratio in (0.0, 0.25) if se else (0.0,):
                tag = f"block{i}-k{k}e{e}" + ("se25" if ratio else "")
                jobs.append(
                    (tag, MBConv(b.in_channels, b.out_channels, k, e, b.stride, ratio, act).eval(), shape)
                )
    for tok in calibration:
        arch = space.encode(parse_arch(tok, space))
        jobs.append((f"whole-all-{tok}", space.build(arch).eval(), (1, *space.input_shape)))
    samples: dict[str, list[float]] = {label: [] for label, _, _ in jobs}
    for _ in range(repeats):
        for label, module, shape in jobs:
            ms = time_module(module, shape, label)
            _check_ms(ms, label)
            samples[label].append(float(ms))
            if progress:
                progress(label)
    t = {label: float(np.median(v)) for label, v in samples.items()}
    rows, se_rows, overheads = [], [], []
    for i in SEARCHABLE:
        over = t[f"block{i}-identity"]
        overheads.append(over)
        base = [max(t[f"block{i}-k{k}e{e}"] - over, 1e-6) for k, e in CODES]
        rows.append(base)
        if se:
            se_rows.append(
                [
                    max(t[f"block{i}-k{k}e{e}se25"] - over, 1e-6) / r
                    for (k, e), r in zip(CODES, base, strict=True)
                ]
            )
    table = SinglePathTable(
        device,
        0.0,
        np.asarray(rows),
        np.asarray(se_rows) if se else None,
        {"resolution": space.resolution, "width": space.width, "num_classes": space.num_classes},
        dict(info or {}),
    )
    residuals = [t[f"whole-all-{tok}"] - table.predict(parse_arch(tok, space)) for tok in calibration]
    table.fixed_ms = float(np.mean(residuals))
    table.info.update(
        {
            "calibration": {"archs": [f"all-{tok}" for tok in calibration], "residuals_ms": residuals},
            "call_overhead_ms": overheads,
            "repeats": repeats,
        }
    )
    if table.fixed_ms <= 0:
        table.info["warning"] = "fixed part calibrated <= 0 ms: isolated blocks cost more than in the network"
    return table


# time_chain(modules, input_shape, name) -> an object with segments_ms (per module) and whole_ms
TimeChain = Callable[[Sequence[Any], tuple[int, ...], str], Any]
FIXED_PARTS = ("stem", "block0", "block21", "head", "classifier", "overhead")


def network_chain(net: Any) -> list[Any]:
    """An ``MBV2Space.build`` network as the chain its forward pass runs: stem, 22 blocks, head,
    classifier (25 modules)."""
    return [net.stem, *net.blocks, net.head, net.classifier]


def build_table_in_model(
    space: MBV2Space,
    time_chain: TimeChain,
    *,
    device: str,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
    info: dict[str, Any] | None = None,
) -> SinglePathTable:
    """The table as the thesis builds it (§5.3.2: "profiling DNNs with different MBConv types" with a
    per-layer breakdown): the four uniform networks all-k3e3, all-k3e6, all-k5e3, all-k5e6 are run whole
    and each block is timed *inside* the forward pass, so every entry R^i_{k,e} carries what the block
    costs in a network (its input coming from the previous block, caches as a model leaves them).

    The fixed part of eq. 5.8 is measured by parts, each the mean over the four networks: the stem, the
    fixed blocks 0 and 21, the head (1×1 conv), the classifier (pooling, dropout, linear), and a fitted
    ``overhead``, the whole forward pass minus the sum of its modules (dispatch between modules; the
    clock reads of the segmented pass make it slightly negative where there is nothing else). They add up
    to ``fixed_ms``. With ``repeats`` > 1 the four networks are timed in interleaved passes and the
    median kept per entry, so a load change on a shared host hits every entry alike."""
    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats}")
    nets = {tok: space.build(space.encode(parse_arch(tok, space))).eval() for tok in OPS}
    seg: dict[str, list[tuple[float, ...]]] = {tok: [] for tok in OPS}
    whole: dict[str, list[float]] = {tok: [] for tok in OPS}
    for _ in range(repeats):
        for tok, net in nets.items():
            chain = network_chain(net)
            got = time_chain(chain, (1, *space.input_shape), f"uniform-{tok}")
            segs = tuple(float(v) for v in got.segments_ms)
            if len(segs) != len(chain):
                raise InputError(f"timing uniform-{tok}: {len(segs)} segments for a chain of {len(chain)}")
            for v in segs:
                _check_ms(v, f"a module of uniform-{tok}")
            _check_ms(got.whole_ms, f"uniform-{tok}")
            seg[tok].append(segs)
            whole[tok].append(float(got.whole_ms))
            if progress:
                progress(f"uniform-{tok}")
    med = {tok: np.median(np.asarray(seg[tok]), axis=0) for tok in OPS}  # [25] per network
    wmed = {tok: float(np.median(whole[tok])) for tok in OPS}
    rows = [[float(med[tok][1 + i]) for tok in OPS] for i in SEARCHABLE]  # chain index 1 + block index
    per_net = {
        tok: {
            "stem": float(med[tok][0]),
            "block0": float(med[tok][1]),
            "block21": float(med[tok][22]),
            "head": float(med[tok][23]),
            "classifier": float(med[tok][24]),
            "overhead": wmed[tok] - float(med[tok].sum()),
        }
        for tok in OPS
    }
    parts = {k: float(np.mean([per_net[tok][k] for tok in OPS])) for k in FIXED_PARTS}
    table = SinglePathTable(
        device,
        float(sum(parts.values())),
        np.asarray(rows),
        None,
        {"resolution": space.resolution, "width": space.width, "num_classes": space.num_classes},
        dict(info or {}),
        parts,
    )
    table.info.update(
        {
            "form": "in-model: blocks timed inside the four uniform networks (thesis §5.3.2)",
            "uniform_whole_ms": wmed,
            "uniform_parts_ms": per_net,
            "uniform_predicted_ms": {tok: table.predict(parse_arch(tok, space)) for tok in OPS},
            "repeats": repeats,
        }
    )
    return table


def _check_ms(ms: float, what: str) -> None:
    if not (isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0):
        raise InputError(f"timing {what} gave {ms!r}, not a positive number of ms")


@dataclass
class RuntimeModelCheck:
    """Thesis §5.3.2: random architectures measured whole vs the model's prediction."""

    archs: list[str]
    measured_ms: list[float]
    predicted_ms: list[float]

    @property
    def errors_pct(self) -> np.ndarray:
        m, p = np.asarray(self.measured_ms), np.asarray(self.predicted_ms)
        return (p - m) / m * 100

    def summary(self) -> dict[str, float]:
        m, p = np.asarray(self.measured_ms), np.asarray(self.predicted_ms)
        e = self.errors_pct
        return {
            "n": len(m),
            "mean_abs_error_pct": float(np.mean(np.abs(e))),
            "mean_signed_error_pct": float(np.mean(e)),
            "max_abs_error_pct": float(np.max(np.abs(e))),
            "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
            "measured_ms_range": [float(m.min()), float(m.max())],
        }


def check_runtime_model(
    table: SinglePathTable,
    space: MBV2Space,
    time_module: TimeModule,
    *,
    n: int = 100,
    seed: int = 0,
    repeats: int = 1,
    progress: Callable[[str], None] | None = None,
) -> RuntimeModelCheck:
    """Measure ``n`` uniformly random architectures whole and compare with ``table.predict``. With
    ``repeats`` > 1 every network is measured that many times in interleaved passes over all ``n`` and
    the median kept (a load change on a shared host then hits every network alike)."""
    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    nets = [space.build(arch).eval() for arch in archs]
    samples: list[list[float]] = [[] for _ in archs]
    for r in range(repeats):
        for j, net in enumerate(nets):
            ms = time_module(net, (1, *space.input_shape), f"random-{j}")
            _check_ms(ms, f"random architecture {j}")
            samples[j].append(float(ms))
            if progress:
                progress(f"architecture {j + 1}/{n}, pass {r + 1}/{repeats}")
    meas = [float(np.median(v)) for v in samples]
    pred = [table.predict(space.decode(arch)) for arch in archs]
    return RuntimeModelCheck(archs, meas, pred)
