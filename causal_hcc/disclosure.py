"""Statistical disclosure control for everything a run writes (docs/disclosure.md).

Outputs hold aggregate numbers only. :meth:`~causal_hcc.results.AnalysisResult.disclosed`
applies these rules before anything is written (``results.json``,
``curves.parquet``, ``estimates.csv``, the report and its figures). With
``report.min_cell = m > 0`` (default 5 for any data but the simulated twin):

1. **Counts: small ones suppressed, every other one rounded.** A count of
   1 .. m-1 patients is shown as ``"<m"`` (an empty cell in numeric CSV and
   Parquet columns); every other count is rounded to the nearest multiple of
   ``m`` (183 at risk is shown as 185; 0 stays 0). Rounding, not secondary
   suppression, is what makes differences safe: the difference of two
   rounded counts (two flow steps, two rows of a landmark sweep, a histogram
   total and its cells) is a multiple of ``m`` and says nothing finer about
   the patients between them; and no large count is ever hidden. Numbers
   derived from counts (percentages in Table 1 and the missingness table,
   events per variable) are computed from the rounded counts
   (:func:`percent`).
2. **Curves: the published curve is computed from rounded counts** -- the
   OpenSAFELY method for Kaplan-Meier curves [1]_. On a grid of at most
   :data:`GRID_POINTS` equally spaced times that does not depend on any
   patient (``0 .. T``, ``T`` the follow-up rounded up to a round tick), plus
   the requested ``survival_at`` times and ``rmst_tau``, the cumulative number
   of events of each arm and its number at risk at the start of each grid
   interval are rounded to multiples of ``m``; the published curve is the
   product-limit estimate of those rounded counts, ``S(g_k) = prod (1 -
   d_j / n_j)``, and its SE is Greenwood's from the same rounded counts. Each
   step of the curve and each increment of its SE is therefore a function of
   multiples of ``m`` only: the attacker of the issue that read deaths and the
   exact number at risk from step ratios and SE increments gets multiples of
   ``m`` (tests/test_disclosure.py, ``test_step_se_and_cross_row_attacker``).
   Weighted and model-based curves (IPTW, matched, g-formula, AIPTW, clone-
   censor) are treated the same way with their *effective* counts (weighted
   number at risk, ``n (1 - S_k / S_k-1)`` events); their SE is the Greenwood
   SE of the rounded effective counts times one factor per arm (the median
   ratio of the curve's own SE to that Greenwood SE, 2 significant digits),
   and the band is recomputed from the published curve and SE. The curve
   stops where fewer than ``m`` remain at risk and after the arm's last time.
   The numbers at risk under the figures are the rounded ones the curve uses.
3. **Rows at user-chosen times.** ``survival_at`` takes at most
   :data:`~causal_hcc.limits.MAX_SURVIVAL_AT` times, and a survival (or risk)
   estimate at a requested time is withheld (an empty row with a note) when
   an arm had 1 .. m-1 events since the previous time shown: the difference of
   the two rows would reveal them (:func:`small_windows`). Landmark sweeps are
   bounded (:data:`~causal_hcc.limits.MAX_LANDMARKS`) and their counts rounded
   as in rule 1.
4. **Single patients' values** (histogram edges, the largest weights, time
   axes of diagnostics) are shown to :data:`SIGNIFICANT` significant digits.

With ``m = 0`` nothing is suppressed or rounded (the twin's default: it is
simulated). The curves are on the grid in every case.

References
----------
.. [1] OpenSAFELY. Kaplan-Meier reusable action ``kaplan-meier-function``
   (``analysis/km.R``: cumulative event and censoring counts rounded, the
   curve and Greenwood's SE computed from the rounded counts; it rounds to
   midpoints, we to the nearest multiple of min_cell, see docs/disclosure.md),
   and the OpenSAFELY output-checking guidance (redaction and rounding).
   https://github.com/opensafely-actions/kaplan-meier-function ;
   https://docs.opensafely.org/outputs/sdc/
.. [2] Office for National Statistics. Statistical disclosure control for
   tables produced from administrative data sources (threshold rule and
   rounding to base 5), 2014.
.. [3] Guyot P, Ades AE, Ouwens MJ, Welton NJ. Enhanced secondary analysis of
   survival data: reconstructing the data from published Kaplan-Meier
   survival curves. *BMC Med Res Methodol* 2012;12:9 (why curves leak).
.. [4] Pocock SJ, Clayton TC, Altman DG. Survival plots of time-to-event
   outcomes in clinical trials: good practice and pitfalls. *Lancet*
   2002;359:1686-1689 (curves cut where few remain at risk).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["GRID_POINTS", "COUNT_KEYS", "HISTOGRAM_KEYS", "TIME_POINT_MEASURES", "round_count", "round_counts",
           "percent", "is_small", "suppressed_text", "is_suppressed", "count_positive", "suppress", "suppress_text",
           "rule_text", "risk_ticks", "grid_times", "grid_curves", "small_windows"]

#: Most grid points per curve (besides the requested survival_at times and rmst_tau).
GRID_POINTS = 200

#: Keys whose integer values are counts of patients (anywhere in diagnostics, cohort, extras).
COUNT_KEYS = frozenset({
    "n", "n_treated", "n_untreated", "events", "count", "missing", "eligible", "treated", "untreated",
    "matched_treated", "unmatched_treated", "matched_controls", "n_trimmed", "n_truncated", "n_near_0_or_1",
    "treatment_events_in_model", "n_events", "n_censored", "n_at_risk", "n_patients", "n_rows", "rows_dropped",
    "n_clones", "n_eligible", "n_excluded", "n_matched", "n_unmatched", "n_dropped", "n_missing",
    "events_treated", "events_untreated", "complete_cases",
})
#: Keys that hold counts but are not about patients (never rounded or suppressed).
NOT_PATIENT_COUNTS = frozenset({
    "n_iter", "df", "replicates", "failed", "seed", "shared_with", "ratio", "n_bins", "min_cell", "suppressed",
    "m", "iterations", "n_boot", "n_jobs", "n_strategies", "n_replicates", "n_parameters", "n_clusters",
    "n_population", "n_coverage", "n_valid", "n_failed", "n_penalised", "n_large", "n_flag", "rows", "record",
    "rounding_base", "events_per_variable", "events_per_variable_smaller_arm",
})
#: Lists of counts in a dict that also holds ``bins`` (histograms): each cell rounded.
HISTOGRAM_KEYS = ("bins", "edges")
#: Measures estimated at a requested time whose rows are checked across times (rule 3).
TIME_POINT_MEASURES = frozenset({"survival_difference", "risk_ratio", "cif_difference", "cif_ratio"})


# --------------------------------------------------------------------------- counts
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


def is_suppressed(v: Any) -> bool:
    """True for a count written as a display text: ``"<m"`` (1 .. m-1 patients) or ``"suppressed"``."""
    return isinstance(v, str) and (v == "suppressed" or re.fullmatch(r"<\d+", v) is not None)


def count_positive(v: Any) -> bool:
    """Whether a *disclosed* count is known to be above 0.

    A disclosed result holds display values: a number, or a text such as
    ``"<5"`` (which stands for 1 .. 4 patients, so it is positive). Code that
    reads counts back (the report) asks this instead of comparing with ``> 0``,
    which fails on the text.
    """
    if is_suppressed(v):
        return True
    if isinstance(v, (bool, np.bool_)) or v is None:
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return math.isfinite(float(v)) and float(v) > 0
    return False


def _round_to(v: float | int, base: int) -> int:
    """``v`` to the nearest multiple of ``base`` (halves up), as an int."""
    if isinstance(v, (int, np.integer)):
        return int((2 * int(v) + base) // (2 * base) * base)
    return int(base * math.floor(float(v) / base + 0.5))


def round_count(v: Any, min_cell: int) -> Any:
    """The disclosed form of one count: ``"<m"`` for 1 .. m-1, else the nearest multiple of ``m``.

    0 stays 0; anything that is not a finite number is returned unchanged;
    ``min_cell`` 0 (or 1) leaves every count as it is.
    """
    if min_cell <= 1 or isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return v
    f = float(v)
    if not math.isfinite(f) or f < 0:
        return v
    if f == 0:
        return 0
    if f < min_cell:
        return suppressed_text(min_cell)
    return _round_to(v, int(min_cell))


def round_counts(values: np.ndarray, min_cell: int) -> np.ndarray:
    """Vectorised :func:`round_count` for numeric columns: NaN where suppressed (1 .. m-1)."""
    x = np.asarray(values, dtype=float)
    if min_cell <= 1:
        return x
    out = min_cell * np.floor(x / min_cell + 0.5)
    return np.where((x > 0) & (x < min_cell), np.nan, np.where(x == 0, 0.0, out))


def percent(k: Any, n: Any, min_cell: int) -> float | None:
    """100 k / n from the *disclosed* counts (None when either is suppressed or n is 0).

    A percentage of exact counts would give the exact count back (23/150 =
    15.3% is 23): it is computed from what is shown.
    """
    k, n = round_count(k, min_cell), round_count(n, min_cell)
    if not isinstance(k, (int, float)) or not isinstance(n, (int, float)) or not n:
        return None
    return 100.0 * float(k) / float(n)


def rule_text(min_cell: int) -> str:
    """The rule in words, for captions and ``results.json``."""
    if min_cell <= 0:
        return "no suppression or rounding (min_cell 0)"
    if min_cell == 1:
        return "counts shown as they are (min_cell 1)"
    return (f"counts of fewer than {min_cell} patients are shown as <{min_cell}, every other count is rounded to "
            f"the nearest {min_cell}; curves are computed from counts rounded the same way")


def suppress(obj: Any, min_cell: int) -> Any:
    """A copy of ``obj`` (JSON-like: dicts, lists, numbers, strings) with every patient count disclosed.

    Counts are numbers recognised by their key (:data:`COUNT_KEYS`, or any key
    that starts with ``n_`` or ``events_`` and is not in
    :data:`NOT_PATIENT_COUNTS`; everything nested under such a key, e.g.
    ``events: {os: 3}``), by being a list of integers next to ``bins`` (a
    histogram) or by being a ``flow`` step ``[label, count]``. Each becomes
    :func:`round_count` of itself; events per variable are recomputed from the
    rounded events; free text goes through :func:`suppress_text`.
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
#: "N of M": the M counts patients too
_TEXT_OF = re.compile(r"(?<=\bof )(\d+)(?=\s+(?:patients?|rows?|propensity|treated|untreated|clones?|persons?))")
#: events per variable in free text ("(2.3 < 10)", "2.3 per parameter"): exact counts divided by a small k
_TEXT_EPV = re.compile(r"\d+(?:\.\d+)?(?: < 10(?=\))|(?= per parameter))")


