"""Period outcome models against R (tests/reference/outcome_period.R):

* ``outcome_model: pooled_logistic`` = glm(binomial, weights) with the same time terms, the cluster-robust
  sandwich (sandwich::vcovCL HC0) and the standardised survival difference / risk ratio / RMST difference with
  delta-method + standardisation-population SEs;
* ``ties: breslow`` (and efron) of a weighted counting-process Cox model with robust SE;
* ``risk_ratio`` of Kaplan-Meier curves with Greenwood and IJ (clustered) SEs.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import DesignData, Targets
from causal_hcc.core.cox import coxph
from causal_hcc.outcome.effects import estimate_effects
from causal_hcc.outcome.pooled_logistic import person_periods, time_basis
from tests.core._fixtures import FIXTURES

REF = json.loads((FIXTURES / "outcome_period.json").read_text())
TOL = 1e-6
#: length-1 vectors that R's auto_unbox wrote as scalars
_VECTORS = {"times", "taus", "surv_diff", "surv_diff_se", "log_rr", "log_rr_se", "rmst_diff", "rmst_diff_se"}


def _data(name: str, *, with_x: bool, rows: str = "period") -> DesignData:
    d = pd.read_csv(FIXTURES / f"outcome_period_{name}.csv")
    unit = d["unit"].to_numpy(int) - 1
    if name == "B":
        unit = unit  # units are distinct rows of (trial, patient) already
    k = d["k"].to_numpy(float)
    X = d[["x"]].to_numpy(float) if with_x else np.zeros((len(d), 0))
    data = DesignData(design="sequential_trials" if name == "B" else "baseline", outcome="os", start=k, stop=k + 1,
                      event=d["y"].to_numpy(np.int8), treatment=d["a"].to_numpy(np.int8), X=X,
                      confounders=["x"] if with_x else [], patient=d["patient"].to_numpy(int) - 1, unit=unit,
                      weight=d["w"].to_numpy(float),
                      stratum=d["trial"].to_numpy(int) if name == "B" else None)
    return data


def _check_pooled(out, ref, times):
    est = {(e.measure, e.time): e for e in out.estimates}
    diag = out.diagnostics["pooled_logistic"]
    np.testing.assert_allclose(diag["coef"], ref["coef"], rtol=TOL, atol=1e-9)
    np.testing.assert_allclose(diag["se"], ref["se"], rtol=TOL)
    hr = est[("hr", None)]
    assert math.log(hr.estimate) == pytest.approx(ref["coef"][1], rel=TOL)
    assert hr.se == pytest.approx(ref["se"][1], rel=TOL)
    for t, sd, sds, lr, lrs in zip(times, ref["surv_diff"], ref["surv_diff_se"], ref["log_rr"], ref["log_rr_se"]):
        e = est[("survival_difference", float(t))]
        assert e.estimate == pytest.approx(sd, rel=TOL, abs=1e-10)
        assert e.se == pytest.approx(sds, rel=TOL)
        r = est[("risk_ratio", float(t))]
        assert math.log(r.estimate) == pytest.approx(lr, rel=TOL, abs=1e-10)
        assert r.se == pytest.approx(lrs, rel=TOL)
    for tau, rd, rds in zip(ref["taus"], ref["rmst_diff"], ref["rmst_diff_se"]):
        e = est[("rmst_difference", float(tau))]
        assert e.estimate == pytest.approx(rd, rel=TOL)
        assert e.se == pytest.approx(rds, rel=TOL)
    tab = out.curves.table
    for arm, s, se in (("treated", ref["S1"], ref["S1_se"]), ("untreated", ref["S0"], ref["S0_se"])):
        g = tab[tab["group"] == arm]
        np.testing.assert_allclose(g["surv"], s, rtol=TOL)
        np.testing.assert_allclose(g["se"], se, rtol=TOL)
        np.testing.assert_allclose(g["time"], np.arange(1, ref["Kmax"] + 1))
    m = est[("median_difference", None)].estimate
    if ref["median_diff"] is None or (isinstance(ref["median_diff"], str)):
        assert math.isnan(m)
    else:
        assert m == pytest.approx(ref["median_diff"])


@pytest.mark.parametrize("case, name, with_x, terms", [
    ("A_none", "A", False, "quadratic"),
    ("A_x", "A", True, "quadratic"),
    ("A_rcs4", "A", False, "rcs4"),
    ("B_trials", "B", True, "quadratic"),
])
def test_pooled_logistic_equals_r_glm(case, name, with_x, terms):
    ref = {k: ([v] if k in _VECTORS and not isinstance(v, list) else v) for k, v in REF["pooled"][case].items()}
    data = _data(name, with_x=with_x)
    targets = Targets(survival_at=tuple(float(t) for t in ref["times"]), rmst_tau=None)
    out = None
    for tau in ref["taus"]:
        targets = Targets(survival_at=tuple(float(t) for t in ref["times"]), rmst_tau=float(tau))
        out = estimate_effects(data, targets, covariates=data.X if with_x else None,
                               covariate_names=data.confounders, outcome_model="pooled_logistic", time_terms=terms)
        one = dict(ref, taus=[tau], rmst_diff=[ref["rmst_diff"][ref["taus"].index(tau)]],
                   rmst_diff_se=[ref["rmst_diff_se"][ref["taus"].index(tau)]])
        _check_pooled(out, one, ref["times"])
    if case == "A_rcs4":
        np.testing.assert_allclose(out.diagnostics["pooled_logistic"]["knots"], ref["knots"], rtol=1e-12)
    assert all(e.variance_method == "cluster_robust" for e in out.estimates if e.measure != "median_difference")


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_ties_weighted_counting_process_equals_r(ties):
    data = _data("A", with_x=True)
    out = estimate_effects(data, Targets(), covariates=data.X, covariate_names=["x"], ties=ties)
    ref = REF["cox"][ties]
    np.testing.assert_allclose(out.diagnostics["cox"]["coef"], ref["coef"], rtol=TOL)
    np.testing.assert_allclose(out.diagnostics["cox"]["se"], ref["se"], rtol=TOL)
    assert out.diagnostics["cox"]["ties"] == ties


def test_replicated_rows_change_efron_but_not_breslow():
    """Weight 3 = three copies under Breslow; under Efron the copies are tied deaths of their own (as R)."""
    d = pd.read_csv(FIXTURES / "outcome_period_A.csv")
    X = d[["a", "x"]].to_numpy(float)
    k, y = d["k"].to_numpy(float), d["y"].to_numpy(int)
    rep = np.tile(np.arange(len(d)), 3)
    for ties in ("breslow", "efron"):
        w3 = coxph(k + 1, y, X, entry=k, weights=np.full(len(d), 3.0), ties=ties, robust=False).coef
        c3 = coxph(k[rep] + 1, y[rep], X[rep], entry=k[rep], ties=ties).coef
        np.testing.assert_allclose(w3, REF["cox"][f"{ties}_weight3"], rtol=TOL)
        np.testing.assert_allclose(c3, REF["cox"][f"{ties}_copies3"], rtol=TOL)
    assert np.allclose(REF["cox"]["breslow_weight3"], REF["cox"]["breslow_copies3"], rtol=1e-12)
    assert not np.allclose(REF["cox"]["efron_weight3"], REF["cox"]["efron_copies3"], rtol=1e-4)


def test_km_risk_ratio_greenwood_equals_r():
    d = pd.read_csv(FIXTURES / "outcome_period_A.csv")
    last = d[d.groupby("unit")["k"].transform("max") == d["k"]]
    n = len(last)
    data = DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=last["k"].to_numpy(float) + 1,
                      event=last["y"].to_numpy(np.int8), treatment=last["a"].to_numpy(np.int8), X=np.zeros((n, 0)),
                      confounders=[], patient=np.arange(n), unit=np.arange(n), weight=np.ones(n))
    ref = REF["km"]["greenwood"]
    out = estimate_effects(data, Targets(survival_at=tuple(ref["times"])))
    rr = [e for e in out.estimates if e.measure == "risk_ratio"]
    np.testing.assert_allclose([math.log(e.estimate) for e in rr], ref["log_rr"], rtol=TOL)
    np.testing.assert_allclose([e.se for e in rr], ref["se"], rtol=TOL)
    assert {e.variance_method for e in rr} == {"greenwood"}


def test_km_risk_ratio_ij_clustered_equals_r():
    data = _data("A", with_x=False)
    ref = REF["km"]["ij"]
    out = estimate_effects(data, Targets(survival_at=tuple(ref["times"])))
    rr = [e for e in out.estimates if e.measure == "risk_ratio"]
    np.testing.assert_allclose([math.log(e.estimate) for e in rr], ref["log_rr"], rtol=TOL)
    np.testing.assert_allclose([e.se for e in rr], ref["se"], rtol=TOL)
    assert rr[0].ci_lower < rr[0].estimate < rr[0].ci_upper


def test_person_periods_by_hand():
    # unit 0: (0, 2.5] event -> periods 0, 1, 2, event in 2; unit 1: split (0, 1.5], (1.5, 3] event at 3:
    # periods 0, 1 from the first row, 2 from the second, event in period 2; unit 2: censored at 2 -> 0, 1
    pp = person_periods(np.array([0, 0, 1.5, 0]), np.array([2.5, 1.5, 3.0, 2.0]), np.array([1, 0, 1, 0]),
                        np.array([0, 1, 1, 2]), 1.0)
    assert pp.row.tolist() == [0, 0, 0, 1, 1, 2, 3, 3]
    assert pp.k.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert pp.y.tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    # an event in a period whose start lies in the unit's previous row goes to that row's record
    pp = person_periods(np.array([0, 1.5]), np.array([1.5, 1.8]), np.array([0, 1]), np.array([7, 7]), 1.0)
    assert pp.row.tolist() == [0, 0] and pp.k.tolist() == [0, 1] and pp.y.tolist() == [0, 1]


def test_time_basis_names_and_values():
    M, names, _ = time_basis(np.array([0, 1, 2]), "cubic")
    assert names == ["period", "period^2", "period^3"]
    assert M.tolist() == [[0, 0, 0], [1, 1, 1], [2, 4, 8]]


@pytest.mark.parametrize("entry, message", [
    ({"name": "naive", "time_terms": "cubic"},
     "strategies: adjustment 'none': option 'time_terms' applies to outcome_model: pooled_logistic only"),
    ({"name": "iptw", "outcome_model": "pooled_logistic", "penalty": "firth"},
     "strategies: adjustment 'iptw': option 'penalty: firth' applies to the Cox model, not to outcome_model: "
     "pooled_logistic"),
    ({"name": "multivariable", "outcome_model": "pooled_logistic", "ties": "breslow"},
     "strategies: adjustment 'multivariable': option 'ties' applies to the Cox model, not to outcome_model: "
     "pooled_logistic"),
    ({"design": "time_varying", "adjustment": "msm", "truncate": [0.01, 0.99], "truncate_at": [0.1, 10]},
     "strategies: adjustment 'msm': give 'truncate' (quantiles) or 'truncate_at' (fixed bounds), not both"),
    ({"name": "naive", "outcome_model": "logistic"},
     "strategies: adjustment 'none': option 'outcome_model' must be one of cox, pooled_logistic, got 'logistic'"),
])
def test_outcome_option_conflicts_fail_when_the_spec_loads(entry, message):
    from causal_hcc.errors import SpecError
    from causal_hcc.strategies import resolve

    with pytest.raises(SpecError) as ei:
        resolve(entry)
    assert str(ei.value) == message


def test_outcome_option_labels():
    from causal_hcc.strategies import resolve

    assert resolve({"name": "naive", "ties": "breslow"})[0].label == "naive(breslow)"
    assert resolve({"name": "multivariable", "outcome_model": "pooled_logistic"})[0].label == \
        "multivariable(pooled_logistic)"
    assert resolve({"name": "iptw", "outcome_model": "pooled_logistic"})[0].label == "iptw(ATE, pooled_logistic)"
