"""Visits and person-period data end to end: run_analysis(spec, data=, visits=), causal-hcc validate/run."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from causal_hcc.cli import app  # noqa: E402
from causal_hcc.errors import DataError, SpecError  # noqa: E402
from causal_hcc.config import parse_spec  # noqa: E402
from causal_hcc.pipeline import check as _check  # noqa: E402
from causal_hcc.pipeline import run_analysis  # noqa: E402


def check(spec, **kw):
    return _check(parse_spec(spec), **kw)


def simulate_person_period(n: int = 300, periods: int = 24, seed: int = 3) -> pd.DataFrame:
    """Person-period rows: L (time-varying) raises treatment start and death; treatment lowers death."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sex = int(rng.integers(0, 2))
        L = rng.normal()
        treated = 0
        for k in range(periods):
            L = 0.7 * L + rng.normal(scale=0.6) - 0.3 * treated
            if not treated and rng.random() < 1 / (1 + np.exp(2.5 - 0.8 * L)):
                treated = 1
            elig = int(not treated or rows and rows[-1][0] == i and rows[-1][3] == 0)
            y = int(rng.random() < 1 / (1 + np.exp(3.5 - 0.6 * L + 0.5 * treated - 0.2 * sex)))
            rows.append((i, k, y, treated, elig, L, sex))
            if y:
                break
    return pd.DataFrame(rows, columns=["pid", "month", "death", "on_tx", "eligible", "L", "sex"])


SPEC_PP = {
    "study": "pp",
    "data": {"layout": "person_period"},
    "roles": {"id": "pid", "period": "month", "event": "death", "treatment": "on_tx", "eligible": "eligible"},
    "confounders": ["sex", "L"],
    "time_varying_confounders": ["L"],
    "strategies": ["naive", "time_varying", {"design": "sequential_trials", "grid": 1, "window": 10},
                   {"name": "clone_censor", "grace": 3}],
    "estimands": {"survival_at": [12]},
    "bootstrap": {"replicates": 0},
    "sensitivity": {"evalues": False},
}


@pytest.fixture(scope="module")
def pp_frame() -> pd.DataFrame:
    return simulate_person_period()


def test_person_period_runs_in_memory_and_input_is_not_modified(pp_frame):
    before = pp_frame.copy()
    res = run_analysis(SPEC_PP, data=pp_frame)
    pd.testing.assert_frame_equal(pp_frame, before)
    est = res.to_frame()
    assert set(est.strategy) >= {"naive", "time_varying", "sequential_trials(grid=1)", "clone_censor(3)"}
    assert res.cohort["timeline"]["layout"] == "person_period"
    assert res.cohort["timeline"]["columns"] == ["L"]
    assert res.cohort["n"] == pp_frame.pid.nunique()


def test_person_period_cohort_and_timeline(pp_frame):
    cohort, _ = check(SPEC_PP, data=pp_frame)
    tl = cohort.timeline
    g = pp_frame.groupby("pid", sort=False)
    np.testing.assert_array_equal(cohort.time(), g.size().to_numpy())
    # (no apply(include_groups=...): that needs pandas >= 2.2, and pandas 2.0 is supported)
    first_tx = (pp_frame.month.where(pp_frame.on_tx == 1).groupby(pp_frame.pid, sort=False).min()
                - g.month.min()).to_numpy()
    np.testing.assert_array_equal(cohort.treatment_time, first_tx)
    # L at each period start is the current value
    rows = pd.Index(cohort.ids).get_indexer(pp_frame.pid)
    np.testing.assert_array_equal(tl.at(rows, pp_frame.month.to_numpy(dtype=float))[:, 0], pp_frame.L.to_numpy())
    # baseline confounder L is the first period's value
    j = cohort.confounder_columns.index("L")
    np.testing.assert_array_equal(cohort.X[:, j], g.L.first().to_numpy())
    assert tl.eligibility_end is not None


