"""Featurizers of NAS-Bench-201 tables (rows = cells) for cost models, registered as ``nb201-*``.

Each takes a DataFrame with an ``arch`` column and returns a numeric DataFrame with one row per input row
(same index). Everything is computed once for the 15,625 cells of the space and then looked up, so the whole
table featurizes in well under a second.

Dead edges (see :func:`hwnas.spaces.nb201.edge_status`) are split out everywhere it matters: an ``unused``
edge costs time on an eager runtime and nothing on one that eliminates dead code; a ``zero_input`` edge also
vanishes where a converter folds constants. Keeping them as separate features lets a fitted model learn which
runtime it is looking at instead of assuming one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from hwnas.errors import InputError
from hwnas.graph.layer import make_layer
from hwnas.spaces import nb201
from hwnas.spaces.nb201 import EDGES, N_EDGES, OPS

_NON_NONE = OPS[1:]
_STATE_CODE = {"none": 0, "live": 1, "unused": 2, "zero_input": 3}
_STATE_PREFIX = {"live": "live", "unused": "unused", "zero_input": "zeroin"}
_POW5 = 5 ** np.arange(N_EDGES)[::-1]  # code tuple -> position in product order


@lru_cache(maxsize=1)
def _space() -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(arch string -> product-order position, op codes [N,6], edge states [N,6]) for every cell."""
    pos: dict[str, int] = {}
    codes = np.empty((nb201.N_CELLS, N_EDGES), dtype=np.int8)
    states = np.empty((nb201.N_CELLS, N_EDGES), dtype=np.int8)
    for p, cell in enumerate(nb201.all_cells()):
        pos[nb201.to_string(cell)] = p
        codes[p] = cell.codes
        states[p] = [_STATE_CODE[s] for s in nb201.edge_status(cell)]
    return pos, codes, states


def cell_positions(df: pd.DataFrame) -> np.ndarray:
    """Product-order position of each row's cell; raises InputError naming a missing or bad ``arch``."""
    if "arch" not in df.columns:
        raise InputError(
            "NAS-Bench-201 features need an 'arch' column (got: " + ", ".join(map(str, df.columns)) + ")",
            hint="rows must hold arch strings like |nor_conv_3x3~0|+|...~0|...~1|+|...|",
        )
    pos, _, _ = _space()
    archs = df["arch"].astype(str).tolist()
    out = np.empty(len(archs), dtype=np.int64)
    for r, a in enumerate(archs):
        p = pos.get(a)
        if p is None:  # not canonical: parse it (raises InputError with the reason when malformed)
            p = int(np.dot(nb201.parse_arch(a).codes, _POW5))
        out[r] = p
    return out


