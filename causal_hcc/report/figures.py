"""Figures of the report, drawn from an AnalysisResult (aggregate numbers only).

Every public ``plot_*`` function takes an optional matplotlib ``ax`` and
returns the Axes it drew on. Without ``ax`` it makes a new figure with
``matplotlib.pyplot`` (so it shows in Jupyter); the report passes Axes of
``matplotlib.figure.Figure`` objects rendered with the Agg canvas, so no
global pyplot state is touched there.

References
----------
.. [1] Lewis S, Clarke M. Forest plots: trying to see the wood and the trees.
   *BMJ* 2001;322:1479-1480.
.. [2] Austin PC. Balance diagnostics for comparing the distribution of
   baseline covariates between treatment groups in propensity-score matched
   samples. *Stat Med* 2009;28:3083-3107 (love plot).
.. [3] Pocock SJ, Clayton TC, Altman DG. Survival plots of time-to-event
   outcomes in clinical trials: good practice and pitfalls. *Lancet*
   2002;359:1686-1689 (numbers at risk under the curves).
.. [4] Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics
   based on weighted residuals. *Biometrika* 1994;81:515-526 (scaled
   Schoenfeld residuals, ``plot.cox.zph``).
"""
from __future__ import annotations

import io
import math
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from causal_hcc.errors import SpecError

__all__ = ["plot_forest", "plot_curves", "plot_love", "plot_landmark_sweep", "plot_propensity",
           "plot_weights", "plot_dag", "plot_schoenfeld", "plot_flow", "plot_monte_carlo", "published_estimates",
           "truth_value", "primary_outcome", "landmark_of", "new_figure", "figure_png", "design_color",
           "DESIGN_COLORS"]

MEASURE_LABEL = {"hr": "Hazard ratio (log scale)", "survival_difference": "Survival difference (treated - untreated)",
                 "rmst_difference": "RMST difference (treated - untreated)",
                 "median_difference": "Median survival difference",
                 "risk_ratio": "Risk ratio (treated / untreated, log scale)"}
ARM_COLORS = {"untreated": "#1f77b4", "treated": "#d62728"}
#: one colour per design, the same in every figure (and in the report's tables)
DESIGN_COLORS = {"baseline": "#7f7f7f", "landmark": "#1f5fa8", "time_varying": "#2e8b57",
                 "sequential_trials": "#8e44ad", "clone_censor": "#d35400"}
_EXTRA_COLORS = ["#b9770e", "#117a65", "#a93226", "#5d6d7e", "#2471a3"]
TRUTH_COLOR = "#000000"


def design_color(design: str) -> str:
    """The design's colour (a registered plug-in design gets a stable colour from its name)."""
    if design in DESIGN_COLORS:
        return DESIGN_COLORS[design]
    return _EXTRA_COLORS[sum(map(ord, str(design))) % len(_EXTRA_COLORS)]


def _unit(result: Any) -> str:
    spec = result.spec if isinstance(getattr(result, "spec", None), dict) else {}
    return str(spec.get("time_unit") or (getattr(result, "cohort", None) or {}).get("time_unit") or "months")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def new_figure(width: float, height: float):
    """A Figure on the Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig, dpi: int = 192) -> bytes:
    """PNG bytes of a figure (one draw: margins are set by the caller, not by a tight bounding box)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def left_margin(fig, labels: Sequence[str], fontsize: float = 8.0, extra: float = 0.35) -> float:
    """Left margin (figure fraction) that fits the longest y tick label, estimated from its length.

    Used instead of ``bbox_inches="tight"``/``tight_layout``, which draw the
    figure an extra time (the report must render ~20 strategies in seconds).
    """
    n = max((len(str(x)) for x in labels), default=0)
    inches = n * 0.0085 * fontsize + extra
    return min(0.6, inches / fig.get_figwidth())


def _axes(ax, width: float = 7.0, height: float = 4.5):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(width, height))
    return ax


def primary_outcome(result: Any) -> str | None:
    """The primary outcome: the first record's outcome (pipeline order)."""
    for r in result.records:
        return r.outcome
    return None


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def truth_value(result: Any, measure: str, time: float | None = None, outcome: str | None = None) -> float | None:
    """The twin's true value of ``measure`` (at ``time``) or None.

    ``result.truth`` holds ``{"hr": x, "survival_difference": {"12": y}, ...}``,
    optionally nested per outcome (``{"os": {...}}``).
    """
    t = result.truth
    if not isinstance(t, dict):
        return None
    if outcome is not None and isinstance(t.get("outcome"), str) and t["outcome"] != outcome:
        return None  # the truth is about another outcome (the twin's is OS only)
    if outcome is not None and isinstance(t.get(outcome), dict) and measure not in t:
        t = t[outcome]
    v = t.get(measure)
    if isinstance(v, dict):
        if "estimate" in v and not isinstance(v["estimate"], dict):
            v = v["estimate"]
        elif time is None:
            if len(v) != 1:
                return None
            v = next(iter(v.values()))
        else:
            for k, val in v.items():
                if abs(_num(k) - float(time)) < 1e-9:
                    v = val
                    break
            else:
                return None
    f = _num(v)
    return f if math.isfinite(f) else None


