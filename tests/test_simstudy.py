"""Monte Carlo study over twin replicates (causal_hcc.simstudy)."""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import Targets
from causal_hcc.errors import SpecError
from causal_hcc.simstudy import (SIMULATION_COLUMNS, SimulationSpec, simulate_study, truth_lookup)
from causal_hcc.strategies import resolve

TWIN_ROLES = {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery",
              "treatment_time": "months_to_surgery"}


def twin_spec(**kw) -> SimulationSpec:
    from causal_hcc.twin import TwinParams

    return SimulationSpec(
        strategies=tuple(resolve("naive") + resolve({"name": "iptw", "estimand": "ATE"})),
        roles=TWIN_ROLES, confounders=("portal_vein_invasion", "first_line_effective", "oligometastases"),
        targets=Targets(survival_at=(12.0,), rmst_tau=24.0), twin=TwinParams(), **kw)


# ---------------------------------------------------------------- a randomised trial with a known truth
@dataclasses.dataclass(frozen=True)
class RCTParams:
    seed: int = 0
    n: int = 200


RATE0, HR = 0.5, 0.6


def rct(p: RCTParams) -> pd.DataFrame:
    """Randomised treatment, exponential survival (hazard 0.5, HR 0.6),
    independent uniform(1, 4) censoring: marginal = conditional HR."""
    rng = np.random.default_rng(p.seed)
    a = rng.binomial(1, 0.5, p.n)
    t = rng.exponential(1 / (RATE0 * np.where(a == 1, HR, 1.0)))
    c = rng.uniform(1, 4, p.n)
    return pd.DataFrame({"id": np.arange(p.n), "time": np.minimum(t, c), "event": (t <= c).astype(int), "a": a,
                         "x": rng.normal(size=p.n)})


RCT_TRUTH = {"hr": HR, "survival_difference": {"1": math.exp(-RATE0 * HR) - math.exp(-RATE0)}}


def rct_spec() -> SimulationSpec:
    return SimulationSpec(strategies=tuple(resolve("naive")), roles={"id": "id", "time": "time", "event": "event",
                                                                     "treatment": "a"},
                          confounders=("x",), targets=Targets(survival_at=(1.0,)), twin=RCTParams(),
                          generator=rct, truth=RCT_TRUTH)


@pytest.fixture(scope="module")
def rct_result():
    return simulate_study(rct_spec(), replicates=40, seed=100)


def test_coverage_and_bias_on_a_trial_with_known_truth(rct_result):
    tab = rct_result.table.set_index(["measure", "time"], drop=False)
    hr = tab.loc[("hr", None)] if ("hr", None) in tab.index else tab[tab["measure"] == "hr"].iloc[0]
    assert hr["truth"] == HR and hr["n_failed"] == 0 and hr["n_valid"] == 40
    # 40 replicates: coverage of a valid 95% CI is >= 0.85 with probability 0.996 (binomial)
    assert 0.85 <= hr["coverage"] <= 1.0
    assert abs(hr["bias"]) < 3 * hr["mcse_bias"]
    assert 0.7 < hr["se_ratio"] < 1.3      # model SE vs empirical SE; MC rel. SD of emp. SE ~ 11%
    sd = tab[tab["measure"] == "survival_difference"].iloc[0]
    assert sd["truth"] == pytest.approx(RCT_TRUTH["survival_difference"]["1"])
    assert abs(sd["bias"]) < 3 * sd["mcse_bias"] and 0.85 <= sd["coverage"] <= 1.0


