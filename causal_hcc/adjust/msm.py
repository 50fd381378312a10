"""Marginal structural Cox model with stabilised inverse-probability-of-treatment weights.

For the ``time_varying`` design (treatment as a time-dependent exposure,
sustained once started). Confounding by indication that changes over time
(the surgeon looks at the patient's current state) cannot be removed by
putting the current state into the Cox model when treatment also affects
that state: conditioning on it blocks part of the effect and opens
collider paths (Robins, Hernán & Brumback 2000). The MSM weights each
patient's person-time by the inverse of the probability of their own
treatment history given the confounder history, which creates a
pseudo-population in which treatment initiation does not depend on the
time-varying confounders, and fits the Cox model of current treatment in it.

Weights (Hernán, Brumback & Robins 2000), on intervals ``(k h, (k+1) h]`` of
the weight grid (:mod:`causal_hcc.design._tv`):

* denominator: pooled logistic model of starting treatment at ``k h`` among
  those alive, under follow-up and untreated then, given the baseline
  confounders, the time-varying confounders' current values (and, with
  ``adjust_state``, the current state) and time terms;
* numerator (``numerator: baseline``, the default): the same with the baseline
  confounders and time only; ``numerator: time``: time only (the weights
  then also balance the baseline confounders, and the Cox model has
  treatment alone); ``numerator: none``: unstabilised;
* ``SW_i(t) = prod_{k: k h <= t, k <= initiation} P_num(A_ik | .) / P_den(A_ik | .)``:
  the product runs until the interval in which treatment starts and is
  constant afterwards (treatment is sustained, so later factors are 1);
* loss to follow-up (``roles.censored``): the weights are multiplied by the
  stabilised IPC weights of :func:`causal_hcc.design._tv.fit_loss_weights`.

Outcome model: Cox model of current treatment (plus the baseline
confounders with ``numerator: baseline``) on the counting-process rows split
at the weight grid, weighted, robust SE clustered on the patient (R
``coxph(Surv(start, stop, event) ~ treated + V, weights = sw, cluster = id)``);
``outcome_model: pooled_logistic`` fits HBR's original weighted pooled
logistic model instead. The SE treats the weights as known (conservative
for the estimated weights, Robins 1999; the whole-pipeline bootstrap,
``variance: bootstrap``, accounts for their estimation).

Checked against R glm weights and a weighted ``coxph`` with robust SE
(tests/reference/adjust_msm.R), and by a Monte Carlo study on data simulated
from a marginal structural Cox model with time-dependent confounding
(Havercroft & Didelez 2012; tests/adjust/test_msm_simulation.py).

References
----------
Robins JM, Hernán MA, Brumback B. Marginal structural models and causal
inference in epidemiology. Epidemiology 2000;11:550-60.
Hernán MA, Brumback B, Robins JM. Marginal structural models to estimate the
causal effect of zidovudine on the survival of HIV-positive men.
Epidemiology 2000;11:561-70.
Cole SR, Hernán MA. Constructing inverse probability weights for marginal
structural models. Am J Epidemiol 2008;168:656-64.
Havercroft WG, Didelez V. Simulating from marginal structural models with
time-dependent confounding. Stat Med 2012;31:4190-206.
"""
from __future__ import annotations

import numpy as np

from causal_hcc.adjust.propensity import subset_rows
from causal_hcc.base import Adjustment, DesignData, Option, Targets
from causal_hcc.design._common import split_at, treatment_times
from causal_hcc.design.time_varying import TV_SUFFIX
from causal_hcc.design._tv import (NUMERATORS, IntervalModel, cumulative, fit_loss_weights, interval_diagnostics,
                                   interval_records, timeline_of, truncate, tv_matrix, tv_names, weight_grid)
from causal_hcc.errors import EstimationError, SpecError
from causal_hcc._replicate import in_replicate
from causal_hcc.outcome.effects import (OUTCOME_OPTIONS, check_outcome_options, estimate_effects, outcome_kwargs,
                                        outcome_label)
from causal_hcc.outcome.pooled_logistic import TIME_TERMS
from causal_hcc.strategies import register_adjustment

_EPS = 1e-9
_ONLY_TV = ("the marginal structural model weights a time-dependent treatment; use it with design time_varying "
            "(for the other designs the time-varying confounders enter their own censoring weights)")


#: stabilised weights whose mean is further than this from 1 get a warning (Cole & Hernán 2008)
MEAN_TOLERANCE = 0.1


