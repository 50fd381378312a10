"""Writes tests/reference/fixtures/core_cox_tiny_weights.csv: a stratified weighted Cox problem in which
one stratum's late risk sets hold only rows of weight ~1e-27 (as ATT weights e/(1 - e) of near-contraindicated
controls do in sequential trials). Then run tests/reference/core_cox_tiny_weights.R.

    python tests/reference/core_cox_tiny_weights.py && Rscript tests/reference/core_cox_tiny_weights.R
"""
import numpy as np
import pandas as pd

rng = np.random.default_rng(3)
n = 400
big = pd.DataFrame({"t": rng.exponential(10, n), "x": rng.integers(0, 2, n), "e": (rng.random(n) < 0.8).astype(int),
                    "w": rng.uniform(0.5, 3, n), "s": 1})
# two tiny deaths tie at 30 (Efron's sub-steps); stratum 0 sorts first, so its running sums are differences of sums that include all of stratum 1
tiny = pd.DataFrame({"t": [1.0, 2.0, 3.0, 30.0, 30.0, 32.0, 33.0], "x": [1, 0, 1, 0, 1, 0, 1],
                     "e": [1, 1, 0, 1, 1, 0, 1], "w": [1.0, 1.0, 1.0, 1e-27, 2e-27, 1e-27, 3e-27], "s": 0})
pd.concat([big, tiny], ignore_index=True).to_csv("tests/reference/fixtures/core_cox_tiny_weights.csv", index=False,
                                                 float_format="%.17g")
