"""Stabilised artificial-censoring weights of clone-censor and per-protocol sequential trials, and the defects
found with them: what the numerator is, that it follows the outcome model, and when the weights stop changing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causal_hcc import strategies as reg
from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.config import parse_spec
from causal_hcc.core.logistic import logistic_fit
from causal_hcc.pipeline import check
from causal_hcc.timeline import attach_visits
from tests.core._fixtures import FIXTURES


@pytest.fixture(scope="module")
def tv_cohort():
    pts = pd.read_csv(FIXTURES / "design_tv_weights_patients.csv")
    vis = pd.read_csv(FIXTURES / "design_tv_weights_visits.csv")
    c = Cohort(pts, id="id", time="time", event="event", treatment="treated", treatment_time="treatment_time",
               confounders=["v"])
    return attach_visits(c, vis, id="id", time="time", columns=["L"])


def _design(cohort, entry):
    (spec,) = reg.resolve(entry)
    s = spec.build()
    s.fit(cohort, "os", Targets())
    return s.design.data_


def test_clone_censor_grace_zero_treat_arm_weight_uses_the_time_varying_confounders_at_zero(tv_cohort):
    """G = 0: the treat arm keeps the clones treated at time zero, weighted by 1 / P(treated at 0 | v, L(0)):
    L(0) is known to that decision (it was left out: the weight used v only)."""
    d = _design(tv_cohort, {"design": "clone_censor", "grace": 0, "numerator": "none"})
    T = np.asarray(tv_cohort.time(), float)
    tt = np.asarray(tv_cohort.treatment_time, float)
    treated0 = np.isfinite(tt) & (tt <= 0) & (tt < T)
    L0 = tv_cohort.timeline.at(np.arange(T.size), np.zeros(T.size))[:, 0]
    Z = np.column_stack([np.ones(T.size), np.asarray(tv_cohort.X)[:, 0], L0])
    p = logistic_fit(Z, treated0.astype(float)).fitted
    arm1 = (d.treatment == 1) & (d.start >= 0)
    np.testing.assert_allclose(d.weight[arm1], 1 / p[d.patient[arm1]], rtol=1e-8)
    assert d.diagnostics["weights"]["treat_arm_model"] == "decision at time zero"


def test_starts_after_eligibility_ended_are_deviations_the_weights_model():
    """Person-period data: eligibility (for trial starts and clones) ends at a window, but untreated patients still
    start later. Such a start censors a control (per protocol) or a never-treat clone, so the treatment-start model
    must count it: it counted only starts while eligible, leaving that censoring unweighted."""
    rows = []
    spec_rows = {  # id: (periods, eligible, treated from, outcome at the last period)
        "A": (6, [1, 1, 0, 0, 0, 0], None, 0), "B": (6, [1, 1, 1, 1, 1, 0], 4, 0), "C": (6, [1] * 6, 0, 1),
        "D": (5, [1, 1, 0, 0, 0], 1, 1), "E": (6, [1] * 6, None, 1), "F": (6, [1] * 6, None, 0),
        "G": (6, [1] * 6, 3, 0), "H": (6, [1, 1, 0, 0, 0, 0], 4, 1)}   # H starts at 4, after its eligibility
    for pid, (k, el, tx, y) in spec_rows.items():
        for p in range(k):
            rows.append({"pid": pid, "month": p, "eligible": el[p], "tx": int(tx is not None and p >= tx),
                         "death": int(y == 1 and p == k - 1)})
    df = pd.DataFrame(rows)
    spec = parse_spec({"study": "pp", "data": {"layout": "person_period"},
                       "roles": {"id": "pid", "period": "month", "event": "death", "treatment": "tx",
                                 "eligible": "eligible"},
                       "strategies": ["naive"], "bootstrap": {"replicates": 0}})
    cohort, _ = check(spec, data=df)
    starts_after_zero = 4            # B (4), D (1), G (3), H (4); C's start at 0 is trial 0's assignment
    d = _design(cohort, {"design": "sequential_trials", "grid": 1, "window": 1, "analysis": "per_protocol",
                         "numerator": "none"})
    assert d.diagnostics["weights"]["treatment_events_in_model"] == starts_after_zero + 1     # + C at time 0
    c = _design(cohort, {"design": "clone_censor", "grace": 1, "numerator": "none"})
    assert c.diagnostics["weights"]["treatment_events_in_model"] == starts_after_zero + 1
    # A (untreated, eligible in 0-1) is a control of trial 0: its weight changes at the starts at 3 and 4
    a = int(np.flatnonzero(np.asarray(cohort.ids) == "A")[0])
    m = (d.patient == a) & (d.stratum == 0)
    w_after = d.weight[m][d.start[m] >= 4]
    w_before = d.weight[m][(d.start[m] >= 1) & (d.start[m] < 3)]
    assert w_after.size and w_before.size and w_after[0] > w_before[0]


# ---- seeded simulation: same target, smaller variance -------------------------------------------------------------
# Havercroft & Didelez's data (tests/havercroft.py) with initiation theta0 = -2: the marginal structural log HR of
# "treat from time zero" vs "never treat" is -0.5 exactly (proportional hazards), the never-treat survival
# exp(-e^-3 t). Clone-censor with G = 0 targets exactly that HR; per-protocol sequential trials target their own
# trial-level contrast, the same whatever the numerator.
SIM = {
    "cc_time": {"design": "clone_censor", "grace": 0, "censoring_model": "logistic", "censoring_grid": 5},
    "cc_none": {"design": "clone_censor", "grace": 0, "censoring_model": "logistic", "censoring_grid": 5,
                "numerator": "none"},
    "pp_time": {"design": "sequential_trials", "grid": 5, "window": 20, "analysis": "per_protocol",
                "censoring_model": "logistic", "censoring_grid": 5},
    "pp_none": {"design": "sequential_trials", "grid": 5, "window": 20, "analysis": "per_protocol",
                "censoring_model": "logistic", "censoring_grid": 5, "numerator": "none"},
}


def _simulate(replicates: int, n: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    from havercroft import simulate

    built = {k: reg.resolve(v)[0] for k, v in SIM.items()}
    out = {k: {"loghr": [], "ess": []} for k in SIM}
    for r in range(replicates):
        pts, vis = simulate(n, seed=seed + r, theta=(-2.0, 0.0205, -0.00405))
        c = Cohort(pts, id="id", time="time", event="event", treatment="treated", treatment_time="treatment_time",
                   confounders=["v"])
        c = attach_visits(c, vis, id="id", time="time", columns=["L"])
        for k, spec in built.items():
            s = spec.build()
            est = next(e for e in s.fit(c, "os", Targets()).estimates if e.measure == "hr")
            out[k]["loghr"].append(float(np.log(est.estimate)))
            out[k]["ess"].append(s.design.data_.diagnostics["weights"]["ess"])
    return {k: {m: np.asarray(v) for m, v in d.items()} for k, d in out.items()}


def _check_simulation(res, strict: bool) -> None:
    from havercroft import GAMMA_A

    R = res["cc_time"]["loghr"].size
    for d in ("cc", "pp"):
        st, un = res[f"{d}_time"], res[f"{d}_none"]
        assert np.all(st["ess"] > un["ess"]), d                       # every replicate
        diff = st["loghr"] - un["loghr"]
        mcse = diff.std(ddof=1) / np.sqrt(R)
        if d == "pp":   # the same target: the paired difference is 0 within Monte Carlo error
            assert abs(diff.mean()) < 3 * mcse + 0.01, (diff.mean(), mcse)
        if strict:
            assert st["loghr"].std(ddof=1) < un["loghr"].std(ddof=1), d
    cc = res["cc_time"]["loghr"]
    assert abs(cc.mean() - GAMMA_A) < 3 * cc.std(ddof=1) / np.sqrt(R), cc.mean()


def test_stabilised_weights_same_target_higher_ess_quick():
    _check_simulation(_simulate(replicates=6, n=1500, seed=7000), strict=False)


@pytest.mark.slow
def test_stabilised_weights_same_target_higher_ess():
    """30 replicates x n = 2,000 (docs/time_varying.md): clone-censor(0) mean log HR -0.486 (MC SE 0.015) stabilised,
    -0.469 (0.020) unstabilised, truth -0.5; SD 0.084 vs 0.107; ESS 3,458 vs 1,564."""
    _check_simulation(_simulate(replicates=30, n=2000, seed=5000), strict=True)


def test_per_protocol_rows_have_no_empty_pieces_with_loss_weights():
    """The denominator's cuts (t - s) and the numerator's (times from the trial start) can be the same time up to
    rounding: their plain union cut pieces of length 1e-17, which the loss-to-follow-up weights' subtraction of the
    trial start made empty ('coxph: entry must be < time')."""
    df = pd.read_csv(FIXTURES / "outcome_competing_cohort.csv")
    rng = np.random.default_rng(2)
    df["lost"] = ((df["died"] == 0) & (rng.random(len(df)) < 0.5)).astype(int)
    rows = []
    for pid, fu in zip(df.patient_no, df.fu_months):
        alb = rng.normal(38, 4)
        for t in np.arange(0, fu, 2.0):
            alb += rng.normal(0, 1.5)
            rows.append((pid, float(t), alb))
    vis = pd.DataFrame(rows, columns=["patient_no", "month", "albumin"])
    c = Cohort(df, id="patient_no", time="fu_months", event="died", treatment="operated",
               treatment_time="months_to_op", confounders=["fit_pt", "age_y"])
    c = attach_visits(c, vis, id="patient_no", time="month", columns=["albumin"], censored="lost")
    (spec,) = reg.resolve({"design": "sequential_trials", "analysis": "per_protocol"})
    s = spec.build()
    out = s.fit(c, "os", Targets())
    d = s.design.data_
    assert np.all(d.stop - d.start > 1e-9)
    assert next(e for e in out.estimates if e.measure == "hr").estimate > 0


def test_loss_weights_keep_a_short_row_far_from_its_origin():
    """A row (0, 1e-16] whose origin is 3.08 (a treated patient-trial followed from its start just before its
    event): origin + stop - origin is 0 in floating point, so the loss-weight split made it empty and a bootstrap
    replicate of per-protocol trials stopped with 'coxph: entry must be < time'. Each row's first and last
    pieces now keep the row's own start and stop."""
    import copy

    from causal_hcc.design._tv import loss_weights

    df = pd.read_csv(FIXTURES / "outcome_competing_cohort.csv")
    rng = np.random.default_rng(3)
    df["lost"] = ((df["died"] == 0) & (rng.random(len(df)) < 0.5)).astype(int)
    vis = pd.DataFrame([(pid, float(t), rng.normal(38, 4)) for pid, fu in zip(df.patient_no, df.fu_months)
                        for t in np.arange(0, fu, 2.0)], columns=["patient_no", "month", "albumin"])
    c = Cohort(df, id="patient_no", time="fu_months", event="died", treatment="operated",
               treatment_time="months_to_op", confounders=["fit_pt", "age_y"])
    c = attach_visits(c, vis, id="patient_no", time="month", columns=["albumin"], censored="lost")
    (spec,) = reg.resolve({"design": "sequential_trials"})
    s = spec.build()
    s.fit(c, "os", Targets())
    d = copy.copy(s.design.data_)
    origin = np.array(d.row_origin, dtype=float)
    i = int(np.flatnonzero(d.stop > 1.0)[0])
    d.start, d.stop = d.start.copy(), d.stop.copy()
    origin[i], d.start[i], d.stop[i] = 3.0829568788501025, 0.0, 1e-16
    assert origin[i] + d.stop[i] - origin[i] == 0.0          # the rounding this test is about
    new, _, r = loss_weights(d, origin=origin)
    assert np.all(new.stop > new.start)
    assert np.flatnonzero(r == i).size == 1 and new.stop[r == i][0] == 1e-16
    for k in np.unique(r):   # every row's pieces start at its start and end at its stop, exactly
        assert new.start[r == k][0] == d.start[k] and new.stop[r == k][-1] == d.stop[k]


