"""Run a spec end to end: data -> Cohort -> strategies -> AnalysisResult -> files.

Writes go through :mod:`causal_hcc._atomic`: a temporary folder beside the
target renamed into place at the end, so a failed run leaves no half-written
output; an existing output folder is replaced only with ``force=True`` and
only if causal_hcc wrote it; inputs are never written over.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any, Callable, Sequence

import numpy as np

from causal_hcc._atomic import atomic_folder, check_output_dir  # noqa: F401 (re-exported for the CLI)
from causal_hcc._runtime import run_scope
from causal_hcc.config import AnalysisSpec
from causal_hcc.errors import CausalHCCError, EstimationError, SpecError
from causal_hcc.results import AnalysisResult, StrategyRecord

_VERSIONED = ("causal_hcc", "numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "dowhy",
              "matplotlib", "pydantic")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in _VERSIONED:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def load_data(spec: AnalysisSpec, data: Any = None) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """Return (DataFrame, truth or None, description of the source).

    ``data``, a pandas DataFrame, is used instead of ``spec.data.path``
    (which may then be absent); it is never modified.
    """
    if data is not None:
        import pandas as pd

        from causal_hcc.errors import DataError

        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if spec.data.path is not None:
            raise SpecError("spec: data.path is set and data= was passed too; give one of them")
        return data, None, {"source": "DataFrame"}
    path = spec.data_path()
    if path == "twin":
        from causal_hcc.twin import TwinParams, simulate_twin, truth

        params = TwinParams.from_spec(spec.data.twin or {})
        df = simulate_twin(params)
        est = spec.estimands
        tr = truth(params, times=tuple(est.survival_at) or (12.0, 24.0), rmst_tau=est.rmst_tau or 24.0)
        return df, tr, {"source": "digital twin", "twin_params": params.model_dump(mode="json")}
    from causal_hcc.io import read_table

    df = read_table(path, sheet=spec.data.sheet, sep=spec.data.sep, decimal=spec.data.decimal)
    return df, None, {"source": os.path.basename(path)}


def build_cohort(spec: AnalysisSpec, df: Any, source: str, *, roles_only: bool = False,
                 prepared: dict[str, Any] | None = None, long: Any = None,
                 reference: dict[str, str] | None = None) -> Any:
    """The spec's :class:`Cohort` of ``df``.

    ``reference``: reference levels of categorical confounders that override
    the spec's and the default (the most frequent level), so that the cohorts
    of the imputed data sets share the first one's reference levels.

    ``roles_only`` leaves the confounders out (multiple imputation validates
    the roles before imputing the confounders). ``prepared``: ``df`` is a
    frame from :func:`prepare_frame` (codes applied, times computed from
    dates) and these are its roles, so codes and dates are not applied twice.
    ``long`` (from :func:`load_long`): the visits or person-period data the
    cohort's :class:`~causal_hcc.timeline.Timeline` is built from; ``df`` is
    then the patient table :func:`load_long` returned.
    """
    from causal_hcc.cohort import Cohort

    from causal_hcc.errors import DataError

    roles: dict[str, Any] = dict(prepared) if prepared is not None else _cohort_roles(spec, df, long)
    try:
        cohort = Cohort(
            df, **roles, confounders=[] if roles_only else spec.all_confounders(),
            categorical=[] if roles_only else _baseline_categorical(spec), missing=spec.cohort_missing, source=source,
            reference=None if roles_only else ({**(spec.reference or {}), **(reference or {})} or None),
        )
    except DataError as err:  # name the file in the one-line message
        if source == "DataFrame":
            raise
        raise DataError(f"{source}: {err}") from None
    if long is None or roles_only:
        return cohort
    return long.attach(cohort, spec)


def _baseline_categorical(spec: AnalysisSpec) -> list[str]:
    """``categorical`` for the cohort: without the time-varying variables that are no baseline confounder."""
    from causal_hcc.timeline import _variables

    tv = set(_variables(spec.time_varying, spec.visits.columns if spec.visits is not None else []))
    base = set(spec.all_confounders())
    return [c for c in spec.categorical if c in base or c not in tv]


def _cohort_roles(spec: AnalysisSpec, df: Any, long: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`Cohort`: the spec's roles, or those of a person-period patient table.

    With a visits table, the spec's ``codes`` of visits-only columns are left to the visits.
    """
    if long is not None and long.roles is not None:
        return {**long.roles, "outcomes": {}, "time_unit": spec.time_unit, "competing": spec.competing or None}
    codes = spec.codes or None
    if codes and long is not None and long.visits is not None:
        theirs = set(long.visits.data.columns) | {long.visits.id_column, long.visits.time_column}
        codes = {c: m for c, m in codes.items() if (c in df.columns or c not in theirs)
                 and c not in long.visits_only_codes} or None
    return {**spec.roles.cohort_kwargs(), "outcomes": {k: o.cohort_value() for k, o in spec.outcomes.items()},
            "time_unit": spec.time_unit, "codes": codes, "competing": spec.competing or None}


