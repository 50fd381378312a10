"""Monte Carlo study over digital-twin replicates.

Each replicate ``r`` simulates one twin cohort with seed ``seed + r`` (so a
single replicate can be re-run with ``simulate_twin(TwinParams(seed=seed + r))``
and analysed on its own), builds the :class:`~causal_hcc.cohort.Cohort` with
the spec's roles and confounders, and runs every strategy of the spec on
every outcome: point estimates with each strategy's own model/robust SE and
CI. Strategies whose default variance is the whole-pipeline bootstrap
(g-formula, clone-censor-weight) get no SE inside replicates unless
``bootstrap_replicates > 0`` is asked for (B bootstraps x R replicates is
expensive); their coverage is then reported as missing, not as 0.

Performance measures per strategy x outcome x measure x time (Morris, White
& Crowther 2019, Table 6), each against the truth of the row's own estimand
(:mod:`causal_hcc.estimands`; :meth:`SimulationSpec.estimand_truths`): a
landmark row against the landmark contrast's truth, a time-dependent Cox row
against the structural HR, an ever-vs-never row against the estimand the paper
claimed (``truth_kind = "claimed"``):

* ``bias`` = mean(theta_hat) - theta, with its Monte Carlo SE
  ``empirical_se / sqrt(n)``;
* ``empirical_se`` = SD(theta_hat); ``model_se`` = mean of the reported SEs;
  ``se_ratio`` = model_se / empirical_se;
* ``rmse`` = sqrt(mean((theta_hat - theta)^2));
* ``coverage`` of the reported (1 - alpha) CI, with MCSE sqrt(p(1-p)/n);
* ``interval`` names that interval and ``coverage_verdict`` judges it (:func:`coverage_verdict`: ``valid``
  within :data:`COVERAGE_VALID`, ``low``/``high`` beyond 2 MC SE of it, ``uncertain`` within MC error):
  only ``valid`` intervals are presented as valid (``simulation.md``, the report, and the notes of a
  run's estimates, :func:`note_interval_validity`);
* ``bias_verdict``: within or beyond 2 MC SE (of the bias and the truth combined), or ``finite-sample``
  for a ratio of two risks whose log-scale bias is the Jensen bias of unbiased risks (``jensen_bias``,
  :func:`ratio_jensen`, computed from the replicates).

Column ``k`` numbers repeated measures of one strategy in output order (the
``paper`` preset reports the univariate HR, k = 0, and the multivariable HR,
k = 1). Hazard ratios are analysed on the log scale (theta = log HR; ``se`` of an
``hr`` row is already the SE of log HR); ``mean_estimate`` shows exp(mean
log HR) (the geometric mean HR). A replicate whose strategy failed
(EstimationError) counts in ``n_failed`` and is left out of the measures;
as in bootstrap replicates, so does a fit whose treatment coefficient is
infinite (monotone likelihood), which a single analysis returns with R's
warning (:func:`causal_hcc.inference.failing_on_infinite`).

The replicates run locally (joblib, ``n_jobs`` processes) or on a Dask
distributed cluster (``scheduler="tcp://host:port"`` or ``dask_local=N``
workers on loopback). Every replicate is a pure function of (spec, seed,
r) and results are assembled in replicate order, so the output is identical
whichever way it ran.

References
----------
Morris TP, White IR, Crowther MJ. Using simulation studies to evaluate
statistical methods. Stat Med 2019;38:2074-102.
Burton A, Altman DG, Royston P, Holder RL. The design of simulation studies
in medical statistics. Stat Med 2006;25:4279-92.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from causal_hcc.base import Targets
from causal_hcc.errors import CausalHCCError, SpecError
from causal_hcc.inference import REPLICATE_ERRORS, _failure_reason, _keys, failing_on_infinite
from causal_hcc.results import is_ratio

__all__ = [
    "SimulationSpec",
    "SimulationResult",
    "simulate_study",
    "run_simulation_spec",
    "truth_lookup",
    "summarise_simulation",
    "SIMULATION_COLUMNS",
    "without_time_varying",
    "COVERAGE_VALID",
    "coverage_verdict",
    "bias_verdict",
    "ratio_jensen",
    "interval_name",
    "note_interval_validity",
]

#: columns of ``simulation.csv``, in order
SIMULATION_COLUMNS: tuple[str, ...] = (
    "strategy", "design", "adjustment", "estimand", "outcome", "measure", "measure_role", "time", "k", "scale",
    "truth", "truth_mcse", "truth_kind", "truth_note", "n_replicates", "n_failed", "n_valid", "mean_estimate", "bias",
    "mcse_bias", "empirical_se",
    "model_se", "se_ratio", "rmse", "coverage", "mcse_coverage", "n_coverage", "mean_ci_width",
    "variance_method", "n_penalised", "interval", "coverage_verdict", "jensen_bias", "bias_verdict",
)

#: coverage of a nominal 95% interval taken as valid (issue 20): outside it by more than 2 Monte Carlo SE the
#: row's ``coverage_verdict`` is ``low``/``high``; outside it within Monte Carlo error, ``uncertain``
COVERAGE_VALID: tuple[float, float] = (0.92, 0.98)
#: |bias| / MC SE beyond which a row's bias is called real (the MC SE combines the bias's and the truth's)
BIAS_Z = 2.0
#: ratio measures of two arms' risks and the difference of the same risks reported beside them:
#: ratio = a1 / a0 and difference = sign * (a1 - a0), from which each replicate's arm risks follow
_RATIO_PAIRS: dict[str, tuple[str, float]] = {"risk_ratio": ("survival_difference", -1.0),
                                               "cif_ratio": ("cif_difference", 1.0)}
_INTERVAL_SE = {"model": "model-based SE", "robust": "robust (sandwich) SE", "cluster_robust": "cluster-robust SE",
                "greenwood": "Greenwood SE", "ij": "infinitesimal-jackknife SE", "firth": "Firth profile likelihood"}

#: columns of the per-replicate table (``simulation_replicates.csv``)
REPLICATE_COLUMNS: tuple[str, ...] = (
    "replicate", "twin_seed", "strategy", "design", "adjustment", "estimand", "outcome", "measure", "time", "k",
    "estimate", "se", "ci_lower", "ci_upper", "variance_method", "error", "penalised",
)


# --------------------------------------------------------------------------- the study's inputs
@dataclass(frozen=True)
class SimulationSpec:
    """Everything one replicate needs (picklable: sent to workers).

    Parameters
    ----------
    strategies : sequence of StrategySpec
        Resolved strategies (:func:`causal_hcc.strategies.resolve`).
    roles : mapping
        Cohort role keywords: ``id``, ``time``, ``event``, ``treatment`` and
        optionally ``treatment_time``, ``cluster``, ``outcomes`` (name ->
        (time col, event col)), ``outcome_name``.
    confounders, categorical : sequence of str
    targets : Targets
    twin : TwinParams or None
        Base twin parameters; replicate ``r`` uses ``seed = study seed + r``.
        None: ``TwinParams()``.
    reference : mapping, optional
        Reference level per categorical confounder.
    missing : {"error", "complete_case"}
    bootstrap_replicates : int, default 0
        Bootstrap replicates *inside* each Monte Carlo replicate for the
        strategies that need the bootstrap (0: none; their SE is missing).
    study : str
    generator : callable, optional
        ``generator(params) -> DataFrame``; default
        :func:`causal_hcc.twin.simulate_twin`. Must be importable by workers
        (a module-level function).
    truth : any, optional
        One truth for every row (see :func:`truth_lookup`), for a custom
        ``generator``. Default: on the twin, each row's own estimand's truth
        (:meth:`estimand_truths`).
    """

    strategies: tuple[Any, ...]
    roles: Mapping[str, Any]
    confounders: tuple[str, ...]
    targets: Targets
    twin: Any = None
    categorical: tuple[str, ...] = ()
    reference: Mapping[str, Any] = field(default_factory=dict)
    missing: str = "error"
    bootstrap_replicates: int = 0
    study: str = "simulation"
    generator: Callable[[Any], pd.DataFrame] | None = None
    truth: Any = None
    #: the adjustment set of strategies that name none (the spec's ``confounders``);
    #: ``confounders`` above is the cohort's, which adds strategy-level ones. None: all.
    default_confounders: tuple[str, ...] | None = None
    #: the spec's ``visits`` on the twin (``id``, ``time``, ``columns``, ``confounders``: the
    #: time-varying confounders): each replicate's cohort gets the twin's visits table
    #: (:func:`causal_hcc.twin.simulate_twin_with_visits`). None: no visits.
    visits: Mapping[str, Any] | None = None

    @classmethod
    def from_analysis_spec(cls, spec: Any, *, bootstrap_replicates: int = 0) -> "SimulationSpec":
        """Build from a :class:`causal_hcc.config.AnalysisSpec` whose data is the twin."""
        if spec.data.path != "twin":
            raise SpecError(f"simulate: data.path must be 'twin' (got '{spec.data.path}'): a Monte Carlo study "
                            "needs a data-generating process with a known truth")
        from causal_hcc.twin import TwinParams

        r = spec.roles
        roles = {"id": r.id, "time": r.time, "event": r.event, "treatment": r.treatment,
                 "treatment_time": r.treatment_time, "cluster": r.cluster, "outcome_name": r.outcome,
                 "outcomes": {k: o.cohort_value() for k, o in spec.outcomes.items()},
                 "competing": list(spec.competing) if spec.competing else None}
        visits = None
        if spec.visits is not None:
            if spec.visits.path is not None or spec.visits.time is None:
                raise SpecError("simulate: on the twin, visits: takes the twin's own visits table (id: id, time: "
                                "month, columns: [ecog_ge1, progressed]), without path or date")
            visits = {"id": spec.visits.id, "time": spec.visits.time, "columns": list(spec.visits.columns),
                      "confounders": list(spec.time_varying)}
        return cls(strategies=tuple(spec.resolved_strategies()), roles=roles, visits=visits,
                   confounders=tuple(spec.all_confounders()), default_confounders=tuple(spec.confounders),
                   categorical=tuple(spec.categorical),
                   reference=dict(spec.reference or {}), missing=spec.cohort_missing, targets=spec.targets,
                   twin=TwinParams.from_spec(spec.data.twin or {}), bootstrap_replicates=bootstrap_replicates,
                   study=spec.study)

    def twin_params(self, seed: int) -> Any:
        """The twin parameters of one replicate: the base ones with ``seed``."""
        base = self.twin
        if base is None:
            from causal_hcc.twin import TwinParams

            base = TwinParams()
        if hasattr(base, "model_copy"):
            return base.model_copy(update={"seed": int(seed)})
        return dataclasses.replace(base, seed=int(seed))

    def make_data(self, seed: int) -> pd.DataFrame:
        return self.make_frames(seed)[0]

    def make_frames(self, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """``(patients, visits)`` of one replicate (visits None without ``visits``); a custom
        ``generator`` may return the pair itself."""
        gen = self.generator
        if gen is None:
            if self.visits is not None:
                from causal_hcc.twin import simulate_twin_with_visits

                return simulate_twin_with_visits(self.twin_params(seed))
            from causal_hcc.twin import simulate_twin as gen
        out = gen(self.twin_params(seed))
        return (out[0], out[1]) if isinstance(out, tuple) else (out, None)

    def cohort(self, df: pd.DataFrame, visits: pd.DataFrame | None = None) -> Any:
        from causal_hcc.cohort import Cohort

        kw = {k: v for k, v in dict(self.roles).items() if v is not None}
        cohort = Cohort(df, confounders=list(self.confounders), categorical=list(self.categorical),
                        reference=dict(self.reference) or None, missing=self.missing, **kw)
        if visits is not None and self.visits is not None:
            from causal_hcc.timeline import attach_visits

            v = self.visits
            cohort = attach_visits(cohort, visits, id=v["id"], time=v["time"], columns=v["columns"],
                                   confounders=v.get("confounders") or v["columns"],
                                   categorical=[c for c in self.categorical if c in v["columns"]])
        return cohort

    def twin_outcomes(self) -> dict[str, str | None]:
        """Each cohort outcome and the twin outcome it measures (``os``/``pfs``; None: not a twin outcome)."""
        from causal_hcc.twin.truth import twin_outcome

        primary = str(self.roles.get("outcome_name") or "os")
        out = {primary: twin_outcome(self.roles.get("time"), primary, self.roles.get("event"))}
        for name, cols in dict(self.roles.get("outcomes") or {}).items():
            col = cols.get("time") if isinstance(cols, Mapping) else (cols[0] if cols else None)
            ev = cols.get("event") if isinstance(cols, Mapping) else (cols[1] if cols and len(cols) > 1 else None)
            out[str(name)] = twin_outcome(col, str(name), ev)
        return out

    def competing_codes(self) -> dict[str, tuple[int, ...]]:
        """Each cohort outcome's competing event codes (empty: none)."""
        primary = str(self.roles.get("outcome_name") or "os")
        out = {primary: tuple(int(c) for c in (self.roles.get("competing") or ()))}
        for name, cols in dict(self.roles.get("outcomes") or {}).items():
            comp = cols.get("competing") if isinstance(cols, Mapping) else None
            out[str(name)] = tuple(int(c) for c in (comp or ()))
        return out

    def estimand_truths(self, replicates: pd.DataFrame, *, n_large: Mapping[tuple, int] | None = None
                        ) -> dict[tuple, dict[str, Any]]:
        """Each row's truth: that of its own estimand on the twin, for every outcome the twin simulates.

        Keys ``(strategy, estimand, outcome, measure, time)``; values ``{"value", "mcse", "kind",
        "note", "n_large"}``: ``value`` None where the twin has no truth (``note`` says why),
        ``mcse`` the truth's Monte Carlo SE (log scale for HRs), ``kind`` ``own`` or ``claimed``
        (rows whose contrast is not causal). Conditional estimands are computed given each
        strategy's adjustment set. ``n_large`` maps ``(strategy, estimand)`` to the population
        size of its truth (default :data:`causal_hcc.twin.truth.DEFAULT_N_LARGE`).
        """
        from causal_hcc.twin.truth import DEFAULT_N_LARGE, estimand_truth

        t = self.targets
        times = tuple(float(x) for x in t.survival_at) or (12.0, 24.0)
        tau = float(t.rmst_tau) if t.rmst_tau is not None else 24.0
        base = self.twin_params(0)
        built = {s.label: s.build(default_confounders=self.default_confounders) for s in self.strategies}
        twin_of = self.twin_outcomes()
        comp_of = self.competing_codes()
        out: dict[tuple, dict[str, Any]] = {}
        ok = replicates[(replicates["error"] == "") & (replicates["estimand"] != "")]
        for (strategy, estimand, outcome, measure), g in ok.groupby(["strategy", "estimand", "outcome", "measure"],
                                                                   sort=False):
            owner = built.get(strategy) or next(
                (b for lab, b in sorted(built.items(), key=lambda kv: -len(kv[0])) if strategy.startswith(lab)), None)
            tkeys = [None if pd.isna(tt) else float(tt) for tt in g["time"].drop_duplicates()]
            keys = [(strategy, estimand, outcome, measure, tk) for tk in tkeys]
            if owner is None:
                for k in keys:
                    out[k] = {"value": None, "mcse": None, "kind": "", "note": "undefined: strategy not found"}
                continue
            est = owner.estimand(measure, strategy, competing=comp_of.get(str(outcome), ())).to_dict()
            if est["label"] != estimand:
                for k in keys:
                    out[k] = {"value": None, "mcse": None, "kind": "",
                              "note": "undefined: the row's estimand differs from its strategy's"}
                continue
            twin_oc = twin_of.get(str(outcome))
            if twin_oc is None:
                for k in keys:
                    out[k] = {"value": None, "mcse": None, "kind": "",
                              "note": f"undefined: outcome '{outcome}' is not one the twin simulates (os, pfs; "
                                      "cancer_death with competing_death_rate > 0)"}
                continue
            conf = owner.confounders if owner.confounders is not None else (
                self.default_confounders if self.default_confounders is not None else self.confounders)
            n = int((n_large or {}).get((strategy, estimand), DEFAULT_N_LARGE))
            tr = estimand_truth(est, base, times=times, rmst_tau=tau, confounders=tuple(conf), n_large=n,
                                outcome=twin_oc)
            for k, tk in zip(keys, tkeys):
                out[k] = _truth_entry(tr, measure, tk, n)
        return out

    def resolve_truth(self) -> Any:
        if self.truth is not None:
            return self.truth
        try:
            from causal_hcc.twin import truth as twin_truth
        except ImportError:  # twin without a truth function yet
            return None
        base = self.twin
        if base is None:
            from causal_hcc.twin import TwinParams

            base = TwinParams()
        t = self.targets
        return twin_truth(base, times=tuple(float(x) for x in t.survival_at) or (12.0, 24.0),
                          rmst_tau=float(t.rmst_tau) if t.rmst_tau is not None else 24.0)


