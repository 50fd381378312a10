"""Formula terms coded as R codes them, and cox.zph grouped per term, against R (issue 18).

Fixture: tests/reference/formula_terms.R (survival::coxph and cox.zph(terms = TRUE) on veteran): an
interaction without its main effects (R's model.matrix gives every level of the factor), a duplicated main
effect (``[celltype, "celltype*karno"]``: R keeps one), two factors without main effects (R's last column is
aliased: NA), three-way terms, ``(a + b):c``, rcs in a term and in an interaction, arithmetic in I() with
R's ``^``, and column names that are Python keywords, dotted, start with a digit or hold a space.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.core.cox import coxph
from causal_hcc.errors import DataError, SpecError
from causal_hcc.outcome.effects import ph_test

FIX = Path(__file__).resolve().parent / "reference" / "fixtures"
REF = json.loads((FIX / "formula_terms.json").read_text())


def veteran() -> pd.DataFrame:
    v = pd.read_csv(FIX / "foundation_veteran.csv")
    return v.assign(prior=v["prior10"] * 10, prior_f=v["prior10"], **{
        "ecog.ps": v["karno"] / 10, "lambda": v["diagtime"], "class": v["prior10"], "2nd": v["age"],
        "my col": v["karno"]})


#: our confounder list for each R model (tests/reference/formula_terms.R)
MODELS = {
    "interaction_only": ["celltype:karno"],
    "interaction_with_factor": ["celltype", "celltype:karno"],
    "cross": ["celltype*karno"],
    "duplicate_main_effect": ["celltype", "celltype*karno"],
    "two_factors_only": ["celltype:prior_f"],
    "numeric_only": ["karno:prior"],
    "three_way": ["karno", "celltype:karno:prior10"],
    "three_way_cross": ["celltype*karno*prior10"],
    "grouped": ["(celltype + karno):prior10"],
    "spline_terms": ["rcs(age, 4)", "celltype", "karno"],
    "spline_interaction": ["karno", "rcs(age, 3):karno"],
    "arithmetic": ["I(karno^2)", "log(diagtime)", "sqrt(age)", "exp(karno / 100)", "I((age - 60) / 10)"],
    "names": ["log(lambda)", "I(ecog.ps^2)", "class", "log(`2nd`)", "my col"],
}


def cohort(model: str) -> Cohort:
    conf = MODELS[model]
    uses_celltype = any("celltype" in c for c in conf)
    return Cohort(veteran(), id="id", time="time", event="status", treatment="trt01", confounders=conf,
                  categorical=["prior_f"] if model == "two_factors_only" else [],
                  reference={"celltype": "adeno"} if uses_celltype else None)  # R's first level


def key(name: str, *, term: bool = False) -> str:
    """A column or term name as R prints it, less spaces and backticks (rms' rcs() prefix dropped on columns)."""
    k = name.replace("**", "^").replace(" ", "").replace("`", "").replace("=", "")
    return k if term else re.sub(r"rcs\([^)]*\)", "", k)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_coefficients_and_hr_match_r(model):
    r = REF[model]
    c = cohort(model)
    names = ["trt01"] + c.confounder_columns
    fit = coxph(c.time(), c.event(), np.column_stack([c.treatment, c.X]), names=names)
    ours = {key(n): (b, s) for n, b, s in zip(names, fit.coef, fit.se)}
    theirs = {key(n): (b, s) for n, b, s in zip(r["names"], r["coef"], r["se"]) if b is not None}
    assert sorted(ours) == sorted(theirs), (sorted(ours), sorted(theirs))
    for k in theirs:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-6, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(np.exp(fit.coef[0]), r["hr"], rtol=1e-6)
    np.testing.assert_allclose(fit.loglik[1] if np.ndim(fit.loglik) else fit.loglik, r["loglik"], rtol=1e-9)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_ph_tests_are_grouped_per_term_as_r(model):
    r = REF[model]
    c = cohort(model)
    names = ["treatment"] + c.confounder_columns
    X = np.column_stack([c.treatment, c.X])
    fit = coxph(c.time(), c.event(), X, names=names)
    ph, _ = ph_test(fit, c.time(), c.event(), X, names, groups=c.confounder_terms)
    ours = {key(t["term"], term=True): (t["chisq"], t["df"], t["p"]) for t in ph["terms"]}
    ours["trt01"] = ours.pop("treatment")
    ours["GLOBAL"] = (ph["global"]["chisq"], ph["global"]["df"], ph["global"]["p"])
    theirs = {key(t, term=True): (x, d, p) for t, x, d, p in zip(r["zph"]["term"], r["zph"]["chisq"],
                                                                  r["zph"]["df"], r["zph"]["p"])}
    assert sorted(ours) == sorted(theirs)
    for k, (x, d, p) in theirs.items():
        assert ours[k][1] == d, k
        np.testing.assert_allclose(ours[k][0], x, rtol=1e-6, err_msg=k)
        np.testing.assert_allclose(ours[k][2], p, rtol=1e-6, err_msg=k)


def test_rcs_is_one_three_df_test_and_a_factor_one_k_minus_1_df_test():
    c = cohort("spline_terms")
    assert c.confounder_terms == {"rcs(age, 4)": ["age", "age'", "age''"],
                                  "celltype": ["celltype=large", "celltype=smallcell", "celltype=squamous"],
                                  "karno": ["karno"]}
    assert c.confounder_map == {"rcs(age, 4)": ["age", "age'", "age''"],
                                "celltype": ["celltype=large", "celltype=smallcell", "celltype=squamous"],
                                "karno": ["karno"]}


def test_duplicate_main_effect_enters_once_and_both_entries_own_it():
    c = cohort("duplicate_main_effect")
    assert c.confounder_columns == ["celltype=large", "celltype=smallcell", "celltype=squamous", "karno",
                                    "celltype=large:karno", "celltype=smallcell:karno", "celltype=squamous:karno"]
    assert c.confounder_map["celltype"] == ["celltype=large", "celltype=smallcell", "celltype=squamous"]
    assert c.confounder_map["celltype*karno"] == c.confounder_columns
    sub = c.select_confounders(["celltype"])
    assert sub.confounder_columns == ["celltype=large", "celltype=smallcell", "celltype=squamous"]
    assert list(sub.confounder_terms) == ["celltype"]


def test_interaction_without_main_effects_is_r_model_and_hr_through_the_strategy():
    """The multivariable strategy's HR is R's for ``trt01 + celltype:karno`` (1.4125), not the HR of the
    model with contrasts (1.3748): the parametrisation R's model.matrix gives."""
    from causal_hcc.base import Targets
    from causal_hcc.strategies import resolve

    for model in ("interaction_only", "cross", "two_factors_only"):
        c = cohort(model)
        out = resolve("multivariable")[0].build().fit(c, "os", Targets())
        hr = next(e for e in out.estimates if e.measure == "hr")
        np.testing.assert_allclose(hr.estimate, REF[model]["hr"], rtol=1e-6)
        terms = {t["term"]: t["df"] for t in out.diagnostics["ph_test"]["terms"]}
        assert terms == {key(t, term=True) if t != "trt01" else "treatment": d
                         for t, d in zip(REF[model]["zph"]["term"][:-1], REF[model]["zph"]["df"][:-1])}
    c = cohort("two_factors_only")
    assert c.confounder_columns[-1] == "celltype=smallcell:prior_f=1"  # squamous:1 aliased, as R's NA
    assert any("aliased with the baseline" in w and "celltype=squamous:prior_f=1" in w for w in c.warnings)


# --------------------------------------------------------------------------
# names as they come (issue 18): keywords, dots, leading digits, spaces, backticks
# --------------------------------------------------------------------------
def test_awkward_names_are_columns():
    c = cohort("names")
    assert c.confounder_columns == ["log(lambda)", "I(ecog.ps ** 2)", "class", "log(`2nd`)", "my col"]
    np.testing.assert_allclose(c.X[:, 3], np.log(veteran()["2nd"]))
    assert c.confounder_variables() == ["lambda", "ecog.ps", "class", "2nd", "my col"]


def test_backticks_quote_any_column_name():
    df = veteran().assign(**{"log(afp)": np.log(veteran()["karno"]), "a:b": veteran()["age"]})
    c = Cohort(df, id="id", time="time", event="status", treatment="trt01",
               confounders=["`my col`:`a:b`", "rcs(`2nd`, 3)", "log(afp)"])
    assert c.confounder_columns == ["my col:a:b", "2nd", "2nd'", "log(afp)"]
    np.testing.assert_allclose(c.X[:, 0], df["karno"] * df["age"])


@pytest.mark.parametrize("term, message", [
    ("log(2nd)", "confounder term 'log(2nd)': '2nd' at position 5 is not a number; a column name that starts "
                 "with a digit must be quoted with backticks: `2nd`"),
    ("I(age^2)", None),
    ("age^2", "confounder term 'age^2': '^' at position 4 outside I() is R's formula crossing, not a power (R reads "
              "age^2 as age); for the power write I(age ** 2) or I(age^2)"),
    ("age**2", "confounder term 'age**2': '**' at position 4 outside I() is R's formula crossing, not a power (R "
               "reads age^2 as age); for the power write I(age ** 2) or I(age^2)"),
    ("log(celltype)", "confounder term 'log(celltype)': 'celltype' is categorical; arithmetic, log(), sqrt(), "
                      "exp() and rcs() need a number"),
])
def test_power_and_name_messages(term, message):
    df = veteran()
    if message is None:
        c = Cohort(df, id="id", time="time", event="status", treatment="trt01", confounders=[term])
        assert c.confounder_columns == ["I(age ** 2)"]
        np.testing.assert_allclose(c.X[:, 0], df["age"] ** 2)  # R's meaning of ^ inside I()
        return
    with pytest.raises((SpecError, DataError)) as e:
        Cohort(df, id="id", time="time", event="status", treatment="trt01", confounders=[term])
    assert str(e.value) == message


def test_categorical_accepts_a_variable_used_only_in_a_term():
    c = Cohort(veteran(), id="id", time="time", event="status", treatment="trt01",
               confounders=["prior_f:karno", "karno"], categorical=["prior_f"], reference={"prior_f": 1})
    assert c.confounder_columns == ["prior_f=0:karno", "karno"]
    assert c.categorical == ["prior_f"] and c.reference_levels == {"prior_f": "1"}
    with pytest.raises(SpecError) as e:
        Cohort(veteran(), id="id", time="time", event="status", treatment="trt01", confounders=["karno"],
               categorical=["prior_f"])
    assert str(e.value) == "categorical: 'prior_f' is not a confounder; confounders: karno"


# --------------------------------------------------------------------------
# factor limits after expansion, and no patient values as level names (issue 22)
# --------------------------------------------------------------------------
def wide(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": range(n), "t": rng.exponential(10, n) + 0.1, "e": rng.integers(0, 2, n),
                         "a": rng.integers(0, 2, n), "code": rng.integers(0, 120, n), "g10": rng.integers(0, 10, n),
                         "h10": rng.integers(0, 10, n), "x": rng.normal(size=n),
                         "letters": rng.choice([f"L{i:03d}" for i in range(120)], n)})


