"""Kaplan-Meier estimator matching R ``survival::survfit`` (one curve).

Own code (not lifelines) because we need R's exact numbers for weighted
curves -- the infinitesimal-jackknife (IJ) variance R reports for
non-integer weights or clusters, left truncation, R's median CI and RMST --
plus per-subject influence functions to build bootstrap-free variances of
differences, all vectorised (one sort, cumulative sums; O(n log n)).

Influence (IJ) of row k (weight w_k, entry e_k, exit t_k, status d_k) on
S(tau), as in R's survfitkm.c::

    phi_k(tau) = -S(tau) w_k [ d_k 1{t_k <= tau} a(t_k) - (G(min(t_k, tau)) - G(e_k)) ]

with hazard increments h_l = d_l / n_l (weighted), ``a_l = 1 / (n_l - d_l)``
and ``G(t) = sum_{t_l <= t} d_l / (n_l (n_l - d_l))`` (the Greenwood sum).
The IJ variance is ``sum_g (sum_{k in g} phi_k)^2`` over clusters g (each
row its own cluster without ``cluster``); for unweighted data without
clusters it equals Greenwood's formula exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.core._checks import (
    as_codes,
    as_event,
    as_float,
    check_choice,
    check_times,
    check_weights,
    timefix as _timefix,
)
from causal_hcc.errors import DataError
from causal_hcc.results import normal_quantile

__all__ = ["KMFit", "kaplan_meier", "rmst_difference"]

_WHERE = "kaplan_meier"


def _confint(surv, std_err, conf_type, z):
    """R ``survfit_confint`` with ``logse = TRUE`` (std_err on the log S scale)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            se2 = std_err * surv * z
            return np.maximum(surv - se2, 0.0), np.minimum(surv + se2, 1.0)
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            se2 = z * std_err
            return np.exp(np.log(xx) - se2), np.minimum(np.exp(np.log(xx) + se2), 1.0)
        xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
        se2 = z * std_err / np.log(xx)
        return np.exp(-np.exp(np.log(-np.log(xx)) - se2)), np.exp(-np.exp(np.log(-np.log(xx)) + se2))


def _minmin(y, x):
    """R survmean's ``minmin``: first x where y < 0.5 (averaging at an exact 0.5)."""
    tol = np.finfo(float).eps ** 0.5
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return float("nan")
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < tol and (y < y[0]).any():
        return float((x[0] + x[np.flatnonzero(y < y[0])[0]]) / 2)
    return float(x[0])