def without_time_varying(spec: Any) -> Any:
    """The AnalysisSpec ``spec`` without ``visits`` and ``time_varying_confounders``: the same strategies
    with weight models on the baseline covariates only (the comparison of ``benchmarks/twin_tv_study.py``)."""
    return spec.model_copy(update={"visits": None, "time_varying_confounders": []})


# --------------------------------------------------------------------------- the truth
#: measures whose truth does not depend on follow-up: the primary verdict measures
PRIMARY_MEASURES: tuple[str, ...] = ("survival_difference", "rmst_difference")


def _truth_entry(tr: Mapping[str, Any], measure: str, tkey: float | None, n_large: int) -> dict[str, Any]:
    """One row's truth from an :func:`~causal_hcc.twin.truth.estimand_truth` result."""
    base = {"value": None, "mcse": None, "kind": tr.get("kind", ""), "note": tr.get("note", ""), "n_large": n_large}
    if not tr.get("defined", True):
        return {**base, "kind": "", "note": tr.get("note") or "undefined"}
    se = tr.get("mc_se") or {}
    if measure in ("hr", "median_difference", "cause_specific_hr", "subdistribution_hr"):
        v, m = tr.get(measure), se.get(measure)
    elif isinstance(tr.get(measure), dict) and tkey is not None:
        v, m = tr[measure].get(f"{tkey:g}"), (se.get(measure) or {}).get(f"{tkey:g}")
    else:
        v = m = None
    if v is None:
        why = {"median_difference": "a median is not reached within follow-up in one arm",
               "hr": "no hazard ratio for this estimand"}.get(measure, f"no truth for {measure}")
        return {**base, "kind": "", "note": f"undefined: {why}" + (f" at {tkey:g}" if tkey is not None else "")}
    return {**base, "value": float(v), "mcse": None if m is None else float(m)}


