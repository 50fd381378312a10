"""Cox proportional hazards regression matching R ``survival::coxph``.

Own code rather than lifelines/statsmodels because (a) we need R's exact
numbers (weighted Efron ties, counting-process data, strata, R's Newton-
Raphson with step halving and its convergence rule, weighted dfbeta sandwich
collapsed by cluster) and (b) speed: one sort, then every Newton step is a
handful of vectorised reverse cumulative sums, O(n p + n_events p^2), no
Python loop over rows or event times.

Notation (per Newton step). Rows are sorted by (stratum, stop time). For each
distinct event time t (within stratum) with d tied deaths, Efron's method
splits the death into d sub-steps k = 0..d-1 with denominator
``D_k = S0(t) - (k/d) E0(t)`` where ``S0`` is the weighted risk-score sum over
the risk set {entry < t <= stop} and ``E0`` the same over the deaths; each
sub-step carries weight ``deadwt/d``. Breslow is the case of a single
sub-step with ``k = 0`` and weight ``deadwt``. The loglik, score, information
and score residuals are sums over sub-steps, evaluated with cumulative sums.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from causal_hcc.core._dist import chi2_sf, norm_ppf, norm_sf

from causal_hcc.core._checks import (
    as_codes,
    as_matrix,
    check_choice,
    stable_argsort,
    survival_arrays,
    timefix as _timefix,
)
from causal_hcc.errors import DataError, EstimationError

__all__ = ["CoxFit", "coxph"]

_WHERE = "coxph"


def _revcumsum(a: np.ndarray) -> np.ndarray:
    """Reverse cumulative sum with a trailing zero row: out[i] = sum(a[i:])."""
    # accumulated into a contiguous buffer (twice as fast as writing through a
    # reversed view), returned as its reversed view: the same sums, in the same order
    out = np.empty((a.shape[0] + 1,) + a.shape[1:], dtype=float)
    out[0] = 0.0
    np.cumsum(a[::-1], axis=0, out=out[1:])
    return out[::-1]


class _CoxProblem:
    """Sorted data and index maps for one Cox problem (independent of beta)."""

    def __init__(self, time, entry, event, X, w, strata_codes, ties):
        n, p = X.shape
        self.n, self.p = n, p
        self.efron = ties == "efron"
        nstrat = int(strata_codes.max()) + 1 if n else 1
        self.nstrat = nstrat
        # integer keys: stratum-major, time rank minor (exact comparisons).
        # The ranks come from one sort (the inverse of the distinct times),
        # not from a binary search of every row's time into them.
        if entry is None:
            allt, rank = np.unique(time, return_inverse=True)
        else:
            allt, inv = np.unique(np.concatenate([time, entry]), return_inverse=True)
            rank, erank = inv[:n], inv[n:]
        U = allt.shape[0] + 1
        self.allt, self.U = allt, U
        stop_key = strata_codes * U + rank
        if entry is None:
            entry_key = strata_codes * U - 1
        else:
            entry_key = strata_codes * U + erank
        order = stable_argsort(stop_key)
        self.order = order
        self.stop_key = stop_key[order]
        if entry is None and nstrat == 1:  # constant columns: no gather through the permutation
            self.entry_key = entry_key
            self.strata = strata_codes
        else:
            self.entry_key = entry_key[order]
            self.strata = strata_codes[order]
        self.event = event[order]
        self.w = w[order]
        self.mean = (w @ X) / w.sum()
        self.Xc = X[order] - self.mean
        self.time = time[order]

        # deaths, grouped by distinct event key (contiguous: sorted by key)
        didx = np.flatnonzero(self.event)
        self.didx = didx
        dkeys = self.stop_key[didx]
        # distinct keys of the (sorted) death keys, first position and count of each:
        # np.unique(dkeys, return_index=True, return_counts=True) without its sort
        first = np.empty(dkeys.shape[0], dtype=bool)
        first[:1] = True
        np.not_equal(dkeys[1:], dkeys[:-1], out=first[1:])
        gstart = np.flatnonzero(first)
        ev_keys = dkeys[gstart]
        dcount = np.diff(gstart, append=dkeys.shape[0])
        self.ev_keys = ev_keys
        self.m = ev_keys.shape[0]
        self.gstart = gstart
        self.dcount = dcount
        self.dgroup = np.repeat(np.arange(self.m), dcount)  # group of each death
        self.deadwt = np.bincount(self.dgroup, weights=self.w[didx], minlength=self.m)
        self.ev_time = allt[ev_keys % U]
        self.ev_stratum = ev_keys // U

        # positions of each event key in the stop-sorted and entry-sorted rows
        self.pos_s = np.searchsorted(self.stop_key, ev_keys, side="left")
        self.has_entry_part = (entry is not None) or nstrat > 1
        if entry is None:
            self.oe = None  # entry keys are already sorted in stop order
            self.pos_e = np.searchsorted(self.entry_key, ev_keys, side="left")
        else:
            self.oe = np.argsort(self.entry_key, kind="stable")
            self.pos_e = np.searchsorted(self.entry_key[self.oe], ev_keys, side="left")
        # cumulative-over-event-times index of each row: events in (entry, stop]
        # (number of event keys <= the row's key; a cumulative count over the key
        # range when that range is not much longer than n, else a binary search)
        nkeys = nstrat * U
        if nkeys <= 4 * n + 1024:
            cnt = np.zeros(nkeys + 1, dtype=np.intp)
            cnt[ev_keys + 1] = 1
            np.cumsum(cnt, out=cnt)
            self.i_stop = cnt[self.stop_key + 1]
            self.i_entry = cnt[self.entry_key + 1]
        else:
            self.i_stop = np.searchsorted(ev_keys, self.stop_key, side="right")
            self.i_entry = np.searchsorted(ev_keys, self.entry_key, side="right")
        # no row has an event at or before its entry (no entry times, one stratum):
        # x - cum[i_entry] is x - 0.0, i.e. x, and the gather can be skipped
        self.no_entry_events = not self.i_entry.any()

        # Efron / Breslow sub-steps
        if self.efron:
            K = dcount
            self.sub_t = np.repeat(np.arange(self.m), K)
            kk = np.arange(self.sub_t.shape[0]) - np.repeat(np.cumsum(K) - K, K)
            self.c = kk / dcount[self.sub_t]
            f = 1.0 / dcount[self.sub_t]
        else:
            self.sub_t = np.arange(self.m)
            self.c = np.zeros(self.m)
            f = np.ones(self.m)
        self.f = f
        self.any_c = bool(np.any(self.c > 0))
        self.mw = self.deadwt[self.sub_t] * f
        self.wd = self.w[didx]
        self.wdX = self.wd @ self.Xc[didx]

    # ------------------------------------------------------------------
    def _risk_sums(self, r: np.ndarray, rx: np.ndarray):
        S0 = _revcumsum(r)[self.pos_s]
        S1 = _revcumsum(rx)[self.pos_s]
        if self.has_entry_part:
            if self.oe is None:
                S0 = S0 - _revcumsum(r)[self.pos_e]
                S1 = S1 - _revcumsum(rx)[self.pos_e]
            else:
                S0 = S0 - _revcumsum(r[self.oe])[self.pos_e]
                S1 = S1 - _revcumsum(rx[self.oe])[self.pos_e]
        return S0, S1

    def evaluate(self, beta: np.ndarray, info: bool = True):
        """Loglik, score and information at ``beta`` (centred covariates)."""
        eta = self.Xc @ beta
        with np.errstate(over="ignore", invalid="ignore"):
            er = np.exp(eta)
            r = self.w * er
            rx = r[:, None] * self.Xc
            S0, S1 = self._risk_sums(r, rx)
            st = self.sub_t
            E0 = np.add.reduceat(r[self.didx], self.gstart)
            if self.any_c:
                E1 = np.add.reduceat(rx[self.didx], self.gstart, axis=0)
                D = S0[st] - self.c * E0[st]
                num = S1[st] - self.c[:, None] * E1[st]
            else:
                D = S0[st]
                num = S1[st]
            if self.has_entry_part:
                # S0 is a difference of running sums over every stratum: where a risk set holds only rows of
                # tiny weight (ATT weights e/(1 - e) of near-contraindicated controls, ~1e-27) it cancels to 0
                # or below, and log(D) fails. The dying rows are in their own risk set, so (1 - c) E0 bounds D
                # from below exactly; the bound changes nothing where D is computed without cancellation.
                D = np.maximum(D, (1.0 - self.c) * E0[st])
            loglik = self.wd @ eta[self.didx] - self.mw @ np.log(D)
            mean = num / D[:, None]
            U = self.wdX - self.mw @ mean
            if not info:
                return loglik, U, None, None
            h = self.mw / D
            H1 = np.bincount(st, weights=h, minlength=self.m) if self.efron else h
            cumH = np.concatenate([[0.0], np.cumsum(H1)])
            A = cumH[self.i_stop] if self.no_entry_events else cumH[self.i_stop] - cumH[self.i_entry]
            coefrow = r * A
            if self.any_c:
                H2 = np.bincount(st, weights=h * self.c, minlength=self.m)
                coefrow[self.didx] -= r[self.didx] * H2[self.dgroup]
            I = self.Xc.T @ (coefrow[:, None] * self.Xc)
            mm = mean * np.sqrt(self.mw)[:, None]
            I -= mm.T @ mm
        state = dict(eta=eta, er=er, r=r, D=D, mean=mean, h=h, H1=H1, A=A)
        return loglik, U, I, state

    def score_residuals(self, beta: np.ndarray, state: dict | None = None) -> tuple[np.ndarray, dict]:
        """R's score residuals (unweighted, rows in sorted order) at ``beta``."""
        s = state if state is not None else self.evaluate(beta, info=True)[3]
        st, h, mean = self.sub_t, s["h"], s["mean"]
        M1 = np.zeros((self.m, self.p))
        np.add.at(M1, st, h[:, None] * mean) if self.efron else M1.__iadd__(h[:, None] * mean)
        cumM1 = np.vstack([np.zeros((1, self.p)), np.cumsum(M1, axis=0)])
        B = cumM1[self.i_stop] if self.no_entry_events else cumM1[self.i_stop] - cumM1[self.i_entry]
        er = s["er"]
        L = -(er[:, None] * (self.Xc * s["A"][:, None] - B))
        d, g = self.didx, self.dgroup
        mbar = np.zeros((self.m, self.p))
        if self.efron:
            np.add.at(mbar, st, self.f[:, None] * mean)
        else:
            mbar = mean
        L[d] += self.Xc[d] - mbar[g]
        if self.any_c:
            hc = h * self.c
            H2 = np.bincount(st, weights=hc, minlength=self.m)
            M2 = np.zeros((self.m, self.p))
            np.add.at(M2, st, hc[:, None] * mean)
            L[d] += er[d, None] * (self.Xc[d] * H2[g][:, None] - M2[g])
        return L, s


