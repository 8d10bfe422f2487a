"""Profilers: one per backend, one interface, records written to the store as each job finishes.

- ``registry``: ``get_profiler(config)`` and ``availability(config)`` for every backend in
  ``hwnas.device_config.BACKENDS`` (imports backends lazily).
- ``base``: ``Profiler.profile(model, store, per_layer=, whole_model=, modes=, force=, progress=)``
  returning a ``ProfileResult``; resume = skip jobs whose records are stored.
- ``onnxruntime_cpu`` / ``torch_cpu``: the local CPU backends; ``probes``: availability of the others.
- ``timing`` (warm-up, adaptive repeats, median with an order-statistic CI), ``fingerprint``,
  ``memory`` (peak RSS in a child process), ``power/`` (energy windows, RAPL), ``ort_profile``
  (onnxruntime's profile JSON mapped to layers), ``report`` (tables from stored records).

Nothing is imported here, so ``import hwnas.profilers`` stays cheap.
"""
