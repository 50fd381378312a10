"""coxph against R survival::coxph (fixtures from tests/reference/core_cox.R)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from causal_hcc.core import coxph
from causal_hcc.errors import DataError, EstimationError, SpecError
from tests.core._fixtures import FIXTURES, dataset, listify, reference

CASES = reference("cox")


def _fit(spec: dict):
    d = dataset(spec["data"])
    kw = {"ties": spec["ties"]}
    for key in ("entry", "weights", "strata", "cluster"):
        if key in spec:
            kw[key] = d[spec[key]].to_numpy()
    if "robust" in spec:
        kw["robust"] = spec["robust"]
    return coxph(d[spec["time"]].to_numpy(), d[spec["event"]].to_numpy(), d[listify(spec["x"])], **kw)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    ref = CASES[request.param]
    return _fit(ref["spec"]), ref


def test_coef_loglik(case):
    fit, ref = case
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], ref["loglik"], rtol=1e-10)
    assert fit.n_iter == ref["iter"]
    assert fit.converged
    assert fit.n == ref["n"] and fit.n_events == ref["nevent"]


def test_variances(case):
    fit, ref = case
    p = len(ref["coef"])
    assert fit.robust == ref["robust"]
    if ref["robust"]:
        np.testing.assert_allclose(fit.var_robust, np.reshape(ref["var"], (p, p)), rtol=1e-6)
        np.testing.assert_allclose(fit.var, np.reshape(ref["naive_var"], (p, p)), rtol=1e-6)
        np.testing.assert_allclose(fit.robust_score_test, ref["robust_score_test"], rtol=1e-6)
    else:
        assert fit.var_robust is None
        np.testing.assert_allclose(fit.var, np.reshape(ref["var"], (p, p)), rtol=1e-6)
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(np.reshape(ref["var"], (p, p)))), rtol=1e-6)


def test_global_tests(case):
    fit, ref = case
    np.testing.assert_allclose(
        [fit.score_test, fit.wald_test, fit.lr_test],
        [ref["score_test"], ref["wald_test"], ref["lr_test"]],
        rtol=1e-7,
    )


def test_baseline_hazard(case):
    fit, ref = case
    bh = fit.baseline_hazard()
    np.testing.assert_allclose(bh["time"], ref["basehaz"]["time"], rtol=0)
    np.testing.assert_allclose(bh["hazard"], ref["basehaz"]["hazard"], rtol=1e-8, atol=1e-12)


def test_predict_survival(case):
    fit, ref = case
    pr = ref["predict"]
    if pr is None:
        pytest.skip("stratified model: R prediction not exported")
    S = fit.predict_survival(np.asarray(pr["newdata"]), pr["times"])
    # jsonlite writes R matrices row-major: rows = times, columns = newdata rows
    np.testing.assert_allclose(S, np.asarray(pr["surv"]).T, rtol=1e-8)


def test_summary_schema():
    d = dataset("lung")
    fit = coxph(d.time, d.status, d[["age", "sex"]])
    s = fit.summary()
    assert list(s.columns) == ["coef", "exp_coef", "se", "robust_se", "z", "p", "lower", "upper"]
    assert list(s.index) == ["age", "sex"]
    assert s["robust_se"].isna().all()
    np.testing.assert_allclose(s["exp_coef"], np.exp(fit.coef))


def test_input_not_mutated():
    d = dataset("lung").copy()
    before = d.copy()
    coxph(d.time, d.status, d[["age", "sex"]], weights=d.w)
    pd.testing.assert_frame_equal(d, before)


def test_two_row_hand_computed():
    # two subjects, one event at t=1 (x=1), other censored later (x=0):
    # partial likelihood e^b / (e^b + 1) -> no finite maximum.
    with pytest.raises(EstimationError, match=r"coefficient of 'x1' may be infinite|did not converge"):
        coxph([1.0, 2.0], [1, 0], [[1.0], [0.0]])


def test_breslow_single_event_by_hand():
    # 3 subjects, x = 0, 2, 1; events at t=1 (x=0) and t=2 (x=2); t=3 censored (x=1).
    # loglik(b) = -log(1 + e^2b + e^b) + 2b - log(e^2b + e^b); at b=0: -log 3 - log 2
    fit = coxph([1.0, 2.0, 3.0], [1, 1, 0], [[0.0], [2.0], [1.0]], ties="breslow")
    assert fit.loglik_null == pytest.approx(-np.log(3) - np.log(2), rel=1e-12)
    # score at 0: (0 - 1) + (2 - 1.5) = -0.5; information: 2/3 + 1/4
    assert fit.score_test == pytest.approx(0.5**2 / (2 / 3 + 1 / 4), rel=1e-12)
    # the maximiser solves the score equation
    from scipy.optimize import minimize_scalar

    def nll(b):
        return np.log(1 + np.exp(2 * b) + np.exp(b)) - 2 * b + np.log(np.exp(2 * b) + np.exp(b))

    assert fit.coef[0] == pytest.approx(minimize_scalar(nll).x, abs=1e-6)


def test_separation_warns_like_r_and_returns_the_fit():
    # every early time treated: monotone likelihood. R 3.5-3 returns coef 22.7538064610309 after 20
    # iterations with "Loglik converged before variable 1; coefficient may be infinite" (a warning).
    rng = np.random.default_rng(1)
    t = rng.exponential(size=40)
    x = (t < np.median(t)).astype(float)
    e = np.ones(40)
    e[x == 0] = 0
    fit = coxph(t, e, x, names=["surgery"])
    assert fit.coef[0] == pytest.approx(22.7538064610309, abs=1e-6)
    assert fit.loglik == pytest.approx(-42.3356164701986, abs=1e-9)
    assert fit.infinite == ("surgery",)
    assert fit.warnings == ("coxph: loglik converged before coefficient of 'surgery' (22.8); it may be "
                            "infinite (monotone likelihood, perfect separation?): its HR and CI are not "
                            "usable; a Firth-penalised fit gives a finite estimate",)


def test_constant_column_raises():
    d = dataset("lung")
    X = np.column_stack([d.age, np.ones(len(d))])
    with pytest.raises(EstimationError, match="^coxph: covariate 'const' has no variation within risk sets"):
        coxph(d.time, d.status, X, names=["age", "const"])


def test_collinear_column_raises():
    d = dataset("lung")
    X = np.column_stack([d.age, d.sex, 2 * d.age + 1])
    with pytest.raises(EstimationError, match="covariate 'age2'"):
        coxph(d.time, d.status, X, names=["age", "sex", "age2"])


def test_no_events_raises():
    with pytest.raises(EstimationError, match=r"^coxph: no events \(event is 0 for all 3 rows\)"):
        coxph([1.0, 2.0, 3.0], [0, 0, 0], [[0.0], [1.0], [2.0]])


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"time": [1.0, np.nan, 3.0]}, DataError, r"coxph: time has missing or infinite values \(rows 1\)"),
        ({"event": [1, 2, 0]}, DataError, r"coxph: event must be 0/1 \(rows 1\)"),
        ({"entry": [0.0, 2.0, 1.0]}, DataError, r"coxph: entry must be < time \(rows 1\)"),
        ({"weights": [1.0, -1.0, 1.0]}, DataError, r"coxph: weights must be >= 0 \(rows 1\)"),
        ({"ties": "exact"}, SpecError, r"coxph: ties must be one of 'efron', 'breslow', got 'exact'"),
        ({"time": [1.0, 2.0]}, DataError, r"coxph: time has 2 values, expected 3"),
    ],
)
def test_bad_input_messages(kwargs, exc, msg):
    args = {"time": [1.0, 2.0, 3.0], "event": [1, 1, 0], "X": [[0.0], [1.0], [0.5]]}
    args.update(kwargs)
    t, e, X = args.pop("time"), args.pop("event"), args.pop("X")
    with pytest.raises(exc, match="^" + msg + "$"):
        coxph(t, e, X, **args)


def test_robust_default_follows_r():
    d = dataset("gbsg")
    assert coxph(d.rfstime, d.status, d[["age"]]).robust is False
    assert coxph(d.rfstime, d.status, d[["age"]], weights=np.round(d.w * 3)).robust is False
    assert coxph(d.rfstime, d.status, d[["age"]], weights=d.w).robust is True
    assert coxph(d.rfstime, d.status, d[["age"]], cluster=d.pid).robust is True


def test_row_order_invariance():
    d = dataset("heart")
    perm = np.random.default_rng(0).permutation(len(d))
    X = d[["age", "surgery", "transplant"]]
    f1 = coxph(d.stop, d.event, X, entry=d.start, cluster=d.id)
    e = d.iloc[perm]
    f2 = coxph(e.stop, e.event, e[["age", "surgery", "transplant"]], entry=e.start, cluster=e.id)
    np.testing.assert_allclose(f1.coef, f2.coef, rtol=1e-10)
    np.testing.assert_allclose(f1.var_robust, f2.var_robust, rtol=1e-9)


def test_stratum_without_events_has_zero_baseline_hazard():
    time = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 2.5, 3.5])
    event = np.array([1, 0, 1, 1, 0, 1, 0, 0])
    x = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    strata = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    fit = coxph(time, event, x[:, None], strata=strata)
    both = coxph(time[:6], event[:6], x[:6, None])
    np.testing.assert_allclose(fit.coef, both.coef, rtol=1e-12)  # an event-free stratum adds nothing
    bh = fit.baseline_hazard()
    assert (bh.loc[bh["stratum"] == bh["stratum"].iloc[-1], "hazard"] == 0).all()


def test_stable_argsort_equals_numpy_stable():
    from causal_hcc.core._checks import stable_argsort

    rng = np.random.default_rng(4)
    for n, k in ((0, 1), (1, 1), (7, 2), (1000, 5), (50_000, 300), (50_000, 50_000)):
        keys = rng.integers(0, k, n)
        np.testing.assert_array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))
    big = np.array([2**62, 0, 2**62, 5])                  # key * n would overflow: numpy's stable sort
    np.testing.assert_array_equal(stable_argsort(big), [1, 3, 0, 2])
    neg = np.array([3, -1, 3, -1])
    np.testing.assert_array_equal(stable_argsort(neg), [1, 3, 0, 2])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_stratum_of_tiny_weights_does_not_cancel_to_zero(ties):
    """Risk sets of weight ~1e-27 in a stratum that sorts first (ATT weights of near-contraindicated controls
    in sequential trials): the running sums over all strata used to cancel to 0 there, and the fit failed with
    "no variation within risk sets" (6 of 200 sequential-trials ATT cohorts of 600 on the twin). R sums each
    stratum on its own (tests/reference/core_cox_tiny_weights.R)."""
    d = pd.read_csv(FIXTURES / "core_cox_tiny_weights.csv")
    ref = json.loads((FIXTURES / "core_cox_tiny_weights.json").read_text())[ties]
    fit = coxph(d["t"], d["e"], d[["x"]], weights=d["w"], strata=d["s"], ties=ties, robust=True)
    assert fit.coef[0] == pytest.approx(ref["coef"], abs=1e-8)
    assert math.sqrt(fit.var_robust[0, 0]) == pytest.approx(ref["se"], rel=1e-7)
    assert math.sqrt(fit.var[0, 0]) == pytest.approx(ref["naive_se"], rel=1e-7)
    assert fit.loglik == pytest.approx(ref["loglik"][1], rel=1e-10)
    # the tiny rows carry ~1e-27 of the likelihood: the fit equals the fit without them
    big = d[d["w"] > 1e-20]
    ref2 = coxph(big["t"], big["e"], big[["x"]], weights=big["w"], strata=big["s"], ties=ties, robust=True)
    assert fit.coef[0] == pytest.approx(ref2.coef[0], abs=1e-12)
