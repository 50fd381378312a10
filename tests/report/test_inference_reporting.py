"""Issue 20 item 8: E-values only where unmeasured confounding is the remaining bias; the findings count as
immortal-time-robust only the designs that are and set aside strategies too imprecise to judge; the coverage
beside a bootstrap CI says which interval it is."""
from __future__ import annotations

import copy
import math

from causal_hcc.report.render import Context, build_context, render_html, render_markdown
from causal_hcc.report.sections import findings, monte_carlo
from causal_hcc.report.sections.sensitivity import evalue_rows, no_evalue_strategies, tipping
from causal_hcc.sensitivity import NOT_CONFOUNDING_NOTE, evalues_for_result
from report_support import XSS, make_result


def _ctx(res):
    return Context(res, outcome="os", unit="months")


def test_ever_vs_never_rows_get_no_evalue():
    res = make_result()
    rows = evalues_for_result(res)
    by = {(r["strategy"], r["measure"], r["time"]): r for r in rows}
    for label in ("naive", "paper", "iptw(ATE)", "psm"):  # the baseline design: ever vs never from time zero
        r = by[(label, "hr", None)]
        assert math.isnan(r["evalue"]) and math.isnan(r["evalue_ci"]) and r["note"] == NOT_CONFOUNDING_NOTE
    for label in ("landmark(3)", "time_varying", XSS):  # causal contrasts keep theirs
        r = by[(label, "hr", None)]
        assert r["evalue"] > 1 and r["note"] != NOT_CONFOUNDING_NOTE
    shown = {r["strategy"] for r in evalue_rows(res)}
    assert shown.isdisjoint({"naive", "paper", "iptw(ATE)", "psm"}) and "landmark(3)" in shown
    assert no_evalue_strategies(res) == ["naive", "paper", "iptw(ATE)", "psm"]
    assert "naive" not in {r["strategy"] for r in tipping(res, "os", [])["summary"]}


def test_report_says_why_ever_vs_never_rows_have_no_evalue():
    ctx = build_context(make_result())
    for text in (render_html(ctx), render_markdown(ctx)):
        assert "naive, paper, iptw(ATE), psm: no E-value and no tipping point, because their contrast (ever vs never " \
               "treated, counted from time zero) is biased by immortal time" in text


def _mc_result(mcse: float, vm_sim: str = "cluster_robust"):
    res = make_result()
    res = copy.deepcopy(res)
    for r in res.extras["monte_carlo"]["table"]:
        r["mcse_bias"] = mcse
        r["truth_kind"] = "claimed" if r["design"] == "baseline" else "own"
        r["variance_method"] = vm_sim if r["strategy"] == XSS else "model"
        if r["strategy"] == XSS:
            r["coverage"] = 0.88
    return res


def test_robust_strategies_are_judged_only_when_precise():
    f = findings.build(_ctx(_mc_result(0.01)))
    assert f["monte_carlo"][1] == ("The 2 immortal-time-robust strategies had |bias| 0.0101 to 0.0321 against their "
                                   "own estimands' truths, coverage 88% to 94%.")
    assert len(f["monte_carlo"]) == 2
    robust, imprecise = findings.judged_robust(_mc_result(0.01).extras["monte_carlo"]["table"])
    assert [r["strategy"] for r in robust] == ["landmark(3)", XSS] and not imprecise
    # a baseline-design row is never counted as robust, even with its own truth
    rows = [dict(r, truth_kind="own") for r in _mc_result(0.01).extras["monte_carlo"]["table"]]
    assert "naive" not in [r["strategy"] for r in findings.judged_robust(rows)[0]]
    # mixed precision: the imprecise one is named, not counted
    res = _mc_result(0.01)
    res.extras["monte_carlo"]["table"][1]["mcse_bias"] = 0.04
    f = findings.build(_ctx(res))
    assert f["monte_carlo"][1].startswith("The 1 immortal-time-robust strategies had |bias| 0.0101")
    assert f["monte_carlo"][2].startswith("Too few simulated cohorts to judge landmark(3): the Monte Carlo SE")


def test_coverage_beside_a_bootstrap_ci_names_its_interval():
    res = _mc_result(0.01)
    rec = next(r for r in res.records if r.strategy == XSS)
    rec.estimates = [e.replace(variance_method="bootstrap") if e.measure == "hr" else e for e in rec.estimates]
    f = findings.build(_ctx(res))
    row = next(r for g in f["outcomes"][0]["groups"] for r in g["rows"] if r["strategy"] == XSS)
    # 88% of the fixture's cohorts: outside 0.92-0.98 within Monte Carlo error (issue 20: flagged)
    assert row["mc"]["coverage"] == "88% (not shown valid) (cluster_robust interval, not the bootstrap CI shown)"
    lm = next(r for g in f["outcomes"][0]["groups"] for r in g["rows"] if r["strategy"] == "landmark(3)")
    assert lm["mc"]["coverage"] == "94%"  # the simulated interval is the one shown
    m = monte_carlo.build(_ctx(res))  # the Monte Carlo table names every simulated interval
    assert next(r for r in m["rows"] if r["strategy"] == XSS)["coverage"] == \
        "88% (cluster_robust): not shown valid (0.92-0.98 within MC error)"
    assert next(r for r in m["rows"] if r["strategy"] == "landmark(3)")["coverage"] == "94% (model)"
