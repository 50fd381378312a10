"""Sensitivity to unmeasured confounding: E-values, tipping points, a causal
graph's back-door set, and refuters adapted to censored-survival strategies.

Everything here works on aggregate numbers (estimates, curves) except the
refuters, which re-run a :class:`~causal_hcc.strategies.Strategy` on a
modified copy of a :class:`~causal_hcc.cohort.Cohort` (the caller's cohort
and DataFrame are never changed) and return aggregate numbers only.

References
----------
.. [1] VanderWeele TJ, Ding P. Sensitivity analysis in observational
   research: introducing the E-value. *Ann Intern Med* 2017;167:268-274.
.. [2] VanderWeele TJ. Optimal approximate conversions of odds ratios and
   hazard ratios to risk ratios. *Biometrics* 2020;76:746-752.
.. [3] Lin DY, Psaty BM, Kronmal RA. Assessing the sensitivity of regression
   results to unmeasured confounders in observational studies. *Biometrics*
   1998;54:948-963.
.. [4] Sharma A, Kiciman E. DoWhy: an end-to-end library for causal
   inference. arXiv:2011.04216, 2020 (identification and refuters).
.. [5] Pearl J. *Causality*, 2nd ed. Cambridge University Press, 2009
   (back-door criterion).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from causal_hcc.base import Targets
from causal_hcc.errors import EstimationError, SpecError, short
from causal_hcc.results import EffectEstimate

__all__ = [
    "EValue", "evalue", "hr_to_rr", "evalue_for_estimate", "outcome_is_common", "evalues_for_result",
    "competing_risk_at_end",
    "tipping_point", "identify_adjustment_set", "refute_placebo", "refute_random_common_cause",
    "refute_subset", "REFUTERS", "run_refuters",
]

#: cumulative incidence above which an outcome counts as common (VanderWeele 2020 uses 15%)
COMMON_OUTCOME_THRESHOLD = 0.15


# ---------------------------------------------------------------------------
# E-values
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EValue:
    """E-value of one estimate.

    ``point`` is the E-value of the point estimate, ``ci`` that of the CI
    limit nearer the null (1.0 when the CI covers the null). ``rr``,
    ``rr_ci`` are the risk ratios they were computed from (after any
    conversion) and ``conversion`` says which (``"none"``, ``"hr-rare"``,
    ``"hr-common"``, ``"survival-difference"``).
    """

    point: float
    ci: float
    rr: float
    rr_ci: float
    conversion: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rr_evalue(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017, eq. 1); symmetric in 1/RR."""
    if not (rr > 0) or not math.isfinite(rr):
        return math.nan
    r = rr if rr >= 1 else 1.0 / rr
    return r + math.sqrt(r * (r - 1.0))


def hr_to_rr(hr: float, rare: bool) -> float:
    """Risk ratio approximating a hazard ratio.

    A rare outcome (< 15% at the end of follow-up) keeps ``RR = HR``; a common
    one uses VanderWeele's (2020) conversion
    ``RR = (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR))``.

    References
    ----------
    .. [1] VanderWeele TJ. Optimal approximate conversions of odds ratios and
       hazard ratios to risk ratios. *Biometrics* 2020;76:746-752.
    """
    if not (hr > 0) or not math.isfinite(hr):
        return math.nan
    if rare:
        return float(hr)
    return (1.0 - 0.5 ** math.sqrt(hr)) / (1.0 - 0.5 ** math.sqrt(1.0 / hr))


def evalue(estimate: float, ci_lower: float | None = None, ci_upper: float | None = None, *,
           measure: str = "rr", rare: bool = True, null: float = 1.0) -> EValue:
    """E-value of a ratio estimate and of its CI limit nearer the null.

    Parameters
    ----------
    estimate, ci_lower, ci_upper : float
        The ratio and its confidence limits (limits may be None/NaN).
    measure : {"rr", "hr"}
        ``"hr"`` converts hazard ratios to risk ratios first (:func:`hr_to_rr`).
    rare : bool
        Only for ``"hr"``: whether the outcome is rare (< 15%) by the end of
        follow-up. A common outcome uses the square-root conversion.
    null : float
        The ratio under no effect (1).

    Returns
    -------
    EValue
        ``ci`` is 1 when the CI covers the null (no confounding is needed to
        move it there), NaN when no CI was given.

    References
    ----------
    .. [1] VanderWeele TJ, Ding P. Sensitivity analysis in observational
       research: introducing the E-value. *Ann Intern Med* 2017;167:268-274.
    .. [2] VanderWeele TJ. Optimal approximate conversions of odds ratios and
       hazard ratios to risk ratios. *Biometrics* 2020;76:746-752.
    .. [3] Mathur MB, Ding P, Riddell CA, VanderWeele TJ. Website and R package
       for computing E-values. *Epidemiology* 2018;29:e45-e47 (``evalues.HR``).
    """
    if measure not in ("rr", "hr"):
        raise SpecError(f"evalue: measure must be one of rr, hr, got {measure!r}")
    if not (estimate > 0):
        raise EstimationError(f"evalue: a ratio estimate must be > 0, got {estimate!r}")
    conv = (lambda v: hr_to_rr(v, rare)) if measure == "hr" else (lambda v: float(v))
    # the null is moved to 1 by dividing (Mathur et al.'s "true" argument)
    lo = None if ci_lower is None or not np.isfinite(ci_lower) else float(ci_lower) / null
    hi = None if ci_upper is None or not np.isfinite(ci_upper) else float(ci_upper) / null
    if lo is not None and hi is not None and lo <= estimate / null <= hi:
        # both limits: the audit's implementation (causal_hcc.audit.evalue) does the arithmetic
        from causal_hcc.audit import evalue as _audit_evalue

        a = _audit_evalue(estimate / null, lo, hi, measure=measure, rare=(measure == "rr") or rare)
        near = lo if estimate / null > 1 else hi
        rr_ci = 1.0 if a["ci"] == 1.0 else conv(near)
        rr, point, ci = a["rr"], a["point"], a["ci"]
    else:
        rr = conv(estimate / null)
        point = _rr_evalue(rr)
        rr_ci = ci = math.nan
        # the CI limit nearer the null: the lower one for a harmful ratio, the upper one for a protective one
        near = lo if estimate / null > 1 else hi
        if near is not None:
            if (near <= 1.0) if estimate / null > 1 else (near >= 1.0):
                rr_ci, ci = 1.0, 1.0
            else:
                rr_ci = conv(near)
                ci = _rr_evalue(rr_ci)
    kind = "none" if measure == "rr" else ("hr-rare" if rare else "hr-common")
    return EValue(point=point, ci=ci, rr=rr, rr_ci=rr_ci, conversion=kind)


