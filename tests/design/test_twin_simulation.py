"""Immortal-time bias on the digital twin: Monte Carlo over seeds.

Scenario: the twin with measured confounding only (``unmeasured_confounding
= 0``: the unmeasured fitness U then drives candidacy but not survival),
default surgery delay (median 2.5 months). Surgery is only possible while
alive and progression-free, so progression-free status is declared as the
eligibility state (``require_event_free: pfs``) wherever a design uses one.
Confounders: the covariates that drive death in the twin.

* true HR 1: the truth is exactly "no effect" for every estimand; the naive
  comparison must be biased (median about 0.65), and landmark(3) +
  multivariable, time-varying(pfs) + multivariable, sequential trials + IPTW
  (ATT within trial) and clone-censor-weight must have median HR within 0.05
  of 1 (slow test, 200 seeds, n = 150 as the study). Their 95% CIs must
  cover within 2.58 Monte Carlo SEs of 95%: at n = 150 with the
  whole-pipeline bootstrap (``variance: bootstrap``; percentile interval, and
  for landmark + multivariable the normal interval with the bootstrap SE),
  since the default Wald intervals cover only about 90% there
  (``coverage_replicate`` computes every method; ``benchmarks/coverage_study.py``
  writes the table of ``docs/immortal_time.md``); at n = 600 with the
  default SE. The CI version runs 8 seeds of n = 400 with a tolerance of 3
  Monte Carlo SEs of the median, checks that the Monte Carlo's bootstrap
  interval is the pipeline's, and the coverage arithmetic on hand-made rows.
* true HR 0.7 (slow): clone-censor-weight with a grace period covering all
  follow-up ("operate when eligible, as surgeons do" vs "never") must recover
  the twin's truth (``causal_hcc.twin.truth``: the same contrast), sequential
  trials per protocol + IPTW(ATT) its design-specific truth
  (:mod:`tests.design._twin_truth`), and the time-varying Cox adjusted for
  progression the structural HR.

Default SE: landmark + multivariable the Cox model SE; the others the
patient-clustered robust SE with weights treated as fixed (the pipeline's
default for clone-censor is the bootstrap).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, norm

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.core.cox import coxph
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
NULL_METHODS = ("landmark(3)+multivariable", "time_varying(pfs)+multivariable", "sequential_trials+iptw(ATT)",
                "clone_censor(3)")
CI_STRATEGIES = ("naive", "landmark(3)+multivariable", "sequential_trials+iptw(ATT)", "clone_censor(3)")


def make_cohort(seed: int, n: int, true_hr: float) -> Cohort | None:
    """The twin cohort of one seed (measured confounding only); None if the data are refused."""
    df = simulate_twin(TwinParams(seed=seed, n=n, true_hr=true_hr, unmeasured_confounding=0.0))
    try:
        return Cohort(df, id="id", time="os_months", event="os_event", treatment="surgery",
                      treatment_time="months_to_surgery", confounders=CONFOUNDERS,
                      outcomes={"pfs": ("pfs_months", "pfs_event")})
    except DataError:  # e.g. a time rounded to 0 by the twin's 4-decimal output; counted as failed
        return None


def replicate(seed: int, n: int, true_hr: float, strategies: dict | None = None) -> dict[str, tuple[float, float, float]]:
    """(HR, CI low, CI high) of each strategy on one twin cohort; NaNs when a fit fails."""
    strategies = strategies or STRATEGIES
    cohort = make_cohort(seed, n, true_hr)
    if cohort is None:
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


# ---------------------------------------------------------------- coverage at n = 150, by variance method
#: strategies whose default SE is a robust sandwich (G/(G-1) applies)
SANDWICH = ("time_varying(pfs)+multivariable", "sequential_trials+iptw(ATT)", "clone_censor(3)")
#: unweighted Cox models (the LR test / profile-likelihood CI is valid)
LIKELIHOOD = ("landmark(3)+multivariable", "time_varying(pfs)+multivariable")
Z = float(norm.ppf(0.975))
METHODS = ("default", "default x G/(G-1)", "profile likelihood", "bootstrap percentile", "bootstrap normal")


def _lr_and_model_se(data: Any) -> tuple[float, float, float]:
    """(log HR, model SE, LR statistic for beta_treatment = 0) of the
    multivariable Cox model on the design's rows, refitted as
    :class:`causal_hcc.adjust.multivariable.Multivariable` fits it."""
    keep = np.ptp(data.X, axis=0) > 0
    Xc = data.X[:, keep].astype(float)
    entry = data.start if np.any(data.start > 0) else None
    full = coxph(data.stop, data.event, np.column_stack([data.treatment.astype(float), Xc]), entry=entry,
                 strata=data.stratum, robust=False)
    red = coxph(data.stop, data.event, Xc, entry=entry, strata=data.stratum, robust=False)
    return float(full.coef[0]), float(np.sqrt(full.var[0, 0])), float(2 * (full.loglik - red.loglik))


def coverage_replicate(seed: int, n: int, replicates: int, names: tuple[str, ...] = NULL_METHODS) -> list[dict]:
    """Every variance method for every strategy on twin cohort ``seed`` (true HR 1)."""
    from threadpoolctl import threadpool_limits

    from causal_hcc.inference import bootstrap_many

    rows: list[dict] = []
    cohort = make_cohort(seed, n, 1.0)
    if cohort is None:
        return [{"seed": seed, "strategy": nm, "failed": "cohort"} for nm in names]
    targets = Targets()
    strategies, points = [], {}
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for nm in names:
            s = resolve(STRATEGIES[nm])[0].build()
            row: dict[str, Any] = {"seed": seed, "strategy": nm, "failed": ""}
            try:
                with np.errstate(all="ignore"):
                    out = s.fit(cohort, "os", targets)
            except Exception as exc:  # a failed point fit is counted, as in the tests
                row["failed"] = type(exc).__name__
                rows.append(row)
                continue
            hr = next(e for e in out.estimates if e.measure == "hr")
            data = s.design.data_
            row.update(log_hr=math.log(hr.estimate), se_default=hr.se, vm_default=hr.variance_method,
                       lo_default=math.log(hr.ci_lower), hi_default=math.log(hr.ci_upper),
                       patients=int(np.unique(data.patient).size), n_treated=hr.n_treated, events=hr.events)
            if nm in LIKELIHOOD:
                b, se_model, lr = _lr_and_model_se(data)
                assert abs(b - row["log_hr"]) < 1e-6, (nm, seed, b, row["log_hr"])
                row.update(se_model=se_model, lr_null=lr)
            strategies.append(s)
            points[(s.label, "os")] = out
            row["label"] = s.label
            rows.append(row)
        if replicates and strategies:
            boots = bootstrap_many(strategies, cohort, ["os"], targets, points, replicates=replicates, seed=seed,
                                   n_jobs=1, only_needed=False)
            for row in rows:
                if row.get("label") is None:
                    continue
                res = boots[(row["label"], "os")]
                e = next(e for e in res.estimates if e.measure == "hr")
                row.update(se_boot=e.se, lo_boot=math.log(e.ci_lower), hi_boot=math.log(e.ci_upper),
                           boot_failed=int(res.diagnostics["bootstrap"]["failed"]))
    return rows


def covers(df: pd.DataFrame, method: str, truth: float = 0.0) -> pd.Series:
    """Whether each row's interval of ``method`` covers ``truth`` (log scale); NaN if not applicable."""
    b = df["log_hr"]
    if method == "default":
        return ((df["lo_default"] <= truth) & (truth <= df["hi_default"])).astype(float)
    if method == "default x G/(G-1)":
        se = df["se_default"] * np.sqrt(df["patients"] / (df["patients"] - 1))
        ok = df["strategy"].isin(SANDWICH)
        return ((b - Z * se <= truth) & (truth <= b + Z * se)).astype(float).where(ok)
    if method == "profile likelihood":
        if truth != 0.0:
            raise ValueError("profile-likelihood coverage is computed as the LR test at the null only")
        return (df["lr_null"] <= chi2.ppf(0.95, 1)).astype(float).where(df["lr_null"].notna())
    if method == "bootstrap percentile":
        return ((df["lo_boot"] <= truth) & (truth <= df["hi_boot"])).astype(float).where(df["lo_boot"].notna())
    if method == "bootstrap normal":
        return ((b - Z * df["se_boot"] <= truth) & (truth <= b + Z * df["se_boot"])).astype(float).where(
            df["se_boot"].notna())
    raise ValueError(method)


