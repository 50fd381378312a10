"""Clone-censor-weight: emulate a target trial of "treat within a grace
period G (while eligible)" vs "never treat".

Every patient is cloned into both strategies at time zero, so the arms are
identical at baseline and no follow-up is immortal. A clone is censored when
its patient's data deviate from its strategy:

* "never treat": censored at treatment start;
* "treat within G": censored at G if still alive, untreated and eligible at
  G. A patient who dies, is lost, or stops being eligible (e.g. progresses,
  with ``require_event_free: pfs``) untreated before G follows the strategy
  and is not censored.

Artificial censoring depends on prognosis (only fit patients are treated),
so uncensored clones are weighted by the inverse probability of remaining
uncensored given the confounders (IPCW), from a model of the hazard of
starting treatment among those at risk of it (:class:`TreatmentHazard`):

* never-treat clone at time t: ``w = 1 / S_A(min(t, loss of eligibility) | x)``;
* treat clone treated by G, after G: ``w = 1 / P(treated by G | x)``, the
  probability from a logistic regression fitted among the clones that
  could deviate at G (alive at G, and treated or still eligible); ``w = 1``
  during the grace period and for clones that died or lost eligibility
  untreated within it (they follow the strategy and are never censored).

A strategy cannot be emulated for patients who never receive it: binary
confounder levels at which nobody starts treatment (e.g. a contraindication)
are excluded from both arms by default (``positivity: restrict``), and the
flow says how many.

Rows are split where the weights change, so weights are piecewise constant
and a weighted Kaplan–Meier / Cox with delayed entry uses them directly.
"""
from __future__ import annotations

import numpy as np

from causal_hcc.base import Design, DesignData, Option
from causal_hcc.design._common import (
    TreatmentHazard,
    event_time_of,
    fmt_num,
    outcome_arrays,
    split_at,
    split_until,
    prob_treated_by,
    unsupported_levels,
    treatment_times,
    truncate_weights,
    weight_summary,
)
from causal_hcc.strategies import register_design

_WHY_NOT = ("clone-censor-weight handles confounding of the artificial censoring with its own inverse-probability-"
            "of-censoring weights, and both clones of a patient share the baseline covariates, so a treatment "
            "propensity model or outcome model on top does not apply")


