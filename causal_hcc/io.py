"""Readers for cohort files: csv, tsv, parquet, Excel, SPSS, Stata, SAS.

:func:`read_table` dispatches on the file extension and returns a plain
DataFrame. Nothing in a file is evaluated as code: CSV/TSV are read with
pandas' defaults (no converters, no ``eval``), Excel cells give their stored
values, and statistical formats are parsed by ReadStat (pyreadstat).

CSV numbers are read correctly rounded (the double Python's ``float()`` and
R's ``read.csv`` give) under pandas 2 and 3: pandas 3's C parser does so by
default; under pandas 2 it needs ``float_precision="round_trip"``
(:data:`ROUND_TRIP`), which is slow, so there, in a plain file over 1 MB, the
numeric columns come from pyarrow's faster parser where its result provably
equals the C parser's (:func:`_read_csv_pyarrow`). Under pandas 3 that path
is not taken: the C parser alone is faster (1,000,000 rows x 6 columns:
0.5 s against 1.4 s, benchmarks/README.md).

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

import csv
import io as _stdio
import mmap
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from causal_hcc.errors import DataError

__all__ = ["read_table", "apply_value_labels", "SUPPORTED_EXTENSIONS", "ROUND_TRIP"]

_COMPRESSION = (".gz", ".bz2", ".xz", ".zip", ".zst")


def _cut(s: str, limit: int = 60) -> str:
    return s if len(s) <= limit else s[:limit] + "\u2026"


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


_DELIMITERS = (",", ";", "\t", "|")
_DELIM_NAME = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")


def _open_text(p: Path):
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(p.suffix.lower())
    if opener is not None:
        return opener(p, "rt", encoding="utf-8", errors="replace", newline="")
    if p.suffix.lower() in (".zip", ".zst"):
        return None
    return open(p, encoding="utf-8", errors="replace", newline="")


def _sample(p: Path, size: int = 65536) -> str | None:
    fh = _open_text(p)
    if fh is None:
        return None
    with fh:
        return fh.read(size)


def sniff_csv(p: Path, sep: str | None, decimal: str | None, default_sep: str) -> tuple[str, str]:
    """The delimiter and decimal mark of a delimited text file.

    ``sep`` / ``decimal`` given in the spec win. Otherwise the delimiter is
    the one of comma, semicolon, tab and pipe that splits the header and the
    first lines into the same (largest) number of fields; the decimal mark is
    a comma when the delimiter is not a comma and fields such as ``12,5``
    occur (the European CSV convention), else a point.
    """
    text = _sample(p)
    if text is None:
        return sep or default_sep, decimal or "."
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may cut the last line
    if sep is None and lines:
        best, best_n = default_sep, 1
        for d in _DELIMITERS:
            counts = {len(next(csv.reader([ln], delimiter=d))) for ln in lines[:20]}
            if len(counts) == 1 and (n := counts.pop()) > best_n:
                best, best_n = d, n
        sep = best
    sep = sep or default_sep
    if decimal is None:
        decimal = "."
        if sep != "," and lines:
            fields = [f for ln in lines[1:] for f in next(csv.reader([ln], delimiter=sep))]
            if any(_DECIMAL_COMMA.match(f) for f in fields):
                decimal = ","
    return sep, decimal


#: below this size the C parser alone is as fast as the pyarrow path
_PYARROW_MIN_BYTES = 1 << 20

_PANDAS_3 = int(pd.__version__.split(".", 1)[0]) >= 3
#: ``read_csv`` keywords for correctly rounded floats: pandas < 3's default parser misreads the last
#: bit of ~13% of 17-digit numbers and needs ``float_precision="round_trip"``; pandas 3 parses them
#: correctly rounded by default and deprecates the keyword
ROUND_TRIP: dict[str, str] = {} if _PANDAS_3 else {"float_precision": "round_trip"}


def _pyarrow_column_ok(col) -> bool:
    """Whether pyarrow's parse of a column is exactly what pandas' C parser (round_trip) gives.

    Only int64 and float64 columns qualify, and a float64 column only when it
    holds no NaN parsed from text (``" nan"``; the missing-value strings are
    nulls), no infinity (pyarrow gives ``inf`` for ``1e500``, the C parser a
    string), no magnitude >= 2**63 (the C parser gives uint64 or strings) and,
    when it has no missing value, not only whole numbers (``+5`` is float64 in
    pyarrow, int64 in the C parser). The numbers themselves agree: both parse
    correctly rounded (tests/test_io.py checks it bit for bit).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_int64(col.type):
        return True
    if not pa.types.is_float64(col.type):
        return False
    if pc.any(pc.is_nan(col)).as_py() or pc.any(pc.is_inf(col)).as_py():
        return False
    mm = pc.min_max(pc.abs(col))
    if mm["max"].as_py() is not None and mm["max"].as_py() >= 2.0 ** 63:
        return False
    if col.null_count == 0:
        v = col.to_numpy()
        return not bool(np.all(v == np.trunc(v)))
    return True


