"""Findings: the answer first, every sentence computed from the result's numbers.

The question (effect of the treatment on each outcome), the published
estimate, the naive estimate, the estimates of the designs that remove
immortal time grouped by estimand, the truth of each estimand (twin only),
the Monte Carlo bias and coverage when the panel ran, and the audit's most
serious flags. On the digital twin a banner says the cohort is simulated,
with its seed, true effect and unmeasured confounding, and what that can and
cannot tell about real patients.
"""
from __future__ import annotations

import math
from typing import Any

from causal_hcc.report._answer import answer_sentence, naive_sentence
from causal_hcc.report._fmt import est_ci, num, published_text, records, short_estimand, sig
from causal_hcc.report._labels import treatment_column
from causal_hcc.report._truth import covers, truth_of
from causal_hcc.report.sections.audit import serious_flags
from causal_hcc.report.sections.estimates import by_estimand

OUTCOME_WORDS = {"os": "overall survival (os)", "pfs": "progression-free survival (pfs)"}


def _outcome(o: str) -> str:
    return OUTCOME_WORDS.get(o, o)


def _hr(r: Any) -> Any:
    return next((e for e in r.estimates if e.measure == "hr" and math.isfinite(e.estimate) and e.estimate > 0
                 and not (e.strategy or "").endswith("(univariate)")), None)


def _naive(result: Any, outcome: str) -> tuple[Any, Any] | None:
    recs = records(result, outcome)
    for r in recs:
        if r.design == "baseline" and r.adjustment == "none" and _hr(r) is not None:
            return r, _hr(r)
    return None


def twin_banner(result: Any) -> dict[str, Any] | None:
    """The simulated-cohort banner (None for user data)."""
    src = (result.provenance or {}).get("data_source")
    if not isinstance(src, dict) or src.get("source") != "digital twin":
        return None
    p = src.get("twin_params") or {}
    uc = num(p.get("unmeasured_confounding"))
    u_or = num(p.get("u_surgery_log_or"))
    hr = num(p.get("true_hr"))
    treatment = treatment_column(result.spec)
    effect = ("no effect (true HR 1)" if hr == 1 else f"true HR {sig(hr)} on the death hazard from the day of "
              f"{treatment}") if math.isfinite(hr) else "a known effect"
    facts = [f"seed {p.get('seed', '?')}", f"n = {p.get('n', '?')}", f"{treatment}: {effect}"]
    conf = None
    if math.isfinite(uc) and uc != 0:
        conf = (f"an unmeasured confounder (fitness U, not in the data; {sig(uc)} on the log-HR scale per SD"
                + (f", log-OR {sig(u_or)} per SD on {treatment}" if math.isfinite(u_or) and u_or else "")
                + "): no adjustment removes the confounding it causes")
        facts.append(f"unmeasured confounding {sig(uc)} (log-HR per SD)")
    elif math.isfinite(uc):
        conf = "no unmeasured confounder (unmeasured_confounding = 0): measured confounding only"
    return {"facts": facts, "confounding": conf, "seed": p.get("seed"), "true_hr": p.get("true_hr"),
            "unmeasured_confounding": p.get("unmeasured_confounding"),
            "can": "whether each analysis recovers a known effect in a cohort built to reproduce the paper's tables, "
                   "and how large the immortal-time and confounding biases are at this size",
            "cannot": f"the effect of {treatment} in real patients (how {treatment} was chosen and how U acts are "
                      f"assumptions)"}


def _has_competing(result: Any, outcome: str) -> bool:
    from causal_hcc.report.competing_figures import competing_records

    return bool(competing_records(result, outcome))


def _robust_sentence(groups: list[dict[str, Any]], naive_e: Any) -> list[str]:
    es = [row["_e"] for g in groups for row in g["rows"]]
    if not es:
        return ["No design that removes immortal time (landmark, time-varying exposure, sequential trials, "
                "clone-censor-weight) is in the spec."]
    vals = sorted(e.estimate for e in es)
    inc = sum(1 for e in es if math.isfinite(e.ci_lower) and e.ci_lower <= 1 <= e.ci_upper)
    out = [f"The {len(es)} estimates from the designs that remove immortal time answer {len(groups)} different "
           f"causal questions (grouped by estimand below); they range from HR {sig(vals[0])} to "
           f"{sig(vals[-1])}, and {inc} of {len(es)} confidence intervals include 1 (no effect)."]
    if naive_e is not None:
        lower = sum(1 for v in vals if naive_e.estimate < v)
        if lower == len(vals):
            out.append(f"The naive HR ({sig(naive_e.estimate)}) is lower, i.e. more favourable to treatment, "
                       f"than every one of them.")
        else:
            out.append(f"The naive HR ({sig(naive_e.estimate)}) is lower than {lower} of the {len(vals)}.")
    return out


