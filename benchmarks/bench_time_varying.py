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

End to end (``--e2e``, as a user runs it; each a fresh process, interpreter start and imports included, CPU
and peak memory of that process from ``os.wait4``): ``causal-hcc run spec.yaml`` on the person-period CSV
(read it, fit per-protocol sequential trials, write estimates.csv / results.json / curves.parquet and the
HTML + Markdown report), then ``causal-hcc report OUT`` alone (the report stage's own cost: rebuilding the
report from results.json), vs a pySEQTarget script that reads the same CSV (polars), fits the same analysis
and writes its risks to a CSV. ``--runs 3`` repeats the whole comparison (API and end to end, ours and
pySEQTarget's, one after the other) with the load average before and after each process; the ratios are per
run, pySEQTarget / ours, of CPU time (user + system: less sensitive to the load than wall time) and of wall time.

The two per-protocol analyses answer the same question (start now vs never, trials at each eligible period,
sustained treatment) with the same kind of models; their weights differ in stabilisation, so their
estimates are close but not equal. Timings are wall-clock in the same machine, one after the other.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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


CLI_SPEC = """study: bench-time-varying-e2e
data: {{path: {path}, layout: person_period}}
roles: {{id: id, period: period, event: outcome, treatment: tx, eligible: eligible}}
confounders: [v]
time_varying_confounders: [L]
strategies:
  - {{design: sequential_trials, analysis: per_protocol, grid: 1, censoring_model: logistic, censoring_grid: 1,
     adjustment: iptw, outcome_model: pooled_logistic}}
estimands: {{survival_at: [12, 24]}}
bootstrap: {{replicates: 0}}
"""

#: pySEQTarget as its user runs it: read the CSV, fit the per-protocol analysis (as child_peer), write the risks
PEER_SCRIPT = """
import sys
import polars as pl
from pySEQTarget import SEQopts, SEQuential
df = pl.read_csv(sys.argv[1]).rename({"period": "time"})
opts = SEQopts(weighted=True, weight_preexpansion=True, km_curves=True, risk_times=[12, 24], ncores=1,
               parallel=False)
s = SEQuential(df, id_col="id", time_col="time", eligible_col="eligible", treatment_col="tx",
               outcome_col="outcome", time_varying_cols=["L"], fixed_cols=["v"], method="censoring",
               parameters=opts)
s.expand()
s.fit()
s.survival()
s.km_data.filter(pl.col("followup").is_in([12, 24])).write_csv(sys.argv[2])
"""


def process(cmd: list[str], timeout: int, cwd: str | None = None) -> dict:
    """Run ``cmd`` as a fresh process: its wall time, CPU time (user + system) and peak resident memory, from
    ``os.wait4`` (that process and the children it waited for), with the load average before and after."""
    before = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd or HERE)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                return {"error": f"timeout after {timeout} s", "load_before": before}
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
               "peak_rss_mb": ru.ru_maxrss / 1024, "load_before": before,
               "load_after": [round(x, 2) for x in os.getloadavg()]}
        if p.returncode != 0:
            err.seek(0)
            lines = err.read().strip().splitlines()
            out["error"] = (lines[-1] if lines else f"exit {p.returncode}")[:300]
    return out


def run_e2e(tmp: str, csv: str, peer_python: str | None, timeout: int, k: int) -> list[dict]:
    """One end-to-end comparison (see the module docstring): CLI run, report stage alone, pySEQTarget script."""
    spec = os.path.join(tmp, "spec.yaml")
    with open(spec, "w") as fh:
        fh.write(CLI_SPEC.format(path=csv))
    out = os.path.join(tmp, f"out{k}")
    cli = os.path.join(os.path.dirname(sys.executable), "causal-hcc")
    cmd = [cli] if os.path.exists(cli) else [sys.executable, "-m", "causal_hcc.cli"]
    rows = [dict(process(cmd + ["run", spec, "--output", out, "--force", "--quiet"], timeout),
                 tool="causal_hcc", stage="causal-hcc run (read CSV, fit, write outputs + report)")]
    if "error" not in rows[0]:
        est = pd.read_csv(os.path.join(out, "estimates.csv"))
        rr = est[(est["measure"] == "risk_ratio") & (est["time"] == 24)]["estimate"]
        rows[0]["risk_ratio_24"] = float(rr.iloc[0]) if len(rr) else None
        rows.append(dict(process(cmd + ["report", out], timeout), tool="causal_hcc",
                         stage="causal-hcc report (report stage alone, from results.json)"))
    if peer_python:
        script = os.path.join(tmp, "pyseq_e2e.py")
        with open(script, "w") as fh:
            fh.write(PEER_SCRIPT)
        risks = os.path.join(tmp, f"pyseq_risks{k}.csv")
        row = dict(process([peer_python, script, csv, risks], timeout, cwd=tmp), tool="pySEQTarget",
                   stage="script: read CSV, fit, write risks")
        if "error" not in row:
            r = pd.read_csv(risks)
            r = r[(r["estimate"] == "risk") & (r["followup"] == 24)]
            risk = {int(t): float(v) for t, v in zip(r["tx"], r["pred"])}
            row["risk_ratio_24"] = risk[1] / risk[0] if 0 in risk and 1 in risk else None
        rows.append(row)
    shutil.rmtree(out, ignore_errors=True)
    return rows


