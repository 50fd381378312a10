"""Time-zero designs on a 7-patient cohort whose rows and weights are
worked out by hand (comments give the arithmetic).

    id  T   E  treatment_time
    1   10  1  -      never treated
    2    8  0  2      treated at 2
    3    5  1  4      treated at 4
    4    1  1  -      dies at 1
    5    6  1  -      never treated
    6   12  0  0      treated at time zero
    7    7  1  7      treated on the day of death (tmerge: untreated)

Hazard of starting treatment (no confounders: Nelson-Aalen on the time to
treatment, death/censoring ending the at-risk time; time 0 moved to
eps = 1e-6 * 12): events at eps (7 at risk), 2 (5 at risk: 1,2,3,5,7) and 4
(4 at risk: 1,3,5,7), so H = 1/7 on [eps, 2), 1/7 + 1/5 = 12/35 on [2, 4),
12/35 + 1/4 = 83/140 from 4 on.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.design.clone_censor import CloneCensor
from causal_hcc.design.landmark import Landmark
from causal_hcc.design.sequential_trials import SequentialTrials
from causal_hcc.design.time_varying import TimeVarying
from causal_hcc.errors import DataError

EPS = 1.2e-5
H_EPS, H_2, H_4 = 1 / 7, 12 / 35, 83 / 140


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6, 7], "T": [10.0, 8, 5, 1, 6, 12, 7], "E": [1, 0, 1, 1, 1, 0, 1],
        "A": [0, 1, 1, 0, 0, 1, 1], "tA": [np.nan, 2, 4, np.nan, np.nan, 0, 7],
        "prog": [3.0, np.nan, np.nan, np.nan, 1.5, np.nan, np.nan],
    })


@pytest.fixture(scope="module")
def cohort(frame) -> Cohort:
    return Cohort(frame, id="id", time="T", event="E", treatment="A", treatment_time="tA")


def rows(d, unit_id):
    m = d.unit == unit_id
    return [(float(a), float(b), int(e), int(t), round(float(w), 12))
            for a, b, e, t, w in zip(d.start[m], d.stop[m], d.event[m], d.treatment[m], d.weight[m])]


def test_time_varying_rows_follow_tmerge(cohort):
    d = TimeVarying().fit(cohort, "os").data_
    assert rows(d, 1) == [(0, 2, 0, 0, 1), (2, 8, 0, 1, 1)]    # id 2: split at treatment
    assert rows(d, 2) == [(0, 4, 0, 0, 1), (4, 5, 1, 1, 1)]    # event on the treated interval
    assert rows(d, 5) == [(0, 12, 0, 1, 1)]           # treated at 0: treated from the start
    assert rows(d, 6) == [(0, 7, 1, 0, 1)]            # treated at the event time: untreated
    assert rows(d, 0) == [(0, 10, 1, 0, 1)]
    assert d.time_varying and d.n_rows == 9
    assert dict(d.flow)["of whom treated at time zero"] == 1


def test_time_varying_adjust_state_adds_tdc(frame):
    c = Cohort(frame, id="id", time="T", event="E", treatment="A", treatment_time="tA")
    d = TimeVarying(adjust_state="prog").fit(c, "os").data_
    assert d.confounders == ["prog (time-varying)"]
    m = d.patient == 0                                 # progression at 3: (0,3] 0, (3,10] 1
    assert d.stop[m].tolist() == [3.0, 10.0] and d.X[m, 0].tolist() == [0.0, 1.0]
    assert any("mediator" in n for n in d.notes)


def test_landmark_rows_and_flow(cohort):
    d = Landmark(landmark=2).fit(cohort, "os").data_
    assert d.patient.tolist() == [0, 1, 2, 4, 5, 6]     # patient 4 died at 1
    assert d.stop.tolist() == [8, 6, 3, 4, 10, 5]
    assert d.treatment.tolist() == [0, 1, 0, 0, 1, 0]   # treated by 2: ids 2 and 6
    flow = dict(d.flow)
    assert flow["excluded: event by landmark 2"] == 1
    assert flow["of whom treated after landmark (analysed as untreated)"] == 2   # ids 3 and 7
    assert d.time_origin == 2.0


def test_landmark_require_event_free(frame):
    c = Cohort(frame, id="id", time="T", event="E", treatment="A", treatment_time="tA")
    d = Landmark(landmark=2, require_event_free="prog").fit(c, "os").data_
    assert 4 not in d.patient.tolist()                  # id 5 progressed at 1.5
    assert dict(d.flow)["excluded: prog event by landmark 2"] == 1


def test_clone_censor_never_arm(cohort):
    d = CloneCensor(grace=3, numerator="none").fit(cohort, "os").data_
    e1, e2, e4 = math.exp(H_EPS), math.exp(H_2), math.exp(H_4)
    r = lambda x: round(x, 12)  # noqa: E731
    assert rows(d, 0) == [(0, EPS, 0, 0, 1), (EPS, 2, 0, 0, r(e1)), (2, 4, 0, 0, r(e2)), (4, 10, 1, 0, r(e4))]
    assert rows(d, 1) == [(0, EPS, 0, 0, 1), (EPS, 2, 0, 0, r(e1))]             # censored at treatment
    assert rows(d, 3) == [(0, EPS, 0, 0, 1), (EPS, 1, 1, 0, r(e1))]
    assert rows(d, 5) == [(0, EPS, 0, 0, 1)]                                    # treated at 0
    assert rows(d, 6)[-1] == (4, 7, 1, 0, r(e4))                                 # tie: not a deviation


def test_clone_censor_treat_arm(cohort):
    d = CloneCensor(grace=3, numerator="none").fit(cohort, "os").data_
    n = 7
    # at risk of deviating at G = 3: ids 1, 2, 3, 5, 6, 7 (alive, treated or eligible); 2 treated -> w = 3
    wG = 3.0
    assert rows(d, n + 0) == [(0, 3, 0, 1, 1)]         # untreated at G: censored
    assert rows(d, n + 1) == [(0, 3, 0, 1, 1), (3, 8, 0, 1, wG)]
    assert rows(d, n + 2) == [(0, 3, 0, 1, 1)]         # treated at 4 > G
    assert rows(d, n + 3) == [(0, 1, 1, 1, 1)]         # died within grace: follows the strategy
    assert rows(d, n + 5) == [(0, 3, 0, 1, 1), (3, 12, 0, 1, wG)]
    assert d.arm_names == ("never treat", "treat within 3")
    flow = dict(d.flow)
    assert flow["never treat: censored at treatment start"] == 3
    assert flow["treat within 3: treated within grace"] == 2
    assert flow["treat within 3: censored at 3 (untreated, deviates)"] == 4
    assert set(np.unique(d.patient[d.unit >= n] - (d.unit[d.unit >= n] - n))) == {0}


def test_clone_censor_positivity_restrict():
    df = pd.DataFrame({"id": range(1, 9), "T": [10.0, 8, 5, 4, 6, 12, 7, 9], "E": [1, 0, 1, 1, 1, 0, 1, 1],
                       "A": [0, 1, 1, 0, 0, 1, 0, 0], "tA": [np.nan, 2, 1, np.nan, np.nan, 0, np.nan, np.nan],
                       "contra": [0, 0, 0, 1, 0, 0, 1, 0]})
    c = Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA", confounders=["contra"])
    d = CloneCensor(grace=3).fit(c, "os").data_
    assert sorted(set(d.patient.tolist())) == [0, 1, 2, 4, 5, 7]
    assert dict(d.flow)["excluded: nobody with contra=1 started treatment (no support for the strategy)"] == 2
    kept = CloneCensor(grace=3, positivity="keep").fit(c, "os").data_
    assert kept.n_patients == 8 and any(w.startswith("positivity: nobody with contra=1") for w in kept.warnings)


def test_clone_censor_loss_of_eligibility(frame):
    c = Cohort(frame, id="id", time="T", event="E", treatment="A", treatment_time="tA")
    d = CloneCensor(grace=3, require_event_free="prog", numerator="none").fit(c, "os").data_
    # id 5 progresses at 1.5 untreated: no longer eligible, not censored at G in the treat arm
    assert rows(d, 7 + 4) == [(0, 3, 0, 1, 1), (3, 6, 1, 1, 1)]
    # never arm weight of id 5 frozen after 1.5: pieces (0,eps], (eps,1.5], (1.5,6]
    w = [x[4] for x in rows(d, 4)]
    assert len(w) == 3 and w[1] == w[2]


def test_clone_censor_weight_at_grace_on_the_still_eligible():
    """The treat-arm weight at G is fitted on the clones that could be censored at G.

        id  T    E  treated  progression
        a   10   1  1        2      operated, then progressed before G
        b   8    0  2        -      operated, progression-free at G
        c   9    1  -        -      unoperated, eligible at G: censored
        d   6    1  -        2.2    progressed unoperated: follows the strategy
        e   2.5  1  -        -      died within grace
        f   12   0  -        -      unoperated, eligible at G: censored

    G = 3. Alive, under follow-up and progression-free at G: b, c, f, of
    whom b was operated: P = 1/3, so b weighs 3 after G. a progressed by G:
    no clone in its state is censored at G, so a weighs 1. (Fitting P on
    everyone alive and operated or eligible at G, a b c f, gave P = 1/2 and
    weight 2 to a and b: censored progression-free clones were partly
    replaced by an operated-and-progressed one.)
    """
    df = pd.DataFrame({"id": list("abcdef"), "T": [10.0, 8, 9, 6, 2.5, 12], "E": [1, 0, 1, 1, 1, 0],
                       "A": [1, 1, 0, 0, 0, 0], "tA": [1.0, 2, np.nan, np.nan, np.nan, np.nan],
                       "prog": [2.0, np.nan, np.nan, 2.2, np.nan, np.nan]})
    c = Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA")
    d = CloneCensor(grace=3, require_event_free="prog", numerator="none").fit(c, "os").data_
    n = 6
    assert rows(d, n + 0) == [(0, 3, 0, 1, 1), (3, 10, 1, 1, 1)]
    assert rows(d, n + 1) == [(0, 3, 0, 1, 1), (3, 8, 0, 1, 3)]
    assert rows(d, n + 2) == [(0, 3, 0, 1, 1)]
    assert rows(d, n + 3) == [(0, 3, 0, 1, 1), (3, 6, 1, 1, 1)]
    assert rows(d, n + 4) == [(0, 2.5, 1, 1, 1)]
    assert rows(d, n + 5) == [(0, 3, 0, 1, 1)]
    flow = dict(d.flow)
    assert flow["treat within 3: treated within grace, prog event by 3 (cannot be censored at G: weight 1)"] == 1
    assert flow["treat within 3: prog event untreated within grace (no longer eligible)"] == 1
    assert flow["treat within 3: censored at 3 (untreated, deviates)"] == 2
    # never arm: treatment hazard 1/6 at 1 (all 6 at risk), 1/5 at 2 (b c d e f); d frozen at 2.2
    h1, h2 = 1 / 6, 1 / 6 + 1 / 5
    r = lambda x: round(x, 12)  # noqa: E731
    assert rows(d, 3) == [(0, 1, 0, 0, 1), (1, 2, 0, 0, r(math.exp(h1))), (2, 2.2, 0, 0, r(math.exp(h2))),
                          (2.2, 6, 1, 0, r(math.exp(h2)))]
    assert rows(d, 0) == [(0, 1, 0, 0, 1)]                                       # censored at surgery


def test_clone_censor_positivity_at_grace_warns():
    """A level of a confounder with nobody operated by G among those still
    eligible at G (x = 1 only operated after G) is named in a warning."""
    df = pd.DataFrame({"id": range(1, 9), "T": [10.0, 8, 9, 7, 12, 11, 9, 6], "E": [1, 0, 1, 1, 0, 1, 0, 1],
                       "A": [1, 1, 0, 0, 1, 0, 0, 0], "tA": [1.0, 2, np.nan, np.nan, 5, np.nan, np.nan, np.nan],
                       "x": [0, 0, 0, 0, 1, 1, 1, 0]})
    c = Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA", confounders=["x"])
    d = CloneCensor(grace=3).fit(c, "os").data_
    assert d.warnings == ["positivity at 3: nobody with x=1 who was still eligible at 3 had been treated within "
                          "grace, so the 'treat within 3' clones censored there are represented by nobody"]


def test_sequential_trials_itt(cohort):
    d = SequentialTrials(grid=1, window=2).fit(cohort, "os").data_
    # trial 0: everyone, id 6 treated; trial 1 (s=1): nobody treated in [1,2) -> skipped;
    # trial 2 (s=2): ids 1,2,3,5,7 eligible, id 2 treated
    assert np.unique(d.stratum).tolist() == [0, 2]
    t2 = d.stratum == 2
    assert d.patient[t2].tolist() == [0, 1, 2, 4, 6]
    assert d.stop[t2].tolist() == [8, 6, 3, 4, 5] and d.treatment[t2].tolist() == [0, 1, 0, 0, 0]
    t0 = d.stratum == 0
    assert d.treatment[t0].tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert (d.unit == 2 * 7 + d.patient).sum() == 5
    assert dict(d.flow)["trials skipped (one arm empty)"] == 1


def test_sequential_trials_per_protocol(cohort):
    d = SequentialTrials(grid=1, window=2, analysis="per_protocol", numerator="none").fit(cohort, "os").data_
    r = lambda x: round(x, 12)  # noqa: E731
    # trial 0: id 6's start at time zero (at eps) is its assignment to the treated arm, not a deviation of the
    # controls, so the controls' hazard counts from eps, as a start at s counts from s in later trials
    assert rows(d, 0) == [(0, EPS, 0, 0, 1), (EPS, 2, 0, 0, 1), (2, 4, 0, 0, r(math.exp(H_2 - H_EPS))),
                          (4, 10, 1, 0, r(math.exp(H_4 - H_EPS)))]
    assert rows(d, 14) == [(0, 2, 0, 0, 1), (2, 8, 1, 0, r(math.exp(H_4 - H_2)))]   # trial 2, id 1
    assert rows(d, 16) == [(0, 2, 0, 0, 1)]                                         # id 3 treated at 4
    assert rows(d, 15) == [(0, 6, 0, 1, 1)]                                         # treated arm


def test_sequential_trials_per_protocol_stabilised_is_one_without_confounders(cohort):
    """Stabilised (the default): the numerator is the hazard of starting in each trial since its start (Nelson-Aalen
    per trial, starts at the trial start left out as assignments). Trial 0 (without id 6, treated at 0): starts at 2
    (5 at risk: 1, 2, 3, 5, 7) and 4 (4 at risk): 1/5 and 1/4 = the increments of H after eps. Trial 2 (ids 1, 3, 5,
    7; id 2 starts at 2): a start at 4 with 4 at risk, 1/4 = H_4 - H_2. So every weight is 1: with nothing to
    confound, nothing is reweighted."""
    d = SequentialTrials(grid=1, window=2, analysis="per_protocol").fit(cohort, "os").data_
    assert np.allclose(d.weight, 1.0, rtol=0, atol=1e-12)
    assert rows(d, 0)[-1] == (4, 10, 1, 0, 1)
    w = d.diagnostics["weights"]
    assert w["numerator"] == "time" and w["estimand"] == "stabilised IPCW (per protocol)"
    assert w["numerator_model"]["events"] == 3                  # id 2 and 3 in trial 0, id 3 in trial 2
    unstab = SequentialTrials(grid=1, window=2, analysis="per_protocol", numerator="none").fit(cohort, "os").data_
    assert w["ess"] > unstab.diagnostics["weights"]["ess"]


def test_clone_censor_stabilised_is_one_without_confounders(cohort):
    """Never-treat clones: the numerator (time only) is the Nelson-Aalen hazard of the same risk set, so it equals
    the denominator. Treat clones after G = 3: P(not censored at 3) among the 6 clones alive at 3 is 2/6 (ids 2, 6
    treated within grace), the denominator's P(treated by 3) among the same 6 also 1/3. Every weight is 1."""
    d = CloneCensor(grace=3).fit(cohort, "os").data_
    assert np.allclose(d.weight, 1.0, rtol=0, atol=1e-12)
    assert d.diagnostics["weights"]["estimand"] == "stabilised IPCW"
    assert any("stabilised weights: numerator of time only" in x for x in d.notes)


