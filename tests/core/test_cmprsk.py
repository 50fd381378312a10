"""Competing-risks core against R (fixtures from tests/reference/core_cmprsk.R).

Aalen-Johansen = survival::survfit multi-state (IJ variance, weights, delayed
entry, clusters); finegray = survival::finegray; Fine-Gray = coxph on it and
cmprsk::crr; CSC predictions and the CIF g-formula / AIPTW =
riskRegression::CSC / ate. Tolerance 1e-6 or tighter throughout (the
achieved agreement is ~1e-13).
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from causal_hcc.core.cmprsk import (CSCModel, aalen_johansen, cause_specific_cox, cif_ate, fine_gray,
                                    finegray)
from causal_hcc.errors import DataError, EstimationError
from tests.core._fixtures import FIXTURES


@lru_cache(maxsize=None)
def ref() -> dict:
    return json.loads((FIXTURES / "core_cmprsk.json").read_text())


@lru_cache(maxsize=None)
def data(name: str = "core_mgus2_cr") -> pd.DataFrame:
    return pd.read_csv(FIXTURES / f"{name}.csv")


def _nz(a) -> np.ndarray:
    return np.array(a, dtype=float) if not isinstance(a, list) else np.array(
        [[np.nan if v is None else v for v in r] if isinstance(r, list) else (np.nan if r is None else r) for r in a],
        dtype=float)


AJ_CASES = {
    "aj_plain": {},
    "aj_weighted": {"weights": "w", "cluster": "id"},
    "aj_entry": {"weights": "w", "cluster": "id", "entry": "entry"},
}


def _aj(case):
    d = data()
    kw = {k: d[v].to_numpy() for k, v in AJ_CASES[case].items()}
    return aalen_johansen(d.etime.to_numpy(), d.event.to_numpy(), **kw)


@pytest.mark.parametrize("case", sorted(AJ_CASES))
def test_aalen_johansen_table(case):
    fit, r = _aj(case), ref()[case]
    assert r["states"] == ["(s0)", "1", "2"]
    np.testing.assert_array_equal(fit.time, r["time"])
    ps = _nz(r["pstate"])
    np.testing.assert_allclose(fit.surv, ps[:, 0], atol=1e-12)
    np.testing.assert_allclose(fit.cif, ps[:, 1:], atol=1e-12)
    np.testing.assert_allclose(fit.surv + fit.cif.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("case", sorted(AJ_CASES))
def test_aalen_johansen_ij_std_err(case):
    fit, r = _aj(case), ref()[case]
    se = _nz(r["std_err"])
    np.testing.assert_allclose(fit.std_err, se[:, 1:], atol=1e-10)
    np.testing.assert_allclose(fit.se_surv, se[:, 0], atol=1e-10)
    np.testing.assert_allclose(fit.lower, _nz(r["lower"])[:, 1:], atol=1e-10, equal_nan=True)
    np.testing.assert_allclose(fit.upper, _nz(r["upper"])[:, 1:], atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("case", sorted(AJ_CASES))
def test_aalen_johansen_at_times(case):
    fit, r = _aj(case), ref()[case]["at"]
    ps, se = _nz(r["pstate"]), _nz(r["std_err"])
    for k, cause in enumerate((1, 2)):
        at = fit.at(r["times"], cause)
        np.testing.assert_allclose(at["cif"], ps[:, k + 1], atol=1e-12)
        np.testing.assert_allclose(at["se"], se[:, k + 1], atol=1e-10)
        np.testing.assert_allclose(np.sqrt(fit.variance_at(r["times"], cause)), se[:, k + 1], atol=1e-10)
    np.testing.assert_allclose(fit.surv_at(r["times"]), ps[:, 0], atol=1e-12)


@pytest.mark.parametrize("case", sorted(AJ_CASES))
def test_aalen_johansen_influence(case):
    """R's influence.pstate is per unit of case weight; ours includes the weight."""
    d = data()
    fit, r = _aj(case), ref()[case]
    w = d["w"].to_numpy() if "weights" in AJ_CASES[case] else np.ones(len(d))
    R = np.asarray(r["influence"], dtype=float)  # (n, 2 times, 3 states)
    tt = fit.time[r["influence_index"]]
    np.testing.assert_allclose(fit.influence(tt, 1), w[:, None] * R[:, :, 1], atol=1e-12)
    np.testing.assert_allclose(fit.influence(tt, 2), w[:, None] * R[:, :, 2], atol=1e-12)
    np.testing.assert_allclose(fit.influence_surv(tt), w[:, None] * R[:, :, 0], atol=1e-12)


