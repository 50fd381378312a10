"""Sequential target trials: a new trial starts at every point of a grid.

At trial start s, eligible = alive and under follow-up (T > s), untreated
before s and, optionally, free of an event (e.g. progression) by s. Arms:
started treatment in [s, s + grid) vs not. Follow-up restarts at s. The
trials are pooled: Cox stratified by trial, robust SE clustered on patient
(a patient is in several trials).

``analysis: itt`` (default) keeps the control arm's follow-up when its
patients start treatment later (per-trial intention-to-treat, the effect of
"start now vs do not start now"). ``analysis: per_protocol`` censors control
patients when they start treatment and weights the remaining ones by the
inverse probability of remaining untreated (IPCW from
:class:`~causal_hcc.design._common.TreatmentHazard`), the effect of "start now
vs never start".
"""
from __future__ import annotations

import math

import numpy as np

from causal_hcc.base import Design, DesignData, Option, n_distinct
from causal_hcc.design._common import (
    competing_codes,
    event_free_at,
    event_time_of,
    fmt_num,
    outcome_arrays,
    quantile_treatment_time,
    split_until,
    treatment_times,
    truncate_weights,
    weight_summary,
)
from causal_hcc.errors import EstimationError
from causal_hcc.strategies import register_design
from causal_hcc.design._tv import cumhaz_at, has_tv, rows_by_interval, trial_start_columns, treatment_hazard
from causal_hcc.timeline import eligibility_end, eligible_at

#: the grid warning fires above this multiple of the median gap between treatment times
#: (and only for grids coarser than the default)
GRID_SPACING_FACTOR = 2.0

_WHY_NOT = ("the outcome model of g-formula/AIPTW is fitted on one row per patient; in sequential trials a "
            "patient appears in several trials (use none, multivariable or iptw, which fit within trial)")


def _floor_3g(x: float) -> str:
    """``x`` to 3 significant digits, rounded down: the grid the warning recommends must not trigger it again
    (``.3g`` rounds 0.08267 up to 0.0827, a grid coarser than the default and than twice the spacing)."""
    from decimal import ROUND_FLOOR, Decimal

    d = Decimal(repr(float(x)))
    if not d.is_finite() or d <= 0:
        return f"{x:.3g}"
    return f"{float(d.quantize(Decimal(1).scaleb(d.adjusted() - 2), rounding=ROUND_FLOOR)):g}"


def _check_trial_count(window: float, grid: float, design: str) -> None:
    """At most :data:`~causal_hcc.limits.MAX_TRIALS` trial starts (a tiny ``grid`` would ask for billions)."""
    from causal_hcc.errors import SpecError
    from causal_hcc.limits import MAX_TRIALS

    count = math.floor(window / grid) + 1 if grid > 0 and math.isfinite(window / grid) else math.inf
    if count > MAX_TRIALS:
        shown = f"{count:,}" if math.isfinite(count) else "too many"
        raise SpecError(f"design '{design}': grid {fmt_num(grid)} and window {fmt_num(window)} give {shown} trials; at "
                        f"most {MAX_TRIALS:,} (a documented limit, see docs/disclosure.md): use a coarser grid")


