"""Multiple imputation (causal_hcc.missing) and its pipeline integration.

References: R ``mice`` 3.15 (``pool.scalar``, ``mice(method = "pmm")`` +
``pool``) through ``tests/reference/missing_mice.R`` and its fixtures; Rubin's
rules by hand.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as pdt
import pytest

from causal_hcc.config import parse_spec
from causal_hcc.core import coxph
from causal_hcc.errors import DataError, SpecError
from causal_hcc.missing import (
    Pooled,
    impute,
    missingness_table,
    multinomial_logit,
    nelson_aalen,
    polyreg_probs,
    pool_curves,
    pool_estimates,
    pool_scalar,
)
from causal_hcc.results import EffectEstimate, SurvivalCurves

FIX = Path(__file__).parent / "reference" / "fixtures"
R = json.loads((FIX / "missing_mice.json").read_text())
CONF = ["age", "meno", "size", "grade", "nodes", "pgr", "er"]


@pytest.fixture(scope="module")
def gbsg() -> pd.DataFrame:
    return pd.read_csv(FIX / "missing_gbsg.csv")


# --------------------------------------------------------------------------- Rubin's rules
def test_rubin_by_hand():
    # q = 1, 2, 3; u = 1: qbar 2, ubar 1, b 1, t = 1 + 4/3, riv 4/3, lambda 4/7,
    # df_old = (m - 1) / lambda^2 = 2 * 49 / 16, fmi = (riv + 2/(df + 3)) / (riv + 1)
    p = pool_scalar([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    assert (p.m, p.qbar, p.ubar, p.b) == (3, 2.0, 1.0, 1.0)
    assert p.t == pytest.approx(7 / 3, abs=1e-15)
    assert p.riv == pytest.approx(4 / 3, abs=1e-15)
    assert p.lambda_ == pytest.approx(4 / 7, abs=1e-15)
    assert p.df == pytest.approx(98 / 16, abs=1e-13)
    assert p.fmi == pytest.approx((4 / 3 + 2 / (98 / 16 + 3)) / (7 / 3), abs=1e-15)
    assert p.se == pytest.approx(math.sqrt(7 / 3), abs=1e-15)
    # finite complete-data df: df_obs = (v+1)/(v+3) v (1 - lambda); df = 1 / (1/df_old + 1/df_obs)
    q = pool_scalar([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], dfcom=10)
    dfobs = 11 / 13 * 10 * (3 / 7)
    assert q.df == pytest.approx(1 / (16 / 98 + 1 / dfobs), abs=1e-13)


@pytest.mark.parametrize("case", range(len(R["pool_scalar"])))
def test_pool_scalar_matches_r(case):
    ref = R["pool_scalar"][case]
    dfcom = math.inf if ref["n"] == "Inf" else ref["n"] - ref["k"]
    p = pool_scalar(ref["Q"], ref["U"], dfcom=dfcom)
    r = ref["res"]
    assert p.m == r["m"]
    for ours, theirs in ((p.qbar, "qbar"), (p.ubar, "ubar"), (p.b, "b"), (p.t, "t"), (p.df, "df"),
                         (p.riv, "r"), (p.fmi, "fmi")):
        assert ours == pytest.approx(r[theirs], rel=1e-10, abs=1e-12), theirs


def test_pool_scalar_needs_two():
    with pytest.raises(ValueError, match="m >= 2"):
        pool_scalar([1.0], [1.0])


def _hr(est, se, **kw):
    return EffectEstimate("hr", est, se, variance_method="model", n=100, n_treated=40, events=30, **kw)


def test_pool_estimates_hr_on_log_scale_with_t_interval():
    from scipy.stats import t as t_dist

    ests = [[_hr(0.5, 0.2)], [_hr(0.6, 0.25)], [_hr(0.55, 0.22)]]
    out, info, notes = pool_estimates(ests, alpha=0.05)
    q = np.log([0.5, 0.6, 0.55])
    p = pool_scalar(q, np.array([0.2, 0.25, 0.22]) ** 2, dfcom=29)  # events - 1
    e = out[0]
    assert e.variance_method == "rubin" and not notes
    assert e.estimate == pytest.approx(math.exp(q.mean()), rel=1e-14)
    assert e.se == pytest.approx(p.se, rel=1e-14)
    tq = t_dist.ppf(0.975, p.df)
    assert e.ci_lower == pytest.approx(math.exp(p.qbar - tq * p.se), rel=1e-12)
    assert e.ci_upper == pytest.approx(math.exp(p.qbar + tq * p.se), rel=1e-12)
    assert e.p_value == pytest.approx(2 * t_dist.sf(abs(p.qbar / p.se), p.df), rel=1e-10)
    assert info[0]["fmi"] == pytest.approx(p.fmi) and info[0]["scale"] == "log"
    assert (e.n, e.n_treated, e.events) == (100, 40, 30)


def test_pool_estimates_difference_scale_and_missing_se():
    def d(v, se):
        return EffectEstimate("survival_difference", v, se, time=12.0, variance_method="greenwood", n=50)

    def med(v):
        return EffectEstimate("median_difference", v, n=50)

    out, info, notes = pool_estimates([[d(0.1, 0.05), med(3.0)], [d(0.2, 0.06), med(5.0)]])
    p = pool_scalar([0.1, 0.2], [0.05 ** 2, 0.06 ** 2], dfcom=48)
    assert out[0].estimate == pytest.approx(0.15) and out[0].se == pytest.approx(p.se)
    assert out[0].variance_method == "rubin" and info[0]["scale"] == "identity"
    assert out[1].estimate == 4.0 and math.isnan(out[1].se) and out[1].variance_method == "none"


def test_pool_estimates_unmatched_estimate_is_noted_not_pooled():
    out, _, notes = pool_estimates([[_hr(0.5, 0.2), _hr(0.7, 0.3, strategy="x (univariate)")], [_hr(0.6, 0.2)]])
    assert len(out) == 1
    assert notes == ["hr (x (univariate)): estimated in only 1 of 2 imputed data sets, not pooled"]


def _curve(surv, se):
    t = np.array([1.0, 2.0, 3.0])
    tab = pd.concat([pd.DataFrame({"time": t, "group": g, "surv": surv, "se": se, "ci_lower": 0.0,
                                   "ci_upper": 1.0, "n_at_risk": [10, 8, 5]}) for g in ("treated", "untreated")])
    return SurvivalCurves(tab)


def test_pool_curves_cloglog():
    a = _curve([0.9, 0.7, 0.5], [0.03, 0.05, 0.06])
    b = _curve([0.85, 0.72, 0.5], [0.03, 0.05, 0.07])
    out = pool_curves([a, b]).table
    tr = out[out["group"] == "treated"].reset_index(drop=True)
    # by hand at t = 1: g = log(-log S), var = (se / (S log S))^2
    g = np.log(-np.log([0.9, 0.85]))
    u = (np.array([0.03, 0.03]) / (np.array([0.9, 0.85]) * np.log([0.9, 0.85]))) ** 2
    p = pool_scalar(g, u)
    s = math.exp(-math.exp(p.qbar))
    assert tr.loc[0, "surv"] == pytest.approx(s, rel=1e-14)
    assert tr.loc[0, "se"] == pytest.approx(p.se * s * abs(math.log(s)), rel=1e-12)
    z = 1.959963984540054
    assert tr.loc[0, "ci_lower"] == pytest.approx(math.exp(-math.exp(p.qbar + z * p.se)), rel=1e-12)
    assert tr.loc[0, "ci_upper"] == pytest.approx(math.exp(-math.exp(p.qbar - z * p.se)), rel=1e-12)
    assert list(tr["n_at_risk"]) == [10, 8, 5]
    # identical curves pool to themselves
    same = pool_curves([a, a]).table
    assert np.allclose(same["surv"], a.table["surv"], rtol=1e-14)
    assert np.allclose(same["se"], a.table["se"], rtol=1e-12)
    assert pool_curves([a, None]) is None


# --------------------------------------------------------------------------- description
def test_missingness_table_suppresses_small_counts():
    df = pd.DataFrame({"a": [1, np.nan, 3, 4, 5, 6, 7, 8, 9, 10], "b": [np.nan] * 6 + [1] * 4, "c": range(10)})
    t = missingness_table(df, ["a", "b", "c", "absent"], min_cell=5)
    # counts of 5 or more are rounded to the nearest 5, percentages computed from the rounded counts
    assert t["rows"] == [{"column": "a", "n_missing": "<5", "pct_missing": None},
                         {"column": "b", "n_missing": 5, "pct_missing": 50.0},
                         {"column": "c", "n_missing": 0, "pct_missing": 0.0}]
    assert (t["n"], t["complete_cases"], t["pct_complete"]) == (10, "<5", None)  # rows 0-5 incomplete
    t0 = missingness_table(df, ["a"], min_cell=0)
    assert t0["rows"][0] == {"column": "a", "n_missing": 1, "pct_missing": 10.0}
    assert (t0["complete_cases"], t0["pct_complete"]) == (9, 90.0)
    # one incomplete row: the complete-case count would reveal it
    assert missingness_table(df, ["a"], min_cell=5)["complete_cases"] == ">5"


def test_nelson_aalen_by_hand_and_against_r(gbsg):
    # times 1, 2, 2, 3 with events 1, 1, 0, 1: H(1) = 1/4, H(2) = 1/4 + 1/3, H(3) = H(2) + 1/1
    H = nelson_aalen(np.array([2.0, 1.0, 2.0, 3.0]), np.array([1, 1, 0, 1]))
    assert np.allclose(H, [1 / 4 + 1 / 3, 1 / 4, 1 / 4 + 1 / 3, 1 / 4 + 1 / 3 + 1], rtol=0, atol=1e-15)
    H = nelson_aalen(gbsg["rfstime"].to_numpy(float), gbsg["status"].to_numpy())
    assert np.max(np.abs(H - np.array(R["H"]))) < 1e-12


# --------------------------------------------------------------------------- imputation
def _impute(df, m=3, seed=1, **kw):
    return impute(df, confounders=kw.pop("confounders", CONF), treatment=df["hormon"].to_numpy(),
                  outcomes={"os": (df["rfstime"].to_numpy(float), df["status"].to_numpy())}, m=m, seed=seed, **kw)


def test_impute_pmm_properties(gbsg):
    before = gbsg.copy(deep=True)
    out = _impute(gbsg, m=3)
    pd.testing.assert_frame_equal(gbsg, before)  # the caller's frame is untouched
    assert len(out) == 3
    for d in out:
        assert list(d.columns) == list(gbsg.columns) and d.index.equals(gbsg.index)
        assert not d[CONF].isna().any().any()
        obs = gbsg.notna()
        pd.testing.assert_frame_equal(d.where(obs), gbsg.where(obs))  # observed values unchanged
        for c in ("size", "pgr"):  # PMM imputes observed values only
            assert set(d.loc[gbsg[c].isna(), c]).issubset(set(gbsg[c].dropna()))
    assert not out[0]["size"].equals(out[1]["size"])  # imputations differ
    again = _impute(gbsg, m=3)
    for a, b in zip(out, again):  # the seed fixes them
        pd.testing.assert_frame_equal(a, b)
    assert not _impute(gbsg, m=1, seed=2)[0]["size"].equals(out[0]["size"])


def test_impute_without_missing_values_copies(gbsg):
    full = gbsg.dropna()
    out = _impute(full, m=2)
    assert all(o.equals(full) and o is not full for o in out)


def test_impute_two_level_categorical_keeps_levels(gbsg):
    df = gbsg.copy()
    df["meno"] = np.where(df["meno"] == 1, "post", "pre").astype(object)
    df.loc[df.index[::7], "meno"] = None
    out = _impute(df, m=2)
    for d in out:
        assert set(d["meno"]) == {"post", "pre"}
        assert (d["meno"][df["meno"].notna()] == df["meno"].dropna()).all()


def test_impute_many_level_categorical_by_polyreg(gbsg):
    df = gbsg.copy()
    df["grade"] = df["grade"].map({1: "I", 2: "II", 3: "III"}).astype(object)
    df.loc[df.index[::5], "grade"] = None
    before = df.copy(deep=True)
    out = _impute(df, m=3, categorical=["grade"])
    pd.testing.assert_frame_equal(df, before)
    obs = df["grade"].notna()
    for d in out:
        assert set(d["grade"]) == {"I", "II", "III"} and pdt.is_string_dtype(d["grade"].dtype)  # text, not a category
        assert (d.loc[obs, "grade"] == df.loc[obs, "grade"]).all()
        assert not d[CONF].isna().any().any()
    assert not out[0]["grade"].equals(out[1]["grade"])
    for a, b in zip(out, _impute(df, m=3, categorical=["grade"])):
        pd.testing.assert_frame_equal(a, b)
    # a pandas categorical keeps its categories; numeric codes declared categorical stay numbers
    cat = _impute(df.assign(grade=pd.Categorical(df["grade"], categories=["III", "II", "I"])), m=1,
                  categorical=["grade"])[0]
    assert list(cat["grade"].cat.categories) == ["III", "II", "I"] and cat["grade"].notna().all()
    num = _impute(gbsg.assign(grade=gbsg["grade"].where(~gbsg.index.isin(df.index[::5]))), m=1,
                  categorical=["grade"])[0]
    assert set(num["grade"]) == {1, 2, 3}


def test_polyreg_one_observed_level_imputes_it():
    x = np.arange(12, dtype=float)[:, None]
    post = polyreg_probs(np.zeros(8, dtype=int) + 2, x, np.arange(8), np.arange(8, 12), 3)
    np.testing.assert_array_equal(post, np.tile([0.0, 0.0, 1.0], (4, 1)))


POLY = json.loads((FIX / "missing_polyreg.json").read_text())


def test_multinomial_logit_and_polyreg_probabilities_match_r():
    """mice:::augment + nnet::multinom (tight optimiser) on fixed data: the same MLE and probabilities."""
    full = pd.read_csv(FIX / "missing_polyreg_full.csv")
    x = full[POLY["fixed"]["predictors"]].to_numpy(float)
    y = full["grade"].to_numpy(int) - 1
    k = POLY["fixed"]["rows_missing"]
    ixo, ixm = np.arange(k, len(y)), np.arange(k)
    B = multinomial_logit(y[ixo], x[ixo], 3)
    np.testing.assert_allclose(B.T, POLY["fixed"]["coef_plain"], rtol=1e-6, atol=1e-8)
    post = polyreg_probs(y[ixo], x, ixo, ixm, 3)
    np.testing.assert_allclose(post, POLY["fixed"]["probs"], rtol=0, atol=1e-7)


def test_impute_refuses_all_missing(gbsg):
    df = gbsg.assign(er=np.nan)
    with pytest.raises(DataError) as ei:
        _impute(df, m=2)
    assert str(ei.value) == "missing: cannot impute confounder 'er': every value is missing"


# --------------------------------------------------------------------------- R mice + pool
M_REF = R["m"]


def _within_mc(ours, ref, m):
    """z-scores of our pooled estimate and total variance against R's.

    Both are means over m independent imputations: the estimate's Monte Carlo
    SD is sqrt(B / m) on each side; the total variance's is about
    (1 + 1/m) B sqrt(2 / (m - 1)) (the sampling SD of the between variance).
    """
    z_est = (ours.qbar - ref["estimate"]) / math.sqrt(ours.b / m + ref["b"] / m)
    sd_t = (1 + 1 / m) * math.sqrt(2 / (m - 1)) * math.sqrt(ours.b ** 2 + ref["b"] ** 2)
    z_t = (ours.t - ref["t"]) / sd_t
    return z_est, z_t


def test_imputed_cox_coefficients_agree_with_r_mice(gbsg):
    """Our PMM imputations + Cox + Rubin vs R mice(pmm) + coxph + pool, m = 50 on both sides."""
    out = _impute(gbsg, m=M_REF, seed=1, iterations=R["maxit"], donors=R["donors"])
    cols = ["hormon", *CONF]
    fits = [coxph(d["rfstime"].to_numpy(float), d["status"].to_numpy(), d[cols].to_numpy(float)) for d in out]
    for term in ("size", "pgr", "nodes"):
        j = cols.index(term)
        ref = R["pooled"][term]
        p = pool_scalar([f.coef[j] for f in fits], [f.se[j] ** 2 for f in fits], dfcom=ref["dfcom"])
        z_est, z_t = _within_mc(p, ref, M_REF)
        assert abs(z_est) < 4 and abs(z_t) < 4, (term, z_est, z_t)


@pytest.fixture(scope="module")
def gbsg_spec():
    def make(**over):
        raw = dict(study="gbsg-mi", data={"path": str(FIX / "missing_gbsg.csv")},
                   roles=dict(id="pid", time="rfstime", event="status", treatment="hormon"), time_unit="days",
                   confounders=CONF, missing={"method": "mice", "m": 3, "seed": 1},
                   strategies=["multivariable"], estimands={"survival_at": [1000], "rmst_tau": 1500},
                   sensitivity={"evalues": False}, bootstrap={"replicates": 0})
        raw.update(over)
        return parse_spec(raw)
    return make


def test_pipeline_multivariable_hr_agrees_with_r_mice(gbsg_spec):
    from causal_hcc.pipeline import run_analysis

    spec = gbsg_spec(missing={"method": "mice", "m": M_REF, "seed": 1, "iterations": R["maxit"],
                              "donors": R["donors"]})
    res = run_analysis(spec)
    e = next(x for x in res.estimates if x.measure == "hr")
    assert e.variance_method == "rubin"
    info = res.records[0].diagnostics["imputation"]["pooling"][0]
    ref = R["pooled"]["hormon"]
    p = Pooled(m=M_REF, qbar=math.log(e.estimate), ubar=info["within_variance"], b=info["between_variance"],
                t=e.se ** 2, df=info["df"], riv=info["riv"], lambda_=info["lambda"], fmi=info["fmi"])
    z_est, z_t = _within_mc(p, ref, M_REF)
    assert abs(z_est) < 4 and abs(z_t) < 4, (z_est, z_t)
    # the within-imputation variance hardly depends on the imputation: R's to 2%
    assert info["within_variance"] == pytest.approx(ref["ubar"], rel=0.02)


# --------------------------------------------------------------------------- pipeline
def test_pipeline_pools_every_strategy_and_reports(gbsg_spec, tmp_path):
    from causal_hcc.pipeline import run_analysis, write_outputs

    spec = gbsg_spec(strategies=["naive", {"name": "iptw", "estimand": "ATE"}, "gformula"],
                     bootstrap={"replicates": 20, "seed": 3}, report={"min_cell": 5})
    res = run_analysis(spec)
    frame = res.estimates_frame()
    finite = frame[frame["measure"] != "median_difference"]
    assert set(finite["variance_method"]) == {"rubin"}
    assert set(frame.loc[frame["measure"] == "median_difference", "variance_method"]) <= {"rubin", "none"}
    g = next(r for r in res.records if r.strategy == "gformula")
    assert g.diagnostics["imputation"]["within_variance"] == ["bootstrap"]  # bootstrap within each imputation
    assert g.curves is not None and g.curves.variance_method == "rubin"
    naive_hr = next(e for e in res.estimates if e.strategy == "naive" and e.measure == "hr")
    # naive uses no confounder: identical in every imputation, so B = 0 and FMI is 2 / (df + 3) only
    info = next(r for r in res.records if r.strategy == "naive").diagnostics["imputation"]["pooling"][0]
    assert info["between_variance"] == 0.0 and info["riv"] == 0.0
    assert naive_hr.se == pytest.approx(math.sqrt(info["within_variance"]), rel=1e-14)
    miss = res.cohort["missing"]
    assert miss["m"] == 3 and miss["imputed_columns"] == ["size", "pgr"]
    # (user data: min_cell 5, so the counts are R's rounded to the nearest 5)
    from causal_hcc.disclosure import round_count

    assert miss["table"]["complete_cases"] == round_count(R["n_missing"]["complete_cases"], 5)
    assert {r["column"]: r["n_missing"] for r in miss["table"]["rows"]}["size"] == \
        round_count(R["n_missing"]["size"], 5)
    assert res.cohort["rows_dropped"] == 0 and res.cohort["n"] == 686
    write_outputs(res, str(tmp_path / "out"), formats=("html", "md"))
    md = (tmp_path / "out" / "report.md").read_text()
    # 132 of 686 missing, written as 130 of 685 (rounded to 5): 19.0%
    assert "### Missing data and multiple imputation" in md and "| size | 130 | 19.0% |" in md
    assert "| naive | os | HR |  |" in md and "FMI: fraction of missing information" in md
    assert "Missing values of size, pgr were multiply imputed (3 data sets)" in md
    assert "Rubin's rules (multiple imputation) variance for naive, iptw(ATE), gformula" in md
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="missingness"' in html and 'id="fmi"' in html
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["records"][0]["diagnostics"]["imputation"]["pooling"][0]["fmi"] > 0


def test_pipeline_complete_case_unchanged(gbsg_spec):
    from causal_hcc.pipeline import run_analysis

    res = run_analysis(gbsg_spec(missing="complete_case"))
    e = next(x for x in res.estimates if x.measure == "hr")
    assert math.log(e.estimate) == pytest.approx(R["complete_case"]["hormon"], abs=1e-9)
    assert e.variance_method == "model" and "missing" not in res.cohort


def test_pipeline_role_errors_come_before_imputation(gbsg_spec, tmp_path):
    from causal_hcc.pipeline import run_analysis

    df = pd.read_csv(FIX / "missing_gbsg.csv")
    df.loc[[3, 5], "rfstime"] = np.nan
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as ei:
        run_analysis(gbsg_spec(data={"path": str(path)}))
    assert str(ei.value) == "bad.csv: column 'rfstime' (time) has 2 missing values at data rows 4, 6"


# --------------------------------------------------------------------------- spec
BASE = {"study": "s", "data": {"path": "x.csv"}, "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"},
        "strategies": ["naive"]}


def test_spec_missing_mapping_defaults():
    s = parse_spec({**BASE, "missing": {"method": "mice"}})
    assert (s.imputation.m, s.imputation.seed, s.imputation.iterations, s.imputation.donors) == (20, 1, 10, 5)
    assert s.cohort_missing == "error"
    assert s.canonical()["missing"] == {"method": "mice", "m": 20, "seed": 1, "iterations": 10, "donors": 5}
    cc = parse_spec({**BASE, "missing": "complete_case"})
    assert cc.imputation is None and cc.cohort_missing == "complete_case"


@pytest.mark.parametrize("value, message", [
    ({"method": "mice", "mm": 5},
     "missing: unknown key 'mm' (did you mean 'm'?); valid keys: method, m, seed, iterations, donors"),
    ({"method": "pmm"}, "spec key 'missing.method': Input should be 'mice'"),
    ({"m": 5}, "spec: required key 'missing.method' is missing"),
    ({"method": "mice", "m": 1}, "spec key 'missing.m': Input should be greater than or equal to 2"),
    ("complete", "missing: expected error, complete_case or a mapping such as {method: mice, m: 20, seed: 1}; "
                 "got 'complete' (did you mean 'complete_case'?)"),
    (3, "missing: expected error, complete_case or a mapping such as {method: mice, m: 20, seed: 1}; got int"),
])
def test_spec_missing_errors(value, message):
    with pytest.raises(SpecError) as ei:
        parse_spec({**BASE, "missing": value})
    assert str(ei.value) == message


# --------------------------------------------------------------------------- CLI
def _yaml(tmp_path, missing: str, data=FIX / "missing_gbsg.csv") -> str:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""study: gbsg-mi
data: {{path: {data}}}
roles: {{id: pid, time: rfstime, event: status, treatment: hormon}}
time_unit: days
confounders: [age, meno, size, grade, nodes, pgr, er]
missing: {missing}
strategies: [multivariable]
bootstrap: {{replicates: 0}}
""")
    return str(spec)


