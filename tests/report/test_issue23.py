"""Issue 23: a report a clinician and a journal can use.

The first screen's plain answer, the study's own names (``title:``,
``labels:``), figures fit for a journal (risk table, forest plot, DAG, flow
boxes), the listed glitches (each with a test), and the API (balance table,
record lookup, plot functions, clear errors).
"""
from __future__ import annotations

import copy
import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from causal_hcc.report import figures as F  # noqa: E402
from causal_hcc.report._answer import answer_sentence, naive_sentence, robust_hrs  # noqa: E402
from causal_hcc.report._labels import Names, readable  # noqa: E402
from causal_hcc.results import EffectEstimate  # noqa: E402
from report_support import make_result  # noqa: E402


@pytest.fixture(scope="module")
def res():
    r = make_result()
    r.spec = dict(r.spec, title="Surgery after conversion therapy",
                  labels={"oligometastases": "Oligometastases (1-3)", "surgery": "Hepatectomy"})
    return r


def _bboxes(fig, artists):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists]


def _overlap(a, b, tol: float = 0.5) -> bool:
    return a.x0 < b.x1 - tol and b.x0 < a.x1 - tol and a.y0 < b.y1 - tol and b.y0 < a.y1 - tol


# ------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name, words", [
    ("portal_vein_invasion", "Portal vein invasion"), ("hbv", "HBV"), ("bclc_d", "BCLC D"), ("age", "Age"),
    ("os", "Overall survival"), ("pfs", "Progression-free survival"), ("ECOG score", "ECOG score"),
    ("afp", "AFP"), ("lung_met", "Lung met"), ("rcs(age, 4)", "rcs(age, 4)")])
def test_names_written_readably_without_labels(name, words):
    assert readable(name) == words


def test_labels_win_and_reach_columns_arms_and_strategies(res):
    n = Names(res)
    assert n.title == "Surgery after conversion therapy"
    assert n.treatment == "Hepatectomy" and n.treatment_lower == "hepatectomy"
    assert n.column("oligometastases") == "Oligometastases (1-3)"
    assert n.column("stage=III") == "Stage: III" and n.column("grade:nodes") == "Grade × Nodes"
    assert n.column("rcs(oligometastases, 4)") == "Oligometastases (1-3) (spline)"
    assert n.arm("treated") == "Hepatectomy" and n.arm("untreated") == "No hepatectomy"
    assert n.arm("treat within 6") == "Hepatectomy within 6 months" and n.arm("never treat") == "No hepatectomy"
    assert n.favours == ("favours hepatectomy", "favours no hepatectomy")
    assert n.strategy("landmark(3)+iptw(ATE)", "landmark", "iptw") == "Landmark at 3 months, IPT weights"
    assert n.strategy("naive", "baseline", "none") == "Naive: ever vs never treated, from time zero"


# --------------------------------------------------------------------------------------- first screen
def _est(hr, lo, hi, strategy="s"):
    return EffectEstimate("hr", hr, 0.3, lo, hi, 0.5, "model", strategy=strategy, estimand="e")


def _one_outcome(ests):
    from causal_hcc.results import AnalysisResult, StrategyRecord

    recs = [StrategyRecord(f"landmark({i + 1})", "landmark", "none", "os", [e.replace(strategy=f"landmark({i + 1})")],
                           estimands={"e": {"causal": True}}) for i, e in enumerate(ests)]
    return AnalysisResult("s", {"roles": {"treatment": "surgery"}}, recs)


def test_answer_sentence_direction_range_ci_and_what_cannot_be_ruled_out():
    r = _one_outcome([_est(0.61, 0.19, 1.93), _est(1.32, 0.64, 2.71), _est(0.9, 0.5, 1.6)])
    text = answer_sentence(r, "os", Names(r))
    assert text == ("Overall survival: the 3 analyses that avoid immortal-time bias give hazard ratios from 0.61 to "
                    "1.32 for surgery; they do not agree on the direction (2 below 1, 1 above); all 3 of their 95% "
                    "confidence intervals include no effect (HR 1), and together they cannot rule out anything from "
                    "an 81% lower to a 2.7-fold higher hazard of death.")


