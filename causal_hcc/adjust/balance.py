"""Balance and weight diagnostics (aggregate numbers only, never patient rows).

Conventions (cobalt ``bal.tab``):

* standardised mean difference = (weighted mean treated - weighted mean
  untreated) / SD, where SD is the pooled SD *before* adjustment,
  sqrt((var_treated + var_untreated) / 2), for every estimand, so that the
  before and after columns share one denominator. Binary variables are
  standardised too (like ``tableone``), so one 0.1 threshold applies.
* variance ratio = weighted variance treated / weighted variance untreated,
  with the reliability-weight correction sum(w) / (sum(w)^2 - sum(w^2)).
* effective sample size per arm = (sum w)^2 / sum(w^2) (Kish).

References
----------
Austin PC. Balance diagnostics for comparing the distribution of baseline
covariates between treatment groups in propensity-score matched samples.
Stat Med 2009;28:3083-107.
Austin PC, Stuart EA. Moving towards best practice when using inverse
probability of treatment weighting (IPTW) using the propensity score.
Stat Med 2015;34:3661-79.
Kish L. Survey Sampling. Wiley; 1965.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

SMD_THRESHOLD = 0.1
ESS_THRESHOLD = 20.0


def _wmean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w[:, None] * x).sum(axis=0) / w.sum()


def _wvar(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    sw, sw2 = w.sum(), (w ** 2).sum()
    m = _wmean(x, w)
    denom = sw - sw2 / sw
    if denom <= 0:
        return np.full(x.shape[1], np.nan)
    return (w[:, None] * (x - m) ** 2).sum(axis=0) / denom


def ess(w: np.ndarray) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2."""
    w = np.asarray(w, dtype=float)
    s2 = float((w ** 2).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def balance_table(X: np.ndarray, treatment: np.ndarray, names: Sequence[str],
                  weights: np.ndarray | None = None) -> dict[str, Any]:
    """SMD and variance ratio per variable, before and after weighting.

    Parameters
    ----------
    X : ndarray (n_units, p)
        Unit-level confounders (all units, before any matching or trimming).
    treatment : ndarray (n_units,)
        0/1 arm of each unit.
    names : sequence of str
        Variable names.
    weights : ndarray (n_units,), optional
        Adjustment weights (0 for units dropped by matching or trimming).

    Returns
    -------
    dict with the ``balance`` keys of the diagnostics conventions.
    """
    X = np.asarray(X, dtype=float)
    a = np.asarray(treatment).astype(bool)
    ones = np.ones(a.size)
    v1, v0 = _wvar(X[a], ones[a]), _wvar(X[~a], ones[~a])
    sd = np.sqrt((v1 + v0) / 2)

    def smd(w):
        d = _wmean(X[a], w[a]) - _wmean(X[~a], w[~a])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 0, d / sd, 0.0)

    def vr(w):
        with np.errstate(divide="ignore", invalid="ignore"):
            return _wvar(X[a], w[a]) / _wvar(X[~a], w[~a])

    out = {"variables": list(names), "smd_before": _list(smd(ones)), "variance_ratio_before": _list(vr(ones))}
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        keep = w > 0
        Xk, ak, wk = X[keep], a[keep], w[keep]
        d = _wmean(Xk[ak], wk[ak]) - _wmean(Xk[~ak], wk[~ak])
        with np.errstate(divide="ignore", invalid="ignore"):
            out["smd_after"] = _list(np.where(sd > 0, d / sd, 0.0))
            out["variance_ratio_after"] = _list(_wvar(Xk[ak], wk[ak]) / _wvar(Xk[~ak], wk[~ak]))
    return out


def _list(v: np.ndarray) -> list[float | None]:
    return [float(x) if math.isfinite(float(x)) else None for x in np.asarray(v, dtype=float)]


def propensity_histogram(score: np.ndarray, treatment: np.ndarray, *, learner: str, n_near: int,
                         bins: int = 20) -> dict[str, Any]:
    """Counts of scores per arm in ``bins`` equal bins on [0, 1] (the overlap plot)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    a = np.asarray(treatment).astype(bool)
    return {"bins": [float(e) for e in edges],
            "treated": [int(c) for c in np.histogram(score[a], edges)[0]],
            "untreated": [int(c) for c in np.histogram(score[~a], edges)[0]],
            "min": float(score.min()), "max": float(score.max()), "n_near_0_or_1": int(n_near),
            "learner": learner}


def weight_summary(w: np.ndarray, treatment: np.ndarray, *, estimand: str, n_truncated: int = 0,
                   n_trimmed: int = 0, bins: int = 20) -> dict[str, Any]:
    """Range, ESS per arm, five largest weights and a histogram of the (non-zero) weights."""
    w = np.asarray(w, dtype=float)
    a = np.asarray(treatment).astype(bool)
    pos = w[w > 0]
    counts, edges = np.histogram(pos, bins=bins)
    return {"estimand": estimand, "min": float(pos.min()), "max": float(pos.max()),
            "ess_treated": ess(w[a]), "ess_untreated": ess(w[~a]),
            "top5": [float(x) for x in np.sort(pos)[::-1][:5]],
            "n_truncated": int(n_truncated), "n_trimmed": int(n_trimmed),
            "bins": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def balance_warnings(bal: dict[str, Any], where: str) -> list[str]:
    """'max |SMD| > 0.1 after adjustment' warning, if any."""
    after = [abs(x) for x in bal.get("smd_after", []) if x is not None]
    if not after:
        return []
    i = int(np.argmax(after))
    worst = [v for v, x in zip(bal["variables"], bal["smd_after"]) if x is not None][i]
    if after[i] > SMD_THRESHOLD:
        return [f"{where}: residual imbalance after adjustment: max |SMD| = {after[i]:.3f} > {SMD_THRESHOLD} "
                f"({worst})"]
    return []


def ess_warnings(w: np.ndarray, treatment: np.ndarray, where: str) -> list[str]:
    """'ESS < 20 in an arm' warnings."""
    a = np.asarray(treatment).astype(bool)
    out = []
    for arm, m in (("treated", a), ("untreated", ~a)):
        e = ess(np.asarray(w)[m])
        if e < ESS_THRESHOLD:
            out.append(f"{where}: effective sample size in the {arm} arm is {e:.1f} < {ESS_THRESHOLD:g}")
    return out
