"""The twin's truths: of each strategy's own estimand, and of the paper's claimed one.

Each strategy answers its own question (:mod:`causal_hcc.estimands`), so each is judged
against the truth of that question. :func:`estimand_truth` computes it from the twin's
potential outcomes; :func:`truth` is the headline truth of ``truth.json`` (the estimand the
paper claimed: "operate when eligible" vs "never operate", everyone, from time zero).

What a truth is (``docs/truth.md`` has the long version):

* **The population limit of the strategy's estimator in an ideal trial.** Every unit of the
  estimand's population gets both potential outcomes (common random numbers), and the
  measure the strategy reports is evaluated at the population level
  (:mod:`causal_hcc.twin._limits`).
* **Under the study's own follow-up.** A hazard ratio under non-proportional hazards
  depends on how long patients are followed (the Cox estimate weights each event time by
  the share still under follow-up), and a marginal HR is non-collapsible: it is neither the
  structural ``true_hr`` nor the same number for another population or follow-up. So every
  HR truth is the limit of its estimator with censoring by the twin's potential follow-up
  (median about 18 months; ``hr_horizon`` keeps the old definition, censoring only at 84
  months, for comparison). Survival and RMST differences do not depend on censoring: they
  are the primary verdict measures.
* **Usual care as it would have happened.** The comparator "not now" (ITT: landmark,
  sequential trials) is usual care afterwards: patients whose surgery was due later keep
  it; patients who in the twin would have been operated *now* get a later surgery date
  borrowed from a random comparable patient not operated now (same origin, same prognostic
  covariates: those with an effect on death or progression). The per-protocol comparator is
  "never". ITT and per-protocol truths therefore differ for every population, the treated
  included.
* **With its Monte Carlo error.** The population is drawn in independent batches; each
  truth carries ``mc_se`` (batch means), and :func:`estimand_truth` takes the population
  size (``n_large``) that callers scale to reach a target precision.

Families
--------
One function per contrast builds the potential outcomes (:data:`FAMILIES`):
``by_L_vs_not_yet`` (landmark), ``start_now_vs_not_now`` / ``start_now_vs_never`` (sequential
trials), ``within_grace_vs_never`` (clone–censor), ``ever_vs_never`` (baseline: not causal,
judged against the paper's claimed estimand). ``structural`` needs no simulation: the twin
multiplies the death hazards by ``true_hr`` from surgery on. Outcomes are registered in
:data:`OUTCOMES` (``os``, ``pfs``). ``docs/truth.md`` says how to add a family or an outcome.

References
----------
Hernán MA, Robins JM. Using big data to emulate a target trial when a randomized trial is
not available. Am J Epidemiol 2016;183:758-64.
Austin PC. The performance of different propensity score methods for estimating marginal
hazard ratios. Stat Med 2013;32:2837-49 (marginal HRs by simulating both regimes).
Struthers CA, Kalbfleisch JD. Misspecified proportional hazard models. Biometrika
1986;73:363-9 (the limit of the Cox estimator under non-proportional hazards depends on
censoring).
Daniel R, Zhang J, Farewell D. Making apples from oranges: comparing noncollapsible effect
estimators and their standard errors after adjustment for different covariate sets. Biom J
2021;63:528-57.
Schmeiser B. Batch size effects in the analysis of simulation output. Oper Res
1982;30:556-68 (batch means).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
from scipy.special import expit

from causal_hcc.twin import _limits as lim
from causal_hcc.twin.params import TwinParams
from causal_hcc.twin.params import BINARY_COVARIATES
from causal_hcc.twin.simulate import _draw, _linear_predictors, course, outcomes_given_surgery, surgery_intercept

__all__ = ["truth", "estimand_truth", "cox_binary_hr", "FAMILIES", "OUTCOMES", "TWIN_OUTCOME_COLUMNS",
           "twin_outcome", "DEFAULT_N_LARGE", "MAX_N_LARGE"]

#: Candidacy log-odds ratio at or below which a covariate level is a structural contraindication
#: (the twin's metastatic stable disease, -6): the population of clone-censor's ``positivity:
#: restrict`` excludes such levels, as the design excludes levels at which nobody is treated.
CONTRAINDICATION_LOG_OR = -5.0
#: default population size of a truth (patients; sequential trials stack each ~20 times)
DEFAULT_N_LARGE = 400_000
#: the largest population a caller may ask for (memory and time: see docs/truth.md)
MAX_N_LARGE = 6_400_000
#: patients per batch (the unit of the Monte Carlo SE); fewer when n_large / 8 is smaller
BATCH_SIZE = 50_000
MIN_BATCHES = 8

#: outcome name -> potential event time from the regime's event times
OUTCOMES: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {
    "os": lambda ev: ev["t_death"],
    "pfs": lambda ev: np.minimum(ev["t_prog"], ev["t_death"]),
}
#: the twin's time columns and the outcome each measures
TWIN_OUTCOME_COLUMNS: dict[str, str] = {"os_months": "os", "pfs_months": "pfs"}
#: outcomes with a competing event (the twin with ``competing_death_rate`` > 0): name -> (event time,
#: cause) of the regime's course; cause 1 is the event of interest (cancer death), 2 the competing one
COMPETING_OUTCOMES: dict[str, Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]] = {
    "cancer_death": lambda ev: (ev["t_death"], ev["cause"]),
}
#: the twin's event columns that make a competing-risks outcome
TWIN_EVENT_COLUMNS: dict[str, str] = {"death_cause": "cancer_death"}


def twin_outcome(time_column: str | None, name: str | None = None, event_column: str | None = None) -> str | None:
    """The twin outcome (``os``/``pfs``/``cancer_death``) a cohort outcome measures, from its time (and event)
    column: ``os_months`` with ``death_cause`` is cancer death with liver failure competing."""
    if event_column in TWIN_EVENT_COLUMNS and time_column == "os_months":
        return TWIN_EVENT_COLUMNS[event_column]
    if time_column in TWIN_OUTCOME_COLUMNS:
        return TWIN_OUTCOME_COLUMNS[time_column]
    return None if time_column else (name if name in OUTCOMES else None)


# --------------------------------------------------------------------------- Cox for one binary covariate
def cox_binary_hr(time: np.ndarray, event: np.ndarray, x: np.ndarray,
                  max_iter: int = 50, tol: float = 1e-10) -> tuple[float, float]:
    """Cox partial-likelihood HR (Efron ties) for one binary covariate.

    Own O(n log n) Newton-Raphson for large populations; tested against lifelines.

    Returns
    -------
    (hr, se_log_hr)
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    x = np.asarray(x, float)
    order = np.argsort(time, kind="stable")
    t, d, xs = time[order], event[order], x[order]
    et = t[d]
    u_t, first = np.unique(et, return_index=True)
    n_d = np.diff(np.append(first, et.size))                       # deaths per unique time
    d1 = np.add.reduceat(xs[d], first) if et.size else np.zeros(0)  # deaths with x = 1
    start = np.searchsorted(t, u_t, side="left")                    # first index at risk
    n_total = t.size
    cum1 = np.concatenate([np.cumsum(xs[::-1])[::-1], [0.0]])
    r1 = cum1[start]
    r0 = (n_total - start) - r1
    beta = 0.0
    info = math.nan
    max_d = int(n_d.max()) if n_d.size else 0
    for _ in range(max_iter):
        w = math.exp(beta)
        s0 = r0 + r1 * w
        s1 = r1 * w
        dd0 = (n_d - d1) + d1 * w
        dd1 = d1 * w
        score = float(d1.sum())
        info = 0.0
        for l in range(max_d):
            m = n_d > l
            f = l / n_d[m]
            den = s0[m] - f * dd0[m]
            mean = (s1[m] - f * dd1[m]) / den
            score -= float(mean.sum())
            info += float((mean * (1 - mean)).sum())
        step = score / info
        beta += step
        if abs(step) < tol:
            break
    return math.exp(beta), 1.0 / math.sqrt(info)


