"""Effect measures on DesignData: Cox HR, survival curves per arm, survival
and RMST differences, median difference.

Shared by every adjustment whose effect model is "(weighted) Cox + (weighted)
Kaplan–Meier per arm": none, iptw, psm (match weights), clone-censor (IPCW).
Adjustments that model the outcome themselves (g-formula, AIPTW) build their
own estimates.

Variance rules (stated on every estimate via ``variance_method``):

* unweighted, one row per patient, no cluster: Cox model-based SE
  (``model``), Greenwood SE for KM (``greenwood``), arms independent;
* weights or several rows per patient: Cox robust sandwich SE clustered on
  ``cluster`` (default: the patient) (``robust``/``cluster_robust``),
  KM infinitesimal-jackknife influence summed within cluster, so matched
  sets and clones that span both arms are handled (``robust`` /
  ``cluster_robust``). Weights are treated as fixed (the report says so);
  the whole-pipeline bootstrap accounts for their estimation.
* the cohort has a ``cluster`` role (e.g. centre): every SE is clustered on
  it, the outermost unit (centre ⊇ patient ⊇ clone / trial row / matched
  row): Cox sandwich = R ``coxph(..., cluster = centre)``, KM/RMST IJ =
  R ``survfit(..., cluster = centre)``, always ``cluster_robust``; a note
  ``cluster_robust(centre)`` names the column and ``diagnostics["variance"]``
  the number of clusters.

References
----------
Xie J, Liu C. Adjusted Kaplan-Meier estimator and log-rank test with inverse
probability of treatment weighting for survival data. Stat Med 2005;24:3089-110.
Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model.
JASA 1989;84:1074-8.
Therneau TM. survival: survfit's infinitesimal jackknife variance (R package
vignette "Weighted survival curves").
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from causal_hcc.base import DesignData, Option, Targets
from causal_hcc.core.cox import coxph
from causal_hcc.core.firth import coxph_firth
from causal_hcc.core.km import kaplan_meier
from causal_hcc.core.zph import cox_zph
from causal_hcc.errors import CausalHCCError, EstimationError, SpecError
from causal_hcc.inference import in_replicate, infinite_fails
from causal_hcc.results import EffectEstimate, StrategyOutput, SurvivalCurves, wald_estimate


def _cluster_sum(values: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Sum rows of ``values`` (n x k) within cluster labels."""
    _, inv = np.unique(cluster, return_inverse=True)
    out = np.zeros((inv.max() + 1, values.shape[1]))
    np.add.at(out, inv, values)
    return out


#: fewer clusters than this and a cluster-robust SE gets a warning
FEW_CLUSTERS = 30


def outer_cluster(data: DesignData) -> tuple[np.ndarray | None, str | None]:
    """Row labels of the cohort's ``cluster`` role and its column name, or ``(None, None)``.

    Rows of a patient share the patient's cluster, so clusters contain
    patients, which contain clones, trial rows and time-split rows.
    """
    cohort = getattr(data, "cohort", None)
    cl = getattr(cohort, "cluster", None) if cohort is not None else None
    if cl is None:
        return None, None
    name = (getattr(cohort, "roles", None) or {}).get("cluster") or "cluster"
    return np.asarray(cl)[np.asarray(data.patient)], str(name)


