"""Kind ``lut``: the lookup table. Its measured entries are the table's rows; keys missing from them go
to the fallback estimator's payload (or raise :class:`~hwnas.cost_models.base.UnknownKeyError`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hwnas.cost_models.kinds import EstimatorKind, get_kind, register_kind


def _make(*, fallback: str | None = None, **options: Any) -> Any:
    from hwnas.cost_models.lut import LUTCostModel

    fb = get_kind(fallback).make(**options) if fallback else None
    return LUTCostModel(fallback=fb)


def _payload(est: Any) -> dict[str, Any]:
    from hwnas.cost_models.export import estimator_payload

    fb = est.fallback_
    return {
        "fallback": estimator_payload(fb) if fb is not None else None,
        "fallback_name": est.fallback_name_,
    }


def _predict(payload: dict[str, Any], frame: pd.DataFrame, cache: dict[int, Any] | None) -> Any:
    from hwnas.cost_models.base import UnknownKeyError
    from hwnas.cost_models.export import payload_predict

    fallback = payload.get("fallback")
    if not fallback:
        keys = frame["layer_key"].astype(str).tolist() if "layer_key" in frame else []
        raise UnknownKeyError(
            f"{len(frame)} layer key(s) not in the lookup table, e.g. {keys[:2]}",
            hint="profile these layers and refit, or fit with a fallback model (--fallback boosted)",
        )
    return payload_predict(fallback, frame, cache)


def _rows(est: Any) -> pd.DataFrame:
    from hwnas.cost_models.export import ROW_COLUMNS

    return pd.DataFrame(
        [(k, v[0], v[1], v[2], v[3], "measured") for k, v in est.table_.items()], columns=list(ROW_COLUMNS)
    )


register_kind(
    EstimatorKind(
        "lut",
        _make,
        _payload,
        _predict,
        tabular=False,
        table_rows=_rows,
        description="per layer key, the measured statistic (FBNet / Single-Path NAS lookup table)",
    )
)
