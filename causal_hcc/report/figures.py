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


def arm_color(group: str) -> str | None:
    """The colour of an arm: treated red, untreated blue, whatever the design calls them ('treat within 6',
    'never treat', 'treated time')."""
    g = str(group)
    if g in ARM_COLORS:
        return ARM_COLORS[g]
    if g.startswith(("treat within", "treated")):
        return ARM_COLORS["treated"]
    if g.startswith(("never treat", "untreated")):
        return ARM_COLORS["untreated"]
    return None


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


_HR_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def hr_ticks(lo: float, hi: float) -> list[float]:
    """Round ticks for a hazard-ratio (log) axis spanning ``lo .. hi``: 1 and at least one on each side."""
    lo, hi = max(min(lo, 1.0), 1e-3), max(hi, 1.0)
    cand = [t for t in _HR_TICKS if lo * 0.999 <= t <= hi * 1.001]
    if len(cand) < 3:  # a narrow range: the nearest round values outside it
        below = [t for t in _HR_TICKS if t < lo] or [lo]
        above = [t for t in _HR_TICKS if t > hi] or [hi]
        cand = sorted({below[-1], *cand, above[0]})
    for drop in (0.02, 50.0, 0.05, 20.0):  # thin out crowded ticks, keeping 1
        if len(cand) > 7 and drop in cand:
            cand.remove(drop)
    return cand


def _log_axis(axis, lo: float | None = None, hi: float | None = None) -> None:
    """A log axis with plain-number ticks (0.5, 1, 2), never 10^k; round ticks when the range is given."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    if lo is not None and hi is not None and lo > 0 and math.isfinite(lo) and math.isfinite(hi):
        axis.set_major_locator(FixedLocator(hr_ticks(lo, hi)))
        axis.set_minor_locator(NullLocator())
    else:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _est_text(measure: str, est: float, lo: float, hi: float) -> str:
    """'0.69 (0.40 to 1.20)' for the forest plot's text column (two decimals for HRs)."""
    if measure == "hr":
        f = (lambda v: f"{v:.2f}")
    elif measure == "survival_difference":
        f = (lambda v: f"{v:.3f}".replace("-", "−"))
    else:
        f = (lambda v: f"{v:.1f}".replace("-", "−"))
    if not math.isfinite(est):
        return ""
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{f(est)} ({f(lo)} to {f(hi)})"
    return f(est)


#: the text column's heading per measure
TEXT_HEAD = {"hr": "HR (95% CI)", "survival_difference": "Difference (95% CI)",
             "rmst_difference": "Difference (95% CI)", "median_difference": "Difference (95% CI)"}
DESIGN_WORDS = {"baseline": "From time zero (immortal time not removed)", "landmark": "Landmark",
                "time_varying": "Time-varying exposure", "sequential_trials": "Sequential trials",
                "clone_censor": "Clone–censor–weight"}


def forest_layout(result: Any, measure: str = "hr", outcome: str | None = None, time: float | None = None,
                  names: str = "readable", show_published: bool = True,
                  include: Sequence[str] | None = None) -> dict[str, Any]:
    """The rows of :func:`plot_forest` (published, design headings, strategies) and the inches they need.

    ``include``: only these strategy labels (default: every strategy)."""
    from causal_hcc.report._labels import Names

    if time is None and measure in ("survival_difference", "rmst_difference"):
        ts = measure_times(result, measure, outcome)
        time = ts[0] if ts else None
    rows = forest_rows(result, measure, outcome, time)
    if include is not None:
        keep = set(include)
        rows = [r for r in rows if r["label"] in keep]
    oc = outcome or primary_outcome(result)
    pubs = [p for p in published_estimates(result) if p["measure"] == measure
            and (p.get("outcome") in (None, oc))
            and (time is None or p.get("time") is None or abs(_num(p["time"]) - float(time)) < 1e-9)] \
        if show_published else []
    nm = Names(result)
    words = nm.strategies([r for r in result.records if r.outcome == oc]) if names == "readable" else {}
    lines: list[dict[str, Any]] = []
    for p in pubs:
        lines.append({"kind": "published", "label": f"Published: {p['label']}", "p": p})
    prev = None
    for r in rows:
        if r["design"] != prev:
            lines.append({"kind": "head", "label": DESIGN_WORDS.get(r["design"], str(r["design"])),
                          "design": r["design"]})
            prev = r["design"]
        label = (words.get(r["label"]) or nm.strategy(r["label"], r["design"])) if names == "readable" else r["label"]
        if names == "readable" and r["design"] == "baseline":
            for cut in ("From time zero, ", ", from time zero", " (from time zero)"):
                label = label.replace(cut, "")
            label = label[:1].upper() + label[1:]
        elif names == "readable":
            # the heading names the design: the row keeps what differs ("at 3 months, overlap weights")
            head = DESIGN_WORDS.get(r["design"], "")
            if head and label.startswith(head):
                label = label[len(head):].lstrip(", ") or label
        lines.append({"kind": "row", "label": label, "r": r})
    texts = [_est_text(measure, r["estimate"], r["ci_lower"], r["ci_upper"]) for r in rows] + \
        [_est_text(measure, p["estimate"], p["ci_lower"], p["ci_upper"]) for p in pubs]
    return {"lines": lines, "time": time, "outcome": oc, "names": nm,
            "label_chars": max((len(x["label"]) + (2 if x["kind"] == "row" else 0) for x in lines), default=10),
            "text_chars": max([len(TEXT_HEAD.get(measure, ""))] + [len(t) for t in texts]),
            "height": 0.24 * len(lines) + 1.45}


def forest_margins(layout: dict[str, Any], width: float, fontsize: float | None = None) -> dict[str, float]:
    """``subplots_adjust`` fractions that fit the label column (left) and the text column (right)."""
    if fontsize is None:
        fontsize = _font_size("ytick.labelsize")
    left = (layout["label_chars"] * 0.55 * fontsize + 16) / 72.0
    right = (layout["text_chars"] * 0.56 * fontsize + 18) / 72.0
    h = layout["height"]
    return {"left": min(0.55, left / width), "right": 1 - min(0.4, right / width), "top": 1 - 0.42 / h,
            "bottom": 0.98 / h}


