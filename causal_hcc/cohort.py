"""The validated, immutable cohort every design starts from.

A :class:`Cohort` is a DataFrame plus *roles*: which column is the patient id,
the follow-up time, the event indicator, the treatment, the time from time
zero to treatment start, the confounders, the cluster (centre) and any extra
outcomes (e.g. progression-free survival). The constructor checks every role
once and stores the result as read-only numpy arrays, so that the bootstrap's
:meth:`Cohort.take` costs microseconds (no pandas, no re-validation).

Where errors point
------------------
Every input problem raises :class:`~causal_hcc.errors.DataError` with one line
naming the column and the first (up to three) offending rows:

* when the cohort was built from a file (``source`` is a path, the
  default of the pipeline), rows are **data rows counted from 1, the header
  not counted**: ``data rows 3, 7`` is the 3rd and 7th patient of the file
  (spreadsheet lines 4 and 8);
* when built from a DataFrame (``source="DataFrame"``, the default), rows are
  the DataFrame's **index labels**: ``index 2, 6``.

The caller's DataFrame is never modified; the cohort keeps its own copy.

Construction steps
------------------
``Cohort.__init__`` runs named steps, in order, on that copy:

1. **read** (:class:`_Input`): the private copy and how rows are named;
2. **roles** (:class:`_Roles`, :func:`_check_columns`): which column plays
   which part (times or dates), every column present, once, in one role;
3. **codes** (:func:`_recode`, :mod:`causal_hcc.recode`): raw values
   recoded (``{status: {2: 1, 1: 0}}``);
4. **dates** (:func:`_dates_to_times`): ``start_date``/``end_date``/
   ``treatment_date`` become times in ``time_unit`` (same-day rule in
   :mod:`causal_hcc.recode`);
5. **impute** (slot): missing confounders are filled here by a
   multiple-imputation policy, before validation;
6. **validate** (:func:`_validate_roles`): ids, outcomes, treatment and its
   timing, cluster;
7. **complete cases** (:func:`_complete_cases`): the ``missing`` policy;
8. **design matrix** (:func:`_design_matrix`): confounders as columns of
   ``X`` (categorical indicators, formula terms from
   :mod:`causal_hcc.formula`);
9. **arrays** (:meth:`Cohort._store`): read-only arrays.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from causal_hcc.base import closest
from causal_hcc.errors import DataError, SpecError, shown
from causal_hcc.formula import (MAX_NUMERIC_LEVELS, Factor, Formula, Numeric, build_design, non_ascii_note,
                                parse_confounders)
from causal_hcc.recode import DAYS_PER_UNIT, SAME_DAY, TIME_UNITS, apply_codes, normalize_codes, quote, to_days

__all__ = ["Cohort", "MISSING_POLICIES", "ROLE_NAMES"]

#: allowed values of ``missing``
MISSING_POLICIES: tuple[str, ...] = ("error", "complete_case")
#: role keywords accepted by :meth:`Cohort.from_frame`
ROLE_NAMES: tuple[str, ...] = ("id", "time", "event", "treatment", "treatment_time", "cluster",
                                "start_date", "end_date", "treatment_date")

_SHOW_ROWS = 3
_SHOW_COLUMNS = 30
_MANY_LEVELS = 20
#: a categorical confounder with more levels than this is refused (one-hot encoding it is almost always a mistake)
MAX_LEVELS = 50
#: longest text accepted as a categorical level
MAX_LEVEL_CHARS = 200


# --------------------------------------------------------------------------
# small helpers (formatting and numeric coercion)
# --------------------------------------------------------------------------
def _fmt_value(v: Any) -> str:
    """A value as shown in messages: numbers with %g, strings quoted."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return quote(v)


def _short(name: Any) -> str:
    """A column name or value as quoted inside '...' in messages, cut to 60 characters."""
    s = str(name)
    return s if len(s) <= 60 else s[:60] + "\u2026"


def _level_name(v: Any) -> str:
    """Name of a categorical level: integer-valued floats lose their '.0'."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _is_categorical_series(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return True
    if pdt.is_bool_dtype(s.dtype) or pdt.is_numeric_dtype(s.dtype):
        return False
    if pdt.is_string_dtype(s.dtype) or s.dtype == object:
        vals = s.dropna()
        # an object column holding only numbers (e.g. from a spreadsheet) is numeric
        return not all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            for v in vals
        )
    return False


def _to_float(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)``: float values (NaN where missing) and a mask of non-numeric entries.

    Booleans count as non-numeric here (a time cannot be True).
    """
    if pdt.is_bool_dtype(s.dtype):
        return np.full(len(s), np.nan), s.notna().to_numpy()
    if pdt.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        return s.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(s), dtype=bool)
    obj = s.to_numpy(dtype=object)  # (a fresh array: pandas 3's to_numpy() views are read-only)
    isbool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in obj), dtype=bool, count=len(obj))
    isstr = np.fromiter((type(v) is str for v in obj), dtype=bool, count=len(obj))
    other = ~isbool & ~isstr
    vals = np.full(len(obj), np.nan)
    if other.any():
        vals[other] = pd.to_numeric(pd.Series(obj[other], dtype=object), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan)
    if isstr.any():
        vals[isstr] = _parse_texts(obj[isstr])
    bad = (~pd.isna(obj) & np.isnan(vals)) | isbool
    return vals, bad


def _parse_texts(texts: np.ndarray) -> np.ndarray:
    """Numbers written as text, correctly rounded (Python's ``float``, as R's ``as.numeric``); NaN if not a number.

    Not ``pd.to_numeric``: under pandas 2 it misreads the last bit of about one
    decimal in six (``'1.939'`` gave 1.9389999999999998). Each distinct text
    is parsed once; ``1_000`` (which ``float`` accepts) is not a number here.
    """
    codes, uniq = pd.factorize(texts)
    out = np.empty(len(uniq) + 1)
    out[-1] = np.nan  # (code -1: missing)
    for j, t in enumerate(uniq):
        try:
            out[j] = float(t) if "_" not in t else np.nan
        except ValueError:
            out[j] = np.nan
    return out[codes]