# --------------------------------------------------------------------------- one batch of the population
class Batch:
    """One batch of the truth population: covariates, candidacy, the natural and "never" courses."""

    def __init__(self, p: TwinParams, index: int, size: int) -> None:
        self.p = p
        self.index = index
        seed = int(np.random.SeedSequence([p.truth_seed, index]).generate_state(1)[0])
        self.pop = _draw(p, size, seed)
        self.n = size
        _, _, lp_s = _linear_predictors(self.pop, p)
        self.cand = self.pop.u_cand < expit(surgery_intercept(p) + lp_s)
        self.delay = self.pop.delay
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([p.truth_seed, index, 7])))
        self._never: dict[str, np.ndarray] | None = None
        self._natural: dict[str, np.ndarray] | None = None
        self._cells: np.ndarray | None = None

    def outcomes(self, proposed: np.ndarray) -> dict[str, np.ndarray]:
        return outcomes_given_surgery(self.pop, self.p, proposed)

    @property
    def never(self) -> dict[str, np.ndarray]:
        if self._never is None:
            self._never = self.outcomes(np.full(self.n, np.inf))
        return self._never

    def usual(self, proposed: np.ndarray) -> dict[str, np.ndarray]:
        """Usual care from a first surgical decision at ``proposed``: with the time-varying confounder
        on, the twin's surgeon decides on the current performance status (deferring on poor
        status); otherwise the same as :meth:`outcomes`."""
        if self.p.tv_active:
            return course(self.pop, self.p, proposed, surgeon=True)
        return self.outcomes(proposed)

    @property
    def natural(self) -> dict[str, np.ndarray]:
        """The twin's own course (candidates proposed at their delay), ignoring follow-up."""
        if self._natural is None:
            self._natural = self.usual(np.where(self.cand, self.delay, np.inf))
        return self._natural

    def natural_surgery(self) -> np.ndarray:
        """Surgery time of the natural course (inf: not operated)."""
        nat = self.natural
        return np.where(nat["operated"], nat["surgery_time"], np.inf)

    def covariate(self, name: str) -> np.ndarray | None:
        x = self.pop.X.get(name)
        return None if x is None else np.asarray(x, dtype=float)

    @property
    def prognostic_cells(self) -> np.ndarray:
        """Cell of each patient on the covariates that drive death or progression (quintiles if continuous)."""
        if self._cells is None:
            from causal_hcc.twin.simulate import _design_value

            p = self.p
            names = sorted({k for k, v in p.death_log_hr.items() if v}
                           | {k for k, v in p.effective_progression_log_hr().items() if v})
            code = np.zeros(self.n, dtype=np.int64)
            for name in names:
                x = _design_value(self.pop, p, name)
                if np.all((x == 0) | (x == 1)):
                    lv, k = x.astype(np.int64), 2
                else:
                    lv = np.searchsorted(np.quantile(x, [0.2, 0.4, 0.6, 0.8]), x, side="right")
                    k = 5
                code = code * k + lv
            self._cells = code
        return self._cells

    def borrow_later(self, members: np.ndarray, now: np.ndarray, later: np.ndarray) -> np.ndarray:
        """Usual care for the units treated ``now``: a later proposal borrowed from a comparable unit.

        ``members``: indices of the population at the origin; ``now``: mask over ``members``
        of those whose surgery falls now; ``later``: each patient's own later proposal (inf:
        none). Returns the proposals of ``members``: their own for those not treated now,
        that of a random member not treated now with the same prognostic cell for the
        others (never when the cell has no such member).
        """
        out = later[members].copy()
        if not now.any():
            return out
        cells = self.prognostic_cells[members]
        donors = np.flatnonzero(~now)
        d_cells = cells[donors]
        order = np.argsort(d_cells, kind="stable")
        d_sorted, donors = d_cells[order], donors[order]
        rec = np.flatnonzero(now)
        lo = np.searchsorted(d_sorted, cells[rec], side="left")
        hi = np.searchsorted(d_sorted, cells[rec], side="right")
        has = hi > lo
        pick = lo + np.floor(self.rng.random(rec.size) * np.maximum(hi - lo, 1)).astype(np.int64)
        out[rec] = np.where(has, later[members[donors[np.minimum(pick, max(donors.size - 1, 0))]]]
                            if donors.size else np.inf, np.inf)
        return out


@dataclass
class Unit:
    """The potential outcomes of one stratum of an estimand's population (see :class:`_limits.Stratum`)."""

    key: int
    origin: float
    ev1: dict[str, np.ndarray]
    ev0: dict[str, np.ndarray]
    idx: np.ndarray
    w: np.ndarray
    X: np.ndarray | None = None


@dataclass
class Request:
    """What a family needs to know: the estimand, its adjustment set and the twin."""

    estimand: dict[str, Any]
    confounders: tuple[str, ...]
    p: TwinParams
    info: dict[str, Any] = field(default_factory=dict)   # family notes filled on the first batch
    #: the outcome analysed: a design's population at its origin is event-free for it (the PFS
    #: outcome's landmark or trial population is progression-free even without require_event_free)
    outcome: str = "os"

    @property
    def params(self) -> dict[str, Any]:
        return self.estimand.get("params", {}) or {}

    @property
    def population(self) -> str:
        return self.estimand["population"]

    @property
    def conditional(self) -> bool:
        return self.estimand["scale"] == "conditional"

    def adjustment(self, b: Batch) -> np.ndarray | None:
        if not (self.conditional or self.population == "overlap"):
            return None
        return np.column_stack([b.covariate(c) for c in self.confounders])


class Undefined(Exception):
    """The twin has no truth for this estimand (the message says why)."""


