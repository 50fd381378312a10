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
    return _Population(
        X=X, u=special.ndtri(uu[:, 2]), centre=centre.astype(np.int64),
        centre_effect=centre_fx[centre - 1], followup=followup, u_cand=uu[:, 5],
        delay=delay, e_prog=-np.log1p(-uu[:, 7]), e_death_pf=-np.log1p(-uu[:, 8]),
        e_death_prog=-np.log1p(-uu[:, 9]),
    )


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


def _event_times(pop: _Population, p: TwinParams, regime: str, censor: bool) -> dict[str, np.ndarray]:
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
    return outcomes_given_surgery(pop, p, proposed)


def outcomes_given_surgery(pop: _Population, p: TwinParams, proposed: np.ndarray) -> dict[str, np.ndarray]:
    """Progression, death and surgery times when surgery is proposed at ``proposed`` (inf: never).

    Surgery happens at the proposed time only if the patient is then alive and
    progression-free (the twin operates no one else); from then on the death
    hazards (both states) are multiplied by ``true_hr`` and the progression
    hazard by ``true_hr_progression``. Used for the observed cohort and for
    every counterfactual regime of the truth (same random numbers).
    """
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
    return {"t_prog": t_prog, "t_death": t_death, "operated": operated, "surgery_time": s}


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
    from causal_hcc.twin.recalibrate import resolve

    p = resolve(params if params is not None else TwinParams())
    pop = _draw(p, p.n, p.seed)
    ev = _event_times(pop, p, "observed", censor=True)
    c = pop.followup
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
    if p.include_unmeasured:
        out["u_fitness"] = r4(pop.u)
    return pd.DataFrame(out)
