"""A strategy's limit: its estimates on one giant twin cohort (issue 20, docs/validation.md).

On a cohort of N patients a consistent estimator is within about SE(n) * sqrt(n / N) of its limit, so a few
cohorts of 10^5-10^6 tell whether a twin truth (the population limit of the strategy's estimator) is the
estimator's limit, independently of the Monte Carlo's finite-sample bias:

    nice -n 10 python benchmarks/validation_limit.py 1000000 7001 "landmark(3,pfs-free)+iptw(ATO)" "os;pfs"
    nice -n 10 python benchmarks/validation_limit.py 200000 8001 "sequential_trials+iptw(ATT)" os

Prints ``strategy outcome measure time estimate se`` per row (the strategy's own analytic SE).
Landmark designs take ~3 s per million patients; sequential trials ~2 s per thousand.
"""
from __future__ import annotations

import dataclasses
import sys
import time


def main(argv: list[str]) -> None:
    n, seed, which, outcomes = int(argv[0]), int(argv[1]), argv[2].split(";"), argv[3].split(";")
    spec_path = argv[4] if len(argv) > 4 else "configs/twin_effect.yaml"
    from causal_hcc.config import load_spec
    from causal_hcc.simstudy import SimulationSpec
    from causal_hcc.twin.recalibrate import resolve

    ss = SimulationSpec.from_analysis_spec(load_spec(spec_path))
    ss = dataclasses.replace(ss, twin=resolve(ss.twin).model_copy(update={"n": n}),
                             strategies=tuple(s for s in ss.strategies if s.label in which))
    df, visits = ss.make_frames(seed)
    cohort = ss.cohort(df, visits)
    for s in ss.strategies:
        built = s.build(default_confounders=ss.default_confounders)
        for o in [x for x in cohort.outcome_names if x in outcomes]:
            t0 = time.perf_counter()
            out = built.fit(cohort, o, ss.targets)
            for e in out.estimates:
                print(s.label, o, e.measure, e.time, round(e.estimate, 5), round(e.se, 5), flush=True)
            print(f"  {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
