"""Timeline: visits joined to a cohort (LOCF, known at t), take, split (tmerge/survSplit), bad input."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.errors import DataError, SpecError
from causal_hcc.timeline import Timeline, attach_visits, eligibility_end, eligible_at, read_visits


def _patients(**extra) -> pd.DataFrame:
    df = pd.DataFrame({"id": [1, 2, 3, 4], "t": [10.0, 5, 8, 12], "e": [1, 0, 1, 0], "a": [1, 0, 1, 0],
                       "tt": [2.0, np.nan, 4, np.nan], "age": [50, 60, 70, 65]})
    for k, v in extra.items():
        df[k] = v
    return df


def _cohort(df: pd.DataFrame | None = None) -> Cohort:
    return Cohort(_patients() if df is None else df, id="id", time="t", event="e", treatment="a",
                  treatment_time="tt", confounders=["age"])


VISITS = pd.DataFrame({"id": [1, 1, 1, 2, 3, 3, 4], "month": [0, 2, 6, 1, 0, 3, 0],
                       "ecog": [0, 1, 2, 1, 0, np.nan, 2], "afp": [10, 20, np.nan, 5, 7, 8, 9]})


@pytest.fixture
def tl() -> Timeline:
    return attach_visits(_cohort(), VISITS, time="month").timeline


def test_locf_and_known_at_t(tl):
    # patient row 0: ecog 0 @0, 1 @2, 2 @6; afp 10 @0, 20 @2, missing @6 (20 carried on)
    got = tl.at(np.array([0, 0, 0, 0, 0]), np.array([0.0, 1.999, 2.0, 5.9, 6.0]))
    np.testing.assert_array_equal(got, [[0, 10], [0, 10], [1, 20], [1, 20], [2, 20]])
    # row 2: ecog missing at 3 -> 0 carried from time 0, afp 8 from 3
    np.testing.assert_array_equal(tl.at(np.array([2, 2]), np.array([2.9, 3.0])), [[0, 7], [0, 8]])
    assert tl.columns == ("ecog", "afp")


def test_before_first_measurement_is_carried_back_with_a_warning():
    c = attach_visits(_cohort(), VISITS, time="month")
    # row 1 (id 2) is first measured at 1: that value holds from time zero
    np.testing.assert_array_equal(c.timeline.at(np.array([1, 1]), np.array([0.0, 0.5])), [[1, 5], [1, 5]])
    assert any("first measurement after time zero for 1 patient (up to 1 later)" in w for w in c.warnings)


def test_baseline_value_from_the_patient_table_holds_until_the_first_visit():
    c = _cohort(_patients(ecog=[3, 3, 3, 3]))
    tl = attach_visits(c, VISITS, time="month", columns=["ecog"]).timeline
    # id 2: baseline ecog 3 at 0, visit ecog 1 at 1
    np.testing.assert_array_equal(tl.at(np.array([1, 1]), np.array([0.5, 1.0])), [[3], [1]])
    # id 1: a visit at time 0 wins over the baseline value
    np.testing.assert_array_equal(tl.at(np.array([0]), np.array([0.0])), [[0]])
    assert not any("carried back" in w for w in tl.warnings)


def test_at_is_finite_and_vectorised_for_many_queries(tl):
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 4, 10_000)
    t = rng.uniform(-1, 13, 10_000)
    got = tl.at(rows, t)
    assert got.shape == (10_000, 2) and np.all(np.isfinite(got))
    m = tl.measurements()
    for i in range(0, 10_000, 997):                  # brute force: last measurement at or before t, else the first
        mine = np.flatnonzero(m["row"] == rows[i])
        before = mine[m["time"][mine] <= t[i]]
        j = before[-1] if before.size else mine[0]
        np.testing.assert_array_equal(got[i], m["values"][j])


def test_change_times(tl):
    np.testing.assert_array_equal(tl.change_times(), [0, 1, 2, 3, 6])
    np.testing.assert_array_equal(tl.change_times(np.array([0, 3])), [0, 2, 6])


def test_take_follows_cohort_take_with_duplicates():
    c = attach_visits(_cohort(), VISITS, time="month")
    idx = np.array([2, 0, 0, 3])
    b = c.take(idx)
    assert b.timeline.n == 4 and b.time_varying_confounders == ("ecog", "afp")
    t = np.array([3.5, 2.0, 7.0, 1.0])
    np.testing.assert_array_equal(b.timeline.at(np.arange(4), t), c.timeline.at(idx, t))
    np.testing.assert_array_equal(b.timeline.change_times(np.array([1])), [0, 2, 6])


def test_split_cuts_at_own_measurement_times_and_common_cuts(tl):
    sp = tl.split(np.zeros(4), np.array([10.0, 5, 8, 12]), np.arange(4), cuts=[3, 6])
    assert sp["interval"].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert sp["start"].tolist() == [0, 2, 3, 6, 0, 1, 3, 0, 3, 6, 0, 3, 6]
    assert sp["stop"].tolist() == [2, 3, 6, 10, 1, 3, 5, 3, 6, 8, 3, 6, 12]
    assert sp["last"].tolist() == [False, False, False, True] * 1 + [False, False, True] * 3
    np.testing.assert_array_equal(sp["values"], tl.at(sp["row"], sp["start"]))


def test_split_matches_brute_force_on_random_intervals():
    rng = np.random.default_rng(7)
    n = 50
    df = pd.DataFrame({"id": np.arange(n), "t": rng.uniform(1, 20, n).round(1), "e": rng.integers(0, 2, n),
                       "a": np.r_[np.ones(25, int), np.zeros(25, int)], "age": rng.normal(60, 5, n)})
    df.loc[0, "e"] = 1
    c = Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["age"])
    vis = pd.DataFrame({"id": np.repeat(np.arange(n), 4), "m": np.tile([0.0, 2, 5, 9], n) + rng.uniform(0, 1, 4 * n),
                        "x": rng.normal(size=4 * n)})
    vis = vis[vis.m <= np.repeat(df.t.to_numpy(), 4)]
    tl = attach_visits(c, vis, time="m").timeline
    a = rng.uniform(0, 5, 80)
    b = a + rng.uniform(0, 12, 80)
    r = rng.integers(0, n, 80)
    cuts = np.array([1.5, 4.0, 7.5])
    sp = tl.split(a, b, r, cuts)
    own = tl.measurements()
    for i in range(80):
        inner = np.r_[own["time"][own["row"] == r[i]], cuts]
        inner = np.unique(inner[(inner > a[i]) & (inner < b[i])])
        edges = np.r_[a[i], inner, b[i]]
        m = sp["interval"] == i
        np.testing.assert_array_equal(sp["start"][m], edges[:-1])
        np.testing.assert_array_equal(sp["stop"][m], edges[1:])


def test_dropped_measurements_are_counted():
    v = pd.concat([VISITS, pd.DataFrame({"id": [1, 2, 2], "month": [-1, 5, 7], "ecog": [0, 0, 0],
                                         "afp": [1, 1, 1]})]).sort_values(["id", "month"], kind="stable")
    tl = attach_visits(_cohort(), v, time="month").timeline
    assert tl.info["dropped_before_time_zero"] == 1 and tl.info["dropped_after_follow_up"] == 1  # 5 = T kept
    assert any("2 measurements outside follow-up dropped (1 before time zero, 1 after the end of follow-up)" in w
               for w in tl.warnings)


def test_categorical_and_term_columns():
    v = VISITS.assign(resp=["SD", "PR", "PR", "SD", "CR", "CR", "SD"])
    tl = Timeline.build(_cohort(), read_visits(v, id="id", time="month", columns=["afp", "resp"],
                                               categorical=["resp"]),
                        confounders=["log(afp)", "resp"], categorical=["resp"])
    assert tl.columns == ("log(afp)", "resp=CR", "resp=PR")
    np.testing.assert_allclose(tl.at(np.array([0]), np.array([2.0])), [[np.log(20), 0, 1]])
    assert tl.confounder_map == {"log(afp)": ["log(afp)"], "resp": ["resp=CR", "resp=PR"]}


def test_pickle_and_hash():
    c = attach_visits(_cohort(), VISITS, time="month")
    c2 = pickle.loads(pickle.dumps(c))
    np.testing.assert_array_equal(c2.timeline.at(np.arange(4), np.full(4, 3.0)), c.timeline.at(np.arange(4), 3.0))
    assert c.data_hash != _cohort().data_hash
    assert c2.data_hash == c.data_hash


def test_inputs_never_modified():
    v = VISITS.copy()
    p = _patients()
    attach_visits(_cohort(p), v, time="month")
    pd.testing.assert_frame_equal(v, VISITS)
    pd.testing.assert_frame_equal(p, _patients())


def test_eligibility_helpers_without_a_timeline():
    c = _cohort()
    assert np.all(np.isinf(eligibility_end(c))) and eligible_at(c, 3.0).all()


@pytest.mark.parametrize("change, message", [
    (lambda v: v.rename(columns={"afp": "afp1"}), "visits: column 'afp' not found (did you mean 'afp1'?)"),
    (lambda v: v.assign(id=[1, 1, 1, 2, 3, 3, 9]), "visits: 1 id not in the cohort (9) at index 6"),
    (lambda v: v.assign(month=[0, 6, 2, 1, 0, 3, 0]),
     "visits: times of id 1 are not in increasing order at index 1, 2; sort the visits by id and month"),
    (lambda v: v.assign(month=[0, 2, 2, 1, 0, 3, 0]),
     "visits: id 1 has two measurements at the same time (2) at index 1, 2"),
    (lambda v: v.assign(afp=[10, "<5", 1, 5, 7, 8, 9]), "visits: column 'afp' (visits) must be numeric; found '<5' "
                                                       "at index 1; declare it under categorical:"),
    (lambda v: v.assign(afp=[10, np.inf, 1, 5, 7, 8, 9]), "visits: column 'afp' (visits) has infinite values at "
                                                          "index 1"),
    (lambda v: v.assign(month=[0, np.nan, 6, 1, 0, 3, 0]), "visits: column 'month' (time) has 1 missing value at "
                                                           "index 1"),
    (lambda v: v.assign(id=[1, None, 1, 2, 3, 3, 4]), "visits: column 'id' (id) has 1 missing value at index 1"),
])
def test_bad_visits_give_one_line(change, message):
    with pytest.raises(DataError) as err:
        attach_visits(_cohort(), change(VISITS.copy()), time="month", columns=["ecog", "afp"])
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_a_patient_without_any_value_is_refused():
    v = VISITS[VISITS.id != 4]
    with pytest.raises(DataError, match=r"visits: 'ecog' has no measurement for 1 patient \(id 4\) and the patient "
                                        r"table has no 'ecog' column"):
        attach_visits(_cohort(), v, time="month")


def test_unknown_time_varying_confounder():
    with pytest.raises(SpecError, match="'b' is not a measured column"):
        Timeline.build(_cohort(), read_visits(VISITS, id="id", time="month", columns=["afp"]), confounders=["b"])


# ----------------------------------------------------------------------------------------------------------------
# dates, censored, dropped patients, low-level constructor
# ----------------------------------------------------------------------------------------------------------------
def _dated_cohort() -> Cohort:
    df = pd.DataFrame({"id": ["a", "b", "c"], "start": ["2020-01-01", "2020-02-01", "2020-03-01"],
                       "end": ["2020-12-31", "2020-02-01", "2020-06-30"], "dead": [1, 0, 1], "op": [1, 0, 0],
                       "op_date": ["2020-03-01", None, None], "age": [50, 60, 70]})
    return Cohort(df, id="id", start_date="start", end_date="end", treatment_date="op_date", treatment="op",
                  event="dead", confounders=["age"], time_unit="days")


def test_visit_dates_use_the_same_day_rule():
    c = _dated_cohort()
    v = pd.DataFrame({"pid": ["a", "a", "a", "b", "c"],
                      "on": ["2020-01-01", "2020-03-01", "2020-12-31", "2020-02-01", "2020-03-11"],
                      "ecog": [0, 1, 2, 1, 3]})
    tl = attach_visits(c, v, id="pid", date="on", columns=["ecog"]).timeline
    m = tl.measurements()
    # a: start day -> 0, treatment day -> 60, end day -> end - half a day (365 - 0.5); b: start = end day -> 0
    np.testing.assert_allclose(m["time"], [0, 60, 364.5, 0, 10])
    np.testing.assert_array_equal(tl.at(np.array([0, 0]), np.array([60.0, 364.5])), [[1], [2]])  # known that day
    assert not tl.info["dropped_after_follow_up"]


def test_visit_dates_need_start_date():
    v = VISITS.assign(on=[f"2020-01-0{i + 1}" for i in range(7)])
    with pytest.raises(SpecError, match="'date' needs the role 'start_date'"):
        attach_visits(_cohort(), v, date="on", columns=["ecog"])


def test_censored_role_in_the_patient_layout():
    c = _cohort(_patients(lost=[0, 1, 0, 1]))
    tl = Timeline.build(c, None, censored="lost")
    assert tl.censored.tolist() == [0, 1, 0, 1] and tl.columns == ()
    assert c.with_timeline(tl).take(np.array([1, 1, 0])).timeline.censored.tolist() == [1, 1, 0]
    with pytest.raises(DataError, match=r"column 'lost' \(censored\) is 1 for patients with an event at index 0"):
        Timeline.build(_cohort(_patients(lost=[1, 1, 0, 1])), None, censored="lost")
    with pytest.raises(DataError, match=r"column 'lost' \(censored\) must be 0 or 1; found 2 at index 3"):
        Timeline.build(_cohort(_patients(lost=[0, 1, 0, 2])), None, censored="lost")


def test_visits_of_patients_the_cohort_dropped():
    p = _patients(age=[50, np.nan, 70, 65])
    c = Cohort(p, id="id", time="t", event="e", treatment="a", treatment_time="tt", confounders=["age"],
               missing="complete_case")
    vt = read_visits(VISITS, id="id", time="month", columns=["ecog", "afp"])
    tl = Timeline.build(c, vt, all_ids=p["id"].to_numpy())
    assert tl.n == 3 and tl.info["dropped_with_patients"] == 1
    assert any("measurements of 1 patient dropped from the cohort" in w for w in tl.warnings)
    with pytest.raises(DataError, match="1 id not in the cohort"):
        Timeline.build(c, vt)            # without the patient table's ids: an unknown id


def test_constant_time_varying_confounder_is_left_out():
    tl = attach_visits(_cohort(), VISITS.assign(k=1.0), time="month", columns=["ecog", "k"]).timeline
    assert tl.columns == ("ecog",)
    assert any("time-varying confounder 'k' is constant" in w for w in tl.warnings)


def test_select_and_select_confounders_keep_the_timeline():
    c = attach_visits(_cohort(), VISITS, time="month")
    assert c.select_confounders(["age"]).timeline is c.timeline
    s = c.timeline.select(["afp"])
    np.testing.assert_array_equal(s.at(np.array([0]), np.array([2.0])), [[20]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(row=[0, 5], time=[0, 1], values=[[1], [2]]), "rows must be between 0 and 3"),
    (dict(row=[0, 0], time=[1, 1], values=[[1], [2]]), "cohort row 0 has two measurements at time 1"),
    (dict(row=[0, 1], time=[0, np.inf], values=[[1], [2]]), "measurement times must be finite"),
    (dict(row=[0, 1], time=[0, 1], values=[[1], [np.nan]]), "values must be finite"),
    (dict(row=[0, 1, 2], time=[0, 1, 0], values=[[1], [2], [3]]), "cohort row 3 has no measurement"),
])
def test_low_level_constructor_checks(kwargs, message):
    with pytest.raises(DataError, match=message):
        Timeline(4, columns=["x"], **kwargs)


def test_layout():
    assert attach_visits(_cohort(), VISITS, time="month").timeline.layout == "visits"
    assert Timeline.build(_cohort(_patients(lost=[0, 1, 0, 1])), None, censored="lost").layout is None


def test_ids_of_another_kind_get_a_hint():
    with pytest.raises(DataError, match=r"4 ids not in the cohort \('1', '2', '3' \(\+1 more\)\) at index 0, 1, 2 "
                                        r"\(\+4 more\); no id matches the patient table's \('id': int64 vs str "
                                        r"values\)"):
        attach_visits(_cohort(), VISITS.assign(id=VISITS.id.astype(str)), time="month")


def test_a_non_numeric_baseline_column_names_the_patient_rows():
    c = _cohort(_patients(ecog=[0, "x", 1, 1]))
    with pytest.raises(DataError, match=r"^column 'ecog' \(baseline of the time-varying 'ecog'\) must be numeric; "
                                        r"found 'x' at index 1"):
        attach_visits(c, VISITS, time="month", columns=["ecog"])


@pytest.mark.parametrize("confounders, columns, cmap", [
    # afp in the list: resp is coded by contrasts inside resp:afp, as R's model.matrix(~ afp + resp:afp) (every
    # level there would repeat afp: a singular weight model)
    (["afp", "resp:afp"], ("afp", "afp:resp=PR", "afp:resp=SD"),
     {"afp": ["afp"], "resp:afp": ["afp:resp=PR", "afp:resp=SD"]}),
    # a term shared by two entries is one column (it was two columns named afp)
    (["afp", "afp*ecog"], ("afp", "ecog", "afp:ecog"), {"afp": ["afp"], "afp*ecog": ["afp", "ecog", "afp:ecog"]}),
    # each entry maps to its own columns (resp:afp's were given to resp)
    (["resp", "resp:afp"], ("resp=CR", "resp=PR", "resp=CR:afp", "resp=PR:afp", "resp=SD:afp"),
     {"resp": ["resp=CR", "resp=PR"], "resp:afp": ["resp=CR:afp", "resp=PR:afp", "resp=SD:afp"]}),
])
def test_time_varying_terms_are_one_formula_as_the_confounders(confounders, columns, cmap):
    """time_varying_confounders are one R formula, expanded and coded as the baseline confounders are."""
    v = VISITS.assign(resp=["SD", "PR", "PR", "SD", "CR", "CR", "SD"])
    tl = Timeline.build(_cohort(), read_visits(v, id="id", time="month", columns=["afp", "ecog", "resp"],
                                               categorical=["resp"]),
                        confounders=confounders, categorical=["resp"])
    assert tl.columns == columns
    assert tl.confounder_map == cmap
    if len(columns) <= 3:    # (7 measurements: the third case's 5 columns are not all estimable from them)
        X = np.column_stack([np.ones(len(tl._values)), tl._values])
        assert np.linalg.matrix_rank(X) == X.shape[1]           # no column repeats another


def test_a_bad_term_value_names_the_visit_row():
    """log() of a non-positive measurement names the visits row (it said 'at 1 rows')."""
    v = VISITS.copy()
    v.loc[4, "afp"] = -3
    with pytest.raises(DataError) as e:
        attach_visits(_cohort(), v, time="month", columns=["ecog", "afp"], confounders=["ecog", "log(afp)"])
    assert str(e.value) == "visits: time-varying confounder term 'log(afp)': log of a value <= 0 in 'afp' at index 4"
