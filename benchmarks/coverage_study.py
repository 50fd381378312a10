"""Coverage of 95% CIs of the time-zero designs on the twin under a true null.

Monte Carlo driver behind the coverage table of ``docs/immortal_time.md``
and the slow coverage test of ``tests/design/test_twin_simulation.py``:
``S`` twin cohorts of ``n`` patients (true HR 1, measured confounding only,
default surgery delay), and on each the four time-zero strategies of issue 5
with every variance method we consider:

* ``default``: the strategy's own Wald interval (landmark + multivariable:
  Cox model SE; time-varying, sequential trials and clone-censor: robust
  sandwich SE clustered on patient, weights treated as fixed);
* ``default x G/(G-1)``: the robust variance times the finite-sample factor
  G/(G-1), G = patients (clusters), as Stata's ``vce(cluster)`` does
  (R ``coxph`` does not); only for the sandwich-based strategies;
* ``profile likelihood``: the likelihood-ratio test of the treatment
  coefficient inverted (Heinze & Schemper 2001); only for the unweighted
  Cox models (landmark, time-varying), where the partial likelihood is a
  likelihood. Under the null, "the profile-likelihood CI covers 0" is
  exactly "the LR statistic for beta = 0 is below chi2_1(0.95)", so it is
  computed as that test (a model without the treatment);
* ``bootstrap percentile``: the whole-pipeline bootstrap
  (:func:`causal_hcc.inference.bootstrap_many`, ``B`` replicates resampling
  patients, design and weights re-run), percentile interval on the log-HR
  scale, as ``variance: bootstrap`` reports it;
* ``bootstrap normal``: Wald interval with the bootstrap SE.

Per seed and strategy it writes the log HR, every SE and interval to
``benchmarks/results/coverage_study.csv``, and the summary (median HR,
empirical SD of log HR, mean SE, coverage with its Monte Carlo SE) to
``benchmarks/results/coverage_study.json`` and stdout.

Run (16 minutes on 2 shared cores with these settings)::

    .venv/bin/python benchmarks/coverage_study.py --seeds 200 --n 150 --replicates 300 --n-jobs 2

and the BCa interval (Efron 1987: bias-corrected and accelerated
percentile, acceleration from the patient jackknife) of one strategy, on
the same bootstrap replicates (35 s for landmark, minutes for the others)::

    .venv/bin/python benchmarks/coverage_study.py bca --strategy "landmark(3)+multivariable"

Seeds are processed in parallel (joblib); each bootstrap runs serially in
its worker. The bootstrap result depends on its seed only, not on
``n_jobs`` (see :mod:`causal_hcc.inference`), so this gives exactly what
``bootstrap_strategy(..., n_jobs=2)`` gives seed by seed.

References
----------
Efron B, Tibshirani RJ. An Introduction to the Bootstrap. 1993 (ch. 13, 14).
Efron B. Better bootstrap confidence intervals. JASA 1987;82:171-85 (BCa).
Lin DY, Wei LJ. JASA 1989;84:1074-8 (robust Cox variance).
Heinze G, Schemper M. Biometrics 2001;57:114-9 (profile-likelihood CIs for
Cox models with few events).
Cameron AC, Miller DL. J Hum Resour 2015;50:317-72 (G/(G-1) and other
small-cluster corrections).
Morris TP, White IR, Crowther MJ. Stat Med 2019;38:2074-102 (Monte Carlo SE
of coverage).
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

from scipy.stats import norm  # noqa: E402

from tests.design.test_twin_simulation import (  # noqa: E402  (the scenario lives with its tests)
    STRATEGIES,
    coverage_markdown,
    coverage_replicate,
    coverage_summary,
    make_cohort,
)

def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--replicates", type=int, default=300, help="bootstrap replicates B (0: no bootstrap)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(RESULTS, "coverage_study"))
    args = ap.parse_args(argv)
    from joblib import Parallel, delayed

    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    res = Parallel(n_jobs=args.n_jobs, verbose=5)(delayed(coverage_replicate)(s, args.n, args.replicates) for s in seeds)
    secs = time.perf_counter() - t0
    df = pd.DataFrame([r for rows in res for r in rows])
    tab = coverage_summary(df)
    md = coverage_markdown(tab)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    df.to_csv(args.out + ".csv", index=False)
    with open(args.out + ".json", "w") as fh:
        json.dump({"seeds": args.seeds, "first_seed": args.first_seed, "n": args.n, "true_hr": 1.0,
                   "replicates": args.replicates, "seconds": secs, "table": tab.to_dict(orient="records"),
                   "markdown": md}, fh, indent=1)
    print(f"true HR 1, n = {args.n}, {args.seeds} seeds, B = {args.replicates}, {secs:.0f} s\n")
    print(md)
    return tab




def bca_seed(seed: int, n: int, replicates: int, name: str) -> dict:
    """Percentile and BCa intervals (Efron 1987) of one strategy on twin cohort ``seed``.

    The replicates are those of :func:`causal_hcc.inference.bootstrap_strategy`
    with ``seed`` (same :func:`replicate_seeds` / :func:`replicate_indices`);
    the acceleration comes from the leave-one-patient-out jackknife. Failed
    fits are dropped, as the pipeline's bootstrap drops failed replicates.
    """
    from threadpoolctl import threadpool_limits

    from causal_hcc.base import Targets
    from causal_hcc.inference import replicate_indices, replicate_seeds
    from causal_hcc.strategies import resolve

    cohort = make_cohort(seed, n, 1.0)
    row: dict[str, Any] = {"seed": seed, "strategy": name}
    s = resolve(STRATEGIES[name])[0].build()
    targets = Targets()

    def log_hr(c) -> float:
        try:
            with np.errstate(all="ignore"):
                out = s.fit(c, "os", targets)
        except Exception:
            return math.nan
        return math.log(next(e for e in out.estimates if e.measure == "hr").estimate)

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theta = log_hr(cohort) if cohort is not None else math.nan
        if not math.isfinite(theta):
            return {**row, "failed": "point"}
        boot = np.array([log_hr(cohort.take(replicate_indices(ss, cohort.n))) for ss in replicate_seeds(seed, replicates)])
        jack = np.array([log_hr(cohort.take(np.delete(np.arange(cohort.n), i))) for i in range(cohort.n)])
    boot, jack = boot[np.isfinite(boot)], jack[np.isfinite(jack)]
    z0 = norm.ppf((np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / boot.size)
    d = jack.mean() - jack
    a = float(np.sum(d ** 3) / (6 * np.sum(d ** 2) ** 1.5))
    zq = norm.ppf([0.025, 0.975])
    q = norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
    lo, hi = np.quantile(boot, q)
    plo, phi = np.quantile(boot, [0.025, 0.975])
    return {**row, "failed": "", "log_hr": theta, "z0": float(z0), "a": a, "lo_bca": float(lo), "hi_bca": float(hi),
            "lo_pct": float(plo), "hi_pct": float(phi), "se_boot": float(boot.std(ddof=1)),
            "boot_failed": int(replicates - boot.size)}


def main_bca(argv: list[str]) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description="BCa bootstrap coverage of one strategy")
    ap.add_argument("--strategy", default="landmark(3)+multivariable")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--replicates", type=int, default=300)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="default: results/coverage_study_bca_<design>")
    args = ap.parse_args(argv)
    args.out = args.out or os.path.join(RESULTS, "coverage_study_bca_" + args.strategy.split("(")[0].split("+")[0])
    from joblib import Parallel, delayed

    t0 = time.perf_counter()
    rows = Parallel(n_jobs=args.n_jobs)(delayed(bca_seed)(s, args.n, args.replicates, args.strategy)
                                        for s in range(args.seeds))
    df = pd.DataFrame(rows)
    df.to_csv(args.out + ".csv", index=False)
    ok = df[df["failed"] == ""]
    pct = ((ok["lo_pct"] <= 0) & (0 <= ok["hi_pct"])).mean()
    bca = ((ok["lo_bca"] <= 0) & (0 <= ok["hi_bca"])).mean()
    print(f"{args.strategy}, n = {args.n}, {args.seeds} seeds ({len(ok)} fitted), B = {args.replicates}, "
          f"{time.perf_counter() - t0:.0f} s: coverage percentile {pct:.3f}, BCa {bca:.3f}; "
          f"median z0 {ok['z0'].median():.3f}, median a {ok['a'].median():.4f}")
    return df


if __name__ == "__main__":
    if sys.argv[1:2] == ["bca"]:
        main_bca(sys.argv[2:])
    else:
        main()
