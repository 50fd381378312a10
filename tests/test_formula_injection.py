"""No spec can run code through a formula term (issue 22, item 1).

The known injection families are tried against ``causal-hcc validate`` and ``causal-hcc run``: attribute
access, dunder names, calls of functions off the allow-list, lambdas, comprehensions, fullwidth and other
confusable identifiers (NFKC-normalised by Python), f-strings and string literals, keyword arguments,
control and bidi characters, very long and very deeply nested terms. Each must exit 2 with one line on
stderr, leave no output, leave the inputs unchanged, and run nothing: the payloads that would write a file
(``pwned``) must not, and ``eval``/``exec``/``compile`` are never called while terms are parsed and computed.
Before the fix, the fullwidth payload below created its file under ``validate`` (formulaic evaluated the
term as Python).
"""
from __future__ import annotations

import builtins
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from user_data import USER_SPEC, make_user_frame  # noqa: E402

from causal_hcc.cli import app  # noqa: E402
from causal_hcc.cohort import Cohort  # noqa: E402
from causal_hcc.errors import CausalHCCError, DataError, SpecError  # noqa: E402
from causal_hcc.formula import MAX_DEPTH, MAX_TERM_CHARS, parse_term  # noqa: E402

FW = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F) if chr(c).isalpha()})


def fullwidth(s: str) -> str:
    """ASCII letters as their fullwidth forms (Python's NFKC maps them back)."""
    return s.translate(FW)


MARK = "pwned"
PAYLOADS = {
    # the exploit found by the campaign: fullwidth identifiers passed our checks and formulaic ran them
    "fullwidth_open": "I(" + fullwidth("len") + "([" + fullwidth("open") + f"('{MARK}'," + fullwidth("chr")
                      + "(119))])*age_y)",
    "fullwidth_no_quotes": fullwidth("open") + "(" + fullwidth("pwned") + ")",
    "fullwidth_function_name": fullwidth("eval") + "(age_y)",
    "mathematical_bold": "\U0001d41e\U0001d42f\U0001d41a\U0001d425(age_y)",          # 𝐞𝐯𝐚𝐥 -> eval
    "script_e": "\u212fxec(age_y)",                                                 # ℯxec -> exec
    "cyrillic_o_in_log": "l\u043eg(age_y)",                                          # lоg (Cyrillic о)
    "dunder_import": f"__import__('os').system('touch {MARK}')",
    "dunder_import_no_quotes": "__import__(os)",
    "dunder_name": "I(__builtins__)",
    "attribute_access": "I((age_y).__class__)",
    "attribute_chain": "().__class__.__bases__[0].__subclasses__()",
    "attribute_after_call": "log(age_y).real",
    "getattr": "getattr(age_y, __class__)",
    "open_call": f"open({MARK}, w)",
    "exec_call": "exec(age_y)",
    "eval_in_I": "I(eval(age_y))",
    "lambda": "I((lambda x: x)(age_y))",
    "lambda_formula": "(lambda: age_y)",
    "list_comprehension": "I([x for x in age_y])",
    "generator": "I(sum(x for x in age_y))",
    "dict_comprehension": "I({x: 1 for x in age_y})",
    "fstring": f"f\"{{__import__('os').system('touch {MARK}')}}\"",
    "string_literal": "C(stage, 'III')",
    "string_in_I": "I('age_y')",
    "keyword_argument": "rcs(age_y, nk=4)",
    "walrus": "I((x := age_y))",
    "subscript": "age_y[0]",
    "semicolon": "log(age_y); import os",
    "newline_statement": "log(age_y)\nimport os",
    "conditional": "I(age_y if 1 else 0)",
    "comparison": "I(age_y > 50)",
    "bidi_override": "log(age_y)\u202e",
    "zero_width_space": "log(age\u200b_y)",
    "nul": "log(age_y)\x00",
    "backslash_escape": "I(\\x61ge_y)",
    "too_long": "I(" + "+".join(["age_y"] * 200) + ")",
    "deep_parentheses": "(" * 5000 + "age_y" + ")" * 5000,
    "deep_within_length": "I(" + "(" * 60 + "age_y" + ")" * 60 + ")",
    "deep_signs": "I(" + "-" * 300 + "age_y)",
    "deep_calls": "log(" * 30 + "age_y" + ")" * 30,
    "many_terms": "*".join(["age_y", "fit_pt", "stage", "hospital", "I(age_y)", "log(age_y)", "sqrt(age_y)"]),
}


