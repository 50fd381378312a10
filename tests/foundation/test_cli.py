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
    assert set(est["measure"]) <= {"hr", "survival_difference", "rmst_difference", "median_difference"}
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


@pytest.mark.parametrize("kind, fragment", [
    ("misspelled_column", "column 'fu_months'"),
    ("nonnumeric_time", "fu_months"),
    ("negative_time", "fu_months"),
    ("zero_time", "fu_months"),
    ("event_not_binary", "died"),
    ("treated_without_time", "months_to_op"),
    ("treatment_after_followup", "months_to_op"),
    ("constant_treatment", "operated"),
    ("duplicated_ids", "patient_no"),
    ("no_events", "died"),
    ("missing_confounder", "age_y"),
])
def test_bad_data_exits_2_one_line_no_output(user_spec, user_frame, kind, fragment):
    spec, data, out = user_spec
    _edit(user_frame, kind).to_csv(data, index=False)
    before = data.read_bytes()
    r = run("run", str(spec), "--output", str(out), "--quiet")
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert fragment in err
    assert not out.exists()
    assert not [p for p in os.listdir(out.parent) if p.startswith(".out.tmp")]
    assert data.read_bytes() == before


def test_bad_spec_exits_2(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("study: x\nstrategies: [naive]\n")
    r = run("run", str(p))
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: spec: required key 'data' is missing"


def test_debug_shows_traceback(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("study: x\nstrategies: [naive]\n")
    r = run("--debug", "run", str(p))
    assert r.exit_code == 2 and "Traceback" in r.stderr
