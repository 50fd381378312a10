"""Run every benchmark (``make bench``); each writes benchmarks/results/*.json
and prints a Markdown table. ``--quick`` shrinks the replicate counts.

Benchmarks: bench_core.py (survival core vs lifelines and R; owned by the
core), bench_bootstrap.py (a), bench_paper.py (b), bench_registry.py (c),
bench_simulate.py (d), bench_e2e.py (e: the CLI end to end, 1,000,000 rows, vs
lifelines and R at 100,000), bench_batched.py (f: batched IPTW bootstrap),
bench_cmprsk.py (competing risks: Aalen-Johansen and Fine-Gray vs R), bench_csv.py (j: reading a large CSV
under the installed pandas).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small versions (minutes, not the published figures)")
    ap.add_argument("--only", default="",
                    help="comma-separated subset: core,bootstrap,paper,registry,simulate,e2e,batched,cmprsk,csv")
    args = ap.parse_args()
    plan = {
        "core": ["bench_core.py"],
        "bootstrap": ["bench_bootstrap.py"] + (["--quick"] if args.quick else []),
        "paper": ["bench_paper.py"] + (["--replicates", "100"] if args.quick else []),
        "registry": ["bench_registry.py"] + (["--n", "100000"] if args.quick else []),
        "simulate": ["bench_simulate.py"] + (["--replicates", "20"] if args.quick else []),
        "e2e": ["bench_e2e.py"] + (["--n", "100000", "--peers", "100000"] if args.quick
                                   else ["--n", "100000", "--n", "1000000", "--peers", "100000"]),
        "batched": ["bench_batched.py"] + (["--quick"] if args.quick else []),
        "cmprsk": ["bench_cmprsk.py"] + (["--sizes", "10000", "100000"] if args.quick else []),
        "csv": ["bench_csv.py"] + (["--rows", "200000"] if args.quick else []),
    }
    only = [x for x in args.only.split(",") if x] or list(plan)
    status = 0
    for name in only:
        cmd = plan[name]
        if not os.path.exists(os.path.join(HERE, cmd[0])):
            print(f"\n# {name}: {cmd[0]} not present, skipped")
            continue
        print(f"\n# {name} ({' '.join(cmd)}), {os.cpu_count()} cores\n", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, *cmd], cwd=HERE)
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s, exit {rc})", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
