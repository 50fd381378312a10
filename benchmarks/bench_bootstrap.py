"""Benchmark (a): per-replicate time of the IPTW bootstrap pipeline.

The pipeline, identical in the three implementations: resample the patients
with replacement; logistic propensity score on the confounders; ATE weights
1/e and 1/(1-e); weighted Cox HR of treatment (Efron ties) with the robust
sandwich SE; weighted Kaplan-Meier per arm with its variance.

* **causal_hcc**: the public ``iptw`` strategy (baseline design + iptw(ATE))
  bootstrapped by :func:`causal_hcc.inference.bootstrap_strategy`, one
  process (replicates skip the diagnostics the bootstrap discards; they
  still build curve tables and the median difference).
* **lifelines + scikit-learn**, as a user writes it today:
  ``LogisticRegression(C=inf)``, ``CoxPHFitter(weights_col, robust=True)``,
  ``KaplanMeierFitter(weights=)`` per arm; timed twice, with the default
  BLAS threads and with one BLAS thread (as our replicates run).
* **R** (``benchmarks/r/iptw_bootstrap.R``): ``glm``, ``coxph(weights,
  robust=TRUE)``, ``survfit(weights, id, robust=TRUE)`` (IJ variance).

Data: ``survival::veteran`` (137 patients, trt) and ``survival::rotterdam``
(2,982 patients, hormonal therapy, death), exported to ``benchmarks/data``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd

from _common import DATASETS, load_dataset, markdown_table, run_r, write_result


def ours(name: str, B: int, n_jobs: int = 1) -> dict:
    from causal_hcc.base import Targets
    from causal_hcc.cohort import Cohort
    from causal_hcc.inference import bootstrap_strategy
    from causal_hcc.strategies import resolve

    d = DATASETS[name]
    df = load_dataset(name)
    cohort = Cohort(df, id="id", time=d["time"], event=d["event"], treatment="a", confounders=d["confounders"],
                    categorical=d["categorical"])
    strat = resolve({"name": "iptw", "estimand": "ATE"})[0].build()
    targets = Targets()
    point = strat.fit(cohort, "os", targets)
    bootstrap_strategy(strat, cohort, "os", targets, point, replicates=2, seed=0)  # warm-up (imports, caches)
    t0 = time.perf_counter()
    res = bootstrap_strategy(strat, cohort, "os", targets, point, replicates=B, seed=1, n_jobs=n_jobs)
    el = time.perf_counter() - t0
    hr = res.estimates[0]
    return {"ms_per_replicate": 1000 * el / B, "replicates": B, "n": cohort.n, "hr": hr.estimate,
            "robust_se_log_hr": point.estimates[0].se, "bootstrap_se_log_hr": hr.se,
            "failed": res.diagnostics["bootstrap"]["failed"]}


def _design(df: pd.DataFrame, name: str) -> np.ndarray:
    d = DATASETS[name]
    X = pd.get_dummies(df[d["confounders"]], columns=d["categorical"], drop_first=True, dtype=float)
    return X.to_numpy(dtype=float)


def lifelines_replicate(T: np.ndarray, E: np.ndarray, A: np.ndarray, X: np.ndarray, idx: np.ndarray) -> float:
    """One replicate as a user writes it with lifelines + scikit-learn."""
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from sklearn.linear_model import LogisticRegression

    t, e, a, x = T[idx], E[idx], A[idx], X[idx]
    ps = LogisticRegression(C=np.inf, max_iter=10_000).fit(x, a).predict_proba(x)[:, 1]
    w = np.where(a == 1, 1 / ps, 1 / (1 - ps))
    cd = pd.DataFrame({"T": t, "E": e, "a": a, "w": w})
    cph = CoxPHFitter().fit(cd, "T", "E", weights_col="w", robust=True)
    for arm in (0, 1):
        m = a == arm
        KaplanMeierFitter().fit(t[m], e[m], weights=w[m])
    return float(cph.params_["a"])


def lifelines(name: str, B: int, blas_threads: int | None = None) -> dict:
    """``blas_threads=1``: the same with single-threaded BLAS, as our replicates run (on a loaded
    machine multi-threaded BLAS makes lifelines' small solves much slower and noisier)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(blas_threads):
        return _lifelines(name, B)


def _lifelines(name: str, B: int) -> dict:
    d = DATASETS[name]
    df = load_dataset(name)
    T, E, A = (df[d["time"]].to_numpy(float), df[d["event"]].to_numpy(int), df["a"].to_numpy(int))
    X = _design(df, name)
    n = len(df)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_replicate(T, E, A, X, np.arange(n))  # warm-up
        t0 = time.perf_counter()
        for _ in range(B):
            lifelines_replicate(T, E, A, X, rng.integers(0, n, n))
        el = time.perf_counter() - t0
        hr = float(np.exp(lifelines_replicate(T, E, A, X, np.arange(n))))
    return {"ms_per_replicate": 1000 * el / B, "replicates": B, "n": n, "hr": hr}


def r_time(name: str, B: int) -> dict | None:
    d = DATASETS[name]
    return run_r("iptw_bootstrap.R", f"{__import__('_common').DATA}/{d['file']}", d["time"], d["event"],
                 d["treatment"], ",".join(d["confounders"]), str(B), ",".join(d["categorical"]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer replicates")
    args = ap.parse_args(argv)
    plan = {"veteran": {"ours": 2000, "lifelines": 40, "R": 500},
            "rotterdam": {"ours": 300, "lifelines": 8, "R": 100}}
    if args.quick:
        plan = {k: {kk: max(4, vv // 10) for kk, vv in v.items()} for k, v in plan.items()}
    rows = []
    out: dict = {"datasets": {}}
    for name, reps in plan.items():
        o = ours(name, reps["ours"])
        ll = lifelines(name, reps["lifelines"])
        ll1 = lifelines(name, reps["lifelines"], blas_threads=1)
        r = r_time(name, reps["R"])
        out["datasets"][name] = {"causal_hcc": o, "lifelines": ll, "lifelines_1_blas_thread": ll1, "R": r}
        rows.append({
            "cohort": f"{name} (n={o['n']})",
            "causal_hcc ms/rep": o["ms_per_replicate"],
            "lifelines+sklearn ms/rep": ll["ms_per_replicate"],
            "R survival ms/rep": r["ms_per_replicate"] if r else float("nan"),
            "lifelines, 1 BLAS thread ms/rep": ll1["ms_per_replicate"],
            "x faster than lifelines": ll["ms_per_replicate"] / o["ms_per_replicate"],
            "x faster than lifelines (1 thread)": ll1["ms_per_replicate"] / o["ms_per_replicate"],
            "x faster than R": (r["ms_per_replicate"] / o["ms_per_replicate"]) if r else float("nan"),
            "HR ours / lifelines / R": f"{o['hr']:.4f} / {ll['hr']:.4f} / " + (f"{r['hr']:.4f}" if r else "–"),
        })
        print(f"{name}: done", file=sys.stderr)
    table = markdown_table(rows, list(rows[0]))
    out["table"] = table
    path = write_result("bootstrap_iptw", out)
    print("## IPTW bootstrap, per replicate (one process)\n")
    print(table)
    print(f"\n(results: {path})")
    return out


if __name__ == "__main__":
    main()
