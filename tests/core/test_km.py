"""kaplan_meier against R survival::survfit (fixtures from tests/reference/core_cox.R)."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.core import kaplan_meier, rmst_difference
from causal_hcc.errors import DataError, SpecError
from tests.core._fixtures import dataset, reference

REF = reference("km")
CURVES = sorted(k for k, v in REF.items() if "surv" in v)


def _nz(a):
    return np.array([np.nan if v is None else v for v in a], dtype=float)


def _fit(spec):
    d = dataset(spec["data"])
    kw = {k: d[spec[k]].to_numpy() for k in ("entry", "weights", "cluster") if k in spec}
    for k in ("conf_type", "variance"):
        if k in spec:
            kw[k] = spec[k]
    return kaplan_meier(d[spec["time"]].to_numpy(), d[spec["event"]].to_numpy(), **kw)


@pytest.fixture(scope="module", params=CURVES)
def case(request):
    ref = REF[request.param]
    return _fit(ref["spec"]), ref


def test_table(case):
    fit, ref = case
    np.testing.assert_array_equal(fit.time, ref["time"])
    np.testing.assert_allclose(fit.n_risk, ref["n_risk"], rtol=1e-12)
    np.testing.assert_allclose(fit.n_event, ref["n_event"], rtol=1e-12)
    np.testing.assert_allclose(fit.n_censor, ref["n_censor"], rtol=1e-12)
    np.testing.assert_allclose(fit.surv, ref["surv"], rtol=0, atol=1e-10)


def test_std_err(case):
    fit, ref = case
    # R reports se(log S) for Greenwood and se(S) for the IJ (robust) variance
    ours = fit.std_err if ref["logse"] else fit.se_surv
    r = _nz(ref["std_err"])
    inf = ~np.isfinite(ours)
    np.testing.assert_array_equal(inf, np.isnan(r))
    np.testing.assert_allclose(ours[~inf], r[~inf], rtol=1e-8, atol=1e-13)
    assert fit.variance == ("greenwood" if ref["logse"] else "ij")


def test_confint(case):
    fit, ref = case
    np.testing.assert_allclose(fit.lower, _nz(ref["lower"]), rtol=1e-8, atol=1e-13, equal_nan=True)
    np.testing.assert_allclose(fit.upper, _nz(ref["upper"]), rtol=1e-8, atol=1e-13, equal_nan=True)


def test_median(case):
    fit, ref = case
    expect = [np.nan if ref[k] is None else ref[k] for k in ("median", "median_lower", "median_upper")]
    np.testing.assert_allclose(fit.median(), expect, equal_nan=True)


def test_rmst(case):
    fit, ref = case
    est, se = fit.rmst(ref["tau"])
    assert est == pytest.approx(ref["rmean"], rel=1e-10)
    if fit.variance == "greenwood" or (ref["spec"].get("weights") is None and ref["spec"].get("cluster") is None):
        # R's se(rmean) is the Greenwood-type formula; it equals the IJ one without weights/clusters
        assert se == pytest.approx(ref["se_rmean"], rel=1e-8)


def test_influence_matches_r():
    ref = REF["gbsg_weighted_influence"]
    fit = _fit(ref["spec"])
    np.testing.assert_allclose(fit.influence_surv(ref["times"]), np.asarray(ref["influence"]), atol=1e-12)


def _numeric_weight_derivative(d, k, fn, eps=1e-6):
    w = d.w.to_numpy().copy()
    up, dn = w.copy(), w.copy()
    up[k] += eps
    dn[k] -= eps
    f_up = fn(kaplan_meier(d.time, d.status, entry=d.entry, weights=up))
    f_dn = fn(kaplan_meier(d.time, d.status, entry=d.entry, weights=dn))
    return (f_up - f_dn) / (2 * eps)


@pytest.mark.parametrize("k", [0, 7, 41, 100, 150])
def test_influence_is_weight_derivative(k):
    """IJ influence = w_k * dTheta/dw_k (checked by central differences, with entry)."""
    d = dataset("lung")
    fit = kaplan_meier(d.time, d.status, entry=d.entry, weights=d.w)
    times = [150.0, 400.0]
    num_s = _numeric_weight_derivative(d, k, lambda f: f.at(times)["surv"].to_numpy())
    np.testing.assert_allclose(fit.influence_surv(times)[k] / d.w[k], num_s, rtol=1e-5, atol=1e-9)
    num_r = _numeric_weight_derivative(d, k, lambda f: f.rmst(500.0)[0])
    assert fit.influence_rmst(500.0)[k] / d.w[k] == pytest.approx(num_r, rel=1e-5, abs=1e-7)


def test_ij_variance_equals_sum_of_squared_influence():
    d = dataset("colon")
    fit = kaplan_meier(d.time, d.status, cluster=d.id, weights=d.extent)
    times = [300.0, 1000.0, 2000.0]
    infl = fit.influence_surv(times)
    per_cluster = np.zeros((d.id.nunique(), 3))
    np.add.at(per_cluster, np.unique(d.id, return_inverse=True)[1], infl)
    np.testing.assert_allclose(np.sqrt((per_cluster**2).sum(0)), fit.at(times)["se"], rtol=1e-9)


def test_at_step_function():
    fit = kaplan_meier([1.0, 2.0, 2.0, 4.0], [1, 1, 0, 0])
    out = fit.at([0.5, 1.0, 1.5, 2.0, 4.0, 5.0])
    np.testing.assert_allclose(out["surv"], [1.0, 0.75, 0.75, 0.5, 0.5, np.nan])
    # Greenwood by hand at t=2: 1/(4*3) + 1/(3*2)
    assert out["se"][3] == pytest.approx(0.5 * np.sqrt(1 / 12 + 1 / 6))


def test_rmst_by_hand_and_difference():
    f1 = kaplan_meier([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1])
    f0 = kaplan_meier([1.0, 1.0, 2.0, 2.0], [1, 1, 1, 1])
    assert f1.rmst(4.0)[0] == pytest.approx(1 + 0.75 + 0.5 + 0.25)
    assert f0.rmst(4.0)[0] == pytest.approx(1 + 0.5)
    diff, se = rmst_difference(f1, f0, 4.0)
    assert diff == pytest.approx(1.0)
    assert se == pytest.approx(np.hypot(f1.rmst(4.0)[1], f0.rmst(4.0)[1]))


def test_variance_auto():
    d = dataset("gbsg")
    assert kaplan_meier(d.rfstime, d.status).variance == "greenwood"
    assert kaplan_meier(d.rfstime, d.status, weights=np.ones(len(d))).variance == "greenwood"
    assert kaplan_meier(d.rfstime, d.status, weights=d.w).variance == "ij"
    assert kaplan_meier(d.rfstime, d.status, cluster=d.pid).variance == "ij"


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"variance": "boot"}, SpecError, r"kaplan_meier: variance must be one of 'auto', 'greenwood', 'ij', got 'boot'"),
        ({"conf_type": "logit"}, SpecError, r"kaplan_meier: conf_type must be one of 'log', 'log-log', 'plain', got 'logit'"),
        ({"weights": [1.0, 0.0, np.inf]}, DataError, r"kaplan_meier: weights has missing or infinite values \(rows 2\)"),
        ({"entry": [0.0, 3.0, 0.0]}, DataError, r"kaplan_meier: entry must be < time \(rows 1\)"),
        ({"alpha": 1.5}, DataError, r"kaplan_meier: alpha must be in \(0, 1\), got 1.5"),
    ],
)
def test_bad_input(kwargs, exc, msg):
    with pytest.raises(exc, match="^" + msg + "$"):
        kaplan_meier([1.0, 2.0, 3.0], [1, 0, 1], **kwargs)
