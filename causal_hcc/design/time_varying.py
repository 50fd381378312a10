"""Treatment as a time-dependent covariate (counting-process form).

Each patient's follow-up (0, T] is split at the treatment time: untreated
before, treated after. This is R's ``tmerge(..., tdc(treatment_time))``: the
covariate switches on for the interval that *starts* at the treatment time,
so a patient treated at 0 is treated throughout, and a patient treated at
the event time (or later) is untreated throughout.
"""
from __future__ import annotations

import numpy as np

from causal_hcc.base import Design, DesignData, Option
from causal_hcc.design._common import competing_codes, event_time_of, outcome_arrays, score_test, treatment_times
from causal_hcc.errors import DataError
from causal_hcc.strategies import register_design

_WHY_NOT = ("treatment is time-varying here, so a baseline propensity score or an outcome model for a "
            "baseline treatment does not apply; use sequential_trials or clone_censor for a causal contrast")


def counting_process(T: np.ndarray, E: np.ndarray, switch_times: list[np.ndarray]):
    """Split (0, T] at each patient's switch times (tdc semantics).

    Returns ``(patient, start, stop, event, states)`` where ``states`` is a
    list of 0/1 arrays, one per entry of ``switch_times``: 1 on intervals
    starting at or after that switch time. Switch times <= 0 are on from the
    start; times >= T (or NaN/inf) never switch on. The event is on the last
    interval only. Follow-up times ``T`` must be > 0 (the caller drops the others).
    """
    n = T.shape[0]
    T = np.asarray(T, dtype=float)
    cuts = [np.where(np.isfinite(s), s, np.inf) for s in switch_times]
    # vectorised over patients: edges 0 <= switch times inside (0, T) <= T, one row per patient; a
    # switch outside (0, T) becomes T, so after sorting the row the pieces are the consecutive
    # pairs with b > a (which also drops a repeated switch time)
    inner = [np.where((c > 0) & (c < T), c, T).astype(float) for c in cuts]
    edges = np.sort(np.column_stack([np.zeros(n), *inner, T]), axis=1)
    lo, hi = edges[:, :-1], edges[:, 1:]
    ok = hi > lo
    patient = np.nonzero(ok)[0].astype(int)              # row-major: patients in order, pieces in time order
    start = lo[ok]
    stop = hi[ok]
    last = np.r_[patient[1:] != patient[:-1], True]
    event = np.where(last, E[patient], 0).astype(np.int8)
    states = [(start >= np.minimum(c, np.inf)[patient]).astype(np.int8) for c in cuts]
    return patient, start, stop, event, states


#: suffix of the time-varying covariate columns in the rows' ``X`` (the MSM reads them as time-varying)
TV_SUFFIX = " (time-varying)"


def time_varying_data(cohort, outcome: str, adjust_state: str | None = None,
                      design: str = "time_varying", adjust_time_varying: bool = False) -> DesignData:
    """Counting-process rows with treatment (and optionally a state, and the time-varying confounders) as tdc."""
    T, E = outcome_arrays(cohort, outcome)
    tt = treatment_times(cohort, design)
    switches = [tt]
    state = None
    if adjust_state:
        state = event_time_of(cohort, adjust_state, design)
        switches.append(state)
    keep = T > 0
    idx = np.flatnonzero(keep)
    patient, start, stop, event, states = counting_process(T[idx], E[idx], [s[idx] for s in switches])
    patient = idx[patient]
    trt = states[0]
    X = np.asarray(cohort.X, dtype=float)[patient]
    names = list(cohort.confounder_columns)
    if state is not None:
        X = np.column_stack([X, states[1].astype(float)])
        names.append(f"{adjust_state}{TV_SUFFIX}")
    if adjust_time_varying:
        tl = getattr(cohort, "timeline", None)
        if tl is None or not tl.columns:
            raise DataError(f"design '{design}': adjust_time_varying needs time_varying_confounders (a visits "
                            "table or person-period data); the cohort has none")
        # rows cut at each patient's measurement times (tmerge): the values known at each piece's start
        sp = tl.split(start, stop, patient)
        i = sp["interval"]
        patient, start, stop, trt = sp["row"], sp["start"], sp["stop"], trt[i]
        event = np.where(sp["last"], event[i], 0).astype(np.int8)
        X = np.column_stack([X[i], sp["values"]])
        names += [f"{c}{TV_SUFFIX}" for c in tl.columns]
    n = T.shape[0]
    ever = np.isfinite(tt) & (tt < T)
    flow = [("patients in cohort", n)]
    if (~keep).any():
        flow.append(("excluded: no follow-up (time 0)", int((~keep).sum())))
    flow += [("patients analysed", int(idx.size)),
             ("treated during follow-up (contribute treated time)", int(ever[idx].sum())),
             ("of whom treated at time zero", int((ever & (tt <= 0))[idx].sum())),
             ("never treated during follow-up", int((~ever[idx]).sum())),
             ("counting-process rows", int(stop.shape[0]))]
    data = DesignData(
        design=design, outcome=outcome, start=start, stop=stop, event=event, treatment=trt.astype(np.int8),
        X=X, confounders=names, patient=patient, unit=patient, weight=np.ones(stop.shape[0]),
        time_varying=True, flow=flow, arm_names=("untreated time", "treated time"),
        competing=competing_codes(cohort, outcome),
    )
    mb = score_test(start, stop, data.event, trt)   # of the event of interest (cause-specific)
    data.diagnostics["mantel_byar"] = {"chi2": mb["chi2"], "df": mb["df"], "p_value": mb["p_value"]}
    data.notes.append(
        "treatment is a time-dependent covariate: patients are untreated until treatment, then treated "
        "(Mantel-Byar); the HR compares current treatment status, with robust SE clustered on patient")
    data.notes.append(
        "curves are Simon-Makuch (Kaplan-Meier with delayed entry into the treated state): descriptive, "
        "not the survival of a population treated from time zero; so no survival/RMST differences are "
        "reported for this design")
    tied = int((np.isfinite(tt) & (tt == T) & keep).sum())
    if tied:
        data.notes.append(f"{tied} patients treated at their event/censoring time are analysed as untreated "
                          "(tmerge convention: treatment applies from the next interval)")
    if state is not None:
        data.notes.append(
            f"'{adjust_state}' enters as a time-varying covariate (used by adjustment 'multivariable'): if "
            "treatment affects it, it is a mediator and adjusting for it blocks part of the treatment effect")
    if adjust_time_varying:
        data.notes.append(
            "the time-varying confounders enter the rows with their current values (used by adjustment "
            "'multivariable'): a Cox model conditional on a time-varying confounder that treatment affects does "
            "not estimate the effect of treatment; adjustment 'msm' does")
    return data