def test_cli_validate_and_run_with_mice(tmp_path):
    from typer.testing import CliRunner

    from causal_hcc.cli import app

    runner = CliRunner()
    spec = _yaml(tmp_path, "{method: mice, m: 2, seed: 1}")
    r = runner.invoke(app, ["validate", spec])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ok: 686 patients (246 treated)")
    # without imputation the same data fail validation, naming the missing values
    r = runner.invoke(app, ["validate", _yaml(tmp_path, "error")])
    assert r.exit_code == 2 and "missing confounder values: 'size' 132" in r.stderr
    r = runner.invoke(app, ["run", _yaml(tmp_path, "{method: mice, m: 2, seed: 1}"), "--output",
                            str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    est = pd.read_csv(tmp_path / "out" / "estimates.csv")
    assert list(est["variance_method"]) == ["rubin"]
    r = runner.invoke(app, ["validate", _yaml(tmp_path, "{method: mice, donor: 3}")])
    assert r.exit_code == 2
    assert r.stderr.strip() == ("error: missing: unknown key 'donor' (did you mean 'donors'?); valid keys: method, m, "
                                "seed, iterations, donors")


def test_every_paper_strategy_runs_on_imputed_twin(tmp_path):
    """configs/paper.yaml's strategies (every design, bootstrap ones included) under MI."""
    import yaml

    from causal_hcc.pipeline import run_analysis
    from causal_hcc.twin import TwinParams, simulate_twin

    raw = yaml.safe_load((Path(__file__).parents[1] / "configs" / "paper.yaml").read_text())
    df = simulate_twin(TwinParams.from_spec(raw["data"]["twin"]))
    rng = np.random.default_rng(5)
    for c in ("portal_vein_invasion", "age"):  # MAR given the observed event
        df.loc[rng.uniform(size=len(df)) < 0.15 + 0.15 * df["os_event"], c] = np.nan
    df.to_csv(tmp_path / "twin.csv", index=False)
    raw.pop("published")
    raw.pop("report", None)  # its Monte Carlo panel needs the twin, not a file
    raw.update(data={"path": str(tmp_path / "twin.csv")}, missing={"method": "mice", "m": 2, "seed": 1},
               bootstrap={"replicates": 5, "seed": 1}, sensitivity={"evalues": True, "refuters": ["placebo"],
                                                                    "refuter_strategy": "multivariable"})
    res = run_analysis(parse_spec(raw))
    assert not [r.error for r in res.records if r.error]
    f = res.estimates_frame()
    assert set(f.loc[f["measure"] != "median_difference", "variance_method"]) == {"rubin"}
    assert len(res.records) == 2 * len(parse_spec(raw).resolved_strategies())
    assert "sensitivity refuters ran on imputed data set 1 only" in res.warnings
    boot = [r for r in res.records if "bootstrap" in r.diagnostics.get("imputation", {}).get("within_variance", [])]
    assert {r.strategy for r in boot} >= {"gformula", "clone_censor(6)", "landmark(3,pfs-free)+multivariable"}


def test_mice_without_missing_values_runs_once(tmp_path):
    from causal_hcc.pipeline import run_analysis, write_outputs

    raw = {"study": "twin-mi", "data": {"path": "twin", "twin": {"seed": 7}},
           "roles": {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery"},
           "confounders": ["portal_vein_invasion", "oligometastases"], "strategies": ["multivariable"],
           "sensitivity": {"evalues": False}, "bootstrap": {"replicates": 0}}
    plain = run_analysis(parse_spec({**raw, "missing": "error"}))
    res = run_analysis(parse_spec({**raw, "missing": {"method": "mice", "m": 5}}))
    assert [e.as_row() for e in res.estimates] == [e.as_row() for e in plain.estimates]
    assert ("missing: mice was requested but no confounder value is missing; the analysis ran once on the data "
            "as they are") in res.warnings
    assert res.cohort["missing"]["imputed_columns"] == []
    write_outputs(res, str(tmp_path / "out"), formats=("md",))
    assert "No confounder value is missing: nothing was imputed." in (tmp_path / "out" / "report.md").read_text()


def test_polyreg_imputations_agree_with_r_mice():
    """polyreg (grade, 3 levels) + PMM (size) + Cox + Rubin vs R mice + coxph + pool, m = 50 on both sides."""
    df = pd.read_csv(FIX / "missing_polyreg_gbsg.csv")
    assert df["grade"].isna().sum() == POLY["n_missing"]["grade"]
    out = _impute(df, m=POLY["m"], seed=1, iterations=POLY["maxit"], donors=POLY["donors"], categorical=["grade"])
    miss = df["grade"].isna()
    shares = np.array([[np.mean(d.loc[miss, "grade"] == L) for L in ("I", "II", "III")] for d in out])
    for j, L in enumerate(("I", "II", "III")):  # the imputed levels' shares, within Monte Carlo error
        sd = math.sqrt(shares[:, j].var(ddof=1) / POLY["m"] + POLY["imputed_share_sd"][L] ** 2 / POLY["m"])
        assert abs(shares[:, j].mean() - POLY["imputed_share"][L]) < 4 * sd, (L, shares[:, j].mean())
    cols = ["hormon", "age", "meno", "size", "gradeII", "gradeIII", "nodes", "pgr", "er"]
    fits = []
    for d in out:
        d = d.assign(gradeII=(d["grade"] == "II").astype(float), gradeIII=(d["grade"] == "III").astype(float))
        fits.append(coxph(d["rfstime"].to_numpy(float), d["status"].to_numpy(), d[cols].to_numpy(float)))
    for term in ("gradeII", "gradeIII", "hormon", "size"):
        j = cols.index(term)
        ref = POLY["pooled"][term]
        p = pool_scalar([f.coef[j] for f in fits], [f.se[j] ** 2 for f in fits], dfcom=ref["dfcom"])
        z_est, z_t = _within_mc(p, ref, POLY["m"])
        assert abs(z_est) < 4 and abs(z_t) < 4, (term, z_est, z_t)


def test_pipeline_imputes_a_three_level_categorical(gbsg_spec):
    from causal_hcc.pipeline import run_analysis

    spec = gbsg_spec(data={"path": str(FIX / "missing_polyreg_gbsg.csv")}, categorical=["grade"],
                     missing={"method": "mice", "m": 5, "seed": 1}, estimands={})
    res = run_analysis(spec)
    f = res.to_frame()
    row = f[(f.strategy == "multivariable") & (f.measure == "hr")].iloc[0]
    assert row.variance_method == "rubin" and row.n == 685  # no row dropped (686, written rounded to 5)
    assert 0.55 < row.estimate < 0.85  # R mice + pool: exp(-0.333) = 0.72
