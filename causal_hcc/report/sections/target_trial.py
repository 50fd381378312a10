"""Target-trial specification: one column per design, the protocol items of Hernán & Robins (2016) and
the TARGET statement (Cashin et al. 2025), generated from each design's options and its estimands.

References
----------
Hernán MA, Robins JM. Using big data to emulate a target trial when a randomized trial is not available.
Am J Epidemiol 2016;183:758-64.
Cashin AG et al. Transparent reporting of observational studies emulating a target trial: the TARGET
statement. BMJ 2025;390:e087179.
"""
from __future__ import annotations

from typing import Any

from causal_hcc.estimands import CONTRASTS
from causal_hcc.report._fmt import short_estimand, time_text
from causal_hcc.report._labels import treatment_column

ITEMS: tuple[tuple[str, str], ...] = (
    ("eligibility", "Eligibility"),
    ("strategies", "Treatment strategies"),
    ("assignment", "Assignment"),
    ("time_zero", "Time zero"),
    ("start", "Follow-up start"),
    ("end", "Follow-up end"),
    ("outcome", "Outcome"),
    ("contrast", "Causal contrast"),
    ("estimand", "Estimand"),
    ("analysis", "Analysis"),
)

ASSIGNMENT = {
    "baseline": "not randomised; classified at time zero by a treatment that came later (ever vs never "
                "treated): the arms are defined by the future",
    "landmark": "not randomised; classified at the landmark by treatment received by then",
    "time_varying": "not randomised; treatment status switches on at its start (time-dependent exposure)",
    "sequential_trials": "not randomised; at each trial start, those starting treatment then vs those not (yet) "
                         "treated",
    "clone_censor": "every eligible patient is cloned into both strategies at time zero (arms identical at "
                    "baseline); confounding of treatment start handled by the censoring weights",
}
END_EXTRA = {
    "clone_censor": "; a clone is censored when it deviates from its strategy (artificial censoring, "
                    "inverse-probability-of-censoring weighted)",
}
ADJ_WORDS = {"none": "no adjustment", "paper": "the published models (univariate screen, multivariable Cox)",
             "multivariable": "multivariable Cox (conditional HR)", "psm": "propensity-score matching",
             "iptw": "inverse-probability-of-treatment weighting", "gformula": "g-formula (standardisation)",
             "aiptw": "augmented IPW (doubly robust)"}


def _values(opts: list[dict[str, Any]], key: str) -> str:
    vals = list(dict.fromkeys(time_text(o.get(key)) for o in opts if o.get(key) is not None))
    return ", ".join(vals)


