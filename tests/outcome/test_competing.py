"""Competing-risks strategies against R on the rows each design builds.

Fixtures: tests/outcome/make_competing_fixture.py (cohort and design rows),
tests/reference/outcome_competing.R (survfit multi-state, coxph, finegray,
riskRegression::ate). Tolerance 1e-6 (achieved ~1e-12).
"""
from __future__ import annotations

import json
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_competing_fixture import DESIGNS, cohort, design_rows  # noqa: E402

from causal_hcc.base import Targets  # noqa: E402
from causal_hcc.core.cmprsk import aalen_johansen  # noqa: E402
from causal_hcc.strategies import resolve  # noqa: E402
from tests.core._fixtures import FIXTURES  # noqa: E402

TARGETS = Targets(survival_at=(12.0, 24.0), rmst_tau=24.0)
ENTRIES = {
    "naive": "naive",
    "multivariable": "multivariable",
    "iptw": {"name": "iptw", "estimand": "ATE"},
    "gformula": "gformula",
    "aiptw": "aiptw",
    "landmark": {"design": "landmark", "landmark": 3},
    "time_varying": {"design": "time_varying"},
    "sequential_trials": {"design": "sequential_trials", "grid": 1.0, "window": 6.0},
    "clone_censor": {"design": "clone_censor", "grace": 6},
    "sequential_trials_pp": {"design": "sequential_trials", "grid": 1.0, "window": 6.0, "analysis": "per_protocol"},
}


@lru_cache(maxsize=None)
def ref() -> dict:
    return json.loads((FIXTURES / "outcome_competing.json").read_text())


@lru_cache(maxsize=None)
def _cohort():
    c = cohort(pd.read_csv(FIXTURES / "outcome_competing_cohort.csv"))
    return c


@lru_cache(maxsize=None)
def fitted(name: str):
    (spec,) = resolve(ENTRIES[name])
    return spec.build(default_confounders=None).fit(_cohort(), "os", TARGETS)


def _get(out, measure, time=None):
    hits = [e for e in out.estimates if e.measure == measure and (time is None or e.time == time)]
    assert len(hits) == 1, (measure, time, [(e.measure, e.time) for e in out.estimates])
    return hits[0]


def test_fixture_rows_are_the_designs_rows():
    for name in DESIGNS:
        stored = pd.read_csv(FIXTURES / f"outcome_competing_{name}.csv")
        pd.testing.assert_frame_equal(design_rows(name, _cohort()), stored, check_dtype=False, rtol=1e-15)


@pytest.mark.parametrize("name", ["naive", "multivariable", "iptw", "landmark", "time_varying",
                                  "sequential_trials", "clone_censor", "sequential_trials_pp"])
def test_cause_specific_hr(name):
    r = ref()[name]["csc"]
    e = _get(fitted(name), "cause_specific_hr")
    assert math.log(e.estimate) == pytest.approx(r["coef"], abs=1e-8)
    assert e.se == pytest.approx(r["se"], abs=1e-8)
    assert e.variance_method == {"naive": "model", "multivariable": "model", "landmark": "model",
                                 "iptw": "robust"}.get(name, "cluster_robust")


@pytest.mark.parametrize("name", ["naive", "multivariable", "iptw", "landmark", "sequential_trials", "clone_censor",
                                  "sequential_trials_pp"])
def test_subdistribution_hr(name):
    r = ref()[name]["fg"]
    e = _get(fitted(name), "subdistribution_hr")
    assert math.log(e.estimate) == pytest.approx(r["coef"], abs=1e-8)
    assert e.se == pytest.approx(r["se"], abs=1e-8)


@pytest.mark.parametrize("name", ["clone_censor", "sequential_trials_pp"])
def test_subdistribution_hr_with_artificial_censoring(name):
    """Designs with artificial censoring: Fine-Gray's G is the IPC-weighted Kaplan-Meier curve of the real
    censoring only and the design weights are unstabilised (R: by hand, tests/reference/cmprsk_real_censoring.R);
    R's finegray() on the stabilised weights, which counts the artificial censorings in G, differs."""
    out = fitted(name)
    assert any("real censoring only" in n and "unstabilised" in n for n in out.notes)
    if name == "clone_censor":
        rows = design_rows(name, _cohort())
        from causal_hcc.core.cmprsk import fine_gray

        old = fine_gray(rows.stop, rows.status, rows[["arm"]].to_numpy(float), entry=rows.start, id=rows.unit,
                        weights=rows.w, cluster=rows.patient)
        assert float(old.coef[0]) == pytest.approx(ref()[name]["fg_rfinegray"]["coef"], abs=1e-8)
        assert abs(float(old.coef[0]) - ref()[name]["fg"]["coef"]) > 0.1


