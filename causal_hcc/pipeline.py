"""Run a spec end to end: data -> Cohort -> strategies -> AnalysisResult -> files.

Writes go to a temporary folder beside the target that is renamed into place
at the end, so a failed run leaves no half-written output; an existing
output folder is only replaced with ``force=True``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any, Callable

import numpy as np

from causal_hcc._atomic import atomic_folder, check_output_dir  # noqa: F401 (re-exported for the CLI)
from causal_hcc.config import AnalysisSpec
from causal_hcc.errors import CausalHCCError, EstimationError
from causal_hcc.results import AnalysisResult, StrategyRecord

_VERSIONED = ("causal_hcc", "numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "lifelines", "dowhy",
              "matplotlib", "pydantic")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in _VERSIONED:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def load_data(spec: AnalysisSpec) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """Return (DataFrame, truth or None, description of the source)."""
    path = spec.data_path()
    if path == "twin":
        from causal_hcc.twin import TwinParams, simulate_twin, truth

        params = TwinParams.from_spec(spec.data.twin or {})
        df = simulate_twin(params)
        est = spec.estimands
        tr = truth(params, times=tuple(est.survival_at) or (12.0, 24.0), rmst_tau=est.rmst_tau or 24.0)
        return df, tr, {"source": "digital twin", "twin_params": params.model_dump(mode="json")}
    from causal_hcc.io import read_table

    df = read_table(path, sheet=spec.data.sheet)
    return df, None, {"source": os.path.basename(path)}


def build_cohort(spec: AnalysisSpec, df: Any, source: str) -> Any:
    from causal_hcc.cohort import Cohort

    from causal_hcc.errors import DataError

    r = spec.roles
    try:
        return Cohort(
            df, id=r.id, time=r.time, event=r.event, treatment=r.treatment, treatment_time=r.treatment_time,
            confounders=spec.all_confounders(), categorical=spec.categorical, cluster=r.cluster,
            outcomes={k: (o.time, o.event) for k, o in spec.outcomes.items()}, outcome_name=r.outcome,
            missing=spec.missing, source=source, reference=spec.reference or None,
        )
    except DataError as err:  # name the file in the one-line message
        raise DataError(f"{source}: {err}") from None


def _cohort_summary(spec: AnalysisSpec, cohort: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "n": int(cohort.n), "n_treated": int(np.sum(cohort.treatment)),
        "rows_dropped": int(cohort.rows_dropped),
        "events": {o: int(np.sum(cohort.event(o))) for o in cohort.outcome_names},
        "confounders": list(spec.confounders), "confounder_columns": list(cohort.confounder_columns),
        "reference_levels": dict(cohort.reference_levels),
        "time_unit": spec.time_unit,
    }
    from causal_hcc.report.table1 import table1

    summary["table1"] = table1(cohort, min_cell=spec.report.min_cell)
    return summary


def run_analysis(spec: AnalysisSpec, *, progress: Callable[[str], None] | None = None,
                 n_jobs: int | None = None) -> AnalysisResult:
    """Fit every strategy of ``spec`` on every outcome; return the result."""
    say = progress or (lambda msg: None)
    strategies = spec.resolved_strategies()
    df, truth, source = load_data(spec)
    cohort = build_cohort(spec, df, source["source"])
    targets = spec.targets
    records: list[StrategyRecord] = []
    warnings: list[str] = list(cohort.warnings)
    if cohort.rows_dropped:
        warnings.append(f"complete-case analysis: {cohort.rows_dropped} rows with missing confounders dropped")
    n_jobs = spec.n_jobs if n_jobs is None else n_jobs
    built = [(s, s.build(default_confounders=spec.confounders)) for s in strategies]
    points: dict[tuple[str, str], Any] = {}
    failed: dict[tuple[str, str], str] = {}
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
            say(f"{s.label} [{outcome}]: {_headline(out)} ({time.perf_counter() - t0:.2f}s)")
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
    elif need:
        for strat in need:
            for outcome in cohort.outcome_names:
                if (strat.label, outcome) in points:
                    points[(strat.label, outcome)].warnings.append(
                        "bootstrap: replicates = 0, so this strategy has no standard errors")
    for s, _ in built:
        for outcome in cohort.outcome_names:
            key = (s.label, outcome)
            if key in failed:
                records.append(StrategyRecord(s.label, s.design, s.adjustment, outcome, [], error=failed[key]))
                warnings.append(f"strategy '{s.label}', outcome '{outcome}' failed: {failed[key]}")
                continue
            out = points[key]
            records.append(StrategyRecord(s.label, s.design, s.adjustment, outcome, out.estimates, out.curves,
                                          out.diagnostics, out.warnings, out.notes, estimands=out.estimands))
    if truth is not None:
        _attach_truths(spec, truth, built, records)
    provenance = {
        "spec_hash": spec.spec_hash(), "data_hash": cohort.data_hash,
        "data_source": source, "seed": spec.bootstrap.seed, "versions": package_versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
    }
    result = AnalysisResult(
        study=spec.study, spec={**spec.canonical(), "resolved_strategies": [s.as_dict() for s in strategies]},
        records=records, cohort=_cohort_summary(spec, cohort), truth=truth, provenance=provenance,
        warnings=warnings, alpha=spec.estimands.alpha,
    )
    if spec.published:
        from causal_hcc.audit import run_audit

        pub = spec.published
        if not os.path.isabs(pub) and os.path.exists(os.path.join(spec.base_dir, pub)):
            pub = os.path.join(spec.base_dir, pub)
        audit = run_audit(pub)
        result.extras["audit"] = audit.table.to_dict(orient="records")
        result.extras["published"] = audit.published_summary()
    _sensitivity(spec, cohort, targets, strategies, result, say)
    if spec.report.monte_carlo:
        result.extras["monte_carlo"] = monte_carlo_panel(spec, spec.report.monte_carlo, n_jobs=n_jobs, say=say)
    return result


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


def _attach_truths(spec: AnalysisSpec, truth: dict[str, Any], built: list, records: list[StrategyRecord]) -> None:
    """Give every estimand of the primary outcome its own truth on the twin.

    Each record's ``estimands[label]["truth"]`` is the twin's truth of that estimand
    (:func:`causal_hcc.twin.truth.estimand_truth`, conditional ones given the strategy's
    adjustment set); ``truth["estimands"]`` lists them for ``truth.json``.
    """
    from causal_hcc.twin import TwinParams
    from causal_hcc.twin.truth import estimand_truth

    params = TwinParams.from_spec(spec.data.twin or {})
    est = spec.estimands
    times = tuple(est.survival_at) or (12.0, 24.0)
    tau = est.rmst_tau or 24.0
    conf = {s.label: tuple(strat.confounders if strat.confounders is not None else spec.confounders)
            for s, strat in built}
    listed: dict[str, Any] = {}
    for rec in records:
        if rec.outcome != spec.roles.outcome:
            continue
        for label, e in rec.estimands.items():
            t = estimand_truth(e, params, times=times, rmst_tau=tau, confounders=conf.get(rec.strategy, ()))
            e["truth"] = t
            listed.setdefault(label if e["scale"] == "marginal" else f"{label} given {', '.join(conf.get(rec.strategy, ()))}", t)
    truth["estimands"] = listed


def _sensitivity(spec, cohort, targets, strategies, result, say) -> None:
    from causal_hcc import sensitivity

    sens: dict[str, Any] = {}
    if spec.sensitivity.evalues:
        sens["evalues"] = sensitivity.evalues_for(result)
    if spec.sensitivity.dag:
        sens["dag"] = sensitivity.dag_adjustment_set(spec.sensitivity.dag, spec.roles.treatment,
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
    for e in out.estimates:
        if e.measure == "hr" and not e.strategy.endswith("(univariate)"):
            return f"HR {e.estimate:.3f} ({e.ci_lower:.3f}-{e.ci_upper:.3f})"
    for e in out.estimates:
        if np.isfinite(e.estimate):
            return f"{e.measure} {e.estimate:.3f}" + (f" at {e.time:g}" if e.time is not None else "")
    return "done"


def write_outputs(result: AnalysisResult, folder: str, *, force: bool = False,
                  formats: tuple[str, ...] = ("html", "md")) -> str:
    """Write estimates.csv, results.json (+ truth.json, audit.csv, report) atomically into ``folder``."""
    with atomic_folder(folder, force=force) as tmp:
        result.estimates_frame().to_csv(os.path.join(tmp, "estimates.csv"), index=False)
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


def write_report_files(result: AnalysisResult, folder: str, formats: tuple[str, ...]) -> None:
    from causal_hcc.report.render import write_report

    write_report(result, folder, formats=formats)
