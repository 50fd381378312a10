"""No adjustment: the arms as the design defines them."""
from __future__ import annotations

from causal_hcc.base import Adjustment, DesignData, Targets
from causal_hcc.outcome.effects import PENALTY_OPTION, estimate_effects, logrank_diagnostics
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
    options = (PENALTY_OPTION,)

    def label(self) -> str:
        return "none(firth)" if self.options_["penalty"] else "none"

    def fit(self, data: DesignData, targets: Targets) -> "NoAdjustment":
        o = self.options_
        # Curves of a time-varying exposure (Simon-Makuch) are descriptive, not a causal
        # contrast of two strategies: no survival/RMST differences are reported for them.
        self.output_ = estimate_effects(data, targets, differences=not data.time_varying, penalty=o["penalty"])
        if not data.time_varying and data.stratum is None:
            lr = logrank_diagnostics(data)
            if lr is not None:
                self.output_.diagnostics["logrank"] = lr
        return self
