"""Probability limits of the strategies' estimators on the twin's potential outcomes.

A truth is computed on a large simulated population in which every unit (a patient, or a
patient in one trial) has two potential event times, ``t1`` under the treat regime and
``t0`` under the comparator, measured from the unit's origin (time zero, the landmark, the
trial start), a population weight ``w`` (ATT, overlap) and, for a conditional estimand, the
cell of its adjustment covariates. The estimators that the strategies fit are then
evaluated *at the population level*, with the study's own follow-up:

* **Cox hazard ratio** (marginal, conditional on discrete covariates, stratified by trial):
  the root of the expected partial-likelihood score. Censoring in the twin is independent
  of everything (potential follow-up ``C`` drawn on its own), so the expected score is
  ``sum_k  int  G_k(u) [dN^w_k(u) z - E_k(u, beta) dN^w_k(u)]`` where ``G_k(u) = P(C > o_k + u
  | C > o_k)`` and ``E_k`` is the mean covariate in the (uncensored) risk set: ``G_k`` cancels
  from ``E_k``, so the limit is the Cox fit of the uncensored potential outcomes whose event
  contributions are weighted by ``G_k`` at the event time. That is why a marginal hazard
  ratio under non-proportional hazards depends on follow-up, and why the truth must use the
  study's follow-up, not the longest one.
* **Kaplan–Meier curves per arm** (pooled over strata, as the trial designs pool their
  trials): hazard increments ``sum_k G_k dN_k / sum_k G_k Y_k``; within one stratum ``G``
  cancels and the limit is the survival function of the potential outcomes. Survival
  differences at t, RMST differences and median differences are read off these curves.

The population enters only through additive binned statistics: per stratum, type (arm, or
arm x covariate cell) and time bin, the weighted number of events (every unit leaves the risk set at its
event: the potential outcomes are uncensored). Bins are
fine (0.01 months by default; every target time is a bin edge); within a bin the risk set
of the Cox score is taken at the bin midpoint (Efron's approximation for tied times, exact
to second order in the bin width) and the Kaplan–Meier factor is ``1 - D / Y_start`` (exact
for uncensored data at the bin edges). ``tests/twin/test_truth_limits.py`` checks both against
row-level computations.

Monte Carlo error: the population is drawn in ``K`` independent batches; each batch's
statistics give one estimate and the pooled statistics the truth; its Monte Carlo SE is
``sd(batch estimates) / sqrt(K)`` (batch means; Schmeiser 1982), for every measure alike.

Finite-population bias: the Cox root and the Kaplan–Meier factors are ratios of sums, biased
by O(1/N) (for sequential trials stratified by trial, -0.01 on the log HR at 20,000 patients
and noticeable up to ~200,000: the drift the audit saw). The truth is therefore the
half-sample (Quenouille) bias-corrected value ``2 theta(all) - (theta(even batches) +
theta(odd batches)) / 2``, which removes the O(1/N) term.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

#: default width of the time bins (months)
BIN_WIDTH = 0.01
#: cap on strata x types x bins of one statistic array (memory); wider bins beyond it
MAX_CELLS = 6_000_000


@dataclass
class Stratum:
    """Potential outcomes of the units of one stratum (one trial, or the whole population)."""

    key: int
    origin: float
    t1: np.ndarray           # event time under the treat regime, from the origin (inf: none)
    t0: np.ndarray           # under the comparator
    w: np.ndarray            # population weight of each unit
    cell: np.ndarray | None = None   # covariate cell (conditional estimands), int in [0, n_cells)


@dataclass
class Grid:
    """Time bins from the origin: ``edges[0] = 0 < ... < edges[-1] = horizon``."""

    edges: np.ndarray

    @classmethod
    def make(cls, horizon: float, targets: Iterable[float], width: float) -> "Grid":
        n = int(math.ceil(horizon / width - 1e-9))
        e = np.linspace(0.0, n * width, n + 1)
        extra = [float(t) for t in targets if 0 < t < e[-1]]
        e = np.unique(np.round(np.concatenate([e, extra]), 10))
        return cls(edges=e)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def nb(self) -> int:
        return self.edges.size - 1

    def index(self, t: np.ndarray) -> np.ndarray:
        """Bin of each time; ``nb`` for times at or beyond the last edge (no exit within the grid)."""
        b = np.searchsorted(self.edges, t, side="right") - 1
        return np.where(np.isfinite(t) & (t < self.edges[-1]), b, self.nb)


@dataclass
class Stats:
    """Additive binned statistics of one outcome: per stratum, weighted events by type and bin."""

    n_types: int
    grid: Grid
    events: dict[int, np.ndarray] = field(default_factory=dict)   # key -> (types, nb)
    total: dict[int, np.ndarray] = field(default_factory=dict)    # key -> (types,)
    origin: dict[int, float] = field(default_factory=dict)

    def add(self, s: Stratum, t1: np.ndarray, t0: np.ndarray, n_cells: int) -> None:
        nb = self.grid.nb
        if s.key not in self.events:
            self.events[s.key] = np.zeros((self.n_types, nb))
            self.total[s.key] = np.zeros(self.n_types)
            self.origin[s.key] = float(s.origin)
        cell = np.zeros(s.w.size, dtype=np.int64) if s.cell is None else s.cell.astype(np.int64)
        for arm, t in ((1, t1), (0, t0)):
            typ = arm * n_cells + cell
            b = self.grid.index(t)
            inside = b < nb
            flat = typ[inside] * nb + b[inside]
            # every unit leaves the risk set at its event time (the potential outcomes are
            # uncensored): events = exits; the study's censoring enters through G at solve time
            self.events[s.key] += np.bincount(flat, weights=s.w[inside],
                                              minlength=self.n_types * nb).reshape(self.n_types, nb)
            self.total[s.key] += np.bincount(typ, weights=s.w, minlength=self.n_types)

    def copy(self) -> "Stats":
        out = Stats(self.n_types, self.grid)
        out.merge(self)
        return out

    def merge(self, other: "Stats") -> None:
        for k in other.events:
            if k not in self.events:
                self.events[k] = other.events[k].copy()
                self.total[k] = other.total[k].copy()
                self.origin[k] = other.origin[k]
            else:
                self.events[k] += other.events[k]
                self.total[k] += other.total[k]


def _at_risk_start(st: Stats, k: int) -> np.ndarray:
    ex = st.events[k]
    before = np.cumsum(ex, axis=1) - ex
    return st.total[k][:, None] - before


def cox_limit(st: Stats, Z: np.ndarray, g: Callable[[float, np.ndarray], np.ndarray],
              beta0: np.ndarray | None = None, max_iter: int = 50, tol: float = 1e-11,
              risk: Stats | None = None,
              mult: Callable[[float, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Root of the expected Cox score (Newton–Raphson) on binned statistics.

    ``Z`` (types x p): covariates of each type (column 0: arm). ``g(origin, times)``: the
    probability of still being under follow-up at ``times`` from ``origin``. ``risk``: the
    statistics whose exits make the risk sets, when they are not ``st``'s events (a
    cause-specific hazard: events of one cause, risk sets left at any event). ``mult(origin,
    times)`` (types x times): a weight of each type that changes with time and multiplies its
    events and its risk set alike (the numerators of stabilised weights, which depend on the arm,
    the covariate cell and time only); ``None``: 1.
    """
    p = Z.shape[1]
    beta = np.zeros(p) if beta0 is None else np.asarray(beta0, float).copy()
    mid = st.grid.mid
    prep = []
    for k in st.events:
        D = st.events[k]
        if not D.any():
            continue
        Ym = (_at_risk_start(st, k) - 0.5 * D if risk is None
              else _at_risk_start(risk, k) - 0.5 * risk.events[k])
        gk = g(st.origin[k], mid)
        if mult is not None:
            m = mult(st.origin[k], mid)
            D, Ym = D * m, Ym * m
        Dt = D.sum(axis=0)
        use = (gk > 0) & (Dt > 0)
        prep.append((D[:, use] * gk[use], Ym[:, use], Dt[use] * gk[use]))
    for _ in range(max_iter):
        U = np.zeros(p)
        I = np.zeros((p, p))
        eta = Z @ beta
        r = np.exp(eta - eta.max())
        for Dg, Ym, Dtg in prep:
            a = r[:, None] * Ym                      # types x bins
            S0 = a.sum(axis=0)
            ok = S0 > 0
            S0 = np.where(ok, S0, 1.0)
            S1 = Z.T @ a                              # p x bins
            E = S1 / S0
            U += (Z.T @ Dg).sum(axis=1) - (E * Dtg).sum(axis=1)
            S2 = np.einsum("tp,tq,tb->pqb", Z, Z, a, optimize=True)
            I += np.einsum("pqb,b->pq", S2 / S0, Dtg) - np.einsum("pb,qb,b->pq", E, E, Dtg)
        step = np.linalg.solve(I, U)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    return beta


