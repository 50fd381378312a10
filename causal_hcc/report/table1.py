"""Aggregate Table 1 (baseline characteristics by arm) from a Cohort.

Only aggregate numbers leave this module: counts and percentages for binary
and categorical variables, median and interquartile range for continuous
ones, and standardized mean differences (SMD). Minimum and maximum are never
reported (they are single patients' values). With ``min_cell`` m > 0 the
disclosure rule of :mod:`causal_hcc.disclosure` applies: counts of 1 .. m-1
are shown as ``<m``, every other count (arm sizes included) is rounded to the
nearest m, and percentages and the SMDs of binary and categorical rows are
computed from the rounded counts (an exact percentage would give the exact
count back); the medians of an arm with fewer than m non-missing values are
suppressed.

References
----------
.. [1] Austin PC. Balance diagnostics for comparing the distribution of
   baseline covariates between treatment groups in propensity-score matched
   samples. *Stat Med* 2009;28:3083-3107 (SMD for continuous and binary).
.. [2] Yang D, Dalton JE. A unified approach to measuring the effect size
   between two groups using SAS. SAS Global Forum 2012, paper 335 (SMD for
   multi-level categorical variables, as in R ``tableone``).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from causal_hcc.errors import SpecError

__all__ = ["table1", "smd_continuous", "smd_binary", "smd_categorical"]

ARMS: tuple[str, str] = ("untreated", "treated")


def smd_continuous(x1: np.ndarray, x0: np.ndarray) -> float:
    """(mean1 - mean0) / sqrt((var1 + var0) / 2) (Austin 2009, eq. 1)."""
    x1, x0 = x1[np.isfinite(x1)], x0[np.isfinite(x0)]
    if len(x1) < 2 or len(x0) < 2:
        return math.nan
    s = math.sqrt((np.var(x1, ddof=1) + np.var(x0, ddof=1)) / 2)
    d = float(np.mean(x1) - np.mean(x0))
    return d / s if s > 0 else (0.0 if d == 0 else math.inf)


def smd_binary(p1: float, p0: float) -> float:
    """(p1 - p0) / sqrt((p1(1-p1) + p0(1-p0)) / 2) (Austin 2009, eq. 2)."""
    s = math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    d = p1 - p0
    return d / s if s > 0 else (0.0 if d == 0 else math.inf)


def smd_categorical(p1: np.ndarray, p0: np.ndarray) -> float:
    """Multi-level SMD of Yang & Dalton (2012): sqrt(d' S^-1 d), first level dropped."""
    p1, p0 = np.asarray(p1, float)[1:], np.asarray(p0, float)[1:]
    if len(p1) == 0:
        return 0.0
    d = p1 - p0
    S = (np.diag(p1) - np.outer(p1, p1) + np.diag(p0) - np.outer(p0, p0)) / 2
    try:
        v = float(d @ np.linalg.pinv(S) @ d)
    except np.linalg.LinAlgError:  # pragma: no cover - pinv does not fail on finite input
        return math.nan
    return math.sqrt(max(v, 0.0))


def _is_binary(s: pd.Series) -> bool:
    if pdt.is_bool_dtype(s.dtype):
        return True
    if pdt.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        x = s.to_numpy(dtype=float, na_value=np.nan)  # vectorised: a set of a million floats took a second
        x = x[~np.isnan(x)]
        return x.shape[0] > 0 and bool(np.all((x == 0) | (x == 1)))
    return False


def _is_categorical(s: pd.Series, declared: bool) -> bool:
    if declared or isinstance(s.dtype, pd.CategoricalDtype):
        return True
    return not (pdt.is_numeric_dtype(s.dtype) or pdt.is_bool_dtype(s.dtype))


def _pct(k: int, n: int) -> float:
    return 100.0 * k / n if n else math.nan


def table1(cohort: Any, *, min_cell: int = 0, variables: list[str] | None = None) -> dict[str, Any]:
    """Table 1 by arm (ever treated vs never treated) from a Cohort.

    Parameters
    ----------
    cohort : causal_hcc.cohort.Cohort
    min_cell : int
        Suppress counts in 1..min_cell-1 (0 = off).
    variables : list of str, optional
        Columns to describe; default the cohort's confounders (as declared).

    Returns
    -------
    dict
        JSON-serialisable: ``arms`` (labels), ``n`` (per arm), ``min_cell``,
        ``suppressed`` (number of suppressed cells), ``events`` (per arm, the
        primary outcome), ``rows``: one dict per line with ``variable``,
        ``level`` (None for the variable's own line), ``kind`` (``binary``,
        ``categorical``, ``continuous``), per arm ``{"count", "pct"}`` or
        ``{"median", "q1", "q3", "n"}`` under ``values``, the formatted text
        under ``text`` and ``smd`` (treated minus untreated; the variable's
        line for categoricals).

    References
    ----------
    .. [1] Austin PC. *Stat Med* 2009;28:3083-3107.
    .. [2] Yang D, Dalton JE. SAS Global Forum 2012, paper 335.
    """
    if not isinstance(min_cell, (int, np.integer)) or isinstance(min_cell, bool) or min_cell < 0:
        raise SpecError(f"report.min_cell must be an integer >= 0, got {min_cell!r}")
    frame = cohort.frame()
    trt = np.asarray(cohort.treatment, dtype=int)
    variables = list(cohort.confounder_variables() if variables is None else variables)
    declared = set(getattr(cohort, "categorical", []) or [])
    from causal_hcc.disclosure import round_count

    masks = {ARMS[0]: trt == 0, ARMS[1]: trt == 1}
    n = {a: int(m.sum()) for a, m in masks.items()}
    ev = np.asarray(cohort.event(), dtype=int)
    suppressed = 0

    def small(k: int) -> bool:
        return min_cell > 0 and 0 < k < min_cell

    def shown(k: int) -> Any:
        """The count as written: exact (min_cell 0), "<m", or rounded to the nearest m."""
        return round_count(int(k), min_cell) if min_cell > 0 else int(k)

    def count_cell(k: int, tot: int) -> tuple[dict[str, Any], str, float]:
        """(values, text, proportion) of a count cell, all from the counts as shown."""
        nonlocal suppressed
        ks, ts = shown(k), shown(tot)
        if isinstance(ks, str):
            suppressed += 1
            return {"count": None, "pct": None}, ks, math.nan
        pct = _pct(ks, ts) if isinstance(ts, (int, float)) else math.nan
        return {"count": ks, "pct": pct}, (f"{ks} ({pct:.1f}%)" if math.isfinite(pct) else f"{ks}"), pct / 100

    rows: list[dict[str, Any]] = []
    events = {a: int(ev[m].sum()) for a, m in masks.items()}
    ev_vals, ev_text = {}, {}
    for a in ARMS:
        ev_vals[a], ev_text[a], _ = count_cell(events[a], n[a])
    rows.append({"variable": "events", "level": None, "kind": "binary", "values": ev_vals,
                 "text": ev_text, "smd": None, "missing": {a: 0 for a in ARMS}})
    for var in variables:
        if var not in frame.columns:
            raise SpecError(f"table1: column '{var}' not found in the cohort")
        s = frame[var]
        miss = {a: int(s[m].isna().sum()) for a, m in masks.items()}
        if _is_binary(s) and var not in declared:
            x = s.astype(float).to_numpy()
            vals, texts = {}, {}
            p = {}
            for a, m in masks.items():
                xa = x[m]
                xa = xa[np.isfinite(xa)]
                k, tot = int(xa.sum()), len(xa)
                vals[a], texts[a], p[a] = count_cell(k, tot)  # (p from the counts as shown)
            hidden = any(v["count"] is None for v in vals.values())  # an SMD would reveal a hidden count
            rows.append({"variable": var, "level": None, "kind": "binary", "values": vals, "text": texts,
                         "smd": None if hidden else smd_binary(p["treated"], p["untreated"]), "missing": miss})
        elif _is_categorical(s, var in declared):
            lev = s.astype(object).map(lambda v: None if pd.isna(v) else
                                       (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)))
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = [str(c) for c in s.cat.categories if (lev == str(c)).any()]
            else:
                raw = [v for v in pd.unique(lev.dropna())]
                try:
                    levels = sorted(raw, key=float)
                except ValueError:
                    levels = sorted(raw)
            exact = {a: {L: int(((lev == L) & m).sum()) for L in levels} for a, m in masks.items()}
            tots = {a: sum(exact[a].values()) for a in ARMS}
            # as shown: rounded counts (rounding, not secondary suppression, protects a hidden cell's total)
            counts = {a: {L: (shown(k) if not small(k) else 0) for L, k in exact[a].items()} for a in ARMS}
            shown_tot = {a: sum(counts[a].values()) for a in ARMS}
            props = {a: np.array([counts[a][L] / shown_tot[a] if shown_tot[a] else math.nan for L in levels])
                     for a in ARMS}
            hide = {a: {L: small(exact[a][L]) for L in levels} for a in ARMS}
            any_hidden = any(any(h.values()) for h in hide.values())
            rows.append({"variable": var, "level": None, "kind": "categorical", "values": {}, "text": {},
                         "smd": None if any_hidden else smd_categorical(props["treated"], props["untreated"]),
                         "missing": miss})
            for L in levels:
                vals, texts = {}, {}
                for a in ARMS:
                    vals[a], texts[a], _ = count_cell(exact[a][L], tots[a])
                p1 = counts["treated"][L] / max(shown_tot["treated"], 1)
                p0 = counts["untreated"][L] / max(shown_tot["untreated"], 1)
                rows.append({"variable": var, "level": L, "kind": "categorical", "values": vals, "text": texts,
                             "smd": None if any_hidden else smd_binary(p1, p0), "missing": None})
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            vals, texts = {}, {}
            for a, m in masks.items():
                xa = x[m]
                xa = xa[np.isfinite(xa)]
                if len(xa) == 0 or small(len(xa)):
                    vals[a] = {"median": None, "q1": None, "q3": None, "n": int(len(xa))}
                    texts[a] = "suppressed" if len(xa) else "-"
                    suppressed += int(len(xa) > 0)
                else:
                    q1, med, q3 = np.percentile(xa, [25, 50, 75])
                    vals[a] = {"median": float(med), "q1": float(q1), "q3": float(q3), "n": int(len(xa))}
                    texts[a] = f"{med:.3g} ({q1:.3g}-{q3:.3g})"
            rows.append({"variable": var, "level": None, "kind": "continuous", "values": vals, "text": texts,
                         "smd": smd_continuous(x[masks["treated"]], x[masks["untreated"]]), "missing": miss})
    return {"arms": list(ARMS), "n": {a: shown(v) for a, v in n.items()}, "min_cell": int(min_cell),
            "suppressed": suppressed,
            "events": {a: (None if small(events[a]) else shown(events[a])) for a in ARMS},
            "continuous_summary": "median (IQR)", "rows": rows,
            "smd_definition": "treated minus untreated; categorical: Yang & Dalton (2012)"}