def coverage_summary(df: pd.DataFrame, truth: float = 0.0) -> pd.DataFrame:
    """strategy x variance method: median HR, SD of log HR, mean SE, coverage, MC SE, failures."""
    out = []
    for nm, g in df.groupby("strategy", sort=False):
        ok = g[g["failed"].fillna("") == ""]
        b = ok["log_hr"]
        ses = {"default": ok["se_default"],
               "default x G/(G-1)": ok["se_default"] * np.sqrt(ok["patients"] / (ok["patients"] - 1)),
               "profile likelihood": ok.get("se_model"), "bootstrap percentile": ok.get("se_boot"),
               "bootstrap normal": ok.get("se_boot")}
        for m in METHODS:
            c = covers(ok, m, truth) if m != "profile likelihood" or "lr_null" in ok else pd.Series(np.nan)
            c = c.dropna()
            if c.empty:
                continue
            se = ses[m]
            out.append({
                "strategy": nm, "variance": m, "seeds": int(len(g)), "failed": int(len(g) - len(ok)),
                "median HR": float(np.exp(np.median(b))), "mean log HR": float(b.mean()),
                "SD log HR": float(b.std(ddof=1)),
                "mean SE": float(se.mean()) if se is not None else math.nan,
                "coverage": float(c.mean()), "MC SE": float(math.sqrt(0.95 * 0.05 / len(c))),
                "replicates used": int(len(c)),
            })
    return pd.DataFrame(out)