def cluster_notes(labels: np.ndarray, name: str, where: str = "") -> tuple[dict, list[str], list[str]]:
    """(diagnostics, notes, warnings) of a cluster-robust variance over ``labels`` of column ``name``.

    The sandwich sums score residuals (Cox) or influences (KM, RMST, AIPTW)
    within clusters, as R ``coxph(cluster =)`` and ``survfit(cluster =)``,
    with no small-sample correction; below :data:`FEW_CLUSTERS` clusters it
    is biased downward, and a warning says so.

    References
    ----------
    Lin DY, Wei LJ. The robust inference for the Cox proportional hazards
    model. JASA 1989;84:1074-8.
    Cameron AC, Miller DL. A practitioner's guide to cluster-robust
    inference. J Hum Resour 2015;50:317-72 (few clusters, section VI).
    """
    G = int(np.unique(labels).shape[0])
    diag = {"method": "cluster_robust", "cluster": name, "n_clusters": G}
    notes = [f"variance: cluster_robust({name}): sandwich / infinitesimal-jackknife SEs summed within "
             f"{G} clusters of '{name}' (R coxph/survfit with cluster = {name})"]
    warns = []
    if G < FEW_CLUSTERS:
        warns.append(f"{where + ': ' if where else ''}only {G} clusters of '{name}': cluster-robust SEs are "
                     f"biased downward with fewer than {FEW_CLUSTERS} clusters")
    return diag, notes, warns


def check_cox_fit(fit, where: str = "coxph") -> list[str]:
    """The warnings of a Cox fit for the output; in a bootstrap or Monte Carlo
    replicate (:func:`causal_hcc.inference.infinite_fails`) an infinite
    treatment coefficient fails the replicate (counted, not used)."""
    if infinite_fails() and fit.infinite and fit.names[0] in fit.infinite:
        raise EstimationError(f"{where}: coefficient of {fit.names[0]!r} may be infinite (the log-likelihood "
                              "was still rising when the fit stopped: monotone likelihood, perfect separation?)")
    return list(fit.warnings)


def logrank_diagnostics(data: DesignData) -> dict[str, float] | None:
    """Log-rank test of the arms (R ``survdiff``), or None for weighted rows."""
    from causal_hcc.core import logrank

    if not np.allclose(data.weight, 1.0):
        return None
    entry = data.start if np.any(data.start > 0) else None
    r = logrank(data.stop, data.event, data.treatment, entry=entry)
    return {"chi2": float(r.chi2), "df": int(r.df), "p_value": float(r.p)}


#: the treatment term's cox.zph p-value below which a warning is added
PH_ALPHA = 0.05


def zph_terms(names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[int]]:
    """Columns tested together by cox.zph, as R's ``cox.zph(terms = TRUE)``: one test per model term.

    ``groups`` (the cohort's ``confounder_terms``: ``{"rcs(age, 4)": ["age",
    "age'", "age''"], "stage": [...], "stage:age": [...]}``) names each
    term's columns; a column in none of them is its own term, except that a
    categorical confounder's dummies (``var=level``) form one.
    """
    term_of: dict[str, str] = {}
    for label, cols in (groups or {}).items():
        for c in cols:
            term_of.setdefault(str(c), str(label))
    terms: dict[str, list[int]] = {}
    for j, nm in enumerate(names):
        key = term_of.get(nm) or (nm.split("=", 1)[0] if "=" in nm else nm)
        terms.setdefault(key, []).append(j)
    return terms


def confounder_terms(data: DesignData) -> Mapping[str, Sequence[str]] | None:
    """The model terms of the confounders (term -> columns of ``X``) of the cohort behind ``data``, if any."""
    return getattr(getattr(data, "cohort", None), "confounder_terms", None)


