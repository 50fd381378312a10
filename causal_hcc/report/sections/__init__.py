"""The report's sections, one module each, in the order they appear.

Each module has ``build(ctx) -> dict | None`` (the section's numbers and
figures, or None when the result has nothing for it) and two templates,
``templates/html/<name>.j2`` and ``templates/md/<name>.j2``. ``ctx`` is a
:class:`causal_hcc.report.render.Context`: the result, the figure set, the
primary outcome and the time unit. A section reads only the result; nothing
is refitted, except the survival tables that the pipeline stored.
"""
from __future__ import annotations

#: (section id, module, title) in report order; the id is the HTML anchor and the template name
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("findings", "findings", "Findings"),
    ("target_trial", "target_trial", "Target-trial specification"),
    ("comparison", "estimates", "The comparison"),
    ("monte_carlo", "monte_carlo", "Monte Carlo: bias and coverage over simulated cohorts"),
    ("truth", "truth", "Against the known truth"),
    ("cohort", "cohort", "The cohort"),
    ("balance", "balance", "Balance before and after adjustment"),
    ("curves", "curves", "Survival curves and absolute risks"),
    ("competing", "competing", "Competing risks: cumulative incidence"),
    ("diagnostics", "diagnostics", "Diagnostics"),
    ("sensitivity", "sensitivity", "Sensitivity to unmeasured confounding"),
    ("audit", "audit", "Audit of the published statistics"),
    ("methods", "methods", "Methods and limitations"),
    ("header", "run_info", "Run"),
)
#: the sections of the summary (one or two pages); every other section is in the appendix
SUMMARY_SECTIONS: tuple[str, ...] = ("findings", "target_trial")
