"""Methods (generated from the spec and the records, with references) and limitations (from the diagnostics,
the estimands' notes and, on the twin, what the simulation holds)."""
from __future__ import annotations

import math
from typing import Any

from causal_hcc.disclosure import count_positive
from causal_hcc.report._fmt import sig, time_text
from causal_hcc.report._labels import treatment_column

REFERENCES = {
    "evalue": "VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the E-value. "
              "Ann Intern Med 2017;167:268-274.",
    "hrconv": "VanderWeele TJ. Optimal approximate conversions of odds ratios and hazard ratios to risk ratios. "
              "Biometrics 2020;76:746-752.",
    "lin": "Lin DY, Psaty BM, Kronmal RA. Assessing the sensitivity of regression results to unmeasured "
           "confounders in observational studies. Biometrics 1998;54:948-963.",
    "dowhy": "Sharma A, Kiciman E. DoWhy: an end-to-end library for causal inference. arXiv:2011.04216, 2020.",
    "suissa": "Suissa S. Immortal time bias in pharmaco-epidemiology. Am J Epidemiol 2008;167:492-499.",
    "austin": "Austin PC. Balance diagnostics for comparing the distribution of baseline covariates between "
              "treatment groups in propensity-score matched samples. Stat Med 2009;28:3083-3107.",
    "hernan": "Hernan MA, Robins JM. Using big data to emulate a target trial when a randomized trial is not "
              "available. Am J Epidemiol 2016;183:758-764.",
    "target": "Cashin AG et al. Transparent reporting of observational studies emulating a target trial: the "
              "TARGET statement. BMJ 2025;390:e087179.",
    "morris": "Morris TP, White IR, Crowther MJ. Using simulation studies to evaluate statistical methods. "
              "Stat Med 2019;38:2074-2102.",
    "rubin": "Rubin DB. Multiple Imputation for Nonresponse in Surveys. New York: Wiley; 1987.",
    "barnard": "Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation. "
               "Biometrika 1999;86:948-955.",
    "white": "White IR, Royston P. Imputing missing covariate values for the Cox model. Stat Med 2009;28:1982-1998.",
    "peduzzi": "Peduzzi P, Concato J, Feinstein AR, Holford TR. Importance of events per independent variable in "
               "proportional hazards regression analysis. J Clin Epidemiol 1995;48:1503-1510.",
}


def reference_key(text: str) -> tuple[str, str, str]:
    """(first author's surname without accents, lower case; year; volume or ''): 'Suissa S. Am J Epidemiol
    2008;167:492-9.' and 'Suissa S. Immortal time bias ... 2008;167:492-499.' are one reference."""
    import re
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    first = (re.match(r"\s*([A-Za-z'\-]+)", plain) or re.match(r"(.*)", plain)).group(1).lower()
    year = re.search(r"\b(1[89]\d\d|20\d\d)\b", plain)
    vol = re.search(r"\b(?:1[89]\d\d|20\d\d)\s*;\s*(\d+)", plain)
    return first, year.group(1) if year else plain.strip().lower(), vol.group(1) if vol else ""


