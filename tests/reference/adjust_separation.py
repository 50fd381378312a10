"""Crafted propensity data for tests/reference/adjust_separation.R (separation vs positivity).

Run from the repository root, before the R script:
    python tests/reference/adjust_separation.py && Rscript tests/reference/adjust_separation.R

Writes tests/reference/fixtures/adjust_separation.csv, one row per unit, column
``set`` naming the data set:

* ``near_overlap``: a strong continuous confounder (logit 9 x): fitted
  probabilities reach 1e-12, but the arms overlap; glm converges (a
  positivity problem, not separation);
* ``complete``: treatment = (x > 0) exactly (complete separation);
* ``quasi``: nobody with z = 1 is treated (quasi-complete separation), x noise;
* ``quasi_offset``: as ``quasi`` with a calendar-year confounder (2000..2012);
* ``overlap``: ordinary data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIX = Path(__file__).resolve().parent / "fixtures"


def separation_sets() -> pd.DataFrame:
    rng = np.random.default_rng(2018)
    parts = []
    n = 300
    x = rng.normal(size=n)
    a = (rng.random(n) < 1 / (1 + np.exp(-(-2 + 9 * x)))).astype(int)
    parts.append(pd.DataFrame({"set": "near_overlap", "a": a, "x": x, "z": rng.integers(0, 2, n), "year": 0.0}))
    x = rng.normal(size=60)
    parts.append(pd.DataFrame({"set": "complete", "a": (x > 0).astype(int), "x": x, "z": rng.integers(0, 2, 60),
                               "year": 0.0}))
    x, z = rng.normal(size=120), (rng.random(120) < 0.25).astype(int)
    a = np.where(z == 1, 0, (rng.random(120) < 1 / (1 + np.exp(-0.5 * x))).astype(int))
    parts.append(pd.DataFrame({"set": "quasi", "a": a, "x": x, "z": z, "year": 0.0}))
    year = 2000.0 + rng.integers(0, 13, 120)
    parts.append(pd.DataFrame({"set": "quasi_offset", "a": a, "x": x, "z": z, "year": year}))
    x, z = rng.normal(size=150), rng.integers(0, 2, 150)
    a = (rng.random(150) < 1 / (1 + np.exp(-(0.8 * x - 0.5 * z)))).astype(int)
    parts.append(pd.DataFrame({"set": "overlap", "a": a, "x": x, "z": z, "year": 0.0}))
    return pd.concat(parts, ignore_index=True)


#: the confounders of each set
COLUMNS = {"near_overlap": ["x"], "complete": ["x", "z"], "quasi": ["x", "z"], "quasi_offset": ["x", "z", "year"],
           "overlap": ["x", "z"]}

if __name__ == "__main__":
    FIX.mkdir(parents=True, exist_ok=True)
    separation_sets().to_csv(FIX / "adjust_separation.csv", index=False, float_format="%.17g")
