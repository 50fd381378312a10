"""Augmented inverse probability weighting (doubly robust) for survival at t."""
from __future__ import annotations

import math

import numpy as np

from causal_hcc.adjust.balance import balance_table, balance_warnings, propensity_histogram
from causal_hcc.adjust.gformula import (STRATIFIED_REASON, beyond_follow_up, check_unit_level, confounder_matrix,
                                        curves_table, fit_outcome_cox, median_time, rmst_weights)
from causal_hcc.adjust.propensity import (CLONE_REASON, LEARNER_OPTION, SCORE_COLUMN_OPTION, TIME_VARYING_REASON,
                                          fit_propensity, treatment_weights)
from causal_hcc.base import Adjustment, DesignData, Option, Targets
from causal_hcc.errors import EstimationError
from causal_hcc.results import (NUISANCE_AS_KNOWN, EffectEstimate, StrategyOutput, SurvivalCurves, risk_ratio_estimates,
                                wald_estimate, with_note)
from causal_hcc.outcome.effects import TIES_OPTION, analysis_counts, cluster_notes, outer_cluster
from causal_hcc.strategies import register_adjustment


def aiptw_risk(time: np.ndarray, event: np.ndarray, a: np.ndarray, score: np.ndarray,
               S_ctf: dict[int, np.ndarray], grid: np.ndarray, S_obs_fun, G_fun, dLc_fun,
               cens_times: np.ndarray) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """AIPTW-AIPCW risk F_a(t) at each ``grid`` time and its per-unit influence terms.

    For arm a and time t (Ozenne et al. 2020, eq. for the AIPTW,AIPCW estimator)::

        psi_a(t) = mean_i [ F_a(t|X_i) + 1(A_i=a)/pi_a(X_i) * ( Y_i(t)/G_i(T_i-)
                   - F_a(t|X_i) + F_i(t) Int_i(t) - Int2_i(t) ) ]
        Int_i(t)  = sum_{u <= min(t, T_i)} dM^c_i(u) / (G_i(u-) S_i(u-))
        Int2_i(t) = sum_{u <= min(t, T_i)} F_i(u) dM^c_i(u) / (G_i(u-) S_i(u-))

    over the distinct censoring times u, with Y_i(t) = 1(T_i <= t, event),
    F = 1 - S from the outcome model at the observed arm, G the censoring
    survival and dM^c = dN^c - dLambda^c the censoring martingale.

    Returns (risk per arm (len(grid)), influence terms per arm (n x len(grid)),
    i.e. the summands whose mean is psi).
    """
    n = time.size
    u = cens_times
    # matrices over censoring jump times: n x K
    G_prev = G_fun(u, left=True)            # G_i(u-)
    S_prev = S_obs_fun(u, left=True)        # S_i(u-)
    F_u = 1.0 - S_obs_fun(u, left=False)    # F_i(u)
    dN = ((time[:, None] == u[None, :]) & (event[:, None] == 0)).astype(float)
    dM = dN - dLc_fun(u)
    at_risk = u[None, :] <= time[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = np.where(at_risk, dM / (G_prev * S_prev), 0.0)
    c1 = np.cumsum(integrand, axis=1)
    c2 = np.cumsum(F_u * integrand, axis=1)
    k = np.searchsorted(u, grid, side="right") - 1  # last censoring time <= t
    I1 = np.where(k >= 0, c1[:, np.maximum(k, 0)], 0.0)
    I2 = np.where(k >= 0, c2[:, np.maximum(k, 0)], 0.0)
    F_t = 1.0 - S_obs_fun(grid, left=False)
    aug = F_t * I1 - I2
    G_T = G_fun(time, left=True, diag=True)  # G_i(T_i-)
    Y = ((time[:, None] <= grid[None, :]) & (event[:, None] == 1)).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ipcw = np.where(Y > 0, Y / G_T[:, None], 0.0)
    risk, terms = {}, {}
    for arm in (0, 1):
        pi = score if arm == 1 else 1.0 - score
        ind = (a == arm).astype(float) / pi
        F_ctf = 1.0 - S_ctf[arm]
        phi = F_ctf + ind[:, None] * (ipcw - F_ctf + aug)
        terms[arm] = phi
        risk[arm] = phi.mean(axis=0)
    return risk, terms


@register_adjustment
class AIPTW(Adjustment):
    """Augmented IPTW (doubly robust) survival at the target times.

    Three working models, all on the spec's confounders: a propensity model
    (``learner``, default unpenalised logistic), a Cox outcome model
    (treatment + confounders) and a Cox censoring model (treatment +
    confounders; with ``censoring: arm`` treatment only) for inverse
    probability of censoring weighting with the augmentation for censoring
    (AIPTW,AIPCW). This is R
    ``riskRegression::ate(event = coxph, treatment = glm, censor = coxph,
    estimator = "AIPTW")``. Consistent if the propensity and censoring models
    or the outcome model are correct.

    The estimator is evaluated at every event time up to the latest target,
    giving curves (not forced to be monotone), survival differences at the
    target times and the RMST difference (the area between the step curves,
    with its influence function integrated alike). Standard errors come from
    the influence function with the working models treated as known
    (variance_method ``influence_function``): this is riskRegression's
    ``ate(..., known.nuisance = TRUE)`` SE, not its default
    (``known.nuisance = FALSE``), which adds the terms for estimating the
    propensity, outcome and censoring models; the two differ slightly (the
    notes of every estimate say so; ``variance: bootstrap`` accounts for the
    nuisance estimation). With a ``cluster`` role (e.g. centre) the
    influence functions are summed within clusters (``cluster_robust``). No
    hazard ratio is reported (not a doubly robust target here). The median
    difference has no SE (the AIPTW curves are not monotone and the median
    has no influence function here) and is empty when a median is not
    reached by the latest target time, the end of the curves.

    References
    ----------
    Bai X, Tsiatis AA, O'Brien SM. Doubly-robust estimators of treatment-specific
    survival distributions in observational studies with stratified sampling.
    Biometrics 2013;69:830-9.
    Ozenne BMH, Scheike TH, Stærk L, Gerds TA. On the estimation of average
    treatment effects with right-censored time to event outcome and competing
    risks. Biom J 2020;62:751-63.
    Tsiatis AA. Semiparametric Theory and Missing Data. Springer; 2006 (ch. 9-10).
    """

    name = "aiptw"
    description = "Augmented IPTW (doubly robust): Cox outcome + propensity + Cox censoring models; IF-based SE."
    references = ("Ozenne BMH et al. Biom J 2020;62:751-63.", "Bai X, Tsiatis AA, O'Brien SM. Biometrics 2013;69:830-9.")
    options = (LEARNER_OPTION, SCORE_COLUMN_OPTION,
               Option("censoring", "str", "cox",
                      "censoring model: 'cox' (treatment + confounders) or 'arm' (treatment only: censoring "
                      "independent of the confounders within arm)", choices=("cox", "arm")),
               TIES_OPTION)
    incompatible = {"time_varying": TIME_VARYING_REASON, "clone_censor": CLONE_REASON,
                    "sequential_trials": STRATIFIED_REASON}

    def fit(self, data: DesignData, targets: Targets) -> "AIPTW":
        o = self.options_
        where = f"adjustment '{self.name}'"
        if getattr(data, "status", None) is not None:   # competing events: cumulative incidences
            from causal_hcc.adjust._competing import competing_aiptw

            self.output_, self.propensity_ = competing_aiptw(data, targets, where, o)
            return self
        check_unit_level(data, where)
        if not np.allclose(data.weight, 1.0):
            raise EstimationError(f"{where}: design weights are not supported")
        t, d = np.asarray(data.stop, float), np.asarray(data.event).astype(int)
        a = np.asarray(data.treatment).astype(int)
        if d.sum() == 0:
            raise EstimationError(f"{where}: no events for outcome '{data.outcome}'")
        ps = fit_propensity(data, learner=o["learner"], score_column=o["score_column"], where=where)
        self.propensity_ = ps
        e = ps.unit_score[ps.row_unit]
        if np.any((e <= 0) | (e >= 1)):
            raise EstimationError(f"{where}: propensity scores of exactly 0 or 1; AIPTW needs positivity")
        X, names, dropped = confounder_matrix(data)
        out_fit = fit_outcome_cox(t, d, a, X, names, ties=o["ties"])
        model_warnings = list(out_fit.warnings)
        if (d == 0).sum() == 0:
            raise EstimationError(f"{where}: no censored units; the censoring model cannot be fitted")
        Xc, cnames = (X, names) if o["censoring"] == "cox" else (X[:, :0], [])
        try:
            cens_fit = fit_outcome_cox(t, 1 - d, a, Xc, cnames, ties=o["ties"])
            if cens_fit.infinite:
                raise EstimationError(f"coxph: coefficient of {cens_fit.infinite[0]!r} may be infinite "
                                      f"(monotone likelihood)")
        except EstimationError as exc:
            raise EstimationError(f"{where}: censoring model failed ({exc}); option censoring: arm models "
                                  f"censoring on the arm only") from None
        model_warnings += [f"censoring model: {w}" for w in cens_fit.warnings]
        self.outcome_model_, self.censoring_model_ = out_fit, cens_fit
        lp = np.column_stack([a, X]) @ out_fit.coef
        lpc = np.column_stack([a, Xc]) @ cens_fit.coef
        lp_x = X @ out_fit.coef[1:] if X.shape[1] else np.zeros(t.size)
        tmax = max([*targets.survival_at, targets.rmst_tau or 0.0]) or float(t.max())
        grid = np.unique(t[(d == 1) & (t <= tmax)])
        if grid.size == 0:
            raise EstimationError(f"{where}: no events before the last target time {tmax:g}")
        bh = out_fit.baseline_hazard()
        bt, bH = bh["time"].to_numpy(), bh["hazard"].to_numpy()
        cb = cens_fit.baseline_hazard()
        ct, cH = cb["time"].to_numpy(), cb["hazard"].to_numpy()

        def H_at(times, Ht, Hv, left):
            idx = np.searchsorted(Ht, times, side="left" if left else "right") - 1
            return np.where(idx >= 0, Hv[np.maximum(idx, 0)], 0.0)

        def S_obs(times, left=False):
            return np.exp(-np.exp(lp)[:, None] * H_at(times, bt, bH, left)[None, :])

        def G(times, left=False, diag=False):
            H = H_at(times, ct, cH, left)
            if diag:
                return np.exp(-np.exp(lpc) * H)
            return np.exp(-np.exp(lpc)[:, None] * H[None, :])

        u = np.unique(t[(d == 0) & (t <= grid[-1])])
        dHc = np.diff(np.concatenate([[0.0], cH]))
        inc = np.zeros(u.size)
        pos = np.searchsorted(ct, u)
        ok = (pos < ct.size) & (ct[np.minimum(pos, ct.size - 1)] == u)
        inc[ok] = dHc[pos[ok]]

        def dLc(times):
            return np.exp(lpc)[:, None] * inc[None, :]

        S_ctf = {arm: np.exp(-np.exp(lp_x + out_fit.coef[0] * arm)[:, None] * H_at(grid, bt, bH, False)[None, :])
                 for arm in (0, 1)}
        risk, terms = aiptw_risk(t, d, a, e, S_ctf, grid, S_obs, G, dLc, u)
        n = t.size
        surv = {arm: 1.0 - risk[arm] for arm in (0, 1)}
        # influence of S_a(t) = -(phi - psi); of the difference S1 - S0 = -(phi1 - phi0) + (psi1 - psi0)
        if_diff = -(terms[1] - terms[0]) + (risk[1] - risk[0])[None, :]
        outer, cname = outer_cluster(data)
        if outer is None:
            def ss(m):  # sum of squared influences
                return (m ** 2).sum(axis=0)
        else:  # cluster-robust: influences summed within clusters first
            _, inv = np.unique(outer, return_inverse=True)

            def ss(m):
                g = np.zeros((inv.max() + 1,) + m.shape[1:])
                np.add.at(g, inv, m)
                return (g ** 2).sum(axis=0)
        se_arm = {arm: np.sqrt(ss(terms[arm] - risk[arm])) / n for arm in (0, 1)}
        self.curves_ = (grid, surv)
        self.influence_ = if_diff
        vm = "influence_function" if outer is None else "cluster_robust"
        common = dict(analysis_counts(data), variance_method=vm)
        out = self.output_ = StrategyOutput()
        if outer is not None:
            diag, notes, warns = cluster_notes(outer, cname, where)
            out.diagnostics["variance"] = diag
            out.notes += notes
            out.warnings += warns
        alpha = targets.alpha

        def at(tt):
            return int(np.searchsorted(grid, tt, side="right") - 1)

        beyond = beyond_follow_up(targets.survival_at, t, out.notes)
        for tt in targets.survival_at:
            k = at(tt)
            if tt in beyond:
                est, se = math.nan, math.nan
            elif k < 0:
                est, se = 0.0, 0.0
            else:
                est = float(surv[1][k] - surv[0][k])
                se = float(np.sqrt(ss(if_diff[:, k])) / n)
            out.estimates.append(wald_estimate("survival_difference", est, se, alpha=alpha, time=float(tt), **common))
        # risk ratio F1/F0: influence of log F1 - log F0 = IF(F1)/F1 - IF(F0)/F0, IF(F_a) = terms_a - F_a
        rr_t, rr1, rr0, rr_se = [], [], [], []
        for tt in targets.survival_at:
            k = at(tt)
            f1, f0 = (float(risk[1][k]), float(risk[0][k])) if k >= 0 else (0.0, 0.0)
            rr_t.append(float(tt)), rr1.append(f1), rr0.append(f0)
            if f1 > 0 and f0 > 0:
                infl = (terms[1][:, k] - f1) / f1 - (terms[0][:, k] - f0) / f0
                rr_se.append(float(np.sqrt(ss(infl)) / n))
            else:
                rr_se.append(math.nan)
        out.estimates += risk_ratio_estimates(rr_t, np.array(rr1), np.array(rr0), np.array(rr_se), alpha=alpha,
                                              variance_method=vm, common=analysis_counts(data), notes=out.notes)
        if targets.rmst_tau is not None:
            tau = float(targets.rmst_tau)
            c0, c = rmst_weights(grid, tau)
            r = {arm: c0 + float(c @ surv[arm]) for arm in (0, 1)}
            se = float(np.sqrt(ss(if_diff @ c)) / n)
            out.estimates.append(wald_estimate("rmst_difference", r[1] - r[0], se, alpha=alpha, time=tau, **common))
        m1, m0 = median_time(grid, surv[1]), median_time(grid, surv[0])
        out.estimates.append(EffectEstimate("median_difference", m1 - m0 if math.isfinite(m1 - m0) else math.nan,
                                            **{**common, "variance_method": "none"}))
        unreached = [data.arm_names[arm] for arm, m in ((1, m1), (0, m0)) if not math.isfinite(m)]
        if unreached:
            out.notes.append(f"AIPTW median difference: not estimated, the {' and '.join(unreached)} curve does "
                             f"not reach 0.5 by {float(grid[-1]):g}, the last event time up to the latest "
                             f"target time (the AIPTW curves end there)")
        else:
            out.notes.append("AIPTW median difference: the difference of the times where the AIPTW curves first "
                             "reach 0.5; no SE (the curves are not forced monotone and the median has no "
                             "influence function here; use variance: bootstrap)")
        out.notes.append("AIPTW SEs treat the propensity, outcome and censoring models as known (riskRegression "
                         "ate(known.nuisance = TRUE)); riskRegression's default also propagates their "
                         "estimation; variance: bootstrap does")
        out.estimates = [with_note(e, NUISANCE_AS_KNOWN) if math.isfinite(e.se) else e for e in out.estimates]
        out.curves = SurvivalCurves(curves_table(grid, surv, data, se=se_arm, alpha=alpha), method="aiptw",
                                    variance_method=vm, time_origin=data.time_origin)
        a_unit = ps.unit_treatment
        X_unit = np.asarray(data.X, float)[ps.unit_first_row]
        w_ate = treatment_weights(ps.unit_score, a_unit, "ATE", False)
        bal = balance_table(X_unit, a_unit, data.confounders, weights=w_ate)
        out.diagnostics["balance"] = bal
        out.diagnostics["propensity"] = propensity_histogram(ps.unit_score, a_unit, learner=ps.learner,
                                                             n_near=ps.n_near_0_or_1)
        out.diagnostics["propensity"]["firth_separation"] = ps.firth_separation
        epv = float(d.sum()) / (1 + X.shape[1])
        out.diagnostics["events_per_variable"] = epv
        out.diagnostics["outcome_model"] = {"names": list(out_fit.names), "coef": [float(x) for x in out_fit.coef]}
        out.diagnostics["censoring_model"] = {"names": list(cens_fit.names), "coef": [float(x) for x in cens_fit.coef]}
        Gmin = float(G(t, left=True, diag=True).min())
        out.diagnostics["censoring_model"]["min_G"] = Gmin
        out.warnings += model_warnings
        from causal_hcc.design._tv import loss_not_applied

        out.warnings += loss_not_applied(data, where)
        out.warnings += ps.warnings + balance_warnings(bal, f"{where} (ATE weights of the propensity model)")
        if epv < 10:
            out.warnings.append(f"{where}: few events per variable ({epv:.1f} < 10) in the Cox outcome model")
        if Gmin < 0.05:
            out.warnings.append(f"{where}: censoring survival falls to {Gmin:.3f}: inverse censoring weights are extreme")
        if dropped:
            out.warnings.append(f"{where}: constant confounders left out of the models: {', '.join(dropped)}")
        return self