def suppress_text(text: str, min_cell: int) -> str:
    """Free text (warnings, notes) with numbers of patients disclosed as counts are.

    A number counts patients when a word that counts people or rows follows
    it (``"2 rows with missing confounders"``, ``"4 treated by 1"``, ``"3 of
    150 propensity scores"``): 1 .. m-1 becomes ``"<m"``, others are rounded
    to the nearest ``m``. Events per variable ("2.3 per parameter") become
    ``"<10"`` (they are exact counts divided by a small number). Other numbers
    (times, seeds, thresholds) are left alone.
    """
    if min_cell <= 0 or not text:
        return text

    def one(mt: re.Match) -> str:
        return str(round_count(int(mt.group(1)), min_cell))

    out = _TEXT_COUNT.sub(one, text)
    out = _TEXT_OF.sub(one, out)
    if min_cell > 1:
        out = _TEXT_EPV.sub("<10", out)
    return out


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


def _numbers(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(x, (int, np.integer, float, np.floating)) and not isinstance(x, (bool, np.bool_)) for x in v)


def _epv(d: dict, m: int) -> dict:
    """Events per variable recomputed from the rounded events (None when an arm's count is suppressed)."""
    k = d.get("n_parameters")
    et, eu = d.get("events_treated"), d.get("events_untreated")
    if not isinstance(k, int) or k < 1 or "events_per_variable" not in d:
        return d
    out = dict(d)
    ok = isinstance(et, (int, float)) and isinstance(eu, (int, float))
    out["events_per_variable"] = (et + eu) / k if ok else None
    if "events_per_variable_smaller_arm" in d:
        out["events_per_variable_smaller_arm"] = min(et, eu) / k if ok else None
    return out


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
            elif hist and ks not in HISTOGRAM_KEYS and _numbers(v):
                out[k] = [round_count(x, m) for x in v]
            elif ks == "flow" and isinstance(v, list):
                steps = [st for st in v if isinstance(st, (list, tuple)) and len(st) == 2]
                if len(steps) == len(v):
                    out[k] = [[suppress_text(str(st[0]), m), round_count(st[1], m)] for st in steps]
                else:
                    out[k] = _walk(v, m, True)
            else:
                out[k] = _walk(v, m, count or _is_count_key(ks))
        return _epv(out, m)
    if isinstance(obj, (list, tuple)):
        return [_walk(v, m, count) for v in obj]
    if count and isinstance(obj, (int, float, np.integer, np.floating)) and not isinstance(obj, (bool, np.bool_)):
        return round_count(obj, m)
    if isinstance(obj, str):
        return suppress_text(obj, m)
    return obj


