"""Multiple imputation of missing confounders, and Rubin's rules.

``missing: {method: mice, m: 20, seed: 1}`` in the spec sends the data
through :func:`impute` *before* any :class:`~causal_hcc.cohort.Cohort` is
built: every confounder with missing values is imputed by chained equations
with predictive mean matching (PMM), giving ``m`` completed DataFrames. The
pipeline runs every strategy on each of them and :func:`pool_estimates`
combines the ``m`` results with Rubin's rules.

The imputation model of each incomplete confounder holds every other
confounder, the treatment and, for **every outcome**, the event indicator and
the Nelson--Aalen cumulative hazard at the patient's own time, H(T) (White &
Royston 2009: with a Cox analysis model, imputing on T itself or log T is
biased; the event indicator and H(T) approximate the right conditional).

Why statsmodels, and what is changed
------------------------------------
statsmodels' :class:`~statsmodels.imputation.mice.MICEData` gives the
chained-equations machinery with PMM (visit order, parameter draws from the
normal approximation of each OLS imputation model, donor pools). scikit-learn's
``IterativeImputer`` has no predictive mean matching (with
``sample_posterior`` it draws from a normal predictive distribution, which
invents values outside the observed support -- a negative tumour size, a 0.4
on a 0/1 variable), so it serves worse here. Two things are changed in a
small subclass, to follow R ``mice``'s ``pmm`` (van Buuren 2018, sec. 3.4):

* **type-1 matching**: observed cases are predicted with the fitted
  coefficients and missing cases with the drawn ones. statsmodels uses the
  drawn coefficients on both sides (type 2), which with few predictors
  picks the same donors whatever the draw and so understates the
  between-imputation variance;
* each of the ``m`` imputations is its own chain of ``iterations`` cycles
  (R's ``m`` chains of ``maxit``) seeded from ``numpy.random.SeedSequence(seed)``,
  never from the global random state.

Which variables can be imputed
------------------------------
Numeric confounders, booleans and two-level categorical confounders by PMM
(two levels imputed as 0/1 and mapped back to their levels); categorical
confounders with three or more levels by R ``mice``'s ``polyreg``
(:func:`polyreg_draw`: a multinomial logit on the other variables, fitted
with ``mice``'s data augmentation, each missing value drawn from its
predicted class probabilities). A categorical variable enters every other
imputation model as indicators of its non-reference levels, as in R's
``model.matrix``. Missing values in a role column (time, event,
treatment, ...) are not imputed: the cohort's own checks report them.

Differences from R ``mice`` that remain: statsmodels visits the incomplete
variables fewest-missing first (R: left to right) and starts each chain from
the observed value nearest the mean (R: random draws from the observed
values); the two-level case uses PMM on 0/1 (R's default for a two-level
factor is ``logreg``); R's ``remove.lindep`` pruning of collinear predictors
is not done (constant predictors are dropped).

References
----------
Rubin DB. Multiple Imputation for Nonresponse in Surveys. Wiley; 1987.
Barnard J, Rubin DB. Small-sample degrees of freedom with multiple
imputation. Biometrika 1999;86:948-55.
White IR, Royston P. Imputing missing covariate values for the Cox model.
Stat Med 2009;28:1982-98.
van Buuren S. Flexible Imputation of Missing Data, 2nd ed. CRC; 2018
(sec. 2.3 pooling, 3.4 predictive mean matching).
van Buuren S, Groothuis-Oudshoorn K. mice: Multivariate Imputation by
Chained Equations in R. J Stat Softw 2011;45(3).
Marshall A, Altman DG, Holder RL, Royston P. Combining estimates of interest
in prognostic modelling studies after multiple imputation. BMC Med Res
Methodol 2009;9:57 (pool survival probabilities on the cloglog scale).
Schomaker M, Heumann C. Bootstrap inference when using multiple imputation.
Stat Med 2018;37:2252-66 (bootstrap within each imputed data set, then
Rubin's rules).
"""
from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from causal_hcc.errors import DataError
from causal_hcc.results import HAZARD_RATIO_MEASURES, EffectEstimate, SurvivalCurves, is_ratio, normal_quantile

__all__ = [
    "Pooled", "impute", "missingness_table", "multinomial_logit", "nelson_aalen", "polyreg_draw", "polyreg_probs",
    "pool_curves", "pool_estimates", "pool_scalar", "pooled_df_complete",
]


# --------------------------------------------------------------------------- Rubin's rules
@dataclass(frozen=True)
class Pooled:
    """Rubin's rules for one scalar (the fields of R ``mice::pool.scalar``).

    ``qbar`` pooled estimate, ``ubar`` mean within-imputation variance,
    ``b`` between-imputation variance, ``t`` total variance, ``df``
    Barnard--Rubin degrees of freedom, ``riv`` relative increase in variance
    due to nonresponse, ``lambda_`` proportion of the total variance due to
    missingness, ``fmi`` fraction of missing information.
    """

    m: int
    qbar: float
    ubar: float
    b: float
    t: float
    df: float
    riv: float
    lambda_: float
    fmi: float

    @property
    def se(self) -> float:
        return math.sqrt(self.t)

    def as_dict(self) -> dict[str, float]:
        return {"m": self.m, "estimate": self.qbar, "within_variance": self.ubar, "between_variance": self.b,
                "total_variance": self.t, "df": self.df, "riv": self.riv, "lambda": self.lambda_,
                "fmi": self.fmi}