def km_limit(st: Stats, n_cells: int, g: Callable[[float, np.ndarray], np.ndarray]) -> dict[int, np.ndarray]:
    """Survival of each arm at the grid's edges: the limit of the pooled Kaplan–Meier."""
    mid = st.grid.mid
    out = {}
    for arm in (0, 1):
        num = np.zeros(st.grid.nb)
        den = np.zeros(st.grid.nb)
        for k in st.events:
            sl = slice(arm * n_cells, (arm + 1) * n_cells)
            D = st.events[k][sl].sum(axis=0)
            Y = _at_risk_start(st, k)[sl].sum(axis=0)
            gk = g(st.origin[k], mid)
            num += gk * D
            den += gk * Y
        h = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        out[arm] = np.concatenate([[1.0], np.cumprod(1.0 - h)])
    return out


def cif_limit(st: Stats, st1: Stats, n_cells: int, g: Callable[[float, np.ndarray], np.ndarray]
              ) -> dict[int, np.ndarray]:
    """Cumulative incidence of the event of interest per arm at the grid's edges: the limit of the pooled
    Aalen–Johansen estimator. ``st``: exits at any event; ``st1``: events of the cause of interest."""
    mid = st.grid.mid
    out = {}
    for arm in (0, 1):
        num, num1, den = np.zeros(st.grid.nb), np.zeros(st.grid.nb), np.zeros(st.grid.nb)
        for k in st.events:
            sl = slice(arm * n_cells, (arm + 1) * n_cells)
            gk = g(st.origin[k], mid)
            num += gk * st.events[k][sl].sum(axis=0)
            num1 += gk * st1.events[k][sl].sum(axis=0)
            den += gk * _at_risk_start(st, k)[sl].sum(axis=0)
        ok = den > 0
        h = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
        h1 = np.where(ok, num1 / np.where(ok, den, 1.0), 0.0)
        S_before = np.concatenate([[1.0], np.cumprod(1.0 - h)])[:-1]
        out[arm] = np.concatenate([[0.0], np.cumsum(S_before * h1)])
    return out


