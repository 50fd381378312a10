"""Input-side preparation steps of a cohort: value codes and calendar dates.

Both run on the cohort's private copy of the data, before any role is
validated (see :class:`causal_hcc.cohort.Cohort`), so a recoded event column
or a follow-up time computed from dates is then checked like any other.

Codes
-----
``codes: {column: {raw: value}}`` replaces raw values of a column
(``{status: {2: 1, 1: 0}}``, R's ``survival`` convention of 1 = censored,
2 = dead; ``{transplanted: {"yes": 1, "no": 0}}``). Values not named are kept
as they are (validation then names any that are still wrong), and a value may
be recoded to missing (``{9: null}``).

Keys are matched against the data as follows: a text key matches the same
text (surrounding blanks ignored); a numeric key (``2``, or the text ``"2"``)
matches numbers equal to it and text that reads as that number. YAML 1.1,
which PyYAML implements, reads unquoted ``yes``/``no``/``on``/``off``/
``true``/``false`` as booleans, so ``{yes: 1, no: 0}`` arrives as
``{True: 1, False: 0}``: a key that is the boolean True therefore means
"yes" and matches the text ``yes``, ``true`` or ``on`` in any letter case
and the boolean True (False likewise matches ``no``, ``false``, ``off`` and
False). Quoting the keys (``"yes"``) gives the same result.

Dates
-----
Roles ``start_date`` (time zero), ``end_date`` (event or censoring) and
``treatment_date`` replace ``time`` and ``treatment_time``; an extra outcome
may give its own ``end_date``. Times are ``(date - start_date)`` in days,
divided by the days per :data:`TIME_UNITS` entry (months: 30.4375 =
365.25 / 12; years: 365.25). Accepted: pandas datetime columns (what Excel
date cells, SPSS/Stata/SAS dates and parquet timestamps are read as),
``datetime.date``/``datetime`` objects, and ISO 8601 text (``2020-03-31``,
``2020-03-31T14:00``). Numbers are refused: a day count's origin differs
between Excel (1899-12-30), SPSS (1582-10-14), Stata and SAS (1960-01-01).

Same-day rule (the one of the ``survival`` package's time-dependent
covariates vignette for the Stanford heart transplant data, Therneau,
Crowson & Atkinson 2023, section 3.1):

* an event or censoring on the start date gets half a day of follow-up
  (``pmax(0.5, fu.date - accept.dt)``), since a follow-up time must be > 0;
* a treatment on the end date is moved half a day earlier
  (``tx.date - accept.dt - 0.5``): the patient is counted as treated before
  the event, and the event is not credited to the untreated;
* a treatment on the start date gives treatment time 0 (treated from time
  zero); when start, treatment and end all fall on one day the treatment
  time is 0 and the follow-up half a day.

References
----------
.. [1] Therneau T, Crowson C, Atkinson E. Using time dependent covariates
   and time dependent coefficients in the Cox model. Vignette of the R
   package survival, 2023.
.. [2] Crowley J, Hu M. Covariance analysis of heart transplant survival
   data. *J Am Stat Assoc* 1977;72:27-36.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from causal_hcc.errors import DataError, SpecError, shown

__all__ = ["TIME_UNITS", "DAYS_PER_UNIT", "SAME_DAY", "normalize_codes", "apply_codes", "to_days", "quote",
           "check_date_format"]

#: days per unit of ``time_unit`` when times are computed from dates
DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}
TIME_UNITS: tuple[str, ...] = tuple(DAYS_PER_UNIT)
#: follow-up given to an event on the start date, and how much earlier a treatment on the end date is put (days)
SAME_DAY: float = 0.5

_YES = ("yes", "true", "on")
_NO = ("no", "false", "off")
#: longest value quoted verbatim in a message
QUOTE_MAX = 60

Where = Callable[[np.ndarray], str]


def quote(v: Any, limit: int = QUOTE_MAX) -> str:
    """``repr`` of a value's text, cut to ``limit`` characters plus an ellipsis."""
    s = str(v)
    if len(s) > limit:
        return repr(s[:limit]) + f"\u2026 ({len(s):,} characters)"
    return repr(s)