def test_answer_sentence_when_every_interval_excludes_one():
    r = _one_outcome([_est(0.5, 0.3, 0.8), _est(0.6, 0.4, 0.9)])
    text = answer_sentence(r, "os", Names(r))
    assert "all point to a lower hazard of death with surgery" in text
    assert "none of their 95% confidence intervals includes no effect" in text
    assert "a hazard between 10% lower and 70% lower of death" in text


def test_answer_sentence_without_designs_that_remove_immortal_time():
    from causal_hcc.results import AnalysisResult, StrategyRecord

    r = AnalysisResult("s", {"roles": {"treatment": "surgery"}},
                       [StrategyRecord("naive", "baseline", "none", "pfs", [_est(0.5, 0.3, 0.8, "naive")])])
    assert robust_hrs(r, "pfs") == []
    assert answer_sentence(r, "pfs", Names(r)).startswith(
        "Progression-free survival: no analysis in this report removes immortal time")
    assert naive_sentence(r, "pfs", Names(r), r.records[0].estimates[0]) == (
        "Counting surgery from time zero (the naive comparison, which credits surgery with the time patients had to "
        "survive to receive it) gives a hazard ratio of 0.50 (0.30 to 0.80).")


def test_first_screen_title_answer_and_explained_coverage(res, tmp_path):
    from causal_hcc.report.render import build_context, render_html

    ctx = build_context(res)
    html = render_html(ctx)
    assert '<h1 id="report-title">Surgery after conversion therapy</h1>' in html
    top = html[:html.index('<table class="answer"')]
    assert 'class="answer-sentence"' in top and "Overall survival: the 6 analyses that avoid immortal-time bias" in top
    head = re.search(r'<th class="coverage-head">(.*?)</th>', html).group(1)
    assert head == "Coverage: 95% CI contained the truth, % of 20 simulated cohorts"
    assert "Hepatectomy" in html and "hepatectomy" in top  # the study's own words


# --------------------------------------------------------------------------------------------- figures
def test_risk_table_has_its_own_label_column(res):
    import matplotlib.pyplot as plt

    rec = next(r for r in res.records if r.design == "clone_censor")
    rec = copy.deepcopy(rec)
    rec.curves.table["group"] = rec.curves.table["group"].map({"treated": "treat within 6",
                                                                "untreated": "never treat"})
    rec.curves.table["n_at_risk"] = rec.curves.table["n_at_risk"] * 0 + 646
    ax = F.plot_curves(res, record=rec)
    labels = [t for t in ax.texts if (t.get_gid() or "").startswith("risk-label")]
    counts = [t for t in ax.texts if (t.get_gid() or "").startswith("risk-count")]
    assert [t.get_text() for t in labels] == ["Hepatectomy within 6 months", "No hepatectomy"] or \
        sorted(t.get_text() for t in labels) == ["Hepatectomy within 6 months", "No hepatectomy"]
    assert counts and all(re.fullmatch(r"\d+", t.get_text()) for t in counts)  # integers, not 646.0
    boxes = _bboxes(ax.figure, labels + counts)
    lab, cnt = boxes[:len(labels)], boxes[len(labels):]
    assert max(b.x1 for b in lab) + 3 < min(b.x0 for b in cnt)  # "... 6 months" never runs into "646"
    plt.close(ax.figure)


def test_weighted_counts_are_labelled_weighted(res):
    import matplotlib.pyplot as plt

    ax = F.plot_curves(res, strategy="iptw(ATE)")
    assert "Weighted number at risk (rounded)" in [t.get_text() for t in ax.texts]
    assert all(re.fullmatch(r"\d+|", t.get_text()) for t in ax.texts if (t.get_gid() or "").startswith("risk-count"))
    plt.close(ax.figure)


def test_landmark_axis_has_round_ticks(res):
    import matplotlib.pyplot as plt

    rec = copy.deepcopy(next(r for r in res.records if r.strategy == "landmark(3)"))
    rec.curves = type(rec.curves)(rec.curves.table, rec.curves.method, rec.curves.variance_method, time_origin=3.0)
    ax = F.plot_curves(res, record=rec)
    ticks = [float(t) for t in ax.get_xticks()]
    assert ticks[0] == 0 and all(t % 5 == 0 for t in ticks)  # 0, 5, 10 ... from the landmark, not 3/13/23
    assert ax.get_xlabel() == "Months since the landmark (3 months after time zero)"
    plt.close(ax.figure)


