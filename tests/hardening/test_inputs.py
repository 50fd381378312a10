"""Issue 22 items 3-5: bounded work, every error a clean exit 2, ambiguous data refused.

Every case: the exit code, exactly one line on stderr (no traceback), nothing written, inputs unchanged
(by hash), no lock left (Case.refused with ``before``).
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harden_support import cli, make_user_frame, tree_hash

ROOT = Path(__file__).resolve().parents[2]


def _spec_with(case, old: str, new: str) -> None:
    text = case.spec.read_text()
    assert old in text, old
    case.spec.write_text(text.replace(old, new))


def _data(case, path: Path) -> None:
    _spec_with(case, f"path: {case.data}", f"path: {path}")


def _cli_subprocess(args: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI in a child process: a case that would hang is killed by the timeout (and fails)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "causal_hcc.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _one_line(r, code: int = 2) -> str:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return r.stderr.strip()


# ----------------------------------------------------------------- item 3: non-regular files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_data_path_that_is_a_fifo(case):
    fifo = case.root / "cohort_pipe.csv"
    os.mkfifo(fifo)
    _data(case, fifo)
    before = tree_hash(case.root)
    err = _one_line(_cli_subprocess(["run", case.spec, "--output", case.out, "-q"], case.root))
    assert err == f"error: data file '{fifo}' is a FIFO (named pipe), not a regular file; causal-hcc reads only " \
                  "regular files (copy the data into one)"
    assert tree_hash(case.root) == before  # no lock, no output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_spec_and_published_tables_that_are_fifos(case):
    fifo = case.root / "spec_pipe.yaml"
    os.mkfifo(fifo)
    err = _one_line(_cli_subprocess(["validate", fifo], case.root))
    assert err == f"error: spec file '{fifo}' is not a regular file"
    err = _one_line(_cli_subprocess(["audit", fifo], case.root))
    assert err == f"error: published tables '{fifo}' is not a regular file"
    case.spec.write_text(case.spec.read_text() + f"published: {fifo}\n")
    before = tree_hash(case.root)
    err = _one_line(_cli_subprocess(["run", case.spec, "--output", case.out, "-q"], case.root))
    assert "is not a regular file" in err
    assert tree_hash(case.root) == before


def test_data_path_that_is_a_device(case):
    link = case.root / "zero.csv"
    link.symlink_to("/dev/zero")
    _data(case, link)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: data file '{link}' is a character device, not a regular file; causal-hcc reads only "
                 "regular files (copy the data into one)", before=before)


# ----------------------------------------------------------------- item 3: columns and loop counts
def test_csv_with_100000_columns(case):
    wide = case.root / "wide.csv"
    header = ",".join(f"c{i}" for i in range(100_000))
    wide.write_text(header + "\n" + ",".join("1" for _ in range(100_000)) + "\n")
    _data(case, wide)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: {wide}: columns: 100,000 given; at most 10,000 (a documented limit, see "
                 "docs/disclosure.md)", before=before)


def test_compressed_csv_with_too_many_columns(case):
    wide = case.root / "wide.csv.gz"
    with gzip.open(wide, "wt") as fh:
        fh.write(",".join(f"c{i}" for i in range(12_000)) + "\n")
    _data(case, wide)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"), startswith=f"error: {wide}: columns: 12,000 given",
                 before=before)


def test_header_line_longer_than_the_limit(case):
    big = case.root / "big.csv"
    big.write_text("x" * (5 * 2**20) + "\n1\n")
    _data(case, big)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: {big}: the header line is longer than 4 MB; is this a data file with one row per patient?",
                 before=before)


def test_duplicate_check_is_linear_and_names_the_duplicates():
    from causal_hcc.errors import DataError
    from causal_hcc.io import check_column_names

    names = [f"c{i}" for i in range(10_000)]
    check_column_names(names, Path("x.csv"))  # one Counter: 10,000 names at once
    with pytest.raises(DataError, match=r"duplicate column name\(s\) 'c5', 'c7' in the header"):
        check_column_names(names[:9_998] + ["c5", "c7"], Path("x.csv"))


LIMIT = "(a documented limit, see docs/disclosure.md)"


@pytest.mark.parametrize("old, new, line", [
    ("estimands: {survival_at: [12, 24], rmst_tau: 24}",
     "estimands: {survival_at: [" + ", ".join(str(i) for i in range(1, 50_001)) + "], rmst_tau: 24}",
     f"error: estimands.survival_at: 50,000 times given; at most 20 {LIMIT}"),
    ("strategies:\n  - naive\n", "strategies:\n" + "  - naive\n" * 10_000,
     f"error: strategies: 10,000 entries given; at most 100 {LIMIT}"),
    ("strategies:\n  - naive\n", "strategies:\n  - {name: landmark, landmark: [" + ", ".join(
        str(i / 10) for i in range(1, 1001)) + "]}\n",
     f"error: strategies[0].landmark: 1,000 landmark times given; at most 20 {LIMIT}"),
    ("bootstrap: {replicates: 20, seed: 1}", "missing: {method: mice, m: 1000000}\nbootstrap: {replicates: 0}",
     f"error: missing.m: 1,000,000 imputed data sets given; at most 500 {LIMIT}"),
    ("bootstrap: {replicates: 20, seed: 1}", "missing: {method: mice, iterations: 1000000000}\n"
                                             "bootstrap: {replicates: 0}",
     f"error: missing.iterations: 1,000,000,000 iterations given; at most 1,000 {LIMIT}"),
    ("bootstrap: {replicates: 20, seed: 1}", "bootstrap: {replicates: 9223372036854775808, seed: 1}",
     f"error: bootstrap.replicates: 9,223,372,036,854,775,808 replicates given; at most 100,000 {LIMIT}"),
    ("estimands: {survival_at: [12, 24], rmst_tau: 24}",
     "estimands: {survival_at: [12, 24], rmst_tau: 24, alpha: 1.0e-300}",
     "error: estimands.alpha: 1e-300 given; alpha must be between 1e-06 and 0.5 (a 50% to 99.9999% confidence "
     "level)"),
    ("estimands: {survival_at: [12, 24], rmst_tau: 24}", "estimands: {survival_at: [12, 12]}",
     "error: spec key 'estimands.survival_at': survival_at lists a time twice"),
    ("study: user-demo", "study: user-demo\noutcomes: {" + ", ".join(
        f"o{i}: {{time: fu_months, event: died}}" for i in range(21)) + "}",
     f"error: outcomes: 21 outcomes given; at most 20 {LIMIT}"),
])
def test_loop_counts_are_capped(case, old, new, line):
    _spec_with(case, old, new)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"), line, before=before)


@pytest.mark.parametrize("args, line", [
    (["simulate", "{spec}", "-r", "1000000000"], f"error: --replicates: 1,000,000,000 replicates given; at most 100,000 "
                                                 f"{LIMIT}"),
    (["simulate", "{spec}", "--bootstrap-replicates", "10000000"],
     f"error: --bootstrap-replicates: 10,000,000 replicates given; at most 100,000 {LIMIT}"),
    (["twin", "--calibration", "--seeds", "100000000"], f"error: --seeds: 100,000,000 seeds given; at most 100,000 "
                                                        f"{LIMIT}"),
])
def test_command_line_loop_counts_are_capped(case, args, line):
    before = case.snapshot()
    case.refused(cli(*[a.format(spec=case.spec) for a in args]), line, before=before)


def test_sequential_trials_grid_is_capped(case):
    _spec_with(case, "  - naive\n", "  - {name: sequential_trials, grid: 0.000001}\n")
    before = case.snapshot()
    err = case.refused(cli("run", case.spec, "--output", case.out, "-q"), before=before)
    assert "trials; at most 1,000 (a documented limit, see docs/disclosure.md): use a coarser grid" in err, err


def test_censoring_grid_is_capped(case):
    _spec_with(case, "  - naive\n", "  - {name: clone_censor, grace: 3, censoring_model: logistic, "
                                     "censoring_grid: 0.000001}\n")
    before = case.snapshot()
    err = case.refused(cli("run", case.spec, "--output", case.out, "-q"), before=before)
    assert "intervals (a documented limit, see docs/disclosure.md): use a coarser grid" in err, err


def test_limits_are_generous_for_real_use(case):
    """20 survival_at times, a 20-landmark sweep and 500 imputations are accepted (validate only)."""
    _spec_with(case, "estimands: {survival_at: [12, 24], rmst_tau: 24}",
               "estimands: {survival_at: [" + ", ".join(str(i) for i in range(1, 21)) + "], rmst_tau: 24}")
    r = cli("validate", case.spec)
    assert r.exit_code == 0, r.stderr


# ----------------------------------------------------------------- item 4: clean exit 2 (or success)
def test_mathtext_in_a_strategy_label_and_a_column_name(case):
    df = make_user_frame().rename(columns={"fit_pt": "$\\frac{fit}{pt$"})
    df.to_csv(case.data, index=False)
    _spec_with(case, "confounders: [fit_pt, stage, age_y]", "confounders: ['$\\frac{fit}{pt$', stage, age_y]")
    _spec_with(case, "  - naive\n", "  - {name: naive, label: '$x^{2$ naive'}\n  - iptw\n")
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0, r.stderr
    md = (case.out / "report.md").read_text(encoding="utf-8")
    assert "x^{2" in md  # shown as typed


@pytest.mark.parametrize("content, expected", [
    (bytes(range(256)) * 4, "is a binary file, not YAML text"),
    ("groups: café\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 on line 1); save it as UTF-8"),
    (("a: " + "[" * 50_000 + "]" * 50_000 + "\n").encode(), "nested too deeply"),
    (b"# " + b"x" * 1_100_000 + b"\n", "is 1,100,003 bytes; at most 1,000,000 are read"),
    (b"format: causal_hcc.audit/1\nformat: causal_hcc.audit/2\n",
     "the key 'format' appears twice (lines 1 and 2); a key may appear once: remove one"),
])
def test_published_tables_get_the_spec_file_checks(case, content, expected):
    pub = case.root / "published.yaml"
    pub.write_bytes(content)
    before = case.snapshot()
    err = case.refused(cli("audit", pub, "--output", case.out), before=before)
    assert err.startswith(f"error: published tables '{pub}'") and expected in err, err


def test_spec_with_a_duplicate_key(case):
    text = case.spec.read_text()
    case.spec.write_text(text + "study: another\n")
    last = len(text.splitlines()) + 1
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: spec file '{case.spec}': the key 'study' appears twice (lines 1 and {last}); a key may "
                 "appear once: remove one", before=before)


def test_yaml_merge_keys_may_still_override(tmp_path):
    from causal_hcc.config import read_spec_file

    p = tmp_path / "m.yaml"
    p.write_text("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n")
    assert read_spec_file(p)["x"] == {"a": 1, "b": 3}


def _dates_book(path: Path, end_of_row5) -> None:
    import datetime as dt

    import openpyxl

    rng = np.random.default_rng(1)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "start", "end", "died", "surg", "age"])
    for i in range(60):
        s = dt.datetime(2015, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300)))
        e = s + dt.timedelta(days=int(rng.integers(30, 900)))
        ws.append([i, s, end_of_row5 if i == 5 else e, int(i % 3 == 0), int(i % 2), float(rng.normal(60, 5))])
    wb.save(path)


def test_xlsx_date_9999_12_31(case):
    import datetime as dt

    book = case.root / "dates.xlsx"
    _dates_book(book, dt.datetime(9999, 12, 31))
    case.spec.write_text(f"""study: dates
