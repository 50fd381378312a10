"""The report: Summary object, figures, Table 1 and the HTML/Markdown/PDF writer.

``write_report(result, folder, formats=("html", "md"))`` writes
``report.html`` (self-contained), ``report.md`` (figures in ``figures/``)
and, with ``pdf``, ``report.pdf`` (the HTML printed by headless Chromium)
from an :class:`~causal_hcc.results.AnalysisResult`; it never refits
anything, so ``causal-hcc report RESULTS_DIR`` rebuilds it from
``results.json``.

Presentation takes the result as its argument (``results.py`` imports
nothing from here)::

    from causal_hcc.report import summary, plot_forest
    print(summary(result).as_text())
    ax = plot_forest(result)
"""
from __future__ import annotations

from typing import Any

__all__ = ["write_report", "Summary", "summary", "table1", "balance_table", "plot_forest", "plot_forest_grid",
           "plot_curves", "plot_love", "plot_landmark_sweep", "plot_flow", "plot_monte_carlo", "plot_propensity",
           "plot_weights", "plot_dag", "plot_schoenfeld"]

_FIGURES = ("plot_forest", "plot_forest_grid", "plot_curves", "plot_love", "plot_landmark_sweep", "plot_flow",
            "plot_monte_carlo", "plot_propensity", "plot_weights", "plot_dag", "plot_schoenfeld")


def summary(result: Any, outcome: str | None = None) -> Any:
    """The statsmodels-style :class:`~causal_hcc.report.summary.Summary` of a result (never prints)."""
    from causal_hcc.report.summary import Summary

    return Summary(result, outcome)


def __getattr__(name: str):  # lazy: importing the package must not pull in matplotlib
    if name == "write_report":
        from causal_hcc.report.render import write_report
        return write_report
    if name == "Summary":
        from causal_hcc.report.summary import Summary
        return Summary
    if name == "table1":
        from causal_hcc.report.table1 import table1
        return table1
    if name == "balance_table":
        from causal_hcc.report.tables import balance_table
        return balance_table
    if name in _FIGURES:
        from causal_hcc.report import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'causal_hcc.report' has no attribute '{name}'")


def __dir__() -> list[str]:
    """The public names (the lazy ones included), so that ``dir()`` and tab completion show them."""
    return sorted(set(globals()) | set(__all__))
