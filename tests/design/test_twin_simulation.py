"""Immortal-time bias on the digital twin: Monte Carlo over seeds.

Scenario: the twin with measured confounding only (``unmeasured_confounding
= 0``: the unmeasured fitness U then drives candidacy but not survival),
default surgery delay (median 2.5 months). Surgery is only possible while
alive and progression-free, so progression-free status is declared as the
eligibility state (``require_event_free: pfs``) wherever a design uses one.
Confounders: the covariates that drive death in the twin.

* true HR 1: the truth is exactly "no effect" for every estimand; the naive
  comparison must be biased (median about 0.65), and landmark(3) +
  multivariable, sequential trials + IPTW (ATT within trial) and
  clone-censor-weight must have median HR within 0.05 of 1 (slow test, 200
  seeds, n = 150 as the study) and 95% CI coverage within Monte Carlo error
  of 95% (checked at n = 600: at n = 150 Wald intervals under-cover, see
  ``test_null_coverage``). The CI version runs 8 seeds of n = 400 with a tolerance of 3 Monte
  Carlo SEs of the median.
* true HR 0.7 (slow): clone-censor-weight with a grace period covering all
  follow-up ("operate when eligible, as surgeons do" vs "never") must recover
  the twin's truth (``causal_hcc.twin.truth``: the same contrast), sequential
  trials per protocol + IPTW(ATT) its design-specific truth
  (:mod:`tests.design._twin_truth`), and the time-varying Cox adjusted for
  progression the structural HR.

Coverage uses each strategy's default analytic SE; for clone-censor that is
the patient-clustered robust SE with the weights treated as fixed (the
pipeline's default for it is the whole-pipeline bootstrap, too slow for 200
x B fits here).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.errors import DataError
from causal_hcc.strategies import resolve
from causal_hcc.twin import TwinParams, simulate_twin

CONFOUNDERS = ["portal_vein_invasion", "first_line_effective", "lung_met", "bone_met", "oligometastases",
               "metastatic_sd", "bclc_d"]
GRID, WINDOW = 0.25, 6.0
STRATEGIES = {
    "naive": "naive",
    "landmark(3)+multivariable": {"design": "landmark", "adjustment": "multivariable", "landmark": 3,
                                  "require_event_free": "pfs"},
    "time_varying(pfs)+multivariable": {"design": "time_varying", "adjustment": "multivariable",
                                        "adjust_state": "pfs"},
    "sequential_trials+iptw(ATT)": {"design": "sequential_trials", "adjustment": "iptw", "estimand": "ATT",
                                    "require_event_free": "pfs", "grid": GRID, "window": WINDOW},
    "sequential_trials(pp)+iptw(ATT)": {"design": "sequential_trials", "adjustment": "iptw", "estimand": "ATT",
                                        "require_event_free": "pfs", "grid": GRID, "window": WINDOW,
                                        "analysis": "per_protocol"},
    "clone_censor(3)": {"design": "clone_censor", "grace": 3, "require_event_free": "pfs"},
    "clone_censor(84)": {"design": "clone_censor", "grace": 84, "require_event_free": "pfs"},
}
CI_STRATEGIES = ("naive", "landmark(3)+multivariable", "sequential_trials+iptw(ATT)", "clone_censor(3)")


def replicate(seed: int, n: int, true_hr: float, strategies: dict | None = None) -> dict[str, tuple[float, float, float]]:
    """(HR, CI low, CI high) of each strategy on one twin cohort; NaNs when a fit fails."""
    df = simulate_twin(TwinParams(seed=seed, n=n, true_hr=true_hr, unmeasured_confounding=0.0))
    strategies = strategies or STRATEGIES
    try:
        cohort = Cohort(df, id="id", time="os_months", event="os_event", treatment="surgery",
                        treatment_time="months_to_surgery", confounders=CONFOUNDERS,
                        outcomes={"pfs": ("pfs_months", "pfs_event")})
    except DataError:  # e.g. a time rounded to 0 by the twin's 4-decimal output; counted as failed
        return {name: (math.nan, math.nan, math.nan) for name in strategies}
    out = {}
    for name, entry in strategies.items():
        strategy = resolve(entry)[0].build()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = strategy.fit(cohort, "os", Targets()).estimates
            hr = next(e for e in est if e.measure == "hr")
            out[name] = (hr.estimate, hr.ci_lower, hr.ci_upper)
        except Exception:  # a failed fit counts as missing; the table reports how many
            out[name] = (math.nan, math.nan, math.nan)
    return out


def summarise(reps: list[dict], truth: dict[str, float]) -> dict[str, dict[str, float]]:
    """Median HR, MC SE of the log median, coverage, failures per strategy."""
    table = {}
    for name in reps[0]:
        a = np.array([r[name] for r in reps], dtype=float)
        ok = np.isfinite(a[:, 0]) & (a[:, 0] > 0)
        b = np.log(a[ok, 0])
        t = truth.get(name, math.nan)
        table[name] = {
            "median_hr": float(np.exp(np.median(b))),
            "mcse_log_median": float(1.2533 * b.std(ddof=1) / math.sqrt(b.size)),
            "coverage": float(np.mean((a[ok, 1] <= t) & (t <= a[ok, 2]))) if math.isfinite(t) else math.nan,
            "truth": t, "failed": int((~ok).sum()), "replicates": int(ok.sum()),
        }
    return table


def format_table(table: dict) -> str:
    lines = ["| strategy | truth | median HR | MC SE (log) | coverage | failed |", "|---|---|---|---|---|---|"]
    for k, v in table.items():
        lines.append(f"| {k} | {v['truth']:.3f} | {v['median_hr']:.3f} | {v['mcse_log_median']:.3f} | "
                     f"{v['coverage']:.3f} | {v['failed']} |")
    return "\n".join(lines)


def run(seeds, n, true_hr, names=tuple(STRATEGIES), n_jobs: int = 1, strategies: dict | None = None):
    from joblib import Parallel, delayed

    strategies = strategies or STRATEGIES
    chosen = {k: strategies[k] for k in names}
    reps = Parallel(n_jobs=n_jobs)(delayed(replicate)(s, n, true_hr, chosen) for s in seeds)
    return reps


# ---------------------------------------------------------------- CI version
@pytest.fixture(scope="module")
def ci_table():
    reps = run(range(8), 400, 1.0, CI_STRATEGIES)
    table = summarise(reps, {k: 1.0 for k in CI_STRATEGIES})
    print("\n" + format_table(table))
    return table


def test_ci_naive_is_biased(ci_table):
    v = ci_table["naive"]
    assert v["median_hr"] < math.exp(-3 * v["mcse_log_median"]) and v["median_hr"] < 0.8


@pytest.mark.parametrize("name", CI_STRATEGIES[1:])
def test_ci_time_zero_designs_unbiased_under_null(ci_table, name):
    v = ci_table[name]
    assert v["failed"] == 0
    assert abs(math.log(v["median_hr"])) <= 3 * v["mcse_log_median"], v


# ---------------------------------------------------------------- slow version
NULL_METHODS = ("landmark(3)+multivariable", "sequential_trials+iptw(ATT)", "clone_censor(3)")


@pytest.fixture(scope="module")
def null_table():
    reps = run(range(200), 150, 1.0, n_jobs=2)
    table = summarise(reps, {k: 1.0 for k in STRATEGIES})
    print("\ntrue HR 1, n = 150, 200 seeds\n" + format_table(table))
    return table


@pytest.mark.slow
def test_null_naive_biased(null_table):
    assert 0.55 <= null_table["naive"]["median_hr"] <= 0.75


@pytest.mark.slow
@pytest.mark.parametrize("name", NULL_METHODS)
def test_null_median_within_005(null_table, name):
    assert abs(null_table[name]["median_hr"] - 1.0) <= 0.05, null_table[name]


@pytest.fixture(scope="module")
def null_table_600():
    reps = run(range(200), 600, 1.0, NULL_METHODS + ("time_varying(pfs)+multivariable",), n_jobs=2)
    table = summarise(reps, {k: 1.0 for k in STRATEGIES})
    print("\ntrue HR 1, n = 600, 200 seeds\n" + format_table(table))
    return table


@pytest.mark.slow
@pytest.mark.parametrize("name", NULL_METHODS)
def test_null_coverage(null_table_600, name):
    """Coverage at n = 600: at n = 150 (about 15 treated events) every Wald
    interval under-covers (about 0.90: the spread of log HR over seeds is
    ~15% above the mean SE), a small-sample property of Cox Wald intervals,
    not of the designs; at n = 600 SE and spread agree."""
    v = null_table_600[name]
    mc = math.sqrt(0.95 * 0.05 / v["replicates"])
    assert abs(v["coverage"] - 0.95) <= 2.58 * mc + 0.01, v


@pytest.fixture(scope="module")
def benefit_table():
    from causal_hcc.twin.truth import truth

    from tests.design._twin_truth import sequential_trials_att_truth

    p = TwinParams(true_hr=0.7, unmeasured_confounding=0.0)
    tr = {"clone_censor(84)": truth(p)["hr"], "time_varying(pfs)+multivariable": 0.7,
          "sequential_trials(pp)+iptw(ATT)": sequential_trials_att_truth(p, GRID, WINDOW)}
    reps = run(range(200), 150, 0.7, n_jobs=2)
    table = summarise(reps, tr)
    print("\ntrue HR 0.7, n = 150, 200 seeds\n" + format_table(table))
    return table


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clone_censor(84)", "sequential_trials(pp)+iptw(ATT)",
                                  "time_varying(pfs)+multivariable"])
def test_benefit_recovers_truth(benefit_table, name):
    v = benefit_table[name]
    assert abs(v["median_hr"] - v["truth"]) <= 0.05, v
