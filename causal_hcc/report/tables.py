"""Tables of a result as pandas DataFrames (the numbers behind the report's tables).

:func:`balance_table` is cobalt's ``bal.tab`` for one strategy: the
standardized mean difference and the variance ratio of every variable of the
propensity/outcome model before and after the adjustment.

References
----------
Greifer N. cobalt: Covariate Balance Tables and Plots. R package
(``bal.tab``: ``Diff.Un``, ``Diff.Adj``, ``V.Ratio.Un``, ``V.Ratio.Adj``,
``M.Threshold``).
Austin PC. Balance diagnostics for comparing the distribution of baseline
covariates between treatment groups in propensity-score matched samples.
*Stat Med* 2009;28:3083-3107.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["balance_table", "BALANCE_COLUMNS"]

#: columns of :func:`balance_table` (cobalt: Diff.Un, Diff.Adj, V.Ratio.Un, V.Ratio.Adj, M.Threshold)
BALANCE_COLUMNS = ("smd_before", "smd_after", "variance_ratio_before", "variance_ratio_after", "balanced")


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def balance_table(result: Any, strategy: str, outcome: str | None = None, *,
                  threshold: float = 0.1) -> pd.DataFrame:
    """Covariate balance of one strategy before and after adjustment (cobalt's ``bal.tab``).

    Parameters
    ----------
    result : AnalysisResult
    strategy : str
        The strategy's label (``result.strategies()``), e.g. ``"iptw(ATE)"``.
    outcome : str, optional
        Default: the first outcome the strategy was run on (balance does not
        depend on the outcome except through a design's eligibility).
    threshold : float
        ``balanced`` is ``|smd_after| <= threshold`` (cobalt's ``thresholds = c(m = .1)``).

    Returns
    -------
    pandas.DataFrame
        One row per variable (the model's columns: ``age``, ``stage=III``,
        ``rcs(age, 4)`` terms), index named ``variable``, columns
        :data:`BALANCE_COLUMNS`: standardized mean differences (treated minus
        untreated) and variance ratios (treated / untreated) before and after
        the adjustment (weights or matching), and whether the variable is
        balanced after it. Column names never depend on options.

    Raises
    ------
    KeyError
        No strategy with that label (the message suggests the closest one).
    ValueError
        The strategy has no balance diagnostics (an unadjusted or
        outcome-model strategy), naming those that have.
    """
    rec = result.record(strategy, outcome)
    b = rec.diagnostics.get("balance") if isinstance(rec.diagnostics, dict) else None
    if not isinstance(b, dict) or not b.get("variables"):
        have = [r.strategy for r in result.records if isinstance((r.diagnostics or {}).get("balance"), dict)
                and (r.diagnostics or {})["balance"].get("variables")]
        raise ValueError(f"strategy '{strategy}' has no balance diagnostics (it does not weight or match); "
                         f"strategies with balance: {', '.join(dict.fromkeys(have)) or 'none'}")
    var = [str(v) for v in b["variables"]]

    def col(key: str) -> list[float]:
        v = b.get(key) or []
        return [_num(v[j]) if j < len(v) else math.nan for j in range(len(var))]

    df = pd.DataFrame({"smd_before": col("smd_before"), "smd_after": col("smd_after"),
                       "variance_ratio_before": col("variance_ratio_before"),
                       "variance_ratio_after": col("variance_ratio_after")},
                      index=pd.Index(var, name="variable"))
    df["balanced"] = df["smd_after"].abs() <= threshold
    df.attrs.update({"strategy": rec.strategy, "outcome": rec.outcome, "threshold": threshold,
                     "estimand": b.get("estimand") or (rec.diagnostics.get("weights") or {}).get("estimand")})
    return df
