"""Readers for cohort files: csv, tsv, parquet, Excel, SPSS, Stata, SAS.

:func:`read_table` dispatches on the file extension and returns a plain
DataFrame. Nothing in a file is evaluated as code: CSV/TSV are read with
pandas' defaults (no converters, no ``eval``), Excel cells give their stored
values, and statistical formats are parsed by ReadStat (pyreadstat).

Value labels (SPSS, Stata)
--------------------------
A SPSS user stores categories as numeric codes with value labels
(``1 = "BCLC B"``, ``2 = "BCLC C"``) and events/treatments as 0/1 codes,
often labelled too (``0 = "censored"``, ``1 = "dead"``). The reader keeps
every column's **numeric codes**, so any column can serve as a time, event or
treatment role, and records the labels in ``df.attrs["value_labels"]``
(column -> {code: label}); variable labels go to ``df.attrs["column_labels"]``.
:class:`~causal_hcc.cohort.Cohort` then turns *confounders* whose every value
carries a label into categorical indicators named by the labels
(``bclc=BCLC C``), while role columns stay numeric (and a numeric variable
with a label on a special code only, ``999 = "unknown"``, stays numeric). :func:`apply_value_labels` gives the
labelled view for display. SPSS user-defined missing values and Stata's
extended missing values (``.a``-``.z``) are read as missing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from causal_hcc.errors import DataError

__all__ = ["read_table", "apply_value_labels", "SUPPORTED_EXTENSIONS"]

_COMPRESSION = (".gz", ".bz2", ".xz", ".zip", ".zst")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:300]


def _readstat(kind: str) -> Callable[[Path], tuple[pd.DataFrame, Any]]:
    def read(path: Path) -> tuple[pd.DataFrame, Any]:
        import pyreadstat

        fn = {"sav": pyreadstat.read_sav, "dta": pyreadstat.read_dta, "sas7bdat": pyreadstat.read_sas7bdat}[kind]
        # Keep the numeric codes (apply_value_formats=False, see the module
        # docstring); user_missing=False turns SPSS user-missing codes and
        # Stata/SAS special missing values into NaN. SAS formats need a
        # separate catalog file, which we do not read.
        kw: dict[str, Any] = {"user_missing": False, "dates_as_pandas_datetime": True, "output_format": "pandas"}
        if kind != "sas7bdat":
            kw["apply_value_formats"] = False
        return fn(str(path), **kw)

    return read


_KINDS: dict[str, str] = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".sav": "sav", ".zsav": "sav", ".dta": "dta",
    ".sas7bdat": "sas7bdat",
}
#: extensions :func:`read_table` accepts (csv/tsv may also end in .gz, .bz2, .xz, .zip, .zst)
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_KINDS)


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSION and suffixes[-2] in (".csv", ".tsv", ".tab"):
        return _KINDS[suffixes[-2]]
    ext = suffixes[-1] if suffixes else ""
    if ext not in _KINDS:
        shown = f"'{ext}'" if ext else "(none)"
        raise DataError(
            f"unsupported data file extension {shown} for {path}; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return _KINDS[ext]


def read_table(path: str | os.PathLike[str], *, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a cohort file into a DataFrame, choosing the reader by extension.

    Parameters
    ----------
    path : str or path-like
        ``.csv``; ``.tsv``/``.tab`` (tab-separated; both possibly compressed,
        e.g. ``.csv.gz``); ``.parquet``/``.pq`` (pyarrow); ``.xlsx``/``.xlsm``
        (openpyxl; ``.xls`` needs the optional ``xlrd``); ``.sav``/``.zsav``
        (SPSS), ``.dta`` (Stata), ``.sas7bdat`` (SAS) via pyreadstat.
    sheet : str or int, optional
        Excel sheet name or 0-based position; default the first sheet.
        Ignored for other formats.

    Returns
    -------
    pandas.DataFrame
        A fresh frame with a default RangeIndex. For SPSS/Stata/SAS files,
        ``attrs["value_labels"]`` maps column -> {code: label} and
        ``attrs["column_labels"]`` column -> variable label; codes are kept.

    Raises
    ------
    DataError
        Missing file, a folder, an unknown extension, a missing sheet, an
        empty or unreadable file -- one line naming the file.

    References
    ----------
    .. [1] Fajardo O. pyreadstat: read and write SAS, SPSS and Stata files
       into pandas (wrapper around Evan Miller's ReadStat C library).
       https://github.com/Roche/pyreadstat
    """
    p = Path(path)
    kind = _kind(p)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.is_dir():
        raise DataError(f"data path is a folder, not a file: {p}")
    labels: dict[str, dict[Any, str]] = {}
    col_labels: dict[str, str] = {}
    try:
        if kind == "csv":
            df = pd.read_csv(p, float_precision="round_trip")
        elif kind == "tsv":
            df = pd.read_csv(p, sep="\t", float_precision="round_trip")
        elif kind == "parquet":
            df = pd.read_parquet(p, engine="pyarrow")
        elif kind in ("xlsx", "xls"):
            df = _read_excel(p, kind, sheet)
        else:
            df, meta = _readstat(kind)(p)
            labels = {c: dict(v) for c, v in (meta.variable_value_labels or {}).items() if v}
            col_labels = {c: lab for c, lab in (meta.column_names_to_labels or {}).items() if lab}
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"data file is empty: {p}") from None
    except ImportError as e:
        raise DataError(f"cannot read {p}: a reader package is missing ({_one_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - any parser failure is a user-facing data problem
        raise DataError(f"cannot read {p} as {kind}: {_one_line(e)}") from None
    if df.shape[1] == 0:
        raise DataError(f"data file has no columns: {p}")
    df = df.reset_index(drop=True)
    df.attrs = {}
    if labels:
        df.attrs["value_labels"] = labels
    if col_labels:
        df.attrs["column_labels"] = col_labels
    df.attrs["source"] = str(p)
    return df


def _read_excel(p: Path, kind: str, sheet: str | int | None) -> pd.DataFrame:
    engine = "openpyxl" if kind == "xlsx" else "xlrd"
    if engine == "xlrd":
        try:
            import xlrd  # noqa: F401
        except ImportError:
            raise DataError(f"reading .xls files needs the xlrd package; save {p} as .xlsx or install xlrd") from None
    with pd.ExcelFile(p, engine=engine) as xf:
        names = [str(s) for s in xf.sheet_names]
        if sheet is None:
            target: str | int = 0
        elif isinstance(sheet, int) and not isinstance(sheet, bool):
            if not 0 <= sheet < len(names):
                raise DataError(f"sheet {sheet} not found in {p}; it has {len(names)} sheet(s): {', '.join(names)}")
            target = sheet
        else:
            if str(sheet) not in names:
                raise DataError(f"sheet '{sheet}' not found in {p}; sheets: {', '.join(names)}")
            target = str(sheet)
        return xf.parse(target)


def apply_value_labels(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A copy of ``df`` whose value-labelled columns are categoricals of their labels.

    Uses ``df.attrs["value_labels"]`` (set by :func:`read_table`); categories
    are in code order; codes without a label keep their number as text. Only
    ``columns`` are converted when given. ``df`` is not modified.
    """
    labels: Mapping[str, Mapping[Any, str]] = df.attrs.get("value_labels", {}) or {}
    out = df.copy(deep=True)
    for c in (columns if columns is not None else list(labels)):
        if c not in labels or c not in out.columns:
            continue
        lab = labels[c]
        codes = sorted({*lab.keys(), *out[c].dropna().unique().tolist()}, key=lambda v: (isinstance(v, str), v))

        def name(v: Any) -> str:
            if v in lab:
                return str(lab[v])
            return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

        cats = list(dict.fromkeys(name(v) for v in codes))
        out[c] = pd.Categorical(out[c].map(lambda v: name(v) if pd.notna(v) else None), categories=cats)
    return out
