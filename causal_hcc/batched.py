"""Batched whole-pipeline bootstrap of the baseline IPTW strategy.

A bootstrap replicate that resamples patients with replacement is the
original cohort with integer *multiplicity weights* (how often each patient
was drawn). Stacking B replicates gives a (B, n) matrix of multiplicities,
and every step of the IPTW pipeline is a weighted sum over patients, so all
B replicates can be computed at once with array operations:

* logistic propensity model: IRLS with the multiplicities as prior weights,
  the (B, p, p) information matrices from one (B, n) x (n, p*p) product and
  batched solves (statsmodels/R ``glm`` iteration and stopping rule);
* weights ``1/e``, ``1/(1-e)`` (or ATT/ATO, stabilised) times multiplicity;
* weighted Cox model of treatment (Efron ties, where a patient drawn k times
  counts as k tied rows, as in the resampled data): risk-set sums are
  reverse cumulative sums over the time-sorted patients, the same for every
  Newton step up to a factor ``exp(beta)``; the Newton iteration, step
  halving and R's convergence rule ``|1 - L_old / L_new| <= 1e-9`` are
  those of :func:`causal_hcc.core.cox.coxph`, run for all B at once, so each
  replicate stops at the same iterate as the per-replicate fit;
* weighted Kaplan-Meier per arm, survival at the requested times, RMST and
  median (R ``survfit``/``survmean`` rules, as :mod:`causal_hcc.core.km`).

A replicate where anything is irregular (an arm or a confounder level
missing, a singular or non-converged fit, a propensity score of 0 or 1, an
infinite coefficient) is handed to the per-replicate path, so the result of
every replicate equals the per-replicate path's (to ~1e-12; tested to 1e-10)
including its failures. Only the replicate statistics the bootstrap keeps
are computed (no robust SEs, diagnostics or tables inside replicates).

Supported: design ``baseline`` x adjustment ``iptw`` with the logistic
learner, no ``trim``/``truncate``/``score_column``/``weight_column``/``penalty``, one
row per patient (:func:`supported` says why not otherwise).

References
----------
Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall; 1993
(the bootstrap as a reweighting of the sample by multinomial counts).
Therneau TM, Grambsch PM. Modeling Survival Data. Springer; 2000 (Efron
approximation with case weights, ch. 3).
Xie J, Liu C. Adjusted Kaplan-Meier estimator and log-rank test with inverse
probability of treatment weighting for survival data. Stat Med 2005;24:3089-110.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from causal_hcc.base import Targets

__all__ = ["supported", "batched_replicates", "bootstrap_strategy_batched"]

_EPS = np.finfo(float).eps
_TOL_SQRT = np.finfo(float).eps ** 0.5


def supported(strategy: Any, cohort: Any) -> str | None:
    """None if :func:`batched_replicates` handles ``strategy``, else the reason it does not."""
    d, a = getattr(strategy, "design", None), getattr(strategy, "adjustment", None)
    if d is None or a is None or d.name != "baseline" or a.name != "iptw":
        return "only design 'baseline' x adjustment 'iptw' is batched"
    o = a.options_
    if o.get("learner", "logistic") != "logistic":
        return "only the logistic propensity learner is batched"
    if o.get("outcome_model", "cox") != "cox" or o.get("ties", "efron") != "efron":
        return "only the Cox model with Efron ties is batched"
    for k in ("trim", "truncate", "score_column", "weight_column", "penalty"):
        if o.get(k) is not None:  # penalty: the batched Cox model is the unpenalised one
            return f"option '{k}' is not batched"
    if getattr(cohort, "cluster", None) is not None and np.asarray(cohort.cluster).size:
        return "a cluster role is not batched (the cluster bootstrap resamples clusters)"
    return None


class _Problem:
    """Everything about the cohort that does not depend on the replicate."""

    def __init__(self, strategy: Any, cohort: Any, outcome: str, targets: Targets, layout: Any):
        from causal_hcc.adjust.propensity import design_matrix, unit_rows

        if strategy.confounders is not None and list(strategy.confounders) != list(cohort.confounders):
            cohort = cohort.select_confounders(strategy.confounders)
        data = strategy.design.fit(cohort, outcome).data_
        first, _ = unit_rows(data)
        n = cohort.n
        if data.n_rows != n or not np.array_equal(first, np.arange(n)):
            raise ValueError("batched bootstrap: the design must give one row per patient in cohort order")
        X, _ = design_matrix(data, first)
        self.n = n
        self.X = np.column_stack([np.ones(n), X])  # intercept first, as the per-replicate fit
        self.a = np.asarray(data.treatment, dtype=float)
        self.t = np.asarray(data.stop, dtype=float)
        self.d = np.asarray(data.event, dtype=float)
        self.arm_names = list(data.arm_names)
        o = strategy.adjustment.options_
        self.estimand, self.stabilized = o["estimand"], bool(o["stabilized"])
        self.targets, self.layout = targets, layout
        # distinct times; per-time sums of any (B, n) array by arm (all rows, deaths) with one sparse product
        self.utime = np.unique(self.t)
        K = self.K = self.utime.shape[0]
        ix = np.searchsorted(self.utime, self.t)
        arm = self.a.astype(np.int64)
        dead = np.flatnonzero(self.d > 0)
        from scipy import sparse

        rows = np.concatenate([np.arange(n), dead])
        cols = np.concatenate([ix + K * arm, 2 * K + ix[dead] + K * arm[dead]])
        self.agg = sparse.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n, 4 * K)).T.tocsr()
        self.death_cols = np.unique(ix[dead])
        # X'X products for the information matrices: upper triangle only
        iu, ju = np.triu_indices(self.X.shape[1])
        self.iu, self.ju = iu, ju
        self.XXu = self.X[:, iu] * self.X[:, ju]
        self.coef0 = None
        self.coef0 = _logistic(self, np.ones((1, n)), start=None)[2][0]  # full-sample MLE: the warm start


def _sums(P: _Problem, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct time sums of ``A`` (B, n): (all rows arm 0, arm 1, deaths arm 0, arm 1), each (B, K)."""
    S = np.asarray(P.agg @ A.T).T
    K = P.K
    return S[:, :K], S[:, K:2 * K], S[:, 2 * K:3 * K], S[:, 3 * K:]


