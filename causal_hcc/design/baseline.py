"""The baseline design: follow-up from time zero, treated = ever treated.

This is the comparison the paper made. When treatment starts after time
zero it credits the treated arm with the time they had to survive to be
treated (immortal-time bias; Suissa 2008). It is kept as the reference row
of every report, never as a recommendation.
"""
from __future__ import annotations

import numpy as np

from causal_hcc.base import Design, DesignData
from causal_hcc.design._common import competing_codes, outcome_arrays
from causal_hcc.strategies import register_design


def baseline_data(cohort, outcome: str, design: str = "baseline") -> DesignData:
    """One row per patient, (0, time], arm = ever treated."""
    n = cohort.n
    idx = np.arange(n)
    t, e = outcome_arrays(cohort, outcome)
    a = np.asarray(cohort.treatment, dtype=np.int8)
    data = DesignData(
        design=design, outcome=outcome, start=np.zeros(n), stop=t, event=e, treatment=a,
        X=np.asarray(cohort.X, dtype=float), confounders=list(cohort.confounder_columns),
        patient=idx, unit=idx, weight=np.ones(n),
        flow=[("patients in cohort", n), ("treated (ever)", int(a.sum())), ("untreated", int(n - a.sum()))],
        competing=competing_codes(cohort, outcome),
    )
    tt = getattr(cohort, "treatment_time", None)
    if tt is not None:
        tt = np.asarray(tt, dtype=float)
        treated = a == 1
        if treated.any() and np.nanmax(np.where(treated, tt, 0.0)) > 0:
            data.notes.append(
                f"treatment started after time zero (median {np.nanmedian(tt[treated]):.2g} "
                f"{getattr(cohort, 'time_unit', None) or 'months'}) but is counted from time zero: immortal-time bias"
            )
    return data


@register_design
class Baseline(Design):
    """Follow-up from time zero; treated = treated at any time during follow-up.

    References
    ----------
    Suissa S. Immortal time bias in pharmaco-epidemiology. Am J Epidemiol 2008;167:492-9.
    """

    name = "baseline"
    description = "Follow-up from time zero; treated = ever treated (the paper's view; immortal-time biased)."
    references = ("Suissa S. Am J Epidemiol 2008;167:492-9.",)

    def estimand_part(self) -> dict:
        return {"population": "all", "contrast": "ever_vs_never", "origin": "time_zero", "causal": False,
                "notes": ("patients are classified at time zero by a treatment that came later: the months "
                          "they had to survive to be treated are credited to treatment (immortal time, "
                          "Suissa 2008)",)}

    def fit(self, cohort, outcome: str) -> "Baseline":
        self.options_  # validate
        self.data_ = baseline_data(cohort, outcome, self.name)
        return self
