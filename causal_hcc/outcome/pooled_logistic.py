"""Pooled logistic outcome model on person-period data (discrete-time hazard).

``outcome_model: pooled_logistic`` replaces the Cox model of
:func:`causal_hcc.outcome.effects.estimate_effects`: the design's
(start, stop] rows are expanded into periods of width ``period`` (the
spec's time unit; 1 by default, the natural choice for person-period data)
and a logistic model of the event in each period is fitted,

    logit P(Y_k = 1 | at risk at the start of period k)
        = b0 + b_A A + f(k) [+ g(trial)] [+ covariates],

with the design's (and the adjustment's) weights as prior weights, ``k``
the period of follow-up (0, 1, ...) counted from the time origin of the row
(the trial start in sequential trials), ``f`` the ``time_terms`` basis of k,
and, for sequential trials, the same basis of the trial index (as
TrialEmulation's ``trial_period`` terms). This is the model of Hernán &
Robins ch. 17 and of TrialEmulation / pySEQTarget.

Rules of the expansion (documented in docs/time_varying.md):

* a row (a, b] contributes the periods k with ``a <= k h < b`` (it is under
  follow-up at the period's start); treatment, weight and covariates of a
  period are those of the row that covers its start;
* an event at b falls in period ``ceil(b / h) - 1`` (the period (k h,
  (k + 1) h] that contains b): an outcome in period k is an event at the end
  of that period, as in the person-period layout;
* censoring inside a period counts as surviving it (choose ``period`` no
  wider than the resolution of the data).

Outputs:

* ``hr``: the odds ratio of treatment per period, exp(b_A), with the
  cluster-robust SE (patients, or the cohort's ``cluster`` role). It
  approximates the hazard ratio when the per-period hazard is small; notes
  say so.
* survival curves per arm ``S_a(K h) = mean_i prod_{k<K} (1 - p_ik(a))``,
  standardised over the units at the time origin (weighted by their weight
  there; without covariates or trial terms every unit has the same curve),
  and from them the survival difference, ``risk_ratio``, RMST difference and
  median difference. SEs by the delta method on the coefficients' sandwich
  plus the sampling of the standardisation population: the influence of
  cluster g on a functional theta is ``grad(theta)' bread U_g + sum_{i in g}
  w_i (theta_i - theta) / sum w``, variance the sum of its squares (the
  weights treated as fixed, as everywhere else in the pipeline).

Checked against R ``glm(..., family = binomial, weights =)`` with the same
terms, ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)`` and the same
delta-method functionals (tests/reference/outcome_pooled_logistic.R).

References
----------
D'Agostino RB, Lee ML, Belanger AJ, et al. Relation of pooled logistic
regression to time dependent Cox regression analysis: the Framingham Heart
Study. Stat Med 1990;9:1501-15.
Hernán MA, Robins JM. Causal Inference: What If. CRC 2020, ch. 17.
Danaei G, Rodríguez LAG, Cantero OF, Logan R, Hernán MA. Observational data
for comparative effectiveness research: an emulation of randomised trials of
statins and primary prevention of coronary heart disease. Stat Methods Med
Res 2013;22:70-96.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from causal_hcc.base import dense_codes
from causal_hcc.core.logistic import expit, logistic_fit, logistic_fit_patterns
from causal_hcc.errors import EstimationError
from causal_hcc.results import EffectEstimate, StrategyOutput, SurvivalCurves, risk_ratio_estimates, wald_estimate

__all__ = ["TIME_TERMS", "time_basis", "person_periods", "PersonPeriods", "pooled_logistic_effects"]

#: bases of the period index k offered by ``time_terms``
TIME_TERMS: tuple[str, ...] = ("linear", "quadratic", "cubic", "rcs3", "rcs4", "rcs5")
#: time terms whose basis needs no knots (names without the values)
_POLYNOMIAL: tuple[str, ...] = ("linear", "quadratic", "cubic")

_EPS = 1e-9


def time_basis(k: np.ndarray, kind: str, knots: np.ndarray | None = None, prefix: str = "period"
               ) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Basis of the period index: ``(matrix, names, knots)``.

    ``linear``: k; ``quadratic``: k, k^2; ``cubic``: k, k^2, k^3 (R ``k +
    I(k^2) + I(k^3)``); ``rcsN``: ``rms::rcs(k, N)`` (Harrell's restricted
    cubic spline, knots at the default quantiles of k over the fitted
    records, :func:`causal_hcc.formula.rcs_knots`; pass ``knots`` to
    evaluate at other values).
    """
    k = np.asarray(k, dtype=float)
    if kind in ("linear", "quadratic", "cubic"):
        deg = {"linear": 1, "quadratic": 2, "cubic": 3}[kind]
        cols = [k ** d for d in range(1, deg + 1)]
        names = [prefix] + [f"{prefix}^{d}" for d in range(2, deg + 1)]
        return np.column_stack(cols), names, None
    if kind.startswith("rcs"):
        from causal_hcc.formula import rcs_basis, rcs_knots

        if knots is None:
            knots = rcs_knots(k, int(kind[3:]))
        M = rcs_basis(k, knots)
        return M, [prefix + "'" * j for j in range(M.shape[1])], knots
    raise EstimationError(f"time_terms must be one of {', '.join(TIME_TERMS)}, got {kind!r}")