def ph_test(fit, time, event, X, names: Sequence[str], *, entry=None, weights=None, strata=None,
            groups: Mapping[str, Sequence[str]] | None = None, where: str = "Cox model",
            consequence: str = "the hazard ratio averages an effect that changes over time; read the RMST and "
                               "survival differences") -> tuple[dict, list[str]]:
    """``diagnostics["ph_test"]`` and warnings for a fitted Cox model (R ``cox.zph``, km transform).

    Returns ``({"transform", "terms": [{"term", "chisq", "df", "p"}], "global", "treatment_smooth",
    "note"}, warnings)``. The smooth (R ``plot.cox.zph``'s spline of the
    scaled Schoenfeld residuals of ``treatment``, with its +-2 SE band) is
    aggregate: a 40-point curve, no patient rows. A warning names the
    treatment term's p-value when it is below :data:`PH_ALPHA`.

    References
    ----------
    Grambsch PM, Therneau TM. Biometrika 1994;81:515-26.
    """
    try:
        z = cox_zph(fit, time, event, X, entry=entry, weights=weights, strata=strata,
                    terms=zph_terms(names, groups))
    except (CausalHCCError, np.linalg.LinAlgError) as err:
        return {"error": str(err)}, [f"{where}: proportional-hazards test not computed ({err})"]
    out = z.to_dict()
    out["note"] = ("R cox.zph algorithm (survival 3.x): score test of x * g(t), g = 1 - KM(t-); model-based "
                   "information" + (", weights as case weights (the robust/cluster variance is not used, as in R)"
                                    if weights is not None or getattr(fit, "robust", False) else "")
                   + ("; evaluated at the Firth-penalised coefficients" if hasattr(fit, "penalised_loglik") else ""))
    warns: list[str] = []
    if "treatment" in z.terms:
        try:
            out["treatment_smooth"] = {"coef": float(z.term_coef[z.terms.index("treatment")]),
                                       **z.smooth("treatment")}
        except CausalHCCError:
            out["treatment_smooth"] = None
        t = z.term("treatment")
        if t["p"] < PH_ALPHA:
            warns.append(f"{where}: proportional hazards doubtful for treatment (cox.zph p = {t['p']:.3g}, "
                         f"chisq {t['chisq']:.2f}, km transform): {consequence}")
    return out, warns


#: the ``penalty`` option of the adjustments whose effect model is a Cox model
PENALTY_OPTION = Option(
    "penalty", "str", None,
    "'firth': Firth-penalised Cox model (Heinze & Schemper 2001, = R coxphf): finite estimates under "
    "monotone likelihood (e.g. no events in one arm), profile-likelihood CI", choices=("firth",), nullable=True)


#: the ``ties`` option of the adjustments whose effect model is a Cox model
TIES_OPTION = Option(
    "ties", "str", "efron",
    "Cox model ties: efron (R coxph's default) or breslow (= R ties = 'breslow'; with integer periods "
    "and weights Efron's estimate changes when rows are replicated, Breslow's does not)",
    choices=("efron", "breslow"))

#: the outcome model of the adjustments built on :func:`estimate_effects`
OUTCOME_MODEL_OPTION = Option(
    "outcome_model", "str", "cox",
    "cox (Cox model + Kaplan-Meier curves) or pooled_logistic (logistic model of the event in each period: "
    "odds ratio per period and model-based survival curves; see time_terms and period)",
    choices=("cox", "pooled_logistic"))
TIME_TERMS_OPTION = Option(
    "time_terms", "str", "quadratic",
    "pooled_logistic: basis of the period index (and of the trial index in sequential trials): linear, "
    "quadratic (k + k^2, TrialEmulation's default), cubic, or rcs3/rcs4/rcs5 (rms::rcs with 3-5 knots)",
    choices=("linear", "quadratic", "cubic", "rcs3", "rcs4", "rcs5"))
PERIOD_OPTION = Option(
    "period", "float", 1.0,
    "pooled_logistic: width of a period in the spec's time unit (1 for person-period data)", low=1e-9)

#: options shared by every adjustment whose effect model is :func:`estimate_effects`
OUTCOME_OPTIONS = (TIES_OPTION, OUTCOME_MODEL_OPTION, TIME_TERMS_OPTION, PERIOD_OPTION)


