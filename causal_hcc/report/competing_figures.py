"""Figures for outcomes with competing events: stacked cumulative incidences and forest plots.

Drawn from an AnalysisResult (aggregate numbers only): a record whose
curves have ``kind == "cumulative_incidence"`` holds one curve per arm and
cause (groups ``"<arm>: cause <k>"``); estimates of the measures
``cif_difference``, ``cif_ratio``, ``cause_specific_hr`` and
``subdistribution_hr`` give the forest plots.

References
----------
Pintilie M. Competing Risks: A Practical Perspective. Wiley, 2006 (ch. 4:
stacked cumulative incidence plots).
Austin PC, Lee DS, Fine JP. Introduction to the analysis of survival data in
the presence of competing risks. Circulation 2016;133:601-9.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_hcc.errors import SpecError
from causal_hcc.report.figures import (TRUTH_COLOR, _axes, _log_axis, _unit, design_color, forest_rows, measure_times,
                                       primary_outcome)
from causal_hcc.results import is_ratio

__all__ = ["COMPETING_MEASURES", "COMPETING_LABEL", "plot_cif", "plot_forest_competing", "cif_groups",
           "competing_records"]

#: the measures of outcomes with competing events, in report order
COMPETING_MEASURES: tuple[str, ...] = ("cif_difference", "cif_ratio", "cause_specific_hr", "subdistribution_hr")
COMPETING_LABEL = {
    "cif_difference": "Cumulative incidence difference (treated - untreated)",
    "cif_ratio": "Cumulative incidence ratio (treated / untreated; log scale)",
    "cause_specific_hr": "Cause-specific hazard ratio (log scale)",
    "subdistribution_hr": "Subdistribution hazard ratio, Fine-Gray (log scale)",
}
_TITLE = {"cif_difference": "Cumulative incidence difference", "cif_ratio": "Cumulative incidence ratio",
          "cause_specific_hr": "Cause-specific hazard ratio", "subdistribution_hr": "Subdistribution hazard ratio"}
#: fill colours of the stacked causes: the event of interest first
CAUSE_COLORS = ["#c0392b", "#2874a6", "#7d3c98", "#148f77", "#b9770e"]


def competing_records(result: Any, outcome: str | None = None) -> list[Any]:
    """Records of ``outcome`` (default: every outcome) with cumulative incidence curves or competing measures."""
    out = []
    for r in result.records:
        if r.error or (outcome is not None and r.outcome != outcome):
            continue
        kind = getattr(r.curves, "kind", "survival") if r.curves is not None else None
        if kind == "cumulative_incidence" or any(e.measure in COMPETING_MEASURES for e in r.estimates):
            out.append(r)
    return out


def cif_groups(table: Any) -> dict[str, list[tuple[int, str]]]:
    """Arm -> [(cause code, group name)] of a cumulative incidence table, causes in order (1 first)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for g in dict.fromkeys(table["group"].astype(str)):
        arm, _, cause = g.rpartition(": cause ")
        if not arm:
            continue
        try:
            out.setdefault(arm, []).append((int(cause), g))
        except ValueError:
            continue
    return {a: sorted(v) for a, v in out.items()}