def sequential_trials_data(cohort, outcome: str, *, grid: float | None = None, window: float | None = None,
                           require_event_free: str | None = None, analysis: str = "itt",
                           censoring_model: str = "cox", truncate: float | None = None,
                           design: str = "sequential_trials", censoring_grid: float | None = None) -> DesignData:
    """Rows of all trials: (0, T - s] per eligible patient of trial s.

    ``unit`` = trial * n + patient, ``stratum`` = trial index, ``patient`` =
    patient; ``X`` = baseline confounders. With ``per_protocol`` control rows
    are censored at treatment start and split where the IPC weight changes.
    """
    T, E = outcome_arrays(cohort, outcome)
    tt = treatment_times(cohort, design)
    n = T.shape[0]
    X = np.asarray(cohort.X, dtype=float)
    if window is None:
        window = quantile_treatment_time(tt, 0.9, design)
    default_grid = quantile_treatment_time(tt, 0.9, design) / 24.0
    if grid is None:
        grid = default_grid
    state = event_time_of(cohort, require_event_free, design) if require_event_free else np.full(n, np.inf)
    _check_trial_count(window, grid, design)
    starts = np.arange(0.0, window + 1e-9 * max(window, 1.0), grid)
    treated_fu = np.isfinite(tt) & (tt < T)
    model = None
    if analysis == "per_protocol":
        keep = T > 0
        model = treatment_hazard(cohort, censoring_model, censoring_grid, T, tt,
                                 np.minimum(state, eligibility_end(cohort)), X, keep, design)
        cuts = model.cut_points()

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("start", "stop", "event", "arm", "pat", "w", "trial")}
    flow = [("patients in cohort", n), ("trial starts", int(starts.size))]
    per_trial = []
    skipped = 0
    for k, s in enumerate(starts):
        elig = (T > s) & ~(treated_fu & (tt < s)) & eligible_at(cohort, s)   # (person-period `eligible`)
        if require_event_free:
            elig &= event_free_at(state, s)
        idx = np.flatnonzero(elig)
        arm = (treated_fu[idx] & (tt[idx] < s + grid)).astype(np.int8)
        if arm.sum() == 0 or arm.sum() == idx.size:
            skipped += 1
            continue
        per_trial.append((float(s), int(idx.size), int(arm.sum())))
        stop = T[idx] - s
        ev = E[idx].astype(np.int8)
        if analysis == "per_protocol":
            dev = (arm == 0) & treated_fu[idx]
            t_dev = np.maximum(tt[idx] - s, model.eps_)
            stop = np.where(dev, np.minimum(stop, t_dev), stop)
            ev = np.where(dev, 0, ev).astype(np.int8)
            r, a, b = split_until(stop, np.where(arm == 1, 0.0, state[idx] - s), cuts - s)
            p = idx[r]
            last = np.r_[r[1:] != r[:-1], True]
            e = np.where(last, ev[r], 0).astype(np.int8)
            ctrl = arm[r] == 0
            Hs = cumhaz_at(model, np.minimum(np.full(p.size, s), state[p]), X[p], p)
            Ha = cumhaz_at(model, np.minimum(s + a, state[p]), X[p], p)
            w = np.where(ctrl, np.exp(Ha - Hs), 1.0)
            parts["start"].append(a), parts["stop"].append(b), parts["event"].append(e)
            parts["arm"].append(arm[r]), parts["pat"].append(p), parts["w"].append(w)
        else:
            parts["start"].append(np.zeros(idx.size)), parts["stop"].append(stop), parts["event"].append(ev)
            parts["arm"].append(arm), parts["pat"].append(idx), parts["w"].append(np.ones(idx.size))
        parts["trial"].append(np.full(parts["pat"][-1].size, k))
    if not per_trial:
        raise EstimationError(f"design '{design}': no trial has both treated and untreated patients "
                              f"(grid {fmt_num(grid)}, window {fmt_num(window)})")
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    w, n_trunc = truncate_weights(cat["w"], truncate)
    trial = cat["trial"]
    unit = trial * n + cat["pat"]
    n_pairs = n_distinct(unit)     # (not np.unique: its hash path on integers is slow; base.n_distinct)
    flow += [("trials with both arms", len(per_trial)),
             ("trials skipped (one arm empty)", skipped),
             ("patient-trials", n_pairs),
             ("patient-trials treated", int(sum(t[2] for t in per_trial))),
             ("distinct patients in any trial", n_distinct(cat["pat"])),
             ("distinct treated patients enrolled", n_distinct(cat["pat"][cat["arm"] == 1]))]
    Xr, xnames = X[cat["pat"]], list(cohort.confounder_columns)
    if has_tv(cohort):   # each trial adjusts for the time-varying confounders at its start (as TrialEmulation)
        Lr, lnames = trial_start_columns(cohort, cat["pat"], starts[trial])
        Xr, xnames = np.column_stack([Xr, Lr]), xnames + lnames
    data = DesignData(
        design=design, outcome=outcome, start=cat["start"], stop=cat["stop"], event=cat["event"],
        treatment=cat["arm"], X=Xr, confounders=xnames, patient=cat["pat"],
        unit=unit, weight=w, stratum=trial, flow=flow, row_origin=starts[trial],
        competing=competing_codes(cohort, outcome),
    )
    data.diagnostics["trials"] = {"grid": float(grid), "window": float(window), "analysis": analysis,
                                  "start": [t[0] for t in per_trial], "eligible": [t[1] for t in per_trial],
                                  "treated": [t[2] for t in per_trial]}
    # a grid coarser than the spacing of treatment times counts patients as treated from a trial start up
    # to one grid step before their treatment: immortal time again (Suissa 2008), inside each trial
    ttw = np.unique(tt[treated_fu & (tt <= window)])
    spacing = float(np.median(np.diff(ttw))) if ttw.size > 2 else float("nan")
    tr_rows = (cat["arm"] == 1) & (cat["start"] == 0)
    immortal = tt[cat["pat"][tr_rows]] - starts[trial[tr_rows]]
    mean_immortal = float(immortal.mean()) if immortal.size else float("nan")
    data.diagnostics["trials"].update({"treatment_time_spacing": spacing, "mean_immortal_time": mean_immortal})
    if np.isfinite(spacing) and grid > GRID_SPACING_FACTOR * spacing and grid > default_grid * (1 + 1e-9):
        data.warnings.append(
            f"design '{design}': the trial grid ({fmt_num(grid)}) is coarser than the spacing of treatment times "
            f"(median gap {spacing:.3g}): patients treated up to {fmt_num(grid)} after a trial start count "
            f"as treated from it, {mean_immortal:.3g} of immortal time per treated patient-trial on average; "
            f"use a grid near {_floor_3g(max(spacing, default_grid))}")
    data.notes.append(
        f"{len(per_trial)} sequential trials every {fmt_num(grid)} up to {fmt_num(window)}: arms = treatment "
        f"started within {fmt_num(grid)} of the trial start vs not; pooled Cox stratified by trial, SE clustered "
        "on patient")
    later = n_distinct(unit[(cat["arm"] == 0) & treated_fu[cat["pat"]]])
    if analysis == "itt":
        data.notes.append(f"per-trial intention-to-treat: {later} control patient-trials start treatment later and "
                          "keep their follow-up in the control arm (dilutes the effect of treatment vs never)")
    else:
        wd = weight_summary(w, unit, n_trunc)
        wd.update({"estimand": "IPCW (per protocol)", "model": censoring_model, "truncate": truncate})
        wd["by_interval"] = rows_by_interval(cat["start"], cat["stop"], w, float(grid), starts[trial])
        if has_tv(cohort):
            data.notes.append("per-protocol weights: the treatment-start hazard is conditional on the baseline and "
                              "the current time-varying confounders, integrated along each patient's history")
        data.diagnostics["weights"] = wd
        data.notes.append(f"per protocol: {later} control patient-trials are censored when they start treatment, "
                          f"the rest weighted by 1/P(still untreated) from a {censoring_model} model")
    return data


