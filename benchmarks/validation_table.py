"""The tables of docs/validation.md from a ``causal-hcc simulate`` output (simulation.csv).

    causal-hcc simulate configs/twin_effect.yaml --replicates 500 --n-jobs 2 -o /tmp/mc
    python benchmarks/validation_table.py /tmp/mc/simulation.csv > /tmp/tables.md

"bias / MCSE" divides the bias by sqrt(MCSE^2 + truth MCSE^2) (the truth is itself simulated). "verdict" is
simulate's ``bias_verdict`` (``finite-sample``: a log risk ratio whose bias is the Jensen bias of unbiased risks,
``jensen_bias`` beside it); the coverage cell names its interval and flags it unless it is shown valid
(``coverage_verdict``: within 0.92-0.98; LOW/HIGH beyond 2 MC SE of that range; "not shown valid" within it).
"""
from __future__ import annotations

import math
import sys

import pandas as pd

ORDER = ("survival_difference", "rmst_difference", "risk_ratio", "hr", "median_difference")


def _f(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


FLAG = {"low": " **LOW**", "high": " **HIGH**", "uncertain": " *not shown valid*"}


def _coverage_verdict(r: pd.Series) -> str:
    v = r.get("coverage_verdict")
    if isinstance(v, str):
        return v
    from causal_hcc.simstudy import coverage_verdict   # an older simulation.csv: judged the same way here

    return coverage_verdict(float(r["coverage"]), float(r["mcse_coverage"]), int(r["n_coverage"]))


def _verdict(r: pd.Series) -> str:
    v = r.get("bias_verdict")
    if not isinstance(v, str) or not v:
        return "–"
    if v == "finite-sample":
        return f"finite-sample (Jensen {r['jensen_bias']:+.3f})"
    return {"beyond 2 MC SE": "**beyond 2 MC SE**"}.get(v, v)


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
                out += ["", head, "", "| strategy | truth (MCSE) | mean | bias (MCSE) | bias / MCSE | verdict | emp. SE "
                        "| model SE | coverage (MCSE, interval) |", "|---|---|---|---|---|---|---|---|---|"]
                for _, r in rows.iterrows():
                    tm = r["truth_mcse"] if pd.notna(r["truth_mcse"]) else 0.0
                    z = r["bias"] / math.sqrt(r["mcse_bias"] ** 2 + tm ** 2) if pd.notna(r["bias"]) else float("nan")
                    truth = "–" if pd.isna(r["truth"]) else f"{r['truth']:.4f} ({tm:.2g})"
                    kind = "" if r["truth_kind"] == "own" or pd.isna(r["truth_kind"]) else f" ({r['truth_kind']})"
                    cov = "–" if pd.isna(r["coverage"]) else (
                        f"{r['coverage']:.3f} ({r['mcse_coverage']:.3f}, {r['variance_method']})"
                        + FLAG.get(_coverage_verdict(r), ""))
                    out.append(f"| {r['strategy']}{kind} | {truth} | {_f(r['mean_estimate'])} | {_f(r['bias'])} "
                               f"({_f(r['mcse_bias'])}) | {_f(z, 1)} | {_verdict(r)} | {_f(r['empirical_se'])} "
                               f"| {_f(r['model_se'])} | {cov} |")
    return "\n".join(out).lstrip() + "\n"


def jensen_table(runs: dict[str, pd.DataFrame]) -> str:
    """Log risk ratios of the adjusted designs (own truths): bias, its Jensen part (``jensen_bias``) and the
    rest (bias - Jensen = the log of the ratio of the mean risks minus the truth), one column group per run."""
    names = list(runs)
    head = "| strategy | outcome | t | " + " | ".join(f"bias ({n}) | Jensen ({n}) | bias − Jensen ({n})" for n in names)
    out = [head + " |", "|---|---|---|" + "---|---|---|" * len(names)]
    first = runs[names[0]]
    rows = first[(first["measure"] == "risk_ratio") & (first["truth_kind"] == "own")]
    for _, r in rows.iterrows():
        cells = []
        for n in names:
            d = runs[n]
            m = d[(d["strategy"] == r["strategy"]) & (d["outcome"] == r["outcome"]) & (d["measure"] == "risk_ratio")
                  & (d["time"] == r["time"])]
            if m.empty or pd.isna(m["jensen_bias"].iloc[0]):
                cells += ["–"] * 3
                continue
            x = m.iloc[0]
            cells += [f"{x['bias']:+.3f} ({x['mcse_bias']:.3f})", f"{x['jensen_bias']:+.3f}",
                      f"{x['bias'] - x['jensen_bias']:+.3f}"]
        out.append(f"| {r['strategy']} | {r['outcome']} | {r['time']:g} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1] == "--jensen":   # --jensen LABEL=simulation.csv ...
        sys.stdout.write(jensen_table({a.rsplit("=", 1)[0]: pd.read_csv(a.rsplit("=", 1)[1]) for a in sys.argv[2:]}))
    else:
        sys.stdout.write(tables(pd.read_csv(sys.argv[1])))
