"""naive / multivariable / paper against R survival on survival::veteran.

Reference: tests/reference/foundation_strategies.R (coxph Efron, survfit,
survdiff). Tolerances: 1e-6 on point estimates, 1e-4 relative on SEs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.strategies import resolve

FIX = Path(__file__).parents[1] / "reference" / "fixtures"
REF = json.loads((FIX / "foundation_veteran.json").read_text())


@pytest.fixture(scope="module")
def cohort():
    df = pd.read_csv(FIX / "foundation_veteran.csv")
    return Cohort(df, id="id", time="time", event="status", treatment="trt01",
                  confounders=["karno", "age", "prior10", "celltype"])


TARGETS = Targets(survival_at=(90.0, 180.0), rmst_tau=365.0)


def fit(cohort, name):
    (spec,) = resolve(name)
    return spec.build().fit(cohort, "os", TARGETS)


def rows(out, measure, strategy=None):
    return [e for e in out.estimates if e.measure == measure and (strategy is None or e.strategy == strategy)]


def test_naive_matches_r(cohort):
    out = fit(cohort, "naive")
    r = REF["naive"]
    (hr,) = rows(out, "hr")
    assert math.log(hr.estimate) == pytest.approx(r["coef"], abs=1e-6)
    assert hr.se == pytest.approx(r["se"], rel=1e-4)
    assert hr.variance_method == "model"
    sd = rows(out, "survival_difference")
    for k, e in enumerate(sd):
        assert e.time == r["times"][k]
        assert e.estimate == pytest.approx(r["surv1"][k] - r["surv0"][k], abs=1e-6)
        assert e.se == pytest.approx(math.hypot(r["se1"][k], r["se0"][k]), rel=1e-4)
        assert e.variance_method == "greenwood"
    (rm,) = rows(out, "rmst_difference")
    assert rm.estimate == pytest.approx(r["rmean1"] - r["rmean0"], abs=1e-6)
    assert rm.se == pytest.approx(math.hypot(r["se_rmean1"], r["se_rmean0"]), rel=1e-4)
    (md,) = rows(out, "median_difference")
    assert md.estimate == pytest.approx(r["median1"] - r["median0"], abs=1e-9)
    assert out.diagnostics["logrank"]["chi2"] == pytest.approx(r["logrank_chisq"], rel=1e-6)
    assert (hr.n, hr.n_treated, hr.events) == (137, 68, 128)


def test_multivariable_matches_r(cohort):
    out = fit(cohort, "multivariable")
    (hr,) = rows(out, "hr")
    assert math.log(hr.estimate) == pytest.approx(REF["multivariable"]["coef"], abs=1e-6)
    assert hr.se == pytest.approx(REF["multivariable"]["se"], rel=1e-4)


def test_paper_matches_r(cohort):
    out = fit(cohort, "paper")
    r = REF["paper"]
    uni = {u["variable"]: u for u in out.diagnostics["univariate"]}
    for name, ru in r["univariate"].items():
        assert math.log(uni[name]["hr"]) == pytest.approx(ru["coef"], abs=1e-6)
        assert uni[name]["se"] == pytest.approx(ru["se"], rel=1e-4)
        assert uni[name]["p_value"] == pytest.approx(ru["p"], rel=1e-4)
    assert out.diagnostics["selected"] == r["selected"]
    (mv,) = rows(out, "hr", "paper")
    assert math.log(mv.estimate) == pytest.approx(r["coef"], abs=1e-6)
    assert mv.se == pytest.approx(r["se"], rel=1e-4)
    (u,) = rows(out, "hr", "paper(univariate)")
    assert math.log(u.estimate) == pytest.approx(r["uni_trt_coef"], abs=1e-6)


@pytest.mark.parametrize("entry", ["multivariable", "iptw", "psm", "aiptw"])
def test_strategy_confounder_subset_equals_cohort_with_only_those(cohort, entry):
    """A strategy's own confounder list means its design and adjustment see only those."""
    df = pd.read_csv(FIX / "foundation_veteran.csv")
    small = Cohort(df, id="id", time="time", event="status", treatment="trt01", confounders=["karno", "celltype"])
    (spec,) = resolve(entry)
    a = spec.build(default_confounders=["karno", "celltype"]).fit(cohort, "os", TARGETS)
    b = spec.build().fit(small, "os", TARGETS)
    assert [e.estimate for e in a.estimates] == pytest.approx([e.estimate for e in b.estimates], abs=1e-12)
    assert [e.se for e in a.estimates] == pytest.approx([e.se for e in b.estimates], abs=1e-12, nan_ok=True)


def test_select_confounders_rejects_unknown(cohort):
    from causal_hcc.errors import SpecError

    with pytest.raises(SpecError, match=r"confounders \['zz'\] are not among the cohort's confounders"):
        cohort.select_confounders(["zz"])
