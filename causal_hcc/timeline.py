"""Time-varying covariates: a visits table or person-period data, joined to the cohort (R's ``tmerge``).

A :class:`~causal_hcc.cohort.Cohort` is one row per patient. Everything that
changes during follow-up lives here, in a :class:`Timeline` the cohort holds
a reference to (``cohort.timeline``; ``None`` without visits, person-period
data or a ``censored`` role): the measurements of the time-varying
confounders, each patient's eligibility for trial starts and clones
(person-period data), and loss to follow-up (``roles.censored``).

API (the contract the designs and weight models use)
----------------------------------------------------
``Timeline.columns``
    Names of the time-varying design columns: ``time_varying_confounders``
    after formula expansion (``log(afp)``, ``rcs(afp, 4)`` -> ``afp``,
    ``afp'``..., a categorical ``response`` -> ``response=PR``...).
``Timeline.at(rows, t)``
    ``(len(rows), len(columns))`` float matrix: the value of each column for
    cohort row ``rows[i]`` at time ``t[i]``, last observation carried
    forward. Always finite.
``Timeline.change_times(rows=None)``
    Sorted distinct measurement times (of ``rows``, or of everyone).
``Timeline.take(rows)``
    The timeline of ``cohort.take(rows)`` (:meth:`Cohort.take` calls it):
    integer index arrays only, no pandas, no copy of the values.
``Timeline.split(start, stop, rows, cuts=None)``
    R's ``survSplit``/``tmerge``: each interval ``(start[i], stop[i]]`` of
    cohort row ``rows[i]`` cut at that patient's own measurement times
    strictly inside it and at the common ``cuts``; returns ``interval``,
    ``row``, ``start``, ``stop``, ``last`` and ``values`` (``at(row, start)``)
    per piece.
``Timeline.eligible_at(rows, t)`` / ``Timeline.eligibility_end``
    Person-period data: a patient is eligible at ``t`` while
    ``t < eligibility_end`` (the start of the first period with
    ``eligible = 0``; ``inf`` if none). All True without an ``eligible`` role.
    Designs use :func:`eligibility_end` / :func:`eligible_at` (one place).
``Timeline.censored``
    ``(n,)`` int8: 1 = lost to follow-up at the end of follow-up (the
    ``censored`` role), 0 = an event or the administrative end; ``None``
    without the role. (An extension of the first sketch: the role is read
    in both layouts, so a timeline may have no columns.)
``Timeline.measurements()``, ``Timeline.select(confounders)``, ``Timeline.describe()``
    All measurements (row, time, values); a timeline with only some
    time-varying confounders; aggregate counts (results.json, ``validate``).
``Timeline.layout``
    ``"person_period"`` (one measurement per period; periods are the time
    unit), ``"visits"`` or None; also ``info["layout"]``.
``cohort.timeline``, ``cohort.time_varying_confounders``
    The reference, and the declared names (``()`` without a timeline).

Rules
-----
* **Last observation carried forward.** A value holds from its measurement
  time until the next measurement of that variable. A missing value in a
  visit row does not interrupt the previous one (``tmerge``'s ``na.rm``).
* **Known at t.** A value recorded at time ``t`` is known to a decision made
  at ``t``: ``at(row, t)`` includes a measurement at exactly ``t``, and the
  interval that starts at ``t`` carries it (``tmerge``'s ``tdc``).
* **Before the first measurement** a patient's value is, per variable, the
  one in the patient table when it has a column of the same name (a
  baseline value at time zero), else the patient's first measurement
  carried back to time zero; the warnings count the patients and the
  longest gap so carried. A patient with no value of a variable at all is
  refused.
* **Measurements before time zero or after the end of follow-up** are
  dropped, with a count in the warnings (a measurement at the end of
  follow-up itself is kept; it informs no interval).
* **Dates** (``visits: {date: ...}`` with date roles): time = visit date
  minus ``start_date`` in ``time_unit``, with the same-day rule of
  :mod:`causal_hcc.recode`: a visit on the start date is at time 0, a visit
  on the end date (when it differs from the start date) is put half a day
  before the end, as a treatment on that day is, so that a decision that
  day sees it.
* **Bad input** raises :class:`~causal_hcc.errors.DataError` with one line:
  ids not in the cohort, times not increasing within a patient
  (unsorted: refused, sort the file), two measurements of one patient at
  the same time, a listed column that does not exist, non-numeric values
  (a text variable must be declared under ``categorical:``), missing or
  infinite times.

Person-period data (:func:`person_period`) follow the rules in
``docs/timeline.md``: one row per patient and period, periods consecutive
whole numbers; follow-up = number of periods observed; an outcome in period
k is an event at its end; treatment starts at the start of the first
treated period and is sustained (a later switch back is counted in the
warnings); a patient is eligible while ``eligible`` is 1 and never after
its first 0; ``confounders`` take their first-period values,
``time_varying_confounders`` the current ones.

Speed: lookups are ``searchsorted`` on one sorted int64 key per measurement
(``row * (K + 1) + rank of the time``), so ``at``, ``take`` and ``split``
are vectorised numpy over all patients at once.

References
----------
.. [1] Therneau T, Crowson C, Atkinson E. Using time dependent covariates
   and time dependent coefficients in the Cox model. Vignette of the R
   package survival, 2023 (``tmerge``, ``tdc``, ``survSplit``).
.. [2] Hernán MA, Robins JM. *Causal Inference: What If*. CRC, 2020, ch. 17
   and 21 (person-time data, time-varying confounding).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from causal_hcc.base import closest
from causal_hcc.errors import DataError, SpecError

__all__ = ["Timeline", "VisitsTable", "PersonPeriod", "read_visits", "person_period", "eligibility_end",
           "eligible_at", "attach_visits"]

_SHOW = 3


# --------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------
class _Rows:
    """Names rows in messages: ``data rows 3, 7`` (file, counted from 1) or ``index 2, 6`` (DataFrame)."""

    def __init__(self, labels: np.ndarray, from_file: bool) -> None:
        self.labels = labels
        self.from_file = from_file

    def __call__(self, mask_or_pos: np.ndarray) -> str:
        a = np.asarray(mask_or_pos)
        pos = np.flatnonzero(a) if a.dtype == bool else a.astype(np.int64)
        k = len(pos)
        from causal_hcc.cohort import _level_name

        shown = [_level_name(v) for v in self.labels[pos[:_SHOW]]]
        more = f" (+{k - _SHOW} more)" if k > _SHOW else ""
        word = ("data row" if k == 1 else "data rows") if self.from_file else "index"
        return f"{word} {', '.join(shown)}{more}"

    @classmethod
    def of(cls, df: pd.DataFrame, source: str) -> "_Rows":
        if source != "DataFrame":
            return cls(np.arange(1, len(df) + 1), True)
        return cls(df.index.to_numpy(), False)


def _ids_text(values: np.ndarray) -> str:
    from causal_hcc.cohort import _fmt_value

    k = len(values)
    more = f" (+{k - _SHOW} more)" if k > _SHOW else ""
    return ", ".join(_fmt_value(v) for v in values[:_SHOW]) + more


def _variables(names: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Data columns read by declared names or formula terms, in order."""
    from causal_hcc.formula import is_term, term_variables

    out: list[str] = []
    for c in names:
        for v in (term_variables(c) if is_term(c, columns) else [c]):
            if v not in out:
                out.append(v)
    return out


def _binary(s: pd.Series, col: str, role: str, rows: _Rows, prefix: str) -> np.ndarray:
    from causal_hcc.cohort import _first_bad, _fmt_value, _to_binary

    vals, bad = _to_binary(s)
    if bad.any():
        bad = _first_bad(s, bad)
        first = s.iloc[int(np.flatnonzero(bad)[0])]
        raise DataError(f"{prefix}column '{col}' ({role}) must be 0 or 1; found {_fmt_value(first)} at {rows(bad)}")
    na = np.isnan(vals)
    if na.any():
        raise DataError(f"{prefix}column '{col}' ({role}) has {int(na.sum())} missing "
                        f"value{'s' if na.sum() > 1 else ''} at {rows(na)}")
    return vals.astype(np.int8)