def spec_text(path: Path, term: str) -> str:
    quoted = term.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\x00", "\\0") \
        .replace("\u202e", "\\u202e").replace("\u200b", "\\u200b")
    text = USER_SPEC.format(path=path).replace("  - paper\n  - naive\n  - multivariable\n", "  - naive\n")
    return text.replace("confounders: [fit_pt, stage, age_y]", f'confounders: [fit_pt, "{quoted}"]')


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inject")
    make_user_frame().to_csv(root / "cohort.csv", index=False)
    return root


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_is_refused_and_runs_nothing(folder, monkeypatch, name, command):
    monkeypatch.chdir(folder)
    spec = folder / f"spec_{name}_{command}.yaml"
    spec.write_text(spec_text(folder / "cohort.csv", PAYLOADS[name]), encoding="utf-8")
    before = tree(folder)
    args = ["validate", str(spec)] if command == "validate" else ["run", str(spec), "--output",
                                                                  str(folder / f"out_{name}"), "-q"]
    r = CliRunner().invoke(app, args)
    err = r.stderr
    assert r.exit_code == 2, (r.exit_code, r.stdout, err)
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err and "internal error" not in err
    assert not (folder / MARK).exists() and not (folder / "123").exists()
    assert not (folder / f"out_{name}").exists()
    assert tree(folder) == before  # nothing written, inputs byte-identical, no lock left


def test_the_exploit_of_the_campaign_is_named_as_what_is_parsed():
    with pytest.raises(SpecError) as e:
        parse_term(PAYLOADS["fullwidth_open"])
    assert "(read as 'I(len([open('pwned',chr(119))])*age_y)')" in str(e.value)
    assert str(e.value).endswith("text in quotes at position 13 is not allowed (a term holds column names, numbers "
                                 "and the functions rcs, log, sqrt, exp, I, C; quote a column name with backticks, "
                                 "`like this`)")


@pytest.mark.parametrize("term, message", [
    (fullwidth("eval") + "(age_y)", "confounder term 'ｅｖａｌ(age_y)' (read as 'eval(age_y)'): unknown function "
                                    "'eval'; available: rcs, log, sqrt, exp, I, C"),
    ("l\u043eg(age_y)", "confounder term 'lоg(age_y)': unknown function 'lоg' (it contains non-ASCII characters: "
                        "U+043E CYRILLIC SMALL LETTER O); available: rcs, log, sqrt, exp, I, C"),
    ("__import__(os)", "confounder term '__import__(os)': unknown function '__import__'; available: rcs, log, sqrt, "
                       "exp, I, C"),
    ("I((age_y).__class__)", "confounder term 'I((age_y).__class__)': unexpected '.__class__' at position 10 "
                             "(expected ')' to close I( at position 2)"),
    ("rcs(age_y, nk=4)", "confounder term 'rcs(age_y, nk=4)': '=' (keyword arguments, comparisons) at position 14 "
                         "is not allowed in a term"),
    ("I([x for x in age_y])", "confounder term 'I([x for x in age_y])': unexpected '[' at position 3"),
    ("log(age_y)\u202e", "confounder term 'log(age_y)\\u202e': an invisible or unassigned character (U+202E "
                         "RIGHT-TO-LEFT OVERRIDE) at position 11 is not allowed"),
    ("log(age_y)\x00", "confounder term 'log(age_y)\\u0000': a control character (U+0000) at position 11 is not "
                       "allowed"),
    ("I(" + "(" * 60 + "age_y" + ")" * 60 + ")", None),
    ("(" * 5000 + "age_y" + ")" * 5000, f"confounder term '{'(' * 60}\u2026': 10,005 characters, more than "
                                        f"{MAX_TERM_CHARS}"),
])
def test_messages(term, message):
    with pytest.raises(SpecError) as e:
        parse_term(term)
    if message is None:
        assert str(e.value).endswith(f"nested more than {MAX_DEPTH} levels deep")
    else:
        assert str(e.value) == message


def test_no_recursion_error_at_any_depth_or_length():
    for n in (10, 100, 1000, 100_000):
        for term in ("(" * n + "a" + ")" * n, "I(" + "-" * n + "a)", "log(" * n + "a" + ")" * n,
                     "I(" + "a ** " * n + "a)", "a" + ":a" * n, "I(" + "a + " * n + "a)"):
            try:
                parse_term(term)
            except SpecError:
                pass


