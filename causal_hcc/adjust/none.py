"""No adjustment: the arms as the design defines them."""
from __future__ import annotations

from causal_hcc.base import Adjustment, DesignData, Targets
from causal_hcc.outcome.effects import (OUTCOME_OPTIONS, PENALTY_OPTION, check_outcome_options, estimate_effects,
                                        logrank_diagnostics, outcome_kwargs, outcome_label)
from causal_hcc.strategies import register_adjustment


@register_adjustment
class NoAdjustment(Adjustment):
    """Compare the arms as they are: Cox HR, Kaplan–Meier per arm, log-rank.

    With the baseline design this is the paper's naive comparison. With a
    design that carries weights (clone-censor IPCW) the weights are used.

    References
    ----------
    Kaplan EL, Meier P. JASA 1958;53:457-81. Cox DR. JRSS B 1972;34:187-220.
    """

    name = "none"
    description = "No confounding adjustment: Cox HR and KM curves of the arms as the design defines them."
    references = ("Kaplan EL, Meier P. JASA 1958;53:457-81.", "Cox DR. JRSS B 1972;34:187-220.")
    options = (PENALTY_OPTION, *OUTCOME_OPTIONS)

    @classmethod
    def check_options(cls, given, options, where):
        check_outcome_options(given, options, where)

    def label(self) -> str:
        o = self.options_
        inner = (", firth" if o["penalty"] else "") + outcome_label(o)
        return f"none({inner[2:]})" if inner else "none"

    def fit(self, data: DesignData, targets: Targets) -> "NoAdjustment":
        o = self.options_
        # Curves of a time-varying exposure (Simon-Makuch) are descriptive, not a causal
        # contrast of two strategies: no survival/RMST differences are reported for them.
        self.output_ = estimate_effects(data, targets, differences=not data.time_varying, penalty=o["penalty"],
                                        **outcome_kwargs(o))
        if not data.time_varying and data.stratum is None:
            lr = logrank_diagnostics(data)
            if lr is not None:
                self.output_.diagnostics["logrank"] = lr
        return self
