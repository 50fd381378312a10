"""Propensity-score matching: nearest neighbour on the logit of the score."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_hcc.adjust.balance import balance_table, balance_warnings, ess_warnings, propensity_histogram
from causal_hcc.adjust.propensity import CLONE_REASON, TIME_VARYING_REASON
from causal_hcc.adjust.propensity import (LEARNER_OPTION, SCORE_COLUMN_OPTION, TRIM_OPTION, fit_propensity,
                                          row_column, subset_rows, trim_mask, unit_rows)
from causal_hcc.base import Adjustment, DesignData, Option, Targets
from causal_hcc.errors import EstimationError
from causal_hcc._replicate import in_replicate
from causal_hcc.outcome.effects import (OUTCOME_OPTIONS, check_outcome_options, estimate_effects, outcome_kwargs,
                                        outcome_label, outer_cluster)
from causal_hcc.strategies import register_adjustment


@dataclass
class Matches:
    """Result of :func:`nearest_neighbour_match` (positions are unit positions)."""

    subclass: np.ndarray      # matched-set id per unit (-1: unmatched), meaningful without replacement
    weight: np.ndarray        # match weight per unit (0: not in the matched sample)
    pairs: list[tuple[int, int]]  # (treated, control) pairs, in matching order
    caliper_width: float      # on the logit scale (nan when no caliper)
    unmatched_treated: np.ndarray


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


def nearest_neighbour_match(score: np.ndarray, treatment: np.ndarray, *, ratio: int = 1,
                            caliper: float | None = 0.2, replace: bool = False,
                            exact: np.ndarray | None = None) -> Matches:
    """Greedy 1:k nearest-neighbour matching on the logit of the propensity score.

    Order and tie-breaking (deterministic): treated units are processed in
    descending order of the score (MatchIt's ``m.order = "largest"``), ties
    in row order. Matching runs in ``ratio`` rounds (as MatchIt): in round r
    each treated unit that received a control in every earlier round gets its
    r-th control. The control chosen is the nearest on the logit scale among
    the eligible ones (same ``exact`` key, within the caliper, not used yet
    when ``replace`` is False); ties go to the control that comes first in row
    order. The caliper is ``caliper`` x the pooled SD of the logit score,
    sqrt((var_treated + var_untreated) / 2) (Austin 2011).

    Match weights (MatchIt's ATT weights): treated 1; each control gets the
    sum over its matched sets of 1 / (number of controls in the set), then
    control weights are scaled to sum to the number of distinct matched
    controls.

    Parameters
    ----------
    score : ndarray
        Propensity score per unit.
    treatment : ndarray
        0/1 per unit.
    ratio : int
        Controls per treated unit (k of 1:k).
    caliper : float or None
        Caliper in SDs of the logit score; None for no caliper.
    replace : bool
        Whether a control can be matched to several treated units.
    exact : ndarray, optional
        Key per unit (any hashable values); only equal keys are matched.

    References
    ----------
    Austin PC. Optimal caliper widths for propensity-score matching when
    estimating differences in means and differences in proportions in
    observational studies. Pharm Stat 2011;10:150-61.
    Ho DE, Imai K, King G, Stuart EA. MatchIt: nonparametric preprocessing for
    parametric causal inference. J Stat Softw 2011;42(8).
    """
    a = np.asarray(treatment).astype(bool)
    lg = logit(score)
    n = a.size
    if caliper is not None:
        width = float(caliper * np.sqrt((np.var(lg[a], ddof=1) + np.var(lg[~a], ddof=1)) / 2))
    else:
        width = np.inf
    key = np.zeros(n, dtype=np.int64) if exact is None else np.unique(exact, return_inverse=True, axis=0)[1].ravel()
    treated = np.flatnonzero(a)
    treated = treated[np.argsort(-lg[treated], kind="stable")]
    controls = np.flatnonzero(~a)
    available = np.ones(n, bool)
    sets: dict[int, list[int]] = {int(t): [] for t in treated}
    pairs: list[tuple[int, int]] = []
    active = list(treated)
    for r in range(ratio):
        nxt = []
        for t in active:
            elig = controls[(key[controls] == key[t]) & (available[controls] if not replace else True)]
            if elig.size:
                d = np.abs(lg[elig] - lg[t])
                j = int(np.argmin(d))  # first minimum = first in row order (controls are sorted)
                if d[j] <= width:
                    c = int(elig[j])
                    sets[int(t)].append(c)
                    pairs.append((int(t), c))
                    if not replace:
                        available[c] = False
                    nxt.append(t)
        active = nxt
    weight = np.zeros(n)
    subclass = np.full(n, -1, dtype=np.int64)
    sid = 0
    for t in treated:
        cs = sets[int(t)]
        if not cs:
            continue
        weight[t] = 1.0
        subclass[t] = sid
        for c in cs:
            weight[c] += 1.0 / len(cs)
            subclass[c] = sid
        sid += 1
    cm = (~a) & (weight > 0)
    if cm.any():
        weight[cm] *= cm.sum() / weight[cm].sum()
    unmatched = np.array([t for t in treated if not sets[int(t)]], dtype=np.int64)
    return Matches(subclass=subclass, weight=weight, pairs=pairs,
                   caliper_width=width if np.isfinite(width) else float("nan"), unmatched_treated=unmatched)


@register_adjustment
class PSM(Adjustment):
    """Propensity-score matching (ATT), then Cox HR and KM on the matched set.

    Matching: :func:`nearest_neighbour_match`. Effect model: Cox HR of the
    matched sample with match weights and a cluster-robust SE over matched
    sets (R ``coxph(weights = w, cluster = subclass)``), KM per arm with the
    infinitesimal-jackknife SE summed within matched sets, survival and RMST
    differences. With replacement a control may sit in several sets; the SE
    is then clustered on the unit (patient) instead, which ignores the
    within-set correlation (noted in the output). The SE always clusters on
    the outermost unit: on patients for sequential-trial rows (a patient
    appears in several trials), on the cohort's ``cluster`` role (e.g.
    centre) when it is set. Sequential-trial data are
    matched exactly within trial. Treated units without a control within the
    caliper are dropped and counted: the estimand is then the effect in the
    matched treated, not the ATT.

    References
    ----------
    Austin PC. Pharm Stat 2011;10:150-61.
    Austin PC. The use of propensity score methods with survival or
    time-to-event outcomes: reporting measures of effect similar to those used
    in randomized experiments. Stat Med 2014;33:1242-58.
    Ho DE, Imai K, King G, Stuart EA. J Stat Softw 2011;42(8).
    """

    name = "psm"
    description = "Propensity-score matching (nearest neighbour on the logit, caliper), Cox/KM on the matched set."
    references = ("Austin PC. Pharm Stat 2011;10:150-61.", "Austin PC. Stat Med 2014;33:1242-58.",
                  "Ho DE, Imai K, King G, Stuart EA. J Stat Softw 2011;42(8).")
    options = (
        Option("ratio", "int", 1, "controls per treated unit (1:k)", low=1, high=20),
        Option("caliper", "float", 0.2, "caliper in SDs of the logit propensity score (Austin 2011)",
               nullable=True, low=0.0),
        Option("replace", "bool", False, "match with replacement"),
        Option("exact", "list[str]", (), "confounders to match exactly on"),
        TRIM_OPTION,
        LEARNER_OPTION,
        SCORE_COLUMN_OPTION,
        *OUTCOME_OPTIONS,
    )
    incompatible = {"time_varying": TIME_VARYING_REASON, "clone_censor": CLONE_REASON}

    @classmethod
    def check_options(cls, given, options, where):
        check_outcome_options(given, options, where)

    def label(self) -> str:
        o = self.options_
        return f"psm(1:{o['ratio']}, caliper {o['caliper']}{outcome_label(o)})"

    def estimand_part(self, measure: str = "hr", row_strategy: str = "") -> dict:
        return {"scale": "marginal", "population": "matched_treated", "params": {"target": "ATT"},
                "notes": ("treated patients without a match within the caliper are dropped: the population is "
                          "the matched treated",)}

    def fit(self, data: DesignData, targets: Targets) -> "PSM":
        o = self.options_
        where = f"adjustment '{self.name}'"
        if data.time_varying:
            raise EstimationError(f"{where}: {TIME_VARYING_REASON}")
        ps = fit_propensity(data, learner=o["learner"], score_column=o["score_column"], where=where)
        self.propensity_ = ps
        first, row_unit = unit_rows(data)
        a_unit = ps.unit_treatment
        X_unit = np.asarray(data.X, dtype=float)[first]
        keys = []
        entry_columns = getattr(getattr(data, "cohort", None), "confounder_map", None) or {}
        for v in o["exact"]:
            own = entry_columns.get(v)  # the variable's own columns, not the interactions that start with 'v='
            cols = [j for j, c in enumerate(data.confounders)
                    if (c in own if own is not None else c == v or c.startswith(v + "="))]
            if not cols:
                try:
                    keys.append(row_column(data, v, where)[first][:, None])
                    continue
                except Exception:
                    from causal_hcc.errors import SpecError
                    raise SpecError(f"{where}: exact-matching variable '{v}' is not a confounder; "
                                    f"confounders: {', '.join(data.confounders)}") from None
            keys.append(X_unit[:, cols])
        if data.stratum is not None:
            keys.append(np.asarray(data.stratum)[first][:, None].astype(float))
        keep = trim_mask(ps.unit_score, o["trim"], where)
        score = ps.unit_score
        exact = np.column_stack(keys) if keys else None
        idx = np.flatnonzero(keep)
        m = nearest_neighbour_match(score[idx], a_unit[idx], ratio=o["ratio"], caliper=o["caliper"],
                                    replace=o["replace"], exact=None if exact is None else exact[idx])
        weight = np.zeros(score.size)
        weight[idx] = m.weight
        subclass = np.full(score.size, -1, dtype=np.int64)
        subclass[idx] = m.subclass
        self.matches_ = m
        self.weights_ = weight
        self.subclass_ = subclass
        n_treated = int(a_unit.sum())
        n_unmatched = int(n_treated - ((weight > 0) & (a_unit == 1)).sum())
        matched_controls = int(((weight > 0) & (a_unit == 0)).sum())
        if (weight[a_unit == 1] > 0).sum() == 0:
            raise EstimationError(f"{where}: no treated unit found a control within the caliper")
        rows = (weight > 0)[row_unit]
        sub = subset_rows(data, rows)
        w_rows = weight[row_unit][rows]
        outer, cname = outer_cluster(sub)
        multi_row = data.n_rows != data.n_patients
        # the SE clusters on the outermost unit: the cohort's cluster (estimate_effects uses it), else
        # the patient when a patient has several rows (sequential trials) or sits in several matched
        # sets (with replacement), else the matched set
        cluster = None if (o["replace"] or multi_row or outer is not None) else subclass[row_unit][rows]
        self.output_ = estimate_effects(sub, targets, weights=w_rows, cluster=cluster, curves_method="matched-km",
                                       **outcome_kwargs(o))
        out = self.output_
        if in_replicate():  # a bootstrap replicate reads only the estimates: skip the diagnostics
            return self
        if outer is not None:
            out.notes.append(f"matched data: SEs are clustered on '{cname}' (the outermost unit), not on "
                             f"matched sets")
        elif multi_row:
            out.notes.append("matched trial rows: SEs are clustered on patients (a patient may appear in "
                             "several trials and matched sets), not on matched sets")
        elif o["replace"]:
            # estimate_effects clusters on the patient: say the SE ignores the matched-set structure
            out.notes.append("matching with replacement: SEs are clustered on patients, not matched sets")
        out.diagnostics["propensity"] = propensity_histogram(score, a_unit, learner=ps.learner,
                                                             n_near=ps.n_near_0_or_1)
        out.diagnostics["propensity"]["firth_separation"] = ps.firth_separation
        out.diagnostics["matching"] = {
            "matched_treated": n_treated - n_unmatched, "unmatched_treated": n_unmatched,
            "matched_controls": matched_controls, "caliper_sd": o["caliper"],
            "caliper_logit": None if not np.isfinite(m.caliper_width) else float(m.caliper_width),
            "ratio": o["ratio"], "replace": o["replace"], "exact": list(o["exact"]),
            "n_trimmed": int((~keep).sum())}
        bal = balance_table(X_unit, a_unit, data.confounders, weights=weight)
        out.diagnostics["balance"] = bal
        out.warnings += ps.warnings + balance_warnings(bal, where)
        out.warnings += ess_warnings(weight[weight > 0], a_unit[weight > 0], where)
        if n_unmatched:
            out.warnings.append(
                f"{where}: {n_unmatched} of {n_treated} treated units had no control within the caliper and "
                f"were dropped: the estimate is for the matched treated, no longer the ATT")
        return self
