"""The batched bootstrap (causal_hcc.batched) gives the per-replicate path's replicates (to 1e-10)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from causal_hcc import inference
from causal_hcc.base import Targets
from causal_hcc.batched import batched_replicates, bootstrap_strategy_batched, supported
from causal_hcc.cohort import Cohort
from causal_hcc.inference import _Job, _Layout, bootstrap_strategy, run_replicates
from causal_hcc.strategies import resolve

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "data")


@pytest.fixture(scope="module")
def veteran():
    df = pd.read_csv(os.path.join(DATA, "veteran.csv"))
    df["a"] = (df["trt"] == 2).astype(int)
    df["id"] = np.arange(len(df))
    return Cohort(df, id="id", time="time", event="status", treatment="a",
                  confounders=["karno", "diagtime", "age", "prior", "celltype"], categorical=["celltype"])


@pytest.fixture(scope="module")
def rotterdam():
    df = pd.read_csv(os.path.join(DATA, "rotterdam.csv")).iloc[:1200].copy()
    df["id"] = np.arange(len(df))
    return Cohort(df, id="id", time="dtime", event="death", treatment="hormon",
                  confounders=["age", "meno", "nodes", "size2050", "size50", "grade", "chemo"])


def _per_replicate(strat, cohort, targets, point, B, seed):
    job = _Job((strat.label, "os"), strat, "os", _Layout.of(point))
    old = inference.BATCHED
    inference.BATCHED = False
    try:
        return [r[0] for r in run_replicates(cohort, [job], targets, replicates=B, seed=seed)]
    finally:
        inference.BATCHED = old


def _same(ref, bat, layout, tmax):
    """Equal to 1e-10 on the scale of each number: 1 for log HR and survival, the time scale for
    RMST (tau) and median differences (a difference of two areas of ~tau loses digits)."""
    assert len(ref) == len(bat)
    scale = np.ones(layout.width)
    for i, (measure, time, _) in enumerate(layout.keys):
        if measure == "rmst_difference":
            scale[i] = float(time)
        elif measure == "median_difference":
            scale[i] = tmax
    checked = 0
    for a, b in zip(ref, bat):
        if isinstance(a, str) or isinstance(b, str):
            assert a == b
            continue
        assert np.array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(a)
        assert np.all(np.abs(a[ok] - b[ok]) <= 1e-10 * scale[ok]), np.max(np.abs(a[ok] - b[ok]) / scale[ok])
        checked += 1
    assert checked


@pytest.mark.parametrize("options", [{"estimand": "ATE"}, {"estimand": "ATE", "stabilized": True},
                                     {"estimand": "ATT"}, {"estimand": "ATO"}])
def test_batched_equals_per_replicate_veteran(veteran, options):
    strat = resolve({"name": "iptw", **options})[0].build()
    targets = Targets(survival_at=(30.0, 90.0, 2000.0), rmst_tau=180.0)  # 2000: after follow-up -> NaN
    point = strat.fit(veteran, "os", targets)
    ref = _per_replicate(strat, veteran, targets, point, 60, 11)
    bat = batched_replicates(strat, veteran, "os", targets, point, replicates=60, seed=11, batch=25)
    _same(ref, bat, _Layout.of(point), 1000.0)


def test_batched_equals_per_replicate_rotterdam_and_summaries(rotterdam):
    strat = resolve({"name": "iptw", "estimand": "ATE"})[0].build()
    targets = Targets(survival_at=(1000.0, 2000.0), rmst_tau=2500.0)
    point = strat.fit(rotterdam, "os", targets)
    ref = _per_replicate(strat, rotterdam, targets, point, 20, 3)
    bat = batched_replicates(strat, rotterdam, "os", targets, point, replicates=20, seed=3)
    _same(ref, bat, _Layout.of(point), 7000.0)
    res = bootstrap_strategy_batched(strat, rotterdam, "os", targets, point, replicates=20, seed=3)
    old = inference.BATCHED
    inference.BATCHED = False
    try:
        slow = bootstrap_strategy(strat, rotterdam, "os", targets, point, replicates=20, seed=3)
    finally:
        inference.BATCHED = old
    for e0, e1 in zip(slow.estimates, res.estimates):
        assert (e0.measure, e0.time) == (e1.measure, e1.time)
        np.testing.assert_allclose([e1.se, e1.ci_lower, e1.ci_upper], [e0.se, e0.ci_lower, e0.ci_upper],
                                   rtol=1e-9)


def test_irregular_replicates_fall_back_with_the_same_failures():
    """10 patients, 2 treated: many replicates draw no treated patient or a single one (Cox or the
    propensity model fails); those go to the per-replicate path and fail with its reasons."""
    df = pd.DataFrame({"id": range(10), "time": [1.0, 2, 3, 4, 5, 6, 7, 8, 2.5, 6.5],
                       "event": [1, 0, 1, 1, 0, 1, 1, 0, 1, 1], "a": [0] * 8 + [1, 1],
                       "x": [0.1, 0.5, 0.3, 0.9, 0.2, 0.7, 0.4, 0.6, 0.35, 0.65]})
    cohort = Cohort(df, id="id", time="time", event="event", treatment="a", confounders=["x"])
    strat = resolve({"name": "iptw", "estimand": "ATO"})[0].build()
    targets = Targets(survival_at=(3.0,))
    point = strat.fit(cohort, "os", targets)
    ref = _per_replicate(strat, cohort, targets, point, 40, 5)
    bat = batched_replicates(strat, cohort, "os", targets, point, replicates=40, seed=5, batch=16)
    assert sum(isinstance(r, str) for r in ref) >= 5  # the seed gives failures to compare
    _same(ref, bat, _Layout.of(point), 10.0)


def test_run_replicates_uses_the_batched_path_and_supported_says_why_not(veteran):
    assert supported(resolve({"name": "iptw"})[0].build(), veteran) is None
    assert supported(resolve("naive")[0].build(), veteran) == "only design 'baseline' x adjustment 'iptw' is batched"
    assert supported(resolve({"name": "iptw", "trim": [0.05, 0.95]})[0].build(), veteran) == \
        "option 'trim' is not batched"
    # the batched Cox model is unpenalised: a Firth-penalised IPTW runs its own (penalised) fit per replicate
    assert supported(resolve({"name": "iptw", "penalty": "firth"})[0].build(), veteran) == \
        "option 'penalty' is not batched"
    strat = resolve({"name": "iptw"})[0].build()
    naive = resolve("naive")[0].build()
    targets = Targets(survival_at=(60.0,))
    points = {s: s.fit(veteran, "os", targets) for s in (strat, naive)}
    jobs = [_Job((s.label, "os"), s, "os", _Layout.of(p)) for s, p in points.items()]
    mixed = run_replicates(veteran, jobs, targets, replicates=8, seed=2)
    ref = _per_replicate(strat, veteran, targets, points[strat], 8, 2)
    _same(ref, [r[0] for r in mixed], jobs[0].layout, 1000.0)
    alone = run_replicates(veteran, jobs[1:], targets, replicates=8, seed=2)
    assert all(np.array_equal(a[1], b[0]) for a, b in zip(mixed, alone))


def test_dense_codes_equal_numpy_unique_inverse():
    """base.dense_codes (counting, O(n), for non-negative integers of moderate range) gives np.unique's inverse
    codes; other arrays go through np.unique."""
    from causal_hcc.base import dense_codes

    rng = np.random.default_rng(0)
    for a in (rng.integers(0, 1000, 5000), rng.integers(0, 10**9, 500), rng.normal(size=100),
              np.array([3, 3, 1, 7]), np.array([5], dtype=np.uint8)):
        assert np.array_equal(dense_codes(a), np.unique(a, return_inverse=True)[1].ravel())
