"""Against the known truth (digital twin): each estimate against the truth of its own estimand.

Rows whose contrast is not causal (ever vs never treated) are compared with
the estimand the paper claimed and labelled so. One data set mixes bias and
chance; the Monte Carlo panel separates them.
"""
from __future__ import annotations

import math
from typing import Any

from causal_hcc.report._fmt import MEASURE_NAMES, ci, sig, time_text
from causal_hcc.report._truth import covers, truth_of
from causal_hcc.results import is_ratio

#: survival and RMST differences first: their truths do not depend on follow-up (the primary verdict
#: measures); hazard ratios are the limits of each estimator under the study's follow-up
_ORDER = {"survival_difference": 0, "rmst_difference": 1, "risk_ratio": 2, "hr": 3, "median_difference": 4}


def build(ctx: Any) -> dict[str, Any] | None:
    result = ctx.result
    if result.truth is None:
        return None
    rows = []
    for r in result.records:
        for e in r.estimates:
            tr = truth_of(result, e)
            tv = tr["value"]
            if tv is None and r.estimands.get(e.estimand, {}).get("truth"):
                # a twin row without a truth says why (e.g. "undefined: curve differences ... descriptive")
                rows.append({"strategy": e.strategy or r.strategy, "design": r.design, "outcome": r.outcome,
                             "estimand": e.estimand, "measure": MEASURE_NAMES.get(e.measure, e.measure),
                             "time": time_text(e.time), "truth": "–", "kind": "", "estimate": sig(e.estimate),
                             "ci": ci(e.ci_lower, e.ci_upper), "error": tr["note"] or "undefined", "covers": "",
                             "_key": math.inf, "_m": _ORDER.get(e.measure, 9)})
                continue
            if tv is None or not math.isfinite(e.estimate):
                continue
            if is_ratio(e.measure):
                if e.estimate <= 0 or tv <= 0:
                    continue
                err = e.estimate / tv
                err_text, key = f"x{err:.2f} (log error {math.log(err):+.2f})", abs(math.log(err))
            else:
                err = e.estimate - tv
                err_text, key = f"{err:+.3g}", abs(err)
            cv = covers(e, tv)
            rows.append({"strategy": e.strategy or r.strategy, "design": r.design, "outcome": r.outcome,
                         "estimand": e.estimand, "measure": MEASURE_NAMES.get(e.measure, e.measure),
                         "time": time_text(e.time),
                         # the truth with its Monte Carlo SE (log scale for an HR)
                         "truth": sig(tv) + (f" (MCSE {tr['mc_se']:.1g})" if tr.get("mc_se") else ""),
                         "kind": {"own": "own estimand", "claimed": "claimed by the paper"}.get(tr["kind"], ""),
                         "estimate": sig(e.estimate), "ci": ci(e.ci_lower, e.ci_upper), "error": err_text,
                         "covers": {True: "yes", False: "NO", None: ""}[cv], "_key": key,
                         "_m": _ORDER.get(e.measure, 9)})
    rows.sort(key=lambda x: (x["outcome"], x["_m"], x["time"], x["_key"]))
    if rows:
        items_note = ("survival and RMST differences first (primary: their truths do not depend on follow-up); "
                      "HR truths are the limit of each estimator under the study's own follow-up (a marginal HR "
                      "is non-collapsible and, under non-proportional hazards, depends on follow-up); MCSE: the "
                      "truth's Monte Carlo SE (log scale for HRs)")
    else:
        items_note = ""
    items = [("reading", items_note)] if items_note else []
    tr = result.truth if isinstance(result.truth, dict) else {}
    if isinstance(tr.get("estimand"), str):
        items.append(("estimand of the twin's headline truth", tr["estimand"]))
    for k in ("hr", "hr_structural"):
        if isinstance(tr.get(k), (int, float)):
            items.append((k.replace("_", " "), sig(tr[k])))
    if isinstance(tr.get("twin_recalibration"), str):
        items.append(("twin", tr["twin_recalibration"]))
    return {"rows": rows, "items": items}