def _names_knots(values: np.ndarray, kind: str, prefix: str) -> tuple[list[str], np.ndarray | None]:
    """Column names and (for splines) knots of :func:`time_basis` on ``values``, without building the
    polynomial basis of millions of records."""
    if kind in ("linear", "quadratic", "cubic"):
        deg = {"linear": 1, "quadratic": 2, "cubic": 3}[kind]
        return [prefix] + [f"{prefix}^{d}" for d in range(2, deg + 1)], None
    _, names, knots = time_basis(values, kind, prefix=prefix)
    return names, knots


@dataclass
class PersonPeriods:
    """One record per unit and period at risk: ``row`` (the design row covering the period's start),
    ``unit``, ``k`` (period index from the row's time origin) and ``y`` (event in the period)."""

    row: np.ndarray
    unit: np.ndarray
    k: np.ndarray
    y: np.ndarray


def person_periods(start: np.ndarray, stop: np.ndarray, event: np.ndarray, unit: np.ndarray,
                   period: float, *, with_unit: bool = True) -> PersonPeriods:
    """Expand (start, stop] rows into periods of width ``period`` (rules in the module docstring).
    ``with_unit=False``: ``unit`` of the result is None (``unit[row]``, millions of records, left to the caller)."""
    a = np.asarray(start, dtype=float) / period
    b = np.asarray(stop, dtype=float) / period
    unit = np.asarray(unit)
    klo = np.ceil(a - _EPS).astype(np.int64)
    khi = np.ceil(b - _EPS).astype(np.int64) - 1
    del a, b
    cnt = np.maximum(khi - klo + 1, 0)
    row = np.repeat(np.arange(klo.shape[0]), cnt)
    # k = klo[row] + (record number - first record of its row), as one repeat added to an arange in place
    # (the same integers with two fewer arrays of millions of records)
    k = np.arange(row.shape[0], dtype=np.int64)
    k += np.repeat(klo - (np.cumsum(cnt) - cnt), cnt)
    y = np.zeros(row.shape[0], dtype=np.int8)
    ev = np.flatnonzero(np.asarray(event) == 1)
    if ev.size:
        # the record (unit, ceil(b) - 1): the event row's own last record when the row has records ...
        own = cnt[ev] > 0
        last = np.cumsum(cnt) - 1
        y[last[ev[own]]] = 1
        # ... else (a row that starts inside its event's period, split mid-period) the record of the row
        # covering that period's start
        rest = ev[~own]
        if rest.size:
            order = np.lexsort((k, unit[row]))
            pos = _find(unit[row][order], k[order], unit[rest], khi[rest])
            hit = pos >= 0
            y[order[pos[hit]]] = 1
    return PersonPeriods(row=row, unit=unit[row] if with_unit else None, k=k, y=y)


