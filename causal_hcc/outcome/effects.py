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
from causal_hcc._replicate import in_replicate, infinite_fails
from causal_hcc.results import (FIRTH_WALD_CAVEAT, WEIGHTS_AS_KNOWN, EffectEstimate, StrategyOutput, SurvivalCurves,
                                risk_ratio_estimates, wald_estimate, with_note)


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


def kish_scale(weights: np.ndarray | None) -> float:
    """The factor ``sum(w) / sum(w^2)`` that makes weights sum to their Kish effective sample size
    ``(sum w)^2 / sum(w^2)`` (1 for unit weights)."""
    if weights is None:
        return 1.0
    w = np.asarray(weights, dtype=float)
    return float(w.sum() / np.sum(w * w))


def firth_hr(data: DesignData, X: np.ndarray, names: list[str], *, entry, weights, cluster, robust: bool, vm: str,
             alpha: float, common: dict, out: StrategyOutput, likelihood: bool = False, ties: str = "efron"):
    """The treatment HR of a Firth-penalised Cox model, appended to ``out``; returns the fit.

    ``likelihood`` (rows with no clustering beyond a patient's non-overlapping
    rows): estimate, profile penalised-likelihood CI and penalised
    likelihood-ratio p-value (``coxphf``'s defaults; ``variance_method =
    "profile_likelihood"``; ``se`` is the Wald SE from the information at the
    estimate). Weighted rows (IPTW) are first rescaled to sum to their Kish
    effective sample size ``(sum w)^2 / sum(w^2)`` (:func:`kish_scale`): the
    weighted log-likelihood is then that of a sample of that size, which
    sets both the strength of the penalty and the width of the profile
    interval. Raw weights (ATE weights sum to about 2n) halve the penalty and
    narrow the interval: on simulated samples of 20 patients the
    penalised estimate was biased by -0.31 log HR at a true HR of 0.5 (Kish
    scaling: +0.02, Monte Carlo SE 0.03), and the robust Wald interval this
    function used before covered the truth in 22-53% of the ATE samples with
    no treated event (docs/inference.md gives the coverage of the interval
    now reported: 0.96-0.98).
    Multiplying all weights by one constant does not change the unpenalised
    estimate. Other rows (sequential trials, clones, a cluster role): the
    robust sandwich at the penalised estimate and a Wald CI (``robust`` /
    ``cluster_robust``), with :data:`FIRTH_WALD_CAVEAT` in the row's note.
    Efron ties by default, as the unpenalised models of the pipeline
    (``coxphf`` uses Breslow; ``ties`` chooses). ``diagnostics["firth"]``
    records whether the unpenalised estimate is infinite (monotone
    likelihood), and a warning says so.

    References
    ----------
    Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
    Biometrics 2001;57:114-9.
    Kish L. Survey Sampling. Wiley; 1965 (effective sample size of a weighted sample).
    Potthoff RF, Woodbury MA, Manton KG. "Equivalent sample size" and "equivalent degrees of freedom"
    refinements for inference using survey weights under superpopulation models. JASA 1992;87:383-96.
    """
    scale = kish_scale(weights) if likelihood else 1.0
    if likelihood:
        wk = None if weights is None else np.asarray(weights, dtype=float) * scale
        fit = coxph_firth(data.stop, data.event, X, entry=entry, weights=wk, strata=data.stratum, robust=False,
                          ties=ties, profile=[0], alpha=alpha, names=names)
        note = ""
        if weights is not None:
            note = (f"Firth-penalised Cox model with the weights rescaled to their Kish effective sample size "
                    f"({float(np.sum(wk)):.1f}), as coxphf on that sample")
        out.estimates.append(EffectEstimate(
            "hr", math.exp(fit.coef[0]), se=float(fit.se[0]), ci_lower=math.exp(fit.ci_lower[0]),
            ci_upper=math.exp(fit.ci_upper[0]), p_value=float(fit.p_values[0]),
            variance_method="profile_likelihood", note=note, **common))
        out.notes.append("Firth-penalised Cox model: profile penalised-likelihood CI and likelihood-ratio p-value "
                         "(as R coxphf)" + ("; weights rescaled to sum to their Kish effective sample size"
                                            if weights is not None else "")
                         + "; se is the Wald SE from the information at the estimate")
    else:
        fit = coxph_firth(data.stop, data.event, X, entry=entry, weights=weights, strata=data.stratum,
                          cluster=cluster, robust=robust, ties=ties, profile=False if robust else [0],
                          alpha=alpha, names=names)
        b = float(fit.coef[0])
        if robust:
            out.estimates.append(wald_estimate("hr", math.exp(b), float(fit.se[0]), alpha=alpha, log_scale=True,
                                               variance_method=vm, note=FIRTH_WALD_CAVEAT, **common))
            out.notes.append("Firth-penalised Cox model: robust sandwich SE at the penalised estimate and a Wald CI "
                             "(rows of a patient in several trials or arms, or clustered: no profile likelihood)")
        else:
            out.estimates.append(EffectEstimate(
                "hr", math.exp(b), se=float(fit.se[0]), ci_lower=math.exp(fit.ci_lower[0]),
                ci_upper=math.exp(fit.ci_upper[0]), p_value=float(fit.p_values[0]),
                variance_method="profile_likelihood", **common))
            out.notes.append("Firth-penalised Cox model: profile penalised-likelihood CI and likelihood-ratio "
                             "p-value (as R coxphf); se is the Wald SE from the information at the estimate")
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
                                "unpenalised_infinite": None if monotone is None else bool(monotone),
                                "interval": "profile_likelihood" if likelihood or not robust else "robust_wald",
                                "weight_scale": scale}
    return fit


