"""Inputs of tests/reference/formula_model_matrix.R: a small data set and 120 random confounder lists.

Run: python tests/reference/formula_model_matrix.py && Rscript tests/reference/formula_model_matrix.R
(from the repo root). The lists combine three factors (2, 3 and 4 levels) and three numbers with ':',
'*', '+' and parentheses, one to three entries each, so that R's coding rule (contrasts or every level)
is exercised on interactions with and without their margins, duplicated terms and three-way terms.
"""
import json
import random

import numpy as np
import pandas as pd

rng = np.random.default_rng(3)
n = 40
df = pd.DataFrame({"a": rng.choice(["p", "q", "r"], n), "b": rng.choice(["u", "v"], n),
                   "f": rng.choice(["k", "l", "m", "o"], n), "x": rng.normal(size=n).round(3),
                   "y": rng.normal(size=n).round(3), "z": rng.uniform(1, 2, n).round(3)})
r = random.Random(7)


def term(d: int = 0) -> str:
    if d > 2 or r.random() < 0.35:
        return r.choice(["a", "b", "f", "x", "y", "z"])
    op = r.choice([":", "*", ":", " + "])
    s = f"{term(d + 1)}{op}{term(d + 1)}"
    return f"({s})" if " + " in s and r.random() < 0.7 else s


forms = [list(dict.fromkeys(term() for _ in range(r.randint(1, 3)))) for _ in range(120)]
df.to_csv("tests/reference/fixtures/formula_model_matrix.csv", index=False)
with open("tests/reference/fixtures/formula_model_matrix_input.json", "w") as fh:
    json.dump(forms, fh)
