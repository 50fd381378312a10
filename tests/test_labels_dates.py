"""Issue 23: ``title:`` and ``labels:`` in the spec, dates as clinics write them, and reference levels that never
change between subsets of one analysis."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.config import parse_spec
from causal_hcc.errors import DataError, SpecError

BASE = {"study": "s", "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"}, "strategies": ["naive"]}


def test_title_and_labels_are_spec_keys():
    spec = parse_spec({**BASE, "title": "Surgery after conversion therapy", "labels": {"a": "Surgery", "os": "OS"}})
    assert spec.title == "Surgery after conversion therapy" and spec.labels == {"a": "Surgery", "os": "OS"}
    assert parse_spec(BASE).title is None and parse_spec(BASE).labels == {}


@pytest.mark.parametrize("extra, message", [
    ({"title": "  "}, "title must be one line of 1 to 300 characters"),
    ({"title": "a\nb"}, "title must be one line of 1 to 300 characters"),
    ({"labels": {"a": ""}}, "labels.a: a label is one line of 1 to 120 characters"),
    ({"labels": {"a": 3}}, "labels.a"),
])
def test_bad_title_or_label_is_one_line(extra, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({**BASE, **extra})


DATES = pd.DataFrame({
    "id": range(1, 9),
    "start": ["31/01/2020", "15/02/2020", "01/03/2020", "2020-03-05", "10/03/2020", "11/03/2020", "12/03/2020",
              "13/03/2020"],
    "end": ["31/12/2020", "15/08/2020", "01/09/2021", "05/06/2020", "10/10/2020", "11/05/2021", "12/06/2020",
            "13/01/2021"],
    "op_on": ["01/04/2020", None, "01/05/2020", None, "10/04/2020", None, "12/04/2020", None],
    "died": [1, 0, 1, 1, 0, 1, 1, 0]})
ROLES = dict(id="id", start_date="start", end_date="end", treatment_date="op_on", event="died", time_unit="days")


@pytest.mark.parametrize("how", [{"dayfirst": True}, {"date_format": "%d/%m/%Y"}])
def test_day_first_dates(how):
    c = Cohort(DATES, **ROLES, **how)
    # 31/01/2020 -> 31/12/2020 is 335 days; ISO text (2020-03-05) is read too
    assert c.time()[0] == 335.0 and c.time()[3] == 92.0
    assert c.treatment_time[0] == 61.0 and np.isnan(c.treatment_time[1])
    assert DATES["start"][0] == "31/01/2020"  # the input is not modified


def test_day_first_text_without_a_format_names_the_fix():
    with pytest.raises(DataError, match=r"column 'start' \(start_date\) must hold dates; found '31/01/2020' at .*"
                                        r"need roles.date_format \(e.g. '%d/%m/%Y' or '%m/%d/%Y'\) or roles.dayfirst: "
                                        r"true"):
        Cohort(DATES, **ROLES)


def test_a_date_that_does_not_match_the_format_is_named():
    bad = DATES.assign(end=["31/12/2020", "15.08.2020", *DATES["end"][2:]])
    with pytest.raises(DataError, match=r"column 'end' \(end_date\) must hold dates; found '15.08.2020' at .*"
                                        r"expected dates written as date_format '%d/%m/%Y'"):
        Cohort(bad, **ROLES, date_format="%d/%m/%Y")


@pytest.mark.parametrize("roles, message", [
    ({"date_format": "%Y"}, "date_format '%Y' needs a day"),
    ({"date_format": "%d/%m/%Y", "dayfirst": True}, "give either 'date_format' or 'dayfirst', not both"),
])
def test_date_format_keys_checked_at_load(roles, message):
    spec = {**BASE, "roles": {"id": "id", "start_date": "s", "end_date": "e2", "event": "e", "treatment": "a",
                              **roles}, "time_unit": "days"}
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_date_format_needs_date_roles():
    with pytest.raises(SpecError, match="'date_format' and 'dayfirst' apply to the date roles"):
        parse_spec({**BASE, "roles": {**BASE["roles"], "dayfirst": True}})


def test_dayfirst_in_a_spec_runs_end_to_end():
    from causal_hcc.pipeline import run_analysis

    spec = {"study": "d", "roles": {"id": "id", "start_date": "start", "end_date": "end", "treatment_date": "op_on",
                                    "event": "died", "dayfirst": True}, "time_unit": "days", "strategies": ["naive"],
            "report": {"min_cell": 0}}
    r = run_analysis(spec, data=DATES)
    assert r.records[0].estimates[0].n == 8


# ------------------------------------------------------------------------------------------------ reference
def _cat_data(n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": range(n), "t": rng.exponential(10, n) + 0.1, "e": rng.integers(0, 2, n),
                         "a": np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(int),
                         "stage": (["B"] * 25 + ["C"] * 24 + ["A"] * 11) * (n // 60) + ["A"] * (n % 60)})


def test_reference_level_is_kept_by_a_subset_of_rows():
    """The reference (the most frequent level, documented) is chosen once; a bootstrap resample or any subset
    of rows keeps it and the columns, even where another level is now the most frequent."""
    c = Cohort(_cat_data(), id="id", time="t", event="e", treatment="a", confounders=["stage"])
    assert c.reference_levels == {"stage": "B"}
    sub = c.take(np.flatnonzero(c.column("stage") != "B")[:20].tolist() + [0])  # mostly C and A now
    assert sub.reference_levels == {"stage": "B"} and sub.confounder_columns == c.confounder_columns


def test_imputed_data_sets_share_the_reference_level():
    """With multiple imputation every imputed data set gets the first one's reference levels (a near tie between
    two levels cannot flip it between imputations)."""
    from causal_hcc.pipeline import run_analysis

    df = _cat_data(80, 3)
    stage = np.array(["B"] * 30 + ["C"] * 30 + ["A"] * 10 + [None] * 10, dtype=object)
    df["stage"] = stage[np.random.default_rng(5).permutation(80)]  # B and C tied; 10 values to impute
    df["x"] = np.random.default_rng(4).normal(size=80)
    spec = {"study": "mi", "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"},
            "confounders": ["stage", "x"], "categorical": ["stage"], "missing": {"method": "mice", "m": 6, "seed": 2},
            "strategies": ["multivariable"], "report": {"min_cell": 0}}
    seen = []
    import causal_hcc.pipeline as P

    real = P.build_cohort

    def spy(*a, **kw):
        c = real(*a, **kw)
        if c.confounders:
            seen.append(dict(c.reference_levels))
        return c

    P.build_cohort = spy
    try:
        run_analysis(spec, data=df)
    finally:
        P.build_cohort = real
    assert len(seen) >= 6 and all(s == seen[-1] for s in seen[-6:])
