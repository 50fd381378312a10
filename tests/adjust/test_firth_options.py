"""`penalty: firth` (Cox adjustments) and `learner: firth` (propensity model) against tests/reference/core_firth.R."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from causal_hcc.adjust.iptw import IPTW
from causal_hcc.adjust.multivariable import Multivariable
from causal_hcc.adjust.none import NoAdjustment
from causal_hcc.adjust.propensity import fit_propensity
from causal_hcc.base import DesignData, Targets
from causal_hcc.errors import EstimationError, SpecError
from causal_hcc.strategies import resolve
from tests.core._fixtures import FIXTURES, dataset

REF = json.loads((FIXTURES / "core_firth.json").read_text())


def design_data(time, event, treatment, X, confounders) -> DesignData:
    n = len(time)
    return DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=np.asarray(time, float),
                      event=np.asarray(event, float), treatment=np.asarray(treatment, np.int8),
                      X=np.asarray(X, float).reshape(n, -1), confounders=list(confounders), patient=np.arange(n),
                      unit=np.arange(n), weight=np.ones(n))


@pytest.fixture(scope="module")
def monotone():
    """veteran: the 9 censored patients as the 'treated' arm: no treated event, an infinite unpenalised HR."""
    df = dataset("veteran")
    return design_data(df["time"], df["status"], (df["status"] == 0).astype(int), df[["karno"]], ["karno"])


def test_multivariable_firth_equals_reference_under_monotone_likelihood(monotone):
    ref = REF["cox"]["veteran_monotone_efron"]
    out = Multivariable(penalty="firth").fit(monotone, Targets()).output_
    hr = out.estimates[0]
    assert hr.measure == "hr" and hr.variance_method == "profile_likelihood"
    assert math.log(hr.estimate) == pytest.approx(ref["coef"][0], abs=1e-7)
    assert math.log(hr.ci_lower) == pytest.approx(ref["ci_lower"][0], abs=1e-7)
    assert math.log(hr.ci_upper) == pytest.approx(ref["ci_upper"][0], abs=1e-7)
    assert hr.p_value == pytest.approx(ref["p"][0], rel=1e-6)
    assert hr.se == pytest.approx(ref["se"][0], rel=1e-6)
    assert out.diagnostics["firth"]["unpenalised_infinite"] is True
    assert any(w.startswith("monotone likelihood: the unpenalised Cox model has no finite estimate")
               for w in out.warnings)


def test_without_penalty_the_same_data_give_no_finite_estimate(monotone):
    """The unpenalised model's treatment HR is not estimable: no estimate, SE or p-value; the CI is the
    profile-likelihood interval, open at 0 (tests/test_monotone.py checks its limit against R)."""
    out = Multivariable().fit(monotone, Targets()).output_
    hr = out.estimates[0]
    assert math.isnan(hr.estimate) and math.isnan(hr.se) and math.isnan(hr.p_value)
    assert hr.ci_lower == 0.0 and 0 < hr.ci_upper < 1 and hr.variance_method == "profile_likelihood"
    assert hr.note.startswith("no finite estimate")


def test_none_firth_profile_equals_reference():
    ref = REF["cox"]["veteran_trt"]
    df = dataset("veteran")
    data = design_data(df["time"], df["status"], df["trt2"], np.empty((len(df), 0)), [])
    out = NoAdjustment(penalty="firth").fit(data, Targets(survival_at=(100.0,))).output_
    hr = out.estimates[0]
    # veteran_trt is Breslow in R; the pipeline uses Efron: same estimate only to the ties' effect
    assert math.log(hr.estimate) == pytest.approx(ref["coef"], abs=5e-3)
    assert out.diagnostics["firth"]["unpenalised_infinite"] is False
    assert not [w for w in out.warnings if "monotone" in w]
    assert {e.measure for e in out.estimates} >= {"survival_difference", "median_difference"}


def test_iptw_firth_weighted_rows_without_a_likelihood_keep_the_labelled_robust_wald(monotone):
    """Rows of a patient in several arms or clustered rows have no likelihood: robust Wald at the
    penalised estimate, with the caveat in the row's note (a cluster passed in = matched sets)."""
    from causal_hcc.outcome.effects import FIRTH_WALD_CAVEAT, estimate_effects

    w = np.where(monotone.treatment == 1, 2.0, 1.0)
    out = estimate_effects(monotone, Targets(), weights=w, cluster=np.arange(monotone.n_rows) // 2,
                           penalty="firth", hr=True, differences=False)
    hr = out.estimates[0]
    assert hr.variance_method == "cluster_robust" and hr.note == FIRTH_WALD_CAVEAT
    assert hr.ci_lower == pytest.approx(math.exp(math.log(hr.estimate) - 1.959963984540054 * hr.se), rel=1e-9)


def test_learner_firth_scores_equal_brglm2_and_flag_separation():
    ref = REF["logistic"]["separated"]
    X = np.array(ref["X"], float)[:, 1:]
    y = np.array(ref["y"], float)
    data = design_data(np.arange(1, 21), np.ones(20), y, X, ["x1", "x2"])
    ps = fit_propensity(data, learner="firth")
    np.testing.assert_allclose(ps.unit_score, ref["fitted"], atol=1e-9)
    assert ps.firth_separation is True
    assert ("propensity: the unpenalised logistic propensity model separates (its MLE is infinite); the "
            "Firth-penalised scores are finite, but the arms barely overlap") in ps.warnings
    with pytest.raises(EstimationError, match="complete separation"):
        fit_propensity(data, learner="logistic")


def test_options_declared_and_validated():
    s = resolve({"name": "multivariable", "penalty": "firth"})[0]
    assert s.label == "multivariable(firth)"
    assert resolve({"name": "naive", "penalty": "firth"})[0].label == "naive(firth)"
    assert resolve({"name": "iptw", "learner": "firth"})[0].label == "iptw(ATE, learner firth)"
    with pytest.raises(SpecError, match=r"^strategies: adjustment 'multivariable': option 'penalty' must be one "
                                        r"of firth, got 'ridge'$"):
        resolve({"name": "multivariable", "penalty": "ridge"})