@dataclass(frozen=True, eq=False)
class KMFit:
    """Result of :func:`kaplan_meier`: one row per distinct exit time (R ``survfit``).

    Attributes
    ----------
    time, n_risk, n_event, n_censor : ndarray
        Distinct (event or censoring) times and the weighted counts there.
    surv : ndarray
        Kaplan-Meier estimate.
    std_err : ndarray
        SE of log S (Greenwood or IJ). R reports this for Greenwood; for
        the IJ variance R's ``std.err`` is on the S scale: ``se_surv`` here.
    se_surv : ndarray
        SE of S (``std_err * surv``).
    lower, upper : ndarray
        ``1 - alpha`` pointwise confidence limits (``conf_type``).
    variance : {"greenwood", "ij"}
    conf_type : {"log", "log-log", "plain"}
    alpha : float
    n : int
        Number of rows used.
    """

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    variance: str
    conf_type: str
    alpha: float
    n: int
    # internals for influence functions
    _G: np.ndarray = field(repr=False)  # Greenwood sum at each table time
    _a: np.ndarray = field(repr=False)  # 1 / (n - d) at each table time (0 if none/undefined)
    _ix: np.ndarray = field(repr=False)  # table index of each row's exit time
    _ie: np.ndarray = field(repr=False)  # number of table times <= entry (0 without entry)
    _d: np.ndarray = field(repr=False)
    _w: np.ndarray = field(repr=False)
    _cl: np.ndarray | None = field(repr=False)
    _ncl: int = field(repr=False, default=0)

    @property
    def se_surv(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(self.std_err == 0, 0.0, self.std_err * self.surv)

    @property
    def table(self) -> pd.DataFrame:
        """The survfit table as a DataFrame."""
        return pd.DataFrame({"time": self.time, "n_risk": self.n_risk, "n_event": self.n_event,
                             "n_censor": self.n_censor, "surv": self.surv, "std_err": self.std_err,
                             "se_surv": self.se_surv, "lower": self.lower, "upper": self.upper})

    def _index(self, times) -> tuple[np.ndarray, np.ndarray]:
        t = np.atleast_1d(np.asarray(times, dtype=float))
        return t, np.searchsorted(self.time, t, side="right") - 1

    def at(self, times) -> pd.DataFrame:
        """Step-function values at ``times``: ``time, surv, se, lower, upper``.

        Before the first time S = 1 (se 0); after the last observed time the
        curve is undefined (NaN) unless it has dropped to 0.
        """
        t, idx = self._index(times)
        j = np.maximum(idx, 0)
        before = idx < 0
        after = (t > self.time[-1]) & (self.surv[-1] > 0)
        def pick(arr, first):
            out = np.where(before, first, arr[j]).astype(float)
            out[after] = np.nan
            return out
        return pd.DataFrame({"time": t, "surv": pick(self.surv, 1.0), "se": pick(self.se_surv, 0.0),
                             "lower": pick(self.lower, 1.0), "upper": pick(self.upper, 1.0)})

    def median(self) -> tuple[float, float, float]:
        """Median survival and its CI (R ``summary(fit)$table``: median, LCL, UCL); NaN if not reached."""
        return (_minmin(self.surv, self.time), _minmin(self.lower, self.time),
                _minmin(self.upper, self.time))

    def quantile(self, q: float) -> float:
        """Time at which S first drops to ``1 - q`` or below (R's rule at exact ties)."""
        return _minmin(self.surv - (0.5 - (1 - q)), self.time)

    # ---------------------------------------------------------- RMST ----
    def _rm(self, tau: float):
        """RM(t_j) = area under S from 0 to each table time, and RM(tau)."""
        t0 = min(0.0, float(self.time[0]))
        steps = np.concatenate([[1.0], self.surv[:-1]])
        left = np.concatenate([[t0], self.time[:-1]])
        rect = (self.time - left) * steps
        rm = np.cumsum(rect)
        k = np.searchsorted(self.time, tau, side="right")  # table times <= tau
        rm_tau = (rm[k - 1] if k > 0 else 0.0) + (tau - (self.time[k - 1] if k > 0 else t0)) * (
            self.surv[k - 1] if k > 0 else 1.0)
        return rm, float(rm_tau), k

    def rmst(self, tau: float) -> tuple[float, float]:
        """Restricted mean survival time up to ``tau`` and its SE.

        Greenwood variance: R ``summary(fit, rmean=tau)$table`` (``rmean``,
        ``se(rmean)``). IJ variance: sqrt of the sum over clusters of the squared
        summed influences (:meth:`influence_rmst`).
        """
        rm, rm_tau, k = self._rm(tau)
        t0 = min(0.0, float(self.time[0]))
        if self.variance == "greenwood":
            with np.errstate(divide="ignore", invalid="ignore"):
                nd = self.n_risk - self.n_event
                hh = np.where(nd == 0, 0.0, self.n_event / (self.n_risk * nd))
            area = rm_tau - rm[:k]
            return rm_tau + t0, float(np.sqrt(np.sum(area**2 * hh[:k])))
        psi = self.influence_rmst(tau)
        return rm_tau + t0, float(np.sqrt(np.sum(self._collapse(psi) ** 2)))

    # ----------------------------------------------------- influence ----
    def _collapse(self, infl: np.ndarray) -> np.ndarray:
        if self._cl is None:
            return infl
        if infl.ndim == 1:
            return np.bincount(self._cl, weights=infl, minlength=self._ncl)
        out = np.zeros((self._ncl, infl.shape[1]))
        np.add.at(out, self._cl, infl)
        return out

    def influence_surv(self, times) -> np.ndarray:
        """Per-row IJ influence on S(t) at ``times`` (n x k, input row order, weights included).

        ``sum_g (sum_{rows in g} infl)^2`` over clusters is the IJ variance;
        row sums by cluster reproduce R ``survfit(..., influence=TRUE)$influence.surv``.
        """
        t, idx = self._index(times)
        S = np.where(idx < 0, 1.0, self.surv[np.maximum(idx, 0)])
        Gt = np.where(idx < 0, 0.0, self._G[np.maximum(idx, 0)])
        Gx = self._G[self._ix]
        Ge = np.where(self._ie > 0, self._G[np.maximum(self._ie - 1, 0)], 0.0)
        done = self._ix[:, None] <= idx[None, :]
        A = np.where(done, (self._d * self._a[self._ix] - Gx + Ge)[:, None],
                     np.where(self._ie[:, None] <= idx[None, :], Ge[:, None] - Gt[None, :], 0.0))
        return -S[None, :] * self._w[:, None] * A

    def influence_rmst(self, tau: float) -> np.ndarray:
        """Per-row IJ influence on RMST(tau) (length n, input row order, weights included)."""
        rm, rm_tau, k = self._rm(tau)
        with np.errstate(invalid="ignore"):
            inc = np.diff(np.concatenate([[0.0], self._G]))  # d / (n (n - d)) per table time
        inc = np.where(np.arange(inc.shape[0]) < k, inc, 0.0)  # only times <= tau
        Q1 = np.concatenate([[0.0], np.cumsum(inc)])
        Q2 = np.concatenate([[0.0], np.cumsum(inc * rm)])
        hi = np.minimum(self._ix + 1, k)  # table times in (entry, min(exit, tau)]
        lo = np.minimum(self._ie, hi)
        risk_part = rm_tau * (Q1[hi] - Q1[lo]) - (Q2[hi] - Q2[lo])
        death_part = np.where((self._d > 0) & (self._ix < k),
                              (rm_tau - rm[self._ix]) * self._a[self._ix], 0.0)
        return -self._w * (death_part - risk_part)


def _ij_variance(G, a, ix, ie, d, w, cl, m):
    """IJ variance of log S at every table time (sum over clusters), O(n log n).

    Each cluster's summed influence (divided by -S) is ``C_g - W_g G(tau)``;
    C_g and W_g change only when one of its rows enters or exits, so the sums
    of C^2, C W and W^2 over clusters are step functions built from sorted
    per-cluster changes.
    """
    n = ix.shape[0]
    Ge = np.where(ie > 0, G[np.maximum(ie - 1, 0)], 0.0)
    # entry event at position ie (first table time > entry), exit at ix
    pos = np.concatenate([ie, ix])
    dC = np.concatenate([w * Ge, w * (d * a[ix] - G[ix])])
    dW = np.concatenate([w, -w])
    if cl is None:
        Cn = np.concatenate([w * Ge, w * (d * a[ix] - G[ix] + Ge)])
        Wn = np.concatenate([w, np.zeros(n)])
        Co = np.concatenate([np.zeros(n), w * Ge])
        Wo = np.concatenate([np.zeros(n), w])
    else:
        c2 = np.concatenate([cl, cl])
        o = np.lexsort((np.concatenate([np.zeros(n), np.ones(n)]), pos, c2))
        pos, dC, dW, c2 = pos[o], dC[o], dW[o], c2[o]
        csC, csW = np.cumsum(dC), np.cumsum(dW)
        first = np.ones(2 * n, dtype=bool)
        first[1:] = c2[1:] != c2[:-1]
        start = np.maximum.accumulate(np.where(first, np.arange(2 * n), 0))
        baseC = np.where(start > 0, csC[start - 1], 0.0)
        baseW = np.where(start > 0, csW[start - 1], 0.0)
        Cn, Wn = csC - baseC, csW - baseW
        Co, Wo = Cn - dC, Wn - dW
    cc = np.bincount(pos, weights=Cn * Cn - Co * Co, minlength=m + 1)[:m]
    cw = np.bincount(pos, weights=Cn * Wn - Co * Wo, minlength=m + 1)[:m]
    ww = np.bincount(pos, weights=Wn * Wn - Wo * Wo, minlength=m + 1)[:m]
    Scc, Scw, Sww = np.cumsum(cc), np.cumsum(cw), np.cumsum(ww)
    v = Scc - 2 * G * Scw + G * G * Sww
    return np.maximum(v, 0.0)


def kaplan_meier(
    time,
    event,
    *,
    entry=None,
    weights=None,
    cluster=None,
    variance: str = "auto",
    conf_type: str = "log",
    alpha: float = 0.05,
    timefix: bool = True,
) -> KMFit:
    """Kaplan-Meier survival curve with R ``survfit`` semantics.

    Parameters
    ----------
    time, event : array-like (n,)
        Exit time and status (1 = event).
    entry : array-like (n,), optional
        Entry time (left truncation): a row is at risk on (entry, time].
    weights : array-like (n,), optional
        Case weights (e.g. IPTW), >= 0.
    cluster : array-like (n,), optional
        Cluster (patient) id for the IJ variance.
    variance : {"auto", "greenwood", "ij"}
        ``"auto"``: Greenwood when there are no weights (or all weights are
        1) and no cluster, else the infinitesimal jackknife, which is what R
        reports for non-integer weights or a cluster (``robust=TRUE``).
        (R uses weighted Greenwood for integer weights other than 1; pass
        ``variance="greenwood"`` to get that.)
    conf_type : {"log", "log-log", "plain"}
    alpha : float
        1 - confidence level.
    timefix : bool
        Merge times equal up to floating-point noise first (R ``survfit``'s
        ``timefix = TRUE``; :func:`causal_hcc.core._checks.timefix`).

    Returns
    -------
    KMFit

    References
    ----------
    Kaplan EL, Meier P (1958). Nonparametric estimation from incomplete
    observations. JASA 53:457-481.
    Greenwood M (1926). The natural duration of cancer. Reports on Public
    Health and Medical Subjects 33.
    Xie J, Liu C (2005). Adjusted Kaplan-Meier estimator and log-rank test
    with inverse probability of treatment weighting for survival data. Stat
    Med 24:3089-3110.
    Therneau TM (2023). The survfitkm routine (survival package vignette
    "methods": robust variance).
    """
    check_choice(variance, "variance", ("auto", "greenwood", "ij"), where=_WHERE)
    check_choice(conf_type, "conf_type", ("log", "log-log", "plain"), where=_WHERE)
    if not (0 < alpha < 1):
        raise DataError(f"{_WHERE}: alpha must be in (0, 1), got {alpha!r}")
    t = as_float(time, "time", None, where=_WHERE)
    n = t.shape[0]
    if n == 0:
        raise DataError(f"{_WHERE}: no rows")
    d = as_event(event, n, where=_WHERE).astype(float)
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
    if variance == "auto":
        variance = "greenwood" if (cluster is None and np.all(w == 1)) else "ij"

    utime, ix = np.unique(t, return_inverse=True)  # ix: = np.searchsorted(utime, t), without a search per row
    m = utime.shape[0]
    nev_w = np.bincount(ix, weights=w * d, minlength=m)
    nev_c = np.bincount(ix, weights=d, minlength=m)
    ncen_w = np.bincount(ix, weights=w * (1 - d), minlength=m)
    nrisk = np.cumsum(np.bincount(ix, weights=w, minlength=m)[::-1])[::-1]
    if ent is None:
        ie = np.zeros(n, dtype=np.intp)
    else:
        ie = np.searchsorted(utime, ent, side="right")  # table times <= entry
        # rows with entry >= utime[j] are not at risk at utime[j]
        late = np.cumsum(np.bincount(ie, weights=w, minlength=m + 1)[:m])  # entry < utime[j]... see below
        # sum of w with ie <= j  <=> entry < utime[j+1]; at risk at j needs entry < utime[j], i.e. ie <= j
        nrisk = nrisk - (w.sum() - late)
    ev = (nev_c > 0) & (nev_w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(ev, nev_w / nrisk, 0.0)
        surv = np.cumprod(1.0 - h)
        nd = nrisk - nev_w
        ginc = np.where(ev, nev_w / (nrisk * nd), 0.0)
        G = np.cumsum(ginc)
        a = np.where(ev & (nd > 0), 1.0 / nd, 0.0)
    Gs = np.cumsum(np.where(np.isfinite(ginc), ginc, 0.0))  # finite version for influences
    if variance == "greenwood":
        std_err = np.sqrt(G)
    else:
        std_err = np.sqrt(_ij_variance(Gs, a, ix, ie, d, w, cl, m))
    z = normal_quantile(1 - alpha / 2)  # cached; scipy's ppf costs ~0.1 ms per call
    lower, upper = _confint(surv, std_err, conf_type, z)
    return KMFit(
        time=utime, n_risk=nrisk, n_event=nev_w, n_censor=ncen_w, surv=surv, std_err=std_err,
        lower=lower, upper=upper, variance=variance, conf_type=conf_type, alpha=alpha, n=n,
        _G=Gs, _a=a, _ix=ix, _ie=ie, _d=d, _w=w, _cl=cl, _ncl=ncl,
    )


def rmst_difference(fit1: KMFit, fit0: KMFit, tau: float) -> tuple[float, float]:
    """RMST(fit1) - RMST(fit0) up to ``tau`` and its SE (independent arms: variances add).

    References
    ----------
    Royston P, Parmar MKB (2013). Restricted mean survival time: an
    alternative to the hazard ratio for the design and analysis of randomized
    trials with a time-to-event outcome. BMC Med Res Methodol 13:152.
    """
    r1, s1 = fit1.rmst(tau)
    r0, s0 = fit0.rmst(tau)
    return r1 - r0, float(np.hypot(s1, s0))