def check_outcome_options(given: dict, options: dict, where: str) -> None:
    """Refuse, when the spec loads, outcome options that would be silently ignored or contradict each other."""
    # (an option counts as given when it differs from its default: validated options carry every default)
    if options.get("outcome_model", "cox") != "pooled_logistic":
        stray = [k for k, d in (("time_terms", "quadratic"), ("period", 1.0)) if k in given and given[k] != d]
        if stray:
            raise SpecError(f"{where}: option{'s' if len(stray) > 1 else ''} {' and '.join(repr(k) for k in stray)} "
                            f"appl{'y' if len(stray) > 1 else 'ies'} to outcome_model: pooled_logistic only")
    elif options.get("penalty") is not None:
        raise SpecError(f"{where}: option 'penalty: firth' applies to the Cox model, not to outcome_model: "
                        "pooled_logistic")
    elif given.get("ties", "efron") != "efron":
        raise SpecError(f"{where}: option 'ties' applies to the Cox model, not to outcome_model: pooled_logistic")


def outcome_kwargs(options: dict) -> dict:
    """The :func:`estimate_effects` keyword arguments of :data:`OUTCOME_OPTIONS` from validated options."""
    return {k: options[k] for k in ("ties", "outcome_model", "time_terms", "period") if k in options}


def outcome_label(options: dict) -> str:
    """Label suffix of non-default outcome options, e.g. ``, pooled_logistic`` or ``, breslow``."""
    parts = []
    if options.get("outcome_model", "cox") != "cox":
        parts.append(options["outcome_model"])
    if options.get("ties", "efron") != "efron":
        parts.append(options["ties"])
    return "".join(f", {p}" for p in parts)


def firth_hr(data: DesignData, X: np.ndarray, names: list[str], *, entry, weights, cluster, robust: bool, vm: str,
             alpha: float, common: dict, out: StrategyOutput, ties: str = "efron"):
    """The treatment HR of a Firth-penalised Cox model, appended to ``out``; returns the fit.

    Unweighted rows without clustering: profile penalised-likelihood CI and
    penalised likelihood-ratio p-value (``coxphf``'s defaults;
    ``variance_method = "profile_likelihood"``; ``se`` is the Wald SE from the
    information at the estimate). Weighted or clustered rows: the robust
    sandwich at the penalised estimate and a Wald CI (``robust`` /
    ``cluster_robust``). Efron ties by default, as the unpenalised models of
    the pipeline (``coxphf`` uses Breslow; ``ties`` chooses). ``diagnostics["firth"]`` records
    whether the unpenalised estimate is infinite (monotone likelihood), and a
    warning says so.

    References
    ----------
    Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
    Biometrics 2001;57:114-9.
    """
    fit = coxph_firth(data.stop, data.event, X, entry=entry, weights=weights, strata=data.stratum,
                      cluster=cluster, robust=robust, ties=ties, profile=False if robust else [0], alpha=alpha,
                      names=names)
    b = float(fit.coef[0])
    if robust:
        out.estimates.append(wald_estimate("hr", math.exp(b), float(fit.se[0]), alpha=alpha, log_scale=True,
                                           variance_method=vm, **common))
        out.notes.append("Firth-penalised Cox model: robust sandwich SE at the penalised estimate and a Wald CI "
                         "(weighted or clustered rows: no profile likelihood)")
    else:
        out.estimates.append(EffectEstimate(
            "hr", math.exp(b), se=float(fit.se[0]), ci_lower=math.exp(fit.ci_lower[0]),
            ci_upper=math.exp(fit.ci_upper[0]), p_value=float(fit.p_values[0]),
            variance_method="profile_likelihood", **common))
        out.notes.append("Firth-penalised Cox model: profile penalised-likelihood CI and likelihood-ratio p-value "
                         "(as R coxphf); se is the Wald SE from the information at the estimate")
    monotone = None
    if not in_replicate():
        try:
            mle = coxph(data.stop, data.event, X, entry=entry, weights=weights, strata=data.stratum, names=names,
                        ties=ties)
            monotone = [nm for nm in getattr(mle, "infinite", ())]
        except EstimationError:
            monotone = ["(fit failed)"]
        if monotone:
            out.warnings.append(
                "monotone likelihood: the unpenalised Cox model has no finite estimate ("
                + ", ".join(monotone) + "); the Firth-penalised estimate is finite but rests on little information")
    out.diagnostics["firth"] = {"penalty": "firth", "ties": ties, "coef": [float(c) for c in fit.coef],
                                "n_iter": int(fit.n_iter), "penalised_loglik": float(fit.penalised_loglik),
                                "unpenalised_infinite": None if monotone is None else bool(monotone)}
    return fit


