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
    fit = coxph(df[case["time"]], df[case["event"]], X, ties=case["ties"], names=cols, **kw)
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
