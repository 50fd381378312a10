"""Firth-penalised logistic and Cox regression (finite estimates under separation).

Both maximise the log-likelihood plus half the log-determinant of the
Fisher information, ``pl(b) = l(b) + 0.5 log |I(b)|`` (Jeffreys-prior
penalty), which removes the first-order bias of the MLE and gives finite
estimates when the MLE is infinite (complete or quasi-complete separation
in logistic regression, monotone likelihood in Cox regression).

Logistic (:func:`firth_logistic`, = R ``logistf`` / ``brglm2`` with
``type = "MPL_Jeffreys"``): modified score ``X'(y - p + h (1/2 - p))`` with
``h`` the diagonal of the hat matrix ``W^1/2 X (X'WX)^-1 X' W^1/2``.

Cox (:func:`coxph_firth`, Heinze & Schemper 2001, R ``coxphf``): modified
score ``U_r(b) + 1/2 tr(I^-1 dI/db_r)``, where ``dI/db_r`` needs the third
moments of the covariates over each risk set; here ``tr(I^-1 S3_r)`` is the
risk-set sum of ``r_i x_ir (x_i' I^-1 x_i)``, so only first and second
moments per event time are formed. Breslow or Efron ties (``coxphf`` uses
Breslow), case weights, strata and (start, stop] rows as in
:func:`causal_hcc.core.cox.coxph`. Newton-Raphson with the information
``I(b)`` as the Hessian, steps capped at ``max_step`` and halved while the
penalised log-likelihood falls (as ``coxphf``/``logistf``).

Inference (Cox): profile penalised-likelihood confidence intervals and the
penalised likelihood-ratio test of ``b_j = 0`` (``coxphf``'s defaults), plus
the Wald SE from ``I(b)^-1`` at the estimate. With non-integer weights or
clustered rows the likelihood is not a full likelihood, so
:func:`coxph_firth` also returns the robust sandwich (dfbeta of the
unpenalised score at the penalised estimate, summed within cluster); the
caller then reports Wald intervals with it.

References
----------
Firth D. Bias reduction of maximum likelihood estimates. Biometrika
1993;80:27-38.
Heinze G, Schemper M. A solution to the problem of separation in logistic
regression. Stat Med 2002;21:2409-19.
Heinze G, Schemper M. A solution to the problem of monotone likelihood in
Cox regression. Biometrics 2001;57:114-9.
Kosmidis I, Firth D. Jeffreys-prior penalty, finiteness and shrinkage in
binomial-response generalized linear models. Biometrika 2021;108:71-82.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from causal_hcc.core._checks import as_codes, as_matrix, check_choice, survival_arrays
from causal_hcc.core._dist import chi2_ppf, chi2_sf
from causal_hcc.core.cox import _CoxProblem, _revcumsum
from causal_hcc.errors import DataError, EstimationError

__all__ = ["FirthLogisticFit", "firth_logistic", "FirthCoxFit", "coxph_firth"]


# ---------------------------------------------------------------------------
# logistic
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FirthLogisticFit:
    """Result of :func:`firth_logistic`: ``coef`` (intercept column included as given), fitted
    probabilities, penalised log-likelihood, Wald ``var`` (inverse information), ``converged``, ``n_iter``."""

    coef: np.ndarray
    fitted: np.ndarray
    loglik: float
    var: np.ndarray
    converged: bool
    n_iter: int


def _logit_pl(X, y, w, beta):
    eta = X @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    W = w * p * (1 - p)
    info = X.T @ (W[:, None] * X)
    sign, logdet = np.linalg.slogdet(info)
    ll = float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))))
    return ll + 0.5 * logdet if sign > 0 else -np.inf, p, W, info


def firth_logistic(X, y, *, weights=None, max_iter: int = 200, tol: float = 1e-10, max_step: float = 5.0
                   ) -> FirthLogisticFit:
    """Firth-penalised logistic regression (R ``logistf``, ``brglm2`` ``type = "MPL_Jeffreys"``).

    Parameters
    ----------
    X : ndarray (n, k)
        Design matrix, intercept column included.
    y : ndarray (n,)
        0/1 response.
    weights : ndarray (n,), optional
        Case weights.
    max_iter, tol, max_step
        Newton-Raphson on the modified score with the Fisher information;
        steps larger than ``max_step`` (in any coefficient) are scaled down
        (``logistf``'s ``maxstep``), halved while the penalised
        log-likelihood falls; stops when every step and every modified
        score component is below ``tol``.

    Returns
    -------
    FirthLogisticFit

    Raises
    ------
    EstimationError
        A singular information matrix (collinear columns) or no convergence.

    References
    ----------
    Firth D. Biometrika 1993;80:27-38.
    Heinze G, Schemper M. Stat Med 2002;21:2409-19.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones(y.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    k = X.shape[1]
    beta = np.zeros(k)
    pl, p, W, info = _logit_pl(X, y, w, beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            A = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            raise EstimationError("firth_logistic: singular information matrix (collinear covariates)") from None
        h = W * np.einsum("ij,jk,ik->i", X, A, X)
        score = X.T @ (w * (y - p) + h * (0.5 - p))
        step = A @ score
        big = np.max(np.abs(step))
        if big > max_step:
            step *= max_step / big
        if np.max(np.abs(step)) <= tol and np.max(np.abs(score)) <= tol:
            converged = True
            break
        new = beta + step
        pl_new, p_new, W_new, info_new = _logit_pl(X, y, w, new)
        halves = 0
        while not pl_new >= pl - 1e-12 * abs(pl) and halves < 30:
            step /= 2
            new = beta + step
            pl_new, p_new, W_new, info_new = _logit_pl(X, y, w, new)
            halves += 1
        beta, pl, p, W, info = new, pl_new, p_new, W_new, info_new
    if not converged:
        raise EstimationError(f"firth_logistic: did not converge after {max_iter} iterations")
    return FirthLogisticFit(coef=beta, fitted=p, loglik=float(pl), var=np.linalg.inv(info), converged=True,
                            n_iter=it)


# ---------------------------------------------------------------------------
# Cox
# ---------------------------------------------------------------------------
def _adjusted_sums(prob: _CoxProblem, v: np.ndarray) -> np.ndarray:
    """Per Efron/Breslow sub-step: sum of ``v`` over the risk set minus ``c`` x the sum over the tied deaths."""
    S = _revcumsum(v)[prob.pos_s]
    if prob.has_entry_part:
        S = S - (_revcumsum(v) if prob.oe is None else _revcumsum(v[prob.oe]))[prob.pos_e]
    S = S[prob.sub_t]
    if prob.any_c:
        E = np.add.reduceat(v[prob.didx], prob.gstart, axis=0)
        S = S - (prob.c.reshape((-1,) + (1,) * (v.ndim - 1))) * E[prob.sub_t]
    return S


def _cox_pl(prob: _CoxProblem, beta: np.ndarray, score: bool = True):
    """Penalised loglik, modified score, information and loglik at ``beta``."""
    Xc = prob.Xc
    with np.errstate(over="ignore", invalid="ignore"):
        eta = Xc @ beta
        r = prob.w * np.exp(eta)
        D = _adjusted_sums(prob, r)
        S1 = _adjusted_sums(prob, r[:, None] * Xc)
        S2 = _adjusted_sums(prob, (r[:, None, None] * Xc[:, :, None] * Xc[:, None, :]))
        loglik = float(prob.wd @ eta[prob.didx] - prob.mw @ np.log(D))
        m = S1 / D[:, None]
        V = S2 / D[:, None, None] - m[:, :, None] * m[:, None, :]
        info = np.einsum("s,sij->ij", prob.mw, V)
    info = (info + info.T) / 2
    if not np.all(np.isfinite(info)):
        return -np.inf, None, info, loglik
    sign, logdet = np.linalg.slogdet(info)
    if sign <= 0:
        return -np.inf, None, info, loglik
    pl = loglik + 0.5 * logdet
    if not score:
        return pl, None, info, loglik
    U = prob.wdX - prob.mw @ m
    A = np.linalg.inv(info)
    q = np.einsum("ij,jk,ik->i", Xc, A, Xc)
    T = _adjusted_sums(prob, (r * q)[:, None] * Xc)
    Q = _adjusted_sums(prob, r * q)
    Am = m @ A                                               # (s, p): A m_s
    AmS2 = np.einsum("sj,sjr->sr", Am, S2) / D[:, None]      # (A m_s)' S2_s[:, r] / D_s
    mAm = np.einsum("sj,sj->s", Am, m)
    trace = (T - m * Q[:, None]) / D[:, None] - 2 * (AmS2 - mAm[:, None] * m)
    Ustar = U + 0.5 * (prob.mw @ trace)
    return pl, Ustar, info, loglik


def _newton(prob: _CoxProblem, beta0: np.ndarray, free: np.ndarray, *, max_iter: int, tol: float,
            max_step: float):
    """Maximise the penalised loglik over the ``free`` coefficients (others fixed)."""
    beta = beta0.copy()
    pl, U, I, ll = _cox_pl(prob, beta)
    if not np.isfinite(pl):
        return beta, pl, I, ll, False, 0
    # The information I is not the Hessian of the penalised loglik: near the maximum the step
    # I^-1 U* can overshoot by more than a factor 2 (seen with small weighted samples, whose penalty
    # is large relative to the loglik), so the iterates oscillate with growing amplitude while the
    # penalised loglik changes by less than rounding and step halving never starts. A step that
    # reverses the previous one without halving its size halves a damping factor lam (kept for the
    # rest of the iterations): the iteration b + lam I^-1 U* then contracts.
    lam, prev = 1.0, None
    for it in range(1, max_iter + 1):
        Uf = U[free]
        try:
            step_f = np.linalg.solve(I[np.ix_(free, free)], Uf)
        except np.linalg.LinAlgError:
            return beta, pl, I, ll, False, it
        big = np.max(np.abs(step_f)) if step_f.size else 0.0
        if big <= tol and np.max(np.abs(Uf), initial=0.0) <= max(tol, 1e-8 * abs(pl)):
            return beta, pl, I, ll, True, it
        if prev is not None and float(step_f @ prev) < 0 and big > 0.5 * np.max(np.abs(prev)) and lam > 1e-3:
            lam /= 2
        prev = step_f.copy()
        step_f = lam * step_f
        if lam * big > max_step:
            step_f *= max_step / (lam * big)
        step = np.zeros_like(beta)
        step[free] = step_f
        new = beta + step
        pl_new, U_new, I_new, ll_new = _cox_pl(prob, new)
        halves = 0
        while not pl_new >= pl - 1e-13 * abs(pl) and halves < 40:
            step /= 2
            new = beta + step
            pl_new, U_new, I_new, ll_new = _cox_pl(prob, new)
            halves += 1
        if halves == 40:  # no ascent along the Newton direction: at the maximum up to rounding
            return beta, pl, I, ll, np.max(np.abs(Uf)) < 1e-6, it
        beta, pl, U, I, ll = new, pl_new, U_new, I_new, ll_new
    return beta, pl, I, ll, False, max_iter


@dataclass(frozen=True, eq=False)
class FirthCoxFit:
    """Result of :func:`coxph_firth`.

    Attributes
    ----------
    coef : ndarray (p,)
        Penalised log hazard ratios.
    var : ndarray (p, p)
        Inverse of the information ``I(b)`` at the estimate (Wald).
    var_robust : ndarray or None
        Robust sandwich (dfbeta at the penalised estimate, summed within
        cluster), when ``robust``.
    loglik, penalised_loglik : float
        Unpenalised and penalised log partial likelihood at the estimate.
    ci_lower, ci_upper : ndarray (p,) or None
        Profile penalised-likelihood limits for ``coef`` (log scale), when
        computed.
    p_values : ndarray (p,) or None
        Penalised likelihood-ratio test of each ``coef`` = 0, when computed.
    names, ties, n, n_events, n_iter, robust
    """

    coef: np.ndarray
    var: np.ndarray
    var_robust: np.ndarray | None
    loglik: float
    penalised_loglik: float
    ci_lower: np.ndarray | None
    ci_upper: np.ndarray | None
    p_values: np.ndarray | None
    names: list[str]
    ties: str
    n: int
    n_events: int
    n_iter: int
    robust: bool
    alpha: float = 0.05
    _prob: _CoxProblem | None = field(default=None, repr=False)

    @property
    def df(self) -> int:
        return int(self.coef.shape[0])

    @property
    def se(self) -> np.ndarray:
        v = self.var_robust if self.var_robust is not None else self.var
        return np.sqrt(np.diag(v))

    def summary(self) -> pd.DataFrame:
        """``coef, exp_coef, se, lower, upper, p`` per term (profile limits and PLR p when computed)."""
        lo = self.ci_lower if self.ci_lower is not None else np.full(self.df, np.nan)
        hi = self.ci_upper if self.ci_upper is not None else np.full(self.df, np.nan)
        pv = self.p_values if self.p_values is not None else np.full(self.df, np.nan)
        return pd.DataFrame({"coef": self.coef, "exp_coef": np.exp(self.coef), "se": self.se,
                             "lower": np.exp(lo), "upper": np.exp(hi), "p": pv},
                            index=pd.Index(self.names, name="term"))


def coxph_firth(
    time,
    event,
    X,
    *,
    entry=None,
    weights=None,
    strata=None,
    cluster=None,
    ties: str = "breslow",
    robust: bool | None = None,
    profile: bool | Sequence[int] = True,
    alpha: float = 0.05,
    max_iter: int = 200,
    tol: float = 1e-10,
    max_step: float = 0.5,
    names: Sequence[str] | None = None,
) -> FirthCoxFit:
    """Firth-penalised Cox regression (Heinze & Schemper 2001; R ``coxphf``).

    Parameters
    ----------
    time, event, X, entry, weights, strata, cluster, names
        As :func:`causal_hcc.core.cox.coxph`.
    ties : {"breslow", "efron"}
        ``coxphf`` uses Breslow; Efron is the penalised Efron likelihood.
    robust : bool or None
        Also compute the robust sandwich variance (default: when ``cluster``
        is given or the weights are not all integers, as ``coxph``).
    profile : bool or sequence of int
        Profile penalised-likelihood CIs and likelihood-ratio p-values for
        all coefficients (True), none (False) or the listed columns.
    alpha : float
        1 - confidence level of the profile intervals.
    max_iter, tol, max_step
        Newton-Raphson: at most ``max_iter`` steps, each capped at
        ``max_step`` per coefficient (``coxphf``'s ``maxstep``), stopping
        when the step and the modified score are below ``tol``.

    Returns
    -------
    FirthCoxFit

    Raises
    ------
    EstimationError
        No events, a singular information matrix, or no convergence.

    References
    ----------
    Heinze G, Schemper M. A solution to the problem of monotone likelihood
    in Cox regression. Biometrics 2001;57:114-9.
    Firth D. Biometrika 1993;80:27-38.
    """
    where = "coxph_firth"
    check_choice(ties, "ties", ("efron", "breslow"), where=where)
    if names is None and isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
    Xa = as_matrix(X, where=where)
    n, p = Xa.shape
    names = [f"x{j + 1}" for j in range(p)] if names is None else [str(s) for s in names]
    if len(names) != p:
        raise DataError(f"{where}: {len(names)} names for {p} columns of X")
    if not np.all(np.isfinite(Xa)):
        raise DataError(f"{where}: X has missing or infinite values")
    t, ev, ent, w, integer_w = survival_arrays(time, event, entry, weights, n, where=where)
    scodes = np.zeros(n, dtype=np.intp) if strata is None else as_codes(strata, n, "strata", where=where)[0]
    ccodes = None if cluster is None else as_codes(cluster, n, "cluster", where=where)[0]
    if robust is None:
        robust = cluster is not None or not integer_w
    if not ev.any():
        raise EstimationError(f"{where}: no events (event is 0 for all {n} rows); the Cox model cannot be fitted")
    prob = _CoxProblem(t, ent, ev, Xa, w, scodes, ties)
    allfree = np.ones(p, bool)
    beta, pl, I, ll, ok, it = _newton(prob, np.zeros(p), allfree, max_iter=max_iter, tol=tol, max_step=max_step)
    if not np.isfinite(pl):
        raise EstimationError(f"{where}: information matrix singular (a covariate without variation in the "
                              f"risk sets, or collinear covariates)")
    if not ok:
        raise EstimationError(f"{where}: did not converge after {max_iter} iterations")
    V = np.linalg.inv(I)
    V = (V + V.T) / 2

    var_robust = None
    if robust:
        L, _ = prob.score_residuals(beta)
        dfb_sorted = (prob.w[:, None] * L) @ V
        dfb = np.empty_like(dfb_sorted)
        dfb[prob.order] = dfb_sorted
        if ccodes is not None:
            G = np.zeros((int(ccodes.max()) + 1, p))
            np.add.at(G, ccodes, dfb)
            dfb = G
        var_robust = dfb.T @ dfb

    lo = hi = pv = None
    cols = (list(range(p)) if profile is True else [] if profile is False else [int(j) for j in profile])
    if cols:
        crit = float(chi2_ppf(1 - alpha, 1))
        lo, hi, pv = np.full(p, np.nan), np.full(p, np.nan), np.full(p, np.nan)
        se = np.sqrt(np.diag(V))
        for j in cols:
            prof = _Profile(prob, beta, j, pl, max_iter=max_iter, tol=tol, max_step=max_step)
            pv[j] = float(chi2_sf(max(prof.lr(0.0), 0.0), 1))
            lo[j] = prof.limit(-1, crit, se[j])
            hi[j] = prof.limit(+1, crit, se[j])
    return FirthCoxFit(coef=beta, var=V, var_robust=var_robust, loglik=ll, penalised_loglik=pl, ci_lower=lo,
                       ci_upper=hi, p_values=pv, names=names, ties=ties, n=n, n_events=int(ev.sum()), n_iter=it,
                       robust=bool(robust), alpha=alpha, _prob=prob)


class _Profile:
    """Profile penalised loglik of coefficient ``j``: 2 (pl_max - max_{b_j = v} pl)."""

    def __init__(self, prob, beta, j, pl_max, **kw):
        self.prob, self.beta, self.j, self.pl_max, self.kw = prob, beta, j, pl_max, kw
        self.free = np.ones(beta.size, bool)
        self.free[j] = False
        self.start = beta.copy()

    def lr(self, value: float) -> float:
        b0 = self.start.copy()
        b0[self.j] = value
        if self.free.any():
            b, pl, *_ = _newton(self.prob, b0, self.free, **self.kw)
            if np.isfinite(pl):
                self.start = b
        else:
            pl = _cox_pl(self.prob, b0, score=False)[0]
        return 2.0 * (self.pl_max - pl) if np.isfinite(pl) else np.inf

    def limit(self, direction: int, crit: float, se: float) -> float:
        b = self.beta[self.j]
        step = max(se, 0.1) if np.isfinite(se) else 1.0
        lo_v, hi_v = b, b + direction * step
        self.start = self.beta.copy()
        f_hi = self.lr(hi_v) - crit
        n = 0
        while f_hi < 0 and n < 60:
            lo_v, hi_v = hi_v, hi_v + direction * step
            step *= 1.5
            f_hi = self.lr(hi_v) - crit
            n += 1
        if f_hi < 0:
            return direction * np.inf
        self.start = self.beta.copy()
        a, c = sorted((lo_v, hi_v))
        return float(optimize.brentq(lambda v: self.lr(v) - crit, a, c, xtol=1e-12, rtol=1e-12, maxiter=200))
