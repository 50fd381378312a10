"""Re-solve the twin's free parameters for a non-null effect, so the observed cohort stays calibrated.

The twin was calibrated (``DEFAULT_*`` in :mod:`causal_hcc.twin.params`) with no effect of
surgery: Table 1 by group, 26 operated, median OS 16.5 vs 11.3 and PFS 14.2 vs 9.5 months
(operated vs not, Kaplan–Meier from time zero). A true effect changes what the observed
cohort looks like -- with ``true_hr = 0.7`` the operated group's median OS becomes ~18.5
months -- so a twin with an effect must be re-fitted to the same published data. What the
published data leave free is re-solved:

* ``u_surgery_log_or`` and ``unmeasured_confounding``: the selection of surgical candidates
  on the unmeasured fitness U and U's effect on death (under a benefit, less of the
  published survival gap can be selection: the operated must be less fit on U than their
  covariates suggest);
* ``u_progression_log_hr``: U's effect on progression (so the operated group's PFS, which
  surgery barely changes in the twin, stays put while its OS is brought back);
* ``death_rate_progressed`` and ``progression_rate``: the baseline hazards (the not-operated
  group's medians).

Target: the 4 medians of the *null* twin with the same parameters (which reproduce the
paper; so at ``true_hr = 1`` the solution is the defaults exactly and the default cohort is
unchanged), computed on a fixed population of 100,000 patients with the twin's follow-up;
regularised least squares (scipy's trust-region reflective), residuals in units of 0.5
months, a ridge of 0.1 per unit of each parameter's scale towards its starting value, and
U's effect on death kept >= 0 (U stays a fitness score). The problem has a valley (more
selection on U with less effect of U gives the same medians); the ridge picks the point of
it nearest the starting values.
Covariates, candidacy log-ORs (Table 1) and the delay to surgery are not touched; the
operated count is held by the candidacy intercept as always.

Only parameters the spec leaves at their defaults are re-solved: if a spec sets any of
them (``twin_effect.yaml`` sets ``unmeasured_confounding: 0``), nothing is re-solved and
:func:`recalibration_note` says so. Solutions for the default twin at ``true_hr`` 0.4, 0.5,
..., 1.2 are stored in :data:`SOLVED` (checked by a slow test); any other combination is
solved on first use (0.5 to 3 minutes of CPU, more the further the effect is from 1) and
cached in the process; ``simulate`` solves once before starting its workers.

The solution is one point of a valley of equally good fits (more selection on U with a
weaker effect of U gives the same medians), the one the ridge and the continuation reach:
it is not smooth in ``true_hr`` (U's effect on death is 1.11 at 0.5 and 0.91 at 0.4), but
every stored solution reproduces the null twin's four medians within 0.2 months.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_hcc.twin.params import TwinParams

#: the parameters re-solved per effect, with their scale (log scale for rates)
LEVERS: tuple[str, ...] = ("u_surgery_log_or", "unmeasured_confounding", "u_progression_log_hr",
                           "death_rate_progressed", "progression_rate")
_LOG = ("death_rate_progressed", "progression_rate")
CALIBRATION_N = 100_000
CALIBRATION_SEED = 20240501
RESIDUAL_UNIT = 0.5      # months
RIDGE = 0.1
_SCALE = np.array([1.0, 0.5, 0.5, 0.5, 0.5])

#: solutions for the default twin (key: true_hr), produced by :func:`solve` and checked by
#: ``tests/twin/test_recalibrate.py::test_stored_solutions_are_current`` (slow)
SOLVED: dict[float, dict[str, float]] = {
    0.4: {"u_surgery_log_or": -1.4379, "unmeasured_confounding": 0.9082,
          "u_progression_log_hr": -0.0061, "death_rate_progressed": 0.98229,
          "progression_rate": 0.05714},
    0.5: {"u_surgery_log_or": -0.8109, "unmeasured_confounding": 1.1138,
          "u_progression_log_hr": 0.0295, "death_rate_progressed": 1.08405,
          "progression_rate": 0.05488},
    0.6: {"u_surgery_log_or": -0.9132, "unmeasured_confounding": 0.5665,
          "u_progression_log_hr": -0.0329, "death_rate_progressed": 0.76973,
          "progression_rate": 0.05838},
    0.7: {"u_surgery_log_or": -0.3197, "unmeasured_confounding": 0.3803,
          "u_progression_log_hr": 0.065, "death_rate_progressed": 0.74566,
          "progression_rate": 0.05854},
    0.8: {"u_surgery_log_or": 0.0917, "unmeasured_confounding": 0.3717,
          "u_progression_log_hr": -0.0616, "death_rate_progressed": 0.72415,
          "progression_rate": 0.05837},
    0.9: {"u_surgery_log_or": 0.1399, "unmeasured_confounding": 0.3666,
          "u_progression_log_hr": 0.1882, "death_rate_progressed": 0.63325,
          "progression_rate": 0.05903},
    1.1: {"u_surgery_log_or": 0.338, "unmeasured_confounding": 0.4769,
          "u_progression_log_hr": 0.2358, "death_rate_progressed": 0.59552,
          "progression_rate": 0.05866},
    1.2: {"u_surgery_log_or": 0.3789, "unmeasured_confounding": 0.5633,
          "u_progression_log_hr": 0.2764, "death_rate_progressed": 0.58481,
          "progression_rate": 0.05838},
}
#: the key of the default parameters the stored solutions belong to (every field but true_hr at its default)
_SOLVED_BASE_KEY: str | None = "a57bcf51b26654e54ebd36969e947377dd7ec302d9a73e318afeb6372b3f4d0b"

_CACHE: dict[str, dict[str, float]] = {}


def _needs(p: TwinParams) -> bool:
    return bool(p.recalibrate) and (p.true_hr != 1.0 or p.true_hr_progression != 1.0)


def user_set_levers(p: TwinParams) -> list[str]:
    """The re-solvable parameters the spec set itself (then nothing is re-solved)."""
    return [k for k in LEVERS if k in p.model_fields_set]


def recalibration_note(p: TwinParams) -> str | None:
    """One sentence on what :func:`resolve` did to ``p`` (None with a null effect)."""
    if p.true_hr == 1.0 and p.true_hr_progression == 1.0:
        return None
    if not p.recalibrate:
        return "twin not re-calibrated for the effect (recalibrate: false): its cohorts need not match the paper"
    mine = user_set_levers(p)
    if mine:
        return (f"twin not re-calibrated for the effect: the spec sets {', '.join(mine)}; with a true effect its "
                "cohorts need not match the paper's medians (causal-hcc twin --calibration shows how far)")
    sol = _solution(p)
    return "twin re-calibrated for the effect: " + ", ".join(f"{k} = {v:g}" for k, v in sol.items())


def _start(p: TwinParams) -> np.ndarray:
    up = 0.5 * p.unmeasured_confounding if p.u_progression_log_hr is None else p.u_progression_log_hr
    return np.array([p.u_surgery_log_or, p.unmeasured_confounding, up,
                     math.log(p.death_rate_progressed), math.log(p.progression_rate)])


def _apply(p: TwinParams, x: np.ndarray) -> TwinParams:
    return p.model_copy(update={"u_surgery_log_or": float(x[0]), "unmeasured_confounding": float(x[1]),
                                "u_progression_log_hr": float(x[2]), "death_rate_progressed": float(math.exp(x[3])),
                                "progression_rate": float(math.exp(x[4])), "recalibrate": False})


def observed_medians(p: TwinParams, n: int = CALIBRATION_N, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """Kaplan–Meier medians of OS and PFS, operated and not, in one large cohort of the twin."""
    from causal_hcc.twin.calibration import km_median
    from causal_hcc.twin.simulate import simulate_twin

    df = simulate_twin(p.model_copy(update={"n": n, "seed": seed, "recalibrate": False}))
    op = df["surgery"].to_numpy() == 1
    out = []
    for m in (op, ~op):
        for t, e in (("os_months", "os_event"), ("pfs_months", "pfs_event")):
            out.append(km_median(df[t].to_numpy()[m], df[e].to_numpy()[m]))
    return np.asarray(out, float)


def _solve_at(p: TwinParams, x_start: np.ndarray, x0: np.ndarray, ref: np.ndarray) -> np.ndarray:
    from scipy import optimize

    def resid(x: np.ndarray) -> np.ndarray:
        s = observed_medians(_apply(p, x))
        s = np.where(np.isfinite(s), s, 1e3)
        return np.concatenate([(s - ref) / RESIDUAL_UNIT, RIDGE * (x - x0) / _SCALE])

    # U stays "fitness" (its effect on death >= 0); the other levers within wide plausible ranges
    lo = np.array([-6.0, 0.0, -1.0, x0[3] - 1.5, x0[4] - 1.5])
    hi = np.array([6.0, 3.0, 3.0, x0[3] + 1.5, x0[4] + 1.5])
    # finite differences of 0.1 per parameter unit: the medians move in steps of ~1e-3 months, so smaller
    # differences give a noisy Jacobian and the solver stalls
    sol = optimize.least_squares(resid, np.clip(x_start, lo + 1e-9, hi - 1e-9), bounds=(lo, hi), diff_step=0.1,
                                 x_scale=_SCALE, xtol=1e-3, ftol=1e-4, max_nfev=40)
    return sol.x


def solve(p: TwinParams) -> dict[str, float]:
    """Re-solve :data:`LEVERS` for ``p``'s effect (see the module docstring); values rounded to 4 decimals.

    Continuation: the effect is moved from the null towards ``p``'s in steps of at most 0.15 on
    the log-HR scale, each solve starting from the previous solution (the medians are not
    smooth enough in the parameters for a single far jump).
    """
    null = p.model_copy(update={"true_hr": 1.0, "true_hr_progression": 1.0, "recalibrate": False})
    ref = observed_medians(null)
    x0 = _start(p)
    lh, lhp = math.log(p.true_hr), math.log(p.true_hr_progression)
    steps = max(1, int(math.ceil(max(abs(lh), abs(lhp)) / 0.15 - 1e-9)))
    x = x0.copy()
    for k in range(1, steps + 1):
        pk = p.model_copy(update={"true_hr": math.exp(lh * k / steps),
                                  "true_hr_progression": math.exp(lhp * k / steps)})
        x = _solve_at(pk, x, x0, ref)
    return {"u_surgery_log_or": round(float(x[0]), 4), "unmeasured_confounding": round(float(x[1]), 4),
            "u_progression_log_hr": round(float(x[2]), 4),
            "death_rate_progressed": round(float(math.exp(x[3])), 5),
            "progression_rate": round(float(math.exp(x[4])), 5)}


def _base_key(p: TwinParams) -> str:
    return p.key(exclude=("n", "seed", "include_unmeasured", "truth_seed", "true_hr"))


def _solution(p: TwinParams) -> dict[str, float]:
    if (p.true_hr_progression == 1.0 and round(p.true_hr, 6) in SOLVED and _SOLVED_BASE_KEY is not None
            and _base_key(p) == _SOLVED_BASE_KEY):
        return dict(SOLVED[round(p.true_hr, 6)])
    key = p.key(exclude=("n", "seed", "include_unmeasured", "truth_seed"))
    if key not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = solve(p)
    return dict(_CACHE[key])


def resolve(p: TwinParams) -> TwinParams:
    """The parameters the twin actually simulates with: ``p`` re-solved for its effect where it applies.

    Identity (``p`` itself) with a null effect, with ``recalibrate: false`` or once resolved;
    parameters with ``recalibrate = False`` otherwise (re-solved, or as given when the spec
    set a re-solvable parameter itself).
    """
    if not _needs(p):
        return p
    if user_set_levers(p):
        return p.model_copy(update={"recalibrate": False})
    return p.model_copy(update={**_solution(p), "recalibrate": False})


def describe(p: TwinParams) -> dict[str, Any]:
    """The re-solved parameters and the note, for ``truth.json``."""
    q = resolve(p)
    return {"note": recalibration_note(p), **{k: getattr(q, k) for k in LEVERS}}
