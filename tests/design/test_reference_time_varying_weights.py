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
    out = _fit(cohort, {"design": "clone_censor", "grace": 10, "censoring_model": "logistic", "censoring_grid": 5,
                        "numerator": "none", "grace_weights": "last_interval"})
    cox = out.diagnostics["cox"]
    assert cox["coef"][0] == pytest.approx(ref["coef"], rel=TOL)
    assert cox["se"][0] == pytest.approx(ref["se"], rel=TOL)
    w = out.diagnostics["design"]["weights"]
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)
    assert w["time_varying_confounders"] == ["L"]
    assert w["treat_arm_model"] == "last decision interval (5, 10]"
    assert any("time-varying confounders (L)" in n for n in out.notes)


@pytest.mark.parametrize("numerator", ["none", "time"])
def test_clone_censor_grace_weights_state_equals_r(cohort, numerator):
    """The default grace_weights (state): every clone treated within grace and alive at G weighs
    1 / P(treated by G | v, L(G))."""
    ref = REF["clone_censor"]["state"]
    if numerator == "time":
        ref = ref["stabilised_time"]
    out = _fit(cohort, {"design": "clone_censor", "grace": 10, "censoring_model": "logistic", "censoring_grid": 5,
                        "numerator": numerator})
    assert out.diagnostics["cox"]["coef"][0] == pytest.approx(ref["coef"], rel=TOL)
    assert out.diagnostics["cox"]["se"][0] == pytest.approx(ref["se"], rel=TOL)
    w = out.diagnostics["design"]["weights"]
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)
    assert w["treat_arm_model"] == "state at 10" and w["grace_weights"] == "state"


@pytest.mark.parametrize("adjustment, key", [("none", "coef"), ("multivariable", "coef_mv")])
def test_per_protocol_sequential_trials_time_varying_cox_equals_r(cohort, adjustment, key):
    ref = REF["sequential_trials"]
    out = _fit(cohort, {"design": "sequential_trials", "adjustment": adjustment, "grid": 5, "window": 20,
                        "analysis": "per_protocol", "numerator": "none"})
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], np.atleast_1d(ref[key]), rtol=TOL)
    np.testing.assert_allclose(cox["se"], np.atleast_1d(ref["se" if key == "coef" else "se_mv"]), rtol=TOL)
    if adjustment == "multivariable":
        assert cox["names"] == ["treatment", "v", "L (trial start)"]
    w = out.diagnostics["design"]["weights"]
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)
    assert w["by_interval"]["time"][0] == 0.0


# ---- stabilised weights (the default): the numerator follows the outcome model ----------------------------------
CC = {"design": "clone_censor", "grace": 10, "censoring_model": "logistic", "censoring_grid": 5,
      "grace_weights": "last_interval"}
ST = {"design": "sequential_trials", "grid": 5, "window": 20, "analysis": "per_protocol"}
TE = {**ST, "censoring_model": "logistic", "censoring_grid": 5}


@pytest.mark.parametrize("adjustment, kind", [("none", "time"), ("multivariable", "baseline")])
def test_clone_censor_stabilised_equals_r(cohort, adjustment, kind):
    ref = REF["clone_censor"][f"stabilised_{kind}"]
    out = _fit(cohort, {**CC, "adjustment": adjustment})
    cox = out.diagnostics["cox"]
    assert cox["coef"][0] == pytest.approx(ref["coef"] if kind == "time" else ref["coef"][0], rel=TOL)
    assert cox["se"][0] == pytest.approx(ref["se"] if kind == "time" else ref["se"][0], rel=TOL)
    w = out.diagnostics["design"]["weights"]
    assert w["numerator"] == kind and w["estimand"] == "stabilised IPCW"
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)


@pytest.mark.parametrize("adjustment, kind, key", [("none", "time", "coef"), ("multivariable", "baseline", "coef_mv")])
def test_per_protocol_stabilised_cox_equals_r(cohort, adjustment, kind, key):
    ref = REF["sequential_trials"][f"stabilised_{kind}"]
    out = _fit(cohort, {**ST, "adjustment": adjustment})
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], np.atleast_1d(ref[key]), rtol=TOL)
    np.testing.assert_allclose(cox["se"], np.atleast_1d(ref["se" if key == "coef" else "se_mv"]), rtol=TOL)
    w = out.diagnostics["design"]["weights"]
    assert w["numerator"] == kind
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)


@pytest.mark.parametrize("adjustment, kind, key", [("none", "none", "coef"), ("none", "time", "coef"),
                                                   ("multivariable", "baseline", "coef_mv"),
                                                   ("multivariable", "none", "coef_mv")])
def test_per_protocol_trialemulation_style_glm_weights_equal_r(cohort, adjustment, kind, key):
    """Pooled logistic (glm) denominator on the person-intervals and glm numerator on the trials' decision records
    (follow-up and trial-period terms, + v and L at the trial start for the multivariable model), as TrialEmulation."""
    ref = REF["trialemulation_style"]["unstabilised" if kind == "none" else f"stabilised_{kind}"]
    entry = {**TE, "adjustment": adjustment}
    if kind == "none":
        entry["numerator"] = "none"
    out = _fit(cohort, entry)
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], np.atleast_1d(ref[key]), rtol=TOL)
    np.testing.assert_allclose(cox["se"], np.atleast_1d(ref["se" if key == "coef" else "se_mv"]), rtol=TOL)
    w = out.diagnostics["design"]["weights"]
    assert w["max"] == pytest.approx(ref["w_max"], rel=TOL)
    if kind != "none":
        # the numerator's coefficients: R's on f, f^2, s, s^2 are ours rescaled (f / F, s / S)
        m = w["numerator_model"]
        assert len(m["coef"]) == len(ref["numerator_model"])
