"""Simulated cohort for loss-to-follow-up weights with competing events (test_competing_loss_simulation.py).

Monthly assessments k = 0, 1, ... measure a binary time-varying state ``L`` (e.g. decompensation): ``L_0 ~
Bernoulli(0.3)``, then 0 -> 1 with probability 0.08 a month (never back). Within month k the hazards are
constant: cause 1 (the event of interest) ``0.02 exp(1.2 L_k - 0.5 A)``, cause 2 (competing) ``0.015``.
Treatment ``A`` is randomised at time zero. A patient still event-free at the end of month k is lost to follow-up
then with probability ``expit(-4.5 + 2.5 L_k)`` (loss at the assessment, ``lost = 1``); follow-up ends at 24 months.
Loss depends on the state that drives the cause-1 hazard, so the Aalen-Johansen curves that take loss as
independent censoring underestimate the cumulative incidence of cause 1; IPC weights with ``L`` in the loss model
(pooled logistic, correctly specified: logit linear in ``L``) recover it. The truth (no loss) is the same
simulation without loss.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

H1, B_L, B_A, H2, P_L, Q0, LOSS = 0.02, 1.2, -0.5, 0.015, 0.3, 0.08, (-4.5, 2.5)
MONTHS = 24


def simulate(n: int, seed: int, loss: bool = True):
    """Returns (patients, visits): patients with columns id, A, L0, time, cause, lost; visits id, month, L."""
    rng = np.random.default_rng(seed)
    A = rng.integers(0, 2, n)
    L = (rng.random(n) < P_L).astype(int)
    L0 = L.copy()
    time = np.full(n, float(MONTHS))
    cause = np.zeros(n, dtype=int)
    lost = np.zeros(n, dtype=int)
    alive = np.ones(n, dtype=bool)
    vid, vmon, vL = [], [], []
    for k in range(MONTHS):
        idx = np.flatnonzero(alive)
        vid.append(idx), vmon.append(np.full(idx.size, k)), vL.append(L[idx].copy())
        h1 = H1 * np.exp(B_L * L[idx] + B_A * A[idx])
        h = h1 + H2
        u = rng.exponential(1.0, idx.size) / h
        ev = u < 1.0
        time[idx[ev]] = k + u[ev]
        cause[idx[ev]] = np.where(rng.random(ev.sum()) < h1[ev] / h[ev], 1, 2)
        alive[idx[ev]] = False
        if loss and k < MONTHS - 1:
            idx = np.flatnonzero(alive)
            p = 1 / (1 + np.exp(-(LOSS[0] + LOSS[1] * L[idx])))
            gone = rng.random(idx.size) < p
            time[idx[gone]] = k + 1.0
            lost[idx[gone]] = 1
            alive[idx[gone]] = False
        idx = np.flatnonzero(alive)
        L[idx] = np.maximum(L[idx], (rng.random(idx.size) < Q0).astype(int))
    pat = pd.DataFrame({"id": np.arange(n), "A": A, "L0": L0, "time": time, "cause": cause, "lost": lost})
    vis = pd.DataFrame({"id": np.concatenate(vid), "month": np.concatenate(vmon).astype(float),
                        "L": np.concatenate(vL)}).sort_values(["id", "month"], kind="stable").reset_index(drop=True)
    return pat, vis


def true_cif(times, n: int = 400_000, seed: int = 2024) -> dict[int, np.ndarray]:
    """Cumulative incidence of cause 1 at ``times`` per arm without loss (Monte Carlo, ``n`` per arm)."""
    out = {}
    for a in (0, 1):
        pat, _ = simulate(n, seed + a, loss=False)
        pat = pat[pat.A == a]
        t = pat.time.to_numpy()
        c1 = pat.cause.to_numpy() == 1
        out[a] = np.array([float(np.mean(c1 & (t <= s))) for s in times])
    return out


def spec(censored: bool = True) -> dict:
    roles = {"id": "id", "time": "time", "event": "cause", "treatment": "A"}
    if censored:
        roles["censored"] = "lost"
    return {"study": "loss-sim", "roles": roles, "competing": [2], "confounders": ["L0"],
            "visits": {"id": "id", "time": "month", "columns": ["L"]}, "time_varying_confounders": ["L"],
            "strategies": ["naive"], "estimands": {"survival_at": [12, 24]}, "bootstrap": {"replicates": 0},
            "sensitivity": {"evalues": False}}
