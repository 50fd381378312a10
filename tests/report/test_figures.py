"""Figures return Axes and draw what they claim."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from causal_hcc.errors import SpecError  # noqa: E402
from causal_hcc.report import figures as F  # noqa: E402
from report_support import make_result  # noqa: E402


@pytest.fixture(scope="module")
def res():
    return make_result()


def _ticks(ax):
    """(label, x, colour) of the truth ticks drawn on the forest plot's rows."""
    labels = {round(y): t.get_text().strip() for y, t in zip(ax.get_yticks(), ax.get_yticklabels())}
    return [(labels[round(l.get_ydata()[0])], l.get_xdata()[0], l.get_color()) for l in ax.get_lines()
            if l.get_marker() == "|" and len(l.get_xdata())]


def test_forest_hr(res):
    import matplotlib.pyplot as plt

    ax = F.plot_forest(res, names="label")
    assert ax.get_xscale() == "log"
    labels = [t.get_text().strip() for t in ax.get_yticklabels()]
    assert labels[:2] == ["Published: univariate (Table 3)", "Published: multivariable (Table 4)"]
    assert "landmark(3)" in labels
    ticks = {lab: (x, c) for lab, x, c in _ticks(ax)}
    # each row's own truth: landmark(3) 0.75, landmark(6) 0.8; the naive row (ever vs never) the claimed 0.7, grey
    assert ticks["landmark(3)"] == (0.75, F.TRUTH_COLOR)
    assert ticks["landmark(6)"] == (0.8, F.TRUTH_COLOR)
    assert ticks["naive"][0] == 0.7 and ticks["naive"][1] != F.TRUTH_COLOR
    assert len(_ticks(ax)) == len(labels) - 2  # one per strategy row, none on the paper's diamonds
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "truth of the row's estimand" in legend and "truth of the estimand the paper claimed" in legend
    plt.close(ax.figure)


@pytest.mark.parametrize("measure, time, truth", [("survival_difference", 24.0, 0.08), ("rmst_difference", None, 1.1)])
def test_forest_differences(res, measure, time, truth):
    import matplotlib.pyplot as plt

    ax = F.plot_forest(res, measure, time=time)
    assert ax.get_xscale() == "linear"
    assert {x for _, x, _ in _ticks(ax)} == {truth}
    assert "months" in ax.get_xlabel()  # the spec's time unit on the axis
    plt.close(ax.figure)


def test_forest_legacy_truth_line():
    """A results.json from before per-estimand truths (no truth in its estimands) keeps one dashed truth line."""
    import copy

    import matplotlib.pyplot as plt

    old = copy.deepcopy(make_result())
    for r in old.records:
        for e in r.estimands.values():
            e.pop("truth", None)
    ax = F.plot_forest(old)
    xs = [l.get_xdata()[0] for l in ax.get_lines() if l.get_linestyle() == "--" and len(l.get_xdata())]
    assert 0.7 in xs and _ticks(ax) == []
    plt.close(ax.figure)


def test_design_colours_are_fixed():
    assert F.design_color("landmark") == F.DESIGN_COLORS["landmark"]
    assert F.design_color("my_plugin") == F.design_color("my_plugin")  # stable for an unknown design
    assert len(set(F.DESIGN_COLORS.values())) == len(F.DESIGN_COLORS)


def test_curves_love_sweep(res):
    import matplotlib.pyplot as plt

    ax = F.plot_curves(res)
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"No surgery", "Surgery"}
    assert any(t.get_text() == "Number at risk" for t in ax.texts)
    ax2 = F.plot_curves(res, strategy="iptw(ATE)")
    assert any(t.get_text() == "Weighted number at risk (rounded)" for t in ax2.texts)
    ax3 = F.plot_love(res)
    assert [t.get_text() for t in ax3.get_yticklabels()][0] == "Oligometastases"  # readable names
    ax4 = F.plot_landmark_sweep(res)
    assert {t.get_text() for t in ax4.get_legend().get_texts()} >= {"none", "iptw"}
    for a in (ax, ax2, ax3, ax4):
        plt.close(a.figure)


def test_unknown_strategy(res):
    with pytest.raises(SpecError, match=r"^no strategy 'nope' for outcome 'os'; strategies: naive, paper"):
        F.plot_curves(res, strategy="nope")


def test_helpers(res):
    assert F.truth_value(res, "survival_difference", 12) == 0.06
    assert F.truth_value(res, "hr") == 0.7
    assert F.truth_value(res, "survival_difference", 36) is None
    rec = next(r for r in res.records if r.strategy == "landmark(6)")
    assert F.landmark_of(rec) == 6.0
    pubs = F.published_estimates(res)
    assert [p["estimate"] for p in pubs] == [0.188, 0.195]


def test_truth_applies_only_to_its_outcome():
    from causal_hcc.report.figures import truth_value
    from report_support import make_result

    res = make_result(truth=True)
    res.truth = {"outcome": "os", "hr": 0.98}
    assert truth_value(res, "hr", outcome="os") == 0.98
    assert truth_value(res, "hr", outcome="pfs") is None