def test_aalen_johansen_cluster():
    """Clustered IJ = sum over clusters of the summed weighted influences (R's per-id influences, aggregated)."""
    d = data()
    fit = aalen_johansen(d.etime, d.event, weights=d.w, cluster=d.cl, entry=d.entry)
    r = _nz(ref()["aj_entry"]["cluster_std_err"])
    np.testing.assert_allclose(fit.std_err, r[:, 1:], atol=1e-10)
    np.testing.assert_allclose(fit.se_surv, r[:, 0], atol=1e-10)


@pytest.mark.parametrize("sex", [0, 1])
def test_aalen_johansen_by_group(sex):
    d = data()
    m = d.sex == sex
    fit = aalen_johansen(d.etime[m], d.event[m], weights=d.w[m], cluster=d.id[m])
    r = ref()["aj_sex"][sex]
    times = ref()["aj_plain"]["at"]["times"]
    ps, se = _nz(r["pstate"]), _nz(r["std_err"])
    for k in (1, 2):
        at = fit.at(times, k)
        np.testing.assert_allclose(at["cif"], ps[:, k], atol=1e-12)
        np.testing.assert_allclose(at["se"], se[:, k], atol=1e-10)


def test_aalen_johansen_hand():
    """Four patients: CIF by hand. t=1 cause 1, t=2 censored, t=3 cause 2, t=4 cause 1."""
    fit = aalen_johansen([1, 2, 3, 4], [1, 0, 2, 1])
    # S: 3/4 after t=1, unchanged at 2, (3/4)(1/2) at 3, 0 at 4
    np.testing.assert_allclose(fit.surv, [0.75, 0.75, 0.375, 0.0])
    np.testing.assert_allclose(fit.cif[:, 0], [0.25, 0.25, 0.25, 0.625])
    np.testing.assert_allclose(fit.cif[:, 1], [0.0, 0.0, 0.375, 0.375])
    # without competing events the CIF is 1 - KM
    from causal_hcc.core.km import kaplan_meier

    t = np.array([1, 2, 2, 3, 5, 6, 7.0])
    e = np.array([1, 0, 1, 1, 0, 1, 0])
    aj, km = aalen_johansen(t, e), kaplan_meier(t, e, variance="ij")
    np.testing.assert_allclose(aj.cif[:, 0], 1 - km.surv, atol=1e-14)
    np.testing.assert_allclose(aj.std_err[:, 0], km.se_surv, atol=1e-14)


def test_aalen_johansen_bad_input():
    with pytest.raises(DataError, match="status must hold whole numbers"):
        aalen_johansen([1, 2], [1, 0.5])
    with pytest.raises(DataError, match=r"status must be 0 or one of the causes \[1\]"):
        aalen_johansen([1, 2], [1, 2], causes=[1])
    with pytest.raises(EstimationError, match="no events"):
        aalen_johansen([1, 2], [0, 0])


# ---------------------------------------------------------------- finegray
FG_CASES = {
    "fg_plain": {},
    "fg_weighted": {"weights": "w"},
    "fg_strata": {"strata": "strat"},
    "fg_entry": {"entry": "entry", "id": "id"},
    "fg_cause2": {"cause": 2},
}


@pytest.mark.parametrize("case", sorted(FG_CASES))
def test_finegray_data(case):
    d = data()
    kw = {k: (v if k == "cause" else d[v].to_numpy()) for k, v in FG_CASES[case].items()}
    fg = finegray(d.etime.to_numpy(), d.event.to_numpy(), **kw)
    ours = pd.DataFrame({"id": d.id.to_numpy()[fg.row], "start": fg.start, "stop": fg.stop,
                         "status": fg.status, "wt": fg.weight})
    r = ref()[case]
    theirs = pd.DataFrame({k: r[k] for k in ("id", "start", "stop", "status", "wt")})
    assert len(ours) == len(theirs)
    key = ["id", "start", "stop"]
    a = ours.sort_values(key).reset_index(drop=True)
    b = theirs.sort_values(key).reset_index(drop=True)
    np.testing.assert_array_equal(a[["id", "start", "stop", "status"]], b[["id", "start", "stop", "status"]])
    np.testing.assert_allclose(a.wt, b.wt, rtol=1e-12)


def _fg_fit(d, **kw):
    X = d[["age", "sex", "hgb"]].to_numpy()
    return fine_gray(d.etime.to_numpy(), d.event.to_numpy(), X, cluster=d.id.to_numpy(), **kw)


