"""The twin's time-varying confounder (issue 19 item 6): the performance status at assessments.

Tiny hand-checkable pieces of the sequential simulator, the visits table, the truths under
it, and a seeded Monte Carlo check (slow) that baseline-only weights are biased while
time-varying weights recover their truth.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.twin import TwinParams, simulate_twin, simulate_twin_visits, simulate_twin_with_visits
from causal_hcc.twin.params import TIME_VARYING_PRESET
from causal_hcc.twin.simulate import VISIT_COLUMNS, _draw, course, n_visits, outcomes_given_surgery
from causal_hcc.twin.truth import estimand_truth

TV = TwinParams(true_hr=0.7, unmeasured_confounding=0.0, **TIME_VARYING_PRESET)


def _same(a: dict, b: dict, keys=("t_prog", "t_death", "surgery_time")) -> None:
    for k in keys:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert np.array_equal(np.isfinite(x), np.isfinite(y)), k
        f = np.isfinite(x)
        np.testing.assert_allclose(x[f], y[f], rtol=0, atol=1e-9, err_msg=k)
    assert np.array_equal(a["operated"], b["operated"])


def test_sequential_course_reproduces_the_closed_form_when_the_status_is_inert() -> None:
    p = TwinParams(true_hr=0.6, true_hr_progression=0.8, recalibrate=False)
    assert not p.tv_active
    pop = _draw(p, 3000, 11)
    prop = np.where(pop.u_cand < 0.4, pop.delay, np.inf)
    _same(course(pop, p, prop, surgeon=True), outcomes_given_surgery(pop, p, prop))


def test_status_that_never_turns_poor_changes_nothing() -> None:
    # active parameters, but nobody is ever poor: the course is the closed form's
    p = TwinParams(true_hr=0.6, recalibrate=False, ps_poor_baseline=0.0, ps_logit=-60.0, ps_progression_log_or=0.0,
                   ps_death_log_hr=1.0, ps_poor_operate_prob=0.0)
    assert p.tv_active
    inert = p.model_copy(update={"ps_death_log_hr": 0.0, "ps_poor_operate_prob": 1.0})
    pop = _draw(p, 2000, 3)
    prop = np.where(pop.u_cand < 0.4, pop.delay, np.inf)
    _same(course(pop, p, prop, surgeon=True), outcomes_given_surgery(pop, inert, prop))


def test_always_poor_status_multiplies_the_death_hazards() -> None:
    # everyone poor at every assessment: death hazards x exp(ps_death_log_hr) throughout
    p = TwinParams(recalibrate=False, ps_poor_baseline=1.0, ps_logit=60.0, ps_death_log_hr=math.log(2.0))
    doubled = p.model_copy(update={"ps_death_log_hr": 0.0, "death_rate_pf": 2 * p.death_rate_pf,
                                   "death_rate_progressed": 2 * p.death_rate_progressed})
    pop = _draw(p, 2000, 5)
    never = np.full(2000, np.inf)
    _same(course(pop, p, never, surgeon=False), outcomes_given_surgery(pop, doubled, never))


def test_poor_status_defers_surgery_to_an_assessment_with_good_status() -> None:
    p = TwinParams(recalibrate=False, ps_poor_operate_prob=0.0, ps_poor_baseline=0.5)
    pop = _draw(p, 5000, 8)
    prop = np.where(pop.u_cand < 0.5, pop.delay, np.inf)
    ev = course(pop, p, prop, surgeon=True, status=True)
    op = np.flatnonzero(ev["operated"])
    s = ev["surgery_time"][op]
    k = np.floor(s / p.visit_interval + 1e-12).astype(int)
    assert (ev["ps"][op, k] == 0).all()                              # status good when operated
    at_delay = np.isclose(s, pop.delay[op])
    at_visit = np.isclose(s, k * p.visit_interval)
    assert (at_delay | at_visit).all() and at_visit.sum() > 50       # deferred ones at an assessment
    assert (s >= pop.delay[op] - 1e-12).all()
    # a regime operates at the proposed time whatever the status
    reg = course(pop, p, prop, surgeon=False)
    assert reg["operated"].sum() > ev["operated"].sum()


def test_status_rises_after_progression() -> None:
    p = TwinParams(recalibrate=False)
    pop = _draw(p, 20000, 2)
    ev = course(pop, p, np.full(20000, np.inf), surgeon=False, status=True)
    t = np.arange(n_visits(p)) * p.visit_interval
    prog = ev["t_prog"][:, None] <= t[None, :]
    ps = ev["ps"]
    seen = ps >= 0
    assert ps[seen & prog].mean() > ps[seen & ~prog].mean() + 0.3


def test_default_twin_is_unchanged_and_its_visits_table_reads() -> None:
    df, vis = simulate_twin_with_visits(TwinParams(seed=4))
    pd.testing.assert_frame_equal(df, simulate_twin(TwinParams(seed=4)))
    pd.testing.assert_frame_equal(vis, simulate_twin_visits(TwinParams(seed=4)))
    assert tuple(vis.columns) == VISIT_COLUMNS
    assert set(vis["id"]) == set(df["id"]) and (vis.groupby("id")["month"].min() == 0).all()
    assert (vis.groupby("id")["month"].diff().dropna() == 2.0).all()
    end = vis["id"].map(df.set_index("id")["os_months"])
    assert ((vis["month"] < end) | (vis["month"] == 0)).all()
    assert set(vis["ecog_ge1"].unique()) <= {0, 1} and set(vis["progressed"].unique()) <= {0, 1}
    prog = vis["id"].map(df.set_index("id")["progression_months"])
    assert (vis["progressed"] == (prog <= vis["month"]).astype(int)).all()
    from causal_hcc.cohort import Cohort
    from causal_hcc.timeline import attach_visits

    c = Cohort(df, id="id", time="os_months", event="os_event", treatment="surgery",
               treatment_time="months_to_surgery", confounders=["lung_met"])
    c2 = attach_visits(c, vis, id="id", time="month", columns=["ecog_ge1"])
    assert list(c2.timeline.columns) == ["ecog_ge1"]


def test_time_varying_twin_surgery_waits_for_good_status() -> None:
    df, vis = simulate_twin_with_visits(TV.model_copy(update={"n": 3000, "seed": 9}))
    op = df[df["surgery"] == 1]
    # the status of the last assessment at or before surgery
    last = vis.merge(op[["id", "months_to_surgery"]], on="id")
    last = last[last["month"] <= last["months_to_surgery"]].groupby("id").tail(1)
    overall = vis["ecog_ge1"].mean()
    assert last["ecog_ge1"].mean() < overall / 2
    assert (df["months_to_surgery"].dropna() <= df.loc[df["surgery"] == 1, "pfs_months"]).all()


def test_no_effect_includes_the_effect_through_the_status() -> None:
    assert TwinParams().no_effect
    assert not TwinParams(ps_surgery_log_or=-1.0, ps_death_log_hr=0.9).no_effect
    assert TwinParams(ps_surgery_log_or=-1.0).no_effect          # the status affects nothing


_MSM = {"label": "msm", "contrast": "msm_treated_vs_untreated", "scale": "marginal", "population": "all",
        "params": {"numerator": "time"}}


def test_msm_truth_is_null_without_an_effect() -> None:
    p = TwinParams(unmeasured_confounding=0.0, ps_death_log_hr=0.9, ps_poor_operate_prob=0.25)
    assert p.no_effect and p.tv_active
    r = estimand_truth(_MSM, p, n_large=40_000, outcome="os")
    assert r["defined"] and r["batches"] == 8
    assert abs(math.log(r["hr"])) < 4 * r["mc_se"]["hr"] + 1e-9


def test_msm_truth_with_an_effect_and_its_undefined_variants() -> None:
    r = estimand_truth(_MSM, TV, n_large=40_000, outcome="pfs")
    assert r["hr"] < 0.97 and 0 < r["mc_se"]["hr"] < 0.05
    assert "numerator" in r["note"] or "stabilised" in r["note"]
    r_os = estimand_truth(_MSM, TV, n_large=40_000, outcome="os")
    assert "positivity" in r_os["note"]
    none = dict(_MSM, params={"numerator": "none"})
    u = estimand_truth(none, TV, n_large=40_000, outcome="os")
    assert not u["defined"] and "unstabilised" in u["note"]


def test_family_truths_run_under_the_time_varying_confounder() -> None:
    cc = {"label": "cc", "contrast": "within_grace_vs_never", "scale": "marginal", "population": "all",
          "params": {"grace": 6.0, "require_event_free": "pfs"}}
    r = estimand_truth(cc, TV, n_large=20_000, outcome="os")
    assert r["defined"] and r["hr"] < 1 and r["survival_difference"]["24"] > 0
    null = estimand_truth(cc, TwinParams(**{**TIME_VARYING_PRESET, "ps_surgery_log_or": 0.0}), n_large=20_000)
    assert null["hr"] == 1.0 and "no effect" in null["note"]


def test_spec_on_the_twin_reads_the_twins_visits() -> None:
    import yaml

    from causal_hcc.config import AnalysisSpec
    from causal_hcc.pipeline import check
    from causal_hcc.simstudy import SimulationSpec, without_time_varying

    raw = yaml.safe_load(open("configs/twin_tv.yaml"))
    raw["data"]["twin"]["n"] = 200
    spec = AnalysisSpec.model_validate(raw)
    cohort, _ = check(spec)
    assert list(cohort.timeline.columns) == ["ecog_ge1"]
    ss = SimulationSpec.from_analysis_spec(spec)
    df, vis = ss.make_frames(5)
    assert list(vis.columns)[:3] == ["id", "month", "ecog_ge1"]
    assert ss.cohort(df, vis).timeline is not None
    base = SimulationSpec.from_analysis_spec(without_time_varying(spec))
    assert base.visits is None and base.make_frames(5)[1] is None


def test_cli_twin_writes_the_visits_table_next_to_the_cohort(tmp_path) -> None:
    from typer.testing import CliRunner

    from causal_hcc.cli import app

    out = tmp_path / "c.csv"
    r = CliRunner().invoke(app, ["twin", "--output", str(out), "--time-varying", "--competing", "--n", "300"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    vis = pd.read_csv(tmp_path / "c_visits.csv")
    assert len(df) == 300 and "death_cause" in df.columns
    assert tuple(vis.columns) == VISIT_COLUMNS and set(vis["id"]) == set(df["id"])
