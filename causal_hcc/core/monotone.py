"""Profile-likelihood interval of a Cox coefficient whose maximum-likelihood estimate is infinite.

Under monotone likelihood (Bryson & Johnson 1981; e.g. no events among the
treated) the partial log-likelihood keeps rising as the coefficient ``b_j``
goes to -infinity (or +infinity): the MLE does not exist, ``coxph`` stops
where the log-likelihood has converged (R warns "Loglik converged before
variable ...; coefficient may be infinite") and its Wald SE, CI and p-value
at that point mean nothing (HR 1.8e-9, CI 2.2e-10 to 1.5e-8, p = 2e-77).

The likelihood-ratio interval still exists:
``{b : 2 (l_sup - l_p(b)) <= chi2_1(1 - alpha)}``, where ``l_p(b)`` is the
profile log partial likelihood (the other coefficients maximised at
``b_j = b``) and ``l_sup`` its supremum, reached as ``b_j`` goes to
+-infinity. The interval is open on that side: ``(-inf, U]`` on the log
scale, HR in ``(0, exp(U)]`` (Heinze & Schemper 2001, section 2, who show
that the profile limits stay informative under monotone likelihood while
the Wald ones do not). It is valid where the partial likelihood is a
likelihood: unweighted rows, one patient's rows not overlapping in time.

Own code, not a library call: :func:`causal_hcc.core.cox.coxph` has no
offset, and the profile needs the Newton iteration over the other
coefficients at fixed ``b_j``; it uses the same sorted problem and
Efron/Breslow sums as ``coxph`` (:class:`causal_hcc.core.cox._CoxProblem`).
Checked against R ``coxph(... + offset(b * trt))`` profiles
(``tests/reference/core_monotone.R``).

References
----------
Bryson MC, Johnson ME. The incidence of monotone likelihood in the Cox
model. Technometrics 1981;23:381-3.
Heinze G, Schemper M. A solution to the problem of monotone likelihood in
Cox regression. Biometrics 2001;57:114-9.
Venzon DJ, Moolgavkar SH. A method for computing profile-likelihood-based
confidence intervals. Appl Stat 1988;37:87-94.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from causal_hcc.core._checks import as_codes, as_matrix, survival_arrays, timefix as _timefix
from causal_hcc.core._dist import chi2_ppf
from causal_hcc.core.cox import _CoxProblem

__all__ = ["InfiniteProfile", "infinite_coef_interval"]


@dataclass(frozen=True)
class InfiniteProfile:
    """Profile-likelihood interval of coefficient ``j`` whose MLE is infinite.

    ``direction`` is -1 when the coefficient goes to -infinity (HR -> 0), +1
    when it goes to +infinity. ``lower``/``upper`` are the limits on the
    coefficient (log-HR) scale, one of them infinite; ``loglik_sup`` the
    supremum of the partial log-likelihood; ``lr_null`` the
    likelihood-ratio statistic of ``b_j = 0`` (``2 (l_sup - l_p(0))``).
    """

    direction: int
    lower: float
    upper: float
    loglik_sup: float
    lr_null: float
    alpha: float


def _profile(prob: _CoxProblem, j: int, b: float, start: np.ndarray, *, max_iter: int = 60,
             tol: float = 1e-10) -> tuple[float, np.ndarray]:
    """``(l_p(b), beta)``: the log partial likelihood maximised over the other coefficients at ``b_j = b``.

    Newton-Raphson on the free block with step halving (as ``coxph``); a free
    coefficient that is itself infinite only makes the loglik converge, which
    is what the profile needs.
    """
    beta = np.array(start, dtype=float)
    beta[j] = b
    free = np.ones(beta.size, bool)
    free[j] = False
    if not free.any():
        return float(prob.evaluate(beta, info=False)[0]), beta
    ll, U, I, _ = prob.evaluate(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(I[np.ix_(free, free)], U[free])
        except np.linalg.LinAlgError:
            break
        new = beta.copy()
        new[free] += step
        ll_new, U_new, I_new, _ = prob.evaluate(new)
        halves = 0
        while not (np.isfinite(ll_new) and ll_new >= ll) and halves < 30:
            step /= 2
            new = beta.copy()
            new[free] += step
            ll_new, U_new, I_new, _ = prob.evaluate(new)
            halves += 1
        if halves == 30:
            break
        done = abs(1 - ll / ll_new) <= tol if ll_new != 0 else True
        beta, ll, U, I = new, ll_new, U_new, I_new
        if done:
            break
    return float(ll), beta


def infinite_coef_interval(time, event, X, coef, *, j: int = 0, entry=None, strata=None, ties: str = "efron",
                           alpha: float = 0.05, timefix: bool = True) -> InfiniteProfile:
    """Profile-likelihood interval of coefficient ``j`` of a Cox model whose MLE for it is infinite.

    Parameters
    ----------
    time, event, X, entry, strata, ties, timefix
        As :func:`causal_hcc.core.cox.coxph` (unweighted: the interval needs
        a likelihood).
    coef : array-like (p,)
        The coefficients where ``coxph`` stopped (its ``fit.coef``): their
        sign says in which direction coefficient ``j`` diverges, and they
        start the profile's Newton iterations.
    j : int
        The coefficient (default 0, the treatment).
    alpha : float
        1 - confidence level: the limit solves ``2 (l_sup - l_p(b)) = chi2_1(1 - alpha)``.

    Returns
    -------
    InfiniteProfile
        The open side is ``-inf`` (or ``+inf``); the finite limit is ``+-inf``
        too when even ``b_j = 0`` and far beyond are inside the interval
        (no information about the coefficient).
    """
    Xa = as_matrix(X, where="coxph")
    n, p = Xa.shape
    t, ev, ent, w, _ = survival_arrays(time, event, entry, None, n, where="coxph")
    if timefix:
        t, ent = _timefix(t, ent, where="coxph")
    scodes = np.zeros(n, dtype=np.intp) if strata is None else as_codes(strata, n, "strata", where="coxph")[0]
    prob = _CoxProblem(t, ent, ev, Xa, w, scodes, ties)
    beta0 = np.asarray(coef, dtype=float).copy()
    direction = -1 if beta0[j] < 0 else 1
    # coefficients are centred inside the problem: the loglik depends on beta only (not on the centring)
    far = beta0[j] + direction * 30.0
    ll_far, b_far = _profile(prob, j, far, beta0)
    ll_here, b_here = _profile(prob, j, float(beta0[j]), beta0)
    ll_sup = max(ll_far, ll_here)
    crit = float(chi2_ppf(1 - alpha, 1))
    starts = {"beta": b_here}

    def g(b: float) -> float:
        ll, beta = _profile(prob, j, b, starts["beta"])
        starts["beta"] = beta
        return 2.0 * (ll_sup - ll) - crit

    ll0, _ = _profile(prob, j, 0.0, b_here)
    lr0 = max(2.0 * (ll_sup - ll0), 0.0)
    # walk from the estimate towards the finite side until the LR statistic exceeds the critical value
    a = float(beta0[j])
    step = 1.0
    b = a - direction * step
    gb = g(b)
    k = 0
    while gb < 0 and k < 60:
        a, b = b, b - direction * step
        step *= 1.6
        gb = g(b)
        k += 1
    if gb < 0:
        limit = -direction * math.inf
    else:
        starts["beta"] = b_here
        lo, hi = sorted((a, b))
        limit = float(optimize.brentq(g, lo, hi, xtol=1e-10, rtol=1e-12, maxiter=200))
    lower, upper = (-math.inf, limit) if direction < 0 else (limit, math.inf)
    return InfiniteProfile(direction=direction, lower=lower, upper=upper, loglik_sup=float(ll_sup),
                           lr_null=float(lr0), alpha=float(alpha))
