"""Vectorised Mantel-Byar score test, row splitting and tdc counting process
against the per-time / per-row loops they replaced and against R (jasa)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from causal_hcc.core.cox import coxph
from causal_hcc.design._common import score_test, split_at, split_until
from causal_hcc.design.time_varying import counting_process

FIX = Path(__file__).resolve().parents[1] / "reference" / "fixtures"


# ----------------------------------------------------------------- the loops replaced (reference)
def _score_test_loop(start, stop, event, z, strata=None):
    z = np.asarray(z, dtype=float)
    event = np.asarray(event).astype(bool)
    strata = np.zeros(z.shape[0], dtype=int) if strata is None else np.asarray(strata)
    U = V = 0.0
    for s in np.unique(strata):
        m = strata == s
        st, sp, ev, zz = start[m], stop[m], event[m], z[m]
        for t in np.unique(sp[ev]):
            risk = (st < t) & (sp >= t)
            dead = risk & ev & (sp == t)
            d = int(dead.sum())
            s0, s1, s2 = float(risk.sum()), float(zz[risk].sum()), float((zz[risk] ** 2).sum())
            d0, d1, d2 = float(d), float(zz[dead].sum()), float((zz[dead] ** 2).sum())
            U += d1
            for k in range(d):
                f = k / d
                a0, a1, a2 = s0 - f * d0, s1 - f * d1, s2 - f * d2
                U -= a1 / a0
                V += a2 / a0 - (a1 / a0) ** 2
    return U, V


def _split_at_loop(start, stop, cuts):
    cuts = np.unique(np.asarray(cuts, dtype=float))
    rows, a, b = [], [], []
    lo = np.searchsorted(cuts, start, side="right")
    hi = np.searchsorted(cuts, stop, side="left")
    for i in range(start.shape[0]):
        edges = np.concatenate(([start[i]], cuts[lo[i]:hi[i]], [stop[i]]))
        rows.append(np.full(edges.shape[0] - 1, i))
        a.append(edges[:-1])
        b.append(edges[1:])
    return np.concatenate(rows).astype(int), np.concatenate(a), np.concatenate(b)


def _counting_process_loop(T, switch_times):
    cuts = [np.where(np.isfinite(s), s, np.inf) for s in switch_times]
    pat, a, b = [], [], []
    for i in range(T.shape[0]):
        edges = [0.0, *sorted({float(c[i]) for c in cuts if 0 < c[i] < T[i]}), float(T[i])]
        pat.append(np.full(len(edges) - 1, i))
        a.append(edges[:-1])
        b.append(edges[1:])
    return np.concatenate(pat).astype(int), np.concatenate(a), np.concatenate(b)


def _tdc_data(seed, n, ties):
    """Counting-process rows of a random cohort with a time-dependent 0/1 treatment."""
    rng = np.random.default_rng(seed)
    T = rng.exponential(10, n)
    tt = np.where(rng.random(n) < 0.5, rng.exponential(6, n), np.nan)
    if ties:
        T, tt = np.ceil(T), np.ceil(tt)
    T = np.maximum(T, 0.5)
    E = (rng.random(n) < 0.7).astype(np.int8)
    patient, start, stop, event, states = counting_process(T, E, [tt])
    return start, stop, event, states[0], rng.integers(0, 3, stop.size)


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("seed,n,ties,strata", [(0, 60, False, False), (1, 300, True, False),
                                                 (2, 500, True, True), (3, 2000, True, False)])
def test_score_test_equals_loop(seed, n, ties, strata):
    start, stop, event, z, s = _tdc_data(seed, n, ties)
    fast = score_test(start, stop, event, z, strata=s if strata else None)
    U, V = _score_test_loop(start, stop, event, z, strata=s if strata else None)
    assert fast["score"] == pytest.approx(U, rel=1e-12, abs=1e-12)
    assert fast["variance"] == pytest.approx(V, rel=1e-12)
    assert fast["chi2"] == pytest.approx(U * U / V, rel=1e-11)


@pytest.mark.parametrize("seed", [4, 5])
def test_score_test_is_cox_score_test_at_zero(seed):
    # a continuous covariate too: same as the Cox fitter's score test (R's sctest)
    start, stop, event, _, _ = _tdc_data(seed, 400, True)
    z = np.random.default_rng(seed).normal(size=stop.size)
    fit = coxph(stop, event, z[:, None], entry=start, ties="efron")
    assert score_test(start, stop, event, z)["chi2"] == pytest.approx(fit.score_test, rel=1e-10)


def test_mantel_byar_matches_r_jasa_to_1e10():
    import pandas as pd

    from causal_hcc.cohort import Cohort
    from causal_hcc.design.time_varying import TimeVarying

    ref = json.loads((FIX / "design_jasa.json").read_text())["mantel_byar"]
    df = pd.read_csv(FIX / "design_jasa_patients.csv")
    cohort = Cohort(df, id="id", time="futime", event="fustat", treatment="transplant", treatment_time="txtime",
                    confounders=["age", "year", "surgery"])
    mb = TimeVarying().fit(cohort, "os").data_.diagnostics["mantel_byar"]
    assert mb["chi2"] == pytest.approx(ref["chi2"], rel=1e-10)
    assert mb["p_value"] == pytest.approx(ref["p"], rel=1e-10)


def test_score_test_without_events_is_nan():
    res = score_test(np.zeros(3), np.array([1.0, 2, 3]), np.zeros(3), np.array([0, 1, 0]))
    assert math.isnan(res["chi2"]) and math.isnan(res["p_value"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_at_equals_loop(seed):
    rng = np.random.default_rng(seed)
    start = np.round(rng.uniform(0, 5, 200), 1)
    stop = start + np.round(rng.exponential(3, 200), 1)
    stop[:5] = start[:5]                    # zero-length rows stay one piece
    cuts = np.r_[np.round(rng.uniform(0, 12, 15), 1), start[7], stop[9], 2.0, 2.0]
    for got, want in zip(split_at(start, stop, cuts), _split_at_loop(start, stop, cuts)):
        np.testing.assert_array_equal(got, want)


def test_split_at_without_cuts_and_rows():
    r, a, b = split_at(np.array([0.0, 1.0]), np.array([2.0, 3.0]), np.array([]))
    assert r.tolist() == [0, 1] and a.tolist() == [0.0, 1.0] and b.tolist() == [2.0, 3.0]
    r, a, b = split_at(np.zeros(0), np.zeros(0), np.array([1.0]))
    assert r.size == a.size == b.size == 0


def test_split_until_by_hand():
    r, a, b = split_until(np.array([5.0, 2.0]), np.array([3.0, 10.0]), np.array([1.0, 4.0]))
    assert r.tolist() == [0, 0, 0, 1, 1]
    assert a.tolist() == [0.0, 1.0, 3.0, 0.0, 1.0] and b.tolist() == [1.0, 3.0, 5.0, 1.0, 2.0]


@pytest.mark.parametrize("seed,two", [(0, False), (1, True), (2, True)])
def test_counting_process_equals_loop(seed, two):
    rng = np.random.default_rng(seed)
    n = 300
    T = np.ceil(rng.exponential(10, n)) + 0.0
    s1 = np.where(rng.random(n) < 0.5, np.ceil(rng.exponential(6, n)), np.nan)
    s1[:10] = 0.0                           # on from the start
    s1[10:20] = T[10:20]                    # at the event time: never on
    switches = [s1]
    if two:
        s2 = np.where(rng.random(n) < 0.5, np.ceil(rng.exponential(6, n)), np.inf)
        s2[20:30] = s1[20:30]               # same time as the first switch: one cut
        s2[30:35] = -1.0
        switches.append(s2)
    E = (rng.random(n) < 0.6).astype(np.int8)
    patient, start, stop, event, states = counting_process(T, E, switches)
    p0, a0, b0 = _counting_process_loop(T, switches)
    np.testing.assert_array_equal(patient, p0)
    np.testing.assert_array_equal(start, a0)
    np.testing.assert_array_equal(stop, b0)
    last = np.r_[p0[1:] != p0[:-1], True]
    np.testing.assert_array_equal(event, np.where(last, E[p0], 0))
    for st, sw in zip(states, switches):
        np.testing.assert_array_equal(st, (a0 >= np.where(np.isfinite(sw), sw, np.inf)[p0]).astype(np.int8))
