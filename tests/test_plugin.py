"""The plug-in example of docs/plugins.md, run exactly as printed there; `causal-hcc strategies` without repeats."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from causal_hcc import strategies as registry
from causal_hcc.core.cox import coxph
from causal_hcc.pipeline import run_analysis
from tests.user_data import make_user_frame

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "plugin_example" / "my_strategies.py"


def _readme_block(marker: str) -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    m = re.search(r"```" + marker + r"\n(.*?)```", text, re.S)
    assert m, f"docs/plugins.md has no ```{marker} block"
    return m.group(1)


def test_readme_shows_the_tested_plugin_file():
    assert _readme_block("python\n# my_strategies.py") == EXAMPLE.read_text()


def test_readme_shows_the_entry_point():
    block = _readme_block("toml")
    assert '[project.entry-points."causal_hcc.strategies"]' in block
    assert 'stratified_cox = "my_strategies:register"' in block


class _EntryPoint:
    name, value = "stratified_cox", "my_strategies:register"

    def load(self):
        return importlib.import_module("my_strategies").register


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EntryPoint()] if group == registry.ENTRY_POINT_GROUP
                        else [])
    monkeypatch.setattr(registry, "_loaded", False)
    yield
    registry.ADJUSTMENTS.pop("stratified_cox", None)
    sys.modules.pop("my_strategies", None)


def test_plugin_runs_from_a_spec(plugin):
    df = make_user_frame()
    spec = {"study": "plug-in", "roles": {"id": "patient_no", "time": "fu_months", "event": "died",
                                          "treatment": "operated"},
            "confounders": ["fit_pt", "age_y"], "strategies": [{"name": "stratified_cox", "by": "fit_pt"}],
            "sensitivity": {"evalues": False}}
    res = run_analysis(spec, data=df)
    row = res.to_frame().iloc[0]
    assert (row.strategy, row.design, row.adjustment, row.measure) == ("stratified_cox", "baseline",
                                                                       "stratified_cox", "hr")
    fit = coxph(df.fu_months.to_numpy(), df.died.to_numpy(), df[["operated"]].to_numpy(float),
                strata=df.fit_pt.to_numpy())
    assert row.estimate == pytest.approx(np.exp(fit.coef[0]), rel=1e-12)
    # (in-memory data are not the twin: min_cell 5, counts written rounded to the nearest 5)
    assert row.n == 120 and row.n_treated == 5 * round(int(df.operated.sum()) / 5)


def test_plugin_options_are_checked_when_the_spec_loads(plugin):
    from causal_hcc.errors import SpecError

    with pytest.raises(SpecError) as e:
        registry.resolve({"name": "stratified_cox", "bye": "fit_pt"})
    assert str(e.value) == ("strategies: strategy 'stratified_cox' has no option 'bye' (did you mean 'by'?); "
                            "valid options: bootstrap_ci, by, confounders, label, variance")


def test_strategies_listing_has_no_repeated_paragraphs():
    from typer.testing import CliRunner

    from causal_hcc.cli import app

    out = CliRunner().invoke(app, ["strategies"]).output.splitlines()
    long_lines = [ln for ln in out if len(ln) > 80]
    assert len(long_lines) == len(set(long_lines))
    assert "      learner (str, default 'logistic'): as for aiptw" in out
