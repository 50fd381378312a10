"""Shared fixtures: a small synthetic user cohort with arbitrary column names."""
from __future__ import annotations

import pandas as pd
import pytest

from user_data import make_user_frame


@pytest.fixture
def user_frame() -> pd.DataFrame:
    return make_user_frame()


USER_SPEC = """\
study: user-demo
data:
  path: {path}
roles:
  id: patient_no
  time: fu_months
  event: died
  treatment: operated
  treatment_time: months_to_op
  cluster: hospital
confounders: [fit_pt, stage, age_y]
strategies:
  - paper
  - naive
  - multivariable
estimands: {{survival_at: [12, 24], rmst_tau: 24}}
bootstrap: {{replicates: 20, seed: 1}}
"""


@pytest.fixture
def user_spec(tmp_path, user_frame):
    """(spec path, data path, output dir) for a user CSV run."""
    data = tmp_path / "cohort.csv"
    user_frame.to_csv(data, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER_SPEC.format(path=data))
    return spec, data, tmp_path / "out"
