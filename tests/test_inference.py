"""Whole-pipeline bootstrap (causal_hcc.inference)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.errors import SpecError
from causal_hcc.inference import (bootstrap_many, bootstrap_strategy, replicate_indices, replicate_seeds)
from causal_hcc.strategies import resolve

TARGETS = Targets(survival_at=(1.0,), rmst_tau=2.0)


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Confounded cohort: x raises both the chance of treatment and the hazard."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.binomial(1, 0.4, size=n)
    a = rng.binomial(1, 1 / (1 + np.exp(-(-0.3 + 0.8 * x - 0.5 * z))))
    t = rng.exponential(1 / (0.5 * np.exp(0.6 * x + 0.3 * z - 0.5 * a)))
    c = rng.uniform(1, 4, size=n)
    return pd.DataFrame({"id": np.arange(n), "time": np.round(np.minimum(t, c), 4) + 1e-4,
                         "event": (t <= c).astype(int), "a": a, "x": x, "z": z})


def cohort_of(df: pd.DataFrame) -> Cohort:
    return Cohort(df, id="id", time="time", event="event", treatment="a", confounders=["x", "z"])


@pytest.fixture(scope="module")
def moderate() -> Cohort:
    return cohort_of(synthetic(400, 11))


def _strategy(name: str):
    return resolve(name)[0].build()


def _fit(name: str, cohort: Cohort):
    s = _strategy(name)
    return s, s.fit(cohort, "os", TARGETS)


def test_replicate_indices_depend_on_seed_only():
    a = [replicate_indices(s, 10) for s in replicate_seeds(5, 3)]
    b = [replicate_indices(s, 10) for s in replicate_seeds(5, 30)[:3]]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])
    assert all(x.min() >= 0 and x.max() < 10 for x in a)


@pytest.mark.parametrize("name", ["naive", "iptw"])
def test_bootstrap_is_deterministic_regardless_of_n_jobs(moderate, name):
    s, point = _fit(name, moderate)
    r1 = bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=12, seed=3, n_jobs=1)
    r2 = bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=12, seed=3, n_jobs=2)
    assert [e.as_row() for e in r1.estimates] == [e.as_row() for e in r2.estimates]
    pd.testing.assert_frame_equal(r1.curves.table, r2.curves.table, check_exact=True)
    r3 = bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=12, seed=4, n_jobs=1)
    assert r3.estimates[0].se != r1.estimates[0].se


def test_bootstrap_keeps_point_and_reports_bootstrap(moderate):
    s, point = _fit("iptw", moderate)
    before = [e.as_row() for e in point.estimates]
    res = bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=10, seed=1)
    assert [e.as_row() for e in point.estimates] == before          # caller's object untouched
    assert "bootstrap" not in point.diagnostics
    assert [e.estimate for e in res.estimates] == [e.estimate for e in point.estimates]
    assert {e.variance_method for e in res.estimates} == {"bootstrap"}
    hr = res.estimates[0]
    assert hr.measure == "hr" and hr.ci_lower < hr.estimate < hr.ci_upper
    assert res.diagnostics["bootstrap"] == {**res.diagnostics["bootstrap"], "replicates": 10, "failed": 0,
                                            "failures": {}, "seed": 1, "ci": "percentile"}
    assert res.curves.variance_method == "bootstrap"
    assert np.isfinite(res.curves.table["se"]).all()


def test_bootstrap_numbers_are_sd_percentiles_and_normal_p(moderate):
    """Recompute SE/CI/p of the HR from the replicates by hand (log scale)."""
    from scipy.stats import norm

    s, point = _fit("naive", moderate)
    B, seed = 15, 8
    res = bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=B, seed=seed)
    logs = []
    for ss in replicate_seeds(seed, B):
        sub = moderate.take(replicate_indices(ss, moderate.n))
        logs.append(math.log(_strategy("naive").fit(sub, "os", TARGETS).estimates[0].estimate))
    logs = np.array(logs)
    hr = res.estimates[0]
    assert hr.se == pytest.approx(np.std(logs, ddof=1), rel=1e-12)
    assert hr.ci_lower == pytest.approx(math.exp(np.quantile(logs, 0.025)), rel=1e-12)
    assert hr.ci_upper == pytest.approx(math.exp(np.quantile(logs, 0.975)), rel=1e-12)
    z = math.log(hr.estimate) / hr.se
    assert hr.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-12)


def test_bootstrap_many_shares_replicates(moderate):
    strategies = [_strategy("naive"), _strategy("iptw")]
    points = {(s.label, "os"): s.fit(moderate, "os", TARGETS) for s in strategies}
    many = bootstrap_many(strategies, moderate, ["os"], TARGETS, points, replicates=8, seed=2, only_needed=False)
    assert set(many) == {("naive", "os"), (strategies[1].label, "os")}
    for s in strategies:
        alone = bootstrap_strategy(s, moderate, "os", TARGETS, points[(s.label, "os")], replicates=8, seed=2)
        assert [e.as_row() for e in many[(s.label, "os")].estimates] == [e.as_row() for e in alone.estimates]
    # only strategies that need the bootstrap by default
    assert bootstrap_many(strategies, moderate, ["os"], TARGETS, points, replicates=8, seed=2) == {}


def test_failed_replicates_are_counted_by_reason():
    """12 patients, 2 treated: a replicate draws no treated patient with
    probability (10/12)^12 = 0.11 (Cox: no variation), and one with a single
    distinct treated patient often has a monotone likelihood (infinite
    coefficient). Both must be counted, by reason, never dropped silently."""
    df = pd.DataFrame({"id": range(12), "time": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2.5, 6.5],
                       "event": [1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1], "a": [0] * 10 + [1, 1]})
    cohort = Cohort(df, id="id", time="time", event="event", treatment="a")
    s, point = _fit("naive", cohort)
    B, seed = 60, 5
    res = bootstrap_strategy(s, cohort, "os", Targets(), point, replicates=B, seed=seed)
    no_treated = sum(int(cohort.treatment[replicate_indices(ss, 12)].sum() == 0) for ss in replicate_seeds(seed, B))
    boot = res.diagnostics["bootstrap"]
    assert no_treated > 3                       # the seed gives a real test
    assert boot["failed"] == sum(boot["failures"].values()) > no_treated
    no_var = [k for k in boot["failures"] if "has no variation" in k]
    assert len(no_var) == 1 and boot["failures"][no_var[0]] == no_treated
    infinite = [k for k in boot["failures"] if "may be infinite" in k]
    assert len(infinite) == 1 and "#" not in infinite[0]   # one reason, and no bare '#' in its sentence
    assert "when the loglik converged" not in infinite[0] and "still rising" in infinite[0]
    assert len(boot["failures"]) == 2
    assert any(w.startswith(f"bootstrap: {boot['failed']} of {B} replicates failed (") for w in res.warnings)
    assert np.isfinite(res.estimates[0].se)


def test_bootstrap_se_close_to_robust_se_for_iptw(moderate):
    """IPTW (ATE) on 400 patients: bootstrap SE of log HR vs the robust
    sandwich SE that treats the weights as fixed.

    Tolerance: with B = 200 the bootstrap SE has a Monte Carlo relative SD of
    1/sqrt(2(B-1)) = 5%; the sandwich ignoring the estimation of the
    propensity score is conservative for the ATE (Austin 2016 reports it
    up to ~15% too large), so the ratio bootstrap/robust is expected in
    (0.75, 1.15): 3 MC SDs below 0.9 and above 1.0.
    """
    s, point = _fit("iptw", moderate)
    res = bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=200, seed=17, n_jobs=2)
    ratio = res.estimates[0].se / point.estimates[0].se
    assert 0.75 < ratio < 1.15, ratio
    assert res.diagnostics["bootstrap"]["failed"] == 0


@pytest.mark.parametrize("kw, msg", [
    ({"replicates": 1, "seed": 1}, "bootstrap: replicates must be an integer >= 2, got 1"),
    ({"replicates": 5, "seed": -1}, "bootstrap: seed must be a non-negative integer, got -1"),
    ({"replicates": 5, "seed": 1, "n_jobs": 0}, "n_jobs must be a non-zero integer (-1 = all cores), got 0"),
])
def test_bad_arguments(moderate, kw, msg):
    s, point = _fit("naive", moderate)
    with pytest.raises(SpecError) as ei:
        bootstrap_strategy(s, moderate, "os", TARGETS, point, **kw)
    assert str(ei.value) == msg


def test_in_replicate_flag_is_set_only_inside_replicates(moderate, monkeypatch):
    from causal_hcc import inference
    from causal_hcc.strategies import Strategy

    seen = []
    orig = Strategy.fit

    def spy(self, cohort, outcome, targets):
        seen.append(inference.in_replicate())
        return orig(self, cohort, outcome, targets)

    monkeypatch.setattr(Strategy, "fit", spy)
    s, point = _fit("naive", moderate)
    bootstrap_strategy(s, moderate, "os", TARGETS, point, replicates=3, seed=1)
    assert seen == [False, True, True, True] and not inference.in_replicate()


# ---------------------------------------------------------------- bootstrap intervals
def test_bca_limits_match_scipy():
    """Our BCa arithmetic = scipy.stats' (Efron & Tibshirani 1993, 14.3) on the same replicates."""
    from scipy.stats._resampling import _bca_interval

    from causal_hcc.inference import _bca_limits

    rng = np.random.default_rng(7)
    x = rng.exponential(size=40)
    reps = np.array([rng.choice(x, x.size).mean() for _ in range(4000)])
    jack = np.array([np.delete(x, i).mean() for i in range(x.size)])
    a1, a2, _ = _bca_interval((x,), np.mean, axis=-1, alpha=0.025, theta_hat_b=reps[None, :], batch=None)
    expected = np.percentile(reps, [100 * float(np.squeeze(a1)), 100 * float(np.squeeze(a2))])
    lo, hi = _bca_limits(reps, float(x.mean()), jack, 0.05)
    assert (lo, hi) == pytest.approx(tuple(expected), rel=1e-12)


