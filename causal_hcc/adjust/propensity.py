"""Propensity scores on DesignData: model, precomputed scores or weights.

The propensity score is the probability of the treatment arm given the
baseline confounders. It is estimated on *units* (``DesignData.unit``; one
row per patient for baseline and landmark designs) and broadcast to the
unit's rows. With sequential-trial data (``DesignData.stratum`` = the trial)
the model gets one indicator per trial besides the confounders (a common
confounder effect, trial-specific intercepts), so each trial's score is
conditional on the confounders measured at that trial's start.

Learners
--------
``learner: firth`` is the Firth-penalised logistic regression
(:func:`causal_hcc.core.firth.firth_logistic`, = R ``logistf``): under
complete or quasi-complete separation its scores stay inside (0, 1), so the
run goes on with finite weights, and the output says the unpenalised model
separated (Heinze & Schemper 2002).

``learner: logistic`` (default) is an unpenalised logistic regression fitted
by maximum likelihood (own IRLS, :func:`logistic_irls`: statsmodels' GLM
algorithm step for step, identical to R ``glm(family = binomial)``). Other learners are scikit-learn classifiers named by import
path and resolved only from :data:`LEARNERS` (an allow-list: a spec never
imports an arbitrary string). Learners with randomness get
``random_state=0``; ``sklearn.linear_model.LogisticRegression`` is built
unpenalised (``C=inf``) because scikit-learn's default L2 penalty shrinks the
model silently. Python users may pass any fitted-or-unfitted estimator with
``fit``/``predict_proba`` to :func:`fit_propensity` directly.

Precomputed scores (``score_column``) or weights (``weight_column``) are read
from a cohort column and used as given.

Scores within :data:`NEAR` of 0 or 1 are counted and reported; complete
separation (every unit's score within :data:`NEAR` of its own arm) raises
:class:`~causal_hcc.errors.EstimationError`. Trimming (drop units whose score
is outside ``[low, high]``) is an explicit option, never a default.

References
----------
Rosenbaum PR, Rubin DB. The central role of the propensity score in
observational studies for causal effects. Biometrika 1983;70:41-55.
Crump RK, Hotz VJ, Imbens GW, Mitnik OA. Dealing with limited overlap in
estimation of average treatment effects. Biometrika 2009;96:187-99.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_hcc.base import DesignData, Option
from causal_hcc.errors import DataError, EstimationError, SpecError, short
from causal_hcc._replicate import in_replicate

TIME_VARYING_REASON = ("treatment changes over follow-up; a baseline propensity score does not apply "
                       "(use sequential_trials or clone_censor)")
CLONE_REASON = ("every patient is cloned into both arms at time zero, so there is no baseline treatment "
                "choice to model; the design's censoring weights handle the confounding of adherence")

#: distance from 0 or 1 below which a score is reported as extreme
NEAR = 1e-6

#: units of the smaller arm per propensity-model parameter (intercept counted) below which
#: a warning says the model is likely overfitted (Peduzzi P et al. J Clin Epidemiol 1996;49:1373-9)
MIN_UNITS_PER_PARAMETER = 10.0

#: allow-list of learners: import path -> constructor keyword arguments
LEARNERS: dict[str, dict[str, Any]] = {
    "logistic": {},
    "firth": {},
    "sklearn.linear_model.LogisticRegression": {"C": np.inf, "max_iter": 10_000, "tol": 1e-10},
    "sklearn.ensemble.GradientBoostingClassifier": {"random_state": 0},
    "sklearn.ensemble.HistGradientBoostingClassifier": {"random_state": 0},
    "sklearn.ensemble.RandomForestClassifier": {"random_state": 0, "min_samples_leaf": 5},
    "sklearn.naive_bayes.GaussianNB": {},
    "sklearn.neural_network.MLPClassifier": {"random_state": 0, "max_iter": 2000},
}

#: options shared by every propensity-based adjustment
LEARNER_OPTION = Option(
    "learner", "str", "logistic",
    "propensity model: 'logistic' (unpenalised, = R glm), 'firth' (Firth-penalised logistic, = R logistf: "
    "finite scores under separation) or an allow-listed scikit-learn classifier import path",
    choices=tuple(LEARNERS))
SCORE_COLUMN_OPTION = Option("score_column", "str", None,
                             "cohort column holding precomputed propensity scores (used as given)", nullable=True)
TRIM_OPTION = Option("trim", "list[float]", None,
                     "[low, high]: drop units whose propensity score is outside this range (Crump 2009); "
                     "off by default", nullable=True, low=0.0, high=1.0)


@dataclass
class PropensityFit:
    """A fitted (or supplied) propensity score.

    ``unit_score``/``unit_treatment``/``unit_rows`` are per unit (units in
    order of first appearance in the rows); ``score`` is per row.
    """

    score: np.ndarray
    unit_score: np.ndarray
    unit_treatment: np.ndarray
    unit_first_row: np.ndarray
    row_unit: np.ndarray
    learner: str
    names: list[str] = field(default_factory=list)
    coef: list[float] | None = None
    converged: bool = True
    n_near_0_or_1: int = 0
    n_parameters: int = 0
    warnings: list[str] = field(default_factory=list)
    #: learner 'firth' only: whether the unpenalised logistic model separates (None otherwise)
    firth_separation: bool | None = None


def unit_rows(data: DesignData) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each unit, unit position of each row), units in order of first appearance."""
    u = np.asarray(data.unit)
    if u.ndim == 1 and u.size > 1 and u.dtype.kind in "iu" and bool(np.all(u[1:] >= u[:-1])):
        # units in non-decreasing order (sequential trials: trial, then patient): the same answer read from
        # where the unit changes, O(n); np.unique's stable argsort was 0.2-0.5 s at 5 million rows
        new = np.empty(u.size, dtype=bool)
        new[0] = True
        np.not_equal(u[1:], u[:-1], out=new[1:])
        return np.flatnonzero(new), np.cumsum(new) - 1
    _, first, inv = np.unique(u, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inv]


