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

import contextlib
import contextvars
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from causal_hcc.base import Targets
from causal_hcc.errors import EstimationError, SpecError
from causal_hcc.results import EffectEstimate, StrategyOutput, SurvivalCurves, is_ratio

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

#: a warning is added when more than this fraction of replicates failed
FAILURE_WARNING_FRACTION = 0.05

#: exceptions a replicate may raise that count as a *failed replicate*
#: (anything else is a bug and propagates)
REPLICATE_ERRORS: tuple[type[BaseException], ...] = (EstimationError, np.linalg.LinAlgError, FloatingPointError)


# --------------------------------------------------------------------------- replicate mode
_IN_REPLICATE: contextvars.ContextVar[bool] = contextvars.ContextVar("causal_hcc_in_replicate", default=False)


def in_replicate() -> bool:
    """True while a bootstrap replicate is being fitted.

    Components may skip work whose result the bootstrap discards (balance
    tables, propensity histograms, weight summaries, curve tables of
    strategies without curves): only ``estimates`` (and ``curves``) of a
    replicate are read.
    """
    return _IN_REPLICATE.get()


_INFINITE_FAILS: contextvars.ContextVar[bool] = contextvars.ContextVar("causal_hcc_infinite_fails", default=False)


def infinite_fails() -> bool:
    """True in a bootstrap replicate or inside :func:`failing_on_infinite`: a
    fit whose treatment coefficient is infinite (monotone likelihood) then
    fails, to be counted, instead of returning R's estimate with a warning."""
    return _IN_REPLICATE.get() or _INFINITE_FAILS.get()


@contextlib.contextmanager
def failing_on_infinite() -> Iterator[None]:
    """Context in which an infinite treatment coefficient is an EstimationError
    (Monte Carlo replicates: a mean over estimates of +-infinity means nothing;
    the replicate counts as failed, by reason)."""
    token = _INFINITE_FAILS.set(True)
    try:
        yield
    finally:
        _INFINITE_FAILS.reset(token)


# --------------------------------------------------------------------------- seeds and indices
def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """One independent :class:`numpy.random.SeedSequence` per replicate.

    ``SeedSequence(seed).spawn(replicates)``: child ``b`` does not depend on
    how many replicates are run after it, so the first 100 replicates of a
    1,000-replicate run are those of a 100-replicate run.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"bootstrap: seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed)).spawn(int(replicates))


def replicate_indices(seed_seq: np.random.SeedSequence, n: int) -> np.ndarray:
    """Row positions of one bootstrap replicate: ``n`` draws with replacement."""
    rng = np.random.Generator(np.random.PCG64(seed_seq))
    return rng.integers(0, n, size=n, dtype=np.int64)


def _cluster_members(cohort: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patient positions sorted by cluster, start of each cluster in it, cluster sizes).

    Clusters are numbered in order of first appearance, so with one patient
    per cluster the draws are exactly those of the patient bootstrap."""
    _, first, inv = np.unique(np.asarray(cohort.cluster), return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], dtype=np.intp)
    rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
    codes = rank[inv]
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return order, starts, sizes


def _take_clusters(cohort: Any, draw: np.ndarray) -> Any:
    """The cohort of the clusters at positions ``draw`` (duplicates allowed), each draw a new cluster."""
    order, starts, sizes = _cluster_members(cohort)
    lens = sizes[draw]
    within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    rows = order[np.repeat(starts[draw], lens) + within]
    sub = cohort.take(rows)
    # Cohort.take keeps the labels; a cluster drawn twice must be two clusters
    labels = np.repeat(np.arange(draw.shape[0]), lens)
    labels.setflags(write=False)
    object.__setattr__(sub, "cluster", labels)
    return sub


def resampling_unit(cohort: Any) -> str:
    """What a replicate resamples: ``"patient"`` or ``"cluster(NAME)"``."""
    if getattr(cohort, "cluster", None) is None:
        return "patient"
    return f"cluster({(getattr(cohort, 'roles', None) or {}).get('cluster') or 'cluster'})"


def replicate_cohort(cohort: Any, seed_seq: np.random.SeedSequence) -> Any:
    """One bootstrap replicate of ``cohort``: ``n`` patients drawn with
    replacement, or, with a ``cluster`` role, ``G`` clusters drawn with
    replacement (all their patients; a cluster drawn twice is two clusters)."""
    if getattr(cohort, "cluster", None) is None:
        return cohort.take(replicate_indices(seed_seq, cohort.n))
    G = int(np.unique(np.asarray(cohort.cluster)).shape[0])
    return _take_clusters(cohort, replicate_indices(seed_seq, G))