def _to_binary(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)`` for a 0/1 role; NaN where missing.

    Strict on purpose: only numbers equal to 0 or 1 and booleans are accepted;
    text (even "1" or "yes") is flagged, so a coding is never guessed.
    """
    if pdt.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(s), dtype=bool)
    if pdt.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        def num(v: Any) -> float:
            if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
                return np.nan
            if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
                return float(v)
            return np.inf  # not a number: marks it as not in {0, 1}

        vals = np.fromiter((num(v) for v in s.astype(object)), dtype=float, count=len(s))
    bad = ~np.isnan(vals) & (vals != 0) & (vals != 1)
    return vals, bad


def _freeze(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.flags.writeable = False
    return a


def _value_labels(df: pd.DataFrame) -> dict[str, dict[Any, str]]:
    vl = df.attrs.get("value_labels") if isinstance(df.attrs, dict) else None
    return dict(vl) if isinstance(vl, Mapping) else {}


class Cohort:
    """A validated, immutable view of a cohort DataFrame plus its roles.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient. Never modified; the cohort keeps a copy.
    id, time, event, treatment : str
        Column names of the patient id, the follow-up time from time zero
        (> 0), the event indicator (1 event, 0 censored) and the treatment
        (1 if treated at any time during follow-up; numeric 0/1 or boolean).
    treatment_time : str, optional
        Column with the time from time zero to treatment start; empty (NaN)
        for never-treated patients, at most the follow-up time.
    confounders : sequence of str
        Baseline confounders: column names or formula terms (``rcs(age, 4)``,
        ``log(afp)``, ``grade:nodes``; :mod:`causal_hcc.formula`). Numeric
        columns pass through as floats, booleans
        become 0/1; columns named in ``categorical``, string columns, pandas
        categoricals and columns whose every value has a value label
        (SPSS/Stata, ``data.attrs["value_labels"]``, see
        :func:`causal_hcc.io.read_table`) become indicator columns
        ``var=level`` named by the labels.
    categorical : sequence of str
        Confounders, or variables used inside terms, to treat as categorical
        even if numeric (e.g. a coded stage). A numeric variable whose values
        look continuous is refused (:mod:`causal_hcc.formula`: level names
        would carry patients' values).
    reference : mapping str -> str, optional
        Reference level per categorical variable. Default: the most frequent
        level (ties: the first level in order -- sorted values, or the category
        / value-label order) for a confounder listed on its own; the first
        level (R's ``contr.treatment``) for one used only inside terms.
    cluster : str, optional
        Cluster (centre) column, for cluster-robust variance.
    outcomes : mapping name -> (time column, event column), optional
        Extra outcomes (e.g. ``{"pfs": ("pfs_months", "pfs_event")}``, or
        ``{"pfs": {"end_date": "progressed_on", "event": "pfs_event"}}``), checked
        like the primary one (``treatment_time`` is not compared with them).
    outcome_name : str
        Name of the primary outcome (default ``"os"``).
    missing : {"error", "complete_case"}
        What to do with missing confounder values: fail listing the count per
        column, or drop those rows (``rows_dropped``/``dropped_by`` record it).
    source : str
        Where the data came from: ``"DataFrame"`` (messages cite index labels)
        or a file path (messages cite data rows counted from 1).
    start_date, end_date, treatment_date : str, optional
        Date columns instead of ``time`` / ``treatment_time``: time zero, the
        event or censoring date, the treatment date (empty if never treated).
        Times are computed in ``time_unit``; an extra outcome may then be
        ``{"end_date": col, "event": col}``. See :mod:`causal_hcc.recode` for
        accepted date types and the same-day rule. With ``treatment_date``,
        ``treatment`` may be omitted: it is then derived as 1 for a treatment
        date on or before the end date and 0 otherwise (a column ``treated``,
        or ``treated_`` if that name is taken; a date after the end date is
        counted as untreated, with a warning in ``warnings``). When both are
        given, they must agree (a treated patient has a date, an untreated
        one none).
    time_unit : {"days", "weeks", "months", "years"}
        Unit of times computed from dates (months = days / 30.4375, years =
        days / 365.25). Ignored when times are given.
    codes : mapping column -> {raw: new}, optional
        Raw values recoded before validation (:func:`causal_hcc.recode.apply_codes`).
    competing : sequence of int, optional
        Event codes of competing events of the primary outcome (e.g. ``[2, 3]``):
        its event column then holds 0 (censored), 1 (the event of interest) and
        these codes. An extra outcome declares its own as
        ``{"time": ..., "event": ..., "competing": [2]}``. Without it, an event
        other than 0/1 is an error, as before. A declared code must occur in the
        data, and an undeclared code >= 2 is an error naming its rows.

    Attributes
    ----------
    n : int
    ids, treatment (int8), treatment_time (float, NaN if never treated; None
    without that role), cluster (or None), X (float, n x p) : numpy.ndarray
        Read-only arrays in input row order (after complete-case filtering).
    outcome_names : list of str
        Primary outcome first.
    confounders : list of str
        As declared. ``confounder_columns`` holds the columns of ``X``.
    reference_levels : dict
        Categorical confounder -> reference level (as a string).
    rows_dropped : int
        Rows removed by complete-case filtering; ``dropped_by`` counts the
        missing values per confounder that caused it.
    warnings : list of str
        Non-fatal findings (constant confounders left out of ``X``, ...).
    source_rows : numpy.ndarray
        Positions of each row in the validated input (after filtering);
        :meth:`take` composes them.
    roles : dict
        The roles on the validated frame (:meth:`frame`): with dates,
        ``time``/``treatment_time`` name the computed columns, so
        ``Cohort.from_frame(c.frame(), c.roles)`` rebuilds the cohort.
    date_roles : dict
        The date columns given (empty without dates); ``time_unit`` the unit.
    confounder_map : dict
        Declared confounder -> its columns of ``X`` (a term shared by two
        entries, ``stage`` in ``[stage, "stage*age"]``, belongs to both).
    confounder_terms : dict
        R's terms of the confounders (``rcs(age, 4)``, ``stage``,
        ``stage:age``) -> their columns of ``X``: the proportional-hazards
        test groups each term's columns, as R's ``cox.zph(terms = TRUE)``.

    Raises
    ------
    DataError
        One line: ``column 'C' (ROLE) <problem> at <rows>`` for a bad value
        (non-numeric, missing, infinite, negative or zero time; event or
        treatment not 0/1; treatment time missing for treated, set for
        untreated, negative, or after the follow-up time; duplicated or
        missing ids; missing cluster), ``column 'C' not found (did you mean
        'D'?); columns: ...``, ``column 'C' (treatment) is constant: ...``,
        ``column 'C' (event) has no events (all 0)``, ``missing confounder
        values: 'C' k (rows), ...; set missing: complete_case to drop ...``,
        ``no treated|untreated patients left after dropping ...``; dates
        (``column 'E' (end_date) is before 'S' (start_date) at ...``, not a
        date, numbers instead of dates); codes matching nothing; a
        categorical confounder with more than :data:`MAX_LEVELS` levels or a
        text level longer than :data:`MAX_LEVEL_CHARS`; formula terms
        (``log`` of values <= 0, ...). Quoted values are cut at 60 characters.
    SpecError
        Inconsistent arguments: ``missing`` policy, ``categorical`` or
        ``reference`` naming a non-confounder, a confounder listed twice, an
        extra outcome named like the primary one; a formula term that is not
        allowed (:mod:`causal_hcc.formula`: parsed, never evaluated).

    References
    ----------
    .. [1] Hernán MA, Robins JM. *Causal Inference: What If*. Chapman &
       Hall/CRC, 2020 (roles of time zero, treatment and confounders).
    .. [2] Suissa S. Immortal time bias in pharmaco-epidemiology. *Am J
       Epidemiol* 2008;167:492-499 (why ``treatment_time`` must be known).
    """

    __slots__ = (
        "n", "ids", "treatment", "treatment_time", "cluster", "X",
        "confounder_columns", "confounders", "categorical", "reference_levels",
        "outcome_names", "outcome_columns", "roles", "rows_dropped", "dropped_by",
        "warnings", "source", "source_rows", "date_roles", "time_unit", "confounder_map", "confounder_terms",
        "date_parse",
        "_times", "_events", "_status", "_competing", "_frame", "_frame_rows", "_cache", "timeline", "_frozen",
    )

    # ------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------
    def __init__(
        self,
        data: pd.DataFrame,
        *,
        id: str,
        time: str | None = None,
        event: str,
        treatment: str | None = None,
        treatment_time: str | None = None,
        confounders: Sequence[str] = (),
        categorical: Sequence[str] = (),
        reference: Mapping[str, Any] | None = None,
        cluster: str | None = None,
        outcomes: Mapping[str, Any] | None = None,
        outcome_name: str = "os",
        missing: str = "error",
        source: str = "DataFrame",
        start_date: str | None = None,
        end_date: str | None = None,
        treatment_date: str | None = None,
        time_unit: str = "months",
        codes: Mapping[str, Mapping[Any, Any]] | None = None,
        competing: Sequence[int] | None = None,
        date_format: str | None = None,
        dayfirst: bool = False,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_frozen", False)
        # read -> roles -> codes -> dates -> (impute) -> validate -> arrays
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if missing not in MISSING_POLICIES:
            raise SpecError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {shown(missing)}")
        inp = _Input.read(data, source)
        roles = _Roles.declare(id=id, time=time, event=event, treatment=treatment, treatment_time=treatment_time,
                               cluster=cluster, outcomes=outcomes, outcome_name=outcome_name,
                               start_date=start_date, end_date=end_date, treatment_date=treatment_date,
                               time_unit=time_unit, competing=competing, date_format=date_format,
                               dayfirst=dayfirst)
        conf = _Confounders.declare(confounders, categorical, reference)
        _check_columns(inp, roles, conf)
        _recode(inp, normalize_codes(codes))
        _dates_to_times(inp, roles)
        # (imputation slot: multiple imputation fills the confounders of the frame `Cohort.prepare` returns
        # -- steps 1-4 -- and builds one cohort per completed copy; here `_complete_cases` applies the
        # error / complete_case policies)
        checked = _validate_roles(inp, roles)
        _complete_cases(inp, roles, conf, checked, missing)
        design, refs, warns = _design_matrix(inp, conf)
        warns = inp.notes + warns
        self._store(inp, roles, conf, checked, design, refs, warns, missing)

    @classmethod
    def prepare(cls, data: pd.DataFrame, **kwargs: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Steps 1-4 only (read, roles, codes, dates): the frame an imputation works on.

        Takes the constructor's arguments. Returns ``(frame, roles)``: a new
        DataFrame with codes applied and times computed from dates (the
        caller's is untouched), and the keyword arguments that build the
        cohort from it (``Cohort(frame, **roles, confounders=...)``, without
        ``codes`` or dates). Multiple imputation fills the confounders of
        ``frame`` (each completed copy then becomes a cohort), so that
        ``{9: null}`` codes are missing before imputation and the imputation
        models see the follow-up times, not dates.

        Raises
        ------
        DataError, SpecError
            As the constructor's first four steps.
        """
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        allowed = {"id", "time", "event", "treatment", "treatment_time", "cluster", "outcomes", "outcome_name",
                   "start_date", "end_date", "treatment_date", "time_unit", "codes", "confounders", "categorical",
                   "reference", "source", "missing", "competing", "date_format", "dayfirst"}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(f"prepare() got unexpected arguments {unknown}")
        inp = _Input.read(data, kwargs.get("source", "DataFrame"))
        roles = _Roles.declare(**{k: kwargs.get(k) for k in (
            "id", "time", "event", "treatment", "treatment_time", "cluster", "outcomes", "start_date", "end_date",
            "treatment_date")}, outcome_name=kwargs.get("outcome_name", "os"),
            time_unit=kwargs.get("time_unit", "months"), competing=kwargs.get("competing"),
            date_format=kwargs.get("date_format"), dayfirst=bool(kwargs.get("dayfirst", False)))
        conf = _Confounders.declare(kwargs.get("confounders", ()), kwargs.get("categorical", ()),
                                    kwargs.get("reference"))
        _check_columns(inp, roles, conf)
        _recode(inp, normalize_codes(kwargs.get("codes")))
        _dates_to_times(inp, roles)
        out = {**roles.as_dict(), "outcome_name": roles.outcome_name,
               "outcomes": {k: ({"time": t, "event": ev, "competing": list(roles.competing[k])}
                                if roles.competing.get(k) else (t, ev))
                            for k, (t, _, ev) in roles.extra.items()},
               "competing": list(roles.competing.get(roles.outcome_name, ())) or None}
        return inp.df.copy(deep=True), {k: v for k, v in out.items() if v is not None and v != {}}

    def _store(self, inp: "_Input", roles: "_Roles", conf: "_Confounders", checked: dict[str, Any], design: Any,
               refs: dict[str, str], warns: list[str], missing: str) -> None:
        """Step 9, arrays: freeze everything the designs read."""
        set_ = object.__setattr__
        X, xcols = design.X, list(design.names)
        n = len(inp.df)
        tt = checked["tt"]
        set_(self, "n", n)
        set_(self, "ids", _freeze(np.array(checked["ids"], copy=True)))
        set_(self, "treatment", _freeze(np.ascontiguousarray(checked["trt"], dtype=np.int8)))
        set_(self, "treatment_time", _freeze(np.ascontiguousarray(tt, dtype=float)) if tt is not None else None)
        set_(self, "cluster", _freeze(np.array(checked["clus"], copy=True)) if checked["clus"] is not None else None)
        set_(self, "X", _freeze(np.ascontiguousarray(X)))
        set_(self, "confounder_columns", xcols)
        set_(self, "confounders", list(conf.names))
        set_(self, "confounder_map", {k: list(v) for k, v in design.entry_columns.items()})
        set_(self, "confounder_terms", {k: list(v) for k, v in design.term_columns.items()})
        set_(self, "categorical", [c for c in conf.formula.columns() if c in refs])
        set_(self, "reference_levels", refs)
        outcome_cols = roles.outcome_columns()
        set_(self, "outcome_names", list(outcome_cols))
        set_(self, "outcome_columns", dict(outcome_cols))
        set_(self, "_times", {k: _freeze(np.ascontiguousarray(v, dtype=float)) for k, v in checked["times"].items()})
        set_(self, "_events", {k: _freeze(np.ascontiguousarray(v == 1, dtype=np.int8))
                               for k, v in checked["events"].items()})
        set_(self, "_competing", {k: tuple(roles.competing.get(k, ())) for k in checked["events"]})
        set_(self, "_status", {k: _freeze(np.ascontiguousarray(v, dtype=np.int8))
                               for k, v in checked["events"].items() if roles.competing.get(k)})
        set_(self, "roles", roles.as_dict())
        set_(self, "date_roles", roles.date_roles())
        set_(self, "time_unit", roles.time_unit)
        set_(self, "date_parse", roles.date_parse())
        set_(self, "rows_dropped", checked["n_drop"])
        set_(self, "dropped_by", checked["dropped_by"])
        set_(self, "warnings", warns)
        set_(self, "source", inp.source)
        set_(self, "source_rows", _freeze(np.arange(n)))
        set_(self, "_frame", inp.df)
        set_(self, "_frame_rows", None)
        set_(self, "_cache", {})
        set_(self, "timeline", None)
        set_(self, "_frozen", True)

    def with_timeline(self, timeline: Any) -> "Cohort":
        """The same cohort holding ``timeline`` (:class:`causal_hcc.timeline.Timeline`, one row per cohort row).

        Its warnings are added to the cohort's. No re-validation.
        """
        if timeline is not None and timeline.n != self.n:
            raise ValueError(f"timeline has {timeline.n} rows, the cohort {self.n}")
        new = object.__new__(Cohort)
        set_ = object.__setattr__
        for name in self.__slots__:
            set_(new, name, getattr(self, name))
        set_(new, "_frozen", False)
        set_(new, "timeline", timeline)
        set_(new, "warnings", list(self.warnings) + (list(timeline.warnings) if timeline is not None else []))
        set_(new, "_cache", {})
        set_(new, "_frozen", True)
        return new

    @property
    def time_varying_confounders(self) -> tuple[str, ...]:
        """The declared time-varying confounders (``()`` without a timeline)."""
        return tuple(self.timeline.confounders) if self.timeline is not None else ()

    @staticmethod
    def _factor(
        c: str, s: pd.Series, labels: Mapping[Any, str] | None, ref: Any, warns: list[str],
        where: Any = None, default_ref: str = "frequent",
    ) -> tuple[Factor, str]:
        """The column as a categorical variable: its levels (named ``c=level`` in ``X``) and reference.

        Refuses (one line) a text level longer than :data:`MAX_LEVEL_CHARS`,
        more than :data:`MAX_LEVELS` levels, and levels that are values of a
        continuous variable (:func:`_continuous_levels`), before encoding
        anything. ``default_ref``: ``"frequent"`` (the most frequent level,
        for a confounder listed on its own) or ``"first"`` (R's
        ``contr.treatment``, for a variable used only inside terms).
        """
        obj = s.to_numpy(dtype=object)
        long_ = np.fromiter((isinstance(v, str) and len(v) > MAX_LEVEL_CHARS for v in obj), dtype=bool, count=len(obj))
        if long_.any():
            first = obj[long_][0]
            at = f" at {where(long_)}" if where else ""
            raise DataError(f"column '{_short(c)}' (confounder) holds a text value of {len(first):,} characters{at} "
                            f"({quote(first, 20)}); a categorical level may have at most {MAX_LEVEL_CHARS}")
        n_levels = int(s.nunique(dropna=True))
        if n_levels > MAX_LEVELS:
            raise DataError(f"column '{_short(c)}' (confounder) is categorical with {n_levels:,} levels, more than "
                            f"{MAX_LEVELS}; group the levels with codes: {{{_short(c)}: {{raw: group}}}} or give a "
                            "number")
        if labels:
            # SPSS/Stata value labels: codes become their labels, in code order
            codes = sorted({*labels.keys(), *s.dropna().unique().tolist()}, key=lambda v: (isinstance(v, str), v))
            mapping = {code: str(labels.get(code, _level_name(code))) for code in codes}
            lev = s.map(lambda v: mapping.get(v, _level_name(v)) if pd.notna(v) else None)
            order = list(dict.fromkeys(mapping[k] for k in codes))
        elif isinstance(s.dtype, pd.CategoricalDtype):
            order = [_level_name(v) for v in s.cat.categories]
            lev = s.astype(object).map(lambda v: _level_name(v) if pd.notna(v) else None)
        else:
            vals = s.dropna().unique().tolist()
            numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                          for v in vals)
            vals = sorted(vals, key=float) if numeric else sorted(vals, key=_level_name)
            order = list(dict.fromkeys(_level_name(v) for v in vals))
            lev = s.astype(object).map(lambda v: _level_name(v) if pd.notna(v) else None)
        lev_arr = lev.to_numpy(dtype=object)
        counts = {L: int(np.sum(lev_arr == L)) for L in order}
        order = [L for L in order if counts[L] > 0]  # unused categories carry no information
        if not labels:
            _continuous_levels(c, s, order, counts)
        if ref is not None:
            ref = _level_name(ref)
            if ref not in order:
                raise DataError(f"reference level '{_short(ref)}' for '{c}' not found; levels: {', '.join(order)}")
        elif default_ref == "first" and order:
            ref = order[0]
        else:
            ref = max(order, key=lambda L: (counts[L], -order.index(L)))
        if len(order) > _MANY_LEVELS:
            warns.append(f"confounder '{c}' is categorical with {len(order)} levels")
        index = {L: j for j, L in enumerate(order)}
        codes_ = np.fromiter((index.get(v, -1) for v in lev_arr), dtype=np.intp, count=len(lev_arr))
        return Factor(codes_, tuple(order), order.index(ref), c), ref

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame,
        roles: Mapping[str, Any],
        confounders: Sequence[str] = (),
        **kwargs: Any,
    ) -> "Cohort":
        """Build a cohort from a ``roles`` mapping (the spec's ``roles:`` block).

        ``roles`` holds ``id``, ``time``, ``event``, ``treatment`` and
        optionally ``treatment_time`` and ``cluster``; empty values are ignored.
        Other keyword arguments go to :class:`Cohort`.
        """
        unknown = [k for k in roles if k not in ROLE_NAMES]
        if unknown:
            raise SpecError(
                f"roles: unknown role '{unknown[0]}'{closest(unknown[0], ROLE_NAMES)}; valid roles: {', '.join(ROLE_NAMES)}"
            )
        required = ("id", "time", "event", "treatment")
        absent = [k for k in required if not roles.get(k) and not (k == "time" and roles.get("end_date"))
                  and not (k == "treatment" and roles.get("treatment_date"))]
        if absent:
            raise SpecError(f"roles: '{absent[0]}' is required; required roles: {', '.join(required)}")
        r = {k: v for k, v in roles.items() if v is not None and v != ""}
        return cls(data, confounders=confounders, **r, **kwargs)

    # ------------------------------------------------------------------
    # immutability
    # ------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"Cohort is immutable; cannot set '{name}'")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Cohort is immutable; cannot delete '{name}'")

    # ------------------------------------------------------------------
    # access
    # ------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (
            f"Cohort(n={self.n}, treated={int(self.treatment.sum())}, outcomes={self.outcome_names}, "
            f"confounders={self.confounders}, source={self.source!r})"
        )

    def _outcome(self, outcome: str | None) -> str:
        if outcome is None:
            return self.outcome_names[0]
        if outcome not in self._times:
            raise SpecError(
                f"unknown outcome '{outcome}'{closest(outcome, self.outcome_names)}; outcomes: {', '.join(self.outcome_names)}"
            )
        return outcome

    def time(self, outcome: str | None = None) -> np.ndarray:
        """Follow-up time of ``outcome`` (default: the primary outcome), read-only floats."""
        return self._times[self._outcome(outcome)]

    def event(self, outcome: str | None = None) -> np.ndarray:
        """Event indicator (int8 0/1) of ``outcome`` (default: the primary outcome).

        For an outcome with competing events, 1 marks the event of interest
        only; :meth:`status` holds every code.
        """
        return self._events[self._outcome(outcome)]

    def status(self, outcome: str | None = None) -> np.ndarray:
        """Event codes (int8) of ``outcome``: 0 censored, 1 the event of interest, 2, 3, ... competing events.

        Equal to :meth:`event` for an outcome without competing events.
        """
        name = self._outcome(outcome)
        return self._status.get(name, self._events[name])

    def competing(self, outcome: str | None = None) -> tuple[int, ...]:
        """The declared competing event codes of ``outcome`` (empty without competing events)."""
        return self._competing.get(self._outcome(outcome), ())

    def _rows(self) -> np.ndarray:
        return np.arange(len(self._frame)) if self._frame_rows is None else self._frame_rows

    def column(self, name: str) -> np.ndarray:
        """Any column of the validated input as a (read-only) numpy array, in cohort row order."""
        if name not in self._frame.columns:
            cols = [str(c) for c in self._frame.columns]
            raise DataError(f"column '{name}' not found{closest(name, cols)}; columns: {', '.join(cols[:_SHOW_COLUMNS])}")
        a = self._frame[name].to_numpy()
        a = a[self._frame_rows] if self._frame_rows is not None else a.copy()
        return _freeze(a)

    def frame(self) -> pd.DataFrame:
        """A copy of the validated DataFrame (rows after complete-case filtering, in cohort order)."""
        if self._frame_rows is None:
            return self._frame.copy(deep=True)
        return self._frame.iloc[self._frame_rows].copy(deep=True)

    def confounder_variables(self) -> list[str]:
        """The data columns the confounders read (a formula term's variables), in order."""
        return parse_confounders(self.confounders, [str(c) for c in self._frame.columns]).columns()

    @property
    def n_treated(self) -> int:
        return int(self.treatment.sum())

    def summary_counts(self) -> dict[str, Any]:
        """Aggregate counts only: ``n``, ``n_treated``, ``n_untreated``, ``events`` per outcome, ``rows_dropped``."""
        nt = self.n_treated
        return {
            "n": self.n,
            "n_treated": nt,
            "n_untreated": self.n - nt,
            "events": {k: int(v.sum()) for k, v in self._events.items()},
            "rows_dropped": self.rows_dropped,
            **({"competing_events": {k: {str(c): int((v == c).sum()) for c in self._competing[k]}
                                     for k, v in self._status.items()}} if self._status else {}),
        }

    @property
    def data_hash(self) -> str:
        """sha256 (hex) of a canonical serialisation of the columns in use.

        Covers role and confounder column names, ids, every outcome's time and
        event, treatment, treatment time, cluster and the design matrix ``X``,
        as little-endian int64, float64 (NaN and -0.0 canonicalised) or UTF-8
        text.
        Stable across runs and machines; row order matters.
        """
        h = self._cache.get("data_hash")
        if h is None:
            h = self._compute_hash()
            self._cache["data_hash"] = h
        return h

    def _compute_hash(self) -> str:
        h = hashlib.sha256()

        def add(tag: str, a: np.ndarray | None) -> None:
            h.update(tag.encode("utf-8") + b"\x00")
            if a is None:
                h.update(b"<none>\x00")
                return
            a = np.asarray(a)
            if a.dtype.kind in "biu":  # exact, also for ids beyond 2**53
                h.update(f"{a.shape}i".encode() + np.ascontiguousarray(a, dtype="<i8").tobytes())
            elif a.dtype.kind == "f":
                f = np.asarray(a, dtype=float) + 0.0  # -0.0 -> 0.0
                f = np.where(np.isnan(f), np.nan, f)  # one NaN bit pattern
                h.update(f"{f.shape}".encode() + np.ascontiguousarray(f, dtype="<f8").tobytes())
            else:
                h.update("\x1f".join(_level_name(v) for v in a.ravel()).encode("utf-8"))
            h.update(b"\x00")

        h.update(b"causal_hcc.cohort.v1\x00")
        add("roles " + repr(sorted((k, str(v)) for k, v in self.roles.items())), None)
        add("id", self.ids)
        for name in self.outcome_names:
            tcol, ecol = self.outcome_columns[name]
            add(f"time {name} {tcol}", self._times[name])
            add(f"event {name} {ecol}", self._events[name])
            if name in self._status:
                add(f"status {name} {ecol} competing {list(self._competing[name])}", self._status[name])
        add("treatment", self.treatment)
        add("treatment_time", self.treatment_time)
        add("cluster", self.cluster)
        add("X " + "\x1f".join(self.confounder_columns), self.X)
        if self.timeline is not None:  # (absent: the hash of a cohort without one is unchanged)
            m = self.timeline.measurements()
            add("timeline " + "\x1f".join(self.timeline.columns), m["row"])
            add("timeline time", m["time"])
            add("timeline values", m["values"])
            add("eligibility_end", self.timeline.eligibility_end)
            add("censored", self.timeline.censored)
        return h.hexdigest()

    # ------------------------------------------------------------------
    # resampling
    # ------------------------------------------------------------------
    def select_confounders(self, variables: Sequence[str]) -> "Cohort":
        """The same cohort with only ``variables`` as confounders (declared names).

        A categorical variable keeps all of its indicator columns. Used when a
        strategy adjusts for a subset of the spec's confounders, so that its
        design and adjustment never see the others. No re-validation.
        """
        unknown = [v for v in variables if v not in self.confounders]
        if unknown:
            raise SpecError(f"confounders {unknown} are not among the cohort's confounders: "
                            f"{', '.join(self.confounders)}")
        wanted = {x for v in variables for x in self.confounder_map.get(v, ())}
        keep = [j for j, c in enumerate(self.confounder_columns) if c in wanted]
        new = object.__new__(Cohort)
        set_ = object.__setattr__
        for name in self.__slots__:
            set_(new, name, getattr(self, name))
        set_(new, "_frozen", False)
        set_(new, "X", _freeze(self.X[:, keep]))
        set_(new, "confounder_columns", [self.confounder_columns[j] for j in keep])
        set_(new, "confounders", [v for v in self.confounders if v in variables])
        set_(new, "reference_levels", {k: v for k, v in self.reference_levels.items() if k in variables})
        set_(new, "confounder_map", {k: v for k, v in self.confounder_map.items() if k in variables})
        set_(new, "confounder_terms", {k: v for k, v in self.confounder_terms.items() if set(v) <= wanted})
        set_(new, "_cache", {})
        set_(new, "_frozen", True)
        return new

    def take(self, indices: Iterable[int] | np.ndarray) -> "Cohort":
        """A new cohort of the rows at ``indices`` (positions; duplicates allowed).

        No re-validation: the rows were checked when this cohort was built.
        A row taken twice becomes two distinct patients (positions ``0..k-1``
        of the new cohort) that keep the same ``ids``; ``source_rows`` maps
        them back to the original validated rows. Intended for the bootstrap
        (Efron & Tibshirani 1993), so it costs only numpy fancy indexing.

        References
        ----------
        .. [1] Efron B, Tibshirani RJ. *An Introduction to the Bootstrap*.
           Chapman & Hall, 1993.
        """
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            if idx.size == 0:
                idx = idx.astype(np.intp)
            else:
                raise TypeError("take() needs integer positions")
        new = object.__new__(Cohort)
        set_ = object.__setattr__
        set_(new, "_frozen", False)
        set_(new, "n", int(idx.shape[0]))
        set_(new, "ids", _freeze(self.ids[idx]))
        set_(new, "treatment", _freeze(self.treatment[idx]))
        set_(new, "treatment_time", _freeze(self.treatment_time[idx]) if self.treatment_time is not None else None)
        set_(new, "cluster", _freeze(self.cluster[idx]) if self.cluster is not None else None)
        set_(new, "X", _freeze(self.X[idx]))
        set_(new, "_times", {k: _freeze(v[idx]) for k, v in self._times.items()})
        set_(new, "_events", {k: _freeze(v[idx]) for k, v in self._events.items()})
        set_(new, "_status", {k: _freeze(v[idx]) for k, v in self._status.items()})
        set_(new, "_competing", self._competing)
        set_(new, "source_rows", _freeze(self.source_rows[idx]))
        set_(new, "_frame_rows", new.source_rows)
        set_(new, "timeline", self.timeline.take(idx) if self.timeline is not None else None)
        for name in ("confounder_columns", "confounders", "categorical", "reference_levels", "outcome_names",
                     "outcome_columns", "roles", "rows_dropped", "dropped_by", "warnings", "source", "_frame",
                     "date_roles", "time_unit", "confounder_map", "confounder_terms", "date_parse"):
            set_(new, name, getattr(self, name))
        set_(new, "_cache", {})
        set_(new, "_frozen", True)
        return new