def row_column(data: DesignData, name: str, where: str) -> np.ndarray:
    """A cohort column at row level: ``data.columns[name]`` if the design carried it,
    else ``data.cohort.column(name)[data.patient]``."""
    cols = getattr(data, "columns", None) or {}
    if name in cols:
        return _numeric(cols[name], name, where)
    cohort = getattr(data, "cohort", None)
    if cohort is not None:
        try:
            col = cohort.column(name)
        except (KeyError, DataError):
            col = None
        if col is not None:
            return _numeric(col, name, where)[np.asarray(data.patient)]
    raise SpecError(f"{where}: column '{name}' is not available to the design's rows")


def _numeric(values: Any, name: str, where: str) -> np.ndarray:
    """``values`` as floats; text gives one line naming the column and the first bad row."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        arr = np.asarray(values, dtype=object)
        for i, v in enumerate(arr):
            try:
                float(v)
            except (TypeError, ValueError):
                raise DataError(f"{where}: column '{name}' must be numeric; found '{short(v, 40)}' at data row "
                                f"{i + 1}") from None
        raise DataError(f"{where}: column '{name}' must be numeric") from None


def design_matrix(data: DesignData, first: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Unit-level confounders (non-constant ones) plus trial indicators for stratified data."""
    X = np.asarray(data.X, dtype=float)[first]
    names = list(data.confounders)
    keep = np.ptp(X, axis=0) > 0 if X.shape[0] else np.zeros(X.shape[1], bool)
    X, names = X[:, keep], [c for c, k in zip(names, keep) if k]
    if data.stratum is not None:
        s = np.asarray(data.stratum)[first]
        levels = np.unique(s)
        ind = np.column_stack([(s == lv).astype(float) for lv in levels[1:]]) if levels.size > 1 else np.empty((s.size, 0))
        X = np.column_stack([X, ind])
        names += [f"stratum={lv}" for lv in levels[1:]]
    return X, names


def _resolve(learner: Any, where: str):
    if not isinstance(learner, str):
        if not (hasattr(learner, "fit") and hasattr(learner, "predict_proba")):
            raise SpecError(f"{where}: a learner object needs fit() and predict_proba()")
        from sklearn.base import clone
        return clone(learner)
    if learner not in LEARNERS:
        raise SpecError(f"{where}: learner '{learner}' is not on the allow-list; valid: {', '.join(LEARNERS)}")
    module, _, cls = learner.rpartition(".")
    return getattr(importlib.import_module(module), cls)(**LEARNERS[learner])


#: machine epsilon: the clipping bound of statsmodels' logit link, variance and deviance
_EPS = float(np.finfo(float).eps)


