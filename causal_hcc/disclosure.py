"""Statistical disclosure control for everything a run writes.

Outputs hold aggregate numbers only. Two rules are applied to an
:class:`~causal_hcc.results.AnalysisResult` before anything is written (the
JSON, ``curves.parquet``, ``estimates.csv``, the report and its figures):

1. **Curves on a grid.** A survival curve is stored at no more than
   :data:`GRID_POINTS` times on a grid that does not depend on any patient's
   time (``0 .. T`` in equal steps, ``T`` the follow-up rounded *up* to a
   round number), plus the requested ``survival_at`` times and ``rmst_tau``.
   The value at a grid time is the step function's value there (right
   continuous: ``S(g)`` includes the events at ``g``), so reading the curve at
   a grid time gives the same number as the full table. The curve stops
   (NaN) where fewer than ``min_cell`` patients remain at risk and after the
   arm's last observed time. The exact event and censoring times therefore
   never leave the program; at n = 150 the 200-point grid still shows in
   which grid interval the curve drops, as any published Kaplan-Meier plot
   does (Guyot et al. 2012 rebuild approximate data from such plots: the
   grid bounds that reconstruction to the grid's resolution).
2. **Small counts suppressed.** With ``min_cell = m > 0`` every count of
   patients between 1 and ``m - 1`` is replaced: by the text ``"<m"`` in the
   JSON and the report, by an empty cell (NaN) in numeric CSV/Parquet
   columns. In a flow of counts (cohort -> at risk -> treated ...) or a
   series (eligible per trial) a count is also hidden (``"suppressed"``) when
   it differs from a count already shown by 1 .. m-1. Histogram edges and
   the extremes next to a histogram (``min``, ``max``, ``top5``: quantile
   edges of times and the largest weights are single patients' values) are
   shown to 3 significant digits, and so are lists of times in diagnostics
   (a smooth's time axis ends at the first and last event times). Histograms (propensity, weights, artificial censoring) and
   tables whose total is published get *secondary* suppression: if exactly
   one cell of a histogram is hidden, the smallest other non-zero cell is
   hidden too, so the hidden one cannot be recovered by subtraction. The
   numbers at risk are shown only at the risk-table times; a number is
   suppressed when it is below ``m`` (and from then on) or when it differs
   from the last number shown by 1 .. m-1 patients (so no count below ``m``
   can be obtained by subtraction either).

Weighted numbers at risk (IPTW curves) are treated like counts.

References
----------
.. [1] Guyot P, Ades AE, Ouwens MJ, Welton NJ. Enhanced secondary analysis of
   survival data: reconstructing the data from published Kaplan-Meier
   survival curves. *BMC Med Res Methodol* 2012;12:9.
.. [2] Office for National Statistics. Statistical disclosure control for
   tables produced from administrative data sources (threshold rule and
   secondary suppression), 2014.
.. [3] Pocock SJ, Clayton TC, Altman DG. Survival plots of time-to-event
   outcomes in clinical trials: good practice and pitfalls. *Lancet*
   2002;359:1686-1689 (curves cut where few remain at risk).
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["suppress_text", "GRID_POINTS", "grid_times", "grid_curves", "suppress", "suppressed_text", "is_small",
           "COUNT_KEYS", "HISTOGRAM_KEYS"]

#: Most grid points per curve (besides the requested survival_at times and rmst_tau).
GRID_POINTS = 200

#: Keys whose integer values are counts of patients (anywhere in diagnostics, cohort, extras).
COUNT_KEYS = frozenset({
    "n", "n_treated", "n_untreated", "events", "count", "missing", "eligible", "treated", "untreated",
    "matched_treated", "unmatched_treated", "matched_controls", "n_trimmed", "n_truncated", "n_near_0_or_1",
    "treatment_events_in_model", "n_events", "n_censored", "n_at_risk", "n_patients", "n_rows", "rows_dropped",
    "n_clones", "n_eligible", "n_excluded", "n_matched", "n_unmatched", "n_dropped", "n_missing",
})
#: Keys that hold counts but are not about patients (never suppressed).
NOT_PATIENT_COUNTS = frozenset({
    "n_iter", "df", "replicates", "failed", "seed", "shared_with", "ratio", "n_bins", "min_cell", "suppressed",
    "m", "iterations", "n_boot", "n_jobs", "n_strategies", "n_replicates",
})
#: Lists of counts in a dict that also holds ``bins`` (histograms) are suppressed with secondary suppression.
HISTOGRAM_KEYS = ("bins", "edges")


def is_small(v: Any, min_cell: int) -> bool:
    """True for a count in 1 .. min_cell-1 (ints, or floats that are counts: weighted numbers)."""
    if min_cell <= 0 or isinstance(v, (bool, np.bool_)) or v is None:
        return False
    if isinstance(v, (int, np.integer, float, np.floating)):
        f = float(v)
        return math.isfinite(f) and 0 < f < min_cell
    return False


def suppressed_text(min_cell: int) -> str:
    return f"<{int(min_cell)}"


def _secondary(values: list[Any], hidden: list[bool]) -> list[bool]:
    """Hide the smallest other non-zero cell when exactly one is hidden (subtraction from the total)."""
    if sum(hidden) == 1 and len(values) > 1:
        rest = [i for i, (v, h) in enumerate(zip(values, hidden))
                if not h and isinstance(v, (int, float, np.integer, np.floating)) and float(v) > 0]
        if rest:
            j = min(rest, key=lambda i: float(values[i]))
            hidden = list(hidden)
            hidden[j] = True
    return hidden


def _hide_list(values: list[Any], min_cell: int, secondary: bool) -> list[Any]:
    hidden = [is_small(v, min_cell) for v in values]
    if not any(hidden):
        return values
    if secondary:
        hidden = _secondary(values, hidden)
    txt = suppressed_text(min_cell)
    return [(txt if is_small(v, min_cell) else "suppressed") if h else v for v, h in zip(values, hidden)]


def _hide_sequence(values: list[Any], min_cell: int) -> list[Any]:
    """Counts of one flow or series: hide small ones, and any count within 1 .. min_cell-1 of one shown.

    The steps of a flow (cohort 150 -> at risk 147 -> ...) or a series of
    risk sets are subtracted from each other by any reader, so a count is
    shown only if no difference to a count already shown is a small number.
    """
    txt = suppressed_text(min_cell)
    shown: list[float] = []
    out: list[Any] = []
    for v in values:
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
            out.append(v)
        elif is_small(v, min_cell):
            out.append(txt)
        elif any(0 < abs(float(v) - s) < min_cell for s in shown):
            out.append("suppressed")
        else:
            shown.append(float(v))
            out.append(v)
    return out


def suppress(obj: Any, min_cell: int) -> Any:
    """A copy of ``obj`` (JSON-like: dicts, lists, numbers, strings) with small patient counts replaced.

    Counts are integers recognised by their key (:data:`COUNT_KEYS`, or any
    key that starts with ``n_`` and is not in :data:`NOT_PATIENT_COUNTS`;
    everything nested under such a key, e.g. ``events: {os: 3}``), by being a
    list of integers next to ``bins`` (a histogram: secondary suppression
    applied), or by being a ``flow`` step ``[label, count]``. A replaced
    value becomes ``"<min_cell"`` (``"suppressed"`` for a cell hidden only so
    that another cannot be recovered by subtraction).
    """
    if min_cell <= 0:
        return obj
    return _walk(obj, int(min_cell), False)


#: A number of patients in free text: an integer followed by a word that counts people or rows
#: ("2 rows", "4 treated by 1", "3 of 150 propensity scores", "1 treated patients").
_TEXT_COUNT = re.compile(
    r"(?<![\w.<])(\d+)(?=\s+(?:(?:treated|untreated|operated|eligible|matched|unmatched|more|other)\s+)?"
    r"(?:patients?|rows?|persons?|people|subjects?|individuals?|events?|deaths?|controls?|clones?|cases?"
    r"|treated|untreated|operated|eligible|matched|unmatched|excluded|censored|near|of\s+\d+)\b)")


def suppress_text(text: str, min_cell: int) -> str:
    """Free text (warnings, notes) with numbers of 1 .. min_cell-1 patients replaced by ``"<min_cell"``.

    A number counts patients when a word that counts people or rows follows
    it (``"2 rows with missing confounders"``, ``"4 treated by 1"``,
    ``"3 of 150 propensity scores"``); other numbers (times, seeds,
    thresholds) are left alone.
    """
    if min_cell <= 0 or not text:
        return text
    return _TEXT_COUNT.sub(lambda mt: suppressed_text(min_cell) if 0 < int(mt.group(1)) < min_cell
                           else mt.group(1), text)


#: In a histogram's dict, values that can be single patients' values (quantile edges are patients' times,
#: the largest weight is one patient's): shown to :data:`SIGNIFICANT` significant digits.
ROUNDED_KEYS = frozenset({"bins", "edges", "min", "max", "top5"})
SIGNIFICANT = 3
#: Lists of times in diagnostics (e.g. the time axis of a Schoenfeld smooth, whose ends are the first and
#: last event times): shown to :data:`SIGNIFICANT` significant digits.
TIME_LIST_KEYS = frozenset({"time", "times"})


def _round_sig(v: Any) -> Any:
    if isinstance(v, list):
        return [_round_sig(x) for x in v]
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and v != 0:
        return float(f"{float(v):.{SIGNIFICANT}g}")
    return v


def _ints(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in v)


def _walk(obj: Any, m: int, count: bool) -> Any:
    if isinstance(obj, dict):
        hist = any(k in obj for k in HISTOGRAM_KEYS)
        out = {}
        for k, v in obj.items():
            ks = str(k)
            if ks in NOT_PATIENT_COUNTS:
                out[k] = v
            elif hist and ks in ROUNDED_KEYS:
                out[k] = _round_sig(v)
            elif ks in TIME_LIST_KEYS and isinstance(v, list) and v and all(isinstance(x, float) for x in v):
                out[k] = _round_sig(v)  # e.g. a smooth's time axis: its ends are the first and last event times
            elif hist and ks not in HISTOGRAM_KEYS and _ints(v):
                out[k] = _hide_list(list(v), m, secondary=True)
            elif ks == "flow" and isinstance(v, list):
                steps = [st for st in v if isinstance(st, (list, tuple)) and len(st) == 2]
                if len(steps) == len(v):
                    counts = _hide_sequence([st[1] for st in steps], m)
                    out[k] = [[st[0], c] for st, c in zip(steps, counts)]
                else:
                    out[k] = _walk(v, m, True)
            else:
                out[k] = _walk(v, m, count or _is_count_key(ks))
        return out
    if isinstance(obj, (list, tuple)):
        if count and _ints(list(obj)):
            return _hide_sequence(list(obj), m)
        return [_walk(v, m, count) for v in obj]
    if count and isinstance(obj, (int, np.integer)) and is_small(obj, m):
        return suppressed_text(m)
    if isinstance(obj, str):
        return suppress_text(obj, m)
    return obj


def _is_count_key(key: str | None) -> bool:
    if key is None or key in NOT_PATIENT_COUNTS:
        return False
    return key in COUNT_KEYS or key.startswith("n_")


# ---------------------------------------------------------------------------
# curves on a grid
# ---------------------------------------------------------------------------
def risk_ticks(tmax: float) -> np.ndarray:
    """Round tick times 0 .. T >= tmax for the numbers-at-risk table (matplotlib's MaxNLocator steps)."""
    from matplotlib.ticker import MaxNLocator

    if not (math.isfinite(tmax) and tmax > 0):
        return np.array([0.0])
    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, float(tmax))
    ticks = np.asarray([t for t in ticks if t >= -1e-12], float)
    if ticks[-1] < tmax:  # pragma: no cover - MaxNLocator covers the range
        ticks = np.r_[ticks, ticks[-1] + (ticks[1] - ticks[0])]
    return np.round(ticks, 10)