def plot_forest(result: Any, measure: str = "hr", ax=None, *, outcome: str | None = None,
                time: float | None = None, show_published: bool = True, show_truth: bool = True,
                names: str = "readable", title: str | None = None, include: Sequence[str] | None = None):
    """Forest plot of every strategy's estimate with its CI, grouped under a heading per design.

    Rows carry the strategy's words (``names="readable"``: "Landmark at 3
    months, overlap weights"; ``names="label"``: the ``estimates.csv``
    label). A text column at the right gives each estimate with its CI ("HR
    (95% CI)"); below the axis, arrows say which side favours which arm, in
    the study's words (the spec's ``labels``: "favours surgery", "favours no
    surgery"). Hazard ratios use a log axis with round ticks (0.25, 0.5, 1,
    2, 4) and a line at 1; differences a line at 0. The paper's published
    estimates are black diamonds at the top. On the twin each row's own truth
    (the truth of the row's estimand) is a black tick on that row; a grey tick
    marks the estimand the paper claimed, for rows that are not a causal
    contrast. For time-indexed measures ``time`` selects the time (default:
    the first one). Colour: design, the same in every figure.

    Raises
    ------
    SpecError
        An unknown measure, or no estimate of the measure to draw (e.g. a
        survival-difference forest plot on a run without ``survival_at``).
    """
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    if measure not in MEASURE_LABEL:
        raise SpecError(f"plot_forest: unknown measure {measure!r}; expected one of {', '.join(MEASURE_LABEL)}")
    if names not in ("readable", "label"):
        raise SpecError(f"plot_forest: names must be 'readable' or 'label', got {names!r}")
    lay = forest_layout(result, measure, outcome, time, names, show_published, include)
    time, oc, nm = lay["time"], lay["outcome"], lay["names"]
    lines = lay["lines"]
    if not any(x["kind"] in ("row", "published") for x in lines):
        hint = {"survival_difference": " (set estimands.survival_at in the spec)",
                "rmst_difference": " (set estimands.rmst_tau in the spec)"}.get(measure, "")
        raise SpecError(f"plot_forest: no {MEASURE_LABEL[measure].split(' (')[0].lower()} estimates for outcome "
                        f"'{oc}'" + (f" at {time:g}" if time is not None else "") + hint)
    if ax is None:
        import matplotlib.pyplot as plt

        width = 10.0
        fig, ax = plt.subplots(figsize=(width, lay["height"]))
        fig.subplots_adjust(**forest_margins(lay, width))
    fig = ax.figure
    kinds = set()
    xs: list[float] = []
    labels, ys, heads = [], [], []
    for y, line in enumerate(lines):
        if line["kind"] == "head":
            heads.append((y, line))
            continue
        if line["kind"] == "published":
            p = line["p"]
            lo, hi = p["ci_lower"], p["ci_upper"]
            if math.isfinite(lo) and math.isfinite(hi):
                ax.plot([lo, hi], [y, y], color="black", lw=1.4)
                xs += [lo, hi]
            ax.plot([p["estimate"]], [y], marker="D", color="black", ms=7, zorder=3)
            xs.append(p["estimate"])
            text = _est_text(measure, p["estimate"], lo, hi)
        else:
            r = line["r"]
            c = design_color(r["design"])
            lo, hi = r["ci_lower"], r["ci_upper"]
            if math.isfinite(lo) and math.isfinite(hi) and (measure != "hr" or lo > 0):
                ax.plot([lo, hi], [y, y], color=c, lw=1.8)
                xs += [lo, hi]
            ax.plot([r["estimate"]], [y], marker="s", color=c, ms=6, zorder=3)
            xs.append(r["estimate"])
            if show_truth and r["truth"] is not None and (measure != "hr" or r["truth"] > 0):
                kinds.add(r["truth_kind"])
                ax.plot([r["truth"]], [y], marker="|", ms=14, mew=2.2, zorder=4,
                        color=TRUTH_COLOR if r["truth_kind"] == "own" else "#9a9a9a")
            text = _est_text(measure, r["estimate"], lo, hi)
        labels.append(("   " if line["kind"] == "row" and heads else "") + line["label"])
        ys.append(y)
        row_tf = blended_transform_factory(ax.transAxes, ax.transData) + \
            ScaledTranslation(8 / 72.0, 0, fig.dpi_scale_trans)
        ax.text(1.0, y, text, transform=row_tf, ha="left", va="center", gid=f"forest-text-{y}", clip_on=False)
    null = 1.0 if measure == "hr" else 0.0
    ax.axvline(null, color="grey", lw=0.8)
    legacy = None
    if show_truth and not kinds:
        legacy = truth_value(result, measure, time, outcome)  # an old results.json: one truth for all rows
        if legacy is not None:
            ax.axvline(legacy, color=TRUTH_COLOR, lw=1.3, ls="--", label=f"truth ({legacy:.3g})")
    fin = [v for v in xs if math.isfinite(v) and (measure != "hr" or v > 0)]
    if measure == "hr":
        ax.set_xscale("log")
        lo_x, hi_x = (min(fin), max(fin)) if fin else (0.5, 2.0)
        lo_x, hi_x = min(lo_x, 1.0), max(hi_x, 1.0)
        ax.set_xlim(lo_x / 1.15, hi_x * 1.15)
        _log_axis(ax.xaxis, lo_x, hi_x)
    # the label column: left-aligned, design headings in bold, their strategies indented under them
    fs = _font_size("ytick.labelsize")
    col_pt = lay["label_chars"] * 0.55 * fs + 10
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.tick_params(axis="y", length=0, pad=col_pt)
    for t in ax.get_yticklabels():
        t.set_horizontalalignment("left")
    for y, line in heads:
        ax.text(0.0, y, line["label"], transform=blended_transform_factory(ax.transAxes, ax.transData)
                + ScaledTranslation(-col_pt / 72.0, 0, fig.dpi_scale_trans), ha="left", va="center",
                fontweight="bold", color=design_color(line["design"]), clip_on=False, gid=f"forest-head-{y}")
        if y > 0:
            ax.axhline(y - 0.5, color="#dddddd", lw=0.6)
    ax.set_ylim(len(lines) - 0.5, -0.5)
    head_tf = blended_transform_factory(ax.transAxes, ax.transAxes) + \
        ScaledTranslation(8 / 72.0, 4 / 72.0, fig.dpi_scale_trans)
    ax.text(1.0, 1.0, TEXT_HEAD[measure], transform=head_tf, ha="left", va="bottom", fontweight="bold",
            clip_on=False)
    unit = _unit(result)
    xl = MEASURE_LABEL[measure]
    if measure == "survival_difference" and time is not None:
        xl += f" at {time:g} {unit}"
    elif measure in ("rmst_difference", "median_difference"):
        xl += f", {unit}" + (f" (tau = {time:g})" if time is not None and measure == "rmst_difference" else "")
    ax.set_xlabel(xl, labelpad=16)
    # which side favours which arm: below the tick labels, pointing away from the null line
    good, bad = nm.favours
    low_side, high_side = (good, bad) if measure == "hr" else (bad, good)  # differences: treated - untreated
    ax.annotate(f"← {low_side}", xy=(null, 0), xycoords=("data", "axes fraction"), xytext=(-6, -17),
                textcoords="offset points", ha="right", va="top", fontsize="small", color="#444444",
                gid="favours-low", annotation_clip=False)
    ax.annotate(f"{high_side} →", xy=(null, 0), xycoords=("data", "axes fraction"), xytext=(6, -17),
                textcoords="offset points", ha="left", va="top", fontsize="small", color="#444444",
                gid="favours-high", annotation_clip=False)
    handles = []
    if "own" in kinds:
        handles.append(ax.plot([], [], marker="|", ms=10, mew=2.0, ls="", color=TRUTH_COLOR,
                               label="truth of the row's estimand")[0])
    if "claimed" in kinds:
        handles.append(ax.plot([], [], marker="|", ms=10, mew=2.0, ls="", color="#9a9a9a",
                               label="truth of the estimand the paper claimed")[0])
    if legacy is not None:
        handles.append(ax.plot([], [], color=TRUTH_COLOR, ls="--", label=f"truth ({legacy:.3g})")[0])
    if handles:  # one row under the axis, not a column beside it
        ax.legend(handles=handles, loc="upper right", ncol=len(handles), frameon=False, fontsize="small",
                  bbox_to_anchor=(1.0, 0.0), bbox_transform=ax.transAxes + ScaledTranslation(
                      0, -0.62, fig.dpi_scale_trans), borderaxespad=0, handletextpad=0.3, columnspacing=1.0)
    if title is None:
        title = {"hr": "Hazard ratio", "survival_difference": "Survival difference",
                 "rmst_difference": "RMST difference", "median_difference": "Median difference"}[measure] + \
            f", {nm.outcome_lower(oc)}" if oc else ""
    if title:
        ax.set_title(title, loc="left")
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
    """Risk-table texts at ``ticks``: the stored (disclosed) texts when the table has them, else the counts.

    Unweighted numbers at risk are integers (a stored ``"18.0"`` is shown
    ``18``); weighted ones are rounded to whole numbers too (the table's
    heading says they are weighted). Texts that are not numbers (``"<5"``,
    ``"*"``) are shown as stored.
    """
    def fmt(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, str):
            x = _num(v.strip())
            if not math.isfinite(x):
                return v.strip()
            v = x
        x = _num(v)
        return "" if not math.isfinite(x) else f"{x:.0f}"

    if "n_at_risk_text" in tab.columns:
        g = tab[tab["group"] == group]
        t = g["time"].to_numpy(float)
        txt = g["n_at_risk_text"].astype(object).to_numpy()
        out = []
        for tk in ticks:
            hit = np.flatnonzero(np.abs(t - tk) < 1e-9)
            out.append(fmt(txt[hit[0]]) if len(hit) and txt[hit[0]] is not None else "")
        return out
    return [fmt(v) for v in _at_risk(tab, group, ticks)]


