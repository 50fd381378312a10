"""Outcome regression: Cox on treatment + confounders (conditional HR)."""
from __future__ import annotations

import numpy as np

from causal_hcc.base import Adjustment, DesignData, Targets
from causal_hcc.errors import EstimationError
from causal_hcc.outcome.effects import estimate_effects
from causal_hcc.strategies import register_adjustment


def events_per_variable(data: DesignData, n_params: int) -> float:
    return float(data.event.sum()) / max(n_params, 1)


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
    references = ("Cox DR. JRSS B 1972;34:187-220.", "Peduzzi P et al. J Clin Epidemiol 1995;48:1503-10.")

    def estimand_part(self, measure: str = "hr", row_strategy: str = "") -> dict:
        return {"scale": "conditional" if measure == "hr" else "marginal"}

    def fit(self, data: DesignData, targets: Targets) -> "Multivariable":
        self.options_
        if data.X.shape[1] == 0:
            raise EstimationError("adjustment 'multivariable' needs confounders; the spec lists none")
        keep = np.ptp(data.X, axis=0) > 0
        X, names = data.X[:, keep], [c for c, k in zip(data.confounders, keep) if k]
        self.output_ = estimate_effects(data, targets, covariates=X, covariate_names=names)
        epv = events_per_variable(data, 1 + X.shape[1])
        self.output_.diagnostics["events_per_variable"] = epv
        dropped = [c for c, k in zip(data.confounders, keep) if not k]
        if dropped:
            self.output_.warnings.append(f"constant confounders left out of the model: {', '.join(dropped)}")
        if epv < 10:
            self.output_.warnings.append(
                f"few events per variable ({epv:.1f} < 10) in the multivariable Cox model: estimates may be unstable"
            )
        return self
