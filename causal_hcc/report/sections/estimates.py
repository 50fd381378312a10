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
    """Forest plots of the appendix: survival differences, RMST and the other outcomes' hazard ratios (the
    primary outcome's hazard ratios are in the summary)."""
    from causal_hcc.report import figures as F

    result, outcome, figs = ctx.result, ctx.outcome, ctx.figs
    names = ctx.names
    out = []

    def add(name: str, title: str, measure: str, t: float | None = None, oc: str | None = None) -> None:
        try:
            lay = F.forest_layout(result, measure, oc or outcome, t)
        except Exception:  # noqa: BLE001 - nothing to draw
            return
        if not any(x["kind"] != "head" for x in lay["lines"]):
            return
        width = 10.5

        def draw(fig):
            fig.subplots_adjust(**F.forest_margins(lay, width, 9.5))
            F.plot_forest(result, measure, fig.add_subplot(111), outcome=oc or outcome, time=t, title="")

        it = figs.draw(name, title, width, lay["height"], draw)
        if it:
            out.append(it)

    o_words = names.outcome_lower(outcome or "")
    panels = [("hr", None)] + [("survival_difference", t) for t in F.measure_times(result, "survival_difference",
                                                                                   outcome)] + \
        [("rmst_difference", t) for t in F.measure_times(result, "rmst_difference", outcome)]
    others = list(dict.fromkeys(r.outcome for r in result.records if r.outcome != outcome))
    panels += [("hr", None, o) for o in others[:2]]  # the other outcomes' hazard ratios as panels of the same rows
    h = F.forest_grid_height(result, outcome)
    it = figs.draw("forest_all", f"Every strategy and measure, {o_words}"
                   + (f" (and the hazard ratio of {', '.join(names.outcome_lower(o) for o in others[:2])})"
                      if others else ""), 11.0, h,
                   lambda fig: F.plot_forest_grid(result, panels, fig, outcome=outcome))
    if it:
        out.append(it)
    for other in others[2:]:
        add(f"forest_hr_{other}", f"Hazard ratio of {names.treatment_lower}, {names.outcome_lower(other)}", "hr",
            oc=other)
    return out
    for t in F.measure_times(result, "survival_difference", outcome):
        add(f"forest_survdiff_{t:g}", f"Survival difference at {t:g} {ctx.unit}, {o_words} ({names.treatment_lower} "
            f"minus {names.no_treatment.lower()})", "survival_difference", t)
    for t in F.measure_times(result, "rmst_difference", outcome):
        add(f"forest_rmst_{t:g}", f"Restricted mean survival time difference to {t:g} {ctx.unit}, {o_words}",
            "rmst_difference", t)
    for other in dict.fromkeys(r.outcome for r in result.records if r.outcome != outcome):
        add(f"forest_hr_{other}", f"Hazard ratio of {names.treatment_lower}, {names.outcome_lower(other)}", "hr",
            oc=other)
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
