"""`validate` catches what is knowable (issue 18): empty arms at a landmark or grace period, a follow-up
implausible for time_unit, and it prints the events and rows dropped."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from causal_hcc.cli import app
from causal_hcc.pipeline import run_analysis

from user_data import USER_SPEC, make_user_frame

runner = CliRunner()
EXTRA = "  - {name: landmark, landmark: 3}\n  - {name: clone_censor, grace: 3}\n"


def _days(df: pd.DataFrame) -> pd.DataFrame:
    """The same cohort with its month times written as day counts."""
    d = df.copy()
    d["fu_months"] = np.round(d["fu_months"] * 30.4375)
    d["months_to_op"] = np.round(d["months_to_op"] * 30.4375) + 1
    return d


def _spec(tmp_path, df: pd.DataFrame, strategies: str = EXTRA, tail: str = "") -> str:
    data = tmp_path / "cohort.csv"
    df.to_csv(data, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER_SPEC.format(path=data).replace("  - multivariable\n", "  - multivariable\n" + strategies)
                    + tail)
    return str(spec)


def test_day_counts_declared_as_months_fail_validate_at_the_landmark(tmp_path):
    """Before: validate said ok; run then failed (or reported survival 'at 12 months' at day 12)."""
    r = runner.invoke(app, ["validate", _spec(tmp_path, _days(make_user_frame()))])
    assert r.exit_code == 2, r.output
    assert r.stderr == ("error: strategy 'landmark(3)', outcome 'os': nobody at risk at the landmark 3 months was "
                        "treated by it (treatment times: first 18, median 81 months); is time_unit right?\n")


def test_on_error_record_warns_instead_and_names_the_unit(tmp_path):
    r = runner.invoke(app, ["validate", _spec(tmp_path, _days(make_user_frame()), tail="on_error: record\n")])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1] == "events: os 81; rows dropped: 0"
    assert r.stderr.splitlines() == [
        "warning: time_unit is months (the default) but the median follow-up is 360.5 months (30 years): are the "
        "times in days or weeks? set time_unit to the unit of the times (survival_at, rmst_tau, landmark and grace "
        "are read in it)",
        "warning: strategy 'landmark(3)', outcome 'os': nobody at risk at the landmark 3 months was treated by it "
        "(treatment times: first 18, median 81 months); is time_unit right?",
        "warning: strategy 'clone_censor(3)', outcome 'os': nobody was treated within the grace period 3 months "
        "(treatment times: first 18, median 81 months); is time_unit right?"]


def test_grace_period_without_anyone_treated(tmp_path):
    df = make_user_frame()
    op = df["operated"] == 1
    df.loc[op, "months_to_op"] += 3.5  # every treatment after 3.5 months
    df.loc[op, "fu_months"] += 3.5
    r = runner.invoke(app, ["validate", _spec(tmp_path, df, strategies="  - {name: clone_censor, grace: 3}\n")])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: strategy 'clone_censor(3)', outcome 'os': nobody was treated within the "
                               "grace period 3 months (treatment times: first 4.065, median 6.128 months)")


def test_everybody_treated_by_the_landmark(tmp_path):
    df = make_user_frame()
    df = df[(df["operated"] == 1) | (df["fu_months"] <= 3)].copy()
    df.loc[df["operated"] == 1, "months_to_op"] = 0.5
    r = runner.invoke(app, ["validate", _spec(tmp_path, df, strategies="  - {name: landmark, landmark: 3}\n")])
    assert r.exit_code == 2, r.output
    assert "everybody at risk at the landmark 3 months was treated by it" in r.stderr


def test_plausible_data_validate_prints_events_and_rows_dropped(tmp_path):
    df = make_user_frame()
    df.loc[[1, 9], "age_y"] = np.nan
    r = runner.invoke(app, ["validate", _spec(tmp_path, df, tail="missing: complete_case\ntime_unit: months\n")])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ok: 118 patients (")
    assert lines[1] == f"events: os {int(df['died'].drop(index=[1, 9]).sum())}; rows dropped: 2 (missing " \
                       "confounders, complete_case)"
    assert r.stderr == ""


def test_run_records_the_time_unit_warning():
    spec = {"study": "days", "roles": {"id": "patient_no", "time": "fu_months", "event": "died",
                                       "treatment": "operated"},
            "time_unit": "months", "confounders": ["fit_pt"], "strategies": ["naive"],
            "estimands": {"survival_at": [12]}}
    res = run_analysis(spec, data=_days(make_user_frame()))
    assert any(w.startswith("time_unit is months but the median follow-up is 360.5 months (30 years)")
               for w in res.warnings)


@pytest.mark.parametrize("unit, scale, warned", [("months", 1.0, False), ("days", 30.4375, False),
                                                 ("months", 30.4375, True), ("years", 30.4375, True),
                                                 ("weeks", 30.4375, False)])
def test_time_unit_plausibility(unit, scale, warned):
    from causal_hcc.cohort import Cohort
    from causal_hcc.validate import follow_up_warnings

    df = make_user_frame()
    df["fu_months"] = df["fu_months"] * scale
    c = Cohort(df, id="patient_no", time="fu_months", event="died", treatment="operated")
    assert bool(follow_up_warnings(c, unit)) is warned