class LongData:
    """What a cohort's timeline is built from: a checked visits table or person-period data, the
    ``censored`` role (:func:`load_long`). ``attach`` joins it to a cohort."""

    def __init__(self, visits: Any = None, person_period: Any = None, censored: str | None = None,
                 all_ids: Any = None, visits_only_codes: Any = ()) -> None:
        self.visits = visits
        self.person_period = person_period
        self.censored = censored
        self.all_ids = all_ids
        #: codes of columns in both tables that match no value of the patient table (the visits' only)
        self.visits_only_codes = set(visits_only_codes)

    @property
    def roles(self) -> dict[str, Any] | None:
        return dict(self.person_period.roles) if self.person_period is not None else None

    def attach(self, cohort: Any, spec: AnalysisSpec) -> Any:
        from causal_hcc.timeline import Timeline

        pp = self.person_period
        tl = Timeline.build(cohort, self.visits, confounders=spec.time_varying, categorical=spec.categorical,
                            all_ids=self.all_ids, eligible_until=pp.eligible_until if pp is not None else None,
                            censored=pp.censored if pp is not None else self.censored,
                            info=pp.info if pp is not None else None, warnings=pp.warnings if pp is not None else ())
        return cohort.with_timeline(tl)


def load_long(spec: AnalysisSpec, df: Any, source: str, visits: Any = None) -> tuple[Any, LongData | None]:
    """``(patient table, long data)``: person-period data read into a patient table, or the visits table
    read and checked (:mod:`causal_hcc.timeline`); ``(df, None)`` when the spec has neither.

    ``visits``, a DataFrame, is used instead of ``visits.path`` and never modified.
    """
    import pandas as pd

    from causal_hcc import timeline as tlm
    from causal_hcc.errors import DataError

    r = spec.roles
    if spec.data.layout == "person_period":
        if visits is not None:
            raise SpecError("visits= was passed, but person-period data carry their time-varying values in their "
                            "own rows")
        try:
            pp = tlm.person_period(df, id=r.id, period=r.period, event=r.event, treatment=r.treatment,
                                   eligible=r.eligible, censored=r.censored, cluster=r.cluster,
                                   confounders=spec.all_confounders(), time_varying_confounders=spec.time_varying,
                                   categorical=spec.categorical, codes=spec.codes or None, source=source,
                                   outcome_name=r.outcome)
        except DataError as err:
            if source == "DataFrame":
                raise
            raise DataError(f"{source}: {err}") from None
        return pp.patients, LongData(visits=pp.visits, person_period=pp)
    ids = df[r.id].to_numpy() if r.id in df.columns else None
    if spec.visits is None:
        if visits is not None:
            raise SpecError("visits= was passed, but the spec has no visits: {id: ..., time: ..., columns: [...]}")
        return df, (LongData(censored=r.censored, all_ids=ids) if r.censored else None)
    vs = spec.visits
    if visits is not None:
        if vs.path is not None:
            raise SpecError("spec: visits.path is set and visits= was passed too; give one of them")
        if not isinstance(visits, pd.DataFrame):
            raise DataError(f"visits must be a pandas DataFrame, got {type(visits).__name__}")
        vdf, vsource, name = visits, "DataFrame", "visits"
    else:
        from causal_hcc.io import read_table

        path = spec.visits_path()
        try:
            vdf = read_table(path, sheet=vs.sheet, sep=vs.sep, decimal=vs.decimal)
        except DataError as err:
            raise DataError(f"visits: {err}") from None
        vsource = name = os.path.basename(path)
    # a code of a column in both tables (ecog: {9: null}) may match values of one table only; one that
    # matches neither is refused (by the visits reader, the table that then must have it)
    shared = [c for c in (spec.codes or {}) if c in df.columns and c in vdf.columns]
    in_patients = {c for c in shared if _codes_match(df, c, spec.codes[c])}
    vt = tlm.read_visits(vdf, id=vs.id, time=vs.time, date=vs.date, columns=vs.columns, codes=spec.codes or None,
                         categorical=spec.categorical, source=vsource, name=name, shared=sorted(in_patients),
                         date_format=spec.roles.date_format, dayfirst=spec.roles.dayfirst)
    return df, LongData(visits=vt, censored=r.censored, all_ids=ids, visits_only_codes=set(shared) - in_patients)


def _codes_match(df: Any, col: str, mapping: Any) -> bool:
    from causal_hcc.errors import DataError
    from causal_hcc.recode import apply_codes

    try:
        apply_codes(df[[col]].copy(), {col: mapping}, [col])
    except DataError:
        return False
    return True


def prepare_frame(spec: AnalysisSpec, df: Any, source: str, long: Any = None) -> tuple[Any, dict[str, Any]]:
    """The spec's codes and dates applied to ``df``: ``(frame, roles)`` for an imputation step.

    See :meth:`causal_hcc.cohort.Cohort.prepare`; a cohort of a completed
    copy is ``Cohort(frame, **roles, confounders=..., categorical=...,
    reference=...)``.
    """
    from causal_hcc.cohort import Cohort
    from causal_hcc.errors import DataError

    try:
        return Cohort.prepare(
            df, **_cohort_roles(spec, df, long), confounders=spec.all_confounders(),
            categorical=_baseline_categorical(spec),
            source=source, reference=spec.reference or None)
    except DataError as err:
        if source == "DataFrame":
            raise
        raise DataError(f"{source}: {err}") from None


