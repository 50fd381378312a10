"""Data-generating process of the digital twin (an illness-death model).

Reproducibility contract: a cohort is a pure function of :class:`TwinParams`.
Random numbers come from ``numpy.random.Generator(PCG64(seed))`` in a fixed
order -- first ``n_centres`` standard normals (centre effects), then one
``(n, 10)`` block of uniforms, row ``i`` belonging to patient ``i`` -- and every
non-uniform variate is obtained from those uniforms by an inverse CDF
(``scipy.special.ndtri``, ``gammaincinv``, ``betaincinv``). Hence

* the same seed gives byte-identical data on any machine (times are rounded
  to 4 decimals before output, which also absorbs last-ulp differences of
  vectorised ``exp``/``log`` between CPUs);
* changing an outcome parameter (``true_hr``, delays, hazards) does not
  change the covariates drawn (common random numbers across scenarios);
* the first ``n`` patients of a larger cohort with the same seed are the
  same patients (only their centre effects are shared too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from causal_hcc.twin.params import BINARY_COVARIATES, TwinParams

#: Columns of :func:`simulate_twin`'s output, in order (``u_fitness`` last, only on request).
TWIN_COLUMNS: tuple[str, ...] = (
    "id", "centre", "era", "os_months", "os_event", "pfs_months", "pfs_event",
    "progression_months", "surgery", "months_to_surgery",
    *BINARY_COVARIATES, "age", "tumour_diameter_cm",
)

_N_UNIFORMS = 10  # columns of the per-patient uniform block (see _draw)
_INTERCEPT_SEED = 987_654_321  # fixed population used to solve the candidacy intercept
_INTERCEPT_N = 100_000
_DELAY_NODES = 64
_PAPER_N = 150.0


@dataclass(frozen=True)
class _Population:
    """Covariates and latent draws of a population (internal)."""

    X: dict[str, np.ndarray]          # binary covariates (int8) + age, diameter (float)
    u: np.ndarray                     # unmeasured fitness (standard normal)
    centre: np.ndarray                # 1..n_centres
    centre_effect: np.ndarray         # candidacy random intercept per patient
    followup: np.ndarray              # potential follow-up, months
    u_cand: np.ndarray                # uniform for candidacy
    delay: np.ndarray                 # delay to surgery if candidate, months
    e_prog: np.ndarray                # unit exponentials for the three transitions
    e_death_pf: np.ndarray
    e_death_prog: np.ndarray
    u_ps: np.ndarray | None = None    # (n, n_visits) uniforms of the performance status at each assessment
    u_dec: np.ndarray | None = None   # (n, n_visits) uniforms of the surgical decision in each visit interval
    e_competing: np.ndarray | None = None   # unit exponential of the competing (liver-failure) death


def _centre_weights(k: int) -> np.ndarray:
    # Unequal centre sizes (a few large referral centres): weight 1/sqrt(j).
    w = 1.0 / np.sqrt(np.arange(1, k + 1, dtype=float))
    return np.cumsum(w / w.sum())


def _delay_scale(p: TwinParams) -> float:
    return p.surgery_delay_median / float(special.gammaincinv(p.surgery_delay_shape, 0.5))


def _draw(p: TwinParams, n: int, seed: int) -> _Population:
    rng = np.random.Generator(np.random.PCG64(seed))
    centre_fx = rng.standard_normal(p.n_centres) * p.centre_surgery_sd
    ub = rng.random((n, len(BINARY_COVARIATES)))
    uu = rng.random((n, _N_UNIFORMS))
    X: dict[str, np.ndarray] = {}
    for j, name in enumerate(BINARY_COVARIATES):
        X[name] = (ub[:, j] < p.prevalence[name]).astype(np.int8)
    X["age"] = np.clip(np.round(p.age_mean + p.age_sd * special.ndtri(uu[:, 0])), 18, 90)
    X["tumour_diameter_cm"] = np.clip(
        np.round(p.diameter_median * np.exp(p.diameter_log_sd * special.ndtri(uu[:, 1])), 1), 1.0, 30.0)
    centre = np.searchsorted(_centre_weights(p.n_centres), uu[:, 3], side="right") + 1
    centre = np.minimum(centre, p.n_centres)
    followup = p.followup_min + p.followup_span * special.betaincinv(
        p.followup_beta_a, p.followup_beta_b, uu[:, 4])
    delay = _delay_scale(p) * special.gammaincinv(p.surgery_delay_shape, uu[:, 6])
    # drawn after everything else, so the performance status leaves every earlier draw as it was
    nv = n_visits(p)
    uv = rng.random((n, 2 * nv))
    uc = rng.random(n)                 # the competing death (after the status: it too leaves earlier draws alone)
    return _Population(
        X=X, u=special.ndtri(uu[:, 2]), centre=centre.astype(np.int64),
        centre_effect=centre_fx[centre - 1], followup=followup, u_cand=uu[:, 5],
        delay=delay, e_prog=-np.log1p(-uu[:, 7]), e_death_pf=-np.log1p(-uu[:, 8]),
        e_death_prog=-np.log1p(-uu[:, 9]), u_ps=uv[:, :nv], u_dec=uv[:, nv:],
        e_competing=-np.log1p(-uc),
    )


def n_visits(p: TwinParams) -> int:
    """Number of assessments (at 0, h, 2h, ...) covering the longest follow-up."""
    return int(math.ceil((p.followup_min + p.followup_span) / p.visit_interval - 1e-9)) + 1


def _design_value(pop: _Population, p: TwinParams, name: str) -> np.ndarray:
    if name == "age_per_10y":
        return (pop.X["age"] - p.age_mean) / 10.0
    if name == "tumour_diameter_per_cm":
        return pop.X["tumour_diameter_cm"] - p.diameter_median
    return pop.X[name].astype(float)


def _lin(pop: _Population, p: TwinParams, effects: dict[str, float]) -> np.ndarray:
    lp = np.zeros(pop.u.shape[0])
    for name in sorted(effects):  # fixed summation order
        b = effects[name]
        if b != 0.0:
            lp += b * _design_value(pop, p, name)
    return lp


def _linear_predictors(pop: _Population, p: TwinParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lp_death, lp_progression, lp_candidacy without intercept)."""
    lp_d = _lin(pop, p, p.death_log_hr) - p.unmeasured_confounding * pop.u
    u_prog = 0.5 * p.unmeasured_confounding if p.u_progression_log_hr is None else p.u_progression_log_hr
    if p.progression_log_hr is None and p.u_progression_log_hr is None:
        lp_p = 0.5 * lp_d            # (this form keeps the default cohorts byte-identical)
    elif p.progression_log_hr is None:
        lp_p = 0.5 * _lin(pop, p, p.death_log_hr) - u_prog * pop.u
    else:
        lp_p = _lin(pop, p, p.progression_log_hr) - u_prog * pop.u
    lp_s = _lin(pop, p, p.surgery_log_or) + p.u_surgery_log_or * pop.u + pop.centre_effect
    return lp_d, lp_p, lp_s


