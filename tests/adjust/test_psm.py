"""Propensity-score matching: hand-checked pairs, R coxph/survfit on our matched sets."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.adjust.psm import PSM, logit, nearest_neighbour_match
from causal_hcc.base import Targets
from adjust_support import TAU, TIMES, curve_at, design_from_frame, estimate, psm_ref

# rows:     T0    C0    T1   C1    T2   C2    C3
E = np.array([0.6, 0.45, 0.5, 0.45, 0.9, 0.58, 0.1])
A = np.array([1, 0, 1, 0, 1, 0, 0])


def test_caliper_width_is_pooled_sd_of_logit():
    lg = logit(E)
    sd = np.sqrt((np.var(lg[A == 1], ddof=1) + np.var(lg[A == 0], ddof=1)) / 2)
    assert nearest_neighbour_match(E, A, caliper=0.2).caliper_width == pytest.approx(0.2 * sd)


def test_pairs_by_hand_no_caliper():
    m = nearest_neighbour_match(E, A, caliper=None)
    # descending score: T2 (0.9) takes C2 (0.58, the nearest); T0 (0.6) then ties between C0 and C1
    # (both 0.45) and takes C0, the first in row order; T1 takes C1; C3 unused.
    assert m.pairs == [(4, 5), (0, 1), (2, 3)]
    assert m.weight.tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert m.subclass.tolist() == [1, 1, 2, 2, 0, 0, -1]
    assert m.unmatched_treated.size == 0


def test_pairs_by_hand_with_caliper():
    m = nearest_neighbour_match(E, A, caliper=0.2)  # width 0.2 * SD = 0.2 * 1.17... on the logit scale
    # T2 has no control within the caliper (nearest C2 is 1.87 logits away): unmatched.
    # T0 takes C2 (0.08 away); T1 ties between C0 and C1 (0.20 away, inside 0.234) and takes C0.
    assert m.pairs == [(0, 5), (2, 1)]
    assert m.unmatched_treated.tolist() == [4]
    assert m.weight.tolist() == [1, 1, 1, 0, 0, 1, 0]


def test_pairs_by_hand_with_replacement():
    m = nearest_neighbour_match(E, A, caliper=None, replace=True)
    assert m.pairs == [(4, 5), (0, 5), (2, 1)]
    # C2 is in two sets (raw weight 2), C0 in one (1); scaled to sum to 2 distinct controls
    np.testing.assert_allclose(m.weight, [1, 2 / 3, 1, 0, 1, 4 / 3, 0])


def test_ratio_two_in_rounds():
    m = nearest_neighbour_match(E, A, caliper=None, ratio=2)
    # round 1: T2-C2, T0-C0 (tie with C1 -> row order), T1-C1; round 2: T2-C3; no controls left
    assert m.pairs == [(4, 5), (0, 1), (2, 3), (4, 6)]
    np.testing.assert_allclose(m.weight, [1, 4 / 3, 1, 4 / 3, 1, 2 / 3, 2 / 3])


def test_exact_matching_by_hand():
    key = np.array([0, 1, 1, 0, 0, 1, 0])
    m = nearest_neighbour_match(E, A, caliper=None, exact=key)
    # T2 (key 0) -> C1 (0.45, key 0) over C3; T0 (key 0) -> C3; T1 (key 1) -> C0 (0.45, 0.20 away) over C2 (0.32)
    assert m.pairs == [(4, 3), (0, 6), (2, 1)]


@pytest.fixture(scope="module")
def psm_fits(gbsg_frame):
    t = Targets(survival_at=TIMES, rmst_tau=TAU)
    return {"nn1": PSM().fit(design_from_frame(gbsg_frame), t),
            "nn2r": PSM(ratio=2, replace=True).fit(design_from_frame(gbsg_frame), t)}


@pytest.mark.parametrize("name", ["nn1", "nn2r"])
def test_matched_set_is_the_fixture(psm_fits, gbsg_frame, name):
    frame, _ = psm_ref(name)
    fit = psm_fits[name]
    keep = fit.weights_ > 0
    assert gbsg_frame["pid"].to_numpy()[keep].tolist() == frame["pid"].tolist()
    np.testing.assert_allclose(fit.weights_[keep], frame["match_weight"], rtol=1e-12)


@pytest.mark.parametrize("name", ["nn1", "nn2r"])
def test_cox_on_matched_set_matches_r(psm_fits, name):
    _, r = psm_ref(name)
    e = estimate(psm_fits[name].output_, "hr")
    assert np.log(e.estimate) == pytest.approx(r["coef"], abs=1e-6)
    assert e.se == pytest.approx(r["se_robust"], rel=1e-6)
    assert e.variance_method == "cluster_robust" if name == "nn1" else "robust"


@pytest.mark.parametrize("k,t", list(enumerate(TIMES)))
@pytest.mark.parametrize("arm,group", [(0, "untreated"), (1, "treated")])
@pytest.mark.parametrize("name", ["nn1", "nn2r"])
def test_km_on_matched_set_matches_r(psm_fits, name, arm, group, k, t):
    _, r = psm_ref(name)
    s, se = curve_at(psm_fits[name].output_.curves, group, t)
    assert s == pytest.approx(r[f"surv{arm}"][k], abs=1e-6)
    assert se == pytest.approx(r[f"se{arm}"][k], rel=1e-6)


@pytest.mark.parametrize("name", ["nn1", "nn2r"])
def test_rmst_on_matched_set_matches_r(psm_fits, name):
    _, r = psm_ref(name)
    assert estimate(psm_fits[name].output_, "rmst_difference", TAU).estimate == pytest.approx(r["rmst_diff"], abs=1e-6)


def test_unmatched_treated_reported(psm_fits):
    out = psm_fits["nn1"].output_
    assert out.diagnostics["matching"]["unmatched_treated"] == 3
    assert out.diagnostics["matching"]["matched_treated"] == 243
    assert out.diagnostics["matching"]["matched_controls"] == 243
    assert ("adjustment 'psm': 3 of 246 treated units had no control within the caliper and were dropped: "
            "the estimate is for the matched treated, no longer the ATT") in out.warnings
    assert max(abs(x) for x in out.diagnostics["balance"]["smd_after"]) < 0.1


def test_replacement_note(psm_fits):
    assert "matching with replacement: SEs are clustered on patients, not matched sets" in psm_fits["nn2r"].output_.notes


def test_exact_option_on_gbsg(gbsg, targets):
    m = PSM(exact=["meno"]).fit(gbsg, targets)
    meno = gbsg.X[:, gbsg.confounders.index("meno")]
    assert all(meno[t] == meno[c] for t, c in m.matches_.pairs)


def test_exact_unknown_variable(gbsg, targets):
    from causal_hcc.errors import SpecError

    with pytest.raises(SpecError) as exc:
        PSM(exact=["stage"]).fit(gbsg, targets)
    assert str(exc.value) == ("adjustment 'psm': exact-matching variable 'stage' is not a confounder; "
                              "confounders: age, meno, size, grade, nodes, pgr, er")
