"""Warnings that fire when they should, each naming the number that triggered it (issue 11 item 5, issue 15)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causal_hcc.adjust.multivariable import Multivariable, epv_guard
from causal_hcc.adjust.propensity import fit_propensity
from causal_hcc.base import DesignData, Targets
from causal_hcc.cohort import Cohort
from causal_hcc.design.sequential_trials import SequentialTrials
from causal_hcc.strategies import arm_size_warnings, resolve


def design_data(event, treatment, X=None, confounders=()):
    n = len(event)
    X = np.zeros((n, 0)) if X is None else np.asarray(X, float)
    return DesignData(design="landmark", outcome="os", start=np.zeros(n), stop=np.arange(1.0, n + 1),
                      event=np.asarray(event, float), treatment=np.asarray(treatment, np.int8), X=X,
                      confounders=list(confounders), patient=np.arange(n), unit=np.arange(n), weight=np.ones(n))


def test_epv_counts_the_smaller_arm():
    # 10 treated events, 63 untreated: 73 / 6 = 12.2 per parameter overall, 10 / 6 = 1.7 in the treated arm
    event = np.r_[np.ones(10), np.zeros(5), np.ones(63), np.zeros(20)]
    treat = np.r_[np.ones(15), np.zeros(83)]
    diag, warns = epv_guard(design_data(event, treat), 6, "multivariable Cox model")
    assert diag == {"events_per_variable": pytest.approx(73 / 6), "events_per_variable_smaller_arm": pytest.approx(10 / 6),
                    "events_treated": 10, "events_untreated": 63, "n_parameters": 6}
    assert warns == ["few events in the treated arm: 10 for 6 parameters of the multivariable Cox model (1.7 per "
                     "parameter < 10; 12.2 counting all 73 events): the treatment coefficient rests on few events"]


def test_epv_all_events_low_names_the_arm_too():
    event = np.r_[np.ones(3), np.ones(12)]
    treat = np.r_[np.ones(3), np.zeros(12)]
    _, warns = epv_guard(design_data(event, treat), 2, "paper's multivariable model")
    assert warns == ["few events per variable (7.5 < 10) in the paper's multivariable model: estimates may be "
                     "unstable (3 events in the treated arm, 1.5 per parameter)"]


def test_epv_enough_events_no_warning():
    event = np.r_[np.ones(20), np.ones(30)]
    treat = np.r_[np.ones(20), np.zeros(30)]
    assert epv_guard(design_data(event, treat), 2, "m")[1] == []


def test_multivariable_records_the_smaller_arm_epv():
    rng = np.random.default_rng(3)
    n = 120
    treat = np.r_[np.ones(20), np.zeros(100)]
    data = design_data(np.r_[np.ones(12), np.zeros(8), np.ones(70), np.zeros(30)], treat, rng.normal(size=(n, 2)),
                       ["x1", "x2"])
    data.stop = rng.permutation(data.stop)
    out = Multivariable().fit(data, Targets()).output_
    assert out.diagnostics["events_treated"] == 12
    assert out.diagnostics["events_per_variable_smaller_arm"] == pytest.approx(4.0)
    assert any(w.startswith("few events in the treated arm: 12 for 3 parameters") for w in out.warnings)


def test_propensity_parameters_per_treated_unit():
    rng = np.random.default_rng(1)
    n = 60
    treat = np.r_[np.ones(12), np.zeros(48)]
    data = design_data(np.ones(n), treat, rng.normal(size=(n, 3)), ["a", "b", "c"])
    ps = fit_propensity(data, where="adjustment 'iptw'")
    assert ("adjustment 'iptw': 12 treated units for 4 propensity-model parameters (3.00 per parameter < 10): "
            "the propensity model is likely overfitted (Peduzzi et al. 1996)") in ps.warnings
    big = design_data(np.ones(400), np.r_[np.ones(100), np.zeros(300)], rng.normal(size=(400, 3)), ["a", "b", "c"])
    assert not [w for w in fit_propensity(big).warnings if "per parameter" in w]


@pytest.fixture(scope="module")
def hand_cohort() -> Cohort:
    frame = pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6, 7], "T": [10.0, 8, 5, 1, 6, 12, 7], "E": [1, 0, 1, 1, 1, 0, 1],
        "A": [0, 1, 1, 0, 0, 1, 1], "tA": [np.nan, 2, 4, np.nan, np.nan, 0, 7]})
    return Cohort(frame, id="id", time="T", event="E", treatment="A", treatment_time="tA")


def test_sequential_grid_coarser_than_treatment_spacing(hand_cohort):
    # treated during follow-up at 0, 2, 4: median gap 2; grid 5 > 2 x 2 and > the default grid
    d = SequentialTrials(grid=5, window=8, treated_from="trial_start").fit(hand_cohort, "os").data_
    assert d.diagnostics["trials"]["treatment_time_spacing"] == 2
    assert d.diagnostics["trials"]["mean_immortal_time"] == 2   # treated at 2, 4, 0 in the trial at 0
    assert d.warnings == [
        "design 'sequential_trials': the trial grid (5) is coarser than the spacing of treatment times (median "
        "gap 2): patients treated up to 5 after a trial start count as treated from it, 2 of immortal time per "
        "treated patient-trial on average; use a grid near 2"]


def test_sequential_grid_coarse_but_treated_followed_from_their_start(hand_cohort):
    """By default the treated are followed from their actual start: no immortal time, no grid warning."""
    d = SequentialTrials(grid=5, window=8).fit(hand_cohort, "os").data_
    assert d.diagnostics["trials"]["mean_immortal_time"] == 0 and not d.warnings


@pytest.mark.parametrize("grid", [1.0, 3.0, None])
def test_sequential_grid_fine_enough_no_warning(hand_cohort, grid):
    d = SequentialTrials(grid=grid, window=8).fit(hand_cohort, "os").data_
    assert not [w for w in d.warnings if "grid" in w]


def test_tiny_arm_warning_every_design(hand_cohort):
    out = resolve("time_varying")[0].build().fit(hand_cohort, "os", Targets())
    assert ("only 3 patients in the treated time arm of the 'time_varying' analysis of 'os' (< 5): no estimate "
            "from so few patients can be trusted, whatever its p-value or CI") in out.warnings


def test_one_treated_patient():
    d = design_data(np.ones(8), np.r_[1, np.zeros(7)])
    assert arm_size_warnings(d) == [
        "only 1 patient in the treated arm of the 'landmark' analysis of 'os' (< 5): no estimate from so few "
        "patients can be trusted, whatever its p-value or CI"]
    assert arm_size_warnings(design_data(np.ones(10), np.r_[np.ones(5), np.zeros(5)])) == []
