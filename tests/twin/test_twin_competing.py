"""The twin's competing cause of death (issue 21 item 4): liver failure competing with cancer death.

Tiny hand-checkable pieces of the competing-risks limits (Aalen–Johansen, cause-specific and
subdistribution Cox) against row-level fits, the simulator, and the truths' behaviour.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from causal_hcc.core.cox import coxph
from causal_hcc.twin import TwinParams, simulate_twin
from causal_hcc.twin import _limits as lim
from causal_hcc.twin.params import COMPETING_PRESET
from causal_hcc.twin.simulate import _draw, outcomes_given_surgery
from causal_hcc.twin.truth import estimand_truth, twin_outcome

G1 = lim.horizon_only(1e9)      # no censoring


def _toy(seed: int = 1, n: int = 600):
    rng = np.random.default_rng(seed)
    arm = np.repeat([1, 0], n)
    h1 = np.where(arm == 1, 0.7, 1.0) * 0.10           # cause 1
    h2 = np.where(arm == 1, 1.5, 1.0) * 0.05           # cause 2 (competing)
    t1, t2 = rng.exponential(1 / h1), rng.exponential(1 / h2)
    t = np.minimum(t1, t2)
    cause = np.where(t1 <= t2, 1, 2)
    return arm, t, cause


def _stats(arm, t, cause, width=0.002):
    grid = lim.Grid.make(80.0, (12.0, 24.0), width)
    st, st1 = lim.Stats(2, grid), lim.Stats(2, grid)
    a1, a0 = arm == 1, arm == 0
    # one stratum: unit i of the treat arm and unit i of the control arm (weights 1)
    s = lim.Stratum(0, 0.0, t[a1], t[a0], np.ones(a1.sum()))
    st.add(s, t[a1], t[a0], 1)
    st1.add(s, np.where(cause[a1] == 1, t[a1], np.inf), np.where(cause[a0] == 1, t[a0], np.inf), 1)
    return st, st1


def test_cif_limit_is_the_empirical_cumulative_incidence_without_censoring() -> None:
    arm, t, cause = _toy()
    st, st1 = _stats(arm, t, cause)
    F = lim.cif_limit(st, st1, 1, G1)
    e = st.grid.edges
    for a in (0, 1):
        m = arm == a
        for tt in (12.0, 24.0):
            j = int(np.flatnonzero(np.isclose(e, tt))[0])
            assert F[a][j] == pytest.approx(np.mean((t[m] <= tt) & (cause[m] == 1)), abs=1e-12)


def test_cause_specific_and_subdistribution_cox_limits_match_row_level_fits() -> None:
    arm, t, cause = _toy(2)
    st, st1 = _stats(arm, t, cause)
    Z = np.array([[0.0], [1.0]])
    cs = lim.cox_limit(st1, Z, G1, risk=st)[0]
    sd = lim.cox_limit(st1, Z, G1)[0]
    X = arm[:, None].astype(float)
    ref_cs = float(coxph(t, (cause == 1).astype(float), X, ties="efron").coef[0])
    # subdistribution risk set without censoring: a competing event keeps the patient at risk for ever
    ref_sd = float(coxph(np.where(cause == 1, t, 1e6), (cause == 1).astype(float), X, ties="efron").coef[0])
    assert cs == pytest.approx(ref_cs, abs=2e-3)
    assert sd == pytest.approx(ref_sd, abs=2e-3)
    assert abs(cs - sd) > 0.02          # the two are different quantities


def test_competing_cause_is_off_by_default_and_adds_death_cause_when_on() -> None:
    assert "death_cause" not in simulate_twin().columns
    p = TwinParams(seed=3, n=4000, **COMPETING_PRESET)
    df = simulate_twin(p)
    assert set(df["death_cause"].unique()) == {0, 1, 2}
    assert ((df["death_cause"] > 0) == (df["os_event"] == 1)).all()
    share = (df["death_cause"] == 2).sum() / (df["death_cause"] > 0).sum()
    assert 0.1 < share < 0.35
    assert twin_outcome("os_months", "cancer_death", "death_cause") == "cancer_death"
    assert twin_outcome("os_months", "os", "os_event") == "os"


def test_liver_death_before_the_surgery_date_leaves_the_patient_unoperated() -> None:
    p = TwinParams(recalibrate=False, competing_death_rate=0.05, true_hr_competing=2.0)
    pop = _draw(p, 5000, 4)
    prop = np.full(5000, 3.0)
    ev = outcomes_given_surgery(pop, p, prop)
    liver = ev["cause"] == 2
    assert (ev["t_death"][ev["operated"]] > 3.0).all()
    early = liver & (ev["t_death"] < 3.0)
    assert early.any() and not ev["operated"][early].any()
    # an operated patient's liver-failure time runs faster after surgery: t_L0 = 3 + 2 (t_L - 3)
    lp = 0.0
    for k, b in p.competing_log_hr.items():
        from causal_hcc.twin.simulate import _design_value

        lp = lp + b * _design_value(pop, p, k)
    t_l0 = pop.e_competing / (p.competing_death_rate * np.exp(lp))
    m = ev["operated"] & liver
    np.testing.assert_allclose(3.0 + 2.0 * (ev["t_death"][m] - 3.0), t_l0[m], rtol=1e-10)


_CC = {"label": "cc", "contrast": "within_grace_vs_never", "scale": "marginal", "population": "all",
       "params": {"grace": 6.0}}


def test_competing_truths_null_and_undefined() -> None:
    r = estimand_truth(_CC, TwinParams(competing_death_rate=0.01), n_large=8000, outcome="cancer_death")
    assert r["cause_specific_hr"] == 1.0 and r["cif_difference"]["12"] == 0.0
    u = estimand_truth(_CC, TwinParams(true_hr=0.7, unmeasured_confounding=0.0), n_large=8000,
                       outcome="cancer_death")
    assert not u["defined"] and "competing_death_rate" in u["note"]


def test_surgery_that_only_raises_liver_failure_lowers_the_cancer_cif_not_its_cause_specific_hazard() -> None:
    # no effect on cancer death, liver failure x2 after surgery: the total effect on the cumulative incidence
    # of cancer death is negative (fewer live long enough to die of cancer); the cause-specific HR is 1
    p = TwinParams(unmeasured_confounding=0.0, competing_death_rate=0.02, true_hr_competing=2.0)
    r = estimand_truth(_CC, p, n_large=40_000, outcome="cancer_death")
    se = r["mc_se"]
    assert abs(math.log(r["cause_specific_hr"])) < 4 * se["cause_specific_hr"] + 1e-3
    assert r["cif_difference"]["24"] < -4 * se["cif_difference"]["24"]
    assert r["subdistribution_hr"] < r["cause_specific_hr"]
    os_ = estimand_truth(_CC, p, n_large=40_000, outcome="os")
    assert os_["hr"] > 1.0
