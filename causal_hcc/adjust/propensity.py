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
``learner: logistic`` (default) is an unpenalised logistic regression fitted
by maximum likelihood with statsmodels (identical to R ``glm(family =
binomial)``). Other learners are scikit-learn classifiers named by import
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
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_hcc.base import DesignData, Option
from causal_hcc.errors import DataError, EstimationError, SpecError

TIME_VARYING_REASON = ("treatment changes over follow-up; a baseline propensity score does not apply "
                       "(use sequential_trials or clone_censor)")
CLONE_REASON = ("every patient is cloned into both arms at time zero, so there is no baseline treatment "
                "choice to model; the design's censoring weights handle the confounding of adherence")

#: distance from 0 or 1 below which a score is reported as extreme
NEAR = 1e-6

#: allow-list of learners: import path -> constructor keyword arguments
LEARNERS: dict[str, dict[str, Any]] = {
    "logistic": {},
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
    "propensity model: 'logistic' (unpenalised, statsmodels = R glm) or an allow-listed scikit-learn "
    "classifier import path", choices=tuple(LEARNERS))
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


def unit_rows(data: DesignData) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each unit, unit position of each row), units in order of first appearance."""
    _, first, inv = np.unique(data.unit, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inv]


def row_column(data: DesignData, name: str, where: str) -> np.ndarray:
    """A cohort column at row level: ``data.columns[name]`` if the design carried it,
    else ``data.cohort.column(name)[data.patient]``."""
    cols = getattr(data, "columns", None) or {}
    if name in cols:
        return np.asarray(cols[name], dtype=float)
    cohort = getattr(data, "cohort", None)
    if cohort is not None:
        try:
            col = cohort.column(name)
        except (KeyError, DataError):
            col = None
        if col is not None:
            return np.asarray(col, dtype=float)[np.asarray(data.patient)]
    raise SpecError(f"{where}: column '{name}' is not available to the design's rows")


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


def _logistic(X: np.ndarray, a: np.ndarray, names: list[str], where: str):
    """Unpenalised logistic MLE (statsmodels GLM, IRLS = R glm)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    Xc = np.column_stack([np.ones(len(a)), X])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.GLM(a, Xc, family=sm.families.Binomial()).fit(maxiter=100, tol=1e-10)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise EstimationError(f"{where}: logistic propensity model failed ({exc})") from None
    separated = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    converged = bool(getattr(res, "converged", True)) and np.all(np.isfinite(res.params))
    p = np.asarray(res.fittedvalues, dtype=float)
    return p, [float(c) for c in res.params], converged, separated


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
    coef, converged, separated = None, True, False
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
                        n_near_0_or_1=int(near.sum()), n_parameters=X.shape[1] + 1)
    if separated or near.any():
        fit.warnings.append(
            f"{where}: {int(near.sum())} of {p.size} propensity scores are within {NEAR:g} of 0 or 1"
            + (" (quasi-separation in the logistic model)" if separated else "")
            + ": positivity is violated for them")
    if not converged:
        fit.warnings.append(f"{where}: the logistic propensity model did not converge")
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
