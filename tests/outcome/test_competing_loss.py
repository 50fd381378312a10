"""Loss-to-follow-up weights (roles.censored) for outcomes with competing events (issues 19 item 3(d), 21).

* by hand: a tiny cohort with hand-set loss weights (the split rows, the codes on the last piece, the
  artificial censoring of the loss, the numerator; Aalen-Johansen and Fine-Gray weights by hand);
* against R (tests/reference/outcome_competing_loss.R on the rows of
  tests/outcome/make_competing_loss_fixture.py): cause-specific Cox, multi-state survfit, Fine-Gray with the
  real-censoring G built by hand; tolerance 1e-6 (achieved ~1e-10).
"""
from __future__ import annotations

import json
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_competing_loss_fixture import DESIGNS, cohort, design_data, loss_rows  # noqa: E402

from causal_hcc.base import Targets  # noqa: E402
from causal_hcc.config import parse_spec  # noqa: E402
from causal_hcc.core.cmprsk import fine_gray, finegray  # noqa: E402
from causal_hcc.design import _tv  # noqa: E402
from causal_hcc.outcome.effects import estimate_effects  # noqa: E402
from causal_hcc.pipeline import check  # noqa: E402
from tests.core._fixtures import FIXTURES  # noqa: E402

TARGETS = Targets(survival_at=(12.0, 24.0), rmst_tau=24.0)


def _get(out, measure, time=None):
    hits = [e for e in out.estimates if e.measure == measure and (time is None or e.time == time)]
    assert len(hits) == 1, (measure, time, [(e.measure, e.time) for e in out.estimates])
    return hits[0]


# ------------------------------------------------------------------------------------------ by hand
#: arm 0: A cause 1 at 0.5, C cause 2 at 1.5, B lost at 2.5, D cause 1 at 3.5, H administratively censored at 4;
#: arm 1: E cause 1 at 1.2, F cause 2 at 2.2, G censored at 3.0, I cause 1 at 3.8. Grid 1.
TINY = pd.DataFrame({"id": list("ACBDHEFGI"), "t": [0.5, 1.5, 2.5, 3.5, 4.0, 1.2, 2.2, 3.0, 3.8],
                     "cause": [1, 2, 0, 1, 0, 1, 2, 0, 1], "lost": [0, 0, 1, 0, 0, 0, 0, 0, 0],
                     "a": [0, 0, 0, 0, 0, 1, 1, 1, 1], "x": [1, 0, 1, 0, 1, 0, 1, 0, 1]})


def _tiny_data():
    spec = {"study": "tiny", "roles": {"id": "id", "time": "t", "event": "cause", "treatment": "a",
                                       "censored": "lost"},
            "competing": [2], "confounders": ["x"], "strategies": ["naive"], "bootstrap": {"replicates": 0},
            "sensitivity": {"evalues": False}}
    c, strategies = check(parse_spec(spec), data=TINY)
    d = strategies[0].build(default_confounders=None).design.fit(c, "os").data_
    d.cohort = c
    return c, d


def _hand_weights(c):
    """Hand-set loss weights, grid 1: D stands in for B (lost at 2.5) from t = 3 on with weight 2, H with 1;
    stabilised by a numerator 0.9 from t = 3 on (w = num / P(uncensored)): D 1.8, H 0.9; everyone else 1."""
    T = np.asarray(c.time(), dtype=float)
    cnt = np.ceil(T).astype(np.int64)
    w, num = [], []
    for i, pid in enumerate(c.ids):
        for k in range(cnt[i]):
            late = k >= 3 and pid in ("D", "H")
            w.append((1.8 if pid == "D" else 0.9) if late else 1.0)
            num.append(0.9 if late else 1.0)
    off = np.r_[0, np.cumsum(cnt)[:-1]]
    return _tv.LossWeights(1.0, off, cnt, np.asarray(w), {"model": "by hand"}, ["hand-set loss weights"], [],
                           np.asarray(num))