class _ProblemCache(dict):
    """The sorted Cox problem of a fit and its state at the estimate, for :func:`cox_zph`.

    ``cox.zph`` runs after a Cox fit on the same data; handing it the fitted
    problem saves rebuilding it (a sort of every row). ``cox_zph`` uses it only
    when the data it is given equal those the problem was built from, and
    empties it afterwards (the arrays are as large as the data). Never
    pickled or deep-copied: a copy gets an empty cache.
    """

    def __reduce__(self):
        return (_ProblemCache, ())


def _chol_singular(I: np.ndarray, toler: float = 1e-10) -> list[int]:
    """Indices of columns whose Cholesky pivot is ~0 (R's cholesky2 rule)."""
    p = I.shape[0]
    dg = np.diag(I).copy()
    bad = [i for i in range(p) if not np.isfinite(dg[i]) or dg[i] <= 0]
    if bad:
        return bad
    sc = 1.0 / np.sqrt(dg)
    M = I * sc[:, None] * sc[None, :]
    try:
        L = np.linalg.cholesky(M)
        if np.min(np.diag(L)) ** 2 > toler:
            return []
    except np.linalg.LinAlgError:
        pass
    # slow path (rare): pivot-by-pivot like cholesky2, dropping singular columns
    M = M.copy()
    sing = []
    for i in range(p):
        piv = M[i, i]
        if piv < toler:
            sing.append(i)
            M[i, :] = 0
            M[:, i] = 0
            continue
        for j in range(i + 1, p):
            t = M[j, i] / piv
            M[j, j:] -= t * M[i, j:]
            M[j:, j] = M[j, j:]
    return sing