def _has_hex_prefix(m: mmap.mmap) -> bool:
    """Whether ``0x`` or ``0X`` occurs after the first line (memchr scans; the byte pairs only where an x occurs)."""
    import numpy as np

    start = m.find(b"\n") + 1
    if m.find(b"x", start) < 0 and m.find(b"X", start) < 0:
        return False
    a = np.frombuffer(m, dtype=np.uint8)
    try:
        block = 1 << 22
        for s in range(max(start, 1), a.size, block):
            blk = a[s - 1:s + block]                   # one byte of overlap with the previous block
            i = np.flatnonzero((blk[1:] | 0x20) == 0x78)  # x or X
            if i.size and np.any(blk[i] == 0x30):     # preceded by 0
                return True
        return False
    finally:
        del a


def _read_csv_pyarrow(p: Path, sep: str, decimal: str, head: list[str] | None) -> pd.DataFrame | None:
    """A large plain csv/tsv file read as pandas' C parser would, numeric columns by pyarrow's faster parser.

    pyarrow parses the file; its int64/float64 columns that provably equal the
    C parser's result (:func:`_pyarrow_column_ok`) are kept, every other
    column (text, dates, booleans, doubtful numbers) is read by the C parser
    with :data:`ROUND_TRIP` as before. Returns None -- the caller
    then reads the whole file with the C parser -- for small or compressed
    files, a decimal comma, a byte-order mark, a ``0x`` anywhere (pyarrow
    reads ``0x10`` as 16), a header that pyarrow names differently, or any
    pyarrow error (so malformed files get the C parser's messages).
    """
    if decimal != "." or len(sep) != 1 or not head or not all(head) or p.suffix.lower() in _COMPRESSION:
        return None  # (an empty header name is "Unnamed: i" to the C parser, "" to pyarrow)
    try:
        if p.stat().st_size < _PYARROW_MIN_BYTES:
            return None
        import pyarrow.csv as pacsv
        from pandas._libs.parsers import STR_NA_VALUES

        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m[:3] == b"\xef\xbb\xbf" or _has_hex_prefix(m):
                return None
        tbl = pacsv.read_csv(
            p, parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(null_values=sorted(STR_NA_VALUES), strings_can_be_null=True))
        if tbl.column_names != head:
            return None
        ok = [name for name, col in zip(tbl.column_names, tbl.columns) if _pyarrow_column_ok(col)]
        rest = [name for name in head if name not in set(ok)]
        df = tbl.select(ok).combine_chunks().to_pandas()  # one chunk per column: a single copy into pandas
        del tbl
        import pyarrow as pa

        pa.default_memory_pool().release_unused()  # the parse buffers: else the pool keeps ~3x the data resident
        if rest:
            other = pd.read_csv(p, sep=sep, decimal=decimal, usecols=rest, **ROUND_TRIP)
            if len(other) != len(df):
                return None
            df = pd.concat([df, other], axis=1)[head]
        return df
    except Exception:  # noqa: BLE001 - anything pyarrow cannot do is left to the C parser
        return None