def test_sequential_trials_start_only_while_eligible(pp_frame):
    from causal_hcc.design.sequential_trials import sequential_trials_data

    cohort, _ = check(SPEC_PP, data=pp_frame)
    d = sequential_trials_data(cohort, "os", grid=1.0, window=10.0)
    starts = np.asarray(d.diagnostics["trials"]["start"])
    trial = d.stratum
    s = starts[np.searchsorted(np.unique(trial), trial)] if starts.size == np.unique(trial).size else None
    assert s is not None
    assert np.all(cohort.timeline.eligible_at(d.patient, s))


def _visits_setup():
    rng = np.random.default_rng(5)
    n = 120
    pat = pd.DataFrame({"id": np.arange(n), "fu": rng.uniform(6, 30, n).round(2), "dead": rng.integers(0, 2, n),
                        "age": rng.normal(60, 8, n).round(1)})
    tt = np.where(rng.random(n) < 0.4, rng.uniform(0, 5, n).round(2), np.nan)
    pat["surgery"] = (~np.isnan(tt)).astype(int)
    pat["t_surg"] = tt
    vis = []
    for i in range(n):
        for m in np.arange(0, pat.fu[i] + 3, 3.0):
            vis.append((i, m, int(rng.integers(0, 3)), float(np.exp(rng.normal(3, 1)))))
    vis = pd.DataFrame(vis, columns=["id", "month", "ecog", "afp"])
    spec = {"study": "visits", "roles": {"id": "id", "time": "fu", "event": "dead", "treatment": "surgery",
                                         "treatment_time": "t_surg"},
            "confounders": ["age"], "visits": {"id": "id", "time": "month", "columns": ["ecog", "afp"]},
            "time_varying_confounders": ["ecog", "log(afp)"],
            "strategies": ["naive", {"name": "clone_censor", "grace": 3}], "bootstrap": {"replicates": 0},
            "sensitivity": {"evalues": False}}
    return pat, vis, spec


def test_visits_in_memory():
    pat, vis, spec = _visits_setup()
    pb, vb = pat.copy(), vis.copy()
    res = run_analysis(spec, data=pat, visits=vis)
    pd.testing.assert_frame_equal(pat, pb)
    pd.testing.assert_frame_equal(vis, vb)
    tl = res.cohort["timeline"]
    assert tl["columns"] == ["ecog", "log(afp)"]
    assert tl["dropped_after_follow_up"] == int((vis.month > pat.fu[vis.id].to_numpy()).sum())
    assert any("after the end of follow-up)" in w for w in res.warnings)


def test_visits_argument_without_visits_in_the_spec():
    pat, vis, spec = _visits_setup()
    spec = {k: v for k, v in spec.items() if k not in ("visits", "time_varying_confounders")}
    with pytest.raises(SpecError, match="visits= was passed, but the spec has no visits"):
        check(spec, data=pat, visits=vis)


def test_visits_codes_apply_to_the_visits_table():
    pat, vis, spec = _visits_setup()
    vis = vis.assign(ecog=vis.ecog.map({0: "zero", 1: "one", 2: "two"}))
    spec = {**spec, "codes": {"ecog": {"zero": 0, "one": 1, "two": 2}}}
    cohort, _ = check(spec, data=pat, visits=vis)
    assert cohort.timeline.columns == ("ecog", "log(afp)")


def test_visits_with_an_unknown_id():
    pat, vis, spec = _visits_setup()
    vis = vis.copy()
    vis.loc[5, "id"] = 999
    with pytest.raises(DataError, match=r"^visits: 1 id not in the cohort \(999\) at index 5$"):
        check(spec, data=pat, visits=vis)


