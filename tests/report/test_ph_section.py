"""The cox.zph table in the report and the scaled-Schoenfeld figure."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from causal_hcc.adjust.multivariable import Multivariable  # noqa: E402
from causal_hcc.base import DesignData, Targets  # noqa: E402
from causal_hcc.core.cox import coxph  # noqa: E402
from causal_hcc.core.zph import cox_zph  # noqa: E402
from causal_hcc.errors import SpecError  # noqa: E402
from causal_hcc.report import figures as F  # noqa: E402
from causal_hcc.report._fmt import sig  # noqa: E402
from causal_hcc.report.render import build_context, render_html, render_markdown  # noqa: E402
from causal_hcc.results import AnalysisResult, StrategyRecord  # noqa: E402
from tests.core._fixtures import FIXTURES, dataset  # noqa: E402

REF = json.loads((FIXTURES / "core_zph.json").read_text())["veteran_karno60"]


@pytest.fixture(scope="module")
def record():
    df = dataset("veteran")
    n = len(df)
    data = DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=df["time"].to_numpy(float),
                      event=df["status"].to_numpy(float), treatment=(df["karno"] >= 60).to_numpy(np.int8),
                      X=df[["trt2"]].to_numpy(float), confounders=["trt2"], patient=np.arange(n),
                      unit=np.arange(n), weight=np.ones(n))
    out = Multivariable().fit(data, Targets()).output_
    return StrategyRecord("multivariable", "baseline", "multivariable", "os", out.estimates, None,
                          out.diagnostics, out.warnings, out.notes)


def test_report_table_lists_the_treatment_p_value(record):
    res = AnalysisResult(study="zph", spec={}, records=[record])
    ctx = build_context(res)
    p, gp = sig(REF["table"]["p"][0], 3), sig(REF["table"]["p"][2], 3)
    assert ctx["diagnostics"]["ph_tables"] == [{"outcome": "os", "rows": [{
        "strategy": "multivariable", "chisq": "16.04", "p": p, "global_p": gp, "flag": "PH doubtful"}]}]
    assert len(ctx["diagnostics"]["schoenfeld"]) == 1  # the flagged fit's beta(t) is drawn
    md = render_markdown(ctx)
    assert "### Proportional hazards (cox.zph)" in md
    assert f"| multivariable | 16.04 | {p} |" in md
    assert 'id="ph-test"' in render_html(ctx)


def test_figure_from_a_record_draws_the_stored_smooth(record):
    import matplotlib.pyplot as plt

    ax = F.plot_schoenfeld(record)
    beta = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(beta, REF["smooth"]["beta"], rtol=1e-6)
    assert ax.get_title().startswith("Schoenfeld residuals: multivariable [os], p = ")
    res = AnalysisResult(study="zph", spec={}, records=[record])
    ax2 = F.plot_schoenfeld(res, strategy="multivariable")
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), beta)
    plt.close(ax.figure)
    plt.close(ax2.figure)


def test_figure_from_a_zph_result_draws_the_residuals():
    import matplotlib.pyplot as plt

    df = dataset("veteran")
    X = np.column_stack([(df["karno"] >= 60).astype(float), df["trt2"]])
    fit = coxph(df["time"], df["status"], X, names=["karno60", "trt2"])
    z = cox_zph(fit, df["time"], df["status"], X)
    ax = F.plot_schoenfeld(z, "karno60")
    offsets = ax.collections[0].get_offsets()
    assert offsets.shape[0] == int(df["status"].sum())
    np.testing.assert_allclose(np.asarray(offsets)[:, 1], np.array(REF["y"])[:, 0], rtol=1e-6)
    plt.close(ax.figure)


def test_figure_errors(record):
    with pytest.raises(SpecError, match=r"^plot_schoenfeld: results store the smooth of the treatment term only, "
                                        r"got 'trt2'$"):
        F.plot_schoenfeld(record, "trt2")
    bare = StrategyRecord("naive", "baseline", "none", "os", [], None, {}, [], [])
    with pytest.raises(SpecError, match=r"^strategy 'naive' has no proportional-hazards smooth for the treatment "
                                        r"term$"):
        F.plot_schoenfeld(bare)