def _lookup(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    _, codes, states = _space()
    p = cell_positions(df)
    return codes[p], states[p]


def _edge_name(k: int) -> str:
    j, i = EDGES[k]
    return f"e{j}{i}"


def nb201_onehot(df: pd.DataFrame) -> pd.DataFrame:
    """One-hot encoding: 30 columns ``e<to><from>_<op>`` (6 edges × 5 ops)."""
    codes, _ = _lookup(df)
    cols = {}
    for k in range(N_EDGES):
        for o, op in enumerate(OPS):
            cols[f"{_edge_name(k)}_{op}"] = (codes[:, k] == o).astype(np.float64)
    return pd.DataFrame(cols, index=df.index)


def _adds(codes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Number of element-wise additions per cell when only the edges in ``keep`` [N,6] are computed."""
    total = np.zeros(len(codes))
    for j in (1, 2, 3):
        ks = [k for k, (to, _) in enumerate(EDGES) if to == j]
        total += np.maximum(keep[:, ks].sum(axis=1) - 1, 0)
    return total


def nb201_edgeop(df: pd.DataFrame) -> pd.DataFrame:
    """Edge-op counts for a LUT sum: per non-``none`` op, how many edges are live / unused / zero-input, plus
    ``none`` edges and the additions an eager and a dead-code-eliminating runtime perform. A LUT of one cost
    per column (times the 15 cells of the network) reproduces the latency of either kind of runtime."""
    codes, states = _lookup(df)
    cols: dict[str, np.ndarray] = {}
    for o, op in enumerate(OPS):
        if op == "none":
            cols["none"] = (codes == 0).sum(axis=1).astype(float)
            continue
        for state, prefix in _STATE_PREFIX.items():
            cols[f"{prefix}_{op}"] = ((codes == o) & (states == _STATE_CODE[state])).sum(axis=1).astype(float)
    cols["adds_all"] = _adds(codes, np.ones_like(codes, dtype=bool))
    cols["adds_dce"] = _adds(codes, (states == 1) | (states == 3))
    cols["connected"] = _connected(codes, states)
    return pd.DataFrame(cols, index=df.index)


def _connected(codes: np.ndarray, states: np.ndarray) -> np.ndarray:
    """1.0 where the cell output depends on its input (some live edge enters node 3)."""
    into3 = [k for k, (to, _) in enumerate(EDGES) if to == 3]
    return np.any(states[:, into3] == 1, axis=1).astype(float)


def nb201_opcount(df: pd.DataFrame) -> pd.DataFrame:
    """Op counts for a linear model: ``n_<op>`` over all six edges, ``n_live_<op>`` over the live ones, the
    number of dead (unused or zero-input) compute edges, and ``connected``."""
    codes, states = _lookup(df)
    cols: dict[str, np.ndarray] = {}
    for o, op in enumerate(OPS):
        cols[f"n_{op}"] = (codes == o).sum(axis=1).astype(float)
    for o, op in enumerate(OPS):
        if op != "none":
            cols[f"n_live_{op}"] = ((codes == o) & (states == 1)).sum(axis=1).astype(float)
    cols["n_dead"] = ((states == 2) | (states == 3)).sum(axis=1).astype(float)
    cols["connected"] = _connected(codes, states)
    return pd.DataFrame(cols, index=df.index)


# ------------------------------------------------------------------------------------ LayerSpec features

_LAYER_STATS = (
    "macs_m",
    "params_k",
    "act_mb",
    "n_layers",
    "n_conv",
    "n_bn",
    "n_relu",
    "n_pool",
    "n_add",
    "n_zero",
    "n_identity",
)
_VARIANTS = ("all", "dce", "live")  # eager runtime; dead code eliminated; also zero-input edges folded away


def _stats(specs: list) -> np.ndarray:
    v = np.zeros(len(_LAYER_STATS))
    for s in specs:
        v += [
            s.macs / 1e6,
            s.params / 1e3,
            s.activation_bytes / 1e6,
            1,
            s.op == "conv2d",
            s.op == "batchnorm",
            s.op == "relu",
            s.op in ("avgpool2d", "global_avgpool"),
            s.op == "add",
            s.op == "zero",
            s.op == "identity",
        ]
    return v


@lru_cache(maxsize=4)
def _layer_tables(batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base stats, per-op stats of one edge summed over the 15 cells [5, S], one add over 15 cells [S]),
    all derived from the LayerSpecs that :func:`hwnas.spaces.nb201.layers` builds."""
    spec = nb201.layers(nb201.Cell(("none",) * N_EDGES), batch_size=batch_size)
    base = _stats([s for s in spec.layers if ".edges." not in s.name and ".node" not in s.name])
    per_op = np.zeros((len(OPS), len(_LAYER_STATS)))
    per_add = np.zeros(len(_LAYER_STATS))
    shape_in = spec.layers[0].output_shape
    for ch in nb201.STAGE_CHANNELS:
        h = shape_in[2] * nb201.STAGE_CHANNELS[0] // ch
        shape = (batch_size, ch, h, h)
        for o, op in enumerate(OPS):
            per_op[o] += nb201.CELLS_PER_STAGE * _stats(nb201.edge_layers(op, shape))
        add = make_layer("add", shape, shape, extra_input_shapes=(shape,))
        per_add += nb201.CELLS_PER_STAGE * _stats([add])
    return base, per_op, per_add


def nb201_layers(df: pd.DataFrame, batch_size: int = 1) -> pd.DataFrame:
    """LayerSpec-derived totals of each cell's whole network (MACs, params, activation and weight bytes, layer
    counts by kind) for three runtimes: ``_all`` (every edge runs), ``_dce`` (unused and ``none`` removed)
    and ``_live`` (zero-input edges folded away too). Equal to summing ``nb201.layers(arch).layers``."""
    codes, states = _lookup(df)
    base, per_op, per_add = _layer_tables(batch_size)
    keeps = {
        "all": np.ones_like(codes, dtype=bool),
        "dce": (states == 1) | (states == 3),
        "live": states == 1,
    }
    onehot = np.stack([(codes == o) for o in range(len(OPS))], axis=-1)  # [N, 6, 5]
    cols: dict[str, np.ndarray] = {}
    for variant, keep in keeps.items():
        counts = (onehot & keep[:, :, None]).sum(axis=1).astype(float)  # [N, 5] ops kept
        total = base[None, :] + counts @ per_op + _adds(codes, keep)[:, None] * per_add[None, :]
        for s, name in enumerate(_LAYER_STATS):
            cols[f"{name}_{variant}"] = total[:, s]
    return pd.DataFrame(cols, index=df.index)


FEATURIZERS = {
    "nb201-onehot": nb201_onehot,
    "nb201-opcount": nb201_opcount,
    "nb201-layers": nb201_layers,
    "nb201-edgeop": nb201_edgeop,
}