def _round_ticks(tmax: float) -> list[float]:
    """Round time ticks 0 .. >= tmax (steps of 1, 2, 2.5, 5 x 10^k, 4 to 8 ticks)."""
    from matplotlib.ticker import MaxNLocator

    loc = MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10], integer=False, min_n_ticks=4)
    ticks = [float(t) for t in loc.tick_values(0.0, max(tmax, 1e-9)) if t >= -1e-12]
    return [t for t in ticks if t <= tmax * 1.02 + 1e-9] or [0.0]


#: vertical layout of the risk table under a curve plot, in points below the axes
RISK_TITLE_PT, RISK_ROW0_PT, RISK_ROW_PT = 40.0, 54.0, 13.0


def risk_table_height(n_groups: int) -> float:
    """Inches the risk table needs under a curve plot's axes (tick labels and x label included)."""
    return (RISK_ROW0_PT + RISK_ROW_PT * n_groups + 6.0) / 72.0


def arm_names(result: Any, groups: Sequence[str]) -> dict[str, str]:
    """Group of a curve table -> the arm's name in the study's words (spec ``labels``)."""
    from causal_hcc.report._labels import Names

    names = Names(result)
    return {g: names.arm(g) for g in groups}


def plot_curves(result: Any, strategy: str | None = None, outcome: str | None = None, ax=None, *,
                risk_table: bool = True, record: Any = None, title: str | None = None, gid_prefix: str = ""):
    """Survival curves by arm for one strategy, with CI bands and a numbers-at-risk table.

    Default strategy: the first with curves (the naive KM in pipeline order).
    Arms are named in the study's words (the spec's ``labels``; "Surgery",
    "No surgery"). The risk table is drawn as survminer draws it: a heading,
    then one row per arm, with the arm names in their own column left of the
    axis (never touching the first count) and the counts under the time ticks.
    Unweighted counts are integers; weighted curves show weighted numbers at
    risk, rounded, under a heading that says so. Curves on the disclosure grid
    (as written and read back) show the stored texts at their stored times,
    as the disclosure rule wrote them: numbers rounded to the nearest
    ``min_cell`` (the curve itself is computed from counts rounded the same
    way), ``<min_cell`` for fewer; the heading says so. Times run from the design's time origin
    (time zero; the landmark for a landmark design), on round ticks.

    Raises
    ------
    SpecError
        An unknown strategy, or one without curves.
    """
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    rec = record or _find_record(result, strategy, outcome, "curves")
    if rec.curves is None or rec.curves.table is None or not len(rec.curves.table):
        raise SpecError(f"strategy '{rec.strategy}' has no survival curves")
    tab = rec.curves.table
    origin = float(rec.curves.time_origin or 0.0)
    groups = list(dict.fromkeys(tab["group"].astype(str)))
    names = arm_names(result, groups)
    stored = [float(x) for x in getattr(rec.curves, "risk_times", ()) or ()]
    tmax = float(np.nanmax(tab["time"].to_numpy(float))) if len(tab) else 1.0
    ticks = stored if stored else _round_ticks(tmax)
    weighted = rec.curves.method not in ("km",)
    texts = {g: _risk_texts(tab, g, ticks, weighted) for g in groups} if risk_table and "n_at_risk" in tab.columns \
        else {}
    own_fig = ax is None
    ax = _axes(ax, 7.0, 4.2 + (risk_table_height(len(groups)) if texts else 0.0))
    for gname in groups:
        g = tab[tab["group"] == gname].sort_values("time")
        t = np.r_[0.0, g["time"].to_numpy(float)]
        s = np.r_[1.0, g["surv"].to_numpy(float)]
        c = arm_color(gname)
        line = ax.step(t, s, where="post", color=c, lw=1.6, label=names[gname])[0]
        lo = np.r_[1.0, g["ci_lower"].to_numpy(float)]
        hi = np.r_[1.0, g["ci_upper"].to_numpy(float)]
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.sum() > 1:
            ax.fill_between(t[ok], lo[ok], hi[ok], step="post", color=line.get_color(), alpha=0.15, lw=0)
    ax.set_ylim(0, 1.02)
    right = max(ticks[-1] if ticks else tmax, tmax)
    ax.set_xlim(0, right * 1.02)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{x:g}" for x in ticks])
    ax.set_ylabel("Survival probability")
    unit = _unit(result)
    if origin:
        what = "landmark" if rec.design == "landmark" else "time origin"
        ax.set_xlabel(f"{unit.capitalize()} since the {what} ({origin:g} {unit} after time zero)")
    else:
        ax.set_xlabel(f"{unit.capitalize()} since time zero")
    if title is None:
        title = f"{rec.strategy} [{rec.outcome}]"
    if title:
        ax.set_title(title, color=design_color(rec.design), loc="left")
    ax.legend(frameon=False, loc="upper right")
    ax.grid(color="#eeeeee", lw=0.6)
    if texts:
        fig = ax.figure
        fs = float(matplotlib_rc("font.size"))
        head = "Weighted number at risk (rounded)" if weighted else "Number at risk"
        m = int(getattr(result, "min_cell", 0) or 0)
        if m > 1:  # disclosed: the numbers and the curve come from counts rounded to m (causal_hcc.disclosure)
            head += f" (rounded to the nearest {m}; <{m}: fewer than {m})"
        below = ax.transAxes + ScaledTranslation(0, -RISK_TITLE_PT / 72.0, fig.dpi_scale_trans)
        ax.text(0.0, 0.0, head, transform=below, ha="left", va="top", fontweight="bold", gid=f"{gid_prefix}risk-head")
        # the label column: arm names right-aligned left of the axis, clear of half the widest first count
        first_w = max((len(v[0]) for v in texts.values() if v), default=1) * 0.62 * fs
        pad = first_w / 2 + 8.0
        for i, gname in enumerate(groups):
            dy = -(RISK_ROW0_PT + RISK_ROW_PT * i) / 72.0
            row = blended_transform_factory(ax.transData, ax.transAxes) + ScaledTranslation(0, dy, fig.dpi_scale_trans)
            lab = ax.transAxes + ScaledTranslation(-pad / 72.0, dy, fig.dpi_scale_trans)
            color = arm_color(gname) or "black"
            ax.text(0.0, 0.0, names[gname], transform=lab, ha="right", va="top", color=color,
                    gid=f"{gid_prefix}risk-label-{i}")
            for j, (tk, v) in enumerate(zip(ticks, texts[gname])):
                ax.text(tk, 0.0, v, transform=row, ha="center", va="top", color=color,
                        gid=f"{gid_prefix}risk-count-{i}-{j}")
        if own_fig:
            label_w = max(len(n) for n in names.values()) * 0.58 * fs + pad + 10
            w, h = fig.get_size_inches()
            fig.subplots_adjust(left=min(0.6, max(0.1, (label_w / 72.0) / w)), right=0.97, top=0.92,
                                bottom=min(0.6, (risk_table_height(len(groups)) + 0.15) / h))
    return ax


