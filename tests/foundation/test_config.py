"""The analysis spec: safe loading, strict keys, strategy resolution."""
from __future__ import annotations

import pytest

from causal_hcc.config import load_spec, parse_spec
from causal_hcc.errors import SpecError
from causal_hcc.strategies import resolve

BASE = {
    "study": "s", "data": {"path": "x.csv"},
    "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"},
    "strategies": ["naive"],
}


def spec(**over):
    d = dict(BASE)
    d.update(over)
    return d


def test_minimal_spec_defaults():
    s = parse_spec(spec())
    assert s.roles.outcome == "os" and s.missing == "error" and s.bootstrap.replicates == 200
    assert [x.label for x in s.resolved_strategies()] == ["naive"]


@pytest.mark.parametrize("raw, message", [
    (spec(stratgies=["naive"]),
     "spec: unknown key 'stratgies' (did you mean 'strategies'?); valid keys: study, title, labels, data, roles, time_unit, "
     "outcomes, confounders, codes, competing, categorical, reference, visits, time_varying_confounders, missing, strategies, estimands, bootstrap, n_jobs, on_error, "
     "published, sensitivity, report, output"),
    (spec(roles={"id": "id", "time": "t", "event": "e", "treatment": "a", "treatmnt_time": "x"}),
     "roles: unknown key 'treatmnt_time' (did you mean 'treatment_time'?); valid keys: id, time, event, "
     "treatment, treatment_time, cluster, outcome, start_date, end_date, treatment_date, period, eligible, censored, "
     "date_format, dayfirst"),
    # the misspelling is reported, not the required key it leaves missing
    (spec(roles={"id": "id", "time": "t", "event": "e", "treatmnt": "a"}),
     "roles: unknown key 'treatmnt' (did you mean 'treatment'?); valid keys: id, time, event, "
     "treatment, treatment_time, cluster, outcome, start_date, end_date, treatment_date, period, eligible, censored, "
     "date_format, dayfirst"),
    (spec(estimands={"survival_at": [12, float("nan")]}),
     "spec key 'estimands.survival_at.1': must be a finite number, got nan"),
    (spec(estimands={"rmst_tau": float("inf")}), "spec key 'estimands.rmst_tau': must be a finite number, got inf"),
    (spec(strategies=[{"name": "iptw", "trim": [0.01, float("nan")]}]),
     "strategies[0]: adjustment 'iptw': option 'trim' must be list[float], got (0.01, nan)"),
    (spec(roles={"id": "id", "event": "e", "treatment": "a"}),
     "spec key 'roles': give the follow-up as 'time' or as 'start_date' and 'end_date'"),
    (spec(roles={"id": "id", "time": "t", "event": "e", "treatment": "a", "treatment_date": "d"}),
     "spec key 'roles': 'end_date' and 'treatment_date' need 'start_date' (time zero)"),
    (spec(roles={"id": "id", "start_date": "s", "end_date": "f", "event": "e", "treatment": "a"},
          time_unit="fortnights"),
     "spec: time_unit must be one of days, weeks, months, years when times are computed from dates, "
     "got 'fortnights'"),
    (spec(codes={"status": {2: 1, "2": 0}}), "spec key 'codes': 'status' lists the raw value '2' twice"),
    (spec(codes={"status": [1, 2]}),
     "spec key 'codes.status': Input should be a valid dictionary"),
    (spec(data={"path": "x.csv", "sep": ";;"}), "spec key 'data.sep': must be one character, got ';;'"),
    (spec(strategies=["naiv"]), None),
    (spec(missing="drop"),
     "missing: expected error, complete_case or a mapping such as {method: mice, m: 20, seed: 1}; got 'drop'"),
    ({k: v for k, v in BASE.items() if k != "roles"}, "spec: required key 'roles' is missing"),
    (spec(strategies=[]), "spec key 'strategies': at least one strategy is needed"),
    (spec(estimands={"survival_at": [0, 12]}), "spec key 'estimands.survival_at': survival_at times must be > 0"),
])
def test_bad_spec_one_line(raw, message):
    with pytest.raises(SpecError) as ei:
        parse_spec(raw)
    text = str(ei.value)
    assert "\n" not in text
    if message is not None:
        assert text == message
    else:
        assert text.startswith("strategies[0]: unknown strategy 'naiv' (did you mean 'naive'?); valid: ")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(SpecError) as ei:
        resolve({"name": "paper", "treshold": 0.1})
    assert str(ei.value) == ("strategies: strategy 'paper' has no option 'treshold' (did you mean 'threshold'?); "
                             "valid options: bootstrap_ci, confounders, label, threshold, variance")


def test_bad_option_value():
    with pytest.raises(SpecError, match=r"option 'threshold' must be <= 1.0, got 2.0"):
        resolve({"name": "paper", "threshold": 2})


@pytest.mark.parametrize("entry, label, design, adjustment", [
    ("naive", "naive", "baseline", "none"),
    ("paper", "paper", "baseline", "paper"),
    ("multivariable", "multivariable", "baseline", "multivariable"),
    ({"design": "baseline", "adjustment": "none"}, "naive", "baseline", "none"),
    ({"name": "naive", "label": "my label"}, "my label", "baseline", "none"),
])
def test_resolve(entry, label, design, adjustment):
    (s,) = resolve(entry)
    assert (s.label, s.design, s.adjustment) == (label, design, adjustment)


def test_yaml_is_loaded_safely(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("study: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match=r"invalid YAML at line 1"):
        load_spec(p)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError) as ei:
        load_spec(tmp_path / "nope.yaml")
    assert str(ei.value) == f"spec file '{tmp_path / 'nope.yaml'}' not found"


def test_strategy_confounders_extend_the_cohort():
    s = parse_spec(spec(confounders=["x"], strategies=["naive", {"name": "multivariable", "confounders": ["zz", "x"]}]))
    assert s.all_confounders() == ["x", "zz"]
    assert s.resolved_strategies()[1].confounders == ("zz", "x")


def test_bootstrap_interval_options():
    s = parse_spec(spec(bootstrap={"replicates": 50, "ci": "bca"},
                        strategies=[{"name": "naive", "variance": "bootstrap", "bootstrap_ci": "normal"}, "iptw"]))
    assert s.bootstrap.ci == "bca"
    a, b = s.resolved_strategies()
    assert (a.variance, a.bootstrap_ci, b.bootstrap_ci) == ("bootstrap", "normal", None)
    assert a.build().bootstrap_ci == "normal"
    with pytest.raises(SpecError) as ei:
        parse_spec(spec(strategies=[{"name": "naive", "bootstrap_ci": "student"}]))
    assert str(ei.value) == ("strategies[0]: option 'bootstrap_ci' must be one of percentile, normal, bca, "
                             "got 'student'")