@register_design
class SequentialTrials(Design):
    """Sequence of emulated trials started on a grid, pooled.

    Options: ``grid`` (spacing; default 90th percentile of treatment times
    / 24), ``window`` (last trial start; default that percentile),
    ``require_event_free`` (outcome or state column that must be event-free
    at each trial start), ``analysis`` (``itt`` or ``per_protocol``),
    ``censoring_model`` and ``truncate`` for the per-protocol weights.

    Combines with none, multivariable (Cox stratified by trial on treatment +
    confounders) and iptw / psm (propensity fitted within each trial).

    References
    ----------
    Hernán MA, Alonso A, Logan R, et al. Observational studies analyzed like
    randomized experiments: an application to postmenopausal hormone therapy
    and coronary heart disease. Epidemiology 2008;19:766-79.
    Gran JM, Røysland K, Wolbers M, et al. A sequential Cox approach for
    estimating the causal effect of treatment in the presence of
    time-dependent confounding applied to data from the Swiss HIV Cohort
    Study. Stat Med 2010;29:2757-68.
    """

    name = "sequential_trials"
    requires = ("treatment_time",)
    description = "Emulated trials started on a grid (eligible, untreated), pooled Cox stratified by trial."
    references = ("Hernán MA et al. Epidemiology 2008;19:766-79.", "Gran JM et al. Stat Med 2010;29:2757-68.")
    options = (
        Option("grid", "float", None, "spacing of trial starts (default: 90th pct of treatment times / 24)",
               low=1e-9, nullable=True),
        Option("window", "float", None, "last trial start (default: 90th percentile of treatment times)",
               low=0.0, nullable=True),
        Option("require_event_free", "str", None,
               "outcome (e.g. pfs) or state-time column that must be event-free at trial start", nullable=True),
        Option("analysis", "str", "itt", "itt (control keeps follow-up) or per_protocol (censor + IPCW)",
               choices=("itt", "per_protocol")),
        Option("censoring_model", "str", "cox", "model of treatment start for per-protocol weights",
               choices=("cox", "logistic")),
        Option("truncate", "float", None, "cap per-protocol weights at this quantile", low=0.5, high=1.0,
               nullable=True),
        Option("censoring_grid", "float", None, "interval width of the pooled logistic censoring model (decisions "
               "at its multiples; default: 90th percentile of treatment times / 12; with time-varying "
               "confounders 1 period for person-period data, else the median gap between visits)",
               low=1e-9, nullable=True),
    )
    incompatible = {"gformula": _WHY_NOT, "aiptw": _WHY_NOT}

    def label(self) -> str:
        o = self.options_
        parts = [p for p in (o["grid"] and f"grid={fmt_num(o['grid'])}",
                             o["analysis"] == "per_protocol" and "pp") if p]
        return f"sequential_trials({','.join(parts)})" if parts else "sequential_trials"

    def estimand_part(self) -> dict:
        o = self.options_
        pp = o["analysis"] == "per_protocol"
        return {"population": "eligible_trial", "contrast": "start_now_vs_never" if pp else "start_now_vs_not_now",
                "origin": "trial_start",
                "params": {"analysis": o["analysis"], "grid": o["grid"], "window": o["window"],
                           "require_event_free": o["require_event_free"]},
                "notes": ("trials pooled by a Cox model stratified by trial: a weighted average over trial starts",)}

    def fit(self, cohort, outcome: str) -> "SequentialTrials":
        o = self.options_
        self.data_ = sequential_trials_data(
            cohort, outcome, grid=o["grid"], window=o["window"], require_event_free=o["require_event_free"],
            analysis=o["analysis"], censoring_model=o["censoring_model"], truncate=o["truncate"], design=self.name,
            censoring_grid=o["censoring_grid"])
        return self