def published_estimates(result: Any) -> list[dict[str, Any]]:
    """The paper's reported estimates, normalised to dicts with ``label, measure, estimate, ci_lower, ci_upper, time``.

    Read from ``result.extras["published"]`` (the audit's summary) or the
    spec's ``published_estimates``. Accepted shapes: a list of such dicts; or
    a mapping ``measure -> number | dict | list of dicts``.
    """
    src = result.extras.get("published") if isinstance(result.extras, dict) else None
    if not src and isinstance(result.spec, dict):
        src = result.spec.get("published_estimates")
    out: list[dict[str, Any]] = []

    def add(measure: str, item: Any, label: str) -> None:
        if isinstance(item, dict):
            ci = item.get("ci") or [item.get("ci_lower", item.get("lower")), item.get("ci_upper", item.get("upper"))]
            est = _num(item.get("estimate", item.get("value")))
            if math.isfinite(est):
                out.append({"label": str(item.get("label") or label), "measure": item.get("measure", measure),
                            "estimate": est, "ci_lower": _num(ci[0]) if ci else math.nan,
                            "ci_upper": _num(ci[1]) if ci else math.nan, "time": item.get("time"),
                            "outcome": item.get("outcome")})
        elif isinstance(item, (int, float)) and math.isfinite(float(item)):
            out.append({"label": label, "measure": measure, "estimate": float(item), "ci_lower": math.nan,
                        "ci_upper": math.nan, "time": None, "outcome": None})

    if isinstance(src, list):
        for i, item in enumerate(src):
            if isinstance(item, dict):
                add(str(item.get("measure", "hr")), item, f"published {i + 1}")
    elif isinstance(src, dict):
        for measure, item in src.items():
            items = item if isinstance(item, list) else [item]
            for i, it in enumerate(items):
                add(str(measure), it, "published" if len(items) == 1 else f"published {i + 1}")
    return [p for p in out if p["measure"] in MEASURE_LABEL]


def landmark_of(record: Any) -> float | None:
    """The landmark time of a landmark-design record (diagnostics, curve origin, or label ``landmark(L)``)."""
    d = record.diagnostics.get("design") if isinstance(record.diagnostics, dict) else None
    if isinstance(d, dict):
        v = _num(d.get("landmark"))
        if math.isfinite(v):
            return v
    m = re.search(r"landmark\(\s*([0-9.eE+-]+)", record.strategy)
    if m:
        v = _num(m.group(1))
        if math.isfinite(v):
            return v
    if record.curves is not None and record.curves.time_origin:
        return float(record.curves.time_origin)
    return None


def _records(result: Any, outcome: str | None) -> list[Any]:
    outcome = outcome or primary_outcome(result)
    return [r for r in result.records if r.outcome == outcome and not r.error]


def _find_record(result: Any, strategy: str | None, outcome: str | None, need: str) -> Any:
    recs = _records(result, outcome)
    if strategy is not None:
        for r in recs:
            if r.strategy == strategy:
                return r
        raise SpecError(f"no strategy '{strategy}' for outcome '{outcome or primary_outcome(result)}'; "
                        f"strategies: {', '.join(r.strategy for r in recs)}")
    for r in recs:
        if need == "curves" and r.curves is not None:
            return r
        if need != "curves" and isinstance(r.diagnostics.get(need), dict):
            return r
    raise SpecError(f"no strategy has {need} to plot")


# ---------------------------------------------------------------------------
# forest plot
# ---------------------------------------------------------------------------
def forest_rows(result: Any, measure: str, outcome: str | None = None,
                time: float | None = None) -> list[dict[str, Any]]:
    """Rows of the forest plot, grouped by design in order of first appearance.

    Each row carries the truth of its own estimand (``truth``, ``truth_kind``;
    see :func:`causal_hcc.report._truth.truth_of`).
    """
    from causal_hcc.report._truth import truth_of

    recs = _records(result, outcome)
    order: list[str] = []
    for r in recs:
        if r.design not in order:
            order.append(r.design)
    rows = []
    for d in order:
        for r in recs:
            if r.design != d:
                continue
            for e in r.estimates:
                if e.measure != measure:
                    continue
                if time is not None and (e.time is None or abs(float(e.time) - float(time)) > 1e-9):
                    continue
                if not math.isfinite(e.estimate) or (measure == "hr" and e.estimate <= 0):
                    continue
                tr = truth_of(result, e)
                rows.append({"label": e.strategy or r.strategy, "design": d, "estimate": e.estimate,
                             "ci_lower": e.ci_lower, "ci_upper": e.ci_upper, "time": e.time,
                             "estimand": getattr(e, "estimand", ""), "truth": tr["value"], "truth_kind": tr["kind"]})
    return rows


def measure_times(result: Any, measure: str, outcome: str | None = None) -> list[float]:
    """Sorted distinct ``time`` values of a measure's estimates."""
    ts = {float(e.time) for r in _records(result, outcome) for e in r.estimates
          if e.measure == measure and e.time is not None}
    return sorted(ts)