def clone_censor_data(cohort, outcome: str, grace: float, *, require_event_free: str | None = None,
                      censoring_model: str = "cox", censoring_grid: float | None = None,
                      truncate: float | None = None, positivity: str = "restrict",
                      design: str = "clone_censor") -> DesignData:
    """Cloned, artificially censored and IPC-weighted rows.

    Returns DesignData with ``unit`` = clone (patient for never-treat,
    n + patient for treat-within-G), ``patient`` = patient, ``weight`` =
    IPCW, ``treatment`` = 1 for the treat-within-G arm.
    """
    T, E = outcome_arrays(cohort, outcome)
    tt = treatment_times(cohort, design)
    n = T.shape[0]
    X = np.asarray(cohort.X, dtype=float)
    state = event_time_of(cohort, require_event_free, design) if require_event_free else np.full(n, np.inf)
    keep = T > 0
    names = list(cohort.confounder_columns)
    started = np.isfinite(tt) & (tt < T) & (np.where(np.isfinite(tt), tt, np.inf) <= state)
    unsupported = unsupported_levels(X[keep], started[keep])
    no_support = np.zeros(n, dtype=bool)
    for j, level in unsupported:
        no_support |= X[:, j] == level
    if positivity == "restrict":
        keep &= ~no_support
    model = TreatmentHazard(censoring_model, censoring_grid).fit(T[keep], tt[keep], state[keep], X[keep], design)
    eps = model.eps_
    treated_fu = np.isfinite(tt) & (tt < T)          # treated during follow-up (tmerge convention)
    t_trt = np.where(treated_fu, np.maximum(tt, eps), np.inf)

    # ---- never treat: censored at treatment ----------------------------------
    stop0 = np.minimum(T, t_trt)
    ev0 = np.where(treated_fu, 0, E).astype(np.int8)
    # ---- treat within G ------------------------------------------------------
    in_grace = treated_fu & (tt <= grace)
    lost_elig = (~in_grace) & (state <= grace) & (state < T)
    deviates = (~in_grace) & (T > grace) & ~lost_elig
    stop1 = np.where(deviates, grace, T)
    ev1 = np.where(deviates, 0, E).astype(np.int8)

    idx = np.flatnonzero(keep)
    cuts = model.cut_points()
    # never-treat rows, split where the weight changes (before loss of eligibility)
    r0, a0, b0 = split_until(stop0[idx], state[idx], cuts)   # weights frozen once ineligible
    p0 = idx[r0]
    H0 = model.cumhaz(np.minimum(a0, state[p0]), X[p0])
    w0 = np.exp(H0)
    last0 = np.r_[r0[1:] != r0[:-1], True]
    e0 = np.where(last0, ev0[p0], 0).astype(np.int8)
    # treat-within-G rows: split at G for those treated in grace and followed beyond G
    r1, a1, b1 = split_at(np.zeros(idx.size), stop1[idx], np.array([grace]))
    p1 = idx[r1]
    last1 = np.r_[r1[1:] != r1[:-1], True]
    e1 = np.where(last1, ev1[p1], 0).astype(np.int8)
    # treat arm: at the end of grace, clones alive and treated or still eligible could deviate;
    # the treated ones stand for all of them: w = 1 / P(treated by G | x, at risk at G)
    at_risk_G = keep & (T > grace) & (in_grace | ~lost_elig)
    pG = np.ones(n)
    if at_risk_G.any():
        pG[at_risk_G] = prob_treated_by(X[at_risk_G], in_grace[at_risk_G])
    after = (a1 >= grace) & in_grace[p1]
    w1 = np.where(after, 1.0 / np.maximum(pG[p1], 1e-12), 1.0)

    start = np.concatenate([a0, a1])
    stop = np.concatenate([b0, b1])
    event = np.concatenate([e0, e1])
    arm = np.concatenate([np.zeros(a0.size, np.int8), np.ones(a1.size, np.int8)])
    patient = np.concatenate([p0, p1])
    unit = np.concatenate([p0, n + p1])
    w_raw = np.concatenate([w0, w1])
    w, n_trunc = truncate_weights(w_raw, truncate)
    ok = stop > start
    arm_names = ("never treat", f"treat within {fmt_num(grace)}")
    flow = [("patients in cohort", n)]
    if positivity == "restrict" and no_support.any():
        lv = ", ".join(f"{names[j]}={v:g}" for j, v in unsupported)
        flow.append((f"excluded: nobody with {lv} started treatment (no support for the strategy)",
                     int(no_support.sum())))
    k = keep
    flow += [
        ("clones per arm", int(k.sum())),
        (f"{arm_names[0]}: censored at treatment start", int((treated_fu & k).sum())),
        (f"{arm_names[0]}: of whom treated at time zero", int((treated_fu & (tt <= 0) & k).sum())),
        (f"{arm_names[1]}: treated within grace", int((in_grace & k).sum())),
        (f"{arm_names[1]}: event or censored untreated within grace (follow strategy)",
         int(((~in_grace) & (T <= grace) & k).sum())),
    ]
    if require_event_free:
        flow.append((f"{arm_names[1]}: {require_event_free} event untreated within grace (no longer eligible)",
                     int((lost_elig & (T > grace) & k).sum())))
    flow.append((f"{arm_names[1]}: censored at {fmt_num(grace)} (untreated, deviates)", int((deviates & k).sum())))

    data = DesignData(
        design=design, outcome=outcome, start=start[ok], stop=stop[ok], event=event[ok], treatment=arm[ok],
        X=X[patient[ok]], confounders=list(cohort.confounder_columns), patient=patient[ok], unit=unit[ok],
        weight=w[ok], flow=flow, arm_names=arm_names,
    )
    # artificial censoring over time, per arm (aggregate counts)
    edges = np.unique(np.quantile(np.r_[0.0, T[k]], np.linspace(0, 1, 9)))
    c0 = np.histogram(t_trt[treated_fu & k], bins=edges)[0]
    c1 = np.histogram(np.full(int((deviates & k).sum()), grace), bins=edges)[0]
    data.diagnostics["artificial_censoring"] = {"bins": [float(x) for x in edges],
                                                arm_names[0]: [int(x) for x in c0],
                                                arm_names[1]: [int(x) for x in c1]}
    wd = weight_summary(w[ok], unit[ok], n_trunc)
    wd.update({"estimand": "IPCW", "model": censoring_model, "truncate": truncate,
               "treatment_events_in_model": model.n_events_})
    if censoring_model == "cox" and model.zero_rules_:
        wd["structural_zero"] = [f"{names[j]}={lv:g}" for j, lv in model.zero_rules_]
    data.diagnostics["weights"] = wd
    data.notes.append(
        f"target trial: '{arm_names[1]}' (while eligible) vs '{arm_names[0]}'; each patient cloned into both "
        f"arms, clones censored when they deviate; IPC weights from a {censoring_model} model of treatment start "
        f"on the confounders{' (at risk only while ' + require_event_free + '-free)' if require_event_free else ''}")
    data.notes.append("clones of a patient are correlated: robust SEs cluster on the patient and the default "
                      "variance is the bootstrap over patients (never over clones)")
    if censoring_model == "cox" and model.zero_rules_:
        data.notes.append("no patient started treatment at " + ", ".join(wd["structural_zero"]) +
                          ": their treatment hazard is set to zero (no censoring weight)")
    if no_support.any():
        lv = ", ".join(f"{names[j]}={v:g}" for j, v in unsupported)
        if positivity == "restrict":
            data.notes.append(f"positivity: nobody with {lv} started treatment, so 'treat within "
                              f"{fmt_num(grace)}' has no support there; these {int(no_support.sum())} patients are "
                              "excluded from both arms (target population: patients who could be treated)")
        else:
            data.warnings.append(f"positivity: nobody with {lv} started treatment; the treat-within-"
                                 f"{fmt_num(grace)} arm cannot represent them after the grace period")
    if n_trunc:
        data.notes.append(f"IPC weights truncated at their {truncate:g} quantile ({n_trunc} rows)")
    if float(w[ok].max()) > 20:
        data.warnings.append(f"large IPC weights (max {float(w[ok].max()):.1f}): few clones carry their arm")
    return data


