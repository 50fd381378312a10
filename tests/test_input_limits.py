"""Input side of hardening (issue 15): delimiters, duplicate headers, parquet index, values in messages, sizes."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from pandas.api import types as pdt
import pytest

from causal_hcc.cohort import MAX_LEVELS, Cohort
from causal_hcc.errors import DataError
from causal_hcc.io import read_table

ROLES = dict(id="id", time="t", event="e", treatment="a")


def frame(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"id": range(1, n + 1), "t": np.linspace(1.5, 12.25, n), "e": [1, 0] * (n // 2),
                         "a": [0, 1, 1, 0] * (n // 4), "x": np.linspace(0.5, 3.5, n)})


def test_semicolon_and_decimal_comma_are_sniffed(tmp_path):
    p = tmp_path / "eu.csv"
    frame().to_csv(p, sep=";", decimal=",", index=False)
    assert ";" in p.read_text().splitlines()[0] and "1,5" in p.read_text()
    df = read_table(p)
    pd.testing.assert_frame_equal(df, frame(), check_dtype=False)
    assert df.attrs["csv"] == {"sep": ";", "decimal": ","}


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_tab_and_pipe_in_a_csv_are_sniffed(tmp_path, sep):
    p = tmp_path / "d.csv"
    frame().to_csv(p, sep=sep, index=False)
    pd.testing.assert_frame_equal(read_table(p), frame(), check_dtype=False)


def test_sep_and_decimal_from_the_spec_win(tmp_path):
    p = tmp_path / "d.csv"
    frame().to_csv(p, sep=";", decimal=",", index=False)
    df = read_table(p, sep=";", decimal=".")
    assert pdt.is_string_dtype(df["t"].dtype)  # decimal commas kept as text when the user says '.' (str or object)


def test_wrong_sep_from_the_spec_says_what_the_header_holds(tmp_path):
    p = tmp_path / "d.csv"
    frame().to_csv(p, sep=";", index=False)
    with pytest.raises(DataError) as e:
        read_table(p, sep=",")
    assert str(e.value) == (f"{p}: read as one column with delimiter comma, but the header holds semicolons; "
                            "set data: {sep: ';'} (and decimal: ',' for decimal commas)")


def test_duplicate_column_names_in_a_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,t,e,a,x,x\n1,2,1,0,3,4\n")
    with pytest.raises(DataError) as e:
        read_table(p)
    assert str(e.value) == f"{p}: duplicate column name(s) 'x' in the header; each column needs its own name"


def test_parquet_with_id_as_its_index(tmp_path):
    p = tmp_path / "d.parquet"
    frame().set_index("id").to_parquet(p)
    df = read_table(p)
    assert list(df.columns) == ["id", "t", "e", "a", "x"]
    assert Cohort(df, **ROLES).n == 12


def test_one_yes_in_an_event_column_of_a_csv(tmp_path):
    p = tmp_path / "d.csv"
    df = frame()
    df["e"] = df["e"].astype(object)
    df.loc[7, "e"] = "yes"
    df.to_csv(p, index=False)
    back = read_table(p)
    assert pdt.is_string_dtype(back["e"].dtype)  # pandas reads every value as text (pandas 3: str dtype)
    with pytest.raises(DataError) as e:
        Cohort(back, **ROLES, source=str(p))
    assert str(e.value) == "column 'e' (event) must be 0 or 1; found 'yes' at data row 8"


def test_long_values_are_cut_in_messages():
    df = frame()
    df["e"] = df["e"].astype(object)
    df.loc[3, "e"] = "z" * 5000
    with pytest.raises(DataError) as e:
        Cohort(df, **ROLES)
    msg = str(e.value)
    assert msg == ("column 'e' (event) must be 0 or 1; found '" + "z" * 60 + "'\u2026 (5,000 characters) at index 3")
    long_col = "c" * 300
    with pytest.raises(DataError) as e:
        Cohort(frame(), **{**ROLES, "time": long_col})
    assert str(e.value) == f"column '{'c' * 60}\u2026' not found; columns: id, t, e, a, x"


def test_a_huge_text_cell_in_a_confounder_is_refused_quickly():
    df = frame()
    df["note"] = "short"
    df.loc[5, "note"] = "x" * 1_000_000
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        Cohort(df, **ROLES, confounders=["note"], source="d.csv")
    assert time.perf_counter() - t0 < 2.0
    assert str(e.value) == ("column 'note' (confounder) holds a text value of 1,000,000 characters at data row 6 "
                            "('xxxxxxxxxxxxxxxxxxxx'\u2026 (1,000,000 characters)); a categorical level may have at "
                            "most 200")


def test_too_many_levels_in_a_confounder_are_refused():
    n = 60
    df = frame(n)
    df["code"] = [f"c{i:02d}" for i in range(n)]
    with pytest.raises(DataError) as e:
        Cohort(df, **ROLES, confounders=["code"])
    assert str(e.value) == (f"column 'code' (confounder) is categorical with 60 levels, more than {MAX_LEVELS}; "
                            "group the levels with codes: {code: {raw: group}} or give a number")


@pytest.mark.parametrize("yaml_text, message", [
    ("estimands: {survival_at: [12, .nan]}", "error: spec key 'estimands.survival_at.1': must be a finite number, "
                                             "got nan"),
    ("estimands: {rmst_tau: .inf}", "error: spec key 'estimands.rmst_tau': must be a finite number, got inf"),
])
def test_spec_numbers_must_be_finite_cli(tmp_path, yaml_text, message):
    from typer.testing import CliRunner

    from causal_hcc.cli import app

    frame().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        "study: s\ndata: {path: d.csv}\nroles: {id: id, time: t, event: e, treatment: a}\n"
        f"strategies: [naive]\n{yaml_text}\n")
    r = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml")])
    assert r.exit_code == 2 and r.output.strip() == message


def test_huge_spec_values_are_shown_bounded():
    from causal_hcc.config import parse_spec
    from causal_hcc.errors import SpecError

    bomb = [["a" * 1_000_000] * 100] * 100
    with pytest.raises(SpecError) as e:
        parse_spec({"study": "s", "roles": {"id": "i", "time": "t", "event": "e", "treatment": "a"},
                    "strategies": [{"name": "iptw", "estimand": bomb}]})
    msg = str(e.value)
    assert len(msg) < 600 and msg.startswith("strategies[0]: adjustment 'iptw': option 'estimand' must be str, got [[")


def test_messages_have_a_length_backstop():
    from causal_hcc.errors import MAX_MESSAGE, CausalHCCError

    msg = str(CausalHCCError("x" * 10_000))
    assert msg == "x" * MAX_MESSAGE + "... (message cut at 2,000 of 10,000 characters)"


def test_duplicate_column_names_in_a_spreadsheet(tmp_path):
    import openpyxl

    p = tmp_path / "d.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "t", "age", "age"])
    ws.append([1, 2.0, 50, 60])
    wb.save(p)
    with pytest.raises(DataError) as e:
        read_table(p)
    assert str(e.value) == f"{p}: duplicate column name(s) 'age' in the header; each column needs its own name"


def test_sep_for_a_non_text_file(tmp_path):
    p = tmp_path / "d.parquet"
    frame().to_parquet(p)
    with pytest.raises(DataError) as e:
        read_table(p, sep=";")
    assert str(e.value) == "data.sep and data.decimal apply to csv/tsv files only, not to d.parquet"
