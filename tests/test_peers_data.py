"""The peers' example data (pySEQTarget's SEQdata, TrialEmulation's data_censored and trial_example) run from the CLI.

The person-period reading is checked against a plain pandas computation of the same rules on the same
files (follow-up, events, first treated period, eligibility end, switch-back counts).
"""
from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from causal_hcc.cli import app  # noqa: E402
from causal_hcc.config import load_spec  # noqa: E402
from causal_hcc.pipeline import check  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs", "peers")
DATA = os.path.join(ROOT, "tests", "data", "peers")

PEERS = {
    # config: (file, id, period, outcome, treatment, eligible, patients, person-periods)
    "pyseqtarget.yaml": ("SEQdata.csv.gz", "ID", "time", "outcome", "tx_init", "eligible", 300, 12_180),
    "trialemulation_censored.yaml": ("data_censored.csv.gz", "id", "period", "outcome", "treatment", "eligible",
                                     89, 725),
    "trialemulation_example.yaml": ("trial_example.csv.gz", "id", "period", "outcome", "treatment", "eligible",
                                    503, 48_400),
}


def expected(file, id_, period, outcome, treatment, eligible):
    """The reading rules of docs/timeline.md, patient by patient in plain pandas."""
    d = pd.read_csv(os.path.join(DATA, file)).sort_values([id_, period], kind="stable")
    out = []
    for pid, g in d.groupby(id_, sort=False):
        y = g[outcome].to_numpy()
        stop = int(np.argmax(y == 1)) + 1 if (y == 1).any() else len(g)
        g = g.iloc[:stop]
        a = g[treatment].to_numpy()
        e = g[eligible].to_numpy()
        tt = float(np.argmax(a == 1)) if (a == 1).any() else np.nan
        out.append({"id": pid, "fu": float(stop), "event": int((y == 1).any()), "tt": tt,
                    "elig_end": float(np.argmax(e == 0)) if (e == 0).any() else np.inf,
                    "switch_back": bool(np.isfinite(tt) and (a[int(tt):] == 0).any())})
    return pd.DataFrame(out).set_index("id")


@pytest.mark.parametrize("config", sorted(PEERS))
def test_peer_data_read_by_the_rules(config):
    file, id_, period, outcome, treatment, eligible, n, rows = PEERS[config]
    spec = load_spec(os.path.join(CONFIGS, config))
    cohort, strategies = check(spec)
    assert cohort.n == n and cohort.timeline.info["periods_read"] == rows
    exp = expected(file, id_, period, outcome, treatment, eligible).loc[cohort.ids]
    np.testing.assert_array_equal(cohort.time(), exp.fu)
    np.testing.assert_array_equal(cohort.event(), exp.event)
    np.testing.assert_array_equal(cohort.treatment_time, exp.tt)
    np.testing.assert_array_equal(cohort.timeline.eligibility_end, exp.elig_end)
    assert cohort.timeline.info["switched_back"] == int(exp.switch_back.sum())
    assert len(cohort.timeline.columns) == len(spec.time_varying)


def test_pyseqtarget_example_runs_from_the_cli(tmp_path):
    out = tmp_path / "seq"
    res = CliRunner().invoke(app, ["run", os.path.join(CONFIGS, "pyseqtarget.yaml"), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    est = pd.read_csv(out / "estimates.csv")
    assert {"naive", "time_varying", "sequential_trials(grid=1)", "sequential_trials(grid=1,pp)",
            "clone_censor(3)"} <= set(est.strategy)
    assert np.isfinite(est[est.measure == "hr"].estimate).all()
    results = json.loads((out / "results.json").read_text())
    assert results["cohort"]["timeline"]["switched_back"] == 213
    assert any("switch back" in w for w in results["warnings"])


@pytest.mark.parametrize("config", ["trialemulation_censored.yaml", "trialemulation_example.yaml"])
def test_trialemulation_examples_run_from_the_cli(tmp_path, config):
    res = CliRunner().invoke(app, ["run", os.path.join(CONFIGS, config), "-o", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    est = pd.read_csv(tmp_path / "o" / "estimates.csv")
    assert np.isfinite(est[est.measure == "hr"].estimate).all()


def test_pooled_logistic_separation_is_named_on_data_censored():
    """data_censored, per protocol: no control has the outcome, so the pooled logistic outcome model has an infinite
    MLE. The message named 'a term without variation or collinear terms'; it now says separation, where."""
    import yaml

    from causal_hcc.errors import EstimationError
    from causal_hcc.pipeline import run_analysis

    with open(os.path.join(CONFIGS, "trialemulation_censored.yaml"), encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    raw["data"].pop("path")
    raw["strategies"] = [{"design": "sequential_trials", "grid": 1, "window": 10, "analysis": "per_protocol",
                          "adjustment": "multivariable", "outcome_model": "pooled_logistic"}]
    with pytest.raises(EstimationError) as e:
        run_analysis(raw, data=pd.read_csv(os.path.join(DATA, "data_censored.csv.gz")))
    assert "complete separation (no events where 'treatment' = 0)" in str(e.value)
    assert "penalty: firth" in str(e.value)
