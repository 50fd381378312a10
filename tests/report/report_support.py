"""A synthetic AnalysisResult with every section the report draws (no fitting)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.results import AnalysisResult, StrategyRecord, SurvivalCurves, wald_estimate

XSS = "<script>alert(1)</script>"


def _curves(rate1: float, rate0: float, weighted: bool = False) -> SurvivalCurves:
    t = np.arange(1.0, 31.0)
    rows = []
    for g, rate, n0 in (("untreated", rate0, 124), ("treated", rate1, 26)):
        s = np.exp(-rate * t)
        se = 0.03 + 0.002 * t
        nr = np.maximum(n0 * np.exp(-(rate + 0.02) * (t - 1)), 0.0)
        rows.append(pd.DataFrame({"time": t, "group": g, "surv": s, "se": se, "ci_lower": np.clip(s - 2 * se, 0, 1),
                                  "ci_upper": np.clip(s + 2 * se, 0, 1),
                                  "n_at_risk": nr if weighted else np.floor(nr)}))
    return SurvivalCurves(pd.concat(rows, ignore_index=True), method="iptw-km" if weighted else "km",
                          variance_method="robust" if weighted else "greenwood")


#: estimand of each synthetic design: (label, Estimand.to_dict()-like dict)
ESTIMANDS = {
    "baseline": ("ever_vs_never|all|t0|marginal",
                 {"population": "all", "contrast": "ever_vs_never", "origin": "time_zero", "scale": "marginal",
                  "causal": False, "params": {}, "notes": ["immortal time is credited to treatment"],
                  "description": "treated at any time vs never treated [not a causal contrast]"}),
    "landmark": ("by_L_vs_not_yet(L={L})|at_risk(L={L})|L|marginal",
                 {"population": "at_risk_L", "contrast": "by_L_vs_not_yet", "origin": "landmark",
                  "scale": "marginal", "causal": True, "params": {"landmark": None}, "notes": [],
                  "description": "treated by L vs not yet, in those at risk at L"}),
    "time_varying": ("structural|all|t0|conditional",
                     {"population": "all", "contrast": "structural", "origin": "time_zero", "scale": "conditional",
                      "causal": True, "params": {}, "notes": [], "description": "structural conditional HR"}),
    "clone_censor": ("within_grace_vs_never(G=6)|all_positivity|t0|marginal",
                     {"population": "all_positivity", "contrast": "within_grace_vs_never", "origin": "time_zero",
                      "scale": "marginal", "causal": True, "params": {"grace": 6}, "notes": [],
                      "description": "treat within 6 vs never"}),
}
#: the synthetic truths per estimand label (hazard ratios); ever-vs-never rows get the paper's claimed 0.7
TRUE_HR = {"by_L_vs_not_yet(L=3)|at_risk(L=3)|L|marginal": 0.75, "by_L_vs_not_yet(L=6)|at_risk(L=6)|L|marginal": 0.8,
           "structural|all|t0|conditional": 0.7, "within_grace_vs_never(G=6)|all_positivity|t0|marginal": 0.72}


def estimand_of(design: str, label: str) -> tuple[str, dict]:
    lab, d = ESTIMANDS[design]
    d = dict(d, params=dict(d["params"]))
    if design == "landmark":
        L = label.split("(")[1].split(")")[0]
        lab = lab.format(L=L)
        d["params"]["landmark"] = float(L)
    return lab, dict(d, label=lab)


def _estimates(label: str, design: str, adj: str, hr: float, se: float, vm: str = "model"):
    kw = dict(strategy=label, design=design, adjustment=adj, outcome="os", n=150, n_treated=26, events=110,
              estimand=estimand_of(design, label)[0])
    out = [wald_estimate("hr", hr, se, log_scale=True, variance_method=vm, **kw)]
    for t, d in ((12, 0.15 * (1 - hr)), (24, 0.2 * (1 - hr))):
        out.append(wald_estimate("survival_difference", d, 0.07, variance_method=vm, time=float(t), **kw))
    out.append(wald_estimate("rmst_difference", 3.0 * (1 - hr), 1.2, variance_method=vm, time=24.0, **kw))
    return out


def _diag(adj: str) -> dict:
    d = {"flow": [["cohort", 150], ["eligible", 150]], "events_per_variable": 8.5}
    if adj in ("iptw", "psm"):
        d["balance"] = {"variables": ["oligometastases", "portal_vein_invasion", XSS],
                        "smd_before": [0.45, -0.2, 0.1], "smd_after": [0.05, 0.12, -0.01],
                        "variance_ratio_before": [1, 1, 1], "variance_ratio_after": [1, 1, 1]}
        d["propensity"] = {"bins": list(np.linspace(0, 1, 11)), "treated": [0, 1, 2, 4, 5, 5, 4, 3, 2, 0],
                           "untreated": [10, 25, 30, 25, 15, 10, 5, 3, 1, 0], "min": 0.04, "max": 0.87,
                           "n_near_0_or_1": 2, "learner": "logistic"}
    if adj == "iptw":
        d["weights"] = {"estimand": "ATE", "min": 1.05, "max": 14.2, "ess_treated": 17.3, "ess_untreated": 110.2,
                        "top5": [14.2, 11.0, 9.8, 7.7, 6.1], "n_truncated": 0, "n_trimmed": 0,
                        "bins": list(np.linspace(1, 15, 8)), "counts": [90, 30, 15, 8, 4, 2, 1]}
    if adj == "psm":
        d["matching"] = {"matched_treated": 24, "unmatched_treated": 2, "matched_controls": 24,
                         "caliper_sd": 0.2, "ratio": 1}
    return d


def make_result(truth: bool = True) -> AnalysisResult:
    specs = [("naive", "baseline", "none", 0.188, 0.59, False),
             ("paper", "baseline", "paper", 0.195, 0.59, False),
             ("iptw(ATE)", "baseline", "iptw", 0.45, 0.45, True),
             ("psm", "baseline", "psm", 0.5, 0.5, False),
             ("landmark(3)", "landmark", "none", 0.5, 0.45, False),
             ("landmark(6)", "landmark", "none", 0.62, 0.47, False),
             ("landmark(3)+iptw(ATE)", "landmark", "iptw", 0.6, 0.5, True),
             ("landmark(6)+iptw(ATE)", "landmark", "iptw", 0.7, 0.52, True),
             ("time_varying", "time_varying", "none", 0.7, 0.4, False),
             (XSS, "clone_censor", "none", 0.8, 0.5, True)]
    recs = []
    for label, design, adj, hr, se, w in specs:
        vm = "robust" if w else "model"
        elab, edict = estimand_of(design, label)
        r = StrategyRecord(label, design, adj, "os", _estimates(label, design, adj, hr, se, vm),
                           _curves(0.03, 0.06, weighted=w), _diag(adj),
                           warnings=["ESS < 20 in the treated arm"] if adj == "iptw" else [],
                           notes=["SE treats weights as fixed"] if w else [], estimands={elab: edict})
        if design == "landmark":
            r.diagnostics["design"] = {"landmark": float(label.split("(")[1].split(")")[0])}
        if truth:  # every row judged against its own estimand's truth (the shape the pipeline attaches)
            r.estimands[elab]["truth"] = {
                "kind": "claimed" if design == "baseline" else "own", "defined": True,
                "hr": 0.7 if design == "baseline" else TRUE_HR[elab],
                "survival_difference": {"12": 0.06, "24": 0.08}, "rmst_difference": {"24": 1.1}}
        recs.append(r)
    recs.append(StrategyRecord("gformula", "baseline", "gformula", "os", [], error="no events in an arm"))
    spec = {"study": XSS, "roles": {"treatment": "surgery", "event": "os_event"},
            "confounders": ["oligometastases", XSS],
            "strategies": ["naive", "paper", {"name": "iptw", "estimand": "ATE"}],
            "estimands": {"survival_at": [12, 24], "rmst_tau": 24},
            "bootstrap": {"replicates": 200, "seed": 1}, "time_unit": "months",
            "resolved_strategies": [{"label": s[0], "design": s[1], "adjustment": s[2]} for s in specs]}
    table1 = {"arms": ["untreated", "treated"], "n": {"untreated": 124, "treated": 26}, "min_cell": 0,
              "suppressed": 0, "rows": [
                  {"variable": "oligometastases", "level": None, "kind": "binary",
                   "text": {"untreated": "28 (22.6%)", "treated": "12 (46.2%)"}, "smd": 0.51},
                  {"variable": XSS, "level": None, "kind": "continuous",
                   "text": {"untreated": "60 (52-66)", "treated": "58 (50-63)"}, "smd": -0.2}]}
    res = AnalysisResult(
        study=XSS, spec=spec, records=recs,
        cohort={"n": 150, "n_treated": 26, "events": {"os": 110}, "table1": table1, "time_unit": "months"},
        truth={"hr": 0.7, "survival_difference": {"12": 0.06, "24": 0.08}, "rmst_difference": {"24": 1.1}}
        if truth else None,
        provenance={"spec_hash": "abc123", "data_hash": "f" * 64, "seed": 1,
                    "data_source": {"source": "digital twin",
                                    "twin_params": {"seed": 2030, "n": 150, "true_hr": 1.0,
                                                    "unmeasured_confounding": 0.405465, "u_surgery_log_or": 0.3}}, "versions": {"python": "3.11", "numpy": "2"},
                    "date": "2025-01-01T00:00:00+00:00"},
        warnings=[f"column {XSS} has few levels"],
        extras={"published": {"hr": [{"label": "univariate (Table 3)", "estimate": 0.188, "ci": [0.059, 0.602]},
                                     {"label": "multivariable (Table 4)", "estimate": 0.195, "ci": [0.061, 0.626]}]},
                "audit": [{"statistic": "median OS", "reported": "16.5", "recomputed": "16.4", "verdict": "ok"}],
                "sensitivity": {"refuters": [{"refuter": "placebo_treatment", "strategy": "time_varying",
                                              "measure": "hr", "original": {"estimate": 0.7, "ci_lower": 0.3,
                                                                            "ci_upper": 1.5},
                                              "refuted": {"estimate": 1.02, "ci_lower": 0.5, "ci_upper": 2.0},
                                              "passed": True, "verdict": "Passed: the effect vanishes."}],
                                "dag": None},
                "monte_carlo": monte_carlo_extras()})
    return res


def monte_carlo_extras() -> dict:
    """A small synthetic Monte Carlo panel (the shape ``pipeline.monte_carlo_panel`` stores)."""
    rng = np.random.default_rng(3)
    table, reps = [], []
    for label, design, adj, mean, truth, cov in (("naive", "baseline", "none", 0.63, 1.0, 0.65),
                                                  ("landmark(3)", "landmark", "none", 0.92, 0.95, 0.94),
                                                  (XSS, "clone_censor", "none", 0.99, 1.0, math.nan)):
        v = np.exp(rng.normal(math.log(mean), 0.3, 20))
        reps += [{"strategy": label, "design": design, "measure": "hr", "estimate": float(x)} for x in v]
        table.append({"strategy": label, "design": design, "adjustment": adj, "outcome": "os", "measure": "hr",
                      "time": None, "k": 0, "truth": truth, "mean_estimate": mean,
                      "bias": math.log(mean) - math.log(truth), "mcse_bias": 0.06, "empirical_se": 0.3,
                      "model_se": 0.28, "coverage": cov, "n_failed": 0, "n_replicates": 20,
                      "estimand": estimand_of(design, label)[0]})
    return {"replicates_n": 20, "seed": 2031, "outcome": "os", "table": table, "replicates": reps,
            "needs_bootstrap": {XSS: True}, "failures": {}}


@pytest.fixture(scope="session")
def synthetic_result() -> AnalysisResult:
    return make_result()