@pytest.mark.parametrize("conf, cats, message", [
    (["C(code)"], [], "column 'code' (confounder) is categorical with 116 levels, more than 50; group the levels with "
                      "codes: {code: {raw: group}} or give a number"),
    (["letters:x"], [], "column 'letters' (confounder) is categorical with 116 levels, more than 50; group the levels "
                        "with codes: {letters: {raw: group}} or give a number"),
    (["g10:h10"], ["g10", "h10"], "confounder term 'g10:h10': the term 'g10:h10' has 100 level combinations (g10: "
                                  "10 x h10: 10), more than 50; group levels with codes: or leave the interaction out"),
    (["C(g10)*C(h10)"], [], "confounder term 'C(g10)*C(h10)': the term 'C(g10):C(h10)' has 81 level combinations "
                            "(C(g10): 9 x C(h10): 9), more than 50; group levels with codes: or leave the interaction "
                            "out"),
    (["rcs(x, 7):C(g10):C(h10)"], [], "confounder term 'rcs(x, 7):C(g10):C(h10)': the term 'rcs(x, 7):C(g10):C(h10)' "
                                      "has 100 level combinations (C(g10): 10 x C(h10): 10), more than 50; group "
                                      "levels with codes: or leave the interaction out"),
])
def test_the_level_limit_holds_after_expansion(conf, cats, message):
    with pytest.raises(DataError) as e:
        Cohort(wide(), id="id", time="t", event="e", treatment="a", confounders=conf, categorical=cats)
    assert str(e.value) == message


