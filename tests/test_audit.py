"""Tests of causal_hcc.audit: pinned findings on Zhang et al. (2024), R references, bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from causal_hcc.audit import AUDIT_COLUMNS, evalue, run_audit, two_by_two_tests
from causal_hcc.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "configs" / "published" / "zhang2024.yaml"
R_FIXTURE = json.loads((ROOT / "tests" / "reference" / "fixtures" / "audit_table1.json").read_text())
R_ROWS = sorted(k for k in R_FIXTURE if not k.startswith("_"))


@pytest.fixture(scope="module")
def audit() -> pd.DataFrame:
    return run_audit(PUBLISHED).table


def _row(t: pd.DataFrame, section: str, contains: str) -> pd.Series:
    sel = t[(t["section"] == section) & t["check"].str.contains(contains, regex=False)]
    assert len(sel) == 1, (section, contains, sel)
    return sel.iloc[0]


@pytest.mark.parametrize("variable", R_ROWS)
@pytest.mark.parametrize("test", ["fisher", "pearson", "yates"])
def test_two_by_two_matches_r(variable: str, test: str) -> None:
    ref = R_FIXTURE[variable]
    got = two_by_two_tests(ref["treated"], 26, ref["control"], 124)[test]
    assert got == pytest.approx(ref[test], rel=1e-9, abs=1e-12)


def test_table1_thirteen_of_fourteen_binary_rows_match_fisher(audit: pd.DataFrame) -> None:
    t1 = audit[(audit["section"] == "Table 1 p-values") & (audit["verdict"] != "not recomputable")]
    assert len(t1) == 14
    assert (t1["detail"].str.contains("Fisher exact")).sum() == 13
    hv = _row(audit, "Table 1 p-values", "Hepatic vein")
    assert hv["verdict"] == "flag" and hv["reported"] == "0.385"
    assert "fisher 0.209" in hv["recomputed"]


@pytest.mark.parametrize("contains, fisher", [("Oligometastases", "fisher 0.026"), ("Stable disease", "fisher 0.045")])
def test_text_imbalances_flagged(audit: pd.DataFrame, contains: str, fisher: str) -> None:
    r = _row(audit, "Imbalances reported only in the text", contains)
    assert r["verdict"] == "flag" and fisher in r["recomputed"]
    assert "not adjusted for in any reported model" in r["detail"]


def test_portal_vein_table4_centre_and_ci_implied_p(audit: pd.DataFrame) -> None:
    c = _row(audit, "Ratios: estimate vs CI", "Table 4 With portal vein")
    assert c["verdict"] == "flag" and c["recomputed"] == "centre 1.795"
    p = _row(audit, "Ratios: p implied by the CI", "Table 4 With portal vein")
    assert p["verdict"] == "flag" and p["reported"] == "0.044" and p["recomputed"] == "0.029"


@pytest.mark.parametrize("table", ["Table 2", "Table 4"])
def test_surgery_ci_implies_about_three_deaths(audit: pd.DataFrame, table: str) -> None:
    r = _row(audit, "Ratios: implied SE and events", f"{table} Receive surgical")
    assert r["verdict"] == "flag" and ">= 2.8 events" in r["recomputed"]
    assert "at least 20 of 26 censored" in r["detail"]


def test_medians_imply_hr_far_from_reported(audit: pd.DataFrame) -> None:
    r = _row(audit, "Medians vs reported HR", "Table 2 Receive surgical treatment (os)")
    assert r["verdict"] == "flag"
    assert r["recomputed"] == "HR 0.685 (exponential); 0.611-0.739 (Weibull shapes 1.3-0.8)"
    pfs = _row(audit, "Medians vs reported HR", "Table 3 Receive surgical treatment (pfs)")
    assert pfs["verdict"] == "flag" and "HR 0.669 (exponential)" in pfs["recomputed"]


@pytest.mark.parametrize("check, reported", [
    ("Size of the operated group", "26 vs 27"),
    ("Number of BCLC stage D patients", "2 vs 6"),
    ("Recurrences/progressions among the operated", "22 vs 11"),
])
def test_inconsistent_counts_flagged(audit: pd.DataFrame, check: str, reported: str) -> None:
    r = _row(audit, "Counts", check)
    assert r["verdict"] == "flag" and r["reported"] == reported


@pytest.mark.parametrize("table", ["Table 2", "Table 3", "Table 4"])
def test_or_printed_for_hazard_ratios(audit: pd.DataFrame, table: str) -> None:
    r = _row(audit, "Labels", table)
    assert r["verdict"] == "flag" and r["reported"] == "OR" and r["recomputed"] == "HR"


def test_surgery_evalues(audit: pd.DataFrame) -> None:
    r = _row(audit, "E-values", "Table 4 Receive surgical")
    # the published treatment HRs count the operated from time zero (immortal time: `immortal_time: true`)
    assert r["recomputed"] == "5.46 (CI 2.11); biased by immortal time"
    assert r["detail"].startswith("not a measure of robustness here: this ratio counts the treated from time zero")
    assert len(audit[audit["section"] == "E-values"]) == 29
    # a covariate's ratio has no such caveat
    other = audit[(audit["section"] == "E-values") & ~audit["check"].str.contains("surgical")]
    assert not other["recomputed"].str.contains("immortal").any()


@pytest.mark.parametrize("args, point, ci", [
    ((0.195, 0.061, 0.626, "hr", False), 5.456, 2.107),         # issue #3, VanderWeele 2020 conversion
    ((3.9, 1.8, 8.7, "rr", False), 7.26, 3.00),                 # VanderWeele & Ding 2017 example
    ((3.9, 1.8, 8.7, "or", True), 7.26, 3.00),                  # rare outcome: OR ~ RR
    ((4.0, 0.5, 9.0, "or", False), 3.41, 1.0),                  # common OR: sqrt(4) = 2 -> 2 + sqrt(2); CI spans 1
])
def test_evalue(args: tuple, point: float, ci: float) -> None:
    ev = evalue(*args[:3], measure=args[3], rare=args[4])
    assert ev["point"] == pytest.approx(point, abs=0.01)
    assert ev["ci"] == pytest.approx(ci, abs=0.01)


def test_evalue_bad_input() -> None:
    with pytest.raises(SpecError) as exc:
        evalue(0.5, 0.6, 0.9)
    assert str(exc.value) == "evalue: estimate 0.5 lies outside its CI (0.6, 0.9)"
    assert math.isnan(evalue(2.0)["ci"])


def test_outputs_markdown_html_csv(tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "groups: {treated: {label: A, n: 10}, control: {label: B, n: 20}}\n"
        "table1:\n  - {variable: x, label: '<script>alert(1)</script> | x', treated: 3, control: 4, p: '0.4'}\n")
    res = run_audit(spec)
    assert "<script>" not in res.as_html() and "&lt;script&gt;" in res.as_html()
    assert "\\|" in res.as_markdown()
    res.to_csv(tmp_path / "audit.csv")
    back = pd.read_csv(tmp_path / "audit.csv", dtype=str, keep_default_na=False)
    assert tuple(back.columns) == AUDIT_COLUMNS and len(back) == 1


@pytest.mark.parametrize("text, message", [
    ("groups: {treated: {label: A, n: 10}, control: {label: B, n: 20}}\nbogus: 1\n",
     "{p}: unknown key 'bogus'; valid keys: format, paper, groups, rare_outcome, weibull_shapes, table1, "
     "text_imbalances, ratios, medians, consistency, percentages"),
    ("groups: {treated: {label: A, n: 0}, control: {label: B, n: 20}}\n",
     "{p}: groups.treated.n must be a positive integer (got 0)"),
    ("groups: [1, 2\n", "published tables '{p}': invalid YAML at line 2, column 1: expected ',' or ']', but got "
     "'<stream end>'"),
    ("groups: {treated: {label: A, n: 10}, control: {label: B, n: 20}}\n"
     "table1:\n  - {variable: x, treated: 11, control: 4, p: 0.4}\n",
     "table1[0].treated: count 11 exceeds the group size 10"),
    ("groups: {treated: {label: A, n: 10}, control: {label: B, n: 20}}\n"
     "ratios:\n  - {id: a, measure: hr, estimate: 0.5, lower: 0.6, upper: 0.9}\n",
     "ratios[0]: need 0 < lower <= estimate <= upper (got 0.5 (0.6-0.9))"),
    ("groups: {treated: {label: A, n: 10}, control: {label: B, n: 20}}\n"
     "ratios:\n  - {id: a, measure: hr, estimate: 0.5, lower: 0.3, upper: 0.9, colour: red}\n",
     "ratios[0]: unknown key 'colour'; valid keys: id, table, label, measure, printed_as, estimate, lower, "
     "upper, p, level, outcome, groups, rare_outcome, treatment_effect, immortal_time"),
])
def test_bad_input_one_line(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as exc:
        run_audit(spec)
    assert str(exc.value) == message.format(p=spec)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        run_audit(tmp_path / "nope.yaml")
    assert str(exc.value) == f"published tables '{tmp_path / 'nope.yaml'}' not found"


def test_published_treatment_effects_for_the_report():
    from causal_hcc.audit import run_audit

    pub = run_audit("configs/published/zhang2024.yaml").published_summary()
    assert [(r["label"], r["estimate"], r["outcome"]) for r in pub["hr"]] == [
        ("Table 2 Receive surgical treatment", 0.188, "os"),
        ("Table 3 Receive surgical treatment", 1.011, "pfs"),
        ("Table 4 Receive surgical treatment", 0.195, "os"),
    ]