def analysis_counts(data: DesignData) -> dict[str, int]:
    """``n``, ``n_treated``, ``events`` of an estimate on ``data``.

    Units of analysis and treated units; for a time-varying exposure (a
    patient's rows switch arm) the treated are the patients ever treated.
    """
    units, arm = data.unit_treatment()
    if data.time_varying:
        n_treated = int(np.unique(data.patient[data.treatment == 1]).shape[0])
    else:
        n_treated = int(arm.sum())
    return dict(n=int(len(units)), n_treated=n_treated, events=int(data.event.sum()))


def arm_curves(data: DesignData, w: np.ndarray, *, variance: str, alpha: float,
               cluster: np.ndarray | None = None):
    """Fit KM per arm; returns (fits dict arm -> KMFit, curve table with CURVE_COLUMNS).

    ``cluster`` (row labels) makes each arm's pointwise SE the IJ variance
    summed within cluster (R ``survfit(..., cluster =)``)."""
    entry = data.start if np.any(data.start > 0) else None
    fits = {}
    for arm in (0, 1):
        m = data.treatment == arm
        if not m.any():
            raise EstimationError(f"design '{data.design}': no {data.arm_names[arm]} rows for outcome '{data.outcome}'")
        fits[arm] = kaplan_meier(data.stop[m], data.event[m], entry=None if entry is None else entry[m],
                                 weights=w[m], variance=variance, alpha=alpha,
                                 cluster=None if cluster is None else cluster[m])
    # one DataFrame from concatenated arrays (this runs in every bootstrap replicate)
    f0, f1 = fits[0], fits[1]
    table = pd.DataFrame({
        "time": np.concatenate([f0.time, f1.time]),
        "group": np.repeat(np.array(data.arm_names, dtype=object), [f0.time.shape[0], f1.time.shape[0]]),
        "surv": np.concatenate([f0.surv, f1.surv]), "se": np.concatenate([f0.se_surv, f1.se_surv]),
        "ci_lower": np.concatenate([f0.lower, f1.lower]), "ci_upper": np.concatenate([f0.upper, f1.upper]),
        "n_at_risk": np.concatenate([f0.n_risk, f1.n_risk]),
    })
    return fits, table


