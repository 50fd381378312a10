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
  confounders;
* a landmark by which nobody (or everybody) at risk was treated, and a grace
  period within which nobody was treated (:func:`check_treated_by`): the
  fit would fail, and with times in the wrong unit (day counts declared as
  months) this is how it shows.

:func:`follow_up_warnings` flags a median follow-up implausible for the
declared ``time_unit`` (a warning, not an error).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from causal_hcc.base import closest
from causal_hcc.errors import DataError, SpecError

__all__ = ["check_strategies", "check_treated_by", "follow_up_warnings", "STATE_OPTIONS", "COLUMN_OPTIONS"]

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


def check_treated_by(strategies: Sequence[Any], cohort: Any, time_unit: str = "") -> list[str]:
    """Landmark and grace-period strategies whose arm would be empty, one line each (first found first).

    ``landmark``: among the patients at risk at ``L`` (follow-up beyond ``L``,
    free of ``require_event_free`` at ``L``), nobody or everybody treated by
    ``L``; ``clone_censor``: nobody treated within the grace period (during
    follow-up, before ``require_event_free``). Checked for every outcome.
    The message gives the treatment times, since the usual cause is a
    ``time_unit`` that does not match the data.
    """
    from causal_hcc.design._common import event_time_of, fmt_num

    if cohort.treatment_time is None:
        return []
    tt = np.asarray(cohort.treatment_time, dtype=float)
    treated = tt[np.isfinite(tt)]
    unit = f" {time_unit}" if time_unit else ""
    times = (f"treatment times: first {treated.min():g}, median {float(np.median(treated)):g}{unit}"
             if treated.size else "nobody is treated")
    problems: list[str] = []
    for s in strategies:
        opts = s.design_options
        if s.design not in ("landmark", "clone_censor"):
            continue
        ef = opts.get("require_event_free")
        state = event_time_of(cohort, ef, s.design) if ef else np.full(tt.shape, np.inf)
        for outcome in cohort.outcome_names:
            T = np.asarray(cohort.time(outcome), dtype=float)
            where = f"strategy '{s.label}', outcome '{outcome}'"
            if s.design == "landmark":
                L = float(opts.get("landmark", 3.0))
                risk = (T > L) & (state > L)
                by = risk & np.isfinite(tt) & (tt <= L)
                if risk.any() and not by.any():
                    problems.append(f"{where}: nobody at risk at the landmark {fmt_num(L)}{unit} was treated by it "
                                    f"({times}); is time_unit right?")
                elif risk.any() and by.sum() == risk.sum():
                    problems.append(f"{where}: everybody at risk at the landmark {fmt_num(L)}{unit} was treated by "
                                    f"it ({times}); there is no comparison group")
            else:
                G = float(opts.get("grace", 3.0))
                in_grace = np.isfinite(tt) & (tt < T) & (tt <= G) & (np.where(np.isfinite(tt), tt, np.inf) <= state)
                if not in_grace.any():
                    problems.append(f"{where}: nobody was treated within the grace period {fmt_num(G)}{unit} "
                                    f"({times}); is time_unit right?")
    return problems


#: median follow-up, in years, above which ``time_unit`` is doubted
IMPLAUSIBLE_YEARS = 20.0
_YEARS_PER_UNIT = {"days": 1 / 365.25, "weeks": 7 / 365.25, "months": 1 / 12, "years": 1.0}


def follow_up_warnings(cohort: Any, time_unit: str, from_dates: bool = False, default: bool = False) -> list[str]:
    """A warning when the median follow-up is implausible for ``time_unit`` (e.g. day counts declared as months).

    Times computed from dates are in the declared unit by construction and are
    not checked. Over :data:`IMPLAUSIBLE_YEARS` years of median follow-up
    (400 "months" is 33 years) the times are probably in a smaller unit.
    """
    per = _YEARS_PER_UNIT.get(str(time_unit).lower())
    if from_dates or per is None:
        return []
    T = np.asarray(cohort.time(), dtype=float)
    if T.size == 0:
        return []
    med = float(np.median(T))
    years = med * per
    if years <= IMPLAUSIBLE_YEARS:
        return []
    smaller = [u for u, f in _YEARS_PER_UNIT.items() if f < per and med * f <= IMPLAUSIBLE_YEARS]
    hint = f"are the times in {' or '.join(smaller)}? " if smaller else ""
    said = f"{time_unit} (the default)" if default else time_unit
    return [f"time_unit is {said} but the median follow-up is {med:g} {time_unit} ({years:.0f} years): "
            f"{hint}set time_unit to the unit of the times (survival_at, rmst_tau, landmark and grace are read "
            "in it)"]


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