def matplotlib_rc(key: str) -> Any:
    import matplotlib

    return matplotlib.rcParams[key]


def _font_size(key: str = "font.size") -> float:
    """A font size rcParam in points (named sizes such as 'medium' resolved against font.size)."""
    from matplotlib.font_manager import FontProperties

    v = matplotlib_rc(key)
    if isinstance(v, (int, float)):
        return float(v)
    return float(FontProperties(size=v).get_size_in_points())


def curves_left_margin(result: Any, record: Any, fontsize: float = 9.5) -> float:
    """Inches left of a curve plot's axes that fit the risk table's label column (and the y label)."""
    groups = list(dict.fromkeys(record.curves.table["group"].astype(str)))
    names = arm_names(result, groups)
    pad = 3 * 0.62 * fontsize / 2 + 8.0
    return max(0.62, (max(len(n) for n in names.values()) * 0.58 * fontsize + pad + 8) / 72.0)


def plot_landmark_sweep(result: Any, measure: str = "hr", outcome: str | None = None, ax=None, *,
                        title: str | None = None):
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
    distinct = sorted({p[0] for v in pts.values() for p in v})
    if len(distinct) < 2:
        raise SpecError(f"a landmark sweep needs at least two landmark times; this result has one "
                        f"({distinct[0]:g})")
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
        vals = [v for p in pts.values() for q in p for v in q[1:] if math.isfinite(v) and v > 0]
        _log_axis(ax.yaxis, min(vals), max(vals))
    ax.set_xticks(distinct)
    ax.set_xticklabels([f"{x:g}" for x in distinct])
    ax.set_xlabel(f"Landmark time ({_unit(result)} since time zero)")
    ax.set_ylabel(MEASURE_LABEL[measure])
    if title is None:
        title = "Landmark sweep"
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, title="adjustment")
    ax.grid(color="#eeeeee", lw=0.6)
    return ax


