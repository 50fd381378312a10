"""The cohort: Table 1 by arm and a CONSORT-style flow diagram per design (eligibility and attrition)."""
from __future__ import annotations

from typing import Any

from causal_hcc.report._fmt import sig


def _table1(result: Any, names: Any = None) -> dict[str, Any] | None:
    if names is None:
        from causal_hcc.report._labels import Names

        names = Names(result)
    t1 = (result.cohort or {}).get("table1")
    if not isinstance(t1, dict) or not t1.get("rows"):
        return None
    arms = list(t1.get("arms", ["untreated", "treated"]))
    n = t1.get("n", {})
    rows = []
    for r in t1["rows"]:
        var = str(r.get("variable", ""))
        shown = "Events" if var == "events" and r.get("level") is None else names.column(var)
        label = shown if r.get("level") is None else f"    {r.get('level')}"
        kind = r.get("kind", "")
        if kind == "continuous" and r.get("level") is None:
            label += ", median (IQR)"
        elif kind == "binary" and r.get("level") is None:
            label += ", n (%)"
        text = r.get("text") or {}
        rows.append({"label": label, "indent": r.get("level") is not None,
                     "cells": [str(text.get(a, "")) for a in arms], "smd": sig(r.get("smd"), 2)})
    return {"arms": [f"{names.arm(a)} (n={n.get(a, '?')})" for a in arms], "rows": rows,
            "min_cell": t1.get("min_cell", 0), "suppressed": t1.get("suppressed", 0)}


def missing(result: Any) -> dict[str, Any] | None:
    """Multiple imputation: settings, missingness table and the fraction of missing information (FMI)."""
    from causal_hcc.report._fmt import MEASURE_NAMES, time_text

    mi = (result.cohort or {}).get("missing")
    if not isinstance(mi, dict):
        return None

    def pct(v: Any) -> str:
        return "" if v is None else f"{float(v):.1f}%"

    def df(v: Any) -> str:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return ""
        return f"{x:.0f}" if x == x and abs(x) != float("inf") else ""

    table = mi.get("table") or {}
    rows = [[str(r.get("column")), str(r.get("n_missing")), pct(r.get("pct_missing"))] for r in table.get("rows", [])]
    fmi = []
    for rec in result.records:
        for p in ((rec.diagnostics or {}).get("imputation") or {}).get("pooling", []):
            fmi.append([rec.strategy, rec.outcome, MEASURE_NAMES.get(p.get("measure"), p.get("measure")),
                        time_text(p.get("time")), sig(p.get("fmi")), sig(p.get("riv")), df(p.get("df"))])
    settings = (f"multiple imputation by chained equations, predictive mean matching: m = {mi.get('m')} imputed "
                f"data sets, {mi.get('iterations')} iterations, {mi.get('donors')} donors, seed {mi.get('seed')}; "
                f"imputed: {', '.join(mi.get('imputed_columns') or []) or 'none'}; predictors: {mi.get('predictors')}")
    return {"settings": settings, "imputed": bool(mi.get("imputed_columns")), "rows": rows, "n": table.get("n"),
            "complete_cases": table.get("complete_cases"), "pct_complete": pct(table.get("pct_complete")),
            "min_cell": table.get("min_cell", 0), "fmi": fmi}


def flows(result: Any, outcome: str | None) -> list[dict[str, Any]]:
    """Distinct flows of the outcome's records, with the strategies that share each."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in result.records:
        if r.outcome != outcome or r.error:
            continue
        fl = r.diagnostics.get("flow") if isinstance(r.diagnostics, dict) else None
        if not fl:
            continue
        key = tuple((str(s), str(n)) for s, n in fl)
        g = groups.setdefault(key, {"design": r.design, "strategies": [], "flow": [list(x) for x in fl]})
        if r.strategy not in g["strategies"]:
            g["strategies"].append(r.strategy)
    return list(groups.values())


def build(ctx: Any) -> dict[str, Any]:
    from causal_hcc.report import figures as F

    result = ctx.result
    diagrams = []
    for i, f in enumerate(flows(result, ctx.outcome)):
        h = F.flow_height(f["flow"])
        title = f"{f['design']}: {', '.join(f['strategies'])}"
        fig = ctx.figs.draw(f"flow_{i}", title, 6.2, h,
                            lambda fig, f=f: (fig.subplots_adjust(left=0.01, right=0.99, top=0.97, bottom=0.01),
                                              F.plot_flow(f["flow"], fig.add_subplot(111), design=f["design"])),
                            svg=True)
        diagrams.append({"design": f["design"], "color": F.design_color(f["design"]), "strategies": ", ".join(f["strategies"]), "figure": fig,
                         "steps": [{"step": s, "n": n} for s, n in f["flow"]]})
    c = result.cohort or {}
    return {"counts": {k: c.get(k) for k in ("n", "n_treated", "rows_dropped") if k in c},
            "table1": _table1(result, ctx.names), "missing": missing(result), "flows": diagrams, "outcome": ctx.outcome}