def _mc_sentences(result: Any) -> list[str]:
    mc = (result.extras or {}).get("monte_carlo")
    if not isinstance(mc, dict) or not mc.get("table"):
        return []
    rows = [r for r in mc["table"] if r.get("measure") == "hr" and r.get("outcome") == mc.get("outcome")]
    if not rows:
        return []
    naive = next((r for r in rows if r.get("design") == "baseline" and r.get("adjustment") == "none"), None)
    robust, imprecise = judged_robust(rows)
    out = []
    n = mc.get("replicates_n")
    if naive and math.isfinite(num(naive.get("bias"))):
        cov = num(naive.get("coverage"))
        out.append(f"Over {n} simulated cohorts the naive HR averaged {sig(naive.get('mean_estimate'))} against a "
                   f"truth of {sig(naive.get('truth'))} (bias {sig(naive.get('bias'))} on the log scale)"
                   + (f"; its 95% CI covered the truth in {100 * cov:.0f}% of cohorts" if math.isfinite(cov) else "")
                   + ".")
    if robust:
        b = [abs(num(r["bias"])) for r in robust]
        cov = [num(r.get("coverage")) for r in robust if math.isfinite(num(r.get("coverage")))]
        def span(lo: str, hi: str) -> str:
            return lo if lo == hi else f"{lo} to {hi}"
        out.append(f"The {len(robust)} immortal-time-robust strategies had |bias| {span(sig(min(b)), sig(max(b)))} "
                   f"against their own estimands' truths"
                   + (f", coverage {span(f'{100 * min(cov):.0f}%', f'{100 * max(cov):.0f}%')}" if cov else "") + ".")
    if imprecise:
        out.append(f"Too few simulated cohorts to judge {', '.join(str(r['strategy']) for r in imprecise)}: the Monte "
                   f"Carlo SE of the bias exceeds {MC_JUDGE_MCSE:g} on the log scale, so a bias of "
                   f"{2 * MC_JUDGE_MCSE:g} could not be told from none.")
    return out


#: Monte Carlo SE of the bias (log scale) above which a strategy's bias and coverage are not judged: a
#: bias of twice this (0.05, about 5% on the HR) would not be distinguishable from none at 2 MC SE
MC_JUDGE_MCSE = 0.025