# ---------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------
def plot_love(result: Any, strategy: str | None = None, ax=None, *, record: Any = None, threshold: float = 0.1,
              title: str | None = None, names: Any = None):
    """Love plot: the absolute SMD per variable before (open) and after (filled) adjustment.

    Variables carry the study's names (the spec's ``labels``; else written
    readably). Raises SpecError for a strategy without balance diagnostics.
    """
    if names is None:
        from causal_hcc.report._labels import Names

        names = Names(result)
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
    ax.set_yticklabels([names.column(v) for v in var])
    ax.invert_yaxis()
    ax.set_xlabel("|standardized mean difference|")
    if title is None:
        title = f"Balance: {rec.strategy}"
    if title:
        ax.set_title(title, color=design_color(rec.design))
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


def _edge_point(c: tuple[float, float], half: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the segment from the centre ``c`` of a box (half-sizes ``half``) toward ``toward`` leaves the box."""
    dx, dy = toward[0] - c[0], toward[1] - c[1]
    if dx == 0 and dy == 0:
        return c
    tx = half[0] / abs(dx) if dx else math.inf
    ty = half[1] / abs(dy) if dy else math.inf
    t = min(tx, ty)
    return c[0] + dx * t, c[1] + dy * t


def plot_dag(dag_info: dict[str, Any], ax=None, *, names: Any = None):
    """Draw the causal graph in layers: common causes on top, treatment left, outcome right, others below.

    Nodes are labelled boxes (readable names: the spec's ``labels`` when
    ``names`` is a :class:`~causal_hcc.report._labels.Names`); the minimal
    back-door set is green, a node that is not among the spec's confounders
    has a dashed border. Arrows run from box edge to box edge. The layout is
    in inches (a given ``ax`` has its figure resized to fit).

    Raises
    ------
    SpecError
        A graph without nodes.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    nodes = [str(n) for n in dag_info.get("nodes", [])]
    edges = [(str(a), str(b)) for a, b in (tuple(e) for e in dag_info.get("edges", []))]
    if not nodes:
        raise SpecError("the causal graph has no nodes")
    trt, out = str(dag_info.get("treatment")), str(dag_info.get("outcome"))
    label = (lambda n: names.column(n)) if names is not None else (lambda n: str(n))
    into = {n: {b for a, b in edges if a == n} for n in nodes}
    top = [n for n in nodes if n not in (trt, out) and trt in into[n] and out in into[n]]
    rest = [n for n in nodes if n not in (trt, out) and n not in top]
    fs = 8.0
    cw, lh = fs * 0.6 / 72, fs * 1.3 / 72
    per_row = max(len(top), len(rest), 2)
    width = max(7.0, 1.5 * per_row)
    slot = width / per_row
    box_w = min(1.6, slot - 0.15)
    chars = max(8, int((box_w - 0.12) / cw))
    texts = {n: _wrap(label(n), chars) for n in nodes}
    for n in (trt, out):
        texts[n] = _wrap(label(n), 18)
    half = {n: ((max(len(x) for x in texts[n].split("\n")) * cw + 0.16) / 2,
                (texts[n].count("\n") * lh + lh + 0.1) / 2) for n in nodes}
    row_h = 2 * max(h for _, h in half.values())
    height = row_h * (3 if rest else 2) + (1.6 if rest else 0.9)
    y_top = height - row_h / 2 - 0.05
    y_mid = row_h * 1.5 + 0.8 if rest else row_h / 2 + 0.05
    y_low = row_h / 2 + 0.05
    pos = {trt: (half[trt][0] + 0.1, y_mid), out: (width - half[out][0] - 0.1, y_mid)}
    for i, n in enumerate(top):
        pos[n] = ((i + 0.5) * width / len(top), y_top)
    for i, n in enumerate(rest):
        pos[n] = ((i + 0.5) * width / len(rest), y_low)
    own = ax is None
    if own:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(width, height + 0.5))
        fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.5 / (height + 0.5))
    fig = ax.figure
    p = ax.get_position()
    fig.set_size_inches(width / p.width, height / p.height)
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    minimal = {str(x) for x in dag_info.get("minimal", [])}
    spec = {str(x) for x in dag_info.get("spec_confounders", [])}
    for i, n in enumerate(nodes):
        x, y = pos[n]
        fc = "#f5b041" if n == trt else "#85c1e9" if n == out else "#82e0aa" if n in minimal else "#eeeeee"
        dashed = bool(n not in (trt, out) and spec and n not in spec)
        hw, hh = half[n]
        ax.add_patch(FancyBboxPatch((x - hw, y - hh), 2 * hw, 2 * hh, boxstyle="round,pad=0,rounding_size=0.06",
                                    fc=fc, ec="#555555", lw=0.9, ls="--" if dashed else "-", zorder=3,
                                    gid=f"dag-node-{i}"))
        ax.text(x, y, texts[n], ha="center", va="center", fontsize=fs, zorder=4, linespacing=1.3)
    for a, b in edges:
        if a not in pos or b not in pos:
            continue
        start = _edge_point(pos[a], half[a], pos[b])
        end = _edge_point(pos[b], half[b], pos[a])
        main = (a, b) == (trt, out)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, lw=1.4 if main else 0.8,
                                     color="#1b4f72" if main else "#8a8a8a", shrinkA=0, shrinkB=1, zorder=2))
    handles = [ax.scatter([], [], marker="s", s=60, color=c, label=t) for c, t in
               (("#f5b041", "treatment"), ("#85c1e9", "outcome"), ("#82e0aa", "minimal back-door set"),
                ("#eeeeee", "other"))]
    if spec and any(n not in spec for n in nodes if n not in (trt, out)):
        handles.append(ax.plot([], [], ls="--", color="#555555", label="not among the spec's confounders")[0])
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), frameon=False,
              fontsize=8, handletextpad=0.3, columnspacing=1.0)
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

    return "\n".join(textwrap.wrap(text, max(4, width), break_long_words=True)) or text