@register_adjustment
class MSM(Adjustment):
    """Marginal structural Cox model, stabilised IPT weights for initiation (module docstring).

    References
    ----------
    Robins JM, Hernán MA, Brumback B. Epidemiology 2000;11:550-60.
    Hernán MA, Brumback B, Robins JM. Epidemiology 2000;11:561-70.
    Cole SR, Hernán MA. Am J Epidemiol 2008;168:656-64.
    """

    name = "msm"
    description = ("Marginal structural Cox model: stabilised inverse-probability-of-treatment weights for "
                   "initiation from pooled logistic models with time-varying confounders; weighted Cox, robust SE.")
    references = ("Robins JM, Hernán MA, Brumback B. Epidemiology 2000;11:550-60.",
                  "Hernán MA, Brumback B, Robins JM. Epidemiology 2000;11:561-70.",
                  "Cole SR, Hernán MA. Am J Epidemiol 2008;168:656-64.")
    options = (
        Option("grid", "float", None, "width of the treatment-decision intervals of the weight models (default: "
               "1 period for person-period data; with visits the median gap between a patient's visits, since "
               "decisions are taken at assessments; else the 90th percentile of treatment times / 24)",
               low=1e-9, nullable=True),
        Option("numerator", "str", "baseline", "stabilised-weight numerator: baseline (baseline confounders + time; "
               "the Cox model then includes the baseline confounders), time (time only; marginal model) or none "
               "(unstabilised)", choices=NUMERATORS),
        Option("weight_time_terms", "str", "quadratic", "time terms of the weight models (as time_terms)",
               choices=TIME_TERMS),
        Option("truncate", "list[float]", None, "[low, high] quantiles at which the weights are truncated "
               "(e.g. [0.01, 0.99]); off by default", nullable=True, low=0.0, high=1.0),
        Option("truncate_at", "list[float]", None, "[low, high] fixed bounds at which the weights are truncated "
               "(e.g. [0.1, 10]); off by default", nullable=True, low=0.0),
        *OUTCOME_OPTIONS,
    )
    incompatible = {d: _ONLY_TV for d in ("baseline", "landmark", "sequential_trials", "clone_censor")}

    @classmethod
    def check_options(cls, given, options, where):
        check_outcome_options(given, options, where)
        if options.get("truncate") is not None and options.get("truncate_at") is not None:
            raise SpecError(f"{where}: give 'truncate' (quantiles) or 'truncate_at' (fixed bounds), not both")
        for k in ("truncate", "truncate_at"):
            v = options.get(k)
            if v is not None and (len(v) != 2 or not v[0] < v[1]):
                raise SpecError(f"{where}: option '{k}' must be [low, high] with low < high, got {list(v)}")

    def label(self) -> str:
        o = self.options_
        inner = ("" if o["numerator"] == "baseline" else f", numerator {o['numerator']}") + outcome_label(o)
        return f"msm({inner[2:]})" if inner else "msm"

    def estimand_part(self, measure: str = "hr", row_strategy: str = "") -> dict:
        o = self.options_
        cond = o["numerator"] == "baseline"
        notes = ["marginal over the time-varying confounders (the weights remove their confounding of "
                 "treatment initiation, with no unmeasured confounding and positivity at every decision)"]
        if cond:
            notes.append("conditional on the baseline confounders (they are in the stabilised numerator, so "
                         "in the Cox model)")
        return {"scale": "conditional" if cond and measure == "hr" else "marginal",
                "contrast": "msm_treated_vs_untreated", "overrides_design_scale": True,
                "params": {"numerator": o["numerator"]}, "notes": tuple(notes)}

    def fit(self, data: DesignData, targets: Targets) -> "MSM":
        o = self.options_
        where = f"adjustment '{self.name}'"
        if not data.time_varying:
            raise EstimationError(f"{where}: {_ONLY_TV}")
        cohort = data.cohort
        tt_all = treatment_times(cohort, data.design)
        T_all = np.asarray(cohort.time(data.outcome), dtype=float)
        pats = np.unique(np.asarray(data.patient))
        T, tt = T_all[pats], tt_all[pats]
        tt_eff = np.where(np.isfinite(tt) & (tt < T), tt, np.inf)     # treated at the event: untreated (tmerge)
        h = float(o["grid"]) if o["grid"] else weight_grid(cohort, tt_all)
        # ---- person-intervals at risk of starting treatment -----------------------------------------
        until = np.where(np.isfinite(tt_eff), (np.floor(tt_eff / h + _EPS) + 1) * h, np.inf)
        ridx, k = interval_records(T, h, until)                     # ridx indexes pats
        p = pats[ridx]
        A = (np.isfinite(tt_eff[ridx]) & (tt_eff[ridx] < (k + 1) * h - _EPS * h)).astype(float)
        names = list(data.confounders)
        base_cols = [j for j, c in enumerate(names) if not c.endswith(TV_SUFFIX)]
        state_cols = [j for j, c in enumerate(names) if c.endswith(TV_SUFFIX)
                      and c[:-len(TV_SUFFIX)] not in tv_names(cohort)]
        cover = _covering_rows(data, p, k * h)                     # design row holding each interval start
        X = np.asarray(data.X, dtype=float)[cover][:, base_cols]
        L = tv_matrix(cohort, p, k * h)
        if state_cols:
            L = np.column_stack([L, np.asarray(data.X, dtype=float)[cover][:, state_cols]])
        lnames = tv_names(cohort) + [names[j] for j in state_cols]
        model = IntervalModel(o["weight_time_terms"], o["numerator"], "treatment initiation")
        pden, pnum = model.fit_predict(k, X, L, A, where=where)
        if o["numerator"] == "none":
            pnum = A
        # each branch only where it applies (the other one's log(0) - log(0) would warn and is not used)
        a1 = A == 1
        logf = np.empty(A.shape[0])
        with np.errstate(divide="ignore"):
            logf[a1] = np.log(pnum[a1]) - np.log(pden[a1])
            logf[~a1] = np.log1p(-pnum[~a1]) - np.log1p(-pden[~a1])
        W_raw = cumulative(ridx, logf)
        W, n_trunc, caps = truncate(W_raw, o["truncate"], o["truncate_at"], where)
        cnt = np.bincount(ridx, minlength=pats.size)
        off = np.r_[0, np.cumsum(cnt)[:-1]]
        # ---- outcome rows split at the grid; weight of a piece = W at its interval (constant after initiation)
        start, stop = np.asarray(data.start, float), np.asarray(data.stop, float)
        kmax = int(np.ceil(float(stop.max()) / h)) + 1
        r, a, b = split_at(start, stop, np.arange(1, kmax) * h)
        pi = np.searchsorted(pats, np.asarray(data.patient)[r])
        kk = np.minimum(np.floor(a / h + _EPS).astype(np.int64), cnt[pi] - 1)
        w_piece = W[off[pi] + kk]
        lw = None
        tl = timeline_of(cohort)
        if tl is not None and getattr(tl, "censored", None) is not None:
            lw = fit_loss_weights(cohort, grid=h, time_terms_kind=o["weight_time_terms"], numerator=o["numerator"],
                                  truncate_q=o["truncate"], truncate_at=o["truncate_at"],
                                  treatment_in_numerator=True, where=where)
            w_piece = w_piece * lw.at(np.asarray(data.patient)[r], a)
        last = np.r_[r[1:] != r[:-1], True]
        rows = subset_rows(data, r)
        rows.start, rows.stop = a, b
        rows.event = np.where(last, np.asarray(data.event)[r], 0).astype(np.int8)
        if rows.status is not None:   # competing events: the codes stay on the last piece too
            rows.status = np.where(last, np.asarray(data.status)[r], 0).astype(np.int8)
        rows.weight = np.asarray(data.weight, float)[r] * w_piece
        Xb = np.asarray(data.X, float)[r][:, base_cols] if (o["numerator"] == "baseline" and base_cols) else None
        bnames = [names[j] for j in base_cols]
        if Xb is not None:
            keep = np.ptp(Xb, axis=0) > 0
            Xb, bnames = Xb[:, keep], [c for c, kp in zip(bnames, keep) if kp]
        rows.X = np.asarray(data.X, float)[r][:, base_cols]
        rows.confounders = [names[j] for j in base_cols]
        self.weights_ = W
        self.output_ = estimate_effects(rows, targets, covariates=Xb, covariate_names=bnames, differences=False,
                                        curves_method="msm-weighted-km", loss_weights=False, **outcome_kwargs(o))
        out = self.output_
        if in_replicate():
            return self
        # ---- diagnostics: every patient under follow-up at each interval start -------------------------
        fr, fk = interval_records(T, h)
        fw = W[off[fr] + np.minimum(fk, cnt[fr] - 1)]
        if lw is not None:
            fw = fw * lw.at(pats[fr], fk * h)
        wd = {"estimand": "stabilised IPTW (initiation)" if o["numerator"] != "none" else "IPTW (unstabilised)",
              "model": "pooled logistic", "grid": h, "numerator": o["numerator"],
              "time_terms": o["weight_time_terms"], "time_varying_confounders": lnames,
              "decision_intervals": int(k.size), "initiations": int(A.sum()),
              "n_truncated": int(n_trunc), "truncation_caps": caps,
              "min": float(fw.min()), "max": float(fw.max()), "mean": float(fw.mean()),
              "ess": float(fw.sum() ** 2 / np.sum(fw ** 2)),
              "top5": [float(v) for v in np.sort(fw)[-5:][::-1]],
              "by_interval": interval_diagnostics(fk, fw, h)}
        out.diagnostics["weights"] = wd
        out.diagnostics["weight_models"] = {"denominator": {"coef": [float(c) for c in model.coef_den_]},
                                            "numerator": None if model.coef_num_ is None else
                                            {"coef": [float(c) for c in model.coef_num_]}}
        if lw is not None:
            out.diagnostics["loss_weights"] = lw.diagnostics
            out.notes += lw.notes
            out.warnings += lw.warnings
        out.warnings += model.warnings_
        out.notes.insert(0, (
            f"marginal structural Cox model: weights from pooled logistic models of starting treatment in "
            f"intervals of {h:g} given "
            + (f"the time-varying confounders ({', '.join(lnames)}), " if lnames else "")
            + "the baseline confounders and time (denominator) vs "
            + {"baseline": "the baseline confounders and time", "time": "time only",
               "none": "1 (unstabilised)"}[o["numerator"]] + " (numerator); constant after initiation "
            "(treatment sustained); robust SE clustered on patient treats the weights as known"))
        if not lnames:
            out.notes.append("no time-varying confounders (time_varying_confounders, adjust_state): the weights "
                             "balance the baseline confounders only"
                             + ("; with numerator: baseline they are 1 and the MSM is the Cox model adjusted "
                                "for the baseline confounders" if o["numerator"] == "baseline" else ""))
        if n_trunc:
            out.notes.append(f"weights truncated at {caps[0]:.3g} and {caps[1]:.3g} ({n_trunc} person-intervals)")
        if o["numerator"] != "none" and abs(wd["mean"] - 1.0) > MEAN_TOLERANCE:
            out.warnings.append(f"{where}: the stabilised weights have mean {wd['mean']:.3f} (expected near 1): the "
                                "weight models may be misspecified or positivity violated (Cole & Hernán 2008)")
        if wd["max"] > 20:
            out.warnings.append(f"{where}: large weights (max {wd['max']:.1f}, ESS {wd['ess']:.0f} of "
                                f"{fw.size} person-intervals): few patients carry the pseudo-population")
        return self