_MEASURE_ALIASES = {"hr": "hr", "hazard_ratio": "hr", "survival_difference": "survival_difference",
                    "surv_diff": "survival_difference", "rmst_difference": "rmst_difference",
                    "rmst_diff": "rmst_difference", "median_difference": "median_difference"}


def _as_plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_dict") and not isinstance(obj, pd.DataFrame):
        return obj.to_dict()
    return obj


def truth_lookup(truth: Any, primary: str = "os", outcomes: Sequence[str] = ()
                 ) -> dict[tuple[str, str, float | None], float]:
    """Normalise the twin's truth to ``{(outcome, measure, time): value}``.

    Accepted shapes: None (no truth); a DataFrame or a list of records with
    ``measure``, ``time`` (optional), ``value`` or ``estimate`` (and
    optionally ``outcome``); a mapping ``{"hr": 0.7, "survival_difference":
    {12: 0.05, 24: 0.08}, "rmst_difference": {24: 1.2}}``, optionally nested
    under the names in ``outcomes`` (``{"pfs": {...}}``; other nested blocks,
    such as the twin's ``candidates``, are ignored) or under ``"estimates"``.
    Values without an outcome belong to ``primary``. HRs are ratios (not logs).
    """
    out: dict[tuple[str, str, float | None], float] = {}
    truth = _as_plain(truth)
    if truth is None:
        return out
    if isinstance(truth, pd.DataFrame):
        truth = truth.to_dict(orient="records")
    if isinstance(truth, Mapping) and "estimates" in truth and isinstance(truth["estimates"], (list, tuple)):
        truth = truth["estimates"]
    if isinstance(truth, (list, tuple)):
        for rec in truth:
            m = _MEASURE_ALIASES.get(str(rec.get("measure")))
            if m is None:
                continue
            v = rec.get("value", rec.get("estimate", rec.get("truth")))
            t = rec.get("time")
            t = None if t is None or (isinstance(t, float) and math.isnan(t)) else float(t)
            if v is not None and np.isfinite(float(v)):
                out[(str(rec.get("outcome") or primary), m, t)] = float(v)
        return out
    if not isinstance(truth, Mapping):
        raise TypeError(f"cannot read the truth from {type(truth).__name__}")

    def walk(d: Mapping[str, Any], outcome: str) -> None:
        for k, v in d.items():
            m = _MEASURE_ALIASES.get(str(k))
            if m is None:
                continue
            if isinstance(v, Mapping):
                for t, x in v.items():
                    if x is not None and np.isfinite(float(x)):
                        out[(outcome, m, float(t))] = float(x)
            elif v is not None and not isinstance(v, (list, tuple, str)) and np.isfinite(float(v)):
                out[(outcome, m, None)] = float(v)

    nested = [k for k, v in truth.items() if isinstance(v, Mapping) and k in outcomes and k != primary]
    walk(truth, primary)
    for k in nested:
        walk(truth[k], str(k))
    return out


# --------------------------------------------------------------------------- one replicate
def _run_replicate(spec: SimulationSpec, strategies: Sequence[Any], r: int, seed: int) -> list[tuple]:
    """All strategies x outcomes on replicate ``r``; rows of :data:`REPLICATE_COLUMNS`."""
    twin_seed = int(seed) + int(r)
    rows: list[tuple] = []
    df, visits = spec.make_frames(twin_seed)
    try:
        cohort = spec.cohort(df, visits)
    except CausalHCCError as exc:  # e.g. a replicate with no treated patient
        return [(r, twin_seed, s.label, s.design.name, s.adjustment.name, "", "", "", math.nan, 0, math.nan,
                 math.nan, math.nan, math.nan, "", _failure_reason(exc), False) for s in strategies]
    points: dict[tuple[str, str], Any] = {}
    for s in strategies:
        for o in cohort.outcome_names:
            try:
                with np.errstate(all="ignore"), failing_on_infinite():
                    points[(s.label, o)] = s.fit(cohort, o, spec.targets)
            except REPLICATE_ERRORS as exc:
                rows.append((r, twin_seed, s.label, s.design.name, s.adjustment.name, "", o, "", math.nan, 0, math.nan,
                             math.nan, math.nan, math.nan, "", _failure_reason(exc), False))
    if spec.bootstrap_replicates > 0:
        from causal_hcc.inference import bootstrap_many

        bseed = int(np.random.SeedSequence([int(seed), int(r)]).generate_state(1)[0])
        points.update(bootstrap_many(strategies, cohort, cohort.outcome_names, spec.targets, points,
                                     replicates=spec.bootstrap_replicates, seed=bseed, n_jobs=1))
    for s in strategies:
        for o in cohort.outcome_names:
            out = points.get((s.label, o))
            if out is None:
                continue
            penalised = _needed_penalty(out.diagnostics)
            for e, key in zip(out.estimates, _keys(out.estimates)):
                # an estimate may carry its own label (e.g. ``paper(univariate)``)
                rows.append((r, twin_seed, e.strategy or s.label, s.design.name, s.adjustment.name, e.estimand, o,
                             e.measure,
                             math.nan if e.time is None else float(e.time), key[2], float(e.estimate), float(e.se),
                             float(e.ci_lower), float(e.ci_upper), e.variance_method, "", penalised))
    return rows


