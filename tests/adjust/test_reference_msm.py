"""Adjustment 'msm' against an independent R construction (tests/reference/adjust_msm.R): glm weight models,
stabilised cumulative weights, loss-to-follow-up weights and the weighted coxph with robust SE, to 1e-6."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc import strategies as reg
from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.timeline import attach_visits
from tests.core._fixtures import FIXTURES

REF = json.loads((FIXTURES / "adjust_msm.json").read_text())
TOL = 1e-6


def _cohort(case: str, censored: bool):
    pts = pd.read_csv(FIXTURES / f"adjust_msm_{case}_patients.csv")
    vis = pd.read_csv(FIXTURES / f"adjust_msm_{case}_visits.csv")
    c = Cohort(pts, id="id", time="time", event="event", treatment="treated", treatment_time="treatment_time",
               confounders=["v"])
    return attach_visits(c, vis, id="id", time="time", columns=["L"], censored="lost" if censored else None)


def _fit(cohort, **opts):
    (spec,) = reg.resolve({"design": "time_varying", "adjustment": "msm", "grid": 5, **opts})
    return spec.build().fit(cohort, "os", Targets())


@pytest.mark.parametrize("key, case, censored, opts", [
    ("plain", "plain", False, {}),
    ("plain_time", "plain", False, {"numerator": "time"}),
    ("loss", "loss", True, {}),
])
def test_msm_equals_r(key, case, censored, opts):
    ref = REF[key]
    out = _fit(_cohort(case, censored), **opts)
    wm = out.diagnostics["weight_models"]
    np.testing.assert_allclose(wm["denominator"]["coef"], ref["den"], rtol=TOL, atol=1e-9)
    np.testing.assert_allclose(wm["numerator"]["coef"], np.atleast_1d(ref["num"]), rtol=TOL, atol=1e-9)
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], np.atleast_1d(ref["coef"]), rtol=TOL)
    np.testing.assert_allclose(cox["se"], np.atleast_1d(ref["se"]), rtol=TOL)
    hr = out.estimates[0]
    assert hr.measure == "hr" and math.log(hr.estimate) == pytest.approx(np.atleast_1d(ref["coef"])[0], rel=TOL)
    assert hr.variance_method == "cluster_robust"
    if censored:
        lw = out.diagnostics["loss_weights"]["coef"]
        np.testing.assert_allclose(lw["denominator"], ref["cden"], rtol=TOL, atol=1e-9)
        np.testing.assert_allclose(lw["numerator"], ref["cnum"], rtol=TOL, atol=1e-9)
    w = out.diagnostics["weights"]
    assert w["decision_intervals"] > 0 and w["by_interval"]["time"][0] == 0.0
    assert len(w["by_interval"]["ess"]) == len(w["by_interval"]["mean"]) == 8   # 8 intervals of 5 up to 40
