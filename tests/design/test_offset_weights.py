"""Censoring weights with a confounder of large offset (calendar year, log-HR 0.5 per year on treatment start).

The Cox model of treatment start predicted from the baseline hazard at covariates = 0: exp(x'b)
overflowed and clone_censor crashed (internal error, NaN weights; issue 18). Its covariates are now
centred; a Cox model's predictions do not depend on a covariate's origin, so year and year - 2000
must give the same estimates (R's coxph, which centres, gives the same on both).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.pipeline import run_analysis


def _frame(shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    year = 2000 + rng.integers(0, 13, n)
    tx = rng.exponential(1 / (0.2 * np.exp(0.5 * (year - 2006))))
    death, cens = rng.exponential(20, n), rng.uniform(5, 40, n)
    t = np.minimum(death, cens)
    treated = tx < t
    return pd.DataFrame({"id": np.arange(n), "T": t, "E": (death <= cens).astype(int), "A": treated.astype(int),
                         "tA": np.where(treated, tx, np.nan), "year": year - shift, "x": rng.normal(size=n)})


@pytest.mark.parametrize("strategy", [{"name": "clone_censor", "grace": 3},
                                      {"design": "sequential_trials", "adjustment": "none",
                                       "analysis": "per_protocol"}])
def test_weights_do_not_depend_on_the_origin_of_a_confounder(strategy):
    spec = {"study": "offset", "roles": {"id": "id", "time": "T", "event": "E", "treatment": "A",
                                         "treatment_time": "tA"},
            "confounders": ["year", "x"], "strategies": [strategy], "estimands": {"survival_at": [12]},
            "bootstrap": {"replicates": 0}}
    raw = run_analysis(spec, data=_frame(0.0)).records[0].estimates
    shifted = run_analysis(spec, data=_frame(2000.0)).records[0].estimates
    assert [e.measure for e in raw] == [e.measure for e in shifted]
    for a, b in zip(raw, shifted):
        assert math.isfinite(a.estimate)
        assert a.estimate == pytest.approx(b.estimate, rel=1e-9)
        assert a.se == pytest.approx(b.se, rel=1e-7, nan_ok=True)
