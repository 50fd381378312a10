"""The report: Summary object, figures, Table 1 and the HTML/Markdown writer.

``write_report(result, folder, formats=("html", "md"))`` writes
``report.html`` (self-contained) and ``report.md`` (figures in
``figures/``) from an :class:`~causal_hcc.results.AnalysisResult`; it never
refits anything, so ``causal-hcc report RESULTS_DIR`` rebuilds it from
``results.json``.
"""
from __future__ import annotations

__all__ = ["write_report", "Summary", "table1"]


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
    raise AttributeError(name)