def test_clone_censor_stabilised_with_loss_of_eligibility():
    """The data of test_clone_censor_weight_at_grace_on_the_still_eligible, stabilised by time. Treat clones after
    G = 3: the numerator is P(not censored at 3) among every clone alive at 3 (a, b, c, d, f; e died at 2.5): a and b
    treated within grace, d no longer eligible, so 3/5. The denominator is that of the unstabilised weights (b: 1/3;
    a and d cannot be censored: 1). So b weighs 3 x 3/5, a and d 3/5: the weights after G sum to the 3 clones left,
    not to the 5 that were at risk. Never-treat clones: the numerator's risk set does not stop at progression (the
    numerator may not depend on it): d (progressed at 2.2) stays in it; both starts (1 and 2) come before 2.2, so
    the numerator equals the denominator and every never-treat weight is 1."""
    df = pd.DataFrame({"id": list("abcdef"), "T": [10.0, 8, 9, 6, 2.5, 12], "E": [1, 0, 1, 1, 1, 0],
                       "A": [1, 1, 0, 0, 0, 0], "tA": [1.0, 2, np.nan, np.nan, np.nan, np.nan],
                       "prog": [2.0, np.nan, np.nan, 2.2, np.nan, np.nan]})
    c = Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA")
    d = CloneCensor(grace=3, require_event_free="prog").fit(c, "os").data_
    n = 6
    r = lambda x: round(x, 12)  # noqa: E731
    assert rows(d, n + 0) == [(0, 3, 0, 1, 1), (3, 10, 1, 1, r(3 / 5))]
    assert rows(d, n + 1) == [(0, 3, 0, 1, 1), (3, 8, 0, 1, r(9 / 5))]
    assert rows(d, n + 3) == [(0, 3, 0, 1, 1), (3, 6, 1, 1, r(3 / 5))]
    assert np.allclose(d.weight[d.unit < n], 1.0, rtol=0, atol=1e-12)


