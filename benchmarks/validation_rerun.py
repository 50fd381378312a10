"""Re-run a few strategies of a twin Monte Carlo on fresh cohorts, judged against the truths of an earlier run.

The truths of ``configs/twin_effect.yaml`` do not depend on the cohort size or the seeds, so rows of a
finished ``simulation.csv`` (its ``truth`` and ``truth_mcse``) can judge new replicates of the same strategies
without recomputing them (the sequential-trials truths take most of a full run). Used for issue 20's
n = 600 anomalies (docs/validation.md):

    nice -n 10 python benchmarks/validation_rerun.py configs/twin_effect.yaml \
        benchmarks/results/validation_twin_effect_n600_200.csv --n 600 --replicates 400 --seed 1001 \
        --strategies "landmark(3,pfs-free)+iptw(ATO);sequential_trials+iptw(ATT)" --n-jobs 2 -o out.csv

Writes the summary rows (the columns of ``simulation.csv``) and, next to them, the per-replicate table
(``*_replicates.csv``).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time

import pandas as pd


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("truths", help="an earlier simulation.csv of the same spec (its truth and truth_mcse columns)")
    ap.add_argument("--n", type=int, required=True, help="patients per cohort")
    ap.add_argument("--replicates", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True, help="first twin seed (use seeds the earlier run did not)")
    ap.add_argument("--strategies", required=True, help="strategy labels separated by ';'")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args(argv)

    from causal_hcc.config import load_spec
    from causal_hcc.simstudy import REPLICATE_COLUMNS, SimulationSpec, _dispatch, summarise_simulation
    from causal_hcc.twin.recalibrate import resolve
    from causal_hcc.inference import _chunks, _effective_jobs

    spec = SimulationSpec.from_analysis_spec(load_spec(a.spec))
    want = a.strategies.split(";")
    strategies = tuple(s for s in spec.strategies if s.label in want)
    missing = set(want) - {s.label for s in strategies}
    if missing:
        raise SystemExit(f"validation_rerun: no strategy {sorted(missing)} in {a.spec}")
    spec = dataclasses.replace(spec, strategies=strategies, twin=resolve(spec.twin).model_copy(update={"n": a.n}))
    nj = _effective_jobs(a.n_jobs)
    chunks = [list(c) for c in _chunks(a.replicates, nj, target=4)]
    t0 = time.perf_counter()
    results, backend = _dispatch(spec, chunks, a.seed, n_jobs=nj, scheduler=None, dask_local=None, progress=False,
                                 total=a.replicates)
    wall = time.perf_counter() - t0
    reps = pd.DataFrame([row for ch in results for row in ch], columns=list(REPLICATE_COLUMNS))
    old = pd.read_csv(a.truths)
    old = old[old["strategy"].isin(want)]
    truth, info = {}, {}
    for r in old.itertuples(index=False):
        if pd.isna(r.truth):
            continue
        key = (r.strategy, r.estimand, r.outcome, r.measure, None if pd.isna(r.time) else float(r.time))
        truth[key] = float(r.truth)
        info[key] = {"value": float(r.truth), "mcse": None if pd.isna(r.truth_mcse) else float(r.truth_mcse),
                     "kind": r.truth_kind, "note": ""}
    table = summarise_simulation(reps, truth, n_replicates=a.replicates, alpha=spec.targets.alpha,
                                 truth_kinds={k: v["kind"] for k, v in info.items()}, truth_info=info)
    table.to_csv(a.output, index=False)
    reps.to_csv(a.output.replace(".csv", "_replicates.csv"), index=False)
    print(f"{a.replicates} cohorts of {a.n}, seeds {a.seed}-{a.seed + a.replicates - 1}: {wall:.0f} s wall ({backend})")


if __name__ == "__main__":
    main()
