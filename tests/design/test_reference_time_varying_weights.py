"""Censoring weights with time-varying confounders against an independent R construction
(tests/reference/design_time_varying_weights.R): clone-censor with a pooled logistic treatment-start model and
the grace-period decision at G; per-protocol sequential trials with a time-dependent Cox treatment-start model
and trial-start covariates. Agreement to 1e-6."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from causal_hcc import strategies as reg
from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.timeline import attach_visits
from tests.core._fixtures import FIXTURES

REF = json.loads((FIXTURES / "design_tv_weights.json").read_text())
TOL = 1e-6


@pytest.fixture(scope="module")
def cohort():
    pts = pd.read_csv(FIXTURES / "design_tv_weights_patients.csv")
    vis = pd.read_csv(FIXTURES / "design_tv_weights_visits.csv")
    c = Cohort(pts, id="id", time="time", event="event", treatment="treated", treatment_time="treatment_time",
               confounders=["v"])
    return attach_visits(c, vis, id="id", time="time", columns=["L"])


def _fit(cohort, entry):
    (spec,) = reg.resolve(entry)
    return spec.build().fit(cohort, "os", Targets())


def test_clone_censor_time_varying_logistic_equals_r(cohort):
    ref = REF["clone_censor"]
    out = _fit(cohort, {"design": "clone_censor", "grace": 10, "censoring_model": "logistic", "censoring_grid": 5})
    cox = out.diagnostics["cox"]
    assert cox["coef"][0] == pytest.approx(ref["coef"], rel=TOL)
    assert cox["se"][0] == pytest.approx(ref["se"], rel=TOL)
    w = out.diagnostics["design"]["weights"]
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)
    assert w["time_varying_confounders"] == ["L"]
    assert w["treat_arm_model"] == "last decision interval (5, 10]"
    assert any("time-varying confounders (L)" in n for n in out.notes)


@pytest.mark.parametrize("adjustment, key", [("none", "coef"), ("multivariable", "coef_mv")])
def test_per_protocol_sequential_trials_time_varying_cox_equals_r(cohort, adjustment, key):
    ref = REF["sequential_trials"]
    out = _fit(cohort, {"design": "sequential_trials", "adjustment": adjustment, "grid": 5, "window": 20,
                        "analysis": "per_protocol"})
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], np.atleast_1d(ref[key]), rtol=TOL)
    np.testing.assert_allclose(cox["se"], np.atleast_1d(ref["se" if key == "coef" else "se_mv"]), rtol=TOL)
    if adjustment == "multivariable":
        assert cox["names"] == ["treatment", "v", "L (trial start)"]
    w = out.diagnostics["design"]["weights"]
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)
    assert w["by_interval"]["time"][0] == 0.0