@register_design
class TimeVarying(Design):
    """Treatment as a time-dependent covariate in (start, stop] form.

    Rows follow R's ``tmerge``/``tdc``. With adjustment ``none``: Cox HR of
    current treatment with robust SE clustered on patient, the Mantel–Byar
    test (score test of that Cox model; ``diagnostics['design']['mantel_byar']``)
    and Simon–Makuch curves. With ``multivariable``: baseline confounders and,
    with ``adjust_state``, a time-varying state (e.g. progression).
    Refuses psm, iptw, gformula and aiptw.

    References
    ----------
    Mantel N, Byar DP. JASA 1974;69:81-6.
    Simon R, Makuch RW. A non-parametric graphical representation of the
    relationship between survival and the occurrence of an event. Stat Med
    1984;3:35-44.
    Suissa S. Immortal time bias in pharmaco-epidemiology. Am J Epidemiol
    2008;167:492-9.
    Therneau T, Crowson C, Atkinson E. Using time dependent covariates and
    time dependent coefficients in the Cox model. survival vignette.
    """

    name = "time_varying"
    requires = ("treatment_time",)
    description = "Treatment as a time-dependent covariate (counting process, Mantel-Byar, Simon-Makuch curves)."
    references = ("Mantel N, Byar DP. JASA 1974;69:81-6.", "Simon R, Makuch RW. Stat Med 1984;3:35-44.",
                  "Suissa S. Am J Epidemiol 2008;167:492-9.")
    options = (
        Option("adjust_state", "str", None,
               "outcome (e.g. pfs) or state-time column added as a time-varying covariate (mediator caveat)",
               nullable=True),
        Option("adjust_time_varying", "bool", False,
               "add the current values of the time_varying_confounders to the rows (adjustment multivariable "
               "then conditions on them: the wrong answer when treatment affects them; shown for comparison "
               "with msm, which uses them for weights whatever this option says)"),
    )
    incompatible = {"psm": _WHY_NOT, "iptw": _WHY_NOT, "gformula": _WHY_NOT, "aiptw": _WHY_NOT}

    def label(self) -> str:
        o = self.options_
        parts = [p for p in (o["adjust_state"], "tv" if o["adjust_time_varying"] else None) if p]
        return f"time_varying({','.join(parts)})" if parts else "time_varying"

    def estimand_part(self) -> dict:
        s = self.options_["adjust_state"]
        notes = ["Simon-Makuch curves are descriptive: differences between them are not causal contrasts"]
        if s:
            notes.append(f"conditional on the current {s} state (a mediator where treatment affects it)")
        else:
            notes.append("without adjust_state, treated patients (treatable only in a favourable state, e.g. "
                         "progression-free) are compared with not-yet-treated patients of a worse state mix: "
                         "confounded by that time-varying state")
        part = {"population": "all", "contrast": "structural", "origin": "time_zero", "scale": "conditional",
                "descriptive_curves": True, "params": {"adjust_state": s}, "notes": tuple(notes)}
        if self.options_["adjust_time_varying"]:
            part["params"]["adjust_time_varying"] = True
            part["conditions_on_time_varying"] = "the current values of the time-varying confounders"
        return part

    def fit(self, cohort, outcome: str) -> "TimeVarying":
        o = self.options_
        self.data_ = time_varying_data(cohort, outcome, o["adjust_state"], self.name, o["adjust_time_varying"])
        return self
