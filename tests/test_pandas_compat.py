"""pandas 2 and 3 alike: text in numeric columns, string dtypes, read-only arrays (issue 18).

pandas 3 hands out read-only views from ``to_numpy()`` (copy-on-write) and
reads text as its ``str`` dtype; these tests run under whichever pandas is
installed (CI runs the suite under the locked pandas 3 and under the
lowest supported versions, pandas 2).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from causal_hcc.cli import app
from causal_hcc.cohort import Cohort
from causal_hcc.errors import DataError

from user_data import USER_SPEC, make_user_frame

ROLES = dict(id="patient_no", time="fu_months", event="died", treatment="operated", treatment_time="months_to_op",
             confounders=["fit_pt", "stage", "age_y"])


def _with_text(col: str) -> pd.DataFrame:
    df = make_user_frame()
    df["pfs_m"], df["pfs_e"] = df["fu_months"], df["died"]
    assert df.loc[2, "operated"] == 1  # row 3 of the file: a treated patient
    df[col] = df[col].astype(object)
    df.loc[2, col] = "abc"
    return df


@pytest.mark.parametrize("col, confounders, message", [
    ("fu_months", "[fit_pt, stage, age_y]", "column 'fu_months' (time) must be numeric; found 'abc' at data row 3"),
    ("months_to_op", "[fit_pt, stage, age_y]",
     "column 'months_to_op' (treatment_time) must be numeric; found 'abc' at data row 3"),
    ("died", "[fit_pt, stage, age_y]", "column 'died' (event) must be 0 or 1; found 'abc' at data row 3"),
    ("operated", "[fit_pt, stage, age_y]",
     "column 'operated' (treatment) must be 0/1 or True/False; found 'abc' at data row 3"),
    ("pfs_m", "[fit_pt, stage, age_y]", "column 'pfs_m' (pfs time) must be numeric; found 'abc' at data row 3"),
    ("pfs_e", "[fit_pt, stage, age_y]", "column 'pfs_e' (pfs event) must be 0 or 1; found 'abc' at data row 3"),
    ("age_y", "[fit_pt, stage, age_y]",
     "column 'age_y' (confounder) holds numbers and text: found 'abc' at data row 3; correct it, make it missing "
     "(codes: {age_y: {'abc': null}}) or declare 'age_y' under categorical"),
    ("fit_pt", "[fit_pt, stage, age_y]",
     "column 'fit_pt' (confounder) holds numbers and text: found 'abc' at data row 3; correct it, make it missing "
     "(codes: {fit_pt: {'abc': null}}) or declare 'fit_pt' under categorical"),
    ("age_y", "[fit_pt, stage, 'rcs(age_y, 4)']",
     "column 'age_y' (confounder) holds numbers and text: found 'abc' at data row 3; correct it, make it missing "
     "(codes: {age_y: {'abc': null}}) or declare 'age_y' under categorical"),
    ("age_y", "[fit_pt, 'stage:age_y']",
     "column 'age_y' (confounder) holds numbers and text: found 'abc' at data row 3; correct it, make it missing "
     "(codes: {age_y: {'abc': null}}) or declare 'age_y' under categorical"),
])
@pytest.mark.parametrize("verb", ["run", "validate"])
def test_text_in_a_numeric_column_exits_2_with_one_line(tmp_path, col, confounders, message, verb):
    """Under pandas 3 a text value in a time column crashed ("assignment destination is read-only", exit 1);
    a text value in a 0/1 confounder made it a three-level factor silently (exit 0)."""
    data = tmp_path / "cohort.csv"
    _with_text(col).to_csv(data, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER_SPEC.format(path=data).replace("confounders: [fit_pt, stage, age_y]",
                                                        f"confounders: {confounders}")
                    + "outcomes:\n  pfs: {time: pfs_m, event: pfs_e}\n")
    before = data.read_bytes()
    out = tmp_path / "out"
    args = [verb, str(spec)] + (["--output", str(out), "--quiet"] if verb == "run" else [])
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: cohort.csv: {message}\n"
    assert not out.exists() and data.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".out")]


def test_numbers_and_text_declared_categorical_is_a_factor():
    df = _with_text("fit_pt")
    c = Cohort(df, **ROLES, categorical=["fit_pt"])
    assert "fit_pt=abc" in c.confounder_columns


def test_text_without_numbers_stays_categorical():
    df = make_user_frame()
    df["stage"] = df["stage"].astype("string")  # pandas' own string dtype (pandas 3's default str is one too)
    c = Cohort(df, **ROLES)
    assert len([x for x in c.confounder_columns if x.startswith("stage=")]) == 2  # 3 levels, one the reference


@pytest.mark.parametrize("dtype", ["object", "string", "str"])
def test_numbers_written_as_text_are_numbers_in_every_string_dtype(dtype):
    """Times and treatment times held as text numbers (any pandas string dtype) read as the same numbers.
    (A confounder of text stays categorical, as a character column is a factor in R.)"""
    df = make_user_frame()
    txt = df.copy()
    for c in ("fu_months", "months_to_op"):
        txt[c] = pd.Series([None if pd.isna(v) else repr(float(v)) for v in df[c]], dtype=dtype)
    a, b = Cohort(df, **ROLES), Cohort(txt, **ROLES)
    np.testing.assert_array_equal(a.time(), b.time())
    np.testing.assert_array_equal(a.treatment_time, b.treatment_time)
    assert a.confounder_columns == b.confounder_columns
    np.testing.assert_array_equal(a.X, b.X)


def test_input_frame_is_not_modified_and_arrays_are_read_only():
    df = make_user_frame()
    before = df.copy(deep=True)
    c = Cohort(df, **ROLES)
    pd.testing.assert_frame_equal(df, before)
    for a in (c.time(), c.treatment, c.X):
        with pytest.raises(ValueError):
            a[0] = 0