def test_split_rows_by_hand(monkeypatch):
    c, d = _tiny_data()
    monkeypatch.setattr(_tv, "fit_loss_weights", lambda cohort, **kw: _hand_weights(cohort))
    new, lw, r = _tv.loss_weights(d)
    ids = np.asarray(c.ids)[new.patient]
    # one piece per grid interval; the codes on the last piece only
    assert list(new.stop[ids == "D"]) == [1.0, 2.0, 3.0, 3.5]
    assert list(new.status[ids == "D"]) == [0, 0, 0, 1]
    assert list(new.event[ids == "D"]) == [0, 0, 0, 1]
    assert list(new.status[ids == "C"]) == [0, 2]
    # the loss is the only artificial censoring; H's administrative censoring is real
    assert list(ids[new.artificial_censoring]) == ["B"]
    assert new.artificial_censoring[ids == "B"].tolist() == [False, False, True]
    np.testing.assert_allclose(new.weight[ids == "D"], [1, 1, 1, 1.8])
    np.testing.assert_allclose(new.weight_numerator[ids == "H"], [1, 1, 1, 0.9])
    np.testing.assert_allclose(new.weight[ids == "E"], [1, 1])
    assert d.artificial_censoring is None and d.n_rows == 9     # the input is untouched


def test_competing_effects_by_hand(monkeypatch):
    """Aalen-Johansen in arm 0 (A, C, B, D, H): F1(0.5) = 1/5; F2(1.5) = 4/5 * 1/4 = 1/5; B lost at 2.5; at 3.5
    D (1.8) of D + H (2.7): F1 = 1/5 + 3/5 * 2/3 = 3/5 (the numerator 0.9 cancels; unweighted: 1/5 + 3/5 * 1/2).
    Fine-Gray: C (competing event at 1.5) stays in the risk set of D's event at 3.5 with weight
    G(3.5-)/G(1.5-): G of the real censoring only, weighted (D, H, G, I at risk at 3.0, where G is censored, all
    with weight 1 on (2, 3]): 1 - 1/4 = 3/4. R's finegray() counts B's loss too:
    (1 - 1/5) at 2.5 (B, D, H, G, I at risk) x (1 - 1/4) at 3.0 = 3/5."""
    c, d = _tiny_data()
    monkeypatch.setattr(_tv, "fit_loss_weights", lambda cohort, **kw: _hand_weights(cohort))
    out = estimate_effects(d, Targets(survival_at=(3.9,)))
    assert not [w for w in out.warnings if "not applied" in w]
    assert out.diagnostics["loss_weights"] == {"model": "by hand"}
    assert "hand-set loss weights" in out.notes
    tab = out.curves.table
    g = tab[tab.group == "untreated: cause 1"].set_index("time").surv
    assert g.loc[0.5] == pytest.approx(0.2, abs=1e-12) and g.loc[3.5] == pytest.approx(0.6, abs=1e-12)
    g2 = tab[tab.group == "untreated: cause 2"].set_index("time").surv
    assert g2.loc[1.5] == pytest.approx(0.2, abs=1e-12)
    # the treated arm: E 1/4 at 1.2; F 3/4 * 1/3 at 2.2; G censored at 3; I 1/2 * 1 at 3.8: F1 = 3/4
    assert _get(out, "cif_difference", 3.9).estimate == pytest.approx(0.75 - 0.6, abs=1e-12)
    # Fine-Gray weights of the split rows: the unstabilised loss weights, G of the real censoring only
    new, _, _ = _tv.loss_weights(d)
    wu = new.weight / new.weight_numerator
    fg = finegray(new.stop, new.status, entry=new.start, id=new.unit, weights=wu,
                  artificial=new.artificial_censoring, censoring_weighted=True)
    ids = np.asarray(c.ids)[new.patient]
    c_ext = (ids[fg.row] == "C") & (fg.add > 0) & (fg.stop >= 3.5) & (fg.start < 3.5)
    assert fg.weight[c_ext].tolist() == pytest.approx([0.75], abs=1e-12)
    r_fg = finegray(new.stop, new.status, entry=new.start, id=new.unit, weights=new.weight)
    c_ext = (ids[r_fg.row] == "C") & (r_fg.add > 0) & (r_fg.stop >= 3.5) & (r_fg.start < 3.5)
    assert r_fg.weight[c_ext].tolist() == pytest.approx([0.6], abs=1e-12)
    direct = fine_gray(new.stop, new.status, new.treatment.astype(float)[:, None], entry=new.start, id=new.unit,
                       weights=wu, cluster=new.patient, artificial=new.artificial_censoring,
                       censoring_weighted=True)
    e = _get(out, "subdistribution_hr")
    assert math.log(e.estimate) == pytest.approx(float(direct.coef[0]), abs=1e-12)
    assert any("real censoring only" in n and "unstabilised" in n for n in out.notes)


