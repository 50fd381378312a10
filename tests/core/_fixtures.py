"""Load the R reference fixtures written by tests/reference/core_cox.R."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "reference" / "fixtures"


@lru_cache(maxsize=None)
def dataset(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / f"core_{name}.csv")


@lru_cache(maxsize=None)
def reference(kind: str) -> dict:
    return json.loads((FIXTURES / f"core_{kind}.json").read_text())


def listify(x) -> list:
    return [x] if isinstance(x, str) else list(x)
