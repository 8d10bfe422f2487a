"""`hwnas report`: one static HTML page from a store, cost tables and search histories.

Data first, drawing second (as ``hwnas.searchers.plot``): :mod:`hwnas.report.data` builds plain tables
(dataclasses of pandas frames and dicts) from the inputs, :mod:`hwnas.report.plots` draws them with
matplotlib, and :mod:`hwnas.report.html` writes the page. :func:`build_report` runs all three.
"""

from hwnas.report.build import build_report

__all__ = ["build_report"]
