"""cox.zph (core/zph.py) against R survival::cox.zph (tests/reference/core_zph.R)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from causal_hcc.core.cox import coxph
from causal_hcc.core.zph import cox_zph, km_transform
from causal_hcc.errors import DataError, SpecError
from tests.core._fixtures import FIXTURES, dataset, listify

REF = json.loads((FIXTURES / "core_zph.json").read_text())
CASES = [k for k in REF if k != "meta"]


def frame(case: dict):
    df = dataset(case["data"])
    if "karno60" in listify(case["columns"]):
        df = df.assign(karno60=(df["karno"] >= 60).astype(int))
    return df


def _fit(case: dict):
    df = frame(case)
    cols = listify(case["columns"])
    X = df[cols].to_numpy(float)
    kw = dict(entry=None if case["entry"] is None else df[case["entry"]],
              weights=None if case["weights"] is None else df[case["weights"]],
              strata=None if case["strata"] is None else df[case["strata"]])
    fit = coxph(df[case["time"]], df[case["event"]], X, ties=case["ties"], names=cols, keep_problem=True, **kw)
    terms = {k: (v if isinstance(v, list) else [v]) for k, v in case["terms"].items()}
    z = cox_zph(fit, df[case["time"]], df[case["event"]], X, transform=case["transform"], terms=terms, **kw)
    return fit, z


@pytest.mark.parametrize("name", CASES)
def test_table_equals_r(name):
    case = REF[name]
    _, z = _fit(case)
    t = case["table"]
    assert list(z.table.index) == t["term"]
    np.testing.assert_allclose(z.table["chisq"], t["chisq"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(z.table["p"], t["p"], rtol=1e-6, atol=1e-9)
    assert list(z.table["df"]) == t["df"]


@pytest.mark.parametrize("name", CASES)
def test_residuals_and_smooth_equal_r(name):
    case = REF[name]
    _, z = _fit(case)
    np.testing.assert_allclose(z.x, case["x"], atol=1e-9)
    np.testing.assert_allclose(z.time, case["event_time"], atol=0)
    y = np.array([[np.nan if v is None else v for v in row] for row in case["y"]], float).reshape(len(case["x"]), -1)
    np.testing.assert_array_equal(np.isnan(z.y), np.isnan(y))
    np.testing.assert_allclose(z.y, y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(z.var, np.array(case["var"], float).reshape(z.var.shape), rtol=1e-6, atol=1e-10)
    sm = z.smooth(z.terms[0])
    for k in ("x", "beta", "lower", "upper"):
        np.testing.assert_allclose(sm[k], case["smooth"][k], rtol=1e-6, atol=1e-8)


def test_to_dict_shape():
    _, z = _fit(REF["lung"])
    d = z.to_dict()
    assert d["transform"] == "km"
    assert [r["term"] for r in d["terms"]] == ["age", "sex", "ph.ecog"]
    assert set(d["terms"][0]) == {"term", "chisq", "df", "p"}
    assert d["global"]["df"] == 3
    assert d["global"]["chisq"] == pytest.approx(REF["lung"]["table"]["chisq"][-1], rel=1e-9)


def test_cluster_does_not_change_the_test():
    """R: cox.zph ignores cluster/robust (model information); the fixture asserts it in R too."""
    case = REF["heart"]
    df = dataset("heart")
    X = df[case["columns"]].to_numpy(float)
    fit = coxph(df["stop"], df["event"], X, entry=df["start"], cluster=df["id"], names=case["columns"])
    z = cox_zph(fit, df["stop"], df["event"], X, entry=df["start"])
    np.testing.assert_allclose(z.table["chisq"], case["table"]["chisq"], rtol=1e-9)


def test_km_transform_by_hand():
    # deaths at 1, 3, 4; at risk 5, 2, 1: S(1) = 0.8, S(3) = 0.4, S(4) = 0; the transform is 1 - S(t-)
    t = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    e = np.array([True, False, False, True, True])
    np.testing.assert_allclose(km_transform(t, e), [0.0, 0.2, 0.2, 0.2, 0.6])


def test_bad_input():
    case = REF["lung"]
    df = dataset("lung")
    X = df[case["columns"]].to_numpy(float)
    fit = coxph(df["time"], df["status"], X, names=case["columns"])
    with pytest.raises(DataError, match=r"^cox_zph: X has 2 columns, the fit has 3 coefficients$"):
        cox_zph(fit, df["time"], df["status"], X[:, :2])
    with pytest.raises(DataError, match=r"^cox_zph: terms must partition the 3 columns of X exactly once$"):
        cox_zph(fit, df["time"], df["status"], X, terms={"a": [0, 1]})
    with pytest.raises(SpecError, match=r"^cox_zph: transform must be one of 'km', 'identity', 'log', 'rank', "
                                        r"got 'sqrt'$"):
        cox_zph(fit, df["time"], df["status"], X, transform="sqrt")
    z = cox_zph(fit, df["time"], df["status"], X)
    with pytest.raises(DataError, match=r"^cox_zph: no term 'trt'; terms: age, sex, ph.ecog$"):
        z.smooth("trt")


def _zph_arrays(z):
    return [z.table.to_numpy(), z.x, z.time, z.y, z.var]


@pytest.mark.parametrize("name", CASES)
def test_fitted_problem_reused_gives_identical_numbers(name):
    """cox_zph reuses the sorted problem coxph kept; without it (second call) it rebuilds: same bits."""
    import pickle

    case = REF[name]
    fit, z_reused = _fit(case)                           # _fit asks coxph to keep its problem
    assert len(fit._problem) == 0                       # consumed by the test: the arrays are not kept
    assert len(pickle.loads(pickle.dumps(fit))._problem) == 0
    df = frame(case)
    cols = listify(case["columns"])
    X = df[cols].to_numpy(float)
    kw = dict(entry=None if case["entry"] is None else df[case["entry"]],
              weights=None if case["weights"] is None else df[case["weights"]],
              strata=None if case["strata"] is None else df[case["strata"]])
    terms = {k: (v if isinstance(v, list) else [v]) for k, v in case["terms"].items()}
    z_rebuilt = cox_zph(fit, df[case["time"]], df[case["event"]], X, transform=case["transform"], terms=terms, **kw)
    for a, b in zip(_zph_arrays(z_reused), _zph_arrays(z_rebuilt)):
        np.testing.assert_array_equal(a, b)


def test_fitted_problem_not_reused_for_other_data():
    """Times that timefix merged inside coxph, or other rows, do not match the kept problem: it is rebuilt."""
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    t = np.round(rng.exponential(np.exp(-0.5 * x)), 3) + 0.001
    e = rng.random(n) < 0.7
    t_noisy = t.copy()
    t_noisy[::7] += 1e-12 * t_noisy[::7]                 # equal to t up to floating-point noise
    fit = coxph(t_noisy, e, x, keep_problem=True)
    z_fit = cox_zph(fit, t_noisy, e, x)                  # kept problem holds timefix'ed times: not reused
    z_new = cox_zph(fit, t_noisy, e, x)
    for a, b in zip(_zph_arrays(z_fit), _zph_arrays(z_new)):
        np.testing.assert_array_equal(a, b)
    fit2 = coxph(t, e, x, keep_problem=True)
    x2 = x.copy()
    x2[0] += 1.0
    z_other = cox_zph(fit2, t, e, x2)                    # other covariate values: rebuilt from them
    fit3 = coxph(t, e, x)                                # default: nothing kept, cox_zph builds its own
    assert len(fit3._problem) == 0
    import pickle
    kept = coxph(t, e, x, keep_problem=True)
    assert len(kept._problem) > 0 and len(pickle.loads(pickle.dumps(kept))._problem) == 0  # never pickled
    z_ref = cox_zph(fit3, t, e, x2)
    for a, b in zip(_zph_arrays(z_other), _zph_arrays(z_ref)):
        np.testing.assert_array_equal(a, b)
