"""Cost models: scikit-learn estimators that turn measurements into costs a search can use.

- ``base``: the CostModel contract (sklearn estimator + ``predict_interval`` + model = Σ layers + overhead).
- ``lut``, ``linear`` (HyperPower eq. 3.2–3.3), ``boosted`` (sklearn / xgboost, per op kind), ``analytic``
  (FLOPs-proportional, roofline, model FLOPs/params/memory).
- ``interface``: the CostPredictor / CostEstimate contract searchers accept; ``predictors``: every cost
  path as one (cost tables, per-architecture cost files, fitted models).
- ``kinds``: the estimator-kind registry (one file per kind: build, payload, predict).
- ``features``: LayerSpec features and the tabular featurizer registry (spaces' featurizers are handed in
  by ``hwnas.plugins``).
- ``fewshot``: few-shot latency of a new device from k measured cells (its space handed in likewise).
- ``data``: training data from the store or a file; splits by architecture.
- ``fitting``: fit with held-out validation, evaluate, plot (what ``hwnas fit`` / ``evaluate`` run).
- ``export``: cost tables as JSON / CSV / Parquet (``save_cost_table`` / ``load_cost_table``).
- ``torch_costs``: differentiable costs (expected cost, Single-Path runtime, effective-shape FLOPs).
- ``metrics``: RMSPE, MAPE, ±5/±10 %, Kendall τ, Spearman ρ.
"""