_INTERCEPT_CACHE: dict[str, float] = {}


def _solve_intercept(p: TwinParams) -> float:
    pop = _draw(p, _INTERCEPT_N, _INTERCEPT_SEED)
    # integrate over the centre effect rather than fixing 15 draws
    rng = np.random.Generator(np.random.PCG64(_INTERCEPT_SEED + 1))
    pop = _Population(**{**pop.__dict__,
                         "centre_effect": rng.standard_normal(_INTERCEPT_N) * p.centre_surgery_sd})
    lp_d, lp_p, lp_s = _linear_predictors(pop, p)
    nodes = _delay_scale(p) * special.gammaincinv(
        p.surgery_delay_shape, (np.arange(_DELAY_NODES) + 0.5) / _DELAY_NODES)
    # P(progression-free, alive and under follow-up at the delay d | X)
    h_prog = (p.progression_rate * nodes[None, :]) ** p.progression_shape * np.exp(lp_p)[:, None]
    h_death = p.death_rate_pf * nodes[None, :] * np.exp(lp_d)[:, None]
    z = np.clip((nodes - p.followup_min) / p.followup_span, 0.0, 1.0)
    s_fu = 1.0 - special.betainc(p.followup_beta_a, p.followup_beta_b, z)
    reach = (np.exp(-h_prog - h_death) * s_fu[None, :]).mean(axis=1)
    target = p.target_operated / _PAPER_N

    def f(a: float) -> float:
        return float(np.mean(special.expit(a + lp_s) * reach)) - target

    if f(30.0) < 0:
        from causal_hcc.errors import SpecError
        raise SpecError(f"data.twin.target_operated: {p.target_operated} operated per 150 is "
                        f"unreachable (at most {150 * (f(30.0) + target):.1f} reach surgery alive)")
    return round(float(optimize.brentq(f, -40.0, 30.0, xtol=1e-10)), 6)