def clone_strategy(strategy: Any) -> Any:
    """A fresh, unfitted copy of a :class:`~causal_hcc.strategies.Strategy`.

    Designs and adjustments keep fitted state (``data_``, ``output_``); a
    replicate must neither read nor overwrite the point fit's state, and a
    copy sent to a worker process should not carry it.
    """
    from causal_hcc.strategies import Strategy

    d, a = strategy.design, strategy.adjustment
    return Strategy(type(d)(**d.get_params()), type(a)(**a.get_params()), strategy.label,
                    variance=getattr(strategy, "variance", "default"),
                    confounders=getattr(strategy, "confounders", None),
                    bootstrap_ci=getattr(strategy, "bootstrap_ci", None))


def _check_replicates(replicates: Any) -> int:
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 2:
        raise SpecError(f"bootstrap: replicates must be an integer >= 2, got {replicates!r}")
    return int(replicates)


_NUMBER = re.compile(r"(?<![\w'])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w'])")


def _failure_reason(exc: BaseException) -> str:
    """The counted reason of a failed replicate: the error's one-line message.

    Messages of EstimationError name the problem ("coxph: covariate
    'treatment' has no variation within risk sets"); numbers in them are
    replaced by ``#`` so that equal causes share a reason. Other errors are
    counted by type and message.
    """
    msg = str(exc) if isinstance(exc, EstimationError) else f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    # numbers vary between replicates ("only 3 events", "only 4 events"): one reason, read as "only … events"
    # (never a bare '#' in a sentence)
    return _NUMBER.sub("…", msg)


# --------------------------------------------------------------------------- what one replicate records
def _key(e: EffectEstimate) -> tuple[str, float | None]:
    return (e.measure, None if e.time is None else float(e.time))


def _keys(estimates: Sequence[EffectEstimate]) -> list[tuple[str, float | None, int]]:
    """(measure, time, occurrence): a strategy may report two numbers of one
    measure (the paper preset: univariate and multivariable HR), in order."""
    seen: dict[tuple[str, float | None], int] = {}
    out = []
    for e in estimates:
        k = _key(e)
        out.append((*k, seen.get(k, 0)))
        seen[k] = seen.get(k, 0) + 1
    return out


def _value(e: EffectEstimate) -> float:
    """The replicate statistic: log HR for ``hr``, the estimate otherwise."""
    if is_ratio(e.measure):
        return math.log(e.estimate) if e.estimate > 0 else math.nan
    return float(e.estimate)


@dataclass
class _Layout:
    """Where each number of the point output lives in a replicate's vector."""

    keys: list[tuple[str, float | None, int]]
    curve_groups: list[str]
    curve_times: list[np.ndarray]

    @classmethod
    def of(cls, point: StrategyOutput) -> "_Layout":
        keys = _keys(point.estimates)
        groups: list[str] = []
        times: list[np.ndarray] = []
        if point.curves is not None:
            tab = point.curves.table
            for g in pd.unique(tab["group"]):
                groups.append(str(g))
                times.append(np.asarray(tab.loc[tab["group"] == g, "time"], dtype=float))
        return cls(keys, groups, times)

    @property
    def width(self) -> int:
        return len(self.keys) + sum(len(t) for t in self.curve_times)

    def record(self, out: StrategyOutput) -> np.ndarray:
        """Flatten one replicate's output; NaN where it has no such number."""
        v = np.full(self.width, np.nan)
        pos = {k: i for i, k in enumerate(self.keys)}
        for e, k in zip(out.estimates, _keys(out.estimates)):
            i = pos.get(k)
            if i is not None:
                v[i] = _value(e)
        if self.curve_groups and out.curves is not None:
            tab = out.curves.table
            off = len(self.keys)
            grp = tab["group"].to_numpy()
            tt = tab["time"].to_numpy(dtype=float)
            ss = tab["surv"].to_numpy(dtype=float)
            for g, t_at in zip(self.curve_groups, self.curve_times):
                m = grp == g
                if m.any():
                    tg, sg = tt[m], ss[m]
                    order = np.argsort(tg, kind="stable")
                    tg, sg = tg[order], sg[order]
                    j = np.searchsorted(tg, t_at, side="right") - 1
                    first = 0.0 if getattr(out.curves, "kind", "survival") == "cumulative_incidence" else 1.0
                    v[off:off + len(t_at)] = np.where(j >= 0, sg[np.maximum(j, 0)], first)
                off += len(t_at)
        return v


