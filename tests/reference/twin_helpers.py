"""Export the data of the twin helpers' reference tests for tests/reference/twin_helpers.R.

Run from the repository root, before the R script:
    python tests/reference/twin_helpers.py && Rscript tests/reference/twin_helpers.R

Writes tests/reference/fixtures/twin_cox_binary.csv (400 rows, times rounded to
0.1 so that Efron's tie handling matters) and twin_km_median.csv (three
samples of 60, column ``sample``). The values are written with 17 significant
digits; tests/twin/test_twin.py reads these files (not the RNG) so that R and
Python see the same numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIX = Path(__file__).resolve().parent / "fixtures"


def cox_binary_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, 400)
    t = np.round(rng.exponential(1 / np.exp(0.5 * x)), 1)  # rounding creates ties (Efron)
    e = rng.random(400) < 0.8
    return pd.DataFrame({"t": t, "e": e.astype(int), "x": x})


def km_median_data() -> pd.DataFrame:
    parts = []
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        t = rng.exponential(10, 60)
        e = (rng.random(60) < 0.7).astype(int)
        parts.append(pd.DataFrame({"sample": seed, "t": t, "e": e}))
    return pd.concat(parts, ignore_index=True)


if __name__ == "__main__":
    FIX.mkdir(parents=True, exist_ok=True)
    cox_binary_data().to_csv(FIX / "twin_cox_binary.csv", index=False, float_format="%.17g")
    km_median_data().to_csv(FIX / "twin_km_median.csv", index=False, float_format="%.17g")
