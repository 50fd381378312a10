"""Effect measures for an outcome with competing events (``competing:`` in the spec).

The counterpart of :func:`causal_hcc.outcome.effects.estimate_effects` for
rows whose ``status`` holds 0 (censored), 1 (the event of interest) and
competing codes 2, 3, ... It reports, per strategy:

* ``cause_specific_hr`` -- (weighted) Cox model of the hazard of the event
  of interest, competing events censored: a contrast of the hazard among
  those still free of every event (Young et al. 2020: not a contrast of
  risks; causal only as a controlled direct effect under the hypothetical
  elimination of competing events);
* ``subdistribution_hr`` -- (weighted) Fine-Gray model (R ``finegray`` +
  ``coxph``; :func:`causal_hcc.core.cmprsk.fine_gray`), not for a
  time-varying exposure (the subdistribution hazard of a time-dependent
  covariate has no risk interpretation; Latouche et al. 2005);
* ``cif_difference`` and ``cif_ratio`` at each ``survival_at`` time --
  treated minus (over) untreated Aalen-Johansen cumulative incidence of
  the event of interest (the total effect on its risk; competing events
  are not prevented), IJ standard errors from per-row influences summed
  within clusters (so clones and matched sets spanning both arms are
  handled); ``cif_ratio``'s ``se`` is that of its logarithm;
* the curves: the cumulative incidence of every cause per arm
  (``SurvivalCurves.kind = "cumulative_incidence"``, groups
  ``"<arm>: cause <k>"``), for the stacked panels of the report.

No ``hr``, survival, RMST or median difference is reported for such an
outcome: 1 - Kaplan-Meier with competing events censored overstates the
risk (it estimates the risk in a world without competing events).

Variance rules follow :func:`~causal_hcc.outcome.effects.estimate_effects`
(weights treated as fixed; cluster on the patient when rows are weighted or
a patient has several rows; the cohort's ``cluster`` role when set).

References
----------
Young JG, Stensrud MJ, Tchetgen Tchetgen EJ, Hernán MA. A causal framework
for classical statistical estimands in failure-time settings with competing
events. Stat Med 2020;39:1199-1236.
Fine JP, Gray RJ. A proportional hazards model for the subdistribution of a
competing risk. JASA 1999;94:496-509.
Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics: competing risks
and multi-state models. Stat Med 2007;26:2389-430.
Latouche A, Porcher R, Chevret S. A note on including time-dependent
covariates in the regression model for competing risks data. Biom J
2005;47:807-14.
Austin PC, Fine JP. Propensity-score matching with competing risks in survival
analysis. Stat Med 2019;38:751-77 (IPTW/matched CIFs and sHRs).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from causal_hcc.base import DesignData, Targets
from causal_hcc.core.cmprsk import aalen_johansen, fine_gray
from causal_hcc.core.cox import coxph
from causal_hcc.errors import CausalHCCError, EstimationError
from causal_hcc._replicate import in_replicate
from causal_hcc.results import EffectEstimate, StrategyOutput, SurvivalCurves, wald_estimate

#: the note every competing-risks output carries
NO_KM_NOTE = ("competing events: no survival, RMST or median difference is reported for this outcome (1 - "
              "Kaplan-Meier with competing events censored overstates the risk); the cumulative incidence of the "
              "event of interest (Aalen-Johansen) is contrasted instead")


def cause_label(code: int) -> str:
    """Group suffix of a cause in the curve tables: ``cause 1`` (the event of interest), ``cause 2``, ..."""
    return f"cause {int(code)}"


def cif_curves(data: DesignData, w: np.ndarray, *, alpha: float, cluster: np.ndarray | None):
    """Aalen-Johansen fit per arm; returns (fits arm -> AJFit, curve table of every cause).

    Rows of a unit in (start, stop] form enter at their start (delayed
    entry); the IJ variance sums influences within ``cluster`` (the
    patient, or the cohort's cluster role). The table starts at time 0
    (cumulative incidence 0) and has one group per arm and cause.
    """
    entry = data.start if np.any(data.start > 0) else None
    causes = (1, *data.competing)
    fits, parts = {}, []
    for arm in (0, 1):
        m = data.treatment == arm
        if not m.any():
            raise EstimationError(f"design '{data.design}': no {data.arm_names[arm]} rows for outcome '{data.outcome}'")
        if not (data.status[m] > 0).any():
            raise EstimationError(f"design '{data.design}': no events of any cause in the {data.arm_names[arm]} arm "
                                  f"for outcome '{data.outcome}'")
        f = aalen_johansen(data.stop[m], data.status[m], entry=None if entry is None else entry[m], weights=w[m],
                           cluster=None if cluster is None else cluster[m], causes=causes, alpha=alpha)
        fits[arm] = f
        n0 = float(w[m].sum()) if entry is None else float(f.n_risk[0])
        for k, c in enumerate(causes):
            parts.append(pd.DataFrame({
                "time": np.r_[0.0, f.time], "group": f"{data.arm_names[arm]}: {cause_label(c)}",
                "surv": np.r_[0.0, f.cif[:, k]], "se": np.r_[0.0, f.std_err[:, k]],
                "ci_lower": np.r_[np.nan, f.lower[:, k]], "ci_upper": np.r_[np.nan, f.upper[:, k]],
                "n_at_risk": np.r_[n0, f.n_risk]}))
    return fits, pd.concat(parts, ignore_index=True)


def _cluster_sum(values: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    _, inv = np.unique(cluster, return_inverse=True)
    out = np.zeros((inv.max() + 1, values.shape[1]))
    np.add.at(out, inv, values)
    return out


def cif_contrasts(fits: dict, data: DesignData, times: Sequence[float], cluster: np.ndarray, *, alpha: float,
                  variance_method: str, common: dict) -> tuple[list[EffectEstimate], list[str]]:
    """``cif_difference`` and ``cif_ratio`` of the event of interest at ``times`` with IJ SEs.

    Each arm's per-row influence (its own rows) is signed and summed within
    ``cluster`` before squaring: correct when clusters span both arms
    (clones, matched sets); equal to ``sqrt(se1^2 + se0^2)`` otherwise.
    """
    est: list[EffectEstimate] = []
    notes: list[str] = []
    tt = [float(t) for t in times]
    if not tt:
        return est, notes
    F = {a: fits[a].at(tt, 1)["cif"].to_numpy() for a in (0, 1)}
    infl = {a: np.zeros((data.n_rows, len(tt))) for a in (0, 1)}
    for a in (0, 1):
        m = data.treatment == a
        infl[a][m] = fits[a].influence(tt, 1)
    diff_se = np.sqrt((_cluster_sum(infl[1] - infl[0], cluster) ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = infl[1] / F[1][None, :] - infl[0] / F[0][None, :]
        ratio_se = np.sqrt((_cluster_sum(lr, cluster) ** 2).sum(axis=0))
    for j, t in enumerate(tt):
        f1, f0 = float(F[1][j]), float(F[0][j])
        if not (math.isfinite(f1) and math.isfinite(f0)):
            notes.append(f"cumulative incidence at {t:g}: beyond the follow-up of an arm, not estimated")
            est.append(EffectEstimate("cif_difference", math.nan, time=t, variance_method="none", **common))
            est.append(EffectEstimate("cif_ratio", math.nan, time=t, variance_method="none", **common))
            continue
        est.append(wald_estimate("cif_difference", f1 - f0, float(diff_se[j]), alpha=alpha, time=t,
                                 variance_method=variance_method, **common))
        if f1 > 0 and f0 > 0:
            est.append(wald_estimate("cif_ratio", f1 / f0, float(ratio_se[j]), alpha=alpha, log_scale=True, time=t,
                                     variance_method=variance_method, **common))
        else:
            est.append(EffectEstimate("cif_ratio", math.nan, time=t, variance_method="none", **common))
            notes.append(f"cif_ratio at {t:g}: not estimated, no event of interest by then in the "
                         f"{data.arm_names[0] if f0 == 0 else data.arm_names[1]} arm")
    return est, notes


def estimate_competing_effects(
    data: DesignData,
    targets: Targets,
    *,
    weights: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] = (),
    curves_method: str = "aalen-johansen",
    hr: bool = True,
    differences: bool = True,
    penalty: str | None = None,
    cluster_role: bool = True,
) -> StrategyOutput:
    """Cause-specific and subdistribution HRs, CIF curves per arm and CIF contrasts on ``data``.

    Same arguments as :func:`causal_hcc.outcome.effects.estimate_effects`;
    ``data.status`` must hold the event codes (``data.competing`` set).
    With ``covariates`` the two HRs are conditional on them and no curves
    are reported. ``penalty="firth"`` penalises the cause-specific Cox model
    (the Fine-Gray model is fitted unpenalised, with a note).
    """
    from causal_hcc.outcome.effects import (analysis_counts, check_cox_fit, cluster_notes, firth_hr,
                                            infinite_hr_estimate, outer_cluster, ph_test)

    if data.status is None:
        raise EstimationError(f"design '{data.design}': outcome '{data.outcome}' has no competing events")
    w = data.weight * (1.0 if weights is None else np.asarray(weights, dtype=float))
    weighted = not np.allclose(w, 1.0)
    multi_row = data.n_rows != data.n_patients
    outer, cname = outer_cluster(data) if cluster_role else (None, None)
    if outer is not None:
        cluster = outer
    caller_cluster = cluster is not None
    if cluster is None and (weighted or multi_row):
        cluster = data.patient
    robust = cluster is not None
    vm = "cluster_robust" if (caller_cluster or multi_row) else ("robust" if robust else "model")
    common = analysis_counts(data)
    out = StrategyOutput()
    if outer is not None:
        diag, notes, warns = cluster_notes(outer, cname, f"design '{data.design}'")
        out.diagnostics["variance"] = diag
        out.notes += notes
        out.warnings += warns
    alpha = targets.alpha
    if data.event.sum() == 0:
        raise EstimationError(f"design '{data.design}': no events of interest (code 1) for outcome '{data.outcome}'")
    codes = {str(c): int((data.status == c).sum()) for c in (1, *data.competing)}
    out.diagnostics["competing"] = {"cause": 1, "competing": list(data.competing), "events_by_cause": codes}
    entry = data.start if np.any(data.start > 0) else None
    adjusted = covariates is not None and np.asarray(covariates).size > 0
    if hr:
        X = data.treatment.astype(float)[:, None]
        names = ["treatment"]
        if adjusted:
            X = np.column_stack([X, np.asarray(covariates, dtype=float)])
            names += list(covariate_names)
        if penalty == "firth":
            tmp = StrategyOutput()
            fit = firth_hr(data, X, names, entry=entry, weights=w if weighted else None, cluster=cluster,
                           robust=robust, vm=vm, alpha=alpha, common=common, out=tmp,
                           likelihood=not caller_cluster and (not multi_row or data.time_varying))
            out.estimates += [e.replace(measure="cause_specific_hr") for e in tmp.estimates]
            out.notes += tmp.notes
            out.warnings += tmp.warnings
            out.diagnostics.update(tmp.diagnostics)
        elif penalty is not None:
            raise EstimationError(f"penalty must be 'firth' or empty, got {penalty!r}")
        else:
            fit = coxph(data.stop, data.event, X, entry=entry, weights=w if weighted else None,
                        strata=data.stratum, cluster=cluster, robust=robust, names=names,
                        keep_problem=not in_replicate())
            out.warnings += [f"cause-specific Cox model: {x}" for x in check_cox_fit(fit)]
            if names[0] in fit.infinite:  # monotone likelihood: no estimate, the profile interval (docs/inference.md)
                lr_ok = not weighted and not caller_cluster and (not multi_row or data.time_varying)
                out.estimates.append(infinite_hr_estimate(data, X, fit, entry=entry, likelihood_ratio=lr_ok,
                                                          alpha=alpha, common=common, out=out)
                                     .replace(measure="cause_specific_hr"))
            else:
                out.estimates.append(wald_estimate("cause_specific_hr", math.exp(float(fit.coef[0])),
                                                   float(fit.se[0]), alpha=alpha, log_scale=True, variance_method=vm,
                                                   **common))
        out.diagnostics["cause_specific_cox"] = {"names": names, "coef": [float(c) for c in fit.coef],
                                                 "se": [float(s) for s in fit.se]}
        if not in_replicate():
            ph, warns = ph_test(fit, data.stop, data.event, X, names, entry=entry,
                                weights=w if weighted else None, strata=data.stratum,
                                where="cause-specific Cox model",
                                consequence="the cause-specific HR averages an effect that changes over time; "
                                            "read the cumulative incidence contrasts")
            out.diagnostics["ph_test"] = ph
            out.warnings += warns
        if data.time_varying:
            out.notes.append("time-varying exposure: no subdistribution HR (a Fine-Gray model with a time-dependent "
                             "covariate has no interpretation in terms of the cumulative incidence; Latouche et al. "
                             "2005); the cause-specific HR of current treatment is reported")
        else:
            # artificial censoring (clone-censor, per-protocol trials; loss to follow-up with its IPC weights,
            # design._tv.loss_weights) is handled by the IPC weights: the
            # censoring distribution G of the Fine-Gray weights is that of the real censoring alone, in the
            # weighted pseudo-population (core.cmprsk.finegray, docs/competing_risks.md)
            # and stabilised weights are unstabilised first: a unit with a competing event at T keeps its weight
            # of T in the later risk sets, where the stabilising numerator of the units still followed has moved
            # on; it would not cancel as it does in a Cox model or Aalen-Johansen curve (the numerator is common
            # to everyone at risk at a time, but not to the competing-event units kept from earlier times)
            art = getattr(data, "artificial_censoring", None)
            if art is not None and not np.any(art):
                art = None
            wnum = getattr(data, "weight_numerator", None)
            w_fg = w if wnum is None else w / np.asarray(wnum, dtype=float)
            fg_weighted = not np.allclose(w_fg, 1.0)
            try:
                fg = fine_gray(data.stop, data.status, X, cause=1, entry=entry,
                               id=data.unit if entry is not None else None, weights=w_fg if fg_weighted else None,
                               strata=data.stratum, cluster=cluster if cluster is not None else data.patient,
                               names=names, artificial=art, censoring_weighted=art is not None)
            except CausalHCCError as err:
                raise EstimationError(f"Fine-Gray model: {err}") from None
            fg_vm = vm if vm != "model" else "robust"
            out.warnings += [f"Fine-Gray model: {x}" for x in check_cox_fit(fg)]
            if names[0] in getattr(fg, "infinite", ()):  # weighted (censoring weights): no interval
                out.estimates.append(infinite_hr_estimate(data, X, fg, entry=entry, likelihood_ratio=False,
                                                          alpha=alpha, common=common, out=out)
                                     .replace(measure="subdistribution_hr"))
            else:
                out.estimates.append(wald_estimate("subdistribution_hr", math.exp(float(fg.coef[0])),
                                                   float(fg.se[0]), alpha=alpha, log_scale=True,
                                                   variance_method=fg_vm, **common))
            out.diagnostics["fine_gray"] = {"names": names, "coef": [float(c) for c in fg.coef],
                                            "se": [float(s) for s in fg.se]}
            out.notes.append("subdistribution HR: Fine-Gray model (R finegray() + coxph(weights = fgwt)), robust SE "
                             "clustered on the " + ("cohort's cluster" if outer is not None else "patient")
                             + " treating the censoring weights as known (cmprsk::crr's SE also propagates them)"
                             + ("; its censoring distribution is the IPC-weighted Kaplan-Meier curve of the real "
                                "censoring only (the artificial censoring of deviating units and loss to follow-up "
                                "weighted by roles.censored are handled by the weights, not counted again)"
                                if art is not None else "")
                             + ("; with the weights unstabilised (design and loss weights; a competing-event unit "
                                "keeps its weight in later risk sets, where a stabilising numerator would not cancel)"
                                if wnum is not None else "")
                             + ("; fitted unpenalised (penalty: firth applies to the cause-specific model)"
                                if penalty == "firth" else ""))
        if adjusted:
            out.notes.append(NO_KM_NOTE)
            return out
    if data.time_varying:
        differences = False
    cl_aj = cluster if cluster is not None else None
    fits, table = cif_curves(data, w, alpha=alpha, cluster=cl_aj)
    vm_if = "influence_function" if vm == "model" else vm
    out.curves = SurvivalCurves(table, method=curves_method, variance_method=vm_if, time_origin=data.time_origin,
                                kind="cumulative_incidence")
    out.notes.append(NO_KM_NOTE)
    if not differences:
        return out
    ests, notes = cif_contrasts(fits, data, targets.survival_at, cluster if cluster is not None else data.patient,
                                alpha=alpha, variance_method=vm_if, common=common)
    out.estimates += ests
    out.notes += notes
    if ests:
        out.notes.append("cumulative incidence contrasts: Aalen-Johansen per arm; SEs by the infinitesimal "
                         "jackknife (R survfit multi-state), influences summed within "
                         + ("the cohort's clusters" if outer is not None else "patients"))
    return out