def test_forest_plot_text_column_favours_labels_and_compact_legend(res):
    import matplotlib.pyplot as plt

    ax = F.plot_forest(res)
    texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert "HR (95% CI)" in [t.get_text() for t in ax.texts]
    assert any(re.fullmatch(r"0\.\d\d \(0\.\d\d to \d\.\d\d\)", v) for k, v in texts.items()
               if k.startswith("forest-text"))
    fav = [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("favours")]
    assert fav == ["← favours hepatectomy", "favours no hepatectomy →"]
    fig = ax.figure
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    axbox = ax.get_window_extent(fig.canvas.get_renderer())
    assert leg.y1 <= axbox.y0  # under the axis, not a column eating the width
    assert all(float(t) in F._HR_TICKS for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1])
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()][:1] != ["$\\mathdefault{10^{-1}}$"]
    plt.close(fig)


def test_forest_on_a_run_without_survival_at_raises_instead_of_empty_axes(res):
    r = copy.deepcopy(res)
    for rec in r.records:
        rec.estimates = [e for e in rec.estimates if e.measure == "hr"]
    with pytest.raises(ValueError, match=r"plot_forest: no survival difference estimates for outcome 'os' "
                                         r"\(set estimands.survival_at in the spec\)"):
        F.plot_forest(r, "survival_difference")


def test_sweep_needs_two_landmark_times(res):
    r = copy.deepcopy(res)
    r.records = [x for x in r.records if x.strategy not in ("landmark(6)", "landmark(6)+iptw(ATE)")]
    with pytest.raises(ValueError, match="a landmark sweep needs at least two landmark times; this result has one"):
        F.plot_landmark_sweep(r)
    from causal_hcc.report.render import Context
    from causal_hcc.report.sections import curves

    assert curves.build(Context(r.disclosed(), outcome="os"))["sweep"] is None  # no sweep for one landmark


@pytest.mark.parametrize("flow", [
    [["patients in cohort", 150], ["clones per arm", 130], ["never treat: censored at treatment start", 26],
     ["never treat: of whom treated at time zero", 0],
     ["treat within 6: treated within grace", 24],
     ["treat within 6: event or censored untreated within grace (follow strategy)", 28],
     ["treat within 6: pfs event untreated within grace (no longer eligible)", 9],
     ["treat within 6: censored at 6 (untreated, deviates)", 69]],
    [["patients in cohort", 150], ["excluded: event by landmark 3 with a very long reason that wraps over lines", 21],
     ["at risk at landmark", 121], ["treated by landmark", 15], ["untreated at landmark", 106],
     ["of whom treated after landmark (analysed as untreated)", 10], ["excluded: lost", 3],
     ["analysed", 118]]])
def test_flow_boxes_never_overlap(flow):
    import matplotlib.pyplot as plt

    ax = F.plot_flow(flow, design="clone_censor")
    fig = ax.figure
    boxes = _bboxes(fig, [p for p in ax.patches if (p.get_gid() or "").startswith("flow-")])
    texts = [t for t in ax.texts if (t.get_gid() or "").startswith("flow-text")]
    tboxes = _bboxes(fig, texts)
    assert len(boxes) >= 3
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not _overlap(boxes[i], boxes[j]), (i, j)
    pboxes = {p.get_gid().replace("flow-", "flow-text-"): b for p, b in
              zip([p for p in ax.patches if (p.get_gid() or "").startswith("flow-")], boxes)}
    for t, b in zip(texts, tboxes):  # every text inside its own box
        box = pboxes[t.get_gid()]
        assert box.x0 - 1 <= b.x0 and b.x1 <= box.x1 + 1 and box.y0 - 1 <= b.y0 and b.y1 <= box.y1 + 1, t.get_text()
    plt.close(fig)


