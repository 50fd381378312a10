"""A small synthetic user cohort with arbitrary column names (shared by tests)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_user_frame(n: int = 120, seed: int = 3) -> pd.DataFrame:
    """A user-style cohort: treatment starts after time zero, confounded by 'fit'."""
    rng = np.random.default_rng(seed)
    fit = rng.binomial(1, 0.4, n)
    stage = rng.choice(["I", "II", "III"], n, p=[0.3, 0.4, 0.3])
    age = np.round(rng.normal(60, 8, n), 1)
    p_treat = 1 / (1 + np.exp(-(-1.2 + 1.0 * fit - 0.02 * (age - 60))))
    cand = rng.binomial(1, p_treat)
    delay = rng.gamma(2.0, 1.2, n)
    death = rng.exponential(1 / (0.05 * np.exp(-0.6 * fit + 0.4 * (stage == "III"))), n)
    cens = rng.uniform(6, 48, n)
    t = np.minimum(death, cens)
    ev = (death <= cens).astype(int)
    treated = (cand == 1) & (delay < t)
    t_op = np.where(treated, np.round(delay, 3), np.nan)
    return pd.DataFrame({
        "patient_no": np.arange(1001, 1001 + n), "fu_months": np.round(t, 3) + 0.001, "died": ev,
        "operated": treated.astype(int), "months_to_op": t_op, "fit_pt": fit, "stage": stage, "age_y": age,
        "hospital": rng.integers(1, 6, n),
    })


USER_SPEC = """\
study: user-demo
data:
  path: {path}
roles:
  id: patient_no
  time: fu_months
  event: died
  treatment: operated
  treatment_time: months_to_op
  cluster: hospital
confounders: [fit_pt, stage, age_y]
strategies:
  - paper
  - naive
  - multivariable
estimands: {{survival_at: [12, 24], rmst_tau: 24}}
bootstrap: {{replicates: 20, seed: 1}}
"""
