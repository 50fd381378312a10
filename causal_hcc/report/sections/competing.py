"""Competing risks: the estimands, cumulative incidences per arm (stacked panels) and forest plots.

Only for outcomes declared with ``competing:``. For each such outcome: the
estimands of its rows (the cause, how competing events are treated: total
effect on the cumulative incidence, cause-specific hazard, subdistribution
hazard; Young et al. 2020), forest plots of ``cause_specific_hr``,
``subdistribution_hr``, ``cif_difference`` and ``cif_ratio`` at each
``survival_at`` time, stacked cumulative incidence panels per strategy, and
the cumulative incidence of the event of interest per arm at each time.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_hcc.report._fmt import ci, p_text, sig, time_text

#: at most this many strategies get stacked panels per outcome
MAX_PANELS = 10


def _cif_at(table: Any, group: str, t: float) -> tuple[float, float, float]:
    g = table[table["group"].astype(str) == group].sort_values("time")
    times = g["time"].to_numpy(float)
    i = int(np.searchsorted(times, t, side="right")) - 1
    if i < 0:
        return 0.0, math.nan, math.nan
    row = g.iloc[i]
    return float(row["surv"]), float(row["ci_lower"]), float(row["ci_upper"])


def build(ctx: Any) -> dict[str, Any] | None:
    from causal_hcc.report import competing_figures as CF
    from causal_hcc.report import figures as F

    result = ctx.result
    outcomes = list(dict.fromkeys(r.outcome for r in CF.competing_records(result)))
    if not outcomes:
        return None
    times = [float(t) for t in (result.spec.get("estimands") or {}).get("survival_at") or []]
    blocks = []
    for oc in outcomes:
        recs = CF.competing_records(result, oc)
        labels = [e.strategy or r.strategy for r in recs for e in r.estimates]
        nrow = max(sum(1 for r in recs for e in r.estimates if e.measure == m) for m in CF.COMPETING_MEASURES) + 2
        h = max(2.4, 0.27 * nrow + 1.4)
        forests = []

        def draw(fig, measure, t=None, oc=oc):
            fig.subplots_adjust(left=F.left_margin(fig, labels, fontsize=9.5), right=0.78, top=1 - 0.4 / h,
                                bottom=0.65 / h)
            CF.plot_forest_competing(result, measure, fig.add_subplot(111), outcome=oc, time=t)

        for m in ("cause_specific_hr", "subdistribution_hr"):
            it = ctx.figs.draw(f"forest_{m}_{oc}", f"{CF._TITLE[m]} ({oc})", 10.5, h, lambda fig, m=m: draw(fig, m))
            if it:
                forests.append(it)
        for m in ("cif_difference", "cif_ratio"):
            for t in F.measure_times(result, m, oc):
                it = ctx.figs.draw(f"forest_{m}_{t:g}_{oc}", f"{CF._TITLE[m]} at {t:g} {ctx.unit} ({oc})", 10.5, h,
                                   lambda fig, m=m, t=t: draw(fig, m, t))
                if it:
                    forests.append(it)
        estimands: dict[str, dict[str, Any]] = {}
        for r in recs:
            for e in r.estimates:
                est = (r.estimands or {}).get(e.estimand) or {}
                if not est.get("competing"):
                    continue
                g = estimands.setdefault(e.estimand, {
                    "label": e.estimand, "cause": est.get("cause"), "competing": est.get("competing"),
                    "competing_codes": ", ".join(map(str, est.get("competing_codes") or [])),
                    "causal": "yes" if est.get("causal", True) else "no",
                    "description": est.get("description", ""), "rows": []})
                g["rows"].append({"strategy": e.strategy or r.strategy, "measure": e.measure, "time": time_text(e.time),
                                  "estimate": sig(e.estimate), "ci": ci(e.ci_lower, e.ci_upper),
                                  "p": p_text(e.p_value), "variance": e.variance_method})
        panels, risks = [], []
        with_curves = [r for r in recs if r.curves is not None
                       and getattr(r.curves, "kind", "") == "cumulative_incidence"]
        for i, r in enumerate(with_curves[:MAX_PANELS]):
            ngroups = max(1, len(CF.cif_groups(r.curves.table)))

            def panel(fig, r=r, ngroups=ngroups):
                fig.subplots_adjust(left=0.09, right=0.98, top=0.84, bottom=0.16, wspace=0.08)
                axes = [fig.add_subplot(1, ngroups, k + 1) for k in range(ngroups)]
                CF.plot_cif(result, axes=axes, record=r)
                fig.suptitle(f"{r.strategy} [{oc}]: {r.curves.method}", color=F.design_color(r.design))

            it = ctx.figs.draw(f"cif_{oc}_{i}", f"Cumulative incidence: {r.strategy} ({oc})", 9.0, 3.6, panel)
            if it:
                panels.append(it)
        for r in with_curves:
            for arm, causes in CF.cif_groups(r.curves.table).items():
                g1 = next((g for c, g in causes if c == 1), None)
                if g1 is None or not times:
                    continue
                cells = []
                for t in times:
                    f, lo, hi = _cif_at(r.curves.table, g1, t)
                    cells.append({"risk": f"{100 * f:.1f}%" if math.isfinite(f) else "",
                                  "ci": (ci(100 * lo, 100 * hi) + "%") if math.isfinite(lo) and math.isfinite(hi)
                                  else ""})
                risks.append({"strategy": r.strategy, "color": F.design_color(r.design), "method": r.curves.method,
                              "arm": arm, "cells": cells})
        blocks.append({"outcome": oc, "forests": forests, "estimands": list(estimands.values()), "panels": panels,
                       "risks": risks})
    return {"blocks": blocks, "times": [f"{t:g} {ctx.unit}" for t in times]}
