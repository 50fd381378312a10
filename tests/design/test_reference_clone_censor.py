"""Clone-censor-weight against an independent R construction.

Fixtures come from tests/reference/design_clone_censor.R (survival 3.5.3):
on a twin cohort (n = 400, seed 1, measured confounding only) with
eligibility ending at the first pfs event and G = 6, R builds the cloned,
censored rows with ``coxph`` + ``basehaz(centered = FALSE)`` for the
never-treat weights and ``glm(binomial)`` on the clones alive, under
follow-up and progression-free at G for the treat-arm weight, then fits
``coxph(Surv(start, stop, event) ~ arm, weights = w, cluster = patient)``
and the weighted Kaplan–Meier per arm. Six operated patients progress
before G and are alive at G: their weight after G is 1.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.core.km import kaplan_meier
from causal_hcc.strategies import resolve
from causal_hcc.twin import TwinParams, simulate_twin

FIX = Path(__file__).resolve().parents[1] / "reference" / "fixtures"
REF = json.loads((FIX / "design_clone_censor.json").read_text())
CONF = ["portal_vein_invasion", "first_line_effective", "lung_met", "oligometastases", "age"]


@pytest.fixture(scope="module")
def patients() -> pd.DataFrame:
    return pd.read_csv(FIX / "design_clone_censor_patients.csv")


@pytest.fixture(scope="module")
def cohort(patients) -> Cohort:
    return Cohort(patients, id="id", time="os_months", event="os_event", treatment="surgery",
                  treatment_time="months_to_surgery", confounders=CONF, outcomes={"pfs": ("pfs_months", "pfs_event")})


@pytest.fixture(scope="module")
def fitted(cohort):
    s = resolve({"name": "clone_censor", "grace": 6, "require_event_free": "pfs", "numerator": "none"})[0].build()
    with np.errstate(over="ignore"):   # log-log CI of the weighted KM where S is ~0 (not compared here)
        out = s.fit(cohort, "os", Targets(survival_at=(12.0, 24.0)))
    return s.design.data_, out


def test_fixture_is_the_twin_cohort(patients):
    df = simulate_twin(TwinParams(n=400, seed=1, unmeasured_confounding=0.0))
    pd.testing.assert_frame_equal(df[patients.columns].reset_index(drop=True), patients, check_dtype=False)


def test_rows_and_weights_match_r(cohort, fitted):
    d, _ = fitted
    r = pd.read_csv(FIX / "design_clone_censor_rows.csv")
    ours = pd.DataFrame({"patient": np.asarray(cohort.ids)[d.patient], "arm": d.treatment, "start": d.start,
                         "stop": d.stop, "event": d.event, "w": d.weight})
    ours = ours.sort_values(["arm", "patient", "start"]).reset_index(drop=True)
    assert len(ours) == REF["n_rows"] == len(r)
    np.testing.assert_array_equal(ours[["patient", "arm", "event"]].to_numpy(), r[["patient", "arm", "event"]].to_numpy())
    np.testing.assert_allclose(ours[["start", "stop"]].to_numpy(), r[["start", "stop"]].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(ours["w"].to_numpy(), r["w"].to_numpy(), rtol=1e-8)
    treat_after = (ours["arm"] == 1) & (ours["start"] >= 6)
    assert (ours.loc[treat_after, "w"] == 1).sum() > 0          # operated, progressed by G: not reweighted
    assert dict(d.flow)["treat within 6: treated within grace, pfs event by 6 (cannot be censored at G: weight 1)"] \
        == REF["operated_progressed_by_G"] == 6


def test_weighted_cox_and_km_match_r(fitted):
    d, out = fitted
    hr = next(e for e in out.estimates if e.measure == "hr")
    from causal_hcc.core.cox import coxph

    f = coxph(d.stop, d.event, d.treatment[:, None].astype(float), entry=d.start, weights=d.weight,
              cluster=d.patient, robust=True)
    assert float(f.coef[0]) == pytest.approx(REF["hr"]["coef"], abs=1e-7)
    assert float(f.se[0]) == pytest.approx(REF["hr"]["robust_se"], rel=1e-6)
    assert math.log(hr.estimate) == pytest.approx(REF["hr"]["coef"], abs=1e-7)
    # the strategy's own Wald SE is that patient-clustered robust SE (the pipeline's default
    # variance for clone-censor is the bootstrap; fit() alone gives the robust one)
    assert hr.se == pytest.approx(REF["hr"]["robust_se"], rel=1e-6)
    surv = dict(zip(zip(REF["km"]["strata"], REF["km"]["time"]), REF["km"]["surv"]))
    for arm in (0, 1):
        m = d.treatment == arm
        with np.errstate(over="ignore"):
            km = kaplan_meier(d.stop[m], d.event[m], entry=d.start[m], weights=d.weight[m])
        for t in (12, 24):
            assert float(km.at(t)["surv"].iloc[0]) == pytest.approx(surv[(f"arm={arm}", t)], abs=1e-9)


def test_pooled_logistic_censoring_model_matches_r(cohort):
    """``censoring_model: logistic``: R glm on the person-intervals, the
    never-treat weights it implies and the weighted Cox HR. (With
    scikit-learn's L-BFGS at its default tolerance the time coefficients
    were -10.9 and -4.5 here instead of the MLE's +20.0 and -193.)"""
    from causal_hcc.design.clone_censor import clone_censor_data
    from causal_hcc.core.cox import coxph

    ref = REF["logistic"]
    d = clone_censor_data(cohort, "os", 6.0, require_event_free="pfs", censoring_model="logistic", numerator="none")
    assert d.n_rows == ref["n_rows"]
    ids = np.asarray(cohort.ids)
    never = d.treatment == 0
    last = np.r_[d.patient[never][1:] != d.patient[never][:-1], True]
    np.testing.assert_array_equal(ids[d.patient[never][last]], ref["never_last_patient"])
    np.testing.assert_allclose(d.weight[never][last], ref["never_last_weight"], rtol=1e-7)
    f = coxph(d.stop, d.event, d.treatment[:, None].astype(float), entry=d.start, weights=d.weight,
              cluster=d.patient, robust=True)
    assert float(f.coef[0]) == pytest.approx(ref["hr_coef"], abs=1e-7)
    assert float(f.se[0]) == pytest.approx(ref["hr_robust_se"], rel=1e-6)


def test_pooled_logistic_coefficients_match_r(cohort):
    from causal_hcc.design._common import TreatmentHazard, event_time_of, treatment_times

    T = np.asarray(cohort.time("os"), dtype=float)
    m = TreatmentHazard("logistic").fit(T, treatment_times(cohort, "clone_censor"),
                                        event_time_of(cohort, "pfs", "clone_censor"), np.asarray(cohort.X, float))
    assert m.grid_ == pytest.approx(REF["logistic"]["grid"], rel=1e-12) and m.K_ == REF["logistic"]["intervals"]
    np.testing.assert_allclose(m.logit_coef_, REF["logistic"]["coef"], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("adjustment, kind", [("none", "time"), ("multivariable", "baseline")])
def test_stabilised_weights_match_r(cohort, adjustment, kind):
    """The default, stabilised weights (R: the end of design_clone_censor.R): the numerator's risk set does not stop
    at progression; the treat clones alive at G get P(not censored at G | .) after G."""
    ref = REF["stabilised"][kind]
    entry = {"design": "clone_censor", "grace": 6, "require_event_free": "pfs", "adjustment": adjustment}
    s = resolve(entry)[0].build()
    with np.errstate(over="ignore"):
        out = s.fit(cohort, "os", Targets(survival_at=(12.0, 24.0)))
    d = s.design.data_
    assert d.n_rows == ref["n_rows"]
    assert float(d.weight.sum()) == pytest.approx(ref["w_sum"], rel=1e-8)
    assert float(d.weight.max()) == pytest.approx(ref["w_max"], rel=1e-8)
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], np.atleast_1d(ref["coef"]), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cox["se"], np.atleast_1d(ref["robust_se"]), rtol=1e-6)
    surv = dict(zip(zip(ref["km"]["strata"], ref["km"]["time"]), ref["km"]["surv"]))
    for arm in (0, 1):
        m = d.treatment == arm
        with np.errstate(over="ignore"):
            km = kaplan_meier(d.stop[m], d.event[m], entry=d.start[m], weights=d.weight[m])
        for t in (12, 24):
            assert float(km.at(t)["surv"].iloc[0]) == pytest.approx(surv[(f"arm={arm}", t)], abs=1e-9)
    w = d.diagnostics["weights"]
    assert w["numerator"] == kind and abs(w["mean"] - 1) < 0.01