# --------------------------------------------------------------------------- running replicates
@dataclass(frozen=True)
class _Job:
    """One (strategy, outcome) to fit on every replicate."""

    key: Hashable
    strategy: Any
    outcome: str
    layout: _Layout


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


def single_threaded_blas() -> Any:
    """Context manager limiting BLAS/OpenMP to one thread.

    Two reasons: (1) identical numbers whichever backend runs a replicate —
    a multi-threaded BLAS may sum in another order than the single-threaded
    one that loky and Dask workers get, so serial and parallel runs would
    differ in the last bits; (2) speed — replicates are small matrices, where
    BLAS threads cost more than they save, and parallelism is across
    replicates already.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _fit_replicates(cohort, jobs, fresh, targets, seeds, n, rows) -> None:
    for ss in seeds:
        sub = replicate_cohort(cohort, ss)
        rec: list[np.ndarray | str] = []
        for job, strat in zip(jobs, fresh):
            try:
                with np.errstate(all="ignore"):
                    out = strat.fit(sub, job.outcome, targets)
            except REPLICATE_ERRORS as exc:
                rec.append(_failure_reason(exc))
                continue
            rec.append(job.layout.record(out))
        rows.append(rec)


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


# --------------------------------------------------------------------------- summarising
def summarise_replicates(
    point: StrategyOutput,
    rows: Sequence[np.ndarray | str],
    *,
    seed: int,
    alpha: float,
    layout: _Layout | None = None,
    ci: str = "percentile",
    jackknife: np.ndarray | None = None,
) -> StrategyOutput:
    """Turn replicate vectors into bootstrap SEs, CIs and p-values.

    ``ci`` is the interval of the estimates (on the log scale for HR):
    ``percentile``; ``normal`` (estimate +/- z * bootstrap SE); or ``bca``
    (bias-corrected and accelerated, Efron 1987; the acceleration comes from
    ``jackknife``, the leave-one-patient-out values, one row per patient).
    Curve bands are always percentile. Returns a copy of ``point`` (the
    caller's object is not modified) whose estimates carry
    ``variance_method="bootstrap"`` and whose diagnostics hold
    ``bootstrap``: replicates, failed, failures (reason -> count), undefined
    (estimate -> count), seed, ci.

    References
    ----------
    Efron B. Better bootstrap confidence intervals. JASA 1987;82:171-85.
    Efron B, Tibshirani RJ. An Introduction to the Bootstrap. 1993, ch. 14.
    """
    if ci not in BOOTSTRAP_CIS:
        raise SpecError(f"bootstrap ci must be one of {', '.join(BOOTSTRAP_CIS)}, got {ci!r}")
    if ci == "bca" and jackknife is None:
        raise SpecError("bootstrap ci 'bca' needs the jackknife values (bootstrap_many computes them)")
    from scipy.stats import norm

    layout = layout or _Layout.of(point)
    B = len(rows)
    failures: dict[str, int] = {}
    ok = [r for r in rows if not isinstance(r, str)]
    for r in rows:
        if isinstance(r, str):
            failures[r] = failures.get(r, 0) + 1
    M = np.vstack(ok) if ok else np.full((0, layout.width), np.nan)
    lo_q, hi_q = alpha / 2, 1 - alpha / 2
    z = float(norm.ppf(1 - alpha / 2))

    def stats(col: np.ndarray) -> tuple[float, float, float, int]:
        v = col[np.isfinite(col)]
        if v.size < 2:
            return math.nan, math.nan, math.nan, int(col.size - v.size)
        lo, hi = np.quantile(v, [lo_q, hi_q])
        return float(np.std(v, ddof=1)), float(lo), float(hi), int(col.size - v.size)

    new_est: list[EffectEstimate] = []
    undefined: dict[str, int] = {}
    for i, e in enumerate(point.estimates):
        se, lo, hi, n_undef = stats(M[:, i])
        if n_undef:
            undefined[_label_key(layout.keys[i])] = n_undef
        theta = _value(e)
        if ci == "normal" and math.isfinite(se) and math.isfinite(theta):
            lo, hi = theta - z * se, theta + z * se
        elif ci == "bca":
            lo, hi = _bca_limits(M[:, i], theta, jackknife[:, i], alpha)
        if is_ratio(e.measure):
            lo, hi = math.exp(lo) if math.isfinite(lo) else math.nan, math.exp(hi) if math.isfinite(hi) else math.nan
        stat = theta / se if (se > 0 and math.isfinite(theta)) else math.nan
        p = float(2 * norm.sf(abs(stat))) if math.isfinite(stat) else math.nan
        new_est.append(e.replace(se=se, ci_lower=lo, ci_upper=hi, p_value=p, variance_method="bootstrap"))

    curves = point.curves
    if curves is not None and layout.curve_groups:
        tab = curves.table.copy()
        off = len(layout.keys)
        for g, t_at in zip(layout.curve_groups, layout.curve_times):
            block = M[:, off:off + len(t_at)]
            off += len(t_at)
            m = (tab["group"] == g).to_numpy()
            if block.shape[0] >= 2:
                # np.quantile is vectorised; nanquantile loops over columns in Python
                q = np.nanquantile if np.isnan(block).any() else np.quantile
                se = np.nanstd(block, axis=0, ddof=1)
                lo, hi = q(block, [lo_q, hi_q], axis=0)
            else:
                se = lo = hi = np.full(len(t_at), np.nan)
            tab.loc[m, "se"] = se
            tab.loc[m, "ci_lower"] = lo
            tab.loc[m, "ci_upper"] = hi
        curves = SurvivalCurves(tab, method=curves.method, variance_method="bootstrap",
                                time_origin=curves.time_origin, kind=getattr(curves, "kind", "survival"))

    n_failed = B - len(ok)
    diag = dict(point.diagnostics)
    diag["bootstrap"] = {"replicates": B, "failed": n_failed, "failures": failures, "undefined": undefined,
                         "seed": int(seed), "ci": ci, "se": "sd of replicates (log scale for hr and risk_ratio)"}
    warnings = list(point.warnings)
    if B and n_failed / B > FAILURE_WARNING_FRACTION:
        why = "; ".join(f"{k} ({v})" for k, v in sorted(failures.items(), key=lambda kv: -kv[1]))
        warnings.append(f"bootstrap: {n_failed} of {B} replicates failed ({why}); SE and CI use the "
                        f"{B - n_failed} that succeeded")
    notes = list(point.notes) + [
        f"SE: SD of {B - n_failed} whole-pipeline bootstrap replicates (seed {seed}); CI: {_CI_NAMES[ci]}"
        + (" on the log-HR scale" if any(e.measure == "hr" for e in point.estimates)
           else " on the log scale for ratios" if any(is_ratio(e.measure) for e in point.estimates) else "")
    ]
    return dataclasses.replace(point, estimates=new_est, curves=curves, diagnostics=diag,
                               warnings=warnings, notes=notes)


BOOTSTRAP_CIS: tuple[str, ...] = ("percentile", "normal", "bca")
_CI_NAMES = {"percentile": "percentile", "normal": "normal with the bootstrap SE",
             "bca": "bias-corrected and accelerated (BCa)"}


def _bca_limits(reps: np.ndarray, theta: float, jack: np.ndarray, alpha: float) -> tuple[float, float]:
    """BCa limits (Efron 1987) of one statistic; NaN when undefined.

    z0 = Phi^-1(share of replicates below the estimate, ties counted half); acceleration
    a = sum(d^3) / (6 (sum d^2)^1.5) with d = mean(jackknife) - jackknife.
    """
    from scipy.stats import norm

    v = reps[np.isfinite(reps)]
    j = jack[np.isfinite(jack)]
    if v.size < 2 or j.size < 3 or not math.isfinite(theta):
        return math.nan, math.nan
    share = float(np.mean(v < theta) + np.mean(v <= theta)) / 2.0  # mid-rank for ties (as scipy)
    if share <= 0.0 or share >= 1.0:
        return math.nan, math.nan
    z0 = float(norm.ppf(share))
    d = j.mean() - j
    den = 6.0 * float(np.sum(d ** 2)) ** 1.5
    a = float(np.sum(d ** 3)) / den if den > 0 else 0.0
    out = []
    for q in (alpha / 2, 1 - alpha / 2):
        zq = z0 + float(norm.ppf(q))
        out.append(float(np.quantile(v, float(norm.cdf(z0 + zq / (1 - a * zq))))))
    return out[0], out[1]


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


def _label_key(k: tuple[str, float | None, int]) -> str:
    return (k[0] if k[1] is None else f"{k[0]}@{k[1]:g}") + (f"#{k[2] + 1}" if k[2] else "")


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