def _overlap_weights(Z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """e(1 - e) with e from a logistic model of ``Z`` on ``X``: the limit of the ATO weights."""
    from causal_hcc.adjust.propensity import logistic_irls

    keep = np.ptp(X, axis=0) > 0 if X.size else np.zeros(0, bool)
    D = np.column_stack([np.ones(Z.size)] + [X[:, j] for j in np.flatnonzero(keep)])
    beta = logistic_irls(D, Z.astype(float))[0]
    e = expit(D @ beta)
    return e * (1.0 - e)


def _population_weights(req: Request, b: Batch, idx: np.ndarray, treated_now: np.ndarray,
                        X: np.ndarray | None) -> np.ndarray:
    code = req.population
    if code in ("treated", "matched_treated"):
        return treated_now.astype(float)
    if code == "overlap":
        return _overlap_weights(treated_now, X)
    return np.ones(idx.size)


def _require_event_free(req: Request) -> str | None:
    ef = req.params.get("require_event_free")
    if ef not in (None, "pfs"):
        raise Undefined(f"the twin knows event-freedom for 'pfs' only, not '{ef}'")
    return ef or ("pfs" if req.outcome == "pfs" else None)


# --------------------------------------------------------------------------- the families
def family_landmark(b: Batch, req: Request) -> Iterator[Unit]:
    """``by_L_vs_not_yet``: operated at L vs not operated by L (usual care afterwards).

    Population: alive (and progression-free, where required) at L without surgery before L.
    Treat regime: surgery at L. Comparator: candidates due after L keep their date; those
    due by L (the treated of the landmark design) get a later date borrowed from a comparable
    patient not due by L. ``treated``: those due by L; ``overlap``: weights e(1-e) of being
    due by L given the adjustment set.
    """
    L = float(req.params["landmark"])
    ef = _require_event_free(req)
    nv = b.never
    inpop = nv["t_death"] > L
    if ef:
        inpop &= nv["t_prog"] > L
    idx = np.flatnonzero(inpop)
    if b.p.tv_active:
        # the natural course's surgery time (the surgeon's deferrals included); usual care after L
        # is the surgeon's rule from the first decision after L (own, or a comparable patient's)
        s_nat = b.natural_surgery()
        due = (s_nat <= L)[idx]
        later = np.where(s_nat > L, s_nat, np.inf)
    else:
        due = (b.cand & (b.delay <= L) & (b.delay < np.minimum(nv["t_prog"], nv["t_death"])))[idx]
        later = np.where(b.cand & (b.delay > L), b.delay, np.inf)
    prop0 = np.full(b.n, np.inf)
    prop0[idx] = b.borrow_later(idx, due, later)
    X = req.adjustment(b)
    Xi = None if X is None else X[idx]
    req.info.setdefault("note", f"operated at L = {L:g} vs not operated by L, usual care afterwards (those due "
                        f"by L get a later date from a comparable patient not due by L); alive"
                        f"{' and pfs-free' if ef else ''} at L without surgery before L; times from L")
    yield Unit(0, L, b.outcomes(np.full(b.n, L)), b.usual(prop0), idx,
               _population_weights(req, b, idx, due, Xi), Xi)


def _trial_grid(b: Batch, req: Request) -> tuple[float, float]:
    prm = req.params
    if "grid_window" not in req.info:
        # the design's default: the 90th percentile of observed surgery times (/ 24 for the grid), here of
        # the first full-size batch whatever the population size, so the estimand does not change with it
        ref = b if b.index == 0 and b.n == BATCH_SIZE else Batch(req.p, 0, BATCH_SIZE)
        nat = ref.natural
        s_nat = np.where(nat["operated"], nat["surgery_time"], np.inf)
        observed = s_nat[s_nat < ref.pop.followup]
        p90 = float(np.quantile(observed, 0.9))
        req.info["grid_window"] = (float(prm.get("grid") or p90 / 24.0), float(prm.get("window") or p90))
    return req.info["grid_window"]


def family_trials(b: Batch, req: Request) -> Iterator[Unit]:
    """``start_now_vs_not_now`` (ITT) / ``start_now_vs_never`` (per protocol), pooled over trials.

    In trial k (start s on the grid): those alive, unoperated (and progression-free, where
    required) at s in the twin's own course. Treat regime: surgery at s. ITT comparator: usual
    care, i.e. candidates due after the trial's interval keep their date and those who start
    in [s, s + grid) get a later date from a comparable non-starter of the same trial; per
    protocol: never. ``treated``: the starters; ``overlap``: e(1-e) per trial.
    """
    ef = _require_event_free(req)
    itt = req.estimand["contrast"] == "start_now_vs_not_now"
    grid, window = _trial_grid(b, req)
    nat = b.natural
    s_nat = np.where(nat["operated"], nat["surgery_time"], np.inf)
    starts = np.arange(0.0, window + 1e-9 * max(window, 1.0), grid)
    X = req.adjustment(b)
    n_trials = 0
    for k, s in enumerate(starts):
        elig = (nat["t_death"] > s) & (s_nat >= s)
        if ef:
            elig &= nat["t_prog"] > s
        idx = np.flatnonzero(elig)
        starters = s_nat[idx] < s + grid
        if not starters.any() or starters.all():
            continue
        n_trials += 1
        if itt:
            if b.p.tv_active:    # usual care: the surgeon's rule from the first decision after the interval
                later = np.where(s_nat >= s + grid, s_nat, np.inf)
            else:
                later = np.where(b.cand & (b.delay >= s + grid), b.delay, np.inf)
            prop0 = np.full(b.n, np.inf)
            prop0[idx] = b.borrow_later(idx, starters, later)
        else:
            prop0 = np.full(b.n, np.inf)
        Xi = None if X is None else X[idx]
        yield Unit(k, float(s), b.outcomes(np.full(b.n, s)), b.usual(prop0) if itt else b.outcomes(prop0), idx,
                   _population_weights(req, b, idx, starters, Xi), Xi)
    req.info.setdefault("note", (
        f"{n_trials} trials every {grid:.3g} up to {window:.3g}: operate at the trial start vs "
        + ("not now, usual care afterwards (starters get a later date from a comparable non-starter)" if itt
           else "never")
        + f"; those alive, unoperated{' and pfs-free' if ef else ''} at the start; pooled: Cox stratified by "
        "trial, Kaplan-Meier over all trials"))
    req.info["grid"], req.info["window"] = grid, window


def family_clone_censor(b: Batch, req: Request) -> Iterator[Unit]:
    """``within_grace_vs_never``: surgery at the twin's date if within G, else at G (while alive and
    progression-free) vs never; everyone at time zero, less structural contraindications with
    ``positivity: restrict`` (population ``all_positivity``).

    A deterministic regime at G. Clone-censor's weights represent the clones not operated by G by
    clones operated within grace in the same state at G (the baseline confounders and, with
    ``time_varying_confounders``, the performance status at G); the twin's hazards after G depend on
    the past only through that state and the treatment (no effect of time since surgery), so that is
    this regime. Matching on the baseline confounders alone (weights without the status) targets
    another, random regime -- the course after G of patients operated earlier and in a better
    state -- whose treat-arm S(12) is 0.012 higher here (``benchmarks/clone_censor_regimes.py``)."""
    G = float(req.params["grace"])
    keep = np.ones(b.n, bool)
    excluded = []
    if req.population == "all_positivity":
        for c in req.confounders:
            lor = req.p.surgery_log_or.get(c)
            x = b.covariate(c)
            if lor is not None and lor <= CONTRAINDICATION_LOG_OR and x is not None:
                keep &= x == 0
                excluded.append(c)
    idx = np.flatnonzero(keep)
    X = req.adjustment(b)
    req.info.setdefault("note", f"operate at the patient's own surgery date if within G = {G:g}, else at G, while "
                        "alive and progression-free, vs never; everyone at time zero"
                        + (f" except {', '.join(excluded)} (contraindication)" if excluded else ""))
    if b.p.tv_active:   # the natural course's surgery date (the surgeon's deferrals included) if within G
        s_nat = b.natural_surgery()
        treat = np.where(s_nat <= G, s_nat, G)
    else:
        treat = np.where(b.cand & (b.delay <= G), b.delay, G)
    kind = _clone_censor_numerator_kind(req)
    if kind != "none" and "_hr_mult" not in req.info:
        # the stabilised weights' numerators, from the first batch's natural course (fixed for every batch)
        req.info["_hr_mult"] = _CloneCensorNumerator(b, req, idx, G, kind)
    yield Unit(0, 0.0, b.outcomes(treat), b.never, idx, np.ones(idx.size), None if X is None else X[idx])


def _clone_censor_numerator_kind(req: Request) -> str:
    """The clone-censor design's ``numerator`` as it resolves it (``auto``: ``baseline`` for an outcome model
    conditional on the covariates, ``time`` for a marginal one; :func:`causal_hcc.design._tv.resolve_numerator`)."""
    kind = req.params.get("numerator", "auto")
    if kind == "auto":
        kind = "baseline" if req.conditional else "time"
    return kind


class _CloneCensorNumerator:
    """The numerators of clone-censor's stabilised weights in the twin's population (issue 20 item 1: an HR
    truth is the limit of its estimator, so a stabilised pseudo-population's HR where the weights are stabilised).

    As :func:`causal_hcc.design.clone_censor.clone_censor_data` carries them, from the natural course of the
    estimand's population (observed follow-up: death or the outcome's event and the potential follow-up ``C``):

    * never-treat arm: ``exp(-H_num(a))`` with ``H_num`` the Nelson-Aalen hazard of surgery among the clones
      alive (event-free for the outcome), under follow-up and unoperated (a start after the
      ``require_event_free`` state censors without an event; :func:`causal_hcc.design._tv.numerator_hazard`),
      ``a`` the start of the row's piece: rows are split at 40 quantiles of the surgery times (the limit of
      the design's ``cut_points``);
    * treat-within-G arm: 1 before G, after it ``P(not censored at G)`` among the clones alive and under
      follow-up at G (not censored: operated within G, or no longer eligible at G;
      :func:`causal_hcc.design._tv.grace_numerator`);
    * ``numerator: baseline``: both per cell of the (binary) adjustment set -- the saturated version of the
      design's Cox and logistic numerator models.

    Estimated once on the first batch (50,000 patients): its error is far below the batches' spread.
    ``__call__(outcome, n_cells)`` gives ``mult(origin, times)`` (types x times, ``n_cells`` the estimand's covariate
    cells: a time-only numerator is the same in every cell) for :func:`_limits.cox_limit`.
    """

    MAX_CUTS = 40

    def __init__(self, b: Batch, req: Request, idx: np.ndarray, G: float, kind: str) -> None:
        nat = b.natural
        self.kind, self.G = kind, G
        self.nat = {k: np.asarray(f(nat), float)[idx] for k, f in OUTCOMES.items()}
        self.s = b.natural_surgery()[idx]
        self.C = np.asarray(b.pop.followup, float)[idx]
        ef = req.params.get("require_event_free")
        if ef and ef not in OUTCOMES:
            raise Undefined(f"require_event_free '{ef}' is not a twin outcome ({', '.join(OUTCOMES)})")
        self.state = self.nat[ef] if ef else np.full(idx.size, np.inf)
        self.has_state = bool(ef)
        if kind == "baseline":
            X = np.column_stack([b.covariate(c) for c in req.confounders])[idx]
            self.code, Zc = _cells(X, req.confounders)
            self.n_cells = Zc.shape[0]
        else:
            self.code, self.n_cells = np.zeros(idx.size, dtype=np.int64), 1
        self._cache: dict[str, Callable] = {}
        self.p_uncensored: dict[str, float] = {}

    def parts(self, outcome: str) -> tuple[np.ndarray, list, np.ndarray]:
        """(cut points, per cell (NA times, cumulative hazard), per cell P(not censored at G))."""
        from causal_hcc.design._tv import nelson_aalen

        G = self.G
        T = np.minimum(self.nat[outcome], self.C)            # observed follow-up of the outcome
        s = self.s
        treated = s < T
        late = treated & (s > self.state)                     # a start after the state: censored, no event
        ev = (treated & ~late).astype(np.int8)
        ex = np.where(treated, s, T)
        cuts = np.unique(ex[ev == 1])
        if cuts.size > self.MAX_CUTS:
            cuts = np.unique(np.quantile(cuts, np.linspace(0, 1, self.MAX_CUTS)))
        na, pN = [], np.ones(self.n_cells)
        alive_G = T > G
        in_grace = treated & (s <= G)
        lost = self.has_state & ~in_grace & (self.state <= G) & (self.state < T)
        for c in range(self.n_cells):
            m = self.code == c
            na.append(nelson_aalen(ex[m], ev[m]) if ev[m].any() else (np.zeros(0), np.zeros(0)))
            a = alive_G & m
            if a.any():
                pN[c] = float(np.mean((in_grace | lost)[a]))
        self.p_uncensored[outcome] = float(np.mean((in_grace | lost)[alive_G])) if alive_G.any() else 1.0
        return cuts, na, pN

    def __call__(self, outcome: str, n_cells: int = 1) -> Callable[[float, np.ndarray], np.ndarray]:
        if self.kind == "baseline" and n_cells != self.n_cells:
            raise Undefined("numerator baseline needs the truth conditional on the adjustment set")
        key = (outcome, n_cells)
        if key not in self._cache:
            cuts, na, pN = self.parts(outcome)
            starts = np.r_[0.0, cuts[cuts > 0]]
            G = self.G
            own = np.arange(n_cells) if self.kind == "baseline" else np.zeros(n_cells, dtype=np.int64)

            def mult(origin: float, t: np.ndarray) -> np.ndarray:
                t = np.asarray(t, float)
                a = starts[np.searchsorted(starts, t, side="right") - 1]      # start of the row's piece
                never = np.ones((self.n_cells, t.size))
                for c, (bt, bc) in enumerate(na):
                    if bt.size:
                        j = np.searchsorted(bt, a, side="right") - 1
                        never[c] = np.exp(-np.where(j >= 0, bc[np.maximum(j, 0)], 0.0))
                treat = np.where(t[None, :] >= G, pN[:, None], 1.0)
                return np.vstack([never[own], treat[own]])                   # types: arm x cell

            self._cache[key] = mult
        return self._cache[key]


def family_claimed(b: Batch, req: Request) -> Iterator[Unit]:
    """``ever_vs_never`` (not causal): the estimand the paper claimed, "operate when eligible" vs "never".

    Everyone (``all``); the operated during follow-up (``treated``, ``matched_treated``); or the
    overlap population of being operated during follow-up given the adjustment set (``overlap``).
    """
    nat = b.natural
    operated = nat["operated"] & (nat["surgery_time"] < b.pop.followup)
    idx = np.arange(b.n)
    X = req.adjustment(b)
    who = {"treated": "the operated", "matched_treated": "the operated", "overlap": "the overlap population"}.get(
        req.population, "everyone")
    req.info.setdefault("note", "ever vs never is not a causal contrast; compared with the estimand the paper "
                        f"claimed: operate when eligible vs never operate, {who}, from time zero")
    yield Unit(0, 0.0, nat, b.never, idx, _population_weights(req, b, idx, operated, X), X)


#: contrast -> family function (one per estimand family; see docs/truth.md to add one)
FAMILIES: dict[str, Callable[[Batch, Request], Iterator[Unit]]] = {
    "by_L_vs_not_yet": family_landmark,
    "start_now_vs_not_now": family_trials,
    "start_now_vs_never": family_trials,
    "within_grace_vs_never": family_clone_censor,
    "ever_vs_never": family_claimed,
}


# --------------------------------------------------------------------------- the marginal structural model
def _msm_initiation_model(b: Batch, req: Request, oc: str, h: float) -> np.ndarray:
    """Coefficients of the stabilised weights' numerator: a pooled logistic model of starting surgery in
    ``[k h, (k + 1) h)`` among those alive, under follow-up and unoperated at ``k h`` in the twin's own
    course (time terms k, k^2; with ``numerator: baseline`` also the adjustment set), as
    :mod:`causal_hcc.adjust.msm` fits it on a cohort."""
    from causal_hcc.core.logistic import logistic_fit
    from causal_hcc.design._tv import interval_records, time_terms

    T = np.minimum(OUTCOMES[oc](b.natural), b.pop.followup)
    s_nat = b.natural_surgery()
    tt = np.where(s_nat < T, s_nat, np.inf)
    until = np.where(np.isfinite(tt), (np.floor(tt / h + 1e-9) + 1) * h, np.inf)
    r, k = interval_records(T, h, until)
    A = (tt[r] < (k + 1) * h - 1e-9 * h).astype(float)
    D = _msm_design(b, req, r, k)
    return np.asarray(logistic_fit(D, A, where="msm truth: initiation model").coef, dtype=float)


def _msm_design(b: Batch, req: Request, r: np.ndarray, k: np.ndarray) -> np.ndarray:
    from causal_hcc.design._tv import time_terms

    cols = [np.ones(r.size), time_terms(k, "quadratic")[0]]
    if req.params.get("numerator", "baseline") == "baseline":
        cols.append(np.column_stack([b.covariate(c)[r] for c in req.confounders]))
    return np.column_stack(cols)


def _msm_batch(b: Batch, req: Request, oc: str, h: float, coef: np.ndarray) -> tuple[float, float]:
    """(log HR under the study's follow-up, log HR censored at the horizon only) of one batch."""
    from causal_hcc.core.cox import coxph

    p = b.p
    horizon = p.followup_min + p.followup_span
    nk = int(math.ceil(horizon / h)) + 1
    r = np.repeat(np.arange(b.n), nk)
    k = np.tile(np.arange(nk), b.n)
    q = expit(_msm_design(b, req, r, k) @ coef).reshape(b.n, nk)
    U = b.rng.random((b.n, nk))
    hit = U < q
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    start = np.where(first >= 0, (first + b.rng.random(b.n)) * h, np.inf)
    ev = course(b.pop, p, start, surgeon=False, any_state=True)
    T = OUTCOMES[oc](ev)
    s = np.where(ev["operated"], ev["surgery_time"], np.inf)
    Xb = None
    if req.params.get("numerator", "baseline") == "baseline":
        Xb = np.column_stack([b.covariate(c) for c in req.confounders])
    out = []
    for C in (b.pop.followup, np.full(b.n, horizon)):
        stop = np.minimum(T, C)
        event = (T <= C).astype(float)
        split = s < stop
        i1 = np.flatnonzero(split)
        entry = np.concatenate([np.zeros(b.n), s[i1]])
        exit_ = np.concatenate([np.where(split, s, stop), stop[i1]])
        ev_ = np.concatenate([np.where(split, 0.0, event), event[i1]])
        trt = np.concatenate([np.zeros(b.n), np.ones(i1.size)])
        rows = np.concatenate([np.arange(b.n), i1])
        X = trt[:, None] if Xb is None else np.column_stack([trt, Xb[rows]])
        keep = np.ptp(X, axis=0) > 0
        keep[0] = True
        fit = coxph(exit_, ev_, X[:, keep], entry=entry, robust=False)
        out.append(float(np.asarray(fit.coef)[0]))
    return out[0], out[1]


def _msm_truth(req: Request, p: TwinParams, n_large: int, outcome: str) -> dict:
    """Truth of ``msm_treated_vs_untreated``: the limit of the marginal structural Cox model.

    The MSM's stabilised weights create a pseudo-population in which starting surgery in
    each assessment interval does not depend on the time-varying confounder (nor, with
    ``numerator: time``, on the baseline covariates): its hazard is the numerator model's.
    The truth is the Cox HR of current surgery (with the baseline covariates for ``numerator:
    baseline``) in that population, simulated: start times drawn from the numerator model
    fitted on the twin's own course (interval = ``visit_interval``, the default weight grid
    with visits; a uniform time inside the interval), outcomes by the twin's structural
    model, censored by the study's follow-up. For OS the twin never operates after
    progression, whereas the MSM's static regimes would: the hypothetical "operate after
    progression too" takes the twin's structural effect (death hazard x ``true_hr``), which
    the observed data cannot show (a structural positivity violation, said in the note). For
    PFS progression ends follow-up and the truth is the MSM's own.
    """
    numerator = req.params.get("numerator", "baseline")
    if numerator == "none":
        raise Undefined("the unstabilised MSM's pseudo-population has no initiation model to simulate "
                        "(use numerator time or baseline)")
    if numerator == "baseline":
        bad = [c for c in req.confounders if c not in BINARY_COVARIATES + ("age", "tumour_diameter_cm")]
        if bad:
            raise Undefined(f"the adjustment set is not made of twin covariates ({', '.join(bad)})")
    h = float(p.visit_interval)
    K, size = _batches(n_large)
    ref = Batch(p, 0, size)
    coef = _msm_initiation_model(ref, req, outcome, h)
    est, est_h = [], []
    for bi in range(K):
        b = ref if bi == 0 else Batch(p, bi, size)
        a, c = _msm_batch(b, req, outcome, h, coef)
        est.append(a)
        est_h.append(c)
    v, vh = np.asarray(est), np.asarray(est_h)
    note = ("limit of the marginal structural Cox model: surgery started with the stabilised numerator's hazard "
            f"(intervals of {h:g}: the assessments), independently of the performance status"
            + (" and of the covariates" if numerator == "time" else "; Cox model with the baseline covariates")
            + ", censored by the study's follow-up")
    if outcome == "os":
        note += ("; OS: the MSM's static regimes include surgery after progression, which the twin never does "
                 "(positivity violated): its truth takes the twin's structural effect after progression, which the "
                 "data cannot show")
    return {"hr": round(math.exp(float(v.mean())), 6), "hr_horizon": round(math.exp(float(vh.mean())), 6),
            "survival_difference": {}, "rmst_difference": {}, "risk_ratio": {}, "median_difference": None,
            "mc_se": {"hr": float(v.std(ddof=1) / math.sqrt(K)), "hr_horizon": float(vh.std(ddof=1) / math.sqrt(K)),
                      "survival_difference": {}, "rmst_difference": {}, "risk_ratio": {}},
            "n_population": int(K * size), "n_units": int(K * size), "batches": K, "note": note,
            "follow_up": "the study's (potential follow-up of the twin)"}


# --------------------------------------------------------------------------- the engine
def _batches(n_large: int) -> tuple[int, int]:
    size = min(BATCH_SIZE, max(1000, math.ceil(n_large / MIN_BATCHES)))
    return max(MIN_BATCHES, math.ceil(n_large / size)), size


@dataclass
class _Accumulator:
    """Pooled statistics and per-batch estimates of one (estimand, adjustment set), every outcome."""

    batch_size: int
    stats: dict[str, lim.Stats] = field(default_factory=dict)
    #: the statistics of the even and of the odd batches (half-sample bias correction)
    halves: dict[str, list[lim.Stats | None]] = field(default_factory=dict)
    per_batch: dict[str, list[dict]] = field(default_factory=dict)
    n_done: int = 0
    n_units: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


_ACC: dict[tuple, _Accumulator] = {}
_RESULT_CACHE: dict[tuple, dict] = {}


def _cells(X: np.ndarray | None, names: tuple[str, ...]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Cell code of each unit on the binary adjustment covariates and the covariate matrix of each cell."""
    if X is None:
        return None, None
    if X.shape[1] > 10:
        raise Undefined("conditional truth computed for at most 10 adjustment covariates")
    for j, name in enumerate(names):
        if not np.all((X[:, j] == 0) | (X[:, j] == 1)):
            raise Undefined(f"conditional truth computed for binary adjustment covariates only ('{name}' is not)")
    bits = 1 << np.arange(X.shape[1])
    code = (X.astype(np.int64) * bits).sum(axis=1)
    Zc = ((np.arange(1 << X.shape[1])[:, None] & bits) > 0).astype(float)
    return code, Zc


def _estimates(st: lim.Stats, Z: np.ndarray, n_cells: int, g, g_h, times, tau, beta0=None, mult=None) -> dict:
    """The measures of one set of statistics. ``mult``: the stabilised weights' numerators (clone-censor), which
    change the Cox limits only (they cancel from each arm's Kaplan-Meier); the HR without them is then
    ``log_hr_trial`` (the emulated trial's)."""
    beta = lim.cox_limit(st, Z, g, beta0, mult=mult)
    beta_h = lim.cox_limit(st, Z, g_h, beta, mult=mult)
    curves = lim.curve_measures(lim.km_limit(st, n_cells, g), st.grid.edges, times, tau)
    out = {"log_hr": float(beta[0]), "log_hr_horizon": float(beta_h[0]), "beta": beta, **curves}
    if mult is not None:
        out["log_hr_trial"] = float(lim.cox_limit(st, Z, g, beta0)[0])
    return out


def _run(req: Request, acc: _Accumulator, n_batches: int, times, tau, outcomes) -> None:
    p = req.p
    fam = FAMILIES[req.estimand["contrast"]]
    g = lim.follow_up_survivor(p.followup_beta_a, p.followup_beta_b, p.followup_min, p.followup_span)
    horizon = p.followup_min + p.followup_span
    g_h = lim.horizon_only(horizon)
    conditional = req.conditional
    # outcomes whose populations coincide share one pass of the family (the PFS outcome's population is
    # progression-free at the origin; so is every outcome's with require_event_free: pfs)
    ef_given = req.params.get("require_event_free")
    groups: dict[Any, list[str]] = {}
    if p.competing:
        outcomes = tuple(outcomes) + tuple(oc for oc in COMPETING_OUTCOMES if oc not in outcomes)
    for oc in outcomes:
        groups.setdefault(ef_given or ("pfs" if oc == "pfs" else None), []).append(oc)
    for bi in range(acc.n_done, n_batches):
        b = Batch(p, bi, acc.batch_size)
        req.info = acc.info
        for group in groups.values():
            req.outcome = group[0]
            _run_group(req, acc, b, fam(b, req), group, times, tau, g, g_h, horizon, conditional)
        acc.n_done = bi + 1


def _run_group(req: Request, acc: _Accumulator, b: Batch, unit_iter, outcomes, times, tau, g, g_h, horizon,
               conditional) -> None:
    units = list(unit_iter)
    if not units:
        raise Undefined("nobody in the estimand's population")
    code_list = []
    Zc = None
    for u in units:
        code, Zc_u = _cells(u.X, req.confounders) if conditional else (None, None)
        code_list.append(code)
        Zc = Zc_u if Zc_u is not None else Zc
    n_cells = 1 if Zc is None else Zc.shape[0]
    Z = np.column_stack([np.repeat([0.0, 1.0], n_cells)] + ([np.vstack([Zc, Zc])] if Zc is not None else []))
    if "_grid" not in acc.info:   # one grid for every batch (their statistics are added)
        n_strata = max(u.key for u in units) + 1
        width = max(lim.BIN_WIDTH, horizon * n_strata * 2 * n_cells / lim.MAX_CELLS)
        acc.info["_grid"] = lim.Grid.make(horizon, tuple(times) + (tau,), width)
    grid = acc.info["_grid"]
    for oc in outcomes:
        if oc in COMPETING_OUTCOMES:
            _run_competing(acc, b, units, code_list, oc, Z, n_cells, grid, times, g)
            continue
        st = lim.Stats(n_types=2 * n_cells, grid=grid)
        for u, code in zip(units, code_list):
            keep = u.w > 0
            ext = OUTCOMES[oc]
            t1 = ext(u.ev1)[u.idx][keep] - u.origin
            t0 = ext(u.ev0)[u.idx][keep] - u.origin
            st.add(lim.Stratum(u.key, u.origin, t1, t0, u.w[keep], None if code is None else code[keep]),
                   t1, t0, n_cells)
        beta0 = acc.per_batch[oc][-1]["beta"] if acc.per_batch.get(oc) else None
        num = acc.info.get("_hr_mult")
        _add_batch(acc, oc, b.index, st, _estimates(st, Z, n_cells, g, g_h, times, tau, beta0,
                                                    None if num is None else num(oc, n_cells)))
    for oc in outcomes:
        acc.n_units[oc] = acc.n_units.get(oc, 0) + int(sum(int((u.w > 0).sum()) for u in units))
    acc.info["_Z"], acc.info["_n_cells"] = Z, n_cells


def _estimates_cr(st: lim.Stats, st1: lim.Stats, Z: np.ndarray, n_cells: int, g, times, beta0=None) -> dict:
    """Competing-risks measures of one set of statistics: cause-specific and subdistribution log HRs
    (Cox limits: risk sets left at any event, or only at the event of interest), and the cumulative
    incidence difference and log ratio at ``times`` (Aalen–Johansen limits)."""
    b0 = None if beta0 is None else beta0[0]
    b_cs = lim.cox_limit(st1, Z, g, b0, risk=st)
    b_sd = lim.cox_limit(st1, Z, g, None if beta0 is None else beta0[1])
    F = lim.cif_limit(st, st1, n_cells, g)
    e = st.grid.edges

    def at(c: np.ndarray, t: float) -> float:
        return float(np.interp(t, e, c))

    lr = {}
    for t in times:
        f1, f0 = at(F[1], t), at(F[0], t)
        lr[f"{t:g}"] = math.log(f1 / f0) if f1 > 0 and f0 > 0 else math.nan
    return {"log_cshr": float(b_cs[0]), "log_shr": float(b_sd[0]), "beta": (b_cs, b_sd),
            "cif_difference": {f"{t:g}": at(F[1], t) - at(F[0], t) for t in times}, "log_cif_ratio": lr}


def _run_competing(acc: _Accumulator, b: Batch, units: list, code_list: list, oc: str, Z: np.ndarray,
                   n_cells: int, grid: lim.Grid, times, g) -> None:
    st = lim.Stats(n_types=2 * n_cells, grid=grid)
    st1 = lim.Stats(n_types=2 * n_cells, grid=grid)
    ext = COMPETING_OUTCOMES[oc]
    for u, code in zip(units, code_list):
        keep = u.w > 0
        (a1, c1), (a0, c0) = ext(u.ev1), ext(u.ev0)
        t1, t0 = a1[u.idx][keep] - u.origin, a0[u.idx][keep] - u.origin
        k1, k0 = c1[u.idx][keep] == 1, c0[u.idx][keep] == 1
        stratum = lim.Stratum(u.key, u.origin, t1, t0, u.w[keep], None if code is None else code[keep])
        st.add(stratum, t1, t0, n_cells)
        st1.add(stratum, np.where(k1, t1, np.inf), np.where(k0, t0, np.inf), n_cells)
    beta0 = acc.per_batch[oc][-1]["beta"] if acc.per_batch.get(oc) else None
    est = _estimates_cr(st, st1, Z, n_cells, g, times, beta0)
    acc.per_batch.setdefault(oc, []).append(est)
    for key, s_ in ((oc, st), (oc + "#1", st1)):
        half = acc.halves.setdefault(key, [None, None])
        if half[b.index % 2] is None:
            half[b.index % 2] = s_.copy()
        else:
            half[b.index % 2].merge(s_)
        if key in acc.stats:
            acc.stats[key].merge(s_)
        else:
            acc.stats[key] = s_


def _summary_cr(acc: _Accumulator, outcome: str, p: TwinParams, times) -> dict:
    """The competing-risks truths of one outcome (as :func:`_summary`; ratios' MC SEs on the log scale)."""
    g = lim.follow_up_survivor(p.followup_beta_a, p.followup_beta_b, p.followup_min, p.followup_span)
    Z, n_cells = acc.info["_Z"], acc.info["_n_cells"]
    pb = acc.per_batch[outcome]
    full = _estimates_cr(acc.stats[outcome], acc.stats[outcome + "#1"], Z, n_cells, g, times, pb[-1]["beta"])
    halves = [_estimates_cr(acc.halves[outcome][i], acc.halves[outcome + "#1"][i], Z, n_cells, g, times,
                            full["beta"]) for i in (0, 1)]
    est = dict(full)
    for k in ("log_cshr", "log_shr"):
        est[k] = 2 * full[k] - 0.5 * (halves[0][k] + halves[1][k])
    for k in ("cif_difference", "log_cif_ratio"):
        est[k] = {t: 2 * v - 0.5 * (halves[0][k][t] + halves[1][k][t]) for t, v in full[k].items()}
    K = len(pb)

    def se(values: list[float]) -> float:
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        return float(np.std(v, ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan

    return {
        "cause_specific_hr": round(math.exp(est["log_cshr"]), 6),
        "subdistribution_hr": round(math.exp(est["log_shr"]), 6),
        "cif_difference": est["cif_difference"],
        "cif_ratio": {t: (round(math.exp(v), 6) if math.isfinite(v) else None) for t, v in est["log_cif_ratio"].items()},
        "hr": None, "survival_difference": {}, "rmst_difference": {}, "risk_ratio": {}, "median_difference": None,
        "mc_se": {"cause_specific_hr": se([b["log_cshr"] for b in pb]),
                  "subdistribution_hr": se([b["log_shr"] for b in pb]),
                  "cif_difference": {t: se([b["cif_difference"][t] for b in pb]) for t in est["cif_difference"]},
                  "cif_ratio": {t: se([b["log_cif_ratio"][t] for b in pb]) for t in est["log_cif_ratio"]}},
        "n_population": int(acc.n_done * acc.batch_size), "n_units": int(acc.n_units.get(outcome, 0)),
        "batches": K, "cause": 1, "competing": "death from liver failure (cause 2)",
        "follow_up": "the study's (potential follow-up of the twin); cumulative incidences do not depend on it",
    }


def _add_batch(acc: _Accumulator, oc: str, index: int, st: lim.Stats, est: dict) -> None:
    acc.per_batch.setdefault(oc, []).append(est)
    half = acc.halves.setdefault(oc, [None, None])
    if half[index % 2] is None:
        half[index % 2] = st.copy()
    else:
        half[index % 2].merge(st)
    if oc in acc.stats:
        acc.stats[oc].merge(st)
    else:
        acc.stats[oc] = st


#: the scalar measures of ``_estimates`` that the half-sample correction applies to
_CORRECTED = ("log_hr", "log_hr_horizon", "median_difference", "log_hr_trial")


def _bias_corrected(full: dict, halves: list[dict]) -> dict:
    """``2 full - mean(halves)`` for every measure (removes the O(1/N) bias of ratio estimators)."""
    out = dict(full)
    for k in _CORRECTED:
        if k in full:
            out[k] = 2 * full[k] - 0.5 * (halves[0][k] + halves[1][k])
    for k in ("survival_difference", "rmst_difference", "log_risk_ratio"):
        out[k] = {t: 2 * v - 0.5 * (halves[0][k][t] + halves[1][k][t]) for t, v in full[k].items()}
    return out


def _summary(acc: _Accumulator, outcome: str, p: TwinParams, times, tau) -> dict:
    g = lim.follow_up_survivor(p.followup_beta_a, p.followup_beta_b, p.followup_min, p.followup_span)
    g_h = lim.horizon_only(p.followup_min + p.followup_span)
    Z, n_cells = acc.info["_Z"], acc.info["_n_cells"]
    pb = acc.per_batch[outcome]
    num = acc.info.get("_hr_mult")
    mult = None if num is None else num(outcome, n_cells)
    full = _estimates(acc.stats[outcome], Z, n_cells, g, g_h, times, tau, pb[-1]["beta"], mult)
    halves = [_estimates(h, Z, n_cells, g, g_h, times, tau, full["beta"], mult) for h in acc.halves[outcome]]
    est = _bias_corrected(full, halves)
    K = len(pb)

    def se(values: list[float]) -> float:
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        return float(np.std(v, ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan

    out = {
        # 6 decimals: far below the Monte Carlo error, and exactly 1 under the null
        "hr": round(math.exp(est["log_hr"]), 6),
        "hr_horizon": round(math.exp(est["log_hr_horizon"]), 6),
        "survival_difference": est["survival_difference"],
        "rmst_difference": est["rmst_difference"],
        "risk_ratio": {t: (round(math.exp(v), 6) if math.isfinite(v) else None)
                       for t, v in est["log_risk_ratio"].items()},
        "median_difference": None if not math.isfinite(est["median_difference"]) else est["median_difference"],
        "median_treat": est["median_treat"], "median_control": est["median_control"],
        "mc_se": {
            "hr": se([b["log_hr"] for b in pb]),
            "hr_horizon": se([b["log_hr_horizon"] for b in pb]),
            "survival_difference": {t: se([b["survival_difference"][t] for b in pb])
                                    for t in est["survival_difference"]},
            "rmst_difference": {t: se([b["rmst_difference"][t] for b in pb]) for t in est["rmst_difference"]},
            "risk_ratio": {t: se([b["log_risk_ratio"][t] for b in pb]) for t in est["log_risk_ratio"]},   # log
            "median_difference": se([b["median_difference"] for b in pb]),
        },
        "n_population": int(acc.n_done * acc.batch_size),
        "n_units": int(acc.n_units.get(outcome, 0)),
        "batches": K,
        "follow_up": "the study's (potential follow-up of the twin); hr_horizon: censored only at "
                     f"{p.followup_min + p.followup_span:g} months",
    }
    if "log_hr_trial" in est:    # stabilised weights (clone-censor): the emulated trial's HR beside
        out["hr_emulated_trial"] = round(math.exp(est["log_hr_trial"]), 6)
        out["mc_se"]["hr_emulated_trial"] = se([b["log_hr_trial"] for b in pb])
        out["numerator"] = num.kind
        out["p_not_censored_at_grace"] = round(num.p_uncensored.get(outcome, math.nan), 4)
    return out


def estimand_truth(estimand: dict, params: TwinParams | None = None, *, times: tuple[float, ...] = (12.0, 24.0),
                   rmst_tau: float = 24.0, confounders: tuple[str, ...] = (), n_large: int = DEFAULT_N_LARGE,
                   outcome: str = "os") -> dict:
    """The twin's truth of one estimand (``Estimand.to_dict()``) for one outcome (``os``, ``pfs``).

    Returns a JSON-serialisable dict: ``hr`` (the limit of the strategy's Cox estimator under
    the study's follow-up), ``hr_horizon`` (censored at 84 months only: the old definition),
    ``survival_difference`` ({"12": ...}), ``rmst_difference`` ({"24": ...}), ``risk_ratio``
    ({"12": ...}: (1 - S1) / (1 - S0)), ``median_difference``, ``mc_se`` (the Monte Carlo SE
    of each: HR and risk ratio on the log scale),
    ``kind`` (``own``; ``claimed`` for a contrast that is not causal; ``undefined`` with
    ``defined: False`` and the reason in ``note``), ``n_population``, ``batches``.

    ``n_large`` patients are simulated in batches of up to 50,000 (at least 8 batches); a
    larger ``n_large`` for the same estimand reuses the batches already computed (the truth
    of n patients is nested in that of 2n). Conditional estimands need a binary adjustment
    set of twin covariates (``confounders``); ``overlap`` populations need twin covariates.

    References
    ----------
    Hernán MA, Robins JM. Am J Epidemiol 2016;183:758-64 (target trials).
    Austin PC. Stat Med 2013;32:2837-49 (marginal HRs by simulating both regimes).
    Struthers CA, Kalbfleisch JD. Biometrika 1986;73:363-9 (Cox limits under non-PH).
    """
    p = params if params is not None else TwinParams()
    from causal_hcc.twin.recalibrate import resolve

    p = resolve(p)
    e = estimand
    if not isinstance(n_large, int) or n_large < 1000 or n_large > MAX_N_LARGE:
        from causal_hcc.errors import SpecError

        raise SpecError(f"truth: n_large must be an integer in [1000, {MAX_N_LARGE}] (got {n_large!r})")
    times = tuple(float(t) for t in times)
    rmst_tau = float(rmst_tau)
    contrast, scale, pop_code = e["contrast"], e["scale"], e["population"]
    needs_x = scale == "conditional" or pop_code == "overlap"
    pkey = p.key(exclude=("n", "seed", "include_unmeasured"))
    ekey = (e["label"], contrast, scale, pop_code, tuple(sorted((e.get("params") or {}).items(), key=str)),
            tuple(confounders) if needs_x else ())
    rkey = (pkey, ekey, times, rmst_tau, n_large, outcome)
    if rkey in _RESULT_CACHE:
        return copy.deepcopy(_RESULT_CACHE[rkey])
    base = {"estimand": e["label"], "description": e.get("description", ""), "kind": "own", "defined": True,
            "note": "", "outcome": outcome}

    def done(res: dict) -> dict:
        _RESULT_CACHE[rkey] = res
        return copy.deepcopy(res)

    def undefined(why: str) -> dict:
        return done({**base, "defined": False, "kind": "undefined", "note": f"undefined: {why}"})

    if outcome in COMPETING_OUTCOMES and not p.competing:
        return undefined(f"the twin has no competing cause of death (competing_death_rate: 0), so no '{outcome}'")
    if outcome not in OUTCOMES and outcome not in COMPETING_OUTCOMES:
        return undefined(f"the twin simulates {', '.join(OUTCOMES)} only, not '{outcome}'")
    if contrast in ("structural", "ever_vs_never") and scale == "conditional":
        kind = "own" if contrast == "structural" else "claimed"
        note = ("the structural HR: the twin multiplies the death hazards by true_hr from surgery on, "
                "conditional on the covariates and the disease state")
        if outcome == "pfs":
            if p.true_hr != p.true_hr_progression:
                return undefined("surgery multiplies the progression hazard by true_hr_progression "
                                 f"({p.true_hr_progression:g}) and death before progression by true_hr "
                                 f"({p.true_hr:g}): the conditional HR on PFS is not constant")
            note = "the structural HR on PFS: surgery multiplies progression and death hazards by the same HR"
        if contrast == "ever_vs_never":
            note = "ever vs never is not a causal contrast; compared with the paper's claim, surgery's own HR: " + note
        if p.tv_active:
            note += ("; with the time-varying confounder on, conditional on the current performance status too (a "
                     "Cox model without it omits a confounder"
                     + (", and with it misses the effect of surgery through the status" if p.ps_surgery_log_or
                        and p.ps_death_log_hr else "") + ")")
        if outcome in COMPETING_OUTCOMES:
            note += ("; cancer death with liver failure competing: the structural cause-specific HR (surgery "
                     "multiplies the cancer death hazards by true_hr); no subdistribution HR is constant")
            return done({**base, "kind": kind, "note": note, "cause_specific_hr": float(p.true_hr),
                         "mc_se": {"cause_specific_hr": 0.0}})
        return done({**base, "kind": kind, "note": note, "hr": float(p.true_hr), "hr_horizon": float(p.true_hr),
                     "survival_difference": {}, "rmst_difference": {}, "median_difference": None,
                     "mc_se": {"hr": 0.0, "survival_difference": {}, "rmst_difference": {}}})
    if contrast == "structural":
        return undefined("curve differences of a time-dependent exposure are descriptive (Simon-Makuch), "
                         "not a contrast of two strategies")
    if contrast == "msm_treated_vs_untreated":
        req = Request(estimand=e, confounders=tuple(confounders), p=p, outcome=outcome)
        try:
            res = _msm_truth(req, p, n_large, outcome)
        except Undefined as exc:
            return undefined(str(exc))
        return done({**base, **res})
    if contrast not in FAMILIES:
        return undefined(f"no truth for contrast '{contrast}'" + (" (not declared by the component)"
                                                                  if contrast == "unspecified" else ""))
    if needs_x:
        bad = [c for c in confounders if c not in BINARY_COVARIATES + ("age", "tumour_diameter_cm")]
        if bad or not confounders:
            return undefined("the adjustment set is not made of twin covariates "
                             f"({', '.join(bad) or 'none given'})")
    if scale == "conditional":
        cont = [c for c in confounders if c in ("age", "tumour_diameter_cm")]
        if cont:
            return undefined(f"conditional truth computed for binary adjustment covariates only ('{cont[0]}' is not)")
        if len(confounders) > 10:
            return undefined("conditional truth computed for at most 10 adjustment covariates")
    kind = "claimed" if contrast == "ever_vs_never" else "own"
    if p.no_effect:
        # no effect: both potential outcomes of every unit are the same path, so every truth is exactly null
        zero = {f"{t:g}": 0.0 for t in times}
        if outcome in COMPETING_OUTCOMES:
            return done({**base, "kind": kind, "note": "no effect of surgery: both regimes give every patient the "
                         "same outcome", "cause_specific_hr": 1.0, "subdistribution_hr": 1.0,
                         "cif_difference": dict(zero), "cif_ratio": {k: 1.0 for k in zero},
                         "mc_se": {"cause_specific_hr": 0.0, "subdistribution_hr": 0.0,
                                   "cif_difference": dict(zero), "cif_ratio": dict(zero)},
                         "n_population": 0, "n_units": 0, "batches": 0})
        return done({**base, "kind": kind, "note": "no effect of surgery (true_hr = true_hr_progression = 1): "
                     "both regimes give every patient the same outcome", "hr": 1.0, "hr_horizon": 1.0,
                     "survival_difference": dict(zero), "rmst_difference": {f"{rmst_tau:g}": 0.0},
                     "risk_ratio": {k: 1.0 for k in zero}, "median_difference": 0.0,
                     "mc_se": {"hr": 0.0, "hr_horizon": 0.0, "survival_difference": dict(zero),
                               "rmst_difference": {f"{rmst_tau:g}": 0.0}, "risk_ratio": dict(zero),
                               "median_difference": 0.0},
                     "n_population": 0, "n_units": 0, "batches": 0})
    akey = (pkey, ekey, times, rmst_tau)
    K, size = _batches(n_large)
    acc = _ACC.get(akey)
    if acc is None or acc.batch_size != size or acc.n_done > K:
        # a cached accumulator is extended, never cut back (the truth of n_large is that of its first
        # K batches exactly, whatever was computed before)
        acc = _Accumulator(batch_size=size)
    req = Request(estimand=e, confounders=tuple(confounders), p=p)
    try:
        _run(req, acc, K, times, rmst_tau, tuple(OUTCOMES))
    except Undefined as exc:
        return undefined(str(exc))
    _ACC[akey] = acc
    if len(_ACC) > 32:
        _ACC.pop(next(iter(_ACC)))
    res = _summary_cr(acc, outcome, p, times) if outcome in COMPETING_OUTCOMES else _summary(acc, outcome, p, times,
                                                                                              rmst_tau)
    info = {k: v for k, v in acc.info.items() if not k.startswith("_") and k != "grid_window"}
    res.update({k: v for k, v in info.items() if k != "note"})
    note = info.get("note", "")
    if res.get("hr_emulated_trial") is not None:
        note += (f"; HR of the stabilised pseudo-population (numerator {res['numerator']}: the treat arm weighs "
                 f"P(not censored at G) = {res['p_not_censored_at_grace']:.3g} after G, the never-treat arm "
                 f"exp(-H(t)) of surgery), the limit of the default estimator; the emulated trial's HR (numerator: "
                 f"none) is {res['hr_emulated_trial']:.4g}; survival, RMST and risk ratios are the same for both")
    return done({**base, "kind": kind, "note": note, **res})


# --------------------------------------------------------------------------- the headline truth
def truth(params: TwinParams | None = None, n_large: int = DEFAULT_N_LARGE, *,
          times: tuple[float, ...] = (12.0, 24.0), rmst_tau: float = 24.0,
          grid_step: float = 1.0) -> dict:
    """True marginal effect of "operate when eligible" vs "never operate" on OS (the claimed estimand).

    *Operate when eligible*: a patient the surgeons would consider a candidate (the twin's
    candidacy model: covariates, the unmeasured fitness U, the centre) is operated at his or
    her surgical delay if still alive and progression-free then; non-candidates never.
    *Never*: nobody is operated. Both regimes for the same patients with the same random
    numbers; under ``true_hr = 1`` (and ``true_hr_progression = 1``) the truth is exactly null.

    Returns a JSON-serialisable dict: ``estimand`` (text), ``hr_structural`` (= ``true_hr``),
    ``hr`` (the marginal Cox HR under the study's follow-up), ``hr_horizon`` (censored at 84
    months only), ``survival_difference``, ``rmst_difference``, medians, ``mc_se``, the
    ``survival`` curves on a grid, and the same block for the surgical ``candidates``;
    ``share_candidates``, ``share_operated``, ``n_large``, ``truth_seed``, ``horizon``.

    References
    ----------
    Austin P.C. Stat Med 32:2837-2849 (2013). Hernan M.A., Robins J.M. Causal Inference:
    What If (2020), ch. 19-22.
    """
    p = params if params is not None else TwinParams()
    from causal_hcc.twin.recalibrate import recalibration_note, resolve

    note = recalibration_note(p)
    p = resolve(p)
    if not isinstance(n_large, int) or n_large < 1000 or n_large > MAX_N_LARGE:
        from causal_hcc.errors import SpecError

        raise SpecError(f"truth: n_large must be an integer in [1000, {MAX_N_LARGE}] (got {n_large!r})")
    key = (note, p.key(exclude=("n", "seed", "include_unmeasured")), n_large, tuple(times), rmst_tau, grid_step)
    if key in _RESULT_CACHE:
        return copy.deepcopy(_RESULT_CACHE[key])
    horizon = p.followup_min + p.followup_span
    grid = np.arange(0.0, horizon + 1e-9, grid_step)
    out = {
        "estimand": ("marginal effect on overall survival of 'operate when eligible' (candidates "
                     "operated at their delay if alive and progression-free) vs 'never operate'; "
                     "non-candidates are never operated in either regime"),
        "outcome": "os",
        "hr_structural": p.true_hr,
        "n_large": n_large,
        "truth_seed": p.truth_seed,
        "horizon": horizon,
    }
    K, size = _batches(n_large)
    g = lim.follow_up_survivor(p.followup_beta_a, p.followup_beta_b, p.followup_min, p.followup_span)
    g_h = lim.horizon_only(horizon)
    Z = np.array([[0.0], [1.0]])
    grd = lim.Grid.make(horizon, tuple(times) + (rmst_tau,) + tuple(grid[1:]), lim.BIN_WIDTH)
    accs = {who: _Accumulator(batch_size=size) for who in ("all", "candidates")}
    share_c, share_o = [], []
    for bi in range(K):
        b = Batch(p, bi, size)
        share_c.append(float(b.cand.mean()))
        share_o.append(float(b.natural["operated"].mean()))
        for who, acc in accs.items():
            w = np.ones(b.n) if who == "all" else b.cand.astype(float)
            keep = w > 0
            st = lim.Stats(n_types=2, grid=grd)
            t1, t0 = b.natural["t_death"][keep], b.never["t_death"][keep]
            st.add(lim.Stratum(0, 0.0, t1, t0, w[keep]), t1, t0, 1)
            _add_batch(acc, "os", bi, st, _estimates(st, Z, 1, g, g_h, times, rmst_tau))
            acc.n_done += 1
            acc.n_units["os"] = acc.n_units.get("os", 0) + int(keep.sum())
    blocks = {}
    for who, acc in accs.items():
        acc.info["_Z"], acc.info["_n_cells"] = Z, 1
        s = _summary(acc, "os", p, times, rmst_tau)
        S = lim.km_limit(acc.stats["os"], 1, g)
        edges = acc.stats["os"].grid.edges
        blocks[who] = {
            "n": s["n_units"], "hr": s["hr"], "hr_horizon": s["hr_horizon"], "hr_mc_se_log": s["mc_se"]["hr"],
            "survival_difference": s["survival_difference"], "rmst_difference": s["rmst_difference"],
            "median_difference": s["median_difference"], "mc_se": s["mc_se"],
            "median_operate_when_eligible": s["median_treat"], "median_never_operate": s["median_control"],
            "survival": {"time": [float(x) for x in grid],
                         "operate_when_eligible": [round(float(v), 6) for v in np.interp(grid, edges, S[1])],
                         "never_operate": [round(float(v), 6) for v in np.interp(grid, edges, S[0])]},
        }
    out["share_candidates"] = float(np.mean(share_c))
    out["share_operated"] = float(np.mean(share_o))
    out.update(blocks["all"])
    out["candidates"] = blocks["candidates"]
    if note:
        out["twin_recalibration"] = note
    out["follow_up"] = ("hr: the Cox limit under the study's follow-up (the twin's potential follow-up); "
                        f"hr_horizon: censored only at {horizon:g} months")
    _RESULT_CACHE[key] = out
    return copy.deepcopy(out)