def test_cli_validate_and_run_with_files(tmp_path):
    pat, vis, spec = _visits_setup()
    pat.to_csv(tmp_path / "patients.csv", index=False)
    vis.to_csv(tmp_path / "visits.csv", index=False)
    import yaml

    spec = {**spec, "data": {"path": "patients.csv"}, "visits": {**spec["visits"], "path": "visits.csv"},
            "output": str(tmp_path / "out")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(tmp_path / "spec.yaml")])
    assert res.exit_code == 0, res.output
    assert "timeline: time-varying ecog, log(afp) (2 columns)" in res.output
    res = runner.invoke(app, ["run", str(tmp_path / "spec.yaml"), "-q"])
    assert res.exit_code == 0, res.output
    # unsorted visits: exit 2, one line naming the file and rows
    vis.iloc[[1, 0] + list(range(2, len(vis)))].to_csv(tmp_path / "visits.csv", index=False)
    res = runner.invoke(app, ["validate", str(tmp_path / "spec.yaml")])
    assert res.exit_code == 2
    assert res.output.strip() == ("error: visits.csv: times of id 0 are not in increasing order at data rows 1, 2; "
                                  "sort the visits by id and month")


def test_cli_person_period_file(tmp_path, pp_frame):
    pp_frame.to_csv(tmp_path / "pp.csv", index=False)
    import yaml

    spec = {**SPEC_PP, "data": {"path": "pp.csv", "layout": "person_period"}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "spec.yaml")])
    assert res.exit_code == 0, res.output
    assert "timeline: person-period:" in res.output
    bad = pp_frame.copy()
    bad.loc[3, "death"] = 7
    bad.to_csv(tmp_path / "pp.csv", index=False)
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "spec.yaml")])
    assert res.exit_code == 2
    assert res.output.strip() == "error: pp.csv: column 'death' (event) must be 0 or 1; found 7 at data row 4"


def test_bootstrap_resamples_carry_the_timeline():
    pat, vis, spec = _visits_setup()
    spec = {**spec, "strategies": [{"name": "clone_censor", "grace": 3}], "bootstrap": {"replicates": 3, "seed": 2}}
    res = run_analysis(spec, data=pat, visits=vis)
    hr = res.to_frame().query("measure == 'hr'")
    assert np.isfinite(hr.se).all()


def test_multiple_imputation_with_visits():
    pat, vis, spec = _visits_setup()
    pat = pat.copy()
    pat.loc[[3, 7, 11], "age"] = np.nan
    spec = {**spec, "missing": {"method": "mice", "m": 2, "iterations": 2}, "strategies": ["naive"]}
    res = run_analysis(spec, data=pat, visits=vis)
    assert res.cohort["timeline"]["columns"] == ["ecog", "log(afp)"]
    assert res.cohort["missing"]["m"] == 2


def test_complete_case_drops_the_visits_of_dropped_patients():
    pat, vis, spec = _visits_setup()
    pat = pat.copy()
    pat.loc[[3, 7], "age"] = np.nan
    cohort, _ = check({**spec, "missing": "complete_case"}, data=pat, visits=vis)
    assert cohort.n == len(pat) - 2
    assert any("measurements of 2 patients dropped from the cohort" in w for w in cohort.warnings)


def test_string_ids_and_a_censored_role():
    pat, vis, spec = _visits_setup()
    pat = pat.assign(id="P" + pat.id.astype(str), lost=np.where(pat.dead == 0, pat.index % 2, 0))
    vis = vis.assign(id="P" + vis.id.astype(str))
    spec = {**spec, "roles": {**spec["roles"], "censored": "lost"}}
    cohort, _ = check(spec, data=pat, visits=vis)
    assert cohort.timeline.censored.sum() == pat.lost.sum()
    assert "lost to follow-up" in cohort.timeline.summary()


@pytest.mark.parametrize("change, message", [
    ({"visits": {"id": "id", "time": "month", "date": "d", "columns": ["ecog"]}},
     "give one of 'time' (time from time zero) or 'date' (visit date)"),
    ({"visits": {"id": "id", "date": "d", "columns": ["ecog"]}}, "visits.date needs the role 'start_date'"),
    ({"visits": {"id": "id", "time": "month", "columns": []}}, "'columns' must list at least one measured column"),
    ({"time_varying_confounders": ["ecog", "ecog"]}, "time_varying_confounders: 'ecog' is listed twice"),
    ({"data": {"layout": "person_period"}}, "data.layout: person_period needs the role 'period'"),
])
def test_spec_errors(change, message):
    _, _, spec = _visits_setup()
    with pytest.raises(SpecError) as err:
        parse_spec({**spec, **change})
    assert message in str(err.value)