def _find(ku: np.ndarray, kk: np.ndarray, u: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Positions of the pairs (u, k) among the lexicographically sorted pairs (ku, kk); -1 where absent."""
    kmax = int(max(kk.max(initial=0), k.max(initial=0))) + 1
    uc = dense_codes(np.concatenate([ku, u]))
    key = uc[:ku.shape[0]] * kmax + kk          # sorted, since (ku, kk) is
    q = uc[ku.shape[0]:] * kmax + k
    j = np.searchsorted(key, q)
    ok = (j < key.shape[0]) & (key[np.minimum(j, key.shape[0] - 1)] == q)
    return np.where(ok, j, -1)


def pooled_logistic_effects(data, targets, *, w: np.ndarray, cluster: np.ndarray | None,
                            covariates: np.ndarray | None, covariate_names: Sequence[str], time_terms: str,
                            period: float, differences: bool, common: dict, out: StrategyOutput,
                            curves_method: str = "pooled-logistic") -> StrategyOutput:
    """Fill ``out`` with the pooled-logistic estimates on ``data`` (see the module docstring)."""
    alpha = targets.alpha
    # (record-level arrays are built when needed and dropped when done: the model's peak memory is a cost
    # of its own on a machine where first-touched memory is expensive, ~0.15 s per 100 MB)
    pp = person_periods(data.start, data.stop, data.event, data.unit, period, with_unit=False)
    if pp.y.sum() == 0:
        raise EstimationError(f"design '{data.design}': no events in the person-period records of outcome "
                              f"'{data.outcome}'")
    r, y_rec, k_rec = pp.row, pp.y, pp.k
    del pp   # (k_rec is dropped before the fit: only its maximum and the numbers at risk are needed after it)
    # (treatment in its own 0/1 dtype: a float copy and an int64 one of millions of records were 80 MB of the
    # peak memory, and on a machine where first-touched memory is expensive every 100 MB costs ~0.15 s)
    a = np.asarray(data.treatment)[r]
    if a.dtype.kind not in "iu":
        a = a.astype(float)
    tnames, knots = _names_knots(k_rec, time_terms, "period")
    names = ["(intercept)", "treatment"] + tnames
    trial_knots = None
    strat = None
    if data.stratum is not None:
        strat = np.asarray(data.stratum, dtype=float)
        if np.ptp(strat) > 0:   # (the record values only where knots are read from them)
            snames, trial_knots = _names_knots(strat[r] if time_terms not in _POLYNOMIAL else strat, time_terms,
                                               "trial")
            names += snames
        else:
            strat = None
    Xc = None
    if covariates is not None and np.asarray(covariates).size:
        Xc = np.asarray(covariates, dtype=float)
        names += list(covariate_names)
    cl = np.asarray(data.patient if cluster is None else cluster)
    if cluster is None and cl.dtype.kind in "iu" and cl.size and cl.min() >= 0:
        codes = cl                  # patient positions: codes already (clusters without records add nothing)
    else:
        codes = dense_codes(cl)
    codes_r = codes[r]              # the cluster of each record (codes[frow] below is codes_r[first])
    del codes, cl
    where = f"design '{data.design}': pooled logistic outcome model"
    if Xc is None:
        # no covariates: the design row is a function of (treatment, period, trial) -- a few hundred
        # patterns for millions of records; fitted on the patterns (the same MLE), sandwich on the records
        # the pattern key (period, trial, treatment) has a small range: patterns by counting, not sorting
        if strat is None:
            tcode, tvals = np.zeros(r.shape[0], dtype=np.int64), np.zeros(1)
        else:
            s0 = float(strat.min())
            tint = strat - s0
            if np.all(tint == np.round(tint)) and tint.max() < 1e6:      # trial indices: codes as they are
                tcode, tvals = tint.astype(np.int64)[r], np.arange(int(tint.max()) + 1) + s0
            else:
                tvals, tcode = np.unique(strat[r], return_inverse=True)
                tcode = tcode.ravel().astype(np.int64)
            del tint
        nt = tvals.size
        key = np.multiply(k_rec, nt, dtype=np.int64)    # (k nt + trial) 2 + treatment, in one array
        key += tcode
        del tcode
        key *= 2
        key += a if a.dtype.kind in "iu" else a.astype(np.int64)
        present = np.bincount(key) > 0
        ukey = np.flatnonzero(present)
        pat_of = (np.cumsum(present) - 1)[key]
        del key
        kk, rest = np.divmod(ukey, 2 * nt)
        tt_, aa = np.divmod(rest, 2)
        cols = [np.ones(ukey.size), aa.astype(float)[:, None], time_basis(kk, time_terms, knots)[0]]
        if strat is not None:
            cols.append(time_basis(tvals[tt_], time_terms, trial_knots, prefix="trial")[0])
        Zpat = np.column_stack(cols)
        Kmax = int(k_rec.max()) + 1
        n_risk = {arm: np.bincount(k_rec[a == arm], minlength=Kmax) for arm in (0, 1)}
        del k_rec
        fit = logistic_fit_patterns(Zpat, pat_of, y_rec, w[r], cluster_codes=codes_r, names=names,
                                    where=where)
        Z = Zpat
    else:
        parts = [np.ones(r.shape[0]), a[:, None], time_basis(k_rec, time_terms, knots)[0]]
        if strat is not None:
            parts.append(time_basis(strat[r], time_terms, trial_knots, prefix="trial")[0])
        parts.append(Xc[r])
        Z = np.column_stack(parts)
        del parts
        Kmax = int(k_rec.max()) + 1
        n_risk = {arm: np.bincount(k_rec[a == arm], minlength=Kmax) for arm in (0, 1)}
        del k_rec
        fit = logistic_fit(Z, y_rec, w[r], cluster_codes=codes_r, names=names, where=where)
    V = fit.var_robust
    b = fit.coef
    out.estimates.append(wald_estimate("hr", math.exp(b[1]), float(math.sqrt(V[1, 1])), alpha=alpha,
                                       log_scale=True, variance_method="cluster_robust", **common))
    out.diagnostics["pooled_logistic"] = {
        "names": names, "coef": [float(c) for c in b], "se": [float(s) for s in np.sqrt(np.diag(V))],
        "period": float(period), "time_terms": time_terms, "records": int(r.shape[0]),
        "events": int(y_rec.sum()), "n_iter": int(fit.n_iter),
        "knots": None if knots is None else [float(x) for x in knots]}
    out.notes.append(
        f"pooled logistic outcome model on {r.shape[0]} person-periods of width {period:g} ({time_terms} terms of "
        f"the period{' and of the trial' if strat is not None else ''}): the 'hr' row is the odds ratio of "
        "treatment per period (close to the hazard ratio when the per-period risk is small), SE cluster-robust")
    if fit.separated:
        out.warnings.append(f"design '{data.design}': pooled logistic outcome model: fitted probabilities "
                            "numerically 0 or 1 (some period or covariate pattern has no events)")
    if data.time_varying or not differences:
        return out

    # ---- standardised curves ------------------------------------------------
    unit_r = np.asarray(data.unit)[r]
    first = np.flatnonzero(np.r_[True, unit_r[1:] != unit_r[:-1]]) if _sorted_units(unit_r) else \
        np.unique(unit_r, return_index=True)[1]
    del unit_r
    frow = r[first]
    om = w[frow]
    fixed = []
    if strat is not None:
        fixed.append(time_basis(strat[frow], time_terms, trial_knots, prefix="trial")[0])
    if Xc is not None:
        fixed.append(Xc[frow])
    if fixed and Xc is None:        # trial terms only: one pattern per trial
        tr, pinv = np.unique(strat[frow], return_inverse=True)
        pinv = pinv.ravel()
        pat = time_basis(tr, time_terms, trial_knots, prefix="trial")[0]
        pw = np.bincount(pinv, weights=om, minlength=pat.shape[0])
    elif fixed:                     # covariates (continuous ones are distinct per unit): one pattern per unit
        pat, pinv, pw = np.column_stack(fixed), np.arange(frow.shape[0]), om
    else:
        pat, pinv, pw = np.zeros((1, 0)), np.zeros(first.shape[0], dtype=np.int64), np.array([om.sum()])
    Tall = time_basis(np.arange(Kmax), time_terms, knots)[0]
    sw = pw.sum()
    ucode = codes_r[first]          # cluster of each unit (rows of the fit's score influence)
    curves, grads, Spat = {}, {}, {}
    # the design row of unit i in period k under arm a is z = [1, a, T(k), pat_i]; the gradient of
    # S_i(K) = prod_{k<K} (1 - h_ik) is -S_i(K) sum_{k<K} h_ik z_ik, accumulated by its blocks
    # (sum h, sum h T(k)) so that no (units x p) matrix is built per period
    q = Tall.shape[1]
    lp_pat = pat @ b[2 + q:] if pat.shape[1] else np.zeros(pat.shape[0])
    for arm in (0, 1):
        S = np.ones(pat.shape[0])
        c0 = np.zeros(pat.shape[0])
        cT = np.zeros((pat.shape[0], q))
        Sk = np.empty((Kmax + 1, pat.shape[0]))
        Sk[0] = S
        G = np.zeros((Kmax + 1, Z.shape[1]))
        for kk in range(Kmax):
            h = expit(b[0] + b[1] * arm + Tall[kk] @ b[2:2 + q] + lp_pat)
            c0 += h
            cT += h[:, None] * Tall[kk][None, :]
            S = S * (1.0 - h)
            Sk[kk + 1] = S
            m = pw * S
            g0 = float(np.sum(m * c0))
            G[kk + 1] = -np.concatenate([[g0, arm * g0], m @ cT, (m * c0) @ pat]) / sw
        Spat[arm] = Sk
        curves[arm] = (Sk @ pw) / sw            # S at K = 0..Kmax
        grads[arm] = G
    infl_beta = fit.score_influence             # (n_clusters, p): bread U_g

    def influence(coef_grad: np.ndarray, pop: np.ndarray) -> np.ndarray:
        """Per-cluster influence: delta method on the coefficients + standardisation population."""
        v = infl_beta @ coef_grad
        if fixed:
            v = v + np.bincount(ucode, weights=pop, minlength=v.shape[0])
        return v

    def pop_term(arm: int, K: int) -> np.ndarray:
        return om * (Spat[arm][K][pinv] - curves[arm][K]) / sw

    def K_at(t: float) -> int:
        return int(math.floor(t / period + _EPS))

    grid = np.arange(1, Kmax + 1) * period
    # curve table: pointwise SE by the same influence
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / 2)
    tabs = []
    for arm in (0, 1):
        se = np.array([math.sqrt(float((influence(grads[arm][K], pop_term(arm, K)) ** 2).sum()))
                       for K in range(1, Kmax + 1)])
        s = curves[arm][1:]
        tabs.append(pd.DataFrame({"time": grid, "group": data.arm_names[arm], "surv": s, "se": se,
                                  "ci_lower": np.clip(s - z * se, 0, 1), "ci_upper": np.clip(s + z * se, 0, 1),
                                  "n_at_risk": n_risk[arm]}))
    out.curves = SurvivalCurves(pd.concat(tabs, ignore_index=True), method=curves_method,
                                variance_method="cluster_robust", time_origin=data.time_origin)
    times = [float(t) for t in targets.survival_at]

    rr_r1, rr_r0, rr_se = [], [], []
    for t in times:
        K = K_at(t)
        if K > Kmax:
            out.estimates.append(EffectEstimate("survival_difference", math.nan, time=t, variance_method="none",
                                                **common))
            rr_r1.append(math.nan), rr_r0.append(math.nan), rr_se.append(math.nan)
            continue
        s1, s0 = float(curves[1][K]), float(curves[0][K])
        v = influence(grads[1][K] - grads[0][K], pop_term(1, K) - pop_term(0, K))
        out.estimates.append(wald_estimate("survival_difference", s1 - s0, float(np.sqrt((v ** 2).sum())),
                                           alpha=alpha, time=t, variance_method="cluster_robust", **common))
        f1, f0 = 1.0 - s1, 1.0 - s0
        rr_r1.append(f1), rr_r0.append(f0)
        if f1 > 0 and f0 > 0:
            v = influence(-grads[1][K] / f1 + grads[0][K] / f0, -pop_term(1, K) / f1 + pop_term(0, K) / f0)
            rr_se.append(float(np.sqrt((v ** 2).sum())))
        else:
            rr_se.append(math.nan)
    if times:
        ok = [i for i, t in enumerate(times) if K_at(t) <= Kmax]
        if len(ok) < len(times):
            out.notes.append(f"pooled logistic: no survival difference or risk ratio beyond the last period "
                             f"({Kmax * period:g}): the model would extrapolate")
        out.estimates += risk_ratio_estimates([times[i] for i in ok], np.array(rr_r1)[ok], np.array(rr_r0)[ok],
                                              np.array(rr_se)[ok], alpha=alpha, variance_method="cluster_robust",
                                              common=common, notes=out.notes)
    if targets.rmst_tau is not None:
        tau = float(targets.rmst_tau)
        # RMST = sum_K S_K * |[K h, (K+1) h) within [0, tau)|
        lens = np.clip(tau - np.arange(Kmax + 1) * period, 0.0, period)
        if tau > (Kmax + 1) * period:
            lens[-1] = tau - Kmax * period   # the last step extends to tau (curve held flat)
        rm = {arm: float(lens @ curves[arm]) for arm in (0, 1)}
        g = lens @ (grads[1] - grads[0])
        pop = sum(lens[K] * (pop_term(1, K) - pop_term(0, K)) for K in range(Kmax + 1) if lens[K] > 0) \
            if fixed else np.zeros(om.shape[0])
        v = influence(g, pop)
        out.estimates.append(wald_estimate("rmst_difference", rm[1] - rm[0], float(np.sqrt((v ** 2).sum())),
                                           alpha=alpha, time=tau, variance_method="cluster_robust", **common))
    med = {}
    for arm in (0, 1):
        hit = np.flatnonzero(curves[arm] <= 0.5)
        med[arm] = float(hit[0] * period) if hit.size else math.nan
    out.estimates.append(EffectEstimate("median_difference", med[1] - med[0] if math.isfinite(med[1] - med[0])
                                        else math.nan, variance_method="none", **common))
    out.diagnostics["medians"] = {data.arm_names[arm]: {"median": med[arm] if math.isfinite(med[arm]) else None}
                                  for arm in (0, 1)}
    out.notes.append("pooled logistic survival curves: standardised over the units at the time origin"
                     if fixed else "pooled logistic survival curves: one curve per arm (no covariates)")
    return out


def _sorted_units(unit: np.ndarray) -> bool:
    """True when each unit's records are contiguous (then the first record of a unit starts each run)."""
    if unit.shape[0] < 2:
        return True
    change = np.flatnonzero(unit[1:] != unit[:-1])
    starts = unit[np.r_[0, change + 1]]
    from causal_hcc.base import n_distinct

    return n_distinct(starts) == starts.shape[0]
