"""Features: LayerSpecs to numeric rows, and a registry of featurizers for tabular data.

Two kinds of input reach a cost model:

- **layers** (from the store or from an extracted model): :func:`layer_features` turns LayerSpecs into
  one numeric row each (op family one-hot, shapes, kernel, stride, groups, MACs, FLOPs, params, bytes),
  the nn-Meter kernel-feature idea. The column ``op_code`` (an integer per op family) lets a boosted
  model fit one predictor per op kind.
- **tabular files** (rows = architectures, e.g. a NAS-Bench-201 table): a featurizer named on the
  command line (``--features NAME``) maps the DataFrame to numeric columns. A search space's featurizers
  (``nb201-*``) are registered by :mod:`hwnas.plugins`; this module never imports a space.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hwnas.errors import InputError

# Op families that cost differently enough to deserve their own predictor (nn-Meter's kernel types).
OP_KINDS: tuple[str, ...] = (
    "conv",  # dense / grouped convolution, kernel > 1
    "conv1x1",  # pointwise convolution
    "dwconv",  # depthwise convolution
    "linear",
    "pool",
    "norm",
    "activation",
    "elementwise",
    "se",
    "other",
)

LAYER_FEATURE_COLUMNS: tuple[str, ...] = (
    "op_code",
    *(f"op_{k}" for k in OP_KINDS),
    "batch",
    "in_channels",
    "out_channels",
    "in_h",
    "in_w",
    "out_h",
    "out_w",
    "kernel",
    "stride",
    "groups",
    "n_inputs",
    "macs",
    "flops",
    "params",
    "weight_bytes",
    "activation_bytes",
    "in_elems",
    "out_elems",
    "expansion",
    "se_ratio",
)


def op_kind(spec: Any) -> str:
    """The op family of a LayerSpec (see :data:`OP_KINDS`)."""
    from hwnas.graph.layer import ACTIVATION_OPS, ELEMENTWISE_OPS, NORM_OPS, POOL_OPS

    op = spec.op
    if op == "conv2d":
        if spec.is_depthwise:
            return "dwconv"
        k = spec.kernel or (1, 1)
        return "conv1x1" if tuple(k) == (1, 1) else "conv"
    if op in ("linear", "matmul"):
        return "linear"
    if op in POOL_OPS:
        return "pool"
    if op in NORM_OPS:
        return "norm"
    if op in ACTIVATION_OPS:
        return "activation"
    if op in ELEMENTWISE_OPS:
        return "elementwise"
    if op == "se":
        return "se"
    return "other"


def _dim(shape: Sequence[int], i: int) -> int:
    return int(shape[i]) if len(shape) > i else 1


def layer_feature_row(spec: Any) -> dict[str, float]:
    kind = op_kind(spec)
    ins, outs = tuple(spec.input_shape), tuple(spec.output_shape)
    row: dict[str, float] = {"op_code": float(OP_KINDS.index(kind))}
    for k in OP_KINDS:
        row[f"op_{k}"] = 1.0 if k == kind else 0.0
    spatial_in = len(ins) == 4
    spatial_out = len(outs) == 4
    row.update(
        batch=float(_dim(ins, 0)),
        in_channels=float(spec.in_channels or _dim(ins, 1)),
        out_channels=float(spec.out_channels or _dim(outs, 1)),
        in_h=float(ins[2] if spatial_in else 1),
        in_w=float(ins[3] if spatial_in else 1),
        out_h=float(outs[2] if spatial_out else 1),
        out_w=float(outs[3] if spatial_out else 1),
        kernel=float(spec.kernel[0] if spec.kernel else 0),
        stride=float(spec.stride[0] if spec.stride else 1),
        groups=float(spec.groups),
        n_inputs=float(1 + len(spec.extra_input_shapes)),
        macs=float(spec.macs),
        flops=float(spec.flops),
        params=float(spec.params),
        weight_bytes=float(spec.weight_bytes),
        activation_bytes=float(spec.activation_bytes),
        in_elems=float(np.prod(ins)) if ins else 0.0,
        out_elems=float(np.prod(outs)) if outs else 0.0,
        expansion=float(spec.expansion or 0.0),
        se_ratio=float(spec.se_ratio or 0.0),
    )
    return row


def layer_features(specs: Iterable[Any]) -> pd.DataFrame:
    """One numeric row per LayerSpec, columns :data:`LAYER_FEATURE_COLUMNS` (in that order)."""
    rows = [layer_feature_row(s) for s in specs]
    return pd.DataFrame(rows, columns=list(LAYER_FEATURE_COLUMNS), dtype=float)


# --- tabular featurizers --------------------------------------------------------------------------

Featurizer = Callable[[pd.DataFrame], pd.DataFrame]


def numeric_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Every numeric column as it is (bools become 0/1)."""
    out = df.select_dtypes(include=["number", "bool"]).astype(float)
    if out.shape[1] == 0:
        raise InputError(
            "featurizer 'numeric': the table has no numeric columns",
            hint="pick a featurizer that encodes the architecture column (e.g. nb201-onehot)",
        )
    return out