def test_a_code_may_match_in_one_table_only():
    pat, vis, spec = _visits_setup()
    pat = pat.assign(ecog=np.where(pat.index % 5 == 0, 9, 1))      # 9 = unknown, in the patient table only
    spec = {**spec, "codes": {"ecog": {9: None}}}
    cohort, _ = check(spec, data=pat, visits=vis)
    assert cohort.timeline.info["baseline_from_patient_table"] == ["ecog"]
    vis2 = vis.assign(stage=1)
    spec2 = {**spec, "visits": {**spec["visits"], "columns": ["ecog", "afp", "stage"]},
             "codes": {"stage": {7: 1}}}
    with pytest.raises(DataError, match=r"^visits: codes: no value of column 'stage' matches any of '7'"):
        check(spec2, data=pat, visits=vis2)


def test_a_code_matching_only_the_visits():
    pat, vis, spec = _visits_setup()
    pat = pat.assign(ecog=1)
    vis = vis.assign(ecog=np.where(vis.index % 7 == 0, 9, vis.ecog))
    cohort, _ = check({**spec, "codes": {"ecog": {9: None}}}, data=pat, visits=vis)
    assert cohort.timeline.columns[0] == "ecog"
    with pytest.raises(DataError, match=r"^visits: codes: no value of column 'ecog' matches any of '8'"):
        check({**spec, "codes": {"ecog": {8: None}}}, data=pat, visits=vis)


def test_a_categorical_time_varying_variable_that_is_no_baseline_confounder():
    pat, vis, spec = _visits_setup()
    vis = vis.assign(resp=np.array(["SD", "PR", "CR"])[vis.index % 3])
    spec = {**spec, "visits": {**spec["visits"], "columns": ["ecog", "afp", "resp"]},
            "time_varying_confounders": ["ecog", "resp"], "categorical": ["resp"]}
    cohort, _ = check(spec, data=pat, visits=vis)
    assert cohort.timeline.columns == ("ecog", "resp=PR", "resp=SD")   # reference: the most frequent level (CR)


def test_time_varying_rows_name_their_estimand():
    """The estimand of each new row: IPCW rows say 'had nobody been lost' (rows whose outcome model does not use the
    loss weights do not); the MSM answers 'always vs never treated'; per protocol and clone-censor say that
    deviations are censored and reweighted."""
    pat, vis, spec = _visits_setup()
    rng = np.random.default_rng(9)
    pat = pat.assign(lost=((pat.dead == 0) & (rng.random(len(pat)) < 0.3)).astype(int))
    spec = {**spec, "roles": {**spec["roles"], "censored": "lost"},
            "strategies": [{"name": "clone_censor", "grace": 3}, {"design": "time_varying", "adjustment": "msm"},
                           {"design": "sequential_trials", "analysis": "per_protocol", "grid": 1, "window": 4},
                           {"design": "landmark", "landmark": 2, "adjustment": "gformula"}]}
    res = run_analysis(spec, data=pat, visits=vis)
    est = {r.strategy: r.estimands for r in res.records}
    for strategy, ests in est.items():
        for e in ests.values():
            lost = "had nobody been lost to follow-up" in e["description"]
            assert lost == (strategy != "landmark(2)+gformula"), (strategy, e["description"])
            assert (e["params"].get("loss_to_follow_up") == "ipcw") == lost
    (msm,) = est["time_varying+msm"].values()
    assert msm["description"].startswith("always treated vs never treated")
    assert any("had every control adhered to 'never start'" in n
               for e in est["sequential_trials(grid=1,pp)"].values() for n in e["notes"])
    assert any("had everyone adhered to each strategy" in n
               for e in est["clone_censor(3)"].values() for n in e["notes"])