def coverage_markdown(tab: pd.DataFrame) -> str:
    cols = ["strategy", "variance", "median HR", "SD log HR", "mean SE", "coverage", "failed"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in tab.iterrows():
        lines.append(f"| {r['strategy']} | {r['variance']} | {r['median HR']:.3f} | {r['SD log HR']:.3f} | "
                     f"{r['mean SE']:.3f} | {r['coverage']:.3f} | {r['failed']} |")
    return "\n".join(lines)


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


def test_ci_coverage_replicate_uses_the_pipeline_bootstrap():
    """The Monte Carlo's bootstrap interval is the one ``variance: bootstrap``
    reports (bootstrap_strategy, 2 workers), and its LR refit reproduces the
    strategy's own log HR."""
    from causal_hcc.inference import bootstrap_strategy

    names = ("landmark(3)+multivariable", "clone_censor(3)")
    rows = {r["strategy"]: r for r in coverage_replicate(5, 150, 20, names)}
    cohort = make_cohort(5, 150, 1.0)
    for nm in names:
        s = resolve({**STRATEGIES[nm], "variance": "bootstrap"})[0].build()
        assert s.needs_bootstrap
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            point = s.fit(cohort, "os", Targets())
            boot = bootstrap_strategy(s, cohort, "os", Targets(), point, replicates=20, seed=5, n_jobs=2)
        e = next(e for e in boot.estimates if e.measure == "hr")
        assert e.variance_method == "bootstrap"
        r = rows[nm]
        assert r["log_hr"] == pytest.approx(math.log(e.estimate), abs=1e-12)
        assert (r["lo_boot"], r["hi_boot"], r["se_boot"]) == pytest.approx(
            (math.log(e.ci_lower), math.log(e.ci_upper), e.se), abs=1e-12)
    assert rows["landmark(3)+multivariable"]["lr_null"] >= 0


def test_ci_coverage_indicators_by_hand():
    """Each interval of the coverage table on two hand-made rows (log scale, truth 0)."""
    df = pd.DataFrame({
        "strategy": ["clone_censor(3)", "landmark(3)+multivariable"],
        "log_hr": [0.40, -0.50], "se_default": [0.2, 0.3], "lo_default": [0.40 - Z * 0.2, -0.50 - Z * 0.3],
        "hi_default": [0.40 + Z * 0.2, -0.50 + Z * 0.3], "patients": [3, 150],
        "lr_null": [np.nan, 3.9], "se_boot": [0.25, 0.2], "lo_boot": [-0.01, -0.9], "hi_boot": [0.8, -0.05],
        "failed": ["", ""]})
    # clone: 0.4 - 1.96*0.2 = 0.008 > 0 (misses); x sqrt(3/2): 0.4 - 1.96*0.245 = -0.08 (covers)
    assert covers(df, "default").tolist() == [0.0, 1.0]
    assert covers(df, "default x G/(G-1)").fillna(-1).tolist() == [1.0, -1]
    assert covers(df, "profile likelihood").fillna(-1).tolist() == [-1, 0.0]   # 3.9 > 3.84
    assert covers(df, "bootstrap percentile").tolist() == [1.0, 0.0]
    assert covers(df, "bootstrap normal").tolist() == [1.0, 0.0]            # -0.5 + 1.96*0.2 < 0
    tab = coverage_summary(df).set_index(["strategy", "variance"])
    assert tab.loc[("clone_censor(3)", "default x G/(G-1)"), "mean SE"] == pytest.approx(0.2 * math.sqrt(1.5))
    assert ("clone_censor(3)", "profile likelihood") not in tab.index


# ---------------------------------------------------------------- slow version


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
    reps = run(range(200), 600, 1.0, NULL_METHODS, n_jobs=2)
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
    assert abs(v["coverage"] - 0.95) <= 2.58 * mc, v


#: bootstrap replicates per cohort in the n = 150 coverage study (as in docs/immortal_time.md)
COVERAGE_B = 300
#: the interval that reaches 95% at n = 150, per strategy (docs/immortal_time.md has every method):
#: the pipeline's `variance: bootstrap` percentile interval, except for landmark + multivariable,
#: whose percentile interval under-covers like its model-based Wald interval (skewed, biased
#: small-sample log HR) and only the normal interval with the bootstrap SE reaches 95%
NOMINAL_AT_150 = {
    "landmark(3)+multivariable": "bootstrap normal",
    "time_varying(pfs)+multivariable": "bootstrap percentile",
    "sequential_trials+iptw(ATT)": "bootstrap percentile",
    "clone_censor(3)": "bootstrap percentile",
}


@pytest.fixture(scope="module")
def null_coverage_150():
    from joblib import Parallel, delayed

    rows = Parallel(n_jobs=2)(delayed(coverage_replicate)(s, 150, COVERAGE_B) for s in range(200))
    tab = coverage_summary(pd.DataFrame([r for rr in rows for r in rr]))
    print(f"\ntrue HR 1, n = 150, 200 seeds, B = {COVERAGE_B}\n" + coverage_markdown(tab))
    return tab.set_index(["strategy", "variance"])


@pytest.mark.slow
@pytest.mark.parametrize("name,method", list(NOMINAL_AT_150.items()))
def test_null_coverage_150(null_coverage_150, name, method):
    """At the study's size (n = 150, about 15 operated patients at risk)
    the default Wald intervals cover about 90%; the whole-pipeline bootstrap
    reaches 95% within 2.58 Monte Carlo SEs (99% two-sided)."""
    v = null_coverage_150.loc[(name, method)]
    mc = math.sqrt(0.95 * 0.05 / v["replicates used"])
    assert abs(v["coverage"] - 0.95) <= 2.58 * mc, v.to_dict()


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
