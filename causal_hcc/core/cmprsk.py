"""Competing risks: Aalen-Johansen cumulative incidence, Fine-Gray data and model, cause-specific Cox.

Own code (not lifelines, whose AalenJohansenFitter has no weights, no
delayed entry and a delta-method variance) because the pipeline needs R's
exact numbers -- the infinitesimal-jackknife (IJ) variance that R
``survfit(Surv(t, factor(status)) ~ 1, weights =, id =, influence = TRUE)``
reports for a multi-state curve, with case weights, delayed entry and
clusters, and ``finegray()``'s expanded data -- plus the per-row influence
functions that give bootstrap-free variances of differences between arms.
Everything is vectorised (one sort, cumulative sums; O(n log n)).

Notation (one transient state "event-free", absorbing states = causes k).
At the distinct exit times u_j with weighted number at risk Y_j (rows with
entry < u_j <= exit) and weighted events d_kj of cause k (d_j = sum_k d_kj)::

    h_kj = d_kj / Y_j,  h_j = sum_k h_kj,  S_j = prod_{l<=j} (1 - h_l)
    F_kj = sum_{l<=j} S_{l-1} h_kl          (Aalen-Johansen = R's pstate)

Influence of row i (weight w_i, entry index e: at risk from table index
``ie``, exit index x, status s) on S and F_k, derived from
``dS_j = (1 - h_j) dS_{j-1} - S_{j-1} dh_j`` with
``dh_kj = (1{x = j, s = k} - R_ij h_kj) / Y_j``::

    G_j = sum_{l<=j} d_l / (Y_l (Y_l - d_l)),  B_kj = sum_{l<=j} S_{l-1} h_kl / Y_l,
    P_kj = sum_{l<=j} S_{l-1} h_kl G_{l-1},   Q_kj = P_kj - B_kj
    at risk (ie <= j < x):  dS_j  =  w S_j (G_j - G_{ie-1})
                            dF_kj =  w [Q_kj - G_{ie-1} F_kj + c0_k]
    after exit (j >= x):    dS_j  = -w kappa S_j,  kappa = 1{s>0} / (Y_x - d_x) - G_x + G_{ie-1}
                            dF_kj =  w [E_k - kappa F_kj]

with ``c0_k = -Q_{k,ie-1} + G_{ie-1} F_{k,ie-1}`` and ``E_k`` the value at
``j = x`` (the at-risk formula plus ``S_{x-1} 1{s=k} / Y_x``) plus ``kappa
F_kx``. The IJ variance is ``sum_g (sum_{i in g} dF_ij)^2`` over clusters g
(each row its own cluster without ``cluster``); as the influences are linear
in the step functions ``1, F_k, Q_k`` (``S, S G`` for S) with coefficients
that change only at a row's entry and exit, the variance at every table
time comes from cumulative sums of coefficient products (as
:func:`causal_hcc.core.km._ij_variance` does for Kaplan-Meier).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from causal_hcc.core._checks import (
    as_codes,
    as_float,
    as_matrix,
    check_choice,
    check_times,
    check_weights,
    timefix as _timefix,
)
from causal_hcc.errors import DataError, EstimationError
from causal_hcc.results import normal_quantile

__all__ = ["AJFit", "aalen_johansen", "as_status", "finegray", "FineGrayData", "fine_gray",
           "cause_specific_cox", "CSCModel", "cause_specific_models"]

_WHERE = "aalen_johansen"


def as_status(x, n: int, *, where: str, causes: Sequence[int] | None = None) -> np.ndarray:
    """Integer event codes 0 (censored), 1, 2, ... of ``n`` rows; one-line errors."""
    s = as_float(x, "status", n, where=where)
    bad = (s != np.floor(s)) | (s < 0)
    if bad.any():
        rows = ", ".join(str(int(r)) for r in np.flatnonzero(bad)[:3])
        raise DataError(f"{where}: status must hold whole numbers 0 (censored), 1, 2, ... (rows {rows})")
    s = s.astype(np.int64)
    if causes is not None:
        ok = np.isin(s, np.asarray([0, *causes], dtype=np.int64))
        if not ok.all():
            rows = ", ".join(str(int(r)) for r in np.flatnonzero(~ok)[:3])
            raise DataError(f"{where}: status must be 0 or one of the causes {list(causes)} (rows {rows})")
    return s


def _log_confint(p: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """R ``survfit_confint(p, se, logse = FALSE, conf.type = "log")`` for state probabilities."""
    with np.errstate(divide="ignore", invalid="ignore"):
        xx = np.where(p == 0, np.nan, p)
        se2 = z * se / xx
        return np.exp(np.log(xx) - se2), np.minimum(np.exp(np.log(xx) + se2), 1.0)


@dataclass(frozen=True, eq=False)
class AJFit:
    """Result of :func:`aalen_johansen`: one row per distinct exit time (R ``survfit`` multi-state).

    Attributes
    ----------
    time : ndarray (m,)
        Distinct exit (event or censoring) times.
    causes : tuple of int
        The event codes, in the order of the columns of ``cif``.
    n_risk, n_censor : ndarray (m,)
        Weighted number at risk and censored there.
    n_event : ndarray (m, K)
        Weighted number of events of each cause there.
    surv : ndarray (m,)
        Probability of being free of every event (R's ``pstate[, "(s0)"]``;
        the Kaplan-Meier curve of any event).
    cif : ndarray (m, K)
        Cumulative incidence of each cause (R's ``pstate`` of each state).
    std_err, se_surv : ndarray
        IJ standard errors of ``cif`` (m, K) and of ``surv`` (m,), as R's
        ``std.err`` (R uses the IJ variance for every multi-state curve).
    lower, upper : ndarray (m, K)
        ``1 - alpha`` pointwise limits of the CIF, R's default ``conf.type = "log"``.
    """

    time: np.ndarray
    causes: tuple[int, ...]
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    cif: np.ndarray
    std_err: np.ndarray
    se_surv: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    n: int
    _basis: dict = field(repr=False, default_factory=dict)
    _rows: dict = field(repr=False, default_factory=dict)

    # ------------------------------------------------------------ access
    def _col(self, cause: int) -> int:
        try:
            return self.causes.index(int(cause))
        except ValueError:
            raise DataError(f"{_WHERE}: cause {cause!r} is not one of {list(self.causes)}") from None

    def _index(self, times) -> tuple[np.ndarray, np.ndarray]:
        t = np.atleast_1d(np.asarray(times, dtype=float))
        return t, np.searchsorted(self.time, t, side="right") - 1

    def at(self, times, cause: int = 1) -> pd.DataFrame:
        """Step-function values of the CIF of ``cause`` at ``times``: ``time, cif, se, lower, upper``.

        Before the first time the CIF is 0 (se 0); after the last observed
        time it is undefined (NaN) unless every patient has had an event.
        """
        k = self._col(cause)
        t, idx = self._index(times)
        j = np.maximum(idx, 0)
        before = idx < 0
        after = (t > self.time[-1]) & (self.surv[-1] > 0)

        def pick(arr, first):
            out = np.where(before, first, arr[j]).astype(float)
            out[after] = np.nan
            return out

        return pd.DataFrame({"time": t, "cif": pick(self.cif[:, k], 0.0), "se": pick(self.std_err[:, k], 0.0),
                             "lower": pick(self.lower[:, k], np.nan), "upper": pick(self.upper[:, k], np.nan)})

    def surv_at(self, times) -> np.ndarray:
        """Event-free probability at ``times`` (1 before the first time, NaN after the last)."""
        t, idx = self._index(times)
        out = np.where(idx < 0, 1.0, self.surv[np.maximum(idx, 0)])
        out[(t > self.time[-1]) & (self.surv[-1] > 0)] = np.nan
        return out

    @property
    def table(self) -> pd.DataFrame:
        """The multi-state table as a DataFrame (one CIF / SE column pair per cause)."""
        d = {"time": self.time, "n_risk": self.n_risk, "n_censor": self.n_censor, "surv": self.surv,
             "se_surv": self.se_surv}
        for k, c in enumerate(self.causes):
            d[f"n_event_{c}"] = self.n_event[:, k]
            d[f"cif_{c}"] = self.cif[:, k]
            d[f"se_{c}"] = self.std_err[:, k]
        return pd.DataFrame(d)

    # --------------------------------------------------------- influence
    def _collapse(self, infl: np.ndarray) -> np.ndarray:
        cl = self._rows["cl"]
        if cl is None:
            return infl
        out = np.zeros((self._rows["ncl"],) + infl.shape[1:])
        np.add.at(out, cl, infl)
        return out

    def influence(self, times, cause: int = 1) -> np.ndarray:
        """Per-row IJ influence on the CIF of ``cause`` at ``times`` (n x k, input row order, weights included).

        ``sum_g (sum_{rows in g} infl)^2`` over clusters is the IJ variance;
        row sums by cluster reproduce R's ``influence.pstate``.
        """
        k = self._col(cause)
        _, idx = self._index(times)
        r, b = self._rows, self._basis
        jj = np.maximum(idx, 0)
        F, Q = b["F"][jj, k], b["Q"][jj, k]  # (T,)
        at_risk_val = (r["c0"][:, k][:, None] + Q[None, :] - r["Gie"][:, None] * F[None, :])
        exit_val = r["E"][:, k][:, None] - r["kappa"][:, None] * F[None, :]
        ie, x = r["ie"][:, None], r["ix"][:, None]
        j = idx[None, :]
        val = np.where(j >= x, exit_val, np.where(j >= ie, at_risk_val, 0.0))
        return r["w"][:, None] * val

    def influence_surv(self, times) -> np.ndarray:
        """Per-row IJ influence on the event-free probability at ``times`` (n x k)."""
        _, idx = self._index(times)
        r, b = self._rows, self._basis
        jj = np.maximum(idx, 0)
        S, G = b["S"][jj], b["G"][jj]
        at_risk_val = S[None, :] * (G[None, :] - r["Gie"][:, None])
        exit_val = -r["kappa"][:, None] * S[None, :]
        ie, x = r["ie"][:, None], r["ix"][:, None]
        j = idx[None, :]
        val = np.where(j >= x, exit_val, np.where(j >= ie, at_risk_val, 0.0))
        return r["w"][:, None] * val

    def variance_at(self, times, cause: int = 1) -> np.ndarray:
        """IJ variance of the CIF of ``cause`` at ``times`` (summed within clusters)."""
        return (self._collapse(self.influence(times, cause)) ** 2).sum(axis=0)


def _quad_variance(coef_risk: np.ndarray, coef_exit: np.ndarray, ie: np.ndarray, ix: np.ndarray,
                   cl: np.ndarray | None, m: int, basis: np.ndarray) -> np.ndarray:
    """``sum_g (sum_{i in g} c_i(j) . basis_j)^2`` at every table time j, O(n log n).

    ``c_i(j)`` is 0 before ``ie_i``, ``coef_risk[i]`` on ``ie_i <= j < ix_i``
    and ``coef_exit[i]`` from ``ix_i`` on (n x p each); ``basis`` is m x p.
    Each cluster's coefficient sum changes only where one of its rows enters
    or exits, so ``sum_g c_g c_g'`` is a step function built from the sorted
    changes (one cumulative sum per coefficient pair).
    """
    n, p = coef_risk.shape
    pos = np.concatenate([ie, ix])
    dC = np.concatenate([coef_risk, coef_exit - coef_risk])  # (2n, p) change at pos
    if cl is None:
        new = np.concatenate([coef_risk, coef_exit])
        old = np.concatenate([np.zeros_like(coef_risk), coef_risk])
    else:
        c2 = np.concatenate([cl, cl])
        o = np.lexsort((np.concatenate([np.zeros(n), np.ones(n)]), pos, c2))
        pos, dC, c2 = pos[o], dC[o], c2[o]
        cs = np.cumsum(dC, axis=0)
        first = np.ones(2 * n, dtype=bool)
        first[1:] = c2[1:] != c2[:-1]
        start = np.maximum.accumulate(np.where(first, np.arange(2 * n), 0))
        base = np.where((start > 0)[:, None], cs[np.maximum(start - 1, 0)], 0.0)
        new = cs - base
        old = new - dC
    v = np.zeros(m)
    for a in range(p):
        for b in range(a, p):
            inc = np.bincount(pos, weights=new[:, a] * new[:, b] - old[:, a] * old[:, b], minlength=m + 1)[:m]
            M = np.cumsum(inc)
            v += (1.0 if a == b else 2.0) * M * basis[:, a] * basis[:, b]
    return np.maximum(v, 0.0)


def aalen_johansen(
    time,
    status,
    *,
    entry=None,
    weights=None,
    cluster=None,
    causes: Sequence[int] | None = None,
    alpha: float = 0.05,
    timefix: bool = True,
) -> AJFit:
    """Aalen-Johansen cumulative incidence of competing events (R ``survfit`` multi-state numbers).

    Parameters
    ----------
    time : array-like (n,)
        Exit time (event or censoring).
    status : array-like (n,)
        0 = censored, k = event of cause k (1, 2, ...).
    entry : array-like (n,), optional
        Entry time (delayed entry / left truncation, or the start of a
        counting-process row): a row is at risk on (entry, time].
    weights : array-like (n,), optional
        Case weights (IPTW, IPCW, match weights), >= 0.
    cluster : array-like (n,), optional
        Cluster (patient) id: influences are summed within it (R's ``id``
        / ``cluster``). Rows of one patient in (start, stop] form chain.
    causes : sequence of int, optional
        The causes (columns of ``cif``); default the codes > 0 present.
    alpha : float
        1 - confidence level of the pointwise limits.
    timefix : bool
        Merge times equal up to floating-point noise (R ``aeqSurv``).

    Returns
    -------
    AJFit

    Notes
    -----
    The variance is the infinitesimal jackknife, which R uses for every
    multi-state ``survfit`` (with or without weights): the sum over clusters
    of the squared summed influences. Without weights or clusters it is not
    Greenwood's formula but close to it.

    References
    ----------
    Aalen OO, Johansen S (1978). An empirical transition matrix for
    non-homogeneous Markov chains based on censored observations. Scand J
    Stat 5:141-150.
    Therneau TM, Crowson C, Atkinson E. Multi-state models and competing
    risks. Vignette of the R package survival.
    Putter H, Fiocco M, Geskus RB (2007). Tutorial in biostatistics:
    competing risks and multi-state models. Stat Med 26:2389-2430.
    """
    if not (0 < alpha < 1):
        raise DataError(f"{_WHERE}: alpha must be in (0, 1), got {alpha!r}")
    t = as_float(time, "time", None, where=_WHERE)
    n = t.shape[0]
    if n == 0:
        raise DataError(f"{_WHERE}: no rows")
    s = as_status(status, n, where=_WHERE, causes=causes)
    ent = None if entry is None else as_float(entry, "entry", n, where=_WHERE)
    check_times(t, ent, where=_WHERE)
    if timefix:
        t, ent = _timefix(t, ent, where=_WHERE)
    if weights is None:
        w = np.ones(n)
    else:
        w = as_float(weights, "weights", n, where=_WHERE)
        check_weights(w, where=_WHERE)
    cl, ncl = None, 0
    if cluster is not None:
        cl, labels = as_codes(cluster, n, "cluster", where=_WHERE)
        ncl = labels.shape[0]
    cz = tuple(int(c) for c in (causes if causes is not None else np.unique(s[s > 0])))
    if not cz:
        raise EstimationError(f"{_WHERE}: no events of any cause")
    K = len(cz)

    utime, ix = np.unique(t, return_inverse=True)
    m = utime.shape[0]
    D = (s > 0).astype(float)
    dk = np.column_stack([np.bincount(ix, weights=w * (s == c), minlength=m) for c in cz])
    d = dk.sum(axis=1)
    ncen = np.bincount(ix, weights=w * (s == 0), minlength=m)
    Y = np.cumsum(np.bincount(ix, weights=w, minlength=m)[::-1])[::-1]
    if ent is None:
        ie = np.zeros(n, dtype=np.intp)
    else:
        ie = np.searchsorted(utime, ent, side="right")  # table times <= entry: at risk from index ie on
        entered = np.cumsum(np.bincount(ie, weights=w, minlength=m + 1)[:m])
        Y = Y - (w.sum() - entered)
    Y = np.where(np.abs(Y) < 1e-12 * max(w.sum(), 1.0), 0.0, Y)  # cancellation noise of the entry sums
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = Y > 0
        hk = np.where(pos[:, None], dk / np.where(pos, Y, 1.0)[:, None], 0.0)
        h = hk.sum(axis=1)
        S = np.cumprod(1.0 - h)
        Sprev = np.concatenate([[1.0], S[:-1]])
        dF = Sprev[:, None] * hk
        F = np.cumsum(dF, axis=0)
        nd = Y - d
        ok = (d > 0) & (nd > 0)
        a = np.where(ok, 1.0 / np.where(ok, nd, 1.0), 0.0)
        ginc = np.where(ok, d / np.where(ok, Y * nd, 1.0), 0.0)
        G = np.cumsum(ginc)
        Gprev = np.concatenate([[0.0], G[:-1]])
        B = np.cumsum(np.where(pos[:, None], dF / np.where(pos, Y, 1.0)[:, None], 0.0), axis=0)
        P = np.cumsum(dF * Gprev[:, None], axis=0)
    Q = P - B

    # per-row coefficients of the influence (see the module docstring)
    def before(arr, k):  # arr[k - 1], 0 for k == 0
        return np.where((k > 0)[(...,) + (None,) * (arr.ndim - 1)], arr[np.maximum(k - 1, 0)], 0.0)

    Gie = before(G, ie)
    Fie, Qie = before(F, ie), before(Q, ie)
    c0 = -Qie + Gie[:, None] * Fie
    kappa = D * a[ix] - G[ix] + Gie
    Yx = Y[ix]
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.where((Yx > 0)[:, None], Sprev[ix][:, None] * (s[:, None] == np.asarray(cz)[None, :])
                        / np.where(Yx > 0, Yx, 1.0)[:, None], 0.0)
    Ex = c0 + Q[ix] - Gie[:, None] * F[ix] + jump + kappa[:, None] * F[ix]

    # IJ variances at every table time
    se = np.empty((m, K))
    for k in range(K):
        cr = w[:, None] * np.column_stack([c0[:, k], -Gie, np.ones(n)])
        ce = w[:, None] * np.column_stack([Ex[:, k], -kappa, np.zeros(n)])
        basis = np.column_stack([np.ones(m), F[:, k], Q[:, k]])
        se[:, k] = np.sqrt(_quad_variance(cr, ce, ie, ix, cl, m, basis))
    crs = w[:, None] * np.column_stack([-Gie, np.ones(n)])
    ces = w[:, None] * np.column_stack([-kappa, np.zeros(n)])
    se_s = np.sqrt(_quad_variance(crs, ces, ie, ix, cl, m, np.column_stack([S, S * G])))
    z = normal_quantile(1 - alpha / 2)
    lower, upper = _log_confint(F, se, z)
    return AJFit(time=utime, causes=cz, n_risk=Y, n_event=dk, n_censor=ncen, surv=S, cif=F, std_err=se,
                 se_surv=se_s, lower=lower, upper=upper, alpha=alpha, n=n,
                 _basis={"F": F, "Q": Q, "S": S, "G": G},
                 _rows={"w": w, "ie": ie, "ix": ix, "c0": c0, "E": Ex, "kappa": kappa, "Gie": Gie,
                        "cl": cl, "ncl": ncl})


# --------------------------------------------------------------------------
# Fine-Gray: R survival::finegray() data, then a weighted Cox model
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FineGrayData:
    """The expanded data of :func:`finegray` (R ``finegray()``'s ``fgstart, fgstop, fgstatus, fgwt``).

    ``row`` indexes the input row of each output row; ``add`` is 0 for the
    original interval and 1, 2, ... for the intervals added after a
    competing event (R's ``count``).
    """

    start: np.ndarray
    stop: np.ndarray
    status: np.ndarray
    weight: np.ndarray
    row: np.ndarray
    add: np.ndarray
    strata: np.ndarray | None = None


def _km_keys(start: np.ndarray, stop: np.ndarray, event: np.ndarray,
             w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier on integer keys, rows at risk on (start, stop]: (event keys, S after each).

    Unweighted (R finegray's censoring curve) without ``w``; with ``w`` the case-weighted
    product limit (weighted number at risk and of events; R ``survfit(weights =)``).
    """
    ek = np.unique(stop[event])
    if ek.size == 0:
        return ek, np.zeros(0)
    if w is None:
        ss, st = np.sort(start), np.sort(stop)
        # at risk at k: start < k <= stop  =  #(stop >= k) - #(start >= k)
        Y = (st.size - np.searchsorted(st, ek, side="left")) - (ss.size - np.searchsorted(ss, ek, side="left"))
        d = np.bincount(np.searchsorted(ek, stop[event]), minlength=ek.size)
        return ek, np.cumprod(1.0 - d / Y)
    os_, ot = np.argsort(start, kind="stable"), np.argsort(stop, kind="stable")
    # weighted sums over rows with key >= k: reverse cumulative sums in key order
    cs_start = np.r_[np.cumsum(w[os_][::-1])[::-1], 0.0]
    cs_stop = np.r_[np.cumsum(w[ot][::-1])[::-1], 0.0]
    Y = cs_stop[np.searchsorted(stop[ot], ek, side="left")] - cs_start[np.searchsorted(start[os_], ek, side="left")]
    Y = np.where(np.abs(Y) < 1e-12 * max(float(w.sum()), 1.0), 0.0, Y)    # cancellation noise
    d = np.bincount(np.searchsorted(ek, stop[event]), weights=w[event], minlength=ek.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(Y > 0, 1.0 - d / np.where(Y > 0, Y, 1.0), 1.0)
    return ek, np.cumprod(f)


def finegray(time, status, *, cause: int = 1, entry=None, id=None, weights=None, strata=None,
             timefix: bool = True, artificial=None, censoring_weighted: bool = False) -> FineGrayData:
    """Fine-Gray data for the subdistribution hazard of ``cause`` (R ``survival::finegray``).

    Subjects with a competing event stay in the risk set after it with a
    weight ``G(t) / G(T_i)`` that falls as the censoring distribution ``G``
    (Kaplan-Meier of censoring, unweighted, per stratum; events before
    censorings at tied times; with delayed entry times the truncation
    distribution, as R) falls; the added intervals end at the censoring
    times, and only intervals holding an event of ``cause`` are kept. A
    Cox model of ``(start, stop], status`` with case weights ``weight`` is
    the Fine-Gray model (:func:`fine_gray`). Case ``weights`` multiply the
    output weights and do not enter ``G`` (as R).

    Parameters
    ----------
    time, status : array-like (n,)
        Exit time and event code (0 censored, 1, 2, ...).
    cause : int
        The event of interest (R's ``etype``).
    entry : array-like, optional
        Start of (start, stop] rows; needs ``id`` (rows of a subject must
        chain without gaps, only the last may carry an event).
    id, weights, strata : array-like, optional
    artificial : array-like of bool (n,), optional
        Rows whose censoring is *artificial*: a subject's last row with status
        0 where follow-up ended because the unit deviated from its strategy
        (clone-censor, per-protocol trials) or was lost with a loss weight --
        censorings that the IPC case ``weights`` already stand for. They stay
        in the risk set of ``G`` until their time but are not censoring
        events, so ``G`` is the distribution of the real (e.g. administrative)
        censoring alone. Default: every status-0 last row censors (R).
    censoring_weighted : bool
        Estimate ``G`` (and, with delayed entry, the truncation distribution)
        with the case ``weights``: the Kaplan-Meier curve of censoring in the
        weighted pseudo-population (R ``survfit(Surv(start, stop, censored) ~
        1, weights = w)``). Default False (R: ``G`` unweighted).

    Notes
    -----
    Why ``artificial`` (docs/competing_risks.md). In the complete data the
    subdistribution risk set at ``t`` holds everyone event-free at ``t`` and
    everyone with a competing event before ``t``. Follow-up of a unit ends
    at ``min(C, A, T)``: ``C`` real censoring, ``A`` the artificial
    censoring, ``T`` the event. The IPC weight ``W(t) = 1{A >= t} /
    P(A >= t | history)`` makes the units still followed at ``t`` stand for
    the population under the strategy; a unit with a competing event at
    ``T_i`` can no longer deviate, so its weight stays ``W(T_i)``; what
    remains unknown is whether it would still be observed at ``t``: the
    Fine-Gray weight ``1{C_i >= t} / P(C >= t)`` is replaced by its
    expectation given ``C_i >= T_i``, ``G_C(t) / G_C(T_i)`` (common factor
    ``G_C(t)`` dropped), with ``G_C`` the survival function of the real
    censoring ``C`` (assumed independent of the event times, the covariates
    and ``A``, as Fine-Gray assumes of censoring). R's ``finegray()`` uses
    instead the Kaplan-Meier curve of every censoring, i.e. of ``min(C,
    A)``, which falls faster: the competing-event units fade from the risk
    set although no artificial censoring can happen to them -- the
    deviations are corrected twice, by the weights and by ``G``. With
    ``artificial`` the deviating units leave the risk set of ``G`` without
    being counted as censored; ``censoring_weighted`` computes ``G`` in the
    weighted pseudo-population, in which only real censoring remains.

    References
    ----------
    Fine JP, Gray RJ (1999). A proportional hazards model for the
    subdistribution of a competing risk. JASA 94:496-509.
    Geskus RB (2011). Cause-specific cumulative incidence estimation and the
    Fine and Gray model under both left truncation and right censoring.
    Biometrics 67:39-49.
    Therneau TM, Crowson C, Atkinson E. Multi-state models and competing
    risks (survival vignette), section on the Fine-Gray model.
    """
    where = "finegray"
    prep = _fg_prepare(time, status, cause=cause, entry=entry, id=id, weights=weights, strata=strata,
                       timefix=timefix, where=where, artificial=artificial, censoring_weighted=censoring_weighted)
    t, s, st0, uw, istrat, slabels = prep["t"], prep["s"], prep["st0"], prep["uw"], prep["istrat"], prep["slabels"]
    out = {k: [] for k in ("row", "start", "stop", "wt", "add")}
    for keep, ct2, cp2, keepj in prep["strata_info"]:
        expand = (s[keep] != 0) & (s[keep] != cause) & prep["last"][keep]
        ncut = cp2.size
        kept = np.flatnonzero(keepj[:ncut])
        kept = kept[kept > 0]
        j = np.minimum(np.searchsorted(ct2, t[keep], side="left"), ncut - 1)   # first ctime >= stop
        after = np.searchsorted(kept, j, side="right")                    # first kept interval after j
        nadd = np.where(expand, kept.size - after, 0)
        cnt = 1 + nadd
        rr = np.repeat(np.arange(keep.size), cnt)
        p = np.arange(rr.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)     # 0 = the original interval
        orig = p == 0
        j2 = kept[np.minimum(after[rr] + p - 1, max(kept.size - 1, 0))] if kept.size else np.zeros(rr.size, int)
        jr = j[rr]
        ex = expand[rr]
        out["row"].append(keep[rr])
        out["start"].append(np.where(orig, st0[keep][rr], ct2[np.maximum(j2 - 1, 0)]))
        out["stop"].append(np.where(orig, np.where(ex, ct2[jr], t[keep][rr]), ct2[j2]))
        out["wt"].append(np.where(orig, 1.0, cp2[j2] / cp2[jr]))
        out["add"].append(p)
    row = np.concatenate(out["row"]).astype(np.intp)
    fs = (s[row] == cause).astype(np.int8)
    return FineGrayData(start=np.concatenate(out["start"]), stop=np.concatenate(out["stop"]), status=fs,
                        weight=np.concatenate(out["wt"]) * uw[row], row=row,
                        add=np.concatenate(out["add"]).astype(np.intp),
                        strata=None if slabels is None else slabels[istrat[row]])


def _fg_prepare(time, status, *, cause, entry, id, weights, strata, timefix, where, artificial=None,
                censoring_weighted: bool = False) -> dict:
    """Checked data and, per stratum with an event of ``cause``, R finegray()'s censoring curve.

    Returns ``t, s, st0 (start), uw (case weights), istrat, slabels, first, last`` and
    ``strata_info``: one ``(rows, ct2, cp2, keepj)`` per stratum, where ``cp2[j]`` is the
    weight factor on the interval ``(ct2[j-1], ct2[j]]`` (G at its start; with delayed entry
    times the truncation distribution too, as R) and ``keepj[j]`` marks intervals holding an
    event of ``cause``. Raises when no stratum has such an event.

    ``artificial`` (bool per row): last rows with status 0 whose censoring is artificial
    (see :func:`finegray`) are at risk in ``G`` until their time but are not censoring events;
    ``censoring_weighted``: ``G`` (and the truncation distribution) with the case weights.
    """
    t = as_float(time, "time", None, where=where)
    n = t.shape[0]
    if n == 0:
        raise DataError(f"{where}: no rows")
    s = as_status(status, n, where=where)
    ent = None if entry is None else as_float(entry, "entry", n, where=where)
    check_times(t, ent, where=where)
    if timefix:
        t, ent = _timefix(t, ent, where=where)
    uw = np.ones(n) if weights is None else as_float(weights, "weights", n, where=where)
    if weights is not None:
        check_weights(uw, where=where)
    art = np.zeros(n, dtype=bool)
    if artificial is not None:
        a = as_float(artificial, "artificial", n, where=where)
        if np.any((a != 0) & (a != 1)):
            raise DataError(f"{where}: artificial must be true/false per row")
        art = a == 1
        if np.any(art & (s != 0)):
            r = int(np.flatnonzero(art & (s != 0))[0])
            raise DataError(f"{where}: row {r} is marked as artificially censored but has an event")
    if strata is None:
        istrat, slabels = np.zeros(n, dtype=np.intp), None
    else:
        istrat, slabels = as_codes(strata, n, "strata", where=where)
    first = np.ones(n, dtype=bool)
    last = np.ones(n, dtype=bool)
    delay = False
    if ent is not None:
        if id is None:
            raise DataError(f"{where}: (start, stop] data need a subject id")
        idc, _ = as_codes(id, n, "id", where=where)
        o = np.lexsort((t, idc))
        fo = np.ones(n, dtype=bool)
        fo[1:] = idc[o][1:] != idc[o][:-1]
        lo = np.ones(n, dtype=bool)
        lo[:-1] = fo[1:]
        if np.any(s[o][~lo] != 0):
            raise DataError(f"{where}: a subject has an event before their last row")
        gap = np.r_[ent[o][1:], 0.0] - t[o]
        if np.any(gap[~lo] != 0):
            raise DataError(f"{where}: a subject's rows have gaps in time")
        first = np.zeros(n, dtype=bool)
        last = np.zeros(n, dtype=bool)
        first[o[fo]] = True
        last[o[lo]] = True
        if np.any(art & ~last):
            r = int(np.flatnonzero(art & ~last)[0])
            raise DataError(f"{where}: row {r} is marked as artificially censored but is not its subject's last row")
        delay = bool(np.any(ent[first] > t.min()))
        st0 = ent
    else:
        tmin = float(t.min())
        st0 = np.full(n, 0.0 if tmin > 0 else 2 * tmin - 1)
    utime = np.unique(np.concatenate([st0, t]))
    # integer keys: 10 * rank; event stops 2 units earlier (R's "- 0.2"): events precede censorings
    rs = 10 * np.searchsorted(utime, st0)
    re = 10 * np.searchsorted(utime, t) - 2 * (s != 0)
    info = []
    gw = uw if censoring_weighted else None
    for g in range(int(istrat.max()) + 1):
        keep = np.flatnonzero(istrat == g)
        ev_times = np.unique(t[keep][s[keep] == cause])
        if ev_times.size == 0:
            continue
        maxtime = float(t[keep].max())
        # censoring events: a subject's last row with status 0, unless that censoring is artificial
        ck, cs = _km_keys(rs[keep], re[keep], last[keep] & (s[keep] == 0) & ~art[keep],
                          None if gw is None else gw[keep])
        if delay:
            # reverse-time Kaplan-Meier of entry (R's Hsurv): at risk at entry key e when start <= e < stop
            fk = np.unique(rs[keep][first[keep]])
            ss_, st_ = np.sort(rs[keep]), np.sort(re[keep])
            if gw is None:
                Yh = np.searchsorted(ss_, fk, side="right") - np.searchsorted(st_, fk, side="right")
                dh = np.bincount(np.searchsorted(fk, rs[keep][first[keep]]), minlength=fk.size)
            else:   # weighted: sums of case weights instead of counts
                wk = gw[keep]
                o1, o2 = np.argsort(rs[keep], kind="stable"), np.argsort(re[keep], kind="stable")
                c1, c2 = np.r_[0.0, np.cumsum(wk[o1])], np.r_[0.0, np.cumsum(wk[o2])]
                Yh = c1[np.searchsorted(ss_, fk, side="right")] - c2[np.searchsorted(st_, fk, side="right")]
                dh = np.bincount(np.searchsorted(fk, rs[keep][first[keep]]), weights=wk[first[keep]],
                                 minlength=fk.size)
            # reversed time runs from the largest entry down: KM product in that order
            with np.errstate(divide="ignore", invalid="ignore"):
                H = np.cumprod(np.where(Yh > 0, 1.0 - dh / np.where(Yh > 0, Yh, 1.0), 1.0)[::-1])[::-1]       # H at each entry key, in increasing key order
            dprob = np.r_[H[1:], 1.0]
            temp = np.unique(np.concatenate([fk, ck]))
            i1 = np.searchsorted(fk, temp, side="right")
            i2 = np.searchsorted(ck, temp, side="right")
            ctime = utime[temp // 10]
            cprob = dprob[i1 - 1] * np.r_[1.0, cs][i2]
        else:
            ctime = utime[ck // 10]
            cprob = cs
        ct2 = np.r_[ctime, maxtime]
        cp2 = np.r_[1.0, cprob]
        # keep the added interval (ct2[j-1], ct2[j]] when an event of `cause` falls in it
        idx = np.searchsorted(ct2, ev_times, side="left")      # R findInterval(left.open = TRUE)
        keepj = np.zeros(ct2.size + 1, dtype=bool)
        keepj[0] = True
        keepj[np.unique(idx)[np.unique(idx) > 0]] = True
        info.append((keep, ct2, cp2, keepj))
    if not info:
        raise EstimationError(f"{where}: no events of cause {cause}")
    return {"t": t, "s": s, "st0": st0, "uw": uw, "istrat": istrat, "slabels": slabels, "first": first,
            "last": last, "strata_info": info, "n": n}

class _FGProblem:
    """Fine-Gray partial likelihood on R finegray()'s data without expanding it.

    finegray() keeps a subject with a competing event (at T) in the risk set
    after T on the censoring intervals (c_{j-1}, c_j], with weight
    ``w G(c_{j-1}) / G(T-)`` (G: its censoring curve, ``cp2``). At an event time
    u every such interval row is at risk with weight ``w g(u) / g(T)``,
    ``g(u) = cp2[interval of u]``; so one *extension row* per subject, at risk on
    (T, last time] with the constant weight ``w / g(T)`` times the common factor
    ``g(u)``, gives the same risk-set sums, score, information and (summed
    within subject) score residuals as the expanded rows, in O(n log n) per
    Newton step instead of O(n_competing x n_censoring_times) rows (2.1 million
    rows for 10,000 patients). The original row of such a subject ends at T
    (status 0). Efron ties concern the deaths only, which are original rows.
    """

    def __init__(self, prep: dict, X: np.ndarray, cause: int, ties: str):
        t, s, st0, uw = prep["t"], prep["s"], prep["st0"], prep["uw"]
        self.efron = ties == "efron"
        self.p = X.shape[1]
        reg_all = np.concatenate([k for k, *_ in prep["strata_info"]])
        self.mean = (uw[reg_all] @ X[reg_all]) / uw[reg_all].sum()
        Xc = X - self.mean
        self.parts = []
        self.n_rows, self.n_events = int(reg_all.size), 0
        for keep, ct2, cp2, _ in prep["strata_info"]:
            ncut = cp2.size
            reg = keep
            ev = s[reg] == cause
            ext = reg[(s[reg] != 0) & (s[reg] != cause) & prep["last"][reg]]
            jr = np.minimum(np.searchsorted(ct2, t[ext], side="left"), ncut - 1)
            u, inv = np.unique(t[reg][ev], return_inverse=True)
            g = cp2[np.minimum(np.searchsorted(ct2, u, side="left"), ncut - 1)]
            dcount = np.bincount(inv, minlength=u.size)
            deadwt = np.bincount(inv, weights=uw[reg][ev], minlength=u.size)
            if self.efron:
                st = np.repeat(np.arange(u.size), dcount)
                kk = np.arange(st.size) - np.repeat(np.cumsum(dcount) - dcount, dcount)
                c, f = kk / dcount[st], 1.0 / dcount[st]
            else:
                st, c, f = np.arange(u.size), np.zeros(u.size), np.ones(u.size)
            o_stop = np.argsort(t[reg], kind="stable")
            o_start = np.argsort(st0[reg], kind="stable")
            o_x = np.argsort(t[ext], kind="stable")
            self.n_events += int(ev.sum())
            self.parts.append(dict(
                reg=reg, ext=ext, ev=ev, inv=inv, u=u, g=g, st=st, c=c, f=f, mw=deadwt[st] * f,
                Xr=Xc[reg], Xx=Xc[ext], wr=uw[reg], wx=uw[ext] / cp2[jr],
                o_stop=o_stop, o_start=o_start, o_x=o_x,
                pos_s=np.searchsorted(t[reg][o_stop], u, side="left"),
                pos_e=np.searchsorted(st0[reg][o_start], u, side="left"),
                pos_x=np.searchsorted(t[ext][o_x], u, side="left"),
                i_stop=np.searchsorted(u, t[reg], side="right"), i_start=np.searchsorted(u, st0[reg], side="right"),
                i_x=np.searchsorted(u, t[ext], side="right"), any_c=bool(np.any(c > 0))))

    @staticmethod
    def _tail(a: np.ndarray, order: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Sums of ``a`` over rows at or after ``pos`` in ``order`` (a reverse cumulative sum)."""
        cs = np.concatenate([np.cumsum(a[order][::-1], axis=0)[::-1], np.zeros((1,) + a.shape[1:])])
        return cs[pos]

    def evaluate(self, beta: np.ndarray, info: bool = True):
        p = self.p
        loglik, U = 0.0, np.zeros(p)
        I = np.zeros((p, p)) if info else None
        states = []
        for q in self.parts:
            eta_r, eta_x = q["Xr"] @ beta, q["Xx"] @ beta
            with np.errstate(over="ignore", invalid="ignore"):
                er, erx = np.exp(eta_r), np.exp(eta_x)
                r, rx = q["wr"] * er, q["wx"] * erx
                rX, rxX = r[:, None] * q["Xr"], rx[:, None] * q["Xx"]
                S0 = self._tail(r, q["o_stop"], q["pos_s"]) - self._tail(r, q["o_start"], q["pos_e"])
                S1 = self._tail(rX, q["o_stop"], q["pos_s"]) - self._tail(rX, q["o_start"], q["pos_e"])
                if q["ext"].size:   # extension rows with start (T) < u
                    cx0 = np.concatenate([[0.0], np.cumsum(rx[q["o_x"]])])
                    cx1 = np.concatenate([np.zeros((1, p)), np.cumsum(rxX[q["o_x"]], axis=0)])
                    S0 = S0 + q["g"] * cx0[q["pos_x"]]
                    S1 = S1 + q["g"][:, None] * cx1[q["pos_x"]]
                st, c, mw = q["st"], q["c"], q["mw"]
                ev = q["ev"]
                E0 = np.bincount(q["inv"], weights=r[ev], minlength=q["u"].size)
                E1 = np.zeros((q["u"].size, p))
                np.add.at(E1, q["inv"], rX[ev])
                D = S0[st] - c * E0[st]
                num = S1[st] - c[:, None] * E1[st]
                loglik += float(q["wr"][ev] @ eta_r[ev] - mw @ np.log(D))
                mean = num / D[:, None]
                U += q["wr"][ev] @ q["Xr"][ev] - mw @ mean
                h = mw / D
                H1 = np.bincount(st, weights=h, minlength=q["u"].size)
                H2 = np.bincount(st, weights=h * c, minlength=q["u"].size)
                cumH = np.concatenate([[0.0], np.cumsum(H1)])
                A_r = cumH[q["i_stop"]] - cumH[q["i_start"]]
                CG = np.concatenate([[0.0], np.cumsum(q["g"] * H1)])
                A_x = CG[-1] - CG[q["i_x"]]
            if info:
                coef_r = r * A_r
                coef_r[ev] -= r[ev] * H2[q["inv"]]
                I += q["Xr"].T @ (coef_r[:, None] * q["Xr"]) + q["Xx"].T @ ((rx * A_x)[:, None] * q["Xx"])
                mm = mean * np.sqrt(mw)[:, None]
                I -= mm.T @ mm
            states.append(dict(er=er, erx=erx, mean=mean, h=h, H1=H1, H2=H2, A_r=A_r, A_x=A_x))
        return loglik, U, I, states

    def residuals(self, states: list[dict]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Weighted score residuals (R's ``residuals(fit, "dfbeta")`` before the variance) of the original
        and extension rows of each stratum: ``w_row * L_row``."""
        out_r, out_x = [], []
        p = self.p
        for q, z in zip(self.parts, states):
            m = q["u"].size
            st, h, c, mean = q["st"], z["h"], q["c"], z["mean"]
            M1 = np.zeros((m, p))
            np.add.at(M1, st, h[:, None] * mean)
            cumM1 = np.vstack([np.zeros((1, p)), np.cumsum(M1, axis=0)])
            B_r = cumM1[q["i_stop"]] - cumM1[q["i_start"]]
            L_r = -(z["er"][:, None] * (q["Xr"] * z["A_r"][:, None] - B_r))
            ev, inv = q["ev"], q["inv"]
            mbar = np.zeros((m, p))
            np.add.at(mbar, st, q["f"][:, None] * mean)
            L_r[ev] += q["Xr"][ev] - mbar[inv]
            if q["any_c"]:
                M2 = np.zeros((m, p))
                np.add.at(M2, st, (h * c)[:, None] * mean)
                L_r[ev] += z["er"][ev][:, None] * (q["Xr"][ev] * z["H2"][inv][:, None] - M2[inv])
            GM1 = np.vstack([np.zeros((1, p)), np.cumsum(q["g"][:, None] * M1, axis=0)])
            B_x = GM1[-1] - GM1[q["i_x"]]
            L_x = -(z["erx"][:, None] * (q["Xx"] * z["A_x"][:, None] - B_x))
            out_r.append(q["wr"][:, None] * L_r)
            out_x.append(q["wx"][:, None] * L_x)
        return out_r, out_x


def _fg_fit_direct(prep: dict, X: np.ndarray, cause: int, cluster: np.ndarray, ties: str, names: list[str],
                   max_iter: int = 30, tol: float = 1e-9):
    """Newton-Raphson on :class:`_FGProblem` with R coxph's steps, convergence rule and checks; robust
    (sandwich) variance summed within ``cluster`` (input rows). Returns a CoxFit."""
    from causal_hcc.core.cox import CoxFit, _chol_singular

    where = "fine_gray"
    prob = _FGProblem(prep, X, cause, ties)
    p = prob.p
    beta = np.zeros(p)
    ll0, U0, I0, _ = prob.evaluate(beta)
    sing = _chol_singular(I0)
    if sing:
        raise EstimationError(f"{where}: covariate {', '.join(repr(names[j]) for j in sing)} has no variation "
                              f"within risk sets or is collinear with other covariates")
    score_test = float(U0 @ np.linalg.solve(I0, U0))
    best, newbeta, halving, converged, it = ll0, beta + np.linalg.solve(I0, U0), 0, False, 0
    U, I, states = U0, I0, None
    for it in range(1, max_iter + 1):
        newlk, U, I, states = prob.evaluate(newbeta)
        finite = np.isfinite(newlk) and np.all(np.isfinite(U)) and np.all(np.isfinite(I))
        if finite and abs(1 - best / newlk) <= tol:
            beta, best, converged = newbeta, newlk, True
            break
        if not finite or newlk < best:
            halving += 1
            newbeta = (newbeta + halving * beta) / (halving + 1.0)
        else:
            halving, best, beta = 0, newlk, newbeta
            try:
                newbeta = beta + np.linalg.solve(I, U)
            except np.linalg.LinAlgError:
                break
    if not converged:
        j = int(np.argmax(np.abs(newbeta - beta) + np.abs(beta)))
        raise EstimationError(f"{where}: did not converge after {max_iter} iterations (coefficient of {names[j]!r} "
                              f"= {beta[j]:.3g} diverging: monotone likelihood, perfect separation?)")
    if _chol_singular(I):
        raise EstimationError(f"{where}: information matrix singular at the estimate")
    V = np.linalg.inv(I)
    V = (V + V.T) / 2
    infs = np.abs(U @ V)
    inf_flag = ~np.isfinite(U) | (infs > np.sqrt(tol) * (1 + np.abs(beta)))   # agreg.fit's rule ((start, stop] data)
    warns, infinite = [], []
    if inf_flag.any():
        d = V @ U
        scale = np.max(np.abs(d))
        d = d / scale if scale > 0 and np.isfinite(scale) else np.sign(beta)
        probe = prob.evaluate(beta + 10.0 * d, info=False)[0]
        monotone = bool(not np.isfinite(probe) or probe >= best - np.sqrt(tol) * max(1.0, abs(best)))
        for j in np.flatnonzero(inf_flag):
            if monotone and d[j] != 0:
                infinite.append(names[j])
                warns.append(f"{where}: loglik converged before coefficient of {names[j]!r} ({beta[j]:.3g}); "
                             f"it may be infinite (monotone likelihood, perfect separation?): its HR and CI are "
                             f"not usable")
            else:
                warns.append(f"{where}: R's 'coefficient may be infinite' check flags {names[j]!r} "
                             f"({beta[j]:.3g}), but the likelihood has a finite maximum there")
    res_r, res_x = prob.residuals(states)
    ccodes, clabels = as_codes(cluster, cluster.shape[0], "cluster", where=where)
    dfb = np.zeros((clabels.shape[0], p))
    for q, lr, lx in zip(prob.parts, res_r, res_x):
        np.add.at(dfb, ccodes[q["reg"]], lr @ V)
        np.add.at(dfb, ccodes[q["ext"]], lx @ V)
    var_robust = dfb.T @ dfb
    try:
        wald = float(beta @ np.linalg.solve(var_robust, beta))
    except np.linalg.LinAlgError:
        wald = float("nan")
    slabels = prep["slabels"]
    return CoxFit(coef=beta, var=V, var_robust=var_robust, loglik_null=float(ll0), loglik=float(best),
                  score_test=score_test, wald_test=wald, lr_test=float(2 * (best - ll0)), robust_score_test=None,
                  n=prob.n_rows, n_events=prob.n_events, converged=True, n_iter=it, names=list(names), ties=ties,
                  robust=True, dfbeta=dfb, cluster_labels=clabels,
                  strata_labels=None if slabels is None else slabels, warnings=tuple(warns),
                  infinite=tuple(infinite))


def fine_gray(time, status, X, *, cause: int = 1, entry=None, id=None, weights=None, strata=None,
              cluster=None, ties: str = "efron", names: Sequence[str] | None = None, timefix: bool = True,
              method: str = "direct", artificial=None, censoring_weighted: bool = False):
    """Fine-Gray subdistribution hazard model (R ``finegray()`` + weighted ``coxph``).

    Equals R ``coxph(Surv(fgstart, fgstop, fgstatus) ~ X, weights = fgwt,
    cluster = id)`` on ``finegray(Surv(time, factor(status)) ~ ., etype =
    cause)`` (strata: ``+ strata(s)`` in both; case weights: ``finegray(...,
    weights = w)``; (start, stop] rows with ``entry`` and ``id``). Without
    ties between censoring and event times the coefficients equal
    ``cmprsk::crr`` (which puts events at a censoring time in the censoring
    risk set; with Breslow ties also where causes tie). The SE is the robust
    sandwich of the weighted Cox model summed within ``cluster`` (each input
    row when None), which treats the censoring weights as known; ``crr``'s
    SE adds a term for estimating them (they differ in the third digit).

    ``method="direct"`` (default) fits on the data without expanding them
    (:class:`_FGProblem`: one extension row per competing event, O(n log n)
    per Newton step); ``method="expand"`` builds :func:`finegray`'s rows and
    fits :func:`causal_hcc.core.cox.coxph` on them, as R does (memory grows
    with competing events x censoring times). The two agree to rounding.

    ``artificial`` and ``censoring_weighted``: the censoring distribution
    ``G`` of the real censoring only, for designs whose IPC weights handle
    artificial censoring (see :func:`finegray`).

    Returns a :class:`~causal_hcc.core.cox.CoxFit` (coefficients are log
    subdistribution hazard ratios; no baseline hazard with ``direct``).

    References
    ----------
    Fine JP, Gray RJ (1999). JASA 94:496-509.
    """
    from causal_hcc.core.cox import coxph

    check_choice(method, "method", ("direct", "expand"), where="fine_gray")
    check_choice(ties, "ties", ("efron", "breslow"), where="fine_gray")
    if names is None and isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
    Xa = as_matrix(X, where="fine_gray")
    n, p = Xa.shape
    names = [f"x{j + 1}" for j in range(p)] if names is None else [str(x) for x in names]
    if len(names) != p:
        raise DataError(f"fine_gray: {len(names)} names for {p} columns of X")
    bad = ~np.isfinite(Xa)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"fine_gray: covariate {names[c]!r} has missing or infinite values (row {r})")
    cl = np.arange(n) if cluster is None else np.asarray(cluster)
    if method == "direct":
        prep = _fg_prepare(time, status, cause=cause, entry=entry, id=id, weights=weights, strata=strata,
                           timefix=timefix, where="fine_gray", artificial=artificial,
                           censoring_weighted=censoring_weighted)
        return _fg_fit_direct(prep, Xa, cause, cl, ties, names)
    fg = finegray(time, status, cause=cause, entry=entry, id=id, weights=weights, strata=strata, timefix=timefix,
                  artificial=artificial, censoring_weighted=censoring_weighted)
    return coxph(fg.stop, fg.status, Xa[fg.row], entry=fg.start, weights=fg.weight, strata=fg.strata,
                 cluster=cl[fg.row], robust=True, ties=ties, names=names, timefix=False)


def cause_specific_cox(time, status, X, *, cause: int = 1, **kw):
    """Cox model of the cause-specific hazard of ``cause``: other causes are censored at their time.

    ``kw`` go to :func:`causal_hcc.core.cox.coxph` (entry, weights, strata,
    cluster, ties, names). R: ``coxph(Surv(time, status == cause) ~ X)``.
    """
    from causal_hcc.core.cox import coxph

    t = as_float(time, "time", None, where="cause_specific_cox")
    s = as_status(status, t.shape[0], where="cause_specific_cox")
    return coxph(t, (s == cause).astype(np.int8), X, **kw)


class CSCModel:
    """Cause-specific Cox models of every cause and their absolute-risk predictions (riskRegression ``CSC``).

    ``fits[k]`` is the Cox model of the hazard of cause k (other causes
    censored; Efron ties; Efron-adjusted Breslow baseline hazard as R
    ``survfit.coxph``). Predictions follow riskRegression's
    ``predict.CauseSpecificCox`` with ``product.limit = TRUE`` (its default
    for ``ate``): the event-free survival is the product limit
    ``S(u|x) = prod_{v <= u} (1 - sum_k dLambda_k(v|x))`` over the event
    times of all causes and ``F_c(t|x) = sum_{u <= t} S(u-|x) dLambda_c(u|x)``.
    Linear predictors are centred on the fitting data's column means (same
    numbers, no overflow of ``exp``).

    References
    ----------
    Benichou J, Gail MH (1990). Estimates of absolute cause-specific risk in
    cohort studies. Biometrics 46:813-826.
    Ozenne B, Sørensen AL, Scheike T, Torp-Pedersen C, Gerds TA (2017).
    riskRegression: predicting the risk of an event using Cox regression
    models. R Journal 9:440-460.
    """

    def __init__(self, time, status, X, *, causes: Sequence[int] | None = None, weights=None,
                 names: Sequence[str] | None = None, ties: str = "efron"):
        from causal_hcc.core.cox import coxph

        t = as_float(time, "time", None, where="CSC")
        n = t.shape[0]
        s = as_status(status, n, where="CSC")
        Xa = as_matrix(X, where="CSC") if np.asarray(X).size else np.zeros((n, 0))
        self.causes = tuple(int(c) for c in (causes if causes is not None else np.unique(s[s > 0])))
        self.mean_ = Xa.mean(axis=0) if Xa.shape[1] else np.zeros(0)
        self.fits = {}
        self._jumps = {}
        for c in self.causes:
            ev = (s == c).astype(np.int8)
            if not ev.any():
                raise EstimationError(f"CSC: no events of cause {c}")
            if Xa.shape[1]:
                fit = coxph(t, ev, Xa, weights=weights, robust=False, ties=ties, names=names)
                bh = fit.baseline_hazard()
                bt, bH = bh["time"].to_numpy(float), bh["hazard"].to_numpy(float)
                coef = np.asarray(fit.coef, float)
            else:   # no covariate: Nelson-Aalen hazard (weighted)
                fit = None
                w = np.ones(n) if weights is None else np.asarray(weights, float)
                bt = np.unique(t)
                Y = np.cumsum(np.bincount(np.searchsorted(bt, t), weights=w, minlength=bt.size)[::-1])[::-1]
                d = np.bincount(np.searchsorted(bt, t), weights=w * ev, minlength=bt.size)
                bH = np.cumsum(d / Y)
                coef = np.zeros(0)
            dH = np.diff(np.concatenate([[0.0], bH]))
            keep = dH > 0
            # centred baseline increments: dH0(u) exp(mean . b)
            self._jumps[c] = (bt[keep], dH[keep] * float(np.exp(self.mean_ @ coef)) if coef.size else dH[keep])
            self.fits[c] = (fit, coef)
        self.times_ = np.unique(np.concatenate([self._jumps[c][0] for c in self.causes]))

    def _increments(self, Xn: np.ndarray) -> dict[int, np.ndarray]:
        """dLambda_k(u | x) on ``times_`` for each row of ``Xn`` (rows x jump times)."""
        out = {}
        Xc = Xn - self.mean_ if Xn.shape[1] else Xn
        for c in self.causes:
            jt, dh = self._jumps[c]
            full = np.zeros(self.times_.size)
            full[np.searchsorted(self.times_, jt)] = dh
            coef = self.fits[c][1]
            rr = np.exp(Xc @ coef) if coef.size else np.ones(Xn.shape[0])
            out[c] = rr[:, None] * full[None, :]
        return out

    def _chunk(self) -> int:
        """Rows per block: about 2e7 cells of rows x jump times (memory bounded whatever the size)."""
        return max(16, int(2e7 // max(self.times_.size, 1)))

    def predict(self, Xnew, times, cause: int, *, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(F_cause(t | x), S(t | x))`` for each row of ``Xnew`` (rows) at ``times`` (columns).

        Product limit over every jump time of every cause: O(rows x jump times) work, in blocks of rows.
        """
        chunk = chunk or self._chunk()
        Xn = np.asarray(Xnew, dtype=float)
        if Xn.ndim == 1:
            Xn = Xn[:, None]
        tt = np.atleast_1d(np.asarray(times, dtype=float))
        k = np.searchsorted(self.times_, tt, side="right") - 1        # last jump <= t
        F = np.zeros((Xn.shape[0], tt.size))
        S = np.ones((Xn.shape[0], tt.size))
        for lo in range(0, Xn.shape[0], chunk):
            inc = self._increments(Xn[lo:lo + chunk])
            tot = sum(inc.values())
            Sj = np.cumprod(1.0 - tot, axis=1)
            Sprev = np.concatenate([np.ones((Sj.shape[0], 1)), Sj[:, :-1]], axis=1)
            Fj = np.cumsum(Sprev * inc[cause], axis=1)
            ok = k >= 0
            F[lo:lo + chunk][:, ok] = Fj[:, k[ok]]
            S[lo:lo + chunk][:, ok] = Sj[:, k[ok]]
        return F, S

    def survival_before(self, Xnew, times, *, chunk: int | None = None) -> np.ndarray:
        """S(t- | x): event-free survival just before each of ``times`` (rows x times)."""
        chunk = chunk or self._chunk()
        Xn = np.asarray(Xnew, dtype=float)
        tt = np.atleast_1d(np.asarray(times, dtype=float))
        k = np.searchsorted(self.times_, tt, side="left") - 1         # last jump < t
        S = np.ones((Xn.shape[0], tt.size))
        for lo in range(0, Xn.shape[0], chunk):
            tot = sum(self._increments(Xn[lo:lo + chunk]).values())
            Sj = np.cumprod(1.0 - tot, axis=1)
            ok = k >= 0
            S[lo:lo + chunk][:, ok] = Sj[:, k[ok]]
        return S


def cause_specific_models(time, status, X, **kw) -> CSCModel:
    """:class:`CSCModel` of every cause (R ``riskRegression::CSC``)."""
    return CSCModel(time, status, X, **kw)


@dataclass(frozen=True, eq=False)
class CIFEffect:
    """Standardised cumulative incidences of one cause under treat-all / treat-none (:func:`cif_ate`).

    ``risk[a]`` (len(times)) is the mean CIF under arm ``a``; ``terms[a]``
    (n x len(times)) the per-unit terms whose mean it is (for AIPTW the
    uncentred efficient influence function; ``None`` for the g-formula,
    whose variance is the bootstrap).
    """

    times: np.ndarray
    risk: dict
    terms: dict | None
    estimator: str
    diagnostics: dict = field(default_factory=dict)

    def influence_difference(self) -> np.ndarray:
        """Centred influence of ``risk[1] - risk[0]`` per unit (n x T): sum of squares / n^2 is its variance."""
        return (self.terms[1] - self.risk[1][None, :]) - (self.terms[0] - self.risk[0][None, :])

    def influence_log_ratio(self) -> np.ndarray:
        """Centred influence of ``log(risk[1] / risk[0])`` per unit (delta method)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return ((self.terms[1] - self.risk[1][None, :]) / self.risk[1][None, :]
                    - (self.terms[0] - self.risk[0][None, :]) / self.risk[0][None, :])


def cif_ate(time, status, a, X, *, times, cause: int = 1, estimator: str = "gformula", propensity=None,
            censor_X=None, weights=None, names: Sequence[str] | None = None) -> CIFEffect:
    """Average effect of a binary treatment on the cumulative incidence of ``cause`` at ``times``.

    ``estimator="gformula"``: cause-specific Cox models of every cause on
    treatment + ``X`` (:class:`CSCModel`), each unit's CIF predicted under
    a = 1 and a = 0 and averaged (``weights``: case weights of the models
    and of the average). ``estimator="aiptw"``: the augmented IPTW, AIPCW
    estimator of Ozenne et al. (2020) with the propensity score
    ``propensity`` (P(A = 1 | X)) and a Cox censoring model on treatment +
    ``censor_X`` (default ``X``); its ``terms`` give the influence-function
    SE with the nuisance models treated as known.

    Equal to R ``riskRegression::ate(event = CSC(Hist(time, status) ~ a +
    X), treatment = glm(a ~ X, binomial), censor = coxph(Surv(time, status
    == 0) ~ a + X), estimator = "GFORMULA" | "AIPTW", product.limit = TRUE)``
    (``known.nuisance = TRUE`` for the AIPTW SE), with one censoring
    increment per distinct censoring time (riskRegression 2022.11.28 counts
    each censored subject's time once, so tied censoring times differ).

    References
    ----------
    Ozenne BMH, Scheike TH, Stærk L, Gerds TA (2020). On the estimation of
    average treatment effects with right-censored time to event outcome and
    competing risks. Biom J 62:751-763.
    Young JG, Stensrud MJ, Tchetgen Tchetgen EJ, Hernán MA (2020). A causal
    framework for classical statistical estimands in failure-time settings
    with competing events. Stat Med 39:1199-1236.
    """
    where = "cif_ate"
    check_choice(estimator, "estimator", ("gformula", "aiptw"), where=where)
    t = as_float(time, "time", None, where=where)
    n = t.shape[0]
    s = as_status(status, n, where=where)
    av = as_float(a, "treatment", n, where=where)
    Xa = np.zeros((n, 0)) if X is None or np.asarray(X).size == 0 else as_matrix(X, where=where)
    tt = np.atleast_1d(np.asarray(times, dtype=float))
    nm = ["treatment"] + (list(names) if names is not None else [f"x{j + 1}" for j in range(Xa.shape[1])])
    Z = np.column_stack([av, Xa])
    model = CSCModel(t, s, Z, weights=weights, names=nm)
    ctf = {}
    for arm in (0, 1):
        Zc = Z.copy()
        Zc[:, 0] = arm
        ctf[arm] = model.predict(Zc, tt, cause)[0]
    diag = {"causes": list(model.causes),
            "outcome_models": {str(c): [float(b) for b in model.fits[c][1]] for c in model.causes}}
    if estimator == "gformula":
        w = np.ones(n) if weights is None else as_float(weights, "weights", n, where=where)
        risk = {arm: (w @ ctf[arm]) / w.sum() for arm in (0, 1)}
        return CIFEffect(tt, risk, None, "gformula", diag)
    if weights is not None and not np.allclose(weights, 1.0):
        raise DataError(f"{where}: the AIPTW estimator takes no case weights")
    e = as_float(propensity, "propensity", n, where=where)
    if np.any((e <= 0) | (e >= 1)):
        raise EstimationError(f"{where}: propensity scores of exactly 0 or 1; AIPTW needs positivity")
    Xc = Xa if censor_X is None else (np.zeros((n, 0)) if np.asarray(censor_X).size == 0
                                      else as_matrix(censor_X, where=where))
    cens = (s == 0).astype(np.int8)
    if not cens.any():
        raise EstimationError(f"{where}: no censored units; the censoring model cannot be fitted")
    cmodel = CSCModel(t, cens, np.column_stack([av, Xc]), causes=(1,),
                      names=["treatment"] + [f"c{j + 1}" for j in range(Xc.shape[1])])
    Zcens = np.column_stack([av, Xc])
    # censoring jumps (distinct censoring times) up to the last target time
    u = np.unique(t[(s == 0) & (t <= tt.max())])
    # G(u) after each jump of the censoring model up to the last target (product limit), one row per unit:
    # G(min(T, tau)-) for the IPCW term and G(u-) at the jumps are read from it
    cj = cmodel.times_[cmodel.times_ <= tt.max()]
    Gmat = np.cumprod(1.0 - cmodel._increments(Zcens)[1][:, :cj.size], axis=1) if cj.size else np.ones((n, 0))

    def G_before(times_by_row: np.ndarray) -> np.ndarray:
        k = np.searchsorted(cj, times_by_row, side="left") - 1      # last jump < time
        return np.where(k >= 0, Gmat[np.arange(n)[:, None] if times_by_row.ndim == 2 else np.arange(n),
                                     np.maximum(k, 0)], 1.0)

    Gobs = G_before(np.minimum(t[:, None], tt[None, :]))
    Ftau_obs = model.predict(Z, tt, cause)[0]
    aug = np.zeros((n, tt.size))
    if u.size:
        Gu = G_before(np.broadcast_to(u[None, :], (n, u.size)))
        Su = model.survival_before(Z, u)
        Fu = model.predict(Z, u, cause)[0]
        jt, dh = cmodel._jumps[1]
        full = np.zeros(u.size)
        pos = np.searchsorted(jt, u)
        ok = (pos < jt.size) & (jt[np.minimum(pos, jt.size - 1)] == u)
        full[ok] = dh[pos[ok]]
        rr = np.exp((Zcens - cmodel.mean_) @ cmodel.fits[1][1]) if Zcens.shape[1] else np.ones(n)
        dN = (t[:, None] == u[None, :]) & (s[:, None] == 0)
        dM = dN - rr[:, None] * full[None, :]
        before_event = u[None, :] <= t[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            integrand = np.where(before_event, dM / (Gu * Su), 0.0)
        c1 = np.cumsum(integrand, axis=1)
        c2 = np.cumsum(Fu * integrand, axis=1)
        k = np.searchsorted(u, tt, side="right") - 1
        I1 = np.where(k[None, :] >= 0, c1[:, np.maximum(k, 0)], 0.0)
        I2 = np.where(k[None, :] >= 0, c2[:, np.maximum(k, 0)], 0.0)
        aug = Ftau_obs * I1 - I2
    Y = ((t[:, None] <= tt[None, :]) & (s[:, None] == cause)).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ipcw = np.where(Y > 0, Y / Gobs, 0.0)
    risk, terms = {}, {}
    for arm in (0, 1):
        pi = e if arm == 1 else 1.0 - e
        ind = (av == arm).astype(float) / pi
        phi = ctf[arm] + ind[:, None] * (ipcw - ctf[arm] + aug)
        terms[arm] = phi
        risk[arm] = phi.mean(axis=0)
    diag["censoring_model"] = [float(b) for b in cmodel.fits[1][1]]
    diag["min_G"] = float(Gobs.min()) if Gobs.size else None
    return CIFEffect(tt, risk, terms, "aiptw", diag)

