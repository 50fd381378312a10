"""Benchmark (c): a 1,000,000-row cohort through naive, iptw (ATE, robust SE,
weighted KM with IJ variance), landmark(3) and time_varying.

The cohort is synthetic (confounded treatment started after time zero, so
landmark and time-varying designs have work to do), written once as CSV and
Parquet and read back with pyarrow. Each strategy runs in a fresh process so
that its peak resident memory (``getrusage`` maxrss: data + cohort + fit) is
its own. Targets: IPTW under 10 s, peak memory under 4 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from _common import HERE, ROOT, markdown_table, write_result

STRATEGIES = {"naive": "naive", "iptw": {"name": "iptw", "estimand": "ATE"},
              "landmark(3)": {"name": "landmark", "landmark": 3}, "time_varying": "time_varying"}


def make_cohort(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    b1, b2 = rng.binomial(1, 0.3, n), rng.binomial(1, 0.5, n)
    lp_a = -1.5 + 0.5 * x1 - 0.4 * b1 + 0.3 * b2
    cand = rng.uniform(size=n) < 1 / (1 + np.exp(-lp_a))
    delay = rng.gamma(2.0, 1.5, n)
    lp = 0.4 * x1 + 0.2 * x2 + 0.5 * b1 - 0.3 * b2
    death = rng.exponential(1 / (0.05 * np.exp(lp)))
    cens = rng.uniform(6, 60, n)
    treated = cand & (delay < np.minimum(death, cens))
    # from surgery on the hazard is multiplied by 0.8 (memoryless exponential)
    extra = rng.exponential(1 / (0.05 * 0.8 * np.exp(lp)))
    death = np.where(treated & (death > delay), delay + extra, death)
    t = np.minimum(death, cens)
    return pd.DataFrame({"id": np.arange(n), "time": np.round(t, 4) + 1e-4, "event": (death <= cens).astype(np.int8),
                         "treated": treated.astype(np.int8), "treatment_time": np.where(treated, np.round(delay, 4), np.nan),
                         "x1": x1, "x2": x2, "b1": b1, "b2": b2})


def child(path: str, strategy: str) -> None:
    """Run one strategy on the file (in a fresh process); print JSON."""
    import resource

    sys.path.insert(0, ROOT)
    from causal_hcc.base import Targets
    from causal_hcc.cohort import Cohort
    from causal_hcc.strategies import resolve

    t0 = time.perf_counter()
    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path, engine="pyarrow")
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    cohort = Cohort(df, id="id", time="time", event="event", treatment="treated", treatment_time="treatment_time",
                    confounders=["x1", "x2", "b1", "b2"])
    t_cohort = time.perf_counter() - t0
    del df
    strat = resolve(STRATEGIES[strategy])[0].build()
    t0 = time.perf_counter()
    out = strat.fit(cohort, "os", Targets(survival_at=(12.0, 24.0), rmst_tau=24.0))
    t_fit = time.perf_counter() - t0
    hr = next(e for e in out.estimates if e.measure == "hr")
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"strategy": strategy, "read_s": t_read, "cohort_s": t_cohort, "fit_s": t_fit,
                      "peak_rss_mb": kb / 1024, "hr": hr.estimate, "se": hr.se,
                      "variance_method": hr.variance_method,
                      "variances": sorted({e.variance_method for e in out.estimates})}))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed per strategy")
    ap.add_argument("--child", nargs=2, metavar=("PATH", "STRATEGY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return {}
    tmp = tempfile.mkdtemp(prefix="causal_hcc_bench_")
    df = make_cohort(args.n)
    csv, pq = os.path.join(tmp, "cohort.csv"), os.path.join(tmp, "cohort.parquet")
    df.to_csv(csv, index=False)
    df.to_parquet(pq, index=False)
    del df
    rows = []
    results = []
    for fmt, path in (("parquet", pq), ("csv", csv)):
        for name in STRATEGIES if fmt == "parquet" else ["iptw"]:
            try:
                proc = subprocess.run([sys.executable, os.path.join(HERE, "bench_registry.py"), "--child", path, name],
                                      capture_output=True, text=True, check=False, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{name} ({fmt}): no result within {args.timeout} s", file=sys.stderr)
                rows.append({"strategy": name, "file": fmt, "fit s": f"> {args.timeout} (stopped)"})
                results.append({"strategy": name, "file": fmt, "timeout_s": args.timeout})
                continue
            if proc.returncode != 0:
                print(f"{name} ({fmt}) failed: {proc.stderr.strip().splitlines()[-1]}", file=sys.stderr)
                rows.append({"strategy": name, "file": fmt, "fit s": float("nan"), "error": proc.stderr[-300:]})
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["file"] = fmt
            results.append(r)
            rows.append({"strategy": name, "file": fmt, "read s": r["read_s"], "Cohort s": r["cohort_s"],
                         "fit s": r["fit_s"], "peak RSS MB": r["peak_rss_mb"], "HR": r["hr"],
                         "variance": "/".join(r["variances"])})
    table = markdown_table(rows, ["strategy", "file", "read s", "Cohort s", "fit s", "peak RSS MB", "HR", "variance"])
    path = write_result("registry_1m", {"n": args.n, "results": results, "table": table})
    print(f"## {args.n:,}-row cohort (each strategy in a fresh process)\n")
    print(table)
    print(f"\n(results: {path})")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return {"results": results}


if __name__ == "__main__":
    main()
