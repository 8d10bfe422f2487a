"""NAS-Bench-201's parts for the cost-model registries: its tabular featurizers and its few-shot space.

Featurizers come from :mod:`hwnas.spaces.nb201_features` (imported on first use, so loading the plug-in
reads no table); the few-shot space names the shipped table, its latency columns, the canonical arch
spelling and the edge-state / layer featurizers the pruning-variant references are built from.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from hwnas.cost_models.features import register_featurizers
from hwnas.cost_models.fewshot import FewShotSpace, register_fewshot_space

_FEATURIZERS = ("nb201-onehot", "nb201-opcount", "nb201-layers", "nb201-edgeop")


def _load_table(path: Any) -> pd.DataFrame:
    from hwnas.spaces.nb201_table import load_table

    return load_table(path, required=("arch",))


def _latency_columns(df: pd.DataFrame) -> list[str]:
    from hwnas.spaces.nb201_table import latency_columns

    return latency_columns(df)


def _validate(df: pd.DataFrame, required: Any, source: str = "table") -> pd.DataFrame:
    from hwnas.spaces.nb201_table import validate_table

    return validate_table(df, required, source=source)


def _canonical(arch: str) -> str:
    from hwnas.spaces.nb201 import parse_arch, to_string

    return to_string(parse_arch(arch))


def _edgeop(df: pd.DataFrame) -> pd.DataFrame:
    from hwnas.spaces.nb201_features import nb201_edgeop

    return nb201_edgeop(df)


def _layers(df: pd.DataFrame) -> pd.DataFrame:
    from hwnas.spaces.nb201_features import nb201_layers

    return nb201_layers(df)


def _arch_pattern() -> str:
    from hwnas.spaces.nb201_table import ARCH_RE

    return ARCH_RE.pattern


register_featurizers(
    {name: f"hwnas.spaces.nb201_features:{name.replace('-', '_')}" for name in _FEATURIZERS},
    prefix="nb201-",
    space="NAS-Bench-201",
)
register_fewshot_space(
    FewShotSpace(
        name="nb201",
        load_table=_load_table,
        latency_columns=_latency_columns,
        validate_table=_validate,
        canonical=_canonical,
        arch_pattern=_arch_pattern(),
        edge_features=_edgeop,
        layer_features=_layers,
    )
)