def check(spec: AnalysisSpec, data: Any = None, visits: Any = None) -> tuple[Any, list[Any]]:
    """Everything :func:`run_analysis` checks before fitting; returns ``(cohort, strategies)``.

    The spec, the data (roles, codes, dates, confounders) and every
    strategy's data needs (:func:`causal_hcc.validate.check_strategies`).
    ``causal-hcc validate`` runs exactly this.
    """
    cohort, strategies, _, _, _, _ = _prepare(spec, data, visits)
    return cohort, strategies


def _prepare(spec: AnalysisSpec, data: Any, visits: Any = None
             ) -> tuple[Any, list[Any], dict[str, Any] | None, dict[str, Any], Any, Any]:
    """``(cohort, strategies, truth, source, df, long)``: the checked cohort (with multiple imputation:
    of one quick imputation, :func:`validation_cohort`), the (patient) data as read and the long data."""
    from causal_hcc.errors import DataError
    from causal_hcc.validate import check_strategies, check_treated_by

    strategies = spec.resolved_strategies()
    df, truth, source = load_data(spec, data)
    if (visits is None and data is None and spec.data.path == "twin" and spec.visits is not None
            and spec.visits.path is None):
        from causal_hcc.twin import TwinParams, simulate_twin_visits

        visits = simulate_twin_visits(TwinParams.from_spec(spec.data.twin or {}))   # the twin's own visits table
    df, long = load_long(spec, df, source["source"], visits)
    cohort = validation_cohort(spec, df, source["source"], long=long)
    check_strategies(strategies, cohort, spec.confounders)
    if spec.on_error == "stop":  # (with on_error: record the strategy's fit fails and is recorded)
        empty_arm = check_treated_by(strategies, cohort, spec.time_unit)
        if empty_arm:
            raise DataError(empty_arm[0])
    _check_extras(spec, strategies)
    return cohort, strategies, truth, source, df, long


def data_warnings(spec: AnalysisSpec, cohort: Any, strategies: list[Any]) -> list[str]:
    """What ``validate`` and ``run`` warn about in the data before fitting: a follow-up implausible for
    ``time_unit``; with ``on_error: record``, the strategies whose arm would be empty."""
    from causal_hcc.validate import check_treated_by, follow_up_warnings

    out = follow_up_warnings(cohort, spec.time_unit, from_dates=spec.roles.start_date is not None,
                             default="time_unit" not in spec.model_fields_set)
    if spec.on_error != "stop":
        out += check_treated_by(strategies, cohort, spec.time_unit)
    return out


def _check_extras(spec: AnalysisSpec, strategies: list[Any]) -> None:
    """What the run would refuse only after fitting: refuter strategy, published file, causal graph."""
    label = spec.sensitivity.refuter_strategy
    if spec.sensitivity.refuters and label is not None and label not in [s.label for s in strategies]:
        raise CausalHCCError(f"sensitivity.refuter_strategy: no strategy labelled '{label}'")
    if spec.published:
        from causal_hcc.audit import load_published

        load_published(_published_path(spec))
    if spec.sensitivity.dag:
        from causal_hcc.sensitivity import _graph_nodes, graph_edges

        graph_edges(spec.sensitivity.dag)  # a graph that cannot be parsed or has a cycle fails before any fitting
        nodes = _graph_nodes(spec.sensitivity.dag)
        for role, name in (("treatment", spec.roles.treatment or spec.roles.treatment_date),
                           ("outcome", spec.roles.event)):
            if name not in nodes:
                raise SpecError(f"sensitivity.dag: {role} '{name}' is not a node of the graph; "
                                f"nodes: {', '.join(nodes)}")


def _published_path(spec: AnalysisSpec) -> str:
    pub = spec.published
    if not os.path.isabs(pub) and os.path.exists(os.path.join(spec.base_dir, pub)):
        pub = os.path.join(spec.base_dir, pub)
    return pub


def _cohort_summary(spec: AnalysisSpec, cohort: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "n": int(cohort.n), "n_treated": int(np.sum(cohort.treatment)),
        "rows_dropped": int(cohort.rows_dropped),
        "events": {o: int(np.sum(cohort.event(o))) for o in cohort.outcome_names},
        "confounders": list(spec.confounders), "confounder_columns": list(cohort.confounder_columns),
        "reference_levels": dict(cohort.reference_levels),
        "time_unit": spec.time_unit,
    }
    if getattr(cohort, "timeline", None) is not None:
        summary["timeline"] = cohort.timeline.describe()
    from causal_hcc.report.table1 import table1

    summary["table1"] = table1(cohort, min_cell=spec.min_cell)
    return summary


