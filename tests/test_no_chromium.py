"""`run`, `report` and `make report` without Chromium (issue 18).

Before: `make report` (configs/paper.yaml asked for a PDF) computed for minutes, then exited 2 and
wrote no HTML. Now a PDF that is asked for (report.formats or --format) is refused before any
fitting, with one line; without one, HTML and Markdown are written; `make report` asks for the PDF
only where Chromium is found and otherwise says, in one line, that it skipped it. Chromium's
absence is simulated with CAUSAL_HCC_CHROMIUM pointing nowhere and an empty PATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from causal_hcc.cli import app

from user_data import USER_SPEC, make_user_frame

ROOT = Path(__file__).resolve().parents[1]
NO_CHROMIUM = ("error: report format 'pdf' needs Chromium: install the 'chromium' package or set CAUSAL_HCC_CHROMIUM "
               "to its path (or leave pdf out of report.formats / --format)\n")


@pytest.fixture
def no_chromium(tmp_path, monkeypatch):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("CAUSAL_HCC_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def spec(tmp_path):
    data = tmp_path / "cohort.csv"
    make_user_frame().to_csv(data, index=False)
    def write(extra: str = "") -> Path:
        p = tmp_path / "spec.yaml"
        p.write_text(USER_SPEC.format(path=data).replace("  - paper\n", "").replace("  - multivariable\n", "")
                     .replace("bootstrap: {replicates: 20, seed: 1}", "bootstrap: {replicates: 0}") + extra)
        return p
    return write


def _no_fit(monkeypatch):
    import causal_hcc.pipeline as pl

    def boom(*a, **k):  # pragma: no cover - reached only if the check comes too late
        raise AssertionError("fitted before refusing the PDF")
    monkeypatch.setattr(pl, "run_analysis", boom)


@pytest.mark.parametrize("how", ["spec", "flag"])
def test_requested_pdf_without_chromium_exits_2_before_fitting(tmp_path, no_chromium, spec, monkeypatch, how):
    _no_fit(monkeypatch)
    p = spec("report: {formats: [html, md, pdf]}\n" if how == "spec" else "")
    out = tmp_path / "out"
    args = ["run", str(p), "--output", str(out), "--quiet"] + (["--format", "html,pdf"] if how == "flag" else [])
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr == NO_CHROMIUM
    assert not out.exists() and not [x for x in os.listdir(tmp_path) if x.startswith(".out")]


def test_default_formats_without_chromium_write_html_and_markdown(tmp_path, no_chromium, spec):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(spec()), "--output", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").stat().st_size > 0 and (out / "report.md").stat().st_size > 0
    assert not (out / "report.pdf").exists()
    # rebuilding the report with a PDF is refused before anything is written
    before = (out / "report.html").read_bytes()
    r = CliRunner().invoke(app, ["report", str(out), "--format", "html,pdf"])
    assert r.exit_code == 2 and r.stderr == NO_CHROMIUM
    assert (out / "report.html").read_bytes() == before


def test_paper_spec_does_not_require_chromium():
    from causal_hcc.config import load_spec

    assert "pdf" not in load_spec(str(ROOT / "configs" / "paper.yaml")).report.formats


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("chromium", [False, True])
def test_make_report_asks_for_the_pdf_only_where_chromium_is_found(tmp_path, chromium):
    """The Makefile's recipe, with a stand-in causal-hcc that prints its arguments (nothing is fitted)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    fake = bin_dir / "causal-hcc"
    fake.write_text("#!/bin/sh\necho \"causal-hcc $*\"\n")
    fake.chmod(0o755)
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    env = {**os.environ, "CAUSAL_HCC_CHROMIUM": str(browser if chromium else tmp_path / "none"),
           "PATH": os.path.dirname(shutil.which("make")) + os.pathsep + "/bin:/usr/bin",
           "PYTHONPATH": str(ROOT)}
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "report", f"BIN={bin_dir}", "STAMP_RUN="],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    if chromium:
        assert lines[0] == "causal-hcc run configs/paper.yaml --force --format html,md,pdf"
    else:
        assert lines[0] == ("note: Chromium not found: report.pdf skipped (HTML and Markdown are written; install "
                            "chromium or set CAUSAL_HCC_CHROMIUM)")
        assert lines[1] == "causal-hcc run configs/paper.yaml --force --format html,md"
