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
    """Default width of the weight intervals (where decisions are modelled): 1 (a period) for person-period
    data; with a visits table the median gap between a patient's consecutive visits (decisions are taken at
    assessments); else the 90th percentile of ``reference_times`` (treatment times for treatment models,
    follow-up otherwise) / 24."""
    if is_person_period(cohort):
        return 1.0
    tl = timeline_of(cohort)
    if tl is not None and tl.columns:
        m = tl.measurements()
        same = m["row"][1:] == m["row"][:-1]
        gaps = np.diff(m["time"])[same]
        gaps = gaps[gaps > 0]
        if gaps.size:
            return float(np.median(gaps))
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
    time terms and ``extra``; ``"none"``: no numerator (unstabilised);
    ``extra`` only with ``extra_in_numerator``.
    Maximum likelihood by :func:`causal_hcc.core.logistic.logistic_fit` (= R
    ``glm(family = binomial)``).
    """

    time_terms: str = "quadratic"
    numerator: str = "baseline"
    what: str = "treatment initiation"
    #: the ``extra`` columns enter the numerator too (HBR: the censoring numerator conditions on treatment)
    extra_in_numerator: bool = True
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
        if part == "den" or self.extra_in_numerator:
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
    k = np.asarray(k, dtype=np.int64)
    w = np.asarray(w, dtype=float)
    if k.size == 0:
        return {"time": [], "n": [], "mean": [], "min": [], "max": [], "ess": []}
    K = int(k.max()) + 1
    n = np.bincount(k, minlength=K)
    s1 = np.bincount(k, weights=w, minlength=K)
    s2 = np.bincount(k, weights=w * w, minlength=K)
    mn = np.full(K, np.inf)
    mx = np.full(K, -np.inf)
    np.minimum.at(mn, k, w)
    np.maximum.at(mx, k, w)
    return interval_summary(np.arange(K), n, s1, s2, mn, mx, h, max_rows)


def interval_summary(ks: np.ndarray, n: np.ndarray, s1: np.ndarray, s2: np.ndarray, mn: np.ndarray,
                     mx: np.ndarray, h: float, max_rows: int = 60) -> dict[str, Any]:
    """:func:`interval_diagnostics` from per-grid-time counts, weight sums, sums of squares, minima and maxima
    (grid times ``ks``, increasing, non-negative; ``n == 0`` where nobody is under follow-up)."""
    ks = np.asarray(ks, dtype=np.int64)
    K = int(ks.max()) + 1
    grp = ks if K <= max_rows else (ks * max_rows) // K
    G = int(grp.max()) + 1
    has = n > 0
    gn = np.bincount(grp, weights=n, minlength=G)
    g1 = np.bincount(grp, weights=s1, minlength=G)
    g2 = np.bincount(grp, weights=s2, minlength=G)
    gmn, gmx = np.full(G, np.inf), np.full(G, -np.inf)
    np.minimum.at(gmn, grp[has], mn[has])
    np.maximum.at(gmx, grp[has], mx[has])
    start_k = np.full(G, np.iinfo(np.int64).max)
    np.minimum.at(start_k, grp[has], ks[has])
    ok = gn > 0
    return {"time": [float(x) for x in start_k[ok] * h], "n": [int(x) for x in gn[ok]],
            "mean": [float(x) for x in (g1 / np.maximum(gn, 1))[ok]], "min": [float(x) for x in gmn[ok]],
            "max": [float(x) for x in gmx[ok]], "ess": [float(x) for x in (g1 ** 2 / np.where(g2 > 0, g2, 1))[ok]],
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
    #: the stabilising numerator in ``w`` of each record (``w = num / P(uncensored so far)``; ones when
    #: unstabilised or nobody is lost): the Fine-Gray model divides it out (DesignData.weight_numerator)
    num: np.ndarray | None = None

    def _lookup(self, values: np.ndarray | None, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``values`` (one per record) of each cohort row's record holding time ``t``; ones where the row has
        no record or ``values`` is None."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.ones(rows.shape[0])
        if values is None:
            return out
        k = np.floor(np.asarray(t, dtype=float) / self.grid + _EPS).astype(np.int64)
        k = np.clip(k, 0, np.maximum(self.count[rows] - 1, 0))
        has = self.count[rows] > 0
        out[has] = values[self.off[rows[has]] + k[has]]
        return out

    def at(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self._lookup(self.w, rows, t)

    def numerator_at(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The stabilising numerator in :meth:`at` (ones when the weights are unstabilised)."""
        return self._lookup(self.num, rows, t)


def fit_loss_weights(cohort: Any, *, grid: float | None = None, time_terms_kind: str = "quadratic",
                     numerator: str = "time", truncate_q: Sequence[float] | None = None,
                     truncate_at: Sequence[float] | None = None, treatment_in_numerator: bool = False,
                     where: str = "loss to follow-up") -> LossWeights:
    """Fit the loss-to-follow-up weight models on the cohort (see the module docstring).

    The denominator conditions on time, the baseline and time-varying confounders and the current
    treatment status. The numerator (stabilisation) must use only what the outcome model conditions on:
    ``numerator = "time"`` (default; valid for every outcome model, marginal ones included),
    ``"baseline"`` (+ baseline confounders: for outcome models that include them), ``"none"``;
    ``treatment_in_numerator`` adds the current treatment status (the MSM, whose outcome model is in
    current treatment).
    """
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
    model = IntervalModel(time_terms_kind, numerator, "loss to follow-up",
                          extra_in_numerator=treatment_in_numerator)
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
    num = cumulative(row, np.log(q), lag=True) if numerator != "none" else None
    w, n_tr, caps = truncate(w_raw, truncate_q, truncate_at, where)
    cnt = np.bincount(row, minlength=T.shape[0])
    diag = {"model": "pooled logistic", "grid": h, "numerator": numerator, "time_terms": time_terms_kind,
            "treatment_in_numerator": treatment_in_numerator,
            "lost_to_follow_up": int(cens.sum()), "records": int(row.shape[0]),
            "time_varying_confounders": tv_names(cohort), "n_truncated": n_tr, "truncation_caps": caps,
            "by_interval": interval_diagnostics(k, w, h),
            "summary": {"mean": float(w.mean()), "min": float(w.min()), "max": float(w.max())},
            "coef": {"denominator": [float(c) for c in model.coef_den_],
                     "numerator": None if model.coef_num_ is None else [float(c) for c in model.coef_num_]}}
    notes = [f"loss-to-follow-up (IPC) weights: pooled logistic models of being lost in each interval of width "
             f"{h:g} given {'baseline and time-varying confounders' if L.shape[1] else 'the baseline confounders'}, "
             f"treatment status and time; "
             + (f"stabilised by a numerator model of "
                f"{'time' if numerator == 'time' else 'time and the baseline confounders'}"
                f"{' and treatment status' if treatment_in_numerator else ''}" if numerator != "none"
                else "unstabilised")]
    if n_tr:
        notes.append(f"loss-to-follow-up weights truncated at {caps[0]:.3g} and {caps[1]:.3g} ({n_tr} intervals)")
    return LossWeights(h, np.r_[0, np.cumsum(cnt)[:-1]], cnt, w, diag, notes, list(model.warnings_), num)