#: flow-diagram geometry (inches): width, share of the main column, gaps, padding, font size (points)
FLOW_WIDTH, FLOW_MAIN, FLOW_GAP, FLOW_PAD, FLOW_FS = 6.4, 0.62, 0.3, 0.07, 8.5


def _flow_boxes(rows: list[dict[str, Any]], width: float, fs: float, shrink: dict[tuple, int]) -> list[dict]:
    """Boxes of a flow diagram in inches (x, y, w, h, text) for every row, none overlapping.

    Row by row: the main boxes share the left column, the exclusions a box in
    the right column beside the arrow into the row; each row is as tall as its
    tallest box. ``shrink`` narrows a box's wrapping (characters) when its text
    was measured wider than the box.
    """
    lh = fs * 1.3 / 72.0
    cw = fs * 0.6 / 72.0
    main_w = width * FLOW_MAIN
    side_x = main_w + 0.25
    side_w = width - side_x
    out = []
    y = 0.0
    for i, r in enumerate(rows):
        k = max(1, len(r["boxes"]))
        bw = (main_w - 0.2 * (k - 1)) / k
        boxes = []
        for j, b in enumerate(r["boxes"]):
            chars = max(6, int((bw - 2 * FLOW_PAD) / cw) - shrink.get(("box", i, j), 0))
            head = _wrap(b["text"], chars) + ("" if b["n"] is None else f"\nn = {b['n']:,}" if isinstance(b["n"], int)
                                               else f"\nn = {b['n']}")
            notes = "\n".join(_wrap("– " + t, chars) for t in b["notes"])
            text = head + ("\n" + notes if notes else "")
            h = text.count("\n") * lh + lh + 2 * FLOW_PAD
            boxes.append({"kind": "box", "key": ("box", i, j), "x": j * (bw + 0.2), "w": bw, "h": h, "text": text})
        excl = None
        if r["excluded"]:
            chars = max(6, int((side_w - 2 * FLOW_PAD) / cw) - shrink.get(("excl", i, 0), 0))
            text = "Excluded:\n" + "\n".join(_wrap(f"{t}: {n}", chars) for t, n in r["excluded"])
            h = text.count("\n") * lh + lh + 2 * FLOW_PAD
            excl = {"kind": "excl", "key": ("excl", i, 0), "x": side_x, "w": side_w, "h": h, "text": text}
        # the exclusion sits on the arrow into this row: between the previous row and this one
        gap = FLOW_GAP if i else 0.0
        if excl is not None and i:
            gap = max(gap, excl["h"] + 0.16)
        y += gap
        if excl is not None:
            excl["y"] = y - gap / 2 - excl["h"] / 2 if i else y
            if not i:
                y += excl["h"] + FLOW_GAP
        row_h = max([b["h"] for b in boxes] + [0.0])
        for b in boxes:
            b["y"] = y
            b["h"] = row_h if len(boxes) > 1 else b["h"]
        out.append({"boxes": boxes, "excl": excl, "y": y, "h": row_h})
        y += row_h
    return out