# --------------------------------------------------------------------------
# codes
# --------------------------------------------------------------------------
def _key_text(k: Any) -> str:
    if isinstance(k, (bool, np.bool_)):
        return "yes" if k else "no"
    if isinstance(k, (int, np.integer)):
        return str(int(k))
    if isinstance(k, (float, np.floating)):
        if not math.isfinite(k):
            raise SpecError(f"codes: a raw value must be finite, got {shown(k)}")
        return str(int(k)) if float(k).is_integer() else repr(float(k))
    if isinstance(k, str):
        return k.strip()
    raise SpecError(f"codes: a raw value must be text, a number or yes/no, got {type(k).__name__}")


def normalize_codes(codes: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``codes`` with every raw key as text (True -> ``"yes"``, 2 -> ``"2"``).

    New values must be numbers, text or None (missing); booleans become 1/0.

    Raises
    ------
    SpecError
        A column entry that is not a mapping, a key of another type, two keys
        that become the same, or a new value that is not a scalar.
    """
    out: dict[str, dict[str, Any]] = {}
    for col, mapping in dict(codes or {}).items():
        if not isinstance(col, str):
            raise SpecError(f"codes: a column name must be text, got {shown(col)}")
        if not isinstance(mapping, Mapping) or not mapping:
            raise SpecError(f"codes: '{col}' must map raw values to new ones, e.g. {{2: 1, 1: 0}}; "
                            f"got {quote(mapping)}")
        m: dict[str, Any] = {}
        for k, v in mapping.items():
            kt = _key_text(k)
            if kt in m:
                raise SpecError(f"codes: '{col}' lists the raw value {kt!r} twice")
            if isinstance(v, (bool, np.bool_)):
                v = int(v)
            elif isinstance(v, float) and math.isnan(v):
                v = None
            elif v is not None and not isinstance(v, (int, float, str)):
                raise SpecError(f"codes: '{col}': the new value for {kt!r} must be a number, text or null, "
                                f"got {quote(v)}")
            if isinstance(v, float) and not math.isfinite(v):
                raise SpecError(f"codes: '{col}': the new value for {kt!r} must be finite, got {shown(v)}")
            m[kt] = v
        _check_colliding_keys(col, m)
        out[col] = m
    return out


def _check_colliding_keys(col: str, m: Mapping[str, Any]) -> None:
    """Refuse raw values that the lookup would treat as one (``'1'`` and ``'1.0'``, ``'yes'`` and ``'True'``)
    but recode differently.

    :func:`_lookup` matches numbers by value and yes/no words regardless of
    case: two keys that meet there with different new values would make one
    of them silently win.
    """
    by_number: dict[float, str] = {}
    by_word: dict[str, str] = {}
    for k in m:
        f = _number(k)
        if f is not None:
            if f in by_number and m[by_number[f]] != m[k]:
                raise SpecError(f"codes: '{col}' lists the raw values {by_number[f]!r} and {k!r}, which are the same "
                                "number; keep one")
            by_number[f] = k
        low = k.lower()
        cls = "yes" if low in _YES else "no" if low in _NO else low
        if cls in by_word and m[by_word[cls]] != m[k]:
            raise SpecError(f"codes: '{col}' lists the raw values {by_word[cls]!r} and {k!r}, which match the same "
                            "values (text is matched regardless of case; yes/true/on and no/false/off are one "
                            "value each); keep one")
        by_word[cls] = k


def _number(text: str) -> float | None:
    try:
        f = float(text)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def _lookup(mapping: Mapping[str, Any]) -> Callable[[Any], tuple[bool, Any]]:
    exact = dict(mapping)
    numeric = {f: v for k, v in mapping.items() if (f := _number(k)) is not None}
    yes = next((mapping[k] for k in mapping if k.lower() in _YES), _MISSING)
    no = next((mapping[k] for k in mapping if k.lower() in _NO), _MISSING)

    def look(v: Any) -> tuple[bool, Any]:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            return False, v
        if isinstance(v, (bool, np.bool_)):
            new = yes if v else no
            return (new is not _MISSING), new
        if isinstance(v, (int, float, np.integer, np.floating)):
            f = float(v)
            return (f in numeric), numeric.get(f)
        text = str(v).strip()
        if text in exact:
            return True, exact[text]
        low = text.lower()
        if low in _YES and yes is not _MISSING:
            return True, yes
        if low in _NO and no is not _MISSING:
            return True, no
        f = _number(text)
        if f is not None and f in numeric:
            return True, numeric[f]
        return False, v

    return look


_MISSING = object()


def apply_codes(df: pd.DataFrame, codes: Mapping[str, Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Recode columns of ``df`` (a private copy, changed in place and returned).

    ``codes`` as returned by :func:`normalize_codes`. A recoded column whose
    values are all numbers becomes numeric.

    Raises
    ------
    DataError
        ``codes: column 'C' not found (did you mean 'D'?)``; ``codes: no
        value of column 'C' matches any of ...`` (a mapping that changes
        nothing is almost always a typo).
    """
    from causal_hcc.base import closest

    for col, mapping in codes.items():
        if col not in df.columns:
            raise DataError(f"codes: column '{col}' not found{closest(col, columns)}")
        s = df[col]
        look = _lookup(mapping)
        obj = s.to_numpy(dtype=object)
        hit = np.zeros(len(obj), dtype=bool)
        newv = obj.copy()
        # look each distinct text (or each distinct value of a typed column) up once; True and 1 compare
        # equal in a hash table, so other objects are looked up one by one
        typed = s.dtype != object
        group = np.ones(len(obj), dtype=bool) if typed else np.fromiter(
            (type(v) is str for v in obj), dtype=bool, count=len(obj))
        if group.any():
            codes, uniq = pd.factorize(obj[group] if not typed else s.to_numpy())
            res = [look(u) for u in uniq]
            h = np.array([r[0] for r in res] + [False], dtype=bool)
            vals = np.array([r[1] for r in res] + [None], dtype=object)
            hit[group] = h[codes]
            newv[np.flatnonzero(group)[h[codes]]] = vals[codes][h[codes]]
        for i in np.flatnonzero(~group):
            found, nv = look(obj[i])
            if found:
                hit[i], newv[i] = True, nv
        if len(s) and not hit.any():
            shown = ", ".join(quote(k, 20) for k in list(mapping)[:10])
            raise DataError(f"codes: no value of column '{col}' matches any of {shown}")
        new = pd.Series(newv, index=s.index, dtype=object)
        vals_ = new.dropna()
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in vals_.unique()):
            new = pd.to_numeric(new, errors="coerce")
            if new.notna().all() and np.all(np.mod(new.to_numpy(dtype=float), 1) == 0):
                new = new.astype(np.int64)
        df[col] = new
    return df


