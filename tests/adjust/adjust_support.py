"""Shared fixtures of the adjustment tests: survival::gbsg and the R reference numbers."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from causal_hcc.base import DesignData, Targets

FX = os.path.join(os.path.dirname(__file__), "..", "reference", "fixtures")
CONF = ["age", "meno", "size", "grade", "nodes", "pgr", "er"]
TIMES = (365.0, 1095.0, 1825.0)
TAU = 1825.0


def design_from_frame(d: pd.DataFrame, time="rfstime", event="status", treatment="hormon",
                      conf=CONF) -> DesignData:
    n = len(d)
    idx = np.arange(n)
    return DesignData(design="baseline", outcome="rfs", start=np.zeros(n), stop=d[time].to_numpy(float),
                      event=d[event].to_numpy(np.int8), treatment=d[treatment].to_numpy(np.int8),
                      X=d[list(conf)].to_numpy(float), confounders=list(conf), patient=idx, unit=idx,
                      weight=np.ones(n))


@pytest.fixture(scope="session")
def gbsg_frame() -> pd.DataFrame:
    return pd.read_csv(os.path.join(FX, "adjust_gbsg.csv"))


@pytest.fixture()
def gbsg(gbsg_frame) -> DesignData:
    return design_from_frame(gbsg_frame)


@pytest.fixture(scope="session")
def gbsg_untied_frame() -> pd.DataFrame:
    return pd.read_csv(os.path.join(FX, "adjust_gbsg_untied.csv"))


@pytest.fixture(scope="session")
def ref() -> dict:
    with open(os.path.join(FX, "adjust_gbsg.json"), encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def targets() -> Targets:
    return Targets(survival_at=TIMES, rmst_tau=TAU)


def psm_ref(name: str) -> tuple[pd.DataFrame, dict]:
    with open(os.path.join(FX, f"adjust_psm_{name}.json"), encoding="utf-8") as fh:
        return pd.read_csv(os.path.join(FX, f"adjust_psm_{name}.csv")), json.load(fh)


def estimate(out, measure, time=None):
    hits = [e for e in out.estimates if e.measure == measure and (time is None or e.time == time)]
    assert len(hits) == 1, (measure, time, [(e.measure, e.time) for e in out.estimates])
    return hits[0]


def curve_at(curves, group, t):
    tab = curves.table[curves.table["group"] == group]
    row = tab[tab["time"] <= t].iloc[-1]
    return float(row["surv"]), float(row["se"])