def _log_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def plot_forest(result: Any, measure: str = "hr", ax=None, *, outcome: str | None = None,
                time: float | None = None, show_published: bool = True, show_truth: bool = True):
    """Forest plot of every strategy's estimate with CI, grouped and coloured by design.

    Hazard ratios use a log axis and a reference line at 1; differences a
    line at 0. The paper's published estimate(s) are drawn as black diamonds
    at the top. On the twin each row's own truth (the truth of the row's
    estimand) is a black vertical tick on that row; a hollow tick marks the
    estimand the paper claimed, for rows whose contrast is not causal
    (ever vs never treated). For time-indexed measures ``time`` selects the
    time (default: the first one).
    """
    if measure not in MEASURE_LABEL:
        raise SpecError(f"plot_forest: unknown measure {measure!r}; expected one of {', '.join(MEASURE_LABEL)}")
    if time is None and measure in ("survival_difference", "rmst_difference"):
        ts = measure_times(result, measure, outcome)
        time = ts[0] if ts else None
    rows = forest_rows(result, measure, outcome, time)
    oc = outcome or primary_outcome(result)
    pubs = [p for p in published_estimates(result) if p["measure"] == measure
            and (p.get("outcome") in (None, oc))
            and (time is None or p.get("time") is None or abs(_num(p["time"]) - float(time)) < 1e-9)] \
        if show_published else []
    n = len(rows) + len(pubs)
    ax = _axes(ax, 7.5, max(2.0, 0.32 * n + 1.3))
    designs = list(dict.fromkeys(r["design"] for r in rows))
    y = 0
    labels, ys = [], []
    for p in pubs:
        lo, hi = p["ci_lower"], p["ci_upper"]
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [y, y], color="black", lw=1.4)
        ax.plot([p["estimate"]], [y], marker="D", color="black", ms=7, zorder=3)
        labels.append(f"{p['label']} (paper)")
        ys.append(y)
        y += 1
    prev = None
    kinds = set()
    for r in rows:
        if prev is not None and r["design"] != prev:
            ax.axhline(y - 0.5, color="#cccccc", lw=0.6)
        prev = r["design"]
        c = design_color(r["design"])
        lo, hi = r["ci_lower"], r["ci_upper"]
        if math.isfinite(lo) and math.isfinite(hi) and (measure != "hr" or lo > 0):
            ax.plot([lo, hi], [y, y], color=c, lw=1.8)
        ax.plot([r["estimate"]], [y], marker="s", color=c, ms=6, zorder=3)
        if show_truth and r["truth"] is not None and (measure != "hr" or r["truth"] > 0):
            kinds.add(r["truth_kind"])
            ax.plot([r["truth"]], [y], marker="|", ms=14, mew=2.2, zorder=4,
                    color=TRUTH_COLOR if r["truth_kind"] == "own" else "#9a9a9a")
        labels.append(r["label"])
        ys.append(y)
        y += 1
    null = 1.0 if measure == "hr" else 0.0
    ax.axvline(null, color="grey", lw=0.8)
    legacy = None
    if show_truth and not any(r["truth"] is not None for r in rows):
        legacy = truth_value(result, measure, time, outcome)  # an old results.json: one truth for all rows
        if legacy is not None:
            ax.axvline(legacy, color=TRUTH_COLOR, lw=1.3, ls="--", label=f"truth ({legacy:.3g})")
    if measure == "hr":
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_ylim(y - 0.5, -0.5)
    unit = _unit(result)
    xl = MEASURE_LABEL[measure]
    if measure == "survival_difference" and time is not None:
        xl += f" at {time:g} {unit}"
    elif measure in ("rmst_difference", "median_difference"):
        xl += f", {unit}" + (f" (tau = {time:g})" if time is not None and measure == "rmst_difference" else "")
    ax.set_xlabel(xl)
    handles = [ax.plot([], [], marker="s", ls="", color=design_color(d), label=d)[0] for d in designs]
    if "own" in kinds:
        handles.append(ax.plot([], [], marker="|", ms=12, mew=2.2, ls="", color=TRUTH_COLOR,
                               label="truth of the row's estimand")[0])
    if "claimed" in kinds:
        handles.append(ax.plot([], [], marker="|", ms=12, mew=2.2, ls="", color="#9a9a9a",
                               label="truth of the estimand the paper claimed")[0])
    if legacy is not None:
        handles.append(ax.plot([], [], color=TRUTH_COLOR, ls="--", label=f"truth ({legacy:.3g})")[0])
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="design")
    title = {"hr": "Hazard ratio by strategy", "survival_difference": "Survival difference by strategy",
             "rmst_difference": "RMST difference by strategy",
             "median_difference": "Median difference by strategy"}[measure]
    ax.set_title(f"{title} ({oc})" if oc else title)
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return ax


# ---------------------------------------------------------------------------
# survival curves
# ---------------------------------------------------------------------------
def _at_risk(tab: pd.DataFrame, group: str, ticks: Sequence[float]) -> list[float]:
    g = tab[tab["group"] == group].sort_values("time")
    t = g["time"].to_numpy(float)
    nr = g["n_at_risk"].to_numpy(float)
    out = []
    for tk in ticks:
        i = np.searchsorted(t, tk, side="left")
        out.append(float(nr[i]) if i < len(t) else 0.0)
    return out


def _risk_texts(tab: pd.DataFrame, group: str, ticks: Sequence[float], weighted: bool) -> list[str]:
    """Risk-table texts at ``ticks``: stored (disclosed) texts when the table has them, else formatted counts."""
    if "n_at_risk_text" in tab.columns:
        g = tab[tab["group"] == group]
        t = g["time"].to_numpy(float)
        txt = g["n_at_risk_text"].astype(object).to_numpy()
        out = []
        for tk in ticks:
            hit = np.flatnonzero(np.abs(t - tk) < 1e-9)
            out.append(str(txt[hit[0]]) if len(hit) and txt[hit[0]] is not None else "")
        return out
    return [f"{v:.0f}" if not weighted else f"{v:.1f}" for v in _at_risk(tab, group, ticks)]