def test_measures_recomputed_by_hand(rct_result):
    reps = rct_result.replicates
    r = reps[reps["measure"] == "hr"]
    theta = np.log(r["estimate"].to_numpy())
    lt = math.log(HR)
    row = rct_result.table[rct_result.table["measure"] == "hr"].iloc[0]
    assert row["bias"] == pytest.approx(theta.mean() - lt, rel=1e-12)
    assert row["empirical_se"] == pytest.approx(theta.std(ddof=1), rel=1e-12)
    assert row["rmse"] == pytest.approx(math.sqrt(np.mean((theta - lt) ** 2)), rel=1e-12)
    assert row["model_se"] == pytest.approx(r["se"].mean(), rel=1e-12)
    cov = np.mean((r["ci_lower"] <= HR) & (HR <= r["ci_upper"]))
    assert row["coverage"] == pytest.approx(cov, rel=1e-12)
    assert row["mcse_coverage"] == pytest.approx(math.sqrt(cov * (1 - cov) / 40), rel=1e-12)
    assert sorted(r["twin_seed"]) == list(range(100, 140))


def test_write_outputs(rct_result, tmp_path):
    folder = str(tmp_path / "sim")
    rct_result.write(folder)
    assert sorted(os.listdir(folder)) == [".causal_hcc-output", "simulation.csv", "simulation.json", "simulation.md",
                                          "simulation.png", "simulation_replicates.csv"]
    assert tuple(pd.read_csv(os.path.join(folder, "simulation.csv")).columns) == SIMULATION_COLUMNS
    md = open(os.path.join(folder, "simulation.md"), encoding="utf-8").read()
    assert md.startswith("## Simulation study")
    assert "| naive | ever_vs_never\\|all\\|t0\\|marginal | given | os | hr |" in md  # '|' escaped in a table cell
    with pytest.raises(Exception, match="already exists; use --force to replace it"):
        rct_result.write(folder)


@pytest.fixture(scope="module")
def twin_local():
    return simulate_study(twin_spec(), replicates=4, seed=7)


def test_twin_study_identical_with_joblib(twin_local):
    par = simulate_study(twin_spec(), replicates=4, seed=7, n_jobs=2)
    pd.testing.assert_frame_equal(twin_local.replicates, par.replicates, check_exact=True)
    pd.testing.assert_frame_equal(twin_local.table, par.table, check_exact=True)
    assert set(twin_local.table["strategy"]) == {"naive", "iptw(ATE)"}
    assert twin_local.truth[("naive", "ever_vs_never|all|t0|marginal", "os", "hr", None)] == 1.0
    row = twin_local.table[(twin_local.table["strategy"] == "naive") & (twin_local.table["measure"] == "hr")]
    assert row["truth_kind"].tolist() == ["claimed"]  # ever vs never: not causal, judged on the claimed estimand


def test_twin_study_identical_on_dask_local_cluster(twin_local):
    pytest.importorskip("dask.distributed")
    dsk = simulate_study(twin_spec(), replicates=4, seed=7, dask_local=2)
    assert dsk.meta["backend"] == "dask LocalCluster (2 workers)"
    pd.testing.assert_frame_equal(twin_local.replicates, dsk.replicates, check_exact=True)
    pd.testing.assert_frame_equal(twin_local.table, dsk.table, check_exact=True)


def test_truth_lookup_shapes():
    assert truth_lookup({"hr": 0.7, "survival_difference": {"12": 0.05}, "candidates": {"hr": 0.5}}) == {
        ("os", "hr", None): 0.7, ("os", "survival_difference", 12.0): 0.05}
    recs = [{"outcome": "pfs", "measure": "hr", "time": None, "value": 0.8}]
    assert truth_lookup(recs) == {("pfs", "hr", None): 0.8}
    assert truth_lookup(None) == {}