def _fit_cohort(spec: AnalysisSpec, built: list[tuple[Any, Any]], cohort: Any, targets: Any, *,
                say: Callable[[str], None], progress: Callable[[str], None] | None, n_jobs: int | None
                ) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], str]]:
    """Point fits of every strategy x outcome on one cohort, then the shared bootstrap.

    Returns ``(points, failed)``: (label, outcome) -> StrategyOutput, and
    (label, outcome) -> error message for fits that failed with
    ``on_error: record``.
    """
    points: dict[tuple[str, str], Any] = {}
    failed: dict[tuple[str, str], str] = {}
    boot_later = {strat.label for _, strat in built if strat.needs_bootstrap} if spec.bootstrap.replicates > 0 \
        else set()
    for s, strat in built:
        for outcome in cohort.outcome_names:
            t0 = time.perf_counter()
            try:
                out = strat.fit(cohort, outcome, targets)
            except EstimationError as err:
                if spec.on_error == "stop":
                    raise EstimationError(f"strategy '{s.label}', outcome '{outcome}': {err}") from err
                failed[(s.label, outcome)] = str(err)
                say(f"{s.label} [{outcome}]: FAILED ({err})")
                continue
            points[(s.label, outcome)] = out
            # a bootstrap strategy's interval is replaced by the bootstrap's: say so, and print the final one below
            later = "; analytic interval, bootstrap follows" if strat.label in boot_later else ""
            say(f"{s.label} [{outcome}]: {_headline(out)} ({time.perf_counter() - t0:.2f}s{later})")
    need = [strat for _, strat in built if strat.needs_bootstrap]
    if need and spec.bootstrap.replicates > 0:
        from causal_hcc.inference import bootstrap_many

        t0 = time.perf_counter()
        labels = ", ".join(x.label for x in need)
        say(f"bootstrap: {spec.bootstrap.replicates} replicates of {labels} (seed {spec.bootstrap.seed})")
        boot = bootstrap_many(need, cohort, cohort.outcome_names, targets, points,
                              replicates=spec.bootstrap.replicates, seed=spec.bootstrap.seed, n_jobs=n_jobs,
                              progress=progress is not None, ci=spec.bootstrap.ci)
        points.update(boot)
        say(f"bootstrap done ({time.perf_counter() - t0:.1f}s)")
        for strat in need:
            for outcome in cohort.outcome_names:
                if (strat.label, outcome) in boot:
                    say(f"{strat.label} [{outcome}]: {_headline(boot[(strat.label, outcome)])} (bootstrap, final)")
    elif need:
        for strat in need:
            for outcome in cohort.outcome_names:
                if (strat.label, outcome) in points:
                    points[(strat.label, outcome)].warnings.append(
                        "bootstrap: replicates = 0, so this strategy's default variance (the whole-pipeline "
                        "bootstrap) was not computed: its rows have no SE, or an analytic one whose note says what "
                        "it leaves out")
    return points, failed


@run_scope   # (one BLAS thread: causal_hcc._runtime)
def run_analysis(spec: AnalysisSpec | Any, data: Any = None, *, visits: Any = None,
                 progress: Callable[[str], None] | None = None, n_jobs: int | None = None) -> AnalysisResult:
    """Fit every strategy of ``spec`` on every outcome; return the result.

    Parameters
    ----------
    spec : AnalysisSpec or mapping
        A loaded spec (:func:`causal_hcc.config.load_spec`) or the same
        content as a dict (validated here).
    data : pandas.DataFrame, optional
        The cohort in memory, used instead of ``data.path`` (which may then be
        absent from the spec); person-period rows with
        ``data.layout: person_period``. Never modified.
    visits : pandas.DataFrame, optional
        The visits table in memory, used instead of ``visits.path`` (the
        spec's ``visits`` still names its id, time and columns). Never modified.
    progress : callable, optional
        Receives one line per fitted strategy.
    n_jobs : int, optional
        Bootstrap workers (default: the spec's ``n_jobs``).

    Returns
    -------
    AnalysisResult

    Notes
    -----
    Everything knowable before fitting is checked first (:func:`check`), so
    a spec that passes ``causal-hcc validate`` fails here only for reasons
    that need the fit (non-convergence, no events after a landmark, ...).
    """
    if not isinstance(spec, AnalysisSpec):
        from causal_hcc.config import parse_spec

        spec = parse_spec(spec)
    say = progress or (lambda msg: None)
    checked, strategies, truth, source, df, long = _prepare(spec, data, visits)
    targets = spec.targets
    records: list[StrategyRecord] = []
    from causal_hcc._process import cap_jobs

    # never more workers than replicates or CPUs (the CLI says so on stderr when it caps)
    n_jobs = cap_jobs(spec.n_jobs if n_jobs is None else n_jobs, max(1, spec.bootstrap.replicates))
    built = [(s, s.build(default_confounders=spec.confounders)) for s in strategies]
    if spec.imputation is not None:
        cohort, points, failed, warnings, imputation = _run_imputed(spec, df, source["source"], built, targets,
                                                                   say=say, progress=progress, n_jobs=n_jobs,
                                                                   long=long)
        warnings = warnings + data_warnings(spec, checked, strategies)
    else:
        cohort = checked
        early = data_warnings(spec, cohort, strategies)
        for w in early:
            say(f"warning: {w}")
        warnings = list(cohort.warnings) + early
        if cohort.rows_dropped:
            warnings.append(f"complete-case analysis: {cohort.rows_dropped} rows with missing confounders dropped")
        points, failed = _fit_cohort(spec, built, cohort, targets, say=say, progress=progress, n_jobs=n_jobs)
        imputation = None
    for s, _ in built:
        for outcome in cohort.outcome_names:
            key = (s.label, outcome)
            if key in failed:
                records.append(StrategyRecord(s.label, s.design, s.adjustment, outcome, [], error=failed[key]))
                warnings.append(f"strategy '{s.label}', outcome '{outcome}' failed: {failed[key]}")
                continue
            out = points[key]
            empty = explain_empty(out)
            if empty:
                warnings.append(f"strategy '{s.label}', outcome '{outcome}': {empty} empty estimate"
                                f"{'s' if empty > 1 else ''}; the reason is in its notes")
            records.append(StrategyRecord(s.label, s.design, s.adjustment, outcome, out.estimates, out.curves,
                                          out.diagnostics, out.warnings, out.notes, estimands=out.estimands))
    if truth is not None:
        _attach_truths(spec, truth, built, records)
    provenance = {
        "spec_hash": spec.spec_hash(), "data_hash": imputation["data_hash"] if imputation else cohort.data_hash,
        "data_source": source, "seed": spec.bootstrap.seed, "versions": package_versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
    }
    result = AnalysisResult(
        study=spec.study, spec={**spec.canonical(), "resolved_strategies": [s.as_dict() for s in strategies]},
        records=records, cohort=_cohort_summary(spec, cohort), truth=truth, provenance=provenance,
        warnings=warnings, alpha=spec.estimands.alpha, min_cell=spec.min_cell,
    )
    if imputation:
        result.cohort["missing"] = imputation["summary"]
    if spec.published:
        from causal_hcc.audit import run_audit

        audit = run_audit(_published_path(spec))
        result.extras["audit"] = audit.table.to_dict(orient="records")
        result.extras["published"] = audit.published_summary()
    _sensitivity(spec, cohort, targets, strategies, result, say)
    if spec.report.monte_carlo:
        result.extras["monte_carlo"] = monte_carlo_panel(spec, spec.report.monte_carlo, n_jobs=n_jobs, say=say)
        from causal_hcc.simstudy import note_interval_validity   # each row's interval: shown valid or not (issue 20)

        note_interval_validity(result.records, result.extras["monte_carlo"]["table"])
    return result


