"""Parametric g-formula (standardisation) with a Cox outcome model."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from causal_hcc.adjust.propensity import CLONE_REASON, TIME_VARYING_REASON
from causal_hcc.base import Adjustment, DesignData, Targets
from causal_hcc.errors import EstimationError
from causal_hcc.results import EffectEstimate, SurvivalCurves
from causal_hcc._replicate import in_replicate
from causal_hcc.outcome.effects import TIES_OPTION, analysis_counts, confounder_terms, ph_test
from causal_hcc.strategies import register_adjustment

STRATIFIED_REASON = ("not implemented for stratified (sequential-trial) rows: it needs a per-trial baseline "
                     "hazard and standardisation within trial")


def check_unit_level(data: DesignData, where: str) -> None:
    """Outcome-model adjustments need one row per unit starting at the time origin."""
    if data.time_varying:
        raise EstimationError(f"{where}: {TIME_VARYING_REASON}")
    if data.stratum is not None:
        raise EstimationError(f"{where}: {STRATIFIED_REASON}")
    if data.n_rows != data.n_units or np.any(np.asarray(data.start) > 0):
        raise EstimationError(f"{where}: needs one row per unit starting at the time origin "
                              f"(design '{data.design}' gives counting-process rows)")


def confounder_matrix(data: DesignData) -> tuple[np.ndarray, list[str], list[str]]:
    """(X without constant columns, centred at its column means; kept names, dropped names).

    Centred because every prediction ``exp(-H0(t) exp(x'b))`` then takes the
    baseline hazard at the covariate means, as R's ``survfit.coxph`` does: at
    covariates = 0, a confounder with a large offset (calendar year 2000..2012,
    log-HR 0.5 per year) underflows ``H0`` and overflows ``exp(x'b)``, and the
    estimates came out NaN (riskRegression's ``predictCox`` does the same).
    Coefficients and predictions do not depend on the centring.
    """
    X = np.asarray(data.X, dtype=float)
    keep = np.ptp(X, axis=0) > 0 if X.shape[0] else np.zeros(X.shape[1], bool)
    names = list(data.confounders)
    Xk = X[:, keep]
    if Xk.shape[0]:
        Xk = Xk - Xk.mean(axis=0)
    return Xk, [c for c, k in zip(names, keep) if k], [c for c, k in zip(names, keep) if not k]


def fit_outcome_cox(time, event, a, X, names, weights=None, ties: str = "efron"):
    """Cox model of the outcome on treatment + confounders (Efron ties unless ``ties``); its
    warnings (R's infinite-coefficient check) are in ``fit.warnings``."""
    from causal_hcc.core.cox import coxph

    from causal_hcc.outcome.effects import check_cox_fit

    Z = np.column_stack([np.asarray(a, dtype=float), X])
    w = None if weights is None or np.allclose(weights, 1.0) else weights
    fit = coxph(time, event, Z, weights=w, robust=False, names=["treatment"] + list(names), ties=ties)
    check_cox_fit(fit)  # a bootstrap replicate with an infinite treatment coefficient fails, counted
    return fit


def rmst_step(times: np.ndarray, surv: np.ndarray, tau: float) -> float:
    """Area under a right-continuous step function S (S = 1 before ``times[0]``) from 0 to ``tau``."""
    t = np.asarray(times, dtype=float)
    s = np.asarray(surv, dtype=float)
    keep = t <= tau
    t, s = t[keep], s[keep]
    knots = np.concatenate([[0.0], t, [tau]])
    vals = np.concatenate([[1.0], s])
    return float(np.sum(vals * np.diff(knots)))


def rmst_weights(times: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """(c0, c) with RMST(tau) = c0 + sum_k c[k] S(times[k]) for a step function S with steps at ``times``.

    Linear in S, so the influence function of an RMST is ``sum_k c[k] IF_k``.
    """
    t = np.asarray(times, dtype=float)
    nxt = np.minimum(np.concatenate([t[1:], [np.inf]]), tau)
    c = np.where(t <= tau, nxt - t, 0.0)
    c0 = float(min(t[0], tau)) if t.size else float(tau)
    return c0, c


def beyond_follow_up(times, follow_up: np.ndarray, notes: list[str]) -> set[float]:
    """Target times after the last follow-up time: not estimable (riskRegression's ``predictCox`` gives NA).

    A Cox model's predicted survival is a step function that ends at the last
    observed time; carrying it on to a later target would invent follow-up.
    Adds one note per such time to ``notes``.
    """
    last = float(np.max(follow_up)) if np.size(follow_up) else math.nan
    out = {float(tt) for tt in times if tt > last}
    for tt in sorted(out):
        notes.append(f"survival difference at {tt:g}: not estimable: after the last follow-up time {last:g} "
                     "(the model's survival curves end there)")
    return out


def median_time(times: np.ndarray, surv: np.ndarray) -> float:
    hit = np.flatnonzero(np.asarray(surv) <= 0.5)
    return float(times[hit[0]]) if hit.size else math.nan


def curves_table(grid: np.ndarray, curves: dict[int, np.ndarray], data: DesignData,
                 se: dict[int, np.ndarray] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Long curve table (CURVE_COLUMNS) of standardised curves; n_at_risk is the observed arm's risk set."""
    from causal_hcc.core._dist import norm_ppf

    z = norm_ppf(1 - alpha / 2)
    parts = []
    for arm in (0, 1):
        m = np.asarray(data.treatment) == arm
        stop = np.asarray(data.stop)[m]
        n_risk = (stop[None, :] >= grid[:, None]).sum(axis=1)
        s = curves[arm]
        e = se[arm] if se is not None else np.full(grid.size, np.nan)
        parts.append(pd.DataFrame({"time": grid, "group": data.arm_names[arm], "surv": s, "se": e,
                                   "ci_lower": np.clip(s - z * e, 0, 1), "ci_upper": np.clip(s + z * e, 0, 1),
                                   "n_at_risk": n_risk}))
    return pd.concat(parts, ignore_index=True)


@register_adjustment
class GFormula(Adjustment):
    """Standardisation (parametric g-formula) with a Cox outcome model.

    A Cox model of the outcome on treatment + confounders (Efron ties,
    Efron-adjusted Breslow baseline hazard as R ``survfit.coxph``) predicts
    each unit's survival under treat-all and treat-none; the standardised
    curves are their averages over all units (design weights, if any, are
    used as case weights). Reported: survival difference and risk ratio
    (1 - S1) / (1 - S0) at the target times,
    RMST difference at ``rmst_tau`` (area between the standardised step
    curves), median difference, and the curves (groups ``treated`` /
    ``untreated``).

    No hazard ratio is reported: the Cox coefficient is a conditional HR,
    and a marginal HR is not a standardisation output (the standardised
    curves are not proportional-hazards curves in general).

    Variance: the whole-pipeline bootstrap (``needs_bootstrap``); the point
    fit alone leaves ``se`` empty with ``variance_method = "bootstrap"``.

    References
    ----------
    Hernán MA, Robins JM. Causal Inference: What If. Chapman & Hall/CRC; 2020
    (ch. 13 and 17).
    Robins J. A new approach to causal inference in mortality studies with a
    sustained exposure period. Math Model 1986;7:1393-512.
    Ozenne BMH, Scheike TH, Stærk L, Gerds TA. On the estimation of average
    treatment effects with right-censored time to event outcome and competing
    risks. Biom J 2020;62:751-63 (riskRegression ``ate``).
    """

    name = "gformula"
    description = "Parametric g-formula: Cox outcome model, standardised survival under treat-all vs treat-none."
    references = ("Hernán MA, Robins JM. Causal Inference: What If. 2020, ch. 13, 17.",
                  "Ozenne BMH et al. Biom J 2020;62:751-63.")
    options = (TIES_OPTION,)
    incompatible = {"time_varying": TIME_VARYING_REASON, "clone_censor": CLONE_REASON,
                    "sequential_trials": STRATIFIED_REASON}
    needs_bootstrap = True

    def label(self) -> str:
        return "gformula(breslow)" if self.options_["ties"] == "breslow" else "gformula"

    def fit(self, data: DesignData, targets: Targets) -> "GFormula":
        self.options_
        where = f"adjustment '{self.name}'"
        if getattr(data, "status", None) is not None:   # competing events: cumulative incidences
            from causal_hcc.adjust._competing import competing_gformula

            self.output_ = competing_gformula(data, targets, where)
            return self
        check_unit_level(data, where)
        t, d, a = np.asarray(data.stop, float), np.asarray(data.event), np.asarray(data.treatment, float)
        if d.sum() == 0:
            raise EstimationError(f"{where}: no events for outcome '{data.outcome}'")
        if a.min() == a.max():
            raise EstimationError(f"{where}: only one arm present")
        X, names, dropped = confounder_matrix(data)
        w = np.asarray(data.weight, float)
        fit = fit_outcome_cox(t, d, a, X, names, w, ties=self.options_["ties"])
        self.outcome_model_ = fit
        grid = np.unique(t[d == 1])
        lp_x = X @ fit.coef[1:] if X.shape[1] else np.zeros(t.size)
        H0 = fit.cumulative_hazard(grid)
        curves = {}
        self.unit_survival_ = {}
        for arm in (0, 1):
            S = np.exp(-np.exp(lp_x + fit.coef[0] * arm)[:, None] * H0[None, :])
            self.unit_survival_[arm] = S
            curves[arm] = (w @ S) / w.sum()
        self.curves_ = (grid, curves)
        common = dict(analysis_counts(data),
                      variance_method="bootstrap")
        out = self.output_ = _empty_output()
        step = lambda arm, tt: float(curves[arm][np.searchsorted(grid, tt, side="right") - 1]) \
            if np.searchsorted(grid, tt, side="right") > 0 else 1.0
        beyond = beyond_follow_up(targets.survival_at, t, out.notes)
        for tt in targets.survival_at:
            est = math.nan if tt in beyond else step(1, tt) - step(0, tt)
            out.estimates.append(EffectEstimate("survival_difference", est, time=float(tt), **common))
        for tt in targets.survival_at:
            f1, f0 = 1.0 - step(1, tt), 1.0 - step(0, tt)
            rr = math.nan if tt in beyond else (f1 / f0 if f0 > 0 else math.nan)
            out.estimates.append(EffectEstimate("risk_ratio", rr, time=float(tt), **common))
        if targets.rmst_tau is not None:
            tau = float(targets.rmst_tau)
            out.estimates.append(EffectEstimate("rmst_difference", rmst_step(grid, curves[1], tau)
                                                - rmst_step(grid, curves[0], tau), time=tau, **common))
        m1, m0 = median_time(grid, curves[1]), median_time(grid, curves[0])
        out.estimates.append(EffectEstimate("median_difference", m1 - m0 if math.isfinite(m1 - m0) else math.nan,
                                            **common))
        out.curves = SurvivalCurves(curves_table(grid, curves, data, alpha=targets.alpha), method="g-formula",
                                    variance_method="bootstrap", time_origin=data.time_origin)
        from causal_hcc.adjust.multivariable import epv_guard

        epv_diag, epv_warns = epv_guard(data, 1 + X.shape[1], "Cox outcome model")
        out.diagnostics.update(epv_diag)
        out.diagnostics["outcome_model"] = {"names": list(fit.names), "coef": [float(c) for c in fit.coef],
                                            "se": [float(s) for s in fit.se]}
        out.diagnostics["medians"] = {data.arm_names[0]: {"median": _f(m0)}, data.arm_names[1]: {"median": _f(m1)}}
        out.warnings += list(fit.warnings)
        if not in_replicate():
            ph, warns = ph_test(fit, t, d, np.column_stack([a, X]), ["treatment"] + list(names),
                                weights=None if np.allclose(w, 1.0) else w, groups=confounder_terms(data), where=f"{where}: Cox outcome model",
                                consequence="the standardised curves rest on a misspecified outcome model")
            out.diagnostics["ph_test"] = ph
            out.warnings += warns
        out.warnings += [f"{where}: {w}" for w in epv_warns]
        if dropped:
            out.warnings.append(f"{where}: constant confounders left out of the model: {', '.join(dropped)}")
        from causal_hcc.design._tv import loss_not_applied

        out.warnings += loss_not_applied(data, where)
        out.notes.append("g-formula: no hazard ratio (the Cox coefficient is conditional); SEs and CIs come from "
                         "the whole-pipeline bootstrap")
        return self


def _empty_output():
    from causal_hcc.results import StrategyOutput
    return StrategyOutput()


def _f(v: float):
    return float(v) if math.isfinite(v) else None