# --------------------------------------------------------------------------
# the construction steps (Cohort.__init__ runs them in order)
# --------------------------------------------------------------------------
class _Input:
    """Step 1, read: the cohort's private copy of the data and how to name its rows."""

    def __init__(self, df: pd.DataFrame, vlabels: dict[str, dict[Any, str]], source: str) -> None:
        self.df = df
        self.vlabels = vlabels
        self.source = source
        self.from_file = source != "DataFrame"
        self.index_labels = df.index.to_numpy()
        self.orig = np.arange(len(df))  # position in the caller's frame of each current row
        self.columns = [str(c) for c in df.columns]
        self.notes: list[str] = []  # warnings of the input steps (e.g. a derived treatment)

    @classmethod
    def read(cls, data: pd.DataFrame, source: str) -> "_Input":
        # our own copy: later edits of the caller's frame do not leak in, and ours never reach it
        inp = cls(data.copy(deep=True), _value_labels(data), source)
        rows = data.attrs.get("data_rows") if isinstance(data.attrs, dict) else None
        if inp.from_file and rows is not None and len(rows) == len(data):  # person-period: each patient's first row
            inp.orig = np.asarray(rows, dtype=np.int64)
        return inp

    def where(self, mask_or_pos: np.ndarray) -> str:
        """``data rows 3, 7`` (file) or ``index 2, 6`` (DataFrame), at most three shown."""
        pos = np.flatnonzero(mask_or_pos) if mask_or_pos.dtype == bool else np.asarray(mask_or_pos)
        k = len(pos)
        shown = pos[:_SHOW_ROWS]
        if self.from_file:
            word = "data row" if k == 1 else "data rows"
            labels = [str(int(self.orig[p]) + 1) for p in shown]
        else:
            word = "index"
            labels = [_level_name(self.index_labels[self.orig[p]]) for p in shown]
        more = f" (+{k - _SHOW_ROWS} more)" if k > _SHOW_ROWS else ""
        return f"{word} {', '.join(labels)}{more}"

    def keep(self, mask: np.ndarray) -> None:
        self.df = self.df.loc[mask]  # boolean mask: keeps duplicate index labels right
        self.orig = self.orig[mask]

    def not_found(self, col: str) -> DataError:
        shown = ", ".join(_short(c) for c in self.columns[:_SHOW_COLUMNS])
        if len(self.columns) > _SHOW_COLUMNS:
            shown += f", ... (+{len(self.columns) - _SHOW_COLUMNS} more)"
        return DataError(f"column '{_short(col)}' not found{closest(col, self.columns)}; columns: {shown}")


