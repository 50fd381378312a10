"""Dates and codes: times from calendar dates, raw values recoded before validation.

The Stanford heart-transplant data with real dates and R-style codes give R's
hazard ratios (tests/reference/data_jasa_dates.R); the rest are checkable by hand.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from causal_hcc.cohort import Cohort
from causal_hcc.config import parse_spec
from causal_hcc.errors import DataError, SpecError
from causal_hcc.pipeline import run_analysis

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests/reference/fixtures/data_jasa_dates.json").read_text())

JASA_SPEC = """
study: jasa-dates
data: {path: tests/data/jasa_dates.csv}
roles:
  id: id
  start_date: accepted_on
  end_date: last_seen_on
  treatment_date: transplant_on
  event: status
  treatment: transplanted
time_unit: days
codes:
  status: {2: 1, 1: 0}            # R's survival convention: 2 = dead
  transplanted: {yes: 1, no: 0}   # YAML 1.1 reads these keys as booleans
confounders: [age, surgery]
strategies:
  - naive
  - time_varying
  - {design: time_varying, adjustment: multivariable}
sensitivity: {evalues: false}
"""


@pytest.fixture(scope="module")
def jasa_result():
    raw = yaml.safe_load(JASA_SPEC)
    assert raw["codes"]["transplanted"] == {True: 1, False: 0}  # the pitfall is real
    return run_analysis(parse_spec(raw, base_dir=str(ROOT)))


@pytest.mark.parametrize("label, key", [("naive", "naive"), ("time_varying", "time_varying"),
                                        ("time_varying+multivariable", "time_varying_multivariable")])
def test_jasa_dates_and_codes_give_r_hazard_ratios(jasa_result, label, key):
    f = jasa_result.to_frame()
    row = f[(f.strategy == label) & (f.measure == "hr")].iloc[0]
    assert row.estimate == pytest.approx(REF[key]["hr"], rel=1e-6, abs=0)
    assert row.se == pytest.approx(REF[key]["se"], rel=1e-6, abs=0)


def test_jasa_times_follow_the_vignette_same_day_rule():
    spec = parse_spec(yaml.safe_load(JASA_SPEC), base_dir=str(ROOT))
    from causal_hcc.pipeline import check

    cohort, _ = check(spec)
    np.testing.assert_allclose(cohort.time(), REF["futime"], rtol=0, atol=1e-12)
    tx = np.array([np.nan if v in (None, "NA") else v for v in REF["txtime"]], dtype=float)
    np.testing.assert_allclose(cohort.treatment_time, tx, rtol=0, atol=1e-12)
    assert cohort.date_roles == {"start_date": "accepted_on", "end_date": "last_seen_on",
                                 "treatment_date": "transplant_on"}


# --------------------------------------------------------------------------
# dates by hand
# --------------------------------------------------------------------------
def dated() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4, 5],
        "start": ["2020-01-01", "2020-01-01", "2020-03-01", "2020-01-01", "2021-02-01"],
        "end": ["2020-01-31", "2020-01-01", "2020-03-11", "2021-01-01", "2021-02-05"],
        "tx": ["2020-01-11", None, "2020-03-11", None, "2021-02-01"],
        "dead": [1, 1, 0, 1, 0],
        "op": [1, 0, 1, 0, 1],
        "age": [50.0, 60.0, 70.0, 55.0, 65.0],
    })


DATES = dict(id="id", start_date="start", end_date="end", treatment_date="tx", event="dead", treatment="op")


@pytest.mark.parametrize("unit, per_day", [("days", 1.0), ("weeks", 1 / 7), ("months", 1 / 30.4375),
                                           ("years", 1 / 365.25)])
def test_times_from_dates_in_each_unit(unit, per_day):
    c = Cohort(dated(), **DATES, time_unit=unit)
    # 30 days; same day -> 0.5 day; 10 days; 366 days (2020 is a leap year); 4 days
    np.testing.assert_allclose(c.time(), np.array([30, 0.5, 10, 366, 4]) * per_day, rtol=1e-15)
    # 10 days; untreated; treatment on the end date -> half a day earlier; untreated; on the start date -> 0
    np.testing.assert_allclose(c.treatment_time, np.array([10, np.nan, 9.5, np.nan, 0]) * per_day, rtol=1e-15)


def test_start_treatment_and_end_on_one_day():
    df = dated()
    df.loc[1, ["tx", "op"]] = ["2020-01-01", 1]
    c = Cohort(df, **DATES, time_unit="days")
    assert c.time()[1] == 0.5 and c.treatment_time[1] == 0.0


def test_date_types_all_give_the_same_times():
    df = dated()
    ref = Cohort(df, **DATES, time_unit="days")
    as_dt = df.assign(start=pd.to_datetime(df.start), end=pd.to_datetime(df.end), tx=pd.to_datetime(df.tx))
    as_date = df.assign(start=[dt.date.fromisoformat(v) for v in df.start])
    tz = as_dt.assign(start=as_dt.start.dt.tz_localize("Europe/Paris"), end=as_dt.end.dt.tz_localize("Europe/Paris"),
                      tx=as_dt.tx.dt.tz_localize("Europe/Paris"))
    for frame in (as_dt, as_date, tz):
        c = Cohort(frame, **DATES, time_unit="days")
        np.testing.assert_allclose(c.time(), ref.time())
        np.testing.assert_allclose(c.treatment_time, ref.treatment_time)


@pytest.mark.parametrize("ext", ["xlsx", "sav", "dta"])
def test_dates_from_excel_spss_stata(tmp_path, ext):
    from causal_hcc.io import read_table

    df = dated().rename(columns={"start": "start_on", "end": "end_on", "tx": "tx_on"})  # 'end' is reserved in Stata
    for c in ("start_on", "end_on", "tx_on"):
        df[c] = pd.to_datetime(df[c])
    path = tmp_path / f"cohort.{ext}"
    if ext == "xlsx":
        df.to_excel(path, index=False)
    elif ext == "sav":
        import pyreadstat

        pyreadstat.write_sav(df, str(path))
    else:
        df.to_stata(path, write_index=False, convert_dates={"start_on": "td", "end_on": "td", "tx_on": "td"})
    back = read_table(path)
    roles = {**DATES, "start_date": "start_on", "end_date": "end_on", "treatment_date": "tx_on"}
    c = Cohort(back, **roles, time_unit="days", source=str(path))
    np.testing.assert_allclose(c.time(), [30, 0.5, 10, 366, 4])
    np.testing.assert_allclose(c.treatment_time, [10, np.nan, 9.5, np.nan, 0])


def test_extra_outcome_end_date():
    df = dated().assign(prog=["2020-01-21", "2020-01-01", "2020-03-05", "2020-06-01", "2021-02-03"],
                        prog_event=[1, 0, 1, 1, 0])
    c = Cohort(df, **DATES, time_unit="days", outcomes={"pfs": {"end_date": "prog", "event": "prog_event"}})
    np.testing.assert_allclose(c.time("pfs"), [20, 0.5, 4, 152, 2])


def test_a_cohort_from_dates_rebuilds_from_its_frame():
    c = Cohort(dated(), **DATES, time_unit="months", confounders=["age"])
    again = Cohort.from_frame(c.frame(), {k: v for k, v in c.roles.items() if v}, confounders=["age"])
    np.testing.assert_array_equal(again.time(), c.time())
    np.testing.assert_array_equal(again.treatment_time, c.treatment_time)


DATE_ERRORS = [
    ("end before start", {"end": {2: "2020-02-01"}},
     "column 'end' (end_date) is before 'start' (start_date) at index 2"),
    ("treatment before start", {"tx": {0: "2019-12-31"}},
     "column 'tx' (treatment_date) is before 'start' (start_date) at index 0"),
    ("treatment after end", {"tx": {0: "2020-02-01"}},
     "column 'tx' (treatment_date) is after 'end' (end_date) at index 0"),
    ("treated without a date", {"tx": {0: None}},
     "columns 'op' (treatment) and 'tx' (treatment_date) disagree: treated without a date at index 0"),
    ("untreated with a date", {"tx": {1: "2020-01-01"}},
     "columns 'op' (treatment) and 'tx' (treatment_date) disagree: a date without treated at index 1"),
    ("both disagreements", {"tx": {0: None, 1: "2020-01-01", 3: "2020-02-01"}},
     "columns 'op' (treatment) and 'tx' (treatment_date) disagree: treated without a date at index 0; "
     "a date without treated at index 1, 3"),
    ("missing start", {"start": {3: None}}, "column 'start' (start_date) has 1 missing value at index 3"),
    ("missing end", {"end": {3: None}}, "column 'end' (end_date) has 1 missing value at index 3"),
    ("not ISO", {"end": {1: "31/01/2020"}},   # day-first text: the line names the spec keys that read it
     "column 'end' (end_date) must hold dates; found '31/01/2020' at index 1; dates written like this need "
     "roles.date_format (e.g. '%d/%m/%Y' or '%m/%d/%Y') or roles.dayfirst: true"),
    ("not a date", {"end": {1: "soon"}},
     "column 'end' (end_date) must hold dates; found 'soon' at index 1; give dates (ISO 8601 text such as "
     "2020-03-31, or date cells), or the time from time zero with the role 'time'"),
    ("numbers", {"start": {i: 43831 for i in range(5)}},
     "column 'start' (start_date) holds numbers, not dates (found '43831' at index 0, 1, 2 (+2 more)); give dates "
     "(ISO 8601 text such as 2020-03-31, or date cells), or the time from time zero with the role 'time'"),
]


@pytest.mark.parametrize("values, message", [c[1:] for c in DATE_ERRORS], ids=[c[0] for c in DATE_ERRORS])
def test_date_errors(values, message):
    df = dated()
    for col, vals in values.items():
        if all(isinstance(v, int) for v in vals.values()) and len(vals) == len(df):
            df[col] = list(vals.values())
            continue
        for i, v in vals.items():
            df.loc[i, col] = v
    with pytest.raises(DataError) as e:
        Cohort(df, **DATES, time_unit="days")
    assert str(e.value) == message


def test_date_errors_from_a_file_name_data_rows(tmp_path):
    df = dated()
    df.loc[4, "end"] = "2021-01-01"
    with pytest.raises(DataError) as e:
        Cohort(df, **DATES, time_unit="days", source="cohort.csv")
    assert str(e.value) == "column 'end' (end_date) is before 'start' (start_date) at data row 5"


# --------------------------------------------------------------------------
# treatment derived from the treatment date
# --------------------------------------------------------------------------
NO_TRT = {k: v for k, v in DATES.items() if k != "treatment"}


def test_treatment_derived_from_the_treatment_date():
    df = dated().drop(columns="op")
    before = df.copy()
    c = Cohort(df, **NO_TRT, time_unit="days")
    pd.testing.assert_frame_equal(df, before)
    np.testing.assert_array_equal(c.treatment, [1, 0, 1, 0, 1])  # dates on rows 0, 2 (on the end date), 4 (on start)
    np.testing.assert_allclose(c.treatment_time, [10, np.nan, 9.5, np.nan, 0])
    assert c.roles["treatment"] == "treated" and c.frame()["treated"].tolist() == [1, 0, 1, 0, 1]
    assert c.warnings == []
    ref = Cohort(dated(), **DATES, time_unit="days")  # the same as with the matching treatment column
    np.testing.assert_array_equal(c.treatment, ref.treatment)
    np.testing.assert_array_equal(c.treatment_time, ref.treatment_time)
    again = Cohort.from_frame(c.frame(), {k: v for k, v in c.roles.items() if v})
    np.testing.assert_array_equal(again.treatment, c.treatment)


def test_derived_treatment_counts_a_date_after_the_end_as_untreated():
    df = dated().drop(columns="op").assign(treated=0)  # the name 'treated' is taken: 'treated_'
    df.loc[0, "tx"] = "2020-02-01"  # after the end date 2020-01-31
    c = Cohort(df, **NO_TRT, time_unit="days")
    assert c.roles["treatment"] == "treated_"
    np.testing.assert_array_equal(c.treatment, [0, 0, 1, 0, 1])
    assert np.isnan(c.treatment_time[0])
    assert c.warnings == ["1 patient with 'tx' (treatment_date) after 'end' (end_date) counted as untreated (index 0)"]


def test_derived_treatment_in_a_spec_and_for_imputation():
    raw = {"study": "s", "roles": {k: v for k, v in NO_TRT.items()}, "time_unit": "days",
           "strategies": ["naive"]}
    spec = parse_spec(raw)
    assert spec.roles.treatment is None
    frame, roles = Cohort.prepare(dated().drop(columns="op"), **spec.roles.cohort_kwargs(), time_unit="days")
    assert roles["treatment"] == "treated" and frame["treated"].tolist() == [1, 0, 1, 0, 1]


def test_treatment_or_a_treatment_date_is_required():
    with pytest.raises(SpecError) as e:
        Cohort(dated(), **{**NO_TRT, "treatment_date": None}, time_unit="days")
    assert str(e.value) == ("roles: give 'treatment', or 'treatment_date' to derive it from (treated = a date on or "
                            "before the end date)")
    with pytest.raises(SpecError) as e:
        parse_spec({"study": "s", "roles": {"id": "id", "time": "t", "event": "e"}, "strategies": ["naive"]})
    assert str(e.value) == ("spec key 'roles': give 'treatment', or 'treatment_date' to derive it from (treated = a "
                            "date on or before the end date)")


ROLE_ERRORS = [
    ({"time": "t"}, "roles: give the follow-up either as 'time' or as 'start_date' and 'end_date', not both"),
    ({"treatment_time": "t"}, "roles: give either 'treatment_time' or 'treatment_date', not both"),
    ({"start_date": None}, "roles: 'end_date' needs 'start_date' (time zero)"),
    ({"time_unit": "fortnights"},
     "time_unit must be one of days, weeks, months, years when times are computed from dates, got 'fortnights'"),
]


@pytest.mark.parametrize("change, message", ROLE_ERRORS)
def test_date_role_errors(change, message):
    with pytest.raises(SpecError) as e:
        Cohort(dated(), **{**DATES, "time_unit": "days", **change})
    assert str(e.value) == message


# --------------------------------------------------------------------------
# codes
# --------------------------------------------------------------------------
def coded() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3, 4], "t": [1.0, 2.0, 3.0, 4.0], "status": [2, 1, 2, 2],
                         "tx": ["yes", "no", "Yes", "no"], "grade": [1, 2, 3, 9]})


ROLES = dict(id="id", time="t", event="status", treatment="tx")


@pytest.mark.parametrize("codes", [
    {"status": {2: 1, 1: 0}, "tx": {"yes": 1, "no": 0, "Yes": 1}},
    {"status": {"2": 1, "1": 0}, "tx": {True: 1, False: 0}},        # YAML's unquoted yes/no; text keys for numbers
    {"status": {2.0: 1, 1: False}, "tx": {"YES": 1, "no": 0}},      # a boolean new value is 0/1
])
def test_codes_recode_event_and_treatment(codes):
    c = Cohort(coded(), **ROLES, codes=codes)
    np.testing.assert_array_equal(c.event(), [1, 0, 1, 1])
    np.testing.assert_array_equal(c.treatment, [1, 0, 1, 0])


def test_codes_recode_a_categorical_confounder_and_to_missing():
    codes = {"status": {2: 1, 1: 0}, "tx": {True: 1, False: 0}, "grade": {9: None, 3: "high", 1: "low", 2: "low"}}
    c = Cohort(coded(), **ROLES, codes=codes, confounders=["grade"], missing="complete_case")
    assert c.rows_dropped == 1 and c.confounder_columns == ["grade=high"]


def test_codes_never_touch_the_callers_frame():
    df = coded()
    before = df.copy()
    Cohort(df, **ROLES, codes={"status": {2: 1, 1: 0}, "tx": {True: 1, False: 0}})
    pd.testing.assert_frame_equal(df, before)


def test_values_left_unmapped_are_validated_as_given():
    with pytest.raises(DataError) as e:
        Cohort(coded(), **ROLES, codes={"status": {1: 0}, "tx": {True: 1, False: 0}})
    assert str(e.value) == "column 'status' (event) must be 0 or 1; found 2 at index 0, 2, 3"
    with pytest.raises(DataError) as e:
        Cohort(coded(), **ROLES, codes={"status": {2: 1, 1: 0}, "tx": {"no": 0}})
    assert str(e.value) == "column 'tx' (treatment) must be 0/1 or True/False; found 'yes' at index 0, 2"


@pytest.mark.parametrize("codes, exc, message", [
    ({"stauts": {2: 1}}, DataError, "codes: column 'stauts' not found (did you mean 'status'?)"),
    ({"status": {5: 1, 6: 0}}, DataError, "codes: no value of column 'status' matches any of '5', '6'"),
    ({"status": [2, 1]}, SpecError, "codes: 'status' must map raw values to new ones, e.g. {2: 1, 1: 0}; "
                                    "got '[2, 1]'"),
    ({"status": {2: 1, "2": 0}}, SpecError, "codes: 'status' lists the raw value '2' twice"),
    ({"status": {2: [1]}}, SpecError, "codes: 'status': the new value for '2' must be a number, text or null, "
                                      "got '[1]'"),
])
def test_code_errors(codes, exc, message):
    with pytest.raises(exc) as e:
        Cohort(coded(), **ROLES, codes=codes)
    assert str(e.value) == message


def test_spec_with_dates_and_an_extra_outcome_end_date():
    from causal_hcc.pipeline import check

    df = dated().assign(prog=["2020-01-21", "2020-01-01", "2020-03-05", "2020-06-01", "2021-02-03"],
                        prog_event=[1, 0, 1, 1, 0])
    spec = parse_spec({
        "study": "s", "time_unit": "weeks",
        "roles": {"id": "id", "start_date": "start", "end_date": "end", "treatment_date": "tx", "event": "dead",
                  "treatment": "op"},
        "outcomes": {"pfs": {"end_date": "prog", "event": "prog_event"}},
        "strategies": ["naive"]})
    cohort, _ = check(spec, data=df)
    np.testing.assert_allclose(cohort.time("pfs"), np.array([20, 0.5, 4, 152, 2]) / 7)
    np.testing.assert_allclose(cohort.time(), np.array([30, 0.5, 10, 366, 4]) / 7)


@pytest.mark.parametrize("outcomes, message", [
    ({"pfs": {"end_date": "prog", "time": "t", "event": "e"}}, "spec key 'outcomes.pfs': give one of 'time' or "
                                                               "'end_date'"),
    ({"pfs": {"event": "e"}}, "spec key 'outcomes.pfs': give one of 'time' or 'end_date'"),
])
def test_spec_outcome_errors(outcomes, message):
    with pytest.raises(SpecError) as e:
        parse_spec({"study": "s", "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"},
                    "outcomes": outcomes, "strategies": ["naive"]})
    assert str(e.value) == message


def test_spec_outcome_end_date_needs_start_date():
    with pytest.raises(SpecError) as e:
        parse_spec({"study": "s", "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"},
                    "outcomes": {"pfs": {"end_date": "p", "event": "pe"}}, "strategies": ["naive"]})
    assert str(e.value) == "spec: outcomes.pfs: 'end_date' needs the role 'start_date' (time zero)"


def test_prepare_gives_the_frame_an_imputation_works_on():
    df = dated().assign(grade=[1, 9, 2, 2, 1])
    before = df.copy()
    frame, roles = Cohort.prepare(df, **DATES, time_unit="days", codes={"grade": {9: None}}, confounders=["grade"])
    pd.testing.assert_frame_equal(df, before)
    assert roles == {"id": "id", "time": "end-start", "event": "dead", "treatment": "op",
                     "treatment_time": "tx-start", "outcome_name": "os"}
    assert frame["grade"].isna().tolist() == [False, True, False, False, False]
    np.testing.assert_allclose(frame["end-start"], [30, 0.5, 10, 366, 4])
    filled = frame.assign(grade=frame["grade"].fillna(2))  # what an imputation would do
    c = Cohort(filled, **roles, confounders=["grade"])
    ref = Cohort(df.assign(grade=[1, 2, 2, 2, 1]), **DATES, time_unit="days", confounders=["grade"])
    np.testing.assert_array_equal(c.time(), ref.time())
    np.testing.assert_array_equal(c.X, ref.X)


def test_pipeline_prepare_frame_follows_the_spec():
    from causal_hcc.pipeline import prepare_frame

    spec = parse_spec(yaml.safe_load(JASA_SPEC), base_dir=str(ROOT))
    df = pd.read_csv(ROOT / "tests/data/jasa_dates.csv")
    frame, roles = prepare_frame(spec, df, "jasa_dates.csv")
    assert roles["time"] == "last_seen_on-accepted_on" and roles["treatment_time"] == "transplant_on-accepted_on"
    assert set(frame["status"]) == {0, 1} and set(frame["transplanted"]) == {0, 1}
    np.testing.assert_allclose(frame[roles["time"]], REF["futime"], atol=1e-12)


def test_jasa_without_the_treatment_column_gives_the_same_hazard_ratios(jasa_result):
    raw = yaml.safe_load(JASA_SPEC)
    del raw["roles"]["treatment"], raw["codes"]["transplanted"]
    spec = parse_spec(raw, base_dir=str(ROOT))
    res = run_analysis(spec)
    f = res.to_frame()
    for label, key in [("naive", "naive"), ("time_varying", "time_varying"),
                       ("time_varying+multivariable", "time_varying_multivariable")]:
        row = f[(f.strategy == label) & (f.measure == "hr")].iloc[0]
        assert row.estimate == pytest.approx(REF[key]["hr"], rel=1e-6, abs=0)
        assert row.se == pytest.approx(REF[key]["se"], rel=1e-6, abs=0)
    from causal_hcc.pipeline import check

    cohort, _ = check(spec)
    assert cohort.roles["treatment"] == "treated" and cohort.n_treated == 69  # jasa: 69 of 103 transplanted