def loss_not_applied(data: Any, where: str) -> list[str]:
    """A warning for adjustments that model the outcome themselves and do not use loss-to-follow-up weights."""
    tl = timeline_of(getattr(data, "cohort", None))
    if tl is None or getattr(tl, "censored", None) is None:
        return []
    return [f"{where}: loss-to-follow-up weights (roles.censored) are not applied by this adjustment: its "
            "outcome model assumes loss to follow-up independent of the outcome given the baseline confounders"]


def loss_weights(data: Any, origin: np.ndarray | None = None, **kw: Any):
    """``data`` with loss-to-follow-up weights multiplied into its row weights, or ``None`` when the
    cohort has no ``censored`` role.

    Rows are split at the weight grid so the weights are piecewise constant;
    a row's weight at absolute time t is ``W(t) / W(origin)`` (the origin of
    the row: 0, the landmark, the trial start), i.e. conditional on being
    uncensored at the row's time zero. Returns ``(data, LossWeights, r)``, ``r`` the input row of each
    output row.
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
    # back on the row's clock: a row's first piece starts at the row's own start and its last piece ends at
    # its own stop, exactly (org + x - org need not be x: a short row far from its origin, e.g. a treated
    # patient-trial that starts just before its event, would otherwise become empty); pieces that the
    # subtraction makes empty (a cut within rounding of a row's end) are dropped and the row's event stays on
    # its last remaining piece
    start0, stop0 = np.asarray(data.start, dtype=float), np.asarray(data.stop, dtype=float)

    def on_row_clock(r, a, b):
        ns, ne = a - org[r], b - org[r]
        first, last = np.r_[True, r[1:] != r[:-1]], np.r_[r[1:] != r[:-1], True]
        ns[first], ne[last] = start0[r[first]], stop0[r[last]]
        return ns, ne, last

    ns, ne, _ = on_row_clock(r, a, b)
    keep = ne > ns
    r, a, b = r[keep], a[keep], b[keep]
    ns, ne, last = on_row_clock(r, a, b)
    pat = np.asarray(data.patient)[r]
    w = lw.at(pat, a) / lw.at(pat, org[r])
    new = subset_rows(data, r)
    new.start = ns
    new.stop = ne
    new.event = np.where(last, np.asarray(data.event)[r], 0).astype(np.int8)
    if getattr(new, "status", None) is not None:
        new.status = np.where(last, np.asarray(data.status)[r], 0).astype(np.int8)
    new.weight = np.asarray(data.weight, dtype=float)[r] * w
    # for the Fine-Gray model of an outcome with competing events (docs/competing_risks.md): a row that ends
    # where its patient was lost to follow-up is censored *artificially* -- its IPC weights stand for it, so
    # it must not count again in the censoring distribution G -- and the loss weights' stabilising numerator
    # joins the design's (DesignData.weight_numerator), to be divided out of the Fine-Gray weights. Only the
    # last piece of a row keeps the row's artificial censoring (the design's: deviation from a strategy).
    art0 = getattr(data, "artificial_censoring", None)
    art = np.zeros(r.shape[0], dtype=bool) if art0 is None else (last & np.asarray(art0, dtype=bool)[r])
    if int(np.asarray(tl.censored).sum()):
        T = np.asarray(cohort.time(), dtype=float)
        lost_pat = np.asarray(tl.censored)[pat] == 1
        status_r = new.status if getattr(new, "status", None) is not None else new.event
        end_abs = org[r] + stop0[r]
        at_loss = np.abs(end_abs - T[pat]) <= 1e-9 * np.maximum(1.0, np.abs(T[pat]))
        art |= last & lost_pat & at_loss & (np.asarray(status_r) == 0)
        num0 = getattr(data, "weight_numerator", None)
        num = lw.numerator_at(pat, a) / lw.numerator_at(pat, org[r])
        if num0 is not None:
            num = np.asarray(num0, dtype=float)[r] * num
        new.weight_numerator = None if (num0 is None and lw.num is None) else num
    new.artificial_censoring = art if (art0 is not None or art.any()) else None
    return new, lw, r


# --------------------------------------------------------------------------
# hazard of starting treatment with time-varying confounders (clone-censor, per-protocol sequential trials)
# --------------------------------------------------------------------------
def cumulative_sum_before(group: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Within-group exclusive cumulative sum over records sorted by group (0 on a group's first record)."""
    cs = np.cumsum(x)
    first = np.r_[True, group[1:] != group[:-1]]
    start = np.flatnonzero(first)
    base = np.repeat(cs[start] - x[start], np.diff(np.r_[start, group.shape[0]]))
    return cs - base - x