def test_dag_is_laid_out_in_layers_with_readable_names(res):
    import matplotlib.pyplot as plt

    dag = {"nodes": ["oligometastases", "bone_met", "portal_vein_invasion", "metastatic_sd", "surgery", "os_event"],
           "edges": [[c, t] for c in ("oligometastases", "bone_met", "portal_vein_invasion", "metastatic_sd")
                     for t in ("surgery", "os_event")] + [["surgery", "os_event"]],
           "treatment": "surgery", "outcome": "os_event", "minimal": ["oligometastases", "bone_met"],
           "spec_confounders": ["oligometastases", "bone_met", "portal_vein_invasion"]}
    ax = F.plot_dag(dag, names=Names(res))
    nodes = [p for p in ax.patches if (p.get_gid() or "").startswith("dag-node")]
    boxes = _bboxes(ax.figure, nodes)
    assert len(boxes) == 6
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert "Oligometastases (1-3)" in [t.get_text() for t in ax.texts]
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == 9
    plt.close(ax.figure)


# -------------------------------------------------------------------------------------------- glitches
def test_risk_cell_where_the_curve_stops_is_a_dash_not_empty_brackets(res):
    from causal_hcc.report.render import Context
    from causal_hcc.report.sections import curves

    r = copy.deepcopy(res)
    rec = next(x for x in r.records if x.strategy == "iptw(ATE)")
    tab = rec.curves.table
    tab.loc[tab["time"] >= 20, ["surv", "ci_lower", "ci_upper"]] = np.nan  # AIPTW's curve stops before 24
    c = curves.build(Context(r, outcome="os"))
    cells = [x for row in c["risks"] if row["strategy"] == "iptw(ATE)" for x in row["cells"]]
    assert cells[1]["risk"] == "–" and cells[1]["ci"] == "" and cells[1]["n_at_risk"] == ""
    from causal_hcc.report.render import build_context, render_html

    html = render_html(build_context(r))
    assert "() [0]" not in html and "()" not in re.sub(r"<[^>]+>", "", html.split('id="absolute-risks"')[1][:20000])


def test_matching_diagnostics_show_no_raw_float_repr():
    from causal_hcc.report.sections.diagnostics import items
    from causal_hcc.results import StrategyRecord

    rec = StrategyRecord("psm", "baseline", "psm", "os", [],
                         diagnostics={"matching": {"matched_treated": 26, "caliper_logit": 1.3624741518677905,
                                                   "replace": False, "exact": []}})
    text = dict(items(rec))["matching"]
    assert text == "matched treated 26, caliper logit 1.36, replace no"


def test_units_are_the_spec_time_unit_not_time_units():
    from causal_hcc.cohort import Cohort
    from causal_hcc.design.baseline import Baseline

    df = pd.DataFrame({"id": range(8), "t": [5.0, 6, 7, 8, 9, 10, 11, 12], "e": [1, 0] * 4, "a": [1, 0] * 4,
                       "tt": [2.0, None, 3, None, 1, None, 2, None]})
    c = Cohort(df, id="id", time="t", event="e", treatment="a", treatment_time="tt", time_unit="weeks")
    d = Baseline().fit(c, "os")
    assert any("weeks) but is counted from time zero" in n for n in d.data_.notes)
    assert not any("time units" in n for n in d.data_.notes)


def test_in_page_links_point_at_sections_that_exist(res):
    from causal_hcc.report.render import build_context, drop_dead_links, render_html

    assert drop_dead_links('<a href="#x">X</a> <a href="#y">Y</a><div id="y"></div>') == \
        'X <a href="#y">Y</a><div id="y"></div>'
    r = copy.deepcopy(res)
    r.extras.pop("monte_carlo", None)
    r.extras.pop("audit", None)
    html = render_html(build_context(r))
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    assert {h for h in re.findall(r'href="#([^"]*)"', html)} <= ids


def test_a_reference_is_listed_once():
    from causal_hcc.report.sections.methods import methods

    refs = methods(make_result())["references"]
    keys = [(r.split()[0], re.search(r"(19|20)\d\d", r).group(0)) for r in refs if re.search(r"(19|20)\d\d", r)]
    assert len(keys) == len(set(keys)), refs
    assert sum("Suissa" in r for r in refs) <= 1


