"""Sensitivity to unmeasured confounding: E-values (VanderWeele & Ding 2017), tipping points (Lin, Psaty &
Kronmal 1998), the causal graph's back-door sets and the refutation tests (DoWhy)."""
from __future__ import annotations

import math
from typing import Any

from causal_hcc.report._fmt import MEASURE_NAMES, ci, records, sig, time_text


#: measures that get an E-value row (the competing-risks measures of issue 21 included; RMST and median
#: differences have no published E-value)
EVALUE_MEASURES = ("hr", "survival_difference", "risk_ratio", "cif_difference", "cif_ratio", "cause_specific_hr",
                   "subdistribution_hr")


def evalue_rows(result: Any) -> list[dict[str, str]]:
    from causal_hcc.sensitivity import NOT_CONFOUNDING_NOTE, evalues_for_result

    rows = []
    for r in evalues_for_result(result):
        if r["measure"] not in EVALUE_MEASURES:
            continue
        if r["note"] == NOT_CONFOUNDING_NOTE:  # ever vs never: no E-value (listed below the table)
            continue
        rows.append({"strategy": r["strategy"], "outcome": r["outcome"],
                     "measure": MEASURE_NAMES.get(r["measure"], r["measure"].replace("_", " ")),
                     "time": time_text(r["time"]),
                     "estimate": sig(r["estimate"]), "ci": ci(r["ci_lower"], r["ci_upper"]),
                     "evalue": sig(r["evalue"]), "evalue_ci": sig(r["evalue_ci"]),
                     "conversion": {"hr-common": "HR, common outcome (sqrt conversion)",
                                    "hr-rare": "HR ~ RR (rare outcome)",
                                    "survival-difference": "risk ratio at t",
                                    "cif-difference": "cumulative incidence ratio at t",
                                    "none": "risk ratio (direct)" if r["measure"] in ("risk_ratio", "cif_ratio")
                                    else ""}.get(r["conversion"], ""),
                     "note": r["note"]})
    return rows


def no_evalue_strategies(result: Any) -> list[str]:
    """Strategies whose rows get no E-value because their contrast is not causal (ever vs never)."""
    from causal_hcc.sensitivity import NOT_CONFOUNDING_NOTE, evalues_for_result

    return list(dict.fromkeys(r["strategy"] for r in evalues_for_result(result) if r["note"] == NOT_CONFOUNDING_NOTE))


def tipping(result: Any, outcome: str | None, chosen: list[str]) -> dict[str, Any]:
    from causal_hcc.sensitivity import tipping_point

    summary, grids = [], []
    for r in records(result, outcome):
        for e in r.estimates:
            if e.measure != "hr" or not (e.estimate > 0 and math.isfinite(e.estimate)):
                continue
            if not ((r.estimands or {}).get(e.estimand) or {}).get("causal", True):
                continue  # ever vs never: its bias is immortal time, not unmeasured confounding
            label = e.strategy or r.strategy
            tp = tipping_point(e.estimate, e.ci_lower, e.ci_upper, hr_ud=(1.5, 2.0, 3.0, 5.0))

            def pct(v: Any) -> str:
                return "not reachable" if v is None else f"{100 * v:.0f} pp"
            summary.append({"strategy": label, "hr": sig(e.estimate), "ci": ci(e.ci_lower, e.ci_upper),
                            **{f"p{i}": pct(v) for i, v in enumerate(tp["tipping_difference"])},
                            **{f"c{i}": pct(v) for i, v in enumerate(tp["tipping_difference_ci"])}})
            if label in chosen:
                full = tipping_point(e.estimate, e.ci_lower, e.ci_upper)
                cells = []
                for i, g in enumerate(full["hr_ud"]):
                    row = []
                    for j, _ in enumerate(full["prevalence_difference"]):
                        a, lim = full["adjusted_hr"][i][j], full["adjusted_ci_limit"][i][j]
                        mark = " *" if full["moves_point_to_null"][i][j] else (
                            " +" if full["moves_ci_to_null"][i][j] else "")
                        row.append(f"{sig(a)} ({sig(lim)}){mark}")
                    cells.append({"hr_ud": sig(g), "cells": row})
                grids.append({"strategy": label, "hr": sig(e.estimate), "ci": ci(e.ci_lower, e.ci_upper),
                              "direction": full["direction"],
                              "diffs": [f"{100 * d:.0f} pp" for d in full["prevalence_difference"]], "rows": cells})
    return {"summary": summary, "grids": grids, "hr_ud": ["1.5", "2", "3", "5"]}


