"""Survival curves by arm (numbers at risk below) and absolute risks per arm at each ``survival_at`` time.

The risk at t is 1 - S(t) read from the stored curve (step function), its
CI 1 - the survival CI limits; times are measured from the design's time
origin (time zero; the landmark for ``landmark``; each trial's start for
``sequential_trials``).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_hcc.report._fmt import ci, num, records, time_text


def risk_at(table: Any, group: str, t: float) -> tuple[float, float, float, float]:
    """(risk, lower, upper, number at risk) of ``group`` at ``t`` from a curve table (step function)."""
    g = table[table["group"].astype(str) == group].sort_values("time")
    times = g["time"].to_numpy(float)
    i = int(np.searchsorted(times, t, side="right")) - 1
    if i < 0:
        return 0.0, 0.0, 0.0, float(g["n_at_risk"].iloc[0]) if len(g) else math.nan
    row = g.iloc[i]
    nr = g["n_at_risk"].to_numpy(float)
    j = int(np.searchsorted(times, t, side="left"))
    n_at = float(nr[j]) if j < len(nr) else 0.0
    lo, hi = float(row["ci_upper"]), float(row["ci_lower"])
    return 1 - float(row["surv"]), (1 - lo if math.isfinite(lo) else math.nan), \
        (1 - hi if math.isfinite(hi) else math.nan), n_at


def _risk_text(table: Any, group: str, t: float) -> str | None:
    """The stored number-at-risk text at ``t`` of a disclosed curve table (None when there is none)."""
    if "n_at_risk_text" not in table.columns:
        return None
    g = table[(table["group"].astype(str) == group) & (np.abs(table["time"].to_numpy(float) - t) < 1e-9)]
    if not len(g):
        return None
    txt = g["n_at_risk_text"].iloc[0]
    return str(txt) if isinstance(txt, str) and txt else None


def _pick(recs: list[Any]) -> list[Any]:
    out = []
    for r in recs:
        if r.curves is None or getattr(r.curves, "kind", "survival") != "survival":
            continue  # cumulative incidences (competing events): the 'competing' section draws them
        if not out:
            out.append(r)  # the first (naive) analysis
        elif r.adjustment not in ("none", "multivariable", "paper") or r.design in ("clone_censor", "landmark",
                                                                                   "sequential_trials"):
            out.append(r)
    return out[:12]


def _cell(table: Any, gname: str, t: float) -> dict[str, str]:
    """One risk cell: '48.1% (39.0 to 57.3%)' and the number at risk; '–' with a note where the curve does not
    reach ``t`` (never an empty '() [0]')."""
    rk, lo, hi, n_at = risk_at(table, gname, t)
    if not math.isfinite(rk):
        return {"risk": "–", "ci": "", "n_at_risk": "", "missing": "the curve is not estimated at this time"}
    shown = _risk_text(table, gname, t)  # disclosed curves: the stored text ("<5" where suppressed)
    if shown is not None:
        x = num(shown)
        shown = f"{x:.0f}" if math.isfinite(x) else shown
    elif math.isfinite(n_at):
        shown = f"{n_at:.0f}"
    return {"risk": f"{100 * rk:.1f}%",
            "ci": ci(100 * lo, 100 * hi) + "%" if math.isfinite(lo) and math.isfinite(hi) else "",
            "n_at_risk": shown or "", "missing": ""}


def build(ctx: Any) -> dict[str, Any] | None:
    from causal_hcc.report import figures as F
    from causal_hcc.report.sections.findings import summary_pair

    result, unit = ctx.result, ctx.unit
    names = ctx.names
    recs = records(result, ctx.outcome)
    shown = {r.strategy for r in summary_pair(result, ctx.outcome)}
    figs = []
    for i, r in enumerate(_pick(recs)):
        if r.strategy in shown:
            continue  # in the summary
        title = names.strategy(r.strategy, r.design, r.adjustment)
        h = F.curves_pair_height([r], 2.8)

        def draw(fig, r=r):
            F.curves_panels(result, [r], fig, titles=[""])

        it = ctx.figs.draw(f"curves_{i}", title, 6.0, h, draw, svg=True)
        if it:
            it = {**it, "strategy": r.strategy, "method": r.curves.method, "color": F.design_color(r.design)}
            figs.append(it)
    times = [float(t) for t in (result.spec.get("estimands") or {}).get("survival_at") or []]
    risks = []
    for r in recs:
        if r.curves is None or not times or getattr(r.curves, "kind", "survival") != "survival":
            continue
        tab = r.curves.table
        groups = list(dict.fromkeys(tab["group"].astype(str)))
        arms = F.arm_names(result, groups)
        for gname in groups:
            cells = [_cell(tab, gname, t) for t in times]
            risks.append({"strategy": r.strategy, "design": r.design, "color": F.design_color(r.design),
                          "method": r.curves.method, "arm": arms[gname],
                          "origin": time_text(r.curves.time_origin) if r.curves.time_origin else "0",
                          "cells": cells})
    sweep = None
    landmarks = {F.landmark_of(r) for r in recs if r.design == "landmark"} - {None}
    if len(landmarks) >= 2:  # a sweep needs two landmark times
        sweep = ctx.figs.draw("landmark_sweep", "Landmark sweep", 6.5, 3.9,
                              lambda fig: (fig.subplots_adjust(left=0.14, right=0.97, top=0.95, bottom=0.16),
                                           F.plot_landmark_sweep(result, "hr", ctx.outcome, fig.add_subplot(111),
                                                                 title="")))
    if not figs and not risks and sweep is None:
        return None
    return {"figures": figs, "risks": risks, "times": [f"{t:g} {unit}" for t in times], "sweep": sweep,
            "rule": ctx.disclosure, "missing": any(c["missing"] for r in risks for c in r["cells"])}