def pool_scalar(q: Sequence[float], u: Sequence[float], dfcom: float = math.inf) -> Pooled:
    """Pool ``m`` estimates ``q`` with variances ``u`` by Rubin's rules.

    Parameters
    ----------
    q, u : sequence of float
        Per-imputation estimates and their squared standard errors (m >= 2).
    dfcom : float, default inf
        Degrees of freedom of the complete-data analysis (R's ``n - k``).

    Returns
    -------
    Pooled
        As R ``mice::pool.scalar(Q, U, n = dfcom + k, k)`` (rule
        ``"rubin1987"``): qbar = mean(q); ubar = mean(u); b = var(q);
        t = ubar + (1 + 1/m) b; df by Barnard & Rubin (1999) with lambda
        floored at 1e-4 as R does; riv = (1 + 1/m) b / ubar;
        fmi = (riv + 2 / (df + 3)) / (riv + 1).

    References
    ----------
    Rubin DB. Multiple Imputation for Nonresponse in Surveys. 1987.
    Barnard J, Rubin DB. Biometrika 1999;86:948-55.
    van Buuren S. Flexible Imputation of Missing Data. 2018, sec. 2.3.
    """
    q_arr = np.asarray(q, dtype=float)
    u_arr = np.asarray(u, dtype=float)
    m = q_arr.size
    if m < 2 or u_arr.size != m:
        raise ValueError(f"pool_scalar needs m >= 2 estimates and as many variances, got {m} and {u_arr.size}")
    qbar = float(q_arr.mean())
    ubar = float(u_arr.mean())
    b = float(q_arr.var(ddof=1))
    t = ubar + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / t if t > 0 else 0.0
    lam_df = max(lam, 1e-4)
    dfold = (m - 1) / lam_df ** 2
    if math.isinf(dfcom):
        df = dfold
    else:
        dfobs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam_df)
        df = dfold * dfobs / (dfold + dfobs)
    riv = (1 + 1 / m) * b / ubar if ubar > 0 else math.inf
    fmi = (riv + 2 / (df + 3)) / (riv + 1) if math.isfinite(riv) else 1.0
    return Pooled(m=m, qbar=qbar, ubar=ubar, b=b, t=t, df=float(df), riv=float(riv), lambda_=float(lam), fmi=float(fmi))


def pooled_df_complete(e: EffectEstimate) -> float:
    """Complete-data degrees of freedom for the Barnard--Rubin df of one estimate.

    ``events - 1`` for a hazard ratio (R ``mice``'s default for a ``coxph``
    fit is ``nevent - p`` through ``broom::glance``; a strategy's number of
    nuisance coefficients is not carried by an estimate, so p = 1 here) and
    ``n - 2`` (two arms) for survival, RMST and median differences.
    """
    if e.measure in HAZARD_RATIO_MEASURES:
        return float(max(e.events - 1, 1))
    return float(max(e.n - 2, 1))


def _t_quantile(p: float, df: float) -> float:
    if not math.isfinite(df) or df > 1e7:
        return normal_quantile(p)
    from scipy.stats import t as t_dist

    return float(t_dist.ppf(p, df))


def _t_p_value(stat: float, df: float) -> float:
    if not math.isfinite(stat):
        return math.nan
    from scipy.stats import t as t_dist

    return float(2 * t_dist.sf(abs(stat), df if math.isfinite(df) else 1e12))


def _scale(e: EffectEstimate) -> float:
    """The estimate on the pooling scale: log HR for ``hr``, its own scale otherwise."""
    if is_ratio(e.measure):
        return math.log(e.estimate) if e.estimate > 0 else math.nan
    return float(e.estimate)


