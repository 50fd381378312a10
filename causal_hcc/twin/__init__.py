"""The digital twin of Zhang et al. (2024): a simulated cohort with a known truth.

* :class:`TwinParams` -- every parameter, validated (``TwinParams.from_spec``).
* :func:`simulate_twin` -- one cohort (a DataFrame); :func:`simulate_twin_visits` -- its visits
  table (the performance status at each assessment: the time-varying confounder).
* :func:`truth` -- the true effect of "operate when eligible" vs "never operate" (the paper's claim).
* :func:`estimand_truth` -- the truth of any strategy's own estimand, with its Monte Carlo SE
  (``docs/truth.md``).
* :func:`calibration` -- the twin against the paper's published numbers.
* :func:`resolve` -- the parameters the twin simulates with, re-solved for a non-null effect.
"""
from __future__ import annotations

from causal_hcc.twin.calibration import calibration, cohort_statistics, km_median, published_targets
from causal_hcc.twin.params import BINARY_COVARIATES, TwinParams
from causal_hcc.twin.recalibrate import resolve
from causal_hcc.twin.simulate import (TWIN_COLUMNS, VISIT_COLUMNS, simulate_twin, simulate_twin_visits,
                                      simulate_twin_with_visits, surgery_intercept)
from causal_hcc.twin.truth import cox_binary_hr, estimand_truth, truth

__all__ = [
    "BINARY_COVARIATES", "TWIN_COLUMNS", "TwinParams", "calibration", "cohort_statistics",
    "cox_binary_hr", "estimand_truth", "km_median", "published_targets", "resolve", "simulate_twin",
    "simulate_twin_visits", "simulate_twin_with_visits", "surgery_intercept", "truth", "VISIT_COLUMNS",
]