def _measure_words(e: Any) -> str:
    return e.measure.replace("_", " ") + (f" at {e.time:g}" if e.time is not None else "")


def explain_empty(out: Any) -> int:
    """Give every non-finite estimate of ``out`` a reason in ``out.notes``; return how many are empty.

    An estimator that leaves an estimate empty should say why in a note naming
    the measure (and its time); where none does, the reason is read from the
    curves -- a curve that ends before the target time, or that never falls
    to 0.5 for a median -- or, failing that, said to be unknown. No NaN
    estimate leaves the pipeline without a note (issue 18).
    """
    import math

    empty = [e for e in out.estimates if not (isinstance(e.estimate, (int, float)) and math.isfinite(e.estimate))]
    text = " ".join(str(n) for n in out.notes).lower()
    for e in empty:
        words = _measure_words(e)
        if words in text or (e.measure in text and (e.time is None or f"{e.time:g}" in text)):
            continue
        reason = ""
        tab = out.curves.table if out.curves is not None else None
        if tab is not None and len(tab):
            if e.measure == "median_difference":
                low = tab.groupby("group", sort=False)["surv"].min()
                high = [f"the {g} curve does not fall to 0.5 (lowest survival {v:.3f})" for g, v in low.items()
                        if v > 0.5]
                reason = "; ".join(high)
            elif e.time is not None:
                last = tab.groupby("group", sort=False)["time"].max()
                ends = [f"the {g} curve ends at {v:g}" for g, v in last.items() if v < e.time]
                reason = "; ".join(ends) + (" (the end of its follow-up)" if ends else "")
        if not reason:
            reason = "the estimator gave no finite value (see this strategy's warnings)"
        out.notes.append(f"{words}: not estimable: {reason}")
        text += " " + words
    return len(empty)


