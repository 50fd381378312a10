"""my_strategies: a causal_hcc plug-in with one adjustment, a stratified Cox model."""
import numpy as np

from causal_hcc.base import Adjustment, Option
from causal_hcc.core.cox import coxph
from causal_hcc.errors import SpecError
from causal_hcc.outcome.effects import analysis_counts
from causal_hcc.results import StrategyOutput, wald_estimate
from causal_hcc.strategies import register_adjustment


class StratifiedCox(Adjustment):
    """Cox HR of treatment with a separate baseline hazard per level of one confounder column.

    References
    ----------
    Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed. Wiley, 2002.
    """

    name = "stratified_cox"
    description = "Cox HR of treatment, baseline hazard stratified by one confounder column."
    references = ("Kalbfleisch JD, Prentice RL. Wiley, 2002.",)
    options = (Option("by", "str", None, "confounder column to stratify on (a column of X, e.g. 'stage=III')"),)

    def fit(self, data, targets):
        by = self.options_["by"]
        if by not in data.confounders:
            raise SpecError(f"stratified_cox: 'by' must be one of {', '.join(data.confounders)}, got {by!r}")
        strata = data.X[:, data.confounders.index(by)]
        fit = coxph(data.stop, data.event, data.treatment[:, None].astype(float), entry=data.start,
                    strata=strata, weights=data.weight)
        hr = wald_estimate("hr", float(np.exp(fit.coef[0])), float(np.sqrt(fit.var[0, 0])), alpha=targets.alpha,
                           log_scale=True, variance_method="model", **analysis_counts(data))
        self.output_ = StrategyOutput(estimates=[hr])
        return self


def register():
    """The entry point: called once when causal_hcc loads its strategies."""
    register_adjustment(StratifiedCox)
