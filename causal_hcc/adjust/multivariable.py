"""Outcome regression: Cox on treatment + confounders (conditional HR)."""
from __future__ import annotations

import numpy as np

from causal_hcc.base import Adjustment, DesignData, Targets
from causal_hcc.errors import EstimationError
from causal_hcc.outcome.effects import (OUTCOME_OPTIONS, PENALTY_OPTION, check_outcome_options, estimate_effects,
                                        outcome_kwargs, outcome_label)
from causal_hcc.strategies import register_adjustment


def events_per_variable(data: DesignData, n_params: int) -> float:
    return float(data.event.sum()) / max(n_params, 1)


#: events per model parameter below which a warning is added (Peduzzi et al. 1995)
MIN_EVENTS_PER_VARIABLE = 10.0


def epv_guard(data: DesignData, n_params: int, model: str) -> tuple[dict, list[str]]:
    """Events per variable counting all events and the events of the smaller arm, with a warning.

    The information on the treatment coefficient comes from the events of
    both arms; with few events in one arm (typically the treated) the
    all-events EPV overstates it. Returns diagnostics (``events_per_variable``
    (all events), ``events_per_variable_smaller_arm``, ``events_treated``,
    ``events_untreated``, ``n_parameters``) and at most one warning naming
    the numbers, when either EPV is below :data:`MIN_EVENTS_PER_VARIABLE`.

    References
    ----------
    Peduzzi P et al. Importance of events per independent variable in proportional hazards regression
    analysis II. J Clin Epidemiol 1995;48:1503-10.
    """
    ev = np.asarray(data.event) > 0
    tr = np.asarray(data.treatment) == 1
    e_t, e_u = int(ev[tr].sum()), int(ev[~tr].sum())
    k = max(int(n_params), 1)
    epv = (e_t + e_u) / k
    small = min(e_t, e_u)
    arm = data.arm_names[1] if e_t <= e_u else data.arm_names[0]
    diag = {"events_per_variable": epv, "events_per_variable_smaller_arm": small / k,
            "events_treated": e_t, "events_untreated": e_u, "n_parameters": k}
    warns = []
    if epv < MIN_EVENTS_PER_VARIABLE:
        warns.append(f"few events per variable ({epv:.1f} < 10) in the {model}: estimates may be unstable "
                     f"({small} events in the {arm} arm, {small / k:.1f} per parameter)")
    elif small / k < MIN_EVENTS_PER_VARIABLE:
        warns.append(f"few events in the {arm} arm: {small} for {k} parameters of the {model} "
                     f"({small / k:.1f} per parameter < 10; {epv:.1f} counting all {e_t + e_u} events): the "
                     f"treatment coefficient rests on few events")
    return diag, warns


@register_adjustment
class Multivariable(Adjustment):
    """Multivariable Cox model: treatment + the spec's confounders.

    The hazard ratio is conditional on the confounders (not a marginal
    effect); no survival curves or differences are reported for it.

    References
    ----------
    Cox DR. JRSS B 1972;34:187-220. Peduzzi P et al. J Clin Epidemiol
    1995;48:1503-10 (events per variable).
    """

    name = "multivariable"
    description = "Cox regression on treatment + confounders (conditional HR)."
    references = ("Cox DR. JRSS B 1972;34:187-220.", "Peduzzi P et al. J Clin Epidemiol 1995;48:1503-10.",
                  "Heinze G, Schemper M. Biometrics 2001;57:114-9.")
    options = (PENALTY_OPTION, *OUTCOME_OPTIONS)

    @classmethod
    def check_options(cls, given, options, where):
        check_outcome_options(given, options, where)

    def label(self) -> str:
        o = self.options_
        inner = (", firth" if o["penalty"] else "") + outcome_label(o)
        return f"multivariable({inner[2:]})" if inner else "multivariable"

    def estimand_part(self, measure: str = "hr", row_strategy: str = "") -> dict:
        return {"scale": "conditional" if measure == "hr" else "marginal", "uses_design_covariates": True}

    def fit(self, data: DesignData, targets: Targets) -> "Multivariable":
        o = self.options_
        if data.X.shape[1] == 0:
            raise EstimationError("adjustment 'multivariable' needs confounders; the spec lists none")
        keep = np.ptp(data.X, axis=0) > 0
        X, names = data.X[:, keep], [c for c, k in zip(data.confounders, keep) if k]
        self.output_ = estimate_effects(data, targets, covariates=X, covariate_names=names, penalty=o["penalty"],
                                        **outcome_kwargs(o))
        diag, warns = epv_guard(data, 1 + X.shape[1], "multivariable Cox model")
        self.output_.diagnostics.update(diag)
        dropped = [c for c, k in zip(data.confounders, keep) if not k]
        if dropped:
            self.output_.warnings.append(f"constant confounders left out of the model: {', '.join(dropped)}")
        self.output_.warnings += warns
        return self