def _needed_penalty(diagnostics: Mapping[str, Any]) -> bool:
    """True when a Firth penalty kept a fit finite that the unpenalised model could not estimate
    (monotone Cox likelihood, or separation in the propensity model)."""
    firth = diagnostics.get("firth") or {}
    ps = diagnostics.get("propensity") or {}
    return bool(firth.get("unpenalised_infinite")) or bool(ps.get("firth_separation"))


def _run_chunk(spec: SimulationSpec, reps: Sequence[int], seed: int) -> list[tuple]:
    from causal_hcc.inference import single_threaded_blas

    strategies = [s.build(default_confounders=spec.default_confounders) for s in spec.strategies]
    rows: list[tuple] = []
    with single_threaded_blas():  # same arithmetic on every backend (see inference.single_threaded_blas)
        for r in reps:
            rows.extend(_run_replicate(spec, strategies, r, seed))
    return rows


# --------------------------------------------------------------------------- summary
def interval_name(variance_method: str, log_scale: bool) -> str:
    """The interval whose coverage a row measures, in words: ``variance_method`` (``/``-joined when replicates
    differ, ``none`` for replicates without one) on the scale of the Wald interval."""
    parts = [m for m in str(variance_method or "").split("/") if m and m != "none"]
    if not parts:
        return "no interval"
    names = []
    for m in parts:
        if m == "bootstrap":
            names.append("whole-pipeline bootstrap interval")
        elif m in ("profile_likelihood", "firth"):
            names.append("profile-likelihood interval")
        elif m == "rubin":
            names.append("Rubin's-rules Wald interval")
        else:
            names.append(("log-scale " if log_scale else "") + f"Wald interval, {_INTERVAL_SE.get(m, m + ' SE')}")
    txt = " / ".join(names)
    return txt + (" (replicates without an SE have none)" if "none" in str(variance_method).split("/") else "")


def coverage_verdict(coverage: float, mcse: float, n: int, valid: tuple[float, float] = COVERAGE_VALID) -> str:
    """``valid`` (within ``valid``), ``low``/``high`` (outside it by more than 2 Monte Carlo SE), ``uncertain``
    (outside it, within Monte Carlo error), ``""`` (not measured: no interval or no truth).

    The Monte Carlo SE is the row's own, sqrt(p(1 - p) / n); where that is 0 (coverage 0 or 1) the SE at the
    bound crossed is used instead.
    """
    if coverage is None or not math.isfinite(coverage) or n <= 0:
        return ""
    lo, hi = valid
    if lo <= coverage <= hi:
        return "valid"
    bound = lo if coverage < lo else hi
    se = mcse if (mcse is not None and math.isfinite(mcse) and mcse > 0) else math.sqrt(bound * (1 - bound) / n)
    if coverage + BIAS_Z * se < lo:
        return "low"
    if coverage - BIAS_Z * se > hi:
        return "high"
    return "uncertain"


def ratio_jensen(ratio: np.ndarray, diff: np.ndarray, sign: float) -> dict[str, float] | None:
    """The finite-sample (Jensen) part of the mean log ratio of two estimated risks, from the replicates.

    ``ratio`` = a1 / a0 and ``diff`` = ``sign`` * (a1 - a0) of the same replicates (e.g. the risk ratio
    (1 - S1) / (1 - S0) and the survival difference S1 - S0: sign -1) give each replicate's arm risks
    a0 = sign * diff / (ratio - 1), a1 = ratio * a0. Then

        mean log(a1/a0) = log(mean a1 / mean a0) + J,   J = [mean log a1 - log mean a1] - [mean log a0 - log mean a0]

    exactly: J is the bias a log puts on unbiased risks (second order: -Var(a1)/(2 a1^2) + Var(a0)/(2 a0^2),
    O(1/n), largest in the smaller arm), and log(mean a1 / mean a0) is the ratio of the mean risks, unbiased
    when the arms' risks are. Returns ``jensen``, ``delta`` (the second-order value), ``log_ratio_of_means``
    and its Monte Carlo SE (delta method), ``n``; None with fewer than 2 usable replicates (a ratio of 1 or a
    risk of 0 leaves the arms undetermined).
    """
    ratio, diff = np.asarray(ratio, float), np.asarray(diff, float)
    with np.errstate(all="ignore"):
        a0 = sign * diff / (ratio - 1.0)
        a1 = ratio * a0
    ok = np.isfinite(a0) & np.isfinite(a1) & (a0 > 0) & (a1 > 0) & (np.abs(ratio - 1.0) > 1e-9)
    a0, a1 = a0[ok], a1[ok]
    n = int(a0.size)
    if n < 2:
        return None
    m1, m0 = float(a1.mean()), float(a0.mean())
    jensen = float((np.log(a1).mean() - math.log(m1)) - (np.log(a0).mean() - math.log(m0)))
    delta = float(-a1.var(ddof=1) / (2 * m1 ** 2) + a0.var(ddof=1) / (2 * m0 ** 2))
    lin = a1 / m1 - a0 / m0
    return {"jensen": jensen, "delta": delta, "log_ratio_of_means": math.log(m1 / m0),
            "mcse_log_ratio_of_means": float(np.std(lin, ddof=1) / math.sqrt(n)), "n": n}


def bias_verdict(bias: float, mcse: float, truth_mcse: float | None, jensen: dict[str, float] | None = None,
                 log_truth: float | None = None) -> str:
    """``within 2 MC SE`` / ``beyond 2 MC SE`` / ``finite-sample``, or ``""`` without a truth.

    ``finite-sample``: a ratio of two estimated risks whose log-scale bias is beyond 2 MC SE while the ratio
    of the mean risks, log(mean a1 / mean a0), is within 2 MC SE of the truth (``jensen`` from
    :func:`ratio_jensen`): the bias is the O(1/n) bias of the log of a ratio of unbiased risks, not a bias of
    the strategy's curves.
    """
    if bias is None or not math.isfinite(bias) or mcse is None or not math.isfinite(mcse):
        return ""
    tm = truth_mcse if (truth_mcse is not None and math.isfinite(truth_mcse)) else 0.0
    se = math.hypot(mcse, tm)
    if se == 0 or abs(bias) <= BIAS_Z * se:
        return "within 2 MC SE"
    if jensen is not None and log_truth is not None and math.isfinite(log_truth):
        net = jensen["log_ratio_of_means"] - log_truth
        if abs(net) <= BIAS_Z * math.hypot(jensen["mcse_log_ratio_of_means"], tm):
            return "finite-sample"
    return "beyond 2 MC SE"