def logistic_irls(X: np.ndarray, y: np.ndarray, *, maxiter: int = 100, tol: float = 1e-10
                  ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Unpenalised logistic regression by iteratively reweighted least squares.

    Own code (not statsmodels) for speed inside the whole-pipeline bootstrap:
    at n ~ 100-3,000 statsmodels' per-call overhead (model/family/results
    objects, a final pinv refit) was ~70% of an IPTW replicate, while the
    arithmetic is a handful of n x p least-squares solves. The iteration is
    statsmodels' ``GLM(family=Binomial()).fit(maxiter, tol)`` IRLS step for
    step (same start ``mu = (y + 1/2) / 2``, same clipping of the link and
    variance at machine epsilon, same weighted least-squares solution (by
    scaled normal equations for the Newton increment when X'WX is well
    conditioned, else ``numpy.linalg.lstsq`` as statsmodels; see
    :func:`_wls_solve`), same deviance and stopping rule ``|D_k - D_{k-1}|
    <= tol``, same perfect-prediction check), so it reaches the same MLE as
    statsmodels and R ``glm(family = binomial)`` (to ~1e-13 on coefficients
    and probabilities) and takes the same path when the MLE does not exist.

    Parameters
    ----------
    X : ndarray (n, k)
        Design matrix, intercept column included.
    y : ndarray (n,)
        0/1 response.
    maxiter : int
        Maximum number of IRLS iterations.
    tol : float
        Absolute tolerance on the change of the deviance between iterations.

    Returns
    -------
    coef : ndarray (k,)
    fitted : ndarray (n,)
        Fitted probabilities ``1 / (1 + exp(-X coef))``.
    converged : bool
        The deviance criterion was met within ``maxiter`` iterations.
    separated : bool
        At some iteration every fitted probability was within 1e-8 of its
        response (statsmodels' ``PerfectSeparationWarning`` rule).

    Raises
    ------
    ValueError
        Non-finite working response or weights (statsmodels' message).
    numpy.linalg.LinAlgError
        The least-squares solve failed.

    References
    ----------
    McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. Chapman & Hall; 1989 (sec. 2.5).
    Seabold S, Perktold J. statsmodels: econometric and statistical modeling with
    Python. Proc 9th Python in Science Conference 2010 (``GLM._fit_irls``).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("exog contains inf or nans")
    mu = (y + 0.5) / 2.0
    p = np.clip(mu, _EPS, 1.0 - _EPS)
    eta = np.log(p / (1.0 - p))
    dev_old = _binomial_deviance(y, mu)
    if np.isnan(dev_old):  # pragma: no cover - cannot happen for a 0/1 response
        raise ValueError("The first guess on the deviance function returned a nan.")
    coef = np.zeros(X.shape[1])
    converged = separated = False
    first = True
    for _ in range(maxiter):
        p = np.clip(mu, _EPS, 1.0 - _EPS)
        deriv = 1.0 / (p * (1 - p))               # logit link g'(mu)
        w = 1.0 / (deriv ** 2 * (p * (1 - p)))    # 1 / (g'(mu)^2 V(mu)), as statsmodels writes it
        z = eta + deriv * (y - mu)
        w_half = np.sqrt(w)
        if not np.all(np.isfinite(w_half)):
            raise ValueError("NaN, inf or invalid value detected in weights, estimation infeasible.")
        if not np.all(np.isfinite(z)):
            raise ValueError("NaN, inf or invalid value detected in endog, estimation infeasible.")
        coef = _wls_solve(X, w, w_half, z, None if first else (coef, deriv * (y - mu)))
        first = False
        eta = X @ coef
        with np.errstate(over="ignore"):
            mu = 1.0 / (1.0 + np.exp(-eta))
        if np.all(np.abs(mu - y) <= 1e-8):
            separated = True
        dev = _binomial_deviance(y, mu)
        converged = bool(abs(dev_old - dev) <= tol)
        dev_old = dev
        if converged:
            break
    return coef, mu, converged, separated


#: largest condition number of the column-scaled X'WX for which the normal equations are used
_COND_NORMAL = 1e8


def _wls_solve(X: np.ndarray, w: np.ndarray, w_half: np.ndarray, z: np.ndarray,
               step: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The weighted least-squares solution of one IRLS iteration.

    Normal equations (X'WX, scaled to unit diagonal) when well conditioned:
    about twice as fast as an SVD least-squares solve at n ~ 3,000, which
    matters inside the bootstrap. From the second iteration on (where the
    linear predictor is X b) they are solved for the Newton increment,
    ``b + (X'WX)^-1 X'W (z - X b)`` with ``W (z - X b) = W g'(mu) (y - mu)``,
    so the rounding error shrinks with the step. Ill-conditioned or singular
    X'WX (collinear confounders): ``numpy.linalg.lstsq`` on the whitened
    system, exactly as statsmodels (minimum-norm solution).
    """
    G = X.T @ (w[:, None] * X)
    d = np.diag(G)
    if np.all(d > 0) and np.all(np.isfinite(G)):
        sc = 1.0 / np.sqrt(d)
        Gs = G * sc[:, None] * sc[None, :]
        if np.linalg.cond(Gs) < _COND_NORMAL:
            if step is None:
                return sc * np.linalg.solve(Gs, sc * (X.T @ (w * z)))
            coef, r = step
            return coef + sc * np.linalg.solve(Gs, sc * (X.T @ (w * r)))
    return np.linalg.lstsq(w_half[:, None] * X, w_half * z, rcond=-1)[0]


def _binomial_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Binomial deviance as statsmodels computes it (clipped ratios)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.clip(y / (mu + 1e-20), _EPS, np.inf)
        r0 = np.clip((1.0 - y) / (1.0 - mu + 1e-20), _EPS, np.inf)
        return float(np.sum(2 * (y * np.log(r1) + (1 - y) * np.log(r0))))


def detect_separation(X: np.ndarray, y: np.ndarray, tolerance: float = 1e-3) -> tuple[bool, np.ndarray]:
    """Whether the logistic MLE of ``y`` on ``X`` is infinite (complete or quasi-complete separation).

    The linear program of Konis (2007), as R ``detectseparation::detect_separation``
    (``"find"``): maximise the summed margins ``sum_i s_i x_i'b`` (``s_i = +1``
    for ``y = 1``, ``-1`` for ``y = 0``) subject to every unit on its own
    side, ``s_i x_i'b >= 0``, with ``b`` in ``[-1, 1]``. The MLE is infinite
    exactly when a non-zero ``b`` exists; its non-zero components are the
    directions of recession. Columns are scaled to a largest absolute value
    of 1 first (signs and zeros of ``b`` do not change; a calendar year no
    longer dwarfs the tolerance). Fitted probabilities near 0 or 1 alone are
    *not* separation: with overlapping arms the MLE is finite (R's ``glm``
    converges) and the problem is positivity.

    Parameters
    ----------
    X : ndarray (n, k)
        Design matrix, intercept column included.
    y : ndarray (n,)
        0/1 response.

    Returns
    -------
    (separated, direction) : direction is -1/0/+1 per column of ``X``.

    References
    ----------
    Konis K. Linear programming algorithms for detecting separated data in
    binary logistic regression models. DPhil thesis, University of Oxford; 2007.
    Albert A, Anderson JA. On the existence of maximum likelihood estimates in
    logistic regression models. Biometrika 1984;71:1-10.
    """
    from scipy.optimize import linprog

    X = np.asarray(X, dtype=float)
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    xs = X / scale
    sign = np.where(np.asarray(y) > 0.5, 1.0, -1.0)
    xbar = sign[:, None] * xs
    res = linprog(-xbar.sum(axis=0), A_ub=-xbar, b_ub=np.zeros(len(sign)), bounds=[(-1.0, 1.0)] * X.shape[1],
                  method="highs")
    if res.status != 0 or res.x is None:  # pragma: no cover - the LP is feasible (b = 0) and bounded
        return False, np.zeros(X.shape[1], dtype=int)
    b = np.where(np.abs(res.x) < tolerance, 0.0, res.x)
    return bool(np.any(b != 0)), np.sign(b).astype(int)


def _logistic(X: np.ndarray, a: np.ndarray, names: list[str], where: str):
    """Unpenalised logistic MLE (:func:`logistic_irls`, = statsmodels GLM = R glm)."""
    Xc = np.column_stack([np.ones(len(a)), X])
    try:
        coef, p, converged, separated = logistic_irls(Xc, a, maxiter=100, tol=1e-10)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise EstimationError(f"{where}: logistic propensity model failed ({exc})") from None
    converged = converged and bool(np.all(np.isfinite(coef)))
    return p, [float(c) for c in coef], converged, separated


def _firth(X: np.ndarray, a: np.ndarray, where: str):
    """Firth-penalised logistic scores; the flag says whether the unpenalised MLE separates (is infinite).

    Returns ``(scores, coef, separated, n_near)``: ``separated`` by the linear
    program of :func:`detect_separation` (not by fitted probabilities near 0
    or 1, which with overlapping arms are a positivity problem: R's ``glm``
    converges to a finite MLE there), ``n_near`` the unpenalised model's
    scores within :data:`NEAR` of 0 or 1.
    """
    from causal_hcc.core.firth import firth_logistic

    Xc = np.column_stack([np.ones(len(a)), X])
    f = firth_logistic(Xc, a)
    separated, n_near = False, 0
    if not in_replicate():
        try:
            coef_ml, mu, conv, _ = logistic_irls(Xc, a, maxiter=100, tol=1e-10)
            n_near = int(np.sum((mu < NEAR) | (mu > 1 - NEAR)))
        except (np.linalg.LinAlgError, ValueError):
            n_near = 0
        separated = detect_separation(Xc, a)[0]
    return f.fitted, [float(c) for c in f.coef], separated, n_near


def fit_propensity(data: DesignData, *, learner: Any = "logistic", score_column: str | None = None,
                   where: str = "propensity") -> PropensityFit:
    """Propensity score per unit and per row of ``data``.

    Parameters
    ----------
    data : DesignData
        Rows from a design; the model is fitted on one row per unit.
    learner : str or estimator
        ``"logistic"``, an allow-listed import path (:data:`LEARNERS`), or an
        object with ``fit``/``predict_proba`` (Python API only).
    score_column : str, optional
        Use the scores of this cohort column instead of fitting a model.
    where : str
        Prefix of error messages.

    Returns
    -------
    PropensityFit

    Raises
    ------
    EstimationError
        Complete separation, a score outside (0, 1), or a failed fit.

    References
    ----------
    Rosenbaum PR, Rubin DB. Biometrika 1983;70:41-55.
    """
    first, row_unit = unit_rows(data)
    a = np.asarray(data.treatment, dtype=float)[first]
    if a.min() == a.max():
        raise EstimationError(f"{where}: only one arm present; a propensity score needs both arms")
    X, names = design_matrix(data, first)
    coef, converged, separated, firth_flag, n_near_ml = None, True, False, None, 0
    if score_column is not None:
        p = row_column(data, score_column, where)[first]
        if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            bad = int(np.flatnonzero(~(np.isfinite(p) & (p >= 0) & (p <= 1)))[0])
            raise DataError(f"{where}: column '{score_column}' must hold probabilities in [0, 1] "
                            f"(first offending unit at row {int(first[bad])})")
        label = f"column:{score_column}"
    elif isinstance(learner, str) and learner == "logistic":
        p, coef, converged, separated = _logistic(X, a, names, where)
        label = "logistic"
    elif isinstance(learner, str) and learner == "firth":
        p, coef, firth_flag, n_near_ml = _firth(X, a, where)
        label = "firth"
    else:
        est = _resolve(learner, where)
        try:
            est.fit(X, a.astype(int))
            classes = list(est.classes_)
            p = np.asarray(est.predict_proba(X), dtype=float)[:, classes.index(1)]
        except Exception as exc:  # sklearn raises many types; report them in one line
            raise EstimationError(f"{where}: learner {type(est).__name__} failed ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        label = learner if isinstance(learner, str) else type(est).__module__ + "." + type(est).__name__
        if hasattr(est, "coef_"):
            coef = [float(c) for c in np.ravel(getattr(est, "intercept_", [0.0]))] + [float(c) for c in np.ravel(est.coef_)]
    near = (p < NEAR) | (p > 1 - NEAR)
    own_arm = np.where(a == 1, p > 1 - NEAR, p < NEAR)
    if np.all(own_arm):
        raise EstimationError(f"{where}: complete separation: the confounders predict treatment perfectly "
                              f"(every score within {NEAR:g} of its own arm); no overlap to compare")
    fit = PropensityFit(score=p[row_unit], unit_score=p, unit_treatment=a.astype(np.int8), unit_first_row=first,
                        row_unit=row_unit, learner=label, names=names, coef=coef, converged=bool(converged),
                        n_near_0_or_1=int(near.sum()), n_parameters=X.shape[1] + 1, firth_separation=firth_flag)
    if in_replicate():  # a bootstrap replicate reads only the estimates: its warnings would be discarded
        return fit
    if firth_flag:
        fit.warnings.append(f"{where}: the unpenalised logistic propensity model separates (its MLE is infinite); "
                            f"the Firth-penalised scores are finite, but the arms barely overlap")
    elif n_near_ml:
        fit.warnings.append(f"{where}: {n_near_ml} of {p.size} scores of the unpenalised logistic propensity model "
                            f"are within {NEAR:g} of 0 or 1 (no separation: its MLE is finite): positivity is "
                            "violated for them")
    if label == "logistic" and (separated or near.any() or not converged):
        # the IRLS flag catches complete separation only; the linear program also quasi-complete
        separated = detect_separation(np.column_stack([np.ones(len(a)), X]), a)[0]
    if separated or near.any():
        fit.warnings.append(
            f"{where}: {int(near.sum())} of {p.size} propensity scores are within {NEAR:g} of 0 or 1"
            + (" (the logistic model separates: its MLE is infinite)" if separated else "")
            + ": positivity is violated for them")
    if not converged:
        fit.warnings.append(f"{where}: the logistic propensity model did not converge")
    small = int(min(a.sum(), (1 - a).sum()))
    k = fit.n_parameters  # intercept included, as diagnostics["propensity"]["smaller_arm_per_parameter"]
    if score_column is None and small / k < MIN_UNITS_PER_PARAMETER:
        arm = "treated" if a.sum() <= (1 - a).sum() else "untreated"
        fit.warnings.append(f"{where}: {small} {arm} units for {k} propensity-model parameters "
                            f"({small / k:.2f} per parameter < {MIN_UNITS_PER_PARAMETER:g}): the propensity model "
                            f"is likely overfitted (Peduzzi et al. 1996)")
    return fit


def trim_mask(score: np.ndarray, trim: tuple[float, float] | None, where: str) -> np.ndarray:
    """True for units kept by ``trim = (low, high)`` (all True when ``trim`` is None)."""
    if trim is None:
        return np.ones(score.shape[0], bool)
    if len(trim) != 2 or not trim[0] < trim[1]:
        raise SpecError(f"{where}: option 'trim' must be [low, high] with low < high, got {list(trim)}")
    return (score >= trim[0]) & (score <= trim[1])


def subset_rows(data: DesignData, rows: np.ndarray) -> DesignData:
    """A DesignData with only ``rows`` (bool mask or indices); the caller's object is untouched."""
    rows = np.asarray(rows)
    arrays = {}
    for f in dataclasses.fields(data):
        v = getattr(data, f.name)
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == data.n_rows:
            arrays[f.name] = v[rows]
    out = dataclasses.replace(data, **arrays, flow=list(data.flow), diagnostics=dict(data.diagnostics),
                              warnings=list(data.warnings), notes=list(data.notes))
    for extra in ("cohort",):
        if hasattr(data, extra):
            setattr(out, extra, getattr(data, extra))
    cols = getattr(data, "columns", None)
    if isinstance(cols, dict):
        out.columns = {k: np.asarray(v)[rows] for k, v in cols.items()}
    return out


def treatment_weights(score: np.ndarray, treatment: np.ndarray, estimand: str, stabilized: bool) -> np.ndarray:
    """Balancing weights from propensity scores.

    ATE: 1/e (treated), 1/(1-e) (untreated); stabilized: multiplied by the
    arm's marginal proportion. ATT: 1 and e/(1-e). ATO (overlap): 1-e and e.

    References
    ----------
    Hernán MA, Robins JM. Causal Inference: What If. Chapman & Hall/CRC; 2020 (ch. 12).
    Li F, Morgan KL, Zaslavsky AM. Balancing covariates via propensity score
    weighting. JASA 2018;113:390-400.
    """
    e = np.asarray(score, dtype=float)
    a = np.asarray(treatment).astype(bool)
    with np.errstate(divide="ignore"):
        if estimand == "ATE":
            w = np.where(a, 1.0 / e, 1.0 / (1.0 - e))
            if stabilized:
                p = a.mean()
                w = w * np.where(a, p, 1.0 - p)
        elif estimand == "ATT":
            w = np.where(a, 1.0, e / (1.0 - e))
        elif estimand == "ATO":
            w = np.where(a, 1.0 - e, e)
        else:  # pragma: no cover - options are validated
            raise SpecError(f"unknown estimand {estimand!r}")
    return w


def truncate_weights(w: np.ndarray, pct: tuple[float, float] | None, where: str) -> tuple[np.ndarray, int]:
    """Truncate (winsorise) weights at the ``pct`` = (low, high) quantiles; returns (weights, n changed)."""
    if pct is None:
        return w, 0
    if len(pct) != 2 or not pct[0] < pct[1]:
        raise SpecError(f"{where}: option 'truncate' must be [low, high] quantiles with low < high, got {list(pct)}")
    lo, hi = np.quantile(w, pct[0]), np.quantile(w, pct[1])
    out = np.clip(w, lo, hi)
    return out, int(np.sum(out != w))
