"""E-values, tipping points, back-door identification and refuters."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.errors import SpecError
from causal_hcc.results import EffectEstimate
from causal_hcc.sensitivity import (evalue, evalue_for_estimate, hr_to_rr, identify_adjustment_set,
                                    outcome_is_common, tipping_point)


# --- E-values: published values ---------------------------------------------------------
@pytest.mark.parametrize("est, lo, hi, measure, rare, point, ci", [
    # Zhang et al. Table 4 HR 0.195 (0.061-0.626), common outcome (VanderWeele 2020 conversion)
    (0.195, 0.061, 0.626, "hr", False, 5.46, 2.11),
    # VanderWeele & Ding 2017: RR 3.9 (1.8-8.7) -> 7.26 and 3.0
    (3.9, 1.8, 8.7, "rr", True, 7.26, 3.00),
    # rare-outcome HR is used as a risk ratio: 1/0.188 = 5.319 -> 5.319 + sqrt(5.319*4.319)
    (0.188, 0.059, 0.602, "hr", True, 10.11, 2.71),
])
def test_evalue_published(est, lo, hi, measure, rare, point, ci):
    e = evalue(est, lo, hi, measure=measure, rare=rare)
    assert round(e.point, 2) == point
    assert round(e.ci, 2) == ci


def test_hr_conversion_formula():
    # RR = (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR)) by hand for HR = 2
    expected = (1 - 0.5 ** math.sqrt(2)) / (1 - 0.5 ** math.sqrt(0.5))
    assert hr_to_rr(2.0, rare=False) == pytest.approx(expected, rel=1e-12)
    assert hr_to_rr(2.0, rare=True) == 2.0


@pytest.mark.parametrize("lo, hi", [(0.5, 1.4), (0.8, 1.0)])
def test_evalue_ci_covering_null_is_one(lo, hi):
    assert evalue(0.9, lo, hi).ci == 1.0


def test_evalue_bad_measure():
    with pytest.raises(SpecError, match=r"^evalue: measure must be one of rr, hr, got 'or'$"):
        evalue(2.0, measure="or")


def test_outcome_common_from_curves_and_counts():
    tab = pd.DataFrame({"time": [1, 2, 1, 2], "group": ["treated"] * 2 + ["untreated"] * 2,
                        "surv": [0.95, 0.9, 0.9, 0.8]})
    assert outcome_is_common(curves=tab)
    assert not outcome_is_common(curves=tab.assign(surv=[0.99, 0.95, 0.98, 0.9]))
    assert outcome_is_common(events=20, n=100) and not outcome_is_common(events=10, n=100)


def test_evalue_survival_difference_by_hand():
    # untreated risk 0.5 at t=12; difference +0.2 -> treated risk 0.3 -> RR 0.6 -> 1/0.6 = 1.667
    tab = pd.DataFrame({"time": [12.0, 12.0], "group": ["untreated", "treated"], "surv": [0.5, 0.7]})
    e = EffectEstimate("survival_difference", 0.2, 0.05, 0.1, 0.3, time=12.0)
    ev = evalue_for_estimate(e, common=True, curves=tab)
    r = 1 / 0.6
    assert ev.point == pytest.approx(r + math.sqrt(r * (r - 1)))
    r_ci = 1 / 0.8  # CI limit nearer the null: difference 0.1 -> treated risk 0.4 -> RR 0.8
    assert ev.ci == pytest.approx(r_ci + math.sqrt(r_ci * (r_ci - 1)))


def test_evalue_rmst_is_undefined_with_note():
    ev = evalue_for_estimate(EffectEstimate("rmst_difference", 2.0, 1.0, 0.0, 4.0, time=24.0), common=True)
    assert math.isnan(ev.point) and "no published E-value" in ev.note


# --- tipping point: the arithmetic by hand -------------------------------------------
def test_tipping_point_by_hand():
    # HR 0.195, U with HR_UD 3 in 50% of untreated, 0% of treated: B = 1/(1+2*0.5) = 0.5
    tp = tipping_point(0.195, 0.061, 0.626, hr_ud=[3.0], prevalence_difference=[0.5])
    assert tp["adjusted_hr"][0][0] == pytest.approx(0.39)
    assert tp["adjusted_ci_limit"][0][0] == pytest.approx(1.252)
    assert tp["moves_point_to_null"][0][0] is False and tp["moves_ci_to_null"][0][0] is True
    # CI limit to 1: 1 + 2d = 1/0.626 -> d = 0.29872; point needs d = (1/0.195 - 1)/2 > 1: unreachable
    assert tp["tipping_difference_ci"][0] == pytest.approx((1 / 0.626 - 1) / 2)
    assert tp["tipping_difference"][0] is None


def test_tipping_point_harmful_with_p_low():
    # HR 2, HR_UD 4, U in 30%+20% = 50% of treated and 30% of untreated:
    # B = (1 + 3*0.5) / (1 + 3*0.3) = 2.5/1.9
    tp = tipping_point(2.0, hr_ud=[4.0], prevalence_difference=[0.2], p_low=0.3)
    assert tp["adjusted_hr"][0][0] == pytest.approx(2.0 * 1.9 / 2.5)
    # point to 1: (1 + 3*0.3)*2 = 1 + 3*(0.3 + d) -> d = (3.8 - 1)/3 - 0.3
    assert tp["tipping_difference"][0] == pytest.approx(2.8 / 3 - 0.3)


def test_tipping_point_rejects_protective_u():
    with pytest.raises(SpecError, match=r"^tipping_point: hr_ud values must be >= 1, got \[0.5\]$"):
        tipping_point(0.5, hr_ud=[0.5])


# --- DoWhy back-door set ------------------------------------------------------------------
DOT = "digraph { age -> surgery; age -> death; oligo -> surgery; oligo -> death; pvi -> death; surgery -> death; }"
GML = ('graph [directed 1 node [id 0 label "age"] node [id 1 label "surgery"] node [id 2 label "death"] '
       'edge [source 0 target 1] edge [source 0 target 2] edge [source 1 target 2]]')


def test_backdoor_set_dot_and_comparison():
    d = identify_adjustment_set(DOT, "surgery", "death", ["age", "pvi", "ecog"])
    assert d["minimal"] == ["age", "oligo"]
    assert d["spec_is_valid"] is False
    assert d["missing_from_spec"] == ["oligo"]
    assert d["not_in_graph"] == ["ecog"]
    assert identify_adjustment_set(DOT, "surgery", "death", ["age", "oligo"])["spec_is_valid"] is True


def test_backdoor_set_gml():
    assert identify_adjustment_set(GML, "surgery", "death", ["age"])["minimal"] == ["age"]


def test_backdoor_unknown_node():
    with pytest.raises(SpecError, match=r"^sensitivity.dag: outcome 'os' is not a node of the graph; nodes: "):
        identify_adjustment_set(DOT, "surgery", "os")


# --- refuters on a small simulated cohort ------------------------------------------------
def _cohort(seed: int = 7, n: int = 400):
    from causal_hcc.cohort import Cohort

    rng = np.random.default_rng(seed)
    fit = rng.binomial(1, 0.4, n)
    death = rng.exponential(1 / (0.05 * np.exp(-0.5 * fit)), n)
    cens = rng.uniform(10, 40, n)
    t = np.minimum(death, cens)
    delay = rng.uniform(3, 15, n)  # surgery months after time zero, as in the HCC study
    treated = (rng.binomial(1, 0.3 + 0.3 * fit) == 1) & (delay < t)  # no true effect of treatment
    df = pd.DataFrame({"id": np.arange(n), "t": t, "e": (death <= cens).astype(int), "trt": treated.astype(int),
                       "tt": np.where(treated, delay, np.nan), "fit": fit})
    return Cohort(df, id="id", time="t", event="e", treatment="trt", treatment_time="tt", confounders=["fit"])


def _strategy(design: str, adjustment: str):
    from causal_hcc import strategies

    strategies.load()
    if design not in strategies.DESIGNS or adjustment not in strategies.ADJUSTMENTS:
        pytest.skip(f"strategy {design}+{adjustment} not registered yet")
    return strategies.resolve({"design": design, "adjustment": adjustment})[0].build()


def test_placebo_exposes_immortal_time_in_naive_design():
    from causal_hcc.base import Targets
    from causal_hcc.sensitivity import refute_placebo

    r = refute_placebo(_strategy("baseline", "none"), _cohort(), None, Targets(), seed=3)
    assert r["refuter"] == "placebo_treatment"
    assert r["passed"] is False  # permuted surgery dates still "protect": immortal time
    assert r["refuted"]["ci_upper"] < 1


def test_placebo_vanishes_under_time_varying_design():
    from causal_hcc.base import Targets
    from causal_hcc.sensitivity import refute_placebo

    r = refute_placebo(_strategy("time_varying", "none"), _cohort(), None, Targets(), seed=3)
    assert r["passed"] is True
    assert r["refuted"]["ci_lower"] <= 1 <= r["refuted"]["ci_upper"]


def test_random_common_cause_and_subset():
    from causal_hcc.base import Targets
    from causal_hcc.sensitivity import refute_random_common_cause, refute_subset

    s = _strategy("baseline", "multivariable")
    c = _cohort()
    rc = refute_random_common_cause(s, c, None, Targets(), seed=1)
    assert rc["passed"] is True and rc["shift_in_se"] < 0.5
    sub = refute_subset(s, c, None, Targets(), seed=1, n_simulations=5)
    assert len(sub["subset_estimates"]) == 5 and sub["passed"] is True
    # the caller's cohort is untouched
    assert "random_common_cause" not in c.frame().columns


def test_placebo_on_the_twin_covers_null():
    """The refuter the spec asks for (configs/paper.yaml) on the digital twin: the placebo effect vanishes."""
    twin = pytest.importorskip("causal_hcc.twin")
    from causal_hcc.config import load_spec
    from causal_hcc.pipeline import build_cohort
    from causal_hcc.sensitivity import refute_placebo

    spec = load_spec("configs/paper.yaml")
    df = twin.simulate_twin(twin.TwinParams.from_spec(spec.data.twin or {}))
    cohort = build_cohort(spec, df, "twin")
    label = spec.sensitivity.refuter_strategy
    strat = next(s for s in spec.resolved_strategies() if s.label == label).build(list(spec.confounders))
    r = refute_placebo(strat, cohort, None, spec.targets, seed=spec.bootstrap.seed)
    assert r["refuted"]["ci_lower"] <= 1 <= r["refuted"]["ci_upper"]
    assert r["passed"] is True
