"""simulate and run on the twin: every row's truth with its Monte Carlo SE, primary measures, precision (issue 20)."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.base import Targets
from causal_hcc.simstudy import SIMULATION_COLUMNS, SimulationSpec, _precise_truths, simulate_study
from causal_hcc.strategies import resolve
from causal_hcc.twin import TwinParams

ROLES = {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery",
         "treatment_time": "months_to_surgery", "outcomes": {"pfs": ("pfs_months", "pfs_event")}}
CONF = ("portal_vein_invasion", "first_line_effective", "oligometastases")


def spec(*entries, twin=None) -> SimulationSpec:
    strategies = tuple(s for e in entries for s in resolve(e))
    return SimulationSpec(strategies=strategies, roles=ROLES, confounders=CONF,
                          targets=Targets(survival_at=(12.0,), rmst_tau=24.0),
                          twin=twin or TwinParams(true_hr=0.7, unmeasured_confounding=0.0, n=300))


@pytest.fixture(scope="module")
def study():
    return simulate_study(spec("naive", {"name": "iptw", "estimand": "ATO"},
                               {"name": "landmark", "landmark": 3, "require_event_free": "pfs"},
                               {"design": "time_varying", "adjustment": "multivariable", "adjust_state": "pfs"}),
                          replicates=3, seed=11)


def test_every_row_has_a_truth_with_its_mcse_or_says_why(study):
    tab = study.table
    assert tuple(tab.columns) == SIMULATION_COLUMNS
    has = tab["truth"].notna()
    assert (tab.loc[has, "truth_mcse"] >= 0).all() and (tab.loc[has, "truth_note"] == "").all()
    assert tab.loc[~has, "truth_note"].str.startswith("undefined: ").all()
    # the structural model's curves are descriptive; its PFS HR is not constant (true_hr_progression = 1)
    tv = tab[tab["strategy"] == "time_varying(pfs)+multivariable"].set_index(["outcome", "measure"])
    assert tv.loc[("os", "hr"), "truth"] == 0.7
    assert "not constant" in tv.loc[("pfs", "hr"), "truth_note"]
    # PFS and median rows have truths
    lm = tab[(tab["strategy"] == "landmark(3,pfs-free)")].set_index(["outcome", "measure", "time"])
    assert np.isfinite(lm.loc[("pfs", "hr", np.nan), "truth"]) if ("pfs", "hr", np.nan) in lm.index else True
    assert tab[(tab["outcome"] == "pfs") & tab["truth"].notna()].shape[0] >= 10
    assert tab[(tab["measure"] == "median_difference") & tab["truth"].notna()].shape[0] >= 4


def test_ratio_measures_are_judged_on_the_log_scale(study):
    tab = study.table
    rr = tab[tab["measure"] == "risk_ratio"]
    if len(rr):     # strategies report a risk ratio at each survival_at time
        assert (rr["scale"] == "log").all()
        lm = rr[(rr["strategy"] == "landmark(3,pfs-free)") & (rr["outcome"] == "os")].iloc[0]
        assert 0.8 < lm["truth"] < 1.0 and lm["truth_mcse"] > 0


def test_primary_measures_are_the_differences(study):
    tab = study.table
    assert set(tab.loc[tab["measure_role"] == "primary", "measure"]) == {"survival_difference", "rmst_difference"}
    md = study.to_markdown(plot_file=None)
    assert md.index("### Survival and RMST differences (primary)") < md.index("### Hazard ratios")
    assert "truth (MCSE)" in md


def test_baseline_ato_row_has_the_overlap_truth(study):
    hr = study.table[(study.table["measure"] == "hr") & (study.table["outcome"] == "os")].set_index("strategy")
    assert hr.loc["iptw(ATO)", "truth"] != hr.loc["naive", "truth"]
    assert study.truth_info[("iptw(ATO)", hr.loc["iptw(ATO)", "estimand"], "os", "hr", None)]["note"].endswith(
        "the overlap population, from time zero")


def test_truth_population_grows_until_its_mcse_is_a_fifth_of_the_rows(monkeypatch, study):
    """A study so precise that the default truth is too noisy: the truth is recomputed on a larger population."""
    reps = study.replicates.copy()
    ok = reps["error"] == ""
    # shrink the spread of the estimates 100-fold: the rows' MC SE falls below 5 x the truths'
    for key, g in reps[ok].groupby(["strategy", "outcome", "measure", "time"], dropna=False):
        m = g["estimate"].mean()
        reps.loc[g.index, "estimate"] = m + (g["estimate"] - m) / 100
    calls = []
    orig = SimulationSpec.estimand_truths

    def spy(self, r, *, n_large=None):
        calls.append(dict(n_large or {}))
        if n_large:   # do not compute the huge populations here: the request is what is tested
            return {}
        return orig(self, r)

    monkeypatch.setattr(SimulationSpec, "estimand_truths", spy)
    sp = spec("naive", {"name": "landmark", "landmark": 3, "require_event_free": "pfs"})
    _precise_truths(sp, reps[reps["strategy"].isin(["naive", "landmark(3,pfs-free)"])])
    assert len(calls) == 2 and calls[1]
    from causal_hcc.twin.truth import DEFAULT_N_LARGE, MAX_N_LARGE

    assert all(DEFAULT_N_LARGE < n <= MAX_N_LARGE for n in calls[1].values())


def test_run_attaches_truths_with_mcse_to_every_outcome(tmp_path):
    import json

    from causal_hcc.config import load_spec
    from causal_hcc.pipeline import run_analysis, write_outputs

    f = tmp_path / "s.yaml"
    f.write_text(
        "study: t\ndata: {path: twin, twin: {seed: 3, true_hr: 0.7, unmeasured_confounding: 0.0, n: 400}}\n"
        "roles: {id: id, time: os_months, event: os_event, treatment: surgery, treatment_time: months_to_surgery}\n"
        "confounders: [portal_vein_invasion, first_line_effective, oligometastases]\n"
        "strategies: [naive, {name: landmark, landmark: 3, require_event_free: pfs}]\n"
        "outcomes: {pfs: {time: pfs_months, event: pfs_event}}\n"
        "estimands: {survival_at: [12], rmst_tau: 24}\nbootstrap: {replicates: 0}\n")
    res = run_analysis(load_spec(str(f)))
    write_outputs(res, str(tmp_path / "out"))
    tj = json.load(open(tmp_path / "out" / "truth.json"))
    assert tj["mc_se"]["hr"] > 0 and "follow_up" in tj
    lm = tj["estimands"]["by_L_vs_not_yet(L=3)|at_risk(L=3,pfs-free)|L|marginal"]
    assert lm["mc_se"]["hr"] > 0 and lm["mc_se"]["survival_difference"]["12"] > 0
    assert tj["estimands"]["by_L_vs_not_yet(L=3)|at_risk(L=3,pfs-free)|L|marginal [pfs]"]["outcome"] == "pfs"
    md = (tmp_path / "out" / "report.md").read_text() if (tmp_path / "out" / "report.md").exists() else ""
    for e in res.estimates:
        t = res.truth_for(e)
        assert t["value"] is not None or t["note"].startswith("undefined"), (e.strategy, e.measure, t)
    assert md == "" or "MCSE" in md