class _Roles:
    """Step 2, roles: which column plays which part (dates resolved to times in step 4)."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    @classmethod
    def declare(cls, *, id: Any, time: Any, event: Any, treatment: Any, treatment_time: Any, cluster: Any,
                outcomes: Mapping[str, Any] | None, outcome_name: str, start_date: Any, end_date: Any,
                treatment_date: Any, time_unit: str, competing: Any = None, date_format: str | None = None,
                dayfirst: bool = False) -> "_Roles":
        outcomes = dict(outcomes or {})
        if time is None and end_date is None:
            raise SpecError("roles: give the follow-up as 'time' or as 'start_date' and 'end_date'")
        if time is not None and end_date is not None:
            raise SpecError("roles: give the follow-up either as 'time' or as 'start_date' and 'end_date', not both")
        if end_date is not None and start_date is None:
            raise SpecError("roles: 'end_date' needs 'start_date' (time zero)")
        if treatment_time is not None and treatment_date is not None:
            raise SpecError("roles: give either 'treatment_time' or 'treatment_date', not both")
        if treatment_date is not None and start_date is None:
            raise SpecError("roles: 'treatment_date' needs 'start_date' (time zero)")
        if treatment is None and treatment_date is None:
            raise SpecError("roles: give 'treatment', or 'treatment_date' to derive it from (treated = a date on or "
                            "before the end date)")
        if start_date is not None and end_date is None and time is not None:
            raise SpecError("roles: 'start_date' needs 'end_date' (the follow-up is then computed from dates)")
        dates = start_date is not None
        if dates and time_unit not in DAYS_PER_UNIT:
            raise SpecError(f"time_unit must be one of {', '.join(TIME_UNITS)} when times are computed from dates, "
                            f"got {shown(time_unit)}")
        if (date_format is not None or dayfirst) and not dates:
            raise SpecError("roles: 'date_format' and 'dayfirst' apply to the date roles; give 'start_date' and "
                            "'end_date' or remove them")
        if date_format is not None:
            from causal_hcc.recode import check_date_format

            check_date_format(date_format)
        if outcome_name in outcomes:
            raise SpecError(f"outcome '{outcome_name}' is both the primary outcome and an extra outcome")
        extra: dict[str, tuple[str | None, str | None, Any]] = {}
        comp: dict[str, tuple[int, ...]] = {}
        if competing is not None:
            comp[outcome_name] = competing_codes(competing, "competing")
        for name, pair in outcomes.items():
            if isinstance(pair, Mapping):
                unknown = [k for k in pair if k not in ("time", "end_date", "event", "competing")]
                if pair.get("competing") is not None:
                    comp[name] = competing_codes(pair["competing"], f"outcomes.{name}.competing")
                t, e, ev = pair.get("time"), pair.get("end_date"), pair.get("event")
                if unknown or ev is None or (t is None) == (e is None):
                    raise SpecError(f"outcome '{name}' must give 'event' and one of 'time' or 'end_date' (and "
                                    f"optionally 'competing'), got {sorted(map(str, pair))}")
                if e is not None and not dates:
                    raise SpecError(f"outcome '{name}': 'end_date' needs the role 'start_date' (time zero)")
                extra[name] = (t, e, ev)
            elif isinstance(pair, (tuple, list)) and len(pair) == 2:
                extra[name] = (pair[0], None, pair[1])
            else:
                raise SpecError(f"outcome '{name}' must be a pair (time column, event column), got {shown(pair)}")
        r = cls(id=id, time=time, event=event, treatment=treatment, treatment_time=treatment_time, cluster=cluster,
                outcome_name=outcome_name, extra=extra, start_date=start_date, end_date=end_date,
                treatment_date=treatment_date, time_unit=time_unit, competing={k: v for k, v in comp.items() if v},
                date_format=date_format, dayfirst=bool(dayfirst))
        for role, col in r.columns():
            if not isinstance(col, str):
                raise SpecError(f"role '{role}' must be a column name, got {shown(col)}")
        return r

    def columns(self) -> list[tuple[str, str]]:
        """``(role, column)`` of every role given, in the order messages check them."""
        out: list[tuple[str, Any]] = [("id", self.id)]
        out += [("start_date", self.start_date)] if self.start_date is not None else []
        out += [("time", self.time)] if self.time is not None else [("end_date", self.end_date)]
        out += [("event", self.event)] + ([("treatment", self.treatment)] if self.treatment is not None else [])
        if self.treatment_time is not None:
            out.append(("treatment_time", self.treatment_time))
        if self.treatment_date is not None:
            out.append(("treatment_date", self.treatment_date))
        if self.cluster is not None:
            out.append(("cluster", self.cluster))
        for name, (t, e, ev) in self.extra.items():
            out += [(f"{name} time", t) if t is not None else (f"{name} end_date", e), (f"{name} event", ev)]
        return out

    def outcome_columns(self) -> dict[str, tuple[str, str]]:
        """Outcome -> (time column, event column); after step 4 every time column exists."""
        out = {self.outcome_name: (self.time, self.event)}
        out.update({k: (t, ev) for k, (t, _, ev) in self.extra.items()})
        return out

    def as_dict(self) -> dict[str, Any]:
        """The roles as :meth:`Cohort.from_frame` takes them, on the validated frame (times, not dates)."""
        return {"id": self.id, "time": self.time, "event": self.event, "treatment": self.treatment,
                "treatment_time": self.treatment_time, "cluster": self.cluster}

    def date_parse(self) -> dict[str, Any]:
        """How text dates are read (:func:`causal_hcc.recode.to_days` keywords); empty for ISO 8601."""
        out: dict[str, Any] = {}
        if getattr(self, "date_format", None) is not None:
            out["date_format"] = self.date_format
        if getattr(self, "dayfirst", False):
            out["dayfirst"] = True
        return out

    def date_roles(self) -> dict[str, Any]:
        return {k: v for k, v in (("start_date", self.start_date), ("end_date", self.end_date),
                                  ("treatment_date", self.treatment_date)) if v is not None}


class _Confounders:
    """The declared confounders (column names or formula terms), categorical ones and reference levels.

    ``formula`` is the confounder list parsed (never evaluated) into R's
    terms by :func:`causal_hcc.formula.parse_confounders`, once the data's
    column names are known (:func:`_check_columns`).
    """

    def __init__(self, names: list[str], categorical: list[str], reference: dict[str, Any]) -> None:
        self.names, self.categorical, self.reference = names, categorical, reference
        self.formula: Formula = parse_confounders([], [])

    @classmethod
    def declare(cls, confounders: Sequence[str] | str, categorical: Sequence[str] | str,
                reference: Mapping[str, Any] | None) -> "_Confounders":
        names = [confounders] if isinstance(confounders, str) else list(confounders)
        cats = [categorical] if isinstance(categorical, str) else list(categorical)
        return cls(names, cats, dict(reference or {}))

    def parse(self, data_columns: Sequence[str]) -> None:
        self.formula = parse_confounders(self.names, data_columns)

    def is_term(self, c: str) -> bool:
        return any(e.text == c and not e.bare for e in self.formula.entries)

    def columns(self) -> list[str]:
        """Data columns the confounders read (a formula term's variables)."""
        return self.formula.columns()


def _check_columns(inp: _Input, roles: _Roles, conf: _Confounders) -> None:
    """Step 2 (data side): every named column exists, once, with one role."""
    cols = inp.columns
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise DataError(f"column '{_short(dup)}' appears more than once in the data")
    for c in conf.names:
        if conf.names.count(c) > 1:
            raise SpecError(f"confounder '{c}' is listed twice")
    conf.parse(cols)  # the terms' syntax (SpecError, one line); nothing is evaluated
    role_cols = roles.columns()
    for col in [c for _, c in role_cols]:
        if col not in inp.df.columns:
            raise inp.not_found(col)
    for col in conf.columns():
        if col not in inp.df.columns:
            err = inp.not_found(col)
            raise DataError(f"{err}{non_ascii_note(col)}") if non_ascii_note(col) else err
    seen: dict[str, str] = {}
    time_roles = {"time"} | {f"{k} time" for k in roles.extra}
    for role, col in role_cols:
        if col in seen:
            # outcomes may share their follow-up time (overall and cause-specific death, competing risks)
            if role in time_roles and seen[col] in time_roles:
                continue
            raise DataError(f"column '{col}' is used for two roles: {seen[col]} and {role}")
        seen[col] = role
    for e in conf.formula.entries:
        if e.bare and e.text in seen:
            raise DataError(f"confounder '{e.text}' is also the {seen[e.text]} column")
        if not e.bare:
            for v in parse_confounders([e.text], cols).columns():
                if v in seen:
                    raise DataError(f"confounder '{e.text}' uses '{v}', the {seen[v]} column")
    # categorical / reference may name a confounder or a variable used only inside terms (R: factor(x) anywhere)
    variables = conf.columns()
    for key, names in (("categorical", conf.categorical), ("reference", list(conf.reference))):
        for c in names:
            if c in conf.names and conf.is_term(c):
                raise SpecError(f"{key}: '{c}' is a formula term; declare its variables under {key} instead")
            if c not in conf.names and c not in variables:
                raise SpecError(
                    f"{key}: '{c}' is not a confounder{closest(c, conf.names + variables)}; "
                    f"confounders: {', '.join(conf.names) or 'none'}"
                )
    if len(inp.df) == 0:
        raise DataError("the data has no rows")


def _recode(inp: _Input, codes: Mapping[str, Mapping[str, Any]]) -> None:
    """Step 3, codes: ``{column: {raw: value}}`` replaces raw values before validation."""
    if codes:
        inp.df = apply_codes(inp.df, codes, inp.columns)


def _derived_name(inp: _Input, name: str) -> str:
    while name in inp.df.columns:
        name += "_"
    return name


def _dates_to_times(inp: _Input, roles: _Roles) -> None:
    """Step 4, dates: ``start_date``/``end_date``/``treatment_date`` become times in ``time_unit``.

    Adds the computed columns (named ``end-start``) to the private frame and
    points the ``time``/``treatment_time`` roles at them; the same-day rule of
    :mod:`causal_hcc.recode` applies.
    """
    if roles.start_date is None:
        return
    df, where, unit = inp.df, inp.where, DAYS_PER_UNIT[roles.time_unit]

    def dates(col: str, role: str, required: bool) -> np.ndarray:
        d = to_days(df[col], col, role, where, **roles.date_parse())
        if required:
            _check_missing(inp, col, role, np.isnan(d))
        return d

    start = dates(roles.start_date, "start_date", True)

    def follow_up(col: str, role: str) -> np.ndarray:
        end = dates(col, role, True)
        bad = end < start
        if bad.any():
            raise DataError(f"column '{col}' ({role}) is before '{roles.start_date}' (start_date) at {where(bad)}")
        return np.where(end == start, SAME_DAY, end - start)

    fu = follow_up(roles.end_date, "end_date")
    tname = _derived_name(inp, f"{roles.end_date}-{roles.start_date}")
    df[tname] = fu / unit
    roles.time = tname
    for name, (t, e, ev) in list(roles.extra.items()):
        if e is not None:
            col = _derived_name(inp, f"{e}-{roles.start_date}")
            df[col] = follow_up(e, f"{name} end_date") / unit
            roles.extra[name] = (col, e, ev)
    if roles.treatment_date is not None:
        tcol = roles.treatment_date
        tx = dates(tcol, "treatment_date", False)
        bad = tx < start
        if bad.any():
            raise DataError(f"column '{tcol}' (treatment_date) is before '{roles.start_date}' (start_date) "
                            f"at {where(bad)}")
        end = start + np.where(fu == SAME_DAY, 0.0, fu)
        bad = tx > end
        if roles.treatment is None:
            # no treatment column: treated = a treatment date on or before the end date
            if bad.any():
                k = int(bad.sum())
                inp.notes.append(f"{k} {'patient' if k == 1 else 'patients'} with '{tcol}' (treatment_date) after "
                                 f"'{roles.end_date}' (end_date) counted as untreated ({where(bad)})")
                tx = np.where(bad, np.nan, tx)
            trname = _derived_name(inp, "treated")
            df[trname] = (~np.isnan(tx)).astype(np.int8)
            roles.treatment = trname
        elif bad.any():
            raise DataError(f"column '{tcol}' (treatment_date) is after '{roles.end_date}' (end_date) at {where(bad)}")
        tt = tx - start
        tt = np.where(~np.isnan(tx) & (tx == end) & (fu > SAME_DAY), tt - SAME_DAY, tt)
        ttname = _derived_name(inp, f"{tcol}-{roles.start_date}")
        df[ttname] = tt / unit
        roles.treatment_time = ttname


def _check_missing(inp: _Input, col: str, role: str, isna: np.ndarray) -> None:
    k = int(isna.sum())
    if k:
        what = "missing value" if k == 1 else "missing values"
        raise DataError(f"column '{col}' ({role}) has {k} {what} at {inp.where(isna)}")


def _first_bad(s: pd.Series, bad: np.ndarray) -> np.ndarray:
    """Of the flagged rows, the ones that are not numbers written as text, if there are any.

    A CSV column holding ``1``, ``0`` and one ``yes`` is read as text
    throughout; the message should name the ``yes``, not every row.
    """
    obj = s.astype(object).to_numpy()
    texty = np.array([isinstance(v, str) and _numeric_text(v) for v in obj], dtype=bool)
    real = bad & ~texty
    return real if real.any() else bad


def _numeric_text(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _numeric(inp: _Input, col: str, role: str, *, positive: bool) -> np.ndarray:
    s = inp.df[col]
    vals, bad = _to_float(s)
    if bad.any():
        first = s.iloc[int(np.flatnonzero(bad)[0])]
        raise DataError(f"column '{col}' ({role}) must be numeric; found {_fmt_value(first)} at {inp.where(bad)}")
    if positive:
        _check_missing(inp, col, role, np.isnan(vals))
    inf = np.isinf(vals)
    if inf.any():
        raise DataError(f"column '{col}' ({role}) has infinite values at {inp.where(inf)}")
    neg = vals < 0
    if neg.any():
        raise DataError(f"column '{col}' ({role}) has negative values at {inp.where(neg)}")
    if positive:
        zero = vals == 0
        if zero.any():
            raise DataError(f"column '{col}' ({role}) has zero follow-up time at {inp.where(zero)}")
    return vals


def _binary(inp: _Input, col: str, role: str, allowed: str) -> np.ndarray:
    s = inp.df[col]
    vals, bad = _to_binary(s)
    if bad.any():
        bad = _first_bad(s, bad)
        first = s.iloc[int(np.flatnonzero(bad)[0])]
        raise DataError(f"column '{col}' ({role}) must be {allowed}; found {_fmt_value(first)} at {inp.where(bad)}")
    _check_missing(inp, col, role, np.isnan(vals))
    return vals.astype(np.int8)


def competing_codes(value: Any, key: str) -> tuple[int, ...]:
    """The declared competing event codes (whole numbers >= 2, distinct), or a one-line SpecError."""
    vals = value if isinstance(value, (list, tuple)) else [value]
    out: list[int] = []
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)) \
                or not float(v).is_integer():
            raise SpecError(f"{key}: competing event codes must be whole numbers (2, 3, ...), got {shown(v)}")
        c = int(v)
        if c in (0, 1):
            raise SpecError(f"{key}: {c} cannot be a competing event code (0 = censored, 1 = the event of "
                            f"interest); competing events are coded 2, 3, ...")
        if c < 0:
            raise SpecError(f"{key}: competing event codes must be 2, 3, ..., got {c}")
        if c in out:
            raise SpecError(f"{key}: code {c} is listed twice")
        out.append(c)
    return tuple(out)


