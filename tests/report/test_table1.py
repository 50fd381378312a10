"""Table 1 by hand: counts, medians, SMDs, suppression."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.errors import SpecError
from causal_hcc.report.table1 import smd_categorical, table1


def _cohort():
    # 4 treated, 6 untreated
    df = pd.DataFrame({
        "id": range(10), "t": np.arange(1.0, 11.0), "e": [1, 0, 1, 1, 0, 1, 0, 1, 1, 0],
        "s": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
        "oligo": [1, 1, 0, 0, 1, 0, 0, 0, 0, 0],
        "age": [50.0, 60, 70, 80, 40, 45, 50, 55, 60, 65],
        "stage": ["B", "C", "C", "C", "B", "B", "B", "C", "D", "D"],
    })
    return Cohort(df, id="id", time="t", event="e", treatment="s", confounders=["oligo", "age", "stage"])


def _row(t, var, level=None):
    return next(r for r in t["rows"] if r["variable"] == var and r["level"] == level)


def test_counts_medians_smd_by_hand():
    t = table1(_cohort())
    assert t["n"] == {"untreated": 6, "treated": 4}
    o = _row(t, "oligo")
    assert o["text"] == {"untreated": "1 (16.7%)", "treated": "2 (50.0%)"}
    p1, p0 = 0.5, 1 / 6
    assert o["smd"] == pytest.approx((p1 - p0) / math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2))
    a = _row(t, "age")
    assert a["values"]["treated"] == {"median": 65.0, "q1": 57.5, "q3": 72.5, "n": 4}
    x1, x0 = np.array([50.0, 60, 70, 80]), np.array([40.0, 45, 50, 55, 60, 65])
    assert a["smd"] == pytest.approx((x1.mean() - x0.mean()) / math.sqrt((x1.var(ddof=1) + x0.var(ddof=1)) / 2))
    assert _row(t, "stage", "C")["text"]["treated"] == "3 (75.0%)"
    assert _row(t, "events")["text"]["treated"] == "3 (75.0%)"


def test_yang_dalton_two_levels_equals_binary_smd():
    p1, p0 = 0.3, 0.6
    binary = abs(p1 - p0) / math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    assert smd_categorical([1 - p1, p1], [1 - p0, p0]) == pytest.approx(binary)


def test_min_cell_suppression_and_rounding():
    t = table1(_cohort(), min_cell=3)
    assert _row(t, "oligo")["text"]["treated"] == "<3"
    assert _row(t, "oligo")["smd"] is None  # an SMD would reveal the hidden count
    # stage among treated: B=1 (<3), C=3 (shown, rounded to a multiple of 3: no secondary suppression)
    assert _row(t, "stage", "B")["text"]["treated"] == "<3"
    assert t["n"] == {"untreated": 6, "treated": 3}  # 4 treated, rounded to the nearest 3
    # percentages are computed from the counts as shown (an exact 75.0% would give the exact count back)
    assert _row(t, "stage", "C")["text"]["treated"] == "3 (100.0%)"
    for r in t["rows"]:
        for a, v in r["values"].items():
            if "count" in v and v["count"] is not None:
                assert v["count"] % 3 == 0
    assert "suppressed" not in str([r["text"] for r in t["rows"]])
    assert t["suppressed"] >= 2


def test_bad_min_cell():
    with pytest.raises(SpecError, match=r"^report.min_cell must be an integer >= 0, got -1$"):
        table1(_cohort(), min_cell=-1)
