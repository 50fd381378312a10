"""IPTW: R survival agreement on gbsg, a 10-row hand example, learner/score/weight equivalence."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.adjust.iptw import IPTW
from causal_hcc.base import DesignData, Targets
from causal_hcc.errors import EstimationError, SpecError
from adjust_support import TAU, TIMES, curve_at, estimate

CASES = {"ATE": dict(estimand="ATE"), "ATE_stabilized": dict(estimand="ATE", stabilized=True),
         "ATT": dict(estimand="ATT"), "ATO": dict(estimand="ATO")}


@pytest.fixture(scope="module")
def fits(gbsg_frame):
    from adjust_support import design_from_frame
    t = Targets(survival_at=TIMES, rmst_tau=TAU)
    return {k: IPTW(**o).fit(design_from_frame(gbsg_frame), t) for k, o in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_weighted_cox_matches_r(fits, ref, case):
    r = ref["iptw"][case]
    e = estimate(fits[case].output_, "hr")
    assert np.log(e.estimate) == pytest.approx(r["coef"], abs=1e-6)
    assert e.se == pytest.approx(r["se_robust"], rel=0.02)
    assert e.se == pytest.approx(r["se_robust"], rel=1e-6)  # achieved: identical sandwich
    assert e.variance_method == "robust"
    np.testing.assert_allclose(fits[case].weights_[:10], r["weights_head"], rtol=1e-6)


@pytest.mark.parametrize("k,t", list(enumerate(TIMES)))
@pytest.mark.parametrize("arm,group", [(0, "untreated"), (1, "treated")])
@pytest.mark.parametrize("case", list(CASES))
def test_weighted_km_matches_r_survfit_robust(fits, ref, case, arm, group, k, t):
    r = ref["iptw"][case]
    s, se = curve_at(fits[case].output_.curves, group, t)
    assert s == pytest.approx(r[f"surv{arm}"][k], abs=1e-6)
    assert se == pytest.approx(r[f"se{arm}"][k], rel=0.02)
    assert se == pytest.approx(r[f"se{arm}"][k], rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_rmst_difference_matches_r(fits, ref, case):
    e = estimate(fits[case].output_, "rmst_difference", TAU)
    assert e.estimate == pytest.approx(ref["iptw"][case]["rmst_diff"], abs=1e-6)


@pytest.mark.parametrize("t", TIMES)
def test_survival_difference_is_difference_of_curves(fits, ref, t):
    k = TIMES.index(t)
    e = estimate(fits["ATE"].output_, "survival_difference", t)
    assert e.estimate == pytest.approx(ref["iptw"]["ATE"]["surv1"][k] - ref["iptw"]["ATE"]["surv0"][k], abs=1e-6)
    # arms are independent samples here: SE^2 = SE1^2 + SE0^2 of the IJ curves
    assert e.se == pytest.approx(np.hypot(ref["iptw"]["ATE"]["se1"][k], ref["iptw"]["ATE"]["se0"][k]), rel=1e-6)


def test_diagnostics(fits):
    d = fits["ATE"].output_.diagnostics
    assert set(d) >= {"balance", "weights", "propensity", "cox"}
    assert d["weights"]["estimand"] == "ATE" and len(d["weights"]["top5"]) == 5
    assert max(abs(x) for x in d["balance"]["smd_after"]) < 0.1
    # overlap weights balance the logistic model's covariates exactly (Li et al. 2018)
    assert max(abs(x) for x in fits["ATO"].output_.diagnostics["balance"]["smd_after"]) < 1e-8


# ---------------------------------------------------------------- tiny hand example ---
def _ten():
    t = np.arange(1.0, 11.0)
    d = np.array([1, 1, 0, 1, 1, 0, 1, 0, 1, 1], np.int8)
    a = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0], np.int8)
    e = np.array([0.8, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.5, 0.5, 0.8])
    idx = np.arange(10)
    data = DesignData(design="baseline", outcome="os", start=np.zeros(10), stop=t, event=d, treatment=a,
                      X=e[:, None].copy(), confounders=["x"], patient=idx, unit=idx, weight=np.ones(10))
    data.columns = {"ps": e}
    return data


def test_ten_rows_by_hand():
    m = IPTW(score_column="ps").fit(_ten(), Targets(survival_at=(4.5,)))
    # ATE weights: treated 1/e, untreated 1/(1-e)
    np.testing.assert_allclose(m.weights_, [1.25, 2, 2, 4 / 3, 4, 1.25, 5, 2, 2, 5])
    # treated (t = 1, 3, 5, 7, 9): total weight 14.25, death of weight 1.25 at t = 1, censored at 3
    s1 = 1 - 1.25 / 14.25
    # untreated (t = 2, 4, 6, 8, 10): total 35/3; deaths of weight 2 at t = 2 and 4/3 at t = 4
    n0 = 2 + 4 / 3 + 1.25 + 2 + 5
    s0 = (1 - 2 / n0) * (1 - (4 / 3) / (n0 - 2))
    assert curve_at(m.output_.curves, "treated", 4.5)[0] == pytest.approx(s1)
    assert curve_at(m.output_.curves, "untreated", 4.5)[0] == pytest.approx(s0)
    assert estimate(m.output_, "survival_difference", 4.5).estimate == pytest.approx(s1 - s0)
    w = m.output_.diagnostics["weights"]
    assert w["ess_treated"] == pytest.approx(14.25 ** 2 / (1.25 ** 2 + 4 + 4 + 16 + 25))
    assert w["top5"] == pytest.approx([5.0, 5.0, 4.0, 2.0, 2.0])
    assert any(x.startswith("adjustment 'iptw': effective sample size in the treated arm is") for x in m.output_.warnings)


def test_ten_rows_att_and_truncation():
    m = IPTW(score_column="ps", estimand="ATT", truncate=[0.0, 0.9]).fit(_ten(), Targets())
    raw = np.array([1, 1, 1, 1 / 3, 1, 0.25, 1, 1, 1, 4])
    np.testing.assert_allclose(m.weights_, np.minimum(raw, 1.3))  # 0.9 quantile of raw = 1 + 0.1 * 3
    assert m.output_.diagnostics["weights"]["n_truncated"] == 1
    assert "1 weights truncated at the [0.0, 0.9] quantiles" in m.output_.notes


def test_ten_rows_trim():
    m = IPTW(score_column="ps", trim=[0.21, 0.79]).fit(_ten(), Targets())
    assert m.output_.diagnostics["weights"]["n_trimmed"] == 4
    assert m.weights_[[0, 5, 6, 9]].tolist() == [0, 0, 0, 0]
    assert estimate(m.output_, "hr").n == 6


# ------------------------------------------------ learner = fitted scores = raw weights ---
def test_learner_scores_and_weights_give_identical_results(gbsg_frame):
    from sklearn.linear_model import LogisticRegression

    from causal_hcc.adjust.propensity import LEARNERS
    from adjust_support import CONF, design_from_frame

    t = Targets(survival_at=TIMES, rmst_tau=TAU)
    a = IPTW(estimand="ATT", learner="sklearn.linear_model.LogisticRegression").fit(design_from_frame(gbsg_frame), t)
    lr = LogisticRegression(**LEARNERS["sklearn.linear_model.LogisticRegression"])
    lr.fit(gbsg_frame[CONF].to_numpy(float), gbsg_frame["hormon"].to_numpy())
    ps = lr.predict_proba(gbsg_frame[CONF].to_numpy(float))[:, 1]
    d2 = design_from_frame(gbsg_frame)
    d2.columns = {"ps": ps}
    b = IPTW(estimand="ATT", score_column="ps").fit(d2, t)
    d3 = design_from_frame(gbsg_frame)
    d3.columns = {"w": np.where(gbsg_frame["hormon"] == 1, 1.0, ps / (1 - ps))}
    c = IPTW(weight_column="w").fit(d3, t)
    for x, y in ((a, b), (a, c)):
        ex = [(e.measure, e.time, e.estimate, e.se) for e in x.output_.estimates]
        ey = [(e.measure, e.time, e.estimate, e.se) for e in y.output_.estimates]
        assert [k[:2] for k in ex] == [k[:2] for k in ey]
        np.testing.assert_allclose([k[2:] for k in ex], [k[2:] for k in ey], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x.output_.curves.table["surv"], y.output_.curves.table["surv"], rtol=1e-12)


# ------------------------------------------------------------------------- refusals ---
def test_stabilized_only_for_ate(gbsg, targets):
    with pytest.raises(SpecError) as exc:
        IPTW(estimand="ATT", stabilized=True).fit(gbsg, targets)
    assert str(exc.value) == "adjustment 'iptw': option 'stabilized' applies to estimand ATE only, got ATT"


def test_weight_column_excludes_score_column(gbsg, targets):
    with pytest.raises(SpecError) as exc:
        IPTW(weight_column="w", score_column="ps").fit(gbsg, targets)
    assert str(exc.value) == "adjustment 'iptw': 'weight_column' cannot be combined with 'score_column' or 'trim'"


def test_bad_estimand_option():
    with pytest.raises(SpecError) as exc:
        IPTW.validate_options({"estimand": "ATC"})
    assert str(exc.value) == "adjustment 'iptw': option 'estimand' must be one of ATE, ATT, ATO, got 'ATC'"


def test_time_varying_refused(gbsg, targets):
    assert IPTW.incompatible["time_varying"].startswith("treatment changes over follow-up")
    gbsg.time_varying = True
    with pytest.raises(EstimationError) as exc:
        IPTW().fit(gbsg, targets)
    assert str(exc.value) == ("adjustment 'iptw': treatment changes over follow-up; a baseline propensity score "
                              "does not apply (use sequential_trials or clone_censor)")


def test_caller_data_untouched(gbsg, targets):
    w0, X0 = gbsg.weight.copy(), gbsg.X.copy()
    IPTW(trim=[0.2, 0.8]).fit(gbsg, targets)
    assert np.array_equal(gbsg.weight, w0) and np.array_equal(gbsg.X, X0) and gbsg.n_rows == 686