def _event_codes(inp: _Input, col: str, role: str, codes: tuple[int, ...], key: str) -> np.ndarray:
    """Event column of an outcome with competing events: 0, 1 or a declared code; every declared code present."""
    s = inp.df[col]
    vals, bad = _to_float(s)
    allowed = f"0 (censored), 1 (the event) or a declared competing code ({', '.join(map(str, codes))})"
    if bad.any():
        bad = _first_bad(s, bad)
        first = s.iloc[int(np.flatnonzero(bad)[0])]
        raise DataError(f"column '{col}' ({role}) must be {allowed}; found {_fmt_value(first)} at {inp.where(bad)}")
    _check_missing(inp, col, role, np.isnan(vals))
    ok = np.isin(vals, np.asarray([0, 1, *codes], dtype=float))
    if not ok.all():
        first = vals[~ok][0]
        hint = (f"; declare it in '{key}'" if float(first).is_integer() and first >= 2 else "")
        raise DataError(f"column '{col}' ({role}) must be {allowed}; found {_fmt_value(first)} at "
                        f"{inp.where(~ok)}{hint}")
    absent = [c for c in codes if not (vals == c).any()]
    if absent:
        raise DataError(f"column '{col}' ({role}): competing event code{'s' if len(absent) > 1 else ''} "
                        f"{', '.join(map(str, absent))} declared in '{key}' but never found in the data")
    return vals.astype(np.int8)


