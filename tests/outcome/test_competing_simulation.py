"""Seeded simulation: the competing-risks strategies recover the total effect on the cumulative incidence.

Data: a binary confounder X raises the chance of treatment and both cause-specific hazards;
treatment multiplies the hazard of cause 1 by 0.6 and of cause 2 by 1.5 (so it lowers the
cumulative incidence of cause 1 partly by raising the competing event); exponential hazards,
uniform censoring. The true CIF of cause 1 at t under arm a is, averaged over X,
``l1 / (l1 + l2) (1 - exp(-(l1 + l2) t))``. Tolerances come from the Monte Carlo SE
(4 SE for the bias) and the binomial SE of the coverage.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.strategies import resolve

T = 6.0
L1, L2, PX = (0.12, 0.25), (0.05, 0.10), 0.4    # hazards at x = 0, 1; P(X = 1)
HR1, HR2 = 0.6, 1.5


def true_cif(a: int) -> float:
    out = 0.0
    for x, px in ((0, 1 - PX), (1, PX)):
        l1, l2 = L1[x] * HR1 ** a, L2[x] * HR2 ** a
        out += px * l1 / (l1 + l2) * (1 - math.exp(-(l1 + l2) * T))
    return out


TRUTH = true_cif(1) - true_cif(0)


def simulate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    x = rng.binomial(1, PX, n)
    a = rng.binomial(1, np.where(x == 1, 0.65, 0.3))
    l1 = np.asarray(L1)[x] * HR1 ** a
    l2 = np.asarray(L2)[x] * HR2 ** a
    t1, t2 = rng.exponential(1 / l1), rng.exponential(1 / l2)
    c = rng.uniform(2, 15, n)
    t = np.minimum(np.minimum(t1, t2), c)
    cause = np.where(t == c, 0, np.where(t1 < t2, 1, 2))
    return pd.DataFrame({"id": np.arange(n), "t": t, "cause": cause, "a": a, "x": x})


def run(strategy, reps: int, n: int = 400, seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    (spec,) = resolve(strategy)
    est, lo, hi = [], [], []
    for _ in range(reps):
        df = simulate(n, rng)
        c = Cohort(df, id="id", time="t", event="cause", treatment="a", confounders=["x"], competing=[2])
        out = spec.build().fit(c, "os", Targets(survival_at=(T,)))
        e = next(e for e in out.estimates if e.measure == "cif_difference")
        est.append(e.estimate), lo.append(e.ci_lower), hi.append(e.ci_upper)
    return np.asarray(est), np.asarray(lo), np.asarray(hi)


def check(est, lo, hi, confounded_ok: bool = True):
    R = est.size
    mcse = est.std(ddof=1) / math.sqrt(R)
    assert abs(est.mean() - TRUTH) < 4 * mcse, (est.mean(), TRUTH, mcse)
    cov = float(np.mean((lo <= TRUTH) & (TRUTH <= hi)))
    assert abs(cov - 0.95) < 4 * math.sqrt(0.95 * 0.05 / R) + 0.02, cov


@pytest.mark.parametrize("strategy", [{"name": "iptw", "estimand": "ATE"}, "aiptw"])
def test_total_effect_on_the_cif_is_recovered(strategy):
    check(*run(strategy, reps=40))


def test_unadjusted_cif_difference_is_confounded():
    est, _, _ = run("naive", reps=40)
    mcse = est.std(ddof=1) / math.sqrt(est.size)
    assert est.mean() - TRUTH > 4 * mcse   # X raises treatment and both hazards: the naive contrast is biased up


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [{"name": "iptw", "estimand": "ATE"}, "aiptw"])
def test_total_effect_on_the_cif_is_recovered_long(strategy):
    check(*run(strategy, reps=300, seed=12))