def test_captions_do_not_repeat_figure_titles(res):
    from causal_hcc.report.render import build_context, render_html

    ctx = build_context(res)
    html = render_html(ctx)
    for fig in re.findall(r"<figure.*?</figure>", html, re.S):
        cap = re.search(r"<figcaption>(.*?)</figcaption>", fig, re.S)
        alt = re.search(r'alt="([^"]*)"', fig)
        if cap and alt:
            assert re.sub(r"<[^>]+>", "", cap.group(1)).strip() != alt.group(1).strip()
    assert not [i["title"] for i in ctx["figures"] if i["name"].startswith("forest_hr")
                and "Hazard ratio by strategy" in i["title"]]


# ------------------------------------------------------------------------------------------------ report
def test_warnings_are_grouped_by_message_with_their_strategies():
    from causal_hcc.report.sections.diagnostics import warnings
    from causal_hcc.results import AnalysisResult, StrategyRecord

    msg = "adjustment 'iptw': {} of 150 propensity scores are within 1e-06 of 0 or 1"
    recs = [StrategyRecord(s, "baseline", "iptw", o, [], warnings=[msg.format(k)])
            for s, k in (("iptw(ATE)", 20), ("iptw(ATT)", 20), ("aiptw", 19)) for o in ("os", "pfs")]
    recs.append(StrategyRecord("naive", "baseline", "none", "os", [], warnings=["few events"]))
    w = warnings(AnalysisResult("s", {}, recs, warnings=["few events"]))
    assert len(w) == 2
    assert w[0]["where"] == "iptw(ATE), iptw(ATT), aiptw" and "values differ by strategy" in w[0]["text"]
    assert w[1]["where"] == "the run; naive (os)"


def test_diagnostics_per_strategy_are_collapsed(res):
    from causal_hcc.report.render import build_context, render_html

    html = render_html(build_context(res))
    part = html[html.index('<section id="diagnostics">'):html.index('<section id="sensitivity">')]
    assert part.count('<details class="strategy-diagnostics">') >= 3 and 'id="diagnostics-overview"' in part


def test_summary_then_lettered_appendix(res):
    from causal_hcc.report.render import build_context, render_html

    ctx = build_context(res)
    assert [s["id"] for s in ctx["sections"] if s["summary"]] == ["findings", "target_trial"]
    assert [s.get("letter") for s in ctx["sections"] if not s["summary"]][:3] == ["A", "B", "C"]
    html = render_html(ctx)
    assert html.index('id="findings"') < html.index('id="forest_hr"') < html.index('id="summary-curves"') \
        < html.index('id="target_trial"') < html.index('id="appendix"') < html.index('id="comparison"')


def test_tipping_columns_that_say_the_same_for_every_strategy_are_not_columns():
    from causal_hcc.report.sections.sensitivity import fold_repeats, informative_columns

    rows = [{"strategy": "a", "hr": "0.5", "p0": "0 pp", "p1": "10 pp"}, {"strategy": "b", "hr": "0.6", "p0": "0 pp",
                                                                           "p1": "20 pp"}]
    cols, constant = informative_columns(rows, 2)
    assert [c["key"] for c in cols] == ["p1"] and constant == ["point at HR_UD 1.5: 0 pp for every strategy"]
    folded = fold_repeats([{"strategy": "paper(univariate)", "x": 1}, {"strategy": "naive", "x": 1}], ("x",))
    assert folded == [{"strategy": "paper(univariate), naive", "x": 1}]


# ------------------------------------------------------------------------------------------------ API
def test_balance_table_as_cobalt_bal_tab(res):
    from causal_hcc.report import balance_table

    bt = balance_table(res, "iptw(ATE)")
    assert list(bt.columns) == ["smd_before", "smd_after", "variance_ratio_before", "variance_ratio_after",
                                "balanced"]
    assert bt.index.name == "variable" and len(bt) >= 2
    b = next(r for r in res.records if r.strategy == "iptw(ATE)").diagnostics["balance"]
    assert np.allclose(bt["smd_after"].to_numpy(), np.array(b["smd_after"], float))
    assert (bt["balanced"] == (bt["smd_after"].abs() <= 0.1)).all()
    with pytest.raises(ValueError, match="strategy 'naive' has no balance diagnostics"):
        balance_table(res, "naive")
    with pytest.raises(KeyError, match=r"no strategy labelled 'iptw\(ATF\)' \(did you mean 'iptw\(ATE\)'\?\)"):
        balance_table(res, "iptw(ATF)")