def _validate_roles(inp: _Input, roles: _Roles) -> dict[str, Any]:
    """Step 6, validate: each role's values (id, outcomes, treatment and its timing, cluster)."""
    df, where = inp.df, inp.where
    ids_s = df[roles.id]
    _check_missing(inp, roles.id, "id", ids_s.isna().to_numpy())
    dup = ids_s.duplicated(keep=False).to_numpy()
    if dup.any():
        first = ids_s[ids_s.duplicated(keep="first")].iloc[0]
        rows = np.flatnonzero(dup & (ids_s == first).to_numpy())
        raise DataError(f"column '{roles.id}' (id) has duplicated values at {where(rows)} (value {_fmt_value(first)})")

    times: dict[str, np.ndarray] = {}
    events: dict[str, np.ndarray] = {}
    for name, (tcol, ecol) in roles.outcome_columns().items():
        prefix = "" if name == roles.outcome_name else f"{name} "
        times[name] = _numeric(inp, tcol, f"{prefix}time", positive=True)
        codes = roles.competing.get(name)
        if codes:
            events[name] = _event_codes(inp, ecol, f"{prefix}event", codes,
                                        "competing" if name == roles.outcome_name else f"outcomes.{name}.competing")
        else:
            events[name] = _binary(inp, ecol, f"{prefix}event", "0 or 1")

    trt = _binary(inp, roles.treatment, "treatment", "0/1 or True/False")
    n_trt = int(trt.sum())
    if n_trt == 0 or n_trt == len(trt):
        arm = "treated" if n_trt else "untreated"
        raise DataError(
            f"column '{roles.treatment}' (treatment) is constant: all {len(trt)} patients are {arm}; "
            "both arms are needed"
        )
    tt = None
    if roles.treatment_time is not None:
        tcol = roles.treatment_date or roles.treatment_time
        role = "treatment_date" if roles.treatment_date else "treatment_time"
        tt = _numeric(inp, roles.treatment_time, role, positive=False)
        na = np.isnan(tt)
        if roles.treatment_date is not None:
            no_date, no_trt = (trt == 1) & na, (trt == 0) & ~na
            if no_date.any() or no_trt.any():
                parts = ([f"treated without a date at {where(no_date)}"] if no_date.any() else []) + (
                    [f"a date without treated at {where(no_trt)}"] if no_trt.any() else [])
                raise DataError(f"columns '{roles.treatment}' (treatment) and '{tcol}' (treatment_date) disagree: "
                                f"{'; '.join(parts)}")
        bad = (trt == 1) & na
        if bad.any():
            raise DataError(f"column '{tcol}' ({role}) is missing for treated patients at {where(bad)}")
        bad = (trt == 0) & ~na
        if bad.any():
            raise DataError(f"column '{tcol}' ({role}) is set for untreated patients at {where(bad)}")
        bad = ~na & (tt > times[roles.outcome_name])
        if bad.any():
            raise DataError(
                f"column '{tcol}' ({role}) is after the end of follow-up ('{roles.time}') at {where(bad)}"
            )
    clus = None
    if roles.cluster is not None:
        cs = df[roles.cluster]
        _check_missing(inp, roles.cluster, "cluster", cs.isna().to_numpy())
        clus = cs.to_numpy()
    return {"ids": ids_s.to_numpy(), "times": times, "events": events, "trt": trt, "tt": tt, "clus": clus,
            "n_drop": 0, "dropped_by": {}}


