"""Separation vs positivity in the propensity model (issue 18).

The Firth learner called fitted probabilities near 0 or 1 "separation" even
where R's glm converges to a finite MLE (a positivity problem), and the
logistic learner called quasi-complete separation only "positivity". Both now
use the linear program of Konis (2007) (R detectseparation). References:
tests/reference/adjust_separation.R (glm, the SE-growth check of brglm2's
former check_infinite_estimates, and the same linear program in lpSolve) on the
crafted sets of tests/reference/adjust_separation.py.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from causal_hcc.adjust.propensity import NEAR, fit_propensity, logistic_irls
from causal_hcc.base import DesignData

FX = os.path.join(os.path.dirname(__file__), "..", "reference", "fixtures")
with open(os.path.join(FX, "adjust_separation.json"), encoding="utf-8") as fh:
    REF = json.load(fh)
DATA = pd.read_csv(os.path.join(FX, "adjust_separation.csv"))
SETS = ["near_overlap", "complete", "quasi", "quasi_offset", "overlap"]


def _columns(name: str) -> list[str]:
    c = REF[name]["columns"]
    return [c] if isinstance(c, str) else list(c)  # (R's JSON writes a one-element vector as a scalar)


def _set(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = DATA[DATA["set"] == name]
    return d[_columns(name)].to_numpy(float), d["a"].to_numpy(float)


def _design(X: np.ndarray, a: np.ndarray, names: list[str]) -> DesignData:
    n = len(a)
    return DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=np.arange(1.0, n + 1),
                      event=np.ones(n), treatment=a.astype(np.int8), X=X, confounders=names,
                      patient=np.arange(n), unit=np.arange(n), weight=np.ones(n))


@pytest.mark.parametrize("name", SETS)
def test_linear_program_agrees_with_r(name):
    from causal_hcc.adjust.propensity import detect_separation

    X, a = _set(name)
    ref = REF[name]
    sep, direction = detect_separation(np.column_stack([np.ones(len(a)), X]), a)
    assert sep is ref["lp_separation"]
    # the MLE is infinite exactly where R's SEs keep growing with the iteration limit
    assert sep is (ref["se_ratio_100_25"] > 10)
    if name.startswith("quasi"):  # nobody with z = 1 is treated: b_z -> -infinity, as R's program says
        assert direction[2] == ref["lp_direction"][2] == -1


@pytest.mark.parametrize("name", ["near_overlap", "overlap"])
def test_the_unpenalised_fit_matches_glm_where_the_mle_is_finite(name):
    X, a = _set(name)
    coef, mu, converged, _ = logistic_irls(np.column_stack([np.ones(len(a)), X]), a)
    assert converged and REF[name]["converged"]
    np.testing.assert_allclose(coef, REF[name]["coef"], rtol=1e-8)
    assert int(np.sum((mu < NEAR) | (mu > 1 - NEAR))) == REF[name]["n_near"]


def test_firth_calls_near_zero_scores_with_overlap_positivity_not_separation():
    X, a = _set("near_overlap")
    assert REF["near_overlap"]["converged"] and REF["near_overlap"]["n_near"] == 30
    ps = fit_propensity(_design(X, a, ["x"]), learner="firth")
    assert ps.firth_separation is False
    assert not [w for w in ps.warnings if "separates" in w]
    assert ("propensity: 30 of 300 scores of the unpenalised logistic propensity model are within 1e-06 of 0 or 1 "
            "(no separation: its MLE is finite): positivity is violated for them") in ps.warnings


@pytest.mark.parametrize("name", ["quasi", "quasi_offset"])
@pytest.mark.parametrize("learner", ["firth", "logistic"])
def test_quasi_separation_is_called_separation(name, learner):
    X, a = _set(name)
    ps = fit_propensity(_design(X, a, _columns(name)), learner=learner)
    if learner == "firth":
        assert ps.firth_separation is True
        assert ("propensity: the unpenalised logistic propensity model separates (its MLE is infinite); the "
                "Firth-penalised scores are finite, but the arms barely overlap") in ps.warnings
    else:
        k = REF[name]["n_near"]
        assert (f"propensity: {k} of {len(a)} propensity scores are within 1e-06 of 0 or 1 (the logistic model "
                "separates: its MLE is infinite): positivity is violated for them") in ps.warnings


def test_logistic_with_overlap_says_positivity_only():
    X, a = _set("near_overlap")
    ps = fit_propensity(_design(X, a, ["x"]), learner="logistic")
    assert ("propensity: 30 of 300 propensity scores are within 1e-06 of 0 or 1: positivity is violated "
            "for them") in ps.warnings
    assert not [w for w in ps.warnings if "separates" in w]