def layer_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that already hold LayerSpec JSON (column ``spec_json``) featurised per layer."""
    from hwnas.graph.layer import LayerSpec

    if "spec_json" not in df.columns:
        raise InputError("featurizer 'layerspec': the table needs a 'spec_json' column of LayerSpec JSON")
    import json

    return layer_features(LayerSpec.from_dict(json.loads(s)) for s in df["spec_json"])


_REGISTRY: dict[str, Featurizer | str] = {
    "numeric": numeric_columns,
    "layerspec": layer_columns,
}
# name prefix -> the search space whose featurizers carry it (for a clear "no such featurizer" error)
_NAMESPACES: dict[str, str] = {}


def register_featurizer(name: str, func: Featurizer | str) -> None:
    """Add a featurizer: a callable, or ``"module:function"`` imported on first use. Search spaces'
    featurizers arrive this way from :mod:`hwnas.plugins` (cost models never import a space)."""
    _REGISTRY[name] = func


def register_featurizers(
    featurizers: dict[str, Featurizer | str], *, prefix: str = "", space: str = ""
) -> None:
    """Add several featurizers at once; ``prefix`` (e.g. ``nb201-``) names a space's namespace."""
    for name, func in featurizers.items():
        register_featurizer(name, func)
    if prefix:
        _NAMESPACES[prefix] = space or prefix.rstrip("-")


def _import(path: str, name: str) -> Featurizer:
    module_name, _, func_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"featurizer {name!r}: cannot import {module_name}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise InputError(f"featurizer {name!r}: {module_name} has no function {func_name!r}")
    return func


def get_featurizer(name: str) -> Featurizer:
    """The featurizer registered under ``name``."""
    entry = _REGISTRY.get(name)
    if callable(entry):
        return entry
    if isinstance(entry, str):
        return _import(entry, name)
    for prefix, space in _NAMESPACES.items():
        if name.startswith(prefix):
            raise InputError(
                f"featurizer {name!r}: the {space} space defines no such featurizer",
                hint=f"known: {', '.join(available_featurizers())}",
            )
    raise InputError(
        f"unknown featurizer {name!r}",
        hint=f"known: {', '.join(available_featurizers())}; search spaces register theirs through "
        "hwnas.plugins (the CLI loads it; a script calls hwnas.plugins.load())",
    )


def available_featurizers() -> list[str]:
    """Registered names."""
    return sorted(_REGISTRY)


def apply_featurizer(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Run a featurizer and check it returned a finite numeric frame with one row per input row."""
    out = get_featurizer(name)(df)
    if not isinstance(out, pd.DataFrame) or len(out) != len(df):
        raise InputError(f"featurizer {name!r} must return a DataFrame with {len(df)} rows")
    try:
        values = out.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"featurizer {name!r} returned non-numeric columns: {exc}") from exc
    if not np.all(np.isfinite(values)):
        raise InputError(f"featurizer {name!r} returned NaN or infinite values")
    out = out.astype(float)
    out.columns = [str(c) for c in out.columns]
    return out
