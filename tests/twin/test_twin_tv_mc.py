"""Seeded Monte Carlo checks on the twin with its time-varying confounder and its competing cause.

Quick (default suite): a few cohorts, one strategy, bias within 4 Monte Carlo SEs of its own
truth. Slow: the studies of ``benchmarks/twin_tv_study.py`` and
``benchmarks/twin_competing_study.py`` (docs/validation.md), with the tolerances they support.
"""
from __future__ import annotations

import math

import pytest
import yaml

from causal_hcc.config import AnalysisSpec
from causal_hcc.simstudy import simulate_study, without_time_varying


def _spec(path: str, n: int, strategies: list | None = None, **twin) -> AnalysisSpec:
    raw = yaml.safe_load(open(path))
    raw["data"]["twin"].update({"n": n, **twin})
    if strategies is not None:
        raw["strategies"] = strategies
    return AnalysisSpec.model_validate(raw)


def _row(tab, strategy: str, outcome: str, measure: str, time=None):
    t = tab[(tab["strategy"] == strategy) & (tab["outcome"] == outcome) & (tab["measure"] == measure)]
    if time is not None:
        t = t[t["time"] == time]
    assert len(t) == 1
    return t.iloc[0]


def _within(r, k: float) -> bool:
    se = math.sqrt(r["mcse_bias"] ** 2 + (r["truth_mcse"] or 0.0) ** 2)
    return abs(r["bias"]) <= k * se


def test_quick_time_varying_clone_censor_recovers_its_truth() -> None:
    spec = _spec("configs/twin_tv.yaml", 400, [{"name": "clone_censor", "grace": 6, "require_event_free": "pfs"}])
    res = simulate_study(spec, replicates=12, seed=11, n_jobs=1)
    r = _row(res.table, "clone_censor(6)", "os", "survival_difference", 12.0)
    assert r["n_valid"] == 12 and r["truth_kind"] == "own"
    assert _within(r, 4.0), (r["bias"], r["mcse_bias"])


def test_quick_competing_clone_censor_recovers_its_cumulative_incidence() -> None:
    spec = _spec("configs/twin_competing.yaml", 400, [{"name": "clone_censor", "grace": 6}])
    res = simulate_study(spec, replicates=12, seed=11, n_jobs=1)
    for m in ("cif_difference", "cif_ratio"):
        r = _row(res.table, "clone_censor(6)", "cancer_death", m, 24.0)
        assert r["n_valid"] == 12 and math.isfinite(r["truth"])
        assert _within(r, 4.0), (m, r["bias"], r["mcse_bias"])


@pytest.mark.slow
def test_competing_risks_strategies_recover_their_truths() -> None:
    """docs/validation.md, competing risks: 100 cohorts of 1,000 (the table there has 200)."""
    res = simulate_study(_spec("configs/twin_competing.yaml", 1000), replicates=100, seed=1, n_jobs=2)
    tab = res.table
    checks = [("landmark(3,pfs-free)+iptw(ATO)", m, t) for m, t in
              (("cif_difference", 24.0), ("cif_ratio", 24.0), ("cause_specific_hr", None), ("subdistribution_hr", None))]
    checks += [("sequential_trials+iptw(ATT)", m, t) for m, t in
               (("cif_difference", 24.0), ("cif_ratio", 24.0), ("cause_specific_hr", None), ("subdistribution_hr", None))]
    checks += [("time_varying(pfs)+multivariable", "cause_specific_hr", None),
               ("clone_censor(6)", "cif_difference", 12.0), ("clone_censor(6)", "cause_specific_hr", None)]
    for s, m, t in checks:
        r = _row(tab, s, "cancer_death", m, t)
        assert _within(r, 3.0), (s, m, t, r["bias"], r["mcse_bias"])


@pytest.mark.slow
def test_per_protocol_trials_baseline_weights_biased_time_varying_weights_recover() -> None:
    """docs/validation.md, time-varying confounder: 100 cohorts of 1,000 (the table there has 200)."""
    strat = [{"design": "sequential_trials", "adjustment": "iptw", "estimand": "ATT", "require_event_free": "pfs",
              "analysis": "per_protocol"}]
    spec = _spec("configs/twin_tv.yaml", 1000, strat)
    tv = simulate_study(spec, replicates=100, seed=1, n_jobs=2).table
    base = simulate_study(without_time_varying(spec), replicates=100, seed=1, n_jobs=2).table
    r_tv = _row(tv, "sequential_trials(pp)+iptw(ATT)", "os", "hr")
    r_base = _row(base, "sequential_trials(pp)+iptw(ATT)", "os", "hr")
    assert _within(r_tv, 3.0), (r_tv["bias"], r_tv["mcse_bias"])
    assert r_base["bias"] < -3.0 * math.hypot(r_base["mcse_bias"], r_base["truth_mcse"]), r_base["bias"]