def test_clone_censor_nobody_treated_within_grace_is_refused():
    """Nobody treated by G: the treat-within-G arm has no clone after G. It gave a Cox HR of 0 with a monotone-
    likelihood warning; it is now one line naming the first treatment time."""
    from causal_hcc.design.clone_censor import CloneCensor
    from causal_hcc.errors import EstimationError

    df = pd.DataFrame({"id": range(1, 8), "T": [10.0, 8, 5, 1, 6, 12, 7], "E": [1, 0, 1, 1, 1, 0, 1],
                       "A": [0, 1, 1, 0, 0, 1, 1], "tA": [np.nan, 2, 4, np.nan, np.nan, 1, 7]})
    c = Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA")
    with pytest.raises(EstimationError) as e:
        CloneCensor(grace=0.5).fit(c, "os")
    assert str(e.value) == ("design 'clone_censor': nobody starts treatment within the grace period (by 0.5), so the "
                            "'treat within 0.5' arm has no clone left after it; the first treatment is at 1")


@pytest.mark.parametrize("extra", [{"outcome_model": "pooled_logistic"}, {"ties": "breslow"}])
def test_competing_events_refuse_pooled_logistic_and_breslow_when_the_spec_loads(extra):
    """They were refused mid-run, after other strategies had been fitted; now at load (validate, exit 2)."""
    from causal_hcc.errors import SpecError

    spec = {"study": "s", "data": {"path": "x.csv"},
            "roles": {"id": "id", "time": "t", "event": "cause", "treatment": "a", "treatment_time": "ta",
                      "outcome": "cancer_death"},
            "competing": [2], "strategies": ["naive", {"design": "time_varying", "adjustment": "msm", **extra}]}
    with pytest.raises(SpecError) as e:
        parse_spec(spec)
    k, v = next(iter(extra.items()))
    assert str(e.value) == (f"strategy 'time_varying+msm({'pooled_logistic' if v == 'pooled_logistic' else v})': "
                            f"{k}: {v} is not implemented for outcome 'cancer_death', which has competing events "
                            "(its cause-specific and Fine-Gray models are Cox models with Efron ties); "
                            "remove the option")
    del spec["competing"]
    parse_spec(spec)