def pool_estimates(
    per_imputation: Sequence[Sequence[EffectEstimate]], *, alpha: float = 0.05
) -> tuple[list[EffectEstimate], list[dict[str, Any]], list[str]]:
    """Pool one strategy x outcome's estimates over the imputed data sets.

    Estimates are matched by (strategy, measure, time, occurrence). Hazard
    ratios are pooled on the log scale (``se`` stays the SE of log HR, the
    CI is ``exp(qbar +/- t_{df} sqrt(T))``); survival, RMST and median
    differences on their own scale (the per-arm survival curves are pooled
    on the complementary log-log scale by :func:`pool_curves`; the
    difference of two cloglog-pooled survivals has no Rubin variance, so the
    difference is pooled as it is). The CI uses the Barnard--Rubin df
    (complete-data df from :func:`pooled_df_complete`) and the p-value the
    same t distribution. ``n``, ``n_treated`` and ``events`` are those of
    the first imputation (identical in all of them unless a design's
    eligibility depends on an imputed confounder; then the rounded mean).

    An estimate whose standard error is missing in some imputation keeps the
    mean of the estimates with no SE (``variance_method="none"``).

    Returns
    -------
    (estimates, pooling, notes)
        The pooled :class:`EffectEstimate` list (``variance_method="rubin"``),
        one dict per estimate with the :class:`Pooled` fields (``fmi`` ...)
        for ``results.json``, and notes on estimates that could not be pooled.
    """
    m = len(per_imputation)
    if m < 2:
        raise ValueError(f"pooling needs at least 2 imputed data sets, got {m}")

    def keyed(ests: Sequence[EffectEstimate]) -> dict[tuple[Any, ...], EffectEstimate]:
        seen: dict[tuple[Any, ...], int] = {}
        out = {}
        for e in ests:
            k = (e.strategy, e.measure, None if e.time is None else float(e.time))
            occ = seen.get(k, 0)
            seen[k] = occ + 1
            out[(*k, occ)] = e
        return out

    maps = [keyed(x) for x in per_imputation]
    first = maps[0]
    notes: list[str] = []
    pooled: list[EffectEstimate] = []
    info: list[dict[str, Any]] = []
    z = 1 - alpha / 2
    for key, e0 in first.items():
        rows = [mp.get(key) for mp in maps]
        if any(r is None for r in rows):
            k = sum(r is not None for r in rows)
            notes.append(f"{e0.measure}{'' if e0.time is None else f' at {e0.time:g}'}"
                         f"{f' ({e0.strategy})' if e0.strategy else ''}: estimated in only {k} of {m} imputed "
                         f"data sets, not pooled")
            continue
        q = np.array([_scale(r) for r in rows])
        se = np.array([r.se for r in rows], dtype=float)
        counts = {f: int(round(float(np.mean([getattr(r, f) for r in rows])))) for f in ("n", "n_treated", "events")}
        base = e0.replace(**counts)
        if not np.all(np.isfinite(q)):
            pooled.append(base.replace(estimate=math.nan, se=math.nan, ci_lower=math.nan, ci_upper=math.nan,
                                       p_value=math.nan, variance_method="none"))
            notes.append(f"{e0.measure}{'' if e0.time is None else f' at {e0.time:g}'}: undefined in some "
                         f"imputed data sets, not pooled")
            continue
        if not (np.all(np.isfinite(se)) and np.all(se >= 0)):
            est = float(q.mean())
            pooled.append(base.replace(estimate=math.exp(est) if is_ratio(e0.measure) else est, se=math.nan,
                                       ci_lower=math.nan, ci_upper=math.nan, p_value=math.nan,
                                       variance_method="none"))
            continue
        p = pool_scalar(q, se ** 2, dfcom=pooled_df_complete(base))
        tq = _t_quantile(z, p.df)
        lo, hi = p.qbar - tq * p.se, p.qbar + tq * p.se
        stat = p.qbar / p.se if p.se > 0 else math.nan
        if is_ratio(e0.measure):
            est, lo, hi = math.exp(p.qbar), math.exp(lo), math.exp(hi)
        else:
            est = p.qbar
        pooled.append(base.replace(estimate=est, se=p.se, ci_lower=lo, ci_upper=hi, p_value=_t_p_value(stat, p.df),
                                   variance_method="rubin"))
        info.append({"strategy": e0.strategy, "measure": e0.measure, "time": e0.time,
                     "scale": "log" if is_ratio(e0.measure) else "identity",
                     "within_method": sorted({r.variance_method for r in rows}), **p.as_dict()})
    return pooled, info, notes


def pool_curves(curves: Sequence[SurvivalCurves | None], *, alpha: float = 0.05) -> SurvivalCurves | None:
    """Pool curves over imputations; cumulative incidence curves (competing events) are pooled as
    1 - CIF on the survival scale (:func:`_pool_survival_curves`) and turned back."""
    if not curves or any(c is None for c in curves) or curves[0].kind != "cumulative_incidence":
        return _pool_survival_curves(curves, alpha=alpha)

    def flip(c: SurvivalCurves) -> SurvivalCurves:
        t = c.table.copy()
        t["surv"], t["ci_lower"], t["ci_upper"] = 1.0 - t["surv"], 1.0 - t["ci_upper"], 1.0 - t["ci_lower"]
        return dataclasses.replace(c, table=t)

    pooled = _pool_survival_curves([flip(c) for c in curves], alpha=alpha)
    return flip(dataclasses.replace(pooled, kind="cumulative_incidence"))


