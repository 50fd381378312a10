"""The landmark design: follow-up restarts at a landmark time L.

Everyone still alive and under follow-up at L (and, optionally, free of an
intermediate event such as progression) enters; the arm is fixed by the
treatment status at L. Treatment after L does not change the arm, so the
estimate is "treated by L vs not yet treated by L" among survivors to L.
"""
from __future__ import annotations

import numpy as np

from causal_hcc.base import Design, DesignData, Option
from causal_hcc.design._common import (competing_codes, event_free_at, event_time_of, fmt_num, outcome_arrays,
                                       treatment_times)
from causal_hcc.errors import EstimationError
from causal_hcc.strategies import register_design


def landmark_data(cohort, outcome: str, L: float, require_event_free: str | None = None,
                  design: str = "landmark") -> DesignData:
    """One row per patient at risk at ``L``: (0, T - L], arm = treated by L.

    Parameters
    ----------
    cohort : Cohort
    outcome : str
        Outcome analysed (its time is measured from time zero).
    L : float
        Landmark, in the cohort's time unit.
    require_event_free : str, optional
        Outcome (``"pfs"``) or state-time column whose event must not have
        occurred by ``L``.
    """
    T, E = outcome_arrays(cohort, outcome)
    tt = treatment_times(cohort, design)
    n = T.shape[0]
    at_risk = T > L
    flow: list[tuple[str, int]] = [("patients in cohort", n)]
    died = (~at_risk) & (E > 0)   # any event (a competing one too) ends follow-up before L
    flow.append((f"excluded: event by landmark {fmt_num(L)}", int(died.sum())))
    flow.append((f"excluded: censored by landmark {fmt_num(L)}", int(((~at_risk) & (E == 0)).sum())))
    keep = at_risk.copy()
    if require_event_free:
        st = event_time_of(cohort, require_event_free, design)
        not_free = keep & ~event_free_at(st, L)
        flow.append((f"excluded: {require_event_free} event by landmark {fmt_num(L)}", int(not_free.sum())))
        keep &= ~not_free
    idx = np.flatnonzero(keep)
    treated = np.isfinite(tt[idx]) & (tt[idx] <= L)
    later = np.isfinite(tt[idx]) & (tt[idx] > L)
    flow += [("at risk at landmark", int(idx.size)), ("treated by landmark", int(treated.sum())),
             ("untreated at landmark", int((~treated).sum())),
             ("of whom treated after landmark (analysed as untreated)", int(later.sum()))]
    if idx.size == 0:
        raise EstimationError(f"design '{design}': nobody is at risk at landmark {fmt_num(L)} for outcome '{outcome}'")
    data = DesignData(
        design=design, outcome=outcome, start=np.zeros(idx.size), stop=T[idx] - L, event=E[idx].astype(np.int8),
        treatment=treated.astype(np.int8), X=np.asarray(cohort.X, dtype=float)[idx],
        confounders=list(cohort.confounder_columns), patient=idx, unit=idx, weight=np.ones(idx.size),
        time_origin=float(L), flow=flow, competing=competing_codes(cohort, outcome),
    )
    data.notes.append(f"landmark at {fmt_num(L)}: follow-up and curves start at the landmark; "
                      f"{int(treated.sum())} treated by {fmt_num(L)} vs {int((~treated).sum())} not")
    if later.any():
        data.notes.append(f"{int(later.sum())} patients treated after the landmark are analysed as untreated "
                          "(arm fixed at the landmark; this biases towards the null if treatment works)")
    early_dead = int((died & np.isfinite(tt) & (tt <= T)).sum())
    if early_dead:
        data.notes.append(f"{early_dead} treated patients had the event before the landmark and are excluded")
    if treated.sum() < 5:
        data.warnings.append(f"only {int(treated.sum())} patients treated by landmark {fmt_num(L)}")
    return data


@register_design
class Landmark(Design):
    """Landmark analysis: compare treated-by-L vs not among those at risk at L.

    Options
    -------
    landmark : float (sweepable: ``landmark: [1, 3, 6]`` gives one strategy each)
    require_event_free : str or None
        Outcome name (``"pfs"``) or a state-time column; patients with that
        event by L are excluded (e.g. surgery needs a progression-free patient).

    Combines with every adjustment (one row per patient): none,
    multivariable, psm, iptw, gformula, aiptw.

    References
    ----------
    Anderson JR, Cain KC, Gelber RD. Analysis of survival by tumor response.
    J Clin Oncol 1983;1:710-9.
    Dafni U. Landmark analysis at the 25-year landmark point. Circ Cardiovasc
    Qual Outcomes 2011;4:363-71.
    """

    name = "landmark"
    requires = ("treatment_time",)
    description = "Follow-up from landmark L for those at risk at L; treated = treated by L."
    references = ("Anderson JR, Cain KC, Gelber RD. J Clin Oncol 1983;1:710-9.",
                  "Dafni U. Circ Cardiovasc Qual Outcomes 2011;4:363-71.")
    options = (
        Option("landmark", "float", 3.0, "landmark time L (time unit of the spec); a list runs a sweep",
               low=0.0, sweep=True),
        Option("require_event_free", "str", None,
               "outcome (e.g. pfs) or state-time column that must be event-free at L", nullable=True),
    )

    def label(self) -> str:
        o = self.options_
        extra = f",{o['require_event_free']}-free" if o["require_event_free"] else ""
        return f"landmark({fmt_num(o['landmark'])}{extra})"

    def estimand_part(self) -> dict:
        o = self.options_
        ef = o["require_event_free"]
        notes = ["patients treated after L count as untreated (usual care after the landmark)"]
        if ef:
            notes.append(f"eligibility requires being {ef}-free at L: for patients treated before L this "
                         f"selects on an event after treatment (unbiased only if treatment does not affect it)")
        return {"population": "at_risk_L", "contrast": "by_L_vs_not_yet", "origin": "landmark",
                "params": {"landmark": o["landmark"], "require_event_free": ef}, "notes": tuple(notes)}

    def fit(self, cohort, outcome: str) -> "Landmark":
        o = self.options_
        self.data_ = landmark_data(cohort, outcome, o["landmark"], o["require_event_free"], self.name)
        return self
