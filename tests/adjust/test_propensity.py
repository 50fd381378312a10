"""Propensity models: R glm agreement, allow-list, columns, separation, trimming."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.adjust.propensity import (LEARNERS, NEAR, fit_propensity, treatment_weights, trim_mask,
                                          truncate_weights, unit_rows)
from causal_hcc.base import DesignData
from causal_hcc.errors import DataError, EstimationError, SpecError


def test_logistic_matches_r_glm(gbsg, ref):
    ps = fit_propensity(gbsg)
    np.testing.assert_allclose(ps.coef, ref["ps_coef"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ps.unit_score[:10], ref["ps_head"], atol=1e-9)
    assert ps.learner == "logistic" and ps.n_near_0_or_1 == 0 and not ps.warnings
    assert ps.n_parameters == 8


def test_sklearn_unpenalised_logistic_close_to_glm(gbsg, ref):
    ps = fit_propensity(gbsg, learner="sklearn.linear_model.LogisticRegression")
    np.testing.assert_allclose(ps.unit_score[:10], ref["ps_head"], atol=1e-4)


@pytest.mark.parametrize("learner", ["sklearn.ensemble.GradientBoostingClassifier", "sklearn.naive_bayes.GaussianNB"])
def test_allow_listed_learners_give_probabilities(gbsg, learner):
    ps = fit_propensity(gbsg, learner=learner)
    assert ps.unit_score.shape == (686,) and np.all((ps.unit_score >= 0) & (ps.unit_score <= 1))
    assert ps.learner == learner


def test_learner_outside_allow_list_is_refused(gbsg):
    with pytest.raises(SpecError) as exc:
        fit_propensity(gbsg, learner="os.system", where="adjustment 'iptw'")
    assert str(exc.value) == ("adjustment 'iptw': learner 'os.system' is not on the allow-list; valid: "
                              + ", ".join(LEARNERS))


def test_learner_object_python_api(gbsg, ref):
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10)
    ps = fit_propensity(gbsg, learner=est)
    np.testing.assert_allclose(ps.unit_score[:10], ref["ps_head"], atol=1e-4)
    assert not hasattr(est, "coef_"), "the caller's estimator must not be fitted in place"


def test_score_column(gbsg, ref):
    data = gbsg
    data.columns = {"ps": np.r_[ref["ps_head"], np.full(676, 0.3)]}
    ps = fit_propensity(data, score_column="ps")
    np.testing.assert_allclose(ps.unit_score[:10], ref["ps_head"])
    assert ps.learner == "column:ps"


def test_score_column_out_of_range(gbsg):
    gbsg.columns = {"ps": np.r_[0.5, 1.5, np.full(684, 0.3)]}
    with pytest.raises(DataError) as exc:
        fit_propensity(gbsg, score_column="ps", where="adjustment 'psm'")
    assert str(exc.value) == ("adjustment 'psm': column 'ps' must hold probabilities in [0, 1] "
                              "(first offending unit at row 1)")


def test_missing_column(gbsg):
    with pytest.raises(SpecError) as exc:
        fit_propensity(gbsg, score_column="nope", where="adjustment 'iptw'")
    assert str(exc.value) == "adjustment 'iptw': column 'nope' is not available to the design's rows"


def _tiny(x, a):
    n = len(a)
    idx = np.arange(n)
    return DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=np.arange(1.0, n + 1),
                      event=np.ones(n, np.int8), treatment=np.asarray(a, np.int8),
                      X=np.asarray(x, float)[:, None], confounders=["x"], patient=idx, unit=idx, weight=np.ones(n))


def test_complete_separation_is_an_error():
    data = _tiny([1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 1, 1, 1, 1])
    with pytest.raises(EstimationError) as exc:
        fit_propensity(data, where="adjustment 'iptw'")
    assert str(exc.value) == ("adjustment 'iptw': complete separation: the confounders predict treatment "
                              "perfectly (every score within 1e-06 of its own arm); no overlap to compare")


def test_quasi_separation_is_reported():
    # x = 0 predicts untreated perfectly; x = 1 is mixed: MLE drives those scores to 0
    data = _tiny([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1, 0, 1, 1])
    ps = fit_propensity(data, where="adjustment 'iptw'")
    assert ps.n_near_0_or_1 == 4
    assert ps.warnings[0].startswith("adjustment 'iptw': 4 of 10 propensity scores are within 1e-06 of 0 or 1")
    assert ps.warnings[0].endswith(": positivity is violated for them")


def test_one_arm_is_an_error():
    data = _tiny([1, 2, 3], [1, 1, 1])
    with pytest.raises(EstimationError) as exc:
        fit_propensity(data, where="w")
    assert str(exc.value) == "w: only one arm present; a propensity score needs both arms"


def test_units_fit_once_and_broadcast_to_rows():
    # unit 7 has two rows; the model sees it once
    idx = np.array([0, 1, 1, 2, 3, 4, 5])
    data = DesignData(design="x", outcome="os", start=np.zeros(7), stop=np.arange(1.0, 8), event=np.ones(7, np.int8),
                      treatment=np.array([0, 1, 1, 0, 1, 0, 1], np.int8),
                      X=np.array([[0.], [1.], [1.], [2.], [0.5], [1.5], [3.]]), confounders=["x"],
                      patient=idx, unit=idx, weight=np.ones(7))
    first, row_unit = unit_rows(data)
    assert first.tolist() == [0, 1, 3, 4, 5, 6] and row_unit.tolist() == [0, 1, 1, 2, 3, 4, 5]
    ps = fit_propensity(data)
    assert ps.unit_score.size == 6 and ps.score[1] == ps.score[2]


def test_stratum_indicators_enter_the_model(gbsg):
    gbsg.stratum = (np.arange(686) % 3).astype(int)
    ps = fit_propensity(gbsg)
    assert ps.names[-2:] == ["stratum=1", "stratum=2"] and len(ps.coef) == 10


def test_treatment_weights_by_hand():
    e = np.array([0.2, 0.5, 0.8, 0.25])
    a = np.array([1, 0, 1, 0])
    np.testing.assert_allclose(treatment_weights(e, a, "ATE", False), [5, 2, 1.25, 4 / 3])
    np.testing.assert_allclose(treatment_weights(e, a, "ATE", True), [2.5, 1, 0.625, 2 / 3])
    np.testing.assert_allclose(treatment_weights(e, a, "ATT", False), [1, 1, 1, 1 / 3])
    np.testing.assert_allclose(treatment_weights(e, a, "ATO", False), [0.8, 0.5, 0.2, 0.25])


def test_trim_and_truncate():
    e = np.array([0.005, 0.1, 0.5, 0.995])
    assert trim_mask(e, (0.01, 0.99), "w").tolist() == [False, True, True, False]
    assert trim_mask(e, None, "w").all()
    with pytest.raises(SpecError) as exc:
        trim_mask(e, (0.9, 0.1), "adjustment 'iptw'")
    assert str(exc.value) == "adjustment 'iptw': option 'trim' must be [low, high] with low < high, got [0.9, 0.1]"
    w = np.arange(1.0, 101.0)
    t, k = truncate_weights(w, (0.05, 0.95), "w")
    assert k == 10 and t.min() == pytest.approx(5.95) and t.max() == pytest.approx(95.05)
    assert NEAR == 1e-6