def test_nobody_lost_changes_nothing():
    tiny = TINY.assign(lost=0)
    spec = {"study": "tiny", "roles": {"id": "id", "time": "t", "event": "cause", "treatment": "a",
                                       "censored": "lost"}, "competing": [2], "confounders": ["x"],
            "strategies": ["naive"], "bootstrap": {"replicates": 0}}
    c0, st = check(parse_spec(spec), data=tiny)
    d0 = st[0].build(default_confounders=None).design.fit(c0, "os").data_
    d0.cohort = c0
    a = estimate_effects(d0, Targets(survival_at=(3.9,)))
    b = estimate_effects(d0, Targets(survival_at=(3.9,)), loss_weights=False)
    for m in ("cause_specific_hr", "subdistribution_hr"):
        assert _get(a, m).estimate == pytest.approx(_get(b, m).estimate, rel=1e-12)
    assert _get(a, "cif_difference", 3.9).estimate == pytest.approx(_get(b, "cif_difference", 3.9).estimate,
                                                                     abs=1e-14)
    assert any("nobody is lost" in n for n in a.notes)


# ------------------------------------------------------------------------------------------ against R
@lru_cache(maxsize=None)
def ref() -> dict:
    return json.loads((FIXTURES / "outcome_competing_loss.json").read_text())


@lru_cache(maxsize=None)
def _cohort():
    return cohort()


@lru_cache(maxsize=None)
def fitted(name: str):
    return estimate_effects(design_data(name, _cohort()), TARGETS)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_fixture_rows_are_the_loss_weighted_rows(name):
    stored = pd.read_csv(FIXTURES / f"outcome_competing_loss_{name}.csv")
    pd.testing.assert_frame_equal(loss_rows(name, _cohort()), stored, check_dtype=False, rtol=1e-12)
    assert ref()[name]["n_rows"] == len(stored) and ref()[name]["n_artificial"] == int(stored.art.sum())


@pytest.mark.parametrize("name", list(DESIGNS))
def test_cause_specific_hr_against_r(name):
    r = ref()[name]["csc"]
    e = _get(fitted(name), "cause_specific_hr")
    assert math.log(e.estimate) == pytest.approx(r["coef"], abs=1e-6)
    assert e.se == pytest.approx(r["se"], abs=1e-6)
    assert e.variance_method == "cluster_robust"


@pytest.mark.parametrize("name", list(DESIGNS))
def test_subdistribution_hr_against_r(name):
    """Fine-Gray with G of the real censoring (losses and deviations artificial) and unstabilised weights;
    R's finegray() on the same rows (G of every censoring, stabilised weights) gives another answer."""
    r = ref()[name]
    e = _get(fitted(name), "subdistribution_hr")
    assert math.log(e.estimate) == pytest.approx(r["fg"]["coef"], abs=1e-6)
    assert e.se == pytest.approx(r["fg"]["se"], abs=1e-6)
    assert abs(r["fg"]["coef"] - r["fg_rfinegray"]["coef"]) > 0.02


@pytest.mark.parametrize("name", ["naive", "clone_censor"])
def test_cumulative_incidence_against_r(name):
    r = ref()[name]["cif"]
    out = fitted(name)
    tab = out.curves.table
    infl = {}
    names = design_data(name, _cohort()).arm_names
    for a, arm in ((0, "untreated"), (1, "treated")):
        g = tab[tab.group == f"{names[a]}: cause 1"].sort_values("time")
        k = np.searchsorted(g.time.to_numpy(), TARGETS.survival_at, side="right") - 1
        np.testing.assert_allclose(g.surv.to_numpy()[k], r[arm]["cif"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(g.se.to_numpy()[k], r[arm]["se_patient"], atol=1e-6, rtol=0)
        infl[a] = pd.DataFrame(np.asarray(r[arm]["influence"]), index=r[arm]["patient"])
    diff = infl[1].sub(infl[0], fill_value=0.0)
    se = np.sqrt((diff ** 2).sum(axis=0)).to_numpy()
    for j, t in enumerate(TARGETS.survival_at):
        e = _get(out, "cif_difference", t)
        assert e.estimate == pytest.approx(r["treated"]["cif"][j] - r["untreated"]["cif"][j], abs=1e-6)
        assert e.se == pytest.approx(se[j], abs=1e-6)


def test_loss_weights_reported():
    out = fitted("naive")
    assert out.diagnostics["loss_weights"]["lost_to_follow_up"] == int(_cohort().timeline.censored.sum())
    assert any(n.startswith("loss-to-follow-up (IPC) weights") for n in out.notes)
    assert not [w for w in out.warnings if "not applied" in w]
