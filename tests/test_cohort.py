"""Cohort: validation messages, categorical coding, immutability, take()."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.errors import DataError, SpecError

NAN = np.nan
ROLES = dict(id="id", time="os_months", event="os_event", treatment="surgery", treatment_time="months_to_surgery")


def base() -> pd.DataFrame:
    """Six patients, checkable by hand: 3 treated (rows 0, 1, 5), 4 OS events."""
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "os_months": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "os_event": [1, 0, 1, 1, 0, 1],
            "surgery": [1, 1, 0, 0, 0, 1],
            "months_to_surgery": [0.5, 1.0, NAN, NAN, NAN, 2.0],
            "age": [50.0, 60.0, 70.0, 80.0, 55.0, 65.0],
            "bclc": ["C", "D", "C", "B", "C", "D"],
            "pfs_months": [0.5, 2.0, 1.0, 3.0, 5.0, 4.0],
            "pfs_event": [1, 1, 1, 0, 0, 1],
            "centre": ["a", "a", "b", "b", "c", "c"],
        }
    )


def make(df: pd.DataFrame | None = None, **kw) -> Cohort:
    args = dict(ROLES, confounders=["age", "bclc"])
    args.update(kw)
    return Cohort(base() if df is None else df, **args)


def with_values(col: str, values: dict, dtype=None) -> pd.DataFrame:
    df = base()
    if dtype is not None:
        df[col] = df[col].astype(dtype)
    for i, v in values.items():
        df.loc[i, col] = v
    return df


# --------------------------------------------------------------------------
# the happy path, by hand
# --------------------------------------------------------------------------
def test_arrays_by_hand():
    c = make(outcomes={"pfs": ("pfs_months", "pfs_event")}, cluster="centre")
    assert c.n == len(c) == 6
    np.testing.assert_array_equal(c.ids, [1, 2, 3, 4, 5, 6])
    assert c.treatment.dtype == np.int8 and c.event().dtype == np.int8
    np.testing.assert_array_equal(c.treatment, [1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(c.treatment_time, [0.5, 1.0, NAN, NAN, NAN, 2.0])
    np.testing.assert_array_equal(c.time(), [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(c.event("os"), [1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(c.time("pfs"), [0.5, 2, 1, 3, 5, 4])
    np.testing.assert_array_equal(c.event("pfs"), [1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(c.cluster, ["a", "a", "b", "b", "c", "c"])
    assert c.outcome_names == ["os", "pfs"]
    assert c.confounders == ["age", "bclc"]
    # bclc: C is the most frequent level (3 of 6) and becomes the reference
    assert c.reference_levels == {"bclc": "C"}
    assert c.confounder_columns == ["age", "bclc=B", "bclc=D"]
    np.testing.assert_array_equal(
        c.X,
        [[50, 0, 0], [60, 0, 1], [70, 0, 0], [80, 1, 0], [55, 0, 0], [65, 0, 1]],
    )
    assert c.X.dtype == float
    assert c.rows_dropped == 0 and c.dropped_by == {} and c.warnings == []
    assert c.roles == {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery",
                       "treatment_time": "months_to_surgery", "cluster": "centre"}
    assert c.summary_counts() == {"n": 6, "n_treated": 3, "n_untreated": 3,
                                  "events": {"os": 4, "pfs": 4}, "rows_dropped": 0}


def test_without_treatment_time_the_attribute_is_none():
    c = Cohort(base(), id="id", time="os_months", event="os_event", treatment="surgery")
    assert c.treatment_time is None and c.cluster is None
    assert c.X.shape == (6, 0) and c.confounder_columns == []


def test_bool_treatment_and_event_accepted():
    df = base()
    df["surgery"] = df["surgery"].astype(bool)
    df["os_event"] = df["os_event"].astype(bool)
    c = make(df)
    np.testing.assert_array_equal(c.treatment, [1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(c.event(), [1, 0, 1, 1, 0, 1])


def test_numbers_stored_as_text_are_accepted_for_times():
    # e.g. spreadsheet cells formatted as text; a 0/1 role stays strict (see the error cases)
    df = base().assign(os_months=pd.Series(["1", "2", "3", "4", "5", "6.5"], dtype=object))
    np.testing.assert_array_equal(make(df).time(), [1, 2, 3, 4, 5, 6.5])


def test_pfs_time_is_not_compared_with_treatment_time():
    # surgery at 2.0 months, PFS event at 0.1: allowed (only OS bounds treatment time)
    df = with_values("pfs_months", {5: 0.1})
    c = make(df, outcomes={"pfs": ("pfs_months", "pfs_event")})
    assert c.time("pfs")[5] == 0.1


def test_treatment_time_equal_to_follow_up_is_allowed():
    c = make(with_values("months_to_surgery", {5: 6.0}))
    assert c.treatment_time[5] == 6.0


def test_from_frame_matches_constructor():
    roles = {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery",
             "treatment_time": "months_to_surgery", "cluster": None}
    a = Cohort.from_frame(base(), roles, ["age", "bclc"], missing="error", source="x.csv")
    b = make(source="x.csv")
    assert a.data_hash == b.data_hash
    assert a.roles == b.roles


@pytest.mark.parametrize(
    "roles, message",
    [
        ({"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery", "centre": "centre"},
         "roles: unknown role 'centre'; valid roles: id, time, event, treatment, treatment_time, cluster, "
         "start_date, end_date, treatment_date"),
        ({"id": "id", "time": "os_months", "event": "os_event", "treatmnt": "surgery"},
         "roles: unknown role 'treatmnt' (did you mean 'treatment'?); valid roles: id, time, event, treatment, "
         "treatment_time, cluster, start_date, end_date, treatment_date"),
        ({"id": "id", "time": "os_months", "event": "os_event"},
         "roles: 'treatment' is required; required roles: id, time, event, treatment"),
    ],
)
def test_from_frame_bad_roles(roles, message):
    with pytest.raises(SpecError) as e:
        Cohort.from_frame(base(), roles)
    assert str(e.value) == message


# --------------------------------------------------------------------------
# the caller's frame and the cohort's own state
# --------------------------------------------------------------------------
def test_callers_frame_is_never_modified():
    df = base()
    df.loc[1, "age"] = NAN
    df["flag"] = [True, False, True, True, False, False]
    df.attrs["value_labels"] = {"age": {50.0: "fifty"}}
    before = copy.deepcopy(df)
    make(df, confounders=["age", "bclc", "flag"], missing="complete_case", categorical=["bclc"])
    pd.testing.assert_frame_equal(df, before)
    assert df.attrs == before.attrs


def test_later_edits_of_callers_frame_do_not_leak_in():
    df = base()
    c = make(df)
    df.loc[0, "os_months"] = 99.0
    df.loc[0, "bclc"] = "B"
    assert c.time()[0] == 1.0
    assert c.frame().loc[0, "bclc"] == "C"
    assert c.column("os_months")[0] == 1.0


@pytest.mark.parametrize("name", ["ids", "treatment", "treatment_time", "X", "cluster", "source_rows"])
def test_arrays_are_read_only(name):
    c = make(cluster="centre")
    arr = getattr(c, name)
    with pytest.raises(ValueError):
        arr[0] = arr[1]


def test_time_event_column_are_read_only():
    c = make()
    for arr in (c.time(), c.event(), c.column("age")):
        with pytest.raises(ValueError):
            arr[0] = 0


def test_attributes_cannot_be_set():
    c = make()
    with pytest.raises(AttributeError, match="Cohort is immutable; cannot set 'n'"):
        c.n = 3
    with pytest.raises(AttributeError):
        del c.X


def test_frame_is_a_copy():
    c = make()
    f = c.frame()
    f.loc[0, "os_months"] = 99.0
    assert c.frame().loc[0, "os_months"] == 1.0
    pd.testing.assert_frame_equal(c.frame(), base())


def test_column_returns_any_input_column():
    c = make()
    np.testing.assert_array_equal(c.column("pfs_months"), [0.5, 2, 1, 3, 5, 4])
    with pytest.raises(DataError) as e:
        c.column("pfs_month")
    assert str(e.value) == (
        "column 'pfs_month' not found (did you mean 'pfs_months'?); columns: id, os_months, os_event, surgery, "
        "months_to_surgery, age, bclc, pfs_months, pfs_event, centre"
    )


def test_unknown_outcome():
    with pytest.raises(SpecError) as e:
        make().time("pfs")
    assert str(e.value) == "unknown outcome 'pfs'; outcomes: os"


# --------------------------------------------------------------------------
# validation: every message exact (DataFrame source: index labels)
# --------------------------------------------------------------------------
COLUMNS = "id, os_months, os_event, surgery, months_to_surgery, age, bclc, pfs_months, pfs_event, centre"
PFS = {"outcomes": {"pfs": ("pfs_months", "pfs_event")}}

CASES = [
    ("missing column", base, {"time": "os_month"},
     f"column 'os_month' not found (did you mean 'os_months'?); columns: {COLUMNS}"),
    ("missing column, no suggestion", base, {"confounders": ["albumin"]},
     f"column 'albumin' not found; columns: {COLUMNS}"),
    ("non-numeric time", lambda: with_values("os_months", {1: "abc"}, object), {},
     "column 'os_months' (time) must be numeric; found 'abc' at index 1"),
    ("bool time", lambda: with_values("os_months", {0: True, 1: False}, object), {},
     "column 'os_months' (time) must be numeric; found True at index 0, 1"),
    ("missing time", lambda: with_values("os_months", {2: NAN}), {},
     "column 'os_months' (time) has 1 missing value at index 2"),
    ("infinite time", lambda: with_values("os_months", {2: np.inf}), {},
     "column 'os_months' (time) has infinite values at index 2"),
    ("negative time", lambda: with_values("os_months", {2: -1.0}), {},
     "column 'os_months' (time) has negative values at index 2"),
    ("zero follow-up", lambda: with_values("os_months", {3: 0.0, 4: 0.0}), {},
     "column 'os_months' (time) has zero follow-up time at index 3, 4"),
    ("event not 0/1", lambda: with_values("os_event", {0: 2}), {},
     "column 'os_event' (event) must be 0 or 1; found 2 at index 0"),
    ("event text", lambda: with_values("os_event", {0: "dead"}, object), {},
     "column 'os_event' (event) must be 0 or 1; found 'dead' at index 0"),
    ("missing event", lambda: with_values("os_event", {4: NAN, 5: NAN}), {},
     "column 'os_event' (event) has 2 missing values at index 4, 5"),
    ("no events", lambda: with_values("os_event", {0: 0, 2: 0, 3: 0, 5: 0}), {},
     "column 'os_event' (event) has no events (all 0)"),
    ("treatment as text", lambda: base().assign(surgery=["yes", "yes", "no", "no", "no", "yes"]), {},
     "column 'surgery' (treatment) must be 0/1 or True/False; found 'yes' at index 0, 1, 2 (+3 more)"),
    ("treatment as text digits", lambda: with_values("surgery", {1: "1"}, object), {},
     "column 'surgery' (treatment) must be 0/1 or True/False; found '1' at index 1"),
    ("nullable boolean treatment with NA", lambda: base().assign(
        surgery=pd.array([True, None, False, False, False, True], dtype="boolean")), {"treatment_time": None},
     "column 'surgery' (treatment) has 1 missing value at index 1"),
    ("nullable integer event with NA", lambda: base().assign(
        os_event=pd.array([1, 0, None, 1, 0, 1], dtype="Int64")), {},
     "column 'os_event' (event) has 1 missing value at index 2"),
    ("dates as time", lambda: base().assign(os_months=pd.date_range("2020-01-01", periods=6)), {},
     "column 'os_months' (time) must be numeric; found '2020-01-01 00:00:00' at index 0, 1, 2 (+3 more)"),
    ("dates as confounder", lambda: base().assign(age=pd.date_range("2020-01-01", periods=6)), {},
     "column 'age' (confounder) holds dates or durations; give a number (e.g. age in years) instead"),
    ("treatment not binary", lambda: with_values("surgery", {1: 2}), {},
     "column 'surgery' (treatment) must be 0/1 or True/False; found 2 at index 1"),
    ("missing treatment", lambda: with_values("surgery", {1: NAN}), {},
     "column 'surgery' (treatment) has 1 missing value at index 1"),
    ("all treated", lambda: base().assign(surgery=1), {},
     "column 'surgery' (treatment) is constant: all 6 patients are treated; both arms are needed"),
    ("none treated", lambda: base().assign(surgery=0), {"treatment_time": None},
     "column 'surgery' (treatment) is constant: all 6 patients are untreated; both arms are needed"),
    ("treated without treatment_time", lambda: with_values("months_to_surgery", {1: NAN}), {},
     "column 'months_to_surgery' (treatment_time) is missing for treated patients at index 1"),
    ("untreated with treatment_time", lambda: with_values("months_to_surgery", {2: 1.0, 4: 0.0}), {},
     "column 'months_to_surgery' (treatment_time) is set for untreated patients at index 2, 4"),
    ("treatment_time after follow-up", lambda: with_values("months_to_surgery", {5: 7.0}), {},
     "column 'months_to_surgery' (treatment_time) is after the end of follow-up ('os_months') at index 5"),
    ("negative treatment_time", lambda: with_values("months_to_surgery", {0: -0.5}), {},
     "column 'months_to_surgery' (treatment_time) has negative values at index 0"),
    ("non-numeric treatment_time", lambda: with_values("months_to_surgery", {0: "soon"}, object), {},
     "column 'months_to_surgery' (treatment_time) must be numeric; found 'soon' at index 0"),
    ("duplicated ids", lambda: with_values("id", {3: 1, 5: 1}), {},
     "column 'id' (id) has duplicated values at index 0, 3, 5 (value 1)"),
    ("missing id", lambda: with_values("id", {2: NAN}), {},
     "column 'id' (id) has 1 missing value at index 2"),
    ("missing confounders", lambda: with_values("bclc", {1: None, 4: None}).assign(
        age=[50.0, NAN, 70.0, 80.0, 55.0, 65.0]), {},
     "missing confounder values: 'age' 1 (index 1), 'bclc' 2 (index 1, 4); "
     "set missing: complete_case to drop these 2 rows"),
    ("missing confounder, one row", lambda: with_values("age", {3: NAN}), {},
     "missing confounder values: 'age' 1 (index 3); set missing: complete_case to drop this row"),
    ("complete case empties the treated group", lambda: with_values("age", {0: NAN, 1: NAN, 5: NAN}),
     {"missing": "complete_case"},
     "no treated patients left after dropping 3 rows with missing confounders (missing: complete_case)"),
    ("complete case removes every event", lambda: with_values("age", {0: NAN, 2: NAN, 3: NAN, 5: NAN}),
     {"missing": "complete_case"},
     "column 'os_event' (event) has no events (all 0 after dropping 4 rows with missing confounders)"),
    ("complete case drops everything", lambda: base().assign(age=NAN), {"missing": "complete_case"},
     "no rows left after dropping rows with missing confounders: 'age' 6 (index 0, 1, 2 (+3 more))"),
    ("infinite confounder", lambda: with_values("age", {2: -np.inf}), {},
     "column 'age' (confounder) has infinite values at index 2"),
    ("one column, two roles", base, {"event": "os_months"},
     "column 'os_months' is used for two roles: time and event"),
    ("confounder is a role", base, {"confounders": ["age", "surgery"]},
     "confounder 'surgery' is also the treatment column"),
    ("unknown reference level", base, {"reference": {"bclc": "E"}},
     "reference level 'E' for 'bclc' not found; levels: B, C, D"),
    ("pfs negative time", lambda: with_values("pfs_months", {0: -0.5}), PFS,
     "column 'pfs_months' (pfs time) has negative values at index 0"),
    ("pfs event not 0/1", lambda: with_values("pfs_event", {3: 9}), PFS,
     "column 'pfs_event' (pfs event) must be 0 or 1; found 9 at index 3"),
    ("pfs no events", lambda: base().assign(pfs_event=0), PFS,
     "column 'pfs_event' (pfs event) has no events (all 0)"),
    ("pfs missing column", base, {"outcomes": {"pfs": ("pfs_month", "pfs_event")}},
     f"column 'pfs_month' not found (did you mean 'pfs_months'?); columns: {COLUMNS}"),
    ("missing cluster", lambda: with_values("centre", {5: None}), {"cluster": "centre"},
     "column 'centre' (cluster) has 1 missing value at index 5"),
    ("no rows", lambda: base().iloc[:0], {},
     "the data has no rows"),
    ("duplicated column names", lambda: pd.concat([base(), base()[["age"]]], axis=1), {},
     "column 'age' appears more than once in the data"),
    ("not a DataFrame", lambda: base().to_dict(), {},
     "data must be a pandas DataFrame, got dict"),
]


@pytest.mark.parametrize("frame, kwargs, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_data_errors(frame, kwargs, message):
    with pytest.raises(DataError) as e:
        make(frame(), **kwargs)
    assert str(e.value) == message
    assert "\n" not in str(e.value)


SPEC_CASES = [
    ("bad missing policy", {"missing": "drop"}, "missing must be one of error, complete_case, got 'drop'"),
    ("categorical not a confounder", {"categorical": ["bclcc"]},
     "categorical: 'bclcc' is not a confounder (did you mean 'bclc'?); confounders: age, bclc"),
    ("reference not a confounder", {"reference": {"albumin": "B"}},
     "reference: 'albumin' is not a confounder; confounders: age, bclc"),
    ("reference for a numeric confounder", {"reference": {"age": 50}},
     "reference: 'age' is not categorical; declare it under categorical"),
    ("confounder twice", {"confounders": ["age", "age"]}, "confounder 'age' is listed twice"),
    ("outcome name clash", {"outcomes": {"os": ("pfs_months", "pfs_event")}},
     "outcome 'os' is both the primary outcome and an extra outcome"),
    ("outcome not a pair", {"outcomes": {"pfs": "pfs_months"}},
     "outcome 'pfs' must be a pair (time column, event column), got 'pfs_months'"),
]


@pytest.mark.parametrize("kwargs, message", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_spec_errors(kwargs, message):
    with pytest.raises(SpecError) as e:
        make(**kwargs)
    assert str(e.value) == message


def test_rows_from_a_file_are_data_rows_counted_from_one():
    df = with_values("os_months", {0: -1.0, 3: -2.0})
    with pytest.raises(DataError) as e:
        make(df, source="cohort.csv")
    assert str(e.value) == "column 'os_months' (time) has negative values at data rows 1, 4"
    with pytest.raises(DataError) as e:
        make(with_values("os_months", {2: -1.0}), source="cohort.csv")
    assert str(e.value) == "column 'os_months' (time) has negative values at data row 3"


def test_rows_from_a_dataframe_are_index_labels():
    df = with_values("os_months", {2: -1.0})
    df.index = ["p1", "p2", "p3", "p4", "p5", "p6"]
    with pytest.raises(DataError) as e:
        make(df)
    assert str(e.value) == "column 'os_months' (time) has negative values at index p3"


def test_rows_after_complete_case_point_to_the_input():
    # row 0 is dropped; the bad treatment time sits at input row 5 (data row 6)
    df = with_values("age", {0: NAN})
    df.loc[5, "months_to_surgery"] = 2.0
    df.loc[5, "os_months"] = 1.0
    with pytest.raises(DataError) as e:
        make(df, missing="complete_case", source="cohort.csv")
    assert str(e.value) == (
        "column 'months_to_surgery' (treatment_time) is after the end of follow-up ('os_months') at data row 6"
    )


def test_long_column_lists_are_shortened():
    df = pd.concat([base(), pd.DataFrame({f"x{i}": [0.0] * 6 for i in range(40)})], axis=1)
    with pytest.raises(DataError) as e:
        make(df, time="os_month")
    assert str(e.value).endswith(", x19, ... (+20 more)")


# --------------------------------------------------------------------------
# complete-case analysis
# --------------------------------------------------------------------------
def test_complete_case_drops_and_records():
    df = with_values("bclc", {4: None}).assign(age=[50.0, NAN, 70.0, 80.0, 55.0, 65.0])
    c = make(df, missing="complete_case")
    assert c.rows_dropped == 2
    assert c.dropped_by == {"age": 1, "bclc": 1}
    np.testing.assert_array_equal(c.ids, [1, 3, 4, 6])
    np.testing.assert_array_equal(c.time(), [1, 3, 4, 6])
    np.testing.assert_array_equal(c.column("id"), [1, 3, 4, 6])
    assert list(c.frame().index) == [0, 2, 3, 5]
    assert c.summary_counts()["rows_dropped"] == 2
    # bclc among kept rows: C, C, B, D -> reference C
    assert c.confounder_columns == ["age", "bclc=B", "bclc=D"]
    np.testing.assert_array_equal(c.X, [[50, 0, 0], [70, 0, 0], [80, 1, 0], [65, 0, 1]])


# --------------------------------------------------------------------------
# confounder coding
# --------------------------------------------------------------------------
def test_reference_tie_goes_to_first_sorted_level():
    df = base().assign(bclc=["D", "B", "D", "B", "C", "A"])  # B and D tie with 2
    c = make(df)
    assert c.reference_levels == {"bclc": "B"}
    assert c.confounder_columns == ["age", "bclc=A", "bclc=C", "bclc=D"]


def test_explicit_reference_level():
    c = make(reference={"bclc": "B"})
    assert c.reference_levels == {"bclc": "B"}
    assert c.confounder_columns == ["age", "bclc=C", "bclc=D"]
    np.testing.assert_array_equal(c.X[:, 1], [1, 0, 1, 0, 1, 0])


def test_declared_numeric_categorical_levels_sort_numerically():
    df = base().assign(stage=[10.0, 2.0, 2.0, 1.0, 10.0, 10.0])
    c = make(df, confounders=["stage"], categorical=["stage"], reference={"stage": 2})
    assert c.reference_levels == {"stage": "2"}
    assert c.confounder_columns == ["stage=1", "stage=10"]
    np.testing.assert_array_equal(c.X, [[0, 1], [0, 0], [0, 0], [1, 0], [0, 1], [0, 1]])


def test_pandas_categorical_keeps_category_order_and_drops_unused():
    cat = pd.Categorical(["low", "high", "low", "mid", "high", "mid"], categories=["low", "mid", "high", "none"])
    c = make(base().assign(grade=cat), confounders=["grade"])
    assert c.reference_levels == {"grade": "low"}  # three-way tie: first in category order
    assert c.confounder_columns == ["grade=mid", "grade=high"]


def test_value_labelled_confounder_becomes_labelled_categories():
    df = base().assign(stage=[1.0, 2.0, 2.0, 3.0, 2.0, 1.0], os_event=[1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    df.attrs["value_labels"] = {"stage": {1.0: "BCLC B", 2.0: "BCLC C", 3.0: "BCLC D"},
                                "os_event": {0.0: "censored", 1.0: "dead"}}
    c = make(df, confounders=["stage"])
    assert c.reference_levels == {"stage": "BCLC C"}
    assert c.confounder_columns == ["stage=BCLC B", "stage=BCLC D"]
    np.testing.assert_array_equal(c.event(), [1, 0, 1, 1, 0, 1])  # the role column stays numeric


def test_partly_labelled_confounder_stays_numeric():
    # SPSS habit: a label only on a special code of a numeric variable
    df = base()
    df.attrs["value_labels"] = {"age": {999.0: "unknown"}}
    c = make(df)
    assert c.confounder_columns == ["age", "bclc=B", "bclc=D"]
    # declared categorical: the labels name the levels they cover
    c = make(df, categorical=["age"], confounders=["age"], reference={"age": "50"})
    assert c.confounder_columns == ["age=55", "age=60", "age=65", "age=70", "age=80"]


def test_bool_confounder_is_zero_one_and_numeric_object_is_numeric():
    df = base().assign(flag=[True, False, True, True, False, False],
                       afp=pd.Series([1.5, 2, 3, 4, 5, 6], dtype=object))
    c = make(df, confounders=["flag", "afp"])
    assert c.confounder_columns == ["flag", "afp"]
    np.testing.assert_array_equal(c.X, [[1, 1.5], [0, 2], [1, 3], [1, 4], [0, 5], [0, 6]])


def test_constant_confounders_are_left_out_with_a_warning():
    df = base().assign(ecog=1.0, sex=["m"] * 6)
    c = make(df, confounders=["age", "ecog", "sex"])
    assert c.confounder_columns == ["age"]
    assert c.warnings == [
        "confounder 'ecog' is constant (1) and was left out of the models",
        "confounder 'sex' is constant ('m') and was left out of the models",
    ]


def test_many_level_categorical_warns():
    df = pd.DataFrame({"id": range(30), "t": np.arange(1.0, 31), "e": [1, 0] * 15, "s": [0, 1] * 15,
                       "code": [f"c{i:02d}" for i in range(30)]})
    c = Cohort(df, id="id", time="t", event="e", treatment="s", confounders=["code"])
    assert c.warnings == ["confounder 'code' is categorical with 30 levels"]
    assert c.X.shape == (30, 29)


# --------------------------------------------------------------------------
# take()
# --------------------------------------------------------------------------
def test_take_duplicates_become_distinct_patients():
    c = make(outcomes={"pfs": ("pfs_months", "pfs_event")}, cluster="centre")
    b = c.take(np.array([5, 0, 0, 3]))
    assert b.n == 4
    np.testing.assert_array_equal(b.ids, [6, 1, 1, 4])  # ids of the source rows
    np.testing.assert_array_equal(b.source_rows, [5, 0, 0, 3])
    np.testing.assert_array_equal(b.treatment, [1, 1, 1, 0])
    np.testing.assert_array_equal(b.treatment_time, [2.0, 0.5, 0.5, NAN])
    np.testing.assert_array_equal(b.time(), [6, 1, 1, 4])
    np.testing.assert_array_equal(b.event("pfs"), [1, 1, 1, 0])
    np.testing.assert_array_equal(b.cluster, ["c", "a", "a", "b"])
    np.testing.assert_array_equal(b.X, c.X[[5, 0, 0, 3]])
    assert b.confounder_columns == c.confounder_columns and b.reference_levels == c.reference_levels
    np.testing.assert_array_equal(b.column("pfs_months"), [4, 0.5, 0.5, 3])
    assert list(b.frame()["id"]) == [6, 1, 1, 4]
    assert b.summary_counts() == {"n": 4, "n_treated": 3, "n_untreated": 1,
                                  "events": {"os": 4, "pfs": 3}, "rows_dropped": 0}
    with pytest.raises(ValueError):
        b.X[0, 0] = 1.0
    with pytest.raises(AttributeError):
        b.n = 1


def test_take_of_take_composes_source_rows():
    c = make()
    b = c.take([5, 0, 3]).take([2, 2, 0])
    np.testing.assert_array_equal(b.source_rows, [3, 3, 5])
    np.testing.assert_array_equal(b.ids, [4, 4, 6])
    np.testing.assert_array_equal(b.column("age"), [80, 80, 65])


def test_take_leaves_the_parent_untouched():
    c = make()
    h = c.data_hash
    c.take([1, 1, 1])
    assert c.data_hash == h and c.n == 6
    np.testing.assert_array_equal(c.source_rows, np.arange(6))


def test_take_rejects_non_integer_positions():
    with pytest.raises(TypeError):
        make().take(np.array([0.0, 1.0]))


# --------------------------------------------------------------------------
# data_hash
# --------------------------------------------------------------------------
def test_data_hash_is_stable():
    # fixed value: changes only if the canonical serialisation changes (bump its version tag then)
    assert make().data_hash == "8a28b09895d167325fed6843fd6ec75a3e746af2d03f2c32f787b7224829fd6c"


def test_data_hash_ignores_unused_columns_and_index_but_not_values():
    h = make().data_hash
    assert make(base().assign(unused=7)).data_hash == h
    assert make(base().set_axis(list("abcdef"))).data_hash == h
    assert make().take(np.arange(6)).data_hash == h
    assert make(with_values("os_months", {0: 1.5})).data_hash != h
    assert make(with_values("bclc", {0: "D"})).data_hash != h
    assert make().take([0, 1, 2, 3, 4, 4]).data_hash != h
    assert len(h) == 64 and int(h, 16) >= 0