def _pool_survival_curves(curves: Sequence[SurvivalCurves | None], *, alpha: float = 0.05) -> SurvivalCurves | None:
    """Pool per-arm survival curves over the imputed data sets on the cloglog scale.

    Each imputation's step function is read at the union of the curves'
    times; g = log(-log S) with delta-method variance se^2 / (S log S)^2 is
    pooled by Rubin's rules and transformed back: ``surv = exp(-exp(gbar))``,
    ``se`` by the delta method, the CI from ``gbar -/+ z sqrt(T)`` (normal
    quantile). Where S is 1 or 0 in every imputation it stays so with SE 0.
    ``n_at_risk`` is the rounded mean over imputations.

    References
    ----------
    Marshall A, Altman DG, Holder RL, Royston P. BMC Med Res Methodol 2009;9:57.
    """
    if any(c is None for c in curves) or not curves:
        return None
    m = len(curves)
    z = normal_quantile(1 - alpha / 2)
    first = curves[0]
    out = []
    for g in pd.unique(first.table["group"]):
        tabs = [c.table[c.table["group"] == g].sort_values("time", kind="mergesort") for c in curves]
        times = np.unique(np.concatenate([t["time"].to_numpy(dtype=float) for t in tabs]))
        S = np.empty((m, times.size))
        SE = np.empty((m, times.size))
        R = np.empty((m, times.size))
        for i, t in enumerate(tabs):
            tt = t["time"].to_numpy(dtype=float)
            idx = np.searchsorted(tt, times, side="right") - 1
            ok = idx >= 0
            S[i] = np.where(ok, t["surv"].to_numpy(dtype=float)[np.maximum(idx, 0)], 1.0)
            SE[i] = np.where(ok, t["se"].to_numpy(dtype=float)[np.maximum(idx, 0)], 0.0)
            R[i] = np.where(ok, t["n_at_risk"].to_numpy(dtype=float)[np.maximum(idx, 0)], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            interior = (S > 0) & (S < 1)
            gq = np.where(interior, np.log(-np.log(np.where(interior, S, 0.5))), np.nan)
            gu = np.where(interior, (SE / (S * np.log(np.where(interior, S, 0.5)))) ** 2, np.nan)
        surv = np.empty(times.size)
        se = np.empty(times.size)
        lo = np.empty(times.size)
        hi = np.empty(times.size)
        for j in range(times.size):
            if np.all(interior[:, j]) and np.all(np.isfinite(gu[:, j])):
                p = pool_scalar(gq[:, j], gu[:, j])
                s = math.exp(-math.exp(p.qbar))
                surv[j], se[j] = s, p.se * s * abs(math.log(s))
                # cloglog is decreasing in S: the upper g limit is the lower S limit
                lo[j] = math.exp(-math.exp(p.qbar + z * p.se))
                hi[j] = math.exp(-math.exp(p.qbar - z * p.se))
            else:  # S = 1 (before the first event) or 0 somewhere: pool on the survival scale
                surv[j] = float(S[:, j].mean())
                se[j] = math.sqrt(float(np.mean(SE[:, j] ** 2)) + (1 + 1 / m) * float(S[:, j].var(ddof=1)))
                lo[j] = max(surv[j] - z * se[j], 0.0)
                hi[j] = min(surv[j] + z * se[j], 1.0)
        nr = np.nanmean(R, axis=0) if np.isfinite(R).any() else np.full(times.size, np.nan)
        out.append(pd.DataFrame({"time": times, "group": g, "surv": surv, "se": se, "ci_lower": lo,
                                 "ci_upper": hi, "n_at_risk": np.round(nr)}))
    table = pd.concat(out, ignore_index=True)
    return SurvivalCurves(table, method=first.method, variance_method="rubin", time_origin=first.time_origin)


# --------------------------------------------------------------------------- description
def missingness_table(df: pd.DataFrame, columns: Sequence[str], *, min_cell: int = 0) -> dict[str, Any]:
    """Count and percentage of missing values per column, with small counts suppressed.

    Parameters
    ----------
    df : DataFrame
        The data as read (before imputation).
    columns : sequence of str
        Columns to describe (those absent from ``df`` are skipped).
    min_cell : int
        Counts 1..min_cell-1 are shown as ``"<min_cell"`` and their
        percentage is withheld (it would reveal the count); other counts are
        rounded to the nearest min_cell and percentages computed from the
        rounded counts (:mod:`causal_hcc.disclosure`).

    Returns
    -------
    dict
        ``rows``: ``[{"column", "n_missing", "pct_missing"}]`` (numbers, or
        the ``"<k"`` string and None when suppressed); ``n``;
        ``complete_cases`` (and its percentage, suppressed likewise when the
        number of incomplete rows is small); ``min_cell``.
    """
    from causal_hcc.disclosure import percent, round_count

    n = len(df)
    cols = [c for c in columns if c in df.columns]

    def small(k: int) -> bool:
        return min_cell > 0 and 0 < k < min_cell

    def pct(k: int, tot: int) -> float | None:  # from the counts as shown (rounded with min_cell > 1)
        if min_cell > 0:
            return percent(k, tot, min_cell)
        return 100.0 * k / tot if tot else math.nan

    rows = []
    for c in cols:
        k = int(df[c].isna().sum())
        rows.append({"column": c, "n_missing": round_count(k, min_cell), "pct_missing": pct(k, n)})
    incomplete = int(df[cols].isna().any(axis=1).sum()) if cols else 0
    cc = n - incomplete
    return {"n": round_count(n, min_cell), "rows": rows, "min_cell": int(min_cell),
            "complete_cases": f">{n - min_cell}" if small(incomplete) else round_count(cc, min_cell),
            "pct_complete": None if small(incomplete) else pct(cc, n)}


# --------------------------------------------------------------------------- imputation
def nelson_aalen(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Nelson--Aalen cumulative hazard at each patient's own time, H(T_i).

    H(t) = sum over distinct event times s <= t of d(s) / n(s) (events over
    number at risk); a patient censored at a tied event time is at risk
    there. R: ``survfit(Surv(time, event) ~ 1)$cumhaz`` read at each time
    (``mice::nelsonaalen`` goes through ``basehaz(coxph(...))``, whose
    default Efron ties give Fleming--Harrington increments instead; the two
    agree where no event times are tied).

    References
    ----------
    White IR, Royston P. Stat Med 2009;28:1982-98.
    """
    t = np.asarray(time, dtype=float)
    d = np.asarray(event, dtype=float)
    ut, inv = np.unique(t, return_inverse=True)
    deaths = np.bincount(inv, weights=d, minlength=ut.size)
    total = np.bincount(inv, minlength=ut.size).astype(float)
    at_risk = total[::-1].cumsum()[::-1]
    H = np.cumsum(np.where(deaths > 0, deaths / at_risk, 0.0))
    return H[inv]


def multinomial_logit(y: np.ndarray, x: np.ndarray, k: int, weights: np.ndarray | None = None, *,
                      tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Weighted maximum-likelihood multinomial logit, by Newton--Raphson.

    Parameters
    ----------
    y : ndarray of int
        Class codes 0..k-1 (0 is the reference).
    x : ndarray, shape (n, p)
        Predictors, without the intercept (added here).
    k : int
        Number of classes.
    weights : ndarray, optional
        Case weights (R ``nnet::multinom``'s ``weights``).

    Returns
    -------
    ndarray, shape (p + 1, k - 1)
        Coefficients (intercept first) of classes 1..k-1 against class 0.

    Notes
    -----
    Newton steps with step halving, solved by least squares so that an
    aliased predictor does not stop the fit (its coefficients are then not
    identified, the predicted probabilities are). R ``nnet::multinom``
    maximises the same likelihood by BFGS with at most ``maxit = 100``
    iterations, so the two agree to the optimiser's tolerance.

    References
    ----------
    Agresti A. Categorical Data Analysis, 3rd ed. Wiley; 2013, sec. 8.1.
    """
    n, p = x.shape
    X = np.column_stack([np.ones(n), x])
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    Y = np.zeros((n, k))
    Y[np.arange(n), y] = 1.0
    B = np.zeros((p + 1, k - 1))

    def probs(B: np.ndarray) -> np.ndarray:
        eta = np.column_stack([np.zeros(n), X @ B])
        eta -= eta.max(axis=1, keepdims=True)
        e = np.exp(eta)
        return e / e.sum(axis=1, keepdims=True)

    def loglik(P: np.ndarray) -> float:
        return float(np.sum(w * np.log(np.maximum(P[np.arange(n), y], 1e-300))))

    P = probs(B)
    ll = loglik(P)
    q = p + 1
    for _ in range(max_iter):
        g = (X.T @ (w[:, None] * (Y - P))[:, 1:]).T.reshape(-1)  # class-major
        H = np.empty(((k - 1) * q, (k - 1) * q))
        for a in range(1, k):
            for b in range(a, k):
                v = w * P[:, a] * ((a == b) - P[:, b])
                blk = X.T @ (X * v[:, None])
                H[(a - 1) * q:a * q, (b - 1) * q:b * q] = blk
                H[(b - 1) * q:b * q, (a - 1) * q:a * q] = blk
        step = np.linalg.lstsq(H, g, rcond=None)[0].reshape(k - 1, q).T
        t = 1.0
        while True:
            Bn = B + t * step
            Pn = probs(Bn)
            lln = loglik(Pn)
            if lln >= ll - 1e-12 or t < 1e-8:
                break
            t /= 2
        B, P, done = Bn, Pn, abs(lln - ll) <= tol * (abs(ll) + tol)
        ll = lln
        if done:
            break
    return B


def polyreg_draw(y_obs: np.ndarray, x: np.ndarray, ix_obs: np.ndarray, ix_miss: np.ndarray, k: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Impute a categorical variable as R ``mice.impute.polyreg`` does.

    A multinomial logit of the variable (codes 0..k-1) on the predictors is
    fitted to the observed cases plus ``2 p k`` augmented cases (White,
    Daniel & Royston 2010; R ``mice:::augment``: for each predictor and
    class two cases at the predictors' means with that predictor moved
    +/-0.5 SD, clipped to its range, each of weight (p + 1) / (2 p k)),
    which keeps the fit finite under perfect prediction. Each missing value
    is drawn from its predicted class probabilities (one uniform per case).

    Parameters
    ----------
    y_obs : ndarray of int
        Codes of the observed cases.
    x : ndarray, shape (n, p)
        Current (completed) predictors of every case, without intercept.
    ix_obs, ix_miss : ndarray of int
        Rows of ``x`` with the variable observed / missing.
    k : int
        Number of classes.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int
        The drawn codes of the missing cases.

    Notes
    -----
    As in R ``mice`` 3.15, the coefficients are the maximum-likelihood fit,
    not a draw from their posterior (``polyreg``, unlike ``logreg`` and
    ``pmm``, does not perturb them), so between-imputation variability
    comes from the class draws and the other variables' chains only. R
    drops predictors it finds collinear (``remove.lindep``); here an aliased
    predictor is kept and the least-squares Newton step leaves the
    probabilities identified. A class with every observed case returns that
    class (as R does).

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K. mice: Multivariate Imputation by
    Chained Equations in R. J Stat Softw 2011;45(3) (``polyreg``).
    White IR, Daniel R, Royston P. Avoiding bias due to perfect prediction
    in multiple imputation of incomplete categorical variables. *Comput
    Stat Data Anal* 2010;54:2267-75.
    """
    nm = len(ix_miss)
    u = rng.random(nm)
    if nm == 0:
        return np.empty(0, dtype=int)
    post = polyreg_probs(y_obs, x, ix_obs, ix_miss, k)
    return np.minimum((u[:, None] > np.cumsum(post, axis=1)).sum(axis=1), k - 1)


def polyreg_probs(y_obs: np.ndarray, x: np.ndarray, ix_obs: np.ndarray, ix_miss: np.ndarray,
                  k: int) -> np.ndarray:
    """Class probabilities of the missing cases that :func:`polyreg_draw` draws from.

    Same parameters as :func:`polyreg_draw` (without ``rng``); returns an
    array of shape ``(len(ix_miss), k)``. With a single observed class every
    missing case gets that class with probability 1.
    """
    nm = len(ix_miss)
    present = np.unique(y_obs)
    if present.size == 1:
        post = np.zeros((nm, k))
        post[:, int(present[0])] = 1.0
        return post
    n, p = x.shape
    xo, yo, w = x[ix_obs], np.asarray(y_obs, dtype=int), np.ones(len(ix_obs))
    if p > 0 and nm > 1:
        mean, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
        lo, hi = x.min(axis=0), x.max(axis=0)
        nr = 2 * p * k
        aug = np.tile(mean, (nr, 1))
        for j in range(p):
            rows = slice(2 * k * j, 2 * k * (j + 1))
            aug[rows, j] += np.tile([0.5, -0.5], k) * sd[j]
        aug = np.minimum(np.maximum(aug, lo), hi)
        xo = np.vstack([xo, aug])
        yo = np.concatenate([yo, np.tile(np.repeat(np.arange(k), 2), p)])
        w = np.concatenate([w, np.full(nr, (p + 1) / nr)])
    B = multinomial_logit(yo, xo, k, w)
    eta = np.column_stack([np.zeros(nm), np.column_stack([np.ones(nm), x[ix_miss]]) @ B])
    eta -= eta.max(axis=1, keepdims=True)
    post = np.exp(eta)
    return post / post.sum(axis=1, keepdims=True)


def _pmm_class() -> type:
    """A :class:`MICEData` with R's type-1 predictive mean matching."""
    from statsmodels.imputation.mice import MICEData

    class _MICEDataType1(MICEData):
        # The working frame is numeric with main effects only, so the design
        # matrix is [1, every other column]: built with numpy instead of a
        # patsy formula per update (the formula route cost ~30 ms an update).
        #: working column -> number of levels, for categorical columns held as codes 0..K-1 (imputed by
        #: :func:`polyreg_draw`, entering every other model as K-1 indicators of codes 1..K-1)
        cat_levels: dict[str, int] = {}

        def _exog(self, vname: str) -> np.ndarray:
            other = [c for c in self.data.columns if c != vname]
            if not any(c in self.cat_levels for c in other):
                return np.column_stack([np.ones(len(self.data)), self.data[other].to_numpy(dtype=float)])
            parts = [np.ones(len(self.data))]
            for c in other:
                v = self.data[c].to_numpy(dtype=float)
                k = self.cat_levels.get(c)
                parts.extend([(v == j).astype(float) for j in range(1, k)] if k else [v])
            return np.column_stack(parts)

        def update(self, vname: str) -> None:
            if vname not in self.cat_levels:
                return super().update(vname)
            x = self._exog(vname)[:, 1:]
            codes = self.data[vname].to_numpy(dtype=float)
            ixo, ixm = self.ix_obs[vname], self.ix_miss[vname]
            draws = polyreg_draw(codes[ixo].astype(int), x, ixo, ixm, self.cat_levels[vname], self.rng)
            self._store_changes(vname, draws.astype(float))

        def get_split_data(self, vname: str):
            exog = self._exog(vname)
            ixo, ixm = self.ix_obs[vname], self.ix_miss[vname]
            endog_obs = self.data[vname].to_numpy(dtype=float)[ixo]
            return endog_obs, exog[ixo], exog[ixm], {}, {}

        def get_fitting_data(self, vname: str):
            ixo = self.ix_obs[vname]
            return self.data[vname].to_numpy(dtype=float)[ixo], self._exog(vname)[ixo], {}, {}

        def impute_pmm(self, vname: str) -> None:
            """PMM as R ``mice.impute.pmm`` (matchtype 1): fitted coefficients
            predict the observed cases, drawn ones the missing cases; one of
            the ``k_pmm`` nearest donors is taken at random."""
            k = self.k_pmm
            endog_obs, exog_obs, exog_miss, kw_obs, kw_miss = self.get_split_data(vname)
            model = self.models[vname]
            fitted = np.asarray(self.results[vname].params)
            pred_obs = np.asarray(self._get_predicted(model.predict(fitted, exog_obs, **kw_obs)), dtype=float)
            pred_miss = np.asarray(self._get_predicted(model.predict(self.params[vname], exog_miss, **kw_miss)),
                                   dtype=float)
            endog_obs = np.asarray(endog_obs).reshape(-1)
            order = np.argsort(pred_obs, kind="mergesort")
            endog_obs, pred_obs = endog_obs[order], pred_obs[order]
            k = min(k, endog_obs.size)
            pos = np.searchsorted(pred_obs, pred_miss)
            window = pos[:, None] + np.arange(-k, k)[None, :]
            outside = (window < 0) | (window > endog_obs.size - 1)
            window = np.clip(window, 0, endog_obs.size - 1)
            dist = np.abs(pred_miss[:, None] - pred_obs[window])
            dist[outside] = np.inf
            nearest = np.argsort(dist, axis=1, kind="mergesort")[:, :k]
            pick = self.rng.integers(0, k, size=pred_miss.size)
            rows = np.arange(pred_miss.size)
            donors = window[rows, nearest[rows, pick]]
            self._store_changes(vname, endog_obs[donors])

    return _MICEDataType1


@dataclass
class _Column:
    """How one confounder enters the imputation models."""

    name: str
    kind: str  # "numeric" | "binary" | "polyreg" (3+ levels, missing) | "categorical" (complete: predictors)
    values: np.ndarray  # float working values (0/1 for binary, codes 0..K-1 for polyreg), NaN where missing
    levels: tuple[Any, ...] | None = None  # binary: original values coded 0 and 1; polyreg: levels by code
    dummies: np.ndarray | None = None  # categorical: indicator columns (complete)


def _column(df: pd.DataFrame, c: str, categorical: Sequence[str], labelled: bool) -> _Column:
    from causal_hcc.cohort import _is_categorical_series, _to_float

    s = df[c]
    na = s.isna().to_numpy()
    is_cat = c in categorical or labelled or _is_categorical_series(s)
    if pdt.is_bool_dtype(s.dtype) or (s.dtype == object and all(isinstance(v, (bool, np.bool_)) for v in s.dropna())):
        vals = np.where(na, np.nan, s.map(lambda v: float(bool(v)) if pd.notna(v) else np.nan).to_numpy(dtype=float))
        return _Column(c, "binary", vals, (False, True))
    if is_cat:
        obs = pd.unique(s.dropna())
        levels = sorted(obs.tolist(), key=lambda v: (str(type(v)), v)) if len(obs) else []
        if len(levels) <= 2:  # two levels as 0/1 (one level: every donor has it)
            lv = (levels[0], levels[-1]) if levels else (None, None)
            vals = np.full(len(s), np.nan)
            vals[~na] = (s[~na] == lv[1]).to_numpy(dtype=float) if len(levels) == 2 else 0.0
            return _Column(c, "binary", vals, lv)
        if na.any():  # imputed by polyreg, as codes 0..K-1 of the sorted levels
            codes = np.full(len(s), np.nan)
            pos = {L: j for j, L in enumerate(levels)}
            codes[~na] = [pos[v] for v in s[~na].tolist()]
            return _Column(c, "polyreg", codes, tuple(levels))
        dummies = np.column_stack([(s == L).to_numpy(dtype=float) for L in levels[1:]]) if len(levels) > 1 \
            else np.empty((len(s), 0))
        return _Column(c, "categorical", np.zeros(len(s)), None, dummies)
    vals, bad = _to_float(s)
    if bad.any():  # the cohort's own check reports it with rows
        raise DataError(f"column '{c}' (confounder) must be numeric or categorical")
    return _Column(c, "numeric", vals)


def impute(
    df: pd.DataFrame,
    *,
    confounders: Sequence[str],
    treatment: np.ndarray,
    outcomes: Mapping[str, tuple[np.ndarray, np.ndarray]],
    categorical: Sequence[str] = (),
    m: int = 20,
    seed: int = 1,
    iterations: int = 10,
    donors: int = 5,
) -> list[pd.DataFrame]:
    """Impute missing confounders by chained equations with predictive mean matching.

    Parameters
    ----------
    df : DataFrame
        The data as read, one row per patient. Never modified.
    confounders : sequence of str
        Confounder columns; those with missing values are imputed, the others
        are predictors only.
    treatment : ndarray
        The validated 0/1 treatment, aligned with ``df``'s rows (a predictor).
    outcomes : mapping name -> (time, event)
        Validated follow-up times and event indicators of every outcome,
        aligned with ``df``'s rows: each adds the event indicator and the
        Nelson--Aalen H(T) (:func:`nelson_aalen`) to every imputation model.
    categorical : sequence of str
        Confounders declared categorical in the spec.
    m, seed, iterations, donors : int
        Number of imputed data sets, seed, chained-equation cycles per data
        set (R ``maxit``) and PMM donors (R ``donors``).

    Returns
    -------
    list of DataFrame
        ``m`` completed copies of ``df`` (same index, columns and dtypes
        where the dtype can hold the imputed values). Without missing
        confounder values, ``m`` plain copies.

    Raises
    ------
    DataError
        A confounder with every value missing.

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K. J Stat Softw 2011;45(3).
    White IR, Royston P. Stat Med 2009;28:1982-98.
    van Buuren S. Flexible Imputation of Missing Data. 2018, sec. 3.4, 4.5.
    """
    from causal_hcc.cohort import _value_labels

    conf = [c for c in confounders if c in df.columns]
    vlabels = _value_labels(df)
    cols = []
    for c in conf:
        labelled = c in vlabels and all(v in vlabels[c] for v in df[c].dropna().unique().tolist())
        cols.append(_column(df, c, categorical, labelled))
    targets = [col for col in cols if col.kind != "categorical" and np.isnan(col.values).any()]
    if not targets:
        return [df.copy(deep=True) for _ in range(m)]
    for col in targets:
        if np.isnan(col.values).all():
            raise DataError(f"missing: cannot impute confounder '{col.name}': every value is missing")

    # working frame: x<i> imputed (with NaN), p<j> complete predictors
    work: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    for i, col in enumerate(cols):
        if col.kind == "categorical":
            for j in range(col.dummies.shape[1]):
                work[f"c{i}_{j}"] = col.dummies[:, j]
        else:
            work[f"x{i}"] = col.values
            names[col.name] = f"x{i}"
    work["trt"] = np.asarray(treatment, dtype=float)
    for k, (_, (t, d)) in enumerate(outcomes.items()):
        work[f"ev{k}"] = np.asarray(d, dtype=float)
        work[f"na{k}"] = nelson_aalen(t, d)
    frame = pd.DataFrame(work, index=pd.RangeIndex(len(df)))
    # a constant predictor carries nothing and makes X'X singular
    keep = [c for c in frame.columns if c in {names[t.name] for t in targets} or frame[c].nunique(dropna=True) > 1]
    frame = frame[keep]

    cls = _pmm_class()
    streams = np.random.SeedSequence(seed).spawn(m)
    out = []
    for i in range(m):
        data = cls(frame, perturbation_method="gaussian", k_pmm=donors, rng=np.random.default_rng(streams[i]))
        data.k_pmm = donors  # set_imputer resets it; every variable uses the same donor count
        data.cat_levels = {names[col.name]: len(col.levels) for col in targets if col.kind == "polyreg"}
        data.update_all(iterations)
        done = df.copy(deep=True)
        for col in targets:
            filled = data.data[names[col.name]].to_numpy(dtype=float)
            done[col.name] = _restore(df[col.name], col, filled)
        out.append(done)
    return out


def _restore(original: pd.Series, col: _Column, filled: np.ndarray) -> pd.Series:
    """The imputed column in the original's coding (levels, dtype where possible)."""
    na = original.isna().to_numpy()
    if col.kind == "polyreg":
        vals = original.astype(object).to_numpy(copy=True)
        lv = np.empty(len(col.levels), dtype=object)
        lv[:] = list(col.levels)
        vals[na] = lv[filled[na].astype(int)]
        if isinstance(original.dtype, pd.CategoricalDtype):
            return pd.Series(pd.Categorical(vals, categories=original.cat.categories,
                                            ordered=original.cat.ordered), index=original.index)
        s = pd.Series(vals, index=original.index).infer_objects()
        return s.astype(original.dtype) if pdt.is_numeric_dtype(original.dtype) and pdt.is_numeric_dtype(s) \
            and not pdt.is_integer_dtype(original.dtype) else s
    if col.kind == "binary":
        lv0, lv1 = col.levels
        vals = original.astype(object).to_numpy(copy=True)
        vals[na] = np.where(filled[na] >= 0.5, lv1, lv0)
        if isinstance(original.dtype, pd.CategoricalDtype):
            return pd.Series(pd.Categorical(vals, categories=original.cat.categories,
                                            ordered=original.cat.ordered), index=original.index)
        s = pd.Series(vals, index=original.index)
        return s.astype(bool) if col.levels == (False, True) else s.infer_objects()
    vals = original.to_numpy(dtype=float, na_value=np.nan, copy=True) if pdt.is_numeric_dtype(original.dtype) \
        else filled.copy()
    vals[na] = filled[na]
    s = pd.Series(vals, index=original.index)
    if pdt.is_integer_dtype(original.dtype) or isinstance(original.dtype, pd.Int64Dtype):
        return s.round().astype(original.dtype)
    return s