def monte_carlo_panel(spec: AnalysisSpec, replicates: int, *, n_jobs: int = 1,
                      say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report's Monte Carlo panel: ``replicates`` twin cohorts through :func:`causal_hcc.simstudy.simulate_study`.

    The replicates use twin seeds ``seed + 1 ... seed + replicates`` (the
    analysed cohort, seed ``seed``, is not among them) and run in parallel
    (all cores unless ``n_jobs`` > 1 is given). Returns aggregate numbers
    only: the ``simulation.csv`` rows (bias and coverage against each row's
    own truth) and the primary outcome's hazard ratios per replicate for the
    figure.
    """
    from causal_hcc.simstudy import simulate_study

    say = say or (lambda msg: None)
    seed = int((spec.data.twin or {}).get("seed", 2024)) + 1
    jobs = n_jobs if n_jobs not in (None, 1) else -1
    t0 = time.perf_counter()
    say(f"monte carlo: {replicates} twin replicates (seeds {seed}-{seed + replicates - 1})")
    sim = simulate_study(spec, replicates=replicates, seed=seed, n_jobs=jobs)
    primary = spec.roles.outcome
    reps = sim.replicates
    reps = reps[(reps["error"] == "") & (reps["outcome"] == primary) & (reps["measure"] == "hr")
                & (reps["k"] == reps.groupby("strategy")["k"].transform("max"))]
    say(f"monte carlo done ({time.perf_counter() - t0:.1f}s)")
    return {"replicates_n": int(replicates), "seed": seed, "outcome": primary, "backend": sim.meta.get("backend"),
            "alpha": sim.meta.get("alpha"), "needs_bootstrap": sim.meta.get("needs_bootstrap", {}),
            "table": sim.table.to_dict(orient="records"), "failures": sim.failures(),
            "replicates": [{"strategy": r.strategy, "design": r.design, "measure": r.measure,
                            "estimate": float(f"{r.estimate:.5g}")} for r in reps.itertuples(index=False)]}


def validation_cohort(spec: AnalysisSpec, df: Any, source: str, long: Any = None) -> Any:
    """The cohort ``validate`` checks: as :func:`build_cohort`, except that with
    ``missing: {method: mice}`` the confounders are first imputed once (one
    chained-equation cycle), so every check of a run -- roles, confounder
    columns and types, what can be imputed -- is made without fitting anything."""
    if spec.imputation is None:
        return build_cohort(spec, df, source, long=long)
    from causal_hcc import missing as mi

    frame, roles = prepare_frame(spec, df, source, long)  # codes and dates first: impute what the cohort will see
    probe = build_cohort(spec, frame, source, roles_only=True, prepared=roles)
    completed = mi.impute(frame, confounders=_confounder_variables(spec, frame),
                          categorical=_baseline_categorical(spec),
                          treatment=probe.treatment,
                          outcomes={o: (probe.time(o), probe.event(o)) for o in probe.outcome_names},
                          m=1, seed=spec.imputation.seed, iterations=1, donors=spec.imputation.donors)[0]
    return build_cohort(spec, completed, source, prepared=roles, long=long)


def _confounder_variables(spec: AnalysisSpec, frame: Any) -> list[str]:
    """The data columns the spec's confounders read (a formula term's variables), for the imputation."""
    from causal_hcc.formula import parse_confounders

    return parse_confounders(spec.all_confounders(), [str(c) for c in frame.columns]).columns()


def _run_imputed(spec: AnalysisSpec, df: Any, source: str, built: list[tuple[Any, Any]], targets: Any, *,
                 say: Callable[[str], None], progress: Callable[[str], None] | None, n_jobs: int | None,
                 long: Any = None
                 ) -> tuple[Any, dict[tuple[str, str], Any], dict[tuple[str, str], str], list[str], dict[str, Any]]:
    """``missing: {method: mice}``: impute, fit every strategy on every completed data set, pool.

    The roles are validated first (a cohort without confounders), the
    confounders are imputed (:func:`causal_hcc.missing.impute`), each of the
    ``m`` completed data sets becomes a cohort on which :func:`_fit_cohort`
    runs every strategy (point fits, and the whole-pipeline bootstrap within
    each imputed data set for strategies that need it), and the ``m``
    outputs of each strategy x outcome are pooled by Rubin's rules
    (:func:`causal_hcc.missing.pool_estimates`, :func:`~causal_hcc.missing.pool_curves`).

    Returns ``(cohort of imputed data set 1, pooled points, failed,
    warnings, imputation)`` where ``imputation`` holds the observed data's
    hash and the report's summary (settings, missingness table).

    References
    ----------
    Rubin DB. Multiple Imputation for Nonresponse in Surveys. 1987.
    Schomaker M, Heumann C. Stat Med 2018;37:2252-66 (bootstrap within imputations).
    """
    import hashlib

    import pandas as pd

    from causal_hcc import missing as mi
    from causal_hcc.results import StrategyOutput

    opts = spec.imputation
    raw = df
    df, roles = prepare_frame(spec, raw, source, long)  # codes and dates first: impute what the cohort will see
    variables = _confounder_variables(spec, df)
    probe = build_cohort(spec, df, source, roles_only=True, prepared=roles)
    table = mi.missingness_table(df, variables, min_cell=spec.min_cell)
    imputed_columns = [c for c in variables if c in df.columns and bool(df[c].isna().any())]
    summary = {"method": "mice", "m": opts.m, "seed": opts.seed, "iterations": opts.iterations,
               "donors": opts.donors, "imputed_columns": imputed_columns, "table": table,
               "predictors": "other confounders, treatment, and for every outcome the event indicator and the "
                             "Nelson-Aalen cumulative hazard H(T)"}
    if not imputed_columns:  # m identical copies would give the complete-data result m times over
        cohort = build_cohort(spec, df, source, prepared=roles, long=long)
        points, failed = _fit_cohort(spec, built, cohort, targets, say=say, progress=progress, n_jobs=n_jobs)
        warnings = [*cohort.warnings, "missing: mice was requested but no confounder value is missing; "
                                      "the analysis ran once on the data as they are"]
        return cohort, points, failed, warnings, {"data_hash": cohort.data_hash, "summary": summary}
    t0 = time.perf_counter()
    say(f"multiple imputation: m = {opts.m}, {opts.iterations} iterations, {opts.donors} donors, seed {opts.seed}"
        f" ({', '.join(imputed_columns)})")
    frames = mi.impute(df, confounders=variables, categorical=_baseline_categorical(spec),
                       treatment=probe.treatment,
                       outcomes={o: (probe.time(o), probe.event(o)) for o in probe.outcome_names},
                       m=opts.m, seed=opts.seed, iterations=opts.iterations, donors=opts.donors)
    say(f"imputation done ({time.perf_counter() - t0:.1f}s)")
    quiet: Callable[[str], None] = lambda msg: None  # noqa: E731 - per-imputation lines would repeat m times
    runs: list[dict[tuple[str, str], Any]] = []
    failed: dict[tuple[str, str], str] = {}
    cohort0 = None
    warnings: list[str] = []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        # the reference level of a categorical confounder never changes between imputed data sets
        cohort = build_cohort(spec, frame, source, prepared=roles, long=long,
                              reference=None if cohort0 is None else dict(cohort0.reference_levels))
        if cohort0 is None:
            cohort0 = cohort
            warnings += list(cohort.warnings)
        try:
            points, bad = _fit_cohort(spec, built, cohort, targets, say=quiet, progress=None, n_jobs=n_jobs)
        except EstimationError as err:
            raise EstimationError(f"imputed data set {i + 1} of {opts.m}: {err}") from err
        for key, msg in bad.items():
            failed.setdefault(key, f"imputed data set {i + 1} of {opts.m}: {msg}")
        runs.append(points)
        say(f"imputed data set {i + 1}/{opts.m}: {len(points)} fits ({time.perf_counter() - t0:.2f}s)")
    pooled: dict[tuple[str, str], Any] = {}
    alpha = spec.estimands.alpha
    for s, _ in built:
        for outcome in cohort0.outcome_names:
            key = (s.label, outcome)
            if key in failed:
                continue
            outs = [r[key] for r in runs]
            ests, info, notes = mi.pool_estimates([o.estimates for o in outs], alpha=alpha)
            counts: dict[str, int] = {}
            for o in outs:
                for w in dict.fromkeys(o.warnings):
                    counts[w] = counts.get(w, 0) + 1
            warns = [w if k == len(outs) else f"{w} (in {k} of {len(outs)} imputed data sets)"
                     for w, k in counts.items()]
            first = outs[0]
            within = sorted({e.variance_method for o in outs for e in o.estimates})
            diagnostics = dict(first.diagnostics)
            diagnostics["imputation"] = {"m": opts.m, "pooling": info, "within_variance": within,
                                         "diagnostics_from": "imputed data set 1"}
            notes = [f"Multiple imputation (m = {opts.m}): Rubin's rules with Barnard-Rubin df; hazard ratios "
                     f"pooled on the log scale, survival/RMST/median differences on their own scale, curves on the "
                     f"complementary log-log scale; within-imputation variance: {', '.join(within)}; "
                     f"diagnostics are those of imputed data set 1"] + notes + list(first.notes)
            pooled[key] = StrategyOutput(ests, mi.pool_curves([o.curves for o in outs], alpha=alpha), diagnostics,
                                         warns, notes, estimands=dict(first.estimands))
            say(f"{s.label} [{outcome}]: {_headline(pooled[key])} (pooled over {opts.m})")
    if spec.sensitivity.refuters:
        warnings.append("sensitivity refuters ran on imputed data set 1 only")
    digest = hashlib.sha256(pd.util.hash_pandas_object(raw, index=True).to_numpy().tobytes()).hexdigest()
    return cohort0, pooled, failed, warnings, {"data_hash": digest, "summary": summary}


def _attach_truths(spec: AnalysisSpec, truth: dict[str, Any], built: list, records: list[StrategyRecord]) -> None:
    """Give every estimand of every outcome the twin simulates (OS, PFS) its own truth on the twin.

    Each record's ``estimands[label]["truth"]`` is the twin's truth of that estimand for the
    record's outcome (:func:`causal_hcc.twin.truth.estimand_truth`, conditional ones given the
    strategy's adjustment set; ``defined: False`` with the reason otherwise);
    ``truth["estimands"]`` lists them for ``truth.json``, each with its Monte Carlo SE.
    """
    from causal_hcc.twin import TwinParams
    from causal_hcc.twin.truth import estimand_truth, twin_outcome

    params = TwinParams.from_spec(spec.data.twin or {})
    est = spec.estimands
    times = tuple(est.survival_at) or (12.0, 24.0)
    tau = est.rmst_tau or 24.0
    conf = {s.label: tuple(strat.confounders if strat.confounders is not None else spec.confounders)
            for s, strat in built}
    twin_of = {spec.roles.outcome: twin_outcome(spec.roles.time, spec.roles.outcome, spec.roles.event),
               **{k: twin_outcome(o.time, k, o.event) for k, o in spec.outcomes.items()}}
    listed: dict[str, Any] = {}
    for rec in records:
        oc = twin_of.get(rec.outcome)
        for label, e in rec.estimands.items():
            if oc is None:
                t = {"estimand": label, "defined": False, "kind": "undefined", "outcome": rec.outcome,
                     "note": f"undefined: outcome '{rec.outcome}' is not one the twin simulates (os, pfs)"}
            else:
                t = estimand_truth(e, params, times=times, rmst_tau=tau, confounders=conf.get(rec.strategy, ()),
                                   outcome=oc)
            e["truth"] = t
            name = label if e["scale"] == "marginal" else f"{label} given {', '.join(conf.get(rec.strategy, ()))}"
            listed.setdefault(name if rec.outcome == spec.roles.outcome else f"{name} [{rec.outcome}]", t)
    truth["estimands"] = listed


def _sensitivity(spec, cohort, targets, strategies, result, say) -> None:
    from causal_hcc import sensitivity

    sens: dict[str, Any] = {}
    if spec.sensitivity.evalues:
        sens["evalues"] = sensitivity.evalues_for(result)
    if spec.sensitivity.dag:
        sens["dag"] = sensitivity.dag_adjustment_set(spec.sensitivity.dag,
                                                     spec.roles.treatment or spec.roles.treatment_date,
                                                     spec.roles.event, list(spec.confounders))
    if spec.sensitivity.refuters:
        label = spec.sensitivity.refuter_strategy or next(
            (s.label for s in strategies if s.adjustment not in ("none", "paper")), strategies[0].label)
        match = [s for s in strategies if s.label == label]
        if not match:
            raise CausalHCCError(f"sensitivity.refuter_strategy: no strategy labelled '{label}'")
        strat = match[0].build(default_confounders=spec.confounders)
        outcome = cohort.outcome_names[0]
        sens["refuters"] = []
        for name in spec.sensitivity.refuters:
            fn = getattr(sensitivity, f"refute_{name}")
            say(f"refuter {name} on {label} [{outcome}]")
            # a strategy whose SE is the bootstrap gets bootstrap CIs in its refutations too
            boot = spec.bootstrap.replicates if strat.needs_bootstrap else 0
            sens["refuters"].append(fn(strat, cohort, outcome, targets, seed=spec.bootstrap.seed, bootstrap=boot))
    if sens:
        result.extras["sensitivity"] = sens


def _headline(out) -> str:
    """'HR 0.777 (0.444 to 1.360)', or the first other estimate with its interval, for the progress lines."""
    def ci(e) -> str:
        return f" ({e.ci_lower:.3f} to {e.ci_upper:.3f})" if np.isfinite(e.ci_lower) and np.isfinite(e.ci_upper) \
            else ""

    for e in out.estimates:
        if e.measure == "hr" and not e.strategy.endswith("(univariate)"):
            if not np.isfinite(e.estimate):
                return "HR not estimable (infinite maximum-likelihood estimate)"
            return f"HR {e.estimate:.3f}{ci(e)}"
    for e in out.estimates:
        if np.isfinite(e.estimate):
            return f"{e.measure.replace('_', ' ')} {e.estimate:.3f}{ci(e)}" + (
                f" at {e.time:g}" if e.time is not None else "")
    return "done"


def write_outputs(result: AnalysisResult, folder: str, *, force: bool = False,
                  formats: tuple[str, ...] = ("html", "md"), inputs: Sequence[str] = ()) -> str:
    """Write estimates.csv, results.json (+ truth.json, audit.csv, report) atomically into ``folder``.

    The rules of :mod:`causal_hcc._atomic` apply: ``folder`` is written as a
    temporary sibling renamed into place; it must not be, contain or lie in
    any of ``inputs`` (the CLI passes the spec, data and published files);
    an existing ``folder`` is replaced only with ``force`` and only if
    causal_hcc wrote it. Raises :class:`~causal_hcc.errors.OutputError`.
    """
    with atomic_folder(folder, force=force, inputs=inputs, command="run") as tmp:
        result.estimates_frame().to_csv(os.path.join(tmp, "estimates.csv"), index=False)
        result.write_curves(tmp)
        with open(os.path.join(tmp, "results.json"), "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=1, allow_nan=False)
        if result.truth is not None:
            with open(os.path.join(tmp, "truth.json"), "w", encoding="utf-8") as fh:
                json.dump(result.to_dict()["truth"], fh, indent=1, allow_nan=False)
        if "audit" in result.extras:
            import pandas as pd

            pd.DataFrame(result.extras["audit"]).to_csv(os.path.join(tmp, "audit.csv"), index=False)
        write_report_files(result, tmp, formats)
    return folder


def require_pdf_printer(formats: Sequence[str]) -> None:
    """Refuse, before any fitting, a requested PDF that cannot be printed (no Chromium found).

    Raises
    ------
    OutputError
        ``report format 'pdf' needs Chromium: ...`` when ``pdf`` is among
        ``formats`` and :func:`causal_hcc.report.render.find_chromium` finds
        none (``$CAUSAL_HCC_CHROMIUM``, else chromium/google-chrome on PATH).
    """
    if "pdf" not in formats:
        return
    from causal_hcc.errors import OutputError
    from causal_hcc.report.render import find_chromium

    if find_chromium() is None:
        raise OutputError("report format 'pdf' needs Chromium: install the 'chromium' package or set "
                          "CAUSAL_HCC_CHROMIUM to its path (or leave pdf out of report.formats / --format)")


def write_report_files(result: AnalysisResult, folder: str, formats: tuple[str, ...]) -> None:
    from causal_hcc.report.render import write_report

    write_report(result, folder, formats=formats)