def _complete_cases(inp: _Input, roles: _Roles, conf: _Confounders, checked: dict[str, Any], missing: str) -> None:
    """Step 7: missing confounder values fail (``missing: error``) or drop their rows (``complete_case``)."""
    where = inp.where
    miss = {c: inp.df[c].isna().to_numpy() for c in conf.columns()}
    any_miss = np.zeros(len(inp.df), dtype=bool)
    for m in miss.values():
        any_miss |= m
    keep = np.ones(len(inp.df), dtype=bool)
    if any_miss.any():
        parts = [f"'{c}' {int(m.sum())} ({where(m)})" for c, m in miss.items() if m.any()]
        if missing == "error":
            k = int(any_miss.sum())
            raise DataError(
                f"missing confounder values: {', '.join(parts)}; "
                f"set missing: complete_case to drop {'this row' if k == 1 else f'these {k} rows'}"
            )
        checked["dropped_by"] = {c: int(m.sum()) for c, m in miss.items() if m.any()}
        keep = ~any_miss
        if not keep.any():
            raise DataError(f"no rows left after dropping rows with missing confounders: {', '.join(parts)}")
    n_drop = int((~keep).sum())
    checked["n_drop"] = n_drop
    suffix = f" after dropping {n_drop} rows with missing confounders" if n_drop else ""
    if n_drop:
        inp.keep(keep)
        for k in ("ids", "trt", "tt", "clus"):
            if checked[k] is not None:
                checked[k] = checked[k][keep]
        checked["times"] = {k: v[keep] for k, v in checked["times"].items()}
        checked["events"] = {k: v[keep] for k, v in checked["events"].items()}
        for arm_value, arm in ((1, "treated"), (0, "untreated")):
            if not (checked["trt"] == arm_value).any():
                raise DataError(f"no {arm} patients left{suffix} (missing: complete_case)")
    for name, (_, ecol) in roles.outcome_columns().items():
        if not (checked["events"][name] == 1).any():
            prefix = "" if name == roles.outcome_name else f"{name} "
            what = "no events of interest (no 1)" if roles.competing.get(name) else "no events (all 0"
            raise DataError(f"column '{ecol}' ({prefix}event) has {what}{suffix}" + ("" if roles.competing.get(name)
                                                                                 else ")"))


