"""g-formula and AIPTW with a confounder of large offset (calendar year 2000..2012, log-HR 0.5 per year).

exp(lp) at covariates = 0 overflowed: both returned empty estimates with exit 0
(issue 18). Covariates are now centred before every baseline-hazard prediction.
References: tests/reference/adjust_offset.R (riskRegression::ate on the same
model with year - 2000, since riskRegression itself returns NaN on the raw year;
survival::survfit(coxph, newdata) on the raw year).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from causal_hcc.adjust.aiptw import AIPTW
from causal_hcc.adjust.gformula import GFormula
from causal_hcc.base import Targets
from adjust_support import FX, design_from_frame, estimate

TIMES = (5.0, 10.0, 20.0)
CONF = ["year", "x"]


@pytest.fixture(scope="module")
def offset_ref() -> dict:
    with open(os.path.join(FX, "adjust_offset.json"), encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def offset_data():
    d = pd.read_csv(os.path.join(FX, "adjust_offset.csv"))
    return design_from_frame(d, time="time", event="status", treatment="treat", conf=CONF)


def test_the_data_overflow_an_uncentred_prediction(offset_ref):
    assert offset_ref["lp_at_means"] > 709 and offset_ref["predictcox_raw_is_nan"]


@pytest.mark.parametrize("k,t", list(enumerate(TIMES)))
@pytest.mark.parametrize("arm", [0, 1])
def test_gformula_risk_matches_r(offset_data, offset_ref, k, t, arm):
    fit = GFormula().fit(offset_data, Targets(survival_at=TIMES))
    np.testing.assert_allclose(fit.outcome_model_.coef, offset_ref["outcome_cox"]["coef"], rtol=1e-7)
    grid, curves = fit.curves_
    s = curves[arm][np.searchsorted(grid, t, side="right") - 1]
    r = [x for x in offset_ref["gformula"]["meanRisk"] if x["time"] == t and x["treatment"] == str(arm)][0]
    assert 1 - s == pytest.approx(r["estimate"], abs=1e-6)
    assert s == pytest.approx(offset_ref["survfit_raw"][f"surv{arm}"][k], abs=1e-6)
    e = estimate(fit.output_, "survival_difference", t)
    assert math.isfinite(e.estimate)


@pytest.mark.parametrize("t", TIMES)
def test_aiptw_difference_and_se_match_riskregression(offset_data, offset_ref, t):
    fit = AIPTW().fit(offset_data, Targets(survival_at=TIMES))
    r = [x for x in offset_ref["aiptw_known_nuisance"]["diffRisk"] if x["time"] == t][0]
    e = estimate(fit.output_, "survival_difference", t)
    assert e.estimate == pytest.approx(-r["estimate"], abs=1e-6)
    assert e.se == pytest.approx(r["se"], rel=1e-4)


def test_shifting_a_confounder_changes_nothing(offset_data):
    """A Cox model's predictions do not depend on a covariate's origin: year and year - 2000 agree."""
    import dataclasses

    shifted = dataclasses.replace(offset_data, X=offset_data.X - np.array([2000.0, 0.0]))
    for cls in (GFormula, AIPTW):
        a = cls().fit(offset_data, Targets(survival_at=TIMES, rmst_tau=20.0)).output_.estimates
        b = cls().fit(shifted, Targets(survival_at=TIMES, rmst_tau=20.0)).output_.estimates
        for x, y in zip(a, b):
            assert x.measure == y.measure and x.estimate == pytest.approx(y.estimate, abs=1e-9, nan_ok=True)


@pytest.mark.parametrize("cls", [GFormula, AIPTW])
def test_survival_after_the_last_follow_up_time_is_empty_with_a_reason(offset_data, offset_ref, cls):
    """R's ate/predictCox give NA after the last observed time; we carried the last value on (invented follow-up)."""
    assert offset_ref["beyond_last_time_is_na"]
    late = offset_ref["last_time"] + 1
    fit = cls().fit(offset_data, Targets(survival_at=(5.0, late)))
    e = estimate(fit.output_, "survival_difference", late)
    assert math.isnan(e.estimate)
    assert math.isfinite(estimate(fit.output_, "survival_difference", 5.0).estimate)
    assert f"survival difference at {late:g}: not estimable: after the last follow-up time " \
           f"{offset_ref['last_time']:g} (the model's survival curves end there)" in fit.output_.notes
