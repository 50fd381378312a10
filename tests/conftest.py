"""Shared fixtures: a small synthetic user cohort with arbitrary column names."""
from __future__ import annotations

import pandas as pd
import pytest

from user_data import USER_SPEC, make_user_frame


@pytest.fixture
def user_frame() -> pd.DataFrame:
    return make_user_frame()


@pytest.fixture
def user_spec(tmp_path, user_frame):
    """(spec path, data path, output dir) for a user CSV run."""
    data = tmp_path / "cohort.csv"
    user_frame.to_csv(data, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER_SPEC.format(path=data))
    return spec, data, tmp_path / "out"
