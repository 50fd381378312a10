"""write_report: files, self-containment, escaping, no patient rows, round trip through results.json."""
from __future__ import annotations

import math

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from causal_hcc.errors import SpecError
from causal_hcc.report.render import md_escape, write_report
from causal_hcc.results import AnalysisResult
from report_support import XSS, make_result


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    paths = write_report(make_result(), str(folder), formats=("html", "md"))
    return folder, paths


def test_files_written(written):
    folder, paths = written
    assert set(paths) == {"html", "md"}
    assert os.path.getsize(folder / "report.html") > 10_000
    md = (folder / "report.md").read_text()
    figs = re.findall(r"\]\((figures/[a-z0-9_]+\.png)\)", md)
    assert "figures/forest_hr.png" in figs
    assert all((folder / f).exists() for f in figs)


SECTION_IDS = ["findings", "target_trial", "comparison", "monte_carlo", "truth", "cohort", "balance", "curves",
               "diagnostics", "sensitivity", "audit", "methods", "header"]


@pytest.mark.parametrize("section", SECTION_IDS)
def test_html_sections(written, section):
    assert f'<section id="{section}">' in (written[0] / "report.html").read_text()


def test_sections_in_order_findings_first(written):
    html = (written[0] / "report.html").read_text()
    found = re.findall(r'<section id="([a-z_]+)">', html)
    assert found == SECTION_IDS


def test_html_escapes_and_is_self_contained(written):
    html = (written[0] / "report.html").read_text()
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the inline table-sorting script only
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    imgs = re.findall(r'<img src="([^"]{0,30})', html)
    assert imgs and all(s.startswith("data:image/png;base64,") for s in imgs)


def test_markdown_escapes_outside_code_blocks(written):
    md = (written[0] / "report.md").read_text()
    outside = re.sub(r"```.*?```", "", md, flags=re.S)
    assert XSS not in outside
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in outside


def test_md_escape():
    assert md_escape("a|b_<i>") == r"a\|b\_&lt;i&gt;"


def test_truth_panel_and_published(written):
    html = (written[0] / "report.html").read_text()
    assert "multivariable (Table 4)" in html  # published estimate listed
    assert "CI covers truth" in html
    assert "x0.27 (log error -1.31)" in html  # naive HR 0.188 against the claimed truth 0.7
    assert "x0.67 (log error -0.41)" in html  # landmark(3) 0.5 against its own estimand's truth 0.75


def test_refuter_and_evalues_shown(written):
    html = (written[0] / "report.html").read_text()
    assert "Passed: the effect vanishes." in html
    # the 'paper' HR 0.195 (ever vs never) gets no E-value (5.46 before): its bias is immortal time
    assert "naive, paper, iptw(ATE), psm: no E-value and no tipping point" in html
    from causal_hcc.sensitivity import evalue

    z = 1.959963984540054
    ev = evalue(0.7, 0.7 * math.exp(-z * 0.4), 0.7 * math.exp(z * 0.4), measure="hr", rare=False)
    assert f"{ev.point:.3g}" in html  # the time_varying HR 0.7 (causal contrast) keeps its E-value


def test_bad_format(tmp_path):
    with pytest.raises(SpecError, match=r"^report format 'docx' is not supported; valid: html, md, pdf$"):
        write_report(make_result(), str(tmp_path), formats=("html", "docx"))


def test_round_trip_without_truth(tmp_path):
    res = make_result(truth=False)
    (tmp_path / "results.json").write_text(json.dumps(res.to_dict(), allow_nan=False))
    res.write_curves(str(tmp_path))  # the curve tables live in curves.parquet
    loaded = AnalysisResult.load(str(tmp_path))
    assert all(len(r.curves.table) for r in loaded.records if r.curves is not None)
    paths = write_report(loaded, str(tmp_path / "out"), formats="html,md")
    html = open(paths["html"]).read()
    assert '<section id="truth">' not in html
    assert '<section id="findings">' in html


def test_pdf_needs_chromium(tmp_path, monkeypatch):
    from causal_hcc.errors import OutputError

    monkeypatch.setenv("CAUSAL_HCC_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OutputError, match=r"^report format 'pdf' needs Chromium: install the 'chromium' package "
                                          r"or set CAUSAL_HCC_CHROMIUM to its path$"):
        write_report(make_result(), str(tmp_path / "out"), formats=("pdf",))
    assert not (tmp_path / "out" / "report.pdf").exists()


def test_no_patient_rows(tmp_path):
    """Table 1 from a real cohort: neither ids nor individual values reach the report."""
    from causal_hcc.cohort import Cohort
    from causal_hcc.report.table1 import table1

    rng = np.random.default_rng(5)
    n = 80
    df = pd.DataFrame({"id": [f"PATIENT-{i:04d}" for i in range(n)], "t": rng.uniform(1, 30, n),
                       "e": rng.integers(0, 2, n), "s": (np.arange(n) < 20).astype(int),
                       "albumin": np.round(rng.normal(40, 5, n), 6) + 1e-6})
    res = make_result()
    res.cohort["table1"] = table1(Cohort(df, id="id", time="t", event="e", treatment="s", confounders=["albumin"]))
    write_report(res, str(tmp_path), formats=("html", "md"))
    text = (tmp_path / "report.html").read_text() + (tmp_path / "report.md").read_text()
    assert "PATIENT-" not in text
    assert not any(f"{v:.6f}" in text for v in df["albumin"])


def test_methods_name_each_bootstrap_interval():
    """Methods text: medians' missing SE said once; each strategy's bootstrap interval named."""
    from causal_hcc.report.sections.methods import methods as _methods

    res = make_result()
    recs = [r for r in res.records if not r.error]
    recs[-1].estimates = [e.replace(variance_method="bootstrap") for e in recs[-1].estimates]
    recs[0].estimates = [e.replace(variance_method="bootstrap") for e in recs[0].estimates]
    res.spec["bootstrap"] = {"replicates": 200, "seed": 1, "ci": "percentile"}
    res.spec["resolved_strategies"][0]["bootstrap_ci"] = "bca"
    text = " ".join(_methods(res)["paragraphs"])
    assert ("95% bootstrap intervals are percentile (bias-corrected and accelerated (BCa) for naive), "
            "on the log scale for HRs.") in text
    assert "no variance for" not in text
