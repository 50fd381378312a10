"""Helpers shared by the time-zero designs (landmark, time-varying,
sequential trials, clone-censor-weight).

Everything here works on numpy arrays taken from a :class:`~causal_hcc.cohort.Cohort`
(``treatment_time``, ``time(outcome)``, ``event(outcome)``, ``X``,
``column(name)``) and never on the caller's DataFrame.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_hcc.errors import DataError, EstimationError


def fmt_num(x: float) -> str:
    """Short number for labels: 3 -> '3', 2.5 -> '2.5'."""
    return f"{float(x):g}"


def treatment_times(cohort: Any, design: str) -> np.ndarray:
    """Time from time zero to treatment; NaN for never treated.

    Raises :class:`DataError` when the cohort has no ``treatment_time`` role
    (every time-zero design needs it), when a treated patient has no
    treatment time, or when a time is negative.
    """
    tt = getattr(cohort, "treatment_time", None)
    if tt is None:
        raise DataError(f"design '{design}' needs the role 'treatment_time' (time zero -> treatment); the data has none")
    tt = np.array(tt, dtype=float)
    a = np.asarray(cohort.treatment).astype(int)
    tt[a == 0] = np.nan
    bad = np.flatnonzero((a == 1) & np.isnan(tt))
    if bad.size:
        raise DataError(f"design '{design}': treated patients without treatment_time at rows {_rows(bad)}")
    neg = np.flatnonzero(tt < 0)
    if neg.size:
        raise DataError(f"design '{design}': negative treatment_time at rows {_rows(neg)}")
    return tt


def _rows(idx: np.ndarray, k: int = 5) -> str:
    s = ", ".join(str(int(i)) for i in idx[:k])
    return s + (", ..." if idx.size > k else "")


def outcome_arrays(cohort: Any, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """(time, event codes) of ``outcome`` as float / int8 arrays.

    The codes are 0/1 for an outcome without competing events; with competing
    events they are the outcome's status (0 censored, 1 the event of interest,
    2, 3, ... competing), which the designs carry through their row
    transformations (a censored clone gets 0 whatever its code was) and hand to
    :class:`~causal_hcc.base.DesignData` with ``competing=``
    (:func:`competing_codes`). Any event ends follow-up: test ``E > 0``.
    """
    status = getattr(cohort, "status", None)
    e = status(outcome) if callable(status) else cohort.event(outcome)
    return (np.asarray(cohort.time(outcome), dtype=float), np.asarray(e, dtype=np.int8))


def competing_codes(cohort: Any, outcome: str) -> tuple[int, ...]:
    """The competing event codes of ``outcome`` (empty for an outcome without competing events)."""
    comp = getattr(cohort, "competing", None)
    return tuple(comp(outcome)) if callable(comp) else ()


def event_time_of(cohort: Any, name: str, design: str) -> np.ndarray:
    """Time at which patients enter a state; ``inf`` if they never do.

    ``name`` is either an outcome of the cohort (``"pfs"``: the outcome time
    where its event is 1) or a column holding the time of the state (e.g.
    ``"progression_months"``, empty = never).
    """
    names = list(getattr(cohort, "outcome_names", []))
    if name in names:
        t, e = outcome_arrays(cohort, name)
        return np.where(e == 1, t, np.inf)   # the event of interest (a competing event is not this state)
    try:
        col = cohort.column(name)
    except (KeyError, ValueError, AttributeError):
        col = None
    if col is None:
        raise DataError(f"design '{design}': '{name}' is neither an outcome ({', '.join(names) or 'none'}) "
                        f"nor a column of the data")
    try:
        v = np.array(col, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"design '{design}': column '{name}' must hold times (numbers)") from None
    return np.where(np.isnan(v), np.inf, v)


def event_free_at(state_time: np.ndarray, s: float) -> np.ndarray:
    """True where the state (e.g. progression) has not occurred by ``s``."""
    return state_time > s


def quantile_treatment_time(tt: np.ndarray, q: float, design: str) -> float:
    """Quantile of the observed (non-missing, positive) treatment times."""
    x = tt[np.isfinite(tt)]
    if x.size == 0:
        raise EstimationError(f"design '{design}': nobody is treated, so its defaults cannot be derived")
    v = float(np.quantile(x, q))
    if v <= 0:
        v = float(x.max())
    if v <= 0:
        raise EstimationError(f"design '{design}': every treatment starts at time zero; use the baseline design")
    return v


def split_at(start: np.ndarray, stop: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split intervals (start, stop] at the cut points strictly inside them.

    Returns ``(row, new_start, new_stop)`` where ``row`` indexes the input
    interval of each piece (pieces of a row are consecutive, in time order).
    Like ``survSplit`` in R survival. Vectorised (no loop over rows): row i
    has ``max(hi_i - lo_i, 0) + 1`` pieces whose inner edges are
    ``cuts[lo_i:hi_i]``.
    """
    cuts = np.unique(np.asarray(cuts, dtype=float))
    start = np.asarray(start)
    stop = np.asarray(stop)
    n = start.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0)
    lo = np.searchsorted(cuts, start, side="right")
    hi = np.searchsorted(cuts, stop, side="left")
    k = np.maximum(hi - lo, 0) + 1                       # pieces per row
    row = np.repeat(np.arange(n), k)
    j = np.arange(row.size) - np.repeat(np.cumsum(k) - k, k)   # piece number within its row
    c = lo[row] + j                                      # index of the cut ending piece j (if inner)
    first, last = j == 0, j == k[row] - 1
    cpad = np.append(cuts, np.nan)
    a = np.where(first, start[row], cpad[np.clip(c - 1, 0, cuts.size)])
    b = np.where(last, stop[row], cpad[np.clip(c, 0, cuts.size)])
    return row.astype(int), a.astype(float), b.astype(float)