def _covering_rows(data: DesignData, patient: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the design row of ``patient[i]`` that covers time ``t[i]`` (start <= t < stop; the last row
    of the patient when t is at or after its end)."""
    pat = np.asarray(data.patient)
    start = np.asarray(data.start, dtype=float)
    order = np.lexsort((start, pat))
    ps, ss = pat[order], start[order]
    lo = np.searchsorted(ps, patient, side="left")
    hi = np.searchsorted(ps, patient, side="right")
    # last row of the patient with start <= t: rank t among the patient's starts
    pos = _rank_within(ps, ss, patient, np.asarray(t, dtype=float))
    pos = np.clip(pos - 1, lo, hi - 1)
    return order[pos]


def _rank_within(ps: np.ndarray, ss: np.ndarray, patient: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``lo + searchsorted(ss[block of patient], t, 'right')`` for rows sorted by (patient, start), vectorised on
    one integer key (patient rank, time rank)."""
    _, pc = np.unique(np.concatenate([ps, patient]), return_inverse=True)
    pc = pc.ravel()
    allt, tr = np.unique(np.concatenate([ss, t]), return_inverse=True)
    tr = tr.ravel()
    U = allt.size + 1
    key = pc[:ps.size].astype(np.int64) * U + tr[:ps.size]
    q = pc[ps.size:].astype(np.int64) * U + tr[ps.size:]
    return np.searchsorted(key, q, side="right")
