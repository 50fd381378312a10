"""Competing events end to end: the spec keys, bad input (exit 2, one line, no output), CLI run and report rebuild."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from causal_hcc.cli import app
from causal_hcc.config import parse_spec
from causal_hcc.errors import SpecError
from causal_hcc.results import ESTIMATE_COLUMNS, AnalysisResult
from competing_data import make_competing_frame

runner = CliRunner()

SPEC = """\
study: competing-demo
data:
  path: {path}
roles:
  id: patient_no
  time: fu_months
  event: cause
  treatment: operated
  treatment_time: months_to_op
{competing}
outcomes:
  death: {{time: fu_months, event: died}}
{codes}
confounders: [fit_pt, stage, age_y]
strategies:
  - naive
  - {{name: iptw, estimand: ATE}}
  - {{name: landmark, landmark: 3}}
  - gformula
estimands: {{survival_at: [12, 24]}}
bootstrap: {{replicates: 10, seed: 1}}
report: {{min_cell: 0}}
"""


def _write(tmp_path, competing="competing: [2]", codes="", frame=None):
    frame = make_competing_frame(n=200, seed=3) if frame is None else frame
    data = tmp_path / "cohort.csv"
    frame.to_csv(data, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(path=data, competing=competing, codes=codes))
    return spec, data, tmp_path / "out"


def run(*args):
    return runner.invoke(app, list(args))


def test_cli_run_writes_the_competing_measures_and_rebuilds_the_report(tmp_path):
    spec, data, out = _write(tmp_path)
    before = data.read_bytes()
    r = run("run", str(spec), "--output", str(out), "--quiet", "--format", "html,md")
    assert r.exit_code == 0, r.output
    est = pd.read_csv(out / "estimates.csv")
    assert tuple(est.columns) == ESTIMATE_COLUMNS
    os_ = est[est.outcome == "os"]
    assert set(os_.measure) == {"cause_specific_hr", "subdistribution_hr", "cif_difference", "cif_ratio"}
    assert set(est[est.outcome == "death"].measure) >= {"hr", "survival_difference"}
    assert sorted(os_[(os_.strategy == "naive") & (os_.measure == "cif_difference")]["time"]) == [12.0, 24.0]
    assert all(os_.estimand.str.contains(r"\|cause1:"))
    res = json.loads((out / "results.json").read_text())
    rec = next(x for x in res["records"] if x["strategy"] == "naive" and x["outcome"] == "os")
    assert rec["curves"]["kind"] == "cumulative_incidence"
    html = (out / "report.html").read_text()
    assert 'id="competing"' in html and "Cumulative incidence" in html
    assert data.read_bytes() == before
    # the report rebuilt from the folder is the same section by section (curves read back with their kind)
    loaded = AnalysisResult.load(str(out))
    lrec = next(x for x in loaded.records if x.strategy == "naive" and x.outcome == "os")
    assert lrec.curves.kind == "cumulative_incidence"
    r2 = run("report", str(out))
    assert r2.exit_code == 0, r2.output
    assert 'id="competing"' in (out / "report.html").read_text()


def test_labels_mapped_by_codes(tmp_path):
    frame = make_competing_frame(n=200, seed=3, labels=True)
    spec, _, out = _write(tmp_path, frame=frame,
                          codes='codes: {cause: {alive: 0, cancer: 1, "liver failure": 2}}')
    r = run("validate", str(spec))
    assert r.exit_code == 0, r.output


BAD = [
    ("competing: [0]", None,
     "competing: 0 cannot be a competing event code (0 = censored, 1 = the event of interest); "
     "competing events are coded 2, 3, ..."),
    ("competing: [2, 1]", None,
     "competing: 1 cannot be a competing event code (0 = censored, 1 = the event of interest); "
     "competing events are coded 2, 3, ..."),
    ("competing: [2, 3]", None,
     "{data}: column 'cause' (event): competing event code 3 declared in 'competing' but never "
     "found in the data"),
    ("competing: [3]", None,
     "{data}: column 'cause' (event) must be 0 (censored), 1 (the event) or a declared competing "
     "code (3); found 2 at data rows {rows2}; declare it in 'competing'"),
    ("", None,
     "{data}: column 'cause' (event) must be 0 or 1; found 2 at data rows {rows2}"),
    ("competing: [2, 2]", None, "competing: code 2 is listed twice"),
    ("competing: [two]", None,
     "competing: competing event codes must be whole numbers (2, 3, ...), got 'two'"),
]


@pytest.mark.parametrize("competing, _, message", BAD, ids=[b[0] or "undeclared" for b in BAD])
def test_bad_competing_input_exits_2_with_one_line(tmp_path, competing, _, message):
    frame = make_competing_frame(n=200, seed=3)
    spec, data, out = _write(tmp_path, competing=competing, frame=frame)
    pos = (frame["cause"] == 2).to_numpy().nonzero()[0]
    rows2 = ", ".join(str(i + 1) for i in pos[:3]) + (f" (+{len(pos) - 3} more)" if len(pos) > 3 else "")
    for cmd in (("run", str(spec), "--output", str(out), "--quiet"), ("validate", str(spec))):
        r = run(*cmd)
        assert r.exit_code == 2, r.output
        line = r.stderr.strip()
        assert "\n" not in line and "Traceback" not in r.output
        assert line == "error: " + message.format(data=data.name, rows2=rows2)
        assert not out.exists()


def test_extra_outcome_competing_key():
    base = {"study": "x", "roles": {"id": "i", "time": "t", "event": "e", "treatment": "a"}, "strategies": ["naive"]}
    s = parse_spec({**base, "outcomes": {"cancer": {"time": "t", "event": "cause", "competing": [2, 3]}}})
    assert s.outcomes["cancer"].cohort_value() == {"time": "t", "event": "cause", "competing": [2, 3]}
    with pytest.raises(SpecError) as ei:
        parse_spec({**base, "outcomes": {"cancer": {"time": "t", "event": "cause", "competing": [1]}}})
    assert str(ei.value).startswith("outcomes.cancer.competing: 1 cannot be a competing event code")


def test_multiple_imputation_pools_competing_measures_on_their_scales():
    import math

    import numpy as np

    from causal_hcc.pipeline import run_analysis

    df = make_competing_frame(200, 3)
    df.loc[df.sample(frac=0.1, random_state=1).index, "age_y"] = np.nan
    spec = {"study": "cr", "roles": {"id": "patient_no", "time": "fu_months", "event": "cause", "treatment": "operated",
                                     "treatment_time": "months_to_op"},
            "competing": [2], "confounders": ["fit_pt", "stage", "age_y"],
            "missing": {"method": "mice", "m": 3, "seed": 1},
            "strategies": [{"name": "iptw", "estimand": "ATE"}], "estimands": {"survival_at": [12]}}
    res = run_analysis(spec, data=df)
    est = {e.measure: e for e in res.estimates}
    assert set(est) == {"cause_specific_hr", "subdistribution_hr", "cif_difference", "cif_ratio"}
    assert all(e.variance_method == "rubin" for e in est.values())
    for m in ("cause_specific_hr", "subdistribution_hr", "cif_ratio"):   # pooled on the log scale
        e = est[m]
        assert math.log(e.estimate) - math.log(e.ci_lower) == pytest.approx(math.log(e.ci_upper) - math.log(e.estimate))
    d = est["cif_difference"]
    assert d.estimate - d.ci_lower == pytest.approx(d.ci_upper - d.estimate)
    assert res.records[0].curves.kind == "cumulative_incidence"


def test_docs_example_config_validates():
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "configs" / "competing_demo.yaml"
    r = run("validate", str(spec))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ok: 160 patients (45 treated), outcomes cancer_death, death")
