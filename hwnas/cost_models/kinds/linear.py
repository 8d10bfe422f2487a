"""Kind ``linear``: HyperPower's linear models (thesis eq. 3.2–3.3) as coefficients by column name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.kinds import EstimatorKind, columns, register_kind


def _make(*, seed: int = 0, **_: Any) -> Any:
    from hwnas.cost_models.linear import LinearCostModel

    return LinearCostModel(random_state=seed)


def _predict(payload: dict[str, Any], frame: pd.DataFrame, cache: dict[int, Any] | None) -> np.ndarray:
    X = columns(frame, payload["feature_names"])
    return X @ np.asarray(payload["coef"], float) + float(payload["intercept"])


register_kind(
    EstimatorKind(
        "linear",
        _make,
        lambda est: est.to_payload(),
        _predict,
        description="least squares in the features, 10-fold CV band (HyperPower eq. 3.2-3.3)",
    )
)
