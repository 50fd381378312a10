"""Weighted logistic regression (R ``glm(family = binomial, weights =)``) with
the cluster-robust sandwich variance, for person-period data.

Own code rather than statsmodels because the pooled logistic models of
person-period data (outcome model, treatment-initiation and censoring weight
models) are fitted on up to millions of rows inside designs and bootstrap
replicates: one Newton step is one weighted ``X'WX`` product and a ``p x p``
solve, and statsmodels' GLM builds result objects and a final pseudo-inverse
refit on top (see :func:`causal_hcc.adjust.propensity.logistic_irls` for the
unweighted version used by the propensity models, which follows
statsmodels' iteration step for step).

The estimate is the maximum of the weighted log-likelihood
``sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)]`` (R's ``glm`` with prior
weights; with non-integer weights R warns "non-integer #successes" and
returns the same coefficients). Newton-Raphson (= IRLS) from ``beta = 0``
with step halving on the deviance, iterated until the relative change of the
deviance is below ``tol`` (1e-12 by default, tighter than R's 1e-8, so the
result is the MLE to ~1e-10 rather than R's stopping point: R references
are fitted with ``glm.control(epsilon = 1e-14)``).

Variance: ``bread = (X' diag(w p (1 - p)) X)^-1`` (model-based,
``vcov(glm)`` for integer weights) and the cluster-robust sandwich
``bread (sum_g U_g U_g') bread`` with ``U_g`` the score ``sum_{i in g} w_i
(y_i - p_i) x_i`` of cluster g, without small-sample factor (R
``sandwich::vcovCL(fit, cluster =, type = "HC0", cadjust = FALSE)``; the
same convention as ``coxph``'s robust variance).

References
----------
McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. Chapman & Hall; 1989.
Zeileis A, Köll S, Graham N. Various versatile variances: an object-oriented
implementation of clustered covariances in R. J Stat Softw 2020;95(1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_hcc.errors import EstimationError

__all__ = ["LogisticFit", "logistic_fit", "expit"]


def expit(eta: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-eta)) without overflow warnings."""
    eta = np.asarray(eta, dtype=float)
    out = np.empty_like(eta)
    pos = eta >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-eta[pos]))
    e = np.exp(eta[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@dataclass(frozen=True, eq=False)
class LogisticFit:
    """Result of :func:`logistic_fit`.

    ``coef``: coefficients (intercept first if the design matrix has one);
    ``fitted``: fitted probabilities; ``bread``: inverse weighted
    information; ``var_robust``: cluster sandwich (None without ``cluster``);
    ``score_influence``: ``(n_clusters, p)`` rows ``U_g bread`` (their cross
    product is ``var_robust``); ``cluster_codes``: cluster index of each row;
    ``separated``: some fitted probability is within 1e-10 of 0 or 1 (R glm's
    "fitted probabilities numerically 0 or 1 occurred").
    """

    coef: np.ndarray
    fitted: np.ndarray
    bread: np.ndarray
    var_robust: np.ndarray | None
    score_influence: np.ndarray | None
    cluster_codes: np.ndarray | None
    deviance: float
    n_iter: int
    converged: bool
    separated: bool = False
    names: tuple[str, ...] = ()

    @property
    def var(self) -> np.ndarray:
        return self.var_robust if self.var_robust is not None else self.bread

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))


