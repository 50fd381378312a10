"""Benchmark (f): the batched IPTW bootstrap (``causal_hcc.batched``) against the per-replicate path.

Same pipeline as (a): resample, logistic propensity score, ATE weights,
weighted Cox (Efron) and weighted KM per arm, survival at two times, RMST,
median, and the curves at every point time (what a replicate records). Both
paths run in this process, one after the other, on the same replicates
(same seeds); the replicate vectors are compared (largest difference,
relative to each number's scale). One core, BLAS single-threaded.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _common import DATASETS, load_dataset, markdown_table, write_result


def run(name: str, b_slow: int, b_fast: int) -> dict:
    from causal_hcc import inference
    from causal_hcc.base import Targets
    from causal_hcc.batched import batched_replicates
    from causal_hcc.cohort import Cohort
    from causal_hcc.inference import _Job, _Layout, run_replicates
    from causal_hcc.strategies import resolve

    d = DATASETS[name]
    df = load_dataset(name)
    cohort = Cohort(df, id="id", time=d["time"], event=d["event"], treatment="a", confounders=d["confounders"],
                    categorical=d["categorical"])
    tm = float(np.median(df[d["time"]]))
    targets = Targets(survival_at=(tm / 2, tm), rmst_tau=tm)
    strat = resolve({"name": "iptw", "estimand": "ATE"})[0].build()
    point = strat.fit(cohort, "os", targets)
    job = _Job((strat.label, "os"), strat, "os", _Layout.of(point))
    inference.BATCHED = False
    run_replicates(cohort, [job], targets, replicates=2, seed=0)  # warm-up
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    slow = [r[0] for r in run_replicates(cohort, [job], targets, replicates=b_slow, seed=1)]
    t_slow = (time.perf_counter() - t0) / b_slow
    inference.BATCHED = True
    batched_replicates(strat, cohort, "os", targets, point, replicates=8, seed=0)  # warm-up
    t0 = time.perf_counter()
    fast = batched_replicates(strat, cohort, "os", targets, point, replicates=b_fast, seed=1)
    t_fast = (time.perf_counter() - t0) / b_fast
    load1 = os.getloadavg()[0]
    scale = np.ones(job.layout.width)
    for i, (m, t, _) in enumerate(job.layout.keys):
        scale[i] = float(t) if m == "rmst_difference" else (tm if m == "median_difference" else 1.0)
    worst = 0.0
    for a, b in zip(slow, fast[:b_slow]):
        if isinstance(a, str) or isinstance(b, str):
            assert a == b
            continue
        ok = ~np.isnan(a)
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]) / scale[ok])))
    return {"data": name, "n": cohort.n, "per_replicate_ms": 1000 * t_slow, "batched_ms": 1000 * t_fast,
            "speed_up": t_slow / t_fast, "replicates": {"per_replicate": b_slow, "batched": b_fast},
            "max_scaled_difference": worst, "load_before": load0, "load_after": load1}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(limits=1):
        for name, bs, bf in (("veteran", 200, 2000), ("rotterdam", 60, 1000)):
            if args.quick:
                bs, bf = max(bs // 10, 5), max(bf // 10, 20)
            r = run(name, bs, bf)
            rows.append(r)
    table = markdown_table([{"data": r["data"], "n": r["n"], "per-replicate ms": r["per_replicate_ms"],
                             "batched ms": r["batched_ms"], "x faster": r["speed_up"],
                             "max difference (scaled)": r["max_scaled_difference"],
                             "load before/after": f"{r['load_before']:.1f} / {r['load_after']:.1f}"} for r in rows],
                           ["data", "n", "per-replicate ms", "batched ms", "x faster", "max difference (scaled)",
                            "load before/after"])
    path = write_result("batched", {"results": rows, "table": table})
    print(table)
    print(f"\n(results: {path})")
    return {"results": rows}


if __name__ == "__main__":
    main()
