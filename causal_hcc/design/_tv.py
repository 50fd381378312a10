"""Weights that change over follow-up: discrete-time (pooled logistic) models on
person-intervals, their cumulative products, truncation and per-interval
diagnostics.

Used by the marginal structural model (:mod:`causal_hcc.adjust.msm`:
treatment-initiation weights), by clone-censor and per-protocol sequential
trials (artificial-censoring weights with time-varying confounders) and by
every adjustment built on :func:`causal_hcc.outcome.effects.estimate_effects`
(loss-to-follow-up weights, :func:`loss_weights`).

Follow-up is cut into intervals ``(k h, (k + 1) h]`` of width ``h`` (the
weight grid: one period for person-period data). At the start ``k h`` of
each interval the covariates known then are read: the baseline confounders
and the time-varying confounders' last values at or before ``k h``
(``cohort.timeline.at``; a value measured at ``k h`` is known then).

* **Treatment initiation** (a decision at ``k h``): at risk while alive,
  under follow-up and untreated at ``k h``; ``A_k = 1`` when treatment
  starts in ``[k h, (k + 1) h)``. The weight's factor of interval k counts
  from ``k h`` on (``prod_{j <= k}``).
* **Loss to follow-up** (``roles.censored``): at risk while under follow-up
  at ``k h`` and event-free through interval k; ``C_k = 1`` when the
  patient is lost in ``(k h, (k + 1) h]``. As in person-period data, loss
  is taken to happen at the end of its interval, after that interval's
  outcome: the weight of interval k is the inverse probability of having
  remained uncensored through the intervals before it (``prod_{j < k}``),
  and the model is fitted on the records without the event. With loss at
  continuous times inside an interval the weight changes only at the next
  grid point: an approximation that a finer ``grid`` reduces.

Stabilised weights (the default; Hernán, Brumback & Robins 2000; Cole &
Hernán 2008): the numerator is the same model with the baseline
confounders and time only, so the weights have mean near 1 and the outcome
model must include the baseline confounders (or ``numerator: time``, whose
weights are larger but whose model is marginal).

References
----------
Hernán MA, Brumback B, Robins JM. Marginal structural models to estimate the
causal effect of zidovudine on the survival of HIV-positive men.
Epidemiology 2000;11:561-70.
Robins JM, Hernán MA, Brumback B. Marginal structural models and causal
inference in epidemiology. Epidemiology 2000;11:550-60.
Cole SR, Hernán MA. Constructing inverse probability weights for marginal
structural models. Am J Epidemiol 2008;168:656-64.
Robins JM, Finkelstein DM. Correcting for noncompliance and dependent
censoring in an AIDS clinical trial with inverse probability of censoring
weighted (IPCW) log-rank tests. Biometrics 2000;56:779-88.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from causal_hcc.core.logistic import logistic_fit
from causal_hcc.errors import EstimationError, SpecError

__all__ = ["tv_matrix", "tv_names", "weight_grid", "interval_records", "IntervalModel", "cumulative",
           "truncate", "interval_diagnostics", "loss_weights", "is_person_period", "NUMERATORS"]

#: numerator models of stabilised weights
NUMERATORS = ("baseline", "time", "none")

_EPS = 1e-9
#: a person-interval whose observed outcome had a fitted probability below this is reported (positivity)
POSITIVITY_FLOOR = 1e-6


def timeline_of(cohort: Any):
    return getattr(cohort, "timeline", None)


def tv_names(cohort: Any) -> list[str]:
    """Design columns of the cohort's time-varying confounders (``[]`` without a timeline)."""
    tl = timeline_of(cohort)
    return list(tl.columns) if tl is not None else []