def judged_robust(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(immortal-time-robust rows precise enough to judge, those whose Monte Carlo SE is too large).

    Immortal-time-robust: the row's estimand is causal and has its own truth
    (``truth_kind`` ``"own"``, or ``"given"`` by the user; ever-vs-never rows are judged
    against the estimand the paper claimed, ``"claimed"``) and its design is not the
    baseline one. A row whose ``mcse_bias`` exceeds :data:`MC_JUDGE_MCSE`
    (or is missing) is too imprecise to judge.
    """
    causal = [r for r in rows if r.get("design") != "baseline" and r.get("truth_kind", "own") in ("own", "given")
              and math.isfinite(num(r.get("bias")))]
    ok = [r for r in causal if num(r.get("mcse_bias")) <= MC_JUDGE_MCSE]
    return ok, [r for r in causal if not num(r.get("mcse_bias")) <= MC_JUDGE_MCSE]


def _mc_by_strategy(result: Any, outcome: str) -> dict[str, dict[str, str]]:
    """strategy -> mean HR and CI coverage over the Monte Carlo cohorts (primary outcome)."""
    mc = (result.extras or {}).get("monte_carlo")
    if not isinstance(mc, dict):
        return {}
    out = {}
    for r in mc.get("table") or []:
        if r.get("measure") == "hr" and r.get("outcome") == outcome:
            cov = num(r.get("coverage"))
            out[str(r.get("strategy"))] = {"mean": sig(r.get("mean_estimate")),
                                           "coverage": (f"{100 * cov:.0f}%" + _VERDICT_WORDS.get(_coverage_verdict(r), "")
                                                        if math.isfinite(cov) else "–"),
                                           "low": _coverage_verdict(r) in ("low", "high"),
                                           "interval": str(r.get("variance_method") or "")}
    return out


_VERDICT_WORDS = {"low": " (not valid)", "high": " (conservative)", "uncertain": " (not shown valid)"}


def _coverage_verdict(r: dict[str, Any]) -> str:
    from causal_hcc.report.sections.monte_carlo import _coverage_verdict as verdict

    return verdict(r)


def _which_interval(mc: dict[str, Any] | None, variance: str) -> dict[str, Any] | None:
    """The Monte Carlo cell beside a CI of kind ``variance``: when the simulated cohorts used another
    interval (a bootstrap CI shown, its robust/model Wald interval simulated), the cell names it."""
    if not mc or mc["coverage"] == "–" or not mc.get("interval") or mc["interval"] == variance:
        return mc
    return {**mc, "coverage": f"{mc['coverage']} ({mc['interval']} interval, not the {variance} CI shown)"}


def build(ctx: Any) -> dict[str, Any]:
    from causal_hcc.report.figures import design_color, published_estimates

    result, outcome = ctx.result, ctx.outcome
    spec = result.spec or {}
    treatment = treatment_column(spec, "the treatment")
    outcomes = list(dict.fromkeys(r.outcome for r in result.records))
    coh = result.cohort or {}
    question = (f"What is the effect of {treatment} on {', '.join(_outcome(o) for o in outcomes)}? "
                + (f"{coh['n']} patients, {coh.get('n_treated', '?')} treated at some time during follow-up; "
                   if "n" in coh else "") + f"time in {ctx.unit}.")
    banner = twin_banner(result)
    pubs = [p for p in published_estimates(result) if p["measure"] == "hr"]
    published = [f"{p['label']}: HR {published_text(p)}" + (f" for {p['outcome']}" if p.get("outcome") else "")
                 for p in pubs]
    published_rows = [{"label": p["label"], "hr": published_text(p)} for p in pubs
                      if p.get("outcome") in (None, outcome)]
    per_outcome = []
    for o in outcomes:
        nv = _naive(result, o)
        naive_e = nv[1] if nv else None
        naive_text = None
        if naive_e is not None:
            tr = truth_of(result, naive_e)
            naive_text = (f"The naive analysis ({nv[0].strategy}: treated counted from time zero, ever vs never "
                          f"treated, which is not a causal contrast and credits the months before {treatment} to "
                          f"{treatment}) gives HR {est_ci(naive_e)}.")
            if tr["value"] is not None:
                cv = covers(naive_e, tr["value"])
                what = "the estimand the paper claimed" if tr["kind"] == "claimed" else "its estimand"
                naive_text += (f" The truth of {what} on this twin is {sig(tr['value'])}; the CI "
                               f"{'covers' if cv else 'does not cover'} it.")
        groups = by_estimand(ctx, o, causal_only=True)
        mc = _mc_by_strategy(result, o)
        for g in groups:
            for row in g["rows"]:
                row["color"] = design_color(row["design"])
                row["mc"] = _which_interval(mc.get(row["strategy"]), row["variance"])
        naive_row = None
        if naive_e is not None:
            tr = truth_of(result, naive_e)
            cv = covers(naive_e, tr["value"])
            naive_row = {"strategy": naive_e.strategy or nv[0].strategy, "hr": est_ci(naive_e),
                         "truth": "" if tr["value"] is None else sig(tr["value"]) + (
                             " (claimed)" if tr["kind"] == "claimed" else ""),
                         "covers": {True: "yes", False: "no", None: ""}[cv], "color": design_color("baseline"),
                         "mc": _which_interval(mc.get(naive_e.strategy or nv[0].strategy), naive_e.variance_method),
                         "short": short_estimand((nv[0].estimands or {}).get(naive_e.estimand), ctx.unit)
                         or "ever vs never treated (not a causal contrast)"}
        robust = _robust_sentence(groups, naive_e)
        if naive_e is None and _has_competing(result, o):   # an outcome with competing events has no plain HR
            robust = [f"{o} has competing events: its effects are cumulative incidence differences and ratios, "
                      "subdistribution and cause-specific hazard ratios, each with its estimand, in the section "
                      "'Competing risks: cumulative incidence'."]
        per_outcome.append({"outcome": o, "primary": o == outcome, "naive": naive_text, "naive_row": naive_row,
                            "naive_estimate": est_ci(naive_e) if naive_e is not None else "",
                            "groups": groups, "robust": robust})
    names = ctx.names
    words = names.strategies(result.records)
    for po in per_outcome:
        o = po["outcome"]
        po["name"] = names.outcome(o)
        po["answer"] = answer_sentence(result, o, names) if not (po["naive_row"] is None and _has_competing(
            result, o)) else (f"{names.outcome(o)}: this outcome has competing events; its effects are cumulative "
                              "incidence differences and ratios and subdistribution and cause-specific hazard "
                              "ratios, each with its estimand (appendix: competing risks).")
        nv = _naive(result, o)
        po["naive_sentence"] = naive_sentence(result, o, names, nv[1] if nv else None)
        if po["naive_row"]:
            po["naive_row"]["name"] = words.get(po["naive_row"]["strategy"], po["naive_row"]["strategy"])
        for g in po["groups"]:
            for row in g["rows"]:
                row["name"] = words.get(row["strategy"]) or names.strategy(row["strategy"], row["design"])
    audit = (result.extras or {}).get("audit")
    flags = serious_flags(audit, 3) if isinstance(audit, list) else []
    n_flag = sum(1 for a in audit if isinstance(a, dict) and a.get("verdict") == "flag") if isinstance(audit, list) else 0
    audit_text = (f"The audit recomputed {len(audit)} of the paper's reported statistics from its own tables and "
                  f"flagged {n_flag}; the most serious for the treatment effect:") if isinstance(audit, list) and audit else None
    mc_info = (result.extras or {}).get("monte_carlo") or {}
    question = (f"Does {names.treatment_lower} change {' and '.join(names.outcome_lower(o) for o in outcomes)}? "
                + (f"{coh['n']} patients; {coh.get('n_treated', '?')} had {names.treatment_lower} at some time "
                   f"during follow-up." if "n" in coh else ""))
    return {"forest": summary_forest(ctx), "km": summary_curves(ctx), "treatment": names.treatment_lower,
            "coverage_head": (f"{f'{100 * (1 - result.alpha):g}%'} CI contained the truth, % of "
                              f"{mc_info.get('replicates_n')} simulated cohorts") if isinstance(mc_info, dict) else "",
            "mc_n": mc_info.get("replicates_n") if isinstance(mc_info, dict) else None, "question": question, "banner": banner, "published": published, "published_rows": published_rows,
            "outcomes": per_outcome,
            "monte_carlo": _mc_sentences(result), "audit_text": audit_text, "flags": flags,
            "level": f"{100 * (1 - result.alpha):g}%"}


#: designs whose curves the summary shows beside the naive Kaplan-Meier, in order of preference
KM_PREFERENCE = ("clone_censor", "landmark", "sequential_trials", "time_varying")


def summary_pair(result: Any, outcome: str | None) -> list[Any]:
    """The summary's Kaplan-Meier pair: the naive curves, and those of one design that removes immortal time
    (clone-censor-weight first: both arms from time zero; else an adjusted landmark, sequential trials, ...)."""
    recs = [r for r in records(result, outcome) if r.curves is not None and len(r.curves.table)]
    naive = next((r for r in recs if r.design == "baseline" and r.adjustment == "none"), None)
    other = None
    for d in KM_PREFERENCE:
        cands = [r for r in recs if r.design == d]
        if cands:
            other = next((r for r in cands if r.adjustment != "none"), cands[0]) if d == "landmark" else cands[0]
            break
    return [r for r in (naive, other) if r is not None]


def summary_curves(ctx: Any) -> dict[str, Any] | None:
    """The Kaplan-Meier pair of the summary (a figure item with its caption), or None."""
    from causal_hcc.report import figures as F

    pair = summary_pair(ctx.result, ctx.outcome)
    if not pair:
        return None
    names = ctx.names
    titles = [names.strategy(r.strategy, r.design, r.adjustment) for r in pair]
    h = F.curves_pair_height(pair)
    it = ctx.figs.draw("summary_curves", "Survival by arm", 11.0 if len(pair) == 2 else 6.5, h,
                       lambda fig: F.curves_panels(ctx.result, pair, fig, titles=titles), svg=True)
    if it is None:
        return None
    rule = ctx.disclosure if getattr(ctx, "disclosure", "") else ""
    what = [f"{'Left' if len(pair) == 2 and i == 0 else 'Right' if len(pair) == 2 else 'The panel'}: "
            f"{titles[i]} ({r.strategy}; {r.curves.method})" for i, r in enumerate(pair)]
    return {**it, "caption": f"{names.outcome(ctx.outcome)} by arm. " + "; ".join(what)
            + ". Bands: pointwise confidence intervals."
            + (f" Numbers at risk: {rule}." if rule else "")}


def summary_forest(ctx: Any) -> dict[str, Any] | None:
    """The hazard-ratio forest plot of the primary outcome (every strategy), or None."""
    from causal_hcc.report import figures as F

    result = ctx.result
    from causal_hcc.report._answer import robust_hrs

    keep = [e.strategy for e in robust_hrs(result, ctx.outcome)]
    nv = _naive(result, ctx.outcome)
    if nv is not None:
        keep.insert(0, nv[1].strategy or nv[0].strategy)
    try:
        lay = F.forest_layout(result, "hr", ctx.outcome, include=keep)
    except Exception:  # noqa: BLE001 - nothing to draw
        return None
    if not any(x["kind"] != "head" for x in lay["lines"]):
        return None
    width = 10.5
    h = lay["height"]

    def draw(fig):
        fig.subplots_adjust(**F.forest_margins(lay, width, 9.5))
        F.plot_forest(result, "hr", fig.add_subplot(111), outcome=ctx.outcome, title="", include=keep)

    it = ctx.figs.draw("forest_hr", f"Hazard ratio of {ctx.names.treatment_lower} by strategy", width, h, draw)
    return it