def plot_flow(flow: Sequence[Sequence[Any]], ax=None, *, design: str = "", title: str = ""):
    """CONSORT-style flow diagram of one design's eligibility and attrition.

    Main steps are boxes joined by arrows, exclusions side boxes on the
    arrows, the two arms side by side where their counts add up. The layout
    is computed in inches from the text each box holds and checked against
    the rendered text, so boxes never overlap; the figure is sized to the
    diagram (a given ``ax`` has its figure resized to fit).

    Raises
    ------
    SpecError
        An empty flow.
    """
    from matplotlib.patches import FancyBboxPatch

    rows = flow_layout(flow)
    if not rows:
        raise SpecError("no flow to draw")
    fs = FLOW_FS
    width = FLOW_WIDTH
    own = ax is None
    if own:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(width, 3.0))
        fig.subplots_adjust(left=0.01, right=0.99, top=0.92 if title else 0.99, bottom=0.01)
    fig = ax.figure
    ax.set_axis_off()
    color = design_color(design) if design else "#333333"
    shrink: dict[tuple, int] = {}
    for _ in range(6):  # lay out, draw, measure; re-wrap any text wider than its box
        layout = _flow_boxes(rows, width, fs, shrink)
        total = max(r["y"] + r["h"] for r in layout)
        total = max(total, max((r["excl"]["y"] + r["excl"]["h"] for r in layout if r["excl"]), default=0))
        for artist in list(ax.texts) + list(ax.patches):
            artist.remove()
        pos = ax.get_position()
        fig.set_size_inches(width / pos.width, (total + 0.05) / pos.height)
        ax.set_xlim(0, width)
        ax.set_ylim(total + 0.05, 0)
        texts = []
        for i, r in enumerate(layout):
            for b in r["boxes"] + ([r["excl"]] if r["excl"] else []):
                ec, fc = (color, "white") if b["kind"] == "box" else ("#999999", "#f7f7f7")
                ax.add_patch(FancyBboxPatch((b["x"], b["y"]), b["w"], b["h"], boxstyle="round,pad=0,rounding_size=0.05",
                                            fc=fc, ec=ec, lw=1.3 if b["kind"] == "box" else 0.8,
                                            gid=f"flow-{b['kind']}-{b['key'][1]}-{b['key'][2]}"))
                tx = b["x"] + b["w"] / 2 if b["kind"] == "box" else b["x"] + FLOW_PAD
                t = ax.text(tx, b["y"] + b["h"] / 2, b["text"], ha="center" if b["kind"] == "box" else "left",
                            va="center", fontsize=fs, linespacing=1.3,
                            gid=f"flow-text-{b['kind']}-{b['key'][1]}-{b['key'][2]}")
                texts.append((t, b))
        renderer = fig.canvas.get_renderer()
        inch = ax.transData.inverted()
        wide = False
        for t, b in texts:
            bb = t.get_window_extent(renderer)
            (x0, _), (x1, _) = inch.transform([(bb.x0, bb.y0), (bb.x1, bb.y1)])
            if x1 - x0 > b["w"] - 2 * FLOW_PAD + 1e-6:
                shrink[b["key"]] = shrink.get(b["key"], 0) + 2
                wide = True
        if not wide:
            break
    # arrows: from each box to the boxes of the next row (the arms split from the box above)
    for i in range(1, len(layout)):
        prev = [b for b in layout[i - 1]["boxes"]] or None
        if not prev or not layout[i]["boxes"]:
            continue
        for j, b in enumerate(layout[i]["boxes"]):
            src = prev[j] if len(prev) == len(layout[i]["boxes"]) else prev[0]
            sx, sy = src["x"] + src["w"] / 2, src["y"] + src["h"]
            ax.annotate("", xy=(b["x"] + b["w"] / 2, b["y"]), xytext=(sx, sy),
                        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.1, "shrinkA": 0, "shrinkB": 0})
        ex = layout[i]["excl"]
        if ex is not None:
            src = prev[0]
            sx = src["x"] + src["w"] / 2
            ey = ex["y"] + ex["h"] / 2
            ax.annotate("", xy=(ex["x"], ey), xytext=(sx, ey),
                        arrowprops={"arrowstyle": "-|>", "color": "#999999", "lw": 0.8, "shrinkA": 0, "shrinkB": 0})
    if title:
        ax.set_title(title, color=color, loc="left")
    return ax


def flow_height(flow: Sequence[Sequence[Any]]) -> float:
    """Figure height (inches) of :func:`plot_flow`'s diagram (its layout, before measuring the text)."""
    layout = _flow_boxes(flow_layout(flow), FLOW_WIDTH, FLOW_FS, {})
    if not layout:
        return 1.0
    total = max(r["y"] + r["h"] for r in layout)
    total = max(total, max((r["excl"]["y"] + r["excl"]["h"] for r in layout if r["excl"]), default=0))
    return total + 0.1


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
        lo_x, hi_x = ax.get_xlim()
        _log_axis(ax.xaxis, lo_x, hi_x)
    xl = MEASURE_LABEL.get(measure, measure)
    if measure == "survival_difference" and table and table[0].get("time") is not None:
        xl += f" at {float(table[0]['time']):g} {unit}"
    ax.set_xlabel(xl)
    n = mc.get("replicates_n") or mc.get("n_replicates") or ""
    ax.set_title(f"{n} simulated cohorts: each strategy's estimates (dots; bar = IQR, white tick = median) "
                 "vs the truth of its estimand (black tick)", loc="left", fontsize="medium")
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return ax


def curves_panels(result: Any, records: Sequence[Any], fig, *, titles: Sequence[str] | None = None,
                  fontsize: float = 9.5) -> list[Any]:
    """Survival curves of ``records`` side by side on ``fig``, each with its risk table (left label column).

    The axes are placed in inches so that every panel's label column fits
    (the widest arm name) and the risk table fits below.
    """
    n = len(records)
    if not n:
        raise SpecError("no curves to draw")
    w, h = fig.get_size_inches()
    lefts = [curves_left_margin(result, r, fontsize) for r in records]
    ngroups = max(len(set(r.curves.table["group"].astype(str))) for r in records)
    bottom = risk_table_height(ngroups) + 0.12
    top = 0.32
    gap = 0.25
    panel = (w - sum(lefts) - gap * (n - 1) - 0.15) / n
    axes = []
    x = 0.0
    for i, r in enumerate(records):
        x += lefts[i]
        ax = fig.add_axes([x / w, bottom / h, panel / w, (h - bottom - top) / h])
        plot_curves(result, ax=ax, record=r, title=(titles[i] if titles else None), gid_prefix=f"p{i}-")
        axes.append(ax)
        x += panel + gap
    return axes


def curves_pair_height(records: Sequence[Any], panel_height: float = 3.0) -> float:
    """Figure height (inches) of :func:`curves_panels` for these records."""
    ngroups = max((len(set(r.curves.table["group"].astype(str))) for r in records), default=2)
    return panel_height + risk_table_height(ngroups) + 0.45