def test_stabilised_numerator_needs_a_conditional_outcome_model_for_baseline():
    from causal_hcc import strategies as reg
    from causal_hcc.errors import SpecError

    with pytest.raises(SpecError) as e:
        reg.resolve({"design": "clone_censor", "numerator": "baseline"})
    assert "numerator 'baseline'" in str(e.value) and "adjustment 'none' is marginal" in str(e.value)
    with pytest.raises(SpecError):
        reg.resolve({"design": "sequential_trials", "analysis": "per_protocol", "adjustment": "iptw",
                     "numerator": "baseline"})
    (spec,) = reg.resolve({"design": "clone_censor", "adjustment": "multivariable", "numerator": "baseline"})
    assert spec.build().design.conditional_
    (spec,) = reg.resolve({"design": "clone_censor", "adjustment": "multivariable"})
    assert spec.label == "clone_censor(3)+multivariable"


def test_clone_censor_baseline_numerator_with_multivariable_needs_no_weights():
    """With baseline confounders only (no eligibility state) and an outcome model conditional on them, numerator
    and denominator are the same model: weights 1, the Cox model conditional on x is the estimate."""
    from causal_hcc import strategies as reg
    from causal_hcc.base import Targets

    rng = np.random.default_rng(3)
    n = 120
    x = rng.normal(size=n)
    tA = np.where(rng.uniform(size=n) < 0.5, rng.exponential(4, n) * np.exp(-0.5 * x), np.nan)
    T = rng.exponential(10, n)
    df = pd.DataFrame({"id": range(n), "T": T, "E": 1, "A": (np.isfinite(tA) & (tA < T)).astype(int),
                       "tA": np.where(np.isfinite(tA) & (tA < T), tA, np.nan), "x": x})
    c = Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA", confounders=["x"])
    (spec,) = reg.resolve({"design": "clone_censor", "grace": 2, "adjustment": "multivariable"})
    s = spec.build()
    s.fit(c, "os", Targets())
    assert s.design.data_.diagnostics["weights"]["numerator"] == "baseline"
    assert np.allclose(s.design.data_.weight, 1.0, rtol=0, atol=1e-9)


