"""A small synthetic cohort with competing events (shared by the competing-risks tests).

Patients die of cancer (code 1, the event of interest) or of liver failure
(code 2, the competing event); fit patients have lower hazards of both and
are more often operated, some months after time zero. Surgery lowers the
cancer hazard by ``hr_cancer`` and raises the liver-failure hazard by
``hr_liver`` from its date on.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_competing_frame(n: int = 240, seed: int = 5, hr_cancer: float = 0.7, hr_liver: float = 1.3,
                         labels: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fit = rng.binomial(1, 0.4, n)
    stage = rng.choice(["I", "II", "III"], n, p=[0.3, 0.4, 0.3])
    age = np.round(rng.normal(60, 8, n), 1)
    p_treat = 1 / (1 + np.exp(-(-1.0 + 1.0 * fit - 0.02 * (age - 60))))
    cand = rng.binomial(1, p_treat)
    delay = rng.gamma(2.0, 1.2, n)
    h1 = 0.035 * np.exp(-0.6 * fit + 0.4 * (stage == "III"))
    h2 = 0.015 * np.exp(-0.3 * fit + 0.02 * (age - 60))
    # piecewise-constant hazards: before surgery (h), after surgery (h * hr); exponential race
    u1, u2 = rng.exponential(1.0, n), rng.exponential(1.0, n)

    def event_time(u, h, hr):
        t_pre = u / h
        treated = (cand == 1) & (delay < t_pre)
        return np.where(treated, delay + (u - h * delay) / (h * hr), t_pre)

    t1 = event_time(u1, h1, hr_cancer)
    t2 = event_time(u2, h2, hr_liver)
    cens = rng.uniform(6, 48, n)
    t = np.minimum(np.minimum(t1, t2), cens)
    cause = np.where(t == cens, 0, np.where(t1 < t2, 1, 2))
    treated = (cand == 1) & (delay < t)
    t_op = np.where(treated, np.round(delay, 3), np.nan)
    died_any = (cause > 0).astype(int)
    df = pd.DataFrame({
        "patient_no": np.arange(1, n + 1), "fu_months": np.round(t, 3) + 0.001, "cause": cause,
        "died": died_any, "operated": treated.astype(int), "months_to_op": t_op, "fit_pt": fit, "stage": stage,
        "age_y": age, "hospital": rng.integers(1, 6, n),
    })
    if labels:
        df["cause"] = np.array(["alive", "cancer", "liver failure"], dtype=object)[cause]
    return df
