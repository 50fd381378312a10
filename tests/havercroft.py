"""Data simulated from a marginal structural Cox model with time-dependent confounding.

Havercroft WG, Didelez V. Simulating from marginal structural models with
time-dependent confounding. Stat Med 2012;31(30):4190-206 (their algorithm, in
continuous time): a latent health U_0 ~ U(0, 1) sets the death threshold
``-log(1 - U_0) ~ Exp(1)``, so that under any treatment regime the hazard is
exactly ``exp(gamma0 + gamma_A a(t))`` -- the MSM holds with log HR
``gamma_A``, marginally -- while a CD4-like confounder L, measured every K
periods, follows a random walk of U (so it predicts death), drives the
decision to start treatment (the sicker start sooner) and is raised by 150
one check-up after treatment starts (so treatment affects it). A Cox model
that conditions on the current L is therefore biased; IPT weights built
from L are not.

Differences from the paper, documented: event times are continuous (the
hazard is constant within each block of K periods: the paper's discrete
logistic hazard becomes a piecewise-exponential one, so that the truth is a
Cox MSM); a baseline covariate V enters the treatment (and loss) models but
not death; optional loss to follow-up at the end of a block (``loss_at`` = 1;
a fraction of the block otherwise) depends on the current L, treatment and V
(informative censoring, removed by IPC weights).

Shared by the Monte Carlo tests (tests/adjust/test_msm_simulation.py), the R
reference (tests/reference/adjust_msm.R reads the files written by
``write_reference_data``) and the benchmark (benchmarks/bench_time_varying.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import gamma as gamma_dist

#: the paper's treatment-model coefficients (theta0, theta1 per period, theta2 per unit of L - 500)
THETA = (-0.405, 0.0205, -0.00405)
#: log hazard per period untreated, and the true marginal structural log HR of treatment
GAMMA0, GAMMA_A = -3.0, -0.5


def simulate(n: int, seed: int, *, K: int = 5, blocks: int = 8, theta=THETA, theta_v: float = 0.3,
             gamma0: float = GAMMA0, gamma_a: float = GAMMA_A, loss: bool = False,
             loss_coef=(-2.6, -0.004, 0.5, 0.3), loss_at: float = 1.0,
             latent: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(patients, visits)``: one row per patient (``id, time, event, treated, treatment_time, v, lost``)
    and one row per check-up while under follow-up (``id, time, L``); ``latent`` adds the death
    threshold ``-log(1 - U_0)`` (column ``threshold``) for computing counterfactual truths."""
    rng = np.random.default_rng(seed)
    U = rng.uniform(size=n)
    threshold = -np.log1p(-U)
    V = rng.normal(size=n)
    L = np.maximum(gamma_dist.ppf(U, 3, scale=154) + rng.normal(0, 20, n), 0.0)
    Tend = float(K * blocks)
    time = np.full(n, Tend)
    event = np.zeros(n, dtype=np.int8)
    lost = np.zeros(n, dtype=np.int8)
    tstar = np.full(n, np.inf)
    done = np.zeros(n, dtype=bool)
    lam = np.zeros(n)
    a_prev = np.zeros(n, dtype=bool)    # treated at the previous check-up
    a_prev2 = np.zeros(n, dtype=bool)   # ... and the one before
    Ut = U.copy()
    vid, vt, vl = [], [], []
    for b in range(blocks):
        t0 = float(b * K)
        if b > 0:
            for _ in range(K):
                Ut = np.clip(Ut + rng.normal(0, 0.05, n), 0.0, 1.0)
            eps = rng.normal(100 * (Ut - 2), 50)
            L = np.maximum(L + 150 * (a_prev & ~a_prev2) + eps, 0.0)
        alive = ~done
        vid.append(np.flatnonzero(alive)), vt.append(np.full(int(alive.sum()), t0)), vl.append(L[alive])
        untreated = alive & ~np.isfinite(tstar)
        p = 1 / (1 + np.exp(-(theta[0] + theta[1] * t0 + theta[2] * (L - 500) + theta_v * V)))
        start = untreated & (rng.uniform(size=n) < p)
        tstar[start] = t0
        A = np.isfinite(tstar) & (tstar <= t0)
        rate = np.exp(gamma0 + gamma_a * A)
        need = (threshold - lam) / rate                     # time until death at this block's rate
        t_loss = np.full(n, np.inf)
        if loss:
            c = loss_coef
            pl = 1 / (1 + np.exp(-(c[0] + c[1] * (L - 500) + c[2] * A + c[3] * V)))
            t_loss = np.where(rng.uniform(size=n) < pl, loss_at * K, np.inf)
        dies = alive & (need <= K) & (need <= t_loss)
        goes = alive & ~dies & np.isfinite(t_loss)
        time[dies] = t0 + need[dies]
        event[dies] = 1
        time[goes] = t0 + t_loss[goes]
        lost[goes] = 1
        done |= dies | goes
        lam += rate * K
        a_prev2, a_prev = a_prev, A
    treated = np.isfinite(tstar) & (tstar < time)
    pts = pd.DataFrame({"id": np.arange(1, n + 1), "time": time, "event": event, "treated": treated.astype(int),
                        "treatment_time": np.where(treated, tstar, np.nan), "v": V, "lost": lost})
    if latent:
        pts["threshold"] = threshold
    vis = pd.DataFrame({"id": np.concatenate(vid) + 1, "time": np.concatenate(vt), "L": np.concatenate(vl)})
    vis = vis.sort_values(["id", "time"], kind="stable").reset_index(drop=True)
    vis = vis[vis["time"] < pts["time"].to_numpy()[vis["id"].to_numpy() - 1]].reset_index(drop=True)
    return pts, vis
