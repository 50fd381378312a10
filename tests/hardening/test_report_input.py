"""Issue 22 item 4: `report DIR` on a tampered results.json / curves.parquet: exit 2, one line naming the field.

Every field the report reads is validated (causal_hcc/results_schema.py) before anything is drawn; what
passes the schema but still cannot be drawn is one line too, never an internal error. Nothing is written
and no lock is left.
"""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from harden_support import cli, tree_hash


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from harden_support import Case

    case = Case(tmp_path_factory.mktemp("rep"))
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0, r.stderr
    return case.out


@pytest.fixture
def copy(run_dir, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(run_dir, dst)
    return dst


def _edit(folder, fn) -> None:
    p = folder / "results.json"
    d = json.loads(p.read_text())
    fn(d)
    p.write_text(json.dumps(d))


def _first_estimate(d):
    return d["records"][0]["estimates"][0]


def _set(path_fn, key, value):
    def f(d):
        path_fn(d)[key] = value
    return f


CASES = {
    "estimate_as_string": (_set(_first_estimate, "estimate", "0.5 (0.3-0.9)"),
                           "records[0].estimates[0].estimate: Input should be a valid number"),
    "estimate_1e308": (_set(_first_estimate, "estimate", 1e308),
                       "records[0].estimates[0].estimate: 1e+308 is not a finite number of magnitude at most 1e+300"),
    "count_400_digits": (_set(_first_estimate, "n", int("9" * 400)), "an integer of 400 digits"),
    "p_value_5": (_set(_first_estimate, "p_value", 5.0), "records[0].estimates[0].p_value: a p-value must be"),
    "unknown_measure": (_set(_first_estimate, "measure", "odds"), "records[0].estimates[0].measure: Input should be"),
    "records_not_a_list": (lambda d: d.update(records={"a": 1}), "records: Input should be a valid list"),
    "alpha_2": (lambda d: d.update(alpha=2.0), "alpha: Input should be less than 1"),
    "risk_times_text": (lambda d: next(r for r in d["records"] if r["curves"])["curves"].update(risk_times=["x"]),
                        "risk_times[0]: Input should be a valid number"),
    "survival_at_text": (lambda d: d["spec"]["estimands"].update(survival_at="12"),
                         "spec.estimands.survival_at: Input should be a valid list"),
    "strategy_huge": (lambda d: d["records"][0].update(strategy="x" * 20_000),
                      "records[0].strategy: String should have at most 10000 characters"),
    "roles_number": (lambda d: d["spec"]["roles"].update(id=5), "spec.roles.id: Input should be a valid string"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tampered_results_json(copy, name):
    fn, expected = CASES[name]
    _edit(copy, fn)
    before = tree_hash(copy.parent)
    r = cli("report", copy)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    err = r.stderr
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    assert err.startswith(f"error: report: '{copy / 'results.json'}' is not a complete causal-hcc results file (")
    assert expected in err, err
    assert tree_hash(copy.parent) == before  # nothing written, no lock left


@pytest.mark.parametrize("text, expected", [
    ('{"study": "x", "alpha": NaN}', "NaN is not a JSON number"),
    ('{"study": "x", "alpha": Infinity}', "Infinity is not a JSON number"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("[1, 2]", "the top level is list"),
])
def test_results_json_tokens_and_nesting(copy, text, expected):
    (copy / "results.json").write_text(text)
    before = tree_hash(copy.parent)
    r = cli("report", copy)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr
    assert tree_hash(copy.parent) == before


@pytest.mark.parametrize("change, expected", [
    (lambda df: df.assign(surv=df["surv"].astype(str)), "column 'surv' must be numeric"),
    (lambda df: df.assign(record=df["record"] + 1000), "column 'record' must index the"),
    (lambda df: df.assign(time=df["time"] * float("inf")), "column 'time' must hold finite times"),
    (lambda df: df.drop(columns=["group"]), "column 'group' is missing"),
    (lambda df: df.assign(surv=df["surv"] * 1e6), "column 'surv' must hold probabilities"),
])
def test_tampered_curves_parquet(copy, change, expected):
    p = copy / "curves.parquet"
    change(pd.read_parquet(p)).to_parquet(p)
    before = tree_hash(copy.parent)
    r = cli("report", copy)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: report: '{p}' is not a complete causal-hcc results file (")
    assert tree_hash(copy.parent) == before


def test_curves_parquet_that_is_not_parquet(copy):
    (copy / "curves.parquet").write_bytes(b"PAR1 not really")
    r = cli("report", copy)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "curves.parquet" in r.stderr, r.stderr


@pytest.mark.parametrize("diag", [{"propensity": "abc"}, {"matching": [1, 2]}, {"weights": {"counts": "x"}},
                                  {"events_per_variable": "many"}, {"propensity": {"n_near_0_or_1": [3]}}])
def test_odd_diagnostics_never_exit_1(copy, diag):
    """Free-form diagnostics of odd types: the report copes or refuses with one line (exit 2), never exit 1."""
    _edit(copy, lambda d: d["records"][0]["diagnostics"].update(diag))
    r = cli("report", copy)
    assert r.exit_code in (0, 2), (r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    if r.exit_code == 2:
        assert r.stderr.count("\n") == 1
