"""The tables of docs/validation.md from a ``causal-hcc simulate`` output (simulation.csv).

    causal-hcc simulate configs/twin_effect.yaml --replicates 500 --n-jobs 2 -o /tmp/mc
    python benchmarks/validation_table.py /tmp/mc/simulation.csv > /tmp/tables.md

"bias / MCSE" divides the bias by sqrt(MCSE^2 + truth MCSE^2) (the truth is itself simulated).
"""
from __future__ import annotations

import math
import sys

import pandas as pd

ORDER = ("survival_difference", "rmst_difference", "risk_ratio", "hr", "median_difference")


def _f(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def tables(sim: pd.DataFrame) -> str:
    out = []
    for outcome in dict.fromkeys(sim["outcome"]):
        d = sim[sim["outcome"] == outcome]
        for measure in ORDER:
            m = d[d["measure"] == measure]
            for t in dict.fromkeys(m["time"].fillna(-1.0)):   # (NaN is never equal to itself: -1 stands for it)
                t = float("nan") if t == -1.0 else t
                rows = m[m["time"].isna()] if pd.isna(t) else m[m["time"] == t]
                if rows.empty:
                    continue
                head = f"**{outcome.upper()}, {measure.replace('_', ' ')}" + ("" if pd.isna(t) else f" at {t:g}") + "**"
                if measure in ("hr", "risk_ratio"):
                    head += " (log scale)"
                out += ["", head, "", "| strategy | truth (MCSE) | mean | bias (MCSE) | bias / MCSE | emp. SE | model SE | "
                        "coverage (interval) |", "|---|---|---|---|---|---|---|---|"]
                for _, r in rows.iterrows():
                    tm = r["truth_mcse"] if pd.notna(r["truth_mcse"]) else 0.0
                    z = r["bias"] / math.sqrt(r["mcse_bias"] ** 2 + tm ** 2) if pd.notna(r["bias"]) else float("nan")
                    truth = "–" if pd.isna(r["truth"]) else f"{r['truth']:.4f} ({tm:.2g})"
                    kind = "" if r["truth_kind"] == "own" or pd.isna(r["truth_kind"]) else f" ({r['truth_kind']})"
                    cov = "–" if pd.isna(r["coverage"]) else f"{r['coverage']:.3f} ({r['variance_method']})"
                    out.append(f"| {r['strategy']}{kind} | {truth} | {_f(r['mean_estimate'])} | {_f(r['bias'])} "
                               f"({_f(r['mcse_bias'])}) | {_f(z, 1)} | {_f(r['empirical_se'])} | {_f(r['model_se'])} "
                               f"| {cov} |")
    return "\n".join(out).lstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(tables(pd.read_csv(sys.argv[1])))