def outcome_is_common(*, curves: pd.DataFrame | None = None, events: int = 0, n: int = 0,
                      threshold: float = COMMON_OUTCOME_THRESHOLD) -> bool:
    """Whether the outcome is common (cumulative incidence > 15% in either arm).

    Uses the survival curves when given (``1 - S`` at the end of follow-up,
    the quantity VanderWeele (2020) refers to), else the crude proportion
    ``events / n`` (which understates the incidence under censoring).
    """
    if curves is not None and len(curves):
        inc = 1.0 - curves.groupby("group")["surv"].min()
        return bool((inc > threshold).any())
    return bool(n > 0 and events / n > threshold)


def _reference_group(curves: pd.DataFrame, suffix: str = "") -> str | None:
    """The untreated (comparator) arm's group in a curve table: ``untreated`` when present, else the first
    group (arm 0 is written first; clone-censor's ``never treat``, ...). ``suffix``: ``": cause 1"`` for
    cumulative-incidence tables."""
    groups = list(dict.fromkeys(curves["group"]))
    if suffix:
        groups = [g for g in groups if str(g).endswith(suffix)]
    if f"untreated{suffix}" in groups:
        return f"untreated{suffix}"
    return groups[0] if groups else None


def _is_cif_table(curves: pd.DataFrame | None) -> bool:
    return curves is not None and len(curves) > 0 and bool(curves["group"].astype(str).str.contains(": cause ").any())


