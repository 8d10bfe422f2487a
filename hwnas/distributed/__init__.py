"""Running trials and profiling jobs elsewhere: an executor seam, local or on Ray.

- :mod:`hwnas.distributed.executor`: the ``Executor`` contract (submit a job, collect what finished) and
  the in-process ``LocalExecutor``;
- :mod:`hwnas.distributed.ray_executor`: the same on a Ray cluster (``ray`` is the ``[distributed]`` extra,
  imported only when a Ray executor is made); a job that dies with its worker is retried by Ray up to
  ``retries`` times, then reported failed;
- :mod:`hwnas.distributed.search_loop`: the ask/tell loop with several trials in flight, every finished
  trial journalled in the store, and resume from that journal;
- :mod:`hwnas.distributed.fleet`: one profiling job per device, each on the node that owns the device.
"""
