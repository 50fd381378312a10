"""Options, labels, sweeps and refused combinations of the time-zero designs."""
from __future__ import annotations

import pytest

from causal_hcc.errors import SpecError
from causal_hcc.strategies import DESIGNS, resolve


@pytest.mark.parametrize("entry, labels", [
    ({"name": "landmark", "landmark": [1, 3, 6]}, ["landmark(1)", "landmark(3)", "landmark(6)"]),
    ({"design": "landmark", "adjustment": "multivariable", "landmark": 3, "require_event_free": "pfs"},
     ["landmark(3,pfs-free)+multivariable"]),
    ({"name": "clone_censor", "grace": 6}, ["clone_censor(6)"]),
    ({"name": "clone_censor", "grace": [3, 6]}, ["clone_censor(3)", "clone_censor(6)"]),
    ("time_varying", ["time_varying"]),
    ({"name": "time_varying", "adjust_state": "pfs"}, ["time_varying(pfs)"]),
    ("sequential_trials", ["sequential_trials"]),
    ({"name": "sequential_trials", "grid": 0.5, "analysis": "per_protocol"}, ["sequential_trials(grid=0.5,pp)"]),
])
def test_labels_and_sweeps(entry, labels):
    assert [s.label for s in resolve(entry)] == labels


@pytest.mark.parametrize("design, adjustment", [
    ("time_varying", "psm"), ("time_varying", "iptw"), ("time_varying", "gformula"), ("time_varying", "aiptw"),
    ("clone_censor", "psm"), ("clone_censor", "iptw"), ("clone_censor", "gformula"), ("clone_censor", "aiptw"),
    ("sequential_trials", "gformula"), ("sequential_trials", "aiptw"),
])
def test_refused_combinations(design, adjustment):
    with pytest.raises(SpecError) as e:
        resolve({"design": design, "adjustment": adjustment})
    assert str(e.value) == (f"strategies: design '{design}' cannot be combined with adjustment '{adjustment}': "
                            f"{DESIGNS[design].incompatible[adjustment]}")


@pytest.mark.parametrize("design, adjustment", [
    ("landmark", a) for a in ("none", "multivariable", "psm", "iptw", "gformula", "aiptw")
] + [("time_varying", "none"), ("time_varying", "multivariable"), ("sequential_trials", "none"),
     ("sequential_trials", "multivariable"), ("sequential_trials", "iptw"), ("sequential_trials", "psm"),
     ("clone_censor", "none"), ("clone_censor", "multivariable")])
def test_allowed_combinations(design, adjustment):
    assert resolve({"design": design, "adjustment": adjustment})[0].design == design


def test_clone_censor_needs_bootstrap():
    s = resolve({"name": "clone_censor", "grace": 3})[0].build()
    assert s.needs_bootstrap


@pytest.mark.parametrize("entry, message", [
    ({"name": "landmark", "landmark": -1}, "strategies: design 'landmark': option 'landmark' must be >= 0.0, got -1.0"),
    ({"name": "clone_censor", "censoring_model": "probit"},
     "strategies: design 'clone_censor': option 'censoring_model' must be one of cox, logistic, got 'probit'"),
    ({"name": "sequential_trials", "analysis": "as_treated"},
     "strategies: design 'sequential_trials': option 'analysis' must be one of itt, per_protocol, got 'as_treated'"),
])
def test_bad_options(entry, message):
    with pytest.raises(SpecError) as e:
        resolve(entry)
    assert str(e.value) == message


def test_misspelt_option_suggests_grace():
    with pytest.raises(SpecError) as e:
        resolve({"name": "clone_censor", "grce": 3})
    # the list of valid options also holds the pipeline's own keys; check the part we own
    assert str(e.value).startswith("strategies: strategy 'clone_censor' has no option 'grce' (did you mean "
                                   "'grace'?); valid options: bootstrap_ci, censoring_grid, censoring_model, ")
