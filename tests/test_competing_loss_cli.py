"""A spec with ``competing:`` and ``roles.censored`` (loss to follow-up) runs end to end from the CLI: the
competing-risks measures of every design are loss-weighted (diagnostics, notes, estimand), and no warning says
that the loss weights are not applied (issues 19 item 3(d), 21)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "outcome"))

from competing_loss_sim import simulate  # noqa: E402

from causal_hcc.cli import app  # noqa: E402

SPEC = """\
study: competing-loss
data: {{path: {data}}}
visits: {{path: {visits}, id: id, time: month, columns: [L]}}
roles: {{id: id, time: time, event: cause, treatment: A, censored: lost}}
competing: [2]
confounders: [L0]
time_varying_confounders: [L]
strategies:
  - naive
  - {{name: clone_censor, grace: 3}}
  - {{design: sequential_trials, analysis: per_protocol, grid: 2, window: 4}}
estimands: {{survival_at: [12]}}
bootstrap: {{replicates: 0}}
report: {{min_cell: 0}}
"""


def test_cli_competing_events_with_loss_to_follow_up(tmp_path):
    pat, vis = simulate(600, 3)
    # the treated start at a random time in the first 6 months (untreated when follow-up ends before)
    rng = np.random.default_rng(4)
    t_a = np.where(pat.A == 1, rng.uniform(0, 6, len(pat)).round(2), np.nan)
    started = t_a < pat.time
    pat = pat.assign(A=started.astype(int), t_A=np.where(started, t_a, np.nan))
    data, visits = tmp_path / "cohort.csv", tmp_path / "visits.csv"
    pat.to_csv(data, index=False)
    vis.to_csv(visits, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(data=data, visits=visits).replace(
        "treatment: A,", "treatment: A, treatment_time: t_A,"))
    before = data.read_bytes(), visits.read_bytes()
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(spec), "--output", str(out), "--quiet", "--format", "md"])
    assert r.exit_code == 0, r.output
    assert (data.read_bytes(), visits.read_bytes()) == before
    res = json.loads((out / "results.json").read_text())
    alltext = json.dumps(res)
    assert "not applied" not in alltext
    est = pd.read_csv(out / "estimates.csv")
    recs = [x for x in res["records"] if x["outcome"] == "os"]
    assert {x["strategy"] for x in recs} == set(est.strategy)
    for rec in recs:
        assert rec["error"] is None, rec
        assert rec["diagnostics"]["loss_weights"]["lost_to_follow_up"] == int(pat.lost.sum())
        assert any(n.startswith("loss-to-follow-up (IPC) weights") for n in rec["notes"])
        for e in rec["estimands"].values():
            assert e["params"]["loss_to_follow_up"] == "ipcw"
        fg = [n for n in rec["notes"] if n.startswith("subdistribution HR")]
        assert fg and "real censoring only" in fg[0] and "unstabilised" in fg[0], rec["strategy"]
    assert set(est.measure) == {"cause_specific_hr", "subdistribution_hr", "cif_difference", "cif_ratio"}
    assert est.estimate.notna().all()