data: {{path: {book}}}
roles: {{id: id, start_date: start, end_date: end, event: died, treatment: surg}}
time_unit: days
confounders: [age]
strategies: [naive]
bootstrap: {{replicates: 0}}
""")
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0, r.stderr  # (it used to wrap through datetime64[ns]: "end before start")


def test_days_since_epoch_in_every_unit():
    import datetime as dt

    from causal_hcc.recode import to_days

    s = pd.Series([dt.datetime(9999, 12, 31), dt.datetime(1970, 1, 2), None], dtype=object)
    days = to_days(s, "end", "end_date", lambda m: "rows")
    assert days[0] == (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days and days[1] == 1.0 and np.isnan(days[2])
    s2 = pd.Series(np.array(["9999-12-31", "1970-01-03"], dtype="datetime64[s]"))  # a second-unit column (pandas 2 and 3)
    assert to_days(s2, "end", "end_date", lambda m: "rows").tolist() == [2932896.0, 2.0]
    s3 = pd.Series(["9999-12-31", "1970-01-04"])
    assert to_days(s3, "end", "end_date", lambda m: "rows")[1] == 3.0


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_extreme_times_with_firth(case, scale):
    df = make_user_frame()
    df["fu_months"] *= scale
    df["months_to_op"] *= scale
    df.to_csv(case.data, index=False)
    _spec_with(case, "  - naive\n", "  - naive\n  - {name: multivariable, penalty: firth}\n")
    _spec_with(case, "estimands: {survival_at: [12, 24], rmst_tau: 24}", "estimands: {}")
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0, r.stderr
    json.loads((case.out / "results.json").read_text())  # valid JSON (no inf)


def test_infinite_estimates_are_null_with_a_note():
    from causal_hcc.results import AnalysisResult, EffectEstimate, StrategyRecord

    est = [EffectEstimate("hr", float("inf"), se=1.0, ci_lower=2.0, ci_upper=float("inf"))]
    res = AnalysisResult("s", {}, [StrategyRecord("a", "baseline", "none", "os", est)], min_cell=5)
    d = res.to_dict()
    row = d["records"][0]["estimates"][0]
    assert row["estimate"] is None and row["ci_upper"] is None and row["ci_lower"] == 2.0
    notes = d["records"][0]["notes"]
    assert any(n.startswith("hr: estimate is +infinite") for n in notes) and \
        any(n.startswith("hr: ci_upper is +infinite") for n in notes)
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("kind", ["struct", "list"])
def test_parquet_nested_column(case, kind):
    df = make_user_frame()
    df["fit_pt"] = [{"a": int(v)} for v in df["fit_pt"]] if kind == "struct" else [[int(v)] for v in df["fit_pt"]]
    pq = case.root / "cohort.parquet"
    df.to_parquet(pq)
    _data(case, pq)
    before = case.snapshot()
    err = case.refused(cli("run", case.spec, "--output", case.out, "-q"), before=before)
    assert err.startswith(f"error: {pq}: column 'fit_pt' holds nested values (") and err.endswith(
        "causal-hcc needs one value per cell: flatten or drop it before the analysis"), err


# ----------------------------------------------------------------- item 5: ambiguous data
@pytest.mark.parametrize("where", ["numeric", "id"])
def test_nul_byte_in_a_csv(case, where):
    text = case.data.read_text().splitlines()
    cells = text[3].split(",")
    if where == "numeric":
        cells[1] = cells[1][:2] + "\x00" + cells[1][2:]
    else:
        cells[0] = cells[0] + "\x00"
    text[3] = ",".join(cells)
    case.data.write_text("\n".join(text) + "\n")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 startswith=f"error: data file {case.data} holds a NUL byte on line 4 (byte ", before=before)


def test_nul_byte_in_a_compressed_csv(case):
    gz = case.root / "cohort.csv.gz"
    raw = case.data.read_bytes().replace(b"\n", b"\x00\n", 5)
    gz.write_bytes(gzip.compress(raw))
    _data(case, gz)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 startswith=f"error: data file {gz} holds a NUL byte on line 1", before=before)


def test_utf16_csv_is_named(case):
    u16 = case.root / "cohort16.csv"
    u16.write_bytes(b"\xff\xfe" + case.data.read_text().encode("utf-16-le"))
    _data(case, u16)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: data file {u16} is UTF-16 text; save it as UTF-8 (CSV UTF-8 in spreadsheet programs)",
                 before=before)


@pytest.mark.parametrize("fmt", ["zip", "gz", "bz2", "xz"])
def test_duplicate_header_in_a_compressed_csv(case, fmt):
    text = case.data.read_text().replace("fit_pt", "age_y", 1)  # two columns named age_y
    path = case.root / f"cohort.csv.{fmt}"
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("cohort.csv", text)
    else:
        import bz2
        import lzma

        path.write_bytes({"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[fmt](text.encode()))
    _data(case, path)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: {path}: duplicate column name(s) 'age_y' in the header; each column needs its own name",
                 before=before)


def test_zip_with_two_files(case):
    path = case.root / "cohort.csv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.csv", case.data.read_text())
        z.writestr("b.csv", case.data.read_text())
    _data(case, path)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: {path}: a .zip must hold exactly one data file; it holds 2", before=before)


@pytest.mark.parametrize("codes, line", [
    ('{died: {"1": 1, "1.0": 0}}', "error: spec key 'codes': 'died' lists the raw values '1' and '1.0', which are the same "
                                   "number; keep one"),
    ('{operated: {"yes": 1, "True": 0}}', "error: spec key 'codes': 'operated' lists the raw values 'yes' and 'True', which "
                                          "match the same values (text is matched regardless of case; yes/true/on "
                                          "and no/false/off are one value each); keep one"),
    # (YAML keys 1 and 1.0 are equal: refused as a duplicate key of the mapping)
    ("{died: {1: 1, 1.0: 0}}", "the key 1.0 appears twice (lines {n} and {n}); a key may appear once: remove one"),
])
def test_colliding_code_keys(case, codes, line):
    text = case.spec.read_text()
    case.spec.write_text(text + f"codes: {codes}\n")
    before = case.snapshot()
    if "{n}" in line:
        line = f"error: spec file '{case.spec}': " + line.replace("{n}", str(len(text.splitlines()) + 1))
    case.refused(cli("run", case.spec, "--output", case.out, "-q"), line, before=before)
