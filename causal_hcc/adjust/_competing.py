"""G-formula and AIPTW for the cumulative incidence of an outcome with competing events.

Called by :class:`causal_hcc.adjust.gformula.GFormula` and
:class:`causal_hcc.adjust.aiptw.AIPTW` when the design's rows carry
competing event codes (``DesignData.status``). The numbers come from
:func:`causal_hcc.core.cmprsk.cif_ate`, equal to R
``riskRegression::ate`` with a cause-specific Cox outcome model
(``CSC``; tests/reference/core_cmprsk.R).

Both answer the total-effect question of Young et al. (2020): the
cumulative incidence of the event of interest had everyone been treated vs
had nobody been, with competing events left as they occur
(``cif_difference``, ``cif_ratio`` at each ``survival_at`` time). No hazard
ratio is reported (a Cox coefficient is conditional and a marginal hazard
ratio is not a standardisation output).

References
----------
Young JG, Stensrud MJ, Tchetgen Tchetgen EJ, Hernán MA. Stat Med 2020;39:1199-236.
Ozenne BMH, Scheike TH, Stærk L, Gerds TA. Biom J 2020;62:751-63.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from causal_hcc.base import DesignData, Targets
from causal_hcc.core.cmprsk import cif_ate
from causal_hcc.errors import EstimationError
from causal_hcc.outcome.competing import NO_KM_NOTE, cause_label
from causal_hcc.results import EffectEstimate, StrategyOutput, SurvivalCurves, wald_estimate

#: at most this many curve times besides the targets (the report's grid has 200)
MAX_CURVE_TIMES = 300


def _grid(t: np.ndarray, status: np.ndarray, targets: Targets, tmax: float | None = None) -> np.ndarray:
    """Curve times: event times (thinned to :data:`MAX_CURVE_TIMES` quantiles) plus the targets, from 0."""
    ev = np.unique(t[status > 0])
    if tmax is not None:
        ev = ev[ev <= tmax]
    if ev.size > MAX_CURVE_TIMES:
        ev = np.unique(np.quantile(ev, np.linspace(0, 1, MAX_CURVE_TIMES), method="inverted_cdf"))
    extra = [x for x in targets.survival_at if tmax is None or x <= tmax]
    return np.unique(np.concatenate([[0.0], ev, np.asarray(extra, dtype=float)]))


def _table(grid: np.ndarray, cif: dict, se: dict | None, data: DesignData, alpha: float) -> pd.DataFrame:
    """Curve table (CURVE_COLUMNS) of standardised CIFs: cif[(arm, cause)] on ``grid``."""
    from causal_hcc.results import normal_quantile

    z = normal_quantile(1 - alpha / 2)
    stop = np.asarray(data.stop)
    parts = []
    for (arm, cause), F in cif.items():
        m = np.asarray(data.treatment) == arm
        n_risk = (stop[m][None, :] >= grid[:, None]).sum(axis=1)
        e = se.get((arm, cause)) if se else None
        e = np.full(grid.size, np.nan) if e is None else e
        parts.append(pd.DataFrame({"time": grid, "group": f"{data.arm_names[arm]}: {cause_label(cause)}",
                                   "surv": F, "se": e, "ci_lower": np.clip(F - z * e, 0, 1),
                                   "ci_upper": np.clip(F + z * e, 0, 1), "n_at_risk": n_risk}))
    return pd.concat(parts, ignore_index=True)


def competing_gformula(data: DesignData, targets: Targets, where: str) -> StrategyOutput:
    """Standardised CIFs (treat-all vs treat-none) from cause-specific Cox models; bootstrap variance."""
    from causal_hcc.adjust.gformula import check_unit_level, confounder_matrix
    from causal_hcc.adjust.multivariable import epv_guard
    from causal_hcc.outcome.effects import analysis_counts

    check_unit_level(data, where)
    t, s, a = np.asarray(data.stop, float), np.asarray(data.status), np.asarray(data.treatment, float)
    if not (s == 1).any():
        raise EstimationError(f"{where}: no events of interest for outcome '{data.outcome}'")
    if a.min() == a.max():
        raise EstimationError(f"{where}: only one arm present")
    X, names, dropped = confounder_matrix(data)
    w = np.asarray(data.weight, float)
    causes = (1, *data.competing)
    grid = _grid(t, s, targets)
    cif = {}
    eff = None
    for c in causes:
        if not (s == c).any():
            continue
        eff_c = cif_ate(t, s, a, X, times=grid, cause=c, weights=None if np.allclose(w, 1.0) else w, names=names)
        for arm in (0, 1):
            cif[(arm, c)] = eff_c.risk[arm]
        if c == 1:
            eff = eff_c
    common = dict(analysis_counts(data), variance_method="bootstrap")
    out = StrategyOutput()
    for tt in targets.survival_at:
        j = int(np.searchsorted(grid, tt, side="right") - 1)
        f1, f0 = float(cif[(1, 1)][j]), float(cif[(0, 1)][j])
        out.estimates.append(EffectEstimate("cif_difference", f1 - f0, time=float(tt), **common))
        out.estimates.append(EffectEstimate("cif_ratio", f1 / f0 if f0 > 0 and f1 > 0 else math.nan, time=float(tt),
                                            **common))
    out.curves = SurvivalCurves(_table(grid, cif, None, data, targets.alpha), method="g-formula",
                                variance_method="bootstrap", time_origin=data.time_origin, kind="cumulative_incidence")
    epv_diag, epv_warns = epv_guard(data, 1 + X.shape[1], "cause-specific Cox model of the event of interest")
    out.diagnostics.update(epv_diag)
    out.diagnostics["outcome_model"] = {"model": "cause-specific Cox (riskRegression CSC), product-limit "
                                                 "absolute risks", "names": ["treatment"] + list(names),
                                        **eff.diagnostics}
    out.diagnostics["competing"] = {"cause": 1, "competing": list(data.competing),
                                    "events_by_cause": {str(c): int((s == c).sum()) for c in causes}}
    out.warnings += [f"{where}: {x}" for x in epv_warns]
    if dropped:
        out.warnings.append(f"{where}: constant confounders left out of the model: {', '.join(dropped)}")
    out.notes.append("g-formula for competing events: cause-specific Cox models of every cause (treatment + "
                     "confounders), each unit's cumulative incidence under treat-all and treat-none averaged "
                     "(riskRegression ate with CSC); SEs and CIs from the whole-pipeline bootstrap")
    out.notes.append(NO_KM_NOTE)
    return out


def competing_aiptw(data: DesignData, targets: Targets, where: str, options: dict) -> tuple[StrategyOutput, object]:
    """AIPTW, AIPCW cumulative incidences (Ozenne et al. 2020) with influence-function SEs."""
    from causal_hcc.adjust.balance import balance_table, balance_warnings, propensity_histogram
    from causal_hcc.adjust.gformula import check_unit_level, confounder_matrix
    from causal_hcc.adjust.propensity import fit_propensity, treatment_weights
    from causal_hcc.outcome.effects import analysis_counts, cluster_notes, outer_cluster

    check_unit_level(data, where)
    if not np.allclose(data.weight, 1.0):
        raise EstimationError(f"{where}: design weights are not supported")
    t, s = np.asarray(data.stop, float), np.asarray(data.status).astype(int)
    a = np.asarray(data.treatment).astype(int)
    if not (s == 1).any():
        raise EstimationError(f"{where}: no events of interest for outcome '{data.outcome}'")
    ps = fit_propensity(data, learner=options["learner"], score_column=options["score_column"], where=where)
    e = ps.unit_score[ps.row_unit]
    if np.any((e <= 0) | (e >= 1)):
        raise EstimationError(f"{where}: propensity scores of exactly 0 or 1; AIPTW needs positivity")
    X, names, dropped = confounder_matrix(data)
    Xc = X if options["censoring"] == "cox" else X[:, :0]
    causes = (1, *data.competing)
    tmax = max(targets.survival_at) if targets.survival_at else float(t.max())
    grid = _grid(t, s, targets, tmax=tmax)
    cif, se, eff = {}, {}, None
    outer, cname = outer_cluster(data)
    n = t.size
    if outer is None:
        def ss(m):
            return (m ** 2).sum(axis=0)
    else:
        _, inv = np.unique(outer, return_inverse=True)

        def ss(m):
            g = np.zeros((inv.max() + 1,) + m.shape[1:])
            np.add.at(g, inv, m)
            return (g ** 2).sum(axis=0)
    try:
        for c in causes:
            if not (s == c).any():
                continue
            eff_c = cif_ate(t, s, a, X, times=grid, cause=c, estimator="aiptw", propensity=e, censor_X=Xc,
                            names=names)
            for arm in (0, 1):
                cif[(arm, c)] = eff_c.risk[arm]
                se[(arm, c)] = np.sqrt(ss(eff_c.terms[arm] - eff_c.risk[arm][None, :])) / n
            if c == 1:
                eff = eff_c
    except EstimationError as exc:
        raise EstimationError(f"{where}: {exc}") from None
    vm = "influence_function" if outer is None else "cluster_robust"
    common = dict(analysis_counts(data), variance_method=vm)
    out = StrategyOutput()
    if outer is not None:
        diag, notes, warns = cluster_notes(outer, cname, where)
        out.diagnostics["variance"] = diag
        out.notes += notes
        out.warnings += warns
    idiff, ilr = eff.influence_difference(), eff.influence_log_ratio()
    for tt in targets.survival_at:
        j = int(np.searchsorted(grid, tt, side="right") - 1)
        f1, f0 = float(eff.risk[1][j]), float(eff.risk[0][j])
        out.estimates.append(wald_estimate("cif_difference", f1 - f0, float(np.sqrt(ss(idiff[:, j])) / n),
                                           alpha=targets.alpha, time=float(tt), **common))
        if f1 > 0 and f0 > 0:
            out.estimates.append(wald_estimate("cif_ratio", f1 / f0, float(np.sqrt(ss(ilr[:, j])) / n),
                                               alpha=targets.alpha, log_scale=True, time=float(tt), **common))
        else:
            out.estimates.append(EffectEstimate("cif_ratio", math.nan, time=float(tt),
                                                **{**common, "variance_method": "none"}))
            out.notes.append(f"cif_ratio at {tt:g}: not estimated (an AIPTW cumulative incidence is <= 0)")
    out.curves = SurvivalCurves(_table(grid, cif, se, data, targets.alpha), method="aiptw", variance_method=vm,
                                time_origin=data.time_origin, kind="cumulative_incidence")
    a_unit = ps.unit_treatment
    X_unit = np.asarray(data.X, float)[ps.unit_first_row]
    bal = balance_table(X_unit, a_unit, data.confounders,
                        weights=treatment_weights(ps.unit_score, a_unit, "ATE", False))
    out.diagnostics["balance"] = bal
    out.diagnostics["propensity"] = propensity_histogram(ps.unit_score, a_unit, learner=ps.learner,
                                                         n_near=ps.n_near_0_or_1)
    out.diagnostics["outcome_model"] = {"model": "cause-specific Cox (riskRegression CSC), product-limit "
                                                 "absolute risks", "names": ["treatment"] + list(names),
                                        **{k: v for k, v in eff.diagnostics.items() if k != "min_G"}}
    out.diagnostics["censoring_model"] = {"min_G": eff.diagnostics.get("min_G")}
    out.diagnostics["competing"] = {"cause": 1, "competing": list(data.competing),
                                    "events_by_cause": {str(c): int((s == c).sum()) for c in causes}}
    out.warnings += ps.warnings + balance_warnings(bal, f"{where} (ATE weights of the propensity model)")
    if dropped:
        out.warnings.append(f"{where}: constant confounders left out of the models: {', '.join(dropped)}")
    out.notes.append("AIPTW for competing events: propensity, cause-specific Cox outcome models of every cause and "
                     "a Cox censoring model (riskRegression ate with CSC, AIPTW,AIPCW); SEs from the influence "
                     "function with the working models treated as known (ate(known.nuisance = TRUE)); the curves "
                     "end at the last target time")
    out.notes.append(NO_KM_NOTE)
    return out, ps