@pytest.mark.parametrize("method", ["direct", "expand"])
@pytest.mark.parametrize("case, kw", [("fg_cox", {}), ("fg_cox_weighted", {"weights": "w"}),
                                      ("fg_cox_strata", {"strata": "strat"})])
def test_fine_gray_equals_coxph_on_finegray(case, kw, method):
    d = data()
    fit = _fg_fit(d, method=method, **{k: d[v].to_numpy() for k, v in kw.items()})
    r = ref()[case]
    np.testing.assert_allclose(fit.coef, r["coef"], atol=1e-9)
    np.testing.assert_allclose(fit.var_robust, np.asarray(r["var"]), atol=1e-10)


def test_fine_gray_row_robust():
    """Without a cluster the sandwich is per expanded row's input row (R's coxph(weights = fgwt) is per output row)."""
    d = data()
    fg = finegray(d.etime, d.event)
    from causal_hcc.core.cox import coxph

    fit = coxph(fg.stop, fg.status, d[["age", "sex", "hgb"]].to_numpy()[fg.row], entry=fg.start, weights=fg.weight)
    r = ref()["fg_cox_rowrobust"]
    np.testing.assert_allclose(fit.coef, r["coef"], atol=1e-9)
    np.testing.assert_allclose(fit.var_robust, np.asarray(r["var"]), atol=1e-10)


def test_fine_gray_equals_crr_without_ties():
    d = data("core_mgus2_cr_untied")
    fit = _fg_fit(d, ties="breslow")
    r, crr = ref()["fg_cox_untied"], ref()["crr_untied"]
    np.testing.assert_allclose(fit.coef, r["coef"], atol=1e-9)
    np.testing.assert_allclose(fit.coef, crr["coef"], atol=1e-8)
    # crr's SE adds the estimation of the censoring distribution: close, not equal
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(crr["var"])), rtol=0.01)


def test_fine_gray_with_ties_differs_from_crr_only_by_the_tie_rule():
    d = data()
    fit = _fg_fit(d, ties="breslow")
    crr = ref()["crr_tied"]
    np.testing.assert_allclose(fit.coef, crr["coef"], atol=2e-3)   # crr: events at a censoring time in its risk set
    assert np.abs(fit.coef - np.asarray(crr["coef"])).max() > 1e-6


@pytest.mark.parametrize("cause", [1, 2])
def test_cause_specific_cox(cause):
    d = data()
    fit = cause_specific_cox(d.etime, d.event, d[["age", "sex", "hgb"]], cause=cause)
    r = ref()[f"csc{cause}"]
    np.testing.assert_allclose(fit.coef, r["coef"], atol=1e-9)
    np.testing.assert_allclose(fit.var, np.asarray(r["var"]), atol=1e-10)


# ---------------------------------------------------------------- riskRegression
@lru_cache(maxsize=None)
def melanoma():
    m = data("core_melanoma_cr")
    return m, m[["age", "male", "logthick"]].to_numpy(float)


@pytest.mark.parametrize("cause", [1, 2])
def test_csc_predictions(cause):
    m, X = melanoma()
    Z = np.column_stack([m.ulcer01, X])
    csc = CSCModel(m.time, m.status, Z)
    r = ref()["csc_predict"]
    for c, coef in zip((1, 2), ref()["ate"]["csc_coef"].values()):
        np.testing.assert_allclose(csc.fits[c][1], coef, atol=1e-9)
    F = csc.predict(Z[r["rows"]], r["times"], cause)[0]
    np.testing.assert_allclose(F, np.asarray(r[f"cause{cause}"]), atol=1e-10)


def _rows(table, est, a=None):
    df = pd.DataFrame(table)
    return df if a is None else df[df.treatment == str(a)]


@pytest.mark.parametrize("arm", [0, 1])
def test_gformula_cif_equals_ate(arm):
    m, X = melanoma()
    r = ref()["ate"]
    g = cif_ate(m.time, m.status, m.ulcer01, X, times=r["times"], cause=1)
    np.testing.assert_allclose(g.risk[arm], _rows(r["gformula"]["meanRisk"], "GFORMULA", arm).estimate, atol=1e-10)


@lru_cache(maxsize=None)
def _aiptw():
    m, X = melanoma()
    r = ref()["ate"]
    return cif_ate(m.time, m.status, m.ulcer01, X, times=r["times"], cause=1, estimator="aiptw",
                   propensity=np.asarray(r["ps"]))


