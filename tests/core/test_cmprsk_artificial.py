"""Fine-Gray with the censoring distribution of the real censoring only (issue 21).

``finegray(..., artificial=, censoring_weighted=)``: artificially censored rows (deviations
handled by IPC weights) stay in the risk set of the censoring distribution G but are not
censoring events; ``censoring_weighted`` estimates G with the case weights. A hand-checked
example, then R (fixtures from tests/reference/core_cmprsk_artificial.R: G by hand and
survfit, one row per later event time, coxph(weights, cluster); the construction itself is
checked against finegray() + coxph in that script). Tolerance 1e-9 or tighter.
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from causal_hcc.core.cmprsk import fine_gray, finegray
from causal_hcc.errors import DataError
from tests.core._fixtures import FIXTURES

# five patients, one row each: a competing event at 1, an artificial censoring at 2, real censorings
# at 3 and 5, the event of interest at 4
T = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
S = np.array([2, 0, 0, 1, 0])
ART = np.array([False, True, False, False, False])


def _rows(fg):
    return [(int(r), a, b, int(s), w) for r, a, b, s, w in zip(fg.row, fg.start, fg.stop, fg.status, fg.weight)]


def test_hand_r_default_counts_the_artificial_censoring():
    # R finegray: G from the censorings at 2, 3, 5: G(2) = 3/4, G(3) = 3/4 * 2/3 = 1/2. The competing
    # patient's row is extended to the first censoring time (2) with weight 1; of the added intervals
    # (2, 3] (no event of cause 1: dropped) and (3, 5] (holds the event at 4) the latter is kept with
    # weight G(3) / G(1-) = 1/2
    fg = finegray(T, S)
    assert _rows(fg)[0] == (0, 0.0, 2.0, 0, 1.0)
    assert (0, 3.0, 5.0, 0, 0.5) in _rows(fg)
    assert len(fg.row) == 6


def test_hand_artificial_censoring_is_not_a_censoring_event():
    # the patient censored artificially at 2 leaves G's risk set without being a censoring: G jumps at
    # 3 only, by 1 - 1/3 (at risk at 3: patients 3, 4, 5), so the competing patient weighs 2/3 on (3, 5]
    fg = finegray(T, S, artificial=ART)
    rows = _rows(fg)
    assert rows[0] == (0, 0.0, 3.0, 0, 1.0)
    ext = [r for r in rows if r[0] == 0 and r[1] >= 3.0]
    assert len(ext) == 1 and ext[0][:4] == (0, 3.0, 5.0, 0)
    assert ext[0][4] == pytest.approx(2 / 3, abs=1e-15)


def test_hand_censoring_distribution_weighted():
    # case weights 1, 1, 2, 1, 1: the weighted G at 3 is 1 - 2 / (2 + 1 + 1) = 1/2; without
    # censoring_weighted the weights only multiply the rows (G stays 2/3)
    w = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    fgw = finegray(T, S, weights=w, artificial=ART, censoring_weighted=True)
    ext = [r for r in _rows(fgw) if r[0] == 0 and r[1] >= 3.0]
    assert ext[0][4] == pytest.approx(0.5, abs=1e-15)
    fgu = finegray(T, S, weights=w, artificial=ART)
    ext = [r for r in _rows(fgu) if r[0] == 0 and r[1] >= 3.0]
    assert ext[0][4] == pytest.approx(2 / 3, abs=1e-15)


def test_defaults_unchanged():
    """No artificial rows and unit weights: exactly R's finegray (also with censoring_weighted)."""
    a, b = finegray(T, S), finegray(T, S, artificial=np.zeros(5, bool), censoring_weighted=True)
    assert _rows(a) == _rows(b)


def test_bad_artificial():
    with pytest.raises(DataError, match="row 3 is marked as artificially censored but has an event"):
        finegray(T, S, artificial=[False, True, False, True, False])
    with pytest.raises(DataError, match="artificial must be true/false"):
        finegray(T, S, artificial=[0, 2, 0, 0, 0])
    # (start, stop] rows: only a subject's last row can end in its censoring
    with pytest.raises(DataError, match="row 0 is marked as artificially censored but is not its subject's last"):
        finegray([1.0, 2.0, 3.0], [0, 0, 1], entry=[0.0, 1.0, 0.0], id=[1, 1, 2], artificial=[True, False, False])
    x = np.array([[0.0], [1.0], [0.0], [1.0], [1.0]])
    with pytest.raises(DataError, match="artificial"):
        fine_gray(T, S, x, artificial=np.ones(4, bool))
    assert ART.tolist() == [False, True, False, False, False]   # input untouched


# ------------------------------------------------------------------------------------------- R
@lru_cache(maxsize=None)
def ref() -> dict:
    return json.loads((FIXTURES / "core_cmprsk_artificial.json").read_text())


@lru_cache(maxsize=None)
def data() -> pd.DataFrame:
    d = pd.read_csv(FIXTURES / "core_mgus2_cr.csv")
    d["art"] = (d.event == 0) & (d.id % 5 < 2)
    return d


CASES = {
    "art": {},
    "art_weights": {"weights": "w"},
    "art_weighted_G": {"weights": "w", "censoring_weighted": True},
    "art_strata": {"strata": "strat"},
}


def _kw(case):
    d = data()
    return {k: (v if isinstance(v, bool) else d[v].to_numpy()) for k, v in CASES[case].items()}


@pytest.mark.parametrize("method", ["direct", "expand"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fine_gray_real_censoring_equals_r(case, method):
    d = data()
    fit = fine_gray(d.etime.to_numpy(), d.event.to_numpy(), d[["age", "sex", "hgb"]].to_numpy(),
                    cluster=d.id.to_numpy(), artificial=d.art.to_numpy(), method=method, **_kw(case))
    r = ref()[case]
    np.testing.assert_allclose(fit.coef, r["coef"], atol=1e-9)
    np.testing.assert_allclose(fit.var_robust, np.asarray(r["var"]), atol=1e-10)
    # and it differs from R's default, which counts the artificial censorings in G
    if case == "art":
        assert np.max(np.abs(fit.coef - np.asarray(ref()["r_default"]["coef"]))) > 1e-4


@pytest.mark.parametrize("case", sorted(CASES))
def test_finegray_weights_equal_r(case):
    """The weight of every competing-event subject at every later event time of cause 1."""
    d = data()
    fg = finegray(d.etime.to_numpy(), d.event.to_numpy(), artificial=d.art.to_numpy(), **_kw(case))
    r = ref()[case]["rows"]
    ids = d.id.to_numpy()
    pos = {int(i): k for k, i in enumerate(ids)}
    assert len(r["id"]) > 100
    for i, u, wt in zip(r["id"], r["stop"], r["wt"]):
        m = (fg.row == pos[int(i)]) & (fg.start < u) & (fg.stop >= u)
        assert m.sum() == 1, (i, u)
        assert fg.weight[m][0] == pytest.approx(wt, rel=1e-12, abs=1e-15), (i, u)
