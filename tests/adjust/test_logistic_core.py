"""Own IRLS logistic regression (adjust.propensity.logistic_irls) against R glm and statsmodels,
and the bootstrap-replicate mode of iptw/psm (diagnostics skipped, estimates bit-identical)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from adjust_support import design_from_frame
from causal_hcc.adjust.propensity import fit_propensity, logistic_irls
from causal_hcc.base import DesignData
from causal_hcc.errors import EstimationError
from causal_hcc.inference import _IN_REPLICATE
from causal_hcc.adjust.iptw import IPTW
from causal_hcc.adjust.psm import PSM


def _statsmodels(X, y, maxiter=100):
    sm = pytest.importorskip("statsmodels.api")
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sm.GLM(y, X, family=sm.families.Binomial()).fit(maxiter=maxiter, tol=1e-10)
    separated = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    return np.asarray(res.params), np.asarray(res.fittedvalues), bool(res.converged), separated


def test_matches_r_glm_on_gbsg(gbsg, ref):
    ps = fit_propensity(gbsg)
    np.testing.assert_allclose(ps.coef, ref["ps_coef"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(ps.unit_score[:10], ref["ps_head"], rtol=0, atol=1e-10)
    assert ps.unit_score.min() == pytest.approx(ref["ps_min"], abs=1e-10)
    assert ps.unit_score.max() == pytest.approx(ref["ps_max"], abs=1e-10)
    assert ps.converged


@pytest.mark.parametrize("seed,n,p", [(0, 40, 1), (1, 137, 5), (2, 686, 8), (3, 3000, 10), (4, 200, 3)])
def test_matches_statsmodels_on_random_data(seed, n, p):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p)) * rng.uniform(0.5, 30, p)])
    beta = rng.normal(size=p + 1) / np.r_[1.0, X[:, 1:].std(axis=0)] * 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    coef, mu, conv, sep = logistic_irls(X, y)
    c_sm, mu_sm, conv_sm, sep_sm = _statsmodels(X, y)
    np.testing.assert_allclose(coef, c_sm, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mu, mu_sm, rtol=0, atol=1e-12)
    assert (conv, sep) == (conv_sm, sep_sm) == (True, False)


def test_quasi_separation_takes_statsmodels_path():
    # x = 0 predicts untreated perfectly: the MLE does not exist; statsmodels stops on the deviance rule
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1.0])
    y = np.array([0, 0, 0, 0, 0, 1, 1, 0, 1, 1.0])
    X = np.column_stack([np.ones(10), x])
    coef, mu, conv, sep = logistic_irls(X, y)
    c_sm, mu_sm, conv_sm, sep_sm = _statsmodels(X, y)
    # same iterations; the diverging coefficients (~ -26.6 after 25 steps) carry the rounding of
    # normal equations vs lstsq (~1e-10 relative)
    np.testing.assert_allclose(coef, c_sm, rtol=1e-9)
    np.testing.assert_allclose(mu, mu_sm, rtol=0, atol=1e-12)
    assert coef[0] < -20 and (conv, sep) == (conv_sm, sep_sm) == (True, False)


def test_complete_separation_flag_and_error():
    x = np.arange(1.0, 9.0)
    y = (x > 4).astype(float)
    X = np.column_stack([np.ones(8), x])
    coef, mu, conv, sep = logistic_irls(X, y)
    c_sm, _, conv_sm, sep_sm = _statsmodels(X, y)
    np.testing.assert_allclose(coef, c_sm, rtol=1e-9)
    assert sep and sep_sm and conv == conv_sm


def test_non_convergence_is_flagged_like_statsmodels():
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(300), rng.normal(size=(300, 3))])
    y = (rng.random(300) < 0.3).astype(float)
    coef, mu, conv, _ = logistic_irls(X, y, maxiter=2)
    c_sm, mu_sm, conv_sm, _ = _statsmodels(X, y, maxiter=2)
    assert conv is False and conv_sm is False
    np.testing.assert_allclose(coef, c_sm, rtol=1e-10)


def test_collinear_design_falls_back_to_minimum_norm_lstsq():
    # x2 = 2 x1: X'WX is singular; statsmodels' lstsq gives the minimum-norm MLE, and so do we
    rng = np.random.default_rng(7)
    x1 = rng.normal(size=200)
    X = np.column_stack([np.ones(200), x1, 2 * x1, rng.normal(size=200)])
    y = (rng.random(200) < 1 / (1 + np.exp(-(0.3 + x1)))).astype(float)
    coef, mu, conv, _ = logistic_irls(X, y)
    c_sm, mu_sm, conv_sm, _ = _statsmodels(X, y)
    np.testing.assert_allclose(coef, c_sm, rtol=1e-8)
    np.testing.assert_allclose(mu, mu_sm, rtol=0, atol=1e-12)
    assert conv and conv_sm


def test_non_finite_design_is_one_line_error():
    n = 6
    idx = np.arange(n)
    data = DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=np.arange(1.0, n + 1),
                      event=np.ones(n, np.int8), treatment=np.array([0, 1, 0, 1, 0, 1], np.int8),
                      X=np.array([[1.0], [2.0], [np.inf], [4.0], [5.0], [7.0]]), confounders=["x"],
                      patient=idx, unit=idx, weight=np.ones(n))
    with pytest.raises(EstimationError) as exc:
        fit_propensity(data, where="adjustment 'iptw'")
    assert str(exc.value) == "adjustment 'iptw': logistic propensity model failed (exog contains inf or nans)"


# ---------------------------------------------------------------- replicate mode
def _fit(cls, options, data, targets, replicate):
    token = _IN_REPLICATE.set(replicate)
    try:
        return cls(**options).fit(data, targets).output_
    finally:
        _IN_REPLICATE.reset(token)


@pytest.mark.parametrize("cls,options", [
    (IPTW, {}),
    (IPTW, {"estimand": "ATT", "trim": [0.05, 0.95]}),
    (PSM, {"ratio": 2}),
])
def test_replicate_mode_skips_diagnostics_with_identical_estimates(gbsg_frame, targets, cls, options):
    data = design_from_frame(gbsg_frame)
    full = _fit(cls, options, data, targets, False)
    fast = _fit(cls, options, data, targets, True)
    assert "balance" in full.diagnostics and "propensity" in full.diagnostics
    assert not {"balance", "propensity", "weights", "matching"} & set(fast.diagnostics)
    assert len(full.estimates) == len(fast.estimates) > 0
    for a, b in zip(full.estimates, fast.estimates):
        assert (a.measure, a.time) == (b.measure, b.time)
    for field in ("estimate", "se", "ci_lower", "ci_upper", "p_value"):
        np.testing.assert_array_equal([getattr(e, field) for e in fast.estimates],
                                      [getattr(e, field) for e in full.estimates])  # bit-identical (NaN = NaN)