def _risk(sv: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Weighted numbers at risk per distinct time and arm (reverse cumulative sums), each (B, K)."""
    R = np.cumsum(np.concatenate([sv[0], sv[1]], axis=0)[:, ::-1], axis=1)[:, ::-1]
    B = sv[0].shape[0]
    return R[:B], R[B:]


# ---------------------------------------------------------------------------
# propensity: batched IRLS
# ---------------------------------------------------------------------------
def _deviance(y1: np.ndarray, mu: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Binomial deviance with prior weights M (statsmodels' clipped form, for a 0/1 response)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(y1, mu, 1.0 - mu) + 1e-20
        return np.sum(M * (2 * np.log(np.maximum(1.0 / q, _EPS))), axis=1)


def _logistic(P: _Problem, M: np.ndarray, maxiter: int = 100, tol: float = 1e-10, start: Any = "point"):
    """(fitted probabilities (B, n), ok (B,), coefficients (B, p)) by IRLS with prior weights M.

    The iteration and stopping rule are :func:`causal_hcc.adjust.propensity.logistic_irls`'s
    (``|D_k - D_{k-1}| <= tol``); it starts from the full-sample MLE
    (``start="point"``) instead of ``mu = (y + 1/2) / 2``: the rule stops
    only after a step of ~1e-7 or less, so both land on the replicate's MLE
    to ~1e-13 whatever the start, and the warm start saves two or three
    iterations.
    """
    B, n = M.shape
    X, y = P.X, P.a
    y1 = y == 1
    k = X.shape[1]
    iu, ju = P.iu, P.ju
    if start == "point" and P.coef0 is not None:
        coef = np.broadcast_to(P.coef0, (B, k)).copy()
        eta = coef @ X.T
        mu = 1.0 / (1.0 + np.exp(-eta))
        first = False
    else:
        mu = np.broadcast_to((y + 0.5) / 2.0, (B, n)).copy()
        p = np.clip(mu, _EPS, 1 - _EPS)
        eta = np.log(p / (1 - p))
        coef = np.zeros((B, k))
        first = True
    dev_old = _deviance(y1, mu, M)
    done = np.zeros(B, dtype=bool)
    ok = np.ones(B, dtype=bool)
    cond = np.zeros(B)
    for _ in range(maxiter):
        p = np.minimum(np.maximum(mu, _EPS), 1 - _EPS)
        W = M * (p * (1 - p))
        Gu = W @ P.XXu
        G = np.empty((B, k, k))
        G[:, iu, ju] = Gu
        G[:, ju, iu] = Gu
        dg = np.einsum("bii->bi", G)
        good = np.all(dg > 0, axis=1) & np.all(np.isfinite(Gu), axis=1)
        ok &= good
        sc = 1.0 / np.sqrt(np.where(dg > 0, dg, 1.0))
        Gs = G * sc[:, :, None] * sc[:, None, :]
        Gs[~good] = np.eye(k)
        if first:
            z = eta + (y - mu) / p / (1 - p)
            new = sc * np.linalg.solve(Gs, (sc * ((W * z) @ X))[:, :, None])[:, :, 0]
            first = False
        else:
            new = coef + sc * np.linalg.solve(Gs, (sc * ((M * (y - mu)) @ X))[:, :, None])[:, :, 0]
        coef = np.where(done[:, None], coef, new)
        eta = coef @ X.T
        with np.errstate(over="ignore"):
            mu = 1.0 / (1.0 + np.exp(-eta))
        dev = _deviance(y1, mu, M)
        newly = ~done & (np.abs(dev_old - dev) <= tol)
        if newly.any():  # the per-replicate path uses lstsq when X'WX is ill-conditioned: hand those over
            cond[newly] = np.linalg.cond(Gs[newly])
        done |= newly
        dev_old = dev
        if done.all():
            break
    ok &= done & np.all(np.isfinite(coef), axis=1) & (cond < 1e8)
    return mu, ok, coef


def _weights(P: _Problem, e: np.ndarray, M: np.ndarray) -> np.ndarray:
    a = P.a.astype(bool)
    with np.errstate(divide="ignore"):
        if P.estimand == "ATE":
            w = np.where(a, 1.0 / e, 1.0 / (1.0 - e))
            if P.stabilized:
                pa = (M @ P.a) / M.sum(axis=1)
                w = w * np.where(a, pa[:, None], 1.0 - pa[:, None])
        elif P.estimand == "ATT":
            w = np.where(a, 1.0, e / (1.0 - e))
        else:  # ATO
            w = np.where(a, 1.0 - e, e)
    return w


# ---------------------------------------------------------------------------
# Cox (one binary covariate, Efron ties), Newton exactly as coxph
# ---------------------------------------------------------------------------
class _Cox:
    """Risk-set and death sums per distinct death time of every replicate; loglik/score/information at beta.

    Efron's sub-steps ``j = 0 .. d-1`` at a time with ``d`` tied death rows:
    ``j = 0`` is done for every (replicate, time) at once; the few
    (replicate, time) pairs with ``d >= 2`` are expanded into flat arrays of
    their sub-steps once, so an evaluation costs O(B K + number of ties).
    """

    def __init__(self, P: _Problem, V: np.ndarray, sv: tuple, sm: tuple, risk: tuple):
        cols = P.death_cols  # distinct times with a death in the cohort
        self.R0, self.R1 = risk[0][:, cols], risk[1][:, cols]
        self.D0, self.D1 = sv[2][:, cols], sv[3][:, cols]
        self.dc = (sm[2] + sm[3])[:, cols]  # tied death rows (a patient drawn k times: k rows)
        self.ev = self.dc > 0
        deadwt = self.D0 + self.D1
        self.mw = np.where(self.ev, deadwt / np.where(self.ev, self.dc, 1.0), 0.0)
        bi, ki = np.nonzero(self.dc >= 2)
        dd = self.dc[bi, ki].astype(np.int64)
        rep = dd - 1
        self.tb = np.repeat(bi, rep)
        self.tk = np.repeat(ki, rep)
        j = np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep) + 1
        self.tc = j / np.repeat(dd, rep)
        self.tmw = self.mw[self.tb, self.tk]
        self.B = V.shape[0]
        self.D0sum, self.D1sum = self.D0.sum(axis=1), self.D1.sum(axis=1)

    def evaluate(self, beta: np.ndarray):
        """Loglik, score, information at ``beta`` (B,).

        The covariate is the 0/1 treatment, not centred: the partial likelihood
        and its derivatives do not depend on centring (coxph centres for
        numerical range only; here ``|beta|`` is small and ``exp`` cannot
        overflow before the fit is declared irregular).
        """
        b = beta[:, None]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            e1 = np.exp(b)
            r1 = self.R1 * e1
            S0 = self.R0 + r1
            S0s = np.where(self.ev, S0, 1.0)  # times without a death in the replicate: mw = 0
            mean = r1 / S0s
            ll = beta * self.D1sum - np.sum(self.mw * np.log(S0s), axis=1)
            U = self.D1sum - np.sum(self.mw * mean, axis=1)
            I = np.sum(self.mw * (mean - mean * mean), axis=1)
            if self.tb.size:  # Efron sub-steps j >= 1 of tied deaths
                tb, tk, c, w = self.tb, self.tk, self.tc, self.tmw
                d1 = self.D1[tb, tk] * e1[tb, 0]
                D = S0[tb, tk] - c * (self.D0[tb, tk] + d1)
                mn = (r1[tb, tk] - c * d1) / D
                ll = ll - np.bincount(tb, weights=w * np.log(D), minlength=self.B)
                U = U - np.bincount(tb, weights=w * mn, minlength=self.B)
                I = I + np.bincount(tb, weights=w * (mn - mn * mn), minlength=self.B)
        return ll, U, I


def _cox_beta(cox: _Cox, max_iter: int = 30, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """coxph's Newton-Raphson with step halving, for every replicate; (beta, ok)."""
    B = cox.B
    beta = np.zeros(B)
    ll0, U0, I0 = cox.evaluate(beta)
    ok = np.isfinite(I0) & (I0 > 0)
    step = np.where(ok, U0 / np.where(ok, I0, 1.0), 0.0)
    best = ll0
    newbeta = beta + step
    halving = np.zeros(B)
    conv = np.zeros(B, dtype=bool)
    U, I = U0, I0
    for _ in range(max_iter):
        act = ok & ~conv
        if not act.any():
            break
        newlk, Un, In = cox.evaluate(newbeta)
        finite = np.isfinite(newlk) & np.isfinite(Un) & np.isfinite(In)
        with np.errstate(divide="ignore", invalid="ignore"):
            stop = act & finite & (np.abs(1 - best / newlk) <= tol)
        # converged: accept newbeta
        beta = np.where(stop, newbeta, beta)
        best = np.where(stop, newlk, best)
        U = np.where(stop, Un, U)
        I = np.where(stop, In, I)
        conv |= stop
        act &= ~stop
        worse = act & (~finite | (newlk < best))
        better = act & ~worse
        halving = np.where(worse, halving + 1, np.where(better, 0, halving))
        nb_worse = (newbeta + halving * beta) / (halving + 1.0)
        beta = np.where(better, newbeta, beta)
        best = np.where(better, newlk, best)
        U = np.where(better, Un, U)
        I = np.where(better, In, I)
        good_I = better & (In != 0) & np.isfinite(In)
        ok &= ~(better & ~good_I)
        nb_better = beta + np.where(good_I, Un / np.where(good_I, In, 1.0), 0.0)
        newbeta = np.where(worse, nb_worse, np.where(better, nb_better, newbeta))
    ok &= conv & (I > 0)
    # coxph's infinite-coefficient check
    with np.errstate(divide="ignore", invalid="ignore"):
        infs = np.abs(U / I)
    ok &= ~((infs > tol) & (infs > np.sqrt(tol) * np.abs(beta)))
    return beta, ok


# ---------------------------------------------------------------------------
# Kaplan-Meier per arm
# ---------------------------------------------------------------------------
def _km(P: _Problem, sv: tuple, sm: tuple, risk: tuple, arm: int):
    """(distinct times (all patients), surv of the arm (B, K), index of the arm's last drawn time (B,)).

    Times where the arm has no drawn patient have no event: the curve does not
    change there, exactly as if the time were absent (the replicate's table).
    """
    nev_w, nev_c = sv[2 + arm], sm[2 + arm]
    nrisk = risk[arm]
    drawn = sm[arm] > 0
    ev = (nev_c > 0) & (nev_w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(ev, nev_w / np.where(ev, nrisk, 1.0), 0.0)
    surv = np.cumprod(1.0 - h, axis=1)
    u = P.utime
    last = u.shape[0] - 1 - np.argmax(drawn[:, ::-1], axis=1)
    return u, surv, last


def _at(u: np.ndarray, surv: np.ndarray, last: np.ndarray, times: Sequence[float], nan_after: bool) -> np.ndarray:
    t = np.asarray(times, dtype=float)
    idx = np.searchsorted(u, t, side="right") - 1
    S = np.where(idx[None, :] < 0, 1.0, surv[:, np.maximum(idx, 0)])
    if nan_after:
        B = surv.shape[0]
        s_last = surv[np.arange(B), last]
        after = (t[None, :] > u[last][:, None]) & (s_last[:, None] > 0)
        S = np.where(after, np.nan, S)
    return S


def _rmst(u: np.ndarray, surv: np.ndarray, tau: float) -> np.ndarray:
    steps = np.concatenate([np.ones((surv.shape[0], 1)), surv[:, :-1]], axis=1)
    left = np.concatenate([[min(0.0, float(u[0]))], u[:-1]])
    rm = np.cumsum((u - left)[None, :] * steps, axis=1)
    k = int(np.searchsorted(u, tau, side="right"))
    t0 = min(0.0, float(u[0]))
    if k == 0:
        return np.full(surv.shape[0], tau - t0 + t0)
    return rm[:, k - 1] + (tau - u[k - 1]) * surv[:, k - 1] + t0


def _median(u: np.ndarray, surv: np.ndarray) -> np.ndarray:
    """R survmean's minmin on every row of ``surv``."""
    keep = surv < 0.5 + _TOL_SQRT
    anyk = keep.any(axis=1)
    i0 = np.argmax(keep, axis=1)
    B = surv.shape[0]
    y0 = surv[np.arange(B), i0]
    lower = surv < y0[:, None]
    has_lower = lower.any(axis=1)
    j = np.argmax(lower, axis=1)
    avg = (np.abs(y0 - 0.5) < _TOL_SQRT) & has_lower
    out = np.where(avg, (u[i0] + u[j]) / 2, u[i0])
    return np.where(anyk, out, np.nan)


# ---------------------------------------------------------------------------
# replicates
# ---------------------------------------------------------------------------
def _batch(P: _Problem, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replicate vectors (B, width) in the layout's order and ok flags (B,)."""
    B = M.shape[0]
    drawn = M > 0
    a = P.a
    ok = ((M @ a) > 0) & ((M @ (1 - a)) > 0)
    # a confounder constant among the drawn patients is dropped by the per-replicate design matrix:
    # hand such replicates over (a variance within 1e-12 of 0 counts as constant: safe either way)
    Xc = P.X[:, 1:]
    if Xc.shape[1]:
        cnt = M.sum(axis=1)[:, None]
        m1 = (M @ Xc) / cnt
        var = (M @ (Xc * Xc)) / cnt - m1 * m1
        ok &= np.all(var > 1e-12 * (1.0 + m1 * m1), axis=1)
    ok &= (M @ P.d) > 0
    e, ok_ps, _ = _logistic(P, M)
    ok &= ok_ps
    de = np.where(drawn, e, 0.5)
    ok &= np.all((de > 0) & (de < 1), axis=1)
    own = np.where(a[None, :] == 1, de > 1 - 1e-6, de < 1e-6)  # complete separation: all at their own arm
    ok &= ~np.all(own | ~drawn, axis=1)
    w = _weights(P, np.where(drawn, e, 0.5), M)
    V = M * w
    ok &= np.all(np.isfinite(np.where(drawn, V, 0.0)), axis=1)
    V = np.where(drawn, V, 0.0)
    # every drawn weight equal to 1 would make the per-replicate fit unweighted (model SE only: same beta)
    sv, sm = _sums(P, V), _sums(P, M)
    risk = _risk(sv)
    cox = _Cox(P, V, sv, sm, risk)
    beta, ok_cox = _cox_beta(cox)
    ok &= ok_cox
    kms = {arm: _km(P, sv, sm, risk, arm) for arm in (0, 1)}
    L = P.layout
    out = np.full((B, L.width), np.nan)
    pos = {k: i for i, k in enumerate(L.keys)}
    tg = P.targets
    for k, i in pos.items():
        measure, time, occ = k
        if occ:
            continue
        if measure == "hr":
            out[:, i] = [math.log(math.exp(b)) if math.exp(b) > 0 else math.nan for b in beta]
        elif measure == "survival_difference":
            s1 = _at(*kms[1], [time], nan_after=True)[:, 0]
            s0 = _at(*kms[0], [time], nan_after=True)[:, 0]
            out[:, i] = s1 - s0
        elif measure == "risk_ratio":   # the replicate statistic of a ratio is its log (inference._value)
            r1 = 1.0 - _at(*kms[1], [time], nan_after=True)[:, 0]
            r0 = 1.0 - _at(*kms[0], [time], nan_after=True)[:, 0]
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, i] = np.where((r1 > 0) & (r0 > 0), np.log(r1) - np.log(r0), np.nan)
        elif measure == "rmst_difference":
            out[:, i] = _rmst(kms[1][0], kms[1][1], float(time)) - _rmst(kms[0][0], kms[0][1], float(time))
        elif measure == "median_difference":
            dm = _median(kms[1][0], kms[1][1]) - _median(kms[0][0], kms[0][1])
            out[:, i] = np.where(np.isfinite(dm), dm, np.nan)
    off = len(L.keys)
    for g, t_at in zip(L.curve_groups, L.curve_times):
        arm = P.arm_names.index(g)
        out[:, off:off + len(t_at)] = _at(*kms[arm], t_at, nan_after=False)
        off += len(t_at)
    if tg.rmst_tau is None and any(k[0] == "rmst_difference" for k in L.keys):  # pragma: no cover - defensive
        ok &= False
    return out, ok


def batched_replicates(strategy: Any, cohort: Any, outcome: str, targets: Targets, point: Any, *,
                       replicates: int, seed: int, batch: int = 128, layout: Any = None) -> list[np.ndarray | str]:
    """Replicate records of ``strategy`` as :func:`causal_hcc.inference.run_replicates` gives them.

    Parameters
    ----------
    strategy, cohort, outcome, targets, point
        As :func:`causal_hcc.inference.bootstrap_strategy`; ``point`` is the
        point fit (it fixes the layout of a replicate's vector).
    replicates, seed : int
        The same replicates (same resampled patients) as the per-replicate path.
    batch : int
        Replicates computed together (memory ~ 40 * batch * n bytes).
    layout : _replicate._Layout, optional
        The replicate vector's layout (default: from ``point``).

    Returns
    -------
    list
        One entry per replicate: the vector of replicate statistics, or the
        failure reason (from the per-replicate path, which runs the
        replicates the batched arithmetic does not cover).
    """
    from causal_hcc._replicate import (_IN_REPLICATE, _Job, _Layout, _fit_replicates, clone_strategy,
                                       replicate_indices, replicate_seeds, single_threaded_blas)

    why = supported(strategy, cohort)
    if why is not None:
        raise ValueError(f"batched bootstrap: {why}")
    layout = _Layout.of(point) if layout is None else layout
    P = _Problem(strategy, cohort, outcome, targets, layout)
    seeds = replicate_seeds(seed, replicates)
    rows: list[np.ndarray | str] = []
    n = cohort.n
    with single_threaded_blas():
        for s in range(0, replicates, batch):
            ss = seeds[s:s + batch]
            M = np.stack([np.bincount(replicate_indices(q, n), minlength=n) for q in ss]).astype(float)
            vals, ok = _batch(P, M)
            for b, q in enumerate(ss):
                if ok[b]:
                    rows.append(vals[b])
                    continue
                job = _Job((strategy.label, outcome), strategy, outcome, layout)
                res: list = []
                token = _IN_REPLICATE.set(True)
                try:
                    _fit_replicates(cohort, [job], [clone_strategy(strategy)], targets, [q], n, res)
                finally:
                    _IN_REPLICATE.reset(token)
                rows.append(res[0][0])
    return rows


def bootstrap_strategy_batched(strategy: Any, cohort: Any, outcome: str, targets: Targets, point: Any, *,
                               replicates: int, seed: int, ci: str = "percentile", batch: int = 128) -> Any:
    """:func:`causal_hcc.inference.bootstrap_strategy` computed with :func:`batched_replicates`."""
    from causal_hcc._replicate import _Layout, summarise_replicates

    rows = batched_replicates(strategy, cohort, outcome, targets, point, replicates=replicates, seed=seed,
                              batch=batch)
    return summarise_replicates(point, rows, seed=seed, alpha=targets.alpha, layout=_Layout.of(point), ci=ci)
