"""The published analysis, reproduced step by step (Zhang et al. 2024).

1. Univariate Cox model for every candidate variable and the treatment
   (the paper's Tables 2 and 3);
2. a multivariable Cox model on the variables with univariate p below a
   threshold (0.05; the paper's Table 4), treatment counted from time zero;
3. Kaplan–Meier medians and the log-rank test per arm.

The paper labels these hazard ratios "OR"; we call them what they are. The
treatment HR is reported twice: ``paper(univariate)`` (Table 2) and
``paper`` (the multivariable Table 4 model). If the treatment is not
selected by the univariate screen it is still forced into the
multivariable model so that a treatment HR exists (a note says so).
"""
from __future__ import annotations

import math

import numpy as np

from causal_hcc.base import Adjustment, DesignData, Option, Targets
from causal_hcc.core._dist import norm_ppf, norm_sf
from causal_hcc.core.cox import coxph
from causal_hcc.errors import EstimationError
from causal_hcc.adjust.multivariable import epv_guard
from causal_hcc._replicate import in_replicate
from causal_hcc.outcome.effects import (analysis_counts, confounder_terms, estimate_effects, logrank_diagnostics,
                                       ph_test)
from causal_hcc.results import EffectEstimate, wald_estimate
from causal_hcc.strategies import register_adjustment, register_preset


def _cox_rows(data: DesignData, X: np.ndarray, names: list[str], alpha: float, *, ph: dict | None = None
              ) -> list[dict]:
    fit = coxph(data.stop, data.event, X, names=names)
    if fit.infinite:  # the screen leaves out a variable with a monotone likelihood (R would warn)
        raise EstimationError(f"coxph: coefficient of {fit.infinite[0]!r} may be infinite (monotone likelihood)")
    if ph is not None and not in_replicate():
        ph["diagnostics"], ph["warnings"] = ph_test(fit, data.stop, data.event, X, names,
                                                    groups=confounder_terms(data),
                                                    where="paper's multivariable Cox model")
    z = float(norm_ppf(1 - alpha / 2))
    rows = []
    for j, nm in enumerate(names):
        b, se = float(fit.coef[j]), float(fit.se[j])
        rows.append({"variable": nm, "hr": math.exp(b), "ci_lower": math.exp(b - z * se),
                     "ci_upper": math.exp(b + z * se), "p_value": float(2 * norm_sf(abs(b / se))),
                     "coef": b, "se": se})
    return rows


@register_adjustment
class PaperAnalysis(Adjustment):
    """Univariate Cox screen, then multivariable Cox on p < threshold.

    References
    ----------
    Zhang X et al. Surgical treatment improves overall survival of
    hepatocellular carcinoma with extrahepatic metastases after conversion
    therapy: a multicenter retrospective study. Published online 28 April 2024.
    """

    name = "paper"
    description = ("The published analysis: univariate Cox per variable, multivariable Cox on those with "
                   "p < threshold, KM medians and log-rank (treatment counted from time zero).")
    references = ("Zhang X et al. Surgical treatment improves overall survival of hepatocellular carcinoma with "
                  "extrahepatic metastases after conversion therapy: a multicenter retrospective study (2024).",)
    options = (Option("threshold", "float", 0.05, "univariate p-value below which a variable enters the "
                      "multivariable model", low=0.0, high=1.0),)
    incompatible = {
        "time_varying": "the paper's analysis counts treatment from time zero; use adjustment 'multivariable'",
        "sequential_trials": "the paper's analysis is a single-cohort model; use adjustment 'multivariable'",
        "clone_censor": "the paper's analysis is a single-cohort model; use adjustment 'multivariable'",
    }

    def estimand_part(self, measure: str = "hr", row_strategy: str = "") -> dict:
        multivariable = measure == "hr" and not row_strategy.endswith("(univariate)")
        return {"scale": "conditional" if multivariable else "marginal"}

    def fit(self, data: DesignData, targets: Targets) -> "PaperAnalysis":
        opts = self.options_
        if data.event.sum() == 0:
            raise EstimationError(f"strategy 'paper': no events for outcome '{data.outcome}'")
        a = data.treatment.astype(float)
        uni = []
        not_estimable = []
        for j, nm in enumerate(data.confounders):
            col = data.X[:, j]
            if np.ptp(col) == 0:
                not_estimable.append(f"{nm} (constant)")
                continue
            try:
                uni += _cox_rows(data, col[:, None], [nm], targets.alpha)
            except EstimationError as err:  # e.g. monotone likelihood: reported, left out of the screen
                not_estimable.append(f"{nm} ({err})")
        uni_t = _cox_rows(data, a[:, None], ["treatment"], targets.alpha)[0]
        uni.append(uni_t)
        selected = [r["variable"] for r in uni if r["p_value"] < opts["threshold"] and r["variable"] != "treatment"]
        cols = [data.confounders.index(v) for v in selected]
        X = np.column_stack([a] + [data.X[:, j] for j in cols])
        ph: dict = {}
        multi = _cox_rows(data, X, ["treatment"] + selected, targets.alpha, ph=ph)
        common = analysis_counts(data)
        out = estimate_effects(data, targets, hr=False, cluster_role=False, loss_weights=False)
        mt = multi[0]
        out.estimates = [
            wald_estimate("hr", uni_t["hr"], uni_t["se"], alpha=targets.alpha, log_scale=True,
                          variance_method="model", strategy="paper(univariate)", **common),
            wald_estimate("hr", mt["hr"], mt["se"], alpha=targets.alpha, log_scale=True,
                          variance_method="model", **common),
        ] + [e for e in out.estimates if e.measure == "median_difference"]
        out.diagnostics.update({"univariate": uni, "multivariable": multi, "selected": selected,
                                "threshold": opts["threshold"], "not_estimable": not_estimable})
        for ne in not_estimable:
            out.warnings.append(f"univariate Cox not estimable, variable left out of the screen: {ne}")
        if uni_t["p_value"] >= opts["threshold"]:
            out.notes.append("treatment was not selected by the univariate screen; forced into the "
                             "multivariable model so that a treatment HR exists")
        if ph:
            out.diagnostics["ph_test"] = ph["diagnostics"]
            out.warnings += ph["warnings"]
        out.diagnostics["logrank"] = logrank_diagnostics(data)
        diag, warns = epv_guard(data, len(multi), "paper's multivariable model")
        out.diagnostics.update(diag)
        out.warnings += warns
        out.notes.append("the paper printed these hazard ratios as 'OR'; they are hazard ratios from Cox models")
        if getattr(data, "status", None) is not None:   # competing events: the paper's Cox models are cause-specific
            out.estimates = [e.replace(measure="cause_specific_hr") for e in out.estimates if e.measure == "hr"]
            out.notes.append("competing events: the published analysis is reproduced with the event of interest as "
                             "the event and competing events censored, so its hazard ratios are cause-specific")
        cname = (getattr(getattr(data, "cohort", None), "roles", None) or {}).get("cluster")
        if cname:
            out.notes.append(f"the paper's analysis is reproduced as published: its hazard ratios use model-based "
                             f"SEs and ignore the clustering by '{cname}'")
        self.output_ = out
        return self


register_preset("paper", "baseline", "paper",
                "The published analysis reproduced: univariate Cox screen, multivariable Cox on p < 0.05, "
                "KM medians and log-rank, treatment counted from time zero.")
register_preset("multivariable", "baseline", "multivariable",
                "Baseline design + Cox on treatment and the spec's confounders (conditional HR).")
