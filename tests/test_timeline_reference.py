"""Timeline.split / Timeline.at against R: survival::tmerge (event + tdc) and survSplit.

Reference: tests/reference/timeline_tmerge.R -> tests/reference/fixtures/timeline_tmerge.json.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from causal_hcc.cohort import Cohort
from causal_hcc.timeline import attach_visits

FIXTURE = os.path.join(os.path.dirname(__file__), "reference", "fixtures", "timeline_tmerge.json")


@pytest.fixture(scope="module")
def ref():
    with open(FIXTURE, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def cohort(ref):
    pat = pd.DataFrame(ref["patients"])
    pat["a"] = pat["id"] % 2
    vis = pd.DataFrame(ref["visits"]).astype({"ecog": float, "afp": float})
    c = Cohort(pat, id="id", time="fu", event="dead", treatment="a")
    return attach_visits(c, vis, time="month", columns=["ecog", "afp"])


def _ours(cohort, cuts=None):
    T = np.asarray(cohort.time())
    sp = cohort.timeline.split(np.zeros(cohort.n), T, np.arange(cohort.n), cuts=cuts)
    return pd.DataFrame({"id": cohort.ids[sp["row"]], "tstart": sp["start"], "tstop": sp["stop"],
                         "death": np.where(sp["last"], cohort.event()[sp["row"]], 0),
                         "ecog": sp["values"][:, 0], "afp": sp["values"][:, 1]})


@pytest.mark.parametrize("which, cuts", [("tmerge", None), ("split", "cuts")])
def test_split_equals_tmerge_and_survsplit(ref, cohort, which, cuts):
    r = pd.DataFrame(ref[which]).sort_values(["id", "tstart"], kind="stable").reset_index(drop=True)
    ours = _ours(cohort, None if cuts is None else np.asarray(ref["cuts"]))
    assert len(ours) == len(r)
    for col in ("id", "tstart", "tstop", "death"):
        np.testing.assert_array_equal(ours[col].to_numpy(dtype=float), r[col].to_numpy(dtype=float), err_msg=col)
    for col in ("ecog", "afp"):
        np.testing.assert_allclose(ours[col].to_numpy(), r[col].to_numpy(dtype=float), rtol=0, atol=1e-12,
                                   err_msg=col)


def test_at_equals_tmerge_values_at_interval_starts(ref, cohort):
    r = pd.DataFrame(ref["tmerge"])
    rows = pd.Index(cohort.ids).get_indexer(r["id"])
    got = cohort.timeline.at(rows, r["tstart"].to_numpy(dtype=float))
    np.testing.assert_array_equal(got, r[["ecog", "afp"]].to_numpy(dtype=float))