# --------------------------------------------------------------------------- input checks (issue 22)
# Kept apart from the parsing paths: each is called once from read_table, before the file is parsed.

_KIND_NAMES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: str | os.PathLike[str], what: str = "data file") -> None:
    """Refuse a path that is not a regular file (a FIFO, device or socket) before anything opens it.

    Opening a FIFO blocks until someone writes to it, and a device can be read
    forever: a cohort, visits table, spec or published-tables file is a
    regular file (symbolic links to one are fine).
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError(f"{what} not found: {p}") from None
    except OSError as err:
        raise DataError(f"{what} '{_cut(p, 160)}': {err.strerror or type(err).__name__}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"data path is a folder, not a file: {p}")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KIND_NAMES if test(st.st_mode)), "not a regular file")
        raise DataError(f"{what} '{_cut(p, 160)}' is {kind}, not a regular file; causal-hcc reads only regular "
                        "files (copy the data into one)")


class _Zip:
    """The one member of a .zip (pandas reads exactly one), as a binary stream."""

    def __init__(self, p: Path):
        import zipfile

        self._zf = zipfile.ZipFile(p)
        names = [i for i in self._zf.infolist() if not i.is_dir()]
        if len(names) != 1:
            self._zf.close()
            raise DataError(f"{p}: a .zip must hold exactly one data file; it holds {len(names)}")
        self._fh = self._zf.open(names[0])

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def __enter__(self) -> "_Zip":
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
        self._zf.close()


def _binary_stream(p: Path):
    """The decompressed bytes of a csv/tsv file (plain, .gz, .bz2, .xz, .zip, .zst); None if no reader."""
    import bz2
    import gzip
    import lzma

    suf = p.suffix.lower()
    if suf in (".gz", ".bz2", ".xz"):
        return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suf](p, "rb")
    if suf == ".zip":
        return _Zip(p)
    if suf == ".zst":
        try:
            import zstandard
        except ImportError:
            return None  # pandas says that it needs zstandard
        return zstandard.ZstdDecompressor().stream_reader(open(p, "rb"), closefd=True)
    return open(p, "rb")


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def check_no_nul(p: Path, what: str = "data file") -> None:
    """Refuse a text file (csv/tsv, compressed too) holding a NUL byte, naming its line.

    A NUL inside a number or after an id makes parsers stop or cut the field
    silently; it means the file is not plain text (UTF-16, a binary file
    renamed .csv) or is damaged. Plain files are scanned by ``memchr``
    (mmap), compressed ones as they decompress, in 4 MB blocks.
    """
    def fail(offset: int, lines_before: int, head: bytes) -> None:
        if head.startswith(_UTF16_BOMS):
            raise DataError(f"{what} {p} is UTF-16 text; save it as UTF-8 (CSV UTF-8 in spreadsheet programs)")
        raise DataError(f"{what} {p} holds a NUL byte on line {lines_before + 1} (byte {offset:,} of its text): "
                        "it is not plain text or it is damaged; export it again as CSV")

    if p.suffix.lower() not in _COMPRESSION:
        with open(p, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                i = m.find(b"\x00")
                if i >= 0:
                    fail(i, m[:i].count(b"\n"), m[:2])
        return
    stream = _binary_stream(p)
    if stream is None:
        return
    offset, lines, head = 0, 0, b""
    try:
        with stream as fh:
            while True:
                block = fh.read(1 << 22)
                if not block:
                    return
                if not head:
                    head = block[:2]
                i = block.find(b"\x00")
                if i >= 0:
                    fail(offset + i, lines + block[:i].count(b"\n"), head)
                offset += len(block)
                lines += block.count(b"\n")
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - a damaged archive: the parser gives its own one-line message
        return


def check_column_names(names: Sequence[str], p: Path) -> None:
    """At most :data:`~causal_hcc.limits.MAX_COLUMNS` columns, no name twice (linear: one Counter)."""
    from collections import Counter

    from causal_hcc.limits import MAX_COLUMNS, over

    if len(names) > MAX_COLUMNS:
        raise DataError(f"{p}: " + over("columns", len(names), MAX_COLUMNS))
    counts = Counter(names)
    if len(counts) != len(names):
        dups = [c for c, k in counts.items() if k > 1]
        shown = ", ".join(f"'{_cut(str(c))}'" for c in dups[:5])
        raise DataError(f"{p}: duplicate column name(s) {shown} in the header; each column needs its own name")


def csv_header(p: Path, sep: str) -> list[str]:
    """The header names of a csv/tsv file, compressed ones included, read alone and checked.

    Reads at most :data:`~causal_hcc.limits.MAX_HEADER_BYTES` of the first
    record (a longer header is refused) and applies :func:`check_column_names`.
    """
    from causal_hcc.limits import MAX_HEADER_BYTES

    stream = _binary_stream(p)
    if stream is None:
        return []
    with stream as raw:
        text = _stdio.TextIOWrapper(_stdio.BufferedReader(_RawAdapter(raw)), encoding="utf-8-sig", errors="replace",
                                 newline="")

        def lines():
            total = 0
            while True:
                line = text.readline(MAX_HEADER_BYTES + 1)
                total += len(line)
                if total > MAX_HEADER_BYTES:
                    raise DataError(f"{p}: the header line is longer than {MAX_HEADER_BYTES // 2**20} MB; is this "
                                    "a data file with one row per patient?")
                if not line:
                    return
                yield line

        try:
            head = next(csv.reader(lines(), delimiter=sep), [])
        except csv.Error as err:
            raise DataError(f"{p}: cannot read the header ({_one_line(err)[:120]})") from None
    check_column_names(head, p)
    return head


def _header(p: Path, sep: str) -> list[str]:
    """The header names (as :func:`csv_header`; kept under its earlier name for the pyarrow path's tests)."""
    return csv_header(p, sep)


class _RawAdapter(_stdio.RawIOBase):
    """A file-like object with ``read`` as a raw stream (for TextIOWrapper over gzip/zip/zstd readers)."""

    def __init__(self, fh):
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._fh.read(len(b))
        b[:len(data)] = data
        return len(data)


def check_parquet_schema(p: Path) -> None:
    """Column count, duplicate names and nested columns of a parquet file, from its schema alone.

    A struct, list or map column holds several values per cell: it cannot be
    a role or a confounder, and pandas would hand it on as Python objects.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(p)
    except Exception:  # noqa: BLE001 - not a parquet file: the reader gives its own message
        return
    check_column_names(list(schema.names), p)

    def nested(t) -> bool:
        if pa.types.is_dictionary(t):
            return nested(t.value_type)
        return (pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t)
                or pa.types.is_fixed_size_list(t) or pa.types.is_map(t) or pa.types.is_union(t)
                or getattr(pa.types, "is_list_view", lambda _t: False)(t))

    for field in schema:
        if nested(field.type):
            raise DataError(f"{p}: column '{_cut(field.name)}' holds nested values ({_cut(str(field.type), 40)}); "
                            "causal-hcc needs one value per cell: flatten or drop it before the analysis")


def check_readstat_columns(p: Path, kind: str) -> None:
    """Column count of an SPSS/Stata/SAS file from its metadata alone."""
    try:
        import pyreadstat

        fn = {"sav": pyreadstat.read_sav, "dta": pyreadstat.read_dta, "sas7bdat": pyreadstat.read_sas7bdat}[kind]
        _, meta = fn(str(p), metadataonly=True)
    except Exception:  # noqa: BLE001 - the reader gives its own message
        return
    check_column_names(list(meta.column_names or []), p)


def read_table(path: str | os.PathLike[str], *, sheet: str | int | None = None, sep: str | None = None,
               decimal: str | None = None) -> pd.DataFrame:
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
    sep, decimal : str, optional
        Delimiter and decimal mark of a csv/tsv file (``data: {sep, decimal}``
        in the spec). By default they are sniffed (:func:`sniff_csv`): a
        semicolon-separated file with decimal commas reads as it should.

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
        empty or unreadable file, duplicate column names in a csv/tsv header
        -- one line naming the file.

    References
    ----------
    .. [1] Fajardo O. pyreadstat: read and write SAS, SPSS and Stata files
       into pandas (wrapper around Evan Miller's ReadStat C library).
       https://github.com/Roche/pyreadstat
    """
    p = Path(path)
    kind = _kind(p)
    if (sep is not None or decimal is not None) and kind not in ("csv", "tsv"):
        raise DataError(f"data.sep and data.decimal apply to csv/tsv files only, not to {p.name}")
    check_regular_file(p)
    labels: dict[str, dict[Any, str]] = {}
    col_labels: dict[str, str] = {}
    try:
        if kind in ("csv", "tsv"):
            check_no_nul(p)
            sep, decimal = sniff_csv(p, sep, decimal, "," if kind == "csv" else "\t")
            head = csv_header(p, sep)  # (every compression; column limit, duplicates)
            try:
                df = None if _PANDAS_3 else _read_csv_pyarrow(p, sep, decimal, head)  # (see the module docstring)
                if df is None:
                    df = pd.read_csv(p, sep=sep, decimal=decimal, **ROUND_TRIP)
            except pd.errors.ParserError as e:
                raise DataError(f"cannot read {p} as {kind} with delimiter {_DELIM_NAME.get(sep, repr(sep))} "
                                f"({_one_line(e)[:120]}); set data: {{sep: ..., decimal: ...}} in the spec") from None
            if df.shape[1] == 1 and head and len(head) == 1:
                found = [d for d in _DELIMITERS if d != sep and d in head[0]]
                if found:
                    raise DataError(f"{p}: read as one column with delimiter {_DELIM_NAME.get(sep, repr(sep))}, "
                                    f"but the header holds {_DELIM_NAME[found[0]]}s; set data: "
                                    f"{{sep: {found[0]!r}}} (and decimal: ',' for decimal commas)")
            df.attrs["csv"] = {"sep": sep, "decimal": decimal}
        elif kind == "parquet":
            check_parquet_schema(p)
            df = pd.read_parquet(p, engine="pyarrow")
            if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
                # an index written by pandas (df.set_index("id").to_parquet()) is a column to the user
                names = [n for n in df.index.names if n is not None]
                clash = [n for n in names if n in df.columns]
                if clash:
                    raise DataError(f"{p}: the parquet index '{clash[0]}' is also a column; drop one of them")
                df = df.reset_index(drop=not names)
        elif kind in ("xlsx", "xls"):
            df = _read_excel(p, kind, sheet)
        else:
            check_readstat_columns(p, kind)
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
    ix = df.index
    if not (isinstance(ix, pd.RangeIndex) and ix.start == 0 and ix.step == 1 and ix.name is None):
        df = df.reset_index(drop=True)  # (a copy of every column: only when needed)
    csv_attrs = df.attrs.get("csv")
    df.attrs = {}
    if csv_attrs:
        df.attrs["csv"] = csv_attrs
    if labels:
        df.attrs["value_labels"] = labels
    if col_labels:
        df.attrs["column_labels"] = col_labels
    df.attrs["source"] = str(p)
    return df


def _read_excel(p: Path, kind: str, sheet: str | int | None) -> pd.DataFrame:
    engine = "openpyxl" if kind == "xlsx" else "xlrd"
    if engine == "openpyxl":
        import openpyxl  # noqa: F401  (pandas' xlsx engine, a declared dependency: imported here so it is ours)
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
        # (pd.read_excel on the open file: ExcelFile.parse is deprecated in pandas 3)
        first = pd.read_excel(xf, sheet_name=target, header=None, nrows=1)
        head = [str(v) for v in first.iloc[0].tolist() if pd.notna(v)] if len(first) else []
        check_column_names(head, p)
        return pd.read_excel(xf, sheet_name=target)


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
