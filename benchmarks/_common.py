"""Shared helpers of the benchmarks: data sets, timing, result files."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
RESULTS = os.path.join(HERE, "results")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

#: public cohorts used by the IPTW bootstrap benchmark (R survival package, exported to CSV)
DATASETS: dict[str, dict[str, Any]] = {
    # survival::veteran, 137 patients: randomised trt 1/2 (2 = test), Karnofsky score, cell type...
    "veteran": {"file": "veteran.csv", "time": "time", "event": "status", "treatment": "trt",
                "confounders": ["karno", "diagtime", "age", "prior", "celltype"], "categorical": ["celltype"]},
    # survival::rotterdam, 2,982 patients: hormonal therapy, death
    "rotterdam": {"file": "rotterdam.csv", "time": "dtime", "event": "death", "treatment": "hormon",
                  "confounders": ["age", "meno", "nodes", "size2050", "size50", "grade", "chemo"],
                  "categorical": []},
}


def load_dataset(name: str) -> pd.DataFrame:
    """The CSV with a 0/1 treatment column ``a`` and an ``id``."""
    d = DATASETS[name]
    df = pd.read_csv(os.path.join(DATA, d["file"]))
    t = df[d["treatment"]]
    df["a"] = (t == t.max()).astype(int)
    df["id"] = np.arange(1, len(df) + 1)
    return df


def machine() -> dict[str, Any]:
    info = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return info


def timeit(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls (seconds) and the last result."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def write_result(name: str, payload: dict[str, Any]) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), **payload}
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, default=float)
    return path


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def f(v: Any) -> str:
        if isinstance(v, float):
            if not np.isfinite(v):
                return "–"
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def run_r(script: str, *args: str, timeout: float = 900) -> dict[str, Any] | None:
    """Run an R benchmark script; parse the last JSON line it prints. None if R is missing."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    proc = subprocess.run([rscript, os.path.join(HERE, "r", script), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        print(f"R failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB), from getrusage."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0 / 1024.0
