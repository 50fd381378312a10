"""Firth-penalised logistic and Cox regression (core/firth.py) against tests/reference/core_firth.R.

Logistic: brglm2 (Jeffreys-penalised likelihood = Firth for the logit link), itself checked in the R
script against Heinze & Schemper (2002). Cox: an independent maximisation in R of the penalised
partial likelihood built from survival::coxph's loglik and information (coxphf is not packaged).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from causal_hcc.core.cox import coxph
from causal_hcc.core.firth import coxph_firth, firth_logistic
from causal_hcc.errors import DataError, EstimationError
from tests.core._fixtures import FIXTURES, dataset, listify

REF = json.loads((FIXTURES / "core_firth.json").read_text())


@pytest.mark.parametrize("name", list(REF["logistic"]))
def test_logistic_equals_brglm2(name):
    c = REF["logistic"][name]
    f = firth_logistic(np.array(c["X"], float), np.array(c["y"], float))
    np.testing.assert_allclose(f.coef, c["coef"], rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(f.fitted, c["fitted"], atol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(f.var)), c["se"], rtol=1e-7)


def test_logistic_published_example():
    """Heinze & Schemper (2002), endometrial cancer data: 3.775, 2.929, -0.035, -2.604."""
    c = REF["logistic"]["endometrial"]
    f = firth_logistic(np.array(c["X"], float), np.array(c["y"], float))
    np.testing.assert_allclose(f.coef, [3.775, 2.929, -0.035, -2.604], atol=6e-4)


def _cox_case(c, **kw):
    df = dataset(c["data"])
    if c["data"] == "veteran":
        df = df.assign(sep=(df["status"] == 0).astype(int))
    cols = listify(c["columns"])
    args = dict(ties=c["ties"], entry=None if c["entry"] is None else df[c["entry"]],
                weights=None if c["weights"] is None else df[c["weights"]],
                strata=None if c["strata"] is None else df[c["strata"]], names=cols)
    args.update(kw)
    return df, cols, coxph_firth(df[c["time"]], df[c["event"]], df[cols].to_numpy(float), **args)


@pytest.mark.parametrize("name", list(REF["cox"]))
def test_cox_equals_independent_penalised_likelihood(name):
    c = REF["cox"][name]
    _, _, f = _cox_case(c, profile="ci_lower" in c, robust=False)
    np.testing.assert_allclose(f.coef, c["coef"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(f.var)), c["se"], rtol=1e-6)
    assert f.penalised_loglik == pytest.approx(c["penalised_loglik"], abs=1e-8)
    if "ci_lower" in c:
        np.testing.assert_allclose(f.ci_lower, c["ci_lower"], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(f.ci_upper, c["ci_upper"], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(f.p_values, c["p"], rtol=1e-6)


def test_monotone_likelihood_unpenalised_fails_firth_is_finite():
    c = REF["cox"]["veteran_monotone"]
    df, cols, f = _cox_case(c, profile=False)
    try:
        mle = coxph(df["time"], df["status"], df[cols].to_numpy(float), names=cols)
    except EstimationError:
        pass  # main before R's convergence rules: an error
    else:     # R's rules: a warning and a coefficient on its way to -infinity
        assert mle.coef[0] < -10 and getattr(mle, "warnings", ("",))
    assert np.all(np.isfinite(f.coef)) and f.coef[0] == pytest.approx(-2.9219, abs=1e-4)


def test_penalised_score_is_zero_at_the_estimate():
    """The modified score is the gradient of the penalised loglik (numerical check of its third-moment term)."""
    from causal_hcc.core.firth import _cox_pl

    c = REF["cox"]["lung_three"]
    _, _, f = _cox_case(c, profile=False, ties="efron")
    prob = f._prob
    b = f.coef + np.array([0.01, -0.05, 0.03])
    _, U, _, _ = _cox_pl(prob, b)
    h = 1e-5
    num = [(_cox_pl(prob, b + h * e, score=False)[0] - _cox_pl(prob, b - h * e, score=False)[0]) / (2 * h)
           for e in np.eye(3)]
    np.testing.assert_allclose(U, num, rtol=1e-6)


def test_robust_variance_with_weights():
    c = REF["cox"]["lung_strata_weighted"]
    _, _, f = _cox_case(c, profile=False)
    assert f.robust and f.var_robust is not None
    assert np.all(np.sqrt(np.diag(f.var_robust)) > 0)


def test_bad_input():
    with pytest.raises(DataError, match=r"^coxph_firth: 1 names for 2 columns of X$"):
        coxph_firth([1, 2, 3], [1, 0, 1], np.ones((3, 2)), names=["a"])
    with pytest.raises(EstimationError, match=r"^coxph_firth: no events \(event is 0 for all 3 rows\); the Cox "
                                              r"model cannot be fitted$"):
        coxph_firth([1, 2, 3], [0, 0, 0], [[0.0], [1.0], [0.0]])
    with pytest.raises(EstimationError, match=r"^coxph_firth: information matrix singular"):
        coxph_firth([1, 2, 3, 4], [1, 1, 0, 1], [[1.0], [1.0], [1.0], [1.0]])
    with pytest.raises(EstimationError, match=r"^firth_logistic: singular information matrix"):
        firth_logistic(np.column_stack([np.ones(4), np.ones(4)]), [0, 1, 0, 1])
