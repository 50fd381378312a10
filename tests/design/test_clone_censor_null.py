"""Clone-censor-weight is unbiased under the null at large n.

Twin with no effect of surgery (``true_hr: 1``) and measured confounding only
(``unmeasured_confounding: 0``: the unmeasured fitness then drives candidacy
but not survival), adjusted for the seven covariates that drive death;
eligibility for surgery ends at the first pfs event (progression or death),
as in the twin, where only alive, progression-free candidates are operated.
Every estimand of the clone-censor design is then "no effect", so the mean
log HR over seeds must be 0 within 2 Monte Carlo SEs, for grace periods of
3, 6 and 12 months.

Seeds 0-99 of the slow test (MC SE in brackets), G = 3, 6, 12:

* now: -0.0054 (0.0068), -0.0001 (0.0064), -0.0019 (0.0036);
* before the treat-arm weight at G was fitted on the clones that could be
  censored at G (alive, under follow-up and progression-free at G):
  +0.0327 (0.0067), +0.0513 (0.0061), +0.0353 (0.0031). Operated patients
  who had progressed by G were given part of the weight meant for the
  censored progression-free clones.

The CI version runs seeds 0-3 (about 10 s of CPU); the old weights fail it
at G = 6 (+0.124, MC SE 0.018) and G = 12. The slow one runs 100 seeds and
also checks the issue's target |mean log HR| < 0.02.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.strategies import resolve
from causal_hcc.twin import TwinParams, simulate_twin

CONFOUNDERS = ["portal_vein_invasion", "first_line_effective", "lung_met", "bone_met", "oligometastases",
               "metastatic_sd", "bclc_d"]
GRACES = (3.0, 6.0, 12.0)
N = 20_000


def log_hrs(seed: int, n: int = N, graces=GRACES) -> list[float]:
    """log HR of clone_censor(G, pfs-free) for each G on one null twin cohort."""
    df = simulate_twin(TwinParams(seed=seed, n=n, true_hr=1.0, unmeasured_confounding=0.0))
    cohort = Cohort(df, id="id", time="os_months", event="os_event", treatment="surgery",
                    treatment_time="months_to_surgery", confounders=CONFOUNDERS,
                    outcomes={"pfs": ("pfs_months", "pfs_event")})
    out = []
    for g in graces:
        s = resolve({"name": "clone_censor", "grace": g, "require_event_free": "pfs"})[0].build()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = s.fit(cohort, "os", Targets(survival_at=(12.0,), rmst_tau=24.0)).estimates
        out.append(math.log(next(e for e in est if e.measure == "hr").estimate))
    return out


def summary(values: np.ndarray) -> list[tuple[float, float]]:
    """(mean, Monte Carlo SE) of the log HR per grace period (columns)."""
    return [(float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))) for v in values.T]


def test_null_large_n_ci():
    b = np.array([log_hrs(seed) for seed in range(4)])
    for g, (mean, mcse) in zip(GRACES, summary(b)):
        assert abs(mean) <= 2 * mcse, (g, mean, mcse, b[:, GRACES.index(g)])


@pytest.mark.slow
def test_null_large_n_slow():
    from joblib import Parallel, delayed

    b = np.array(Parallel(n_jobs=2)(delayed(log_hrs)(seed) for seed in range(100)))
    res = summary(b)
    print("\nclone_censor(G, pfs-free), true HR 1, measured confounding only, n = 20,000, 100 seeds")
    for g, (mean, mcse) in zip(GRACES, res):
        print(f"G = {g:g}: mean log HR {mean:+.4f} (MC SE {mcse:.4f})")
    for g, (mean, mcse) in zip(GRACES, res):
        assert abs(mean) <= 2 * mcse and abs(mean) < 0.02, (g, mean, mcse)
