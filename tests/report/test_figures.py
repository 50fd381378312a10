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


def test_forest_hr(res):
    import matplotlib.pyplot as plt

    ax = res.plot_forest()
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:2] == ["univariate (Table 3) (paper)", "multivariable (Table 4) (paper)"]
    assert "landmark(3)" in labels
    ticks = [l for l in ax.get_lines() if l.get_marker() == "|" and len(l.get_xdata())]
    assert {l.get_xdata()[0] for l in ticks} == {0.7}  # each row's own truth
    assert {l.get_color() for l in ticks} == {"#117a65", "#9a7d0a"}  # own and (baseline rows) claimed
    assert len(ticks) == len(labels) - 2  # one per strategy row, none on the paper's diamonds
    plt.close(ax.figure)


@pytest.mark.parametrize("measure, time, truth", [("survival_difference", 24.0, 0.08), ("rmst_difference", None, 1.1)])
def test_forest_differences(res, measure, time, truth):
    import matplotlib.pyplot as plt

    ax = F.plot_forest(res, measure, time=time)
    assert ax.get_xscale() == "linear"
    xs = [l.get_xdata()[0] for l in ax.get_lines() if l.get_marker() == "|" and len(l.get_xdata())]
    assert truth in xs
    plt.close(ax.figure)


def test_curves_love_sweep(res):
    import matplotlib.pyplot as plt

    ax = res.plot_curves()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"untreated", "treated"}
    assert any(t.get_text() == "number at risk" for t in ax.texts)
    ax2 = res.plot_curves(strategy="iptw(ATE)")
    assert any(t.get_text() == "weighted number at risk" for t in ax2.texts)
    ax3 = res.plot_love()
    assert [t.get_text() for t in ax3.get_yticklabels()][0] == "oligometastases"
    ax4 = F.plot_landmark_sweep(res)
    assert {t.get_text() for t in ax4.get_legend().get_texts()} >= {"none", "iptw"}
    for a in (ax, ax2, ax3, ax4):
        plt.close(a.figure)


def test_unknown_strategy(res):
    with pytest.raises(SpecError, match=r"^no strategy 'nope' for outcome 'os'; strategies: naive, paper"):
        res.plot_curves(strategy="nope")


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
