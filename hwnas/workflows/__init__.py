"""Workflows: the library functions behind each CLI command, so that scripts and benchmarks run the same
steps the CLI runs. A workflow wires parts together (an objective, a cost predictor, a profiler-backed
cost function, a searcher); it never prints or exits. Only the CLI imports it.

- :mod:`hwnas.workflows.search`: ``hwnas search`` / ``compare-searchers`` (objective, cost predictor from
  ``--table`` or fitted, the run, the summary).
"""

from hwnas.plugins import load as _load_plugins

_load_plugins()