def surgery_intercept(p: TwinParams) -> float:
    """Intercept of the candidacy model giving ``target_operated`` per 150 patients.

    Solved (to 6 decimals) on a fixed 100,000-patient population, with the
    delay integrated by 64-node quantile quadrature and the centre effect
    integrated out; independent of ``seed``, ``n`` and the surgery effect.
    """
    excl = ("n", "seed", "include_unmeasured", "true_hr", "true_hr_progression", "truth_seed", "recalibrate")
    key = p.key(exclude=excl)
    if key not in _INTERCEPT_CACHE:
        if len(_INTERCEPT_CACHE) > 256:
            _INTERCEPT_CACHE.clear()
        _INTERCEPT_CACHE[key] = _solve_intercept(p)
    return _INTERCEPT_CACHE[key]


def _inv_weibull(target: np.ndarray, rate: float, shape: float) -> np.ndarray:
    return target ** (1.0 / shape) / rate


def _event_times(pop: _Population, p: TwinParams, regime: str, censor: bool,
                 status: bool = False) -> dict[str, np.ndarray]:
    """Progression, death and surgery times under a regime.

    regime: ``"observed"`` (candidates operated at their delay if alive,
    progression-free and under follow-up), ``"eligible"`` (same, ignoring
    follow-up: the "operate when eligible" strategy), ``"never"``.
    """
    n = pop.u.shape[0]
    if regime == "never":
        proposed = np.full(n, np.inf)
    else:
        _, _, lp_s = _linear_predictors(pop, p)
        cand = pop.u_cand < special.expit(surgery_intercept(p) + lp_s)
        if regime == "observed":
            cand &= pop.delay < pop.followup
        proposed = np.where(cand, pop.delay, np.inf)
    if p.tv_active:   # the surgeon looks at the current performance status (deferrals)
        return course(pop, p, proposed, surgeon=True, status=status)
    return outcomes_given_surgery(pop, p, proposed)


def outcomes_given_surgery(pop: _Population, p: TwinParams, proposed: np.ndarray) -> dict[str, np.ndarray]:
    """Progression, death and surgery times when surgery is proposed at ``proposed`` (inf: never).

    Surgery happens at the proposed time only if the patient is then alive and
    progression-free (the twin operates no one else); from then on the death
    hazards (both states) are multiplied by ``true_hr`` and the progression
    hazard by ``true_hr_progression``. Used for the observed cohort and for
    every counterfactual regime of the truth (same random numbers).
    """
    if p.tv_active:
        return course(pop, p, proposed, surgeon=False)
    lp_d, lp_p, _ = _linear_predictors(pop, p)
    ep = pop.e_prog * np.exp(-lp_p)          # target on the baseline cumulative-hazard scale
    ed = pop.e_death_pf * np.exp(-lp_d) / p.death_rate_pf
    t_prog0 = _inv_weibull(ep, p.progression_rate, p.progression_shape)
    t_death0 = ed
    operated = proposed < np.minimum(t_prog0, t_death0)
    s = np.where(operated, proposed, np.inf)
    # after surgery, hazards are multiplied by the true HRs
    h0s = np.where(operated, (p.progression_rate * np.where(operated, s, 0.0)) ** p.progression_shape, 0.0)
    t_prog = np.where(operated & (ep > h0s),
                      _inv_weibull(h0s + (ep - h0s) / p.true_hr_progression, p.progression_rate,
                                   p.progression_shape),
                      t_prog0)
    t_death_pf = np.where(operated & (ed > s), s + (ed - np.where(operated, s, 0.0)) / p.true_hr, t_death0)
    progressed = t_prog < t_death_pf
    rate_12 = p.death_rate_progressed * np.exp(lp_d) * np.where(operated, p.true_hr, 1.0)
    t_death = np.where(progressed, t_prog + pop.e_death_prog / rate_12, t_death_pf)
    t_prog = np.where(progressed, t_prog, np.inf)
    return _with_competing(pop, p, {"t_prog": t_prog, "t_death": t_death, "operated": operated, "surgery_time": s})