def _cif_arms(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per arm of a cumulative-incidence table: time, the CIF of every cause (columns ``1``, ``2``, ...)."""
    g = curves["group"].astype(str).str.rsplit(": cause ", n=1, expand=True)
    tab = pd.DataFrame({"arm": g[0], "cause": g[1].astype(int), "time": curves["time"].to_numpy(float),
                        "cif": curves["surv"].to_numpy(float)})
    out = {}
    for arm, t in tab.groupby("arm", sort=False):
        wide = t.pivot_table(index="time", columns="cause", values="cif", aggfunc="last").sort_index()
        out[arm] = wide.ffill().fillna(0.0)
    return out


def competing_risk_at_end(curves: pd.DataFrame, measure: str) -> float:
    """The largest (over arms) risk by the end of follow-up that decides VanderWeele's (2020) rare-outcome rule
    for a hazard ratio of an outcome with competing events.

    * ``subdistribution_hr``: the cumulative incidence of the event of interest, ``F_1 = 1 - exp(-Lambda_sub)``
      (the subdistribution hazard is the hazard of ``F_1``).
    * ``cause_specific_hr``: ``1 - exp(-Lambda_1)``, ``Lambda_1 = sum dF_1(u) / S(u-)`` the cause-specific
      cumulative hazard (Aalen-Johansen increments over the event-free survival ``S = 1 - sum_k F_k``): the
      risk the cause-specific hazard describes, with competing events removed; it is at least ``F_1``.
    """
    worst = 0.0
    for t in _cif_arms(curves).values():
        if 1 not in t.columns:
            continue
        F1 = t[1].to_numpy()
        if measure == "subdistribution_hr":
            worst = max(worst, float(F1[-1]))
            continue
        S = 1.0 - t.sum(axis=1).to_numpy()
        Sprev = np.r_[1.0, S[:-1]]
        dF1 = np.diff(np.r_[0.0, F1])
        with np.errstate(divide="ignore", invalid="ignore"):
            dL = np.where(Sprev > 0, dF1 / np.where(Sprev > 0, Sprev, 1.0), 0.0)
        worst = max(worst, float(1.0 - math.exp(-dL.sum())))
    return worst


def _difference_evalue(est, r0: float, sign: float, kind: str, not_positive: str, note: str) -> "EValue":
    """E-value of a risk (or cumulative incidence) difference read as the ratio (r0 + sign * d) / r0 at the
    untreated risk ``r0``; ``sign`` -1 for a survival difference (difference up, risk ratio down)."""
    ends = (est.ci_lower, est.ci_upper) if sign > 0 else (est.ci_upper, est.ci_lower)  # -> (lower, upper) ratio
    vals = [(r0 + sign * v) / r0 for v in (est.estimate, *ends)]
    if not vals[0] > 0:
        return EValue(math.nan, math.nan, math.nan, math.nan, kind, not_positive)
    lo = vals[1] if np.isfinite(ends[0]) and vals[1] > 0 else None
    hi = vals[2] if np.isfinite(ends[1]) else None
    e = evalue(vals[0], lo, hi, measure="rr")
    return EValue(e.point, e.ci, e.rr, e.rr_ci, kind, note)


def evalue_for_estimate(est: EffectEstimate, *, common: bool,
                        curves: pd.DataFrame | None = None) -> EValue | None:
    """E-value of one :class:`EffectEstimate`, or an ``EValue`` with a note when undefined.

    * ``hr``: :func:`evalue` with ``measure="hr"``; ``rare = not common``.
    * ``risk_ratio`` and ``cif_ratio`` at ``t``: risk ratios of the event (of
      interest) by ``t`` -- the cumulative incidence ratio is the risk ratio of
      the total effect, competing events occurring as they do -- so the E-value
      of VanderWeele & Ding (2017) applies directly, no conversion.
    * ``cif_difference`` at ``t``: converted to that risk ratio with the
      untreated arm's cumulative incidence ``F0(t)`` (from ``curves``) held
      fixed, ``RR = (F0 + d) / F0``, as ``survival_difference``.
    * ``subdistribution_hr`` and ``cause_specific_hr``: hazard ratios, converted
      to risk ratios by VanderWeele's (2020) rule with the risk that hazard
      describes (:func:`competing_risk_at_end`): the cumulative incidence of the
      event of interest for the subdistribution hazard, ``1 - exp(-Lambda_1)``
      for the cause-specific one (the risk with competing events removed); below
      15% in both arms the HR is used as a risk ratio, else the square-root
      conversion. Without cumulative-incidence curves (an adjusted model) the
      caller's ``common`` decides. The cause-specific HR's E-value concerns
      confounding of the cause-specific hazard, a contrast among those still free
      of every event (Young et al. 2020): not of a risk, and not causal, so
      :func:`evalues_for_result` withholds it (:data:`CAUSE_SPECIFIC_NOTE`).
    * ``survival_difference`` at ``t``: converted to a risk ratio of the event
      by ``t`` with the untreated arm's risk ``1 - S0(t)`` (from ``curves``)
      held fixed: ``RR = (1 - S0 - d) / (1 - S0)``; the CI limits of ``d``
      map through the same monotone function (VanderWeele & Ding 2017,
      risk-difference section, with the baseline risk treated as known).
    * ``rmst_difference``/``median_difference``: no published E-value; NaN
      with a note.
    """
    if est.measure == "hr":
        if not (est.estimate > 0):
            return EValue(math.nan, math.nan, math.nan, math.nan, "none", "no finite HR")
        return evalue(est.estimate, est.ci_lower, est.ci_upper, measure="hr", rare=not common)
    if est.measure == "survival_difference":
        if curves is None or est.time is None:
            return EValue(math.nan, math.nan, math.nan, math.nan, "survival-difference",
                          "needs the untreated arm's curve")
        g = curves[curves["group"] == _reference_group(curves)]
        g = g[g["time"] <= float(est.time)]
        s0 = float(g["surv"].iloc[-1]) if len(g) else 1.0
        r0 = 1.0 - s0
        if r0 <= 0:
            return EValue(math.nan, math.nan, math.nan, math.nan, "survival-difference",
                          "no events in the untreated arm by this time")
        # a survival difference up is a risk ratio down
        return _difference_evalue(est, r0, -1.0, "survival-difference", "implied treated risk is not positive",
                                  f"risk ratio of the event by t={est.time:g} with untreated risk {r0:.3f}")
    if est.measure in ("risk_ratio", "cif_ratio"):
        if not (est.estimate > 0 and math.isfinite(est.estimate)):
            return EValue(math.nan, math.nan, math.nan, math.nan, "none", f"no finite {est.measure.replace('_', ' ')}")
        e = evalue(est.estimate, est.ci_lower, est.ci_upper, measure="rr")
        what = ("the cumulative incidence ratio of the event of interest (total effect)" if est.measure == "cif_ratio"
                else "the risk ratio")
        return EValue(e.point, e.ci, e.rr, e.rr_ci, "none", f"{what} at t={est.time:g}, used directly"
                      if est.time is not None else f"{what}, used directly")
    if est.measure == "cif_difference":
        ref = _reference_group(curves, ": cause 1") if _is_cif_table(curves) else None
        if ref is None or est.time is None:
            return EValue(math.nan, math.nan, math.nan, math.nan, "cif-difference",
                          "needs the untreated arm's cumulative incidence curve")
        g = curves[(curves["group"] == ref) & (curves["time"] <= float(est.time))]
        r0 = float(g["surv"].iloc[-1]) if len(g) else 0.0
        if r0 <= 0:
            return EValue(math.nan, math.nan, math.nan, math.nan, "cif-difference",
                          "no event of interest in the untreated arm by this time")
        return _difference_evalue(est, r0, 1.0, "cif-difference",
                                  "implied treated cumulative incidence is not positive",
                                  f"cumulative incidence ratio of the event of interest by t={est.time:g} with "
                                  f"untreated cumulative incidence {r0:.3f}")
    if est.measure in ("subdistribution_hr", "cause_specific_hr"):
        if not (est.estimate > 0 and math.isfinite(est.estimate)):
            return EValue(math.nan, math.nan, math.nan, math.nan, "none", "no finite HR")
        if _is_cif_table(curves):
            risk = competing_risk_at_end(curves, est.measure)
            common = risk > COMMON_OUTCOME_THRESHOLD
            basis = (f"{'cumulative incidence' if est.measure == 'subdistribution_hr' else 'cause-specific risk'} of "
                     f"the event of interest at the end of follow-up {risk:.3f}")
        else:
            basis = "crude proportion with the event of interest (no curves)"
        e = evalue(est.estimate, est.ci_lower, est.ci_upper, measure="hr", rare=not common)
        rule = ("the HR used as a risk ratio (rare: < 15%)" if not common else
                "RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (common: >= 15%)")
        return EValue(e.point, e.ci, e.rr, e.rr_ci, e.conversion,
                      f"{est.measure.replace('_', ' ')}: {rule}, {basis}; VanderWeele 2020"
                      + ("; a contrast of the hazard among those free of every event (Young et al. 2020)"
                         if est.measure == "cause_specific_hr" else ""))
    return EValue(math.nan, math.nan, math.nan, math.nan, "none",
                  f"no published E-value for {est.measure.replace('_', ' ')}")


#: why a row whose estimand is not causal (ever vs never treated, counted from time zero) gets no E-value
NOT_CONFOUNDING_NOTE = ("no E-value: this contrast (ever vs never treated, counted from time zero) is biased by "
                        "immortal time, which no unmeasured confounder explains; an E-value would credit that bias "
                        "to confounding")


#: why a cause-specific hazard ratio gets no E-value (in a design whose contrast is otherwise causal)
CAUSE_SPECIFIC_NOTE = ("no E-value: a cause-specific hazard ratio is not a causal contrast even without confounding "
                       "(it compares hazards among those still free of every event, a group treatment itself "
                       "shapes; Young et al. 2020), so no strength of unmeasured confounding 'explains it away'; "
                       "see the E-values of the cumulative incidence ratio and of the subdistribution HR")


def evalues_for_result(result: Any) -> list[dict[str, Any]]:
    """E-values for every estimate of an :class:`~causal_hcc.results.AnalysisResult`.

    One dict per estimate: the estimate's identifying columns, its E-value
    (``evalue``, ``evalue_ci``), the conversion used and a note. Whether the
    outcome is common is judged per record from its curves (else events/n).

    An E-value measures how strong unmeasured confounding would have to be
    to explain an estimate away, so it is given only where unmeasured
    confounding is the bias that remains: rows whose estimand is not causal
    (``causal`` false: ever vs never treated, counted from time zero, whose
    bias is immortal time) get none (NaN) and :data:`NOT_CONFOUNDING_NOTE`;
    a cause-specific hazard ratio, not causal whatever the design (Young et
    al. 2020), gets none with :data:`CAUSE_SPECIFIC_NOTE` where the design's
    other contrasts are causal.
    """
    rows = []
    for rec in result.records:
        tab = rec.curves.table if rec.curves is not None else None
        hr = next((e for e in rec.estimates if e.measure == "hr"), None)
        ev_n = (hr or (rec.estimates[0] if rec.estimates else None))
        if _is_cif_table(tab):   # cumulative incidence curves (competing events): the event of interest's
            common = competing_risk_at_end(tab, "subdistribution_hr") > COMMON_OUTCOME_THRESHOLD
        else:
            common = outcome_is_common(curves=tab, events=ev_n.events if ev_n else 0, n=ev_n.n if ev_n else 0)
        # the design's own contrast is causal when a total-effect (or subdistribution) row of the record is
        design_causal = any(v.get("causal", True) for v in (rec.estimands or {}).values()
                            if v.get("competing") in ("total", "subdistribution_hazard"))
        for e in rec.estimates:
            est = (rec.estimands or {}).get(e.estimand) or {}
            if est and not est.get("causal", True):
                note = (CAUSE_SPECIFIC_NOTE if est.get("competing") == "cause_specific_hazard" and design_causal
                        else NOT_CONFOUNDING_NOTE)
                ev = EValue(math.nan, math.nan, math.nan, math.nan, "none", note)
            else:
                ev = evalue_for_estimate(e, common=common, curves=tab)
            rows.append({"strategy": e.strategy or rec.strategy, "design": rec.design, "adjustment": rec.adjustment,
                         "outcome": rec.outcome, "measure": e.measure, "time": e.time,
                         "estimate": e.estimate, "ci_lower": e.ci_lower, "ci_upper": e.ci_upper,
                         "evalue": ev.point, "evalue_ci": ev.ci, "conversion": ev.conversion,
                         "common_outcome": common, "note": ev.note})
    return rows


# ---------------------------------------------------------------------------
# Tipping point (Lin, Psaty & Kronmal 1998)
# ---------------------------------------------------------------------------
def _bias_factor(gamma: np.ndarray, p1: np.ndarray, p0: np.ndarray) -> np.ndarray:
    return (1.0 + (gamma - 1.0) * p1) / (1.0 + (gamma - 1.0) * p0)


def tipping_point(hr: float, ci_lower: float = math.nan, ci_upper: float = math.nan, *,
                  hr_ud: Sequence[float] = (1.25, 1.5, 2.0, 3.0, 4.0, 6.0),
                  prevalence_difference: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
                  p_low: float = 0.0) -> dict[str, Any]:
    """How strong an unmeasured binary confounder U must be to move an HR to 1.

    U raises the hazard by ``HR_UD`` (>= 1) and is ``prevalence_difference``
    more common in the arm that makes the observed effect look better than it
    is: among the untreated when the observed HR < 1 (U then explains away a
    protective effect), among the treated when HR > 1. The other arm has
    prevalence ``p_low`` (default 0, the worst case for a given difference).
    The observed HR is the true HR times the bias factor (Lin et al. 1998,
    eq. 4, outcome rare or hazards proportional)::

        B = (1 + (HR_UD - 1) p1) / (1 + (HR_UD - 1) p0)

    with ``p1``/``p0`` U's prevalence among treated/untreated, so the
    adjusted HR is ``HR / B`` (and likewise for each CI limit).

    Returns
    -------
    dict
        ``hr_ud``, ``prevalence_difference`` (the grid), ``p_low``,
        ``adjusted_hr`` and ``adjusted_ci_limit`` (rows HR_UD x columns
        difference; the CI limit nearer the null), ``moves_point_to_null``,
        ``moves_ci_to_null`` (booleans: the adjusted HR/limit reaches or
        crosses 1), and ``tipping_difference``: for each HR_UD the smallest
        prevalence difference that moves the point (and the CI limit) to 1
        (None when no difference <= 1 - p_low does).

    References
    ----------
    .. [1] Lin DY, Psaty BM, Kronmal RA. Assessing the sensitivity of
       regression results to unmeasured confounders in observational
       studies. *Biometrics* 1998;54:948-963.
    """
    if not (hr > 0):
        raise EstimationError(f"tipping_point: hr must be > 0, got {hr!r}")
    if not 0.0 <= p_low < 1.0:
        raise SpecError(f"tipping_point: p_low must be in [0, 1), got {p_low!r}")
    g = np.asarray(hr_ud, dtype=float)
    d = np.asarray(prevalence_difference, dtype=float)
    if np.any(g < 1):
        raise SpecError(f"tipping_point: hr_ud values must be >= 1, got {list(hr_ud)}")
    if np.any(d < 0) or np.any(p_low + d > 1):
        raise SpecError("tipping_point: prevalence differences must be >= 0 and p_low + difference <= 1")
    protective = hr < 1
    G, D = np.meshgrid(g, d, indexing="ij")
    hi_p = p_low + D
    p1, p0 = (np.full_like(D, p_low), hi_p) if protective else (hi_p, np.full_like(D, p_low))
    B = _bias_factor(G, p1, p0)
    adj = hr / B
    limit = ci_upper if protective else ci_lower
    adj_lim = limit / B if np.isfinite(limit) else np.full_like(B, np.nan)
    if protective:
        mp, mc = adj >= 1.0 - 1e-12, adj_lim >= 1.0 - 1e-12
    else:
        mp, mc = adj <= 1.0 + 1e-12, adj_lim <= 1.0 + 1e-12

    def needed(target: float) -> list[float | None]:
        # solve target / B = 1 for the prevalence difference (closed form)
        out: list[float | None] = []
        for gam in g:
            if not np.isfinite(target) or gam == 1.0:
                out.append(None if not (np.isfinite(target) and abs(target - 1) < 1e-12) else 0.0)
                continue
            a = gam - 1.0
            if protective:
                if target >= 1:
                    out.append(0.0)
                    continue
                delta = ((1 + a * p_low) / target - 1) / a - p_low
            else:
                if target <= 1:
                    out.append(0.0)
                    continue
                delta = ((1 + a * p_low) * target - 1) / a - p_low
            out.append(float(delta) if delta <= 1 - p_low + 1e-12 else None)
        return out

    return {"hr": float(hr), "ci_limit": float(limit) if np.isfinite(limit) else None,
            "direction": "U more common among untreated" if protective else "U more common among treated",
            "hr_ud": g.tolist(), "prevalence_difference": d.tolist(), "p_low": float(p_low),
            "adjusted_hr": adj.tolist(), "adjusted_ci_limit": adj_lim.tolist(),
            "moves_point_to_null": mp.tolist(), "moves_ci_to_null": mc.tolist(),
            "tipping_difference": needed(hr), "tipping_difference_ci": needed(limit)}


# ---------------------------------------------------------------------------
# DoWhy: back-door adjustment set from a causal graph
# ---------------------------------------------------------------------------
_GML = re.compile(r"^\s*graph\s*\[")


def _nx_graph(dag: str) -> Any:
    """Parse DOT or GML into a networkx graph; SpecError when neither parses."""
    import networkx as nx

    text = dag.strip()
    try:
        if _GML.match(text):
            return nx.parse_gml(text, label="label")
        import pydot

        parsed = pydot.graph_from_dot_data(text)
        if not parsed:
            raise ValueError("not DOT")
        G = nx.nx_pydot.from_pydot(parsed[0])
    except Exception as exc:  # noqa: BLE001 - any parser failure is a spec problem
        raise SpecError(f"sensitivity.dag: cannot parse the graph as DOT or GML ({type(exc).__name__})") from None
    check_acyclic(G)
    return G


def check_acyclic(G: Any) -> None:
    """Refuse a graph that is undirected or has a directed cycle (one line naming the cycle)."""
    import networkx as nx

    if not G.is_directed():
        raise SpecError("sensitivity.dag: the graph is undirected; write 'digraph { a -> b; ... }'")
    try:
        cycle = nx.find_cycle(G, orientation="original")
    except nx.NetworkXNoCycle:
        return
    names = [_clean_name(e[0]) for e in cycle] + [_clean_name(cycle[0][0])]
    shown = " -> ".join(short(n, 40) for n in names[:12]) + (" -> ..." if len(names) > 12 else "")
    raise SpecError(f"sensitivity.dag: the graph has a cycle ({shown}); a causal DAG must be acyclic")


def _clean_name(n: Any) -> str:
    return str(n).strip().strip('"')


def _graph_nodes(dag: str) -> list[str]:
    G = _nx_graph(dag)
    return [_clean_name(n) for n in G.nodes if _clean_name(n) not in ("node", "edge", "graph", "\\n", "")]


def graph_edges(dag: str) -> list[tuple[str, str]]:
    """Edges of a DOT/GML graph as (from, to) names (for drawing)."""
    G = _nx_graph(dag)
    return [(_clean_name(e[0]), _clean_name(e[1])) for e in G.edges]


def identify_adjustment_set(dag: str, treatment: str, outcome: str,
                            confounders: Sequence[str] = ()) -> dict[str, Any]:
    """Back-door adjustment set of a causal graph (DoWhy), compared with the spec's confounders.

    Parameters
    ----------
    dag : str
        The graph in DOT (``digraph { a -> b }``) or GML.
    treatment, outcome : str
        Node names of the treatment and the outcome.
    confounders : sequence of str
        The spec's confounders.

    Returns
    -------
    dict
        ``nodes``, ``edges``, ``backdoor_sets`` (DoWhy's candidate sets),
        ``minimal`` (the smallest), ``spec_confounders``,
        ``spec_is_valid`` (the spec's confounders, restricted to graph nodes,
        satisfy the back-door criterion, checked with DoWhy's d-separation),
        ``missing_from_spec`` (minimal-set variables the spec lacks),
        ``not_needed`` (spec confounders outside every back-door set),
        ``not_in_graph`` (spec confounders absent from the graph).

    Notes
    -----
    DoWhy's ``CausalModel`` needs a DataFrame with the graph's columns; we
    pass two dummy rows (no patient data), since identification uses the
    graph only.

    References
    ----------
    .. [1] Pearl J. *Causality*, 2nd ed. 2009, section 3.3.1.
    .. [2] Sharma A, Kiciman E. DoWhy: an end-to-end library for causal
       inference. arXiv:2011.04216, 2020.
    """
    from dowhy import CausalModel

    nodes = _graph_nodes(dag)
    for role, name in (("treatment", treatment), ("outcome", outcome)):
        if name not in nodes:
            raise SpecError(f"sensitivity.dag: {role} '{name}' is not a node of the graph; nodes: {', '.join(nodes)}")
    dummy = pd.DataFrame({n: [0.0, 1.0] for n in nodes})
    for name in ("dowhy", "dowhy.causal_model", "dowhy.causal_identifier"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # DoWhy reads a graph *string* as a file path when it matches '.*\.txt', '.*\.dot' or '.*\.gml' (a node
    # named "x.txt" made it open the spec's text as a file): it gets the parsed graph, never the spec's text
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((a, b) for a, b in graph_edges(dag) if a in nodes and b in nodes)
    model = CausalModel(data=dummy, treatment=treatment, outcome=outcome, graph=graph)
    est = model.identify_effect(proceed_when_unidentifiable=True)
    sets = {k: sorted(v) for k, v in (est.backdoor_variables or {}).items()}
    uniq = sorted({tuple(v) for v in sets.values()}, key=lambda s: (len(s), s))
    minimal = list(uniq[0]) if uniq else []
    conf = [str(c) for c in confounders]
    in_graph = [c for c in conf if c in nodes]
    try:
        chk = model._graph.check_valid_backdoor_set([treatment], [outcome], in_graph)
        valid = bool(chk["is_dseparated"] if isinstance(chk, dict) else chk)
    except Exception:  # noqa: BLE001 - DoWhy API differences across versions: fall back to set inclusion
        valid = set(minimal) <= set(in_graph)
    all_bd = set().union(*[set(s) for s in uniq]) if uniq else set()
    return {"treatment": treatment, "outcome": outcome, "nodes": nodes, "edges": graph_edges(dag),
            "backdoor_sets": [list(s) for s in uniq], "minimal": minimal, "spec_confounders": conf,
            "spec_is_valid": valid, "missing_from_spec": [v for v in minimal if v not in conf],
            "not_needed": [c for c in in_graph if c not in all_bd],
            "not_in_graph": [c for c in conf if c not in nodes],
            "method": f"DoWhy {__import__('dowhy').__version__} identify_effect (back-door criterion)"}


# ---------------------------------------------------------------------------
# Refuters
# ---------------------------------------------------------------------------
def _rebuild(cohort: Any, frame: pd.DataFrame, confounders: Sequence[str] | None = None) -> Any:
    """A new validated Cohort from a modified copy of ``cohort.frame()`` with the same roles."""
    from causal_hcc.cohort import Cohort

    roles = {k: v for k, v in cohort.roles.items() if v}
    primary = cohort.outcome_names[0]
    comp = getattr(cohort, "competing", lambda o: ())
    extra = {k: ({"time": v[0], "event": v[1], "competing": list(comp(k))} if comp(k) else tuple(v))
             for k, v in cohort.outcome_columns.items() if k != primary}
    conf = list(cohort.confounders if confounders is None else confounders)
    new = Cohort(frame, **roles, confounders=conf, categorical=list(cohort.categorical),
                 reference={k: v for k, v in cohort.reference_levels.items() if k in conf},
                 outcomes=extra, outcome_name=primary, missing="error", source="DataFrame",
                 competing=list(comp(primary)) or None)
    # same patients in the same order: the time-varying confounders stay with them
    return new.with_timeline(cohort.timeline) if getattr(cohort, "timeline", None) is not None else new


def _pick(estimates: Sequence[EffectEstimate], measure: str, time: float | None) -> EffectEstimate:
    for e in estimates:
        if e.measure == measure and (time is None or (e.time is not None and abs(e.time - time) < 1e-9)):
            return e
    raise EstimationError(f"refuter: the strategy gave no '{measure}' estimate"
                          + (f" at time {time:g}" if time is not None else ""))


def _fit(strategy: Any, cohort: Any, outcome: str, targets: Targets, measure: str, time: float | None,
         bootstrap: int, seed: int) -> EffectEstimate:
    out = strategy.fit(cohort, outcome, targets)
    est = _pick(out.estimates, measure, time)
    if (not np.isfinite(est.se) or strategy.needs_bootstrap) and bootstrap > 0:
        from causal_hcc.inference import bootstrap_strategy

        boot = bootstrap_strategy(strategy, cohort, outcome, targets, out, replicates=bootstrap, seed=seed)
        est = _pick(boot.estimates, measure, time)
    return est


def _null(measure: str) -> float:
    return 1.0 if measure == "hr" else 0.0


def _scale(measure: str, v: float) -> float:
    return math.log(v) if measure == "hr" else v


def _covers_null(e: EffectEstimate) -> bool | None:
    if not (np.isfinite(e.ci_lower) and np.isfinite(e.ci_upper)):
        return None
    n = _null(e.measure)
    return bool(e.ci_lower <= n <= e.ci_upper)


def _est_dict(e: EffectEstimate) -> dict[str, Any]:
    return {"estimate": e.estimate, "ci_lower": e.ci_lower, "ci_upper": e.ci_upper, "se": e.se,
            "variance_method": e.variance_method, "n": e.n, "events": e.events}


def _fmt(e: EffectEstimate) -> str:
    ci = (f" (95% CI {e.ci_lower:.3g} to {e.ci_upper:.3g})"
          if np.isfinite(e.ci_lower) and np.isfinite(e.ci_upper) else "")
    name = "HR" if e.measure == "hr" else e.measure.replace("_", " ")
    return f"{name} {e.estimate:.3g}{ci}"


def refute_placebo(strategy: Any, cohort: Any, outcome: str | None, targets: Targets, seed: int = 0, *,
                   measure: str = "hr", time: float | None = None, n_simulations: int = 1,
                   bootstrap: int = 0) -> dict[str, Any]:
    """Placebo-treatment refuter: permute treatment with its timing; the effect must vanish.

    Follows the semantics of DoWhy's ``placebo_treatment_refuter``
    (``placebo_type="permute"``) in our own code, because DoWhy's estimators
    do not handle censored survival data or treatment that starts during
    follow-up. Each patient receives another patient's (treatment,
    treatment time) pair, drawn as one permutation of the pairs. A placebo
    treatment time beyond the patient's own follow-up cannot have happened:
    the patient stays untreated (treatment 0, no treatment time). The
    strategy is re-run on the rebuilt cohort. Because the placebo is
    unrelated to the outcome, a design that starts follow-up correctly
    (landmark, time-varying, clone-censor) gives an effect whose CI covers
    the null; a design that counts patients as treated from time zero
    credits them with the time they had to survive to reach their placebo
    date and shows a spurious benefit -- the refuter then exposes
    immortal-time bias.

    Parameters
    ----------
    strategy : causal_hcc.strategies.Strategy
    cohort : causal_hcc.cohort.Cohort
    outcome : str or None
        Outcome name (None: the primary).
    targets : causal_hcc.base.Targets
    seed : int
    measure, time : which estimate to refute (default the HR).
    n_simulations : int
        Number of permutations; the verdict uses the share of placebo CIs
        that cover the null (all runs are returned).
    bootstrap : int
        Replicates for strategies whose SE comes from the pipeline bootstrap
        (0: use the strategy's own SE).

    Returns
    -------
    dict
        ``refuter``, ``strategy``, ``measure``, ``time``, ``original``,
        ``refuted`` (the first run), ``simulations``, ``passed`` (bool or
        None when no CI), ``verdict`` (plain language).

    References
    ----------
    .. [1] Sharma A, Kiciman E. DoWhy: an end-to-end library for causal
       inference. arXiv:2011.04216, 2020 (placebo treatment refuter).
    .. [2] Suissa S. Immortal time bias in pharmaco-epidemiology. *Am J
       Epidemiol* 2008;167:492-499.
    """
    outcome = outcome or cohort.outcome_names[0]
    if n_simulations < 1:
        raise SpecError(f"refute_placebo: n_simulations must be >= 1, got {n_simulations}")
    rng = np.random.default_rng(seed)
    orig = _fit(strategy, cohort, outcome, targets, measure, time, bootstrap, seed)
    trt_col, tt_col = cohort.roles["treatment"], cohort.roles.get("treatment_time")
    base = cohort.frame()
    follow = np.asarray(cohort.time(outcome), dtype=float)
    runs = []
    for k in range(n_simulations):
        f = base.copy()
        perm = rng.permutation(len(f))
        trt = np.asarray(cohort.treatment, dtype=int)[perm]
        if tt_col:
            tt = np.asarray(cohort.treatment_time, dtype=float)[perm]
            late = (trt == 1) & (tt > follow)
            trt = np.where(late, 0, trt)
            tt = np.where(trt == 1, tt, np.nan)
            f[tt_col] = tt
        f[trt_col] = trt
        new = _rebuild(cohort, f)
        runs.append(_fit(strategy, new, outcome, targets, measure, time, bootstrap, seed + 1 + k))
    cover = [_covers_null(r) for r in runs]
    known = [c for c in cover if c is not None]
    passed = (sum(known) / len(known) >= 0.5) if known else None
    r0 = runs[0]
    if passed is None:
        verdict = (f"Placebo {_fmt(r0)} (no CI available); original {_fmt(orig)}. "
                   "Judge by eye whether the placebo effect is near the null.")
    elif passed:
        verdict = (f"Passed: with treatment and its timing permuted across patients the effect vanishes "
                   f"(placebo {_fmt(r0)}, CI covers the null); original {_fmt(orig)}.")
    else:
        verdict = (f"Failed: a permuted placebo treatment still shows an effect (placebo {_fmt(r0)}); "
                   f"the strategy produces an effect without a real treatment, typically immortal time "
                   f"(treated patients credited with the time before treatment). Original {_fmt(orig)}.")
    return {"refuter": "placebo_treatment", "strategy": strategy.label, "measure": measure, "time": time,
            "original": _est_dict(orig), "refuted": _est_dict(r0),
            "simulations": [_est_dict(r) for r in runs], "passed": passed, "verdict": verdict, "seed": seed,
            "semantics": "DoWhy placebo_treatment_refuter (permute), re-implemented for censored survival"}


def refute_random_common_cause(strategy: Any, cohort: Any, outcome: str | None, targets: Targets,
                               seed: int = 0, *, measure: str = "hr", time: float | None = None,
                               tolerance_se: float = 0.5, bootstrap: int = 0) -> dict[str, Any]:
    """Random-common-cause refuter: add an independent N(0,1) confounder; the estimate must not move.

    Follows DoWhy's ``random_common_cause`` refuter in our own code: a column
    drawn from N(0, 1), independent of everything, joins the confounders and
    the strategy is re-run. The verdict passes when the estimate moves by at
    most ``tolerance_se`` standard errors (log scale for the HR). Strategies
    that ignore confounders return exactly the same estimate (said so).

    References
    ----------
    .. [1] Sharma A, Kiciman E. DoWhy: an end-to-end library for causal
       inference. arXiv:2011.04216, 2020 (random common cause refuter).
    """
    outcome = outcome or cohort.outcome_names[0]
    rng = np.random.default_rng(seed)
    orig = _fit(strategy, cohort, outcome, targets, measure, time, bootstrap, seed)
    f = cohort.frame()
    name = "random_common_cause"
    while name in f.columns:
        name = "_" + name
    f[name] = rng.standard_normal(len(f))
    new = _rebuild(cohort, f, confounders=list(cohort.confounders) + [name])
    strat = strategy
    if getattr(strategy, "confounders", None) is not None:
        # the strategy adjusts for its own subset of confounders: the random one joins that subset
        import copy

        strat = copy.copy(strategy)
        strat.confounders = tuple(strategy.confounders) + (name,)
    ref = _fit(strat, new, outcome, targets, measure, time, bootstrap, seed + 1)
    shift = _scale(measure, ref.estimate) - _scale(measure, orig.estimate)
    se = orig.se
    in_se = abs(shift) / se if np.isfinite(se) and se > 0 else math.nan
    passed = bool(in_se <= tolerance_se) if np.isfinite(in_se) else None
    if shift == 0:
        verdict = (f"Passed trivially: the estimate is unchanged ({_fmt(orig)}); this strategy does not use "
                   "the confounders.")
        passed = True
    elif passed is None:
        verdict = f"Estimate moved from {_fmt(orig)} to {_fmt(ref)}; no SE to judge the change."
    else:
        word = "Passed" if passed else "Failed"
        verdict = (f"{word}: adding a random N(0,1) common cause moved the estimate from {_fmt(orig)} to "
                   f"{_fmt(ref)}, {in_se:.2f} standard errors (threshold {tolerance_se:g}).")
    return {"refuter": "random_common_cause", "strategy": strategy.label, "measure": measure, "time": time,
            "original": _est_dict(orig), "refuted": _est_dict(ref), "shift_in_se": in_se, "passed": passed,
            "verdict": verdict, "seed": seed,
            "semantics": "DoWhy random_common_cause, re-implemented for censored survival"}


def refute_subset(strategy: Any, cohort: Any, outcome: str | None, targets: Targets, seed: int = 0, *,
                  measure: str = "hr", time: float | None = None, fraction: float = 0.8,
                  n_simulations: int = 10, tolerance_se: float = 1.0, bootstrap: int = 0) -> dict[str, Any]:
    """Data-subset refuter: refit on random subsets of patients; the estimate must be stable.

    Follows DoWhy's ``data_subset_refuter``: ``n_simulations`` random subsets
    of ``fraction`` of the patients (without replacement) are drawn and the
    strategy is re-run on each (fits that fail, e.g. no treated patient
    left, are counted). The verdict passes when the median subset estimate
    lies within ``tolerance_se`` standard errors of the original (log scale
    for the HR).

    References
    ----------
    .. [1] Sharma A, Kiciman E. DoWhy: an end-to-end library for causal
       inference. arXiv:2011.04216, 2020 (data subset refuter).
    """
    outcome = outcome or cohort.outcome_names[0]
    if not 0 < fraction < 1:
        raise SpecError(f"refute_subset: fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    orig = _fit(strategy, cohort, outcome, targets, measure, time, bootstrap, seed)
    k = max(2, int(round(fraction * cohort.n)))
    vals: list[float] = []
    failed = 0
    for i in range(n_simulations):
        idx = np.sort(rng.choice(cohort.n, size=k, replace=False))
        try:
            e = _fit(strategy, cohort.take(idx), outcome, targets, measure, time, bootstrap, seed + 1 + i)
        except Exception:  # noqa: BLE001 - a subset may leave an arm without events; count it
            failed += 1
            continue
        if np.isfinite(e.estimate) and (measure != "hr" or e.estimate > 0):
            vals.append(_scale(measure, e.estimate))
        else:
            failed += 1
    if not vals:
        raise EstimationError(f"refute_subset: all {n_simulations} subset fits failed for '{strategy.label}'")
    med = float(np.median(vals))
    back = math.exp(med) if measure == "hr" else med
    shift = med - _scale(measure, orig.estimate)
    in_se = abs(shift) / orig.se if np.isfinite(orig.se) and orig.se > 0 else math.nan
    passed = bool(in_se <= tolerance_se) if np.isfinite(in_se) else None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    if measure == "hr":
        lo, hi = math.exp(lo), math.exp(hi)
    word = {True: "Stable", False: "Unstable", None: "Not judged"}[passed]
    verdict = (f"{word}: over {len(vals)} random {fraction:.0%} subsets the median estimate is {back:.3g} "
               f"(2.5-97.5% range {lo:.3g} to {hi:.3g}) against {_fmt(orig)}"
               + (f", {in_se:.2f} standard errors away (threshold {tolerance_se:g})" if np.isfinite(in_se) else "")
               + (f"; {failed} subset fits failed" if failed else "") + ".")
    return {"refuter": "data_subset", "strategy": strategy.label, "measure": measure, "time": time,
            "original": _est_dict(orig),
            "refuted": {"estimate": back, "ci_lower": float(lo), "ci_upper": float(hi), "se": float(np.std(vals)),
                        "variance_method": "none", "n": k, "events": 0},
            "subset_estimates": [math.exp(v) if measure == "hr" else v for v in vals], "failed": failed,
            "shift_in_se": in_se, "passed": passed, "verdict": verdict, "seed": seed, "fraction": fraction,
            "semantics": "DoWhy data_subset_refuter, re-implemented for censored survival"}


#: spec names -> refuter functions (``sensitivity: {refuters: [placebo, random_common_cause, subset]}``)
REFUTERS = {"placebo": refute_placebo, "random_common_cause": refute_random_common_cause,
            "subset": refute_subset}


def run_refuters(names: Sequence[str], strategy: Any, cohort: Any, outcome: str | None, targets: Targets,
                 seed: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """Run the named refuters on one strategy; unknown names raise SpecError listing the valid ones."""
    out = []
    for n in names:
        if n not in REFUTERS:
            raise SpecError(f"sensitivity.refuters: unknown refuter '{n}'; valid: {', '.join(REFUTERS)}")
        out.append(REFUTERS[n](strategy, cohort, outcome, targets, seed, **kwargs))
    return out


#: names the pipeline calls (``causal_hcc.pipeline._sensitivity``)
evalues_for = evalues_for_result
dag_adjustment_set = identify_adjustment_set
