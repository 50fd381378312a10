"""Formula terms in confounders: rcs(), log(), interactions; against R rms/survival.

Fixtures: tests/reference/data_formula.R (rms::rcs bases with default knots on
four data sets, 3-7 knots; coxph with rcs(age, 4) + log(karno) + prior:karno
+ celltype on survival::veteran).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.core.cox import coxph
from causal_hcc.errors import DataError, SpecError
from causal_hcc.formula import is_term, rcs_basis, rcs_knots, term_matrix, term_variables

FIX = Path(__file__).resolve().parent / "reference" / "fixtures"
REF = json.loads((FIX / "data_formula.json").read_text())


@pytest.mark.parametrize("key", sorted(REF["bases"]))
def test_rcs_knots_and_basis_match_rms(key):
    case = REF["bases"][key]
    x = np.asarray(REF["sets"][case["set"]], dtype=float)
    knots = rcs_knots(x, case["k"])
    np.testing.assert_allclose(knots, case["knots"], rtol=1e-12, atol=1e-12)
    basis = np.asarray(case["basis"], dtype=float).reshape(len(case["knots"]) - 1, -1).T
    np.testing.assert_allclose(rcs_basis(x, knots), basis, rtol=1e-9, atol=1e-6)


def veteran() -> pd.DataFrame:
    v = pd.read_csv(FIX / "foundation_veteran.csv")
    return v.assign(prior=v["prior10"] * 10)


def test_cox_with_formula_terms_matches_r():
    c = Cohort(veteran(), id="id", time="time", event="status", treatment="trt01",
               confounders=["rcs(age, 4)", "log(karno)", "prior:karno", "celltype"],
               reference={"celltype": "squamous"})
    assert c.confounder_columns == ["age", "age'", "age''", "log(karno)", "prior:karno", "celltype=adeno",
                                    "celltype=large", "celltype=smallcell"]
    fit = coxph(c.time(), c.event(), np.column_stack([c.treatment, c.X]))
    r = REF["veteran"]
    order = ["trt01", "rcs(age, 4)age", "rcs(age, 4)age'", "rcs(age, 4)age''", "log(karno)", "prior:karno",
             "celltypeadeno", "celltypelarge", "celltypesmallcell"]
    idx = [r["names"].index(n) for n in order]
    np.testing.assert_allclose(fit.coef, np.asarray(r["coef"])[idx], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.var)), np.asarray(r["se"])[idx], rtol=1e-6)


def test_terms_reach_the_strategies_and_balance_tables():
    from causal_hcc.base import Targets
    from causal_hcc.strategies import resolve

    c = Cohort(veteran(), id="id", time="time", event="status", treatment="trt01",
               confounders=["rcs(age, 3)", "log(karno)", "celltype"])
    out = resolve({"name": "iptw", "estimand": "ATE"})[0].build().fit(c, "os", Targets())
    bal = out.diagnostics["balance"]
    text = json.dumps(bal)
    assert "age'" in text and "log(karno)" in text
    mv = resolve("multivariable")[0].build().fit(c, "os", Targets())
    assert mv.estimates[0].measure == "hr"
    sub = c.select_confounders(["rcs(age, 3)"])
    assert sub.confounder_columns == ["age", "age'"]


@pytest.mark.parametrize("term, variables", [
    ("rcs(age, 4)", ["age"]), ("log(afp)", ["afp"]), ("grade:nodes", ["grade", "nodes"]),
    ("I(age ** 2)", ["age"]), ("rcs(age, [40, 60, 80])", ["age"]), ("a*b", ["a", "b"]),
])
def test_term_variables(term, variables):
    assert term_variables(term) == variables and is_term(term)


def test_a_column_whose_name_looks_like_a_term_is_a_column():
    assert not is_term("log(afp)", ["log(afp)", "id"])


def test_interaction_codes_a_categorical_as_r_model_matrix():
    """R's rule: ``grade:nodes`` alone gives a slope per grade (every level); with ``nodes`` in the model,
    the non-reference levels (``model.matrix(~ grade:nodes)`` / ``(~ grade*nodes)``)."""
    df = pd.DataFrame({"grade": ["a", "b", "c", "a", "b", "c"], "nodes": [1.0, 2, 3, 4, 5, 6]})
    X, names = term_matrix("grade:nodes", df)
    assert names == ["grade=a:nodes", "grade=b:nodes", "grade=c:nodes"]
    np.testing.assert_array_equal(X, [[1, 0, 0], [0, 2, 0], [0, 0, 3], [4, 0, 0], [0, 5, 0], [0, 0, 6]])
    X, names = term_matrix("grade*nodes", df)
    assert names == ["grade=b", "grade=c", "nodes", "grade=b:nodes", "grade=c:nodes"]
    np.testing.assert_array_equal(X[:, 3:], [[0, 0], [2, 0], [0, 3], [0, 0], [5, 0], [0, 6]])


def base(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "t": np.arange(1.0, n + 1), "e": [1, 0] * (n // 2), "a": [0, 1] * (n // 2),
                         "afp": np.linspace(1, 50, n), "age": np.linspace(40, 80, n)})


@pytest.mark.parametrize("term, exc, message", [
    ("rcs(agee, 4)", DataError, "column 'agee' not found (did you mean 'age'?); columns: id, t, e, a, afp, age"),
    ("spline(age, 4)", SpecError, "confounder term 'spline(age, 4)': unknown function 'spline'; available: rcs, "
                                  "log, sqrt, exp, I, C"),
    ("rcs(age, 9)", DataError, "rcs: the number of knots must be 3 to 7 (Harrell's defaults), got 9"),
    ("rcs(age, 2.5)", DataError, "rcs: the number of knots must be a whole number, got 2.5"),
])
def test_term_errors(term, exc, message):
    with pytest.raises(exc) as e:
        Cohort(base(), id="id", time="t", event="e", treatment="a", confounders=[term])
    assert str(e.value) == message


def test_log_of_non_positive_values_names_the_rows():
    df = base().assign(afp=[0.0, 1, 2, 3, -1, 5, 6, 7, 8, 9, 10, 11])
    with pytest.raises(DataError) as e:
        Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["log(afp)"], source="d.csv")
    assert str(e.value) == "confounder term 'log(afp)': log of a value <= 0 in 'afp' at data rows 1, 5"


def test_missing_values_in_a_term_variable_follow_the_missing_policy():
    df = base().assign(afp=[np.nan] + list(np.linspace(2, 50, 11)))
    with pytest.raises(DataError) as e:
        Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["log(afp)"])
    assert str(e.value) == ("missing confounder values: 'afp' 1 (index 0); set missing: complete_case to drop "
                            "this row")
    c = Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["log(afp)"], missing="complete_case")
    assert c.n == 11 and c.confounder_columns == ["log(afp)"]


# --------------------------------------------------------------------------
# few distinct values: fewer knots with a note, as rms::rcs (tests/reference/formula_rcs_ties.R)
# --------------------------------------------------------------------------
TIES = json.loads((Path(__file__).parent / "reference/fixtures/formula_rcs_ties.json").read_text())["cases"]


@pytest.mark.parametrize("key", sorted(TIES))
def test_rcs_with_few_distinct_values_matches_rms(key):
    case = TIES[key]
    x = np.asarray(case["x"], dtype=float)
    notes: list[str] = []
    if case["error"]:
        with pytest.raises(DataError):
            rcs_knots(x, case["k"], notes=notes)
        return
    knots = rcs_knots(x, case["k"], notes=notes)
    np.testing.assert_allclose(knots, case["knots"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(rcs_basis(x, knots), np.asarray(case["basis"], dtype=float), rtol=1e-9, atol=1e-12)
    assert len(notes) == len(case["warning"])  # a note exactly where R warns
    if case["warning"] and "interior values" in case["warning"][0]:
        nxu = len(np.unique(x))
        assert notes == [f"{case['k']} knots requested with {nxu} distinct values; knots set to the {nxu - 2} "
                         "interior values (as rms::rcs)"]


def test_rcs_notes_reach_the_cohort_and_errors_name_the_reason():
    x = TIES["six_values_k5"]["x"]
    n = len(x)
    df = pd.DataFrame({"id": range(n), "t": np.arange(1.0, n + 1), "e": [1, 0] * (n // 2), "a": [0, 1] * (n // 2),
                       "dose": x})
    c = Cohort(df, id="id", time="t", event="e", treatment="a", confounders=["rcs(dose, 5)"])
    assert c.confounder_columns == ["dose", "dose'", "dose''"]  # 4 knots: 3 columns
    assert c.warnings == ["confounder 'rcs(dose, 5)': 5 knots requested with 6 distinct values; knots set to the "
                          "4 interior values (as rms::rcs)"]
    alt = TIES["alternate_n200_k4"]["x"]
    df2 = pd.DataFrame({"id": range(len(alt)), "t": np.arange(1.0, len(alt) + 1), "e": [1, 0] * (len(alt) // 2),
                        "a": [0, 1] * (len(alt) // 2), "dose": alt})
    c2 = Cohort(df2, id="id", time="t", event="e", treatment="a", confounders=["rcs(dose, 4)"])
    assert c2.warnings == ["confounder 'rcs(dose, 4)': could not obtain 4 knots with the default algorithm (tied "
                           "values); used the alternate algorithm to obtain 3 knots (as rms::rcs)"]
    with pytest.raises(DataError) as e:
        Cohort(df.assign(dose=np.repeat([1, 2, 3, 4], n // 4)), id="id", time="t", event="e", treatment="a",
               confounders=["rcs(dose, 3)"])
    assert str(e.value) == "rcs: the variable has only 4 distinct values; a spline needs at least 5 (3 knots at " \
                           "interior values)"
    with pytest.raises(DataError) as e:
        rcs_knots(np.asarray(TIES["alternate_fails_k4"]["x"]), 4)
    assert str(e.value) == ("rcs: fewer than 3 distinct knots for 4 requested (the variable has too many tied "
                            "values); give the knots, e.g. rcs(x, [20, 40, 60])")