def _is_count_key(key: str | None) -> bool:
    if key is None or key in NOT_PATIENT_COUNTS:
        return False
    return key in COUNT_KEYS or key.startswith(("n_", "events_"))


# --------------------------------------------------------------------------- the grid
def risk_ticks(tmax: float) -> np.ndarray:
    """Round tick times 0 .. T >= tmax for the numbers-at-risk table (matplotlib's MaxNLocator steps)."""
    from matplotlib.ticker import MaxNLocator

    if not (math.isfinite(tmax) and tmax > 0):
        return np.array([0.0])
    scale = 1.0
    if tmax > 1e100 or tmax < 1e-100:  # astronomically large or small times: ticks on a scaled axis
        scale = 10.0 ** math.floor(math.log10(tmax))
    with np.errstate(over="ignore", invalid="ignore"):
        ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, float(tmax) / scale)
    ticks = np.asarray([t for t in ticks if t >= -1e-12], float)
    if not np.isfinite(ticks).all() or len(ticks) < 2:  # pragma: no cover - MaxNLocator covers the range
        ticks = np.linspace(0.0, float(tmax) / scale, 6)
    if ticks[-1] < tmax / scale:  # pragma: no cover - MaxNLocator covers the range
        ticks = np.r_[ticks, ticks[-1] + (ticks[1] - ticks[0])]
    return np.round(ticks, 10) * scale


