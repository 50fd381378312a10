"""No empty (NaN) estimate leaves the pipeline without a warning and a reason in its row's notes (issue 18).

Every registered design x adjustment runs on a cohort with few events (medians
never reached) and a target time after the end of follow-up; every non-finite
estimate must be named, with its time, in the notes of its record in
results.json, and the run's warnings must point there.
"""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from causal_hcc.pipeline import run_analysis
from causal_hcc.strategies import ADJUSTMENTS, DESIGNS, load

from user_data import make_user_frame


def _all_combinations() -> list[dict]:
    load()
    out = []
    for d, a in itertools.product(sorted(DESIGNS), sorted(ADJUSTMENTS)):
        if a in (getattr(DESIGNS[d], "incompatible", {}) or {}) or d in (getattr(ADJUSTMENTS[a], "incompatible",
                                                                                 {}) or {}):
            continue
        out.append({"design": d, "adjustment": a, **({"landmark": 3} if d == "landmark" else {})})
    return out


@pytest.fixture(scope="module")
def result():
    df = make_user_frame(200, seed=5)
    df["died"] = np.where(np.arange(len(df)) % 7 == 0, df["died"], 0)  # few events: no median is reached
    spec = {"study": "empty", "roles": {"id": "patient_no", "time": "fu_months", "event": "died",
                                        "treatment": "operated", "treatment_time": "months_to_op"},
            "confounders": ["fit_pt", "stage", "age_y"], "strategies": _all_combinations(),
            "estimands": {"survival_at": [12, 200], "rmst_tau": 24}, "bootstrap": {"replicates": 0},
            "on_error": "record", "report": {"min_cell": 0}}
    return run_analysis(spec, data=df)


def test_every_empty_estimate_has_a_reason_and_a_warning(result):
    saved = json.loads(json.dumps(result.to_dict(), default=str))  # results.json's content
    records = {(r["strategy"], r["outcome"]): r for r in saved["records"]}
    n_empty = 0
    for rec in result.records:
        if rec.error:
            continue
        empty = [e for e in rec.estimates if not math.isfinite(e.estimate)]
        n_empty += len(empty)
        notes = " ".join(records[(rec.strategy, rec.outcome)]["notes"])
        for e in empty:
            words = e.measure.replace("_", " ") + (f" at {e.time:g}" if e.time is not None else "")
            assert words in notes.lower(), (rec.strategy, words, notes)
        if empty:
            assert any(w.startswith(f"strategy '{rec.strategy}', outcome '{rec.outcome}': {len(empty)} empty")
                       for w in result.warnings), rec.strategy
    assert n_empty >= 10  # the cohort does produce empty estimates (medians, survival at 200)


def test_the_reasons_say_why(result):
    naive = [r for r in result.records if r.strategy == "naive"][0]
    notes = " ".join(naive.notes)
    assert "survival difference at 200: not estimable: the untreated curve ends at " in notes
    assert "median difference: not estimable: the untreated curve does not fall to 0.5 (lowest survival " in notes
