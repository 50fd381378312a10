"""Contract suite: every registered design x adjustment (sklearn's parametrize_with_checks idea).

Each combination the registry allows must resolve from a spec entry, fit on a
small cohort whose treatment starts after time zero, return estimates with the
fixed schema, leave the cohort untouched, be deterministic, and serialise to
JSON; each combination it refuses must say why when the spec loads.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from causal_hcc import strategies as reg
from causal_hcc.base import Targets
from causal_hcc.cohort import Cohort
from causal_hcc.errors import EstimationError, SpecError
from causal_hcc.results import MEASURES, VARIANCE_METHODS, StrategyRecord
from user_data import make_user_frame

reg.load()
PAIRS = [(d, a) for d in sorted(reg.DESIGNS) for a in sorted(reg.ADJUSTMENTS)]


def _refusal(d: str, a: str) -> str | None:
    return reg.DESIGNS[d].incompatible.get(a) or reg.ADJUSTMENTS[a].incompatible.get(d)


ALLOWED = [p for p in PAIRS if _refusal(*p) is None]
REFUSED = [p for p in PAIRS if _refusal(*p) is not None]
TARGETS = Targets(survival_at=(6.0, 12.0), rmst_tau=12.0)


@pytest.fixture(scope="module")
def frame():
    return make_user_frame(n=240, seed=11)


@pytest.fixture(scope="module")
def cohort(frame):
    return Cohort(frame, id="patient_no", time="fu_months", event="died", treatment="operated",
                  treatment_time="months_to_op", confounders=["fit_pt", "stage", "age_y"])


def test_registry_is_not_empty():
    assert {"baseline", "landmark", "time_varying", "sequential_trials", "clone_censor"} <= set(reg.DESIGNS)
    assert {"none", "multivariable", "paper", "psm", "iptw", "gformula", "aiptw"} <= set(reg.ADJUSTMENTS)
    assert len(ALLOWED) >= 20 and REFUSED


@pytest.mark.parametrize("kind, name", [("design", n) for n in sorted(reg.DESIGNS)]
                         + [("adjustment", n) for n in sorted(reg.ADJUSTMENTS)])
def test_component_declares_itself(kind, name):
    cls = (reg.DESIGNS if kind == "design" else reg.ADJUSTMENTS)[name]
    assert cls.name == name and cls.description and cls.references, "name, description and references"
    defaults = cls.validate_options({})
    assert set(defaults) == {o.name for o in cls.options}
    for o in cls.options:
        assert o.doc, f"option {o.name} has no doc"
    assert any(r["name"] == name for r in reg.describe())


@pytest.mark.parametrize("design, adjustment", REFUSED, ids=[f"{d}+{a}" for d, a in REFUSED])
def test_refused_combination_says_why(design, adjustment):
    with pytest.raises(SpecError) as ei:
        reg.resolve({"design": design, "adjustment": adjustment})
    msg = str(ei.value)
    assert msg.startswith(f"strategies: design '{design}' cannot be combined with adjustment '{adjustment}': ")
    assert "\n" not in msg and len(msg) > 80


def _long_lists(obj, n: int, path: str = "") -> list[str]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _long_lists(v, n, f"{path}.{k}")]
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [path] if len(obj) >= n else [p for i, v in enumerate(obj) for p in _long_lists(v, n, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("design, adjustment", ALLOWED, ids=[f"{d}+{a}" for d, a in ALLOWED])
def test_allowed_combination_honours_the_contract(cohort, frame, design, adjustment):
    before = frame.copy(deep=True)
    (spec,) = reg.resolve({"design": design, "adjustment": adjustment})
    assert spec.label and "\n" not in spec.label
    try:
        out = spec.build().fit(cohort, "os", TARGETS)
    except EstimationError as err:  # allowed only as a one-line, explained failure
        pytest.fail(f"{design}+{adjustment} failed on the contract cohort: {err}")
    assert out.estimates, "no estimates"
    for e in out.estimates:
        assert e.measure in MEASURES and e.variance_method in VARIANCE_METHODS
        assert (e.design, e.adjustment, e.outcome) == (design, adjustment, "os")
        assert e.strategy
        assert 0 < e.n_treated < e.n and 0 < e.events
        if e.measure == "hr":
            assert e.estimate > 0
        if e.time is not None:
            assert e.measure in ("survival_difference", "rmst_difference", "risk_ratio")
        if e.measure == "risk_ratio" and math.isfinite(e.estimate):
            assert e.estimate >= 0
        if math.isfinite(e.ci_lower) and math.isfinite(e.ci_upper):
            assert e.ci_lower <= e.estimate <= e.ci_upper
            assert math.isfinite(e.se) and e.se > 0
            assert 0 <= e.p_value <= 1
        if e.variance_method != "none" and not reg.DESIGNS[design].needs_bootstrap \
                and not reg.ADJUSTMENTS[adjustment].needs_bootstrap:
            assert math.isfinite(e.se), f"{e.measure}: a variance method is named but no SE"
    # fixed curve schema, survival in [0, 1]
    if out.curves is not None:
        s = out.curves.table["surv"].to_numpy()
        assert not np.isnan(s).any(), "survival curve has NaN"
        if adjustment == "aiptw":  # augmented IPW is not range-preserving: it may leave [0, 1] slightly
            assert s.min() > -0.05 and s.max() < 1.05
        else:
            assert s.min() >= 0 and s.max() <= 1 + 1e-12
    # results.json-safe, aggregate only
    rec = StrategyRecord(spec.label, design, adjustment, "os", out.estimates, out.curves, out.diagnostics,
                         out.warnings, out.notes)
    json.dumps(rec.to_dict(), allow_nan=False)
    # aggregate only: no patient-level vector (one value per patient or per row) in the diagnostics
    assert not _long_lists(out.diagnostics, cohort.n), "diagnostics hold a patient-level vector"
    # the caller's data is untouched, and a refit gives the same numbers
    assert frame.equals(before)
    again = spec.build().fit(cohort, "os", TARGETS)
    assert [e.estimate for e in again.estimates] == [e.estimate for e in out.estimates]


@pytest.fixture(scope="module")
def tv_cohort():
    """A cohort with a time-varying confounder (visits) and loss to follow-up (roles.censored)."""
    from havercroft import simulate

    from causal_hcc.timeline import attach_visits

    pts, vis = simulate(400, seed=7, theta=(-2.0, 0.0205, -0.00405), loss=True)
    c = Cohort(pts, id="id", time="time", event="event", treatment="treated", treatment_time="treatment_time",
               confounders=["v"])
    return attach_visits(c, vis, id="id", time="time", columns=["L"], censored="lost"), pts


@pytest.mark.parametrize("design, adjustment", ALLOWED, ids=[f"{d}+{a}" for d, a in ALLOWED])
def test_allowed_combination_with_time_varying_confounders_and_loss(tv_cohort, design, adjustment):
    """Every allowed pair runs on a cohort with visits and roles.censored: fixed schema, JSON-safe aggregate
    diagnostics, and the loss-to-follow-up weights applied (or their absence said) by every adjustment."""
    cohort, frame = tv_cohort
    before = frame.copy(deep=True)
    (spec,) = reg.resolve({"design": design, "adjustment": adjustment})
    try:
        out = spec.build().fit(cohort, "os", Targets(survival_at=(10.0, 20.0), rmst_tau=20.0))
    except EstimationError as err:
        pytest.fail(f"{design}+{adjustment} failed on the time-varying cohort: {err}")
    assert out.estimates
    for e in out.estimates:
        assert e.measure in MEASURES and e.variance_method in VARIANCE_METHODS
    rec = StrategyRecord(spec.label, design, adjustment, "os", out.estimates, out.curves, out.diagnostics,
                         out.warnings, out.notes)
    json.dumps(rec.to_dict(), allow_nan=False)
    assert not _long_lists(out.diagnostics, cohort.n), "diagnostics hold a patient-level vector"
    said = "loss_weights" in out.diagnostics or any("loss-to-follow-up" in w for w in out.warnings)
    assert said or adjustment == "paper", "loss to follow-up neither weighted nor mentioned"
    assert frame.equals(before)


# ---------------------------------------------------------------------------
# outcomes with competing events (issue 21): every allowed pair reports the competing-risks measures
# it supports, never a survival measure, with curves of cumulative incidence
# ---------------------------------------------------------------------------
COMPETING_MEASURES = {"cause_specific_hr", "subdistribution_hr", "cif_difference", "cif_ratio"}


def _expected_competing(design: str, adjustment: str) -> set[str]:
    """The measures a pair reports for an outcome with competing events."""
    if adjustment in ("gformula", "aiptw"):
        return {"cif_difference", "cif_ratio"}
    if adjustment == "paper":
        return {"cause_specific_hr"}
    if design == "time_varying":
        return {"cause_specific_hr"}
    if adjustment == "multivariable":
        return {"cause_specific_hr", "subdistribution_hr"}
    return COMPETING_MEASURES


@pytest.fixture(scope="module")
def competing_frame():
    from competing_data import make_competing_frame

    return make_competing_frame(n=240, seed=7)


@pytest.fixture(scope="module")
def competing_cohort(competing_frame):
    return Cohort(competing_frame, id="patient_no", time="fu_months", event="cause", treatment="operated",
                  treatment_time="months_to_op", confounders=["fit_pt", "stage", "age_y"], competing=[2])


@pytest.mark.parametrize("design, adjustment", ALLOWED, ids=[f"{d}+{a}" for d, a in ALLOWED])
def test_allowed_combination_with_competing_events(competing_cohort, competing_frame, design, adjustment):
    before = competing_frame.copy(deep=True)
    (spec,) = reg.resolve({"design": design, "adjustment": adjustment})
    try:
        out = spec.build().fit(competing_cohort, "os", TARGETS)
    except EstimationError as err:
        pytest.fail(f"{design}+{adjustment} failed on the competing-risks cohort: {err}")
    measures = {e.measure for e in out.estimates}
    assert measures == _expected_competing(design, adjustment), measures
    for e in out.estimates:
        assert e.measure in MEASURES and e.variance_method in VARIANCE_METHODS
        assert 0 < e.n_treated < e.n and 0 < e.events
        if e.measure in ("cause_specific_hr", "subdistribution_hr", "cif_ratio") and math.isfinite(e.estimate):
            assert e.estimate > 0
        if e.measure in ("cif_difference", "cif_ratio"):
            assert e.time in TARGETS.survival_at
        else:
            assert e.time is None
        if math.isfinite(e.ci_lower) and math.isfinite(e.ci_upper):
            assert e.ci_lower <= e.estimate <= e.ci_upper
        est = out.estimands[e.estimand]
        assert est["cause"] == 1 and est["competing_codes"] == [2] and est["competing"]
    if out.curves is not None:
        assert out.curves.kind == "cumulative_incidence"
        f = out.curves.table["surv"].to_numpy()
        lo = -0.05 if adjustment == "aiptw" else 0.0
        assert np.nanmin(f) >= lo and np.nanmax(f) <= 1.0 + (0.05 if adjustment == "aiptw" else 1e-12)
        assert {g.rsplit(": cause ", 1)[1] for g in out.curves.table["group"]} == {"1", "2"}
    rec = StrategyRecord(spec.label, design, adjustment, "os", out.estimates, out.curves, out.diagnostics,
                         out.warnings, out.notes, estimands=out.estimands)
    json.dumps(rec.to_dict(), allow_nan=False)
    assert not _long_lists(out.diagnostics, competing_cohort.n), "diagnostics hold a patient-level vector"
    assert competing_frame.equals(before)