def test_record_lookup_by_label(res):
    assert res.record("naive").strategy == "naive"
    assert res.record_of("naive") is res.record("naive")
    with pytest.raises(KeyError, match=r"no strategy labelled 'landmark\(4\)' \(did you mean 'landmark\("):
        res.record_of("landmark(4)")
    with pytest.raises(KeyError, match="strategy 'naive' has no outcome 'pfs'"):
        res.record("naive", "pfs")
    e = res.records[0].estimates[0]
    assert res.record_of(e) is res.records[0]  # an estimate still finds its record


def test_plot_functions_are_public_names():
    import causal_hcc.report as R

    names = dir(R)
    for f in ("plot_forest", "plot_curves", "plot_love", "plot_flow", "plot_dag", "plot_landmark_sweep",
              "plot_monte_carlo", "plot_propensity", "plot_weights", "plot_schoenfeld", "balance_table"):
        assert f in names and callable(getattr(R, f))
    with pytest.raises(AttributeError, match="has no attribute 'plot_nothing'"):
        R.plot_nothing  # noqa: B018


def test_repr_says_where_the_warnings_are(res):
    head = repr(res).splitlines()[0]
    assert "run warnings in .warnings" in head and "strategy warnings in .warnings_for(label)" in head


def test_console_says_which_intervals_the_bootstrap_replaces():
    from causal_hcc.pipeline import run_analysis

    rng = np.random.default_rng(3)
    n = 80
    df = pd.DataFrame({"id": range(n), "t": rng.exponential(10, n) + 0.1, "e": rng.integers(0, 2, n),
                       "a": rng.integers(0, 2, n), "x": rng.normal(size=n)})
    lines: list[str] = []
    spec = {"study": "s", "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"}, "confounders": ["x"],
            "strategies": ["naive", {"name": "multivariable", "variance": "bootstrap"}],
            "bootstrap": {"replicates": 20, "seed": 1}, "report": {"min_cell": 0}}
    run_analysis(spec, data=df, progress=lines.append)
    first = next(x for x in lines if x.startswith("multivariable") and "[os]: HR" in x)
    assert first.endswith("; analytic interval, bootstrap follows)"), lines
    final = [x for x in lines if x.startswith("multivariable") and "[os]" in x and x.endswith("(bootstrap, final)")]
    assert len(final) == 1
    assert not [x for x in lines if x.startswith("naive [os]") and "bootstrap" in x]


def test_summary_object_carries_the_title(res):
    from causal_hcc.report import summary

    assert "Title" in summary(res).as_text() and "Surgery after conversion therapy" in summary(res).as_text()
    assert math.isfinite(1.0)


def test_markdown_of_dated_clinic_data_without_a_twin():
    """A run on the clinic's own dates (start_date/end_date/treatment_date, no time or treatment column) and no
    twin: the Markdown answer table has no truth or Monte Carlo columns (as the HTML), and the target-trial
    table names the date columns, never 'None' or an empty treatment."""
    from causal_hcc.report.render import build_context, render_html, render_markdown

    r = make_result(truth=False)
    r.extras.pop("monte_carlo", None)
    r.spec["roles"] = {"id": "patient_no", "start_date": "listed_on", "end_date": "last_seen_on",
                       "treatment_date": "transplanted_on", "event": "status", "time": None, "treatment": None}
    ctx = build_context(r)
    md, html = render_markdown(ctx), render_html(ctx)
    head = next(line for line in md.splitlines() if line.startswith("| analysis ("))
    assert "truth" not in head and "simulated cohorts" not in head and head.count("|") == 5
    for page in (md, html):
        assert "None" not in page and "****" not in page
    assert "origin of listed\\_on" in md and "status at last\\_seen\\_on" in md
    assert "transplanted" in md