@register_design
class CloneCensor(Design):
    """Clone-censor-weight emulation of "treat within G" vs "never treat".

    Options: ``grace`` (G, time unit of the spec), ``require_event_free``
    (outcome or state column ending eligibility, e.g. ``pfs``: such a
    patient is no longer at risk of treatment nor of deviating),
    ``censoring_model`` (``cox`` or ``logistic``), ``censoring_grid``
    (interval width of the pooled logistic model), ``truncate`` (quantile
    at which weights are capped; none by default).

    Combines with ``none`` (weighted Cox HR, weighted KM curves, survival and
    RMST differences) and ``multivariable`` (weighted Cox conditional on the
    baseline confounders). Default variance: bootstrap over patients.

    References
    ----------
    Cain LE, Robins JM, Lanoy E, et al. When to start treatment? A systematic
    approach to the comparison of dynamic regimes using observational data.
    Int J Biostat 2010;6:Article 18.
    Hernán MA. How to estimate the effect of treatment duration on survival
    outcomes using observational data. BMJ 2018;360:k182.
    Maringe C, Benitez Majano S, Exarchakou A, et al. Reflection on modern
    methods: trial emulation in the presence of immortal-time bias. Assessing
    the benefit of major surgery for elderly lung cancer patients using
    observational data. Int J Epidemiol 2020;49:1719-29.
    """

    name = "clone_censor"
    requires = ("treatment_time",)
    description = "Target-trial emulation by cloning, artificial censoring at deviation and IPC weighting."
    references = ("Cain LE et al. Int J Biostat 2010;6:18.", "Hernán MA. BMJ 2018;360:k182.",
                  "Maringe C et al. Int J Epidemiol 2020;49:1719-29.")
    options = (
        Option("grace", "float", 3.0, "grace period G: the treat arm must start treatment by G", low=0.0,
               sweep=True),
        Option("require_event_free", "str", None,
               "outcome (e.g. pfs) or state-time column: after it, a patient is no longer eligible for treatment",
               nullable=True),
        Option("censoring_model", "str", "cox", "model of treatment start for the IPC weights",
               choices=("cox", "logistic")),
        Option("censoring_grid", "float", None, "interval width of the pooled logistic censoring model "
               "(default: 90th percentile of treatment times / 12)", low=1e-9, nullable=True),
        Option("truncate", "float", None, "cap weights at this quantile (e.g. 0.99); none by default",
               low=0.5, high=1.0, nullable=True),
        Option("positivity", "str", "restrict", "patients at binary confounder levels where nobody starts "
               "treatment: restrict (exclude from both arms) or keep (warn)", choices=("restrict", "keep")),
    )
    incompatible = {"psm": _WHY_NOT, "iptw": _WHY_NOT, "gformula": _WHY_NOT, "aiptw": _WHY_NOT}
    needs_bootstrap = True

    def label(self) -> str:
        return f"clone_censor({fmt_num(self.options_['grace'])})"

    def estimand_part(self) -> dict:
        o = self.options_
        ef = o["require_event_free"]
        return {"population": "all_positivity" if o["positivity"] == "restrict" else "all",
                "contrast": "within_grace_vs_never", "origin": "time_zero",
                "params": {"grace": o["grace"], "require_event_free": ef},
                "notes": (f"'while eligible': alive{' and ' + ef + '-free' if ef else ''}; a patient who dies "
                          f"or stops being eligible untreated within G follows both strategies",)}

    def fit(self, cohort, outcome: str) -> "CloneCensor":
        o = self.options_
        self.data_ = clone_censor_data(cohort, outcome, o["grace"], require_event_free=o["require_event_free"],
                                       censoring_model=o["censoring_model"], censoring_grid=o["censoring_grid"],
                                       truncate=o["truncate"], positivity=o["positivity"], design=self.name)
        return self