def infinite_hr_estimate(data: DesignData, X: np.ndarray, fit, *, entry, likelihood_ratio: bool, alpha: float,
                         common: dict, out: StrategyOutput, ties: str = "efron") -> EffectEstimate:
    """The HR row of a Cox fit whose treatment coefficient is infinite (monotone likelihood).

    The maximum-likelihood estimate does not exist (HR 0 or infinity: e.g. no
    events in one arm), so the row has no estimate, no SE and no p-value
    (R ``coxph`` returns the point where its loglik converged with a Wald SE,
    CI and p-value that mean nothing, and warns "coefficient may be
    infinite"). Where the partial likelihood is a likelihood (unweighted
    rows, no clustering beyond a patient's non-overlapping rows) the CI is
    the profile-likelihood interval, open on the infinite side: ``(0, U]``
    for the HR (``variance_method = "profile_likelihood"``;
    :func:`causal_hcc.core.monotone.infinite_coef_interval`, = R profiles of
    ``coxph(... + offset(b * treatment))``). With weights or clustered rows
    no likelihood-ratio interval is valid and the robust Wald one is
    degenerate: no CI (``variance_method = "none"``). ``note`` says which,
    and that ``penalty: firth`` gives a finite estimate.

    References
    ----------
    Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
    Biometrics 2001;57:114-9.
    """
    from causal_hcc.core.monotone import infinite_coef_interval

    toward = "0" if fit.coef[0] < 0 else "infinity"
    why = (f"no finite estimate: the Cox partial likelihood keeps rising as the treatment HR goes to {toward} "
           f"(monotone likelihood, e.g. no events in one arm; R coxph: 'coefficient may be infinite')")
    level = f"{100 * (1 - alpha):g}%"
    lo = hi = math.nan
    vm = "none"
    diag: dict = {"treatment_coefficient": "infinite", "direction": toward}
    if likelihood_ratio:
        prof = infinite_coef_interval(data.stop, data.event, X, fit.coef, entry=entry, strata=data.stratum,
                                      alpha=alpha, ties=ties)
        lo, hi = (0.0 if math.isinf(prof.lower) else math.exp(prof.lower),
                  math.inf if math.isinf(prof.upper) else math.exp(prof.upper))
        vm = "profile_likelihood"
        shown = f"(0, {hi:.3g}]" if toward == "0" else f"[{lo:.3g}, infinity)"
        note = (f"{why}; {level} CI: the profile-likelihood interval {shown}, open at {toward}; no p-value; "
                f"penalty: firth gives a finite estimate")
        diag.update({"profile_interval": [lo, hi], "lr_statistic_hr_1": prof.lr_null,
                     "loglik_sup": prof.loglik_sup})
    else:
        note = (f"{why}; no CI (with weights or clustered rows the likelihood-ratio interval is not valid and the "
                f"robust Wald interval at a divergent estimate is degenerate) and no p-value; penalty: firth gives "
                f"a finite estimate")
    out.diagnostics["monotone_likelihood"] = diag
    out.notes.append(f"HR: {note}")
    return EffectEstimate("hr", math.nan, se=math.nan, ci_lower=lo, ci_upper=hi, p_value=math.nan,
                          variance_method=vm, note=note, **common)


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
    weights_estimated: bool | None = None,
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
    weights_estimated : bool, optional
        Whether ``weights`` come from a fitted model (IPTW); the design's
        ``data.weight`` (IPC weights of clone-censor and per-protocol trials)
        always count as estimated. Rows whose analytic SE then treats them as
        known carry :data:`causal_hcc.results.WEIGHTS_AS_KNOWN` in their note
        (the whole-pipeline bootstrap drops it).

    An outcome with competing events (``data.status`` set) goes to
    :func:`causal_hcc.outcome.competing.estimate_competing_effects`
    (cause-specific and subdistribution HRs, cumulative incidences).
    """
    competing = getattr(data, "status", None) is not None
    if competing and (outcome_model != "cox" or ties != "efron"):
        raise EstimationError(f"outcome '{data.outcome}' has competing events: outcome_model: pooled_logistic and "
                              "ties: breslow are not implemented for them (use the defaults)")
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
    if competing:
        from causal_hcc.outcome.competing import estimate_competing_effects

        # the split, loss-weighted rows: the cause-specific Cox model and the Aalen-Johansen curves use them as
        # they are; the Fine-Gray model takes the loss censorings as artificial (data.artificial_censoring) and
        # divides the loss weights' stabilising numerator out (data.weight_numerator; docs/competing_risks.md)
        out = estimate_competing_effects(
            data, targets, weights=weights, cluster=cluster, covariates=covariates, covariate_names=covariate_names,
            curves_method=curves_method.replace("km", "aalen-johansen"), hr=hr, differences=differences,
            penalty=penalty, cluster_role=cluster_role)
        if lw is not None:
            out.diagnostics["loss_weights"] = lw.diagnostics
            out.notes = lw.notes + out.notes
            out.warnings = lw.warnings + out.warnings
        return _tag_estimated_weights(out, data, weights, weights_estimated)
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
        return _tag_estimated_weights(out, data, weights, weights_estimated)

    if hr:
        X = data.treatment.astype(float)[:, None]
        names = ["treatment"]
        if covariates is not None and np.asarray(covariates).size:
            X = np.column_stack([X, np.asarray(covariates, dtype=float)])
            names += list(covariate_names)
        entry = data.start if np.any(data.start > 0) else None
        # the partial likelihood is a likelihood (profile intervals apply) unless a patient's rows overlap in
        # time (trials, clones) or are clustered with others'
        lr_ok = not caller_cluster and (not multi_row or data.time_varying)
        if penalty == "firth":
            fit = firth_hr(data, X, names, entry=entry, weights=w if weighted else None, cluster=cluster,
                           robust=robust, vm=vm, alpha=alpha, common=common, out=out, likelihood=lr_ok,
                           ties=ties)
        elif penalty is not None:
            raise EstimationError(f"penalty must be 'firth' or empty, got {penalty!r}")
        else:
            fit = coxph(data.stop, data.event, X, entry=entry, weights=w if weighted else None,
                        strata=data.stratum, cluster=cluster, robust=robust, names=names, ties=ties,
                        keep_problem=not in_replicate())  # ph_test below reuses the sorted problem
            out.warnings += check_cox_fit(fit)
            b, se = float(fit.coef[0]), float(fit.se[0])
            if names[0] in fit.infinite:
                # monotone likelihood: no Wald numbers at a point on the way to +-infinity
                out.estimates.append(infinite_hr_estimate(data, X, fit, entry=entry,
                                                          likelihood_ratio=lr_ok and not weighted,
                                                          alpha=alpha, common=common, out=out, ties=ties))
            else:
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
            return _tag_estimated_weights(out, data, weights, weights_estimated)

    kvar = "ij" if (weighted or robust) else "greenwood"
    fits, table = arm_curves(data, w, variance=kvar, alpha=alpha, cluster=outer)
    out.curves = SurvivalCurves(table, method=curves_method,
                                variance_method="greenwood" if kvar == "greenwood" else vm,
                                time_origin=data.time_origin)
    if not differences:
        return _tag_estimated_weights(out, data, weights, weights_estimated)
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
    return _tag_estimated_weights(out, data, weights, weights_estimated)


def _tag_estimated_weights(out: StrategyOutput, data: DesignData, weights: np.ndarray | None,
                           weights_estimated: bool | None) -> StrategyOutput:
    """Add :data:`~causal_hcc.results.WEIGHTS_AS_KNOWN` to the note of every row with an analytic SE when
    the rows are weighted by estimated weights (the design's IPC weights, or ``weights`` from a model)."""
    design_w = not np.allclose(data.weight, 1.0)
    adj_w = weights is not None and bool(weights_estimated) and not np.allclose(weights, 1.0)
    if design_w or adj_w:
        out.estimates = [with_note(e, WEIGHTS_AS_KNOWN) if math.isfinite(e.se) and e.variance_method != "none"
                         else e for e in out.estimates]
    return out


def _f(v):
    v = float(v)
    return v if math.isfinite(v) else None
