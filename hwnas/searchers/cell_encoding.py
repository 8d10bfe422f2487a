"""Encodings of categorical cells for surrogates: category codes (for a Hamming kernel) and path encodings.

A one-hot vector in [0, 1]^D (the unit encoding every searcher shares) makes a Euclidean kernel treat
"conv3x3 -> skip" and "conv3x3 -> pool" alike, but it gives a GP 30 length scales to learn from a few dozen
points. A cell search does better on what makes two cells alike:

- ``codes``: the index of each categorical parameter's choice; the kernel counts the parameters that
  differ (Hamming distance), one length scale in all.
- ``path`` (NAS-Bench-201 only): BANANAS's path encoding (White et al., 2021): one bit per
  input-to-output path of the cell DAG and per sequence of operations along it (``none`` cuts a path, so
  only the four other operations count): 4 + 2·4² + 4³ = 100 bits. Two cells that compute the same
  functions of the input share their bits whatever their dead edges hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.space import SearchSpace

ENCODINGS = ("codes", "path")


def category_codes(space: SearchSpace, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """``[n, P]`` int matrix: each categorical parameter's choice index (numeric parameters are refused)."""
    numeric = [p.name for p in space.params if p.kind != "categorical"]
    if numeric:
        raise InputError(
            f"space {space.name!r}: the Hamming-kernel encoding needs categorical parameters only, "
            f"{numeric} are numeric",
            hint="use hyperpower (a Matern kernel on the unit encoding) for mixed spaces",
        )
    out = np.empty((len(configs), len(space.params)), dtype=np.int16)
    for j, p in enumerate(space.params):
        index = {c: i for i, c in enumerate(p.choices)}
        try:
            out[:, j] = [index[c[p.name]] for c in configs]
        except KeyError as exc:
            raise InputError(
                f"parameter {p.name!r}: {exc.args[0]!r} is not one of {list(p.choices)}"
            ) from exc
    return out


def _nb201_paths() -> tuple[list[tuple[str, ...]], list[str]]:
    """The input->output paths of the NB201 cell as edge-parameter names, and the non-none ops."""
    from hwnas.spaces.nb201 import OPS

    # nodes 0..3; an edge parameter e<to><from>
    paths = [("e30",), ("e10", "e31"), ("e20", "e32"), ("e10", "e21", "e32")]
    return [tuple(p) for p in paths], [op for op in OPS if op != "none"]


def nb201_path_encoding(configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """``[n, 100]`` 0/1 matrix: BANANAS's path encoding of NAS-Bench-201 cells (see the module docstring)."""
    paths, ops = _nb201_paths()
    op_index = {op: i for i, op in enumerate(ops)}
    offsets, total = [], 0
    for p in paths:
        offsets.append(total)
        total += len(ops) ** len(p)
    out = np.zeros((len(configs), total), dtype=np.float32)
    for r, c in enumerate(configs):
        for p, off in zip(paths, offsets, strict=True):
            idx = 0
            for edge in p:
                k = op_index.get(c[edge])
                if k is None:  # a 'none' edge cuts the path
                    break
                idx = idx * len(ops) + k
            else:
                out[r, off + idx] = 1.0
    return out


def path_encoding_size() -> int:
    paths, ops = _nb201_paths()
    return sum(len(ops) ** len(p) for p in paths)


def encode(space: SearchSpace, configs: Sequence[Mapping[str, Any]], encoding: str) -> np.ndarray:
    """The matrix a :class:`~hwnas.searchers.cell_bo.HammingGP` works on for ``encoding``."""
    if encoding == "codes":
        return category_codes(space, configs)
    if encoding == "path":
        if not {"e10", "e20", "e21", "e30", "e31", "e32"} <= set(space.names):
            raise InputError(
                f"the path encoding is defined for NAS-Bench-201 cells; space {space.name!r} "
                f"has {space.names}",
                hint="use encoding='codes' (a Hamming kernel) on other categorical spaces",
            )
        return nb201_path_encoding(configs)
    raise InputError(f"unknown cell encoding {encoding!r}", hint=f"one of {', '.join(ENCODINGS)}")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` number of differing entries (codes or 0/1 bits)."""
    if a.dtype.kind == "f":  # 0/1 bits: |a| + |b| - 2 a.b
        sa, sb = a.sum(axis=1), b.sum(axis=1)
        return np.maximum(sa[:, None] + sb[None, :] - 2.0 * (a @ b.T), 0.0)
    return (a[:, None, :] != b[None, :, :]).sum(axis=2).astype(float)


def neighbours(space: SearchSpace, config: Mapping[str, Any], radius: int = 1) -> list[dict[str, Any]]:
    """Every config within Hamming distance ``radius`` (1 or 2) of ``config``, itself excluded."""
    out: list[dict[str, Any]] = []
    params = [p for p in space.params if p.kind == "categorical" and len(p.choices) > 1]
    for r in range(1, radius + 1):
        for group in itertools.combinations(params, r):
            options = [[v for v in p.choices if v != config[p.name]] for p in group]
            for values in itertools.product(*options):
                c = dict(config)
                c.update({p.name: v for p, v in zip(group, values, strict=True)})
                out.append(c)
    return out
