"""Cluster-robust inference and R's convergence rules against R survival 3.5-3.

Fixtures: tests/reference/inference_cluster.R (retinopathy with cluster = id,
the Stanford heart-transplant data with an induced centre, sequential-trial
rows exported by tests/reference/inference_cluster_trials.py, a constructed
near-null fit). Tolerance 1e-6 absolute, as the issue asks.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.core.cox import coxph
from causal_hcc.core.km import kaplan_meier
from causal_hcc.inference import bootstrap_strategy, replicate_cohort, replicate_seeds
from causal_hcc.io import ROUND_TRIP
from causal_hcc.strategies import resolve

FIX = Path(__file__).resolve().parent / "reference" / "fixtures"
REF = json.loads((FIX / "inference_cluster.json").read_text())
TOL = 1e-6

RETINO_TARGETS = Targets(survival_at=(12.0, 36.0), rmst_tau=48.0)
JASA_TARGETS = Targets(survival_at=(100.0, 365.0), rmst_tau=730.0)


def strategy(entry, confounders=()):
    return resolve(entry)[0].build(default_confounders=list(confounders))


@pytest.fixture(scope="module")
def retino_df() -> pd.DataFrame:
    return pd.read_csv(FIX / "inference_retinopathy.csv", **ROUND_TRIP)


@pytest.fixture(scope="module")
def retino(retino_df) -> Cohort:
    return Cohort(retino_df, id="eye_id", time="futime", event="status", treatment="trt",
                  confounders=["age", "risk"], cluster="id")


def jasa(cluster: str | None) -> Cohort:
    df = pd.read_csv(FIX / "design_jasa_patients.csv")
    df["centre"] = df["id"] % 12 + 1
    return Cohort(df, id="id", time="futime", event="fustat", treatment="transplant", treatment_time="txtime",
                  confounders=["age", "year", "surgery"], cluster=cluster)


def by_measure(out):
    return {(e.measure, e.time): e for e in out.estimates}


def check_km_block(out, ref):
    est = by_measure(out)
    for t, d, se in zip(ref["times"], ref["surv_diff"], ref["surv_diff_se"]):
        e = est[("survival_difference", float(t))]
        assert e.estimate == pytest.approx(d, abs=TOL)
        assert e.se == pytest.approx(se, abs=TOL)
        assert e.variance_method == "cluster_robust"
    e = est[("rmst_difference", float(ref["tau"]))]
    assert e.estimate == pytest.approx(ref["rmst_diff"], abs=TOL)
    assert e.se == pytest.approx(ref["rmst_diff_se"], abs=TOL)
    # each arm's pointwise SE: R survfit(..., cluster =) std.err (S scale for robust fits)
    table = out.curves.table
    for arm, key in ((0, "curve0"), (1, "curve1")):
        g = table[table["group"] == ("untreated", "treated")[arm]]
        np.testing.assert_allclose(g["time"], ref[key]["time"], atol=1e-12)
        np.testing.assert_allclose(g["surv"], ref[key]["surv"], atol=TOL)
        np.testing.assert_allclose(g["se"], ref[key]["se"], atol=TOL)


# ------------------------------------------------------------- retinopathy
def test_naive_cluster_robust_equals_r(retino):
    ref = REF["retinopathy"]["naive"]
    out = strategy("naive").fit(retino, "os", RETINO_TARGETS)
    hr = by_measure(out)[("hr", None)]
    assert math.log(hr.estimate) == pytest.approx(ref["coef"], abs=TOL)
    assert hr.se == pytest.approx(ref["robust_se"], abs=TOL)
    assert hr.variance_method == "cluster_robust"
    check_km_block(out, ref)
    assert out.diagnostics["variance"] == {"method": "cluster_robust", "cluster": "id", "n_clusters": 197}
    assert any(n.startswith("variance: cluster_robust(id): ") for n in out.notes)
    assert not any("clusters of 'id'" in w for w in out.warnings)  # 197 clusters: no few-clusters warning


def test_without_cluster_role_nothing_changes(retino_df):
    ref = REF["retinopathy"]["naive"]
    c = Cohort(retino_df, id="eye_id", time="futime", event="status", treatment="trt", confounders=["age", "risk"])
    out = strategy("naive").fit(c, "os", RETINO_TARGETS)
    hr = by_measure(out)[("hr", None)]
    assert hr.se == pytest.approx(ref["naive_se"], abs=TOL)   # model-based, as before
    assert hr.variance_method == "model"
    assert by_measure(out)[("survival_difference", 12.0)].variance_method == "greenwood"
    assert "variance" not in out.diagnostics
    assert not any("cluster_robust" in n for n in out.notes)


def test_multivariable_cluster_robust_equals_r(retino):
    ref = REF["retinopathy"]["multivariable"]
    out = strategy("multivariable", ["age", "risk"]).fit(retino, "os", RETINO_TARGETS)
    cox = out.diagnostics["cox"]
    np.testing.assert_allclose(cox["coef"], ref["coef"], atol=TOL)
    np.testing.assert_allclose(cox["se"], ref["robust_se"], atol=TOL)
    assert by_measure(out)[("hr", None)].variance_method == "cluster_robust"


def test_iptw_cluster_robust_equals_r(retino):
    ref = REF["retinopathy"]["iptw"]
    st = strategy({"name": "iptw", "estimand": "ATE"}, ["age", "risk"])
    out = st.fit(retino, "os", RETINO_TARGETS)
    np.testing.assert_allclose(st.adjustment.propensity_.unit_score, ref["ps"], atol=1e-9)
    hr = by_measure(out)[("hr", None)]
    assert math.log(hr.estimate) == pytest.approx(ref["coef"], abs=TOL)
    assert hr.se == pytest.approx(ref["robust_se"], abs=TOL)
    check_km_block(out, ref)


# ------------------------------------------------ Stanford, induced centre
def test_time_varying_clusters_on_centre_not_patient():
    ref = REF["jasa"]["time_varying"]
    out = strategy("time_varying").fit(jasa("centre"), "os", JASA_TARGETS)
    hr = by_measure(out)[("hr", None)]
    assert math.log(hr.estimate) == pytest.approx(ref["coef"], abs=TOL)
    assert hr.se == pytest.approx(ref["robust_se"], abs=TOL)
    assert ("design 'time_varying': only 12 clusters of 'centre': cluster-robust SEs are biased downward "
            "with fewer than 30 clusters") in out.warnings


def test_landmark_cluster_robust_equals_r():
    ref = REF["jasa"]["landmark"]
    out = strategy({"name": "landmark", "landmark": 30}).fit(jasa("centre"), "os", JASA_TARGETS)
    hr = by_measure(out)[("hr", None)]
    assert math.log(hr.estimate) == pytest.approx(ref["coef"], abs=TOL)
    assert hr.se == pytest.approx(ref["robust_se"], abs=TOL)
    check_km_block(out, ref)


@pytest.mark.parametrize("cluster,key", [(None, "patient"), ("centre", "centre")])
def test_sequential_trials_near_null_returns_like_r(cluster, key):
    """The Stanford sequential-trial fit converges at beta ~ 2e-4, where R's
    coxph.fit check warns 'coefficient may be infinite'; it used to raise.
    (Rows with the treated counted from the trial start, as when the fixture
    was made: the check is of the Cox fit on given rows, not of the design.)"""
    ref = REF["trials"][key]
    out = strategy({"name": "sequential_trials", "treated_from": "trial_start"}).fit(jasa(cluster), "os",
                                                                                   JASA_TARGETS)
    cox = out.diagnostics["cox"]
    assert cox["coef"][0] == pytest.approx(ref["coef"], abs=TOL)
    assert cox["se"][0] == pytest.approx(ref["robust_se"], abs=TOL)
    assert by_measure(out)[("hr", None)].variance_method == "cluster_robust"
    flagged = [w for w in out.warnings if "'coefficient may be infinite' check flags 'treatment'" in w]
    assert len(flagged) == 1 and flagged[0].endswith("but the likelihood has a finite maximum there")
    if key == "patient":
        assert "coefficient may be infinite" in ref["warning"]   # R warns too


def test_trial_rows_used_by_r_are_ours():
    from tests.reference.inference_cluster_trials import trial_rows

    r = pd.read_csv(FIX / "inference_jasa_trials.csv")
    pd.testing.assert_frame_equal(trial_rows().reset_index(drop=True), r, check_dtype=False)


# --------------------------------------------------------- convergence rule
def test_constructed_near_null_fit_warns_and_returns_like_r():
    ref = REF["near_null"]
    d = pd.read_csv(FIX / "inference_near_null.csv", **ROUND_TRIP)
    fit = coxph(d.time, d.event, d[["x"]], weights=d.w)
    assert fit.coef[0] == pytest.approx(ref["coef"], abs=1e-12)
    assert fit.se_model[0] == pytest.approx(ref["naive_se"], abs=TOL)
    assert fit.se[0] == pytest.approx(ref["robust_se"], abs=TOL)
    assert fit.n_iter == ref["iter"] == 1
    assert "coefficient may be infinite" in ref["warning"]
    assert fit.warnings == ("coxph: R's 'coefficient may be infinite' check flags 'x' (0.0001), but the "
                            "likelihood has a finite maximum there",)
    assert fit.infinite == ()


def test_counting_process_rule_does_not_flag_near_null():
    # the same data as (0, time] counting-process rows: agreg.fit's rule |U V| > sqrt(eps)(1 + |b|)
    d = pd.read_csv(FIX / "inference_near_null.csv", **ROUND_TRIP)
    fit = coxph(d.time, d.event, d[["x"]], weights=d.w, entry=np.full(len(d), -1.0))
    assert fit.coef[0] == pytest.approx(REF["near_null"]["coef"], abs=1e-9)
    assert fit.warnings == () and fit.infinite == ()


# ---------------------------------------------------------------- PSM, AIPTW
def test_psm_with_cluster_role_clusters_on_it(retino):
    st = strategy({"name": "psm", "caliper": None}, ["age", "risk"])
    out = st.fit(retino, "os", RETINO_TARGETS)
    adj = st.adjustment
    w = adj.weights_
    keep = w > 0
    df = pd.read_csv(FIX / "inference_retinopathy.csv")
    fit = coxph(df.futime[keep], df.status[keep], df.trt[keep].to_numpy(float)[:, None], weights=w[keep],
                cluster=df.id[keep], robust=True)
    hr = by_measure(out)[("hr", None)]
    assert hr.se == pytest.approx(fit.se[0], rel=1e-12)
    assert "matched data: SEs are clustered on 'id' (the outermost unit), not on matched sets" in out.notes


def test_psm_on_trial_rows_clusters_on_patients():
    c = jasa(None)
    st = strategy({"design": "sequential_trials", "adjustment": "psm", "caliper": None}, ["age", "year", "surgery"])
    out = st.fit(c, "os", JASA_TARGETS)
    data = st.design.data_
    first = np.unique(data.unit, return_index=True)[1]
    order = np.argsort(first)
    rows = np.isin(data.unit, np.unique(data.unit)[order][st.adjustment.weights_ > 0])
    w_unit = dict(zip(np.unique(data.unit)[order], st.adjustment.weights_))
    w = np.array([w_unit[u] for u in data.unit[rows]])
    fit = coxph(data.stop[rows], data.event[rows], data.treatment[rows].astype(float)[:, None], weights=w,
                strata=data.stratum[rows], cluster=data.patient[rows], robust=True)
    assert by_measure(out)[("hr", None)].se == pytest.approx(fit.se[0], rel=1e-12)
    assert any(n.startswith("matched trial rows: SEs are clustered on patients") for n in out.notes)


def test_aiptw_influence_summed_within_clusters(retino, retino_df):
    st = strategy("aiptw", ["age", "risk"])
    out = st.fit(retino, "os", RETINO_TARGETS)
    infl = st.adjustment.influence_
    n = infl.shape[0]
    grid = st.adjustment.curves_[0]
    k = int(np.searchsorted(grid, 12.0, side="right") - 1)
    g = pd.DataFrame(infl[:, [k]]).groupby(retino_df["id"].to_numpy()).sum().to_numpy()[:, 0]
    e = by_measure(out)[("survival_difference", 12.0)]
    assert e.se == pytest.approx(math.sqrt((g ** 2).sum()) / n, rel=1e-12)
    assert e.variance_method == "cluster_robust"
    # one patient per cluster: the unclustered influence-function SE
    c1 = Cohort(retino_df.assign(eye=retino_df["eye_id"]), id="eye_id", time="futime", event="status",
                treatment="trt", confounders=["age", "risk"], cluster="eye")
    e1 = by_measure(strategy("aiptw", ["age", "risk"]).fit(c1, "os", RETINO_TARGETS))[("survival_difference", 12.0)]
    assert e1.se == pytest.approx(math.sqrt((infl[:, k] ** 2).sum()) / n, rel=1e-12)
    assert any(n_.startswith("AIPTW SEs treat the propensity, outcome and censoring models as known") for n_ in out.notes)


# ------------------------------------------------------------------ bootstrap
def test_cluster_bootstrap_draws_whole_clusters(retino):
    ids = np.asarray(retino.ids)
    for ss in replicate_seeds(3, 4):
        sub = replicate_cohort(retino, ss)
        labels = np.asarray(sub.cluster)
        sizes = np.bincount(labels)
        assert labels.max() + 1 == 197                   # G clusters drawn, each its own label
        assert np.all(sizes == 2)                        # both eyes of every drawn patient
        src = pd.Series(ids[sub.source_rows] // 10).groupby(labels).nunique()
        assert (src == 1).all()                          # a drawn cluster is one original patient


def test_singleton_clusters_bootstrap_equals_patient_bootstrap(retino_df):
    kw = dict(id="eye_id", time="futime", event="status", treatment="trt", confounders=["age", "risk"])
    plain = Cohort(retino_df, **kw)
    single = Cohort(retino_df.assign(eye=retino_df["eye_id"]), cluster="eye", **kw)
    st = strategy("naive")
    a = bootstrap_strategy(st, plain, "os", RETINO_TARGETS, st.fit(plain, "os", RETINO_TARGETS),
                           replicates=20, seed=4)
    b = bootstrap_strategy(st, single, "os", RETINO_TARGETS, st.fit(single, "os", RETINO_TARGETS),
                           replicates=20, seed=4)
    assert [e.se for e in a.estimates] == pytest.approx([e.se for e in b.estimates], rel=1e-12, nan_ok=True)
    assert a.diagnostics["bootstrap"]["resampled"] == "patient"
    assert b.diagnostics["bootstrap"]["resampled"] == "cluster(eye)"
    assert not any(n.startswith("variance: cluster_robust(") for n in b.notes)


def test_cluster_bootstrap_se_is_larger_with_correlated_eyes(retino):
    """Eyes of a patient share frailty: resampling patients (clusters) gives a
    larger SE of the survival difference's arms than the cluster-robust
    sandwich is compared with; here only check the bootstrap runs on clusters
    and is near the sandwich (B = 60: MC relative SD ~9%)."""
    st = strategy("naive")
    point = st.fit(retino, "os", RETINO_TARGETS)
    b = bootstrap_strategy(st, retino, "os", RETINO_TARGETS, point, replicates=60, seed=1)
    se_boot = by_measure(b)[("hr", None)].se
    se_sand = by_measure(point)[("hr", None)].se
    assert 0.7 < se_boot / se_sand < 1.3


# -------------------------------------------------------------------- timefix
def test_timefix_merges_floating_point_ties_like_r():
    t = np.array([0.1 + 0.2, 0.3, 1.0, 2.0, 2.5])
    e = np.array([1, 1, 1, 0, 1])
    x = np.array([[0.0], [1.0], [1.0], [0.0], [0.0]])
    tied = coxph(np.array([0.3, 0.3, 1.0, 2.0, 2.5]), e, x)
    fit = coxph(t, e, x)
    assert fit.coef[0] == tied.coef[0] and fit.se[0] == tied.se[0]
    raw = coxph(t, e, x, timefix=False)
    assert raw.coef[0] != tied.coef[0]
    km = kaplan_meier(t, e)
    assert km.time.tolist() == [0.3, 1.0, 2.0, 2.5]   # R: the smallest value of a tied run
    assert km.n_event[0] == 2


def test_timefix_leaves_times_alone_when_merging_would_empty_an_interval():
    # a split a hair below an event time (38.99999999999999, 39]: R stops ("aeqSurv exception");
    # we leave the times unmerged, which keeps the exact risk sets
    from causal_hcc.core._checks import timefix

    t, ent = np.array([38.99999999999999, 39.0, 40.0, 20.0]), np.array([0.0, 38.99999999999999, 0.0, 0.0])
    t2, e2 = timefix(t, ent, where="test")
    assert t2 is t and e2 is ent
    km = kaplan_meier(t, [0, 1, 1, 1], entry=ent)
    assert km.time.tolist() == [20.0, 38.99999999999999, 39.0, 40.0]
    # without entry the same two times are merged (no interval to empty)
    assert timefix(t, None, where="test")[0].tolist() == [38.99999999999999] * 2 + [40.0, 20.0]


# ------------------------------------------------------------------ CSV floats
@pytest.mark.parametrize("ext,sep", [(".csv", ","), (".tsv", "\t")])
def test_csv_floats_are_read_correctly_rounded(tmp_path, ext, sep):
    """pandas' default C parser misreads the last bit of ~13% of 17-digit
    floats (54.362499146542284 among them); R's read.csv does not."""
    from causal_hcc.io import read_table

    x = np.random.default_rng(0).random(2000) * 100
    assert 54.362499146542284 in x
    p = tmp_path / f"d{ext}"
    p.write_text("x\n" + "\n".join(repr(float(v)) for v in x) + "\n")
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 3's default parser is correctly rounded
        assert (pd.read_csv(p, sep=sep)["x"].to_numpy() != x).any()  # pandas 2's default parser is off
    np.testing.assert_array_equal(read_table(p)["x"].to_numpy(), x)  # ours is exact