def test_nothing_is_ever_evaluated(monkeypatch):
    """eval/exec/compile are never called while terms are parsed and their columns computed; formulaic is
    not imported."""
    calls: list[str] = []

    real = {"eval": builtins.eval, "exec": builtins.exec, "compile": builtins.compile}

    def trap(name):
        def f(*a, **k):
            calls.append(name)
            return real[name](*a, **k)
        return f

    df = make_user_frame().assign(**{"2nd": lambda d: d["age_y"], "class": lambda d: d["fit_pt"]})
    monkeypatch.setattr(builtins, "eval", trap("eval"))
    monkeypatch.setattr(builtins, "exec", trap("exec"))
    monkeypatch.setattr(builtins, "compile", trap("compile"))
    refused = []
    try:
        c = Cohort(df, id="patient_no", time="fu_months", event="died", treatment="operated",
                   treatment_time="months_to_op",
                   confounders=["rcs(age_y, 4)", "log(`2nd`)", "I(age_y^2 / 100)", "stage*fit_pt", "C(hospital)",
                                "class:stage", "sqrt(exp(age_y / 100))"])
        for term in PAYLOADS.values():
            try:
                Cohort(df, id="patient_no", time="fu_months", event="died", treatment="operated",
                       confounders=["fit_pt", term])
            except CausalHCCError:
                refused.append(term)
    finally:
        monkeypatch.undo()
    assert calls == []
    assert c.X.shape[1] == 18 and len(refused) == len(PAYLOADS)


def test_formulaic_is_not_a_dependency():
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert "formulaic" not in text
    import subprocess

    code = ("import sys, pandas as pd; sys.path.insert(0, 'tests'); from user_data import make_user_frame; "
            "from causal_hcc.cohort import Cohort; "
            "Cohort(make_user_frame(), id='patient_no', time='fu_months', event='died', treatment='operated', "
            "confounders=['rcs(age_y, 4)', 'stage:age_y']); "
            "print(any(m.split('.')[0] in ('formulaic', 'patsy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def test_a_huge_value_is_a_data_error_not_a_crash():
    df = make_user_frame()
    with pytest.raises(DataError) as e:
        Cohort(df, id="patient_no", time="fu_months", event="died", treatment="operated",
               confounders=["I(age_y ** 1e308)"], source="d.csv")
    assert str(e.value) == "confounder term 'I(age_y ** 1e308)' gives non-finite values at data rows 1, 2, 3 (+117 more)"
    assert np.isfinite(df["age_y"]).all() and isinstance(df, pd.DataFrame)
    assert os.path.exists  # the frame was not modified (checked by the cohort tests)


# --------------------------------------------------------------------------
# the audit: other spec or data values that reached an interpreter
# --------------------------------------------------------------------------
def test_a_dag_is_never_read_as_a_file_path(tmp_path, monkeypatch):
    """DoWhy reads a graph *string* matching '.*\\.txt', '.*\\.dot' or '.*\\.gml' as a file path: a node named
    'c.txt' made it open the spec's DAG text as a file (FileNotFoundError, exit 1). It now gets the parsed graph."""
    from causal_hcc.sensitivity import identify_adjustment_set

    monkeypatch.chdir(tmp_path)
    for ext in ("txt", "dot", "gml"):
        dag = f'digraph {{ "c.{ext}" -> a; "c.{ext}" -> y; a -> y; u -> y }}'
        out = identify_adjustment_set(dag, "a", "y", [f"c.{ext}"])
        assert out["minimal"] == [f"c.{ext}"] and out["spec_is_valid"] is True


def test_a_label_from_results_json_is_not_a_format_string():
    """A tampered results.json's estimand label was passed to str.format (KeyError -> exit 1, or attribute
    access on our values with '{L.__class__}'); only our own templates are formatted now."""
    from causal_hcc.report._fmt import short_estimand

    assert short_estimand({"contrast": "{L.__class__.__mro__}", "population": "{x}", "scale": "hr"}) == \
        "{L.__class__.__mro__}; {x}; hr"
    assert short_estimand({"contrast": "by_L_vs_not_yet", "population": "at_risk_L", "scale": "hr",
                           "params": {"landmark": 3}}, "months") == \
        "treated by L = 3 vs not yet; alive at L = 3 months; hr"


@pytest.mark.parametrize("term, line", [
    ("C(age_y)", "error: cohort.csv: column 'age_y' (confounder) is categorical with 103 levels, more than 50; "
                 "group the levels with codes: {age_y: {raw: group}} or give a number"),
    ("age_y^2", "error: confounder term 'age_y^2': '^' at position 6 outside I() is R's formula crossing, not a power "
                "(R reads age^2 as age); for the power write I(age_y ** 2) or I(age_y^2)"),
    ("log(`2nd`)", "error: cohort.csv: column '2nd' not found; columns: patient_no, fu_months, died, operated, "
                   "months_to_op, fit_pt, stage, age_y, hospital"),
])
def test_cli_refusals_are_one_line(folder, monkeypatch, term, line):
    monkeypatch.chdir(folder)
    spec = folder / "spec_refusal.yaml"
    spec.write_text(spec_text(folder / "cohort.csv", term), encoding="utf-8")
    before = tree(folder)
    for args in (["validate", str(spec)], ["run", str(spec), "--output", str(folder / "out_refusal"), "-q"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and r.stderr == line + "\n", r.stderr
        assert tree(folder) == before
