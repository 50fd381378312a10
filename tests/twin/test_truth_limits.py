"""The population-limit engine of the twin's truths (causal_hcc.twin._limits) against row-level arithmetic.

Tolerances: the binned Cox score takes each bin's risk set at its midpoint (Efron's rule for ties); on these
steep test hazards that moves the log HR by up to 1e-4, a tenth of the smallest Monte Carlo SE of a twin truth.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from causal_hcc.twin import _limits as lim
from causal_hcc.twin.truth import cox_binary_hr

G = lim.follow_up_survivor(1.0, 3.0, 6.0, 78.0)     # the twin's potential follow-up
Z2 = np.array([[0.0], [1.0]])


def _nonph(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two arms with crossing hazards (Weibull shapes 0.7 vs 1.4): a marginal HR that depends on follow-up."""
    rng = np.random.default_rng(seed)
    t1 = 20.0 * rng.weibull(0.7, n)
    t0 = 15.0 * rng.weibull(1.4, n)
    return t1, t0


def _stats(t1, t0, origin=0.0, width=lim.BIN_WIDTH, w=None, key=0, st=None):
    if st is None:
        st = lim.Stats(2, lim.Grid.make(84.0, (12.0, 24.0), width))
    w = np.ones(t1.size) if w is None else w
    st.add(lim.Stratum(key, origin, t1, t0, w), t1, t0, 1)
    return st


def _exact_event_weighted(t1, t0, g, origin=0.0, w1=None, w0=None) -> float:
    """Row-level root of sum_i w_i g(T_i) [x_i - E(T_i)] with unweighted-by-g risk sets (no ties)."""
    t = np.concatenate([t1, t0])
    x = np.concatenate([np.ones(t1.size), np.zeros(t0.size)])
    w = np.concatenate([np.ones(t1.size) if w1 is None else w1, np.ones(t0.size) if w0 is None else w0])
    o = np.argsort(t)
    t, x, w = t[o], x[o], w[o]
    gw = np.where(t < 84.0 - origin, g(origin, t), 0.0) * w
    r1 = np.cumsum((w * x)[::-1])[::-1]
    r = np.cumsum(w[::-1])[::-1]
    beta = 0.0
    for _ in range(50):
        e = math.exp(beta)
        E = r1 * e / (r1 * e + (r - r1))
        step = np.sum(gw * (x - E)) / np.sum(gw * E * (1 - E))
        beta += step
        if abs(step) < 1e-12:
            break
    return beta


def test_cox_limit_uncensored_equals_cox_on_the_stacked_rows():
    t1, t0 = _nonph(20_000)
    st = _stats(t1, t0)
    b = lim.cox_limit(st, Z2, lim.horizon_only(84.0))[0]
    t = np.concatenate([t1, t0])
    hr, _ = cox_binary_hr(np.minimum(t, 84.0), t < 84.0, np.concatenate([np.ones(20_000), np.zeros(20_000)]))
    assert b == pytest.approx(math.log(hr), abs=1e-4)


@pytest.mark.parametrize("origin", [0.0, 3.0])
def test_cox_limit_under_follow_up_equals_the_row_level_score(origin):
    t1, t0 = _nonph(20_000, seed=2)
    st = _stats(t1, t0, origin)
    got = lim.cox_limit(st, Z2, G)[0]
    assert got == pytest.approx(_exact_event_weighted(t1, t0, G, origin), abs=1e-4)
    # and the follow-up matters: the horizon-only limit differs under non-proportional hazards
    assert abs(got - lim.cox_limit(st, Z2, lim.horizon_only(84.0))[0]) > 0.05


def test_cox_limit_with_population_weights():
    t1, t0 = _nonph(10_000, seed=3)
    w = np.random.default_rng(4).uniform(0.1, 1.0, 10_000)
    st = _stats(t1, t0, w=w)
    assert lim.cox_limit(st, Z2, G)[0] == pytest.approx(_exact_event_weighted(t1, t0, G, 0.0, w, w), abs=1e-4)