def plot_cif(result: Any, strategy: str | None = None, outcome: str | None = None, axes=None, *,
             record: Any = None, stacked: bool = True):
    """Cumulative incidence of every cause per arm, one panel per arm (stacked by default).

    Stacked: the event of interest (cause 1) at the bottom, each competing
    cause on top of it; the white space above is the probability of being
    free of every event. Unstacked: one line per cause with its pointwise
    CI band. ``axes``: two matplotlib Axes (one per arm); returns them.
    """
    if record is None:
        recs = [r for r in competing_records(result, outcome or primary_outcome(result))
                if r.curves is not None and getattr(r.curves, "kind", "") == "cumulative_incidence"]
        if strategy is not None:
            recs = [r for r in recs if r.strategy == strategy]
        if not recs:
            raise SpecError(f"no cumulative incidence curves for strategy '{strategy}'" if strategy else
                            "no strategy has cumulative incidence curves")
        record = recs[0]
    if record.curves is None or getattr(record.curves, "kind", "") != "cumulative_incidence":
        raise SpecError(f"strategy '{record.strategy}' has no cumulative incidence curves")
    tab = record.curves.table
    groups = cif_groups(tab)
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), sharey=True)
    axes = list(np.atleast_1d(axes))
    origin = float(record.curves.time_origin or 0.0)
    unit = _unit(result)
    tmax = float(np.nanmax(tab["time"].to_numpy(float))) if len(tab) else 1.0
    for ax, (arm, causes) in zip(axes, groups.items()):
        base = None
        for i, (code, g) in enumerate(causes):
            sub = tab[tab["group"].astype(str) == g].sort_values("time")
            t = sub["time"].to_numpy(float) + origin
            f = sub["surv"].to_numpy(float)
            ok = np.isfinite(f)
            t, f = t[ok], f[ok]
            col = CAUSE_COLORS[i % len(CAUSE_COLORS)]
            lab = f"cause {code}" + (" (event of interest)" if code == 1 else " (competing)")
            if stacked:
                if base is None:
                    lo = np.zeros_like(f)
                else:   # the stack below, read as a step function at these times
                    k = np.searchsorted(base[0], t, side="right") - 1
                    lo = np.where(k >= 0, base[1][np.maximum(k, 0)], 0.0)
                hi = lo + f
                ax.fill_between(t, lo, hi, step="post", color=col, alpha=0.55, lw=0, label=lab)
                ax.step(t, hi, where="post", color=col, lw=1.0)
                base = (t, hi)
            else:
                ax.step(t, f, where="post", color=col, lw=1.6, label=lab)
                clo, chi = sub["ci_lower"].to_numpy(float)[ok], sub["ci_upper"].to_numpy(float)[ok]
                good = np.isfinite(clo) & np.isfinite(chi)
                if good.sum() > 1:
                    ax.fill_between(t[good], clo[good], chi[good], step="post", color=col, alpha=0.15, lw=0)
        ax.set_title(arm)
        ax.set_xlim(origin, origin + tmax * 1.02)
        ax.set_ylim(0, 1.0)
        ax.grid(color="#eeeeee", lw=0.6)
        ax.set_xlabel(f"Time since time zero ({unit})")
    axes[0].set_ylabel("Cumulative incidence" + (" (stacked)" if stacked else ""))
    axes[-1].legend(frameon=False, loc="upper left", fontsize=8)
    return axes


def plot_forest_competing(result: Any, measure: str, ax=None, *, outcome: str | None = None,
                          time: float | None = None, show_truth: bool = True):
    """Forest plot of a competing-risks measure (every strategy with CI, grouped and coloured by design).

    Ratios (``cif_ratio``, the two hazard ratios) on a log axis with a line at
    1; ``cif_difference`` with a line at 0. ``time`` selects the time of
    ``cif_difference`` / ``cif_ratio`` (default: the first).
    """
    if measure not in COMPETING_LABEL:
        raise SpecError(f"plot_forest_competing: unknown measure {measure!r}; expected one of "
                        f"{', '.join(COMPETING_LABEL)}")
    if time is None and measure in ("cif_difference", "cif_ratio"):
        ts = measure_times(result, measure, outcome)
        time = ts[0] if ts else None
    rows = [r for r in forest_rows(result, measure, outcome, time)
            if not (is_ratio(measure) and not r["estimate"] > 0)]
    if not rows:
        raise SpecError(f"no estimates of {measure}")
    ax = _axes(ax, 7.5, max(2.0, 0.32 * len(rows) + 1.3))
    ratio = is_ratio(measure)
    y, labels, ys, prev = 0, [], [], None
    truth_shown = False
    for r in rows:
        if prev is not None and r["design"] != prev:
            ax.axhline(y - 0.5, color="#cccccc", lw=0.6)
        prev = r["design"]
        c = design_color(r["design"])
        lo, hi = r["ci_lower"], r["ci_upper"]
        if math.isfinite(lo) and math.isfinite(hi) and (not ratio or lo > 0):
            ax.plot([lo, hi], [y, y], color=c, lw=1.8)
        ax.plot([r["estimate"]], [y], marker="s", color=c, ms=6, zorder=3)
        if show_truth and r["truth"] is not None and (not ratio or r["truth"] > 0):
            truth_shown = True
            ax.plot([r["truth"]], [y], marker="|", ms=14, mew=2.2, zorder=4, color=TRUTH_COLOR)
        labels.append(r["label"])
        ys.append(y)
        y += 1
    ax.axvline(1.0 if ratio else 0.0, color="grey", lw=0.8)
    if ratio:
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_ylim(y - 0.5, -0.5)
    xl = COMPETING_LABEL[measure]
    if time is not None:
        xl += f" at {time:g} {_unit(result)}"
    ax.set_xlabel(xl)
    handles = [ax.plot([], [], marker="s", ls="", color=design_color(d), label=d)[0]
               for d in dict.fromkeys(r["design"] for r in rows)]
    if truth_shown:
        handles.append(ax.plot([], [], marker="|", ms=12, mew=2.2, ls="", color=TRUTH_COLOR,
                               label="truth of the row's estimand")[0])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="design")
    oc = outcome or primary_outcome(result)
    ax.set_title(f"{_TITLE[measure]} by strategy ({oc})")
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return ax