def test_no_subdistribution_hr_for_a_time_varying_exposure():
    out = fitted("time_varying")
    assert not [e for e in out.estimates if e.measure != "cause_specific_hr"]
    assert any("Latouche" in n for n in out.notes)


def _cif(name):
    c = ref()[name]["cif"]
    return {a: (np.asarray(c[k]["cif"]), np.asarray(c[k]["se"])) for a, k in ((0, "untreated"), (1, "treated"))}


@pytest.mark.parametrize("name", ["naive", "iptw", "landmark"])
@pytest.mark.parametrize("j", [0, 1])
def test_cif_difference_and_ratio_one_row_per_patient(name, j):
    c = _cif(name)
    t = TARGETS.survival_at[j]
    (f0, s0), (f1, s1) = c[0], c[1]
    d = _get(fitted(name), "cif_difference", t)
    assert d.estimate == pytest.approx(f1[j] - f0[j], abs=1e-10)
    assert d.se == pytest.approx(math.hypot(s1[j], s0[j]), abs=1e-9)
    q = _get(fitted(name), "cif_ratio", t)
    assert q.estimate == pytest.approx(f1[j] / f0[j], rel=1e-10)
    assert q.se == pytest.approx(math.hypot(s1[j] / f1[j], s0[j] / f0[j]), rel=1e-8)


def test_curves_are_the_aalen_johansen_curves():
    out = fitted("iptw")
    assert out.curves.kind == "cumulative_incidence"
    tab = out.curves.table
    c = _cif("iptw")
    for a, arm in ((0, "untreated"), (1, "treated")):
        g = tab[tab.group == f"{arm}: cause 1"].sort_values("time")
        k = np.searchsorted(g.time.to_numpy(), TARGETS.survival_at, side="right") - 1
        np.testing.assert_allclose(g.surv.to_numpy()[k], c[a][0], atol=1e-12)
        np.testing.assert_allclose(g.se.to_numpy()[k], c[a][1], atol=1e-10)
        assert g.surv.iloc[0] == 0.0 and g.time.iloc[0] == 0.0
    assert set(tab.group) == {"untreated: cause 1", "untreated: cause 2", "treated: cause 1", "treated: cause 2"}


def test_sequential_trials_cif_difference_clusters_on_the_patient():
    """A patient is in several trials, in either arm: the SE sums influences within patient (R: aggregated)."""
    r = ref()["sequential_trials"]
    up = pd.DataFrame(r["unit_patient"]).set_index("unit")["patient"]
    inf = {}
    for a, k in ((0, "untreated"), (1, "treated")):
        ids = np.asarray(r["cif"][k]["ids"])
        infl = pd.DataFrame(np.asarray(r["cif"][k]["influence"]), index=up.loc[ids].to_numpy())
        inf[a] = infl.groupby(level=0).sum()
    diff = inf[1].sub(inf[0], fill_value=0.0)
    se = np.sqrt((diff ** 2).sum(axis=0)).to_numpy()
    c = _cif("sequential_trials")
    for j, t in enumerate(TARGETS.survival_at):
        e = _get(fitted("sequential_trials"), "cif_difference", t)
        assert e.estimate == pytest.approx(c[1][0][j] - c[0][0][j], abs=1e-10)
        assert e.se == pytest.approx(se[j], abs=1e-9)
        assert e.variance_method == "cluster_robust"


def test_clone_censor_cif_on_weighted_counting_process_rows():
    """Points: the pipeline's (bootstrap SE); the IJ SE of the weighted (start, stop] rows, each row its own
    cluster: R's std.err (R's multi-state survfit would merge a clone's rows and keep one weight; see the R script)."""
    rows = pd.read_csv(FIXTURES / "outcome_competing_clone_censor.csv")
    c = _cif("clone_censor")
    for a in (0, 1):
        m = rows.arm == a
        f = aalen_johansen(rows.stop[m], rows.status[m], entry=rows.start[m], weights=rows.w[m], causes=(1, 2))
        at = f.at(TARGETS.survival_at, 1)
        np.testing.assert_allclose(at["cif"], c[a][0], atol=1e-12)
        np.testing.assert_allclose(at["se"], c[a][1], atol=1e-10)
    for j, t in enumerate(TARGETS.survival_at):
        e = _get(fitted("clone_censor"), "cif_difference", t)
        assert e.estimate == pytest.approx(c[1][0][j] - c[0][0][j], abs=1e-10)


