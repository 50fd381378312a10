"""Fast survival core (numpy): Cox regression, Kaplan-Meier, log-rank, RMST.

All numbers match R ``survival`` (coxph, survfit, survdiff); see
tests/reference/core_cox.R for the reference script.
"""
from __future__ import annotations

from causal_hcc.core.cox import CoxFit, coxph
from causal_hcc.core.km import KMFit, kaplan_meier, rmst_difference
from causal_hcc.core.logrank import LogRankResult, logrank

__all__ = ["CoxFit", "coxph", "KMFit", "kaplan_meier", "rmst_difference", "LogRankResult", "logrank"]
