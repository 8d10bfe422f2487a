"""scikit-learn's conformance suite over every hwnas cost model (STYLE.md §1)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from hwnas.cost_models.analytic import FlopsProportionalModel, RooflineModel
from hwnas.cost_models.boosted import BoostedCostModel
from hwnas.cost_models.linear import LinearCostModel
from hwnas.cost_models.lut import LUTCostModel

ESTIMATORS = [
    LinearCostModel(cv=3),
    LUTCostModel(fallback=LinearCostModel(cv=2)),
    BoostedCostModel(n_estimators=10, max_depth=2),
    BoostedCostModel(n_estimators=10, max_depth=2, group_column=0, min_group_size=5, quantiles=None),
    FlopsProportionalModel(flops_column=0),
    RooflineModel(peak_flops=1e9, memory_bandwidth_bytes_s=1e8, flops_column=0, bytes_columns=(0,)),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