def estimate_effects(
    data: DesignData,
    targets: Targets,
    *,
    weights: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] = (),
    curves_method: str = "km",
    hr: bool = True,
    differences: bool = True,
    penalty: str | None = None,
    cluster_role: bool = True,
    ties: str = "efron",
    outcome_model: str = "cox",
    time_terms: str = "quadratic",
    period: float = 1.0,
    loss_weights: bool = True,
) -> StrategyOutput:
    """HR, KM curves per arm, survival/RMST/median differences on ``data``.

    Parameters
    ----------
    data : DesignData
        Rows from a design. ``data.weight`` multiplies ``weights``.
    targets : Targets
        Times for survival differences, ``rmst_tau``, ``alpha``.
    weights : ndarray, optional
        Row weights from an adjustment (IPTW, match weights).
    cluster : ndarray, optional
        Cluster labels for robust variance (matched sets). Default: the
        patient when rows are weighted or a patient has several rows. The
        cohort's ``cluster`` role, when set, replaces both (outermost unit).
    covariates : ndarray, optional
        Extra Cox covariates (outcome-regression adjustment); the HR is then
        conditional, and curves/differences are not produced (``differences``
        is ignored) since an unadjusted KM would not match the HR.
    penalty : {None, "firth"}
        ``"firth"``: the Cox model is Firth-penalised (:func:`firth_hr`).
    cluster_role : bool
        Cluster on the cohort's ``cluster`` role when it has one (default);
        False only to reproduce a published analysis that ignored it.
    ties : {"efron", "breslow"}
        Ties of the Cox model (R ``coxph(ties =)``).
    outcome_model : {"cox", "pooled_logistic"}
        ``"pooled_logistic"``: the discrete-time model of
        :mod:`causal_hcc.outcome.pooled_logistic` (``time_terms``,
        ``period``) replaces the Cox model and the Kaplan-Meier curves.
    loss_weights : bool
        When the cohort has a ``censored`` role (loss to follow-up), multiply
        the row weights by the stabilised inverse-probability-of-censoring
        weights of :func:`causal_hcc.design._tv.loss_weights` (rows split at
        the weight grid). False where the caller has applied them already.

    An outcome with competing events (``data.status`` set) goes to
    :func:`causal_hcc.outcome.competing.estimate_competing_effects`
    (cause-specific and subdistribution HRs, cumulative incidences).
    """
    if getattr(data, "status", None) is not None:
        from causal_hcc.outcome.competing import estimate_competing_effects

        if outcome_model != "cox" or ties != "efron":
            raise EstimationError(f"outcome '{data.outcome}' has competing events: outcome_model: pooled_logistic and "
                                  "ties: breslow are not implemented for them (use the defaults)")

        out = estimate_competing_effects(
            data, targets, weights=weights, cluster=cluster, covariates=covariates, covariate_names=covariate_names,
            curves_method=curves_method.replace("km", "aalen-johansen"), hr=hr, differences=differences,
            penalty=penalty, cluster_role=cluster_role)
        if loss_weights:   # (not implemented for competing events: said, not silently skipped)
            from causal_hcc.design._tv import loss_not_applied

            out.warnings += loss_not_applied(data, "competing-events analysis")
        return out
    lw = None
    if loss_weights:
        from causal_hcc.design._tv import loss_weights as _loss_weights

        got = _loss_weights(data)
        if got is not None:
            data, lw, r = got
            weights = None if weights is None else np.asarray(weights, dtype=float)[r]
            cluster = None if cluster is None else np.asarray(cluster)[r]
            covariates = None if covariates is None or not np.asarray(covariates).size \
                else np.asarray(covariates)[r]
    w = data.weight * (1.0 if weights is None else np.asarray(weights, dtype=float))
    weighted = not np.allclose(w, 1.0)
    multi_row = data.n_rows != data.n_patients
    outer, cname = outer_cluster(data) if cluster_role else (None, None)
    if outer is not None:
        cluster = outer
    caller_cluster = cluster is not None
    if cluster is None and (weighted or multi_row):
        cluster = data.patient
    robust = cluster is not None
    vm = "cluster_robust" if (caller_cluster or multi_row) else ("robust" if robust else "model")
    common = analysis_counts(data)
    out = StrategyOutput()
    if lw is not None:
        out.diagnostics["loss_weights"] = lw.diagnostics
        out.notes += lw.notes
        out.warnings += lw.warnings
    if outer is not None:
        diag, notes, warns = cluster_notes(outer, cname, f"design '{data.design}'")
        out.diagnostics["variance"] = diag
        out.notes += notes
        out.warnings += warns
    alpha = targets.alpha
    if data.event.sum() == 0:
        raise EstimationError(f"design '{data.design}': no events for outcome '{data.outcome}'")

    if outcome_model == "pooled_logistic":
        from causal_hcc.outcome.pooled_logistic import pooled_logistic_effects

        if penalty is not None:
            raise SpecError("option 'penalty: firth' applies to the Cox model, not to outcome_model: pooled_logistic")
        has_cov = covariates is not None and np.asarray(covariates).size > 0
        pooled_logistic_effects(data, targets, w=w, cluster=cluster, covariates=covariates if has_cov else None,
                                covariate_names=covariate_names, time_terms=time_terms, period=period,
                                differences=differences, common=common, out=out)
        if out.curves is None and not has_cov:   # time-varying exposure: the descriptive (Simon-Makuch) curves
            kvar = "ij" if (weighted or robust) else "greenwood"
            _, table = arm_curves(data, w, variance=kvar, alpha=alpha, cluster=outer)
            out.curves = SurvivalCurves(table, method=curves_method,
                                        variance_method="greenwood" if kvar == "greenwood" else vm,
                                        time_origin=data.time_origin)
        return out

    if hr:
        X = data.treatment.astype(float)[:, None]
        names = ["treatment"]
        if covariates is not None and np.asarray(covariates).size:
            X = np.column_stack([X, np.asarray(covariates, dtype=float)])
            names += list(covariate_names)
        entry = data.start if np.any(data.start > 0) else None
        if penalty == "firth":
            fit = firth_hr(data, X, names, entry=entry, weights=w if weighted else None, cluster=cluster,
                           robust=robust, vm=vm, alpha=alpha, common=common, out=out, ties=ties)
        elif penalty is not None:
            raise EstimationError(f"penalty must be 'firth' or empty, got {penalty!r}")
        else:
            fit = coxph(data.stop, data.event, X, entry=entry, weights=w if weighted else None,
                        strata=data.stratum, cluster=cluster, robust=robust, names=names, ties=ties,
                        keep_problem=not in_replicate())  # ph_test below reuses the sorted problem
            out.warnings += check_cox_fit(fit)
            b, se = float(fit.coef[0]), float(fit.se[0])
            out.estimates.append(wald_estimate("hr", math.exp(b), se, alpha=alpha, log_scale=True,
                                               variance_method=vm, **common))
        out.diagnostics["cox"] = {"names": names, "ties": ties, "coef": [float(c) for c in fit.coef],
                                  "se": [float(s) for s in fit.se], "n_iter": int(fit.n_iter)}
        if not in_replicate():
            ph, warns = ph_test(fit, data.stop, data.event, X, names, entry=entry,
                                weights=w if weighted else None, strata=data.stratum, groups=confounder_terms(data),
                                where="Cox model")
            out.diagnostics["ph_test"] = ph
            out.warnings += warns
        if covariates is not None and np.asarray(covariates).size:
            return out

    kvar = "ij" if (weighted or robust) else "greenwood"
    fits, table = arm_curves(data, w, variance=kvar, alpha=alpha, cluster=outer)
    out.curves = SurvivalCurves(table, method=curves_method,
                                variance_method="greenwood" if kvar == "greenwood" else vm,
                                time_origin=data.time_origin)
    if not differences:
        return out
    dvm = "greenwood" if kvar == "greenwood" else vm
    times = [float(t) for t in targets.survival_at]

    def diff_se(kind: str, tt: Sequence[float]) -> np.ndarray:
        """SE of (treated - untreated) for S(t) or RMST(tau)."""
        if kvar == "greenwood":
            if kind == "surv":
                return np.sqrt(sum(fits[a].at(tt)["se"].to_numpy() ** 2 for a in (0, 1)))
            return np.sqrt(sum(np.array([fits[a].rmst(t)[1] for t in tt]) ** 2 for a in (0, 1)))
        # IJ: per-row influence of each arm's estimate, signed, summed within cluster
        infl = np.zeros((data.n_rows, len(tt)))
        for a, sign in ((1, 1.0), (0, -1.0)):
            m = data.treatment == a
            f = fits[a]
            ia = f.influence_surv(tt) if kind == "surv" else np.column_stack([f.influence_rmst(t) for t in tt])
            infl[m] += sign * ia
        return np.sqrt((_cluster_sum(infl, cluster) ** 2).sum(axis=0))

    if times:
        s1, s0 = fits[1].at(times)["surv"].to_numpy(), fits[0].at(times)["surv"].to_numpy()
        ses = diff_se("surv", times)
        for t, a1, a0, s in zip(times, s1, s0, ses):
            out.estimates.append(wald_estimate("survival_difference", float(a1 - a0), float(s), alpha=alpha,
                                               time=t, variance_method=dvm, **common))
        # risk ratio (1 - S1) / (1 - S0): SE of its log by the delta method from the same variances
        # (Greenwood: independent arms; IJ: the per-row influences of log(1 - S_a), summed within cluster)
        r1, r0 = 1.0 - s1, 1.0 - s0
        if kvar == "greenwood":
            se1, se0 = fits[1].at(times)["se"].to_numpy(), fits[0].at(times)["se"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                lse = np.sqrt((se1 / r1) ** 2 + (se0 / r0) ** 2)
        else:
            infl = np.zeros((data.n_rows, len(times)))
            with np.errstate(divide="ignore", invalid="ignore"):
                for a, r, sign in ((1, r1, 1.0), (0, r0, -1.0)):
                    m = data.treatment == a
                    infl[m] += sign * (-fits[a].influence_surv(times) / r[None, :])
                lse = np.sqrt((_cluster_sum(infl, cluster) ** 2).sum(axis=0))
        out.estimates += risk_ratio_estimates(times, r1, r0, lse, alpha=alpha, variance_method=dvm, common=common,
                                              notes=out.notes)
    if targets.rmst_tau is not None:
        tau = float(targets.rmst_tau)
        r1, r0 = fits[1].rmst(tau)[0], fits[0].rmst(tau)[0]
        s = float(diff_se("rmst", [tau])[0])
        out.estimates.append(wald_estimate("rmst_difference", float(r1 - r0), s, alpha=alpha, time=tau,
                                           variance_method=dvm, **common))
    m1, m0 = fits[1].median()[0], fits[0].median()[0]
    out.estimates.append(EffectEstimate("median_difference", float(m1 - m0) if np.isfinite(m1 - m0) else math.nan,
                                        variance_method="none", **common))
    out.diagnostics["medians"] = {
        data.arm_names[a]: dict(zip(("median", "ci_lower", "ci_upper"), map(_f, fits[a].median()))) for a in (0, 1)
    }
    return out


def risk_ratio_estimates(times: Sequence[float], r1: np.ndarray, r0: np.ndarray, log_se: np.ndarray, *,
                         alpha: float, variance_method: str, common: dict, notes: list[str]) -> list[EffectEstimate]:
    """``risk_ratio`` rows: risk treated / risk untreated at each time, Wald CI on the log scale.

    ``r1``, ``r0`` are the risks 1 - S(t) of the arms and ``log_se`` the SE of
    log(r1 / r0) (delta method from the machinery that gives the survival
    difference its SE). Where either risk is 0 the ratio has no log-scale
    SE: the row keeps the ratio (0, or NaN for 0/0 and r/0) without SE, and a note says so.
    """
    rows = []
    for t, a1, a0, s in zip(times, r1, r0, log_se):
        if a1 > 0 and a0 > 0 and math.isfinite(float(s)):
            rows.append(wald_estimate("risk_ratio", float(a1 / a0), float(s), alpha=alpha, log_scale=True,
                                      time=float(t), variance_method=variance_method, **common))
        else:
            rows.append(EffectEstimate("risk_ratio", float(a1 / a0) if a0 > 0 else math.nan, time=float(t),
                                       variance_method="none", **common))
            arm = "either arm" if a1 <= 0 and a0 <= 0 else ("the treated arm" if a1 <= 0 else "the untreated arm")
            notes.append(f"risk ratio at {float(t):g}: no events by then in {arm}; no log-scale SE")
    return rows


def _f(v):
    v = float(v)
    return v if math.isfinite(v) else None
