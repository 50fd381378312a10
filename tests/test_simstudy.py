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