# ------------------------------------------------------------------ end to end
def test_spec_roles_cluster_end_to_end(tmp_path):
    """A spec with roles.cluster, read from CSV: every analytic SE is R's
    cluster-robust one, the paper row stays model-based and says why."""
    import shutil

    from causal_hcc.config import parse_spec
    from causal_hcc.pipeline import run_analysis

    shutil.copy(FIX / "inference_retinopathy.csv", tmp_path / "retino.csv")
    spec = parse_spec({
        "study": "retino", "data": {"path": "retino.csv"},
        "roles": {"id": "eye_id", "time": "futime", "event": "status", "treatment": "trt", "cluster": "id"},
        "confounders": ["age", "risk"], "strategies": ["naive", "paper"],
        "estimands": {"survival_at": [12, 36], "rmst_tau": 48}, "bootstrap": {"replicates": 0},
    }, base_dir=str(tmp_path))
    res = run_analysis(spec)
    est = res.estimates_frame()
    naive = est[est.strategy == "naive"]
    ref = REF["retinopathy"]["naive"]
    assert naive.loc[naive.measure == "hr", "se"].item() == pytest.approx(ref["robust_se"], abs=TOL)
    sd = naive[naive.measure == "survival_difference"].sort_values("time")
    np.testing.assert_allclose(sd["se"], ref["surv_diff_se"], atol=TOL)
    assert set(naive.loc[naive.measure != "median_difference", "variance_method"]) == {"cluster_robust"}
    paper = est[est.strategy.str.startswith("paper") & (est.measure == "hr")]
    assert set(paper.variance_method) == {"model"}
    rec = {r.strategy: r for r in res.records}
    assert any(n.startswith("variance: cluster_robust(id)") for n in rec["naive"].notes)
    assert any("ignore the clustering by 'id'" in n for n in rec["paper"].notes)