def test_a_term_with_too_many_columns_is_refused():
    df = wide().assign(y=lambda d: d["x"] ** 2 + 1)
    with pytest.raises(DataError) as e:
        Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["rcs(x, 7):rcs(y, 7):C(g10)"])
    assert str(e.value) == ("confounder term 'rcs(x, 7):rcs(y, 7):C(g10)': the term 'rcs(x, 7):rcs(y, 7):C(g10)' "
                            "gives 360 columns, more than 100")


@pytest.mark.parametrize("conf, cats, why", [
    (["C(age)"], [], "values that are not whole numbers"),
    (["age"], ["age"], "values that are not whole numbers"),
    (["C(years)"], [], "40 distinct values, some held by fewer than 5 patients"),
    (["C(years):karno"], [], "40 distinct values, some held by fewer than 5 patients"),
    (["C(few)"], [], "6 distinct values, 5 of them held by one patient each"),
    (["agetext"], [], "values that are not whole numbers"),
])
def test_level_names_are_never_values_of_a_continuous_variable(conf, cats, why):
    """C(age) would write every patient's age into results.json as column names: refused, without the values."""
    v = veteran()
    few = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6] + [1] * (len(v) - 11))
    half = v["age"] // 2 + 0.5  # 24 distinct values, none whole: a measurement, not a code
    df = v.assign(age=half, years=v["age"], few=few, agetext=half.astype(str))
    # (numbers written as text; with a non-number among them the cohort asks first to fix or recode that
    # value: tests/test_pandas_compat.py)
    var = conf[0].split("(")[-1].split(")")[0] if "(" in conf[0] else conf[0]
    with pytest.raises(DataError) as e:
        Cohort(df, id="id", time="time", event="status", treatment="trt01", confounders=conf, categorical=cats)
    assert str(e.value) == (f"column '{var}' (confounder) is numeric with {why}: as a categorical variable its "
                            "values would become level names in the results (patients' values); use it as a number "
                            f"(or rcs({var}, 4)), or group it with codes: {{{var}: {{raw: group}}}}")
    assert not any(str(a) in str(e.value) for a in df["age"].head(20))  # no value in the message either


