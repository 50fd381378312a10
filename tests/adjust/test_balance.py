"""Balance diagnostics checked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.adjust.balance import (balance_table, balance_warnings, ess, ess_warnings, propensity_histogram,
                                       weight_summary)


def test_smd_and_variance_ratio_by_hand():
    x = np.array([[1.0], [2.0], [3.0], [2.0], [4.0], [6.0]])
    a = np.array([0, 0, 0, 1, 1, 1])
    # before: means 2 vs 4, variances 1 and 4 -> pooled SD sqrt(2.5)
    w = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 0.0])  # last treated dropped
    b = balance_table(x, a, ["x"], weights=w)
    assert b["smd_before"][0] == pytest.approx(2 / np.sqrt(2.5))
    assert b["variance_ratio_before"][0] == pytest.approx(4.0)
    # after: treated mean 3, untreated weighted mean (1+2+6)/4 = 2.25
    assert b["smd_after"][0] == pytest.approx(0.75 / np.sqrt(2.5))
    # weighted variances with reliability correction: treated {2,4}: 2; untreated: sum w (x-m)^2 / (4 - 6/4)
    vu = (1.5625 + 0.0625 + 2 * 0.5625) / (4 - 6 / 4)
    assert b["variance_ratio_after"][0] == pytest.approx(2.0 / vu)
    assert balance_warnings(b, "w") == ["w: residual imbalance after adjustment: max |SMD| = 0.474 > 0.1 (x)"]


def test_ess_and_weight_summary():
    w = np.array([1.0, 1.0, 2.0, 4.0])
    assert ess(w) == pytest.approx(64 / 22)
    a = np.array([1, 1, 0, 0])
    s = weight_summary(w, a, estimand="ATE", n_truncated=1)
    assert s["ess_treated"] == 2 and s["ess_untreated"] == pytest.approx(36 / 20)
    assert s["top5"] == [4.0, 2.0, 1.0, 1.0] and s["min"] == 1.0 and s["max"] == 4.0 and sum(s["counts"]) == 4
    assert ess_warnings(w, a, "w") == ["w: effective sample size in the treated arm is 2.0 < 20",
                                       "w: effective sample size in the untreated arm is 1.8 < 20"]


def test_propensity_histogram_counts():
    h = propensity_histogram(np.array([0.01, 0.5, 0.52, 0.99]), np.array([0, 0, 1, 1]), learner="logistic", n_near=0)
    assert len(h["bins"]) == 21 and sum(h["treated"]) == 2 and sum(h["untreated"]) == 2
    assert h["untreated"][0] == 1 and h["treated"][-1] == 1
