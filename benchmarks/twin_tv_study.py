"""Monte Carlo of the time-varying designs on the twin with its time-varying confounder (issue 19).

``configs/twin_tv.yaml`` (performance status ``ecog_ge1`` at assessments every 2 months: it
defers surgery, raises the death hazard, rises with progression and falls after surgery; true
HR 0.7, no unmeasured confounding of the outcome) is run twice on the same twin seeds:

* **time-varying weights**: the spec as written (``visits:`` the twin's visits table,
  ``time_varying_confounders: [ecog_ge1]``): clone-censor's artificial-censoring weights,
  the per-protocol sequential trials' weights and the ITT trials' adjustment at each trial
  start, and the MSM's initiation weights see the current status;
* **baseline-only weights**: the same spec without ``visits`` and
  ``time_varying_confounders`` (every weight model sees the baseline covariates only).

Each row is judged against the truth of its own estimand (the same for both runs:
:func:`causal_hcc.twin.truth.estimand_truth`), with the Monte Carlo SE of the bias and of
the truth. Writes ``benchmarks/results/twin_tv_study.csv`` (one row per run x strategy x
measure) and prints the Markdown table of ``docs/validation.md``.

Run (about 25 minutes on 2 shared cores)::

    nice -n 10 .venv/bin/python benchmarks/twin_tv_study.py --replicates 200 --n-jobs 2
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from causal_hcc.config import load_spec  # noqa: E402
from causal_hcc.simstudy import simulate_study, without_time_varying  # noqa: E402


def run(spec_path: str, replicates: int, seed: int, n_jobs: int, outcomes: tuple[str, ...]) -> pd.DataFrame:
    spec = load_spec(spec_path)
    parts = []
    for label, sp in (("time-varying weights", spec), ("baseline-only weights", without_time_varying(spec))):
        t0 = time.perf_counter()
        res = simulate_study(sp, replicates=replicates, seed=seed, n_jobs=n_jobs)
        tab = res.table.copy()
        tab.insert(0, "weights", label)
        tab["seconds"] = round(time.perf_counter() - t0, 1)
        parts.append(tab)
        print(f"{label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out = pd.concat(parts, ignore_index=True)
    return out[out["outcome"].isin(outcomes)]


def markdown(tab: pd.DataFrame, measures=("hr", "survival_difference")) -> str:
    t = tab[tab["measure"].isin(measures) & ((tab["measure"] != "survival_difference") | (tab["time"] == 24))]
    lines = ["| strategy | outcome | measure | truth (MCSE) | weights | mean | bias (MCSE) | coverage |",
             "|---|---|---|---|---|---|---|---|"]
    for r in t.sort_values(["strategy", "outcome", "measure", "weights"], ascending=[True, True, True, False]
                           ).itertuples(index=False):
        meas = "log HR" if r.measure == "hr" else f"S diff @ {r.time:g}"
        truth = r.truth if r.measure != "hr" else __import__("math").log(r.truth)
        mean = r.mean_estimate if r.measure != "hr" else __import__("math").log(r.mean_estimate)
        lines.append(f"| {r.strategy} | {r.outcome} | {meas} | {truth:.3f} ({r.truth_mcse:.3f}) | {r.weights} | "
                     f"{mean:.3f} | {r.bias:+.3f} ({r.mcse_bias:.3f}) | {r.coverage:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=os.path.join(os.path.dirname(HERE), "configs", "twin_tv.yaml"))
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--outcomes", default="os,pfs")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "twin_tv_study.csv"))
    a = ap.parse_args()
    tab = run(a.spec, a.replicates, a.seed, a.n_jobs, tuple(a.outcomes.split(",")))
    tab.to_csv(a.out, index=False)
    print(markdown(tab))


if __name__ == "__main__":
    main()
