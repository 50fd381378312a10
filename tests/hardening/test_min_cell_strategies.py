"""Issue 22 item 0: every registered strategy on real-looking (non-twin) data with the default min_cell.

Suppressed counts are display values ("<5"), never numbers to compute with: a
PSM that leaves 1-4 treated patients unmatched, or an IPTW with 1-4
propensity scores near 0 or 1, must give a report (and `report DIR` must
rebuild it), not an internal error.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from causal_hcc import strategies as reg
from causal_hcc.disclosure import count_positive, is_suppressed

from harden_support import USER_SPEC, cli, make_user_frame

reg.load()
ALLOWED = [(d, a) for d in sorted(reg.DESIGNS) for a in sorted(reg.ADJUSTMENTS)
           if not (reg.DESIGNS[d].incompatible.get(a) or reg.ADJUSTMENTS[a].incompatible.get(d))]


def _frame():
    """A user cohort (n = 300) with a rare marker carried by 3 treated patients only.

    The marker separates treatment for those 3 patients: their propensity
    scores are ~1 (IPTW: 3 near 0 or 1), and PSM with a wide caliper leaves
    1-4 treated patients unmatched.
    """
    df = make_user_frame(n=300, seed=5)
    rare = np.zeros(len(df), int)
    rare[np.flatnonzero(df["operated"].to_numpy() == 1)[:3]] = 1
    df["rare_mut"] = rare
    return df


@pytest.fixture(scope="module")
def run_all(tmp_path_factory):
    root = tmp_path_factory.mktemp("allstrat")
    data = root / "cohort.csv"
    _frame().to_csv(data, index=False)
    entries = ["  - {name: psm, caliper: 1.0}", "  - iptw"] + [
        f"  - {{design: {d}, adjustment: {a}}}" for d, a in ALLOWED]
    spec = (USER_SPEC.format(path=data)
            .replace("confounders: [fit_pt, stage, age_y]", "confounders: [fit_pt, stage, age_y, rare_mut]")
            .replace("  - paper\n  - naive\n  - multivariable\n", "\n".join(entries) + "\n")
            .replace("replicates: 20", "replicates: 0"))
    assert "min_cell" not in spec  # the default (5 for data that are not the twin)
    (root / "spec.yaml").write_text(spec)
    out = root / "out"
    r = cli("run", root / "spec.yaml", "--output", out, "-q")
    return root, out, r


def test_every_strategy_runs_with_the_default_min_cell(run_all):
    root, out, r = run_all
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["disclosure"]["min_cell"] == 5
    labels = {x["strategy"] for x in res["records"]}
    assert len(labels) >= len(ALLOWED)
    failed = [(x["strategy"], x["error"]) for x in res["records"] if x["error"]]
    assert not failed, failed


def test_small_unmatched_and_extreme_scores_are_display_values(run_all):
    root, out, r = run_all
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    psm = next(x for x in res["records"] if x["strategy"].startswith("psm(1:1, caliper 1.0)"))
    iptw = next(x for x in res["records"] if x["strategy"] == "iptw(ATE)")
    unmatched = psm["diagnostics"]["matching"]["unmatched_treated"]
    near = iptw["diagnostics"]["propensity"]["n_near_0_or_1"]
    assert is_suppressed(unmatched) and is_suppressed(near), (unmatched, near)  # 1-4: "<5"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Positivity: propensity scores near 0 or 1 in" in md
    assert "Unmatched treated patients (" in md


def test_report_rebuild_from_the_disclosed_json(run_all):
    root, out, r = run_all
    assert r.exit_code == 0, r.stderr
    r2 = cli("report", out)
    assert r2.exit_code == 0, r2.stderr
    assert os.path.exists(out / "report.html")


@pytest.mark.parametrize("value, positive", [("<5", True), ("suppressed", True), (3, True), (0, False),
                                             (None, False), (float("nan"), False), ("abc", False), (True, False)])
def test_count_positive(value, positive):
    assert count_positive(value) is positive