def _to_float(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)``: writable float values (NaN where missing) and the non-numeric entries (booleans too)."""
    if pdt.is_bool_dtype(s.dtype):
        return np.full(len(s), np.nan), s.notna().to_numpy()
    if pdt.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        return np.array(s.to_numpy(dtype=float, na_value=np.nan), dtype=float), np.zeros(len(s), dtype=bool)
    obj = s.astype(object).to_numpy()
    isbool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in obj), dtype=bool, count=len(obj))
    vals = np.array(pd.to_numeric(pd.Series(np.where(isbool, None, obj), dtype=object), errors="coerce")
                    .to_numpy(dtype=float, na_value=np.nan), dtype=float)
    bad = (pd.notna(obj) & np.isnan(vals)) | isbool
    vals[isbool] = np.nan
    return vals, bad


def _numeric_time(s: pd.Series, col: str, role: str, rows: _Rows, prefix: str) -> np.ndarray:
    from causal_hcc.cohort import _first_bad, _fmt_value

    if pdt.is_datetime64_any_dtype(s.dtype):
        raise DataError(f"{prefix}column '{col}' ({role}) holds dates; give times from time zero, or the visit "
                        "dates as 'date:' (with the role start_date)")
    vals, bad = _to_float(s)
    if bad.any():
        bad = _first_bad(s, bad)
        first = s.iloc[int(np.flatnonzero(bad)[0])]
        raise DataError(f"{prefix}column '{col}' ({role}) must be numeric; found {_fmt_value(first)} at {rows(bad)}")
    na = np.isnan(vals)
    if na.any():
        raise DataError(f"{prefix}column '{col}' ({role}) has {int(na.sum())} missing "
                        f"value{'s' if na.sum() > 1 else ''} at {rows(na)}")
    inf = np.isinf(vals)
    if inf.any():
        raise DataError(f"{prefix}column '{col}' ({role}) has infinite values at {rows(inf)}")
    return vals


def _check_variable(s: pd.Series, col: str, categorical: bool, rows: _Rows, prefix: str, what: str) -> pd.Series:
    """A measured variable: numbers (booleans as 0/1) or, when declared categorical, levels; NaN = not measured."""
    from causal_hcc.cohort import _first_bad, _fmt_value

    if categorical or isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype(object).where(s.notna(), None)
    if pdt.is_datetime64_any_dtype(s.dtype) or pdt.is_timedelta64_dtype(s.dtype):
        raise DataError(f"{prefix}column '{col}' ({what}) holds dates or durations; give a number")
    if pdt.is_bool_dtype(s.dtype):
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index)
    vals, bad = _to_float(s)
    if bad.any():
        bad = _first_bad(s, bad)
        first = s.iloc[int(np.flatnonzero(bad)[0])]
        raise DataError(f"{prefix}column '{col}' ({what}) must be numeric; found {_fmt_value(first)} at {rows(bad)}; "
                        "declare it under categorical: to use its values as levels")
    inf = np.isinf(vals)
    if inf.any():
        raise DataError(f"{prefix}column '{col}' ({what}) has infinite values at {rows(inf)}")
    return pd.Series(vals, index=s.index)


def _apply_codes(df: pd.DataFrame, codes: Mapping[str, Mapping[str, Any]] | None,
                 lenient: Sequence[str] = ()) -> pd.DataFrame:
    """The spec's codes for the columns of ``df`` (a private copy); codes of other columns are not for it.

    A code that matches no value is refused (a typo), except for the ``lenient`` columns (those the
    patient table has too: a code such as ``{9: null}`` may occur in one table only).
    """
    from causal_hcc.recode import apply_codes, normalize_codes

    cols = [str(c) for c in df.columns]
    for c, m in normalize_codes(codes).items():
        if c not in df.columns:
            continue
        try:
            df = apply_codes(df, {c: m}, cols)
        except DataError:
            if c not in lenient:
                raise
    return df


def _first_per_group(group: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """Position of the first True of ``mask`` in each group (rows grouped, in order); -1 where none."""
    out = np.full(n_groups, -1, dtype=np.int64)
    pos = np.flatnonzero(mask)
    if pos.size:
        g, first = np.unique(group[pos], return_index=True)
        out[g] = pos[first]
    return out


# --------------------------------------------------------------------------
# the visits table, validated on its own (not yet joined to a cohort)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class VisitsTable:
    """A long table of measurements, checked on its own: ``id``, a time or a date, and measured variables.

    Built by :func:`read_visits`; joined to a cohort by :meth:`Timeline.build`.
    ``time`` (float) or ``days`` (days since 1970-01-01) is set; ``data``
    holds the measured variables (numbers, or levels for categorical ones;
    NaN / None = not measured at that visit).
    """

    ids: np.ndarray
    time: np.ndarray | None
    days: np.ndarray | None
    data: pd.DataFrame
    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    rows: _Rows
    name: str = "visits"
    id_column: str = "id"
    time_column: str = "time"

    @property
    def prefix(self) -> str:
        return f"{self.name}: "

    def __len__(self) -> int:
        return len(self.ids)


def read_visits(df: pd.DataFrame, *, id: str, time: str | None = None, date: str | None = None,
                columns: Sequence[str], codes: Mapping[str, Mapping[Any, Any]] | None = None,
                categorical: Sequence[str] = (), source: str = "DataFrame", name: str = "visits",
                shared: Sequence[str] = (), date_format: str | None = None,
                dayfirst: bool = False) -> VisitsTable:
    """Check a visits table: one row per measurement occasion of one patient.

    Parameters
    ----------
    df : pandas.DataFrame
        Never modified.
    id : str
        The patient id column (the cohort's ids).
    time, date : str
        One of them: the time from time zero (in the cohort's time unit), or
        the visit date (needs the cohort's ``start_date``).
    columns : sequence of str
        The measured variables to read.
    codes : mapping, optional
        The spec's ``codes``; those naming a column of this table are applied.
        One that matches no value is an error unless its column is in
        ``shared`` (columns the patient table has too).
    categorical : sequence of str
        Variables whose values are levels (text allowed); the others must be numbers.
    source : str
        ``"DataFrame"`` (messages cite index labels) or a file (data rows from 1).
    name : str
        Prefix of messages (``visits`` or the file name).

    Raises
    ------
    DataError
        One line: a column not found, a missing id, a missing, non-numeric or
        infinite time, a date that is not a date, a non-numeric or infinite
        value, times not increasing within a patient, two measurements of a
        patient at the same time, no rows.
    """
    prefix = f"{name}: "
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{prefix}visits must be a pandas DataFrame, got {type(df).__name__}")
    if (time is None) == (date is None):
        raise SpecError(f"{prefix}give one of 'time' or 'date'")
    tcol = time if time is not None else date
    cols = [str(c) for c in df.columns]
    columns = list(columns)
    if not columns:
        raise SpecError(f"{prefix}'columns' must list at least one measured variable")
    for role, c in [("id", id), ("time" if time is not None else "date", tcol)] + [("column", c) for c in columns]:
        if c not in df.columns:
            shown = ", ".join(cols[:30]) + (f", ... (+{len(cols) - 30} more)" if len(cols) > 30 else "")
            what = "" if role == "column" else f" ({role})"
            raise DataError(f"{prefix}column '{c}'{what} not found{closest(str(c), cols)}; columns: {shown}")
    for c in columns:
        if c in (id, tcol):
            raise SpecError(f"{prefix}column '{c}' is both a measured column and the "
                            f"{'id' if c == id else 'time'} column")
        if columns.count(c) > 1:
            raise SpecError(f"{prefix}column '{c}' is listed twice")
    if len(df) == 0:
        raise DataError(f"{prefix}the visits table has no rows")
    rows = _Rows.of(df, source)
    sub = df[[id, tcol, *columns]].copy(deep=True)
    sub.index = pd.RangeIndex(len(sub))
    try:
        sub = _apply_codes(sub, codes, lenient=shared)
    except DataError as err:
        raise DataError(f"{prefix}{err}") from None
    ids_s = sub[id]
    na = ids_s.isna().to_numpy()
    if na.any():
        raise DataError(f"{prefix}column '{id}' (id) has {int(na.sum())} missing value{'s' if na.sum() > 1 else ''} "
                        f"at {rows(na)}")
    ids = ids_s.to_numpy()
    tv = days = None
    if time is not None:
        tv = _numeric_time(sub[time], time, "time", rows, prefix)
        order_key = tv
    else:
        from causal_hcc.recode import to_days

        try:
            days = to_days(sub[date], date, "date", rows, date_format=date_format, dayfirst=dayfirst)
        except DataError as err:
            raise DataError(f"{prefix}{err}") from None
        na = np.isnan(days)
        if na.any():
            raise DataError(f"{prefix}column '{date}' (date) has {int(na.sum())} missing "
                            f"value{'s' if na.sum() > 1 else ''} at {rows(na)}")
        order_key = days
    cats = tuple(c for c in columns if c in set(categorical))
    data = pd.DataFrame({c: _check_variable(sub[c], c, c in cats, rows, prefix, "visits") for c in columns})
    cats = tuple(c for c in columns if data[c].dtype == object)
    # within a patient, times increase strictly in file order (an unsorted file is refused: the
    # order is how a reader checks the file, and a silent sort would hide a wrong id or time)
    codes_, _ = pd.factorize(ids_s)
    order = np.argsort(codes_, kind="stable")
    same = codes_[order][1:] == codes_[order][:-1]
    d = np.diff(order_key[order])
    what = "times" if time is not None else "dates"
    for mask, problem in ((same & (d < 0), "unsorted"), (same & (d == 0), "duplicated")):
        if mask.any():
            k = int(np.flatnonzero(mask)[0])
            a, b = order[k], order[k + 1]
            from causal_hcc.cohort import _fmt_value

            who = _fmt_value(ids[a])
            if problem == "unsorted":
                raise DataError(f"{prefix}{what} of id {who} are not in increasing order at "
                                f"{rows(np.array([a, b]))}; sort the visits by id and {tcol}")
            raise DataError(f"{prefix}id {who} has two measurements at the same {what[:-1]} "
                            f"({_fmt_value(sub[tcol].iloc[a])}) at {rows(np.array([a, b]))}")
    return VisitsTable(ids=ids, time=tv, days=days, data=data, columns=tuple(columns), categorical=cats, rows=rows,
                       name=name, id_column=id, time_column=tcol)


# --------------------------------------------------------------------------
# the timeline
# --------------------------------------------------------------------------
class Timeline:
    """Measurements of time-varying covariates per cohort row, with LOCF lookups and splitting.

    The low-level constructor takes the measurements already joined to the
    cohort: ``row`` (cohort row of each measurement), ``time`` and
    ``values`` (the design columns); most callers use :meth:`build` (a
    visits table or person-period data joined to a cohort) or
    :func:`attach_visits`. A twin or any other producer of a long table
    ``(id, time, values...)`` goes through :meth:`build` as well.

    Parameters
    ----------
    n : int
        Number of cohort rows.
    row, time : numpy.ndarray
        Cohort row (0..n-1) and time of each measurement; at most one
        measurement per row and time. Need not be sorted.
    values : numpy.ndarray
        ``(len(row), len(columns))`` finite floats: the design columns at
        each measurement (already carried forward where a variable was not
        measured).
    columns : sequence of str
        Names of the design columns.
    confounders : sequence of str
        The declared time-varying confounders (names or terms).
    confounder_map : mapping, optional
        Declared confounder -> its design columns.
    eligibility_end : numpy.ndarray, optional
        ``(n,)`` time at which each patient stops being eligible (``inf``:
        never within follow-up; 0: never eligible).
    censored : numpy.ndarray, optional
        ``(n,)`` 0/1: lost to follow-up at the end of follow-up.
    warnings : sequence of str
    info : mapping
        Aggregate counts (:meth:`describe`).

    Raises
    ------
    DataError
        Rows out of range, non-finite times or values, two measurements of
        a row at one time, a row without any measurement (when there are
        columns).
    """

    __slots__ = ("n", "columns", "confounders", "confounder_map", "variables", "eligibility_end", "censored",
                 "warnings", "info", "_time", "_values", "_tgrid", "_stride", "_key", "_src", "_off")

    def __init__(self, n: int, row: np.ndarray, time: np.ndarray, values: np.ndarray, columns: Sequence[str], *,
                 confounders: Sequence[str] = (), confounder_map: Mapping[str, Sequence[str]] | None = None,
                 variables: Sequence[str] = (), eligibility_end: np.ndarray | None = None,
                 censored: np.ndarray | None = None, warnings: Sequence[str] = (),
                 info: Mapping[str, Any] | None = None) -> None:
        row = np.asarray(row, dtype=np.int64)
        time = np.asarray(time, dtype=float)
        columns = tuple(str(c) for c in columns)
        values = np.asarray(values, dtype=float).reshape(len(row), len(columns))
        if row.shape != time.shape:
            raise DataError("timeline: row and time must have the same length")
        if row.size and (row.min() < 0 or row.max() >= n):
            raise DataError(f"timeline: rows must be between 0 and {n - 1}")
        if not np.all(np.isfinite(time)):
            raise DataError("timeline: measurement times must be finite")
        if not np.all(np.isfinite(values)):
            raise DataError("timeline: values must be finite (carry values forward before building)")
        d = np.diff(row)
        if np.all((d > 0) | ((d == 0) & (time[1:] >= time[:-1]))):   # sorted already (as Timeline.build hands
            row, time, values = row.copy(), time.copy(), values.copy()  # them): own copies, without the lexsort
        else:
            o = np.lexsort((time, row))
            row, time, values = row[o], time[o], values[o]
        del d
        dup = (row[1:] == row[:-1]) & (time[1:] == time[:-1])
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise DataError(f"timeline: cohort row {int(row[k])} has two measurements at time {time[k]:g}")
        off = np.searchsorted(row, np.arange(n + 1), side="left").astype(np.int64)
        if columns and np.any(np.diff(off) == 0):
            k = int(np.flatnonzero(np.diff(off) == 0)[0])
            raise DataError(f"timeline: cohort row {k} has no measurement")
        tgrid = np.unique(time)
        stride = np.int64(tgrid.size + 1)
        rank = np.searchsorted(tgrid, time, side="left").astype(np.int64) + 1
        set_ = object.__setattr__
        set_(self, "n", int(n))
        set_(self, "columns", columns)
        set_(self, "confounders", tuple(confounders))
        set_(self, "confounder_map", {k: list(v) for k, v in (confounder_map or {}).items()})
        set_(self, "variables", tuple(variables))
        set_(self, "eligibility_end", _ro(None if eligibility_end is None else np.asarray(eligibility_end, float)))
        set_(self, "censored", _ro(None if censored is None else np.asarray(censored, dtype=np.int8)))
        set_(self, "warnings", list(warnings))
        set_(self, "info", dict(info or {}))
        set_(self, "_time", _ro(time))
        set_(self, "_values", _ro(np.ascontiguousarray(values)))
        set_(self, "_tgrid", _ro(tgrid))
        set_(self, "_stride", stride)
        set_(self, "_key", _ro(row * stride + rank))
        set_(self, "_src", _ro(np.arange(row.size, dtype=np.int64)))
        set_(self, "_off", _ro(off))
        for name, a in (("eligibility_end", self.eligibility_end), ("censored", self.censored)):
            if a is not None and a.shape != (n,):
                raise DataError(f"timeline: {name} must have one value per cohort row ({n})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Timeline is immutable; cannot set '{name}'")

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        return (f"Timeline(n={self.n}, measurements={self.n_measurements}, columns={list(self.columns)}, "
                f"eligibility={'yes' if self.eligibility_end is not None else 'no'}, "
                f"censored={'yes' if self.censored is not None else 'no'})")

    # ------------------------------------------------------------------
    # lookups
    # ------------------------------------------------------------------
    @property
    def layout(self) -> str | None:
        """``"person_period"`` (read from person-period data: one measurement per period), ``"visits"``, or
        None (no measurements: only eligibility / loss to follow-up). Also ``info["layout"]``."""
        if self.info.get("layout") == "person_period":
            return "person_period"
        return "visits" if self.columns or self.n_measurements else None

    @property
    def n_measurements(self) -> int:
        return int(self._key.size)

    def measurements(self) -> dict[str, np.ndarray]:
        """All measurements: ``row``, ``time`` and ``values``, sorted by row then time."""
        row = np.repeat(np.arange(self.n), np.diff(self._off))
        return {"row": row, "time": self._time[self._src], "values": self._values[self._src]}

    def _positions(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Index (into the sorted measurements) of the last measurement of ``rows[i]`` at or before ``t[i]``;
        the row's first measurement where there is none yet."""
        rq = np.searchsorted(self._tgrid, t, side="right")
        pos = np.searchsorted(self._key, rows * self._stride + rq, side="right") - 1
        return np.maximum(pos, self._off[rows])

    def at(self, rows: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Values of every column for cohort row ``rows[i]`` at time ``t[i]`` (LOCF; known at ``t``).

        A measurement at exactly ``t[i]`` counts. Before a patient's first
        measurement the first measurement is used (by construction it is at
        time zero whenever the patient table gave a baseline value; else the
        first measurement was carried back, see the module notes). Returns a
        new ``(len(rows), len(columns))`` float array, always finite.
        """
        rows = np.asarray(rows, dtype=np.int64)
        t = np.broadcast_to(np.asarray(t, dtype=float), rows.shape)
        if not self.columns:
            return np.empty((rows.size, 0))
        return self._values[self._src[self._positions(rows, t)]]

    def change_times(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Sorted distinct measurement times of ``rows`` (default: every row)."""
        if rows is None:
            return np.unique(self._time[self._src])
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        lo, hi = self._off[rows], self._off[rows + 1]
        return np.unique(self._time[self._src[_ranges(lo, hi)]])

    def eligible_at(self, rows: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """True where cohort row ``rows[i]`` is eligible at time ``t[i]`` (``t < eligibility_end``)."""
        rows = np.asarray(rows, dtype=np.int64)
        t = np.broadcast_to(np.asarray(t, dtype=float), rows.shape)
        if self.eligibility_end is None:
            return np.ones(rows.shape, dtype=bool)
        return t < self.eligibility_end[rows]

    # ------------------------------------------------------------------
    # resampling
    # ------------------------------------------------------------------
    def take(self, rows: np.ndarray) -> "Timeline":
        """The timeline of ``cohort.take(rows)``: row ``i`` is this timeline's row ``rows[i]`` (duplicates allowed).

        Only integer index arrays are built (keys and positions of the
        measurements); times and values stay shared.
        """
        rows = np.asarray(rows, dtype=np.int64)
        lo, hi = self._off[rows], self._off[rows + 1]
        counts = hi - lo
        off = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(counts, out=off[1:])
        pos = _ranges(lo, hi)
        rank = self._key[pos] % self._stride
        key = np.repeat(np.arange(rows.size, dtype=np.int64), counts) * self._stride + rank
        new = object.__new__(Timeline)
        set_ = object.__setattr__
        for name in self.__slots__:
            set_(new, name, getattr(self, name))
        set_(new, "n", int(rows.size))
        set_(new, "_key", _ro(key))
        set_(new, "_src", _ro(self._src[pos]))
        set_(new, "_off", _ro(off))
        set_(new, "eligibility_end", _ro(self.eligibility_end[rows]) if self.eligibility_end is not None else None)
        set_(new, "censored", _ro(self.censored[rows]) if self.censored is not None else None)
        return new

    def select(self, confounders: Sequence[str]) -> "Timeline":
        """The same timeline with only the design columns of ``confounders`` (declared names)."""
        unknown = [c for c in confounders if c not in self.confounders]
        if unknown:
            raise SpecError(f"time-varying confounders {unknown} are not among the timeline's: "
                            f"{', '.join(self.confounders) or 'none'}")
        wanted = {x for c in confounders for x in self.confounder_map.get(c, ())}
        keep = [j for j, c in enumerate(self.columns) if c in wanted]
        new = object.__new__(Timeline)
        set_ = object.__setattr__
        for name in self.__slots__:
            set_(new, name, getattr(self, name))
        set_(new, "columns", tuple(self.columns[j] for j in keep))
        set_(new, "_values", _ro(np.ascontiguousarray(self._values[:, keep])))
        set_(new, "confounders", tuple(c for c in self.confounders if c in confounders))
        set_(new, "confounder_map", {k: v for k, v in self.confounder_map.items() if k in confounders})
        return new

    # ------------------------------------------------------------------
    # splitting (survSplit / tmerge)
    # ------------------------------------------------------------------
    def split(self, start: np.ndarray, stop: np.ndarray, rows: np.ndarray,
              cuts: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Cut intervals ``(start[i], stop[i]]`` of cohort rows ``rows[i]`` where a covariate may change.

        Each interval is cut at its patient's own measurement times strictly
        inside it, and at the common ``cuts`` strictly inside it (e.g. trial
        starts, the grace period, treatment-model event times), as R's
        ``tmerge`` with ``tdc`` and ``survSplit`` do. An interval with
        ``stop <= start`` is returned as one piece.

        Returns
        -------
        dict
            ``interval`` (index of the input interval), ``row`` (cohort row),
            ``start``, ``stop``, ``last`` (True on the last piece of its
            interval: the piece that carries the interval's event) and
            ``values`` (``at(row, start)``: the covariates known at the start
            of the piece), one entry per piece; pieces of an interval are
            consecutive and in time order.
        """
        a = np.asarray(start, dtype=float)
        b = np.asarray(stop, dtype=float)
        r = np.asarray(rows, dtype=np.int64)
        N = a.size
        if not (b.size == N and r.size == N):
            raise ValueError("split: start, stop and rows must have the same length")
        # own measurement times strictly inside (a, b): keys with rank in (rank(a), rank(< b)]
        ra = np.searchsorted(self._tgrid, a, side="right")
        rb = np.searchsorted(self._tgrid, b, side="left")
        lo = np.searchsorted(self._key, r * self._stride + ra, side="right")
        hi = np.searchsorted(self._key, r * self._stride + rb, side="right")
        hi = np.maximum(hi, lo)
        own = _ranges(lo, hi)
        ci = [np.repeat(np.arange(N, dtype=np.int64), hi - lo)]
        ct = [self._time[self._src[own]]]
        if cuts is not None:
            c = np.unique(np.asarray(cuts, dtype=float))
            c = c[np.isfinite(c)]
            glo = np.searchsorted(c, a, side="right")
            ghi = np.maximum(np.searchsorted(c, b, side="left"), glo)
            ci.append(np.repeat(np.arange(N, dtype=np.int64), ghi - glo))
            ct.append(c[_ranges(glo, ghi)])
        cut_i = np.concatenate(ci)
        cut_t = np.concatenate(ct)
        if len(ci) > 1:
            o = np.lexsort((cut_t, cut_i))
            cut_i, cut_t = cut_i[o], cut_t[o]
            keep = np.ones(cut_i.size, dtype=bool)
            keep[1:] = (cut_i[1:] != cut_i[:-1]) | (cut_t[1:] != cut_t[:-1])
            cut_i, cut_t = cut_i[keep], cut_t[keep]
        k = np.bincount(cut_i, minlength=N) + 1          # pieces per interval
        interval = np.repeat(np.arange(N, dtype=np.int64), k)
        ends = np.cumsum(k)
        firsts = ends - k
        s = np.empty(interval.size)
        e = np.empty(interval.size)
        inner_s = np.ones(interval.size, dtype=bool)
        inner_s[firsts] = False
        inner_e = np.ones(interval.size, dtype=bool)
        inner_e[ends - 1] = False
        s[firsts] = a
        s[inner_s] = cut_t
        e[ends - 1] = b
        e[inner_e] = cut_t
        last = ~inner_e
        prow = r[interval]
        return {"interval": interval, "row": prow, "start": s, "stop": e, "last": last,
                "values": self.at(prow, s)}

    # ------------------------------------------------------------------
    # description
    # ------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Aggregate counts only (no patient-level values): for results.json and ``validate``."""
        out: dict[str, Any] = {"patients": self.n, "columns": list(self.columns),
                               "time_varying_confounders": list(self.confounders)}
        out.update(self.info)
        if self.eligibility_end is not None:
            e = self.eligibility_end
            out["eligible_at_time_zero"] = int(np.sum(e > 0))
            out["eligibility_ends_during_follow_up"] = int(np.sum(np.isfinite(e) & (e > 0)))
        if self.censored is not None:
            out["lost_to_follow_up"] = int(self.censored.sum())
        return out

    def summary(self) -> str:
        """One line for ``causal-hcc validate``."""
        d = self.describe()
        parts = []
        if "layout" in d:
            parts.append(f"person-period: {d.get('periods', 0):,} periods of {self.n:,} patients")
        if self.columns:
            parts.append(f"time-varying {', '.join(self.confounders)} ({len(self.columns)} column"
                         f"{'s' if len(self.columns) > 1 else ''}) from {d.get('measurements', self.n_measurements):,} "
                         "measurements, carried forward")
        for key, what in (("dropped_before_time_zero", "before time zero"),
                          ("dropped_after_follow_up", "after the end of follow-up")):
            if d.get(key):
                parts.append(f"{d[key]:,} measurements {what} dropped")
        if self.eligibility_end is not None:
            parts.append(f"{d['eligible_at_time_zero']:,} eligible at time zero, eligibility ends during follow-up "
                         f"for {d['eligibility_ends_during_follow_up']:,}")
        if self.censored is not None:
            parts.append(f"{d['lost_to_follow_up']:,} lost to follow-up")
        return "; ".join(parts) if parts else "timeline: nothing time-varying"

    # ------------------------------------------------------------------
    # building
    # ------------------------------------------------------------------
    @classmethod
    def build(cls, cohort: Any, visits: VisitsTable | None = None, *, confounders: Sequence[str] = (),
              categorical: Sequence[str] = (), all_ids: np.ndarray | None = None,
              eligible_until: str | None = None, censored: str | None = None,
              info: Mapping[str, Any] | None = None, warnings: Sequence[str] = ()) -> "Timeline":
        """Join a checked visits table (and per-patient columns) to ``cohort``.

        Parameters
        ----------
        cohort : Cohort
        visits : VisitsTable, optional
            From :func:`read_visits` (or :func:`person_period`).
        confounders : sequence of str
            The time-varying confounders: measured columns or formula terms of
            them. Default: every measured column.
        categorical : sequence of str
            The spec's categorical variables (indicators ``var=level``).
        all_ids : numpy.ndarray, optional
            Ids of the whole patient table, so that visits of patients the
            cohort dropped (``missing: complete_case``) are dropped with a
            count instead of refused as unknown ids.
        eligible_until, censored : str, optional
            Columns of the cohort's data: the time eligibility ends
            (person-period data), and the loss-to-follow-up indicator
            (``roles.censored``).
        info : mapping
            Counts to keep in :meth:`describe` (person-period reading).
        warnings : sequence of str
            Warnings of the reading (person-period data), listed first.
        """
        n = int(cohort.n)
        warnings = list(warnings)
        info = dict(info or {})
        elig = cens = None
        if eligible_until is not None:
            elig = np.asarray(cohort.column(eligible_until), dtype=float)
        if censored is not None:
            cens = _censored(cohort, censored)
        if visits is None:
            if confounders:
                raise SpecError("time_varying_confounders need a visits table or person-period data")
            return cls(n, np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 0)), (), eligibility_end=elig,
                       censored=cens, warnings=warnings, info=info)
        prefix = visits.prefix
        confounders = list(confounders) or list(visits.columns)
        variables = _variables(confounders, visits.columns)
        for v in variables:
            if v not in visits.columns:
                raise SpecError(f"time_varying_confounders: '{v}' is not a measured column of the visits"
                                f"{closest(v, visits.columns)}; columns: {', '.join(visits.columns)}")
        # ids -> cohort rows
        row = pd.Index(cohort.ids).get_indexer(pd.Index(visits.ids))
        unknown = row < 0
        n_dropped_patients = 0
        if unknown.any():
            bad = unknown
            if all_ids is not None:
                known = pd.Index(all_ids).get_indexer(pd.Index(visits.ids[unknown])) >= 0
                bad = unknown.copy()
                bad[np.flatnonzero(unknown)[known]] = False
                n_dropped_patients = int(pd.unique(visits.ids[unknown & ~bad]).size)
                info["dropped_with_patients"] = int((unknown & ~bad).sum())
            if bad.any():
                missing_ids = pd.unique(visits.ids[bad])
                hint = ""
                if bad.all():
                    kinds = sorted({type(v).__name__ for v in (visits.ids[0], cohort.ids[0])})
                    hint = (f"; no id matches the patient table's ('{visits.id_column}': "
                            f"{' vs '.join(kinds) if len(kinds) > 1 else kinds[0]} values)")
                raise DataError(f"{prefix}{len(missing_ids)} id{'s' if len(missing_ids) > 1 else ''} not in the "
                                f"cohort ({_ids_text(missing_ids)}) at {visits.rows(bad)}{hint}")
        # times from time zero
        T = np.asarray(cohort.time(), dtype=float)
        if visits.time is not None:
            t = visits.time
        else:
            t = _visit_times(cohort, visits, row)
        keep = ~unknown
        before = keep & (t < 0)
        after = keep & ~before & (t > T[np.maximum(row, 0)])
        keep &= ~before & ~after
        info.update({"measurements_read": len(visits), "dropped_before_time_zero": int(before.sum()),
                     "dropped_after_follow_up": int(after.sum())})
        if n_dropped_patients:
            warnings.append(f"{prefix}measurements of {n_dropped_patients} patient"
                            f"{'s' if n_dropped_patients > 1 else ''} dropped from the cohort (missing confounders) "
                            "were dropped with them")
        if before.any() or after.any():
            parts = [f"{int(m.sum())} before time zero" for m in (before,) if m.any()] + \
                    [f"{int(m.sum())} after the end of follow-up" for m in (after,) if m.any()]
            k = int(before.sum() + after.sum())
            warnings.append(f"{prefix}{k} measurement{'s' if k > 1 else ''} outside follow-up dropped "
                            f"({', '.join(parts)})")
        kept = np.flatnonzero(keep)
        vrow, vt = row[kept], t[kept]
        vdata = visits.data.iloc[kept].reset_index(drop=True)
        # baseline values from the patient table (a column of the same name) at time zero, ordered before
        # a visit at time zero so that the visit wins
        base_vars = [v for v in variables if _has_column(cohort, v) and v not in _role_columns(cohort)]
        cats = set(categorical) | set(visits.categorical)
        if base_vars:
            bdata = pd.DataFrame({v: _check_variable(pd.Series(cohort.column(v)), v, v in cats, _cohort_rows(cohort),
                                                     "", f"baseline of the time-varying '{v}'")
                                  for v in base_vars})
            for v in variables:
                if v not in bdata:
                    bdata[v] = None if v in cats else np.nan
            allrow = np.concatenate([np.arange(n, dtype=np.int64), vrow])
            allt = np.concatenate([np.zeros(n), vt])
            src = np.concatenate([np.zeros(n, np.int8), np.ones(vrow.size, np.int8)])
            frame = pd.concat([bdata[variables], vdata[variables]], ignore_index=True)
            info["baseline_from_patient_table"] = list(base_vars)
        else:
            allrow, allt, src, frame = vrow, vt, np.ones(vrow.size, np.int8), vdata[variables].reset_index(drop=True)
        # where each measurement row comes from (error messages): >= 0 a row of the visits table, < 0 the
        # patient table's row -1 - origin
        origin = np.concatenate([-1 - np.arange(allrow.size - vrow.size, dtype=np.int64), kept]) \
            if allrow.size > vrow.size else kept.copy()
        o = np.lexsort((src, allt, allrow))
        allrow, allt, origin = allrow[o], allt[o], origin[o]
        frame = frame.iloc[o].reset_index(drop=True)
        off = np.searchsorted(allrow, np.arange(n + 1), side="left")
        # per variable: carry forward within the patient, then the first value back to the start
        gap_patients: dict[str, tuple[int, float]] = {}
        for v in variables:
            col = frame[v]
            valid = col.notna().to_numpy()
            idx, _ = _locf_index(valid, allrow, off)
            has_none = np.ones(n, dtype=bool)
            has_none[allrow[valid]] = False
            if has_none.any():
                ids = cohort.ids[has_none]
                where = "" if v in base_vars else f" and the patient table has no '{v}' column for a baseline value"
                raise DataError(f"{prefix}'{v}' has no measurement for {int(has_none.sum())} patient"
                                f"{'s' if has_none.sum() > 1 else ''} (id {_ids_text(ids)}){where}")
            gaps = allt[idx[off[:-1]]]          # time of the value each patient starts with (all have rows)
            if np.any(gaps > 0):
                gap_patients[v] = (int(np.sum(gaps > 0)), float(gaps.max()))
            frame[v] = pd.Series(col.to_numpy()[idx], dtype=col.dtype)
        for v, (k, g) in gap_patients.items():
            warnings.append(f"{prefix}'{v}': first measurement after time zero for {k} patient{'s' if k > 1 else ''} "
                            f"(up to {g:.3g} later); that value is carried back to time zero")
        # collapse the baseline row and a visit at the same time (the visit, filled, wins)
        dup = np.zeros(allrow.size, dtype=bool)
        dup[:-1] = (allrow[1:] == allrow[:-1]) & (allt[1:] == allt[:-1])
        if dup.any():
            allrow, allt, origin = allrow[~dup], allt[~dup], origin[~dup]
            frame = frame.loc[~dup].reset_index(drop=True)
        X, names, cmap, warns = _design(frame, confounders, variables, cats, prefix,
                                        where=_measurement_rows(origin, visits, cohort))
        warnings += warns
        info["measurements"] = int(len(kept))
        return cls(n, allrow, allt, X, names, confounders=confounders, confounder_map=cmap, variables=variables,
                   eligibility_end=elig, censored=cens, warnings=warnings, info=info)


def _ro(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.flags.writeable = False
    return a


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], hi[i])`` (vectorised)."""
    counts = np.maximum(np.asarray(hi) - np.asarray(lo), 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.asarray(lo, dtype=np.int64) - (np.cumsum(counts) - counts), counts)
    return starts + np.arange(total, dtype=np.int64)


def _locf_index(valid: np.ndarray, row: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each measurement (sorted by row, time): the index of the value to use for one variable.

    The last valid index at or before it within its row (carried forward);
    where there is none yet, the row's first valid index (carried back).
    Returns ``(index, leading)`` with ``leading`` marking the carried-back
    ones. Rows without any valid value keep their own (invalid) index.
    """
    m = valid.size
    pos = np.arange(m, dtype=np.int64)
    fwd = np.maximum.accumulate(np.where(valid, pos, -1)) if m else pos
    first_of_row = off[row] if m else pos
    lead = fwd < first_of_row
    back = np.minimum.accumulate(np.where(valid, pos, m)[::-1])[::-1] if m else pos
    last_of_row = off[row + 1] - 1 if m else pos
    back_ok = back <= last_of_row
    idx = np.where(lead, np.where(back_ok, back, pos), fwd)
    return idx, lead & back_ok


def _cohort_rows(cohort: Any) -> Any:
    """Rows of the cohort named as its own messages name them (data rows of the file, or index labels)."""
    from causal_hcc.validate import _rows

    return lambda mask: _rows(cohort, np.asarray(mask, dtype=bool))


def _has_column(cohort: Any, name: str) -> bool:
    try:
        cohort.column(name)
    except DataError:
        return False
    return True


def _role_columns(cohort: Any) -> set[str]:
    out = {v for v in getattr(cohort, "roles", {}).values() if isinstance(v, str)}
    out |= {v for v in getattr(cohort, "date_roles", {}).values() if isinstance(v, str)}
    return out


def _visit_times(cohort: Any, visits: VisitsTable, row: np.ndarray) -> np.ndarray:
    """Visit dates -> times from each patient's start date (same-day rule of :mod:`causal_hcc.recode`)."""
    from causal_hcc.recode import DAYS_PER_UNIT, SAME_DAY, to_days

    roles = getattr(cohort, "date_roles", {}) or {}
    if "start_date" not in roles:
        raise SpecError(f"{visits.prefix}'date' needs the role 'start_date' (time zero); give 'time' instead")
    where = _cohort_rows(cohort)
    how = getattr(cohort, "date_parse", None) or {}  # roles.date_format / dayfirst
    start = to_days(pd.Series(cohort.column(roles["start_date"])), roles["start_date"], "start_date", where, **how)
    end = to_days(pd.Series(cohort.column(roles["end_date"])), roles["end_date"], "end_date", where, **how)
    r = np.maximum(row, 0)
    d = visits.days - start[r]
    on_end = (visits.days == end[r]) & (end[r] > start[r])
    d = np.where(on_end, d - SAME_DAY, d)
    return d / DAYS_PER_UNIT[cohort.time_unit]


def _censored(cohort: Any, col: str) -> np.ndarray:
    """The ``censored`` role (1 = lost to follow-up): 0/1, never 1 with an event of the primary outcome."""
    try:
        s = pd.Series(cohort.column(col))
    except DataError as err:
        raise DataError(f"roles.censored: {err}") from None
    rows = _cohort_rows(cohort)
    c = _binary(s, col, "censored", rows, "")
    both = (c == 1) & (np.asarray(cohort.event()) == 1)
    if both.any():
        raise DataError(f"column '{col}' (censored) is 1 for patients with an event at {rows(both)}; "
                        "censored = 1 means lost to follow-up without the event")
    return c


def _measurement_rows(origin: np.ndarray, visits: "VisitsTable", cohort: Any):
    """``where(mask)`` over the measurement rows: the visits table's rows (and the patient table's, for baseline
    values taken from it) as the readers' messages name them. A row whose value was carried forward from an
    earlier visit is named too (it holds that value)."""
    def where(mask: np.ndarray) -> str:
        mask = np.asarray(mask, dtype=bool)
        o = origin[mask]
        parts = []
        if np.any(o >= 0):
            vm = np.zeros(len(visits), dtype=bool)
            vm[o[o >= 0]] = True
            parts.append(visits.rows(vm))
        if np.any(o < 0):
            pm = np.zeros(int(cohort.n), dtype=bool)
            pm[-1 - o[o < 0]] = True
            parts.append(f"{_cohort_rows(cohort)(pm)} of the patient table (baseline values)")
        return "; ".join(parts)
    return where


def _design(frame: pd.DataFrame, confounders: Sequence[str], variables: Sequence[str], cats: set[str],
            prefix: str, where: Any = None) -> tuple[np.ndarray, list[str], dict[str, list[str]], list[str]]:
    """Design columns of the time-varying confounders on the (filled) measurements.

    The list is one R formula, expanded and coded as the baseline ``confounders`` are
    (:func:`causal_hcc.formula.build_design`: R's terms of the whole list, a categorical
    variable coded by contrasts or by every level as R's ``model.matrix`` codes it, shared
    terms once; a categorical listed on its own takes its most frequent level as the
    reference, one used only inside terms its first, as in the cohort). Returns ``(X, names,
    confounder -> its columns, warnings)``.
    """
    from causal_hcc.cohort import Cohort
    from causal_hcc.formula import Factor, Numeric, build_design, parse_confounders

    warns: list[str] = []
    m = len(frame)
    try:
        formula = parse_confounders(list(confounders), list(variables))
    except SpecError as err:
        raise SpecError(f"{prefix}time-varying {err}") from None
    bare = {e.text for e in formula.entries if e.bare}
    cache: dict[tuple[str, bool], Numeric | Factor] = {}

    def resolve(c: str, want: str, place: str) -> Numeric | Factor:
        as_factor = want == "factor"
        hit = cache.get((c, as_factor))
        if hit is None:
            if c not in frame.columns:
                raise SpecError(f"{place}: '{c}' is not a measured column of the visits")
            col = frame[c]
            categorical = as_factor or c in cats or not (pd.api.types.is_numeric_dtype(col.dtype)
                                                         or pd.api.types.is_bool_dtype(col.dtype))
            if categorical:
                hit, _ = Cohort._factor(c, col, None, None, warns, None,
                                        default_ref="frequent" if c in bare and not as_factor else "first")
            else:
                hit = Numeric(col.to_numpy(dtype=float).reshape(-1, 1), (c,))
            cache[(c, as_factor)] = hit
        if want == "number" and isinstance(hit, Factor):
            raise SpecError(f"{place}: '{c}' is categorical; arithmetic, log(), sqrt(), exp() and rcs() need a number")
        return hit

    try:
        design = build_design(formula, m, resolve, where=where)
    except (DataError, SpecError) as err:
        raise type(err)(f"{prefix}time-varying {err}") from None
    warns = [f"{prefix}time-varying {w}" if w.startswith("confounder") else f"{prefix}{w}" for w in warns]
    warns += [f"{prefix}time-varying {w}" for w in design.notes]
    for c in design.empty:
        warns.append(f"{prefix}time-varying confounder '{c}' is constant and was left out of the models")
    cmap = {e.text: list(design.entry_columns.get(e.text, [])) for e in formula.entries}
    return np.asarray(design.X, dtype=float), list(design.names), cmap, warns


def attach_visits(cohort: Any, visits: pd.DataFrame, *, id: str = "id", time: str | None = "time",
                  date: str | None = None, columns: Sequence[str] | None = None,
                  confounders: Sequence[str] = (), categorical: Sequence[str] = (),
                  codes: Mapping[str, Mapping[Any, Any]] | None = None, censored: str | None = None) -> Any:
    """``cohort`` with a :class:`Timeline` of ``visits`` (a long frame ``id, time, values...``).

    The one-call route for a frame built in Python (a simulation, the twin):
    ``attach_visits(cohort, df, columns=["ecog", "afp"])``. ``columns``
    defaults to every column but the id and time. Neither input is modified.
    """
    if date is not None:
        time = None
    tcol = time if time is not None else date
    cols = list(columns) if columns is not None else [str(c) for c in visits.columns if c not in (id, tcol)]
    vt = read_visits(visits, id=id, time=time, date=date, columns=cols, codes=codes, categorical=categorical)
    tl = Timeline.build(cohort, vt, confounders=confounders or cols, categorical=categorical, censored=censored)
    return cohort.with_timeline(tl)


# --------------------------------------------------------------------------
# designs: one place for "eligible at t"
# --------------------------------------------------------------------------
def eligibility_end(cohort: Any) -> np.ndarray:
    """``(n,)`` time at which each patient stops being eligible for trial starts / clones; ``inf`` if never.

    From person-period data's ``eligible`` role (the start of the first
    period with ``eligible = 0``); ``inf`` for everyone without it. Designs
    use it as they use a ``require_event_free`` state: no trial start and no
    treatment decision from that time on.
    """
    tl = getattr(cohort, "timeline", None)
    if tl is None or tl.eligibility_end is None:
        return np.full(int(cohort.n), np.inf)
    return np.asarray(tl.eligibility_end, dtype=float)


def eligible_at(cohort: Any, t: float) -> np.ndarray:
    """``(n,)`` True where the patient is eligible at time ``t`` (always True without an ``eligible`` role)."""
    return float(t) < eligibility_end(cohort)


# --------------------------------------------------------------------------
# person-period data
# --------------------------------------------------------------------------
@dataclass
class PersonPeriod:
    """Person-period data read into a patient table plus visits (:func:`person_period`)."""

    patients: pd.DataFrame
    visits: VisitsTable | None
    roles: dict[str, Any]
    eligible_until: str | None
    censored: str | None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    return name


def person_period(df: pd.DataFrame, *, id: str, period: str, event: str, treatment: str,
                  eligible: str | None = None, censored: str | None = None, cluster: str | None = None,
                  confounders: Sequence[str] = (), time_varying_confounders: Sequence[str] = (),
                  categorical: Sequence[str] = (), codes: Mapping[str, Mapping[Any, Any]] | None = None,
                  source: str = "DataFrame", outcome_name: str = "os") -> PersonPeriod:
    """Read person-period data (one row per patient and period) into a patient table plus visits.

    Rules (``docs/timeline.md``):

    * periods are whole numbers, consecutive within a patient and in
      increasing order in the file (a gap, a repeat or a decrease is
      refused); time zero is the patient's first period, so period ``p``
      covers times ``(p - p0, p - p0 + 1]``;
    * follow-up = number of periods observed; an outcome in period k is an
      event at the end of period k; rows after a patient's first outcome
      are dropped (counted in the warnings);
    * treatment starts at the start of the first treated period and is
      sustained; a later untreated period (switch back) is counted in the
      warnings and does not end treatment;
    * eligible for trial starts and clones while ``eligible`` is 1, never
      after the first 0 (a later 1 is counted in the warnings);
    * ``censored`` (1 = lost to follow-up) may be 1 only in the patient's
      last period; with an outcome in the same period the event counts;
    * ``confounders`` (and ``cluster``) take their first-period values,
      ``time_varying_confounders`` their value in each period, known at the
      start of the period.

    Returns
    -------
    PersonPeriod
        ``patients`` (one row per patient, in order of first appearance;
        index = the first row's index label, ``attrs["data_rows"]`` = the
        first row's position, so that cohort messages cite the input rows),
        ``visits`` (a :class:`VisitsTable` of the time-varying variables, or
        None), ``roles`` (keyword arguments of :class:`Cohort`), the names of
        the eligibility-end and censored columns of ``patients``, warnings
        and counts.

    Raises
    ------
    DataError
        One line naming the column and rows: a role or variable not found,
        missing or non-numeric periods, periods that are not whole numbers,
        not increasing, repeated or with a gap; outcome, treatment,
        eligible or censored not 0/1 or missing; censored = 1 before the
        last period.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(df).__name__}")
    cols = [str(c) for c in df.columns]
    roles = [("id", id), ("period", period), ("event", event), ("treatment", treatment)]
    roles += [(r, c) for r, c in (("eligible", eligible), ("censored", censored), ("cluster", cluster)) if c]
    seen: dict[str, str] = {}
    for role, c in roles:
        if c not in df.columns:
            shown = ", ".join(cols[:30]) + (f", ... (+{len(cols) - 30} more)" if len(cols) > 30 else "")
            raise DataError(f"column '{c}' ({role}) not found{closest(str(c), cols)}; columns: {shown}")
        if c in seen:
            raise DataError(f"column '{c}' is used for two roles: {seen[c]} and {role}")
        seen[c] = role
    base_vars = _variables(confounders, cols)
    tv_vars = _variables(time_varying_confounders, cols)
    for what, vs in (("confounder", base_vars), ("time-varying confounder", tv_vars)):
        for v in vs:
            if v not in df.columns:
                raise DataError(f"column '{v}' ({what}) not found{closest(v, cols)}")
            if v in seen:
                raise DataError(f"{what} '{v}' is the {seen[v]} column")
    if len(df) == 0:
        raise DataError("the data has no rows")
    used = list(dict.fromkeys([c for _, c in roles] + base_vars + tv_vars))
    rows = _Rows.of(df, source)
    sub = df[used].copy(deep=True)
    sub.index = pd.RangeIndex(len(sub))
    sub = _apply_codes(sub, codes)
    ids_s = sub[id]
    na = ids_s.isna().to_numpy()
    if na.any():
        raise DataError(f"column '{id}' (id) has {int(na.sum())} missing value{'s' if na.sum() > 1 else ''} "
                        f"at {rows(na)}")
    p = _numeric_time(sub[period], period, "period", rows, "")
    frac = p != np.floor(p)
    if frac.any():
        from causal_hcc.cohort import _fmt_value

        raise DataError(f"column '{period}' (period) must hold whole numbers; found {_fmt_value(p[frac][0])} at "
                        f"{rows(frac)}")
    pat, uniq = pd.factorize(ids_s)
    n = len(uniq)
    order = np.argsort(pat, kind="stable")
    ps, gs = p[order], pat[order]
    same = gs[1:] == gs[:-1]
    d = np.diff(ps)
    from causal_hcc.cohort import _fmt_value

    for mask, problem in ((same & (d < 0), "not increasing"), (same & (d == 0), "repeated"),
                          (same & (d > 1), "gap")):
        if mask.any():
            k = int(np.flatnonzero(mask)[0])
            a, b = order[k], order[k + 1]
            who = _fmt_value(ids_s.iloc[a])
            if problem == "not increasing":
                raise DataError(f"column '{period}' (period) is not in increasing order for id {who} at "
                                f"{rows(np.array([a, b]))}; sort the data by id and period")
            if problem == "repeated":
                raise DataError(f"column '{period}' (period) repeats {_fmt_value(ps[k])} for id {who} at "
                                f"{rows(np.array([a, b]))}; one row per patient and period")
            raise DataError(f"column '{period}' (period) jumps from {_fmt_value(ps[k])} to {_fmt_value(ps[k + 1])} "
                            f"for id {who} at {rows(np.array([a, b]))}; periods must be consecutive (give the "
                            "missing periods, with their values carried forward)")
    first = np.searchsorted(gs, np.arange(n), side="left")        # first sorted position of each patient
    j = ps - ps[first][gs]                                         # period index from the patient's start
    # outcome: the first 1 ends follow-up at the end of its period; later rows are dropped
    ev = _binary(sub[event], event, "event", rows, "")[order]
    fe = _first_per_group(gs, ev == 1, n)
    has_ev = fe >= 0
    j_end = np.where(has_ev, j[np.maximum(fe, 0)], np.inf)
    keep = j <= j_end[gs]
    n_after = int((~keep).sum())
    warnings: list[str] = []
    if n_after:
        k = int(np.unique(gs[~keep]).size)
        warnings.append(f"{n_after} period{'s' if n_after > 1 else ''} after the outcome of {k} patient"
                        f"{'s' if k > 1 else ''} dropped (follow-up ends at the end of the outcome's period)")
    order, gs, j = order[keep], gs[keep], j[keep]
    last = np.r_[gs[1:] != gs[:-1], True]
    counts = np.bincount(gs, minlength=n)
    T = counts.astype(float)                                        # consecutive periods: follow-up = count
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # treatment: the start of the first treated period, sustained
    tx = _binary(sub[treatment].iloc[order].reset_index(drop=True), treatment, "treatment",
                 _Rows(rows.labels[order], rows.from_file), "")
    ft = _first_per_group(gs, tx == 1, n)
    treated = ft >= 0
    tt = np.where(treated, j[np.maximum(ft, 0)], np.nan)
    back = (tx == 0) & (j > np.where(treated, tt, np.inf)[gs])
    n_back = int(np.unique(gs[back]).size)
    if n_back:
        warnings.append(f"{n_back} treated patient{'s' if n_back > 1 else ''} had untreated periods after "
                        "starting treatment (switch back); treatment is taken as sustained from its first period")
    info: dict[str, Any] = {"layout": "person_period", "periods_read": int(len(df)), "periods": int(order.size),
                            "periods_after_outcome_dropped": n_after, "switched_back": n_back}
    pats = pd.DataFrame(index=df.index[order[first]])
    taken = set(cols)
    tname = _free_name("follow_up", taken | {"treatment_time"})
    ttname = _free_name("treatment_time", taken | {tname})
    pats[id] = ids_s.to_numpy()[order[first]]
    pats[tname] = T
    pats[event] = has_ev.astype(np.int8)
    pats[treatment] = treated.astype(np.int8)
    pats[ttname] = tt
    elig_name = cens_name = None
    if eligible is not None:
        el = _binary(sub[eligible].iloc[order].reset_index(drop=True), eligible, "eligible",
                     _Rows(rows.labels[order], rows.from_file), "")
        f0 = _first_per_group(gs, el == 0, n)
        end = np.where(f0 >= 0, j[np.maximum(f0, 0)], np.inf)
        again = (el == 1) & (j > end[gs])
        n_again = int(np.unique(gs[again]).size)
        never = int(np.sum(end == 0))
        if n_again:
            warnings.append(f"{n_again} patient{'s' if n_again > 1 else ''} eligible again after a period with "
                            f"'{eligible}' = 0: never eligible after the first 0")
        if never:
            warnings.append(f"{never} patient{'s' if never > 1 else ''} not eligible in their first period: in no "
                            "trial and no clone")
        late = int(np.sum(treated & (tt >= end)))
        if late:
            warnings.append(f"{late} patient{'s' if late > 1 else ''} started treatment after their eligibility "
                            "ended: no trial counts them as starting treatment, and a never-treat clone is "
                            "censored when they start")
        info.update({"eligible_again_ignored": n_again, "never_eligible": never, "treated_after_eligibility": late})
        elig_name = _free_name(f"{eligible}_until", taken | {tname, ttname})
        pats[elig_name] = end
    if censored is not None:
        cs = _binary(sub[censored].iloc[order].reset_index(drop=True), censored, "censored",
                     _Rows(rows.labels[order], rows.from_file), "")
        early = (cs == 1) & ~last
        if early.any():
            raise DataError(f"column '{censored}' (censored) is 1 before the patient's last period at "
                            f"{_Rows(rows.labels[order], rows.from_file)(early)}; 1 marks the period after which "
                            "the patient was lost to follow-up")
        lost = np.zeros(n, dtype=np.int8)
        lost[gs[cs == 1]] = 1
        both = (lost == 1) & has_ev
        if both.any():
            k = int(both.sum())
            warnings.append(f"{k} patient{'s' if k > 1 else ''} with the outcome and '{censored}' = 1 in the same "
                            "period counted as events")
            lost[both] = 0
        pats[censored] = lost
        cens_name = censored
        info["lost_to_follow_up"] = int(lost.sum())
    if cluster is not None:
        pats[cluster] = sub[cluster].to_numpy()[order[first]]
    for v in base_vars:
        if v not in pats.columns:
            pats[v] = sub[v].to_numpy()[order[first]]
    if "value_labels" in df.attrs:
        pats.attrs["value_labels"] = dict(df.attrs["value_labels"])
    if source != "DataFrame":
        pats.attrs["data_rows"] = order[first].astype(np.int64)
    visits = None
    if tv_vars:
        vsub = pd.DataFrame({v: sub[v].to_numpy()[order] for v in tv_vars})
        vrows = _Rows(rows.labels[order], rows.from_file)
        cats = tuple(v for v in tv_vars if v in set(categorical))
        data = pd.DataFrame({v: _check_variable(vsub[v], v, v in cats, vrows, "", "time-varying confounder")
                             for v in tv_vars})
        visits = VisitsTable(ids=ids_s.to_numpy()[order], time=j.astype(float), days=None, data=data,
                             columns=tuple(tv_vars), categorical=tuple(c for c in tv_vars if data[c].dtype == object),
                             rows=vrows, name="time-varying confounders", id_column=id, time_column=period)
    cohort_roles = {"id": id, "time": tname, "event": event, "treatment": treatment, "treatment_time": ttname,
                    "cluster": cluster, "outcome_name": outcome_name}
    return PersonPeriod(patients=pats, visits=visits, roles=cohort_roles, eligible_until=elig_name,
                        censored=cens_name, warnings=warnings, info=info)

