"""Benchmark the competing-risks core (causal_hcc.core.cmprsk) vs R survival.

Times, on synthetic cohorts with two causes, case weights and a cluster:
the weighted Aalen-Johansen fit with the IJ standard error at every time
(R: ``survfit(Surv(time, factor(status)) ~ 1, weights = w, id = id)``), and
the Fine-Gray model (causal_hcc: the direct fit, no expanded rows; R:
``finegray()`` + ``coxph(weights = fgwt, cluster = id)``, whose data grow with
the number of competing events times censoring times: 2.1 million rows at
n = 10,000). R is timed when Rscript is found (survfit up to ``--max-r``,
finegray up to ``--max-r-fg``). Writes benchmarks/results/cmprsk.json.

Usage:  python benchmarks/bench_cmprsk.py [--sizes 10000 100000 1000000] [--max-r 100000]
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
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, machine  # noqa: E402
from causal_hcc.core.cmprsk import aalen_johansen, fine_gray  # noqa: E402


def synthetic(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t1 = rng.exponential(1 / (0.05 * np.exp(0.5 * x[:, 0])))
    t2 = rng.exponential(1 / (0.03 * np.exp(-0.3 * x[:, 1])))
    c = rng.uniform(1, 60, n)
    t = np.minimum(np.minimum(t1, t2), c)
    status = np.where(t == c, 0, np.where(t1 < t2, 1, 2))
    return pd.DataFrame({"id": np.arange(n), "time": np.round(t, 2) + 0.01, "status": status, "x1": x[:, 0],
                         "x2": x[:, 1], "w": rng.uniform(0.5, 3.0, n)})


def best_of(fn, reps: int = 3) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


R_CODE = r"""
suppressPackageStartupMessages(library(survival))
d <- read.csv(commandArgs(TRUE)[1])
t_aj <- system.time(f <- survfit(Surv(time, factor(status)) ~ 1, data = d, weights = w, id = id))[["elapsed"]]
t_fg <- NA
if (commandArgs(TRUE)[2] == "fg")
  t_fg <- system.time({fg <- finegray(Surv(time, factor(status)) ~ ., data = d, etype = "1", weights = w);
                       m <- coxph(Surv(fgstart, fgstop, fgstatus) ~ x1 + x2, data = fg, weights = fgwt,
                                  cluster = id)})[["elapsed"]]
cat(t_aj, t_fg, "\n")
"""


def r_times(df: pd.DataFrame, fg: bool) -> tuple[float, float] | None:
    if not shutil.which("Rscript"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        p, s = os.path.join(tmp, "d.csv"), os.path.join(tmp, "b.R")
        df.to_csv(p, index=False)
        Path(s).write_text(R_CODE)
        out = subprocess.run(["Rscript", s, p, "fg" if fg else "-"], capture_output=True, text=True, timeout=3600)
        if out.returncode:
            return None
        a, b = out.stdout.split()[:2]
        return float(a), (float(b) if b != "NA" else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--max-r", type=int, default=100_000, help="largest size timed in R (survfit)")
    ap.add_argument("--max-r-fg", type=int, default=10_000,
                    help="largest size timed with R's finegray + coxph (its data grow with n^2)")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        d = synthetic(n)
        aj = best_of(lambda: aalen_johansen(d.time, d.status, weights=d.w, cluster=d.id), 3 if n <= 100_000 else 1)
        fg = best_of(lambda: fine_gray(d.time, d.status, d[["x1", "x2"]].to_numpy(), weights=d.w, cluster=d.id),
                     3 if n <= 100_000 else 1)
        r = r_times(d, n <= args.max_r_fg) if n <= args.max_r else None
        rfg = r[1] if r and r[1] is not None else None
        rows.append({"n": n, "aj_s": aj, "fine_gray_s": fg, "r_aj_s": r[0] if r else None, "r_fine_gray_s": rfg})
        print(f"| {n:>9,} | AJ + IJ SE {aj:7.3f} s | R survfit {r[0] if r else float('nan'):7.2f} s | "
              f"Fine-Gray {fg:7.3f} s | R finegray+coxph {rfg if rfg is not None else float('nan'):7.2f} s |",
              flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "cmprsk.json"), "w") as fh:
        json.dump({"machine": machine(), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
