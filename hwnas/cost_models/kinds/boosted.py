"""Kinds ``boosted`` (scikit-learn) and ``xgboost``: gradient-boosted per-op-kind predictors (nn-Meter).
Both write the same payload (trees as arrays, or xgboost's JSON model) and band from quantile boosters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwnas.cost_models.kinds import EstimatorKind, columns, register_kind


def _maker(backend: str) -> Any:
    def make(*, seed: int = 0, n_estimators: int = 300, tabular: bool = False, **_: Any) -> Any:
        from hwnas.cost_models.boosted import BoostedCostModel

        return BoostedCostModel(
            backend=backend,
            n_estimators=n_estimators,
            group_column=None if tabular else "op_code",
            random_state=seed,
        )

    return make


def _predict(payload: dict[str, Any], frame: pd.DataFrame, cache: dict[int, Any] | None) -> Any:
    from hwnas.cost_models.boosted import payload_predict

    X = columns(frame, payload["feature_names"])
    point = payload_predict(payload, X, "point", cache)
    if "lo" not in payload["groups"]["*"]:
        return point
    lo = payload_predict(payload, X, "lo", cache)
    hi = payload_predict(payload, X, "hi", cache)
    return point, np.minimum(lo, point), np.maximum(hi, point)


def _payload(est: Any) -> dict[str, Any]:
    return est.to_payload()


register_kind(
    EstimatorKind(
        "boosted",
        _maker("sklearn"),
        _payload,
        _predict,
        description="gradient boosting per op kind, quantile band (nn-Meter kernel predictors)",
    )
)
register_kind(
    EstimatorKind(
        "xgboost",
        _maker("xgboost"),
        _payload,
        _predict,
        payload_kind="boosted",
        description="as boosted, with the xgboost backend",
    )
)
