"""Profilers: one per backend, one interface (``profile(model_or_layers, config) -> Measurements``)."""
