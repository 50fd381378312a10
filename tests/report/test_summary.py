"""Summary: never prints; text, HTML (escaped), Jupyter repr, frame."""
from __future__ import annotations

import math

import pytest

from causal_hcc.report import summary
from causal_hcc.results import ESTIMATE_COLUMNS
from report_support import XSS, make_result


def test_summary_never_prints(capsys):
    s = summary(make_result())
    s.as_text()
    s.as_html()
    assert capsys.readouterr().out == ""


def test_as_text():
    txt = summary(make_result()).as_text()
    assert "naive" in txt and "95% CI" in txt and "Notes:" in txt
    assert "SE treats weights as fixed" in txt
    assert "gformula [os]: failed: no events in an arm" in txt


def test_as_html_escapes():
    s = summary(make_result())
    h = s.as_html()
    assert XSS not in h and "&lt;script&gt;" in h
    assert s._repr_html_() == h


def test_to_frame_has_evalues():
    df = summary(make_result()).to_frame()
    assert list(df.columns) == list(ESTIMATE_COLUMNS) + ["evalue", "evalue_ci"]
    row = df[(df["strategy"] == "paper") & (df["measure"] == "hr")].iloc[0]
    assert math.isnan(row["evalue"])  # ever vs never (was 5.46): its bias is immortal time, not confounding
    from causal_hcc.sensitivity import evalue

    tv = df[(df["strategy"] == "time_varying") & (df["measure"] == "hr")].iloc[0]
    assert tv["evalue"] == pytest.approx(evalue(0.7, tv["ci_lower"], tv["ci_upper"], measure="hr", rare=False).point)
    rmst = df[df["measure"] == "rmst_difference"]["evalue"]
    assert all(math.isnan(v) for v in rmst)
