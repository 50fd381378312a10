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

from causal_hcc.report._fmt import ci, records, time_text


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


def build(ctx: Any) -> dict[str, Any] | None:
    from causal_hcc.report import figures as F

    result, unit = ctx.result, ctx.unit
    recs = records(result, ctx.outcome)
    figs = []
    for i, r in enumerate(_pick(recs)):
        it = ctx.figs.draw(f"curves_{i}", f"Survival curves: {r.strategy}", 6.0, 4.6,
                           lambda fig, r=r: (fig.subplots_adjust(left=0.2, right=0.97, top=0.92, bottom=0.36),
                                             F.plot_curves(result, ax=fig.add_subplot(111), record=r)))
        if it:
            figs.append(it)
    times = [float(t) for t in (result.spec.get("estimands") or {}).get("survival_at") or []]
    risks = []
    for r in recs:
        if r.curves is None or not times or getattr(r.curves, "kind", "survival") != "survival":
            continue
        tab = r.curves.table
        groups = list(dict.fromkeys(tab["group"].astype(str)))
        for gname in groups:
            cells = []
            for t in times:
                rk, lo, hi, n_at = risk_at(tab, gname, t)
                shown = _risk_text(tab, gname, t)  # disclosed curves: the stored text ("<5" where suppressed)
                cells.append({"risk": f"{100 * rk:.1f}%" if math.isfinite(rk) else "",
                              "ci": ci(100 * lo, 100 * hi) + "%" if math.isfinite(lo) and math.isfinite(hi) else "",
                              "n_at_risk": shown if shown is not None else "" if not math.isfinite(n_at)
                              else f"{n_at:.0f}" if abs(n_at - round(n_at)) < 1e-9 else f"{n_at:.1f}"})
            risks.append({"strategy": r.strategy, "design": r.design, "color": F.design_color(r.design), "method": r.curves.method, "arm": gname,
                          "origin": time_text(r.curves.time_origin) if r.curves.time_origin else "0",
                          "cells": cells})
    sweep = None
    if sum(1 for r in recs if r.design == "landmark") >= 2:
        sweep = ctx.figs.draw("landmark_sweep", "Landmark sweep", 6.5, 3.9,
                              lambda fig: (fig.subplots_adjust(left=0.14, right=0.97, top=0.91, bottom=0.16),
                                           F.plot_landmark_sweep(result, "hr", ctx.outcome, fig.add_subplot(111))))
    if not figs and not risks and sweep is None:
        return None
    from causal_hcc.disclosure import rule_text

    m = int(getattr(result, "min_cell", 0) or 0)
    return {"figures": figs, "risks": risks, "times": [f"{t:g} {unit}" for t in times], "sweep": sweep,
            "rule": f"Disclosure control: {rule_text(m)} (OpenSAFELY method)." if m > 1 else ""}
