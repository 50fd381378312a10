"""Benchmark (g): person-period data with a time-varying confounder through clone-censor and per-protocol
sequential trials with time-varying weights, vs pySEQTarget on the per-protocol sequential-trial question.

Data (synthetic, seeded): N patients followed in periods 0..39 (about 33 periods each on average: 30,000
patients give ~1,000,000 person-periods), a baseline covariate v, a time-varying confounder L (autoregressive,
driven by a latent health z, raised after treatment starts) that drives treatment initiation (sustained once
started) and, through z, death; an outcome in a period is an event at its end. ``eligible`` is 1 up to and
including the first treated period, and only during the first ``--window`` periods (trial starts / clones).

Ours (``run_analysis(spec, data=df)`` on ``data.layout: person_period``; each strategy in a fresh process
for its own peak memory):

* ``clone_censor``, grace 3, ``censoring_model: logistic``, ``censoring_grid: 1`` (decisions at each period with
  L at its start), weighted Cox and KM, survival difference and risk ratio at 12 and 24;
* ``sequential_trials``, ``analysis: per_protocol``, grid 1, ``censoring_model: logistic``,
  ``censoring_grid: 1``, adjustment ``iptw`` (propensity of starting at each trial start given v and L at
  the trial start, trial indicators), ``outcome_model: pooled_logistic`` (quadratic follow-up and trial
  terms), marginal curves, survival difference and risk ratio at 12 and 24.

pySEQTarget (in its own virtual environment, ``--peer-python``; not a dependency of causal_hcc): ``method:
censoring`` (per protocol), ``weighted: True`` with pre-expansion weights (denominator v + L + quadratic
time, numerator v + quadratic time: pySEQTarget's defaults), pooled logistic outcome model with its default
terms (treatment, follow-up and trial with squares, v and L at baseline), ``km_curves: True`` (risk at 12 and 24).

The two per-protocol analyses answer the same question (start now vs never, trials at each eligible period,
sustained treatment) with the same kind of models; their weights differ in stabilisation, so their
estimates are close but not equal. Timings are wall-clock in the same machine, one after the other.
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

PERIODS = 40


def make_person_period(n: int, seed: int = 1, window: int = 12) -> pd.DataFrame:
    """Long person-period frame: id, period, eligible, tx, outcome, L, v (see the module docstring)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=n)
    z = rng.normal(size=n)
    L = 0.5 * z + rng.normal(0, 0.5, n)
    treated = np.zeros(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    parts = []
    for k in range(PERIODS):
        if k > 0:
            L = 0.8 * L + 0.3 * z + rng.normal(0, 0.4, n) - 0.3 * treated
        idx = np.flatnonzero(alive)
        start = ~treated[idx] & (rng.uniform(size=idx.size) < 1 / (1 + np.exp(-(-3.0 + 0.8 * L[idx] + 0.3 * v[idx]))))
        was = treated[idx].copy()
        treated[idx[start]] = True
        a = treated[idx]
        die = rng.uniform(size=idx.size) < 1 / (1 + np.exp(-(-5.0 + 0.8 * z[idx] - 0.4 * a)))
        elig = (~was) & (k < window)
        parts.append(pd.DataFrame({"id": idx + 1, "period": k, "eligible": elig.astype(np.int8),
                                   "tx": a.astype(np.int8), "outcome": die.astype(np.int8), "L": L[idx], "v": v[idx]}))
        alive[idx[die]] = False
    df = pd.concat(parts, ignore_index=True)
    return df.sort_values(["id", "period"], kind="stable").reset_index(drop=True)


OURS = {
    "clone_censor": {"design": "clone_censor", "grace": 3, "censoring_model": "logistic", "censoring_grid": 1},
    "sequential_trials_pp": {"design": "sequential_trials", "analysis": "per_protocol", "grid": 1,
                             "censoring_model": "logistic", "censoring_grid": 1, "adjustment": "iptw",
                             "outcome_model": "pooled_logistic"},
}


def child_ours(path: str, strategy: str) -> None:
    import resource

    sys.path.insert(0, ROOT)
    from causal_hcc.pipeline import run_analysis

    df = pd.read_parquet(path)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    spec = {"study": "bench", "data": {"layout": "person_period"},
            "roles": {"id": "id", "period": "period", "event": "outcome", "treatment": "tx", "eligible": "eligible"},
            "confounders": ["v"], "time_varying_confounders": ["L"], "strategies": [OURS[strategy]],
            "estimands": {"survival_at": [12, 24]}, "bootstrap": {"replicates": 0}}
    t0 = time.perf_counter()
    res = run_analysis(spec, data=df)
    t_fit = time.perf_counter() - t0
    est = {(e.measure, e.time): e.estimate for e in res.estimates}
    rec = res.records[0]
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    kb = r1.ru_maxrss
    print(json.dumps({"tool": "causal_hcc", "strategy": strategy, "wall_s": t_fit, "cpu_s": _cpu(r0, r1),
                      "peak_rss_mb": kb / 1024,
                      "hr": est.get(("hr", None)), "risk_ratio_24": est.get(("risk_ratio", 24.0)),
                      "survival_difference_24": est.get(("survival_difference", 24.0)),
                      "error": rec.error, "person_periods": int(len(df))}))


def child_peer(path: str) -> None:
    import resource

    import polars as pl
    from pySEQTarget import SEQopts, SEQuential

    df = pl.read_parquet(path).rename({"period": "time"})   # pySEQTarget's expansion has its own 'period'
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    opts = SEQopts(weighted=True, weight_preexpansion=True, km_curves=True, risk_times=[12, 24], ncores=1,
                   parallel=False)
    s = SEQuential(df, id_col="id", time_col="time", eligible_col="eligible", treatment_col="tx",
                   outcome_col="outcome", time_varying_cols=["L"], fixed_cols=["v"], method="censoring",
                   parameters=opts)
    s.expand()
    s.fit()
    s.survival()
    t_fit = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {"tool": "pySEQTarget", "strategy": "sequential_trials_pp", "wall_s": t_fit, "cpu_s": _cpu(r0, r1),
           "peak_rss_mb": r1.ru_maxrss / 1024, "person_periods": df.height}
    try:
        out["expanded_rows"] = int(s.DT.height)
        risk = s.km_data.filter((pl.col("estimate") == "risk") & (pl.col("followup") == 24))
        r = {int(t): float(p) for t, p in zip(risk["tx"], risk["pred"])}
        out["risk_ratio_24"] = r[1] / r[0]
        out["survival_difference_24"] = r[0] - r[1]
    except Exception as err:  # report what could not be read, keep the timing
        out["read_error"] = f"{type(err).__name__}: {err}"
    print(json.dumps(out))


def _cpu(r0, r1) -> float:
    """User + system CPU seconds of this process (all its threads) between two getrusage readings."""
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def run(cmd: list[str], timeout: int) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1][:300], "process_s": wall}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--window", type=int, default=12)
    ap.add_argument("--peer-python", default=os.path.join(ROOT, ".venv-peer", "bin", "python"))
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--quick", action="store_true", help="n = 3,000")
    a = ap.parse_args(argv)
    n = 3000 if a.quick else a.n
    df = make_person_period(n, window=a.window)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pp.parquet")
        df.to_parquet(path)
        for strat in OURS:
            rows.append(run([sys.executable, __file__, "--child-ours", path, strat], a.timeout))
        if not a.no_peer and os.path.exists(a.peer_python):
            rows.append(run([a.peer_python, __file__, "--child-peer", path], a.timeout))
    res = {"n_patients": n, "person_periods": int(len(df)), "window": a.window,
           "events": int(df["outcome"].sum()), "treated": int(df.groupby("id")["tx"].max().sum()), "rows": rows}
    write_result("time_varying" + ("_quick" if a.quick else ""), res)
    res["load_average"] = os.getloadavg()
    print(markdown_table(rows, ["tool", "strategy", "wall_s", "cpu_s", "process_s", "peak_rss_mb", "hr",
                                "risk_ratio_24", "error"]))
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ours":
        child_ours(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-peer":
        sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.abspath(ROOT)]
        child_peer(sys.argv[2])
    else:
        main()