@pytest.mark.parametrize("ci", ["percentile", "normal", "bca"])
def test_bootstrap_interval_kinds(ci):
    from scipy.stats import norm

    from causal_hcc.inference import bootstrap_strategy

    cohort = cohort_of(synthetic(120, 5))
    (spec,) = resolve("iptw")
    strat = spec.build()
    targets = Targets(survival_at=(1.0,), rmst_tau=2.0)
    point = strat.fit(cohort, "os", targets)
    out = bootstrap_strategy(strat, cohort, "os", targets, point, replicates=60, seed=3, ci=ci)
    hr = next(e for e in out.estimates if e.measure == "hr")
    assert out.diagnostics["bootstrap"]["ci"] == ci
    b = np.log(hr.estimate)
    if ci == "normal":
        z = norm.ppf(0.975)
        assert (hr.ci_lower, hr.ci_upper) == pytest.approx((np.exp(b - z * hr.se), np.exp(b + z * hr.se)), rel=1e-12)
    assert hr.ci_lower < hr.estimate < hr.ci_upper
    if ci != "percentile":
        pct = bootstrap_strategy(strat, cohort, "os", targets, point, replicates=60, seed=3)
        ph = next(e for e in pct.estimates if e.measure == "hr")
        assert ph.se == hr.se and (ph.ci_lower, ph.ci_upper) != (hr.ci_lower, hr.ci_upper)


def test_failure_reason_reads_as_a_sentence():
    """Numbers that vary between replicates become '…' (issue 23: 'it is # when the loglik converged')."""
    from causal_hcc.errors import EstimationError
    from causal_hcc.inference import _failure_reason

    assert _failure_reason(EstimationError("coxph: only 3 events in 12 rows")) == "coxph: only … events in … rows"
    assert "#" not in _failure_reason(EstimationError("a 21.9 b"))
