"""Kinds ``flops`` (y = c · FLOPs + b) and ``roofline`` (max of compute and memory time, one fitted
scale): analytic models that need little or no data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.kinds import EstimatorKind, columns, register_kind
from hwnas.errors import InputError


def _make_flops(**_: Any) -> Any:
    from hwnas.cost_models.analytic import FlopsProportionalModel

    return FlopsProportionalModel()


def _flops_payload(est: Any) -> dict[str, Any]:
    p = est.to_payload()
    names = getattr(est, "feature_names_in_", None)
    col = p["column"] if isinstance(p["column"], str) or names is None else str(names[p["column"]])
    return {"column": col, "coef": p["coef"], "intercept": p["intercept"]}


def _flops_predict(payload: dict[str, Any], frame: pd.DataFrame, cache: dict[int, Any] | None) -> np.ndarray:
    return float(payload["coef"]) * columns(frame, [payload["column"]])[:, 0] + float(payload["intercept"])


def _make_roofline(*, device_config: Any = None, **_: Any) -> Any:
    from hwnas.cost_models.analytic import RooflineModel

    if device_config is None:
        raise InputError("the roofline model needs a device config", hint="pass --device NAME")
    return RooflineModel.from_device_config(device_config, calibrate=True)


def _roofline_predict(
    payload: dict[str, Any], frame: pd.DataFrame, cache: dict[int, Any] | None
) -> np.ndarray:
    f = columns(frame, [str(payload["flops_column"])])[:, 0]
    b = columns(frame, [str(c) for c in payload["bytes_columns"]]).sum(axis=1)
    return (
        payload["scale"]
        * 1000.0
        * np.maximum(f / payload["peak_flops"], b / payload["memory_bandwidth_bytes_s"])
    )


register_kind(
    EstimatorKind(
        "flops",
        _make_flops,
        _flops_payload,
        _flops_predict,
        description="cost proportional to FLOPs (the usual proxy; the baseline to beat)",
    )
)
register_kind(
    EstimatorKind(
        "roofline",
        _make_roofline,
        lambda est: est.to_payload(),
        _roofline_predict,
        tabular=False,
        description="roofline from the device config's peak FLOP/s and bandwidth, one calibrated scale",
    )
)
