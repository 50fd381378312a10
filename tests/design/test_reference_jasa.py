"""Time-zero designs against R survival on the Stanford heart-transplant data.

Fixtures come from tests/reference/design_jasa.R (survival 3.5.3): the
patient table built as in ``?jasa1``, R's ``tmerge(..., tdc(txtime))`` rows,
``coxph(Surv(tstart, tstop, death) ~ trt (+ age + year + surgery),
cluster = id)``, the score test (Mantel-Byar), Simon-Makuch ``survfit`` and a
landmark Cox at day 30.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.core.cox import coxph
from causal_hcc.core.km import kaplan_meier
from causal_hcc.design.landmark import Landmark
from causal_hcc.design.time_varying import TimeVarying

FIX = Path(__file__).resolve().parents[1] / "reference" / "fixtures"
REF = json.loads((FIX / "design_jasa.json").read_text())
TOL = 1e-6


@pytest.fixture(scope="module")
def jasa() -> Cohort:
    df = pd.read_csv(FIX / "design_jasa_patients.csv")
    return Cohort(df, id="id", time="futime", event="fustat", treatment="transplant", treatment_time="txtime",
                  confounders=["age", "year", "surgery"])


@pytest.fixture(scope="module")
def tv(jasa):
    return TimeVarying().fit(jasa, "os").data_


def test_split_rows_match_tmerge(jasa, tv):
    r = pd.read_csv(FIX / "design_jasa_split.csv")
    ids = np.asarray(jasa.ids)[tv.patient]
    ours = pd.DataFrame({"id": ids, "tstart": tv.start, "tstop": tv.stop, "death": tv.event, "trt": tv.treatment})
    ours = ours.sort_values(["id", "tstart"]).reset_index(drop=True)
    assert len(ours) == REF["n_rows"] == len(r)
    np.testing.assert_array_equal(ours["id"].to_numpy(), r["id"].to_numpy())
    np.testing.assert_allclose(ours[["tstart", "tstop"]].to_numpy(), r[["tstart", "tstop"]].to_numpy(), atol=1e-12)
    np.testing.assert_array_equal(ours["death"].to_numpy(), r["death"].to_numpy())
    np.testing.assert_array_equal(ours["trt"].to_numpy(), r["trt"].to_numpy())


def _cox(d, cols=None):
    X = d.treatment[:, None].astype(float)
    if cols is not None:
        X = np.column_stack([X, d.X[:, cols]])
    return coxph(d.stop, d.event, X, entry=d.start, cluster=d.patient, robust=True)


def test_counting_process_cox_matches_r(tv):
    f = _cox(tv)
    assert f.coef[0] == pytest.approx(REF["tv_trt"]["coef"], abs=TOL)
    assert f.se[0] == pytest.approx(REF["tv_trt"]["robust_se"], abs=TOL)
    assert f.se_model[0] == pytest.approx(REF["tv_trt"]["naive_se"], abs=TOL)


def test_counting_process_cox_adjusted_matches_r(tv):
    assert tv.confounders == ["age", "year", "surgery"]
    f = _cox(tv, [0, 1, 2])
    np.testing.assert_allclose(f.coef, REF["tv_adj"]["coef"], atol=TOL)
    np.testing.assert_allclose(f.se, REF["tv_adj"]["robust_se"], atol=TOL)


def test_mantel_byar_is_r_score_test(tv):
    mb = tv.diagnostics["mantel_byar"]
    assert mb["chi2"] == pytest.approx(REF["mantel_byar"]["chi2"], abs=TOL)
    assert mb["p_value"] == pytest.approx(REF["mantel_byar"]["p"], abs=TOL)
    assert mb["df"] == 1


@pytest.mark.parametrize("arm", [0, 1])
def test_simon_makuch_curves_match_r(tv, arm):
    sm = REF["simon_makuch"]
    sel = [i for i, s in enumerate(sm["strata"]) if s == f"trt={arm}"]
    m = tv.treatment == arm
    fit = kaplan_meier(tv.stop[m], tv.event[m], entry=tv.start[m])
    got = fit.at([sm["time"][i] for i in sel])["surv"].to_numpy()
    np.testing.assert_allclose(got, [sm["surv"][i] for i in sel], atol=TOL)


def test_landmark_rows_and_cox_match_r(jasa):
    lm = REF["landmark"]
    d = Landmark(landmark=lm["L"]).fit(jasa, "os").data_
    assert (d.n_rows, int(d.treatment.sum()), int(d.event.sum())) == (lm["n"], lm["n_treated"], lm["events"])
    assert dict(d.flow)["of whom treated after landmark (analysed as untreated)"] == lm["treated_after"]
    assert d.time_origin == lm["L"]
    f = coxph(d.stop, d.event, d.treatment[:, None].astype(float))
    assert f.coef[0] == pytest.approx(lm["coef"], abs=TOL)
    assert f.se[0] == pytest.approx(lm["se"], abs=TOL)
    fa = coxph(d.stop, d.event, np.column_stack([d.treatment, d.X]))
    np.testing.assert_allclose(fa.coef, lm["adj_coef"], atol=TOL)
    np.testing.assert_allclose(fa.se, lm["adj_se"], atol=TOL)
