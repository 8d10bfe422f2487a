"""Cost models: scikit-learn estimators that turn measurements into costs a search can use.

- ``base``: the CostModel contract (sklearn estimator + ``predict_interval`` + model = Σ layers + overhead).
- ``lut``, ``linear`` (HyperPower eq. 3.2–3.3), ``boosted`` (sklearn / xgboost, per op kind), ``analytic``
  (FLOPs-proportional, roofline, model FLOPs/params/memory).
- ``features``: LayerSpec features and the tabular featurizer registry (``nb201-*`` names are lazy).
- ``data``: training data from the store or a file; splits by architecture.
- ``fitting``: fit with held-out validation, evaluate, plot (what ``hwnas fit`` / ``evaluate`` run).
- ``export``: cost tables as JSON / CSV / Parquet (``save_cost_table`` / ``load_cost_table``).
- ``torch_costs``: differentiable costs (expected cost, Single-Path runtime, effective-shape FLOPs).
- ``metrics``: RMSPE, MAPE, ±5/±10 %, Kendall τ, Spearman ρ.
"""
