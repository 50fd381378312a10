"""Data for tests/reference/adjust_offset.R: a confounder with a large offset (calendar year).

Run from the repository root, before the R script:
    python tests/reference/adjust_offset.py && Rscript tests/reference/adjust_offset.R

A cohort of 400 whose hazard rises by exp(0.5) per calendar year
(``year`` = 2000..2012) and with a continuous prognostic factor ``x``;
treatment depends on both. With the baseline hazard taken at covariates = 0,
exp(lp) overflows (0.5 * 2006 > 709): g-formula and AIPTW returned an empty
estimate with exit 0 before their covariates were centred (issue 18). Times
are continuous (no ties, so riskRegression's and our censoring martingales
coincide). Values are written with 17 significant digits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIX = Path(__file__).resolve().parent / "fixtures"


def offset_data(n: int = 400, seed: int = 18) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    year = 2000 + rng.integers(0, 13, n)
    x = rng.normal(size=n)
    a = rng.random(n) < 1 / (1 + np.exp(-(0.6 * x + 0.15 * (year - 2006))))
    death = rng.exponential(1 / (0.05 * np.exp(0.5 * (year - 2006) + 0.5 * x - 0.4 * a)))
    cens = rng.uniform(2, 40, n)
    t = np.minimum(death, cens)
    return pd.DataFrame({"time": t, "status": (death <= cens).astype(int), "treat": a.astype(int),
                         "year": year.astype(float), "x": x})


if __name__ == "__main__":
    FIX.mkdir(parents=True, exist_ok=True)
    offset_data().to_csv(FIX / "adjust_offset.csv", index=False, float_format="%.17g")