def build(ctx: Any) -> dict[str, Any] | None:
    result, unit = ctx.result, ctx.unit
    spec = result.spec or {}
    roles = spec.get("roles") or {}
    # (a role given as a date has no time column: "None" must never reach the page)
    treatment = treatment_column(spec)
    time_col = roles.get("time") or roles.get("end_date") or "time"
    origin_col = roles.get("time") or roles.get("start_date") or "time"
    resolved = {s.get("label"): s for s in spec.get("resolved_strategies") or [] if isinstance(s, dict)}
    outcomes = list(dict.fromkeys(r.outcome for r in result.records))
    out_cols = [f"{roles.get('outcome') or 'os'}: {roles.get('event') or 'event'} at {time_col}"]
    for k, o in (spec.get("outcomes") or {}).items():
        if isinstance(o, dict):
            out_cols.append(f"{k}: {o.get('event', '')} at {o.get('time', '')}")
    est_spec = spec.get("estimands") or {}
    measures = ["hazard ratio"]
    if est_spec.get("survival_at"):
        measures.append("survival differences at " + ", ".join(time_text(t) for t in est_spec["survival_at"])
                        + f" {unit}")
    if est_spec.get("rmst_tau"):
        measures.append(f"RMST difference to {time_text(est_spec['rmst_tau'])} {unit}")
    designs: dict[str, dict[str, Any]] = {}
    for r in result.records:
        if r.error:
            continue
        d = designs.setdefault(r.design, {"records": [], "estimands": {}, "opts": [], "adjustments": [],
                                          "variance": []})
        d["records"].append(r)
        for lab, e in (r.estimands or {}).items():
            d["estimands"].setdefault(lab, e)
        o = (resolved.get(r.strategy) or {}).get("design_options") or {}
        if o not in d["opts"]:
            d["opts"].append(o)
        if r.adjustment not in d["adjustments"]:
            d["adjustments"].append(r.adjustment)
        for e in r.estimates:
            if e.variance_method not in d["variance"] and e.variance_method != "none":
                d["variance"].append(e.variance_method)
    if not designs:
        return None
    columns = []
    for name, d in designs.items():
        ests = list(d["estimands"].values())
        params: dict[str, Any] = {}
        for e in ests:
            for k, v in (e.get("params") or {}).items():
                if v is not None:
                    params.setdefault(k, set()).add(time_text(v) if isinstance(v, (int, float)) else str(v))
        L = _values(d["opts"], "landmark") or ", ".join(sorted(params.get("landmark", [])))
        G = _values(d["opts"], "grace") or ", ".join(sorted(params.get("grace", [])))
        ef = ", ".join(sorted({str(o.get("require_event_free")) for o in d["opts"] if o.get("require_event_free")}))
        ef_text = f" and free of {ef} (progression)" if ef else ""
        pops = list(dict.fromkeys(e.get("population") for e in ests))
        contrasts = list(dict.fromkeys(e.get("contrast") for e in ests))
        causal = all(e.get("causal", True) for e in ests) if ests else True
        if name == "landmark":
            elig = f"alive and under follow-up{ef_text} at the landmark L = {L} {unit}"
            t0 = f"the landmark, L = {L} {unit} after the data's time zero"
        elif name == "sequential_trials":
            grid = _values(d["opts"], "grid") or ", ".join(sorted(params.get("grid", [])))
            elig = f"at each trial start: alive, untreated{ef_text}" + (f"; a trial every {grid} {unit}" if grid else "")
            t0 = "each trial's start"
        else:
            elig = "everyone in the cohort at time zero" + (f"{ef_text} (at the decision times)" if ef else "")
            if "all_positivity" in pops:
                elig += "; less covariate levels at which nobody is ever treated (positivity)"
            t0 = f"the data's time zero (the origin of {origin_col})"
        strat_texts = []
        for c in contrasts:
            t = CONTRASTS.get(c, c)
            t = t.replace("landmark L", f"landmark L = {L} {unit}") if L else t
            t = t.replace("grace period G", f"grace period G = {G} {unit}") if G else t
            strat_texts.append(t.split(" (not a causal contrast")[0])
        start = t0
        if name == "baseline":
            start = ("time zero, before treatment: the treated had to survive until treatment to be counted as "
                     "treated (immortal time)")
        elif name == "time_varying":
            start = "time zero; a patient contributes untreated time until treatment starts, treated time after"
        end = "the outcome event, censoring or end of data" + END_EXTRA.get(name, "")
        if name == "sequential_trials" and any(o.get("analysis") == "per_protocol" for o in d["opts"]):
            end += "; per protocol: censored when a patient deviates from the trial arm (IPC weighted)"
        contrast = "; ".join(dict.fromkeys(s for s in strat_texts))
        scales = list(dict.fromkeys(e.get("scale") for e in ests))
        contrast_text = ("not a causal contrast: " if not causal else "") + ", ".join(
            f"{s} effect" for s in scales if s)
        from causal_hcc.report.figures import design_color

        columns.append({
            "design": name, "color": design_color(name), "strategies": ", ".join(dict.fromkeys(r.strategy for r in d["records"])),
            "items": {
                "eligibility": elig,
                "strategies": contrast,
                "assignment": ASSIGNMENT.get(name, "not randomised"),
                "time_zero": t0, "start": start, "end": end,
                "outcome": "; ".join(o for o in out_cols if o.split(":")[0] in outcomes),
                "contrast": contrast_text or ("not a causal contrast" if not causal else ""),
                "estimand": [short_estimand(e, unit) for e in ests] + ["measures: " + ", ".join(measures)],
                "analysis": [ADJ_WORDS.get(a, a) for a in d["adjustments"]] + [
                    "variance: " + ", ".join(v.replace("_", " ") for v in d["variance"])],
            }, "causal": causal})
    ends = {c["items"]["end"] for c in columns}
    common = [f"Outcome: {columns[0]['items']['outcome']}", "measures: " + ", ".join(measures)]
    if len(ends) == 1:
        common.insert(0, f"Follow-up ends at {next(iter(ends))}")
    for c in columns:
        c["items"]["time_zero_start"] = c["items"]["time_zero"] if c["items"]["start"] == c["items"]["time_zero"] \
            else c["items"]["start"]
        c["items"]["analysis_short"] = "; ".join(ADJ_WORDS.get(a, a) for a in designs[c["design"]]["adjustments"])
        c["items"]["end_short"] = c["items"]["end"]
    compact = [("eligibility", "Eligibility"), ("strategies", "Treatment strategies"),
               ("time_zero_start", "Time zero and start of follow-up"), ("contrast", "Causal contrast"),
               ("analysis_short", "Analysis")]
    if len(ends) > 1:
        compact.insert(3, ("end_short", "Follow-up end"))
    return {"items": ITEMS, "columns": columns, "treatment": treatment, "compact": compact,
            "common": "; ".join(common) + "."}