def methods(result: Any) -> dict[str, Any]:
    """Methods paragraphs generated from the spec and the records, with references."""
    from causal_hcc import strategies as reg

    try:
        reg.load()
    except Exception:  # noqa: BLE001 - a broken plug-in must not stop the report
        pass
    spec = result.spec or {}
    recs = result.records
    designs = list(dict.fromkeys(r.design for r in recs))
    adjs = list(dict.fromkeys(r.adjustment for r in recs))
    refs: list[str] = []
    keys: list[tuple[str, str]] = []

    def ref(text: str) -> int:
        """The number of a reference, listed once: two citations of one work (same first author and year,
        written differently) share it, the fuller text kept."""
        k = reference_key(text)
        same = [i for i, x in enumerate(keys) if x[:2] == k[:2] and (x[2] == k[2] or not x[2] or not k[2])]
        if same:
            i = same[0]
            if len(text) > len(refs[i]):
                refs[i] = text
            return i + 1
        keys.append(k)
        refs.append(text)
        return len(refs)

    def describe(kind: str, name: str) -> str:
        table = reg.DESIGNS if kind == "design" else reg.ADJUSTMENTS
        cls = table.get(name)
        if cls is None:
            return name
        cites = "".join(f"[{ref(r)}]" for r in getattr(cls, "references", ()) or ())
        desc = (getattr(cls, "description", "") or "").strip().rstrip(".")
        return f"{name} ({desc}){cites}" if desc else f"{name}{cites}"

    paras = []
    conf = spec.get("confounders") or []
    n_s = len({r.strategy for r in recs})
    paras.append(f"We estimated the effect of {treatment_column(spec, 'the treatment')} on "
                 f"{', '.join(dict.fromkeys(r.outcome for r in recs))} under {n_s} analysis strategies, each combining "
                 f"a design (where follow-up starts and who counts as treated) with an adjustment (how the arms are "
                 f"made comparable). Designs: {'; '.join(describe('design', d) for d in designs)}. "
                 f"Adjustments: {'; '.join(describe('adjustment', a) for a in adjs)}.")
    paras.append(f"Each design is specified as the emulation of a target trial (eligibility, treatment strategies, "
                 f"assignment, time zero, follow-up, outcome, causal contrast, estimand, analysis) "
                 f"[{ref(REFERENCES['hernan'])}][{ref(REFERENCES['target'])}]; each estimate names its estimand "
                 f"(population, contrast, time origin, scale). Counting patients as treated from time zero when "
                 f"treatment came later creates immortal time [{ref(REFERENCES['suissa'])}].")
    if conf:
        paras.append(f"Confounders: {', '.join(map(str, conf))}.")
    mc = (result.extras or {}).get("monte_carlo")
    if isinstance(mc, dict) and mc.get("table"):
        paras.append(f"Monte Carlo: {mc.get('replicates_n')} cohorts simulated from the digital twin (seeds "
                     f"{mc.get('seed')} onwards) were analysed with every strategy; bias (log scale for HRs), "
                     f"empirical and model SE and CI coverage are against the truth of each strategy's own "
                     f"estimand [{ref(REFERENCES['morris'])}].")
    est = spec.get("estimands") or {}
    targets = ["hazard ratios (Cox model)"]
    if est.get("survival_at"):
        targets.append(f"survival differences at {', '.join(time_text(t) for t in est['survival_at'])} "
                       f"{spec.get('time_unit', '')}".rstrip())
    if est.get("rmst_tau"):
        targets.append(f"restricted mean survival time differences up to {time_text(est['rmst_tau'])} "
                       f"{spec.get('time_unit', '')}".rstrip())
    paras.append("Effect measures: " + "; ".join(targets) + " (treated minus untreated).")
    vm: dict[str, list[str]] = {}
    for r in recs:
        for e in r.estimates:
            if e.measure == "median_difference" and e.variance_method == "none":
                continue  # medians carry no SE unless bootstrapped: said once below
            vm.setdefault(e.variance_method, [])
            if r.strategy not in vm[e.variance_method]:
                vm[e.variance_method].append(r.strategy)
    vm_names = {"model": "model-based", "robust": "robust sandwich", "cluster_robust": "cluster-robust sandwich",
                "influence_function": "influence-function", "bootstrap": "whole-pipeline bootstrap",
                "greenwood": "Greenwood", "rubin": "Rubin's rules (multiple imputation)", "none": "no"}
    if vm:
        parts = [f"{vm_names.get(k, k)} variance for {', '.join(v)}" for k, v in vm.items()]
        boot = spec.get("bootstrap") or {}
        level = f"{100 * (1 - result.alpha):g}%"
        tail = ""
        if "bootstrap" in vm and boot:
            kinds = {"percentile": "percentile", "normal": "normal (estimate ± z × bootstrap SE)",
                     "bca": "bias-corrected and accelerated (BCa)"}
            per = {}
            for s in spec.get("resolved_strategies") or []:
                if s.get("label") in vm["bootstrap"]:
                    per[s["label"]] = s.get("bootstrap_ci") or boot.get("ci") or "percentile"
            default = boot.get("ci") or "percentile"
            special = [f"{kinds.get(c, c)} for {lab}" for lab, c in per.items() if c != default]
            tail = (f" Bootstrap: {boot.get('replicates')} replicates resampling patients and re-running the whole "
                    f"pipeline (seed {boot.get('seed')}); {level} bootstrap intervals are {kinds.get(default, default)}"
                    + (f" ({'; '.join(special)})" if special else "") + ", on the log scale for HRs.")
        paras.append("Standard errors: " + "; ".join(parts) + "." + tail
                     + f" Other confidence intervals are {level} Wald intervals (log scale for HRs). Median "
                     "differences are reported without a standard error unless bootstrapped.")
    mi = (result.cohort or {}).get("missing")
    if isinstance(mi, dict) and mi.get("imputed_columns"):
        paras.append(
            f"Missing values of {', '.join(mi['imputed_columns'])} were multiply imputed ({mi.get('m')} data sets) by "
            f"chained equations with predictive mean matching, the imputation models including the other "
            f"confounders, the treatment, the event indicator and the Nelson-Aalen cumulative hazard of every "
            f"outcome [{ref(REFERENCES['white'])}]. Every strategy was fitted on each imputed data set and the "
            f"estimates combined by Rubin's rules [{ref(REFERENCES['rubin'])}] (hazard ratios on the log scale, "
            f"differences on their own scale), with t intervals on Barnard-Rubin degrees of freedom "
            f"[{ref(REFERENCES['barnard'])}]; strategies with bootstrap standard errors were bootstrapped within "
            f"each imputed data set.")
    paras.append(f"Sensitivity to unmeasured confounding was summarised by E-values [{ref(REFERENCES['evalue'])}], "
                 f"converting hazard ratios to risk ratios where the outcome is common "
                 f"[{ref(REFERENCES['hrconv'])}], and by the bias of an unmeasured binary confounder "
                 f"[{ref(REFERENCES['lin'])}].")
    sens = (result.extras or {}).get("sensitivity") or {}
    if sens.get("dag") or sens.get("refuters"):
        paras.append(f"A causal graph and refutation tests followed DoWhy [{ref(REFERENCES['dowhy'])}].")
    versions = (result.provenance or {}).get("versions") or {}
    if versions:
        paras.append("Software: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    return {"paragraphs": paras, "references": refs}


def limitations(result: Any) -> list[str]:
    out = []
    recs = [r for r in result.records if not r.error]
    def unique(names):
        return list(dict.fromkeys(names))

    epv = [(f"{r.strategy} [{r.outcome}]", float(r.diagnostics["events_per_variable"])) for r in recs
           if isinstance(r.diagnostics.get("events_per_variable"), (int, float))
           and float(r.diagnostics["events_per_variable"]) < 10]
    if epv:
        out.append("Few events per variable (< 10) in " + ", ".join(f"{s} ({v:.1f})" for s, v in epv)
                   + ": the outcome model may be overfitted and its SE unreliable (Peduzzi et al. 1995).")
    # counts of a disclosed result are display values ("<5" for 1..4 patients): never compared as numbers
    pos = unique(r.strategy for r in recs if isinstance(r.diagnostics.get("propensity"), dict)
                 and count_positive(r.diagnostics["propensity"].get("n_near_0_or_1")))
    if pos:
        out.append("Positivity: propensity scores near 0 or 1 in " + ", ".join(pos)
                   + "; weights are unstable and estimates lean on few patients.")
    ess = unique(r.strategy for r in recs if isinstance(r.diagnostics.get("weights"), dict)
                 and any(isinstance(r.diagnostics["weights"].get(k), (int, float)) and r.diagnostics["weights"][k] < 20
                         for k in ("ess_treated", "ess_untreated")))
    if ess:
        out.append("Effective sample size below 20 in an arm for " + ", ".join(ess) + ".")
    unm = [(f"{r.strategy} [{r.outcome}]", r.diagnostics["matching"].get("unmatched_treated")) for r in recs
           if isinstance(r.diagnostics.get("matching"), dict)
           and count_positive(r.diagnostics["matching"].get("unmatched_treated"))]
    if unm:
        out.append("Unmatched treated patients (" + ", ".join(f"{s}: {k}" for s, k in unm) + "): the matched "
                   "estimate refers to the treated patients who could be matched, not to all treated (ATT).")
    if any(r.design == "baseline" for r in recs) and (result.spec.get("roles") or {}).get("treatment_time"):
        out.append("Strategies on the baseline design count patients as treated from time zero although "
                   "treatment started later: they are subject to immortal-time bias (Suissa 2008).")
    failed = [r.strategy for r in result.records if r.error]
    if failed:
        out.append("Strategies that failed and are missing from the comparison: " + ", ".join(failed) + ".")
    nt = (result.cohort or {}).get("n_treated")
    if isinstance(nt, (int, float)) and nt < 50:
        out.append(f"Only {int(nt)} treated patients: every estimate is imprecise and small-sample bias is possible.")
    out.append("No analysis can remove confounding by unmeasured factors; the E-values and tipping points show "
               "how strong such a factor would need to be.")
    return out


def twin_limitations(result: Any) -> list[str]:
    """What the digital twin holds that bears on the estimates (issue 10: say what the twin holds)."""
    from causal_hcc.report.sections.findings import twin_banner

    b = twin_banner(result)
    if b is None:
        return []
    out = []
    p = ((result.provenance or {}).get("data_source") or {}).get("twin_params") or {}
    uc = p.get("unmeasured_confounding")
    if isinstance(uc, (int, float)) and uc:
        out.append(f"The simulated cohort includes an unmeasured confounder (fitness, {sig(uc)} on the log-HR scale "
                   f"per SD, also raising the odds of treatment) that is not in the data: no adjustment removes "
                   f"it, so every strategy keeps some confounding bias even where its design is right.")
    designs = {(r.design, r.strategy) for r in result.records}
    if any(d == "time_varying" and "(" not in s for d, s in designs):
        out.append("Plain time_varying (without the progression state) is confounded by progression: "
                   "progression makes treatment impossible and death likely, so only the model adjusted for the "
                   "progression state (adjust_state) targets the structural HR.")
    return out


def build(ctx: Any) -> dict[str, Any]:
    result = ctx.result
    notes = []
    for r in result.records:
        for e in (r.estimands or {}).values():
            for n in e.get("notes") or []:
                text = f"{r.design}: {n}"
                if text not in notes:
                    notes.append(text)
    return {"methods": methods(result), "limitations": limitations(result) + twin_limitations(result),
            "estimand_notes": notes}