def test_codes_as_levels_pass():
    df = wide(n=600).assign(centre=lambda d: d["id"] % 30 + 1)  # 30 centres of 20 patients: codes, not values
    c = Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["C(centre)", "C(g10)"])
    assert c.X.shape[1] == 29 + 9 and c.confounder_columns[0] == "C(centre)=2"


def test_names_match_columns_after_unicode_normalisation():
    """A term is read in NFKC form; a data column written in another normal form is still found."""
    import unicodedata

    v = veteran()
    decomposed = unicodedata.normalize("NFD", "gr\u00f6\u00dfe")  # 'größe' with a combining diaeresis
    df = v.assign(**{decomposed: v["karno"]})
    c = Cohort(df, id="id", time="time", event="status", treatment="trt01",
               confounders=["log(gr\u00f6\u00dfe)", "\uff4b\uff41\uff52\uff4e\uff4f:age"])  # ｋａｒｎｏ:age
    assert c.confounder_columns == ["log(gr\u00f6\u00dfe)", "karno:age"]
    np.testing.assert_allclose(c.X[:, 0], np.log(v["karno"]))
    assert c.confounder_variables() == [decomposed, "karno", "age"]


def test_exact_matching_uses_the_variable_not_its_interactions():
    """psm exact=[celltype] with celltype:karno in the model matches on celltype only (its interaction columns,
    named 'celltype=large:karno', used to join the key and match on karno too)."""
    from causal_hcc.adjust.psm import PSM
    from causal_hcc.base import DesignData, Targets

    c = Cohort(veteran(), id="id", time="time", event="status", treatment="trt01",
               confounders=["celltype", "celltype:karno"], reference={"celltype": "adeno"})
    n = c.n
    idx = np.arange(n)
    dd = DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=c.time(), event=c.event(),
                    treatment=c.treatment, X=c.X, confounders=list(c.confounder_columns), patient=idx, unit=idx,
                    weight=np.ones(n), cohort=c)
    m = PSM(exact=["celltype"]).fit(dd, Targets())
    cell = c.column("celltype")
    karno = c.column("karno")
    pairs = list(m.matches_.pairs)
    assert pairs and all(cell[t] == cell[u] for t, u in pairs)
    assert any(karno[t] != karno[u] for t, u in pairs)


# --------------------------------------------------------------------------
# 120 random confounder lists against R's model.matrix (tests/reference/formula_model_matrix.R)
# --------------------------------------------------------------------------
MM = json.loads((FIX / "formula_model_matrix.json").read_text())["models"]
MM_INPUT = json.loads((FIX / "formula_model_matrix_input.json").read_text())


def _listed(v):
    return v if isinstance(v, list) else [v]


@pytest.mark.parametrize("i", range(len(MM)))
def test_random_formulas_code_as_r_model_matrix(i):
    """Same columns (names and values) as R's model.matrix, less R's constant columns and the aliased last column
    of an all-levels factor term (R's fits give it NA); same rank with the intercept."""
    from causal_hcc.formula import model_matrix

    df = pd.read_csv(FIX / "formula_model_matrix.csv")
    r = MM[i]
    d = model_matrix(MM_INPUT[i], df)
    names, sums, wsums = _listed(r["names"]), _listed(r["sum"]), _listed(r["wsum"])
    row = np.arange(1, len(df) + 1)
    ours = {n.replace("=", ""): (float(d.X[:, j].sum()), float(d.X[:, j] @ row)) for j, n in enumerate(d.names)}
    theirs = {n: (s, w) for n, s, w in zip(names, sums, wsums)}
    assert set(ours) <= set(theirs), (r["rhs"], sorted(set(ours) - set(theirs)))
    for k, v in ours.items():
        np.testing.assert_allclose(v, theirs[k], rtol=1e-12, atol=1e-9, err_msg=f"{r['rhs']}: {k}")
    # ours is a subset of R's columns with R's rank: the same column space, i.e. the same model
    rank = np.linalg.matrix_rank(np.column_stack([np.ones(len(df)), d.X]))
    assert rank == r["rank"], r["rhs"]