def _deviance(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.where(y > 0, np.log(p), np.log1p(-p))
    # a sum, not ``w @ ll``: OpenBLAS's threaded ddot was 500x slower on a loaded 2-core machine
    return float(-2.0 * np.sum(w * ll))


def logistic_fit(X, y, weights=None, *, cluster=None, cluster_codes=None, tol: float = 1e-12, max_iter: int = 60,
                 names=(), where: str = "logistic model") -> LogisticFit:
    """Maximum-likelihood logistic regression with prior weights.

    Parameters
    ----------
    X : array (n, p)
        Design matrix (include the intercept column yourself).
    y : array (n,)
        0/1 response.
    weights : array (n,), optional
        Non-negative prior (case) weights.
    cluster : array (n,), optional
        Cluster labels for the robust sandwich (rows of one patient).
    cluster_codes : array (n,) of int, optional
        The same as non-negative integer codes (no sort needed); rows of
        ``score_influence`` are then the codes 0..max.
    tol : float
        Stop when ``|D_old - D| / (|D| + 0.1) < tol`` (R's rule, tighter default).
    where : str
        Prefix of error messages.

    Raises
    ------
    EstimationError
        A singular information matrix (a column without variation among
        rows with positive weight, or collinear columns) or non-convergence:
        one line. Fitted probabilities numerically 0 or 1 (R's warning) set
        ``separated`` instead.
    """
    X = np.ascontiguousarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(w))):
        raise EstimationError(f"{where}: missing or infinite values in the model data")
    beta = np.zeros(p)
    mu = np.full(n, 0.5)
    ybar = float(np.sum(w * y) / np.sum(w)) if n else 0.5
    if p and n and 0 < ybar < 1 and np.all(X[:, 0] == 1.0):   # start at the intercept-only MLE
        beta[0] = np.log(ybar / (1 - ybar))
        mu = np.full(n, ybar)
    dev = _deviance(y, mu, w)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        v = mu * (1.0 - mu)
        G = (X * (w * v)[:, None]).T @ X
        g = X.T @ (w * (y - mu))
        try:
            step = _solve(G, g)
        except np.linalg.LinAlgError:
            sep = _separation(X, y, w, names)
            if sep:
                hint = "; with so few events use the Cox model with penalty: firth" if "outcome model" in where else ""
                raise EstimationError(f"{where}: complete separation ({sep}): the maximum-likelihood estimate is "
                                      f"infinite (R glm: 'fitted probabilities numerically 0 or 1'){hint}") from None
            raise EstimationError(f"{where}: the information matrix is singular (a term without variation "
                                  f"or collinear terms{': ' + ', '.join(names) if names else ''})") from None
        # step halving on the deviance (R glm.fit's "step size truncated due to divergence")
        for _ in range(30):
            nb = beta + step
            neta = X @ nb
            nmu = expit(neta)
            ndev = _deviance(y, nmu, w)
            if np.isfinite(ndev) and ndev <= dev * (1 + 1e-15) + 1e-300:
                break
            step = step / 2.0
        change = abs(dev - ndev) / (abs(ndev) + 0.1)
        beta, mu, dev = nb, nmu, ndev
        if change < tol or np.max(np.abs(step)) < 1e-13 * (1 + np.max(np.abs(beta))):
            converged = True
            break
    if not converged:
        raise EstimationError(f"{where}: did not converge after {max_iter} iterations")
    separated = bool(np.any(((mu < 1e-10) | (mu > 1 - 1e-10)) & (w > 0)))
    v = mu * (1.0 - mu)
    G = (X * (w * v)[:, None]).T @ X
    try:
        bread = np.linalg.inv(G)
    except np.linalg.LinAlgError:
        raise EstimationError(f"{where}: the information matrix is singular at the estimate") from None
    bread = (bread + bread.T) / 2
    var_r = infl = codes = None
    if cluster is not None or cluster_codes is not None:
        codes = np.asarray(cluster_codes) if cluster_codes is not None else \
            np.unique(np.asarray(cluster), return_inverse=True)[1].ravel()
        r = w * (y - mu)
        G_ = int(codes.max()) + 1 if n else 0
        # per-column bincount: the cluster sums of the score rows x_i w_i (y_i - mu_i) (np.add.at is ~10x slower)
        Ug = np.column_stack([np.bincount(codes, weights=X[:, j] * r, minlength=G_) for j in range(p)]) \
            if p else np.zeros((G_, 0))
        infl = Ug @ bread
        var_r = infl.T @ infl
    return LogisticFit(coef=beta, fitted=mu, bread=bread, var_robust=var_r, score_influence=infl,
                       cluster_codes=codes, deviance=dev, n_iter=it, converged=converged, separated=separated,
                       names=tuple(names))


def _separation(X: np.ndarray, y: np.ndarray, w: np.ndarray, names) -> str:
    """A 0/1 column at one of whose values every weighted row has the same outcome (no events, or only events):
    the usual reason for a singular information matrix with few events. ``""`` when there is none."""
    pos = w > 0
    for j in range(X.shape[1]):
        col = X[pos, j]
        u = np.unique(col)
        if u.size != 2 or not np.all(np.isin(u, (0.0, 1.0))):
            continue
        for lv in (1.0, 0.0):
            yy = y[pos][col == lv]
            if yy.size and (yy.max() == 0 or yy.min() == 1):
                nm = names[j] if len(names) > j else f"column {j}"
                return f"{'no events' if yy.max() == 0 else 'only events'} where '{nm}' = {lv:g}"
    return ""


