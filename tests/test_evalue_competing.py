"""E-values of the risk ratio and the competing-risks measures (issues 20/21).

Published values: VanderWeele & Ding (2017) RR 3.9 (1.8-8.7) -> 7.26 (CI 3.00); Zhang et al. HR 0.195
(0.061-0.626), common outcome, VanderWeele's (2020) square-root conversion -> 5.46 (2.11). The rest by
hand from RR + sqrt(RR (RR - 1)).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.results import EffectEstimate
from causal_hcc.sensitivity import competing_risk_at_end, evalue_for_estimate


def e_rr(rr: float) -> float:
    r = rr if rr >= 1 else 1 / rr
    return r + math.sqrt(r * (r - 1))


def cif_table(arms: dict[str, tuple[list[float], list[float], list[float]]]) -> pd.DataFrame:
    """A cumulative-incidence curve table as estimate_competing_effects writes it: per arm and cause."""
    parts = []
    for arm, (time, f1, f2) in arms.items():
        for k, f in ((1, f1), (2, f2)):
            parts.append(pd.DataFrame({"time": [0.0, *time], "group": f"{arm}: cause {k}", "surv": [0.0, *f]}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("measure", ["risk_ratio", "cif_ratio"])
def test_risk_ratios_take_the_evalue_directly(measure):
    ev = evalue_for_estimate(EffectEstimate(measure, 3.9, 0.4, 1.8, 8.7, time=12.0), common=True)
    assert round(ev.point, 2) == 7.26 and round(ev.ci, 2) == 3.00
    assert ev.conversion == "none" and "used directly" in ev.note
    # protective: symmetric in 1/RR; a CI covering 1 needs no confounding
    ev = evalue_for_estimate(EffectEstimate(measure, 0.5, 0.3, 0.3, 1.2, time=12.0), common=True)
    assert ev.point == pytest.approx(e_rr(2.0)) and ev.ci == 1.0


def test_cif_difference_by_hand():
    # the comparator arm (clone-censor's "never treat": written first) has cumulative incidence 0.2 at 12;
    # difference -0.1 -> 0.1 / 0.2 = RR 0.5; the CI limit nearer the null (-0.04) -> RR 0.8
    tab = cif_table({"never treat": ([6.0, 12.0], [0.1, 0.2], [0.05, 0.1]),
                     "treat within 3": ([6.0, 12.0], [0.05, 0.1], [0.1, 0.2])})
    ev = evalue_for_estimate(EffectEstimate("cif_difference", -0.1, 0.03, -0.16, -0.04, time=12.0), common=True,
                             curves=tab)
    assert ev.rr == pytest.approx(0.5) and ev.point == pytest.approx(e_rr(0.5))
    assert ev.rr_ci == pytest.approx(0.8) and ev.ci == pytest.approx(e_rr(0.8))
    assert ev.conversion == "cif-difference" and "0.200" in ev.note
    # the value at t is the step function's (last time <= t)
    ev9 = evalue_for_estimate(EffectEstimate("cif_difference", -0.05, 0.02, -0.09, -0.01, time=9.0), common=True,
                              curves=tab)
    assert ev9.rr == pytest.approx(0.5)
    assert math.isnan(evalue_for_estimate(EffectEstimate("cif_difference", -0.1, 0.03, -0.16, -0.04, time=12.0),
                                          common=True).point)


# arm A: cause 1 hazard 0.1 at t = 1 and t = 3, cause 2 hazard 0.5 at t = 2. F1 = 0.1, 0.1, 0.1 + 0.45 * 0.1 =
# 0.145; F2 = 0, 0.45, 0.45; the cause-specific cumulative hazard is 0.2 -> risk 1 - exp(-0.2) = 0.181
ARM_A = ([1.0, 2.0, 3.0], [0.1, 0.1, 0.145], [0.0, 0.45, 0.45])
ARM_B = ([1.0, 2.0, 3.0], [0.05, 0.05, 0.08], [0.0, 0.2, 0.2])


def test_risk_behind_each_hazard_ratio_by_hand():
    tab = cif_table({"untreated": ARM_B, "treated": ARM_A})
    assert competing_risk_at_end(tab, "subdistribution_hr") == pytest.approx(0.145)
    assert competing_risk_at_end(tab, "cause_specific_hr") == pytest.approx(1 - math.exp(-0.2))


def test_subdistribution_hr_rare_and_common():
    # cumulative incidence of the event of interest 0.145 < 15%: the sHR is used as a risk ratio
    tab = cif_table({"untreated": ARM_B, "treated": ARM_A})
    ev = evalue_for_estimate(EffectEstimate("subdistribution_hr", 0.188, 0.5, 0.059, 0.602), common=True,
                             curves=tab)
    assert ev.conversion == "hr-rare" and round(ev.point, 2) == 10.11 and round(ev.ci, 2) == 2.71
    # above 15%: VanderWeele's square-root conversion (Zhang et al.'s published 5.46, 2.11)
    common = cif_table({"untreated": ARM_B, "treated": ([1.0, 2.0, 3.0], [0.1, 0.1, 0.3], [0.0, 0.45, 0.45])})
    ev = evalue_for_estimate(EffectEstimate("subdistribution_hr", 0.195, 0.5, 0.061, 0.626), common=False,
                             curves=common)
    assert ev.conversion == "hr-common" and round(ev.point, 2) == 5.46 and round(ev.ci, 2) == 2.11
    assert "VanderWeele 2020" in ev.note


def test_cause_specific_hr_uses_the_cause_specific_risk():
    # same curves: F1 = 0.145 is rare, but the cause-specific risk 0.181 is not -> square-root conversion
    tab = cif_table({"untreated": ARM_B, "treated": ARM_A})
    ev = evalue_for_estimate(EffectEstimate("cause_specific_hr", 0.195, 0.5, 0.061, 0.626), common=False,
                             curves=tab)
    assert ev.conversion == "hr-common" and round(ev.point, 2) == 5.46
    assert "Young et al. 2020" in ev.note
    # without curves (a model adjusted for covariates) the caller's judgement decides
    ev = evalue_for_estimate(EffectEstimate("cause_specific_hr", 0.188, 0.5, 0.059, 0.602), common=False)
    assert ev.conversion == "hr-rare" and round(ev.point, 2) == 10.11


def test_survival_difference_reads_the_comparator_arm_by_position():
    # clone-censor's arms are "never treat" / "treat within G": the comparator is the first group
    tab = pd.DataFrame({"time": [12.0, 12.0], "group": ["never treat", "treat within 3"], "surv": [0.5, 0.7]})
    ev = evalue_for_estimate(EffectEstimate("survival_difference", 0.2, 0.05, 0.1, 0.3, time=12.0), common=True,
                             curves=tab)
    assert ev.point == pytest.approx(e_rr(0.6))


def test_evalues_for_a_competing_risks_result():
    """Every competing-risks row of a real run gets a finite E-value, and the report's table lists them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from competing_data import make_competing_frame

    from causal_hcc.config import parse_spec
    from causal_hcc.pipeline import run_analysis
    from causal_hcc.report.sections.sensitivity import evalue_rows, no_evalue_strategies
    from causal_hcc.sensitivity import CAUSE_SPECIFIC_NOTE, NOT_CONFOUNDING_NOTE, evalues_for_result

    spec = parse_spec({"study": "ev",
                       "roles": {"id": "patient_no", "time": "fu_months", "event": "cause", "treatment": "operated",
                                 "treatment_time": "months_to_op"},
                       "competing": [2], "confounders": ["fit_pt", "stage", "age_y"],
                       "strategies": [{"design": "landmark", "adjustment": "iptw", "landmark": 3},
                                      {"design": "clone_censor", "grace": 6}, {"name": "iptw", "estimand": "ATE"}],
                       "estimands": {"survival_at": [12, 24]}, "bootstrap": {"replicates": 0},
                       "report": {"min_cell": 0}})
    res = run_analysis(spec, make_competing_frame(n=300, seed=3))
    rows = evalues_for_result(res)
    for strategy in ("landmark(3)+iptw(ATE)", "clone_censor(6)"):
        by = {(r["measure"], r["time"]): r for r in rows if r["strategy"] == strategy}
        for m, t in (("cif_difference", 12.0), ("cif_ratio", 24.0)):
            assert np.isfinite(by[(m, t)]["evalue"]) and by[(m, t)]["evalue"] > 1
        # the ratio's E-value is that of its own risk ratio; the difference's, of the ratio it implies (the
        # comparator's cumulative incidence read from clone-censor's "never treat" arm)
        r = by[("cif_ratio", 24.0)]
        assert r["evalue"] == pytest.approx(e_rr(r["estimate"]))
        assert by[("cif_difference", 24.0)]["evalue"] == pytest.approx(r["evalue"], rel=1e-9)
        sub = next(v for (m, _), v in by.items() if m == "subdistribution_hr")
        assert np.isfinite(sub["evalue"]) and "VanderWeele 2020" in sub["note"]
        csh = next(v for (m, _), v in by.items() if m == "cause_specific_hr")
        assert math.isnan(csh["evalue"]) and csh["note"] == CAUSE_SPECIFIC_NOTE
    # ever vs never (a treatment time with a baseline design): immortal time, no E-value for any row
    assert all(r["note"] == NOT_CONFOUNDING_NOTE for r in rows if r["strategy"] == "iptw(ATE)")
    table = evalue_rows(res)
    assert {"cif difference", "cif ratio", "cause specific hr", "subdistribution hr"} <= {t["measure"] for t in table}
    assert no_evalue_strategies(res) == ["iptw(ATE)"]