@pytest.mark.parametrize("arm", [0, 1])
def test_aiptw_cif_equals_ate(arm):
    ai, r, n = _aiptw(), ref()["ate"]["aiptw_known"], len(melanoma()[0])
    rr = _rows(r["meanRisk"], "AIPTW", arm)
    np.testing.assert_allclose(ai.risk[arm], rr.estimate, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(((ai.terms[arm] - ai.risk[arm]) ** 2).sum(0)) / n, rr.se, atol=1e-10)
    # riskRegression's default SE also propagates the nuisance estimation: same estimate
    np.testing.assert_allclose(ai.risk[arm], _rows(ref()["ate"]["aiptw"]["meanRisk"], "AIPTW", arm).estimate,
                               atol=1e-10)


def test_aiptw_cif_difference_and_ratio_equal_ate():
    ai, r, n = _aiptw(), ref()["ate"]["aiptw_known"], len(melanoma()[0])
    d = pd.DataFrame(r["diffRisk"])
    np.testing.assert_allclose(ai.risk[1] - ai.risk[0], d.estimate, atol=1e-10)
    np.testing.assert_allclose(np.sqrt((ai.influence_difference() ** 2).sum(0)) / n, d.se, atol=1e-10)
    q = pd.DataFrame(r["ratioRisk"])
    ratio = ai.risk[1] / ai.risk[0]
    np.testing.assert_allclose(ratio, q.estimate, rtol=1e-10)
    # riskRegression's ratio SE is on the ratio scale: ratio x SE(log ratio)
    np.testing.assert_allclose(ratio * np.sqrt((ai.influence_log_ratio() ** 2).sum(0)) / n, q.se, rtol=1e-9)


def test_aalen_johansen_last_time_all_events_weighted_ties():
    """Weighted, tied causes at t = 4, everyone left has an event at t = 6. Numbers printed by R 4 / survival 3.5-3:
    survfit(Surv(c(1,2,3,4,4,5,6), factor(c(1,0,2,1,2,1,2))) ~ 1, weights = c(1,2,1,1,0.5,1,1), id = 1:7)."""
    f = aalen_johansen([1, 2, 3, 4, 4, 5, 6], [1, 0, 2, 1, 2, 1, 2], weights=[1, 2, 1, 1, 0.5, 1, 1], cluster=range(7))
    np.testing.assert_allclose(f.surv, [0.8666667, 0.8666667, 0.6740741, 0.3851852, 0.1925926, 0.0], atol=5e-8)
    np.testing.assert_allclose(f.cif[:, 0], [0.1333333, 0.1333333, 0.1333333, 0.3259259, 0.5185185, 0.5185185],
                               atol=5e-8)
    np.testing.assert_allclose(f.std_err[:, 0], [0.1263348, 0.1263348, 0.1263348, 0.1942950, 0.2094873, 0.2094873],
                               atol=5e-8)
    np.testing.assert_allclose(f.std_err[:, 1], [0.0, 0.0, 0.1710674, 0.1853741, 0.1853741, 0.2094873], atol=5e-8)
    np.testing.assert_allclose(f.se_surv, [0.1263348, 0.1263348, 0.1942950, 0.2070565, 0.1710674, 0.0], atol=5e-8)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("kw", [{}, {"weights": "w"}, {"strata": "strat"}, {"entry": "entry", "id": "id"},
                                {"cause": 2}], ids=["plain", "weights", "strata", "entry", "cause2"])
def test_fine_gray_direct_equals_expanded_rows(ties, kw):
    """The direct fit (one extension row per competing event, weight G(t-)) = coxph on finegray's rows,
    here with heavy ties (times in 2-year bins) so Efron's and Breslow's handling both matter."""
    d = data()
    t = np.floor(d.etime.to_numpy() / 24) + 1
    args = {k: (v if k == "cause" else d[v].to_numpy()) for k, v in kw.items()}
    if "entry" in args:
        args["entry"] = np.minimum(np.floor(args["entry"] / 24), t - 1)
    X = d[["age", "sex", "hgb"]].to_numpy()
    a = fine_gray(t, d.event.to_numpy(), X, cluster=d.id.to_numpy(), ties=ties, **args)
    b = fine_gray(t, d.event.to_numpy(), X, cluster=d.id.to_numpy(), ties=ties, method="expand", **args)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-12)
    np.testing.assert_allclose(a.var, b.var, atol=1e-12)
    np.testing.assert_allclose(a.var_robust, b.var_robust, atol=1e-12)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-9)
    assert a.score_test == pytest.approx(b.score_test, rel=1e-10)
