"""Adaptive DNNs (Stamoulis thesis ch. 4): a cascade of networks with score-margin exits, designed jointly
with its thresholds by BO / BO+ under an energy or an error budget, locally or split edge/server."""

from hwnas.searchers.adaptive.candidates import (
    DesignData,
    NetworkFamily,
    NetworkTrainer,
    TrainedNetwork,
    describe,
    load_design_data,
)
from hwnas.searchers.adaptive.links import PRESETS, LinkModel, link_from
from hwnas.searchers.adaptive.problem import AdaptiveProblem, DesignPoint, NetworkCosts, theta_grid
from hwnas.searchers.adaptive.search import (
    AdaptiveBO,
    best_design,
    grid_design,
    pareto_front,
    run_design,
    static_design,
)
from hwnas.searchers.adaptive.system import (
    CascadeResult,
    StageCost,
    evaluate_cascade,
    local_stage_cost,
    remote_stage_cost,
    score_margin,
    sweep_cascade,
)

__all__ = [
    "PRESETS",
    "AdaptiveBO",
    "AdaptiveProblem",
    "CascadeResult",
    "DesignData",
    "DesignPoint",
    "LinkModel",
    "NetworkCosts",
    "NetworkFamily",
    "NetworkTrainer",
    "StageCost",
    "TrainedNetwork",
    "best_design",
    "describe",
    "evaluate_cascade",
    "grid_design",
    "link_from",
    "load_design_data",
    "local_stage_cost",
    "pareto_front",
    "remote_stage_cost",
    "run_design",
    "score_margin",
    "static_design",
    "sweep_cascade",
    "theta_grid",
]
