"""Benchmark causal_hcc.core vs lifelines (and R, if Rscript is available).

Times a weighted Cox model with robust variance and a weighted Kaplan-Meier
curve with IJ variance on gbsg (686 rows), rotterdam (2982 rows) and
synthetic cohorts of 100,000 and 1,000,000 rows, then prints a table with
the speed ratio. R (survival::coxph(..., weights, robust=TRUE) and
survfit(..., weights)) is timed on the 100k cohort when Rscript is found.

Usage:  python benchmarks/bench_core.py [--max-lifelines 100000] [--sizes 100000 1000000]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from causal_hcc.core import coxph, kaplan_meier  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
COVS = ["x1", "x2", "x3", "x4", "x5"]


def synthetic(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 0] = rng.binomial(1, 0.4, n)
    t = np.round(rng.exponential(1 / np.exp(0.2 * X @ np.ones(5))) * 365) + 1
    c = np.round(rng.uniform(0, 900, n)) + 1
    d = pd.DataFrame(X, columns=COVS)
    d["time"] = np.minimum(t, c)
    d["event"] = (t <= c).astype(int)
    d["w"] = rng.uniform(0.5, 3.0, n)
    return d


def datasets(sizes):
    g = pd.read_csv(DATA / "gbsg.csv")
    yield "gbsg", g.rename(columns={"rfstime": "time", "status": "event"}), ["hormon", "age", "size", "grade", "nodes"]
    r = pd.read_csv(DATA / "rotterdam.csv")
    yield "rotterdam", r.rename(columns={"rtime": "time", "recur": "event"}), ["chemo", "hormon", "age", "nodes", "size2050", "size50"]
    for n in sizes:
        yield f"synthetic {n:,}", synthetic(n), COVS


def best_of(fn, reps: int) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def time_r(d: pd.DataFrame, covs) -> tuple[float, float] | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        d.to_csv(csv, index=False)
        f = " + ".join(covs)
        code = (
            "suppressMessages(library(survival)); d <- read.csv('%s');"
            "t1 <- system.time(coxph(Surv(time, event) ~ %s, data=d, weights=w, robust=TRUE))[['elapsed']];"
            "t2 <- system.time(survfit(Surv(time, event) ~ 1, data=d, weights=w))[['elapsed']];"
            "cat(t1, t2)" % (csv, f)
        )
        res = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            return None
        a, b = res.stdout.split()[-2:]
        return float(a), float(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--max-lifelines", type=int, default=100_000,
                    help="skip lifelines above this many rows (it takes minutes at 1M)")
    ap.add_argument("--r-size", type=int, default=100_000)
    args = ap.parse_args()
    try:
        from lifelines import CoxPHFitter, KaplanMeierFitter
    except ImportError:  # pragma: no cover
        CoxPHFitter = KaplanMeierFitter = None
    rows = []
    for name, d, covs in datasets(args.sizes):
        n = len(d)
        t, e, X, w = d.time.to_numpy(float), d.event.to_numpy(float), d[covs].to_numpy(float), d.w.to_numpy(float)
        reps = 20 if n < 10_000 else 3 if n < 500_000 else 1
        ours_cox = best_of(lambda: coxph(t, e, X, weights=w, robust=True), reps)
        ours_km = best_of(lambda: kaplan_meier(t, e, weights=w), reps)
        ll_cox = ll_km = float("nan")
        if CoxPHFitter is not None and n <= args.max_lifelines:
            dd = d[covs + ["time", "event", "w"]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ll_cox = best_of(lambda: CoxPHFitter().fit(dd, "time", "event", weights_col="w", robust=True),
                                 max(1, reps // 4))
                ll_km = best_of(lambda: KaplanMeierFitter().fit(d.time, d.event, weights=d.w), max(1, reps // 4))
        r = time_r(d, covs) if n == args.r_size else None
        rows.append({
            "data": name, "n": n,
            "ours cox [s]": ours_cox, "lifelines cox [s]": ll_cox, "cox speed-up": ll_cox / ours_cox,
            "ours km+IJ [s]": ours_km, "lifelines km [s]": ll_km, "km speed-up": ll_km / ours_km,
            "R cox [s]": r[0] if r else float("nan"), "R km [s]": r[1] if r else float("nan"),
        })
    tab = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(tab.to_string(index=False))
    print("\nours: weighted Efron Cox + robust (dfbeta) variance; weighted KM with IJ variance.")
    print("lifelines: CoxPHFitter(weights_col, robust=True); KaplanMeierFitter(weights) (no IJ variance).")
    print(f"machine: {os.cpu_count()} CPUs; best of several runs except at 1M rows.")


if __name__ == "__main__":
    main()