def grid_times(tmax: float, extra: Sequence[float] = (), points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(grid, risk-table times): ``points`` or fewer equally spaced times on ``0 .. T`` plus ``extra``.

    ``T`` is ``tmax`` rounded up to the last risk-table tick, and the step
    divides the tick spacing, so every tick is a grid time.
    """
    ticks = risk_ticks(tmax)
    T = float(ticks[-1])
    m = max(len(ticks) - 1, 1)
    k = m * max((points - 1) // m, 1)
    base = T * np.arange(k + 1) / k if T > 0 else np.array([0.0])
    extra = [float(x) for x in extra if x is not None and math.isfinite(float(x)) and float(x) >= 0]
    grid = np.unique(np.round(np.concatenate([base, ticks, np.asarray(extra, float)]), 9))
    return grid, ticks


def _risk_text(values: np.ndarray, min_cell: int, weighted: bool) -> tuple[np.ndarray, list[str]]:
    """Numbers at risk at the ticks with the threshold and difference rules; (numbers, texts)."""
    out = np.full(len(values), np.nan)
    texts: list[str] = []
    last: float | None = None
    tail = False
    for i, v in enumerate(values):
        v = float(v)
        if not math.isfinite(v):
            texts.append("")
        elif v == 0:
            out[i] = 0.0  # the last number shown was >= min_cell, so this difference is too
            texts.append("0")
        elif min_cell > 0 and (tail or v < min_cell):
            tail = True  # from here on the risk set is small
            texts.append(suppressed_text(min_cell))
        elif min_cell > 0 and last is not None and abs(last - v) < min_cell and abs(last - v) > 1e-9:
            texts.append("*")  # shown, it would reveal 1 .. min_cell-1 patients by subtraction
        else:
            out[i] = v
            last = v
            texts.append(f"{v:.1f}" if weighted else f"{v:.0f}")
    return out, texts


def grid_curves(curves: Any, *, extra_times: Sequence[float] = (), min_cell: int = 0,
                points: int = GRID_POINTS) -> Any:
    """A :class:`~causal_hcc.results.SurvivalCurves` on the disclosure grid (see module docstring).

    The returned table has :data:`~causal_hcc.results.CURVE_COLUMNS` plus
    ``n_at_risk_text`` (the risk-table text: a number, ``"<m"``, or ``"*"``
    for a number hidden so that a small count cannot be obtained by
    subtraction). ``n_at_risk`` is only filled at the risk-table times and
    the requested ``extra_times``.
    """
    extra = [float(x) for x in extra_times if x is not None and math.isfinite(float(x)) and float(x) >= 0]
    return _grid_curves(curves, extra, min_cell, points)


def _grid_curves(curves: Any, extra: list[float], min_cell: int, points: int) -> Any:
    from causal_hcc.results import CURVE_COLUMNS, SurvivalCurves

    tab = curves.table
    if curves.risk_times:  # already on a grid
        return curves
    times = pd.to_numeric(tab["time"], errors="coerce").to_numpy(float)
    ok = np.isfinite(times)
    if min_cell > 0:  # the grid ends at the last time with min_cell or more at risk (rounded up)
        nr_all = pd.to_numeric(tab["n_at_risk"], errors="coerce").to_numpy(float)
        ok &= nr_all >= min_cell
    tmax = float(np.max(times[ok])) if ok.any() else 0.0
    grid, ticks = grid_times(tmax, extra, points)
    weighted = curves.method not in ("km",)
    groups = list(dict.fromkeys(tab["group"].astype(str)))
    parts = []
    gcol = tab["group"].astype(str).to_numpy()
    for g in groups:
        m = gcol == g
        t = times[m]
        order = np.argsort(t, kind="stable")
        t = t[order]
        cols = {c: pd.to_numeric(tab[c][m], errors="coerce").to_numpy(float)[order]
                for c in ("surv", "se", "ci_lower", "ci_upper", "n_at_risk")}
        i = np.searchsorted(t, grid, side="right") - 1  # last row at or before the grid time
        before = i < 0
        ii = np.clip(i, 0, max(len(t) - 1, 0))
        vals = {}
        for c, fill in (("surv", 1.0), ("se", 0.0), ("ci_lower", 1.0), ("ci_upper", 1.0)):
            v = cols[c][ii] if len(t) else np.full(len(grid), np.nan)
            vals[c] = np.where(before, fill, v)
        j = np.searchsorted(t, grid, side="left")  # at risk at g: first row at or after g
        nr = np.where(j < len(t), cols["n_at_risk"][np.minimum(j, max(len(t) - 1, 0))] if len(t) else 0.0, 0.0)
        # before the first row the risk set is the first row's (everyone still in follow-up)
        stop = grid > (t[-1] if len(t) else -np.inf)  # after the arm's last observed time: no curve
        if min_cell > 0:
            low = (nr < min_cell) & ~before
            if low.any():
                stop |= np.arange(len(grid)) >= int(np.argmax(low))
        for c in ("surv", "se", "ci_lower", "ci_upper"):
            vals[c] = np.where(stop, np.nan, vals[c])
        # numbers at risk at the risk-table ticks and at the requested times (one series: the
        # difference rule runs over both)
        show = np.unique(np.round(np.concatenate([ticks, [x for x in extra if x <= grid[-1]]]), 9))
        tick_idx = np.searchsorted(grid, show)
        shown, texts = _risk_text(nr[tick_idx], min_cell, weighted)
        nr_out = np.full(len(grid), np.nan)
        nr_out[tick_idx] = shown
        txt = np.full(len(grid), "", dtype=object)
        txt[tick_idx] = texts
        parts.append(pd.DataFrame({"time": grid, "group": g, **vals, "n_at_risk": nr_out, "n_at_risk_text": txt}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*CURVE_COLUMNS, "n_at_risk_text"])
    return SurvivalCurves(table[[*CURVE_COLUMNS, "n_at_risk_text"]], method=curves.method,
                          variance_method=curves.variance_method, time_origin=curves.time_origin,
                          risk_times=tuple(float(x) for x in ticks), kind=getattr(curves, "kind", "survival"))
