"""Benchmark (d): ``simulate`` over twin replicates with the full strategy
grid of ``configs/paper.yaml`` (every strategy, both outcomes, no bootstrap
inside replicates): serial, 2 joblib processes, and a Dask LocalCluster of
2 worker processes. Checks that the three give identical tables.

Target: 1,000 replicates under 10 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from _common import ROOT, markdown_table, write_result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--backends", default="serial,joblib2,dask2")
    args = ap.parse_args(argv)
    from causal_hcc.config import load_spec
    from causal_hcc.simstudy import SimulationSpec, simulate_study

    spec = SimulationSpec.from_analysis_spec(load_spec(os.path.join(ROOT, "configs", "paper.yaml")))
    spec.resolve_truth()  # warm the truth cache (computed once per study)
    kw = {"serial": {"n_jobs": 1}, "joblib2": {"n_jobs": 2}, "dask2": {"dask_local": 2}}
    rows, tables, secs = [], {}, {}
    for b in args.backends.split(","):
        t0 = time.perf_counter()
        res = simulate_study(spec, replicates=args.replicates, seed=1, progress=True, **kw[b])
        secs[b] = time.perf_counter() - t0
        tables[b] = res.table
        rows.append({"backend": res.meta["backend"], "replicates": args.replicates, "seconds": secs[b],
                     "s per replicate": secs[b] / args.replicates,
                     "projected s for 1,000": 1000 * secs[b] / args.replicates,
                     "speed-up vs serial": secs.get("serial", float("nan")) / secs[b]})
    ref = next(iter(tables.values()))
    identical = all(t.equals(ref) for t in tables.values())
    if not identical:
        for b, t in tables.items():
            if not t.equals(ref):
                diff = (t.select_dtypes("number") - ref.select_dtypes("number")).abs().max().max()
                print(f"{b}: differs from the first backend by up to {diff:.3g}")
    table = markdown_table(rows, list(rows[0]))
    path = write_result("simulate", {"replicates": args.replicates, "seconds": secs, "identical": identical,
                                     "strategies": len(spec.strategies), "table": table})
    print(f"## simulate: {len(spec.strategies)} strategies x 2 outcomes per twin replicate\n")
    print(table)
    print(f"\nidentical tables across backends: {identical}\n(results: {path})")
    return {"seconds": secs, "identical": identical}


if __name__ == "__main__":
    main()