def split_until(stop: np.ndarray, freeze: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split (0, stop] at the cut points before ``freeze`` (where weights stop changing).

    Returns ``(row, start, stop)`` with the pieces of each row consecutive and
    in time order; pieces of zero length are dropped.
    """
    stop = np.asarray(stop, dtype=float)
    f = np.clip(np.asarray(freeze, dtype=float), 0.0, stop)
    r, a, b = split_at(np.zeros(stop.shape[0]), f, cuts)
    # the tail (f, stop] of each row goes after the row's pieces of (0, f], which split_at returns consecutive,
    # in row and time order: placed there directly, not by a lexsort on (row, start) (the same order: a piece
    # of (0, f] starts before f, or at f with zero length, dropped below; a stable lexsort kept it first);
    # the sort was 60% of this function on a million person-periods
    tail = stop > f
    ti = np.flatnonzero(tail)
    tails_before = np.cumsum(tail) - tail                       # tails of the rows before each row
    pos_piece = np.arange(r.shape[0]) + tails_before[r]
    pos_tail = np.searchsorted(r, ti, side="right") + tails_before[ti]   # after the row's last piece
    m = r.shape[0] + ti.shape[0]
    rr, aa, bb = np.empty(m, dtype=r.dtype), np.empty(m), np.empty(m)
    rr[pos_piece], aa[pos_piece], bb[pos_piece] = r, a, b
    rr[pos_tail], aa[pos_tail], bb[pos_tail] = ti, f[ti], stop[ti]
    ok = bb > aa
    return rr[ok], aa[ok], bb[ok]


def score_test(start: np.ndarray, stop: np.ndarray, event: np.ndarray, z: np.ndarray,
               strata: np.ndarray | None = None) -> dict[str, float]:
    """Score (log-rank) test of one covariate at beta = 0, counting-process data.

    With a time-dependent treatment indicator this is the Mantel–Byar test.
    Efron's handling of ties, so it equals R's ``summary(coxph(Surv(start,
    stop, event) ~ z))$sctest``. Own code because the score test at zero is a
    closed form that the Cox fitter does not expose.

    Vectorised, O(n log n): risk-set sums at each event time t are
    ``sum over stop >= t`` minus ``sum over start >= t`` (rows with
    ``start < t <= stop``), both read from reverse cumulative sums of the rows
    sorted by stop and by start (``searchsorted``); Efron's sub-steps of a time
    with d deaths are the d repeated rows k = 0..d-1. (A Python loop over event
    times took 94 s at 100,000 rows.) For a 0/1 covariate every risk-set sum
    is an exact integer, so the numbers equal the per-time loop's up to the
    order of the final sums.

    References
    ----------
    Mantel N, Byar DP. Evaluation of response-time data involving transient
    states: an illustration using heart-transplant data. JASA 1974;69:81-6.
    """
    from scipy.stats import chi2

    start = np.asarray(start, dtype=float)
    stop = np.asarray(stop, dtype=float)
    z = np.asarray(z, dtype=float)
    event = np.asarray(event).astype(bool)
    U = 0.0
    V = 0.0
    if strata is None:
        groups = [slice(None)]
    else:
        strata = np.asarray(strata)
        groups = [strata == s for s in np.unique(strata)]
    for m in groups:
        u, v = _score_parts(start[m], stop[m], event[m], z[m])
        U += u
        V += v
    stat = U * U / V if V > 0 else math.nan
    p = float(chi2.sf(stat, 1)) if math.isfinite(stat) else math.nan
    return {"chi2": float(stat), "df": 1, "p_value": p, "score": float(U), "variance": float(V)}


def _score_parts(st: np.ndarray, sp: np.ndarray, ev: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Score U and Efron variance V at beta = 0 for one stratum (see :func:`score_test`)."""
    ev = ev & (st < sp)                          # a death counts where its row is at risk
    times, inv = np.unique(sp[ev], return_inverse=True)
    if times.size == 0:
        return 0.0, 0.0
    zd = z[ev]
    d0 = np.bincount(inv, minlength=times.size).astype(float)
    d1 = np.bincount(inv, weights=zd, minlength=times.size)
    d2 = np.bincount(inv, weights=zd * zd, minlength=times.size)
    cols = np.column_stack([np.ones_like(z), z, z * z])

    def tail_sums(t_row: np.ndarray) -> np.ndarray:
        # sums of cols over rows with t_row >= each event time
        o = np.argsort(t_row, kind="stable")
        rev = np.zeros((t_row.size + 1, 3))
        np.cumsum(cols[o][::-1], axis=0, out=rev[-2::-1])
        return rev[np.searchsorted(t_row[o], times, side="left")]

    S = tail_sums(sp) - tail_sums(st)           # rows with start < t <= stop
    d = d0.astype(np.int64)
    rep = np.repeat(np.arange(times.size), d)    # one sub-step per death (Efron)
    f = (np.arange(rep.size) - np.repeat(np.cumsum(d) - d, d)) / d0[rep]
    a0 = S[rep, 0] - f * d0[rep]
    a1 = S[rep, 1] - f * d1[rep]
    a2 = S[rep, 2] - f * d2[rep]
    mu = a1 / a0
    return float(d1.sum() - mu.sum()), float(np.sum(a2 / a0 - mu * mu))


# --------------------------------------------------------------------------
# Model of the hazard of starting treatment (for inverse-probability-of-
# censoring weights when clones / trial arms are censored at deviation)
# --------------------------------------------------------------------------
class TreatmentHazard:
    """Hazard of starting treatment among patients at risk of it.

    At risk at time t: alive and under follow-up (T > t), untreated, and
    still eligible (free of the ``require_event_free`` state). The event is
    the start of treatment; death, censoring and loss of eligibility end
    the at-risk time. Two models, both on the baseline confounders:

    * ``"cox"``: Cox model (Efron), cumulative hazard
      ``H(t | x) = H0(t) exp(x'b)`` with the Breslow/Efron baseline of
      :func:`causal_hcc.core.cox.coxph`. A binary confounder level at which
      nobody starts treatment (monotone likelihood) gets a structural zero
      hazard instead of an infinite coefficient.
    * ``"logistic"``: pooled logistic regression on person-intervals of
      width ``grid`` (Hernán & Robins), with time entering as linear and
      quadratic terms of the interval midpoint (scaled to the last
      interval's end); ``H`` is ``-log`` of the product of ``1 - p_k`` over
      completed intervals. Maximum likelihood by IRLS
      (:func:`causal_hcc.adjust.propensity.logistic_irls`, = R ``glm``).

    Treatment at time 0 is placed at ``eps`` (a millionth of the longest
    follow-up) so that it is an event of the model.

    References
    ----------
    Robins JM, Finkelstein DM. Correcting for noncompliance and dependent
    censoring in an AIDS clinical trial with inverse probability of
    censoring weighted (IPCW) log-rank tests. Biometrics 2000;56:779-88.
    Hernán MA, Robins JM. Causal Inference: What If. CRC 2020, ch. 17.
    """

    def __init__(self, method: str = "cox", grid: float | None = None) -> None:
        self.method = method
        self.grid = grid

    def fit(self, T: np.ndarray, tt: np.ndarray, state: np.ndarray, X: np.ndarray,
            design: str = "") -> "TreatmentHazard":
        self.eps_ = 1e-6 * float(np.max(T))
        t_trt = np.where(np.isfinite(tt), np.maximum(tt, self.eps_), np.inf)
        exit_ = np.minimum(np.minimum(T, t_trt), state)
        event = (np.isfinite(tt) & (tt < T) & (t_trt <= state)).astype(np.int8)
        keep = exit_ > 0
        X = np.asarray(X, dtype=float)
        self.n_events_ = int(event[keep].sum())
        if self.n_events_ == 0:
            raise EstimationError(f"design '{design}': no patient starts treatment while at risk, "
                                  "so the censoring weights cannot be estimated")
        if self.method == "cox":
            self._fit_cox(exit_[keep], event[keep], X[keep], design)
        else:
            self._fit_logistic(exit_[keep], event[keep], X[keep], design)
        self.event_times_ = np.unique(exit_[keep][event[keep] == 1])
        return self

    # -- Cox ----------------------------------------------------------------
    def _fit_cox(self, t, e, X, design):
        from causal_hcc.core.cox import coxph

        p = X.shape[1]
        rows = np.ones(t.shape[0], dtype=bool)
        zero_rules: list[tuple[int, float]] = []   # (column, level) with structural zero hazard
        cols = [j for j in range(p) if np.ptp(X[:, j]) > 0]
        changed = True
        while changed:
            changed = False
            for j in list(cols):
                xj = X[rows, j]
                ev = e[rows] == 1
                levels = np.unique(xj)
                if levels.size == 2 and np.unique(xj[ev]).size == 1:
                    v = xj[ev][0]
                    other = levels[levels != v][0]
                    zero_rules.append((j, float(other)))
                    rows &= X[:, j] != other
                    cols.remove(j)
                    changed = True
            cols = [j for j in cols if np.ptp(X[rows, j]) > 0]
        self.zero_rules_ = zero_rules
        self.cols_ = cols
        # centred: the baseline hazard is then taken at the covariate means (a calendar-year covariate
        # overflowed exp(x'b) at covariates = 0: NaN weights; issue 18)
        self.center_ = X[rows][:, cols].mean(axis=0) if cols else np.zeros(0)
        if cols:
            fit = coxph(t[rows], e[rows], X[rows][:, cols] - self.center_, ties="efron", robust=False)
            self.coef_ = np.asarray(fit.coef, dtype=float)
            bh = fit.baseline_hazard()
            self.bh_time_, self.bh_cum_ = bh["time"].to_numpy(float), bh["hazard"].to_numpy(float)
        else:   # no covariate left: Nelson-Aalen-type cumulative hazard (Efron-free, no ties issue)
            self.coef_ = np.zeros(0)
            tu = np.unique(t[rows][e[rows] == 1])
            at_risk = np.array([(t[rows] >= u).sum() for u in tu], dtype=float)
            d = np.array([((t[rows] == u) & (e[rows] == 1)).sum() for u in tu], dtype=float)
            self.bh_time_, self.bh_cum_ = tu, np.cumsum(d / at_risk)

    # -- pooled logistic ---------------------------------------------------
    def _fit_logistic(self, t, e, X, design):
        from causal_hcc.adjust.propensity import logistic_irls

        g = self.grid if self.grid else float(np.quantile(t[e == 1], 0.9)) / 12.0
        if not g > 0:
            g = float(np.max(t)) / 12.0
        self.grid_ = g
        from causal_hcc.errors import SpecError
        from causal_hcc.limits import MAX_CENSORING_INTERVALS

        K = np.ceil(np.max(t) / g)
        if not K <= MAX_CENSORING_INTERVALS:  # (a tiny censoring_grid would ask for billions of intervals)
            raise SpecError(f"design '{design}': censoring_grid {g:.3g} cuts the follow-up into more than "
                            f"{MAX_CENSORING_INTERVALS:,} intervals (a documented limit, see docs/disclosure.md): use "
                            "a coarser grid")
        K = int(K)
        self.K_ = K
        rows, kk, y = [], [], []
        for k in range(K):
            lo = k * g
            at = t > lo
            idx = np.flatnonzero(at)
            rows.append(idx)
            kk.append(np.full(idx.size, k))
            y.append(((e[idx] == 1) & (t[idx] <= lo + g)).astype(int))
        rows, kk, y = np.concatenate(rows), np.concatenate(kk), np.concatenate(y)
        self.cols_ = [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]
        self.t_scale_ = K * g
        Z = self._design(X[rows][:, self.cols_], kk)
        # unpenalised MLE by IRLS, as R glm (scikit-learn's L-BFGS at its default tolerance stopped far
        # from it: with no treatment late in follow-up the time terms were off by orders of magnitude)
        try:
            coef, _, _, _ = logistic_irls(Z, y, maxiter=100, tol=1e-10)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise EstimationError(f"design '{design}': pooled logistic model of treatment start failed ({exc})") \
                from None
        self.logit_coef_ = coef

    def _design(self, Xc, k):
        mid = (np.asarray(k, dtype=float) + 0.5) * self.grid_ / self.t_scale_
        return np.column_stack([np.ones(mid.shape[0]), Xc, mid, mid ** 2])

    def _prob(self, Xc, k):
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-(self._design(Xc, k) @ self.logit_coef_)))

    # -- prediction --------------------------------------------------------
    def cumhaz(self, t: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Cumulative treatment hazard H(t | x_i) for paired times and rows of X."""
        t = np.asarray(t, dtype=float)
        X = np.asarray(X, dtype=float)
        if self.method == "cox":
            idx = np.searchsorted(self.bh_time_, t, side="right") - 1
            H0 = np.where(idx >= 0, self.bh_cum_[np.maximum(idx, 0)], 0.0)
            lp = (X[:, self.cols_] - self.center_) @ self.coef_ if self.cols_ else np.zeros(t.shape[0])
            H = H0 * np.exp(lp)
            for j, level in self.zero_rules_:
                H = np.where(X[:, j] == level, 0.0, H)
            return H
        # logistic: completed intervals before t
        kdone = np.clip(np.floor(t / self.grid_ + 1e-12).astype(int), 0, self.K_)
        H = np.zeros(t.shape[0])
        Xc = X[:, self.cols_]
        for k in range(int(kdone.max()) if kdone.size else 0):
            m = kdone > k
            p = self._prob(Xc[m], np.full(m.sum(), k))
            H[m] += -np.log1p(-np.minimum(p, 1 - 1e-12))
        return H

    def cut_points(self, max_cuts: int = 40) -> np.ndarray:
        """Times where the weights change (at most ``max_cuts``, at quantiles)."""
        if self.method == "logistic":
            return np.arange(1, self.K_ + 1) * self.grid_
        c = self.event_times_
        if c.size > max_cuts:
            c = np.unique(np.quantile(c, np.linspace(0, 1, max_cuts)))
        return c


def unsupported_levels(X: np.ndarray, started: np.ndarray) -> list[tuple[int, float]]:
    """Levels of binary confounders at which nobody starts treatment.

    Iterative: after setting aside the patients at one such level, other
    columns are checked again among the rest. Returns ``(column, level)``
    pairs. A strategy "treat within G" has no support there (positivity).
    """
    X = np.asarray(X, dtype=float)
    started = np.asarray(started, dtype=bool)
    rows = np.ones(X.shape[0], dtype=bool)
    out: list[tuple[int, float]] = []
    changed = True
    while changed and started[rows].any():
        changed = False
        for j in range(X.shape[1]):
            levels = np.unique(X[rows, j])
            if levels.size != 2:
                continue
            seen = np.unique(X[rows & started, j])
            if seen.size == 1:
                other = float(levels[levels != seen[0]][0])
                out.append((j, other))
                rows &= X[:, j] != other
                changed = True
    return out


def prob_treated_by(X: np.ndarray, treated: np.ndarray, design: str = "clone_censor") -> np.ndarray:
    """P(treated by the end of the grace period | x): unpenalised logistic regression.

    Fitted among the clones that could be censored at the end of the grace
    period (see :func:`causal_hcc.design.clone_censor.clone_censor_data`);
    returns the fitted probabilities for those rows. Maximum likelihood by
    IRLS to R ``glm(family = binomial)``'s convergence
    (:func:`causal_hcc.adjust.propensity.logistic_irls`); an earlier version
    used scikit-learn's L-BFGS with its default tolerance, which stopped
    short of the MLE by ~1e-3 in the probabilities when a covariate is on a
    large scale (age in years).
    """
    from causal_hcc.adjust.propensity import logistic_irls

    treated = np.asarray(treated, dtype=int)
    if treated.min() == treated.max():
        return np.full(treated.shape[0], float(treated[0]))
    cols = [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]
    if not cols:
        return np.full(treated.shape[0], float(treated.mean()))
    Z = np.column_stack([np.ones(treated.shape[0]), X[:, cols]])
    try:
        _, p, _, _ = logistic_irls(Z, treated, maxiter=100, tol=1e-10)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise EstimationError(f"design '{design}': logistic model of treatment by the end of the grace period "
                              f"failed ({exc})") from None
    return p


def weight_summary(w: np.ndarray, unit: np.ndarray, n_truncated: int) -> dict[str, Any]:
    """Aggregate description of row weights (never per patient)."""
    # a range of rounding error (stabilised weights that are all 1 up to 1e-16) cannot hold 20 bins
    span = float(np.ptp(w)) if w.size else 0.0
    counts, bins = np.histogram(w, bins=20 if span > 1e-9 * max(1.0, float(np.abs(w).max())) else 1)
    return {"min": float(w.min()), "max": float(w.max()), "mean": float(w.mean()),
            "top5": [float(v) for v in _largest(w, 5)], "n_truncated": int(n_truncated),
            "bins": [float(b) for b in bins], "counts": [int(c) for c in counts]}


def _largest(w: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest values of ``w``, largest first (``np.sort(w)[-k:][::-1]`` without sorting all of
    ``w``: a partition, O(n); the full sort was 70% of :func:`weight_summary` at 5 million rows)."""
    if w.shape[0] <= k:
        return np.sort(w)[::-1]
    return np.sort(np.partition(w, w.shape[0] - k)[-k:])[::-1]


def truncate_weights(w: np.ndarray, q: float | None) -> tuple[np.ndarray, int]:
    """Cap weights at their ``q`` quantile (``None``: no truncation)."""
    if q is None:
        return w, 0
    cap = float(np.quantile(w, q))
    return np.minimum(w, cap), int((w > cap).sum())