def test_logrank_timefix_merges_like_survdiff():
    from causal_hcc.core.logrank import logrank

    g = [0, 1, 0, 1, 0, 1]
    e = [1, 1, 1, 0, 1, 1]
    a = logrank([0.1 + 0.2, 0.3, 1.0, 2.0, 2.5, 3.0], e, g)
    b = logrank([0.3, 0.3, 1.0, 2.0, 2.5, 3.0], e, g)
    assert a.chi2 == b.chi2
    assert logrank([0.1 + 0.2, 0.3, 1.0, 2.0, 2.5, 3.0], e, g, timefix=False).chi2 != b.chi2


def test_bca_jackknife_leaves_out_one_cluster():
    from causal_hcc.inference import _Job, _Layout, jackknife_values

    c = jasa("centre")
    st = strategy("naive")
    point = st.fit(c, "os", JASA_TARGETS)
    jack = jackknife_values(c, [_Job(("naive", "os"), st, "os", _Layout.of(point))], JASA_TARGETS)[0]
    assert jack.shape[0] == 12
    centres = np.asarray(c.cluster)
    first = centres[0]                               # clusters in order of first appearance
    df = pd.read_csv(FIX / "design_jasa_patients.csv")
    df = df[(df["id"] % 12 + 1) != first]
    sub = Cohort(df, id="id", time="futime", event="fustat", treatment="transplant", treatment_time="txtime",
                 confounders=["age", "year", "surgery"])
    hr = by_measure(st.fit(sub, "os", JASA_TARGETS))[("hr", None)]
    assert jack[0, 0] == pytest.approx(math.log(hr.estimate), rel=1e-12)
    b = bootstrap_strategy(st, c, "os", JASA_TARGETS, point, replicates=30, seed=2, ci="bca")
    e = by_measure(b)[("hr", None)]
    assert e.variance_method == "bootstrap" and e.ci_lower < e.estimate < e.ci_upper


def test_monotone_likelihood_strategy_returns_with_warning_like_r():
    """Every treated patient dies before every untreated one: R's coxph returns
    coef 22.75 with a warning; the fit is the same (diagnostics), the row has no
    estimate, SE or p-value and the profile-likelihood CI open at infinity
    (docs/inference.md), and the warning is in the output."""
    rng = np.random.default_rng(1)
    t = rng.exponential(size=40)
    a = (t < np.median(t)).astype(int)
    e = np.where(a == 1, 1, 0)
    c = Cohort(pd.DataFrame({"id": range(40), "t": t, "e": e, "a": a}), id="id", time="t", event="e", treatment="a")
    out = strategy("naive").fit(c, "os", Targets(survival_at=(0.5,)))
    hr = by_measure(out)[("hr", None)]
    assert out.diagnostics["cox"]["coef"][0] == pytest.approx(22.7538064610309, abs=1e-6)
    assert math.isnan(hr.estimate) and math.isnan(hr.p_value) and hr.variance_method == "profile_likelihood"
    assert hr.ci_upper == math.inf and hr.ci_lower > 1
    assert any("coefficient of 'treatment' (22.8); it may be infinite" in w for w in out.warnings)