def _refuse_numbers_with_text(c: str, s: pd.Series, where: Any) -> None:
    """A text column that is mostly numbers with a few non-numbers is a numeric confounder with a typo.

    A CSV reader gives a column of numbers with one ``abc`` (or ``n.a.``) as
    text throughout; taken as categorical it would silently become a factor
    with a level per distinct number. Refused unless the user declares the
    column under ``categorical`` (or it carries value labels). Text columns
    without numbers (``I``/``II``/``III``) are untouched.
    """
    if isinstance(s.dtype, pd.CategoricalDtype) or not (pdt.is_string_dtype(s.dtype) or s.dtype == object):
        return
    obj = s.to_numpy(dtype=object)
    codes, uniq = pd.factorize(obj)  # (each distinct value judged once; code -1: missing)
    is_num = np.fromiter(
        ((isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)))
         or (isinstance(v, str) and _numeric_text(v)) for v in uniq), dtype=bool, count=len(uniq))
    present = codes >= 0
    number = present & np.append(is_num, False)[codes]
    text = present & ~number
    if text.any() and number.sum() > text.sum():
        first = obj[text][0]
        raise DataError(f"column '{_short(c)}' (confounder) holds numbers and text: found {_fmt_value(first)} at "
                        f"{where(text)}; correct it, make it missing (codes: {{{_short(c)}: {{{quote(first, 20)}: "
                        f"null}}}}) or declare '{_short(c)}' under categorical")


def _continuous_levels(c: str, s: pd.Series, order: Sequence[str], counts: Mapping[str, int]) -> None:
    """Refuse level names that are values of a continuous variable (they would be written to the results).

    A categorical variable's level names go into ``results.json`` and the
    report as column names (``age=63.2``); ``C(age)`` would write every
    patient's age there. Levels that are numbers (numeric values, or text
    that reads as a number) look continuous, and are refused, when

    * a value is not a whole number (a measurement, e.g. 63.2), or
    * there are more than :data:`~causal_hcc.formula.MAX_NUMERIC_LEVELS`
      of them and one is held by fewer than 5 patients, or
    * at least 3 of them and more than half are held by one patient each.

    Codes (stage 1-4, 30 centres of 5 or more patients each) pass. Value
    labels (SPSS/Stata) are names, not values, and are not checked here.
    """
    numeric: list[tuple[str, float]] = []
    for L in order:
        try:
            v = float(L)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            numeric.append((L, v))
    if not numeric:
        return
    k = len(numeric)
    ones = sum(1 for L, _ in numeric if counts[L] == 1)
    why = ""
    if any(not v.is_integer() for _, v in numeric):
        why = "values that are not whole numbers"
    elif k > MAX_NUMERIC_LEVELS and min(counts[L] for L, _ in numeric) < 5:
        why = f"{k} distinct values, some held by fewer than 5 patients"
    elif k >= 3 and 2 * ones > k:
        why = f"{k} distinct values, {ones} of them held by one patient each"
    if why:
        raise DataError(f"column '{_short(c)}' (confounder) is numeric with {why}: as a categorical variable its "
                        "values would become level names in the results (patients' values); use it as a number "
                        f"(or rcs({_short(c)}, 4)), or group it with codes: {{{_short(c)}: {{raw: group}}}}")


def _design_matrix(inp: _Input, conf: _Confounders) -> tuple[Any, dict[str, str], list[str]]:
    """Step 8, arrays: the confounders' design matrix ``X`` (indicators for categorical ones, formula terms).

    The confounder list is one R formula (:mod:`causal_hcc.formula`: parsed
    into terms, computed by our interpreter, coded by R's rules); this
    function supplies each data column as a number or a categorical
    variable (value labels, declared ``categorical``, text), with the checks
    and messages of a column: dates refused, non-numbers and infinities named
    by row, levels limited. Returns ``(design, reference levels, warnings)``.
    """
    df, where, vlabels = inp.df, inp.where, inp.vlabels
    refs: dict[str, str] = {}
    warns: list[str] = []
    bare = {e.text for e in conf.formula.entries if e.bare}
    cache: dict[tuple[str, bool], Numeric | Factor] = {}
    constant: dict[str, str] = {}

    def resolve(c: str, want: str, place: str) -> Numeric | Factor:
        as_factor = want == "factor"
        hit = cache.get((c, as_factor))
        if hit is None:
            hit = _column_variable(c, as_factor)
            cache[(c, as_factor)] = hit
        if want == "number" and isinstance(hit, Factor):
            raise SpecError(f"{place}: '{_short(c)}' is categorical; arithmetic, log(), sqrt(), exp() and rcs() need "
                            "a number")
        return hit

    def _column_variable(c: str, as_factor: bool) -> Numeric | Factor:
        s = df[c]
        # a value-labelled column is categorical when every observed code has a
        # label; labels on only some codes (SPSS "999 = unknown" on an age) mark
        # special values of a numeric variable, which stays numeric
        labelled = c in vlabels and all(v in vlabels[c] for v in s.dropna().unique().tolist())
        if not (as_factor or c in conf.categorical or labelled):
            _refuse_numbers_with_text(c, s, where)
        is_cat = as_factor or c in conf.categorical or labelled or _is_categorical_series(s)
        if c in conf.reference and not is_cat:
            raise SpecError(f"reference: '{c}' is not categorical; declare it under categorical")
        if is_cat:
            if pdt.is_datetime64_any_dtype(s.dtype) or pdt.is_timedelta64_dtype(s.dtype):
                raise DataError(f"column '{c}' (confounder) holds dates or durations; give a number or a category "
                                "instead")
            fac, ref = Cohort._factor(c, s, vlabels.get(c) if labelled or c in conf.categorical else None,
                                      conf.reference.get(c), warns, where,
                                      default_ref="frequent" if c in bare and not as_factor else "first")
            if not as_factor:
                refs[c] = ref
            if len(fac.levels) == 1:
                constant[c] = repr(fac.levels[0])
            return fac
        if pdt.is_datetime64_any_dtype(s.dtype) or pdt.is_timedelta64_dtype(s.dtype):
            raise DataError(
                f"column '{c}' (confounder) holds dates or durations; give a number (e.g. age in years) instead"
            )
        if pdt.is_bool_dtype(s.dtype):
            v = s.to_numpy(dtype=float)
        else:
            v, bad = _to_float(s)
            if bad.any():  # pragma: no cover - object columns with non-numbers are categorical
                raise DataError(f"column '{c}' (confounder) must be numeric or categorical at {where(bad)}")
            inf = np.isinf(v)
            if inf.any():
                raise DataError(f"column '{c}' (confounder) has infinite values at {where(inf)}")
        if len(v) and np.all(v == v[0]):
            constant[c] = _fmt_value(v[0])
        return Numeric(np.asarray(v, dtype=float).reshape(-1, 1), (c,))

    design = build_design(conf.formula, len(df), resolve, where=where, max_levels=MAX_LEVELS)
    for c in design.empty:
        if c in bare and c in constant:
            warns.append(f"confounder '{c}' is constant ({constant[c]}) and was left out of the models")
        elif c not in bare:
            warns.append(f"confounder '{c}' is constant and was left out of the models")
    warns += design.notes
    return design, refs, warns
