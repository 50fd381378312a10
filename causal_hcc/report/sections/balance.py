"""Balance before and after adjustment: SMD and variance ratio per variable (cobalt's ``bal.tab``), and love
plots. Thresholds: |SMD| < 0.1 and variance ratio within 0.5-2 (Austin 2009; Rubin 2001)."""
from __future__ import annotations

import math
from typing import Any

from causal_hcc.report._fmt import num, records


def fixed(v: float, decimals: int = 3) -> str:
    """Balance statistics at fixed decimals (cobalt's convention): 3 for SMDs, 2 for variance ratios."""
    if not math.isfinite(v):
        return ""
    out = f"{v:.{decimals}f}"
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def build(ctx: Any) -> dict[str, Any] | None:
    from causal_hcc.report import figures as F

    tables = []
    for i, r in enumerate(records(ctx.result, ctx.outcome)):
        b = r.diagnostics.get("balance") if isinstance(r.diagnostics, dict) else None
        if not isinstance(b, dict) or not b.get("variables"):
            continue
        var = [str(v) for v in b["variables"]]

        def col(key: str) -> list[float]:
            v = b.get(key) or []
            return [num(v[j]) if j < len(v) else math.nan for j in range(len(var))]

        sb, sa, vb, va = (col(k) for k in ("smd_before", "smd_after", "variance_ratio_before",
                                            "variance_ratio_after"))
        rows = [{"variable": v, "smd_before": fixed(sb[j]), "smd_after": fixed(sa[j]), "vr_before": fixed(vb[j], 2),
                 "vr_after": fixed(va[j], 2),
                 "smd_flag": math.isfinite(sa[j]) and abs(sa[j]) > 0.1,
                 "vr_flag": math.isfinite(va[j]) and (va[j] > 2 or va[j] < 0.5)} for j, v in enumerate(var)]
        h = max(2.4, 0.26 * len(var) + 1.0)
        shown = [ctx.names.column(v) for v in var]
        fig = ctx.figs.draw(f"love_{i}", f"Balance: {r.strategy}", 5.0, h,
                            lambda fig, r=r, shown=shown: (
                                fig.subplots_adjust(left=F.left_margin(fig, shown, 9.5), right=0.97,
                                                    top=1 - 0.3 / h, bottom=0.6 / h),
                                F.plot_love(ctx.result, ax=fig.add_subplot(111), record=r, title="",
                                            names=ctx.names)))
        finite = [abs(x) for x in sa if math.isfinite(x)]
        tables.append({"strategy": r.strategy, "design": r.design, "color": F.design_color(r.design), "adjustment": r.adjustment, "rows": rows,
                       "figure": fig, "max_smd": fixed(max(finite)) if finite else "",
                       "n_flag": sum(1 for x in rows if x["smd_flag"] or x["vr_flag"])})
    if not tables:
        return None
    # one overview table (cobalt's bal.tab over several methods): |SMD| after each adjustment, per variable
    variables = list(dict.fromkeys(r["variable"] for t in tables for r in t["rows"]))
    overview = []
    for v in variables:
        cells = []
        for t in tables:
            row = next((r for r in t["rows"] if r["variable"] == v), None)
            cells.append({"value": row["smd_after"] if row else "", "flag": bool(row and row["smd_flag"])})
        before = next((r["smd_before"] for t in tables if t["design"] == "baseline" for r in t["rows"]
                       if r["variable"] == v), "")
        overview.append({"variable": v, "name": ctx.names.column(v), "before": before, "cells": cells})
    return {"tables": tables, "overview": overview, "columns": [t["strategy"] for t in tables]}