@dataclass(frozen=True, eq=False)
class CoxFit:
    """Result of :func:`coxph` (numbers follow R ``coxph`` conventions).

    Attributes
    ----------
    coef : ndarray (p,)
        Log hazard ratios.
    var : ndarray (p, p)
        Model-based variance (inverse information; R ``naive.var`` when robust).
    var_robust : ndarray (p, p) or None
        Robust sandwich variance ``D'D`` from weighted dfbeta residuals summed
        within cluster (R ``fit$var`` when robust), None if not robust.
    se : ndarray (p,)
        Robust SE when available, else model SE.
    loglik_null, loglik : float
        Partial log-likelihood at beta = 0 and at the estimate.
    score_test, wald_test, lr_test : float
        Chi-square statistics with ``df`` degrees of freedom (Wald uses the
        robust variance when robust, as R does); ``robust_score_test`` too.
    n, n_events : int
    converged : bool
    n_iter : int
    names : list of str
    ties : str
    robust : bool
    dfbeta : ndarray (n_cluster, p) or None
        Weighted dfbeta residuals collapsed by cluster (rows of the input order
        when no cluster), only when robust.
    warnings : tuple of str
        What R would warn about (``coefficient may be infinite``), one line each.
    infinite : tuple of str
        Names of the coefficients whose likelihood is monotone (confirmed: the
        loglik does not fall when the coefficient moves further out), i.e. the
        estimate is a point on the way to +-infinity, not a maximum. A subset of
        the coefficients R's check flags; empty for a near-null fit that the
        check flags only because ``|beta|`` is tiny.
    """

    coef: np.ndarray
    var: np.ndarray
    var_robust: np.ndarray | None
    loglik_null: float
    loglik: float
    score_test: float
    wald_test: float
    lr_test: float
    robust_score_test: float | None
    n: int
    n_events: int
    converged: bool
    n_iter: int
    names: list[str]
    ties: str
    robust: bool
    dfbeta: np.ndarray | None = field(repr=False, default=None)
    cluster_labels: np.ndarray | None = field(repr=False, default=None)
    strata_labels: np.ndarray | None = field(repr=False, default=None)
    warnings: tuple[str, ...] = ()
    infinite: tuple[str, ...] = ()
    _bh_time: list = field(repr=False, default_factory=list)
    _bh_cumhaz: list = field(repr=False, default_factory=list)
    _problem: "_ProblemCache" = field(repr=False, compare=False, default_factory=lambda: _ProblemCache())

    @property
    def df(self) -> int:
        return int(self.coef.shape[0])

    @property
    def se(self) -> np.ndarray:
        v = self.var_robust if self.var_robust is not None else self.var
        return np.sqrt(np.diag(v))

    @property
    def se_model(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))

    @property
    def hr(self) -> np.ndarray:
        return np.exp(self.coef)

    def p_value(self, test: str = "wald") -> float:
        """P-value of the global ``"wald"``, ``"score"``, ``"lr"`` or ``"robust_score"`` test."""
        val = {"wald": self.wald_test, "score": self.score_test, "lr": self.lr_test,
               "robust_score": self.robust_score_test}[test]
        return float(chi2_sf(val, self.df)) if val is not None else float("nan")

    def summary(self, alpha: float = 0.05) -> pd.DataFrame:
        """Coefficient table.

        Columns: ``coef, exp_coef, se, robust_se, z, p, lower, upper``;
        ``se`` is the model SE, ``robust_se`` NaN when not robust, ``z`` and
        ``p`` use the robust SE when available (as R), ``lower``/``upper``
        are the ``1 - alpha`` confidence limits of the hazard ratio.
        """
        se_used = self.se
        z = self.coef / se_used
        q = norm_ppf(1 - alpha / 2)
        return pd.DataFrame(
            {
                "coef": self.coef,
                "exp_coef": np.exp(self.coef),
                "se": self.se_model,
                "robust_se": np.sqrt(np.diag(self.var_robust)) if self.var_robust is not None
                else np.full(self.df, np.nan),
                "z": z,
                "p": 2 * norm_sf(np.abs(z)),
                "lower": np.exp(self.coef - q * se_used),
                "upper": np.exp(self.coef + q * se_used),
            },
            index=pd.Index(self.names, name="term"),
        )

    def baseline_hazard(self) -> pd.DataFrame:
        """Cumulative baseline hazard at covariates = 0 (R ``basehaz(fit, centered=FALSE)``).

        One row per distinct stop time within stratum; columns ``time``,
        ``hazard`` and ``stratum`` (the stratum label; 0 without strata).
        Efron fits use the Efron-adjusted increments, as R ``survfit.coxph``.
        """
        labels = self.strata_labels if self.strata_labels is not None else np.array([0])
        parts = [pd.DataFrame({"time": t, "hazard": h, "stratum": labels[s]})
                 for s, (t, h) in enumerate(zip(self._bh_time, self._bh_cumhaz))]
        return pd.concat(parts, ignore_index=True)

    def cumulative_hazard(self, times, stratum=None) -> np.ndarray:
        """Baseline cumulative hazard H0 at ``times`` (step function, 0 before the first time)."""
        s = 0
        if stratum is not None:
            if self.strata_labels is None:
                raise DataError(f"{_WHERE}: stratum given but the model has no strata")
            hit = np.flatnonzero(self.strata_labels == stratum)
            if hit.size == 0:
                raise DataError(f"{_WHERE}: unknown stratum {stratum!r}")
            s = int(hit[0])
        elif self.strata_labels is not None and len(self.strata_labels) > 1:
            raise DataError(f"{_WHERE}: the model is stratified; give stratum=")
        t = np.asarray(times, dtype=float)
        bt, bh = self._bh_time[s], self._bh_cumhaz[s]
        idx = np.searchsorted(bt, t, side="right") - 1
        return np.where(idx >= 0, bh[np.maximum(idx, 0)], 0.0)

    def predict_survival(self, Xnew, times, stratum=None) -> np.ndarray:
        """S(t | x) = exp(-H0(t) exp(x'b)) for each row of ``Xnew`` (rows) and ``times`` (columns).

        Matches R ``survfit(fit, newdata)`` (its default ``stype = 2``).
        """
        Xn = np.asarray(Xnew, dtype=float)
        if Xn.ndim == 1:
            Xn = Xn.reshape(1, -1) if Xn.shape[0] == self.df else Xn.reshape(-1, 1)
        if Xn.shape[1] != self.df:
            raise DataError(f"{_WHERE}: Xnew has {Xn.shape[1]} columns, the model has {self.df}")
        H0 = self.cumulative_hazard(times, stratum)
        return np.exp(-np.exp(Xn @ self.coef)[:, None] * H0[None, :])