def grid_times(tmax: float, extra: Sequence[float] = (), points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(grid, risk-table times): ``points`` or fewer equally spaced times on ``0 .. T`` plus ``extra``.

    ``T`` is ``tmax`` rounded up to the last risk-table tick, and the step
    divides the tick spacing, so every tick is a grid time.
    """
    ticks = risk_ticks(tmax)
    T = float(ticks[-1])
    m = max(len(ticks) - 1, 1)
    k = m * max((points - 1) // m, 1)
    base = T * (np.arange(k + 1) / k) if T > 0 else np.array([0.0])  # (divide first: no overflow near 1e308)
    extra = [float(x) for x in extra if x is not None and math.isfinite(float(x)) and float(x) >= 0]
    both = np.concatenate([base, ticks, np.asarray(extra, float)])
    both = both[np.isfinite(both)]
    # (times in ordinary units are rounded to 9 decimals as they are; astronomically small or large ones on a
    # scaled axis, so that neither the rounding nor np.round's own multiplication overflows)
    scale = 1.0 if not T > 0 or 1e-3 <= T <= 1e12 else 10.0 ** math.floor(math.log10(T))
    r = both / scale
    r = np.where(np.abs(r) < 1e12, np.round(r, 9), r)  # (np.round overflows far beyond the follow-up)
    grid = np.unique(r * scale)
    return grid, ticks


# --------------------------------------------------------------------------- curves
_PLAIN_CI_METHODS = ("g-formula", "aiptw")


def _effective(t: np.ndarray, s: np.ndarray, nr: np.ndarray) -> np.ndarray:
    """Events at each row of a curve table: ``n (1 - S_i / S_i-1)`` (exact for a Kaplan-Meier table)."""
    prev = np.r_[1.0, s[:-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(prev > 0, 1.0 - s / prev, 0.0)
    return np.clip(np.nan_to_num(h * nr, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def _greenwood_terms(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n > d) & (d > 0), d / (n * (n - d)), 0.0)


def grid_curves(curves: Any, *, extra_times: Sequence[float] = (), min_cell: int = 0,
                points: int = GRID_POINTS, alpha: float = 0.05) -> Any:
    """A :class:`~causal_hcc.results.SurvivalCurves` on the disclosure grid (see the module docstring).

    With ``min_cell`` m > 1 the curve, its SE and band are recomputed from
    counts rounded to multiples of m (rule 2); with m 0 or 1 the values at
    the grid times are the step function's own. The returned table has the
    curve columns plus ``n_at_risk_text`` (the risk-table text: a number or
    ``"<m"``); ``n_at_risk`` is filled at the risk-table times and the
    requested ``extra_times`` only.
    """
    if curves.risk_times:  # already on a grid
        return curves
    extra = [float(x) for x in extra_times if x is not None and math.isfinite(float(x)) and float(x) >= 0]
    tab = curves.table
    cols = ["time", "group", "surv", "se", "ci_lower", "ci_upper", "n_at_risk"]
    times = pd.to_numeric(tab["time"], errors="coerce").to_numpy(float)
    ok = np.isfinite(times)
    if min_cell > 0:  # the grid ends at the last time with min_cell or more at risk (rounded up)
        nr_all = pd.to_numeric(tab["n_at_risk"], errors="coerce").to_numpy(float)
        ok &= nr_all >= min_cell
    tmax = float(np.max(times[ok])) if ok.any() else 0.0
    grid, ticks = grid_times(tmax, extra, points)
    show = np.unique(np.concatenate([ticks, [x for x in extra if x <= grid[-1]]]))
    weighted = curves.method not in ("km",)
    z = float(_norm_ppf(1 - alpha / 2))
    gcol = tab["group"].astype(str).to_numpy()
    parts = []
    if getattr(curves, "kind", "survival") == "cumulative_incidence":
        for arm, groups in _cif_arms(gcol).items():
            parts += _cif_arm_on_grid(arm, groups, tab, times, gcol, grid, show, min_cell, weighted)
        groups_done = True
    else:
        groups_done = False
    for g in ([] if groups_done else dict.fromkeys(gcol)):
        mask = gcol == g
        order = np.argsort(times[mask], kind="stable")
        t = times[mask][order]
        col = {c: pd.to_numeric(tab[c][mask], errors="coerce").to_numpy(float)[order]
               for c in ("surv", "se", "ci_lower", "ci_upper", "n_at_risk")}
        parts.append(_arm_on_grid(g, t, col, grid, show, min_cell, weighted, curves, z))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*cols, "n_at_risk_text"])
    return dataclasses.replace(curves, table=table[[*cols, "n_at_risk_text"]],
                               risk_times=tuple(float(x) for x in ticks))


def _cif_arms(gcol: np.ndarray) -> dict[str, list[str]]:
    """Groups of a cumulative-incidence table by arm (``"<arm>: <cause>"``)."""
    arms: dict[str, list[str]] = {}
    for g in dict.fromkeys(gcol):
        arms.setdefault(str(g).split(": ", 1)[0], []).append(str(g))
    return arms


def _cif_arm_arrays(groups: list[str], tab: pd.DataFrame, times: np.ndarray, gcol: np.ndarray):
    """(times, number at risk, {group: cumulative incidence}, {group: effective events}) of one arm.

    Aalen-Johansen: the events of cause k at a time are ``n dF_k / S(t-)``, with
    ``S = 1 - sum_k F_k`` the arm's all-cause survival.
    """
    T = np.unique(np.concatenate([times[gcol == g] for g in groups]))
    T = T[np.isfinite(T)]
    F, nr = {}, None
    for g in groups:
        m = gcol == g
        o = np.argsort(times[m], kind="stable")
        t = times[m][o]
        k = np.searchsorted(t, T, side="right") - 1
        f = pd.to_numeric(tab["surv"][m], errors="coerce").to_numpy(float)[o]
        F[g] = np.where(k >= 0, f[np.clip(k, 0, None)], 0.0) if len(t) else np.zeros(len(T))
        if nr is None and len(t):
            n_ = pd.to_numeric(tab["n_at_risk"][m], errors="coerce").to_numpy(float)[o]
            j = np.searchsorted(t, T, side="left")
            nr = np.where(j < len(t), n_[np.minimum(j, len(t) - 1)], 0.0)
    nr = np.zeros(len(T)) if nr is None else nr
    S = 1.0 - sum(F.values()) if F else np.ones(len(T))
    S_prev = np.r_[1.0, S[:-1]]
    d = {}
    for g, f in F.items():
        df = np.diff(np.r_[0.0, f])
        with np.errstate(divide="ignore", invalid="ignore"):
            d[g] = np.clip(np.nan_to_num(np.where(S_prev > 0, nr * df / S_prev, 0.0)), 0.0, None)
    return T, nr, F, d


def _cif_arm_on_grid(arm: str, groups: list[str], tab: pd.DataFrame, times: np.ndarray, gcol: np.ndarray,
                     grid: np.ndarray, show: np.ndarray, m: int, weighted: bool) -> list[pd.DataFrame]:
    """Cumulative incidence curves of one arm on the grid; with m > 1 recomputed from rounded counts.

    The rounded reconstruction follows OpenSAFELY's cumulative-incidence variant: the cumulative events of
    each cause and the number at risk at each interval start are rounded to multiples of m; the all-cause
    survival is the product-limit estimate of the summed rounded events, and ``F_k(g_j) = sum_i S(g_i-1)
    d_k,i / n_i``. Pointwise SEs and bands are not published under rounding (their variance is not a
    function of the rounded counts alone): the columns are empty.
    """
    T, nr, F, d = _cif_arm_arrays(groups, tab, times, gcol)
    n = len(T)
    j = np.searchsorted(T, grid, side="left")
    at_g = np.where(j < n, nr[np.minimum(j, max(n - 1, 0))], 0.0) if n else np.zeros(len(grid))
    i = np.searchsorted(T, grid, side="right") - 1
    stop = grid > (T[-1] if n else -np.inf)
    if m > 0:
        low = (at_g < m) & (i >= 0)
        if low.any():
            stop |= np.arange(len(grid)) >= int(np.argmax(low))
    out = {}
    if m <= 1 or n == 0:
        for g in groups:
            msk = gcol == g
            o = np.argsort(times[msk], kind="stable")
            t = times[msk][o]
            k = np.searchsorted(t, grid, side="right") - 1
            cols = {c: pd.to_numeric(tab[c][msk], errors="coerce").to_numpy(float)[o]
                    for c in ("surv", "se", "ci_lower", "ci_upper")}
            out[g] = {c: np.where(k >= 0, v[np.clip(k, 0, None)] if len(t) else np.nan, 0.0) for c, v in cols.items()}
        shown_n = at_g
    else:
        prev = np.r_[-np.inf, grid[:-1]]
        jj = np.searchsorted(T, prev, side="right")
        Yr = m * np.floor(np.where(jj < n, nr[np.minimum(jj, n - 1)], 0.0) / m + 0.5)
        dr = {}
        for g in groups:
            E = np.where(i >= 0, np.cumsum(d[g])[np.clip(i, 0, n - 1)], 0.0)
            dr[g] = np.maximum(np.diff(np.r_[0.0, m * np.floor(E / m + 0.5)]), 0.0)
        all_d = sum(dr.values())
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(Yr > 0, np.minimum(all_d / Yr, 1.0), 0.0)
            S = np.cumprod(1.0 - h)
            S_before = np.r_[1.0, S[:-1]]
            for g in groups:
                inc = np.where(Yr > 0, S_before * dr[g] / Yr, 0.0)
                nan = np.full(len(grid), np.nan)
                out[g] = {"surv": np.cumsum(inc), "se": nan, "ci_lower": nan, "ci_upper": nan}
        shown_n = m * np.floor(np.asarray(at_g, float) / m + 0.5)
    idx = np.searchsorted(grid, show)
    idx = idx[idx < len(grid)]
    frames = []
    for g in groups:
        vals = {c: np.where(stop, np.nan, v) for c, v in out[g].items()}
        nr_out, txt = _at_risk_shown(idx, at_g, shown_n, len(grid), m, weighted)
        frames.append(pd.DataFrame({"time": grid, "group": g, **vals, "n_at_risk": nr_out, "n_at_risk_text": txt}))
    return frames


def _at_risk_shown(idx: np.ndarray, at_g: np.ndarray, shown_n: np.ndarray, n_grid: int, m: int,
                   weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Numbers at risk written at the grid positions ``idx``: (numbers, their text), a count
    below ``min_cell`` ``m`` suppressed; weighted counts keep one decimal when not rounded."""
    nr_out = np.full(n_grid, np.nan)
    txt = np.full(n_grid, "", dtype=object)
    for k in idx:
        v = float(at_g[k])
        if not math.isfinite(v):
            continue
        if m > 0 and 0 < v < m:
            txt[k] = suppressed_text(m)
        else:
            nr_out[k] = float(shown_n[k])
            txt[k] = (f"{shown_n[k]:.1f}" if weighted and m <= 1 and abs(shown_n[k] - round(shown_n[k])) > 1e-9
                      else f"{shown_n[k]:.0f}")
    return nr_out, txt


def _norm_ppf(q: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)


def _arm_on_grid(g: str, t: np.ndarray, col: dict, grid: np.ndarray, show: np.ndarray, m: int, weighted: bool,
                 curves: Any, z: float) -> pd.DataFrame:
    n = len(t)
    s, se, nr = col["surv"], col["se"], col["n_at_risk"]
    i = np.searchsorted(t, grid, side="right") - 1  # last row at or before the grid time
    before = i < 0
    ii = np.clip(i, 0, max(n - 1, 0))
    # at risk at g (conventional: time >= g), the number shown under the figure
    j = np.searchsorted(t, grid, side="left")
    at_g = np.where(j < n, nr[np.minimum(j, max(n - 1, 0))], 0.0) if n else np.zeros(len(grid))
    stop = grid > (t[-1] if n else -np.inf)  # after the arm's last observed time: no curve
    if m > 0:
        low = (at_g < m) & ~before
        if low.any():
            stop |= np.arange(len(grid)) >= int(np.argmax(low))
    if m <= 1 or n == 0:  # no rounding: the step function's own values at the grid times
        vals = {c: np.where(before, fill, col[c][ii] if n else np.nan)
                for c, fill in (("surv", 1.0), ("se", 0.0), ("ci_lower", 1.0), ("ci_upper", 1.0))}
        shown_n = at_g
    else:
        vals, shown_n = _rounded_arm(t, s, se, nr, grid, at_g, m, curves, z)
    for c in ("surv", "se", "ci_lower", "ci_upper"):
        vals[c] = np.where(stop, np.nan, vals[c])
    idx = np.searchsorted(grid, show)
    idx = idx[(idx < len(grid))]
    nr_out, txt = _at_risk_shown(idx, at_g, shown_n, len(grid), m, weighted)
    return pd.DataFrame({"time": grid, "group": g, **vals, "n_at_risk": nr_out, "n_at_risk_text": txt})


def _rounded_arm(t, s, se, nr, grid, at_g, m, curves, z):
    """The OpenSAFELY reconstruction on the grid: (curve columns, rounded numbers at risk at each grid time)."""
    n = len(t)
    d = _effective(t, s, nr)
    cum = np.cumsum(d)
    i = np.searchsorted(t, grid, side="right") - 1
    E = np.where(i >= 0, cum[np.clip(i, 0, n - 1)], 0.0)  # events up to and including g
    Er = m * np.floor(E / m + 0.5)
    dr = np.maximum(np.diff(np.r_[0.0, Er]), 0.0)
    # at risk at the start of interval (g_k-1, g_k]: the first row after g_k-1 (everyone before the first row)
    prev = np.r_[-np.inf, grid[:-1]]
    j = np.searchsorted(t, prev, side="right")
    Y = np.where(j < n, nr[np.minimum(j, n - 1)], 0.0)
    Yr = m * np.floor(Y / m + 0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(Yr > 0, np.minimum(dr / Yr, 1.0), 0.0)
    surv = np.cumprod(1.0 - h)
    gw = np.cumsum(_greenwood_terms(dr, Yr))
    factor = _se_factor(t, s, se, nr, curves)
    se_pub = surv * np.sqrt(gw) * factor
    with np.errstate(divide="ignore", invalid="ignore"):
        if curves.method in _PLAIN_CI_METHODS:
            lo, hi = np.clip(surv - z * se_pub, 0, 1), np.clip(surv + z * se_pub, 0, 1)
        else:  # R's default (conf.type = "log")
            lo = np.where(surv > 0, np.exp(np.log(surv) - z * se_pub / surv), np.nan)
            hi = np.where(surv > 0, np.minimum(np.exp(np.log(surv) + z * se_pub / surv), 1.0), np.nan)
    if not np.isfinite(se).any():  # the curve had no SE (e.g. a g-formula point fit): none published
        se_pub = lo = hi = np.full(len(grid), np.nan)
    shown = m * np.floor(np.asarray(at_g, float) / m + 0.5)
    return {"surv": surv, "se": se_pub, "ci_lower": lo, "ci_upper": hi}, shown


def _se_factor(t, s, se, nr, curves) -> float:
    """1 for a Greenwood curve; else the median of own SE / Greenwood SE of the effective counts (2 digits)."""
    if getattr(curves, "variance_method", "greenwood") == "greenwood" and curves.method == "km":
        return 1.0
    d = _effective(t, s, nr)
    gw = np.sqrt(np.cumsum(_greenwood_terms(d, nr))) * s
    with np.errstate(divide="ignore", invalid="ignore"):
        r = se / gw
    r = r[np.isfinite(r) & (gw > 0) & (r > 0)]
    if not r.size:
        return 1.0
    return float(f"{float(np.median(r)):.2g}")


def small_windows(table: pd.DataFrame, times: Sequence[float], min_cell: int, kind: str = "survival") -> set[float]:
    """Requested times whose estimate must be withheld (rule 3).

    Going through ``times`` in order, a time is withheld when, since the
    previous time *shown* (0 at first), an arm of the curve ``table`` (full
    resolution) had 1 .. min_cell-1 (effective) events at fewer than
    min_cell distinct times: the difference of the two rows would reveal them.
    """
    if min_cell <= 1 or table is None or not len(times):
        return set()
    tt = pd.to_numeric(table["time"], errors="coerce").to_numpy(float)
    groups = table["group"].astype(str).to_numpy()
    arms = []
    if kind == "cumulative_incidence":  # each arm x cause: its Aalen-Johansen events
        for _, gs in _cif_arms(groups).items():
            T, _, _, d = _cif_arm_arrays(gs, table, tt, groups)
            for g in gs:
                arms.append((T, np.cumsum(d[g]), np.cumsum(d[g] > 1e-12)))
    for g in ([] if kind == "cumulative_incidence" else dict.fromkeys(groups)):
        msk = groups == g
        o = np.argsort(tt[msk], kind="stable")
        t = tt[msk][o]
        s = pd.to_numeric(table["surv"][msk], errors="coerce").to_numpy(float)[o]
        nr = pd.to_numeric(table["n_at_risk"][msk], errors="coerce").to_numpy(float)[o]
        d = _effective(t, s, nr)
        arms.append((t, np.cumsum(d), np.cumsum(d > 1e-12)))
    hidden: set[float] = set()
    last = 0.0
    for x in sorted(float(v) for v in times):
        small = False
        for t, cum_d, cum_k in arms:
            def at(c, v):
                k = np.searchsorted(t, v, side="right") - 1
                return float(c[k]) if k >= 0 else 0.0

            ev = at(cum_d, x) - at(cum_d, last)
            drops = at(cum_k, x) - at(cum_k, last)
            # (a Kaplan-Meier arm has drops <= events; a weighted arm with many small-weight events is not small)
            if 1e-9 < ev < min_cell - 1e-9 and drops < min_cell:
                small = True
        if small:
            hidden.add(x)
        else:
            last = x
    return hidden
