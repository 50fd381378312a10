"""The report's sections, each from a synthetic result whose numbers are known (report_support.make_result)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.report._fmt import ci, published_text, short_estimand, sig
from causal_hcc.report.render import Context, build_context, render_html, render_markdown
from causal_hcc.report.sections import audit, balance, curves, findings, monte_carlo, target_trial
from causal_hcc.report.sections.estimates import by_estimand
from report_support import XSS, make_result


@pytest.fixture(scope="module")
def res():
    return make_result()


@pytest.fixture(scope="module")
def ctx(res):
    return build_context(res)


def _ctx(res):
    return Context(res, outcome="os", unit="months")


@pytest.mark.parametrize("value, text", [(1.0, "1.00"), (0.188, "0.188"), (12.195, "12.2"), (150, "150"),
                                         (0.0312, "0.0312"), (1234.5, "1,234"), (-0.05, "-0.0500"),
                                         (math.nan, ""), (None, "")])
def test_three_significant_digits(value, text):
    assert sig(value) == text


def test_published_numbers_as_printed():
    assert published_text({"estimate": 0.188, "ci_lower": 0.059, "ci_upper": 0.602}) == "0.188 (0.059 to 0.602)"
    assert ci(0.059, 0.602) == "0.0590 to 0.602"  # computed numbers: three significant digits


def test_banner_says_simulated_with_seed_effect_and_unmeasured_confounding(res):
    b = findings.twin_banner(res)
    assert b["facts"] == ["seed 2030", "n = 150", "surgery: no effect (true HR 1)",
                          "unmeasured confounding 0.405 (log-HR per SD)"]
    assert "no adjustment removes the confounding it causes" in b["confounding"]
    assert "real patients" in b["cannot"]
    user = make_result()
    user.provenance = {"data_source": {"source": "cohort.csv"}}
    assert findings.twin_banner(user) is None


def test_findings_computed_from_the_numbers(res):
    f = findings.build(_ctx(res))
    assert f["question"] == "Does surgery change overall survival? 150 patients; 26 had surgery at some time during follow-up."
    # the plain answer: the 6 immortal-time-free HRs 0.50 .. 0.80, all CIs include 1; envelope of their CIs
    assert f["outcomes"][0]["answer"].startswith(
        "Overall survival: the 6 analyses that avoid immortal-time bias give hazard ratios from 0.50 to 0.80 for "
        "surgery; all point to a lower hazard of death with surgery; all 6 of their 95% confidence intervals include "
        "no effect (HR 1), and together they cannot rule out anything from a ")
    assert f["published"] == ["univariate (Table 3): HR 0.188 (0.059 to 0.602)",
                              "multivariable (Table 4): HR 0.195 (0.061 to 0.626)"]
    os_ = f["outcomes"][0]
    assert os_["naive"].startswith("The naive analysis (naive: treated counted from time zero, ever vs never treated")
    z = 1.959963984540054
    lo, hi = 0.188 * math.exp(-z * 0.59), 0.188 * math.exp(z * 0.59)  # the synthetic naive HR and SE(log HR)
    assert f"gives HR 0.188 ({sig(lo)} to {sig(hi)})." in os_["naive"] and sig(hi) == "0.598"
    assert "The truth of the estimand the paper claimed on this twin is 0.700; the CI does not cover it." in os_["naive"]
    # the immortal-time-robust rows, grouped by estimand (4 landmark + time_varying + clone-censor = 6 rows, 5 estimands)
    assert [g["label"] for g in os_["groups"]] == [
        "by_L_vs_not_yet(L=3)|at_risk(L=3)|L|marginal", "by_L_vs_not_yet(L=6)|at_risk(L=6)|L|marginal",
        "structural|all|t0|conditional", "within_grace_vs_never(G=6)|all_positivity|t0|marginal"]
    assert [r["strategy"] for r in os_["groups"][0]["rows"]] == ["landmark(3)", "landmark(3)+iptw(ATE)"]
    assert [r["truth"] for g in os_["groups"] for r in g["rows"]] == ["0.750", "0.750", "0.800", "0.800", "0.700",
                                                                     "0.720"]
    assert os_["robust"][0] == ("The 6 estimates from the designs that remove immortal time answer 4 different causal "
                                "questions (grouped by estimand below); they range from HR 0.500 to 0.800, and 6 of 6 "
                                "confidence intervals include 1 (no effect).")
    assert os_["robust"][1] == "The naive HR (0.188) is lower, i.e. more favourable to treatment, than every one of them."
    assert f["monte_carlo"][0] == ("Over 20 simulated cohorts the naive HR averaged 0.630 against a truth of 1.00 "
                                   "(bias -0.462 on the log scale); its 95% CI covered the truth in 65% of cohorts.")
    # 20 cohorts: the Monte Carlo SE of the bias (0.06) is too large to judge the robust strategies
    assert f["monte_carlo"][1] == (f"Too few simulated cohorts to judge landmark(3), {XSS}: the Monte Carlo SE of the "
                                   "bias exceeds 0.025 on the log scale, so a bias of 0.05 could not be told from none.")


def test_findings_first_with_banner_and_answer_table(ctx):
    html = render_html(ctx)
    first = html.index("<section")
    assert html[first:].startswith('<section id="findings">')
    part = html[first:html.index('<section id="target_trial">')]
    assert 'id="twin-banner"' in part and 'id="answer"' in part
    assert "treated by L = 3 vs not yet; alive at L = 3 months; marginal" in part
    md = render_markdown(ctx)
    assert md.index("## Summary") < md.index("## Target-trial specification") < md.index("# Appendix") \
        < md.index("## The comparison")


def test_short_estimand_reading():
    est = {"population": "at_risk_L", "contrast": "by_L_vs_not_yet", "scale": "conditional", "causal": True,
           "params": {"landmark": 3.0, "require_event_free": "pfs"}}
    assert short_estimand(est, "months") == "treated by L = 3 vs not yet; alive, pfs-free at L = 3 months; conditional"
    never = {"population": "all", "contrast": "ever_vs_never", "scale": "marginal", "causal": False, "params": {}}
    assert short_estimand(never) == "ever vs never treated; everyone at time zero; marginal (not a causal contrast)"


def test_by_estimand_keeps_non_causal_rows_unless_asked(res):
    labels = [g["label"] for g in by_estimand(_ctx(res), "os")]
    assert labels[0] == "ever_vs_never|all|t0|marginal"
    assert "ever_vs_never|all|t0|marginal" not in [g["label"] for g in by_estimand(_ctx(res), "os", causal_only=True)]


def test_target_trial_table(res):
    t = target_trial.build(_ctx(res))
    assert [k for k, _ in t["items"]] == ["eligibility", "strategies", "assignment", "time_zero", "start", "end",
                                          "outcome", "contrast", "estimand", "analysis"]
    cols = {c["design"]: c["items"] for c in t["columns"]}
    assert list(cols) == ["baseline", "landmark", "time_varying", "clone_censor"]
    assert cols["landmark"]["eligibility"] == "alive and under follow-up at the landmark L = 3, 6 months"
    assert cols["landmark"]["time_zero"] == "the landmark, L = 3, 6 months after the data's time zero"
    assert cols["baseline"]["contrast"].startswith("not a causal contrast")
    assert "immortal time" in cols["baseline"]["start"]
    assert "artificial censoring" in cols["clone_censor"]["end"]
    assert cols["clone_censor"]["strategies"] == "start treatment within the grace period G = 6 months while eligible vs never start"
    assert cols["landmark"]["estimand"][0] == "treated by L = 3 vs not yet; alive at L = 3 months; marginal"


def test_monte_carlo_panel(res):
    m = monte_carlo.build(_ctx(res))
    assert m["n"] == 20 and m["seed"] == 2031 and m["seed_last"] == 2050
    assert [r["strategy"] for r in m["rows"]] == ["naive", "landmark(3)", XSS]
    naive = m["rows"][0]
    assert (naive["truth"], naive["mean"], naive["bias"], naive["coverage"], naive["low_coverage"]) == \
        ("1.00", "0.630", "-0.462", "65%: too low, not valid here", True)
    # 94% of 20 cohorts: within 0.92-0.98, shown valid (no flag)
    assert (m["rows"][1]["coverage"], m["rows"][1]["low_coverage"]) == ("94%", False)
    assert m["rows"][2]["coverage"] == ""  # bootstrap-only SE: no coverage inside replicates


def test_monte_carlo_panel_flags_intervals_not_shown_valid(res):
    """Issue 20: a coverage outside 0.92-0.98 is flagged (beyond MC error: not valid; within it: not shown
    valid), and a finite-sample risk-ratio bias says so (simstudy's verdict columns)."""
    import copy

    r2 = copy.deepcopy(res)
    rows = r2.extras["monte_carlo"]["table"]
    rows[1].update(coverage=0.905, mcse_coverage=0.013, n_coverage=500, coverage_verdict="uncertain")
    rows[0].update(coverage=0.99, mcse_coverage=0.002, n_coverage=2000, coverage_verdict="high",
                   bias_verdict="finite-sample")
    m = monte_carlo.build(_ctx(r2))
    assert m["rows"][1]["coverage"] == "90%: not shown valid (0.92-0.98 within MC error)"
    assert m["rows"][1]["low_coverage"] is False
    assert m["rows"][0]["coverage"] == "99%: too high (conservative)" and m["rows"][0]["low_coverage"] is True
    assert m["rows"][0]["bias"].endswith("(finite-sample: the log of a ratio of estimated risks)")
    assert m["bootstrap_strategies"] == [XSS]
    assert m["figure"] is not None


def test_balance_table_with_variance_ratios(res):
    b = balance.build(_ctx(res))
    first = b["tables"][0]
    assert first["strategy"] == "iptw(ATE)"
    assert first["rows"][0] == {"variable": "oligometastases", "smd_before": "0.450", "smd_after": "0.050",
                                "vr_before": "1.00", "vr_after": "1.00", "smd_flag": False, "vr_flag": False}
    assert first["rows"][1]["smd_flag"] is True  # |SMD| 0.12 after adjustment
    assert first["max_smd"] == "0.120" and first["n_flag"] == 1
    assert balance.fixed(-3.3e-12) == "0.000" and balance.fixed(0.8384, 2) == "0.84"


def test_absolute_risks_from_the_curves(res):
    c = curves.build(_ctx(res))
    naive = [r for r in c["risks"] if r["strategy"] == "naive"]
    assert [r["arm"] for r in naive] == ["No surgery", "Surgery"]  # the arms in the study's words
    # synthetic curve: S(t) = exp(-0.06 t) untreated, exp(-0.03 t) treated; CI = S -/+ 2 SE, SE = 0.03 + 0.002 t
    s12 = math.exp(-0.06 * 12)
    se = 0.03 + 0.002 * 12
    assert naive[0]["cells"][0]["risk"] == f"{100 * (1 - s12):.1f}%"
    assert naive[0]["cells"][0]["ci"] == ci(100 * (1 - (s12 + 2 * se)), 100 * (1 - (s12 - 2 * se))) + "%"
    assert c["times"] == ["12 months", "24 months"]


def test_risk_at_step_function():
    tab = pd.DataFrame({"time": [1.0, 2.0, 5.0], "group": "a", "surv": [0.9, 0.8, 0.5], "se": 0.05,
                        "ci_lower": [0.8, 0.7, 0.4], "ci_upper": [1.0, 0.9, 0.6], "n_at_risk": [10, 9, 5]})
    assert curves.risk_at(tab, "a", 0.5) == (0.0, 0.0, 0.0, 10.0)
    r, lo, hi, n = curves.risk_at(tab, "a", 4.0)
    assert (round(r, 12), round(lo, 12), round(hi, 12), n) == (0.2, 0.1, 0.3, 5.0)


def test_audit_flags_most_serious_first():
    rows = [{"section": "Labels", "check": "Table 2: ratio column label", "verdict": "flag"},
            {"section": "Table 1 p-values", "check": "x: p", "verdict": "ok"},
            {"section": "Medians vs reported HR", "check": "Table 2 Receive surgical treatment (os)", "verdict": "flag"},
            {"section": "Counts", "check": "size", "verdict": "flag"}]
    assert [f["section"] for f in audit.serious_flags(rows)] == ["Medians vs reported HR", "Counts", "Labels"]
    assert [f["section"] for f in audit.serious_flags(rows, 2)] == ["Medians vs reported HR", "Counts"]


def test_audit_collapsed_after_its_flags(ctx):
    html = render_html(ctx)
    sec = html[html.index('<section id="audit">'):]
    assert sec.index('id="audit-flags"') < sec.index("<details>") < sec.index('id="audit-table"')


def test_evalue_rows_have_unique_labels(ctx):
    labels = [(r["strategy"], r["outcome"], r["measure"], r["time"]) for r in ctx["sensitivity"]["evalues"]]
    assert len(labels) == len(set(labels))


def test_estimates_table_three_digits_and_csv_link(ctx):
    rows = ctx["comparison"]["rows"]
    naive = next(r for r in rows if r["strategy"] == "naive" and r["measure"] == "HR")
    assert naive["estimate"] == "0.188" and naive["ci"] == "0.0591 to 0.598"  # 0.188 exp(-/+ 1.96 x 0.59)
    assert '<a href="estimates.csv">estimates.csv</a>' in render_html(ctx)


def test_figures_at_twice_their_display_size(ctx):
    import struct

    for f in ctx["figures"]:
        assert struct.unpack(">I", f["png"][16:20])[0] == 2 * f["width"] or \
            struct.unpack(">I", f["png"][16:20])[0] == 2 * f["width"] + 1
    assert len({f["name"] for f in ctx["figures"]}) == len(ctx["figures"])


def test_time_unit_on_axes(res):
    import matplotlib

    matplotlib.use("Agg")
    from causal_hcc.report import figures as F

    ax = F.plot_curves(res)
    assert ax.get_xlabel() == "Months since time zero"
    ax2 = F.plot_landmark_sweep(res)
    assert ax2.get_xlabel() == "Landmark time (months since time zero)"


def test_flow_layout_consort():
    flow = [["patients in cohort", 150], ["excluded: event by landmark 3", 21], ["at risk at landmark", 121],
            ["treated by landmark", 15], ["untreated at landmark", 106],
            ["of whom treated after landmark (analysed as untreated)", 10]]
    from causal_hcc.report.figures import flow_layout

    rows = flow_layout(flow)
    assert [[b["text"] for b in r["boxes"]] for r in rows] == [
        ["patients in cohort"], ["at risk at landmark"], ["treated by landmark", "untreated at landmark"]]
    assert rows[1]["excluded"] == [("event by landmark 3", 21)]
    assert rows[2]["boxes"][1]["notes"] == ["of whom treated after landmark (analysed as untreated): 10"]


def test_user_data_findings_have_no_banner_or_truth_columns(tmp_path):
    """User data: no simulated-cohort banner, no truth or Monte Carlo columns; the findings still come first."""
    from causal_hcc.report.render import write_report

    res = make_result(truth=False)
    res.provenance = {"data_source": {"source": "cohort.csv"}}
    res.extras.pop("monte_carlo")
    html = open(write_report(res, str(tmp_path), formats=("html",))["html"]).read()
    part = html[html.index('<section id="findings">'):html.index('<section id="target_trial">')]
    assert 'id="twin-banner"' not in part and "<th>truth</th>" not in part and "cohorts</th>" not in part
    assert "Counting surgery from time zero (the naive comparison" in part
    assert '<section id="monte_carlo">' not in html and '<section id="truth">' not in html
