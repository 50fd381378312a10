"""Test of proportional hazards from Schoenfeld residuals (R ``survival::cox.zph``).

The algorithm of survival 3.x (Therneau 2019 onwards; ``cox.zph`` with the C
routines ``zph1``/``zph2``), not the older one (survival 2.x computed the
test from the scaled residuals and the fit's variance). For a fitted Cox
model with coefficients ``beta`` and a function ``g`` of time (the
*transform*), centred at the mean of ``g`` over the event rows, the model is
extended with the time interactions ``x * g(t)`` and the score test that
their coefficients are 0 is computed at ``(beta, 0)``, one step of Newton
from the fit:

* score of the interactions, ``u = sum_events w_i g(t_i) (x_i - xbar(t_i))``
  (Efron: ``xbar`` averaged over the tied deaths' sub-steps, exactly as the
  Cox score);
* the 2p x 2p information ``[[I, I_g], [I_g, I_gg]]`` where each event-time
  (Efron sub-step) variance ``V(t)`` enters with weight 1, ``g(t)`` and
  ``g(t)^2``;
* per term (its columns ``J``): ``chisq = u_J' (I_[all, J])^-1 u_J`` with the
  full block of the model's own coefficients (scores 0 there), df = |J|;
  globally all interactions at once, df = p.

Case weights enter the sums as in the Cox fit. The robust (sandwich or
cluster) variance is not used: R's ``cox.zph`` uses the model-based
information even for a fit with ``robust = TRUE`` or ``cluster``, and
treats weights as case weights; we do the same, and say so in the output.

The default transform ``"km"`` is ``1 - S(t-)`` with S the *unweighted*
Kaplan-Meier of all rows, ignoring strata (R's ``survfitKM`` on the model's
``y``; left-continuous). ``"identity"``, ``"log"`` and ``"rank"`` are
available too.

Scaled Schoenfeld residuals (for the plot of ``beta(t)``) are R's: the
residuals ``x_i - xbar(t_i)`` multiplied by the inverse of the average
information per event, ``I / d`` (per stratum only over covariates that vary
in it), plus ``beta``.

References
----------
Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based
on weighted residuals. Biometrika 1994;81:515-26.
Therneau TM, Grambsch PM. Modeling Survival Data: Extending the Cox Model.
Springer; 2000 (ch. 6).
Therneau TM. survival: ``cox.zph`` (R package version 3.x), src/zph1.c and
src/zph2.c.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from causal_hcc.core._checks import as_codes, as_matrix, check_choice, stable_argsort, survival_arrays
from causal_hcc.core._dist import chi2_sf
from causal_hcc.core.cox import CoxFit, _CoxProblem
from causal_hcc.errors import DataError

__all__ = ["ZphResult", "cox_zph", "km_transform", "natural_spline_smooth"]

_WHERE = "cox_zph"
TRANSFORMS = ("km", "identity", "log", "rank")


@dataclass(frozen=True, eq=False)
class ZphResult:
    """Result of :func:`cox_zph` (R's ``cox.zph`` object).

    Attributes
    ----------
    table : DataFrame
        Index: the terms, then ``GLOBAL``; columns ``chisq``, ``df``, ``p``.
    transform : str
    x : ndarray (n_events,)
        Transformed event times (R ``x``), in R's order (stratum, time).
    time : ndarray (n_events,)
        Event times in the same order.
    y : ndarray (n_events, n_terms)
        Scaled Schoenfeld residuals plus the coefficient (R ``y``); NaN for a
        term constant within the event's stratum.
    var : ndarray (n_terms, n_terms)
        R ``var``: the inverse of the average information per event.
    strata : ndarray or None
        Stratum label of each event row.
    terms : list of str
    coef : ndarray
        The fit's coefficients (per column of X).
    """

    table: pd.DataFrame
    transform: str
    x: np.ndarray
    time: np.ndarray
    y: np.ndarray
    var: np.ndarray
    strata: np.ndarray | None
    terms: list[str]
    coef: np.ndarray = field(repr=False)
    term_coef: np.ndarray = field(repr=False)

    def term(self, name: str) -> dict[str, float]:
        """``{"chisq", "df", "p"}`` of one term (or ``"GLOBAL"``)."""
        if name not in self.table.index:
            raise DataError(f"{_WHERE}: no term {name!r}; terms: {', '.join(self.table.index)}")
        r = self.table.loc[name]
        return {"chisq": float(r["chisq"]), "df": int(r["df"]), "p": float(r["p"])}

    def to_dict(self) -> dict:
        """JSON-ready summary: ``{"transform", "terms": [{"term", "chisq", "df", "p"}], "global"}``."""
        rows = [{"term": t, **self.term(t)} for t in self.terms]
        out = {"transform": self.transform, "terms": rows}
        if "GLOBAL" in self.table.index:
            out["global"] = self.term("GLOBAL")
        return out

    def smooth(self, term: str, *, df: int = 4, nsmo: int = 40) -> dict[str, list[float]]:
        """R ``plot.cox.zph``'s smooth of ``beta(t)`` for one term, with its +-2 SE band.

        A natural cubic spline with ``df`` degrees of freedom (R ``ns(df =
        df, intercept = TRUE)``, knots at quantiles of the grid and the
        transformed times together) fitted by least squares to the scaled
        residuals; the band is ``2 sqrt(var * diag(P (X'X)^-1 P'))``.
        Returns ``x`` (grid on the transformed scale), ``time`` (the grid in
        time units, interpolated between event times as R labels its axis),
        ``beta``, ``lower``, ``upper``.
        """
        if term not in self.terms:
            raise DataError(f"{_WHERE}: no term {term!r}; terms: {', '.join(self.terms)}")
        i = self.terms.index(term)
        y = self.y[:, i]
        keep = ~np.isnan(y)
        grid, yhat, seval = natural_spline_smooth(self.x, y, keep, df=df, nsmo=nsmo)
        band = 2.0 * np.sqrt(self.var[i, i] * seval)
        if self.transform == "log":
            grid_time = np.exp(grid)
        elif self.transform == "identity":
            grid_time = grid
        else:
            xs, first = np.unique(self.x, return_index=True)
            grid_time = np.interp(grid, xs, self.time[first])
        return {"x": grid.tolist(), "time": grid_time.tolist(), "beta": yhat.tolist(),
                "lower": (yhat - band).tolist(), "upper": (yhat + band).tolist()}


def km_transform(time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None, *,
                 order: np.ndarray | None = None) -> np.ndarray:
    """``1 - S(t-)`` at each row's time, S the unweighted Kaplan-Meier of all rows (R ``cox.zph`` "km").

    With ``entry`` the risk set at t is ``{entry < t <= time}`` (R
    ``survfitKM`` on counting-process data). ``order``, when given, is a
    permutation sorting ``time`` (saves the sort).
    """
    if order is None:
        order = stable_argsort(np.unique(time, return_inverse=True)[1])  # = np.argsort(time, kind="stable")
    st = time[order]                                  # sorted queries: searchsorted is cache-friendly
    sev = st[event[order]]
    et = np.unique(sev)
    n_event = np.diff(np.searchsorted(sev, et, side="left"), append=sev.size).astype(float)
    n_risk = (st.size - np.searchsorted(st, et, side="left")).astype(float)
    if entry is not None:
        se = np.sort(entry)
        n_risk -= se.size - np.searchsorted(se, et, side="left")  # entry >= t: not yet at risk
    surv = np.concatenate([[1.0], np.cumprod(1.0 - n_event / n_risk)])
    out = np.empty(time.shape[0])
    out[order] = 1.0 - surv[np.searchsorted(et, st, side="left")]  # event times strictly before t
    return out


def _same_data(cache: Mapping, t, ent, ev, X, w, scodes) -> bool:
    """Whether the arrays equal those a cached Cox problem was built from."""
    if (cache["entry"] is None) != (ent is None) or cache["X"].shape != X.shape:
        return False
    pairs = [(cache["time"], t), (cache["event"], ev), (cache["w"], w), (cache["strata"], scodes), (cache["X"], X)]
    if ent is not None:
        pairs.append((cache["entry"], ent))
    return all(a is b or np.array_equal(a, b) for a, b in pairs)


def _transform(kind: str, time: np.ndarray, event: np.ndarray, entry: np.ndarray | None,
               order: np.ndarray | None = None) -> np.ndarray:
    if kind == "km":
        return km_transform(time, event, entry, order=order)
    if kind == "identity":
        return time.copy()
    if kind == "log":
        if np.any(time <= 0):
            raise DataError(f"{_WHERE}: transform 'log' needs positive times")
        return np.log(time)
    from scipy.stats import rankdata  # only here: scipy.stats is slow to import

    return rankdata(time)  # "rank": average ranks of ties, as R rank()


def _ns_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """A natural cubic spline basis (ESL eq. 5.4-5.5) with the given knots (boundary ones included)."""
    K = knots.size
    cols = [np.ones_like(x), x]

    def d(k):
        return (np.maximum(x - knots[k], 0) ** 3 - np.maximum(x - knots[-1], 0) ** 3) / (knots[-1] - knots[k])

    for k in range(K - 2):
        cols.append(d(k) - d(K - 2))
    return np.column_stack(cols)


def natural_spline_smooth(x: np.ndarray, y: np.ndarray, keep: np.ndarray, *, df: int = 4, nsmo: int = 40):
    """Least-squares natural-spline smooth of ``y`` on ``x`` as R ``plot.cox.zph`` does it.

    Returns ``(grid, yhat, seval)``: the ``nsmo``-point grid over the range of
    ``x``, the fitted values there and ``diag(P (X'X)^-1 P')``. The fitted
    values and ``seval`` do not depend on the basis chosen for the spline
    space, only on its knots: R's ``ns(c(grid, x), df, intercept = TRUE)``
    puts ``df - 2`` interior knots at quantiles (type 7) of the grid and
    ``x`` together, the boundary knots at their range.
    """
    grid = np.linspace(x.min(), x.max(), nsmo)
    allx = np.concatenate([grid, x])
    n_int = df - 2
    probs = np.arange(1, n_int + 1) / (n_int + 1)
    knots = np.concatenate([[allx.min()], np.quantile(allx, probs), [allx.max()]])
    lo, span = knots[0], (knots[-1] - knots[0]) or 1.0
    B = _ns_basis((allx - lo) / span, (knots - lo) / span)
    P, X = B[:nsmo], B[nsmo:][keep]
    Q, R = np.linalg.qr(X)
    if np.linalg.matrix_rank(R) < df:
        raise DataError(f"{_WHERE}: too few distinct event times for a spline smooth with df = {df}")
    coef = np.linalg.solve(R, Q.T @ y[keep])
    Rinv = np.linalg.inv(R)
    PR = P @ Rinv
    return grid, P @ coef, np.sum(PR * PR, axis=1)


def cox_zph(
    fit: CoxFit,
    time,
    event,
    X,
    *,
    entry=None,
    weights=None,
    strata=None,
    transform: str = "km",
    terms: Mapping[str, Sequence[int]] | None = None,
    global_test: bool = True,
) -> ZphResult:
    """Test proportional hazards for a fitted Cox model (R ``cox.zph``, survival 3.x).

    Parameters
    ----------
    fit : CoxFit
        The fitted model (its coefficients and ties method are used).
    time, event, X, entry, weights, strata
        The data the model was fitted on, as given to
        :func:`causal_hcc.core.cox.coxph` (``cluster`` is not needed: the
        test uses the model-based information, as R).
    transform : {"km", "identity", "log", "rank"}
        Function of time the coefficients may vary with (R's default "km").
    terms : mapping of term name -> column indices, optional
        Columns tested together (a factor's dummies); default one term per
        column named by ``fit.names``.
    global_test : bool
        Add the ``GLOBAL`` row.

    Returns
    -------
    ZphResult

    Raises
    ------
    DataError
        Data that do not match the fit, an unknown transform, or terms that
        do not partition the columns.

    References
    ----------
    Grambsch PM, Therneau TM. Biometrika 1994;81:515-26.
    Therneau TM, Grambsch PM. Modeling Survival Data. Springer; 2000.
    """
    check_choice(transform, "transform", TRANSFORMS, where=_WHERE)
    Xa = as_matrix(X, where=_WHERE)
    n, p = Xa.shape
    if p != fit.df:
        raise DataError(f"{_WHERE}: X has {p} columns, the fit has {fit.df} coefficients")
    if not np.all(np.isfinite(Xa)):
        raise DataError(f"{_WHERE}: X has missing or infinite values")
    t, ev, ent, w, _ = survival_arrays(time, event, entry, weights, n, where=_WHERE)
    if strata is None:
        scodes, slabels = np.zeros(n, dtype=np.intp), None
    else:
        scodes, slabels = as_codes(strata, n, "strata", where=_WHERE)
    if not ev.any():
        raise DataError(f"{_WHERE}: no events")
    names = list(fit.names)
    if terms is None:
        terms = {nm: [j] for j, nm in enumerate(names)}
    term_names = [str(k) for k in terms]
    asgn = [np.asarray(list(v), dtype=int) for v in terms.values()]
    flat = np.sort(np.concatenate(asgn)) if asgn else np.array([], int)
    if flat.size != p or np.any(flat != np.arange(p)):
        raise DataError(f"{_WHERE}: terms must partition the {p} columns of X exactly once")
    beta = np.asarray(fit.coef, dtype=float)

    # the fit's own sorted problem and its state at beta when it was built from these data
    # (coxph keeps them for this test), else the same problem built again
    cache = getattr(fit, "_problem", None) or {}
    if cache and _same_data(cache, t, ent, ev, Xa, w, scodes) and np.array_equal(cache["beta"], beta):
        prob, I, s = cache["prob"], cache["info"], cache["state"]
    else:
        prob = _CoxProblem(t, ent, ev, Xa, w, scodes, fit.ties)
        _, _, I, s = prob.evaluate(beta, info=True)
    if cache:
        cache.clear()  # as large as the data; not needed after this test

    # g(t): the transform at each row's time, centred at its mean over the event rows
    # (one stratum: the problem's row order is a stable sort of the times)
    ttimes = _transform(transform, t, ev, ent, order=prob.order if prob.nstrat == 1 else None)
    gtime = ttimes - ttimes[ev].mean()

    st, mean, h, r = prob.sub_t, s["mean"], s["h"], s["r"]
    g_row = gtime[prob.order]                       # rows in sorted order
    g_ev = g_row[prob.didx[prob.gstart]]            # g at each event time (same for all its rows)
    q = g_ev[st]                                    # per Efron/Breslow sub-step

    # score of the interactions x * g(t)
    u2 = (prob.wd * g_ev[prob.dgroup]) @ prob.Xc[prob.didx] - (prob.mw * q) @ mean

    def info_with(mult: np.ndarray) -> np.ndarray:
        """sum over sub-steps of mult * mw * V (the Cox information with a per-sub-step multiplier)."""
        hq = h * mult
        H1 = np.bincount(st, weights=hq, minlength=prob.m) if prob.efron else hq
        cumH = np.concatenate([[0.0], np.cumsum(H1)])
        coefrow = r * (cumH[prob.i_stop] if prob.no_entry_events else cumH[prob.i_stop] - cumH[prob.i_entry])
        if prob.any_c:
            H2 = np.bincount(st, weights=hq * prob.c, minlength=prob.m)
            coefrow[prob.didx] -= r[prob.didx] * H2[prob.dgroup]
        out = prob.Xc.T @ (coefrow[:, None] * prob.Xc) - (mean * (prob.mw * mult)[:, None]).T @ mean
        return (out + out.T) / 2

    Ig, Igg = info_with(q), info_with(q * q)
    imat = np.block([[I, Ig], [Ig, Igg]])
    u = np.concatenate([np.zeros(p), u2])

    rows, chisq, dfs = [], [], []
    for nm, jj in zip(term_names, asgn):
        kk = np.concatenate([np.arange(p), jj + p])
        uu = np.concatenate([np.zeros(p), u2[jj]])
        chisq.append(float(uu @ np.linalg.solve(imat[np.ix_(kk, kk)], uu)))
        dfs.append(int(jj.size))
        rows.append(nm)
    if global_test:
        chisq.append(float(u @ np.linalg.solve(imat, u)))
        dfs.append(p)
        rows.append("GLOBAL")
    chisq_a = np.array(chisq)
    table = pd.DataFrame({"chisq": chisq_a, "df": dfs, "p": chi2_sf(chisq_a, dfs)},
                         index=pd.Index(rows, name="term"))

    # --- Schoenfeld residuals, R's event order ---------------------------
    if prob.efron:
        mbar = np.zeros((prob.m, p))
        np.add.at(mbar, st, prob.f[:, None] * mean)
    else:
        mbar = mean
    resid = prob.Xc[prob.didx] - mbar[prob.dgroup]
    ev_rows = prob.order[prob.didx]                 # input rows of the deaths, (stratum, time) order
    if ent is not None:
        # R (zph2) lists tied deaths in reverse input order
        key = prob.stop_key[prob.didx]
        o = np.lexsort((-ev_rows, key))
        resid, ev_rows = resid[o], ev_rows[o]
    ev_strat = scodes[ev_rows]

    # per stratum and covariate: deaths in the stratum if the covariate varies there, else 0
    nstrat = int(scodes.max()) + 1
    used = np.zeros((nstrat, p))
    deaths = np.bincount(scodes[ev], minlength=nstrat)
    for k in range(nstrat):
        rows_k = scodes == k
        if rows_k.any():
            varies = np.ptp(Xa[rows_k], axis=0) > 0
            used[k] = np.where(varies, deaths[k], 0)
    for jj in asgn:
        if jj.size > 1:
            used[:, jj] = used[:, jj].max(axis=1, keepdims=True)
    wtmat = np.zeros((p, p))
    for k in range(nstrat):
        wtmat += np.minimum(used[k][:, None], used[k][None, :])
    vmean = I / np.where(wtmat == 0, 1.0, wtmat)
    multi = any(jj.size > 1 for jj in asgn)
    if multi:
        T = np.zeros((p, len(asgn)))
        for i, jj in enumerate(asgn):
            T[jj, i] = 1.0 if jj.size == 1 else beta[jj]
        resid = resid @ T
        vmean = T.T @ vmean @ T
        used = used[:, [int(jj[0]) for jj in asgn]]
    y = np.array(resid, dtype=float)
    for k in range(nstrat):
        cols = np.flatnonzero(used[k] > 0)
        sel = ev_strat == k
        if cols.size:
            y[np.ix_(sel, cols)] = np.linalg.solve(vmean[np.ix_(cols, cols)], y[np.ix_(sel, cols)].T).T
        other = np.setdiff1d(np.arange(y.shape[1]), cols)
        y[np.ix_(sel, other)] = np.nan
    term_coef = np.array([beta[jj[0]] if jj.size == 1 else 1.0 for jj in asgn])
    y = y + term_coef[None, :]
    return ZphResult(
        table=table, transform=transform, x=ttimes[ev_rows], time=t[ev_rows], y=y,
        var=np.linalg.inv(vmean), strata=None if slabels is None else slabels[ev_strat],
        terms=term_names, coef=beta, term_coef=term_coef,
    )