@pytest.mark.parametrize("kw, msg", [
    ({"replicates": 1, "seed": 1}, "simulate: replicates must be an integer >= 2, got 1"),
    ({"replicates": 3, "seed": -2}, "simulate: seed must be a non-negative integer, got -2"),
    ({"replicates": 3, "seed": 1, "scheduler": "tcp://127.0.0.1:1", "dask_local": 2},
     "simulate: give either --scheduler or --dask-local, not both"),
    ({"replicates": 3, "seed": 1, "dask_local": 0}, "simulate: --dask-local must be a positive number of workers, got 0"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(SpecError) as ei:
        simulate_study(rct_spec(), **kw)
    assert str(ei.value) == msg


def test_simulate_cli_on_paper_spec_uses_strategy_confounder_sets(tmp_path):
    """configs/paper.yaml names extra confounders for the paper strategy; simulate honours them."""
    import pandas as pd
    from typer.testing import CliRunner

    from causal_hcc.cli import app

    out = tmp_path / "sim"
    r = CliRunner().invoke(app, ["simulate", "configs/paper.yaml", "--replicates", "2", "--output", str(out)])
    assert r.exit_code == 0, r.output
    tab = pd.read_csv(out / "simulation.csv")
    assert {"paper", "paper(univariate)", "naive", "clone_censor(6)"} <= set(tab["strategy"])
    assert (tab["n_failed"] == 0).all()


# ---------------------------------------------------------------- issue 20: interval and bias verdicts
from causal_hcc.simstudy import (COVERAGE_VALID, bias_verdict, coverage_verdict, interval_name,  # noqa: E402
                                 note_interval_validity, ratio_jensen, summarise_simulation)


def test_coverage_verdict_uses_the_rows_monte_carlo_se():
    assert COVERAGE_VALID == (0.92, 0.98)
    assert coverage_verdict(0.95, 0.0097, 500) == "valid"
    assert coverage_verdict(0.92, 0.012, 500) == "valid"            # the bounds are in
    assert coverage_verdict(0.84, 0.0169, 500) == "low"             # 0.84 + 2 x 0.017 < 0.92
    assert coverage_verdict(0.905, 0.0131, 500) == "uncertain"      # 0.905 + 0.026 > 0.92
    assert coverage_verdict(0.99, 0.0031, 1000) == "high"
    assert coverage_verdict(0.985, 0.0054, 500) == "uncertain"
    # coverage 1 has MC SE 0: the SE at the bound crossed, sqrt(0.98 x 0.02 / n), decides
    assert coverage_verdict(1.0, 0.0, 1000) == "high" and coverage_verdict(1.0, 0.0, 30) == "uncertain"
    assert coverage_verdict(math.nan, math.nan, 0) == ""


def test_interval_name_says_which_interval():
    assert interval_name("robust", True) == "log-scale Wald interval, robust (sandwich) SE"
    assert interval_name("greenwood", False) == "Wald interval, Greenwood SE"
    assert interval_name("none/robust", True).endswith("(replicates without an SE have none)")
    assert interval_name("bootstrap", True) == "whole-pipeline bootstrap interval"
    assert interval_name("none", False) == "no interval"


def _arms(rng, n_rep, p1, p0, n1, n0):
    """Replicates of two independent binomial risk estimates (unbiased), as ratio and survival difference."""
    a1 = rng.binomial(n1, p1, n_rep) / n1
    a0 = rng.binomial(n0, p0, n_rep) / n0
    ok = (a1 > 0) & (a0 > 0) & (a1 != a0)
    a1, a0 = a1[ok], a0[ok]
    return a1, a0, a1 / a0, (1 - a1) - (1 - a0)


def test_ratio_jensen_recovers_the_arms_and_splits_the_bias_exactly():
    rng = np.random.default_rng(5)
    a1, a0, ratio, sdiff = _arms(rng, 4000, 0.42, 0.46, 13, 124)
    j = ratio_jensen(ratio, sdiff, -1.0)
    assert j["n"] == a1.size
    # mean log ratio = log(mean a1 / mean a0) + J, exactly
    assert np.mean(np.log(ratio)) == pytest.approx(j["log_ratio_of_means"] + j["jensen"], abs=1e-12)
    assert j["log_ratio_of_means"] == pytest.approx(math.log(a1.mean() / a0.mean()), abs=1e-12)
    # the second-order value: -Var(a1)/(2 a1^2) + Var(a0)/(2 a0^2), with a 13-patient treated arm about -0.05 (an effective size: weights shrink it)
    v1, v0 = 0.42 * 0.58 / 13, 0.46 * 0.54 / 124
    assert j["delta"] == pytest.approx(-v1 / (2 * 0.42 ** 2) + v0 / (2 * 0.46 ** 2), rel=0.1)
    assert j["jensen"] < -0.03 and j["jensen"] == pytest.approx(j["delta"], rel=0.35)
    # the risks are unbiased: the ratio of their means is within MC error of the truth, the mean log is not
    truth = math.log(0.42 / 0.46)
    assert abs(j["log_ratio_of_means"] - truth) < 3 * j["mcse_log_ratio_of_means"]
    assert np.mean(np.log(ratio)) - truth < -5 * np.std(np.log(ratio)) / math.sqrt(ratio.size)
    # a cumulative-incidence ratio and difference (sign +1) give the same split
    jc = ratio_jensen(ratio, a1 - a0, 1.0)
    assert jc["jensen"] == pytest.approx(j["jensen"], abs=1e-12)
    assert ratio_jensen(np.array([1.0, 1.0]), np.array([0.0, 0.0]), -1.0) is None


def test_bias_verdict_finite_sample_only_when_the_mean_risks_are_unbiased():
    rng = np.random.default_rng(6)
    a1, a0, ratio, sdiff = _arms(rng, 4000, 0.42, 0.46, 13, 124)
    lr = np.log(ratio)
    mcse = float(np.std(lr, ddof=1) / math.sqrt(lr.size))
    truth = math.log(0.42 / 0.46)
    j = ratio_jensen(ratio, sdiff, -1.0)
    assert bias_verdict(float(lr.mean()) - truth, mcse, 0.0, j, truth) == "finite-sample"
    # against a truth 0.05 higher the mean risks themselves are off: beyond, not finite-sample
    assert bias_verdict(float(lr.mean()) - (truth + 0.05), mcse, 0.0, j, truth + 0.05) == "beyond 2 MC SE"
    assert bias_verdict(0.01, 0.01, 0.001) == "within 2 MC SE"
    assert bias_verdict(0.03, 0.01, 0.001) == "beyond 2 MC SE"
    assert bias_verdict(math.nan, 0.01, None) == ""


def _replicate_table(rng, n_rep=600, shift=0.0):
    """Replicates of one strategy: survival difference and risk ratio at 12 from the same arm risks."""
    a1, a0, ratio, sdiff = _arms(rng, n_rep, 0.42 - shift, 0.46, 13, 124)
    rows = []
    for r, (rr, sd) in enumerate(zip(ratio, sdiff)):
        base = dict(replicate=r, twin_seed=r, strategy="s", design="landmark", adjustment="iptw", estimand="e",
                    outcome="os", time=12.0, k=0, error="", penalised=False)
        # intervals: the difference's too narrow (coverage low), the ratio's fine
        rows.append({**base, "measure": "survival_difference", "estimate": sd, "se": 0.05, "ci_lower": sd - 0.05,
                     "ci_upper": sd + 0.05, "variance_method": "robust"})
        rows.append({**base, "measure": "risk_ratio", "estimate": rr, "se": 0.4, "ci_lower": rr * math.exp(-0.8),
                     "ci_upper": rr * math.exp(0.8), "variance_method": "robust"})
    return pd.DataFrame(rows)


def test_summary_labels_intervals_and_finite_sample_risk_ratio_bias():
    rng = np.random.default_rng(7)
    reps = _replicate_table(rng)
    truth = {("s", "e", "os", "survival_difference", 12.0): 0.04, ("s", "e", "os", "risk_ratio", 12.0): 0.42 / 0.46}
    info = {k: {"value": v, "mcse": 0.0, "kind": "own", "note": ""} for k, v in truth.items()}
    tab = summarise_simulation(reps, truth, n_replicates=600, truth_info=info)
    assert tuple(tab.columns) == SIMULATION_COLUMNS
    sd = tab[tab["measure"] == "survival_difference"].iloc[0]
    rr = tab[tab["measure"] == "risk_ratio"].iloc[0]
    assert sd["bias_verdict"] == "within 2 MC SE" and math.isnan(sd["jensen_bias"])
    assert sd["coverage_verdict"] == "low" and sd["interval"] == "Wald interval, robust (sandwich) SE"
    assert rr["bias_verdict"] == "finite-sample" and rr["jensen_bias"] < -0.03
    assert rr["bias"] < -2 * rr["mcse_bias"]
    assert rr["interval"] == "log-scale Wald interval, robust (sandwich) SE"
    # a real bias of the treated curve (its risk 0.05 higher than the truth's) is not finite-sample
    reps_b = _replicate_table(np.random.default_rng(8), shift=-0.05)
    tab_b = summarise_simulation(reps_b, truth, n_replicates=600, truth_info=info)
    assert tab_b.loc[tab_b["measure"] == "risk_ratio", "bias_verdict"].iloc[0] == "beyond 2 MC SE"


def test_markdown_flags_intervals_not_shown_valid():
    from causal_hcc.simstudy import SimulationResult

    rng = np.random.default_rng(7)
    reps = _replicate_table(rng)
    truth = {("s", "e", "os", "survival_difference", 12.0): 0.04, ("s", "e", "os", "risk_ratio", 12.0): 0.42 / 0.46}
    tab = summarise_simulation(reps, truth, n_replicates=600)
    md = SimulationResult(tab, reps, truth, {"replicates": 600, "seed": 1, "alpha": 0.05}).to_markdown(None)
    sd_line = next(line for line in md.splitlines() if "| survival_difference @ 12 |" in line)
    rr_line = next(line for line in md.splitlines() if "| risk_ratio @ 12 |" in line)
    assert "**LOW**" in sd_line and "Wald interval, robust (sandwich) SE" in sd_line
    assert "finite-sample (Jensen -0.0" in rr_line and "**LOW**" not in rr_line


def test_analysed_rows_get_the_monte_carlo_verdict_on_their_interval():
    from causal_hcc.results import EffectEstimate, StrategyRecord

    est = [EffectEstimate("hr", 0.8, se=0.2, ci_lower=0.5, ci_upper=1.2, variance_method="robust", strategy="s"),
           EffectEstimate("survival_difference", 0.05, se=0.05, ci_lower=-0.05, ci_upper=0.15, time=12.0,
                          variance_method="bootstrap", strategy="s"),
           EffectEstimate("median_difference", 1.0, variance_method="none", strategy="s")]
    rec = StrategyRecord("s", "landmark", "iptw", "os", est)
    table = [{"strategy": "s", "outcome": "os", "measure": "hr", "time": None, "k": 0, "coverage": 0.84,
              "mcse_coverage": 0.017, "n_coverage": 500, "variance_method": "robust", "coverage_verdict": "low"},
             {"strategy": "s", "outcome": "os", "measure": "survival_difference", "time": 12.0, "k": 0,
              "coverage": 0.95, "mcse_coverage": 0.01, "n_coverage": 500, "variance_method": "robust",
              "coverage_verdict": "valid"}]
    assert note_interval_validity([rec], table) == 2
    hr, sd, med = rec.estimates
    assert hr.note == ("interval: log-scale Wald interval, robust (sandwich) SE; 500 simulated twin cohorts: 84% "
                       "coverage (MC SE 1.7%), below 0.92 beyond Monte Carlo error: not valid here")
    assert sd.note.startswith("coverage of this bootstrap interval not measured (the Monte Carlo measured the "
                              "robust interval")
    assert med.note == ""