def _ratios(rows: list[dict], ours_key: tuple[str, str], peer_key: tuple[str, str]) -> dict:
    """pySEQTarget / ours, CPU and wall, for the rows whose (tool, strategy or stage) match."""
    def find(key):
        return next((r for r in rows if (r.get("tool"), r.get("strategy") or r.get("stage")) == key
                     and not r.get("error") and "cpu_s" in r), None)
    a, b = find(ours_key), find(peer_key)
    if a is None or b is None:
        return {}
    return {"cpu": b["cpu_s"] / a["cpu_s"], "wall": b["wall_s"] / a["wall_s"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--window", type=int, default=12)
    ap.add_argument("--peer-python", default=os.path.join(ROOT, ".venv-peer", "bin", "python"))
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--quick", action="store_true", help="n = 3,000")
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole comparison (each run: API and, with "
                    "--e2e, end to end; ours and pySEQTarget's)")
    ap.add_argument("--e2e", action="store_true", help="also end to end: the CLI on a CSV vs pySEQTarget's script")
    a = ap.parse_args(argv)
    n = 3000 if a.quick else a.n
    df = make_person_period(n, window=a.window)
    peer = a.peer_python if not a.no_peer and os.path.exists(a.peer_python) else None
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pp.parquet")
        df.to_parquet(path)
        csv = os.path.join(tmp, "pp.csv")
        csv_bytes = None
        if a.e2e:
            df.to_csv(csv, index=False)
            csv_bytes = os.path.getsize(csv)
        for k in range(a.runs):
            load0 = [round(x, 2) for x in os.getloadavg()]
            rows = []
            for strat in OURS:
                rows.append(dict(run([sys.executable, __file__, "--child-ours", path, strat], a.timeout),
                                 load_after=[round(x, 2) for x in os.getloadavg()]))
            if peer:
                rows.append(dict(run([peer, __file__, "--child-peer", path], a.timeout),
                                 load_after=[round(x, 2) for x in os.getloadavg()]))
            rec = {"run": k + 1, "load_before": load0, "rows": rows,
                   "ratio_api": _ratios(rows, ("causal_hcc", "sequential_trials_pp"),
                                        ("pySEQTarget", "sequential_trials_pp"))}
            if a.e2e:
                e2e = run_e2e(tmp, csv, peer, a.timeout, k)
                rec["e2e"] = e2e
                rec["ratio_e2e"] = _ratios(e2e, ("causal_hcc", e2e[0]["stage"]),
                                           ("pySEQTarget", "script: read CSV, fit, write risks"))
            runs.append(rec)
            print(markdown_table(rows + rec.get("e2e", []),
                                 ["tool", "strategy", "stage", "wall_s", "cpu_s", "peak_rss_mb", "risk_ratio_24",
                                  "load_after", "error"]))
            print("ratios (pySEQTarget / ours): API", rec["ratio_api"], "end to end", rec.get("ratio_e2e"))
    res = {"n_patients": n, "person_periods": int(len(df)), "window": a.window,
           "events": int(df["outcome"].sum()), "treated": int(df.groupby("id")["tx"].max().sum()),
           "csv_bytes": csv_bytes, "runs": runs}
    write_result("time_varying" + ("_quick" if a.quick else ""), res)
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ours":
        child_ours(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-peer":
        sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.abspath(ROOT)]
        child_peer(sys.argv[2])
    else:
        main()
