"""Monotone likelihood (an infinite maximum-likelihood HR) and the Firth-penalised IPTW interval.

Against tests/reference/core_monotone.R: the profile-likelihood interval of an infinite Cox
coefficient (R profiles of coxph(... + offset(b * sep))), and the Firth estimate, profile
penalised-likelihood CI and penalised LR p-value of an IPTW Cox model with Kish-scaled weights
(an independent maximisation in R). Tolerance 1e-6 (achieved ~1e-9).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.adjust.iptw import IPTW
from causal_hcc.adjust.multivariable import Multivariable
from causal_hcc.adjust.none import NoAdjustment
from causal_hcc.base import DesignData, Targets
from causal_hcc.core.cox import coxph
from causal_hcc.core.monotone import infinite_coef_interval
from causal_hcc.inference import bootstrap_strategy
from tests.core._fixtures import FIXTURES, dataset

REF = json.loads((FIXTURES / "core_monotone.json").read_text())


def design_data(time, event, treatment, X, confounders) -> DesignData:
    n = len(time)
    return DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=np.asarray(time, float),
                      event=np.asarray(event, float), treatment=np.asarray(treatment, np.int8),
                      X=np.asarray(X, float).reshape(n, -1), confounders=list(confounders), patient=np.arange(n),
                      unit=np.arange(n), weight=np.ones(n))


@pytest.fixture(scope="module")
def vet():
    df = dataset("veteran")
    df["sep"] = (df["status"] == 0).astype(int)
    return df


@pytest.mark.parametrize("key, cols", [("sep_karno", ["sep", "karno"]), ("sep", ["sep"])])
def test_profile_interval_of_an_infinite_coefficient_equals_r(vet, key, cols):
    ref = REF["unpenalised"][key]
    X = vet[cols].to_numpy(float)
    fit = coxph(vet["time"], vet["status"], X)
    assert fit.infinite == ("x1",)
    prof = infinite_coef_interval(vet["time"], vet["status"], X, fit.coef)
    assert prof.direction == -1 and prof.lower == -math.inf
    assert prof.upper == pytest.approx(ref["upper"], abs=1e-6)
    assert prof.loglik_sup == pytest.approx(ref["loglik_sup"], abs=1e-6)
    assert prof.lr_null == pytest.approx(ref["lr_null"], abs=1e-6)


def test_infinite_hr_row_has_no_estimate_no_p_and_an_open_profile_interval(vet):
    data = design_data(vet["time"], vet["status"], vet["sep"], vet[["karno"]], ["karno"])
    out = Multivariable().fit(data, Targets()).output_
    hr = out.estimates[0]
    assert math.isnan(hr.estimate) and math.isnan(hr.se) and math.isnan(hr.p_value)
    assert hr.ci_lower == 0.0
    assert math.log(hr.ci_upper) == pytest.approx(REF["unpenalised"]["sep_karno"]["upper"], abs=1e-6)
    assert hr.variance_method == "profile_likelihood"
    assert "open at 0" in hr.note and "no p-value" in hr.note and "penalty: firth" in hr.note
    assert any(n.startswith("HR: no finite estimate") for n in out.notes)
    assert out.diagnostics["monotone_likelihood"]["lr_statistic_hr_1"] == pytest.approx(
        REF["unpenalised"]["sep_karno"]["lr_null"], abs=1e-6)


def test_infinite_hr_row_with_weights_has_no_interval(vet):
    data = design_data(vet["time"], vet["status"], vet["sep"], vet[["karno"]], ["karno"])
    out = IPTW(estimand="ATE").fit(data, Targets(survival_at=(100.0,))).output_
    hr = out.estimates[0]
    assert all(math.isnan(v) for v in (hr.estimate, hr.se, hr.ci_lower, hr.ci_upper, hr.p_value))
    assert hr.variance_method == "none" and "no CI" in hr.note
    # the other measures are estimable (KM per arm): they keep their numbers
    sd = next(e for e in out.estimates if e.measure == "survival_difference")
    assert math.isfinite(sd.estimate) and math.isfinite(sd.ci_lower)


def test_positive_direction_is_open_at_infinity(vet):
    """Events only among the 'treated': the HR runs off to infinity; the interval is [L, inf)."""
    data = design_data(vet["time"], vet["status"], 1 - vet["sep"], np.empty((len(vet), 0)), [])
    out = NoAdjustment().fit(data, Targets()).output_
    hr = out.estimates[0]
    assert math.isnan(hr.estimate) and hr.ci_upper == math.inf
    assert math.log(hr.ci_lower) == pytest.approx(-REF["unpenalised"]["sep"]["upper"], abs=1e-6)
    assert "open at infinity" in hr.note


def test_results_json_and_csv_of_an_infinite_hr(vet, tmp_path):
    from causal_hcc.pipeline import run_analysis

    df = vet.assign(id=np.arange(len(vet)))
    spec = {"study": "mono", "roles": {"id": "id", "time": "time", "event": "status", "treatment": "sep"},
            "confounders": ["karno"], "strategies": ["naive", {"name": "iptw", "estimand": "ATE"}]}
    r = run_analysis(spec, data=df)
    csv = r.to_frame()
    row = csv[(csv["strategy"] == "naive") & (csv["measure"] == "hr")].iloc[0]
    assert pd.isna(row["estimate"]) and pd.isna(row["se"]) and pd.isna(row["p_value"])
    assert row["ci_lower"] == 0.0 and row["ci_upper"] < 1 and row["variance_method"] == "profile_likelihood"
    js = r.to_dict()["records"][0]["estimates"][0]
    assert js["estimate"] is None and js["note"].startswith("no finite estimate")
    back = type(r).from_dict(r.to_dict())
    assert back.records[0].estimates[0].note == js["note"]
    assert "HR not estimable (0.000-0.205)" in repr(r) and "HR not estimable  " in repr(r)


def test_bootstrap_keeps_the_point_row_of_an_infinite_hr(vet):
    from causal_hcc.cohort import Cohort
    from causal_hcc.strategies import resolve

    df = vet.assign(id=np.arange(len(vet)))
    c = Cohort(df, id="id", time="time", event="status", treatment="sep", confounders=["karno"])
    s = resolve({"name": "iptw", "estimand": "ATE"})[0].build()
    point = s.fit(c, "os", Targets())
    res = bootstrap_strategy(s, c, "os", Targets(), point, replicates=10, seed=1)
    hr = res.estimates[0]
    assert math.isnan(hr.estimate) and math.isnan(hr.ci_lower) and math.isnan(hr.p_value)
    assert hr.note.endswith("not bootstrapped (0 of 10 replicates had a finite estimate)")
    assert res.diagnostics["bootstrap"]["failed"] == 10


@pytest.mark.parametrize("arm", ["sep", "trt2"])
def test_firth_iptw_kish_profile_equals_r(vet, arm):
    ref = REF["firth_iptw"][arm]
    data = design_data(vet["time"], vet["status"], vet[arm], vet[["karno"]], ["karno"])
    out = IPTW(estimand="ATE", penalty="firth").fit(data, Targets()).output_
    hr = out.estimates[0]
    assert hr.variance_method == "profile_likelihood"
    assert math.log(hr.estimate) == pytest.approx(ref["coef"], abs=1e-6)
    assert math.log(hr.ci_lower) == pytest.approx(ref["ci_lower"], abs=1e-6)
    assert math.log(hr.ci_upper) == pytest.approx(ref["ci_upper"], abs=1e-6)
    assert hr.p_value == pytest.approx(ref["p"], rel=1e-5)
    assert hr.se == pytest.approx(ref["se"], rel=1e-6)
    assert f"Kish effective sample size ({ref['kish_sum']:.1f})" in hr.note
    assert out.diagnostics["firth"]["unpenalised_infinite"] is (arm == "sep")


def test_cause_specific_and_subdistribution_hr_without_treated_events_of_the_cause():
    """Competing risks (issue 21's models): no operated patient dies of the cause of interest, so the
    cause-specific and Fine-Gray HRs have no finite estimate either: the same rows (profile interval for the
    unweighted cause-specific model; none for the censoring-weighted Fine-Gray model)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from competing_data import make_competing_frame

    from causal_hcc.cohort import Cohort
    from causal_hcc.strategies import resolve

    df = make_competing_frame(n=160, seed=5)
    df.loc[(df["operated"] == 1) & (df["cause"] == 1), "cause"] = 0
    c = Cohort(df, id="patient_no", time="fu_months", event="cause", treatment="operated",
               confounders=["fit_pt"], competing=[2])
    out = resolve("naive")[0].build().fit(c, "os", Targets(survival_at=(12.0,)))
    cs = next(e for e in out.estimates if e.measure == "cause_specific_hr")
    assert math.isnan(cs.estimate) and math.isnan(cs.p_value) and cs.ci_lower == 0.0 and cs.ci_upper < 1
    assert cs.variance_method == "profile_likelihood" and cs.note.startswith("no finite estimate")
    fg = next(e for e in out.estimates if e.measure == "subdistribution_hr")
    assert math.isnan(fg.estimate) and math.isnan(fg.ci_lower) and fg.variance_method == "none"
