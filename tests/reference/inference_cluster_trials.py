"""Export the sequential-trial rows of the Stanford heart-transplant data for
tests/reference/inference_cluster.R (run this first, from the repo root).

The rows are our design's output (validated against R elsewhere); R then fits
``coxph(Surv(start, stop, event) ~ trt + strata(trial), cluster = ...)`` on
exactly these rows, so the test compares the Cox fit and its clustered
sandwich, not the design. (The treated are counted from the trial start, as
when the fixture was made: ``treated_from: trial_start``.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from causal_hcc.cohort import Cohort
from causal_hcc.design.sequential_trials import SequentialTrials

FIX = Path(__file__).resolve().parent / "fixtures"


def jasa_cohort(cluster: str | None = None) -> Cohort:
    df = pd.read_csv(FIX / "design_jasa_patients.csv")
    df["centre"] = df["id"] % 12 + 1  # an induced centre: 12 clusters of patients
    return Cohort(df, id="id", time="futime", event="fustat", treatment="transplant", treatment_time="txtime",
                  confounders=["age", "year", "surgery"], cluster=cluster)


def trial_rows() -> pd.DataFrame:
    c = jasa_cohort()
    d = SequentialTrials(treated_from="trial_start").fit(c, "os").data_
    ids = np.asarray(c.ids)[d.patient]
    return pd.DataFrame({"id": ids, "centre": ids % 12 + 1, "trial": d.stratum, "start": d.start,
                         "stop": d.stop, "event": d.event, "trt": d.treatment})


if __name__ == "__main__":
    trial_rows().to_csv(FIX / "inference_jasa_trials.csv", index=False, float_format="%.17g")
