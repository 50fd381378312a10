"""Loss to follow-up that depends on a time-varying state which also drives the hazard of the event of interest
(tests/outcome/competing_loss_sim.py): the Aalen-Johansen cumulative incidence that takes loss as independent
censoring is biased; with the loss-to-follow-up IPC weights (roles.censored, time-varying confounder in the loss
model) it recovers the truth within Monte Carlo error.

Fast test: one seeded cohort of 8,000, the truth within 3 of the estimate's own SEs with the weights and not
without. Slow test: 40 cohorts of 2,000, the mean within 3 Monte Carlo SEs of the truth (numbers in
docs/competing_risks.md).
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from competing_loss_sim import simulate, spec, true_cif  # noqa: E402

from causal_hcc.pipeline import run_analysis  # noqa: E402

TIMES = (12.0, 20.0)


@lru_cache(maxsize=None)
def truth():
    return true_cif(TIMES)


def cif_at(pat, vis, censored: bool):
    """(cif, se) per arm at TIMES and the warnings of the run."""
    res = run_analysis(spec(censored), data=pat, visits=vis)
    (r,) = res.records
    assert r.error is None, r.error
    tab = r.curves.table
    out = {}
    for a, arm in ((0, "untreated"), (1, "treated")):
        g = tab[tab.group == f"{arm}: cause 1"].sort_values("time")
        k = np.searchsorted(g.time.to_numpy(), TIMES, side="right") - 1
        out[a] = (g.surv.to_numpy()[k], g.se.to_numpy()[k])
    return out, r


def test_loss_weights_remove_the_bias_of_informative_loss():
    pat, vis = simulate(8000, 7)
    assert 0.3 < pat.lost.mean() < 0.6
    tr = truth()
    w, rec = cif_at(pat, vis, True)
    assert "loss_weights" in rec.diagnostics and not [x for x in rec.warnings if "not applied" in x]
    u, _ = cif_at(pat, vis, False)
    for a in (0, 1):
        z_w = (w[a][0] - tr[a]) / w[a][1]
        z_u = (u[a][0] - tr[a]) / u[a][1]
        assert np.all(np.abs(z_w) < 3), (a, z_w)
        assert z_u[-1] < -3, (a, z_u)        # informative loss: the incidence of cause 1 underestimated


@pytest.mark.slow
def test_loss_weights_monte_carlo():
    tr = truth()
    R = 40
    est = {True: [], False: []}
    for rep in range(R):
        pat, vis = simulate(2000, 1000 + rep)
        for cens in (True, False):
            c, _ = cif_at(pat, vis, cens)
            est[cens].append(np.r_[c[0][0], c[1][0]])
    for cens in (True, False):
        x = np.asarray(est[cens])
        bias = x.mean(axis=0) - np.r_[tr[0], tr[1]]
        mcse = x.std(axis=0, ddof=1) / np.sqrt(R)
        print(f"loss weights={cens}: bias {np.round(bias, 4)} MCSE {np.round(mcse, 4)}")
        if cens:
            assert np.all(np.abs(bias) < 3 * mcse + 0.003), (bias, mcse)   # (+ the truth's own MC error)
        else:
            assert np.all(bias[[1, 3]] < -5 * mcse[[1, 3]]), (bias, mcse)
