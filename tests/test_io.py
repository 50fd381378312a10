"""read_table: every format round-trips; bad files fail with one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as pdt
import pyreadstat
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.errors import DataError
from causal_hcc.io import SUPPORTED_EXTENSIONS, apply_value_labels, read_table

DATA = Path(__file__).parent / "data"


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1.0, 2.0, 3.0, 4.0],
            "os_months": [1.5, 2.25, 3.0, 10.0],
            "os_event": [1.0, 0.0, 1.0, 1.0],
            "surgery": [1.0, 0.0, 0.0, 1.0],
            "bclc": ["C", "D", "C", "B"],
        }
    )


def write(df: pd.DataFrame, path: Path) -> None:
    ext = "".join(path.suffixes)
    if ext in (".csv", ".csv.gz"):
        df.to_csv(path, index=False)
    elif ext in (".tsv", ".tab"):
        df.to_csv(path, index=False, sep="\t")
    elif ext in (".parquet", ".pq"):
        df.to_parquet(path, engine="pyarrow", index=False)
    elif ext == ".xlsx":
        df.to_excel(path, index=False, engine="openpyxl")
    elif ext == ".sav":
        pyreadstat.write_sav(df, str(path))
    elif ext == ".zsav":
        pyreadstat.write_sav(df, str(path), compress=True)
    elif ext == ".dta":
        pyreadstat.write_dta(df, str(path))
    else:  # pragma: no cover
        raise AssertionError(ext)


@pytest.mark.parametrize("ext", [".csv", ".csv.gz", ".tsv", ".tab", ".parquet", ".pq", ".xlsx", ".sav", ".zsav", ".dta"])
def test_round_trip(tmp_path, ext):
    path = tmp_path / f"cohort{ext}"
    write(frame(), path)
    got = read_table(path)
    pd.testing.assert_frame_equal(got, frame(), check_dtype=False)
    assert isinstance(got.index, pd.RangeIndex)
    assert got.attrs["source"] == str(path)


def test_sas7bdat_committed_file():
    # tests/data/cohort.sas7bdat was written by tests/data/make_sas7bdat.R (haven::write_sas)
    got = read_table(DATA / "cohort.sas7bdat")
    pd.testing.assert_frame_equal(got, frame(), check_dtype=False)


def test_uppercase_extension(tmp_path):
    path = tmp_path / "COHORT.CSV"
    write(frame(), tmp_path / "x.csv")
    (tmp_path / "x.csv").rename(path)
    pd.testing.assert_frame_equal(read_table(path), frame())


def test_csv_cells_are_never_evaluated(tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text("id,note\n1,=1+1\n2,__import__('os').system('false')\n3,@SUM(A1)\n")
    got = read_table(path)
    assert list(got["note"]) == ["=1+1", "__import__('os').system('false')", "@SUM(A1)"]


def test_excel_sheet_by_name_and_position(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as w:
        pd.DataFrame({"a": [1]}).to_excel(w, sheet_name="notes", index=False)
        frame().to_excel(w, sheet_name="cohort", index=False)
    # Excel stores 1.0 as 1: values equal, dtype int
    pd.testing.assert_frame_equal(read_table(path, sheet="cohort"), frame(), check_dtype=False)
    pd.testing.assert_frame_equal(read_table(path, sheet=1), frame(), check_dtype=False)
    pd.testing.assert_frame_equal(read_table(path), pd.DataFrame({"a": [1]}))  # first sheet by default
    with pytest.raises(DataError) as e:
        read_table(path, sheet="cohrt")
    assert str(e.value) == f"sheet 'cohrt' not found in {path}; sheets: notes, cohort"
    with pytest.raises(DataError) as e:
        read_table(path, sheet=2)
    assert str(e.value) == f"sheet 2 not found in {path}; it has 2 sheet(s): notes, cohort"


# --------------------------------------------------------------------------
# SPSS / Stata value labels
# --------------------------------------------------------------------------
def labelled() -> pd.DataFrame:
    return frame().assign(stage=[1.0, 2.0, 2.0, 3.0], bclc=None).drop(columns="bclc")


LABELS = {"stage": {1: "BCLC B", 2: "BCLC C", 3: "BCLC D"}, "os_event": {0: "censored", 1: "dead"}}


@pytest.mark.parametrize("ext", [".sav", ".dta"])
def test_value_labels_keep_codes_and_are_recorded(tmp_path, ext):
    path = tmp_path / f"labelled{ext}"
    writer = pyreadstat.write_sav if ext == ".sav" else pyreadstat.write_dta
    writer(labelled(), str(path), variable_value_labels=LABELS, column_labels=["ID", "OS", "Death", "Op", "Stage"])
    got = read_table(path)
    pd.testing.assert_frame_equal(got, labelled(), check_dtype=False)  # numeric codes kept
    assert got.attrs["value_labels"] == {k: {float(c): v for c, v in d.items()} for k, d in LABELS.items()}
    assert got.attrs["column_labels"]["stage"] == "Stage"
    shown = apply_value_labels(got)
    assert list(shown["stage"]) == ["BCLC B", "BCLC C", "BCLC C", "BCLC D"]
    assert list(shown["os_event"]) == ["dead", "censored", "dead", "dead"]
    assert list(shown["stage"].cat.categories) == ["BCLC B", "BCLC C", "BCLC D"]
    np.testing.assert_array_equal(got["stage"], [1, 2, 2, 3])  # apply_value_labels made a copy
    # in a Cohort the labelled confounder is categorical, the labelled event stays numeric
    c = Cohort(got, id="id", time="os_months", event="os_event", treatment="surgery", confounders=["stage"],
               source=str(path))
    assert c.confounder_columns == ["stage=BCLC B", "stage=BCLC D"]
    assert c.reference_levels == {"stage": "BCLC C"}
    np.testing.assert_array_equal(c.event(), [1, 0, 1, 1])


def test_spss_user_missing_values_are_missing(tmp_path):
    path = tmp_path / "um.sav"
    df = labelled().assign(stage=[1.0, 2.0, 9.0, 3.0])
    pyreadstat.write_sav(df, str(path), missing_ranges={"stage": [9]})
    got = read_table(path)
    assert got["stage"].isna().tolist() == [False, False, True, False]


def test_apply_value_labels_without_labels_is_a_copy():
    df = frame()
    out = apply_value_labels(df)
    pd.testing.assert_frame_equal(out, df)
    assert out is not df


# --------------------------------------------------------------------------
# failures: one line naming the file
# --------------------------------------------------------------------------
def test_unknown_extension(tmp_path):
    path = tmp_path / "cohort.txt"
    path.write_text("a\n1\n")
    with pytest.raises(DataError) as e:
        read_table(path)
    assert str(e.value) == (
        f"unsupported data file extension '.txt' for {path}; supported: " + ", ".join(SUPPORTED_EXTENSIONS)
    )
    assert SUPPORTED_EXTENSIONS == (".csv", ".tsv", ".tab", ".parquet", ".pq", ".xlsx", ".xlsm", ".xls",
                                    ".sav", ".zsav", ".dta", ".sas7bdat")


def test_no_extension(tmp_path):
    with pytest.raises(DataError) as e:
        read_table(tmp_path / "cohort")
    assert str(e.value).startswith(f"unsupported data file extension (none) for {tmp_path / 'cohort'}; supported:")


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as e:
        read_table(tmp_path / "nope.csv")
    assert str(e.value) == f"data file not found: {tmp_path / 'nope.csv'}"


def test_folder(tmp_path):
    d = tmp_path / "dir.csv"
    d.mkdir()
    with pytest.raises(DataError) as e:
        read_table(d)
    assert str(e.value) == f"data path is a folder, not a file: {d}"


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError) as e:
        read_table(path)
    assert str(e.value) == f"data file is empty: {path}"


@pytest.mark.parametrize("ext, kind", [(".parquet", "parquet"), (".xlsx", "xlsx"), (".sav", "sav"),
                                       (".dta", "dta"), (".sas7bdat", "sas7bdat")])
def test_unreadable_file(tmp_path, ext, kind):
    path = tmp_path / f"garbage{ext}"
    path.write_bytes(b"this is not a real file\n" * 3)
    with pytest.raises(DataError) as e:
        read_table(path)
    msg = str(e.value)
    assert msg.startswith(f"cannot read {path} as {kind}: ")
    assert "\n" not in msg


def test_xls_without_xlrd(tmp_path):
    # the message only applies when the optional xlrd is absent
    try:
        import xlrd  # noqa: F401
    except ImportError:
        path = tmp_path / "old.xls"
        path.write_bytes(b"\xd0\xcf\x11\xe0")
        with pytest.raises(DataError) as e:
            read_table(path)
        assert str(e.value) == f"reading .xls files needs the xlrd package; save {path} as .xlsx or install xlrd"
    else:
        pytest.skip("xlrd is installed: the missing-package message cannot be exercised")


def test_read_then_cohort_cites_data_rows(tmp_path):
    path = tmp_path / "c.csv"
    frame().assign(os_months=[1.5, -2.0, 3.0, 10.0]).to_csv(path, index=False)
    with pytest.raises(DataError) as e:
        Cohort(read_table(path), id="id", time="os_months", event="os_event", treatment="surgery", source=str(path))
    assert str(e.value) == "column 'os_months' (time) has negative values at data row 2"


# --- large plain csv files: numeric columns parsed by pyarrow, the rest by pandas' C parser ---------

def _c_parser(path: Path, sep: str = ",") -> pd.DataFrame:
    from causal_hcc.io import ROUND_TRIP

    return pd.read_csv(path, sep=sep, **ROUND_TRIP)


def _assert_bit_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes)
    assert isinstance(got.index, pd.RangeIndex) and len(got) == len(want)
    for c in want.columns:
        a, b = got[c].to_numpy(), want[c].to_numpy()
        if b.dtype.kind == "f":
            np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64), err_msg=c)
        else:
            assert got[c].equals(want[c]), c


def test_large_csv_floats_read_correctly_rounded(tmp_path):
    """17-digit, short and 25-digit decimals, subnormals and extremes: the exact double Python's float() gives."""
    rng = np.random.default_rng(5)
    n = 60_000
    v = np.concatenate([rng.normal(size=n), rng.exponential(size=n) * 1e-310, 10 ** rng.uniform(-300, 300, n)])
    v *= np.where(rng.random(v.size) < 0.5, -1.0, 1.0)
    w = np.resize(rng.normal(scale=1e3, size=n), v.size)   # fixed-point text needs moderate magnitudes
    text = {"r17": [repr(float(x)) for x in v], "f4": [f"{x:.4f}" for x in w], "e25": [f"{x:.25e}" for x in v],
            "g9": [f"{x:.9g}" for x in v]}
    path = tmp_path / "floats.csv"
    path.write_text("r17,f4,e25,g9\n" + "\n".join(",".join(row) for row in zip(*text.values())) + "\n")
    assert path.stat().st_size > 2**20                      # large enough for the pyarrow path
    got = read_table(path)
    from causal_hcc.io import _header, _read_csv_pyarrow
    assert _read_csv_pyarrow(path, ",", ".", _header(path, ",")) is not None   # the pyarrow path was taken
    for c, strings in text.items():
        want = np.array([float(s) for s in strings])
        np.testing.assert_array_equal(got[c].to_numpy().view(np.int64), want.view(np.int64), err_msg=c)
    _assert_bit_identical(got, _c_parser(path))


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_large_csv_equals_c_parser_column_by_column(tmp_path, sep):
    """Columns pyarrow reads differently from the C parser come from the C parser: same dtypes, same bits."""
    n = 40_000
    rng = np.random.default_rng(9)
    odd = {
        "plus_int": ["+5", "7"], "plus_int_na": ["+5", "NA"], "text_nan": [" nan", "1.5"], "overflow": ["1e500", "2.5"],
        "big_int": ["9223372036854775808", "1"], "neg_big": ["-9223372036854775809", "1"], "date": ["2020-01-05", ""],
        "bool": ["True", "False"], "bool_mix": ["True", "1"], "text": ["C", "D"], "empty": ["", ""],
        "int_na": ["3", ""], "float_na": ["0.25", "NA"], "whole_float": ["1.0", "2.0"], "nan_paren": ["nan(1)", "1.5"],
    }
    cols = {"x": [repr(float(x)) for x in rng.normal(size=n)], "k": [str(i) for i in rng.integers(-9, 9, n)]}
    for name, vals in odd.items():
        cols[name] = [vals[i % 2] for i in range(n)]
    path = tmp_path / "mixed.csv"
    path.write_text(sep.join(cols) + "\n" + "\n".join(sep.join(r) for r in zip(*cols.values())) + "\n")
    assert path.stat().st_size > 2**20
    from causal_hcc.io import _header, _pyarrow_column_ok, _read_csv_pyarrow
    import pyarrow.csv as pacsv
    tbl = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=sep))
    assert [c for c, col in zip(tbl.column_names, tbl.columns) if _pyarrow_column_ok(col)] == ["x", "k", "plus_int_na", "int_na",
                                                                                                "float_na"]
    assert _read_csv_pyarrow(path, sep, ".", _header(path, sep)) is not None
    _assert_bit_identical(read_table(path), _c_parser(path, sep))


