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
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from causal_hcc.base import closest
from causal_hcc.errors import DataError, SpecError

__all__ = ["Cohort", "MISSING_POLICIES", "ROLE_NAMES"]

#: allowed values of ``missing``
MISSING_POLICIES: tuple[str, ...] = ("error", "complete_case")
#: role keywords accepted by :meth:`Cohort.from_frame`
ROLE_NAMES: tuple[str, ...] = ("id", "time", "event", "treatment", "treatment_time", "cluster")

_SHOW_ROWS = 3
_SHOW_COLUMNS = 30
_MANY_LEVELS = 20


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
    return repr(str(v))


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
    obj = s.astype(object)
    isbool = obj.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    vals = pd.to_numeric(obj.where(~isbool, None), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = (obj.notna().to_numpy() & np.isnan(vals)) | isbool
    vals[isbool] = np.nan
    return vals, bad


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
        Baseline confounders. Numeric columns pass through as floats, booleans
        become 0/1; columns named in ``categorical``, string columns, pandas
        categoricals and columns whose every value has a value label
        (SPSS/Stata, ``data.attrs["value_labels"]``, see
        :func:`causal_hcc.io.read_table`) become indicator columns
        ``var=level`` named by the labels.
    categorical : sequence of str
        Confounders to treat as categorical even if numeric (e.g. a coded stage).
    reference : mapping str -> str, optional
        Reference level per categorical confounder. Default: the most frequent
        level (ties: the first level in order -- sorted values, or the category
        / value-label order).
    cluster : str, optional
        Cluster (centre) column, for cluster-robust variance.
    outcomes : mapping name -> (time column, event column), optional
        Extra outcomes (e.g. ``{"pfs": ("pfs_months", "pfs_event")}``), checked
        like the primary one (``treatment_time`` is not compared with them).
    outcome_name : str
        Name of the primary outcome (default ``"os"``).
    missing : {"error", "complete_case"}
        What to do with missing confounder values: fail listing the count per
        column, or drop those rows (``rows_dropped``/``dropped_by`` record it).
    source : str
        Where the data came from: ``"DataFrame"`` (messages cite index labels)
        or a file path (messages cite data rows counted from 1).

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
        ``no treated|untreated patients left after dropping ...``.
    SpecError
        Inconsistent arguments: ``missing`` policy, ``categorical`` or
        ``reference`` naming a non-confounder, a confounder listed twice, an
        extra outcome named like the primary one.

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
        "warnings", "source", "source_rows",
        "_times", "_events", "_frame", "_frame_rows", "_cache", "_frozen",
    )

    # ------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------
    def __init__(
        self,
        data: pd.DataFrame,
        *,
        id: str,
        time: str,
        event: str,
        treatment: str,
        treatment_time: str | None = None,
        confounders: Sequence[str] = (),
        categorical: Sequence[str] = (),
        reference: Mapping[str, Any] | None = None,
        cluster: str | None = None,
        outcomes: Mapping[str, tuple[str, str]] | None = None,
        outcome_name: str = "os",
        missing: str = "error",
        source: str = "DataFrame",
    ) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if missing not in MISSING_POLICIES:
            raise SpecError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
        if isinstance(confounders, str):
            confounders = [confounders]
        if isinstance(categorical, str):
            categorical = [categorical]
        confounders = list(confounders)
        categorical = list(categorical)
        reference = dict(reference or {})
        outcomes = dict(outcomes or {})

        df = data.copy(deep=True)  # our own copy: later edits of the caller's frame do not leak in
        vlabels = _value_labels(data)
        from_file = source != "DataFrame"
        index_labels = df.index.to_numpy()
        set_ = object.__setattr__
        set_(self, "_frozen", False)

        def where(mask_or_pos: np.ndarray) -> str:
            pos = np.flatnonzero(mask_or_pos) if mask_or_pos.dtype == bool else np.asarray(mask_or_pos)
            k = len(pos)
            shown = pos[:_SHOW_ROWS]
            if from_file:
                word = "data row" if k == 1 else "data rows"
                labels = [str(int(orig[p]) + 1) for p in shown]
            else:
                word = "index"
                labels = [_level_name(index_labels[orig[p]]) for p in shown]
            more = f" (+{k - _SHOW_ROWS} more)" if k > _SHOW_ROWS else ""
            return f"{word} {', '.join(labels)}{more}"

        orig = np.arange(len(df))  # position in the caller's frame of each current row

        # ---- column names and role consistency --------------------------
        role_cols: list[tuple[str, str]] = [("id", id), ("time", time), ("event", event), ("treatment", treatment)]
        if treatment_time is not None:
            role_cols.append(("treatment_time", treatment_time))
        if cluster is not None:
            role_cols.append(("cluster", cluster))
        if outcome_name in outcomes:
            raise SpecError(f"outcome '{outcome_name}' is both the primary outcome and an extra outcome")
        for name, pair in outcomes.items():
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise SpecError(f"outcome '{name}' must be a pair (time column, event column), got {pair!r}")
            role_cols += [(f"{name} time", pair[0]), (f"{name} event", pair[1])]
        for role, col in role_cols:
            if not isinstance(col, str):
                raise SpecError(f"role '{role}' must be a column name, got {col!r}")
        columns = [str(c) for c in df.columns]
        if len(set(columns)) != len(columns):
            dup = next(c for c in columns if columns.count(c) > 1)
            raise DataError(f"column '{dup}' appears more than once in the data")
        wanted = [c for _, c in role_cols] + confounders
        for col in wanted:
            if col not in df.columns:
                shown = ", ".join(columns[:_SHOW_COLUMNS])
                if len(columns) > _SHOW_COLUMNS:
                    shown += f", ... (+{len(columns) - _SHOW_COLUMNS} more)"
                raise DataError(f"column '{col}' not found{closest(col, columns)}; columns: {shown}")
        seen: dict[str, str] = {}
        for role, col in role_cols:
            # extra outcomes may share the event column? no: each column has one role
            if col in seen:
                raise DataError(f"column '{col}' is used for two roles: {seen[col]} and {role}")
            seen[col] = role
        for c in confounders:
            if confounders.count(c) > 1:
                raise SpecError(f"confounder '{c}' is listed twice")
            if c in seen:
                raise DataError(f"confounder '{c}' is also the {seen[c]} column")
        for c in categorical:
            if c not in confounders:
                raise SpecError(
                    f"categorical: '{c}' is not a confounder{closest(c, confounders)}; "
                    f"confounders: {', '.join(confounders) or 'none'}"
                )
        for c in reference:
            if c not in confounders:
                raise SpecError(
                    f"reference: '{c}' is not a confounder{closest(c, confounders)}; "
                    f"confounders: {', '.join(confounders) or 'none'}"
                )
        if len(df) == 0:
            raise DataError("the data has no rows")

        # ---- checks on one column --------------------------------------
        def check_missing(col: str, role: str, isna: np.ndarray) -> None:
            k = int(isna.sum())
            if k:
                what = "missing value" if k == 1 else "missing values"
                raise DataError(f"column '{col}' ({role}) has {k} {what} at {where(isna)}")

        def numeric(col: str, role: str, *, positive: bool) -> np.ndarray:
            s = df[col]
            vals, bad = _to_float(s)
            if bad.any():
                first = s.iloc[int(np.flatnonzero(bad)[0])]
                raise DataError(f"column '{col}' ({role}) must be numeric; found {_fmt_value(first)} at {where(bad)}")
            if positive:
                check_missing(col, role, np.isnan(vals))
            inf = np.isinf(vals)
            if inf.any():
                raise DataError(f"column '{col}' ({role}) has infinite values at {where(inf)}")
            neg = vals < 0
            if neg.any():
                raise DataError(f"column '{col}' ({role}) has negative values at {where(neg)}")
            if positive:
                zero = vals == 0
                if zero.any():
                    raise DataError(f"column '{col}' ({role}) has zero follow-up time at {where(zero)}")
            return vals

        def binary(col: str, role: str, allowed: str) -> np.ndarray:
            s = df[col]
            vals, bad = _to_binary(s)
            if bad.any():
                first = s.iloc[int(np.flatnonzero(bad)[0])]
                raise DataError(f"column '{col}' ({role}) must be {allowed}; found {_fmt_value(first)} at {where(bad)}")
            check_missing(col, role, np.isnan(vals))
            return vals.astype(np.int8)

        # ---- id ---------------------------------------------------------
        ids_s = df[id]
        check_missing(id, "id", ids_s.isna().to_numpy())
        dup = ids_s.duplicated(keep=False).to_numpy()
        if dup.any():
            first = ids_s[ids_s.duplicated(keep="first")].iloc[0]
            rows = np.flatnonzero(dup & (ids_s == first).to_numpy())
            raise DataError(f"column '{id}' (id) has duplicated values at {where(rows)} (value {_fmt_value(first)})")

        # ---- outcomes ----------------------------------------------------
        outcome_cols = {outcome_name: (time, event)}
        outcome_cols.update({k: (v[0], v[1]) for k, v in outcomes.items()})
        times: dict[str, np.ndarray] = {}
        events: dict[str, np.ndarray] = {}
        for name, (tcol, ecol) in outcome_cols.items():
            prefix = "" if name == outcome_name else f"{name} "
            times[name] = numeric(tcol, f"{prefix}time", positive=True)
            events[name] = binary(ecol, f"{prefix}event", "0 or 1")

        # ---- treatment ---------------------------------------------------
        trt = binary(treatment, "treatment", "0/1 or True/False")
        n_trt = int(trt.sum())
        if n_trt == 0 or n_trt == len(trt):
            arm = "treated" if n_trt else "untreated"
            raise DataError(
                f"column '{treatment}' (treatment) is constant: all {len(trt)} patients are {arm}; both arms are needed"
            )
        tt = None
        if treatment_time is not None:
            tt = numeric(treatment_time, "treatment_time", positive=False)
            na = np.isnan(tt)
            bad = (trt == 1) & na
            if bad.any():
                raise DataError(f"column '{treatment_time}' (treatment_time) is missing for treated patients at {where(bad)}")
            bad = (trt == 0) & ~na
            if bad.any():
                raise DataError(f"column '{treatment_time}' (treatment_time) is set for untreated patients at {where(bad)}")
            bad = ~na & (tt > times[outcome_name])
            if bad.any():
                raise DataError(
                    f"column '{treatment_time}' (treatment_time) is after the end of follow-up ('{time}') at {where(bad)}"
                )

        # ---- cluster -----------------------------------------------------
        clus = None
        if cluster is not None:
            cs = df[cluster]
            check_missing(cluster, "cluster", cs.isna().to_numpy())
            clus = cs.to_numpy()

        # ---- confounders: missing values -------------------------------
        miss = {c: df[c].isna().to_numpy() for c in confounders}
        any_miss = np.zeros(len(df), dtype=bool)
        for m in miss.values():
            any_miss |= m
        dropped_by: dict[str, int] = {}
        keep = np.ones(len(df), dtype=bool)
        if any_miss.any():
            parts = [f"'{c}' {int(m.sum())} ({where(m)})" for c, m in miss.items() if m.any()]
            if missing == "error":
                k = int(any_miss.sum())
                raise DataError(
                    f"missing confounder values: {', '.join(parts)}; "
                    f"set missing: complete_case to drop {'this row' if k == 1 else f'these {k} rows'}"
                )
            dropped_by = {c: int(m.sum()) for c, m in miss.items() if m.any()}
            keep = ~any_miss
            if not keep.any():
                raise DataError(f"no rows left after dropping rows with missing confounders: {', '.join(parts)}")
        n_drop = int((~keep).sum())
        suffix = f" after dropping {n_drop} rows with missing confounders" if n_drop else ""
        if n_drop:
            df = df.loc[keep]  # boolean mask: keeps duplicate index labels right
            orig = orig[keep]
            trt = trt[keep]
            tt = tt[keep] if tt is not None else None
            clus = clus[keep] if clus is not None else None
            times = {k: v[keep] for k, v in times.items()}
            events = {k: v[keep] for k, v in events.items()}
            for arm_value, arm in ((1, "treated"), (0, "untreated")):
                if not (trt == arm_value).any():
                    raise DataError(f"no {arm} patients left{suffix} (missing: complete_case)")
        for name, (_, ecol) in outcome_cols.items():
            if events[name].sum() == 0:
                prefix = "" if name == outcome_name else f"{name} "
                raise DataError(f"column '{ecol}' ({prefix}event) has no events (all 0{suffix})")

        # ---- confounders: design matrix --------------------------------
        blocks: list[np.ndarray] = []
        xcols: list[str] = []
        refs: dict[str, str] = {}
        warns: list[str] = []
        for c in confounders:
            s = df[c]
            # a value-labelled column is categorical when every observed code has a
            # label; labels on only some codes (SPSS "999 = unknown" on an age) mark
            # special values of a numeric variable, which stays numeric
            labelled = c in vlabels and all(v in vlabels[c] for v in s.dropna().unique().tolist())
            is_cat = c in categorical or labelled or _is_categorical_series(s)
            if c in reference and not is_cat:
                raise SpecError(f"reference: '{c}' is not categorical; declare it under categorical")
            if is_cat:
                mat, names, ref = self._indicators(c, s, vlabels.get(c) if labelled or c in categorical else None,
                                                   reference.get(c), warns)
                blocks.append(mat)
                xcols += names
                refs[c] = ref
                continue
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
            if np.all(v == v[0]):
                warns.append(f"confounder '{c}' is constant ({_fmt_value(v[0])}) and was left out of the models")
                continue
            blocks.append(v.reshape(-1, 1))
            xcols.append(c)
        n = len(df)
        X = np.hstack(blocks).astype(float) if blocks else np.empty((n, 0))

        ids = ids_s.to_numpy()[keep] if n_drop else ids_s.to_numpy()
        ids = ids.copy()
        set_(self, "n", n)
        set_(self, "ids", _freeze(ids))
        set_(self, "treatment", _freeze(np.ascontiguousarray(trt, dtype=np.int8)))
        set_(self, "treatment_time", _freeze(np.ascontiguousarray(tt, dtype=float)) if tt is not None else None)
        set_(self, "cluster", _freeze(np.array(clus, copy=True)) if clus is not None else None)
        set_(self, "X", _freeze(np.ascontiguousarray(X)))
        set_(self, "confounder_columns", xcols)
        set_(self, "confounders", confounders)
        set_(self, "categorical", [c for c in confounders if c in refs])
        set_(self, "reference_levels", refs)
        set_(self, "outcome_names", list(outcome_cols))
        set_(self, "outcome_columns", dict(outcome_cols))
        set_(self, "_times", {k: _freeze(np.ascontiguousarray(v, dtype=float)) for k, v in times.items()})
        set_(self, "_events", {k: _freeze(np.ascontiguousarray(v, dtype=np.int8)) for k, v in events.items()})
        roles = {"id": id, "time": time, "event": event, "treatment": treatment,
                 "treatment_time": treatment_time, "cluster": cluster}
        set_(self, "roles", roles)
        set_(self, "rows_dropped", n_drop)
        set_(self, "dropped_by", dropped_by)
        set_(self, "warnings", warns)
        set_(self, "source", source)
        set_(self, "source_rows", _freeze(np.arange(n)))
        set_(self, "_frame", df)
        set_(self, "_frame_rows", None)
        set_(self, "_cache", {})
        set_(self, "_frozen", True)

    @staticmethod
    def _indicators(
        c: str, s: pd.Series, labels: Mapping[Any, str] | None, ref: Any, warns: list[str]
    ) -> tuple[np.ndarray, list[str], str]:
        """Indicator columns ``c=level`` for every level but the reference."""
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
        if ref is not None:
            ref = _level_name(ref)
            if ref not in order:
                raise DataError(f"reference level '{ref}' for '{c}' not found; levels: {', '.join(order)}")
        else:
            ref = max(order, key=lambda L: (counts[L], -order.index(L)))
        if len(order) == 1:
            warns.append(f"confounder '{c}' is constant ({order[0]!r}) and was left out of the models")
        elif len(order) > _MANY_LEVELS:
            warns.append(f"confounder '{c}' is categorical with {len(order)} levels")
        others = [L for L in order if L != ref]
        mat = np.column_stack([(lev_arr == L).astype(float) for L in others]) if others else np.empty((len(s), 0))
        return mat, [f"{c}={L}" for L in others], ref

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
        absent = [k for k in required if not roles.get(k)]
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
        """Event indicator (int8 0/1) of ``outcome`` (default: the primary outcome)."""
        return self._events[self._outcome(outcome)]

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
        add("treatment", self.treatment)
        add("treatment_time", self.treatment_time)
        add("cluster", self.cluster)
        add("X " + "\x1f".join(self.confounder_columns), self.X)
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
        keep = [j for j, c in enumerate(self.confounder_columns)
                if any(c == v or c.startswith(f"{v}=") for v in variables)]
        new = object.__new__(Cohort)
        set_ = object.__setattr__
        for name in self.__slots__:
            set_(new, name, getattr(self, name))
        set_(new, "_frozen", False)
        set_(new, "X", _freeze(self.X[:, keep]))
        set_(new, "confounder_columns", [self.confounder_columns[j] for j in keep])
        set_(new, "confounders", [v for v in self.confounders if v in variables])
        set_(new, "reference_levels", {k: v for k, v in self.reference_levels.items() if k in variables})
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
        set_(new, "source_rows", _freeze(self.source_rows[idx]))
        set_(new, "_frame_rows", new.source_rows)
        for name in ("confounder_columns", "confounders", "categorical", "reference_levels", "outcome_names",
                     "outcome_columns", "roles", "rows_dropped", "dropped_by", "warnings", "source", "_frame"):
            set_(new, name, getattr(self, name))
        set_(new, "_cache", {})
        set_(new, "_frozen", True)
        return new
