"""`causal-hcc` end to end on a user CSV with arbitrary column names."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from typer.testing import CliRunner

from causal_hcc.cli import app
from causal_hcc.results import ESTIMATE_COLUMNS

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_run_user_csv_writes_contract_columns(user_spec):
    spec, data, out = user_spec
    before = data.read_bytes()
    r = run("run", str(spec), "--output", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    est = pd.read_csv(out / "estimates.csv")
    assert tuple(est.columns) == ESTIMATE_COLUMNS
    assert {"paper", "paper(univariate)", "naive", "multivariable"} <= set(est["strategy"])
    assert set(est["measure"]) <= {"hr", "survival_difference", "rmst_difference", "median_difference", "risk_ratio"}
    naive = est[(est.strategy == "naive") & (est.measure == "survival_difference")]
    assert sorted(naive["time"]) == [12.0, 24.0]
    res = json.loads((out / "results.json").read_text())
    assert res["provenance"]["spec_hash"] and res["provenance"]["data_hash"]
    assert data.read_bytes() == before  # input never modified
    # no patient rows: the ids never appear in outputs
    text = (out / "results.json").read_text() + (out / "estimates.csv").read_text()
    assert "1001," not in (out / "estimates.csv").read_text()
    assert '"patient_no": 1001' not in text


def test_existing_output_needs_force(user_spec):
    spec, _, out = user_spec
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = run("run", str(spec), "--output", str(out), "--quiet")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"error: output folder '{out}' already exists; use --force to replace it"
    assert (out / "keep.txt").exists()


def test_validate_runs_nothing(user_spec):
    spec, _, out = user_spec
    r = run("validate", str(spec))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ok: 120 patients")
    assert not out.exists()


def test_strategies_lists_registry():
    r = run("strategies")
    assert r.exit_code == 0
    assert "naive = baseline + none" in r.stdout and "threshold (float, default 0.05)" in r.stdout


def _edit(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    df = df.copy()
    if kind == "nonnumeric_time":
        df["fu_months"] = df["fu_months"].astype(object)
        df.loc[4, "fu_months"] = "abc"
    elif kind == "negative_time":
        df.loc[2, "fu_months"] = -1.0
    elif kind == "zero_time":
        df.loc[3, "fu_months"] = 0.0
    elif kind == "event_not_binary":
        df.loc[5, "died"] = 2
    elif kind == "treated_without_time":
        i = df.index[df.operated == 1][0]
        df.loc[i, "months_to_op"] = float("nan")
    elif kind == "treatment_after_followup":
        i = df.index[df.operated == 1][0]
        df.loc[i, "months_to_op"] = df.loc[i, "fu_months"] + 5
    elif kind == "constant_treatment":
        df["operated"] = 0
        df["months_to_op"] = float("nan")
    elif kind == "duplicated_ids":
        df.loc[7, "patient_no"] = df.loc[6, "patient_no"]
    elif kind == "no_events":
        df["died"] = 0
    elif kind == "missing_confounder":
        df.loc[[1, 9], "age_y"] = float("nan")
    elif kind == "misspelled_column":
        df = df.rename(columns={"fu_months": "fu_month"})
    return df


@pytest.mark.parametrize("kind, message", [
    ("misspelled_column", "column 'fu_months' not found (did you mean 'fu_month'?); columns: patient_no, fu_month, "
                          "died, operated, months_to_op, fit_pt, stage, age_y, hospital"),
    ("nonnumeric_time", "column 'fu_months' (time) must be numeric; found 'abc' at data row 5"),
    ("negative_time", "column 'fu_months' (time) has negative values at data row 3"),
    ("zero_time", "column 'fu_months' (time) has zero follow-up time at data row 4"),
    ("event_not_binary", "column 'died' (event) must be 0 or 1; found 2 at data row 6"),
    ("treated_without_time", "column 'months_to_op' (treatment_time) is missing for treated patients at data row 3"),
    ("treatment_after_followup",
     "column 'months_to_op' (treatment_time) is after the end of follow-up ('fu_months') at data row 3"),
    ("constant_treatment", "column 'operated' (treatment) is constant: all 120 patients are untreated; "
                           "both arms are needed"),
    ("duplicated_ids", "column 'patient_no' (id) has duplicated values at data rows 7, 8 (value 1007)"),
    ("no_events", "column 'died' (event) has no events (all 0)"),
    ("missing_confounder", "missing confounder values: 'age_y' 2 (data rows 2, 10); set missing: complete_case "
                           "to drop these 2 rows"),
])
def test_bad_data_exits_2_one_line_no_output(user_spec, user_frame, kind, message):
    spec, data, out = user_spec
    _edit(user_frame, kind).to_csv(data, index=False)
    before = data.read_bytes()
    r = run("run", str(spec), "--output", str(out), "--quiet")
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: cohort.csv: {message}\n"
    assert not out.exists()
    assert not [p for p in os.listdir(out.parent) if p.startswith(".out.tmp")]
    assert data.read_bytes() == before


def test_complete_case_counts_dropped_rows(user_spec, user_frame):
    spec, data, out = user_spec
    _edit(user_frame, "missing_confounder").to_csv(data, index=False)
    spec.write_text(spec.read_text() + "missing: complete_case\n")
    r = run("run", str(spec), "--output", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    # user data: report.min_cell defaults to 5, so the 2 dropped rows are written as "<5" (and 118 as 120)
    assert res["cohort"]["rows_dropped"] == "<5" and res["cohort"]["n"] == 120
    assert any("<5 rows with missing confounders dropped" in w for w in res["warnings"])


def test_perfect_separation_is_one_line(user_spec, user_frame):
    spec, data, out = user_spec
    df = user_frame.copy()
    df["fit_pt"] = df["operated"]  # a confounder that determines treatment
    df.to_csv(data, index=False)
    spec.write_text(spec.read_text().replace("  - paper\n  - naive\n  - multivariable\n", "  - iptw\n"))
    r = run("run", str(spec), "--output", str(out), "--quiet")
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error: strategy 'iptw(ATE)', outcome 'os': ") and "separation" in err
    assert "\n" not in err and not out.exists()


def test_bad_spec_exits_2(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("study: x\nstrategies: [naive]\n")
    r = run("run", str(p))
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: spec: required key 'roles' is missing"


def test_spec_without_data_path_exits_2_from_the_cli(tmp_path):
    # data.path may be absent only when the data are passed in memory (run_analysis(spec, data=df))
    p = tmp_path / "s.yaml"
    p.write_text("study: x\nroles: {id: i, time: t, event: e, treatment: a}\nstrategies: [naive]\n")
    for verb in ("run", "validate"):
        r = run(verb, str(p))
        assert r.exit_code == 2
        assert r.stderr.strip() == ("error: spec: data.path is required (a file or 'twin'), unless the data are "
                                    "passed in memory with run_analysis(spec, data=df)")


def test_debug_shows_traceback(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("study: x\nstrategies: [naive]\n")
    r = run("--debug", "run", str(p))
    assert r.exit_code == 2 and "Traceback" in r.stderr


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "xlsx", "sav", "dta"])
def test_run_reads_every_format_to_the_same_estimates(tmp_path, user_frame, ext):
    """The same cohort as csv, tsv, parquet, xlsx, SPSS and Stata gives the same estimates.csv."""
    import pyreadstat

    data = tmp_path / f"cohort.{ext}"
    df = user_frame.copy()
    if ext == "csv":
        df.to_csv(data, index=False)
    elif ext == "tsv":
        df.to_csv(data, index=False, sep="\t")
    elif ext == "parquet":
        df.to_parquet(data, index=False)
    elif ext == "xlsx":
        df.to_excel(data, index=False)
    elif ext == "sav":
        pyreadstat.write_sav(df, str(data))
    else:
        pyreadstat.write_dta(df, str(data))
    spec = tmp_path / "spec.yaml"
    from user_data import USER_SPEC

    spec.write_text(USER_SPEC.format(path=data))
    r = run("run", str(spec), "--output", str(tmp_path / "out"), "--quiet", "--format", "md")
    assert r.exit_code == 0, r.output
    est = pd.read_csv(tmp_path / "out" / "estimates.csv")
    ref_dir = tmp_path / "ref"
    user_frame.to_csv(tmp_path / "ref.csv", index=False)
    spec.write_text(USER_SPEC.format(path=tmp_path / "ref.csv"))
    assert run("run", str(spec), "--output", str(ref_dir), "--quiet", "--format", "md").exit_code == 0
    ref = pd.read_csv(ref_dir / "estimates.csv")
    pd.testing.assert_frame_equal(est, ref, rtol=1e-9)
