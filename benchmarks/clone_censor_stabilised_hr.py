"""Clone-censor's stabilised weights and the Cox HR under non-proportional hazards: brute force (issue 19).

On the twin with a time-varying confounder (``configs/twin_tv.yaml``; population ``all_positivity``:
metastatic stable disease excluded), both potential courses of every patient ("operate at the own date
if within G = 6, else at 6" and "never"), censored by the study's follow-up, are fitted by a weighted
Cox model with the time-only numerators of the stabilised weights as the pseudo-population would carry
them (the denominators are 1: no artificial censoring):

* ``unstab``: no numerator -- the emulated trial's log HR (the twin's truth, -0.115);
* ``stab``: never-treat arm times exp(-H(t)) (Nelson-Aalen of surgery among the alive, unoperated and
  under follow-up), treat arm after G times P(not censored at G) -- the estimator's default;
* ``never only``: the never-treat arm's numerator alone;
* ``const``: the treat arm's P(not censored at G) from time zero (a constant per arm).

Run (about 2 minutes for 8 batches of 50,000)::

    nice -n 10 .venv/bin/python benchmarks/clone_censor_stabilised_hr.py 8

Result (8 batches): unstab -0.1146 (0.0007), stab -0.0757 (0.0009), never only -0.1127 (0.0007),
const -0.1148 (0.0007); P(not censored at G) 0.22-0.26.

The twin's clone-censor HR truth is now ``stab`` where the weights are stabilised (issue 20 item 1;
``twin.truth._CloneCensorNumerator``): -0.0754 (0.0006) at 400,000 patients, and ``unstab`` with
``numerator: none``; ``tests/twin/test_truth_clone_censor_stabilised.py`` repeats this comparison (on
``configs/twin_effect.yaml`` too: brute force -0.0599 (0.0005), truth -0.0594 (0.0003)).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from causal_hcc.config import load_spec  # noqa: E402
from causal_hcc.core.cox import coxph  # noqa: E402
from causal_hcc.design._tv import nelson_aalen  # noqa: E402
from causal_hcc.simstudy import SimulationSpec  # noqa: E402
from causal_hcc.twin.recalibrate import resolve  # noqa: E402
from causal_hcc.twin.truth import Batch  # noqa: E402

spec = load_spec(os.path.join(os.path.dirname(HERE), "configs", "twin_tv.yaml"))
p = resolve(SimulationSpec.from_analysis_spec(spec).twin)
G = 6.0
nb = int(sys.argv[1]) if len(sys.argv) > 1 else 8
res = {'unstab': [], 'stab': [], 'never only': [], 'const': []}
for i in range(nb):
    b = Batch(p, i, 50_000)
    keep = np.flatnonzero(b.covariate('metastatic_sd') == 0)
    s_nat = b.natural_surgery()
    reg = b.outcomes(np.where(s_nat <= G, s_nat, G)); nev = b.never; nat = b.natural
    C = b.pop.followup
    T1 = reg['t_death'][keep]; T0 = nev['t_death'][keep]; Cn = C[keep]
    Tn = nat['t_death'][keep]; sn = s_nat[keep]; tp = nat['t_prog'][keep]
    # numerator: NA of surgery among alive, untreated, under follow-up (natural course)
    ex = np.minimum(np.minimum(Tn, sn), Cn); ev = (sn < np.minimum(Tn, Cn)).astype(np.int8)
    bt, bc = nelson_aalen(ex, ev)
    cuts = np.unique(np.quantile(bt, np.linspace(0, 1, 40)))
    def Hn(t):
        j = np.searchsorted(bt, t, side='right') - 1
        return np.where(j >= 0, bc[np.maximum(j, 0)], 0.0)
    aliveG = np.minimum(Tn, Cn) > G
    dev = aliveG & (sn > G) & (tp > G)
    pN = 1 - dev.sum() / aliveG.sum()
    # treat arm rows
    y1 = np.minimum(T1, Cn); d1 = (T1 <= Cn).astype(np.int8)
    a_ = [np.zeros(keep.size)]; b_ = [np.minimum(y1, G)]; e_ = [np.where(y1 <= G, d1, 0)]; arm = [np.ones(keep.size)]; wS = [np.ones(keep.size)]; wT = [np.ones(keep.size)]
    m = y1 > G
    a_.append(np.full(m.sum(), G)); b_.append(y1[m]); e_.append(d1[m]); arm.append(np.ones(m.sum())); wS.append(np.full(m.sum(), pN)); wT.append(np.full(m.sum(), pN))
    # never arm rows split at cuts, weight exp(-Hn(start))
    y0 = np.minimum(T0, Cn); d0 = (T0 <= Cn).astype(np.int8)
    edges = np.r_[0.0, cuts[cuts > 0]]
    for k in range(edges.size):
        lo = edges[k]; hi = edges[k + 1] if k + 1 < edges.size else np.inf
        mm = y0 > lo
        st = np.full(mm.sum(), lo); sp = np.minimum(y0[mm], hi); e = np.where(y0[mm] <= hi, d0[mm], 0)
        a_.append(st); b_.append(sp); e_.append(e); arm.append(np.zeros(mm.sum())); wS.append(np.exp(-Hn(np.array([lo])))[0] * np.ones(mm.sum())); wT.append(np.ones(mm.sum()))
    A = np.concatenate(a_); B = np.concatenate(b_); E = np.concatenate(e_); Z = np.concatenate(arm)[:, None]
    WS = np.concatenate(wS); WT = np.concatenate(wT)
    ok = B > A
    WN = np.where(Z[:, 0] == 0, WS, 1.0)
    WC = np.where(Z[:, 0] == 1, pN, WS)
    for name, w in (('unstab', np.ones(A.size)), ('stab', WS), ('never only', WN), ('const', WC)):
        f = coxph(B[ok], E[ok], Z[ok], entry=A[ok], weights=w[ok])
        res[name].append(float(np.ravel(f.coef)[0]))
    print(i, {k: round(v[-1], 4) for k, v in res.items()}, 'pN %.3f' % pN, flush=True)
for k, v in res.items():
    v = np.array(v); print(k, 'log HR %.4f (%.4f)' % (v.mean(), v.std(ddof=1) / np.sqrt(len(v))))