@pytest.mark.parametrize("estimator", ["gformula", "aiptw"])
def test_standardised_cif_equals_riskregression_ate(estimator):
    r = ref()[estimator]
    out = fitted(estimator)
    dr, rr = pd.DataFrame(r["diffRisk"]), pd.DataFrame(r["ratioRisk"])
    for j, t in enumerate(TARGETS.survival_at):
        d, q = _get(out, "cif_difference", t), _get(out, "cif_ratio", t)
        assert d.estimate == pytest.approx(dr.estimate[j], abs=1e-10)
        assert q.estimate == pytest.approx(rr.estimate[j], rel=1e-10)
        if estimator == "aiptw":
            assert d.se == pytest.approx(dr.se[j], abs=1e-10)
            assert q.se * q.estimate == pytest.approx(rr.se[j], rel=1e-8)   # R: SE on the ratio scale
            assert d.variance_method == "influence_function"
        else:
            assert d.variance_method == "bootstrap" and math.isnan(d.se)
    assert out.curves.kind == "cumulative_incidence"


def test_no_survival_measures_for_an_outcome_with_competing_events():
    for name in ENTRIES:
        out = fitted(name)
        assert not {e.measure for e in out.estimates} & {"hr", "survival_difference", "rmst_difference",
                                                         "median_difference"}, name
        assert any("1 - Kaplan-Meier" in n for n in out.notes), name


@pytest.mark.parametrize("name, measure, competing, causal", [
    ("naive", "cif_difference", "total", False),          # ever vs never treated: not causal whatever the measure
    ("iptw", "cause_specific_hr", "cause_specific_hazard", False),
    ("landmark", "cif_difference", "total", True),
    ("landmark", "cif_ratio", "total", True),
    ("landmark", "subdistribution_hr", "subdistribution_hazard", True),
    ("landmark", "cause_specific_hr", "cause_specific_hazard", False),
    ("multivariable", "cause_specific_hr", "cause_specific_hazard", False),
])
def test_estimand_names_cause_and_treatment_of_competing_events(name, measure, competing, causal):
    (spec,) = resolve(ENTRIES[name])
    out = spec.build().fit(_cohort(), "os", TARGETS)
    e = [x for x in out.estimates if x.measure == measure][0]
    est = out.estimands[e.estimand]
    assert est["cause"] == 1 and est["competing"] == competing and est["competing_codes"] == [2]
    assert e.estimand.endswith(f"|cause1:{competing}")
    assert est["causal"] is causal
    assert "event of interest: cause 1 (competing: 2)" in est["description"]


@pytest.mark.parametrize("name", ["clone_censor", "gformula"])
def test_bootstrap_of_competing_measures(name):
    """The whole-pipeline bootstrap resamples patients: ratios on the log scale, CIF bands from the replicates."""
    from causal_hcc.inference import bootstrap_strategy

    (spec,) = resolve(ENTRIES[name])
    strat = spec.build()
    point = strat.fit(_cohort(), "os", TARGETS)
    out = bootstrap_strategy(strat, _cohort(), "os", TARGETS, point, replicates=30, seed=2)
    assert {e.variance_method for e in out.estimates} == {"bootstrap"}
    for e in out.estimates:
        assert math.isfinite(e.se) and e.se > 0 and e.ci_lower < e.ci_upper
        if e.measure in ("cif_ratio", "cause_specific_hr", "subdistribution_hr"):
            assert e.ci_lower > 0   # percentile interval of the log ratio, exponentiated
    assert out.curves.kind == "cumulative_incidence" and out.curves.variance_method == "bootstrap"
    tab = out.curves.table
    late = tab[tab.time > 12]
    assert late.se.notna().all() and (late.ci_lower <= late.surv + 1e-12).all()
    assert (tab[tab.time == 0].se == 0).all()
    # same seed, same numbers (replicates depend on the seed only)
    again = bootstrap_strategy(spec.build(), _cohort(), "os", TARGETS, point, replicates=30, seed=2)
    assert [e.se for e in again.estimates] == [e.se for e in out.estimates]