def summarise_simulation(replicates: pd.DataFrame, truth: Mapping[tuple, float],
                         *, n_replicates: int, alpha: float = 0.05,
                         truth_kinds: Mapping[tuple, str] | None = None,
                         truth_info: Mapping[tuple, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Performance measures (:data:`SIMULATION_COLUMNS`) from the per-replicate table.

    ``truth`` maps ``(strategy, estimand, outcome, measure, time)`` to the truth of each row's
    own estimand (:meth:`SimulationSpec.estimand_truths`); a user-given truth keyed
    ``(outcome, measure, time)`` applies to every row (``truth_kind`` "given").
    ``truth_info`` (same keys) adds each truth's Monte Carlo SE (``truth_mcse``, log scale
    for HRs) and, for rows without a truth, the reason (``truth_note``). ``measure_role``
    is ``primary`` for the survival and RMST differences, whose truths do not depend on
    follow-up, and ``secondary`` for hazard ratios (the limit under the study's follow-up;
    non-collapsible) and median differences.

    References
    ----------
    Morris TP, White IR, Crowther MJ. Stat Med 2019;38:2074-102 (Table 6).
    """
    ok = replicates[replicates["error"] == ""]
    failed = replicates[replicates["error"] != ""]
    keys = ["strategy", "design", "adjustment", "estimand", "outcome", "measure", "time", "k"]
    kinds = dict(truth_kinds or {})
    tinfo = dict(truth_info or {})
    strat_order = list(dict.fromkeys(replicates["strategy"]))
    diffs = {m for m, _ in _RATIO_PAIRS.values()}
    by_diff = {key: g.set_index("replicate")["estimate"]
               for key, g in ok[ok["measure"].isin(diffs)].groupby(keys, sort=False, dropna=False)}
    rows = []
    for key, g in ok.groupby(keys, sort=False, dropna=False):
        strategy, design, adjustment, estimand, outcome, measure, t, k = key
        tkey = None if pd.isna(t) else float(t)
        rkey = (strategy, estimand, outcome, measure, tkey)
        is_hr = is_ratio(str(measure))      # every ratio measure (HR, risk ratio, ...) on the log scale
        est = g["estimate"].to_numpy(float)
        se = g["se"].to_numpy(float)
        lo, hi = g["ci_lower"].to_numpy(float), g["ci_upper"].to_numpy(float)
        with np.errstate(all="ignore"):
            theta = np.log(est) if is_hr else est
            tlo, thi = (np.log(lo), np.log(hi)) if is_hr else (lo, hi)
        valid = np.isfinite(theta)
        th = theta[valid]
        n = int(th.size)
        true = truth.get(rkey, truth.get((outcome, measure, tkey)))
        kind = kinds.get(rkey, "own" if rkey in truth else ("given" if true is not None else ""))
        ttrue = (math.log(true) if (is_hr and true is not None and true > 0) else true)
        ti = tinfo.get(rkey, {})
        t_mcse = ti.get("mcse") if true is not None else None
        t_note = "" if true is not None else str(ti.get("note") or ("undefined: no truth given for this measure"
                                                                     if truth else ""))
        emp = float(np.std(th, ddof=1)) if n > 1 else math.nan
        mean_t = float(np.mean(th)) if n else math.nan
        bias = mean_t - ttrue if (ttrue is not None and n) else math.nan
        rmse = float(np.sqrt(np.mean((th - ttrue) ** 2))) if (ttrue is not None and n) else math.nan
        se_ok = se[valid][np.isfinite(se[valid])]
        model_se = float(np.mean(se_ok)) if se_ok.size else math.nan
        ci_ok = valid & np.isfinite(tlo) & np.isfinite(thi)
        n_cov = int(ci_ok.sum())
        if ttrue is not None and n_cov:
            cov = float(np.mean((tlo[ci_ok] <= ttrue) & (ttrue <= thi[ci_ok])))
            mc_cov = math.sqrt(cov * (1 - cov) / n_cov)
        else:
            cov = mc_cov = math.nan
        width = float(np.mean(hi[ci_ok] - lo[ci_ok])) if n_cov else math.nan
        jen = None
        if measure in _RATIO_PAIRS:
            dm, sign = _RATIO_PAIRS[measure]
            d = by_diff.get((strategy, design, adjustment, estimand, outcome, dm, t, k))
            if d is not None:
                r_ = g.set_index("replicate")["estimate"]
                both = r_.index.intersection(d.index)
                jen = ratio_jensen(r_.loc[both].to_numpy(float), d.loc[both].to_numpy(float), sign)
        vm = "/".join(sorted(set(g["variance_method"])))
        rows.append({
            "strategy": strategy, "design": design, "adjustment": adjustment, "estimand": estimand,
            "outcome": outcome, "measure": measure, "time": tkey, "k": int(k), "scale": "log" if is_hr else "identity",
            "truth": math.nan if true is None else float(true),
            "truth_mcse": math.nan if t_mcse is None else float(t_mcse), "truth_kind": kind, "truth_note": t_note,
            "measure_role": "primary" if measure in PRIMARY_MEASURES else "secondary",
            "n_replicates": int(n_replicates),
            "n_failed": int(n_replicates - n), "n_valid": n,
            "mean_estimate": (math.exp(mean_t) if is_hr else mean_t) if n else math.nan,
            "bias": bias, "mcse_bias": emp / math.sqrt(n) if n > 1 else math.nan,
            "empirical_se": emp, "model_se": model_se,
            "se_ratio": model_se / emp if (emp and np.isfinite(emp) and emp > 0) else math.nan,
            "rmse": rmse, "coverage": cov, "mcse_coverage": mc_cov, "n_coverage": n_cov,
            "mean_ci_width": width,
            "variance_method": vm,
            "n_penalised": int(g["penalised"].astype(bool).sum()),
            "interval": interval_name(vm, is_hr),
            "coverage_verdict": coverage_verdict(cov, mc_cov, n_cov),
            "jensen_bias": jen["jensen"] if jen else math.nan,
            "bias_verdict": bias_verdict(bias, emp / math.sqrt(n) if n > 1 else math.nan, t_mcse, jen, ttrue),
        })
    # strategies that failed on every replicate still get a row per outcome
    done = {(r["strategy"], r["outcome"]) for r in rows}
    for (s, d, a, o), g in failed.groupby(["strategy", "design", "adjustment", "outcome"], sort=False):
        if (s, o) not in done and o != "":
            rows.append({"strategy": s, "design": d, "adjustment": a, "estimand": "", "outcome": o, "measure": "hr",
                         "time": None, "k": 0, "scale": "log", "truth": truth.get((o, "hr", None), math.nan),
                         "truth_mcse": math.nan, "truth_kind": "given" if (o, "hr", None) in truth else "",
                         "truth_note": "" if (o, "hr", None) in truth else "undefined: the strategy failed on every "
                                                                             "replicate", "measure_role": "secondary",
                         "n_replicates": int(n_replicates), "n_failed": int(n_replicates), "n_valid": 0,
                         **{c: math.nan for c in ("mean_estimate", "bias", "mcse_bias", "empirical_se", "model_se",
                                                  "se_ratio", "rmse", "coverage", "mcse_coverage", "mean_ci_width")},
                         "n_coverage": 0, "variance_method": "", "n_penalised": 0, "interval": "",
                         "coverage_verdict": "", "jensen_bias": math.nan, "bias_verdict": ""})
    table = pd.DataFrame(rows, columns=list(SIMULATION_COLUMNS))
    if len(table):
        table["_s"] = table["strategy"].map({s: i for i, s in enumerate(strat_order)})
        table = table.sort_values(["outcome", "_s"], kind="stable").drop(columns="_s").reset_index(drop=True)
    return table


# --------------------------------------------------------------------------- result
@dataclass
class SimulationResult:
    """A finished Monte Carlo study.

    Attributes
    ----------
    table : DataFrame
        Performance measures, :data:`SIMULATION_COLUMNS` (``simulation.csv``).
    replicates : DataFrame
        Every estimate of every replicate, :data:`REPLICATE_COLUMNS`.
    truth : dict
        ``{(strategy, estimand, outcome, measure, time): value}``: each row's own estimand's truth
        (``{(outcome, measure, time): value}`` when the user gave one truth for all rows).
    meta : dict
        Replicates, seed, alpha, twin parameters, backend.
    """

    table: pd.DataFrame
    replicates: pd.DataFrame
    truth: dict[tuple[str, str, float | None], float]
    meta: dict[str, Any]
    #: per row key: the truth's Monte Carlo SE, kind, note (why undefined) and population size
    truth_info: dict[tuple, dict[str, Any]] = field(default_factory=dict)

    def failures(self) -> dict[str, dict[str, int]]:
        """Failure reasons per strategy: ``{strategy: {reason: count}}``."""
        f = self.replicates[self.replicates["error"] != ""]
        out: dict[str, dict[str, int]] = {}
        for (s, e), g in f.groupby(["strategy", "error"], sort=False):
            out.setdefault(str(s), {})[str(e)] = int(g["replicate"].nunique())
        return out

    def plot(self, outcome: str | None = None, ax: Any = None) -> Any:
        """Distribution of the estimates per strategy, one panel per measure,
        with the true value as a vertical line. Returns the figure."""
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        ok = self.replicates[self.replicates["error"] == ""]
        outcome = outcome or (ok["outcome"].iloc[0] if len(ok) else "os")
        ok = ok[(ok["outcome"] == outcome) & (ok["measure"] != "median_difference")]
        panels = list(dict.fromkeys(zip(ok["measure"], ok["time"].fillna(-1.0))))
        strategies = list(dict.fromkeys(ok["strategy"]))
        if ax is not None:
            axes = np.atleast_1d(ax)
            fig = axes[0].figure
        else:
            ncol = max(1, len(panels))
            fig, axes = plt.subplots(1, ncol, figsize=(4.2 * ncol, 0.45 * len(strategies) + 1.6), squeeze=False,
                                     sharey=True)
            axes = axes[0]
        for axi, (m, t) in zip(axes, panels):
            sub = ok[(ok["measure"] == m) & (ok["time"].fillna(-1.0) == t)]
            data = []
            for s in strategies:
                v = sub.loc[sub["strategy"] == s, "estimate"].to_numpy(float)
                v = v[np.isfinite(v)]
                data.append(np.log(v[v > 0]) if is_ratio(str(m)) else v)
            pos = np.arange(len(strategies))
            nonempty = [i for i, d in enumerate(data) if d.size]
            if nonempty:
                axi.boxplot([data[i] for i in nonempty], positions=pos[nonempty], vert=False, widths=0.6,
                            showfliers=True, flierprops={"markersize": 2})
            # each strategy against the truth of its own estimand (olive: the paper's claimed
            # estimand, for a contrast that is not causal)
            tt = self.table[(self.table["outcome"] == outcome) & (self.table["measure"] == m)
                            & (self.table["time"].fillna(-1.0) == t) & (self.table["k"] == 0)]
            for _, row in tt.iterrows():
                tv = row["truth"]
                if row["strategy"] in strategies and pd.notna(tv) and (not is_ratio(str(m)) or tv > 0):
                    axi.plot([math.log(tv) if is_ratio(str(m)) else tv], [strategies.index(row["strategy"])], marker="|",
                             ms=14, mew=2.4, color="crimson" if row["truth_kind"] != "claimed" else "#9a7d0a",
                             zorder=5)
            title = {"hr": "log hazard ratio", "survival_difference": "survival difference",
                     "rmst_difference": "RMST difference", "risk_ratio": "log risk ratio"}.get(m, m)
            axi.set_title(title + ("" if t == -1.0 else f" at {t:g}"), fontsize=10)
            axi.set_yticks(pos)
            axi.set_yticklabels(strategies, fontsize=8)
            axi.grid(axis="x", alpha=0.3)
        fig.suptitle(f"{self.meta.get('replicates', '?')} twin replicates: estimates (box) vs the truth of each "
                     "row's own estimand (red; olive: the paper's claimed estimand, row not causal)",
                     fontsize=10)
        fig.tight_layout()
        return fig

    def to_markdown(self, plot_file: str | None = "simulation.png") -> str:
        """The report section: design of the study, the table, the plot."""
        m = self.meta
        lines = [
            "## Simulation study",
            "",
            f"{m['replicates']} replicates of the digital twin (twin seeds {m['seed']}–{m['seed'] + m['replicates'] - 1}), "
            f"every strategy on each; {int(round((1 - m['alpha']) * 100))}% CIs. Bias, empirical SE, RMSE and "
            "coverage are on the log scale for hazard ratios. Monte Carlo SEs in brackets "
            "(Morris, White & Crowther, Stat Med 2019).",
            "",
        ]
        lines += ["Each row is judged against the truth of its own estimand (`estimand`: contrast | population | "
                  "time origin | scale), computed from the twin's counterfactuals. Rows whose contrast is not "
                  "causal (ever vs never treated) are compared with the estimand the paper claimed "
                  "(truth of = claimed).", ""]
        if m.get("bootstrap_replicates", 0) == 0:
            boot = sorted({s for s, nb in m.get("needs_bootstrap", {}).items() if nb})
            if boot:
                tab = self.table[self.table["strategy"].isin(boot)]
                with_cov = sorted(set(tab.loc[tab["n_coverage"] > 0, "strategy"]))
                without = sorted(set(boot) - set(with_cov))
                txt = (f"The whole-pipeline bootstrap, which the report uses for {', '.join(boot)}, was not run "
                       "inside replicates (`--bootstrap-replicates B` adds it).")
                if with_cov:
                    txt += (f" Coverage of {', '.join(with_cov)} is that of their analytic interval "
                            "(column variance method), not of the bootstrap interval.")
                if without:
                    txt += f" {', '.join(without)} have no analytic SE: no coverage."
                lines += [txt, ""]
        lines += ["Primary verdict measures: the survival difference at t and the RMST difference, whose truths do "
                  "not depend on follow-up. Hazard ratios follow: under non-proportional hazards a marginal HR "
                  "depends on the follow-up and is non-collapsible, so its truth is the limit of the strategy's "
                  "estimator under the study's own follow-up. Each truth carries its Monte Carlo SE (in "
                  "brackets); coverage is that of the interval named under variance method.", ""]
        lo, hi = COVERAGE_VALID
        lines += [f"Bias verdict: within or beyond {BIAS_Z:g} MC SE (of the bias and the truth combined); "
                  "\"finite-sample\" for a ratio of two risks whose log-scale bias is beyond it while the ratio of "
                  "the mean risks is within it: the O(1/n) bias the log puts on a ratio of unbiased risks "
                  "(column jensen_bias in simulation.csv), not a bias of the strategy's curves. Coverage verdict: "
                  f"an interval is shown valid only where its coverage is within {lo:g}–{hi:g}; **LOW**/**HIGH**: "
                  f"outside it by more than {BIAS_Z:g} MC SE (not valid here); *not shown valid*: outside it within "
                  "Monte Carlo error.", ""]
        hdr = ["strategy", "estimand", "truth of", "outcome", "measure", "truth (MCSE)", "mean", "bias (MCSE)",
               "bias verdict", "emp. SE", "model SE", "RMSE", "coverage (MCSE)", "interval", "failed", "penalised"]
        tab = self.table
        role = tab["measure_role"] if "measure_role" in tab else pd.Series("secondary", index=tab.index)
        for title, part in (("Survival and RMST differences (primary)", tab[role == "primary"]),
                            ("Hazard ratios and median differences (log scale for HRs)", tab[role != "primary"])):
            if not len(part):
                continue
            lines += [f"### {title}", "", "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
            for r in part.itertuples(index=False):
                meas = (r.measure + ("" if r.time is None or pd.isna(r.time) else f" @ {r.time:g}")
                        + (f" #{r.k + 1}" if r.k else ""))
                tmc = getattr(r, "truth_mcse", math.nan)
                truth_txt = (f"{_fmt(r.truth)} ({tmc:.2g})" if pd.notna(r.truth) and pd.notna(tmc)
                             else (_fmt(r.truth) if pd.notna(r.truth) else (getattr(r, "truth_note", "") or "–")))
                lines.append("| " + " | ".join([
                    str(r.strategy), r.estimand.replace("|", "\\|") if r.estimand else "", str(r.truth_kind),
                    str(r.outcome), meas, truth_txt, _fmt(r.mean_estimate),
                    f"{_fmt(r.bias)} ({_fmt(r.mcse_bias)})", _bias_cell(r), _fmt(r.empirical_se), _fmt(r.model_se),
                    _fmt(r.rmse), _coverage_cell(r), str(getattr(r, "interval", "") or r.variance_method),
                    f"{r.n_failed}/{r.n_replicates}", f"{r.n_penalised}/{r.n_replicates}",
                ]) + " |")
            lines.append("")
        fails = self.failures()
        if fails:
            lines += ["Failed replicates:", ""]
            for s, d in fails.items():
                lines.append(f"- {s}: " + "; ".join(f"{k} ({v})" for k, v in d.items()))
        if plot_file:
            lines += ["", f"![Estimates over replicates vs the truth]({plot_file})"]
        return "\n".join(lines) + "\n"

    def write(self, folder: str, *, force: bool = False) -> str:
        """Write ``simulation.csv``, ``simulation_replicates.csv``,
        ``simulation.md``, ``simulation.png`` and ``simulation.json``
        atomically into ``folder`` (a temporary folder renamed into place)."""
        from causal_hcc._atomic import atomic_folder

        with atomic_folder(folder, force=force, command="simulate") as tmp:
            self.table.to_csv(os.path.join(tmp, "simulation.csv"), index=False)
            self.replicates.to_csv(os.path.join(tmp, "simulation_replicates.csv"), index=False)
            with open(os.path.join(tmp, "simulation.md"), "w", encoding="utf-8") as fh:
                fh.write(self.to_markdown())
            fig = self.plot()
            fig.savefig(os.path.join(tmp, "simulation.png"), dpi=120)
            import matplotlib.pyplot as plt

            plt.close(fig)
            meta = dict(self.meta)
            meta["truth"] = [dict(zip(("strategy", "estimand", "outcome", "measure", "time")[-len(k):], k),
                                  value=v, **({"mcse": self.truth_info[k].get("mcse"),
                                               "n_population": self.truth_info[k].get("n_large")}
                                              if k in self.truth_info else {}))
                             for k, v in self.truth.items()]
            meta["failures"] = self.failures()
            with open(os.path.join(tmp, "simulation.json"), "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=1, default=str)
        return folder


_COVERAGE_FLAG = {"valid": "", "low": " **LOW**", "high": " **HIGH**", "uncertain": " *not shown valid*"}


def _coverage_cell(r: Any) -> str:
    """Coverage (MCSE) with its verdict: flagged unless it is shown valid."""
    return (f"{_fmt(r.coverage)} ({_fmt(r.mcse_coverage)})"
            + _COVERAGE_FLAG.get(str(getattr(r, "coverage_verdict", "") or ""), ""))


def _bias_cell(r: Any) -> str:
    v = str(getattr(r, "bias_verdict", "") or "")
    j = getattr(r, "jensen_bias", math.nan)
    if v == "finite-sample" and pd.notna(j):
        return f"finite-sample (Jensen {_fmt(j)})"
    return {"beyond 2 MC SE": "**beyond 2 MC SE**"}.get(v, v or "–")


def _fmt(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(v):
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def interval_note(row: Mapping[str, Any], variance_method: str) -> str | None:
    """The note an analysed estimate gets from its Monte Carlo row (``simulation.csv`` columns): which interval
    the simulated cohorts measured, its coverage and whether that shows it valid (``COVERAGE_VALID``).
    None where the row has no measured coverage."""
    cov = row.get("coverage")
    if cov is None or not isinstance(cov, (int, float)) or not math.isfinite(cov):
        return None
    verdict = str(row.get("coverage_verdict") or "") or coverage_verdict(
        float(cov), float(row.get("mcse_coverage") or math.nan), int(row.get("n_coverage") or 0))
    lo, hi = COVERAGE_VALID
    simulated = [m for m in str(row.get("variance_method") or "").split("/") if m and m != "none"]
    what = (f"{row.get('n_coverage')} simulated twin cohorts: {100 * cov:.0f}% coverage "
            f"(MC SE {100 * float(row.get('mcse_coverage') or 0):.1f}%)")
    if variance_method not in simulated:
        return (f"coverage of this {variance_method} interval not measured (the Monte Carlo measured the "
                f"{'/'.join(simulated) or 'no'} interval over {what})")
    judged = {"valid": f"within {lo:g}-{hi:g}: shown valid",
              "low": f"below {lo:g} beyond Monte Carlo error: not valid here",
              "high": f"above {hi:g} beyond Monte Carlo error: conservative",
              "uncertain": f"outside {lo:g}-{hi:g} within Monte Carlo error: not shown valid"}.get(verdict, "")
    return f"interval: {interval_name(variance_method, is_ratio(str(row.get('measure'))))}; {what}, {judged}"


def note_interval_validity(records: Sequence[Any], table: Sequence[Mapping[str, Any]]) -> int:
    """Add to each analysed estimate with an interval the Monte Carlo's verdict on that interval
    (:func:`interval_note`), matched by strategy, outcome, measure, time and repeat ``k``. Returns how many
    rows got a note."""
    from causal_hcc.inference import _keys
    from causal_hcc.results import with_note

    by = {}
    for r in table:
        t = r.get("time")
        tk = None if t is None or (isinstance(t, float) and math.isnan(t)) else float(t)
        by[(str(r.get("strategy")), str(r.get("outcome")), str(r.get("measure")), tk, int(r.get("k") or 0))] = r
    n = 0
    for rec in records:
        new = []
        for e, key in zip(rec.estimates, _keys(rec.estimates)):
            row = by.get((str(e.strategy or rec.strategy), str(rec.outcome), str(e.measure),
                          None if e.time is None else float(e.time), int(key[2])))
            ok = math.isfinite(float(e.ci_lower)) and math.isfinite(float(e.ci_upper))
            note = interval_note(row, str(e.variance_method)) if (row is not None and ok) else None
            if note:
                e = with_note(e, note)
                n += 1
            new.append(e)
        rec.estimates = new
    return n


# --------------------------------------------------------------------------- running
def _dispatch(spec: SimulationSpec, chunks: list[list[int]], seed: int, *, n_jobs: int, scheduler: str | None,
              dask_local: int | None, progress: bool, total: int) -> tuple[list[list[tuple]], str]:
    from causal_hcc.inference import _progress_bar

    bar = _progress_bar(progress, total, "simulate")
    results: list[list[tuple]] = [[] for _ in chunks]
    try:
        if scheduler is not None or dask_local is not None:
            backend = _run_dask(spec, chunks, seed, results, bar, scheduler=scheduler, dask_local=dask_local)
        elif n_jobs == 1:
            backend = "serial"
            for i, ch in enumerate(chunks):
                results[i] = _run_chunk(spec, ch, seed)
                bar.update(len(ch))
        else:
            from joblib import Parallel, delayed

            backend = f"joblib ({n_jobs} processes)"
            par = Parallel(n_jobs=n_jobs, return_as="generator")
            for i, res in enumerate(par(delayed(_run_chunk)(spec, ch, seed) for ch in chunks)):
                results[i] = res
                bar.update(len(chunks[i]))
    finally:
        bar.close()
    return results, backend


def _run_dask(spec: SimulationSpec, chunks: list[list[int]], seed: int, results: list[list[tuple]], bar: Any, *,
              scheduler: str | None, dask_local: int | None) -> str:
    """Replicates on Dask: the spec scattered once, a few large chunks per worker (inference.dask_map_chunks)."""
    from causal_hcc.inference import dask_client, dask_map_chunks

    reps = [r for ch in chunks for r in ch]
    with dask_client(scheduler, dask_local, what="simulate") as (client, backend):
        rows = dask_map_chunks(client, _run_dask_chunk, (spec, seed), reps, on_done=bar.update)
    results[:] = [rows]
    return backend


def _run_dask_chunk(shared: tuple, reps: Sequence[int]) -> list[tuple]:
    spec, seed = shared
    return _run_chunk(spec, reps, seed)


#: the truth's Monte Carlo SE must be below this share of the row's Monte Carlo SE of the bias
TRUTH_MCSE_SHARE = 0.2


def _precise_truths(spec: SimulationSpec, reps: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    """The rows' truths, their populations enlarged until each truth's MC SE is below
    :data:`TRUTH_MCSE_SHARE` of the row's Monte Carlo SE of the bias (up to
    :data:`causal_hcc.twin.truth.MAX_N_LARGE` patients; ``truth_note`` says when that is not enough)."""
    from causal_hcc.twin.truth import DEFAULT_N_LARGE, MAX_N_LARGE

    info = spec.estimand_truths(reps)
    ok = reps[reps["error"] == ""]
    need: dict[tuple, int] = {}
    for (strategy, estimand, outcome, measure, t), g in ok.groupby(
            ["strategy", "estimand", "outcome", "measure", "time"], sort=False, dropna=False):
        tk = None if pd.isna(t) else float(t)
        e = info.get((strategy, estimand, outcome, measure, tk))
        if not e or e.get("mcse") in (None, 0.0) or not math.isfinite(e["mcse"]):
            continue
        v = g["estimate"].to_numpy(float)
        with np.errstate(all="ignore"):
            v = np.log(v) if is_ratio(str(measure)) else v
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        target = TRUTH_MCSE_SHARE * float(np.std(v, ddof=1)) / math.sqrt(v.size)
        if target > 0 and e["mcse"] > target:
            n = int(min(MAX_N_LARGE, math.ceil(e["n_large"] * 1.3 * (e["mcse"] / target) ** 2)))
            need[(strategy, estimand)] = max(need.get((strategy, estimand), DEFAULT_N_LARGE), n)
    if need:
        info.update(spec.estimand_truths(reps[reps.set_index(["strategy", "estimand"]).index.isin(list(need))],
                                         n_large=need))
    return info


def simulate_study(
    spec_like: Any,
    *,
    replicates: int,
    seed: int,
    n_jobs: int | None = 1,
    scheduler: str | None = None,
    dask_local: int | None = None,
    progress: bool = False,
    bootstrap_replicates: int | None = None,
) -> SimulationResult:
    """Monte Carlo study of every strategy over twin replicates.

    Parameters
    ----------
    spec_like : SimulationSpec or AnalysisSpec
        The study (an AnalysisSpec must have ``data.path: twin``).
    replicates : int
        Number of twin replicates (>= 2).
    seed : int
        Replicate ``r`` simulates the twin with seed ``seed + r``.
    n_jobs : int, default 1
        Local worker processes (joblib); -1 = all cores. Ignored with Dask.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``).
    dask_local : int, optional
        Start a Dask ``LocalCluster`` of this many single-threaded worker
        processes on 127.0.0.1 for the run.
    progress : bool
        tqdm progress bar (shown after one second).
    bootstrap_replicates : int, optional
        Override ``spec.bootstrap_replicates`` (bootstrap inside replicates
        for the strategies that need it).

    Returns
    -------
    SimulationResult
        Identical for the same spec and seed whatever the backend.

    References
    ----------
    Morris TP, White IR, Crowther MJ. Stat Med 2019;38:2074-102.
    """
    from causal_hcc.inference import _chunks, _effective_jobs

    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 2:
        raise SpecError(f"simulate: replicates must be an integer >= 2, got {replicates!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"simulate: seed must be a non-negative integer, got {seed!r}")
    if scheduler is not None and dask_local is not None:
        raise SpecError("simulate: give either --scheduler or --dask-local, not both")
    spec = spec_like if isinstance(spec_like, SimulationSpec) else SimulationSpec.from_analysis_spec(spec_like)
    twin_given = spec.twin
    if spec.generator is None and hasattr(spec.twin, "recalibrate"):
        from causal_hcc.twin.recalibrate import resolve

        # re-solved once here (seconds), not in every worker
        spec = dataclasses.replace(spec, twin=resolve(spec.twin))
    if bootstrap_replicates is not None:
        spec = dataclasses.replace(spec, bootstrap_replicates=int(bootstrap_replicates))
    if not spec.strategies:
        raise SpecError("simulate: the spec has no strategies")
    nj = _effective_jobs(n_jobs)
    workers = dask_local or (4 if scheduler else nj)
    chunks = [list(c) for c in _chunks(int(replicates), workers, target=4)]
    results, backend = _dispatch(spec, chunks, int(seed), n_jobs=nj, scheduler=scheduler, dask_local=dask_local,
                                 progress=progress, total=int(replicates))
    rows = [row for chunk in results for row in chunk]
    reps = pd.DataFrame(rows, columns=list(REPLICATE_COLUMNS))
    if spec.truth is not None or spec.generator is not None:  # a truth given by the user applies to every row
        truth: dict[tuple, float] = dict(truth_lookup(spec.resolve_truth(),
                                                      primary=str(spec.roles.get("outcome_name") or "os")))
        kinds: dict[tuple, str] = {}
        info: dict[tuple, dict[str, Any]] = {}
    else:  # the twin: every row against its own estimand's truth, precise enough for the study
        info = _precise_truths(spec, reps)
        truth = {k: v["value"] for k, v in info.items() if v["value"] is not None}
        kinds = {k: v["kind"] for k, v in info.items() if v["value"] is not None}
    table = summarise_simulation(reps, truth, n_replicates=int(replicates), alpha=spec.targets.alpha,
                                 truth_kinds=kinds, truth_info=info)
    twin = spec.twin
    meta = {
        "study": spec.study, "replicates": int(replicates), "seed": int(seed), "alpha": spec.targets.alpha,
        "backend": backend, "bootstrap_replicates": int(spec.bootstrap_replicates),
        "strategies": [s.label for s in spec.strategies],
        "needs_bootstrap": {s.label: bool(s.build().needs_bootstrap) for s in spec.strategies},
        "twin": twin.model_dump(mode="json") if hasattr(twin, "model_dump") else (
            dataclasses.asdict(twin) if dataclasses.is_dataclass(twin) else None),
    }
    if info:
        from causal_hcc.twin.recalibrate import recalibration_note

        note = recalibration_note(twin_given) if hasattr(twin_given, "recalibrate") else None
        if note:
            meta["twin_recalibration"] = note
    return SimulationResult(table=table, replicates=reps, truth=truth, meta=meta, truth_info=info)


def run_simulation_spec(spec: Any, folder: str, *, replicates: int, seed: int, n_jobs: int | None = 1,
                        scheduler: str | None = None, dask_local: int | None = None, force: bool = False,
                        progress: bool = True, bootstrap_replicates: int = 0) -> str:
    """``causal-hcc simulate``: run the study of an AnalysisSpec and write it to ``folder``.

    Returns the path of ``simulation.csv``.
    """
    res = simulate_study(spec, replicates=replicates, seed=seed, n_jobs=n_jobs, scheduler=scheduler,
                         dask_local=dask_local, progress=progress, bootstrap_replicates=bootstrap_replicates)
    res.write(folder, force=force)
    return os.path.join(folder, "simulation.csv")