def tv_matrix(cohort: Any, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Time-varying confounders of cohort rows ``rows`` at times ``t`` (LOCF, known at t): ``(len(rows), q)``."""
    tl = timeline_of(cohort)
    rows = np.asarray(rows, dtype=np.int64)
    if tl is None or not tl.columns:
        return np.empty((rows.shape[0], 0))
    return np.asarray(tl.at(rows, np.asarray(t, dtype=float)), dtype=float)


def is_person_period(cohort: Any) -> bool:
    tl = timeline_of(cohort)
    return bool(tl is not None and getattr(tl, "info", {}).get("layout") == "person_period")


def weight_grid(cohort: Any, reference_times: np.ndarray | None = None) -> float:
    """Default width of the weight intervals: 1 (a period) for person-period data, else the 90th
    percentile of ``reference_times`` (treatment times for treatment models, follow-up otherwise) / 24."""
    if is_person_period(cohort):
        return 1.0
    x = np.asarray(reference_times, dtype=float) if reference_times is not None else np.asarray(cohort.time(), float)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size == 0:
        x = np.asarray(cohort.time(), dtype=float)
    return float(np.quantile(x, 0.9)) / 24.0


def interval_records(T: np.ndarray, h: float, until: np.ndarray | None = None,
                     rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(row, k)`` of every interval ``k`` whose start ``k h`` is before ``min(T, until)`` (sorted by row, k)."""
    T = np.asarray(T, dtype=float)
    end = T if until is None else np.minimum(T, until)
    cnt = np.maximum(np.ceil(end / h - _EPS).astype(np.int64), 0)
    r = np.repeat(np.arange(T.shape[0]) if rows is None else np.asarray(rows), cnt)
    k = np.arange(r.shape[0]) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return r, k.astype(np.int64)


def time_terms(k: np.ndarray, kind: str, knots=None):
    from causal_hcc.outcome.pooled_logistic import time_basis

    return time_basis(k, kind, knots)


@dataclass
class IntervalModel:
    """Denominator and numerator pooled logistic models of a binary event per interval.

    Denominator: intercept, time terms of k, the baseline confounders ``X``
    and the time-varying columns ``L`` (and any ``extra`` columns, e.g. the
    current treatment status for loss to follow-up). Numerator:
    ``numerator = "baseline"``: time terms, ``X`` and ``extra``; ``"time"``:
    time terms and ``extra``; ``"none"``: no numerator (unstabilised).
    Maximum likelihood by :func:`causal_hcc.core.logistic.logistic_fit` (= R
    ``glm(family = binomial)``).
    """

    time_terms: str = "quadratic"
    numerator: str = "baseline"
    what: str = "treatment initiation"
    names_: list[str] = field(default_factory=list)
    coef_den_: np.ndarray | None = None
    coef_num_: np.ndarray | None = None
    knots_: Any = None
    warnings_: list[str] = field(default_factory=list)

    def _design(self, k, X, L, extra, part: str):
        Tk, tnames, self.knots_ = time_terms(k, self.time_terms, self.knots_)
        cols = [np.ones((k.shape[0], 1)), Tk]
        names = ["(intercept)"] + tnames
        if part == "den" or self.numerator == "baseline":
            cols.append(X)
            names += [f"x{j}" for j in range(X.shape[1])]
        if part == "den":
            cols.append(L)
            names += [f"l{j}" for j in range(L.shape[1])]
        cols.append(extra)
        names += [f"e{j}" for j in range(extra.shape[1])]
        return np.column_stack(cols), names

    def fit_predict(self, k, X, L, y, extra=None, where: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Fit both models on the records and return ``(p_denominator, p_numerator)`` for them
        (``p_numerator`` is all NaN for ``numerator = "none"``)."""
        k = np.asarray(k)
        extra = np.empty((k.shape[0], 0)) if extra is None else np.asarray(extra, dtype=float).reshape(k.shape[0], -1)
        y = np.asarray(y, dtype=float)
        if y.sum() == 0:
            raise EstimationError(f"{where}: no {self.what} in the person-intervals; its weights cannot be estimated")
        # constant columns (e.g. a confounder without variation among the records) are left out
        Xk = _nonconstant(X)
        Lk = _nonconstant(L)
        ek = _nonconstant(extra)
        self.knots_ = None
        Z, _ = self._design(k, Xk, Lk, ek, "den")
        fd = logistic_fit(Z, y, where=f"{where}: {self.what} model (denominator)")
        self.coef_den_ = fd.coef
        pd_ = fd.fitted
        p_obs = np.where(y == 1, pd_, 1.0 - pd_)
        if p_obs.size and float(p_obs.min()) < POSITIVITY_FLOOR:
            self.warnings_.append(f"{where}: {self.what} model: {int((p_obs < POSITIVITY_FLOOR).sum())} "
                                  f"person-intervals had a fitted probability below {POSITIVITY_FLOOR:g} of what "
                                  "happened to them: near-violations of positivity give extreme weights")
        if self.numerator == "none":
            return pd_, np.full_like(pd_, np.nan)
        Zn, _ = self._design(k, Xk, Lk, ek, "num")
        fn = logistic_fit(Zn, y, where=f"{where}: {self.what} model (numerator)")
        self.coef_num_ = fn.coef
        return pd_, fn.fitted


def _nonconstant(M: np.ndarray) -> np.ndarray:
    M = np.asarray(M, dtype=float)
    if M.shape[1] == 0 or M.shape[0] == 0:
        return M
    return M[:, np.ptp(M, axis=0) > 0]


def cumulative(row: np.ndarray, logf: np.ndarray, lag: bool = False) -> np.ndarray:
    """Within-row cumulative product ``exp(cumsum(logf))`` over records sorted by (row, k);
    ``lag``: the product over the records *before* each one (1 on a row's first record)."""
    cs = np.cumsum(logf)
    first = np.r_[True, row[1:] != row[:-1]]
    start = np.flatnonzero(first)
    base = np.repeat(cs[start] - logf[start], np.diff(np.r_[start, row.shape[0]]))
    out = cs - base
    if lag:
        out = out - logf
    return np.exp(out)


def truncate(w: np.ndarray, quantiles: Sequence[float] | None = None, bounds: Sequence[float] | None = None,
             where: str = "") -> tuple[np.ndarray, int, list[float] | None]:
    """Truncate (winsorise) weights at the ``quantiles`` = [low, high] of their distribution, or at the
    fixed ``bounds`` = [low, high]. Returns ``(weights, number changed, [low cap, high cap])``."""
    if quantiles is None and bounds is None:
        return w, 0, None
    if quantiles is not None and bounds is not None:
        raise SpecError(f"{where}: give 'truncate' (quantiles) or 'truncate_at' (fixed bounds), not both")
    lim = list(quantiles if quantiles is not None else bounds)
    name = "truncate" if quantiles is not None else "truncate_at"
    if len(lim) != 2 or not lim[0] < lim[1]:
        raise SpecError(f"{where}: option '{name}' must be [low, high] with low < high, got {lim}")
    lo, hi = (float(np.quantile(w, lim[0])), float(np.quantile(w, lim[1]))) if quantiles is not None \
        else (float(lim[0]), float(lim[1]))
    out = np.clip(w, lo, hi)
    return out, int(np.sum(out != w)), [lo, hi]


def interval_diagnostics(k: np.ndarray, w: np.ndarray, h: float, max_rows: int = 60) -> dict[str, Any]:
    """Per-interval weight summary of the patients under follow-up at each interval start:
    ``time`` (interval start), ``n``, ``mean``, ``min``, ``max``, ``ess`` = (sum w)^2 / sum w^2.

    Beyond ``max_rows`` intervals, neighbouring intervals are pooled into ``max_rows`` groups.
    """
    k = np.asarray(k)
    w = np.asarray(w, dtype=float)
    if k.size == 0:
        return {"time": [], "n": [], "mean": [], "min": [], "max": [], "ess": []}
    K = int(k.max()) + 1
    grp = k if K <= max_rows else (k * max_rows) // K
    G = int(grp.max()) + 1
    n = np.bincount(grp, minlength=G)
    s1 = np.bincount(grp, weights=w, minlength=G)
    s2 = np.bincount(grp, weights=w * w, minlength=G)
    mn = np.full(G, np.inf)
    mx = np.full(G, -np.inf)
    np.minimum.at(mn, grp, w)
    np.maximum.at(mx, grp, w)
    start_k = np.full(G, np.iinfo(np.int64).max)
    np.minimum.at(start_k, grp, k)
    ok = n > 0
    return {"time": [float(x) for x in start_k[ok] * h], "n": [int(x) for x in n[ok]],
            "mean": [float(x) for x in (s1 / np.maximum(n, 1))[ok]], "min": [float(x) for x in mn[ok]],
            "max": [float(x) for x in mx[ok]], "ess": [float(x) for x in (s1 ** 2 / np.where(s2 > 0, s2, 1))[ok]],
            "pooled_intervals": K > max_rows}


# --------------------------------------------------------------------------
# loss to follow-up (roles.censored)
# --------------------------------------------------------------------------
@dataclass
class LossWeights:
    """Inverse-probability-of-censoring weights for loss to follow-up, per (patient, interval).

    ``at(rows, t)``: the weight of cohort row ``rows[i]`` at absolute time
    ``t[i]`` (the product over the intervals completed before the one that
    holds ``t``); ``diagnostics``: model and per-interval summary.
    """

    grid: float
    off: np.ndarray           # first record of each cohort row
    count: np.ndarray         # records per cohort row
    w: np.ndarray             # weight of each record (uncensored through the intervals before it)
    diagnostics: dict
    notes: list[str]
    warnings: list[str]

    def at(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        k = np.floor(np.asarray(t, dtype=float) / self.grid + _EPS).astype(np.int64)
        k = np.clip(k, 0, np.maximum(self.count[rows] - 1, 0))
        out = np.ones(rows.shape[0])
        has = self.count[rows] > 0
        out[has] = self.w[self.off[rows[has]] + k[has]]
        return out


def fit_loss_weights(cohort: Any, *, grid: float | None = None, time_terms_kind: str = "quadratic",
                     numerator: str = "baseline", truncate_q: Sequence[float] | None = None,
                     truncate_at: Sequence[float] | None = None, where: str = "loss to follow-up") -> LossWeights:
    """Fit the loss-to-follow-up weight models on the cohort (see the module docstring)."""
    tl = timeline_of(cohort)
    cens = np.asarray(tl.censored, dtype=np.int8)
    T = np.asarray(cohort.time(), dtype=float)
    h = float(grid) if grid else weight_grid(cohort)
    row, k = interval_records(T, h)
    # lost in interval k: censored and T in (k h, (k + 1) h]
    klast = np.ceil(T / h - _EPS).astype(np.int64) - 1
    y = ((cens[row] == 1) & (k == klast[row])).astype(float)
    X = np.asarray(cohort.X, dtype=float)[row]
    L = tv_matrix(cohort, row, k * h)
    tt = getattr(cohort, "treatment_time", None)
    extra = None
    if tt is not None:
        ttv = np.where(np.asarray(cohort.treatment) == 1, np.asarray(tt, dtype=float), np.inf)
        extra = (np.nan_to_num(ttv, nan=np.inf)[row] <= k * h).astype(float)[:, None]   # treated by k h
    model = IntervalModel(time_terms_kind, numerator, "loss to follow-up")
    if y.sum() == 0:
        w = np.ones(row.shape[0])
        diag = {"model": "none: nobody is lost to follow-up", "grid": h}
        notes = ["loss-to-follow-up weights: nobody is lost to follow-up (roles.censored all 0): weights 1"]
        cnt = np.bincount(row, minlength=T.shape[0])
        return LossWeights(h, np.r_[0, np.cumsum(cnt)[:-1]], cnt, w, diag, notes, [])
    # the outcome of an interval comes first: a patient with the event in interval k is not at risk of being
    # lost at its end, so those records are left out of the fit (they keep the weight of the intervals before)
    E = np.asarray(cohort.event(), dtype=np.int8)
    fitrows = ~((E[row] == 1) & (k == klast[row]))
    pden = np.zeros(row.shape[0])
    pnum = np.zeros(row.shape[0])
    pd_f, pn_f = model.fit_predict(k[fitrows], X[fitrows], L[fitrows], y[fitrows],
                                   None if extra is None else extra[fitrows], where)
    pden[fitrows], pnum[fitrows] = pd_f, pn_f
    q = 1.0 - pnum if numerator != "none" else np.ones_like(pden)
    logf = np.log(q) - np.log1p(-np.minimum(pden, 1 - 1e-15))
    w_raw = cumulative(row, logf, lag=True)
    w, n_tr, caps = truncate(w_raw, truncate_q, truncate_at, where)
    cnt = np.bincount(row, minlength=T.shape[0])
    diag = {"model": "pooled logistic", "grid": h, "numerator": numerator, "time_terms": time_terms_kind,
            "lost_to_follow_up": int(cens.sum()), "records": int(row.shape[0]),
            "time_varying_confounders": tv_names(cohort), "n_truncated": n_tr, "truncation_caps": caps,
            "by_interval": interval_diagnostics(k, w, h),
            "summary": {"mean": float(w.mean()), "min": float(w.min()), "max": float(w.max())},
            "coef": {"denominator": [float(c) for c in model.coef_den_],
                     "numerator": None if model.coef_num_ is None else [float(c) for c in model.coef_num_]}}
    notes = [f"loss-to-follow-up (IPC) weights: pooled logistic models of being lost in each interval of width "
             f"{h:g} given {'baseline and time-varying confounders' if L.shape[1] else 'the baseline confounders'}, "
             f"treatment status and time; {'stabilised (numerator: ' + numerator + ')' if numerator != 'none' else 'unstabilised'}"]
    if n_tr:
        notes.append(f"loss-to-follow-up weights truncated at {caps[0]:.3g} and {caps[1]:.3g} ({n_tr} intervals)")
    return LossWeights(h, np.r_[0, np.cumsum(cnt)[:-1]], cnt, w, diag, notes, list(model.warnings_))


def loss_weights(data: Any, origin: np.ndarray | None = None, **kw: Any):
    """``data`` with loss-to-follow-up weights multiplied into its row weights, or ``None`` when the
    cohort has no ``censored`` role.

    Rows are split at the weight grid so the weights are piecewise constant;
    a row's weight at absolute time t is ``W(t) / W(origin)`` (the origin of
    the row: 0, the landmark, the trial start), i.e. conditional on being
    uncensored at the row's time zero. Returns ``(data, LossWeights)``.
    """
    from causal_hcc.adjust.propensity import subset_rows
    from causal_hcc.design._common import split_at

    cohort = getattr(data, "cohort", None)
    tl = timeline_of(cohort)
    if tl is None or getattr(tl, "censored", None) is None:
        return None
    lw = fit_loss_weights(cohort, **kw)
    if origin is None:
        origin = getattr(data, "row_origin", None)
    org = np.full(data.n_rows, float(data.time_origin)) if origin is None else np.asarray(origin, dtype=float)
    h = lw.grid
    # cut each row at the grid points (absolute times k h) strictly inside it
    a_abs = org + np.asarray(data.start, dtype=float)
    b_abs = org + np.asarray(data.stop, dtype=float)
    kmax = int(np.ceil(float(b_abs.max()) / h)) + 1 if b_abs.size else 1
    r, a, b = split_at(a_abs, b_abs, np.arange(1, kmax) * h)
    pat = np.asarray(data.patient)[r]
    w = lw.at(pat, a) / lw.at(pat, org[r])
    last = np.r_[r[1:] != r[:-1], True]
    new = subset_rows(data, r)
    new.start = a - org[r]
    new.stop = b - org[r]
    new.event = np.where(last, np.asarray(data.event)[r], 0).astype(np.int8)
    new.weight = np.asarray(data.weight, dtype=float)[r] * w
    return new, lw
