"""Benchmark (e): the command line end to end on a large cohort, as a user runs it.

``causal-hcc run SPEC`` with naive + iptw(ATE) (robust SE, weighted KM with
IJ variance), survival at 12/24 and RMST at 24: read the file, build the
Cohort, fit, write ``estimates.csv``, ``results.json``, ``curves.parquet``
and the HTML + Markdown report. Each run is a fresh process (interpreter
start and imports included); its wall time and peak resident memory
(``getrusage``) are recorded, with the load average before and after (the
machine is shared). The same analysis is timed in lifelines + scikit-learn
and in R (``survival``) at the sizes they finish within the timeout. Besides
wall time each tool's CPU time (user + system, ``getrusage``; R's
``proc.time``) is recorded: on a shared machine the wall time of a
single-threaded run is its CPU time stretched by the other processes, so CPU
time is the figure comparable across runs and tools.

Usage: ``python benchmarks/bench_e2e.py --n 1000000 [--n 10000000] [--peers 100000,1000000]``
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from _common import HERE, ROOT, markdown_table, write_result

SPEC = """study: bench-e2e
data: {{path: {path}}}
roles: {{id: id, time: time, event: event, treatment: treated, treatment_time: treatment_time}}
confounders: [x1, x2, b1, b2]
strategies: [naive, {{name: iptw, estimand: ATE}}]
estimands: {{survival_at: [12, 24], rmst_tau: 24}}
bootstrap: {{replicates: 0}}
sensitivity: {{evalues: true}}
"""

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from causal_hcc.cli import main
sys.argv = ["causal-hcc", "run", {spec!r}, "--output", {out!r}, "--force", "--quiet"]
try:
    main()
except SystemExit as e:
    if e.code not in (0, None):
        raise
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"inner_s": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": ru.ru_maxrss / 1024}}))
"""

LIFELINES = """
import json, resource, sys, time
import numpy as np, pandas as pd
t0 = time.perf_counter()
from lifelines import CoxPHFitter, KaplanMeierFitter
from sklearn.linear_model import LogisticRegression
df = pd.read_csv({path!r}, engine="pyarrow")
X = df[["x1", "x2", "b1", "b2"]].to_numpy(float)
a = df["treated"].to_numpy(int)
d = df[["time", "event", "treated"]].copy()
CoxPHFitter().fit(d, "time", "event")                                   # naive Cox
for arm in (0, 1):
    KaplanMeierFitter().fit(df.loc[a == arm, "time"], df.loc[a == arm, "event"])
ps = LogisticRegression(penalty=None, max_iter=200).fit(X, a).predict_proba(X)[:, 1]
d["w"] = np.where(a == 1, 1 / ps, 1 / (1 - ps))
cph = CoxPHFitter().fit(d, "time", "event", weights_col="w", robust=True)  # IPTW Cox, robust SE
for arm in (0, 1):
    KaplanMeierFitter().fit(df.loc[a == arm, "time"], df.loc[a == arm, "event"], weights=d["w"][a == arm])
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"inner_s": time.perf_counter() - t0, "hr": float(np.exp(cph.params_.iloc[0])),
                  "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}}))
"""


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(cmd: list[str], timeout: float) -> dict:
    """Run ``cmd``; wall seconds and its last JSON line, or a timeout/error record."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"timeout_s": timeout}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-400:]}
    line = [x for x in proc.stdout.strip().splitlines() if x.startswith("{")][-1]
    return {"wall_s": wall, **json.loads(line)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="cohort sizes (default 1,000,000)")
    ap.add_argument("--peers", default="100000,1000000", help="sizes at which lifelines and R are timed")
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--name", default="e2e")
    args = ap.parse_args(argv)
    sizes = args.n or [1_000_000]
    peers = [int(x) for x in args.peers.split(",") if x]
    from bench_registry import make_cohort

    tmp = tempfile.mkdtemp(prefix="causal_hcc_e2e_")
    rows, results = [], []
    try:
        for n in sorted(set(sizes) | {p for p in peers if p <= max(sizes)}):
            df = make_cohort(n)
            files = {"csv": os.path.join(tmp, f"c{n}.csv"), "parquet": os.path.join(tmp, f"c{n}.parquet")}
            df.to_csv(files["csv"], index=False)
            df.to_parquet(files["parquet"], index=False)
            del df
            for fmt in args.formats.split(",") if n in sizes else []:
                spec = os.path.join(tmp, f"spec_{n}_{fmt}.yaml")
                with open(spec, "w") as fh:
                    fh.write(SPEC.format(path=files[fmt]))
                out = os.path.join(tmp, f"out_{n}_{fmt}")
                before = load()
                r = timed([sys.executable, "-c", CHILD.format(root=ROOT, spec=spec, out=out)], args.timeout)
                r.update({"tool": "causal_hcc", "n": n, "file": fmt, "load_before": before, "load_after": load()})
                if "wall_s" in r:
                    r["results_json_bytes"] = os.path.getsize(os.path.join(out, "results.json"))
                    r["curves_parquet_bytes"] = os.path.getsize(os.path.join(out, "curves.parquet"))
                    shutil.rmtree(out, ignore_errors=True)
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
            if n in peers:
                before = load()
                r = timed([sys.executable, "-c", LIFELINES.format(path=files["csv"])], args.timeout)
                r.update({"tool": "lifelines + scikit-learn", "n": n, "file": "csv", "load_before": before,
                          "load_after": load()})
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
                if shutil.which("Rscript"):
                    before = load()
                    r = timed(["Rscript", os.path.join(HERE, "r", "e2e_iptw.R"), files["csv"]], args.timeout)
                    r.update({"tool": "R survival", "n": n, "file": "csv", "load_before": before,
                              "load_after": load()})
                    results.append(r)
                    print(json.dumps(r), file=sys.stderr)
            for f in files.values():
                os.remove(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ours = {(r["n"]): r["cpu_s"] for r in results if r["tool"] == "causal_hcc" and r.get("file") == "csv"
            and "cpu_s" in r}
    for r in results:
        x = dict(r)
        if r["tool"] != "causal_hcc" and "cpu_s" in r and r["n"] in ours:
            x["ratio"] = r["cpu_s"] / ours[r["n"]]
        rows.append({"tool": x["tool"], "n": f"{x['n']:,}", "file": x.get("file", ""),
                     "wall s": x.get("wall_s", float("nan")) if "timeout_s" not in x else f"> {x['timeout_s']:.0f}",
                     "CPU s": x.get("cpu_s", float("nan")),
                     "peak RSS MB": x.get("peak_rss_mb", float("nan")),
                     "results.json KB": x["results_json_bytes"] / 1024 if "results_json_bytes" in x else "",
                     "CPU x causal_hcc (csv)": x.get("ratio", ""),
                     "load before/after": f"{x['load_before'][0]} / {x['load_after'][0]}"})
    table = markdown_table(rows, ["tool", "n", "file", "wall s", "CPU s", "peak RSS MB", "results.json KB",
                                  "CPU x causal_hcc (csv)", "load before/after"])
    path = write_result(args.name, {"sizes": sizes, "results": results, "table": table,
                                    "cores": len(os.sched_getaffinity(0))})
    print(table)
    print(f"\n(results: {path})")
    return {"results": results}


if __name__ == "__main__":
    main()
