"""What one bootstrap replicate is, fits and records, and how replicates are summarised.

Shared by :mod:`causal_hcc.inference` (the whole-pipeline bootstrap, per
replicate, joblib/Dask), :mod:`causal_hcc.batched` (all replicates of a
baseline IPTW strategy at once) and the estimators that behave differently
inside a replicate (:func:`in_replicate`, :func:`infinite_fails`). It
imports none of them, so ``adjust/propensity``, ``batched`` and
``inference`` no longer import each other (they did, in a circle).
:mod:`causal_hcc.inference` re-exports every public name defined here.

See :mod:`causal_hcc.inference` for the bootstrap's choices (SE, CI,
p-value, failed replicates, determinism) and references.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Hashable, Iterator, Sequence

import numpy as np
import pandas as pd

from causal_hcc.errors import EstimationError, SpecError
from causal_hcc.results import ANALYTIC_SE_NOTES, EffectEstimate, StrategyOutput, SurvivalCurves, is_ratio, without_note

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

_NUMBER = re.compile(r"(?<![\w'])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w'])")


def _failure_reason(exc: BaseException) -> str:
    """The counted reason of a failed replicate: the error's one-line message.

    Messages of EstimationError name the problem ("coxph: covariate
    'treatment' has no variation within risk sets"); numbers in them are
    replaced by ``…`` so that equal causes share a reason. Other errors are
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
    from causal_hcc.core._dist import norm_ppf, norm_sf

    layout = layout or _Layout.of(point)
    B = len(rows)
    failures: dict[str, int] = {}
    ok = [r for r in rows if not isinstance(r, str)]
    for r in rows:
        if isinstance(r, str):
            failures[r] = failures.get(r, 0) + 1
    M = np.vstack(ok) if ok else np.full((0, layout.width), np.nan)
    lo_q, hi_q = alpha / 2, 1 - alpha / 2
    z = float(norm_ppf(1 - alpha / 2))

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
        if is_ratio(e.measure) and not math.isfinite(theta) and e.note:
            # no finite point estimate (monotone likelihood): replicates whose coefficient is infinite
            # fail, so the others would give an interval around the wrong place; keep the point's row
            new_est.append(e.replace(note=e.note + f"; not bootstrapped ({len(ok)} of {B} replicates had a "
                                                   f"finite estimate)"))
            continue
        if ci == "normal" and math.isfinite(se) and math.isfinite(theta):
            lo, hi = theta - z * se, theta + z * se
        elif ci == "bca":
            lo, hi = _bca_limits(M[:, i], theta, jackknife[:, i], alpha)
        if is_ratio(e.measure):
            lo, hi = math.exp(lo) if math.isfinite(lo) else math.nan, math.exp(hi) if math.isfinite(hi) else math.nan
        stat = theta / se if (se > 0 and math.isfinite(theta)) else math.nan
        p = float(2 * norm_sf(abs(stat))) if math.isfinite(stat) else math.nan
        # the bootstrap refits the weight models: the analytic SE's caveat no longer applies
        new_est.append(e.replace(se=se, ci_lower=lo, ci_upper=hi, p_value=p, variance_method="bootstrap",
                                 note=without_note(e.note, *ANALYTIC_SE_NOTES)))

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
    from causal_hcc.core._dist import norm_cdf, norm_ppf

    v = reps[np.isfinite(reps)]
    j = jack[np.isfinite(jack)]
    if v.size < 2 or j.size < 3 or not math.isfinite(theta):
        return math.nan, math.nan
    share = float(np.mean(v < theta) + np.mean(v <= theta)) / 2.0  # mid-rank for ties (as scipy)
    if share <= 0.0 or share >= 1.0:
        return math.nan, math.nan
    z0 = float(norm_ppf(share))
    d = j.mean() - j
    den = 6.0 * float(np.sum(d ** 2)) ** 1.5
    a = float(np.sum(d ** 3)) / den if den > 0 else 0.0
    out = []
    for q in (alpha / 2, 1 - alpha / 2):
        zq = z0 + float(norm_ppf(q))
        out.append(float(np.quantile(v, float(norm_cdf(z0 + zq / (1 - a * zq))))))
    return out[0], out[1]


def _label_key(k: tuple[str, float | None, int]) -> str:
    return (k[0] if k[1] is None else f"{k[0]}@{k[1]:g}") + (f"#{k[2] + 1}" if k[2] else "")
