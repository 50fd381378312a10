"""(g) The time-varying data layer at scale: about 1,000,000 person-periods (30,000 patients x 26-40 periods, fewer after a death).

Times each step of ``causal_hcc.timeline`` that the time-varying weights
(clone-censor, sequential trials, MSM, IPCW) sit on, and the peak resident
memory of the process:

1. write the person-period CSV (not timed; a cached file is reused);
2. read it (``io.read_table``);
3. person-period -> patient table + visits (``timeline.person_period``);
4. the cohort and its timeline (``Cohort`` + ``Timeline.build``);
5. ``Timeline.at`` at every person-period (queries sorted by patient and time, as the weight models
   ask) and for 1,000,000 random (row, time) queries;
6. ``Timeline.split`` of every patient's follow-up at its own period starts plus 40 common cuts
   (the person-period rows back, as ``survSplit`` would give them);
7. ``Timeline.take`` of a bootstrap resample (n rows with replacement) and ``at`` on it;
8. ``causal-hcc validate`` end to end on the file (fresh process: read + checks + timeline).

Usage: ``python benchmarks/bench_timeline.py [--patients 30000] [--periods 33]``. Writes
``benchmarks/results/timeline.json``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

import tempfile

from _common import ROOT, write_result  # noqa: F401 (ROOT puts the package on sys.path)


def simulate(n: int, periods: int, seed: int = 1) -> pd.DataFrame:
    """Vectorised person-period data: L follows an AR(1) path, raises treatment start and death."""
    rng = np.random.default_rng(seed)
    L = np.empty((n, periods))
    L[:, 0] = rng.normal(size=n)
    for k in range(1, periods):
        L[:, k] = 0.7 * L[:, k - 1] + rng.normal(scale=0.6, size=n)
    start = rng.random((n, periods)) < 1 / (1 + np.exp(3.0 - 0.8 * L))
    first_tx = np.where(start.any(1), start.argmax(1), periods)
    treated = np.arange(periods)[None, :] >= first_tx[:, None]
    death = rng.random((n, periods)) < 1 / (1 + np.exp(6.0 - 0.5 * L + 0.4 * treated))
    first_death = np.where(death.any(1), death.argmax(1), periods - 1)
    length = np.minimum(first_death + 1, rng.integers(2 * periods // 3, periods + 1, n))
    keep = np.arange(periods)[None, :] < length[:, None]
    pid, k = np.nonzero(keep)
    eligible = (k <= first_tx[pid]).astype(np.int8)
    return pd.DataFrame({"id": pid, "period": k, "death": (death[pid, k] & (k == length[pid] - 1)).astype(np.int8),
                         "tx": treated[pid, k].astype(np.int8), "eligible": eligible, "L": L[pid, k].round(6),
                         "sex": (pid % 2).astype(np.int8), "age": (50 + pid % 30).astype(float)})


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=30_000)
    ap.add_argument("--periods", type=int, default=40)
    args = ap.parse_args()
    from causal_hcc.cohort import Cohort
    from causal_hcc.io import read_table
    from causal_hcc.timeline import Timeline, person_period

    work = os.path.join(tempfile.gettempdir(), "causal_hcc_bench")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, f"person_period_{args.patients}x{args.periods}.csv")  # generated, not committed
    if not os.path.exists(path):
        simulate(args.patients, args.periods).to_csv(path, index=False)
    out: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        out[name] = round(time.perf_counter() - t0, 3)
        print(f"{name:<34} {out[name]:8.3f} s   peak {peak_mb():7.0f} MB", flush=True)
        return r

    df = timed("read csv", lambda: read_table(path))
    rows = len(df)
    print(f"{rows:,} person-periods of {df['id'].nunique():,} patients", flush=True)
    pp = timed("person_period -> patients + visits", lambda: person_period(
        df, id="id", period="period", event="death", treatment="tx", eligible="eligible",
        confounders=["sex", "age", "L"], time_varying_confounders=["L"], source=path))
    cohort = timed("cohort", lambda: Cohort(pp.patients, **{k: v for k, v in pp.roles.items() if v is not None},
                                            confounders=["sex", "age", "L"], source=path))
    tl = timed("timeline build", lambda: Timeline.build(cohort, pp.visits, confounders=["L"],
                                                          eligible_until=pp.eligible_until))
    cohort = cohort.with_timeline(tl)
    rng = np.random.default_rng(2)
    q_rows = rng.integers(0, cohort.n, 1_000_000)
    q_t = rng.uniform(0, args.periods, 1_000_000)
    m = tl.measurements()
    timed("at: every person-period (sorted)", lambda: tl.at(m["row"], m["time"] + 0.5))
    timed("at: 1,000,000 random lookups", lambda: tl.at(q_rows, q_t))
    T = np.asarray(cohort.time())
    sp = timed("split follow-up (own times + 40 cuts)",
               lambda: tl.split(np.zeros(cohort.n), T, np.arange(cohort.n), cuts=np.linspace(0.5, args.periods, 40)))
    boot = rng.integers(0, cohort.n, cohort.n)
    b = timed("take (bootstrap resample)", lambda: cohort.take(boot))
    timed("at on the resample: 1,000,000 random", lambda: b.timeline.at(rng.integers(0, cohort.n, 1_000_000), q_t))
    spec = os.path.join(work, "person_period_bench.yaml")
    with open(spec, "w") as fh:
        fh.write(f"study: bench\ndata: {{path: {os.path.basename(path)}, layout: person_period}}\n"
                 "roles: {id: id, period: period, event: death, treatment: tx, eligible: eligible}\n"
                 "confounders: [sex, age, L]\ntime_varying_confounders: [L]\nstrategies: [naive]\n")
    exe = os.path.join(os.path.dirname(sys.executable), "causal-hcc")
    t0 = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", exe, "validate", spec], capture_output=True, text=True)
    out["causal-hcc validate (fresh process)"] = round(time.perf_counter() - t0, 3)
    cli_peak = float(res.stderr.strip().splitlines()[-1]) / 1024 if res.returncode == 0 else float("nan")
    print(f"{'causal-hcc validate (fresh process)':<34} {out['causal-hcc validate (fresh process)']:8.3f} s   "
          f"peak {cli_peak:7.0f} MB   ({res.stdout.strip().splitlines()[0] if res.stdout else res.stderr[-200:]})")
    os.remove(spec)
    write_result("timeline", {"patients": args.patients, "periods_max": args.periods, "person_periods": rows,
                              "split_pieces": int(sp["start"].size), "seconds": out,
                              "peak_rss_mb_in_process": round(peak_mb()), "peak_rss_mb_validate_cli": round(cli_peak),
                              "load_average": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