def test_sequential_trials_default_grid(cohort):
    d = SequentialTrials().fit(cohort, "os").data_
    q = float(np.quantile([2, 4, 0, 7], 0.9))
    assert d.diagnostics["trials"]["grid"] == pytest.approx(q / 24)
    assert d.diagnostics["trials"]["window"] == pytest.approx(q)


@pytest.mark.parametrize("design", [Landmark(landmark=1), TimeVarying(), SequentialTrials(), CloneCensor()])
def test_needs_treatment_time(frame, design):
    c = Cohort(frame, id="id", time="T", event="E", treatment="A")
    with pytest.raises(DataError) as e:
        design.fit(c, "os")
    assert str(e.value) == (f"design '{design.name}' needs the role 'treatment_time' (time zero -> treatment); "
                            "the data has none")


def test_unknown_state(cohort):
    with pytest.raises(DataError) as e:
        Landmark(landmark=1, require_event_free="pfs").fit(cohort, "os")
    assert str(e.value) == "design 'landmark': 'pfs' is neither an outcome (os) nor a column of the data"


def test_caller_frame_untouched(frame, cohort):
    before = frame.copy()
    for d in (Landmark(landmark=2), TimeVarying(), SequentialTrials(grid=1, window=2), CloneCensor(grace=3)):
        d.fit(cohort, "os")
    pd.testing.assert_frame_equal(frame, before)


