"""Coverage of the per-protocol sequential-trial and clone-censor intervals when the weights are estimated.

Monte Carlo behind the "estimated weights" rows of ``docs/inference.md`` and
``tests/test_inference_validity.py``. Scenario: the twin with a true HR of 1
and measured confounding only (``unmeasured_confounding = 0``), ``n`` = 150
as the study, surgery only while progression-free (``require_event_free:
pfs``), adjustment set = the covariates of the twin's death model
(``tests.design.test_twin_simulation.make_cohort``). Under this null every
estimand's truth is exactly HR 1, so coverage is judged against 1 without the
twin's truth machinery.

Strategies (their weights are estimated: per-protocol IPC weights from a Cox
model of treatment start, ATT propensity weights within trial, clone-censor
IPC weights):

* ``clone_censor(6)``: ``{design: clone_censor, grace: 6, require_event_free: pfs}``;
* ``sequential_trials(pp)+iptw(ATT)``: per protocol, propensity within trial.

Intervals, each on the same cohorts:

* ``robust``: the patient-clustered sandwich Wald interval with the weights
  treated as known (what the rows reported before, and what ``simulate``
  still measures without ``--bootstrap-replicates``);
* ``bootstrap percentile`` (the default now: every replicate refits the
  weight models; :func:`causal_hcc.inference.bootstrap_many` exactly as a run
  does) and ``bootstrap normal`` (Wald with the bootstrap SE).

Run (the figures of docs/inference.md: 200 cohorts with B = 100 for
clone-censor, 140 with B = 60 for per-protocol trials, whose replicates cost
about 0.3 s each; about an hour of CPU each; ``results/weights_coverage_cc``
and ``_pp`` hold the rows, run in chunks of 5 seeds with ``--first-seed``)::

    nice .venv/bin/python benchmarks/weights_coverage.py --seeds 200 --replicates 100 --strategies "clone_censor(6)"
    nice .venv/bin/python benchmarks/weights_coverage.py --seeds 140 --replicates 60 \
        --strategies "sequential_trials(pp)+iptw(ATT)"

References
----------
Austin PC. Stat Med 2016;35:5642-55 (bootstrap vs robust variance with estimated weights).
Morris TP, White IR, Crowther MJ. Stat Med 2019;38:2074-102 (Monte Carlo SE of coverage).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

STRATEGIES = {
    "clone_censor(6)": {"design": "clone_censor", "grace": 6, "require_event_free": "pfs"},
    "sequential_trials(pp)+iptw(ATT)": {"design": "sequential_trials", "adjustment": "iptw", "estimand": "ATT",
                                        "require_event_free": "pfs", "grid": 0.25, "window": 6.0,
                                        "analysis": "per_protocol"},
}
Z = 1.959963984540054


def one(seed: int, n: int, replicates: int, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Point fit (robust interval) and whole-pipeline bootstrap of each strategy on twin cohort ``seed``."""
    from threadpoolctl import threadpool_limits

    from causal_hcc.base import Targets
    from causal_hcc.inference import bootstrap_many
    from causal_hcc.strategies import resolve
    from tests.design.test_twin_simulation import make_cohort

    cohort = make_cohort(seed, n, 1.0)
    if cohort is None:
        return [{"seed": seed, "strategy": nm, "failed": "cohort"} for nm in names]
    targets = Targets(survival_at=(), rmst_tau=None)
    rows, strategies, points = [], [], {}
    with threadpool_limits(limits=1), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for nm in names:
            s = resolve(STRATEGIES[nm])[0].build()
            row: dict[str, Any] = {"seed": seed, "strategy": nm, "failed": ""}
            try:
                out = s.fit(cohort, "os", targets)
            except Exception as exc:  # noqa: BLE001 - a failed point fit is counted
                rows.append({**row, "failed": type(exc).__name__})
                continue
            hr = next(e for e in out.estimates if e.measure == "hr")
            b = math.log(hr.estimate)
            row.update(log_hr=b, se_robust=hr.se, lo_robust=b - Z * hr.se, hi_robust=b + Z * hr.se)
            strategies.append(s)
            points[(s.label, "os")] = out
            rows.append(row)
        if replicates and strategies:
            boots = bootstrap_many(strategies, cohort, ["os"], targets, points, replicates=replicates, seed=seed,
                                   n_jobs=1, only_needed=False, ci="percentile")
            for row in rows:
                if row.get("failed"):
                    continue
                s = next(x for x in strategies if x.label == resolve(STRATEGIES[row["strategy"]])[0].label)
                e = next(e for e in boots[(s.label, "os")].estimates if e.measure == "hr")
                row.update(se_boot=e.se, lo_pct=math.log(e.ci_lower), hi_pct=math.log(e.ci_upper),
                           lo_norm=row["log_hr"] - Z * e.se, hi_norm=row["log_hr"] + Z * e.se,
                           boot_failed=boots[(s.label, "os")].diagnostics["bootstrap"]["failed"])
    return rows


