"""Inverse probability of treatment weighting (ATE, ATT, overlap/ATO)."""
from __future__ import annotations

import numpy as np

from causal_hcc.adjust.balance import (balance_table, balance_warnings, ess_warnings, propensity_histogram,
                                       weight_summary)
from causal_hcc.adjust.propensity import (CLONE_REASON, LEARNER_OPTION, TIME_VARYING_REASON, SCORE_COLUMN_OPTION, TRIM_OPTION, fit_propensity, treatment_weights, truncate_weights,
                                          row_column, subset_rows, trim_mask, unit_rows)
from causal_hcc.base import Adjustment, DesignData, Option, Targets
from causal_hcc.errors import DataError, EstimationError, SpecError
from causal_hcc._replicate import in_replicate
from causal_hcc.outcome.effects import (OUTCOME_OPTIONS, PENALTY_OPTION, check_outcome_options, estimate_effects,
                                        outcome_kwargs, outcome_label)
from causal_hcc.strategies import register_adjustment

@register_adjustment
class IPTW(Adjustment):
    """Inverse probability of treatment weighting with a weighted Cox/KM effect model.

    Weights are computed per unit from the propensity score (or read from a
    column) and applied to the unit's rows. Outputs: weighted Cox HR with the
    robust sandwich SE (R ``coxph(weights=, robust=TRUE)``), weighted KM per
    arm with the infinitesimal-jackknife SE (R ``survfit(weights=,
    robust=TRUE)``), survival differences at the target times, RMST
    difference. The SEs treat the weights as fixed (conservative for ATE
    weights from a logistic model; Austin 2016); the whole-pipeline bootstrap
    (``variance: bootstrap``) accounts for their estimation.

    With sequential-trial data the propensity model includes trial
    indicators (see :mod:`causal_hcc.adjust.propensity`), weights are per
    (trial, patient) unit and the Cox model is stratified by trial.

    References
    ----------
    Austin PC, Stuart EA. Stat Med 2015;34:3661-79.
    Li F, Morgan KL, Zaslavsky AM. JASA 2018;113:390-400.
    Xie J, Liu C. Stat Med 2005;24:3089-110.
    Austin PC. Variance estimation when using inverse probability of treatment
    weighting (IPTW) with survival analysis. Stat Med 2016;35:5642-55.
    """

    name = "iptw"
    description = "Inverse probability of treatment weighting (ATE/ATT/ATO): weighted Cox HR and weighted KM."
    references = ("Austin PC, Stuart EA. Stat Med 2015;34:3661-79.",
                  "Li F, Morgan KL, Zaslavsky AM. JASA 2018;113:390-400.",
                  "Xie J, Liu C. Stat Med 2005;24:3089-110.")
    options = (
        Option("estimand", "str", "ATE", "target population: ATE, ATT or ATO (overlap weights)",
               choices=("ATE", "ATT", "ATO")),
        Option("stabilized", "bool", False, "multiply ATE weights by the arm's marginal proportion"),
        TRIM_OPTION,
        Option("truncate", "list[float]", None,
               "[low, high] quantiles at which to truncate the weights (e.g. [0.01, 0.99]); off by default",
               nullable=True, low=0.0, high=1.0),
        LEARNER_OPTION,
        SCORE_COLUMN_OPTION,
        Option("weight_column", "str", None, "cohort column holding precomputed weights (used as given)",
               nullable=True),
        PENALTY_OPTION,
        *OUTCOME_OPTIONS,
    )
    incompatible = {"time_varying": TIME_VARYING_REASON, "clone_censor": CLONE_REASON}

    @classmethod
    def check_options(cls, given, options, where):
        check_outcome_options(given, options, where)

    def label(self) -> str:
        o = self.options_
        return (f"iptw({o['estimand']}{', stabilized' if o['stabilized'] else ''}"
                f"{', firth' if o['penalty'] else ''}{', learner firth' if o['learner'] == 'firth' else ''}"
                f"{outcome_label(o)})")

    def estimand_part(self, measure: str = "hr", row_strategy: str = "") -> dict:
        target = self.options_["estimand"]
        return {"scale": "marginal", "population": {"ATT": "treated", "ATO": "overlap"}.get(target),
                "params": {"target": target}}

    def fit(self, data: DesignData, targets: Targets) -> "IPTW":
        o = self.options_
        where = f"adjustment '{self.name}'"
        if data.time_varying:
            raise EstimationError(f"{where}: {TIME_VARYING_REASON}")
        if o["stabilized"] and o["estimand"] != "ATE":
            raise SpecError(f"{where}: option 'stabilized' applies to estimand ATE only, got {o['estimand']}")
        if o["weight_column"] is not None and (o["score_column"] is not None or o["trim"] is not None):
            raise SpecError(f"{where}: 'weight_column' cannot be combined with 'score_column' or 'trim'")
        out_warnings: list[str] = []
        diag: dict = {}
        # inside a bootstrap replicate only the estimates are read: skip the diagnostics
        replicate = in_replicate()
        first, row_unit = unit_rows(data)
        a_unit = np.asarray(data.treatment)[first].astype(np.int8)
        X_unit = np.asarray(data.X, dtype=float)[first]
        if o["weight_column"] is not None:
            w_rows = row_column(data, o["weight_column"], where)
            w_unit = w_rows[first]
            if not np.all(np.isfinite(w_unit)) or np.any(w_unit < 0):
                bad = int(np.flatnonzero(~(np.isfinite(w_unit) & (w_unit >= 0)))[0])
                raise DataError(f"{where}: column '{o['weight_column']}' must hold finite weights >= 0 "
                                f"(first offending row {int(first[bad])})")
            keep_unit = w_unit > 0
            n_trimmed = 0
            self.propensity_ = None
        else:
            ps = fit_propensity(data, learner=o["learner"], score_column=o["score_column"], where=where)
            self.propensity_ = ps
            out_warnings += ps.warnings
            keep_unit = trim_mask(ps.unit_score, o["trim"], where)
            n_trimmed = int((~keep_unit).sum())
            e = ps.unit_score
            if o["estimand"] != "ATO" and np.any(((e <= 0) | (e >= 1)) & keep_unit):
                raise EstimationError(f"{where}: propensity scores of exactly 0 or 1 give infinite {o['estimand']} "
                                      f"weights; use estimand ATO or option 'trim'")
            w_unit = np.zeros(e.size)
            w_unit[keep_unit] = treatment_weights(e[keep_unit], a_unit[keep_unit], o["estimand"], o["stabilized"])
        if o["weight_column"] is None and not replicate:
            diag["propensity"] = propensity_histogram(e, a_unit, learner=ps.learner, n_near=ps.n_near_0_or_1)
            if ps.coef is not None:
                diag["propensity"]["coef"] = dict(zip(["(intercept)"] + ps.names, ps.coef))
            per_param = min(a_unit.sum(), (1 - a_unit).sum()) / max(ps.n_parameters, 1)
            diag["propensity"]["smaller_arm_per_parameter"] = float(per_param)
            diag["propensity"]["firth_separation"] = ps.firth_separation
        w_kept, n_trunc = truncate_weights(w_unit[keep_unit], o["truncate"], where)
        w_unit = w_unit.copy()
        w_unit[keep_unit] = w_kept
        if keep_unit.sum() == 0 or a_unit[keep_unit].min() == a_unit[keep_unit].max():
            raise EstimationError(f"{where}: after trimming, one arm has no units left")
        self.weights_ = w_unit
        rows_kept = keep_unit[row_unit]
        sub = subset_rows(data, rows_kept) if not rows_kept.all() else data
        self.output_ = estimate_effects(sub, targets, weights=w_unit[row_unit][rows_kept], curves_method="iptw-km",
                                       penalty=o["penalty"], weights_estimated=o["weight_column"] is None,
                                       **outcome_kwargs(o))
        out = self.output_
        if replicate:
            return self
        out.diagnostics.update(diag)
        out.diagnostics["weights"] = weight_summary(w_unit, a_unit, estimand=o["estimand"], n_truncated=n_trunc,
                                                    n_trimmed=n_trimmed)
        bal = balance_table(X_unit, a_unit, data.confounders, weights=w_unit)
        out.diagnostics["balance"] = bal
        out_warnings += balance_warnings(bal, where)
        out_warnings += ess_warnings(w_unit[keep_unit], a_unit[keep_unit], where)
        wmax = w_unit.max() / max(np.median(w_unit[keep_unit]), 1e-300)
        if wmax > 20:
            out_warnings.append(f"{where}: extreme weights: the largest weight is {wmax:.0f} times the median")
        if n_trimmed:
            out.notes.append(f"{n_trimmed} units with propensity score outside {list(o['trim'])} were trimmed; "
                             f"the estimand is restricted to the overlap population")
        if n_trunc:
            out.notes.append(f"{n_trunc} weights truncated at the {list(o['truncate'])} quantiles")
        out.notes.append("robust SEs treat the weights as fixed (use variance: bootstrap to account for the "
                         "propensity model)")
        out.warnings += out_warnings
        return self
