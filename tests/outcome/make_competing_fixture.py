"""Write the cohort and the design rows that tests/reference/outcome_competing.R analyses in R.

Run from the repository root: ``.venv/bin/python tests/outcome/make_competing_fixture.py``
then ``Rscript tests/reference/outcome_competing.R``. The rows are those the
designs build from ``tests/competing_data.py``'s cohort (codes 0, 1 = cancer
death, 2 = liver failure): R then fits the Aalen-Johansen curves, the
cause-specific Cox and Fine-Gray models on exactly these rows.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from competing_data import make_competing_frame  # noqa: E402

from causal_hcc.cohort import Cohort  # noqa: E402
from causal_hcc.strategies import resolve  # noqa: E402

FX = ROOT / "tests" / "reference" / "fixtures"
CONF = ["fit_pt", "stage", "age_y"]
#: design label -> spec entry (adjustment none: the rows are the design's own)
DESIGNS = {
    "landmark": {"design": "landmark", "landmark": 3},
    "time_varying": {"design": "time_varying"},
    "sequential_trials": {"design": "sequential_trials", "grid": 1.0, "window": 6.0},
    "clone_censor": {"design": "clone_censor", "grace": 6},
    "sequential_trials_pp": {"design": "sequential_trials", "grid": 1.0, "window": 6.0, "analysis": "per_protocol"},
}


def frame() -> pd.DataFrame:
    return make_competing_frame(n=160, seed=5)


def cohort(df: pd.DataFrame | None = None) -> Cohort:
    df = frame() if df is None else df
    return Cohort(df, id="patient_no", time="fu_months", event="cause", treatment="operated",
                  treatment_time="months_to_op", confounders=CONF, competing=[2])


def design_rows(name: str, c: Cohort | None = None) -> pd.DataFrame:
    c = cohort() if c is None else c
    (spec,) = resolve(DESIGNS[name])
    d = spec.build().design.fit(c, "os").data_
    df = pd.DataFrame({"start": d.start, "stop": d.stop, "status": d.status, "arm": d.treatment,
                       "w": d.weight, "patient": d.patient, "unit": d.unit,
                       "trial": d.stratum if d.stratum is not None else 0})
    if d.artificial_censoring is not None:   # designs with artificial censoring (Fine-Gray's G, issue 21)
        df["art"] = d.artificial_censoring.astype(int)
        df["num"] = d.weight_numerator if d.weight_numerator is not None else 1.0
    return df


if __name__ == "__main__":
    df = frame()
    df.to_csv(FX / "outcome_competing_cohort.csv", index=False)
    c = cohort(df)
    for name in DESIGNS:
        design_rows(name, c).to_csv(FX / f"outcome_competing_{name}.csv", index=False, float_format="%.17g")