def summary(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    failed = df["failed"].where(df["failed"].notna(), "")  # read back from CSV an empty cell is NaN
    for nm, g in df[failed == ""].groupby("strategy", sort=False):
        emp = float(g["log_hr"].std(ddof=1))
        for k, name in (("robust", "robust Wald, weights as known (before)"), ("pct", "bootstrap percentile (now)"),
                        ("norm", "bootstrap normal")):
            if f"lo_{k}" not in g:
                continue
            ok = g[np.isfinite(g[f"lo_{k}"]) & np.isfinite(g[f"hi_{k}"])]
            cov = float(((ok[f"lo_{k}"] <= 0) & (0 <= ok[f"hi_{k}"])).mean())
            out.append({"strategy": nm, "interval": name, "cohorts": int(len(ok)), "coverage": cov,
                        "mcse": math.sqrt(cov * (1 - cov) / len(ok))})
        out.append({"strategy": nm, "interval": "SE / empirical SE", "cohorts": int(len(g)),
                    "robust": float(g["se_robust"].mean() / emp),
                    "bootstrap": float(g["se_boot"].mean() / emp) if "se_boot" in g else math.nan,
                    "mean_log_hr": float(g["log_hr"].mean()), "mcse_mean": emp / math.sqrt(len(g))})
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=120)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--out", default=os.path.join(RESULTS, "weights_coverage"))
    args = ap.parse_args(argv)
    from joblib import Parallel, delayed

    names = tuple(args.strategies.split(","))
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    res = Parallel(n_jobs=args.n_jobs, verbose=2)(delayed(one)(s, args.n, args.replicates, names) for s in seeds)
    df = pd.DataFrame([r for rows in res for r in rows])
    tab = summary(df)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    df.to_csv(args.out + ".csv", index=False)
    meta = {"seeds": args.seeds, "first_seed": args.first_seed, "n": args.n, "true_hr": 1.0,
            "replicates": args.replicates, "seconds": time.perf_counter() - t0, "table": tab}
    with open(args.out + ".json", "w") as fh:
        json.dump(meta, fh, indent=1)
    print(f"true HR 1, n = {args.n}, {args.seeds} cohorts, B = {args.replicates}, {meta['seconds']:.0f} s")
    for r in tab:
        if "coverage" in r:
            print(f"  {r['strategy']:32s} {r['interval']:40s} coverage {r['coverage']:.3f} (MC SE {r['mcse']:.3f}), "
                  f"{r['cohorts']} cohorts")
        else:
            print(f"  {r['strategy']:32s} SE / empirical SE: robust {r['robust']:.2f}, bootstrap {r['bootstrap']:.2f}; "
                  f"mean log HR {r['mean_log_hr']:+.3f} (MC SE {r['mcse_mean']:.3f})")
    return df


if __name__ == "__main__":
    main()