def plot_curves(result: Any, strategy: str | None = None, outcome: str | None = None, ax=None, *,
                risk_table: bool = True, record: Any = None):
    """Survival curves by arm for one strategy, with CI bands and numbers at risk.

    Default strategy: the first with curves (the naive KM in pipeline order).
    Weighted curves show weighted numbers at risk (labelled so). Curves on
    the disclosure grid (as written and read back) show the risk table at
    their stored times: numbers rounded to the nearest ``min_cell`` (the
    curve itself is computed from counts rounded the same way), ``<min_cell``
    for fewer; the curve ends where fewer than ``min_cell`` remain at risk.
    """
    rec = record or _find_record(result, strategy, outcome, "curves")
    if rec.curves is None:
        raise SpecError(f"strategy '{rec.strategy}' has no survival curves")
    ax = _axes(ax, 7.0, 4.8)
    tab = rec.curves.table
    origin = float(rec.curves.time_origin or 0.0)
    groups = list(dict.fromkeys(tab["group"].astype(str)))
    tmax = float(tab["time"].max()) if len(tab) else 1.0
    for gname in groups:
        g = tab[tab["group"] == gname].sort_values("time")
        t = np.r_[0.0, g["time"].to_numpy(float)] + origin
        s = np.r_[1.0, g["surv"].to_numpy(float)]
        c = ARM_COLORS.get(gname)
        line = ax.step(t, s, where="post", color=c, lw=1.6, label=gname)[0]
        lo = np.r_[1.0, g["ci_lower"].to_numpy(float)]
        hi = np.r_[1.0, g["ci_upper"].to_numpy(float)]
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.sum() > 1:
            ax.fill_between(t[ok], lo[ok], hi[ok], step="post", color=line.get_color(), alpha=0.15, lw=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(origin, origin + tmax * 1.02)
    ax.set_ylabel("Survival probability")
    unit = _unit(result)
    ax.set_xlabel(f"Time since time zero ({unit})" + (f"; follow-up starts at the landmark, {origin:g} {unit}"
                                                         if origin else ""))
    weighted = rec.curves.method not in ("km",)
    ax.set_title(f"{rec.strategy} [{rec.outcome}]: {rec.curves.method}", color=design_color(rec.design))
    ax.legend(frameon=False, loc="upper right")
    ax.grid(color="#eeeeee", lw=0.6)
    if risk_table and "n_at_risk" in tab.columns:
        stored = [float(x) for x in getattr(rec.curves, "risk_times", ()) or ()]
        if stored:
            ax.set_xticks([x + origin for x in stored])
            ticks = [x + origin for x in stored]
        else:
            ticks = [tk for tk in ax.get_xticks() if origin <= tk <= origin + tmax * 1.02]
        trans = ax.get_xaxis_transform()
        head = "weighted number at risk" if weighted else "number at risk"
        texts = {gname: _risk_texts(tab, gname, [tk - origin for tk in ticks], weighted) for gname in groups}
        m = int(getattr(result, "min_cell", 0) or 0)
        if m > 1:  # disclosed: the numbers and the curve come from counts rounded to m (causal_hcc.disclosure)
            head += f" (rounded to the nearest {m}; <{m}: fewer than {m})"
        ax.text(0.0, -0.24, head, transform=ax.transAxes, style="italic", ha="left")
        for i, gname in enumerate(groups):
            yy = -0.32 - 0.08 * i
            ax.text(-0.03, yy, gname, transform=ax.transAxes, ha="right",
                    color=ARM_COLORS.get(gname, "black"))
            for tk, v in zip(ticks, texts[gname]):
                ax.text(tk, yy, v, transform=trans, ha="center", color=ARM_COLORS.get(gname, "black"))
    return ax


def plot_landmark_sweep(result: Any, measure: str = "hr", outcome: str | None = None, ax=None):
    """Estimate vs landmark time, one line per adjustment (records with design 'landmark')."""
    recs = [r for r in _records(result, outcome) if r.design == "landmark"]
    pts: dict[str, list[tuple[float, float, float, float]]] = {}
    truths: dict[str, list[tuple[float, float]]] = {}
    for r in recs:
        L = landmark_of(r)
        e = next((e for e in r.estimates if e.measure == measure), None)
        if L is None or e is None or not math.isfinite(e.estimate):
            continue
        pts.setdefault(r.adjustment, []).append((L, e.estimate, e.ci_lower, e.ci_upper))
        tv = result.truth_for(e)["value"] if hasattr(result, "truth_for") else None
        if tv is not None:
            truths.setdefault(r.adjustment, []).append((L, tv))
    if not pts:
        raise SpecError("no landmark strategies to plot")
    ax = _axes(ax, 6.5, 4.0)
    c = design_color("landmark")
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", "-")]
    for i, (adj, p) in enumerate(sorted(pts.items())):
        p.sort()
        L, est, lo, hi = (np.array(v, float) for v in zip(*p))
        mk, ls = styles[i % len(styles)]
        off = (i - (len(pts) - 1) / 2) * 0.04 * (L.max() - L.min() + 1)
        ax.errorbar(L + off, est, yerr=[est - lo, hi - est], fmt=mk, ls=ls, color=c, capsize=3, lw=1.2, ms=5,
                    label=adj)
    null = 1.0 if measure == "hr" else 0.0
    ax.axhline(null, color="grey", lw=0.8)
    for i, (adj, tp) in enumerate(sorted(truths.items())):
        tp.sort()
        ax.plot([t[0] for t in tp], [t[1] for t in tp], ls="--", marker="_", ms=12, color=TRUTH_COLOR, lw=1.0,
                label="truth of each landmark's estimand" if i == 0 else None)
    if measure == "hr":
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
    ax.set_xlabel(f"Landmark time ({_unit(result)} since time zero)")
    ax.set_ylabel(MEASURE_LABEL[measure])
    ax.set_title("Landmark sweep")
    ax.legend(frameon=False, title="adjustment")
    ax.grid(color="#eeeeee", lw=0.6)
    return ax


# ---------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------
def plot_love(result: Any, strategy: str | None = None, ax=None, *, record: Any = None, threshold: float = 0.1):
    """Love plot: |SMD| per variable before (open) and after (filled) adjustment."""
    rec = record or _find_record(result, strategy, None, "balance")
    b = rec.diagnostics.get("balance")
    if not isinstance(b, dict) or not b.get("variables"):
        raise SpecError(f"strategy '{rec.strategy}' has no balance diagnostics")
    var = [str(v) for v in b["variables"]]
    before = np.abs(np.array([_num(v) for v in b.get("smd_before", [math.nan] * len(var))], float))
    after = np.abs(np.array([_num(v) for v in b.get("smd_after", [math.nan] * len(var))], float))
    ax = _axes(ax, 5.5, max(2.0, 0.3 * len(var) + 1.2))
    y = np.arange(len(var))
    ax.scatter(before, y, facecolors="none", edgecolors="#b03a2e", label="before", zorder=3)
    ax.scatter(after, y, color="#1b4f72", label="after", zorder=3)
    for yi, b0, a0 in zip(y, before, after):
        if np.isfinite(b0) and np.isfinite(a0):
            ax.plot([b0, a0], [yi, yi], color="#bbbbbb", lw=0.8)
    ax.axvline(threshold, color="grey", ls="--", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(var)
    ax.invert_yaxis()
    ax.set_xlabel("|standardized mean difference|")
    ax.set_title(f"Balance: {rec.strategy}", color=design_color(rec.design))
    ax.legend(frameon=False, loc="lower right")
    ax.set_xlim(left=0)
    return ax


def _counts(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Histogram counts as floats (suppressed cells 0) and the upper bound of each suppressed cell (else NaN).

    A suppressed cell is the text ``"<m"`` (bound m - 1) or ``"suppressed"``
    (hidden only so that another cannot be recovered; no bound is drawn).
    """
    vals, cap = [], []
    for v in values:
        if isinstance(v, str):
            m = re.match(r"<\s*(\d+)", v)
            vals.append(0.0)
            cap.append(float(m.group(1)) - 1 if m else math.nan)
        else:
            vals.append(_num(v))
            cap.append(math.nan)
    return np.array(vals, float), np.array(cap, float)


def _suppressed_bars(ax, edges: np.ndarray, cap: np.ndarray, sign: float) -> None:
    """Hatched outline bars up to the bound of suppressed cells, labelled once."""
    k = np.isfinite(cap)
    if not k.any():
        return
    ax.bar(edges[:-1][k], sign * cap[k], width=np.diff(edges)[k], align="edge", fill=False, hatch="///",
           edgecolor="grey", lw=0.5, label=f"suppressed (<{int(np.nanmax(cap)) + 1})" if sign > 0 else None)


def plot_schoenfeld(source: Any, term: str = "treatment", ax=None, *, strategy: str | None = None,
                    outcome: str | None = None):
    """Beta(t) for one term: smoothed scaled Schoenfeld residuals with a +-2 SE band (R ``plot.cox.zph``).

    ``source`` is an :class:`~causal_hcc.core.zph.ZphResult` (the residuals
    are drawn as points too), a strategy record, or an AnalysisResult with
    ``strategy``/``outcome`` (only the aggregate smooth stored in
    ``diagnostics["ph_test"]["treatment_smooth"]`` is drawn: results hold
    no patient rows). The x axis is the transformed time of the test (km:
    1 - KM) labelled in time units; the dotted line is the Cox coefficient
    (a flat smooth around it is what proportional hazards look like).
    """
    from causal_hcc.core.zph import ZphResult

    points = None
    if isinstance(source, ZphResult):
        sm = {"coef": float(source.term_coef[source.terms.index(term)]) if term in source.terms else math.nan,
              **source.smooth(term)}
        i = source.terms.index(term)
        keep = ~np.isnan(source.y[:, i])
        points = (source.x[keep], source.y[keep, i])
        title, transform = f"Schoenfeld residuals: {term}", source.transform
        pval = source.term(term)["p"]
    else:
        rec = source if hasattr(source, "diagnostics") else _find_record(source, strategy, outcome, "ph_test")
        ph = rec.diagnostics.get("ph_test")
        if term != "treatment":
            raise SpecError(f"plot_schoenfeld: results store the smooth of the treatment term only, got {term!r}")
        if not isinstance(ph, dict) or not ph.get("treatment_smooth"):
            raise SpecError(f"strategy '{rec.strategy}' has no proportional-hazards smooth for the treatment term")
        sm = ph["treatment_smooth"]
        transform = ph.get("transform", "km")
        tr = next((t for t in ph.get("terms", []) if t.get("term") == "treatment"), {})
        pval = _num(tr.get("p"))
        title = f"Schoenfeld residuals: {rec.strategy} [{rec.outcome}]"
    x = np.array([_num(v) for v in sm["x"]], float)
    ax = _axes(ax, 5.5, 3.5)
    if points is not None:
        ax.scatter(points[0], points[1], s=8, color="#888888", alpha=0.6, label="scaled residuals")
    ax.plot(x, [_num(v) for v in sm["beta"]], color="#1b4f72", lw=1.5, label="beta(t), spline df 4")
    ax.plot(x, [_num(v) for v in sm["lower"]], color="#1b4f72", lw=0.8, ls="--", label="+-2 SE")
    ax.plot(x, [_num(v) for v in sm["upper"]], color="#1b4f72", lw=0.8, ls="--")
    coef = _num(sm.get("coef"))
    if math.isfinite(coef):
        ax.axhline(coef, color="#b03a2e", lw=0.8, ls=":", label=f"Cox coefficient {coef:.2f}")
    ax.axhline(0, color="grey", lw=0.5)
    if transform != "identity":
        times = np.array([_num(v) for v in sm["time"]], float)
        idx = np.unique(np.linspace(0, x.size - 1, 5).round().astype(int))
        ax.set_xticks(x[idx])
        ax.set_xticklabels([f"{t:.2g}" for t in times[idx]])
        ax.set_xlabel(f"time ({transform} scale)")
    else:
        ax.set_xlabel("time")
    ax.set_ylabel(f"beta(t) for {term}")
    ax.set_title(title + (f", p = {pval:.3g}" if math.isfinite(pval) else ""), fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return ax


def plot_propensity(rec: Any, ax=None):
    """Mirrored histograms of the propensity score by arm (from diagnostics['propensity'])."""
    p = rec.diagnostics.get("propensity")
    if not isinstance(p, dict) or not p.get("bins"):
        raise SpecError(f"strategy '{rec.strategy}' has no propensity diagnostics")
    edges = np.array([_num(v) for v in p["bins"]], float)
    t, t_cap = _counts(p.get("treated", []))
    u, u_cap = _counts(p.get("untreated", []))
    ax = _axes(ax, 5.0, 3.2)
    w = np.diff(edges)
    ax.bar(edges[:-1], t, width=w, align="edge", color=ARM_COLORS["treated"], alpha=0.7, label="treated")
    ax.bar(edges[:-1], -u, width=w, align="edge", color=ARM_COLORS["untreated"], alpha=0.7, label="untreated")
    _suppressed_bars(ax, edges, t_cap, 1.0)
    _suppressed_bars(ax, edges, u_cap, -1.0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("propensity score")
    ax.set_ylabel("count (untreated below)")
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    extra = f", {p.get('n_near_0_or_1')} near 0/1" if p.get("n_near_0_or_1") else ""
    ax.set_title(f"Overlap{extra}")
    ax.legend(frameon=False)
    return ax


def plot_weights(rec: Any, ax=None):
    """Histogram of the weights with ESS per arm (from diagnostics['weights'])."""
    wd = rec.diagnostics.get("weights")
    if not isinstance(wd, dict) or not wd.get("bins"):
        raise SpecError(f"strategy '{rec.strategy}' has no weight diagnostics")
    edges = np.array([_num(v) for v in wd["bins"]], float)
    counts, cap = _counts(wd.get("counts", []))
    ax = _axes(ax, 5.0, 3.2)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#7d3c98", alpha=0.8)
    _suppressed_bars(ax, edges, cap, 1.0)
    ess = [f"ESS {k.split('_', 1)[1]} {_num(wd[k]):.1f}" for k in ("ess_treated", "ess_untreated")
           if k in wd and math.isfinite(_num(wd[k]))]
    ax.set_title(f"Weights ({wd.get('estimand', '')})")
    if ess:
        ax.text(0.97, 0.95, "\n".join(ess), transform=ax.transAxes, ha="right", va="top")
    ax.set_xlabel("weight")
    ax.set_ylabel("count")
    return ax


def plot_dag(dag_info: dict[str, Any], ax=None):
    """Draw the causal graph; the minimal back-door set is highlighted."""
    import networkx as nx

    G = nx.DiGraph()
    G.add_nodes_from(dag_info.get("nodes", []))
    G.add_edges_from([tuple(e) for e in dag_info.get("edges", [])])
    ax = _axes(ax, 7.0, 4.2)
    trt, out = dag_info.get("treatment"), dag_info.get("outcome")
    # Layered layout (a force layout piles confounders with identical edges on one spot):
    # treatment left, outcome right, common causes of both along the top, other nodes below.
    top = [n for n in G.nodes if n not in (trt, out) and G.has_edge(n, trt) and G.has_edge(n, out)]
    rest = [n for n in G.nodes if n not in (trt, out) and n not in top]
    pos = {trt: (0.0, 0.0), out: (1.0, 0.0)}
    for i, n in enumerate(top):
        pos[n] = ((i + 0.5) / len(top), 1.0 + 0.25 * (i % 2))
    for i, n in enumerate(rest):
        pos[n] = ((i + 0.5) / len(rest), -0.8 - 0.25 * (i % 2))
    minimal = set(dag_info.get("minimal", []))
    col = ["#f5b041" if n == trt else "#85c1e9" if n == out else "#82e0aa" if n in minimal else "#e5e7e9"
           for n in G.nodes]
    nx.draw_networkx(G, pos=pos, ax=ax, node_color=col, node_size=700, font_size=6.5, arrows=True,
                     arrowsize=10, edge_color="#999999", width=0.8)
    ax.margins(x=0.12, y=0.15)
    ax.set_axis_off()
    ax.set_title("Causal graph (orange: treatment, blue: outcome, green: minimal back-door set)", fontsize=8)
    return ax


# ---------------------------------------------------------------------------
# flow diagram (CONSORT-style)
# ---------------------------------------------------------------------------
def flow_layout(flow: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Arrange a design's ``flow`` (``[[step, n], ...]``) into the rows of a CONSORT-style diagram.

    Returns rows ``{"boxes": [{"text", "n", "notes": [...]}, ...], "excluded": [(text, n), ...]}``:
    ``excluded: ...`` steps become a side box on the arrow into the next row;
    ``of whom ...`` steps are notes in the box above; two consecutive steps
    whose counts add up to the box above are drawn side by side (the arms);
    ``prefix: ...`` steps sharing a prefix (the clones of one strategy) are
    grouped into one box per prefix.
    """
    steps = [(str(s), int(round(_num(n))) if math.isfinite(_num(n)) else None) for s, n in flow]
    prefixes = [s.split(":", 1)[0] for s, _ in steps if ":" in s and not s.startswith("excluded:")]
    grouped = {p for p in prefixes if prefixes.count(p) >= 2}
    rows: list[dict[str, Any]] = []
    pending: list[tuple[str, Any]] = []
    i = 0
    while i < len(steps):
        s, n = steps[i]
        if s.startswith("excluded:"):
            pending.append((s.split(":", 1)[1].strip(), n))
            i += 1
            continue
        if s.startswith("of whom") and rows:
            rows[-1]["boxes"][-1]["notes"].append(f"{s}: {n}")
            i += 1
            continue
        if ":" in s and s.split(":", 1)[0] in grouped:
            boxes: dict[str, dict[str, Any]] = {}
            while i < len(steps) and ":" in steps[i][0] and steps[i][0].split(":", 1)[0] in grouped:
                p, rest = steps[i][0].split(":", 1)
                boxes.setdefault(p, {"text": p, "n": None, "notes": []})["notes"].append(f"{rest.strip()}: {steps[i][1]}")
                i += 1
            rows.append({"boxes": list(boxes.values()), "excluded": pending})
            pending = []
            continue
        # arms: the next two main steps add up to this row's count above
        above = rows[-1]["boxes"][0]["n"] if rows and len(rows[-1]["boxes"]) == 1 else None
        nxt = [j for j in range(i + 1, len(steps)) if not steps[j][0].startswith(("of whom", "excluded:"))][:1]
        if above is not None and nxt and n is not None and steps[nxt[0]][1] is not None \
                and n + steps[nxt[0]][1] == above and not pending:
            j = nxt[0]
            left = {"text": s, "n": n, "notes": [f"{t}: {m}" for t, m in steps[i + 1:j] if t.startswith("of whom")]}
            k = j + 1
            right = {"text": steps[j][0], "n": steps[j][1], "notes": []}
            while k < len(steps) and steps[k][0].startswith("of whom"):
                right["notes"].append(f"{steps[k][0]}: {steps[k][1]}")
                k += 1
            rows.append({"boxes": [left, right], "excluded": []})
            i = k
            continue
        rows.append({"boxes": [{"text": s, "n": n, "notes": []}], "excluded": pending})
        pending = []
        i += 1
    if pending:
        rows.append({"boxes": [], "excluded": pending})
    return rows


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def flow_height(flow: Sequence[Sequence[Any]]) -> float:
    """Figure height (inches) that fits :func:`plot_flow`'s boxes."""
    rows = flow_layout(flow)
    lines = 0.0
    for r in rows:
        box_lines = max([1 + len(b["notes"]) * 1.6 for b in r["boxes"]] + [1.0])
        ex = sum(1 + len(t) // 34 for t, _ in r["excluded"])
        lines += max(box_lines + 1.6, ex + 0.6)
    return max(1.6, 0.2 * lines + 0.5)


def plot_flow(flow: Sequence[Sequence[Any]], ax=None, *, design: str = "", title: str = ""):
    """CONSORT-style flow diagram of one design's eligibility and attrition.

    Main steps are boxes joined by arrows, exclusions side boxes on the
    arrows, the two arms side by side where their counts add up.
    """
    rows = flow_layout(flow)
    if not rows:
        raise SpecError("no flow to draw")
    ax = _axes(ax, 6.5, flow_height(flow))
    ax.set_axis_off()
    color = design_color(design) if design else "#333333"
    ax.set_xlim(0, 1)
    heights = []
    for r in rows:
        box_lines = max([1 + len(b["notes"]) * 1.6 for b in r["boxes"]] + [1.0])
        ex = sum(1 + len(t) // 34 for t, _ in r["excluded"])
        heights.append(max(box_lines + 1.6, ex + 0.6))
    total = sum(heights)
    ax.set_ylim(total, 0)
    y = 0.0
    prev_x: list[float] = []
    prev_bottom = None
    for r, h in zip(rows, heights):
        centre = y + 1.0 + (h - 1.6) / 2 if r["boxes"] else y + h / 2
        xs = [0.32] if len(r["boxes"]) == 1 else [0.18 + 0.3 * k for k in range(len(r["boxes"]))]
        if len(r["boxes"]) > 2:
            xs = [0.12 + 0.52 * k / (len(r["boxes"]) - 1) for k in range(len(r["boxes"]))]
        width = 40 if len(r["boxes"]) == 1 else 26
        if r["excluded"]:
            text = "Excluded:\n" + "\n".join(_wrap(f"{t}: {n}", 34) for t, n in r["excluded"])
            ax.text(0.72, y + h / 2 - 0.3, text, ha="left", va="center", fontsize=8.5,
                    bbox={"boxstyle": "square,pad=0.4", "fc": "#f7f7f7", "ec": "#999999"})
            if prev_bottom is not None:
                ax.annotate("", xy=(0.71, y + h / 2 - 0.3), xytext=(prev_x[0] if prev_x else 0.32, y + h / 2 - 0.3),
                            arrowprops={"arrowstyle": "-|>", "color": "#999999", "lw": 0.8})
        for x, b in zip(xs, r["boxes"]):
            head = _wrap(b["text"], width) + ("" if b["n"] is None else f"\nn = {b['n']:,}")
            notes = "\n".join(_wrap(t, width + 6) for t in b["notes"])
            ax.text(x, centre, head + ("\n" + notes if notes else ""), ha="center", va="center", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.45", "fc": "white", "ec": color, "lw": 1.4})
            if prev_bottom is not None:
                src = prev_x[0] if len(prev_x) == 1 else x
                ax.annotate("", xy=(x, centre - 0.5 - 0.8 * len(b["notes"]) - 0.4), xytext=(src, prev_bottom),
                            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.1})
        if r["boxes"]:
            nmax = max(len(b["notes"]) for b in r["boxes"])
            prev_bottom = centre + 0.5 + 0.8 * nmax + 0.4
            prev_x = xs
        y += h
    if title:
        ax.set_title(title, color=color, loc="left")
    return ax


# ---------------------------------------------------------------------------
# Monte Carlo panel
# ---------------------------------------------------------------------------
def plot_monte_carlo(mc: dict[str, Any], ax=None, *, measure: str = "hr", unit: str = "months"):
    """Estimates over twin replicates per strategy (dots, box) against the truth of each one's estimand (bar).

    ``mc`` is ``result.extras["monte_carlo"]``: ``replicates`` (rows with
    ``strategy, design, measure, time, estimate``) and ``table`` (the
    ``simulation.csv`` rows, with ``truth``, ``bias`` and ``coverage``).
    Hazard ratios on a log axis. Coverage is written at the right.
    """
    outcome = mc.get("outcome")
    table = [r for r in mc.get("table", []) if r.get("measure") == measure
             and (outcome is None or r.get("outcome") == outcome)]
    reps = [r for r in mc.get("replicates", []) if r.get("measure") == measure]
    if measure != "hr":
        ts = sorted({r.get("time") for r in table if r.get("time") is not None})
        t0 = ts[0] if ts else None
        table = [r for r in table if r.get("time") == t0]
        reps = [r for r in reps if r.get("time") == t0]
    if not table:
        raise SpecError(f"no Monte Carlo rows for {measure}")
    ax = _axes(ax, 8.0, 0.34 * len(table) + 1.4)
    rng = np.random.default_rng(0)
    labels = []
    for y, row in enumerate(table):
        s = row["strategy"]
        c = design_color(str(row.get("design", "")))
        v = np.array([_num(r["estimate"]) for r in reps if r["strategy"] == s], float)
        v = v[np.isfinite(v) & ((v > 0) if measure == "hr" else True)]
        if v.size:
            ax.scatter(v, y + rng.uniform(-0.22, 0.22, v.size), s=5, color=c, alpha=0.35, lw=0, zorder=2)
            q = np.quantile(v, [0.25, 0.5, 0.75])
            ax.plot([q[0], q[2]], [y, y], color=c, lw=5, alpha=0.8, solid_capstyle="butt", zorder=3)
            ax.plot([q[1]], [y], marker="|", color="white", ms=9, mew=2, zorder=4)
        tv = _num(row.get("truth"))
        if math.isfinite(tv) and (measure != "hr" or tv > 0):
            ax.plot([tv], [y], marker="|", color=TRUTH_COLOR, ms=16, mew=2.4, zorder=5)
        cov = _num(row.get("coverage"))
        ax.text(1.01, y, "–" if not math.isfinite(cov) else f"{100 * cov:.0f}%", transform=ax.get_yaxis_transform(),
                va="center", ha="left")
        labels.append(s)
    ax.text(1.01, -0.9, "coverage", transform=ax.get_yaxis_transform(), va="center", ha="left", style="italic")
    ax.set_yticks(range(len(table)))
    ax.set_yticklabels(labels)
    ax.set_ylim(len(table) - 0.5, -1.2)
    null = 1.0 if measure == "hr" else 0.0
    ax.axvline(null, color="grey", lw=0.8)
    if measure == "hr":
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    xl = MEASURE_LABEL.get(measure, measure)
    if measure == "survival_difference" and table and table[0].get("time") is not None:
        xl += f" at {float(table[0]['time']):g} {unit}"
    ax.set_xlabel(xl)
    n = mc.get("replicates_n") or mc.get("n_replicates") or ""
    ax.set_title(f"{n} simulated cohorts: each strategy's estimates (dots; bar = IQR, white tick = median) "
                 "vs the truth of its estimand (black tick)", loc="left", fontsize="medium")
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return ax
