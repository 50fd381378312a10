"""The sequential-trials grid warning recommends a grid that satisfies its own rule (issue 18).

The rule: a grid coarser than twice the median gap between treatment times and
coarser than the default grid is warned about. The recommendation was printed
with ``.3g``, which can round up: 0.08267 became 0.0827, and following the
advice gave the same warning again.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.design.sequential_trials import SequentialTrials


def _cohort(n: int, step: float) -> Cohort:
    """Every other patient treated, at step, 2 step, ...: the median gap is ``step``."""
    rng = np.random.default_rng(0)
    t_a = np.where(np.arange(n) % 2 == 0, step * (np.arange(n) // 2 + 1), np.nan)
    time = np.where(np.isnan(t_a), 5 + rng.exponential(20, n), t_a + 1 + rng.exponential(20, n))
    df = pd.DataFrame({"id": np.arange(n), "T": time, "E": (np.arange(n) % 3 > 0).astype(int),
                       "A": (~np.isnan(t_a)).astype(int), "tA": t_a})
    return Cohort(df, id="id", time="T", event="E", treatment="A", treatment_time="tA")


def _grid_warnings(cohort: Cohort, grid: float | None) -> list[str]:
    # the warning is about counting the treated from the trial start (treated_from: trial_start); by default
    # they are followed from their treatment start and a coarse grid adds no immortal time (issue 20)
    d = SequentialTrials(grid=grid, treated_from="trial_start").fit(cohort, "os").data_
    return [w for w in d.warnings if "trial grid" in w]


@pytest.mark.parametrize("n, step", [(110, 0.04), (120, 0.1), (300, 0.5), (61, 3.0)])
def test_the_recommended_grid_does_not_warn(n, step):
    cohort = _cohort(n, step)
    warned = _grid_warnings(cohort, 50 * step)
    assert len(warned) == 1
    recommended = float(re.search(r"use a grid near ([0-9.e+-]+)$", warned[0]).group(1))
    assert _grid_warnings(cohort, recommended) == []


def test_the_case_that_rounded_up():
    cohort = _cohort(110, 0.04)  # default grid 0.0826666...: '.3g' printed 0.0827
    default = SequentialTrials().fit(cohort, "os").data_.diagnostics["trials"]["grid"]
    assert f"{default:.3g}" == "0.0827" and default < 0.0827
    assert _grid_warnings(cohort, 2.0)[0].endswith("use a grid near 0.0826")
