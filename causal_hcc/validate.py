"""Each strategy's data needs, checked before anything is fitted.

:func:`check_strategies` is what ``causal-hcc validate`` adds to loading the
spec and building the cohort, and what :func:`causal_hcc.pipeline.run_analysis`
runs before its first fit, so that a spec that validates does not fail a run
for a reason knowable in advance:

* a design whose :attr:`~causal_hcc.base.Design.requires` names
  ``treatment_time`` (``landmark``, ``time_varying``, ``sequential_trials``,
  ``clone_censor``; plug-ins declare theirs) on data without treatment timing;
* options naming an outcome or a state column (``require_event_free``,
  ``adjust_state``) that is neither;
* options naming a data column (``score_column``, ``weight_column``) that is
  missing or does not hold numbers in range;
* ``exact`` (matching) variables that are not among the strategy's
  confounders.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from causal_hcc.base import closest
from causal_hcc.errors import DataError, SpecError

__all__ = ["check_strategies", "STATE_OPTIONS", "COLUMN_OPTIONS"]

#: options whose value is an outcome name or a column of state times
STATE_OPTIONS: tuple[str, ...] = ("require_event_free", "adjust_state")
#: options whose value is a data column: (low, high, inclusive-low) bounds of its values
COLUMN_OPTIONS: dict[str, tuple[float, float, bool, str]] = {
    "score_column": (0.0, 1.0, False, "propensity scores strictly between 0 and 1"),
    "weight_column": (0.0, np.inf, True, "finite weights >= 0"),
}


def check_strategies(strategies: Sequence[Any], cohort: Any, default_confounders: Sequence[str] = ()) -> None:
    """Raise the first data need of ``strategies`` that ``cohort`` cannot meet.

    Parameters
    ----------
    strategies : sequence of StrategySpec
        Resolved strategies (:meth:`AnalysisSpec.resolved_strategies`).
    cohort : Cohort
    default_confounders : sequence of str
        The spec's confounders (a strategy without its own uses these).

    Raises
    ------
    DataError
        ``strategy 'L': design 'D' needs the role 'treatment_time' ...``;
        ``strategy 'L': option 'require_event_free' names 'x', which is
        neither an outcome (os, pfs) nor a column of the data``; a score or
        weight column that is missing or out of range.
    SpecError
        ``exact`` naming a variable that is not a confounder of the strategy.
    """
    from causal_hcc.strategies import ADJUSTMENTS, DESIGNS, load

    load()
    columns = [str(c) for c in cohort._frame.columns]
    for s in strategies:
        where = f"strategy '{s.label}'"
        dcls, acls = DESIGNS[s.design], ADJUSTMENTS[s.adjustment]
        for need in tuple(getattr(dcls, "requires", ())) + tuple(getattr(acls, "requires", ())):
            if need == "treatment_time" and cohort.treatment_time is None:
                raise DataError(f"{where}: design '{s.design}' needs the role 'treatment_time' (time zero -> "
                                "treatment) or 'treatment_date'; the roles give neither")
        opts = {**s.design_options, **s.adjustment_options}
        for name in STATE_OPTIONS:
            v = opts.get(name)
            if v is not None and v not in cohort.outcome_names and v not in columns:
                raise DataError(f"{where}: option '{name}' names '{v}', which is neither an outcome "
                                f"({', '.join(cohort.outcome_names)}) nor a column of the data"
                                f"{closest(str(v), list(cohort.outcome_names) + columns)}")
            if v is not None and v not in cohort.outcome_names:
                _numbers(cohort, v, where, name, -np.inf, np.inf, True, "times (numbers)", allow_missing=True)
        for name, (lo, hi, incl, what) in COLUMN_OPTIONS.items():
            v = opts.get(name)
            if v is None:
                continue
            if v not in columns:
                raise DataError(f"{where}: option '{name}': column '{v}' not found{closest(str(v), columns)}")
            _numbers(cohort, v, where, name, lo, hi, incl, what)
        exact = opts.get("exact") or ()
        conf = list(s.confounders if s.confounders is not None else default_confounders)
        for v in exact:
            if v not in conf:
                raise SpecError(f"{where}: option 'exact': '{v}' is not a confounder of this strategy"
                                f"{closest(str(v), conf)}; confounders: {', '.join(conf) or 'none'}")


def _numbers(cohort: Any, col: str, where: str, option: str, lo: float, hi: float, incl: bool, what: str,
             allow_missing: bool = False) -> None:
    import pandas as pd

    raw = pd.Series(cohort.column(col))
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    text = raw.notna().to_numpy() & np.isnan(vals)
    if text.any():
        first = raw[text].iloc[0]
        from causal_hcc.recode import quote

        raise DataError(f"{where}: option '{option}': column '{col}' must be numeric; found {quote(first)} "
                        f"at {_rows(cohort, text)}")
    miss = np.isnan(vals)
    if miss.any() and not allow_missing:
        raise DataError(f"{where}: option '{option}': column '{col}' has missing values at {_rows(cohort, miss)}")
    v = np.where(miss, (lo if np.isfinite(lo) else 0.0) + (0 if incl else 0.5), vals)
    bad = ~np.isfinite(v) | (v < lo) | (v > hi) | ((v == lo) & (not incl)) | ((v == hi) & np.isfinite(hi))
    if not allow_missing and bad.any():
        raise DataError(f"{where}: option '{option}': column '{col}' must hold {what}; found "
                        f"{vals[bad][0]:g} at {_rows(cohort, bad)}")


def _rows(cohort: Any, mask: np.ndarray) -> str:
    """Rows as the cohort's own messages name them: data rows from 1 (file) or index labels (DataFrame)."""
    labels = cohort._frame.index.to_numpy()[cohort._rows()][np.flatnonzero(mask)]
    from_file = cohort.source != "DataFrame"
    shown = [str(int(v) + 1) if from_file else str(v) for v in labels[:3]]
    more = f" (+{len(labels) - 3} more)" if len(labels) > 3 else ""
    word = ("data row" if len(labels) == 1 else "data rows") if from_file else "index"
    return f"{word} {', '.join(shown)}{more}"