def test_large_csv_with_hex_text_equals_c_parser(tmp_path):
    """pyarrow reads 0x10 as 16 (the C parser: a string): a file with 0x anywhere goes to the C parser whole."""
    n = 80_000
    body = "\n".join(f"{i},{i * 0.5!r},{'0x10' if i == n - 1 else '16'}" for i in range(n))
    path = tmp_path / "hex.csv"
    path.write_text("id,v,h\n" + body + "\n")
    assert path.stat().st_size > 2**20
    got = read_table(path)
    assert pdt.is_string_dtype(got["h"].dtype) and got["h"].iloc[-1] == "0x10"  # text (pandas 3: str dtype)
    _assert_bit_identical(got, _c_parser(path))


def test_large_csv_with_an_unnamed_column_equals_c_parser(tmp_path):
    """An empty header name is 'Unnamed: 1' to the C parser: such a file is read by it."""
    path = tmp_path / "unnamed.csv"
    path.write_text("id,,v\n" + "\n".join(f"{i},{i % 7},{i * 0.25!r}" for i in range(90_000)) + "\n")
    assert path.stat().st_size > 2**20
    got = read_table(path)
    assert list(got.columns) == ["id", "Unnamed: 1", "v"]
    _assert_bit_identical(got, _c_parser(path))