@pytest.mark.parametrize("h,span", [(1.0, 40), (0.25, 40), (1.0, 300)])
def test_rows_by_interval_equals_the_person_interval_expansion(h, span):
    """The per-interval weight diagnostics computed without expanding the rows into person-intervals equal
    those of the expansion (interval_diagnostics of every unit at every grid time its row covers), pooled
    intervals (more than 60 grid times) included."""
    from causal_hcc.design._tv import _EPS, interval_diagnostics, rows_by_interval

    rng = np.random.default_rng(int(h * 100) + span)
    n = 3000
    origin = rng.integers(0, span // 3, n).astype(float)
    start = rng.uniform(0, span / 2, n)
    stop = start + rng.exponential(span / 6, n) + 1e-3
    stop[:50] = start[:50] + 1e-6          # rows that cover no grid time
    w = rng.lognormal(0, 0.7, n)
    got = rows_by_interval(start, stop, w, h, origin)
    a, b = start + origin, stop + origin
    klo = np.ceil(a / h - _EPS).astype(np.int64)
    khi = np.ceil(b / h - _EPS).astype(np.int64) - 1
    k = np.concatenate([np.arange(lo, hi + 1) for lo, hi in zip(klo, khi)])
    wr = np.concatenate([np.full(max(hi - lo + 1, 0), x) for lo, hi, x in zip(klo, khi, w)])
    want = interval_diagnostics(k, wr, h)
    assert got["pooled_intervals"] == want["pooled_intervals"] == (int(k.max()) + 1 > 60)
    for key in ("time", "n", "mean", "min", "max", "ess"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, err_msg=key)   # (difference-array sums)
    assert got["ess_overall"] == pytest.approx(wr.sum() ** 2 / np.sum(wr ** 2), rel=1e-12)