def _with_competing(pop: _Population, p: TwinParams, ev: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the competing (liver-failure) death to a course of the cancer process.

    The liver-failure hazard does not depend on the cancer process, so its time is closed
    form given the surgery date: ``t_L0 = E / rate`` without surgery; a patient operated
    before ``t_L0`` dies of it at ``s + (t_L0 - s) / true_hr_competing``; one who would die
    of it before the surgery date is not operated (the course of the cancer process up to
    then is the same either way). Returns the course with ``t_death`` = death from any
    cause and ``cause`` (1 cancer, 2 liver failure); without a competing cause ``cause`` is 1.
    """
    n = ev["t_death"].shape[0]
    if not p.competing:
        ev["cause"] = np.ones(n, dtype=np.int8)
        return ev
    lp = _lin(pop, p, p.competing_log_hr)
    t_l0 = pop.e_competing / (p.competing_death_rate * np.exp(lp))
    s = ev["surgery_time"]
    operated = ev["operated"] & (s < t_l0)
    t_l = np.where(operated, np.where(operated, s, 0.0) + (t_l0 - np.where(operated, s, 0.0)) / p.true_hr_competing,
                   t_l0)
    cancer_first = ev["t_death"] <= t_l
    t_death = np.where(cancer_first, ev["t_death"], t_l)
    out = dict(ev)
    out["t_death"] = t_death
    out["cause"] = np.where(cancer_first, 1, 2).astype(np.int8)
    out["t_prog"] = np.where(ev["t_prog"] < t_death, ev["t_prog"], np.inf)
    out["operated"] = operated
    out["surgery_time"] = np.where(operated, s, np.inf)
    if "ps" in ev:
        t = np.arange(ev["ps"].shape[1]) * p.visit_interval
        out["ps"] = np.where(t[None, :] < t_death[:, None], ev["ps"], -1).astype(np.int8)
    return out


def _prog_after(ep: np.ndarray, s: np.ndarray, p: TwinParams) -> np.ndarray:
    """Progression time of a patient operated at ``s`` before progression (closed form, as above)."""
    h0s = (p.progression_rate * s) ** p.progression_shape
    return _inv_weibull(h0s + (ep - h0s) / p.true_hr_progression, p.progression_rate, p.progression_shape)


def course(pop: _Population, p: TwinParams, proposed: np.ndarray, *, surgeon: bool,
           status: bool = False, any_state: bool = False) -> dict[str, np.ndarray]:
    """Progression, death, surgery and performance status, simulated assessment by assessment.

    The twin with its time-varying confounder (:attr:`TwinParams.tv_active`): the status is
    drawn at each assessment ``k h`` (:class:`TwinParams` says how) and holds until the next;
    hazards are piecewise constant between assessments, surgery and progression, and each
    event time is the point where the cumulative hazard reaches the patient's unit exponential
    (the same draws as :func:`outcomes_given_surgery`, which this reproduces exactly when the
    status affects nothing).

    ``proposed``: the first surgical decision (inf: none). ``surgeon=True``: the twin's
    surgeon decides there on the current status -- a candidate with poor status is operated
    with probability ``ps_poor_operate_prob``, otherwise the decision is deferred to the next
    assessment (and so on); ``surgeon=False``: a regime, surgery at ``proposed`` whatever the
    status. Either way only a patient alive and progression-free then is operated.
    ``status=True`` adds ``ps``: the ``(n, n_visits)`` status at each assessment (-1 after death).
    ``any_state=True`` (a hypothetical regime only): operated at ``proposed`` even after
    progression (the death hazard after progression is then multiplied by ``true_hr``, as the
    twin's structural model says for an operated patient who progresses).
    """
    n = pop.u.shape[0]
    h = p.visit_interval
    nv = n_visits(p)
    lp_d, lp_p, _ = _linear_predictors(pop, p)
    ep = pop.e_prog * np.exp(-lp_p)
    t_prog = _inv_weibull(ep, p.progression_rate, p.progression_shape)   # until operated
    rate = {False: p.death_rate_pf * np.exp(lp_d), True: p.death_rate_progressed * np.exp(lp_d)}
    budget = {False: pop.e_death_pf, True: pop.e_death_prog}
    used = {False: np.zeros(n), True: np.zeros(n)}       # cumulative 0->2 hazard, and 1->2 since progression
    t_death = np.full(n, np.inf)
    s = np.full(n, np.inf)
    dec = np.asarray(proposed, dtype=float).copy()
    poor = np.zeros(n, dtype=bool)
    ps = np.full((n, nv), -1, dtype=np.int8) if status else None
    hr_ps = math.exp(p.ps_death_log_hr)
    for k in range(nv):
        a = k * h
        b = (k + 1) * h if k < nv - 1 else np.inf
        live = ~np.isfinite(t_death)
        if not live.any():
            break
        if k == 0:
            new = pop.u_ps[:, 0] < p.ps_poor_baseline
        else:
            eta = (p.ps_logit + p.ps_persistence_log_or * poor + p.ps_progression_log_or * (t_prog <= a)
                   + p.ps_surgery_log_or * (s <= a))
            new = pop.u_ps[:, k] < special.expit(eta)
        poor = np.where(live, new, poor)
        if ps is not None:
            ps[live, k] = poor[live]
        # the surgical decision due in [a, b), for those alive, unoperated and progression-free then
        due = live & ~np.isfinite(s) & (dec >= a) & (dec < b) & ((dec < t_prog) | any_state)
        if surgeon:
            go = due & (~poor | (pop.u_dec[:, k] < p.ps_poor_operate_prob))
            dec = np.where(due & ~go, b, dec)
        else:
            go = due
        sg = np.where(go, dec, np.inf)
        pre = go & (sg < t_prog)       # operated before progression: progression hazard x true_hr_progression
        tp = np.where(pre, _prog_after(ep, np.where(pre, sg, 0.0), p), t_prog)
        # pieces [a, x1), [x1, x2), [x2, b) at surgery and progression inside the interval
        cut = np.sort(np.column_stack([np.clip(sg, a, b), np.clip(tp, a, b)]), axis=1)
        bounds = (np.full(n, a), cut[:, 0], cut[:, 1], np.full(n, b))
        s_any = np.minimum(s, sg)        # operated before this interval, or in it
        for j in range(3):
            x, y = bounds[j], bounds[j + 1]
            act = live & ~np.isfinite(t_death) & (y > x)
            if not act.any():
                continue
            progressed = x >= tp
            r = np.where(progressed, rate[True], rate[False]) * np.where(x >= s_any, p.true_hr, 1.0)
            if hr_ps != 1.0:
                r = r * np.where(poor, hr_ps, 1.0)
            for st in (False, True):
                m = act & (progressed == st)
                if not m.any():
                    continue
                with np.errstate(invalid="ignore"):
                    need = (budget[st][m] - used[st][m]) / r[m]
                span = (y - x)[m]
                dies = need <= span
                td = t_death[m]
                td[dies] = (x[m] + need)[dies]
                t_death[m] = td
                u = used[st][m]
                u[~dies] += (r[m] * span)[~dies]
                used[st][m] = u
        op = go & (t_death >= sg)          # alive at the decision (a death before it leaves the patient unoperated)
        s = np.where(op, sg, s)
        t_prog = np.where(op, tp, t_prog)
    t_prog = np.where(t_prog < t_death, t_prog, np.inf)
    out = {"t_prog": t_prog, "t_death": t_death, "operated": np.isfinite(s), "surgery_time": s}
    if ps is not None:
        out["ps"] = ps
    return _with_competing(pop, p, out)


def simulate_twin(params: TwinParams | None = None) -> pd.DataFrame:
    """Simulate one digital-twin cohort.

    Parameters
    ----------
    params : TwinParams, optional
        Defaults to ``TwinParams()`` (n = 150, seed 2024, true HR 1).

    Returns
    -------
    pandas.DataFrame
        One row per patient with columns :data:`TWIN_COLUMNS` (plus
        ``u_fitness`` if ``params.include_unmeasured``): ``os_months``/``os_event``
        (death), ``pfs_months``/``pfs_event`` (progression or death),
        ``progression_months`` (NaN if no progression observed),
        ``surgery`` (1 if operated during follow-up), ``months_to_surgery``
        (NaN if not operated), ``centre`` (1-15), ``era`` (calendar year of
        time zero) and the covariates. Times in months, rounded to 4 decimals.

    References
    ----------
    Zhang X. et al. (2024), the study the twin mimics (project seed text).
    Suissa S. Immortal time bias in pharmacoepidemiology. Am J Epidemiol
    167:492-499 (2008) (why the naive comparison of this twin is biased).
    """
    return _simulate(params, visits=False)[0]


#: columns of :func:`simulate_twin_visits`'s output
VISIT_COLUMNS: tuple[str, ...] = ("id", "month", "ecog_ge1", "progressed")


def simulate_twin_visits(params: TwinParams | None = None) -> pd.DataFrame:
    """The visits table of the cohort :func:`simulate_twin` gives for the same parameters.

    One row per patient and assessment (at 0, ``visit_interval``, ... months, while under
    observation: before the patient's ``os_months``), columns :data:`VISIT_COLUMNS`:
    ``ecog_ge1`` (performance status ECOG >= 1 at the assessment: the time-varying confounder)
    and ``progressed`` (progression observed at or before the assessment). The format the
    spec's ``visits: {id: id, time: month, columns: [ecog_ge1]}`` reads
    (:mod:`causal_hcc.timeline`). With the default (inert) parameters the status is simulated
    all the same; it then affects neither surgery nor death.
    """
    return _simulate(params, visits=True)[1]


def simulate_twin_with_visits(params: TwinParams | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(simulate_twin(params), simulate_twin_visits(params))`` from one simulation."""
    return _simulate(params, visits=True)


def _simulate(params: TwinParams | None, visits: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from causal_hcc.twin.recalibrate import resolve

    p = resolve(params if params is not None else TwinParams())
    pop = _draw(p, p.n, p.seed)
    ev = _event_times(pop, p, "observed", censor=True, status=visits)
    c = pop.followup
    # surgery during follow-up only (a deferred decision may fall after it: not observed)
    ev["operated"] = ev["operated"] & (ev["surgery_time"] < c)
    t_death, t_prog = ev["t_death"], ev["t_prog"]
    os_t = np.minimum(t_death, c)
    os_e = (t_death <= c).astype(np.int8)
    t_pfs = np.minimum(t_prog, t_death)
    pfs_t = np.minimum(t_pfs, c)
    pfs_e = (t_pfs <= c).astype(np.int8)
    prog_obs = np.where(t_prog <= c, t_prog, np.nan)
    # Round to 4 decimals for byte-identical CSVs; a positive time never rounds to 0
    # (a follow-up of 0 is invalid input for a Cohort).
    r4 = lambda a: np.where(np.asarray(a) > 0, np.maximum(np.round(a, 4), 1e-4), np.round(a, 4))  # noqa: E731
    out = {
        "id": np.arange(1, p.n + 1, dtype=np.int64),
        "centre": pop.centre,
        "era": np.floor(p.cutoff_year - c / 12.0).astype(np.int64),
        "os_months": r4(os_t), "os_event": os_e,
        "pfs_months": r4(pfs_t), "pfs_event": pfs_e,
        "progression_months": r4(prog_obs),
        "surgery": ev["operated"].astype(np.int8),
        "months_to_surgery": r4(np.where(ev["operated"], ev["surgery_time"], np.nan)),
    }
    for name in BINARY_COVARIATES:
        out[name] = pop.X[name]
    out["age"] = pop.X["age"].astype(np.int64)
    out["tumour_diameter_cm"] = pop.X["tumour_diameter_cm"]
    if p.competing:   # 0 alive (censored), 1 cancer death, 2 liver failure
        out["death_cause"] = np.where(os_e == 1, ev["cause"], 0).astype(np.int8)
    if p.include_unmeasured:
        out["u_fitness"] = r4(pop.u)
    df = pd.DataFrame(out)
    if not visits:
        return df, None
    if p.tv_active:
        ps = ev["ps"]
    else:   # the status path of the same course (it changes nothing else)
        ps = course(pop, p, np.where(ev["operated"], ev["surgery_time"], np.inf), surgeon=False,
                    status=True)["ps"]
    nv = ps.shape[1]
    times = np.arange(nv) * p.visit_interval
    end = out["os_months"]
    seen = (times[None, :] < end[:, None]) & (ps >= 0)
    seen[:, 0] = True
    ii, kk = np.nonzero(seen)
    prog_t = np.where(np.isnan(out["progression_months"]), np.inf, out["progression_months"])
    vis = pd.DataFrame({
        "id": out["id"][ii], "month": np.round(times[kk], 4),
        "ecog_ge1": np.maximum(ps[ii, kk], 0).astype(np.int8),
        "progressed": (prog_t[ii] <= times[kk]).astype(np.int8),
    })
    return df, vis