def locate(key_rows: np.ndarray, key_starts: np.ndarray, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For records sorted by (row, start): index of the last record of ``rows[i]`` with ``start <= t[i]``
    (the row's first record when none), vectorised on one integer key (row, time rank)."""
    rows = np.asarray(rows, dtype=np.int64)
    t = np.asarray(t, dtype=float)
    allt, tr = np.unique(np.concatenate([key_starts, t]), return_inverse=True)
    tr = tr.ravel().astype(np.int64)
    U = np.int64(allt.size + 1)
    key = np.asarray(key_rows, dtype=np.int64) * U + tr[:key_starts.size]
    q = rows * U + tr[key_starts.size:]
    pos = np.searchsorted(key, q, side="right") - 1
    first = np.searchsorted(key_rows, rows, side="left")
    return np.maximum(pos, first)


class TVTreatmentHazard:
    """Hazard of starting treatment given the baseline *and time-varying* confounders.

    The time-varying counterpart of :class:`causal_hcc.design._common.TreatmentHazard`
    (same at-risk definition: alive, under follow-up, untreated and eligible;
    treatment at time 0 placed at ``eps``), used by clone-censor and
    per-protocol sequential trials when the cohort has
    ``time_varying_confounders``. The cumulative hazard is path-dependent:
    ``cumhaz(t, X, rows)`` integrates the hazard along each patient's own
    covariate history up to ``t``.

    * ``"cox"``: Cox model (Efron) on the at-risk time split at the
      patient's measurement times (R ``coxph(Surv(start, stop, started) ~ x +
      l(t))`` on ``tmerge`` rows); ``H(t) = sum over pieces of exp(x'b +
      l'g) [H0(min(t, stop)) - H0(start)]``. Binary baseline levels at which
      nobody starts get a structural zero hazard, as in the baseline model.
    * ``"logistic"``: pooled logistic model on intervals of width ``grid``
      with the time-varying confounders at each interval's start and the
      baseline model's time terms. Decisions are made at the grid times
      ``k grid`` with the values known then: a start in ``[k grid, (k + 1)
      grid)`` is decision k (for person-period data, the start of the
      period). ``H(t)`` is ``-sum log(1 - p_k)`` over the decisions made at
      or before t.

    A value measured at time t is known to a decision at t: in the Cox
    model, measurements take effect a moment before their time, so a start at
    a measurement time sees it.

    References
    ----------
    Robins JM, Finkelstein DM. Biometrics 2000;56:779-88 (censoring models
    conditional on the time-varying history).
    Hernán MA, Robins JM. Causal Inference: What If. CRC 2020, ch. 17 and 21.
    """

    def __init__(self, method: str = "cox", grid: float | None = None, default_grid: float | None = None,
                 use_tv: bool = True) -> None:
        self.method = method
        self.grid = grid
        self.default_grid_ = default_grid
        #: False: the same model without the time-varying confounders (the numerator of stabilised weights)
        self.use_tv = use_tv

    def fit(self, T: np.ndarray, tt: np.ndarray, state: np.ndarray, X: np.ndarray, design: str = "", *,
            rows: np.ndarray, timeline: Any) -> "TVTreatmentHazard":
        from causal_hcc.core.cox import coxph

        self.timeline_ = timeline
        self.eps_ = 1e-6 * float(np.max(T))
        t_trt = np.where(np.isfinite(tt), np.maximum(tt, self.eps_), np.inf)
        exit_ = np.minimum(np.minimum(T, t_trt), state)
        event = (np.isfinite(tt) & (tt < T) & (t_trt <= state)).astype(np.int8)
        keep = exit_ > 0
        X = np.asarray(X, dtype=float)
        rows = np.asarray(rows, dtype=np.int64)
        self.n_events_ = int(event[keep].sum())
        if self.n_events_ == 0:
            raise EstimationError(f"design '{design}': no patient starts treatment while at risk, "
                                  "so the censoring weights cannot be estimated")
        ex, ev, Xk, rk = exit_[keep], event[keep], X[keep], rows[keep]
        o = np.argsort(rows, kind="stable")
        self.fit_rows_, self.fit_X_, self.fit_T_ = rows[o], X[o], np.asarray(T, dtype=float)[o]
        self.table_ = None
        self.event_times_ = np.unique(ex[ev == 1])
        # structural zeros among binary baseline levels (as the baseline model)
        self.zero_rules_ = []
        m = np.ones(ex.size, dtype=bool)
        for j in range(Xk.shape[1]):
            lv = np.unique(Xk[m, j])
            if lv.size == 2 and np.unique(Xk[m & (ev == 1), j]).size == 1:
                other = float(lv[lv != Xk[m & (ev == 1), j][0]][0])
                self.zero_rules_.append((j, other))
                m &= Xk[:, j] != other
        self.cols_ = [j for j in range(Xk.shape[1]) if np.ptp(Xk[m, j]) > 0]
        if self.method == "cox":
            sp = self._split(np.zeros(ex.size), ex, rk)
            i = sp["interval"]
            pe = np.where(sp["last"], ev[i], 0).astype(np.int8)
            L = sp["values"]
            self.lcols_ = ([j for j in range(L.shape[1]) if np.ptp(L[m[i], j]) > 0]
                           if L.shape[1] and self.use_tv else [])
            Z = np.column_stack([Xk[i][:, self.cols_], L[:, self.lcols_]])
            sel = m[i]
            # centred (as TreatmentHazard): the baseline hazard is taken at the covariate means, so that
            # exp(lp) cannot overflow for a covariate far from 0 (a calendar year)
            self.center_ = Z[sel].mean(axis=0) if Z.shape[1] and sel.any() else np.zeros(Z.shape[1])
            if Z.shape[1]:
                fit = coxph(sp["stop"][sel], pe[sel], Z[sel] - self.center_, entry=sp["start"][sel], ties="efron",
                            robust=False)
                self.coef_ = np.asarray(fit.coef, dtype=float)
                bh = fit.baseline_hazard()
                self.bh_time_, self.bh_cum_ = bh["time"].to_numpy(float), bh["hazard"].to_numpy(float)
            else:
                self.coef_ = np.zeros(0)
                self.bh_time_, self.bh_cum_ = nelson_aalen(ex[m], ev[m])
        else:
            from causal_hcc.core.logistic import logistic_fit

            g = self.grid if self.grid else self.default_grid_
            if not g > 0:
                g = float(np.max(ex)) / 12.0
            self.grid_ = g
            # decisions at k g: a start in [k g, (k + 1) g) is decision k, made with the values known at k g
            # (a start at a measurement time sees that measurement); at risk at decision k while untreated
            # before k g and still alive, under follow-up and eligible at k g
            kst = np.floor(ex / g + _EPS).astype(np.int64)
            until = np.where(ev == 1, (kst + 1) * g, ex)
            r, k = interval_records(until, g)
            y = ((ev[r] == 1) & (k == kst[r])).astype(float)
            L = timeline.at(rk[r], k * g)
            self.lcols_ = ([j for j in range(L.shape[1]) if np.ptp(L[m[r], j]) > 0]
                           if L.shape[1] and self.use_tv else [])
            self.K_ = int(k.max()) + 1
            self.t_scale_ = self.K_ * g
            Z = self._design(Xk[r][:, self.cols_], L[:, self.lcols_], k)
            sel = m[r]
            if not sel.all():   # (no structural zeros: the model rows as they are, without a copy)
                Z, y = Z[sel], y[sel]
            fit = logistic_fit(Z, y, where=f"design '{design}': pooled logistic model of treatment start")
            self.logit_coef_ = fit.coef
        return self

    def _split(self, start: np.ndarray, stop: np.ndarray, rows: np.ndarray) -> dict:
        """``timeline.split`` with every measurement taking effect a moment (``delta``) before its time, so that
        a treatment start at a measurement time sees that measurement ("known at t"), as the Cox risk set at t
        would not with tmerge's (start, stop] rows."""
        d = self.eps_ * 0.5          # above coxph's timefix tolerance, below any real gap
        sp = self.timeline_.split(start + d, stop + d, rows)
        sp["start"] = np.where(sp["start"] == start[sp["interval"]] + d, start[sp["interval"]], sp["start"] - d)
        sp["stop"] = np.where(sp["last"], stop[sp["interval"]], sp["stop"] - d)
        return sp

    def _design(self, Xc, Lc, k):
        mid = (np.asarray(k, dtype=float) + 0.5) * self.grid_ / self.t_scale_
        return np.column_stack([np.ones(mid.shape[0]), Xc, Lc, mid, mid ** 2])

    def _lp(self, X: np.ndarray, L: np.ndarray) -> np.ndarray:
        nx = len(self.cols_)
        c = getattr(self, "center_", np.zeros(nx + len(self.lcols_)))
        lp = (X[:, self.cols_] - c[:nx]) @ self.coef_[:nx] if nx else np.zeros(X.shape[0])
        if self.lcols_:
            lp = lp + (L[:, self.lcols_] - c[nx:]) @ self.coef_[nx:]
        return lp

    def _H0(self, t: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.bh_time_, t, side="right") - 1
        return np.where(idx >= 0, self.bh_cum_[np.maximum(idx, 0)], 0.0)

    def cumhaz(self, t: np.ndarray, X: np.ndarray, rows: np.ndarray, expand: np.ndarray | None = None) -> np.ndarray:
        """Cumulative treatment hazard H(t) of cohort row ``rows[i]`` (baseline covariates ``X[i]``) along its
        own covariate history. With ``expand``, query ``i`` is ``t[i]`` for ``rows[expand[i]]`` and
        ``X[expand[i]]`` (rows and X once per patient, the lookup of each patient's table done once)."""
        t = np.asarray(t, dtype=float)
        X = np.asarray(X, dtype=float)
        rows = np.asarray(rows, dtype=np.int64)
        if t.size == 0:
            return np.zeros(0)
        if expand is not None:
            expand = np.asarray(expand, dtype=np.int64)
            if self.table_ is None:
                self.table_ = self._table(self.fit_rows_, self.fit_X_, self.fit_T_)
            ui = np.searchsorted(self.fit_rows_, rows)
            known = (ui < self.fit_rows_.size) & (self.fit_rows_[np.minimum(ui, self.fit_rows_.size - 1)] == rows)
            if not known.all():   # rows outside the fit: the general path on the expanded queries
                return self.cumhaz(t, X[expand], rows[expand])
            H = self._lookup(self.table_, ui[expand], t)
            for j, level in self.zero_rules_:
                H = np.where((X[:, j] == level)[expand], 0.0, H)
            return H
        # path tables (one per patient, over its whole follow-up) are built once, on the first call, for the
        # fitted patients; a query is then a lookup. Queries for other rows get a table of their own.
        if self.table_ is None:
            self.table_ = self._table(self.fit_rows_, self.fit_X_, self.fit_T_)
        tab = self.table_
        ui = np.searchsorted(self.fit_rows_, rows)
        known = (ui < self.fit_rows_.size) & (self.fit_rows_[np.minimum(ui, self.fit_rows_.size - 1)] == rows)
        if not known.all():
            urow, first = np.unique(rows, return_index=True)
            tmax = np.zeros(urow.size)
            np.maximum.at(tmax, np.searchsorted(urow, rows), t)
            tab, ui = self._table(urow, X[first], tmax), np.searchsorted(urow, rows)
        H = self._lookup(tab, ui, t)
        for j, level in self.zero_rules_:
            H = np.where(X[:, j] == level, 0.0, H)
        return H

    def _table(self, urow: np.ndarray, Xu: np.ndarray, horizon: np.ndarray) -> dict:
        """Cumulative hazard along each patient's history up to ``horizon``, for :meth:`_lookup`."""
        if self.method == "cox":
            sp = self._split(np.zeros(urow.size), np.maximum(horizon, 0.0), urow)
            i = sp["interval"]
            er = np.exp(self._lp(Xu[i], sp["values"]))
            a = sp["start"]
            before = cumulative_sum_before(i, er * (self._H0(sp["stop"]) - self._H0(a)))
            return {"i": i, "a": a, "er": er, "before": before}
        g = self.grid_
        kmax = np.floor(np.maximum(horizon, 0.0) / g + _EPS).astype(np.int64) + 1
        r, k = interval_records(kmax * g, g)
        with np.errstate(over="ignore"):
            p = 1.0 / (1.0 + np.exp(-(self._design(Xu[r][:, self.cols_], self.timeline_.at(urow[r], k * g)
                                                     [:, self.lcols_], k) @ self.logit_coef_)))
        cum = np.concatenate([[0.0], np.cumsum(-np.log1p(-np.minimum(p, 1 - 1e-12)))])
        cnt = np.bincount(r, minlength=urow.size)
        return {"cum": cum, "cnt": cnt, "off": np.concatenate([[0], np.cumsum(cnt)])}

    def _lookup(self, tab: dict, ui: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.method == "cox":
            pos = locate(tab["i"], tab["a"], ui, t)
            return tab["before"][pos] + tab["er"][pos] * np.maximum(self._H0(t) - self._H0(tab["a"][pos]), 0.0)
        kdone = np.floor(t / self.grid_ + _EPS).astype(np.int64) + 1       # decisions made at or before t
        off, cnt = tab["off"][ui], tab["cnt"][ui]
        return tab["cum"][off + np.clip(kdone, 0, cnt)] - tab["cum"][off]

    def cut_points(self, max_cuts: int = 40) -> np.ndarray:
        if self.method == "logistic":
            return np.arange(1, self.K_ + 1) * self.grid_
        c = self.event_times_
        if c.size > max_cuts:
            c = np.unique(np.quantile(c, np.linspace(0, 1, max_cuts)))
        return c


# --------------------------------------------------------------------------
# call-site helpers for the designs (one line each there)
# --------------------------------------------------------------------------
def has_tv(cohort: Any) -> bool:
    """True when the cohort has time-varying confounders (a timeline with columns)."""
    tl = timeline_of(cohort)
    return bool(tl is not None and tl.columns)


def treatment_hazard(cohort: Any, method: str, grid: float | None, T, tt, state, X, keep, design: str):
    """The treatment-start model of the censoring weights: :class:`TVTreatmentHazard` with the time-varying
    confounders when the cohort has them, else the baseline :class:`~causal_hcc.design._common.TreatmentHazard`."""
    from causal_hcc.design._common import TreatmentHazard

    if not has_tv(cohort):
        return TreatmentHazard(method, grid).fit(T[keep], tt[keep], state[keep], X[keep], design)
    return TVTreatmentHazard(method, grid, weight_grid(cohort, tt)).fit(
        T[keep], tt[keep], state[keep], X[keep], design, rows=np.flatnonzero(keep), timeline=timeline_of(cohort))


def cumhaz_at(model: Any, t: np.ndarray, X: np.ndarray, rows: np.ndarray,
              expand: np.ndarray | None = None) -> np.ndarray:
    """``model.cumhaz`` at ``t`` for cohort rows ``rows`` (path-dependent for the time-varying model).
    With ``expand``, ``t[i]`` is for ``rows[expand[i]]``, ``X[expand[i]]`` (a patient's many rows)."""
    if isinstance(model, TVTreatmentHazard):
        return model.cumhaz(t, X, rows, expand=expand)
    return model.cumhaz(t, X if expand is None else np.asarray(X)[expand])


#: ``grace_weights`` option of clone-censor: how the treat arm's clones that could be censored at G are weighted
GRACE_WEIGHTS = ("state", "last_interval")


def grace_probability(cohort: Any, X: np.ndarray, at_G: np.ndarray, in_grace: np.ndarray, tt: np.ndarray,
                      grace: float, grid: float | None, design: str, rule: str = "state") -> tuple[np.ndarray, str]:
    """Probability of not being censored at the end of the grace period, for the clones ``at_G`` that could
    be censored there (alive, under follow-up and eligible at G). Returns ``(p, how)``, ``p`` of length ``n``
    (1 where it does not apply).

    Baseline confounders only: ``P(treated by G | x)`` for every clone treated within grace
    (:func:`causal_hcc.design._common.prob_treated_by`), whatever ``rule``.

    With time-varying confounders ``l``:

    * ``rule="state"`` (default): ``P(treated by G | x, l(G))`` for every clone treated within grace, fitted
      on the clones ``at_G``: the clones censored at G are represented by those operated within grace that
      are *in the same state at G* (baseline confounders and the current values of the time-varying ones;
      for an operated clone ``l(G)`` is its state after surgery, as the regime makes it). The regime
      "operate at the patient's own date if within G, else at G" is then identified when the course after
      G depends on the history only through that state and the treatment (not on how long before G
      surgery took place). On the twin with a time-varying confounder (performance status falls after
      surgery) matching on ``x`` alone represents the censored clones by patients operated earlier, in a
      better state: S(12) of the treat arm +0.012 above the regime's truth (brute force over 800,000
      patients), while matching on ``(x, l(G))`` reproduces it (docs/estimands.md, clone-censor).
    * ``rule="last_interval"``: the regime "start by G" restricts only the last decision before G: clones
      untreated at ``G - h`` must start in ``(G - h, G]`` or be censored at G; so those starting in
      ``(G - h, G]`` weigh ``1 / P(start in (G - h, G] | x, l(G))`` (fitted on the clones untreated at
      ``G - h`` that could be censored at G) and earlier starters, whose treatment the regime allowed either
      way, weigh 1 (Cain et al. 2010). ``h`` is the weight grid (at most G). It needs the same assumption
      only within ``(G - h, G]``, but the censored clones are carried by the few who start in that interval:
      on the twin (n = 1,000) the empirical SE of the survival difference is twice that of ``state`` and the
      weights' small-sample bias +0.012 at 24 months (2 MC SE).
    """
    from causal_hcc.design._common import prob_treated_by

    n = X.shape[0]
    p = np.ones(n)
    if not at_G.any():
        return p, "none"
    if not has_tv(cohort):
        p[at_G] = prob_treated_by(X[at_G], in_grace[at_G], design)
        return p, "baseline"
    if grace <= 0:   # one decision, at time zero, made with the values known then
        rows = np.flatnonzero(at_G)
        Z = np.column_stack([X[at_G], tv_matrix(cohort, rows, np.zeros(rows.size))])
        p[at_G] = prob_treated_by(Z, in_grace[at_G], design)
        return p, "decision at time zero"
    if rule == "state":
        rows = np.flatnonzero(at_G)
        Z = np.column_stack([X[at_G], tv_matrix(cohort, rows, np.full(rows.size, float(grace)))])
        p[at_G] = prob_treated_by(Z, in_grace[at_G], design)
        return p, f"state at {grace:g}"
    if rule != "last_interval":
        raise ValueError(f"grace weights rule '{rule}': expected one of {', '.join(GRACE_WEIGHTS)}")
    h = min(float(grid) if grid else weight_grid(cohort, tt), float(grace))
    early = in_grace & (tt <= grace - h)
    risk = at_G & ~early
    if risk.any():
        rows = np.flatnonzero(risk)
        Z = np.column_stack([X[risk], tv_matrix(cohort, rows, np.full(rows.size, float(grace)))])
        p[risk] = prob_treated_by(Z, in_grace[risk], design)
    return p, f"last decision interval ({grace - h:g}, {grace:g}]"


def trial_start_columns(cohort: Any, patient: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The time-varying confounders of ``patient`` at trial start ``t`` and their names (``x (trial start)``)."""
    M = tv_matrix(cohort, patient, t)
    return M, [f"{c} (trial start)" for c in tv_names(cohort)]


def rows_by_interval(start: np.ndarray, stop: np.ndarray, w: np.ndarray, h: float,
                     origin: np.ndarray | float = 0.0) -> dict[str, Any]:
    """Per-interval weight diagnostics of counting-process rows: the weight of each unit at each grid time
    ``k h`` it is under follow-up at (its row covering ``k h``), summarised as :func:`interval_diagnostics`
    summarises person-intervals.

    The rows are not expanded into person-intervals (a million person-periods in sequential trials are
    ~15 million of them): counts and weight sums per grid time come from difference arrays, minima and
    maxima from the few distinct (first, last) grid-time pairs of the rows. Same numbers as expanding
    (tests/design/test_stabilised_weights.py checks it).
    """
    # (in place, in few arrays: the same arithmetic without a fresh array per step, each a page-faulted 35 MB
    # at 4 million rows; ``hi`` is ``khi + 1``, the first grid time after the row)
    x = np.add(np.asarray(start, dtype=float), origin, dtype=float)
    lo = _ceil_index(x, h)
    np.add(np.asarray(stop, dtype=float), origin, out=x)
    hi = _ceil_index(x, h)
    w = np.asarray(w, dtype=float)
    use = hi > lo
    if not use.all():
        lo, hi, w = lo[use], hi[use], w[use]
        x = np.empty(w.shape[0])
    if not lo.size:
        return dict(interval_diagnostics(lo, w, h), ess_overall=0.0)
    k0 = int(lo.min())
    K = int(hi.max()) - k0
    if K > 2048:   # many grid times: the pair table would be large; expand
        cnt = hi - lo
        r = np.repeat(np.arange(lo.size), cnt)
        k = lo[r] + (np.arange(r.size) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        wr = w[r]
        return dict(interval_diagnostics(k, wr, h), ess_overall=float(wr.sum() ** 2 / np.sum(wr ** 2)))
    lo -= k0
    hi -= k0

    def per_k(x: np.ndarray | None) -> np.ndarray:
        return np.cumsum(np.bincount(lo, weights=x, minlength=K + 1) - np.bincount(hi, weights=x, minlength=K + 1))[:K]

    n_k = np.rint(per_k(None)).astype(np.int64)
    w2 = np.multiply(w, w, out=x)
    s1_k, s2_k = per_k(w), per_k(w2)
    pair = np.multiply(lo, K + 1)
    pair += hi
    pmin = np.full(K * (K + 1) + K + 1, np.inf)
    pmax = np.full(pmin.size, -np.inf)
    np.minimum.at(pmin, pair, w)
    np.maximum.at(pmax, pair, w)
    seen = np.flatnonzero(np.isfinite(pmin))
    mn_k, mx_k = np.full(K, np.inf), np.full(K, -np.inf)
    for p in seen:   # at most K (K + 1) / 2 pairs, usually a few hundred
        l, u = divmod(int(p), K + 1)
        np.minimum(mn_k[l:u], pmin[p], out=mn_k[l:u])
        np.maximum(mx_k[l:u], pmax[p], out=mx_k[l:u])
    out = interval_summary(np.arange(k0, k0 + K), n_k, s1_k, s2_k, mn_k, mx_k, h)
    np.subtract(hi, lo, out=pair)                # grid times per row
    cnt = pair.astype(float)
    out["ess_overall"] = float(np.dot(cnt, w) ** 2 / np.dot(cnt, w2))
    return out


def _ceil_index(x: np.ndarray, h: float) -> np.ndarray:
    """``np.ceil(x / h - _EPS)`` as int64, computed in ``x`` (overwritten)."""
    np.divide(x, h, out=x)
    np.subtract(x, _EPS, out=x)
    np.ceil(x, out=x)
    return x.astype(np.int64)


# --------------------------------------------------------------------------
# stabilised artificial-censoring weights (clone-censor, per-protocol sequential trials)
# --------------------------------------------------------------------------
#: ``numerator`` option of clone-censor and per-protocol sequential trials
DESIGN_NUMERATORS = ("auto", "baseline", "time", "none")
#: adjustments whose outcome model conditions on the design's covariates (clone-censor: the baseline
#: confounders; sequential trials: those and the time-varying ones at each trial's start)
CONDITIONAL_ADJUSTMENTS = ("multivariable",)


def conditions_on_covariates(adjustment: Any) -> bool:
    """True when ``adjustment`` (instance or class) fits an outcome model conditional on the design's covariates.

    An adjustment may say so with an attribute ``conditions_on_covariates``; otherwise the built-in
    :data:`CONDITIONAL_ADJUSTMENTS` decide (a plug-in that says nothing is taken as marginal, for which the
    time-only numerator is valid)."""
    flag = getattr(adjustment, "conditions_on_covariates", None)
    if flag is not None:
        return bool(flag)
    return getattr(adjustment, "name", None) in CONDITIONAL_ADJUSTMENTS


def resolve_numerator(numerator: str, conditional: bool) -> str:
    """``auto`` -> ``baseline`` for an outcome model conditional on the covariates, ``time`` for a marginal one."""
    if numerator == "auto":
        return "baseline" if conditional else "time"
    return numerator


def check_numerator(numerator: str, adjustment: Any, design: str, where: str) -> None:
    """Refuse ``numerator: baseline`` with an outcome model that does not condition on the covariates."""
    if numerator == "baseline" and not conditions_on_covariates(adjustment):
        name = getattr(adjustment, "name", adjustment)
        raise SpecError(f"{where}: numerator 'baseline' puts the confounders in the numerator of the "
                        f"stabilised weights, so the outcome model must adjust for them, and adjustment '{name}' "
                        f"is marginal; use numerator: time (the default for it), none, or adjustment: "
                        f"multivariable")


def numerator_label(kind: str, design: str) -> str:
    covs = ("the baseline confounders and the time-varying ones at the trial start"
            if design == "sequential_trials" else "the baseline confounders")
    return {"baseline": f"{covs} and time", "time": "time only", "none": "1 (unstabilised)"}[kind]


def nelson_aalen(exit_: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nelson-Aalen cumulative hazard ``sum d / R`` at the distinct event times (vectorised)."""
    ex = np.asarray(exit_, dtype=float)
    ev = np.asarray(event) == 1
    tu, d = np.unique(ex[ev], return_counts=True)
    at_risk = ex.size - np.searchsorted(np.sort(ex), tu, side="left")
    return tu, np.cumsum(d / at_risk)


class NelsonAalenHazard:
    """Marginal hazard of starting treatment (the time-only numerator of the Cox censoring models)."""

    method = "cox"

    def fit(self, T: np.ndarray, tt: np.ndarray, eps: float) -> "NelsonAalenHazard":
        T = np.asarray(T, dtype=float)
        t_trt = np.where(np.isfinite(tt), np.maximum(tt, eps), np.inf)
        ex = np.minimum(T, t_trt)
        ev = (np.isfinite(tt) & (tt < T)).astype(np.int8)
        keep = ex > 0
        self.eps_ = eps
        self.bh_time_, self.bh_cum_ = nelson_aalen(ex[keep], ev[keep])
        self.event_times_ = self.bh_time_
        return self

    def cumhaz(self, t: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        idx = np.searchsorted(self.bh_time_, np.asarray(t, dtype=float), side="right") - 1
        return np.where(idx >= 0, self.bh_cum_[np.maximum(idx, 0)], 0.0)

    def cut_points(self, max_cuts: int = 40) -> np.ndarray:
        c = self.bh_time_
        if c.size > max_cuts:
            c = np.unique(np.quantile(c, np.linspace(0, 1, max_cuts)))
        return c


def numerator_hazard(den: Any, kind: str, T: np.ndarray, tt: np.ndarray, state: np.ndarray, X: np.ndarray,
                     keep: np.ndarray, design: str) -> Any:
    """The numerator model of the never-treat clones' stabilised weights: the denominator's model family
    (Cox or pooled logistic, on the same grid) with the baseline confounders (``kind = "baseline"``) or time
    only (``"time"``), and without the time-varying confounders.

    The numerator must be a function of what the outcome model conditions on only (Cole & Hernán 2008;
    Hernán & Robins, What If, 12.3 and 17.4), so it is not stopped where the denominator is (the
    ``require_event_free`` state, after which nobody is at risk of deviating): its risk set is every clone
    alive, under follow-up and untreated (in that state or not), its events the treatment starts the
    denominator models (before the state). A start after the state censors its clone without an event, as
    in the denominator.
    """
    from causal_hcc.design._common import TreatmentHazard

    Xn = X if kind == "baseline" else X[:, :0]
    eps = den.eps_
    t_trt = np.where(np.isfinite(tt), np.maximum(tt, eps), np.inf)
    late = np.isfinite(tt) & (tt < T) & (t_trt > state)      # started after the state (require_event_free)
    Tn = np.where(late, t_trt, T)
    ttn = np.where(late, np.inf, tt)
    st = np.full(T.shape[0], np.inf)
    grid = getattr(den, "grid_", None) or den.grid
    if isinstance(den, TVTreatmentHazard):
        m = TVTreatmentHazard(den.method, grid, den.default_grid_, use_tv=False)
        return m.fit(Tn[keep], ttn[keep], st[keep], Xn[keep], design, rows=np.flatnonzero(keep),
                     timeline=den.timeline_)
    if den.method == "cox" and kind == "time":
        return NelsonAalenHazard().fit(Tn[keep], ttn[keep], eps)
    return TreatmentHazard(den.method, grid).fit(Tn[keep], ttn[keep], st[keep], Xn[keep], design)


def grace_numerator(X: np.ndarray, alive_G: np.ndarray, uncensored: np.ndarray, kind: str,
                    design: str) -> np.ndarray:
    """Numerator of the treat-within-G clones' stabilised weight after G: ``P(not censored at G | V)`` among the
    clones alive and under follow-up at G (eligible or not; those treated within grace or no longer eligible are
    not censored), a proportion (``kind = "time"``) or a logistic model of the baseline confounders
    (``"baseline"``). 1 everywhere for ``"none"``."""
    from causal_hcc.design._common import prob_treated_by

    p = np.ones(X.shape[0])
    if kind == "none" or not alive_G.any():
        return p
    Z = X[alive_G] if kind == "baseline" else X[alive_G][:, :0]
    p[alive_G] = prob_treated_by(Z, uncensored[alive_G], design)
    return p


class TrialNumerator:
    """Numerator of the stabilised per-protocol weights of sequential trials.

    ``P(no treatment start from the trial start s to s + a | trial, a, V)``, V
    the covariates each trial's outcome model adjusts for: none (``kind =
    "time"``) or the baseline confounders and the time-varying ones at the
    trial start (``"baseline"``, with adjustment ``multivariable``), as
    TrialEmulation's numerator models hold the outcome model's adjustment
    terms. Fitted on the trials' eligible patient-trials (both arms, less those
    starting at the trial start: their start is the assignment; a start before
    the ``require_event_free`` state is the event, follow-up ends at death,
    loss, the end of follow-up or a start after that state), in the family of
    the denominator:

    * ``"cox"``: Cox model of the time since the trial start stratified by
      trial (R ``coxph(Surv(a, started) ~ V + strata(trial))``, Efron; time
      only: the Nelson-Aalen hazard of each trial); ``H(a) = H0_trial(a)
      exp(V'b)``;
    * ``"logistic"``: pooled logistic model of the decisions on the
      denominator's grid after the trial start (``s < k g <= s + a``, the
      decisions the denominator's factor counts), ``logit q = b0 + V'b + f +
      f^2 + s + s^2`` with f = k g - s the time since the trial start and s
      the trial start (TrialEmulation's follow-up and trial-period terms; R
      ``glm(family = binomial)``); ``H(a) = -sum log(1 - q)``. With time only
      the model is fitted on the counts of each (trial, decision) pattern
      (the same maximum likelihood).
    """

    def __init__(self, method: str, kind: str, grid: float | None = None, eps: float = 0.0) -> None:
        self.method, self.kind, self.grid, self.eps = method, kind, grid, eps

    def fit(self, trial: np.ndarray, s: np.ndarray, exit_: np.ndarray, event: np.ndarray, Z: np.ndarray,
            design: str = "sequential_trials") -> "TrialNumerator":
        """One row per eligible patient-trial: trial index, trial start ``s``, time from the trial start to
        the start of treatment or the end of the patient's at-risk time ``exit_``, ``event`` (1 = a start before
        the ``require_event_free`` state), covariates ``Z`` (``(n, 0)`` for time only)."""
        from causal_hcc.core.cox import coxph

        self.trial_ = np.asarray(trial, dtype=np.int64)
        self.s_ = np.asarray(s, dtype=float)
        ex = np.asarray(exit_, dtype=float)
        ev = np.asarray(event, dtype=np.int8)
        Z = np.asarray(Z, dtype=float).reshape(ex.shape[0], -1)
        self.Z_ = Z
        where = f"design '{design}': numerator model of the per-protocol weights"
        if self.method == "cox":
            self.zero_rules_, self.cols_ = _zero_rules(Z, ev)
            m = np.ones(ex.size, dtype=bool)
            for j, level in self.zero_rules_:
                m &= Z[:, j] != level
            self.bh_ = {}
            self.center_ = Z[m][:, self.cols_].mean(axis=0) if self.cols_ else np.zeros(0)   # (as TreatmentHazard)
            if self.cols_:
                fit = coxph(ex[m], ev[m], Z[m][:, self.cols_] - self.center_, strata=self.trial_[m], ties="efron",
                            robust=False)
                self.coef_ = np.asarray(fit.coef, dtype=float)
                bh = fit.baseline_hazard()
                for k, part in bh.groupby("stratum", sort=False):
                    self.bh_[int(k)] = (part["time"].to_numpy(float), part["hazard"].to_numpy(float))
            else:
                self.coef_ = np.zeros(0)
                for k in np.unique(self.trial_[m]):
                    sel = m & (self.trial_ == k)
                    self.bh_[int(k)] = nelson_aalen(ex[sel], ev[sel])
            self.n_events_ = int(ev[m].sum())
            return self
        g = float(self.grid)
        self.g_ = g
        s_ = self.s_
        self.k_lo_ = np.floor(s_ / g + _EPS).astype(np.int64) + 1          # first decision after the start
        ab = s_ + ex
        kst = np.floor(ab / g + _EPS).astype(np.int64)
        k_hi = np.where(ev == 1, kst, np.ceil(ab / g - _EPS).astype(np.int64) - 1)
        self.cnt_ = np.maximum(k_hi - self.k_lo_ + 1, 0)
        y_at = np.where(ev == 1, kst, -1)
        self.f_scale_ = max(float(np.max(np.where(self.cnt_ > 0, k_hi * g - s_, 0.0))), g)
        self.s_scale_ = max(float(np.max(s_)), g)
        Z = _nonconstant(Z)
        self.Z_ = Z
        if self.kind == "time" or Z.shape[1] == 0:
            self.kind_fit_ = "patterns"
            # counts per (trial, decision): the records of a pattern share their covariates
            K = int(np.max(np.where(self.cnt_ > 0, k_hi, 0))) + 2
            ntr = int(self.trial_.max()) + 1
            has = self.cnt_ > 0
            diff = np.zeros(ntr * K + 1)
            np.add.at(diff, self.trial_[has] * K + self.k_lo_[has], 1.0)
            np.add.at(diff, self.trial_[has] * K + k_hi[has] + 1, -1.0)
            at = np.cumsum(diff)[:-1].reshape(ntr, K)
            # the running sum must restart at each trial's row: the +1/-1 pairs stay within a trial's row
            d = np.bincount(self.trial_[ev == 1] * K + y_at[ev == 1], minlength=ntr * K).reshape(ntr, K)
            s_of = np.zeros(ntr)
            s_of[self.trial_] = s_
            tk, kk = np.nonzero(at > 0)
            n_at, n_ev = at[tk, kk], d[tk, kk].astype(float)
            D = self._design(kk * g - s_of[tk], s_of[tk], np.empty((tk.size, 0)))
            Dz = np.vstack([D, D])
            yy = np.r_[np.ones(tk.size), np.zeros(tk.size)]
            ww = np.r_[n_ev, n_at - n_ev]
            pos = ww > 0
            fit = logistic_fit(Dz[pos], yy[pos], ww[pos], where=where)
            self.coef_ = fit.coef
            q = np.zeros((ntr, K))
            q[tk, kk] = 1.0 / (1.0 + np.exp(-(D @ fit.coef)))
            with np.errstate(divide="ignore"):
                self.cum_ = np.cumsum(-np.log1p(-np.minimum(q, 1 - 1e-12)), axis=1)
            self.n_events_ = int(n_ev.sum())
            return self
        # covariates: one record per patient-trial and decision
        self.kind_fit_ = "records"
        r = np.repeat(np.arange(ex.size), self.cnt_)
        kd = self.k_lo_[r] + (np.arange(r.size) - np.repeat(np.cumsum(self.cnt_) - self.cnt_, self.cnt_))
        y = (kd == y_at[r]).astype(float)
        D = self._design(kd * g - s_[r], s_[r], Z[r])
        fit = logistic_fit(D, y, where=where)
        self.coef_ = fit.coef
        q = fit.fitted
        self.rec_cum_ = np.concatenate([[0.0], np.cumsum(-np.log1p(-np.minimum(q, 1 - 1e-12)))])
        self.rec_off_ = np.r_[0, np.cumsum(self.cnt_)[:-1]]
        self.n_events_ = int(y.sum())
        return self

    def _design(self, f: np.ndarray, s: np.ndarray, Z: np.ndarray) -> np.ndarray:
        fs, ss = f / self.f_scale_, s / self.s_scale_
        cols = [np.ones(f.shape[0]), *Z.T, fs, fs ** 2]
        if not hasattr(self, "use_s_"):
            self.use_s_ = bool(np.ptp(self.s_) > 0)
        if self.use_s_:
            cols += [ss, ss ** 2]
        return np.column_stack(cols)

    def cumhaz(self, j: np.ndarray, a: np.ndarray) -> np.ndarray:
        """H from the trial start to trial time ``a[i]`` for patient-trial ``j[i]``."""
        j = np.asarray(j, dtype=np.int64)
        a = np.asarray(a, dtype=float)
        if self.method == "cox":
            H = np.zeros(j.size)
            tr = self.trial_[j]
            lp = (self.Z_[j][:, self.cols_] - self.center_) @ self.coef_ if self.cols_ else np.zeros(j.size)
            for k in np.unique(tr):
                sel = tr == k
                if int(k) not in self.bh_:
                    continue
                bt, bc = self.bh_[int(k)]
                idx = np.searchsorted(bt, a[sel], side="right") - 1
                H[sel] = np.where(idx >= 0, bc[np.maximum(idx, 0)], 0.0) * np.exp(lp[sel])
            for c, level in self.zero_rules_:
                H = np.where(self.Z_[j, c] == level, 0.0, H)
            return H
        s_ = self.s_[j]
        kdone = np.floor((s_ + a) / self.g_ + _EPS).astype(np.int64) - self.k_lo_[j] + 1   # decisions in (s, s+a]
        kdone = np.maximum(kdone, 0)
        if self.kind_fit_ == "patterns":
            klo, tr = self.k_lo_[j], self.trial_[j]    # (each gathered once: millions of queries)
            klast = klo + kdone - 1
            cum = self.cum_[tr, np.clip(klast, 0, self.cum_.shape[1] - 1)]
            base = self.cum_[tr, np.clip(klo - 1, 0, self.cum_.shape[1] - 1)]
            base = np.where(klo - 1 >= 0, base, 0.0)
            return np.where(kdone > 0, cum - base, 0.0)
        kdone = np.minimum(kdone, self.cnt_[j])
        off = self.rec_off_[j]
        return self.rec_cum_[off + kdone] - self.rec_cum_[off]

    def cut_points(self, trial: int, max_cuts: int = 40) -> np.ndarray:
        """Trial times at which the numerator of trial ``trial`` changes."""
        if self.method == "logistic":
            s = float(self.s_[np.flatnonzero(self.trial_ == trial)[0]]) if np.any(self.trial_ == trial) else 0.0
            kmax = int(np.max(self.k_lo_ + self.cnt_)) + 1
            return np.arange(int(np.floor(s / self.g_ + _EPS)) + 1, kmax + 1) * self.g_ - s
        c = self.bh_.get(int(trial), (np.zeros(0), None))[0]
        if c.size > max_cuts:
            c = np.unique(np.quantile(c, np.linspace(0, 1, max_cuts)))
        return c


def merge_cuts(*cuts: np.ndarray) -> np.ndarray:
    """The union of cut sets, cut points closer than 1e-9 (relative to the largest) to the previous one merged:
    the same time reached by two computations (``t - s`` and a time from the trial start) must not cut a
    piece of length 1e-17, which a later subtraction makes empty."""
    c = np.unique(np.concatenate([np.asarray(x, dtype=float).ravel() for x in cuts]))
    if c.size < 2:
        return c
    tol = 1e-9 * max(1.0, float(np.max(np.abs(c))))
    keep = np.r_[True, np.diff(c) > tol]
    return c[keep]


def _zero_rules(Z: np.ndarray, ev: np.ndarray) -> tuple[list[tuple[int, float]], list[int]]:
    """Binary columns at one of whose levels nobody has the event (a structural zero hazard there, as
    :class:`~causal_hcc.design._common.TreatmentHazard`), and the columns left to fit."""
    rules: list[tuple[int, float]] = []
    m = np.ones(Z.shape[0], dtype=bool)
    for j in range(Z.shape[1]):
        lv = np.unique(Z[m, j])
        if lv.size == 2 and np.unique(Z[m & (ev == 1), j]).size == 1:
            other = float(lv[lv != Z[m & (ev == 1), j][0]][0])
            rules.append((j, other))
            m &= Z[:, j] != other
    return rules, [j for j in range(Z.shape[1]) if np.ptp(Z[m, j]) > 0]
