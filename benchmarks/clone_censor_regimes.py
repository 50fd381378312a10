"""Which regime do clone-censor's grace-period weights target? Brute force on the twin (issue 19).

Clone-censor's "treat within G" arm censors at G the clones not operated by G and lets clones
operated within grace stand for them (weights ``1 / P(treated by G | z)`` among the clones that
could be censored at G). The twin's truth (:func:`causal_hcc.twin.truth.family_clone_censor`) is
the deterministic regime "operate at the patient's own (natural-course) date if within G, else at
G, while alive and progression-free". This script computes, from the twin's potential outcomes
(no censoring, common random numbers), the treat arm's survival under

* ``regime``: the truth's regime;
* ``swap on x``: the population limit of the weights with ``z`` = the baseline confounders (the
  weights without ``time_varying_confounders``): the natural course until G, then the course
  after G of the patients operated within grace, reweighted within cells of ``x`` to everyone
  alive and progression-free at G (the random regime of Cain et al. 2010);
* ``swap on (x, l(G))``: the same with cells of ``x`` and the performance status at G
  (``grace_weights: state``, saturated);
* ``swap on (x, l(G)), last interval``: only those not operated by ``G - h`` are swapped, with the
  patients operated in ``(G - h, G]`` (``grace_weights: last_interval``, saturated);

and "never", in the population of ``all_positivity`` (metastatic stable disease excluded), with
Monte Carlo SEs over batches of 50,000.
``unrepresented``: the share of those swapped whose cell has nobody operated within grace in the
batch (they are then represented by nobody, as in a cohort). Writes ``benchmarks/results/clone_censor_regimes.csv``.

Run (about 2 minutes for 16 batches)::

    nice -n 10 .venv/bin/python benchmarks/clone_censor_regimes.py --batches 16
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from causal_hcc.config import load_spec  # noqa: E402
from causal_hcc.simstudy import SimulationSpec  # noqa: E402
from causal_hcc.twin.recalibrate import resolve  # noqa: E402
from causal_hcc.twin.simulate import course  # noqa: E402
from causal_hcc.twin.truth import OUTCOMES, Batch  # noqa: E402

GRID = np.linspace(0.0, 24.0, 2401)


def _summary(S: np.ndarray) -> list[float]:
    """S(12), S(24), RMST(24) of a survival curve on GRID."""
    return [float(S[1200]), float(S[2400]), float(np.trapezoid(S, GRID))]


def _curve(T: np.ndarray) -> np.ndarray:
    Ts = np.sort(T)
    return 1.0 - np.searchsorted(Ts, GRID, side="right") / T.size


def _swapped(T: np.ndarray, G: float, risk: np.ndarray, operated: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Natural course until G; after G, within each cell the operated members of ``risk`` stand for all of it."""
    w = np.ones(T.size)
    R = np.bincount(cell[risk]).astype(float)
    A = np.bincount(cell[risk & operated], minlength=R.size).astype(float)
    # a cell with nobody operated within grace in the batch (rare covariate patterns): its members
    # are represented by nobody, as in the estimator's data; their share is reported (``unrepresented``)
    _swapped.unrepresented = float(R[(R > 0) & (A == 0)].sum() / max(R.sum(), 1.0))
    f = np.divide(R, A, out=np.zeros_like(R), where=A > 0)
    w[risk & operated] = f[cell[risk & operated]]
    w[risk & ~operated] = 0.0
    S_nat = _curve(T)
    alive = T > G
    order = np.argsort(T[alive])
    Ta, wa = T[alive][order], w[alive][order]
    cw = np.r_[0.0, np.cumsum(wa)]
    S_after = 1.0 - cw[np.searchsorted(Ta, GRID, side="right")] / cw[-1]
    iG = int(round(G / (GRID[1] - GRID[0])))
    return np.where(GRID <= G, S_nat, S_nat[iG] * S_after)


def run(spec_path: str, batches: int, grace: float, outcome: str) -> pd.DataFrame:
    spec = load_spec(spec_path)
    p = resolve(SimulationSpec.from_analysis_spec(spec).twin)
    if not p.tv_active:
        raise SystemExit("clone_censor_regimes: the spec's twin has no time-varying confounder")
    h = p.visit_interval
    conf = [c for c in spec.confounders if c != "metastatic_sd"]
    rows = []
    for i in range(batches):
        b = Batch(p, i, 50_000)
        keep = b.covariate("metastatic_sd") == 0
        nat = course(b.pop, p, np.where(b.cand, b.delay, np.inf), surgeon=True, status=True)
        s_nat = np.where(nat["operated"], nat["surgery_time"], np.inf)
        regime = b.outcomes(np.where(s_nat <= grace, s_nat, grace))
        T_nat = OUTCOMES[outcome](nat)[keep]
        x = np.zeros(b.n, np.int64)
        for c in conf:
            x = x * 2 + b.covariate(c).astype(np.int64)
        xl = x * 2 + np.maximum(nat["ps"][:, int(round(grace / h))], 0)
        at_G = ((nat["t_death"] > grace) & (nat["t_prog"] > grace))[keep]
        op = (s_nat <= grace)[keep]
        early = (s_nat <= grace - h)[keep]
        curves = {"regime": _curve(OUTCOMES[outcome](regime)[keep]),
                  "never": _curve(OUTCOMES[outcome](b.never)[keep])}
        unrep = {"regime": 0.0, "never": 0.0}
        for name, risk, cell in (("swap on x", at_G, x[keep]), ("swap on (x, l(G))", at_G, xl[keep]),
                                 ("swap on (x, l(G)), last interval", at_G & ~early, xl[keep])):
            curves[name] = _swapped(T_nat, grace, risk, op, cell)
            unrep[name] = _swapped.unrepresented
        never = _summary(curves["never"])
        for name, S in curves.items():
            s = _summary(S)
            rows.append({"batch": i, "arm": name, "S12": s[0], "S24": s[1], "RMST24": s[2],
                         "diff_S12": s[0] - never[0], "diff_S24": s[1] - never[1], "diff_RMST24": s[2] - never[2],
                         "unrepresented": unrep[name]})
    per = pd.DataFrame(rows)
    cols = ["S12", "S24", "RMST24", "diff_S12", "diff_S24", "diff_RMST24", "unrepresented"]
    g = per.groupby("arm", sort=False)[cols]
    out = g.mean().join(g.std(ddof=1).div(np.sqrt(batches)).add_suffix("_mcse")).reset_index()
    out.insert(1, "outcome", outcome)
    out.insert(2, "patients", 50_000 * batches)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=os.path.join(os.path.dirname(HERE), "configs", "twin_tv.yaml"))
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--grace", type=float, default=6.0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "clone_censor_regimes.csv"))
    a = ap.parse_args()
    tab = pd.concat([run(a.spec, a.batches, a.grace, oc) for oc in ("os", "pfs")], ignore_index=True)
    tab.to_csv(a.out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tab.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