def build(ctx: Any) -> dict[str, Any]:
    from causal_hcc.report import figures as F

    result = ctx.result
    sens = dict((result.extras or {}).get("sensitivity") or {})
    dag = sens.get("dag") if isinstance(sens.get("dag"), dict) else None
    dag_fig = None
    if dag:
        dag_fig = ctx.figs.draw("dag", "Causal graph", 7.5, 4.6,
                                lambda fig: (fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.12),
                                             F.plot_dag(dag, fig.add_subplot(111), names=ctx.names)))
    refuters = []
    for rf in sens.get("refuters") or []:
        if not isinstance(rf, dict):
            continue
        o, x = rf.get("original") or {}, rf.get("refuted") or {}
        refuters.append({"refuter": str(rf.get("refuter", "")).replace("_", " "), "strategy": rf.get("strategy", ""),
                         "measure": MEASURE_NAMES.get(rf.get("measure"), rf.get("measure", "")),
                         "original": f"{sig(o.get('estimate'))} ({ci(o.get('ci_lower'), o.get('ci_upper'))})",
                         "refuted": f"{sig(x.get('estimate'))} ({ci(x.get('ci_lower'), x.get('ci_upper'))})",
                         "passed": {True: "passed", False: "FAILED", None: "not judged"}.get(rf.get("passed"), ""),
                         "verdict": rf.get("verdict", ""), "semantics": rf.get("semantics", "")})
    recs = [r for r in records(result, ctx.outcome)
            if any(((r.estimands or {}).get(e.estimand) or {}).get("causal", True) for e in r.estimates)]
    chosen = [recs[0].strategy] if recs else []  # the first strategy with a causal contrast gets the full grid
    if refuters and refuters[0]["strategy"] not in chosen:
        chosen.append(refuters[0]["strategy"])
    ev = fold_repeats(evalue_rows(result), ("outcome", "measure", "time", "estimate", "ci", "evalue", "evalue_ci"))
    primary = [r for r in ev if r["outcome"] == ctx.outcome and r["measure"] == "HR"]
    rest = [r for r in ev if r not in primary]
    tp = tipping(result, ctx.outcome, chosen)
    tp["summary"] = fold_repeats(tp["summary"], tuple(k for k in tp["summary"][0] if k != "strategy")) \
        if tp["summary"] else []
    tp["columns"], tp["constant"] = informative_columns(tp["summary"], len(tp["hr_ud"]))
    return {"evalues": primary, "evalues_more": rest, "no_evalue": no_evalue_strategies(result), "tipping": tp,
            "dag": dag,
            "dag_figure": dag_fig, "refuters": refuters}


def fold_repeats(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows whose numbers are the same (the same estimate reported by two strategies) folded into one, the
    strategies joined ('paper(univariate), naive')."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        k = tuple(str(r.get(x)) for x in keys)
        if k in out:
            out[k]["strategy"] = f"{out[k]['strategy']}, {r['strategy']}"
        else:
            out[k] = dict(r)
    return list(out.values())


def informative_columns(rows: list[dict[str, Any]], n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The tipping-point columns (point p0..; CI limit c0..) that differ between rows; the constant ones are
    named in a sentence instead of a column of identical cells ('0 pp' everywhere)."""
    cols, constant = [], []
    for kind, label in (("p", "point"), ("c", "CI limit")):
        for i in range(n):
            key = f"{kind}{i}"
            if not any(key in r for r in rows):
                continue
            vals = {r.get(key) for r in rows}
            if len(rows) > 1 and len(vals) == 1:
                constant.append(f"{label} at HR_UD {['1.5', '2', '3', '5'][i] if i < 4 else i}: {next(iter(vals))} "
                                "for every strategy")
            else:
                cols.append({"key": key, "label": label, "i": i})
    return cols, constant