# --------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------
def _is_date_object(v: Any) -> bool:
    return isinstance(v, (_dt.date, np.datetime64, pd.Timestamp))


def _days_since_epoch(a: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a datetime64 array in *its own* unit (NaN for NaT).

    Never through ``datetime64[ns]``: that unit ends in 2262, and 9999-12-31
    (a common "open end" in spreadsheets) would wrap around silently.
    """
    a = np.asarray(a)
    if a.dtype.kind != "M":
        a = a.astype("datetime64[us]")
    unit = np.datetime_data(a.dtype)[0]
    if unit in ("Y", "M", "W", "D", "generic"):
        a = a.astype("datetime64[s]")
    out = (a - np.datetime64(0, np.datetime_data(a.dtype)[0])) / np.timedelta64(1, "D")
    return np.where(np.isnat(a), np.nan, out).astype(float)


_DATE_DIRECTIVES = ("%d", "%m", "%Y", "%y", "%b", "%B", "%H", "%M", "%S", "%j", "%e")


def check_date_format(fmt: str) -> str:
    """A ``date_format`` of the spec: a strptime format with a day, a month and a year (raises SpecError)."""
    if not isinstance(fmt, str) or not fmt.strip() or len(fmt) > 40:
        raise SpecError(f"date_format must be a strptime format such as '%d/%m/%Y', got {shown(fmt)}")
    have = {d for d in _DATE_DIRECTIVES if d in fmt}
    if not ({"%Y", "%y"} & have) or not ({"%m", "%b", "%B"} & have or "%j" in have) or not (
            {"%d", "%e", "%j"} & have):
        raise SpecError(f"date_format {shown(fmt)} needs a day (%d), a month (%m or %b) and a year (%Y or %y), "
                        "e.g. '%d/%m/%Y'")
    try:
        _dt.datetime.strptime(_dt.date(2020, 3, 31).strftime(fmt), fmt)
    except ValueError as err:
        raise SpecError(f"date_format {shown(fmt)} is not a valid strptime format: {err}") from None
    return fmt


def _parse_dates(text: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    """Parse date texts (UTC): ISO 8601; with ``date_format`` that format (ISO 8601 text still accepted);
    with ``dayfirst`` any day-first writing (31/03/2020, 31.03.2020, 31-Mar-2020), ISO text included."""
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if date_format is None and not dayfirst:
        return iso
    rest = iso.isna() & text.notna()
    if rest.any():
        if date_format is not None:
            other = pd.to_datetime(text[rest], format=date_format, errors="coerce", utc=True)
        else:
            other = pd.to_datetime(text[rest], format="mixed", dayfirst=True, errors="coerce", utc=True)
        iso = iso.copy()
        iso[rest] = other
    return iso


def _looks_day_first(v: Any) -> bool:
    import re

    return isinstance(v, str) and re.fullmatch(r"\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\s*", v) is not None


def to_days(s: pd.Series, col: str, role: str, where: Where, *, date_format: str | None = None,
            dayfirst: bool = False) -> np.ndarray:
    """Days since 1970-01-01 (float, NaN where missing) of a date column.

    Text is read as ISO 8601 (``2020-03-31``); ``date_format`` (a strptime
    format such as ``"%d/%m/%Y"``) or ``dayfirst=True`` read dates as clinics
    write them (``31/03/2020``); ISO text is accepted in either case.

    Raises
    ------
    DataError
        Numbers (``holds numbers, not dates``), durations, or text that is not
        a date in the expected writing, naming the first value and its rows
        (with a hint at ``date_format``/``dayfirst`` for day-first text).
    """
    if pdt.is_datetime64_any_dtype(s.dtype):
        d = s
        if getattr(d.dt, "tz", None) is not None:
            d = d.dt.tz_convert("UTC").dt.tz_localize(None)
        return _days_since_epoch(d.to_numpy())
    hint = ("give dates (ISO 8601 text such as 2020-03-31, or date cells), "
            f"or the time from time zero with the role '{'time' if role != 'treatment_date' else 'treatment_time'}'")
    if pdt.is_bool_dtype(s.dtype) or (pdt.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype)):
        bad = s.notna().to_numpy()
        if not bad.any():
            return np.full(len(s), np.nan)
        first = s[bad].iloc[0]
        raise DataError(f"column '{col}' ({role}) holds numbers, not dates (found {quote(first)} at {where(bad)}); "
                        f"{hint}")
    if pdt.is_timedelta64_dtype(s.dtype):
        raise DataError(f"column '{col}' ({role}) holds durations, not dates; {hint}")
    obj = s.to_numpy(dtype=object)
    out = np.full(len(s), np.nan)
    bad = np.zeros(len(s), dtype=bool)
    is_str = np.fromiter((type(v) is str for v in obj), dtype=bool, count=len(obj))
    if is_str.any():
        # dates repeat: parse each distinct text once
        codes, uniq = pd.factorize(obj[is_str])
        text = pd.Series(uniq, dtype=object).str.strip()
        ts = _parse_dates(text.where(text != ""), date_format, dayfirst)
        ns = ts.dt.tz_localize(None).to_numpy()
        days = _days_since_epoch(ns)
        unparsed = np.isnat(ns) & (text != "").to_numpy()
        for j in np.flatnonzero(unparsed):
            # pandas 2 parses into nanoseconds, so a far date (9999-12-31) is NaT there; numpy's
            # ISO 8601 parser has no such bound (pandas 3 infers a coarser unit itself)
            try:
                d = np.datetime64(text.iloc[j], "us")
            except ValueError:
                continue
            days[j] = _days_since_epoch(np.array([d]))[0]
            unparsed[j] = False
        out[is_str] = days[codes]
        bad[is_str] = unparsed[codes]
    for i in np.flatnonzero(~is_str):
        v = obj[i]
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            continue
        if not _is_date_object(v):
            bad[i] = True
            continue
        if isinstance(v, _dt.datetime) and v.tzinfo is not None:
            v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        elif isinstance(v, pd.Timestamp) and v.tzinfo is not None:
            v = v.tz_convert("UTC").tz_localize(None)
        # date/datetime objects (e.g. a spreadsheet column read as object), in microseconds: no ns overflow
        out[i] = _days_since_epoch(np.array([np.datetime64(v, "us")]))[0]
    if bad.any():
        first = obj[bad][0]
        if date_format is not None:
            hint = f"expected dates written as date_format {shown(date_format)} (or ISO 8601 text)"
        elif dayfirst:
            hint = "expected day-first dates (31/03/2020) or ISO 8601 text"
        elif _looks_day_first(first):
            hint = ("dates written like this need roles.date_format (e.g. '%d/%m/%Y' or '%m/%d/%Y') or "
                    "roles.dayfirst: true")
        raise DataError(f"column '{col}' ({role}) must hold dates; found {quote(first)} at {where(bad)}; {hint}")
    return out
