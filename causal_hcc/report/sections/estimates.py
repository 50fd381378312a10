"""The comparison: forest plots (one colour per design), the estimates grouped by estimand, all estimates.

Tables show three significant digits; ``estimates.csv`` (linked) has full
precision.
"""
from __future__ import annotations

from typing import Any

from causal_hcc.report._fmt import (MEASURE_NAMES, as_printed, ci, p_text, published_text, records, short_estimand,
                                    sig, time_text)
from causal_hcc.report._truth import covers, truth_of


def _forest(ctx: Any) -> list[dict[str, Any]]:
    from causal_hcc.report import figures as F

    result, outcome, figs = ctx.result, ctx.outcome, ctx.figs
    recs = records(result, outcome)
    nrow = sum(1 for r in recs for e in r.estimates if e.measure == "hr") + 3
    h = max(2.4, 0.27 * nrow + 1.4)
    labels = [e.strategy or r.strategy for r in recs for e in r.estimates] + \
        [p["label"] + " (paper)" for p in F.published_estimates(result)]
    out = []

    def draw(fig, measure, t=None, oc=outcome):
        fig.subplots_adjust(left=F.left_margin(fig, labels, fontsize=9.5), right=0.78, top=1 - 0.4 / h,
                            bottom=0.65 / h)
        F.plot_forest(result, measure, fig.add_subplot(111), outcome=oc, time=t)

    it = figs.draw("forest_hr", f"Hazard ratio by strategy ({outcome})", 10.5, h, lambda fig: draw(fig, "hr")) \
        if F.forest_rows(result, "hr", outcome) else None   # none for an outcome with competing events
    if it:
        out.append(it)
    for t in F.measure_times(result, "survival_difference", outcome):
        it = figs.draw(f"forest_survdiff_{t:g}", f"Survival difference at {t:g} {ctx.unit} ({outcome})", 10.5, h,
                       lambda fig, t=t: draw(fig, "survival_difference", t))
        if it:
            out.append(it)
    if F.forest_rows(result, "rmst_difference", outcome):
        it = figs.draw("forest_rmst", f"RMST difference ({outcome})", 10.5, h, lambda fig: draw(fig, "rmst_difference"))
        if it:
            out.append(it)
    for other in dict.fromkeys(r.outcome for r in result.records if r.outcome != outcome):
        if not F.forest_rows(result, "hr", other):
            continue
        it = figs.draw(f"forest_hr_{other}", f"Hazard ratio by strategy ({other})", 10.5, h,
                       lambda fig, other=other: draw(fig, "hr", oc=other))
        if it:
            out.append(it)
    return out


def by_estimand(ctx: Any, outcome: str | None, measure: str = "hr", causal_only: bool = False) -> list[dict[str, Any]]:
    """Estimates of ``measure`` grouped by estimand label, in order of first appearance, with each row's truth."""
    groups: dict[str, dict[str, Any]] = {}
    for r in records(ctx.result, outcome):
        for e in r.estimates:
            if e.measure != measure:
                continue
            est = (r.estimands or {}).get(e.estimand) or {}
            if causal_only and (not est.get("causal", True) or r.design == "baseline"):
                continue
            g = groups.setdefault(e.estimand or "(no estimand recorded)", {
                "label": e.estimand or "(no estimand recorded)", "description": est.get("description", ""),
                "short": short_estimand(est, ctx.unit) or e.estimand,
                "causal": est.get("causal", True), "notes": list(est.get("notes", [])), "rows": [],
                "designs": []})
            if r.design not in g["designs"]:
                g["designs"].append(r.design)
            tr = truth_of(ctx.result, e)
            cov = covers(e, tr["value"])
            g["rows"].append({"strategy": e.strategy or r.strategy, "design": r.design, "estimate": sig(e.estimate),
                              "ci": ci(e.ci_lower, e.ci_upper), "p": p_text(e.p_value), "time": time_text(e.time),
                              "variance": e.variance_method, "truth": sig(tr["value"]) if tr["value"] is not None else "",
                              "truth_kind": tr["kind"], "truth_label": tr["label"],
                              "covers": {True: "yes", False: "no", None: ""}[cov], "_e": e, "_truth": tr})
    return list(groups.values())


def build(ctx: Any) -> dict[str, Any]:
    from causal_hcc.report.figures import published_estimates
    from causal_hcc.results import ESTIMATE_COLUMNS

    result = ctx.result
    cols = [c for c in ESTIMATE_COLUMNS if c not in ("design", "adjustment", "ci_lower", "ci_upper")]
    cols.insert(cols.index("se") + 1, "ci")
    rows = []
    m = int(getattr(result, "min_cell", 0) or 0)
    hidden = f"<{m}" if m > 0 else ""  # counts suppressed by AnalysisResult.disclosed (empty in estimates.csv)
    from causal_hcc.disclosure import rule_text
    for rec in result.records:
        for e in rec.estimates:
            d = e.as_row()
            row = {c: ((hidden if c in ("n", "n_treated", "events") else "") if d.get(c) is None else str(d.get(c)))
                   for c in ESTIMATE_COLUMNS}
            row.update({"estimate": sig(e.estimate), "se": sig(e.se), "ci": ci(e.ci_lower, e.ci_upper),
                        "p_value": p_text(e.p_value), "time": time_text(e.time),
                        "measure": MEASURE_NAMES.get(e.measure, e.measure)})
            rows.append(row)
    return {
        "forest": _forest(ctx), "columns": cols, "rows": rows,
        "groups": [{k: v for k, v in g.items()} for g in by_estimand(ctx, ctx.outcome)],
        "published": [{"label": p["label"], "measure": MEASURE_NAMES.get(p["measure"], p["measure"]),
                       "outcome": p.get("outcome") or "", "estimate": as_printed(p["estimate"]),
                       "ci": published_text(p).partition(" (")[2].rstrip(")")} for p in published_estimates(result)],
        "csv": "estimates.csv",
        "rule": f"Counts (n, n_treated, events): {rule_text(m)}." if m > 1 else "",
    }
