"""Fast survival core (numpy): Cox regression, Kaplan-Meier, log-rank, RMST.

All numbers match R ``survival`` (coxph, survfit, survdiff); see
tests/reference/core_cox.R for the reference script.
"""
from __future__ import annotations

from causal_hcc.core.cox import CoxFit, coxph

__all__ = ["CoxFit", "coxph"]