def _solve(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve ``G s = g`` for a symmetric positive-definite ``G`` (scaled Cholesky), else raise."""
    d = np.diag(G)
    if not np.all(d > 0) or not np.all(np.isfinite(G)):
        raise np.linalg.LinAlgError("non-positive diagonal")
    sc = 1.0 / np.sqrt(d)
    Gs = G * sc[:, None] * sc[None, :]
    L = np.linalg.cholesky(Gs)
    if np.min(np.diag(L)) ** 2 < 1e-12:
        raise np.linalg.LinAlgError("singular")
    z = np.linalg.solve(L, sc * g)
    return sc * np.linalg.solve(L.T, z)


def logistic_fit_patterns(Zpat, pattern, y, weights=None, *, cluster_codes=None, names=(),
                          where: str = "logistic model") -> LogisticFit:
    """:func:`logistic_fit` for records whose design rows take few distinct values.

    ``Zpat`` holds the distinct design rows and ``pattern`` the row of each record. The weighted
    likelihood only depends on the weighted counts of events and non-events per pattern, so the model
    is fitted on two rows per pattern (the same MLE, bread and deviance as on the records); the
    cluster-robust sandwich then sums the record-level scores ``w_i (y_i - p_pattern) z_pattern`` within
    clusters in one pass. ``fitted`` is per record. For the pooled logistic outcome model of period data
    without covariates (treatment x period x trial: a few hundred patterns for millions of records).
    """
    Zpat = np.asarray(Zpat, dtype=float)
    pattern = np.asarray(pattern)
    # (a 0/1 response is used in its own dtype, an int8 one without a float copy of millions of records: the
    # arithmetic below upcasts it exactly; the event sums are taken over the events only, the same sums as
    # over every record of w * y, whose non-events add exact zeros)
    y = np.asarray(y)
    if y.dtype.kind not in "iuf":
        y = y.astype(float)
    w = np.ones(y.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    P = Zpat.shape[0]
    if np.all((y == 0) | (y == 1)) and np.all(np.isfinite(w)):
        ev = np.flatnonzero(y)
        w1 = np.bincount(pattern[ev], weights=w[ev], minlength=P)
    else:
        w1 = np.bincount(pattern, weights=w * y, minlength=P)
    w_0 = np.subtract(1.0, y)
    w_0 *= w                                         # (1 - y) w, in one array
    w0 = np.bincount(pattern, weights=w_0, minlength=P)
    del w_0
    keep1, keep0 = w1 > 0, w0 > 0
    Zs = np.vstack([Zpat[keep1], Zpat[keep0]])
    ys = np.r_[np.ones(int(keep1.sum())), np.zeros(int(keep0.sum()))]
    ws = np.r_[w1[keep1], w0[keep0]]
    agg = logistic_fit(Zs, ys, ws, names=names, where=where)
    mu_pat = expit(Zpat @ agg.coef)
    mu = mu_pat[pattern]
    var_r = infl = codes = None
    if cluster_codes is not None:
        codes = np.asarray(cluster_codes)
        r = np.subtract(y, mu)
        r *= w                                       # w (y - mu), in one array
        G_ = int(codes.max()) + 1 if codes.size else 0
        # the score rows z_pattern,j r_i column by column in one reused buffer (the same products; a fresh
        # array per column was a page-faulted 40 MB each at 5 million records)
        buf = np.empty(r.shape[0])
        Ug = np.empty((G_, Zpat.shape[1]))
        for j in range(Zpat.shape[1]):
            np.take(np.ascontiguousarray(Zpat[:, j]), pattern, out=buf)
            np.multiply(buf, r, out=buf)
            Ug[:, j] = np.bincount(codes, weights=buf, minlength=G_)
        infl = Ug @ agg.bread
        var_r = infl.T @ infl
    return LogisticFit(coef=agg.coef, fitted=mu, bread=agg.bread, var_robust=var_r, score_influence=infl,
                       cluster_codes=codes, deviance=agg.deviance, n_iter=agg.n_iter, converged=agg.converged,
                       separated=agg.separated, names=tuple(names))