def test_sequential_trials_treated_followed_from_their_actual_start(cohort):
    """Trials every 1.5 up to 3: id 2 (treated at 2, censored at 8) is treated in the trial at 1.5 and
    followed from 2: (0, 8 - 2]; id 3 (treated at 4, dies at 5) in the trial at 3: (0, 1]. Counted from the
    trial start (treated_from: trial_start) they would be (0, 6.5] and (0, 2], credited with 0.5 and 1 of
    immortal time."""
    for analysis in ("itt", "per_protocol"):
        d = SequentialTrials(grid=1.5, window=3, analysis=analysis).fit(cohort, "os").data_
        assert rows(d, 1 * 7 + 1) == [(0.0, 6.0, 0, 1, 1)]     # trial 1 (s = 1.5), id 2
        assert rows(d, 2 * 7 + 2) == [(0.0, 1.0, 1, 1, 1)]     # trial 2 (s = 3), id 3
        assert rows(d, 0 * 7 + 5) == [(0.0, 12.0, 0, 1, 1)]    # trial 0, id 6 treated at 0
        assert rows(d, 1 * 7 + 0)[-1][1] == 8.5                # a control of trial 1 keeps its clock: 10 - 1.5
        assert d.diagnostics["trials"]["mean_immortal_time"] == 0.0
        assert any(n.startswith("treated patient-trials are followed from their actual treatment start (on average "
                                "0.5 after the trial start, at most 1.5)") for n in d.notes)
        old = SequentialTrials(grid=1.5, window=3, analysis=analysis, treated_from="trial_start").fit(cohort, "os").data_
        assert rows(old, 1 * 7 + 1) == [(0.0, 6.5, 0, 1, 1)] and rows(old, 2 * 7 + 2) == [(0.0, 2.0, 1, 1, 1)]
        assert old.diagnostics["trials"]["mean_immortal_time"] == pytest.approx(0.5)
        assert any(n.startswith("treated_from: trial_start: treated patient-trials are followed from the trial "
                                "start, 0.5 on average before their treatment") for n in old.notes)
