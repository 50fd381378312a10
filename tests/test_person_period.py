"""Person-period data read into a patient table plus visits: the rules of docs/timeline.md, by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causal_hcc.errors import DataError
from causal_hcc.timeline import person_period

# id 1: 4 periods from 10, treated from period 11 (switches back at 13), event in 13
# id 2: 3 periods from 0, never treated, eligible 1 1 0, lost after period 2
# id 3: 2 periods, treated at its first period, event in period 0 of its own, a row after the event
# id 4: periods 5..7, eligible 1 0 1 (eligible again ignored), untreated, no event
ROWS = [
    # id, period, y, a, elig, lost, x (tv), sex (baseline)
    (1, 10, 0, 0, 1, 0, 1.0, 1),
    (1, 11, 0, 1, 1, 0, 2.0, 1),
    (1, 12, 0, 1, 0, 0, 3.0, 1),
    (1, 13, 1, 0, 0, 0, 4.0, 1),
    (2, 0, 0, 0, 1, 0, 5.0, 0),
    (2, 1, 0, 0, 1, 0, 6.0, 0),
    (2, 2, 0, 0, 0, 1, 7.0, 0),
    (3, 0, 1, 1, 1, 0, 8.0, 1),
    (3, 1, 1, 1, 0, 0, 9.0, 1),
    (4, 5, 0, 0, 1, 0, 1.5, 0),
    (4, 6, 0, 0, 0, 0, 2.5, 0),
    (4, 7, 0, 0, 1, 0, 3.5, 0),
]
COLS = ["id", "period", "y", "a", "elig", "lost", "x", "sex"]


def frame(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLS)


def read(df=None, **kw):
    args = dict(id="id", period="period", event="y", treatment="a", eligible="elig", censored="lost",
                confounders=["sex"], time_varying_confounders=["x"])
    args.update(kw)
    return person_period(frame() if df is None else df, **args)


def test_patient_table_by_the_rules():
    pp = read()
    p = pp.patients
    assert p["id"].tolist() == [1, 2, 3, 4]
    assert p["follow_up"].tolist() == [4, 3, 1, 3]               # periods observed (id 3: up to its event)
    assert p["y"].tolist() == [1, 0, 1, 0]                       # outcome in a period = event at its end
    assert p["a"].tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(p["treatment_time"], [1, np.nan, 0, np.nan])   # start of first treated period
    np.testing.assert_array_equal(p["elig_until"], [2, 2, np.inf, 1])            # first 0, never after
    assert p["lost"].tolist() == [0, 1, 0, 0]
    assert p["sex"].tolist() == [1, 0, 1, 0]                     # baseline: first period
    assert pp.roles == {"id": "id", "time": "follow_up", "event": "y", "treatment": "a",
                        "treatment_time": "treatment_time", "cluster": None, "outcome_name": "os"}
    assert p.index.tolist() == [0, 4, 7, 9]                      # each patient's first row


def test_visits_hold_current_values_at_period_starts():
    v = read().visits
    assert v.ids.tolist() == [1, 1, 1, 1, 2, 2, 2, 3, 4, 4, 4]  # id 3's row after the event is dropped
    assert v.time.tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 2]
    assert v.data["x"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 1.5, 2.5, 3.5]


def test_warnings_count_switch_back_eligible_again_and_rows_after_the_outcome():
    w = read().warnings
    assert "1 period after the outcome of 1 patient dropped (follow-up ends at the end of the outcome's period)" in w
    assert ("1 treated patient had untreated periods after starting treatment (switch back); treatment is taken as "
            "sustained from its first period") in w
    assert "1 patient eligible again after a period with 'elig' = 0: never eligible after the first 0" in w


def test_event_and_lost_in_the_same_period_is_an_event():
    rows = [r if r[:2] != (1, 13) else (1, 13, 1, 0, 0, 1, 4.0, 1) for r in ROWS]
    pp = read(frame(rows))
    assert pp.patients["lost"].tolist() == [0, 1, 0, 0] and pp.patients["y"].tolist() == [1, 0, 1, 0]
    assert "1 patient with the outcome and 'lost' = 1 in the same period counted as events" in pp.warnings


def test_rows_of_a_patient_may_be_interleaved_but_increase():
    df = frame().iloc[[4, 0, 5, 1, 6, 2, 3, 7, 8, 9, 10, 11]]
    p = read(df).patients
    assert p["id"].tolist() == [2, 1, 3, 4] and p["follow_up"].tolist() == [3, 4, 1, 3]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.drop(index=1), "column 'period' (period) jumps from 10 to 12 for id 1 at index 0, 2; periods must "
                                "be consecutive"),
    (lambda d: d.iloc[[1, 0] + list(range(2, 12))], "column 'period' (period) is not in increasing order for id 1 at "
                                                     "index 1, 0; sort the data by id and period"),
    (lambda d: d.assign(period=[10, 10, 12, 13, 0, 1, 2, 0, 1, 5, 6, 7]),
     "column 'period' (period) repeats 10 for id 1 at index 0, 1"),
    (lambda d: d.assign(period=d.period + 0.5), "column 'period' (period) must hold whole numbers; found 10.5 at "
                                                "index 0"),
    (lambda d: d.assign(y=[0, 0, 2, 1, 0, 0, 0, 1, 1, 0, 0, 0]), "column 'y' (event) must be 0 or 1; found 2 at "
                                                                  "index 2"),
    (lambda d: d.assign(a=[0, 0, np.nan, 1, 0, 0, 0, 1, 1, 0, 0, 0]), "column 'a' (treatment) has 1 missing value "
                                                                       "at index 2"),
    (lambda d: d.assign(lost=[0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
     "column 'lost' (censored) is 1 before the patient's last period at index 1"),
    (lambda d: d.rename(columns={"elig": "eligible"}), "column 'elig' (eligible) not found (did you mean 'eligible'?)"),
    (lambda d: d.drop(columns="x"), "column 'x' (time-varying confounder) not found"),
])
def test_bad_person_period_data(edit, message):
    with pytest.raises(DataError) as err:
        read(edit(frame()))
    assert str(err.value).startswith(message), str(err.value)


def test_input_not_modified():
    df = frame()
    read(df)
    pd.testing.assert_frame_equal(df, frame())


def test_treatment_after_eligibility_ended_is_counted():
    rows = [r if r[:2] != (4, 7) else (4, 7, 0, 1, 1, 0, 3.5, 0) for r in ROWS]
    pp = read(frame(rows))
    assert pp.info["treated_after_eligibility"] == 1
    assert any(w.startswith("1 patient started treatment after their eligibility ended") for w in pp.warnings)
