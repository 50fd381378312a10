"""run_analysis(spec, data=df), the result's compact display and per-strategy warnings, and validate."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from causal_hcc.cli import app  # noqa: E402
from causal_hcc.config import parse_spec  # noqa: E402
from causal_hcc.errors import DataError, SpecError  # noqa: E402
from causal_hcc.pipeline import run_analysis  # noqa: E402
from tests.user_data import make_user_frame  # noqa: E402

SPEC = {
    "study": "in-memory",
    "roles": {"id": "patient_no", "time": "fu_months", "event": "died", "treatment": "operated",
              "treatment_time": "months_to_op"},
    "confounders": ["fit_pt", "stage", "age_y"],
    "strategies": ["naive", {"name": "iptw", "estimand": "ATE"}, {"name": "landmark", "landmark": 2}],
    "estimands": {"survival_at": [12]},
    "sensitivity": {"evalues": False},
}


@pytest.fixture(scope="module")
def result():
    return run_analysis(SPEC, data=make_user_frame())


def test_in_memory_data_needs_no_path_and_is_not_modified():
    df = make_user_frame()
    before = df.copy()
    res = run_analysis(parse_spec(SPEC), data=df)
    pd.testing.assert_frame_equal(df, before)
    assert res.provenance["data_source"] == {"source": "DataFrame"}
    assert {"naive", "iptw(ATE)", "landmark(2)"} == set(res.to_frame().strategy)


def test_in_memory_matches_the_same_data_from_a_file(tmp_path, result):
    df = make_user_frame()
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = parse_spec({**SPEC, "data": {"path": "d.csv"}}, base_dir=str(tmp_path))
    from_file = run_analysis(spec).to_frame()
    pd.testing.assert_frame_equal(from_file, result.to_frame())


@pytest.mark.parametrize("spec, data, exc, message", [
    ({**SPEC, "data": {"path": "x.csv"}}, make_user_frame(), SpecError,
     "spec: data.path is set and data= was passed too; give one of them"),
    (SPEC, None, SpecError, "spec: data.path is required (a file or 'twin'), unless the data are passed in "
                            "memory with run_analysis(spec, data=df)"),
    (SPEC, {"a": [1]}, DataError, "data must be a pandas DataFrame, got dict"),
    ({**SPEC, "roles": {**SPEC["roles"], "time": "fu_month"}}, make_user_frame(), DataError,
     "column 'fu_month' not found (did you mean 'fu_months'?); columns: patient_no, fu_months, died, operated, "
     "months_to_op, fit_pt, stage, age_y, hospital"),
])
def test_in_memory_errors(spec, data, exc, message):
    with pytest.raises(exc) as e:
        run_analysis(spec, data=data)
    assert str(e.value) == message


def test_repr_is_compact(result):
    text = repr(result)
    lines = text.splitlines()
    assert lines[0] == ("AnalysisResult(study='in-memory', 3 strategies x 1 outcome, "
                        f"{len(result.estimates)} estimates, n=120 ({result.cohort['n_treated']} treated), "
                        f"{len(result.warnings)} run warnings in .warnings, "
                        f"{sum(len(r.warnings) for r in result.records)} strategy warnings in .warnings_for(label))")
    assert len(lines) == 4 and all("HR" in ln for ln in lines[1:])
    assert "confounders" not in text and "roles" not in text  # not the spec
    html = result._repr_html_()
    assert html.startswith("<table><caption>in-memory: n = 120") and html.count("<tr>") == 4


def test_warnings_for_a_strategy(result):
    for r in result.records:
        assert result.warnings_for(r.strategy) == r.warnings
        assert result.warnings_for(r.strategy, "os") == r.warnings
    with pytest.raises(SpecError) as e:
        result.warnings_for("ipwt(ATE)")
    assert str(e.value) == ("no strategy labelled 'ipwt(ATE)' (did you mean 'iptw(ATE)'?); "
                            "strategies: naive, iptw(ATE), landmark(2)")
    with pytest.raises(SpecError) as e:
        result.warnings_for("naive", "pfs")
    assert str(e.value) == "strategy 'naive' has no outcome 'pfs'; outcomes: os"


def test_plot_functions_return_axes(result):
    """Presentation takes the result as its argument (results.py imports nothing from the report)."""
    from matplotlib.axes import Axes

    from causal_hcc.report import plot_curves, plot_forest, plot_love

    assert isinstance(plot_forest(result), Axes)
    assert isinstance(plot_curves(result, "naive"), Axes)
    assert isinstance(plot_love(result, "iptw(ATE)"), Axes)


# --------------------------------------------------------------------------
# validate = everything run checks before fitting
# --------------------------------------------------------------------------
def _spec_file(tmp_path, strategies, roles=None, extra=""):
    import yaml

    make_user_frame().to_csv(tmp_path / "d.csv", index=False)
    spec = {**SPEC, "data": {"path": "d.csv"}, "strategies": strategies}
    if roles is not None:
        spec["roles"] = roles
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec) + extra)
    return str(tmp_path / "s.yaml")


NO_TIMING = {k: v for k, v in SPEC["roles"].items() if k != "treatment_time"}


@pytest.mark.parametrize("strategies, roles, message", [
    ([{"name": "landmark", "landmark": 3}], NO_TIMING,
     "error: strategy 'landmark(3)': design 'landmark' needs the role 'treatment_time' (time zero -> treatment) "
     "or 'treatment_date'; the roles give neither"),
    (["time_varying"], NO_TIMING,
     "error: strategy 'time_varying': design 'time_varying' needs the role 'treatment_time' (time zero -> "
     "treatment) or 'treatment_date'; the roles give neither"),
    (["sequential_trials"], NO_TIMING,
     "error: strategy 'sequential_trials': design 'sequential_trials' needs the role 'treatment_time' (time zero "
     "-> treatment) or 'treatment_date'; the roles give neither"),
    ([{"name": "clone_censor", "grace": 3}], NO_TIMING,
     "error: strategy 'clone_censor(3)': design 'clone_censor' needs the role 'treatment_time' (time zero -> "
     "treatment) or 'treatment_date'; the roles give neither"),
    ([{"name": "landmark", "landmark": 3, "require_event_free": "pfs"}], None,
     "error: strategy 'landmark(3,pfs-free)': option 'require_event_free' names 'pfs', which is neither an "
     "outcome (os) nor a column of the data"),
    ([{"name": "iptw", "score_column": "stage"}], None,
     "error: strategy 'iptw(ATE)': option 'score_column': column 'stage' must be numeric; found 'III' at data "
     "rows 1, 2, 3 (+117 more)"),
    ([{"name": "iptw", "score_column": "fit_pt"}], None,
     "error: strategy 'iptw(ATE)': option 'score_column': column 'fit_pt' must hold propensity scores strictly "
     "between 0 and 1; found 0 at data rows 1, 2, 3 (+117 more)"),
    ([{"name": "iptw", "weight_column": "wt"}], None,
     "error: strategy 'iptw(ATE)': option 'weight_column': column 'wt' not found"),
    ([{"name": "psm", "exact": ["stag"]}], None,
     "error: strategy 'psm(1:1, caliper 0.2)': option 'exact': 'stag' is not a confounder of this strategy (did you mean "
     "'stage'?); confounders: fit_pt, stage, age_y"),
])
def test_validate_exits_2_for_what_run_would_refuse(tmp_path, strategies, roles, message):
    path = _spec_file(tmp_path, strategies, roles)
    r = CliRunner().invoke(app, ["validate", path])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == message
    r = CliRunner().invoke(app, ["run", path, "--output", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 2 and r.output.strip() == message
    assert not (tmp_path / "out").exists()


def test_validate_ok_names_the_strategies(tmp_path):
    r = CliRunner().invoke(app, ["validate", _spec_file(tmp_path, ["naive", "time_varying"])])
    assert r.exit_code == 0
    assert r.output.startswith("ok: 120 patients (")


@pytest.mark.parametrize("extra, message", [
    ("sensitivity: {refuters: [placebo], refuter_strategy: iptw}\n",
     "error: sensitivity.refuter_strategy: no strategy labelled 'iptw'"),
    ("published: missing.yaml\n", "error: published tables 'missing.yaml' not found"),
    ("sensitivity: {dag: 'digraph {fit_pt -> operated; operated -> death}'}\n",
     "error: sensitivity.dag: outcome 'died' is not a node of the graph; nodes: fit_pt, operated, death"),
])
def test_validate_checks_sensitivity_and_published_before_fitting(tmp_path, extra, message):
    import yaml

    path = _spec_file(tmp_path, ["naive"])
    spec = yaml.safe_load(open(path))
    spec.pop("sensitivity")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec) + extra)
    r = CliRunner().invoke(app, ["validate", path])
    assert r.exit_code == 2 and r.output.strip() == message


def test_multiple_imputation_sees_codes_and_formula_variables():
    import numpy as np

    df = make_user_frame()
    df.loc[[3, 10, 40], "fit_pt"] = 9              # a code for missing, recoded before imputation
    df.loc[[5, 50, 70], "age_y"] = np.nan          # the variable of a spline term
    df["died"] = df["died"].map({1: "dead", 0: "alive"})
    spec = {**SPEC, "confounders": ["fit_pt", "stage", "rcs(age_y, 3)"], "strategies": ["naive", "multivariable"],
            "codes": {"fit_pt": {9: None}, "died": {"dead": 1, "alive": 0}},
            "missing": {"method": "mice", "m": 3, "seed": 1, "iterations": 2}}
    res = run_analysis(spec, data=df)
    assert res.cohort["missing"]["imputed_columns"] == ["fit_pt", "age_y"]
    assert "age_y'" in res.cohort["confounder_columns"]
    row = res.to_frame().query("strategy == 'multivariable' and measure == 'hr'").iloc[0]
    assert row.variance_method == "rubin" and np.isfinite(row.estimate) and row.n == 120