def curve_measures(S: dict[int, np.ndarray], edges: np.ndarray, times: tuple[float, ...],
                   tau: float) -> dict[str, object]:
    """Survival and RMST differences, log risk ratios, medians and their difference from two curves on ``edges``."""
    def at(s: np.ndarray, t: float) -> float:
        return float(np.interp(t, edges, s))

    def rmst(s: np.ndarray) -> float:
        keep = edges <= tau + 1e-12
        e, v = edges[keep], s[keep]
        if e[-1] < tau:
            e, v = np.append(e, tau), np.append(v, at(s, tau))
        return float(np.sum(0.5 * (v[1:] + v[:-1]) * np.diff(e)))

    def median(s: np.ndarray) -> float:
        below = np.flatnonzero(s <= 0.5)
        if below.size == 0:
            return math.nan
        j = below[0]
        if j == 0:
            return 0.0
        s0, s1 = s[j - 1], s[j]
        return float(edges[j - 1] + (s0 - 0.5) / (s0 - s1) * (edges[j] - edges[j - 1])) if s0 > s1 else float(edges[j])

    def log_rr(t: float) -> float:
        r1, r0 = 1.0 - at(S[1], t), 1.0 - at(S[0], t)
        return math.log(r1 / r0) if r1 > 0 and r0 > 0 else math.nan

    m1, m0 = median(S[1]), median(S[0])
    return {
        "survival_difference": {f"{t:g}": at(S[1], t) - at(S[0], t) for t in times},
        # risk ratio (1 - S1) / (1 - S0) at t, kept on the log scale here (bias correction, MC SE)
        "log_risk_ratio": {f"{t:g}": log_rr(t) for t in times},
        "rmst_difference": {f"{tau:g}": rmst(S[1]) - rmst(S[0])},
        "median_difference": m1 - m0,
        "median_treat": m1, "median_control": m0,
    }


def follow_up_survivor(a: float, b: float, lo: float, span: float) -> Callable[[float, np.ndarray], np.ndarray]:
    """``g(origin, u) = P(C > origin + u | C > origin)`` for ``C = lo + span * Beta(a, b)``."""
    from scipy import special

    def G(t: np.ndarray) -> np.ndarray:
        z = np.clip((np.asarray(t, float) - lo) / span, 0.0, 1.0)
        return 1.0 - special.betainc(a, b, z)

    def g(origin: float, u: np.ndarray) -> np.ndarray:
        g0 = float(G(np.array([origin]))[0])
        return G(origin + u) / g0 if g0 > 0 else np.zeros_like(u)

    return g


def horizon_only(horizon: float) -> Callable[[float, np.ndarray], np.ndarray]:
    """``g`` of the old definition: no censoring but the longest follow-up (``horizon`` from time zero)."""
    def g(origin: float, u: np.ndarray) -> np.ndarray:
        return (origin + u < horizon).astype(float)

    return g
