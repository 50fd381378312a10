"""How many rows beyond 2 MC SE chance gives, with the rows' correlation (issue 20, docs/validation.md).

Rows of one strategy are computed from the same curves (a survival difference and the risk ratio at the same
time nearly move together) and every strategy runs on the same cohorts, so the rows' z-scores are correlated
and "k of 39 beyond 2 MC SE" cannot be judged with a binomial. This takes the correlation of the rows'
estimates over the replicates (``simulation_replicates.csv`` of a ``causal-hcc simulate`` run), draws
correlated normal z-scores, and gives the expected count beyond 2 and the probability of at least the count
observed (``simulation.csv``); and a joint chi-square of the z-scores on the well-determined principal
components of the correlation (eigenvalues above 2% of the largest).

    python benchmarks/validation_chance.py OUT/simulation.csv OUT/simulation_replicates.csv
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy import stats

#: the adjusted designs that remove immortal time (their rows are judged against their own truths)
ADJUSTED = ("time_varying(pfs)+multivariable", "landmark(3,pfs-free)+multivariable", "landmark(3,pfs-free)+iptw(ATO)",
            "sequential_trials+iptw(ATT)", "clone_censor(6)")


def _key(d: pd.DataFrame) -> np.ndarray:
    return (d["strategy"] + "|" + d["outcome"] + "|" + d["measure"] + "|" + d["time"].fillna(-1).astype(str)).values


def chance(table: pd.DataFrame, reps: pd.DataFrame, *, draws: int = 200_000, seed: int = 1) -> list[dict]:
    t = table[(table["truth_kind"] == "own") & table["strategy"].isin(ADJUSTED)
              & (table["measure"] != "median_difference")].copy()
    t["key"] = _key(t)
    t["z"] = t["bias"] / np.hypot(t["mcse_bias"], t["truth_mcse"].fillna(0))
    ok = reps[(reps["error"].isna() | (reps["error"].astype(str) == "")) & reps["strategy"].isin(ADJUSTED)].copy()
    with np.errstate(all="ignore"):
        ok["v"] = np.where(ok["measure"].isin(["hr", "risk_ratio"]), np.log(ok["estimate"].where(ok["estimate"] > 0)),
                           ok["estimate"])
    ok["key"] = _key(ok)
    wide = ok.pivot_table(index="replicate", columns="key", values="v")
    rng = np.random.default_rng(seed)
    out = []
    for label, sel in (("all rows", t), ("without risk ratios", t[t["measure"] != "risk_ratio"]),
                       ("survival and RMST differences", t[t["measure"].isin(["survival_difference",
                                                                               "rmst_difference"])])):
        keys = list(sel["key"])
        C = wide[keys].corr().to_numpy()
        w, V = np.linalg.eigh(C)
        Cp = (V * np.clip(w, 1e-9, None)) @ V.T
        d = np.sqrt(np.diag(Cp))
        Cp /= np.outer(d, d)
        count = (np.abs(rng.multivariate_normal(np.zeros(len(keys)), Cp, size=draws)) > 2).sum(axis=1)
        obs = int((sel["z"].abs() > 2).sum())
        keep = w > 0.02 * w.max()
        q = float(((V[:, keep].T @ sel["z"].to_numpy()) ** 2 / w[keep]).sum())
        out.append({"rows": label, "n": len(keys), "beyond_2": obs, "expected": float(count.mean()),
                    "p_at_least_correlated": float(np.mean(count >= obs)),
                    "p_at_least_independent": float(stats.binom.sf(obs - 1, len(keys), 2 * stats.norm.sf(2))),
                    "chi2": q, "df": int(keep.sum()), "p_chi2": float(stats.chi2.sf(q, int(keep.sum())))})
    return out


if __name__ == "__main__":
    res = chance(pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]))
    print(pd.DataFrame(res).round(3).to_string(index=False))
