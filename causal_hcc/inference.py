"""Whole-pipeline bootstrap: resample patients (or clusters), re-run every step.

A bootstrap replicate draws ``n`` patients with replacement from the cohort
(:meth:`Cohort.take`; a patient drawn twice becomes two patients), then
re-runs the *whole* strategy on them — design (landmark selection, splitting,
cloning), propensity model, matching or weighting, outcome model — never just
the last step. The spread of the replicate estimates then carries the
uncertainty of every estimated nuisance quantity (propensity scores, match
sets, censoring weights), which the analytic "weights treated as fixed"
variances ignore.

With a ``cluster`` role (e.g. centre) a replicate draws clusters instead:
``G`` clusters with replacement out of the ``G`` in the cohort, all patients
of each drawn cluster, and a cluster drawn twice becomes two clusters
(Davison & Hinkley 1997, §3.8; Field & Welsh 2007), so the replicates keep
the within-cluster correlation the cluster-robust SEs account for. BCa's
jackknife then leaves out one cluster at a time.

Choices (stated on every estimate and in ``diagnostics["bootstrap"]``):

* **SE** = standard deviation (``ddof=1``) of the replicate estimates; for
  hazard ratios of the replicate **log** HRs (``se`` of an ``hr`` row is
  always on the log scale, as in :mod:`causal_hcc.results`).
* **CI** = percentile interval (Efron & Tibshirani 1993, ch. 13): the
  ``alpha/2`` and ``1 - alpha/2`` quantiles of the replicates (``numpy``'s
  linear interpolation), taken on the log scale for HRs and exponentiated.
  The percentile interval respects transformations and the range of the
  measure (a survival difference stays in [-1, 1]) and does not assume the
  skewed small-sample distribution of a log HR with 26 treated patients is
  normal; it is not second-order accurate (BCa would be, at the price of a
  jackknife per strategy).
* **p-value** = two-sided normal approximation, ``2 * Phi(-|theta / se|)``
  with ``theta`` the point estimate (log HR for ``hr``) and ``se`` the
  bootstrap SE.
* **Failed replicates** (an :class:`~causal_hcc.errors.EstimationError` —
  no treated patient drawn, no events in an arm, non-convergence — or a
  singular matrix) are counted by reason in ``diagnostics["bootstrap"]``,
  never silently dropped; SE and CI use the replicates that succeeded and a
  warning is added when more than 5% failed. An estimate that is undefined
  in a successful replicate (e.g. a median not reached) is counted in
  ``diagnostics["bootstrap"]["undefined"]``.
* **Determinism**: replicate ``b`` draws its indices from
  ``np.random.Generator(PCG64(SeedSequence(seed).spawn(B)[b]))``, so the
  result depends on ``seed`` only — not on ``n_jobs``, on the chunking or
  on the order in which workers finish — and :func:`bootstrap_many` with the
  same seed resamples exactly the patients :func:`bootstrap_strategy` does.
* **Curves**: when the point output has survival curves, each replicate's
  curve (a step function) is evaluated at the point curve's times, and the
  curve's ``se``/``ci_lower``/``ci_upper`` become the bootstrap SD and
  percentile band.

References
----------
Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall,
1993 (ch. 6 standard error, ch. 13 percentile interval).
Austin PC. Variance estimation when using inverse probability of treatment
weighting (IPTW) with survival analysis. Stat Med 2016;35:5642-55 (the
bootstrap accounts for the estimated propensity score; the robust sandwich
treating weights as fixed is conservative for the ATE).
Hernán MA, Robins JM. Causal Inference: What If. Chapman & Hall/CRC, 2020,
§13.3 (bootstrap of the g-formula).
Davison AC, Hinkley DV. Bootstrap Methods and their Application. Cambridge
University Press, 1997, §3.8 (hierarchical data: resample the top level).
Field CA, Welsh AH. Bootstrapping clustered data. JRSS B 2007;69:369-90.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from causal_hcc._replicate import (  # noqa: F401  (re-exported: the public names, and internals tests use)
    _CI_NAMES,
    _IN_REPLICATE,
    _INFINITE_FAILS,
    BOOTSTRAP_CIS,
    FAILURE_WARNING_FRACTION,
    REPLICATE_ERRORS,
    _bca_limits,
    _cluster_members,
    _failure_reason,
    _fit_replicates,
    _Job,
    _key,
    _keys,
    _label_key,
    _Layout,
    _take_clusters,
    _value,
    clone_strategy,
    failing_on_infinite,
    in_replicate,
    infinite_fails,
    replicate_cohort,
    replicate_indices,
    replicate_seeds,
    resampling_unit,
    single_threaded_blas,
    summarise_replicates,
)
from causal_hcc.base import Targets
from causal_hcc.errors import SpecError
from causal_hcc.results import StrategyOutput

__all__ = [
    "bootstrap_strategy",
    "bootstrap_many",
    "replicate_indices",
    "replicate_seeds",
    "replicate_cohort",
    "resampling_unit",
    "in_replicate",
    "infinite_fails",
    "failing_on_infinite",
    "clone_strategy",
    "summarise_replicates",
    "FAILURE_WARNING_FRACTION",
]


def _check_replicates(replicates: Any) -> int:
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 2:
        raise SpecError(f"bootstrap: replicates must be an integer >= 2, got {replicates!r}")
    return int(replicates)


def _run_chunk(cohort: Any, jobs: Sequence[_Job], targets: Targets, seeds: Sequence[np.random.SeedSequence]
               ) -> list[list[np.ndarray | str]]:
    """Fit every job on each replicate of ``seeds``; returns per replicate, per job, a vector or a reason."""
    fresh = [clone_strategy(j.strategy) for j in jobs]
    n = cohort.n
    rows: list[list[np.ndarray | str]] = []
    token = _IN_REPLICATE.set(True)
    try:
        with single_threaded_blas():
            _fit_replicates(cohort, jobs, fresh, targets, seeds, n, rows)
    finally:
        _IN_REPLICATE.reset(token)
    return rows


def _run_dask_chunk(shared: tuple, seeds: Sequence[np.random.SeedSequence]) -> list[list[np.ndarray | str]]:
    cohort, jobs, targets = shared
    return _run_chunk(cohort, jobs, targets, seeds)


def _chunks(n_items: int, n_jobs: int, target: int = 8) -> list[range]:
    """Split replicates into contiguous chunks: about ``target`` per worker,
    large enough to amortise dispatch and pickling of the cohort."""
    n_chunks = max(1, min(n_items, n_jobs * target))
    bounds = np.linspace(0, n_items, n_chunks + 1).round().astype(int)
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _effective_jobs(n_jobs: int | None) -> int:
    import joblib

    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise SpecError(f"n_jobs must be a non-zero integer (-1 = all cores), got {n_jobs!r}")
    return int(joblib.cpu_count() + 1 + n_jobs) if n_jobs < 0 else int(n_jobs)


#: Dask settings for compute-bound tasks of a few seconds each: no statistical profiler sampling
#: every worker thread (it costs a few percent of a busy core), no work stealing of equal chunks,
#: and local worker processes forked from this process instead of spawned fresh interpreters (a
#: LocalCluster of 2 starts and stops in ~1 s instead of ~5.7 s, the workers have the package imported
#: already, and _process.watch_parent sees this process as their parent). Applies to --dask-local only.
DASK_CONFIG: dict[str, Any] = {
    "distributed.worker.multiprocessing-method": "fork",
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
}


class dask_client:
    """Context manager: a Dask client on a running scheduler or a local cluster, and a label.

    ``scheduler="tcp://host:port"`` connects to a cluster started elsewhere
    (``dask scheduler`` + ``dask worker`` on other machines); ``n_workers=N``
    starts a ``LocalCluster`` of N single-threaded worker processes on
    127.0.0.1 (no dashboard) for the duration of the block.
    """

    def __init__(self, scheduler: str | None = None, n_workers: int | None = None, *, what: str = "simulate"):
        self.scheduler, self.n_workers, self.what = scheduler, n_workers, what
        self.cluster = self.client = None
        self._cfg = None

    def __enter__(self) -> tuple[Any, str]:
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise SpecError(f"{self.what}: --scheduler/--dask-local need dask[distributed] installed") from exc
        self._cfg = dask.config.set(DASK_CONFIG)
        self._cfg.__enter__()
        try:
            if self.scheduler is not None:
                try:
                    self.client = Client(self.scheduler, timeout="20s")
                except (OSError, ValueError, TypeError) as exc:
                    raise SpecError(f"{self.what}: cannot reach the Dask scheduler at '{self.scheduler}': {exc}") \
                        from None
                return self.client, f"dask ({self.scheduler})"
            nw = self.n_workers
            if isinstance(nw, bool) or not isinstance(nw, (int, np.integer)) or nw < 1:
                raise SpecError(f"{self.what}: --dask-local must be a positive number of workers, got {nw!r}")
            import logging

            self.cluster = LocalCluster(n_workers=int(nw), threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
            import os

            from causal_hcc._process import watch_parent

            self.client.run(watch_parent, os.getpid())  # local workers die with this process, even on kill -9
            return self.client, f"dask LocalCluster ({nw} workers)"
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            if self._cfg is not None:
                self._cfg.__exit__(None, None, None)
                self._cfg = None


def dask_map_chunks(client: Any, fn: Callable[..., list], shared: Any, items: Sequence[Any], *,
                    per_worker: int = 2, on_done: Callable[[int], None] | None = None) -> list:
    """``fn(shared, chunk)`` over ``items`` in a few large tasks; the concatenated results in item order.

    ``shared`` (the cohort or the spec) is scattered to every worker once;
    ``items`` are cut into ``per_worker`` contiguous chunks per worker thread
    of the cluster (so a task is seconds of work, not milliseconds, and the
    scheduler's per-task cost vanishes). ``on_done(k)`` reports each finished
    chunk's size (a progress bar).
    """
    from dask.distributed import as_completed

    nthreads = max(1, sum(client.nthreads().values()))
    chunks = _chunks(len(items), nthreads, target=per_worker)
    shared_f = client.scatter(shared, broadcast=True, hash=False)
    futures = [client.submit(fn, shared_f, [items[i] for i in ch], pure=False) for ch in chunks]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[list] = [[] for _ in chunks]
    for fut in as_completed(futures):
        i = index[fut.key]
        out[i] = fut.result()
        if on_done is not None:
            on_done(len(chunks[i]))
    return [x for part in out for x in part]


def run_replicates(
    cohort: Any,
    jobs: Sequence[_Job],
    targets: Targets,
    *,
    replicates: int,
    seed: int,
    n_jobs: int | None = 1,
    progress: bool = False,
    desc: str = "bootstrap",
    scheduler: str | None = None,
    dask_local: int | None = None,
) -> list[list[np.ndarray | str]]:
    """Run ``replicates`` bootstrap replicates of every job; results in replicate order.

    Locally with joblib (``n_jobs``), or on Dask: ``scheduler`` (a running
    cluster) or ``dask_local`` (a LocalCluster of that many workers). On
    Dask the cohort is scattered to the workers once and the replicates run
    in two chunks per worker thread; the results are identical whatever the
    backend (same seeds, single-threaded BLAS in every replicate). Jobs of
    baseline IPTW strategies are computed by :mod:`causal_hcc.batched` (all
    replicates at once, in this process; equal to the per-replicate results
    to ~1e-12) unless :data:`BATCHED` is False.
    """
    # jobs the batched module covers (baseline IPTW) are computed for all replicates at once
    fast: dict[int, list] = {}
    if BATCHED:
        from causal_hcc import batched

        for k, job in enumerate(jobs):
            if batched.supported(job.strategy, cohort) is None:
                try:
                    fast[k] = batched.batched_replicates(job.strategy, cohort, job.outcome, targets, None,
                                                         replicates=replicates, seed=seed, layout=job.layout)
                except ValueError:  # a design this path does not cover: the per-replicate path runs it
                    continue
    rest = [j for k, j in enumerate(jobs) if k not in fast]
    if not rest:
        return [[fast[k][r] for k in range(len(jobs))] for r in range(replicates)]
    rows = _run_replicates(cohort, rest, targets, replicates=replicates, seed=seed, n_jobs=n_jobs,
                           progress=progress, desc=desc, scheduler=scheduler, dask_local=dask_local)
    if not fast:
        return rows
    out = []
    for r in range(replicates):
        it = iter(rows[r])
        out.append([fast[k][r] if k in fast else next(it) for k in range(len(jobs))])
    return out


#: compute the replicates of baseline IPTW strategies with :mod:`causal_hcc.batched` (same results to ~1e-12)
BATCHED = True


def _run_replicates(cohort: Any, jobs: Sequence[_Job], targets: Targets, *, replicates: int, seed: int,
                    n_jobs: int | None, progress: bool, desc: str, scheduler: str | None,
                    dask_local: int | None) -> list[list[np.ndarray | str]]:
    seeds = replicate_seeds(seed, replicates)
    nj = _effective_jobs(n_jobs)
    chunks = _chunks(replicates, nj)
    bar = _progress_bar(progress, replicates, desc)
    results: list[list[np.ndarray | str]] = []
    try:
        if scheduler is not None or dask_local is not None:
            with dask_client(scheduler, dask_local, what="bootstrap") as (client, _):
                results = dask_map_chunks(client, _run_dask_chunk, (cohort, list(jobs), targets), seeds,
                                          on_done=bar.update)
        elif nj == 1:
            for ch in chunks:
                results.extend(_run_chunk(cohort, jobs, targets, [seeds[i] for i in ch]))
                bar.update(len(ch))
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=nj, return_as="generator")
            for ch, res in zip(chunks, par(delayed(_run_chunk)(cohort, jobs, targets, [seeds[i] for i in ch])
                                           for ch in chunks)):
                results.extend(res)
                bar.update(len(ch))
    finally:
        bar.close()
    return results


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(progress: bool, total: int, desc: str) -> Any:
    """A tqdm bar that only appears once the run has lasted a second."""
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rep", delay=1.0, leave=False)


def jackknife_values(cohort: Any, jobs: Sequence["_Job"], targets: Targets) -> list[np.ndarray]:
    """Leave-one-patient-out (with a ``cluster`` role: leave-one-cluster-out) values of every job
    (n or G x width each; NaN where a fit failed)."""
    clustered = getattr(cohort, "cluster", None) is not None
    n = int(np.unique(np.asarray(cohort.cluster)).shape[0]) if clustered else cohort.n
    fresh = [clone_strategy(j.strategy) for j in jobs]
    out = [np.full((n, j.layout.width), np.nan) for j in jobs]
    every = np.arange(n)
    token = _IN_REPLICATE.set(True)
    try:
        with single_threaded_blas():
            for i in range(n):
                sub = _take_clusters(cohort, np.delete(every, i)) if clustered else cohort.take(np.delete(every, i))
                for k, (job, strat) in enumerate(zip(jobs, fresh)):
                    try:
                        with np.errstate(all="ignore"):
                            out[k][i] = job.layout.record(strat.fit(sub, job.outcome, targets))
                    except REPLICATE_ERRORS:
                        continue
    finally:
        _IN_REPLICATE.reset(token)
    return out


# --------------------------------------------------------------------------- public API
def bootstrap_strategy(
    strategy: Any,
    cohort: Any,
    outcome: str,
    targets: Targets,
    point: StrategyOutput,
    *,
    replicates: int,
    seed: int,
    n_jobs: int | None = 1,
    progress: bool = False,
    ci: str = "percentile",
) -> StrategyOutput:
    """Whole-pipeline bootstrap of one strategy on one outcome.

    Parameters
    ----------
    strategy : Strategy
        The strategy (design x adjustment) whose variance is wanted. It is
        copied (unfitted) for the replicates; its fitted state is untouched.
    cohort : Cohort
        The analysed cohort; replicates are ``cohort.take(indices)``.
    outcome : str
        Outcome name (``cohort.outcome_names``).
    targets : Targets
        Survival times, RMST horizon and ``alpha`` (for the CI level).
    point : StrategyOutput
        The strategy's fit on the full cohort; its estimates keep their
        values and receive bootstrap SE, CI and p-value.
    replicates : int
        Number of replicates (>= 2).
    seed : int
        Seed; the result depends on it only (not on ``n_jobs``).
    n_jobs : int, default 1
        Worker processes (joblib/loky); -1 uses every core.
    progress : bool, default False
        Show a tqdm progress bar once the run lasts longer than a second.
    ci : {"percentile", "normal", "bca"}, default "percentile"
        Interval (a strategy's own ``bootstrap_ci`` takes precedence);
        ``bca`` adds one leave-one-patient-out fit per patient.

    Returns
    -------
    StrategyOutput
        A copy of ``point`` with ``variance_method="bootstrap"``, CIs of kind
        ``ci`` (log scale for HR), normal-approximation p-values, bootstrap
        bands on the curves and ``diagnostics["bootstrap"]``.

    References
    ----------
    Efron B, Tibshirani RJ. An Introduction to the Bootstrap. 1993.
    Austin PC. Stat Med 2016;35:5642-55.
    """
    return bootstrap_many([strategy], cohort, [outcome], targets, {(strategy.label, outcome): point},
                          replicates=replicates, seed=seed, n_jobs=n_jobs, progress=progress,
                          only_needed=False, ci=ci)[(strategy.label, outcome)]


def bootstrap_many(
    strategies: Sequence[Any],
    cohort: Any,
    outcomes: Sequence[str],
    targets: Targets,
    points: Mapping[tuple[str, str], StrategyOutput],
    *,
    replicates: int,
    seed: int,
    n_jobs: int | None = 1,
    progress: bool = False,
    only_needed: bool = True,
    ci: str = "percentile",
    scheduler: str | None = None,
    dask_local: int | None = None,
) -> dict[tuple[str, str], StrategyOutput]:
    """Bootstrap many strategies x outcomes on the same replicates.

    Each replicate's indices are drawn once and the resampled cohort is
    built once (``cohort.take``); every strategy x outcome is then fitted
    on it. With the same ``seed`` each strategy gets exactly the result
    :func:`bootstrap_strategy` would give it alone (common replicates make
    differences between strategies more precise, too).

    Parameters
    ----------
    strategies : sequence of Strategy
        Candidates; with ``only_needed`` only those whose
        ``needs_bootstrap`` is true are bootstrapped.
    cohort : Cohort
    outcomes : sequence of str
    targets : Targets
    points : mapping (strategy label, outcome) -> StrategyOutput
        Point fits. A pair missing here (e.g. its point fit failed) is
        skipped.
    replicates, seed, n_jobs, progress
        As in :func:`bootstrap_strategy`.
    only_needed : bool, default True
        Skip strategies that do not need the bootstrap.
    ci : {"percentile", "normal", "bca"}, default "percentile"
        Interval for strategies without their own ``bootstrap_ci``.
    scheduler, dask_local : optional
        Run the replicates on Dask (see :func:`run_replicates`).

    Returns
    -------
    dict (strategy label, outcome) -> StrategyOutput
        Bootstrapped copies of the point outputs, for the pairs that were
        bootstrapped.

    References
    ----------
    Efron B, Tibshirani RJ. An Introduction to the Bootstrap. 1993.
    """
    B = _check_replicates(replicates)
    jobs: list[_Job] = []
    for s in strategies:
        if only_needed and not s.needs_bootstrap:
            continue
        for o in outcomes:
            p = points.get((s.label, o))
            if p is None:
                continue
            jobs.append(_Job((s.label, o), s, o, _Layout.of(p)))
    if not jobs:
        return {}
    cis = [getattr(job.strategy, "bootstrap_ci", None) or ci for job in jobs]
    for c in cis:
        if c not in BOOTSTRAP_CIS:
            raise SpecError(f"bootstrap ci must be one of {', '.join(BOOTSTRAP_CIS)}, got {c!r}")
    rows = run_replicates(cohort, jobs, targets, replicates=B, seed=seed, n_jobs=n_jobs, progress=progress,
                          scheduler=scheduler, dask_local=dask_local)
    bca = [k for k, c in enumerate(cis) if c == "bca"]
    jack = dict(zip(bca, jackknife_values(cohort, [jobs[k] for k in bca], targets))) if bca else {}
    out: dict[tuple[str, str], StrategyOutput] = {}
    for j, job in enumerate(jobs):
        res = summarise_replicates(points[job.key], [r[j] for r in rows], seed=seed, alpha=targets.alpha,
                                   layout=job.layout, ci=cis[j], jackknife=jack.get(j))
        res.diagnostics["bootstrap"]["shared_with"] = len(jobs)
        res.diagnostics["bootstrap"]["resampled"] = resampling_unit(cohort)
        if getattr(cohort, "cluster", None) is not None:
            # the point fit's sandwich note no longer describes these SEs
            res.notes = [x for x in res.notes if not x.startswith("variance: cluster_robust(")]
            res.notes.append(f"bootstrap: replicates resample {resampling_unit(cohort)}, not patients "
                             f"(a cluster drawn twice counts as two)")
        out[job.key] = res
    return out
