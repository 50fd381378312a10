"""Log-rank test matching R ``survival::survdiff`` (rho = 0), with strata and entry."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from causal_hcc.core._dist import chi2_sf

from causal_hcc.core._checks import as_codes, as_event, as_float, check_times, timefix as _timefix
from causal_hcc.errors import DataError

__all__ = ["LogRankResult", "logrank"]

_WHERE = "logrank"


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank test (R ``survdiff``): ``chi2`` on ``df`` degrees of freedom, ``p``,
    ``observed`` and ``expected`` events per group (``groups`` order), ``var`` matrix."""

    chi2: float
    df: int
    p: float
    observed: np.ndarray
    expected: np.ndarray
    var: np.ndarray
    groups: np.ndarray


def logrank(time, event, group, *, entry=None, strata=None, timefix: bool = True) -> LogRankResult:
    """Log-rank (Mantel-Haenszel) test of equal hazards across groups.

    Risk sets are {entry < t <= time}; with ``strata`` the observed,
    expected and variance are summed over strata (R ``strata()`` in
    ``survdiff``). The chi-square drops the first group with expected > 0, as R.
    ``timefix`` merges times equal up to floating-point noise first, as
    ``survdiff(timefix = TRUE)`` (:func:`causal_hcc.core._checks.timefix`).

    References
    ----------
    Mantel N (1966). Evaluation of survival data and two new rank order
    statistics arising in its consideration. Cancer Chemother Rep 50:163-170.
    Peto R, Peto J (1972). Asymptotically efficient rank invariant test
    procedures. JRSS A 135:185-207.
    """
    t = as_float(time, "time", None, where=_WHERE)
    n = t.shape[0]
    d = as_event(event, n, where=_WHERE).astype(float)
    ent = None if entry is None else as_float(entry, "entry", n, where=_WHERE)
    check_times(t, ent, where=_WHERE)
    if timefix:
        t, ent = _timefix(t, ent, where=_WHERE)
    g, labels = as_codes(group, n, "group", where=_WHERE)
    k = labels.shape[0]
    if k < 2:
        raise DataError(f"{_WHERE}: group has a single level ({labels[0]!r}); need at least two")
    s = np.zeros(n, dtype=np.intp) if strata is None else as_codes(strata, n, "strata", where=_WHERE)[0]
    O = np.zeros(k)
    E = np.zeros(k)
    V = np.zeros((k, k))
    for sc in np.unique(s):
        rows = s == sc
        ts, ds, gs = t[rows], d[rows], g[rows]
        es = None if ent is None else ent[rows]
        et = np.unique(ts[ds > 0])
        if et.size == 0:
            continue
        # at risk per group at each event time: (#time >= t) - (#entry >= t)
        nrg = np.empty((et.size, k))
        drg = np.empty((et.size, k))
        for j in range(k):
            tj = np.sort(ts[gs == j])
            nrg[:, j] = tj.size - np.searchsorted(tj, et, side="left")
            if es is not None:
                ej = np.sort(es[gs == j])
                nrg[:, j] -= ej.size - np.searchsorted(ej, et, side="left")
            dj = np.sort(ts[(gs == j) & (ds > 0)])
            drg[:, j] = np.searchsorted(dj, et, side="right") - np.searchsorted(dj, et, side="left")
        nr = nrg.sum(1)
        dr = drg.sum(1)
        O += drg.sum(0)
        E += (nrg * (dr / nr)[:, None]).sum(0)
        ok = nr > 1
        fac = np.where(ok, dr * (nr - dr) / np.where(ok, nr - 1, 1), 0.0)
        p = nrg / nr[:, None]
        V += np.diag((fac[:, None] * p).sum(0)) - (fac[:, None] * p).T @ p
    keep = np.flatnonzero(E > 0)
    if keep.size < 2:
        chi2 = 0.0
        df = 0
    else:
        idx = keep[1:]
        diff = (O - E)[idx]
        chi2 = float(diff @ np.linalg.solve(V[np.ix_(idx, idx)], diff))
        df = int(keep.size - 1)
    pval = float(chi2_sf(chi2, df)) if df > 0 else float("nan")
    return LogRankResult(chi2=chi2, df=df, p=pval, observed=O, expected=E, var=V, groups=labels)