def plot_forest_grid(result: Any, panels: Sequence[tuple[str, float | None]], fig=None, *,
                     outcome: str | None = None, names: str = "readable", show_truth: bool = True):
    """Several measures side by side, one row per strategy (a forest table): e.g. the hazard ratio, the
    survival differences at each ``survival_at`` and the RMST difference of one outcome.

    ``panels`` is a list of ``(measure, time)`` or ``(measure, time, outcome)`` (a panel of another
    outcome, e.g. the hazard ratio of progression-free survival beside overall survival's). Rows are the strategies with
    an estimate of any of the measures, under a heading per design; a panel
    leaves a row empty where the strategy has no such estimate. Returns the
    list of Axes.

    Raises
    ------
    SpecError
        No panel has an estimate to draw.
    """
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    oc = outcome or primary_outcome(result)
    per = []
    for panel in panels:
        measure, t = panel[0], panel[1]
        po = panel[2] if len(panel) > 2 and panel[2] else oc  # a panel may show another outcome
        rows = forest_rows(result, measure, po, t)
        if rows:
            per.append((measure, t, {r["label"]: r for r in rows}, po))
    if not per:
        raise SpecError(f"no estimates to draw for outcome '{oc}'")
    lay = forest_layout(result, per[0][0], oc, per[0][1], names, show_published=False)
    nm = lay["names"]
    order: list[tuple[str, str]] = []
    for r in result.records:
        if r.outcome != oc or r.error:
            continue
        for e in r.estimates:
            lab = e.strategy or r.strategy
            if any(lab in d for _, _, d, _ in per) and (lab, r.design) not in order:
                order.append((lab, r.design))
    words = nm.strategies([r for r in result.records if r.outcome == oc])
    lines: list[dict[str, Any]] = []
    prev = None
    for lab, design in order:
        if design != prev:
            lines.append({"kind": "head", "label": DESIGN_WORDS.get(design, design), "design": design})
            prev = design
        text = (words.get(lab) or nm.strategy(lab, design)) if names == "readable" else lab
        if names == "readable":
            for cut in ("From time zero, ", ", from time zero", " (from time zero)"):
                text = text.replace(cut, "")
            head = DESIGN_WORDS.get(design, "")
            if design != "baseline" and head and text.startswith(head):
                text = text[len(head):].lstrip(", ") or text
            text = text[:1].upper() + text[1:]
        lines.append({"kind": "row", "label": text, "key": lab, "design": design})
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(11.0, 0.22 * len(lines) + 1.3))
    w, h = fig.get_size_inches()
    fs = _font_size("ytick.labelsize")
    col_in = (max(len(x["label"]) + 2 for x in lines) * 0.55 * fs + 14) / 72.0
    gap = 0.25
    panel_w = (w - col_in - 0.2 - gap * (len(per) - 1)) / len(per)
    bottom, top = 0.35, 0.5
    axes = []
    n = len(lines)
    for k, (measure, t, rows, po) in enumerate(per):
        x0 = col_in + k * (panel_w + gap)
        ax = fig.add_axes([x0 / w, bottom / h, panel_w / w, (h - bottom - top) / h])
        xs = []
        for y, line in enumerate(lines):
            if line["kind"] == "head":
                if y > 0:
                    ax.axhline(y - 0.5, color="#dddddd", lw=0.6)
                continue
            r = rows.get(line["key"])
            if r is None:
                continue
            c = design_color(r["design"])
            lo, hi = r["ci_lower"], r["ci_upper"]
            if math.isfinite(lo) and math.isfinite(hi) and (measure != "hr" or lo > 0):
                ax.plot([lo, hi], [y, y], color=c, lw=1.5)
                xs += [lo, hi]
            ax.plot([r["estimate"]], [y], marker="s", color=c, ms=4.5, zorder=3)
            xs.append(r["estimate"])
            if show_truth and r["truth"] is not None and (measure != "hr" or r["truth"] > 0):
                ax.plot([r["truth"]], [y], marker="|", ms=10, mew=1.8, zorder=4,
                        color=TRUTH_COLOR if r["truth_kind"] == "own" else "#9a9a9a")
        null = 1.0 if measure == "hr" else 0.0
        ax.axvline(null, color="grey", lw=0.8)
        fin = [v for v in xs if math.isfinite(v) and (measure != "hr" or v > 0)]
        if measure == "hr":
            ax.set_xscale("log")
            lo_x, hi_x = (min(fin + [1.0]), max(fin + [1.0])) if fin else (0.5, 2.0)
            ax.set_xlim(lo_x / 1.15, hi_x * 1.15)
            _log_axis(ax.xaxis, lo_x, hi_x)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_yticks([])
        unit = _unit(result)
        title = {"hr": "Hazard ratio\n(log scale)",
                 "survival_difference": f"Survival difference\nat {t:g} {unit}" if t is not None
                 else "Survival difference", "rmst_difference": f"RMST difference\nto {t:g} {unit}" if t is not None
                 else "RMST difference", "median_difference": f"Median difference\n{unit}"}[measure]
        if po != oc:
            title = title.replace("\n", f", {nm.outcome_lower(po)}\n", 1) if measure != "hr" else \
                f"Hazard ratio,\n{nm.outcome_lower(po)}"
        ax.set_title(title, fontsize=fs)
        ax.grid(axis="x", color="#eeeeee", lw=0.6)
        ax.tick_params(axis="x", labelsize=fs * 0.9)
        axes.append(ax)
    first = axes[0]
    lab_tf = blended_transform_factory(first.transAxes, first.transData)
    for y, line in enumerate(lines):
        off = ScaledTranslation(-(col_in - 0.08) + (0.12 if line["kind"] == "row" else 0.0), 0, fig.dpi_scale_trans)
        first.text(0.0, y, line["label"], transform=lab_tf + off, ha="left", va="center", fontsize=fs,
                   fontweight="bold" if line["kind"] == "head" else "normal",
                   color=design_color(line["design"]) if line["kind"] == "head" else "black", clip_on=False,
                   gid=f"forest-grid-label-{y}")
    return axes


def forest_grid_height(result: Any, outcome: str | None = None) -> float:
    """Figure height (inches) of :func:`plot_forest_grid` for ``outcome`` (one row per strategy and design)."""
    oc = outcome or primary_outcome(result)
    labs = {(e.strategy or r.strategy) for r in result.records if r.outcome == oc and not r.error
            for e in r.estimates}
    designs = {r.design for r in result.records if r.outcome == oc and not r.error}
    return 0.22 * (len(labs) + len(designs)) + 1.0