def coxph(
    time,
    event,
    X,
    *,
    entry=None,
    weights=None,
    strata=None,
    cluster=None,
    ties: str = "efron",
    robust: bool | None = None,
    max_iter: int = 30,
    tol: float = 1e-9,
    names: Sequence[str] | None = None,
    timefix: bool = True,
    keep_problem: bool = False,
) -> CoxFit:
    """Fit a Cox proportional hazards model (R ``survival::coxph`` numerics).

    Parameters
    ----------
    time : array-like (n,)
        Event/censoring time (the stop time with ``entry``).
    event : array-like (n,)
        1 = event, 0 = censored.
    X : array-like (n, p) or pandas DataFrame
        Covariates (p >= 1). A DataFrame supplies ``names``.
    entry : array-like (n,), optional
        Entry (start) time for (entry, time] counting-process rows: left
        truncation or time-varying covariates.
    weights : array-like (n,), optional
        Case weights (>= 0); R's weighted Efron.
    strata : array-like (n,), optional
        Separate baseline hazard per stratum.
    cluster : array-like (n,), optional
        Cluster id for the robust variance.
    ties : {"efron", "breslow"}
    robust : bool or None
        Robust sandwich variance. ``None`` follows R: robust when ``cluster``
        is given or the weights are not all integers.
    max_iter, tol : int, float
        Newton-Raphson stops when ``|1 - loglik_old / loglik_new| <= tol``
        (R ``coxph.control``: eps), with R's step halving.
    names : sequence of str, optional
    timefix : bool
        Merge times equal up to floating-point noise first (R
        ``coxph.control(timefix = TRUE)``, see
        :func:`causal_hcc.core._checks.timefix`).
    keep_problem : bool
        Keep the sorted problem and the state at the estimate on the fit for
        :func:`causal_hcc.core.zph.cox_zph` on the same data (it then skips
        rebuilding them, and drops them). They are as large as the data: off
        by default; for a fit whose ``cox.zph`` follows.

    Notes
    -----
    After convergence R's check for infinite coefficients runs with R's
    rules: for right-censored data (``coxph.fit``) coefficient j is flagged
    when ``|(U V)_j| > tol`` and ``|(U V)_j| > sqrt(tol) |beta_j|``; for
    counting-process data (``entry`` given; ``agreg.fit``) when
    ``|(U V)_j| > sqrt(tol) (1 + |beta_j|)``. As in R a flag is a warning
    (``CoxFit.warnings``), never an error: the fit is returned. A flagged
    coefficient whose loglik does not decrease when moved 10 units further
    along the Newton direction is confirmed infinite (``CoxFit.infinite``;
    monotone likelihood); otherwise the warning says the estimate is finite
    (the check also fires for a near-null ``beta`` because ``|beta|`` is ~0).
    Non-convergence after ``max_iter`` iterations raises (R warns and
    returns the last iterate, which is not a maximum).

    Returns
    -------
    CoxFit

    Raises
    ------
    EstimationError
        No events, a covariate without variation within risk sets or
        collinear, or non-convergence, each as one line naming the covariate.
        An infinite coefficient is a warning, not an error (see Notes).

    References
    ----------
    Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
    Efron B (1977). The efficiency of Cox's likelihood function for censored
    data. JASA 72:557-565.
    Andersen PK, Gill RD (1982). Cox's regression model for counting processes.
    Ann Stat 10:1100-1120.
    Lin DY, Wei LJ (1989). The robust inference for the Cox proportional
    hazards model. JASA 84:1074-1078.
    Therneau TM, Grambsch PM (2000). Modeling Survival Data. Springer.
    """
    check_choice(ties, "ties", ("efron", "breslow"), where=_WHERE)
    if names is None and isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
    Xa = as_matrix(X, where=_WHERE)
    n, p = Xa.shape
    if names is None:
        names = [f"x{j + 1}" for j in range(p)]
    names = [str(s) for s in names]
    if len(names) != p:
        raise DataError(f"{_WHERE}: {len(names)} names for {p} columns of X")
    badx = ~np.isfinite(Xa)
    if badx.any():
        r, c = np.argwhere(badx)[0]
        raise DataError(f"{_WHERE}: covariate {names[c]!r} has missing or infinite values (row {r})")
    t, ev, ent, w, integer_w = survival_arrays(time, event, entry, weights, n, where=_WHERE)
    if timefix:
        t, ent = _timefix(t, ent, where=_WHERE)
    if strata is None:
        scodes, slabels = np.zeros(n, dtype=np.intp), None
    else:
        scodes, slabels = as_codes(strata, n, "strata", where=_WHERE)
    ccodes = clabels = None
    if cluster is not None:
        ccodes, clabels = as_codes(cluster, n, "cluster", where=_WHERE)
    if robust is None:
        robust = cluster is not None or not integer_w
    if not ev.any():
        raise EstimationError(f"{_WHERE}: no events (event is 0 for all {n} rows); the Cox model cannot be fitted")

    prob = _CoxProblem(t, ent, ev, Xa, w, scodes, ties)

    # --- Newton-Raphson exactly as R's coxfit6/agfit4 --------------------
    beta = np.zeros(p)
    ll0, U0, I0, _ = prob.evaluate(beta)
    sing = _chol_singular(I0)
    if sing:
        which = ", ".join(repr(names[j]) for j in sing)
        raise EstimationError(
            f"{_WHERE}: covariate {which} has no variation within risk sets or is collinear with other covariates"
        )
    step = np.linalg.solve(I0, U0)
    score_test = float(U0 @ step)
    best = ll0
    newbeta = beta + step
    halving = 0
    converged = False
    it = 0
    U, I = U0, I0
    final_state = None
    for it in range(1, max_iter + 1):
        newlk, U, I, final_state = prob.evaluate(newbeta)
        finite = np.isfinite(newlk) and np.all(np.isfinite(U)) and np.all(np.isfinite(I))
        if finite and abs(1 - best / newlk) <= tol:
            beta = newbeta
            best = newlk
            converged = True
            break
        if not finite or newlk < best:
            halving += 1
            newbeta = (newbeta + halving * beta) / (halving + 1.0)
        else:
            halving = 0
            best = newlk
            beta = newbeta
            try:
                newbeta = beta + np.linalg.solve(I, U)
            except np.linalg.LinAlgError:
                break
    if not converged:
        j = int(np.argmax(np.abs(newbeta - beta) + np.abs(beta)))
        raise EstimationError(
            f"{_WHERE}: did not converge after {max_iter} iterations (coefficient of {names[j]!r} "
            f"= {beta[j]:.3g} diverging: monotone likelihood, perfect separation?)"
        )
    sing = _chol_singular(I)
    if sing:
        which = ", ".join(repr(names[j]) for j in sing)
        raise EstimationError(f"{_WHERE}: information matrix singular at the estimate (covariate {which})")
    V = np.linalg.inv(I)
    V = (V + V.T) / 2
    infs = np.abs(U @ V)
    if ent is not None:  # agreg.fit
        inf_flag = ~np.isfinite(U) | (infs > np.sqrt(tol) * (1 + np.abs(beta)))
    else:  # coxph.fit
        inf_flag = ~np.isfinite(U) | ((infs > tol) & (infs > np.sqrt(tol) * np.abs(beta)))
    warns: list[str] = []
    infinite: list[str] = []
    if inf_flag.any():
        d = V @ U
        scale = np.max(np.abs(d))
        d = d / scale if scale > 0 and np.isfinite(scale) else np.sign(beta)
        probe = prob.evaluate(beta + 10.0 * d, info=False)[0]
        monotone = bool(not np.isfinite(probe) or probe >= best - np.sqrt(tol) * max(1.0, abs(best)))
        for j in np.flatnonzero(inf_flag):
            if monotone and d[j] != 0:
                infinite.append(names[j])
                warns.append(f"{_WHERE}: loglik converged before coefficient of {names[j]!r} ({beta[j]:.3g}); "
                             f"it may be infinite (monotone likelihood, perfect separation?): its HR and CI are not usable; "
                             f"a Firth-penalised fit gives a finite estimate")
            else:
                warns.append(f"{_WHERE}: R's 'coefficient may be infinite' check flags {names[j]!r} "
                             f"({beta[j]:.3g}), but the likelihood has a finite maximum there")

    # --- robust variance: weighted dfbeta, collapsed by cluster ----------
    var_robust = dfb = rscore = None
    if robust:
        L, _ = prob.score_residuals(beta, final_state)
        wl = prob.w[:, None] * L
        dfb_sorted = wl @ V
        dfb_rows = np.empty_like(dfb_sorted)
        dfb_rows[prob.order] = dfb_sorted
        L0, _ = prob.score_residuals(np.zeros(p))
        wl0 = np.empty_like(L0)
        wl0[prob.order] = prob.w[:, None] * L0
        if ccodes is not None:
            G = clabels.shape[0]
            dfb = np.zeros((G, p))
            np.add.at(dfb, ccodes, dfb_rows)
            s0 = np.zeros((G, p))
            np.add.at(s0, ccodes, wl0)
        else:
            dfb, s0 = dfb_rows, wl0
        var_robust = dfb.T @ dfb
        u0 = s0.sum(axis=0)
        try:
            rscore = float(u0 @ np.linalg.solve(s0.T @ s0, u0))
        except np.linalg.LinAlgError:
            rscore = float("nan")
    vw = var_robust if robust else V
    try:
        wald = float(beta @ np.linalg.solve(vw, beta))
    except np.linalg.LinAlgError:
        wald = float("nan")

    # --- baseline cumulative hazard (uncentred), per stratum -------------
    dH = final_state["H1"] * np.exp(-(prob.mean @ beta))
    bh_time, bh_cum = [], []
    for s in range(prob.nstrat):
        rows = prob.strata == s
        ut = np.unique(prob.time[rows])
        sel = prob.ev_stratum == s
        et, eh = prob.ev_time[sel], np.cumsum(dH[sel])
        k = np.searchsorted(et, ut, side="right") - 1
        bh_time.append(ut)
        # a stratum without events has a zero cumulative hazard
        bh_cum.append(np.where(k >= 0, eh[np.maximum(k, 0)], 0.0) if et.size else np.zeros(ut.shape[0]))

    return CoxFit(
        coef=beta,
        var=V,
        var_robust=var_robust,
        loglik_null=float(ll0),
        loglik=float(best),
        score_test=score_test,
        wald_test=wald,
        lr_test=float(2 * (best - ll0)),
        robust_score_test=rscore,
        n=n,
        n_events=int(ev.sum()),
        converged=converged,
        n_iter=it,
        names=list(names),
        ties=ties,
        robust=bool(robust),
        dfbeta=dfb,
        cluster_labels=clabels,
        strata_labels=slabels,
        warnings=tuple(warns),
        infinite=tuple(infinite),
        _bh_time=bh_time,
        _bh_cumhaz=bh_cum,
        _problem=_ProblemCache(prob=prob, time=t, entry=ent, event=ev, X=Xa, w=w, strata=scodes,
                               beta=beta, info=I, state=final_state) if keep_problem else _ProblemCache(),
    )