def test_follow_up_limit_matches_random_censoring():
    """The G-weighted limit is what Cox gives on the same potential outcomes censored by drawn follow-up."""
    from causal_hcc.core.cox import coxph
    from scipy import special

    n = 200_000
    t1, t0 = _nonph(n, seed=5)
    rng = np.random.default_rng(6)
    c = 6.0 + 78.0 * special.betaincinv(1.0, 3.0, rng.random(n))      # both copies share the patient's C
    y = np.concatenate([np.minimum(t1, c), np.minimum(t0, c)])
    d = np.concatenate([t1 <= c, t0 <= c]).astype(np.int8)
    x = np.concatenate([np.ones(n), np.zeros(n)])[:, None]
    fit = coxph(y, d, x, cluster=np.tile(np.arange(n), 2))
    limit = lim.cox_limit(_stats(t1, t0), Z2, G)[0]
    assert abs(fit.coef[0] - limit) < 3 * math.sqrt(fit.var[0, 0])


def test_km_limit_one_stratum_is_the_empirical_survival_at_every_edge():
    t1, t0 = _nonph(5_000, seed=7)
    st = _stats(t1, t0, width=0.5)
    S = lim.km_limit(st, 1, G)            # G cancels within one stratum
    edges = st.grid.edges
    for arm, t in ((1, t1), (0, t0)):
        emp = 1.0 - np.searchsorted(np.sort(t), edges, side="right") / t.size
        np.testing.assert_allclose(S[arm], emp, atol=1e-12)


def test_km_limit_pools_strata_with_their_follow_up():
    """Two strata (origins 0 and 40): the pooled hazard weights each stratum by its own G, as the pooled KM does."""
    rng = np.random.default_rng(8)
    ta, tb = rng.exponential(10, 4000), rng.exponential(30, 4000)
    st = lim.Stats(2, lim.Grid.make(84.0, (), 1.0))
    for key, origin, t in ((0, 0.0, ta), (1, 40.0, tb)):
        st.add(lim.Stratum(key, origin, t, t, np.ones(t.size)), t, t, 1)
    S = lim.km_limit(st, 1, G)[1]
    # by hand on the first bins: hazard = sum_k g_k D_k / sum_k g_k Y_k
    e = st.grid.edges
    h = []
    for j in range(3):
        num = den = 0.0
        for origin, t in ((0.0, ta), (40.0, tb)):
            gk = G(origin, np.array([0.5 * (e[j] + e[j + 1])]))[0]
            num += gk * np.sum((t >= e[j]) & (t < e[j + 1]))
            den += gk * np.sum(t >= e[j])
        h.append(num / den)
    np.testing.assert_allclose(S[1:4], np.cumprod(1 - np.array(h)), rtol=1e-12)
    # and the pooled curve is not the mixture's survival (the later stratum is followed for less time)
    assert abs(S[20] - 0.5 * (np.mean(ta > 20) + np.mean(tb > 20))) > 0.005


def test_curve_measures_on_exponential_curves():
    e = np.linspace(0, 84, 8401)
    S = {1: np.exp(-e / 20.0), 0: np.exp(-e / 10.0)}
    m = lim.curve_measures(S, e, (12.0,), 24.0)
    assert m["survival_difference"]["12"] == pytest.approx(math.exp(-0.6) - math.exp(-1.2), abs=1e-12)
    rmst = lambda mu: mu * (1 - math.exp(-24.0 / mu))  # noqa: E731
    assert m["rmst_difference"]["24"] == pytest.approx(rmst(20) - rmst(10), abs=1e-5)
    assert m["median_difference"] == pytest.approx(10 * math.log(2), abs=1e-4)
    # a curve that never reaches 0.5: no median
    flat = lim.curve_measures({1: np.ones_like(e), 0: S[0]}, e, (12.0,), 24.0)
    assert math.isnan(flat["median_difference"])


def test_grid_has_every_target_time_as_an_edge():
    g = lim.Grid.make(84.0, (12.0, 7.3, 24.0), 0.05)
    assert {7.3, 12.0, 24.0} <= set(np.round(g.edges, 9))
    assert g.index(np.array([0.0, 83.999, 84.0, np.inf])).tolist() == [0, g.nb - 1, g.nb, g.nb]
