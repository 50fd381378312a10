"""Result types with a fixed schema.

Column names never depend on alpha or options (cf. lifelines #1567): a CI is
always ``ci_lower``/``ci_upper`` and the confidence level is stored once on
the analysis. For ``measure == "hr"`` the estimate is the hazard ratio and
``se`` is the standard error of log(HR) (as R's ``coxph`` reports
``se(coef)``); the CI is ``exp(log HR +/- z se)``. The same holds for every
ratio measure (:data:`RATIO_MEASURES`: ``cause_specific_hr``,
``subdistribution_hr``, ``cif_ratio``, ``risk_ratio`` = risk treated / risk
untreated at a ``survival_at`` time). For differences (survival, RMST,
median, cumulative incidence) ``se`` is on the estimate's own scale.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from causal_hcc import disclosure as _disc
from causal_hcc.errors import closest

#: ``estimates.csv`` columns, in order (design.md contract).
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "strategy", "design", "adjustment", "estimand", "outcome", "measure", "time",
    "estimate", "se", "ci_lower", "ci_upper", "p_value", "variance_method",
    "n", "n_treated", "events",
)

MEASURES: tuple[str, ...] = ("hr", "survival_difference", "rmst_difference", "median_difference",
                              "cif_difference", "cif_ratio", "cause_specific_hr", "subdistribution_hr", "risk_ratio")
#: measures that are ratios: ``se`` is the SE of their logarithm and the CI is exp(log +/- z se)
#: (``cif_ratio`` = treated / untreated cumulative incidence of the event of interest)
RATIO_MEASURES: frozenset[str] = frozenset({"hr", "cif_ratio", "cause_specific_hr", "subdistribution_hr",
                                           "risk_ratio"})
#: hazard ratios (a Cox coefficient; conditional or marginal by the adjustment, as ``hr``)
HAZARD_RATIO_MEASURES: frozenset[str] = frozenset({"hr", "cause_specific_hr", "subdistribution_hr"})


def is_ratio(measure: str) -> bool:
    """True for measures reported as ratios (log-scale SE, CI and bootstrap/pooling)."""
    return measure in RATIO_MEASURES
VARIANCE_METHODS: tuple[str, ...] = (
    "model", "robust", "cluster_robust", "influence_function", "bootstrap", "greenwood", "rubin", "none",
    "profile_likelihood",
)

#: Columns of every survival-curve table (adjustedCurves' fixed schema).
CURVE_COLUMNS: tuple[str, ...] = ("time", "group", "surv", "se", "ci_lower", "ci_upper", "n_at_risk")

#: File of a run's output folder that holds the survival curves (on the disclosure grid).
CURVES_FILE = "curves.parquet"
#: Count columns of ``estimates.csv`` that are suppressed (left empty) when below ``min_cell``.
COUNT_COLUMNS: tuple[str, ...] = ("n", "n_treated", "events")


@dataclass(frozen=True)
class EffectEstimate:
    """One number of the comparison grid: a strategy's effect on one outcome.

    ``strategy``, ``design``, ``adjustment`` and ``outcome`` may be left empty
    by an estimator; the pipeline fills them in.
    """

    measure: str
    estimate: float
    se: float = math.nan
    ci_lower: float = math.nan
    ci_upper: float = math.nan
    p_value: float = math.nan
    variance_method: str = "none"
    time: float | None = None
    n: int = 0
    n_treated: int = 0
    events: int = 0
    strategy: str = ""
    design: str = ""
    adjustment: str = ""
    outcome: str = ""
    #: short label of the causal question (:attr:`causal_hcc.estimands.Estimand.label`)
    estimand: str = ""
    #: why a number of this row is missing or of another kind than usual (e.g. an infinite
    #: maximum-likelihood estimate: no estimate, an open interval, no p-value); not a column of
    #: ``estimates.csv`` (whose columns are a contract), written to ``results.json`` when not empty
    note: str = ""

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}; expected one of {', '.join(MEASURES)}")
        if self.variance_method not in VARIANCE_METHODS:
            raise ValueError(
                f"unknown variance_method {self.variance_method!r}; expected one of {', '.join(VARIANCE_METHODS)}"
            )

    def replace(self, **changes: Any) -> "EffectEstimate":
        return dataclasses.replace(self, **changes)

    def as_row(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in ESTIMATE_COLUMNS}


@functools.lru_cache(maxsize=64)
def normal_quantile(q: float) -> float:
    """Standard normal quantile (cached: called for every estimate of every bootstrap replicate)."""
    return statistics.NormalDist().inv_cdf(q)


def two_sided_p(z: float) -> float:
    """Two-sided normal p-value, 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt 2)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


#: the row note of an estimate whose analytic SE treats estimated weights (propensity, matching, inverse
#: probability of censoring) as known; a whole-pipeline bootstrap, which refits the weight models in every
#: replicate, replaces it (:func:`causal_hcc.inference.summarise_replicates` drops the note)
WEIGHTS_AS_KNOWN = ("SE treats the estimated weights as known (their models' uncertainty is not included: "
                    "variance: bootstrap refits them in every replicate)")

#: the same for AIPTW's influence-function SE (propensity, outcome and censoring models as known)
NUISANCE_AS_KNOWN = ("SE treats the fitted propensity, outcome and censoring models as known (riskRegression's "
                     "known.nuisance = TRUE: variance: bootstrap refits them in every replicate)")
#: the note of a Firth-penalised HR whose interval is the robust Wald one at the penalised estimate (rows without
#: a likelihood: trials, clones, clusters); coverage measured when the unpenalised likelihood is monotone
#: (docs/inference.md, benchmarks/firth_iptw_coverage.py)
FIRTH_WALD_CAVEAT = ("robust Wald interval at the penalised estimate: not valid when the unpenalised likelihood is "
                     "monotone (e.g. no events in one arm), where it covered the truth in 22-81% of simulated "
                     "samples of 20 patients (docs/inference.md)")
#: row notes that describe an analytic SE and no longer apply once the whole-pipeline bootstrap replaces it
ANALYTIC_SE_NOTES: tuple[str, ...] = (WEIGHTS_AS_KNOWN, NUISANCE_AS_KNOWN, FIRTH_WALD_CAVEAT)


def with_note(e: "EffectEstimate", part: str) -> "EffectEstimate":
    """``e`` with ``part`` added to its note (parts are joined by '; ')."""
    return e.replace(note=f"{e.note}; {part}" if e.note else part)


def without_note(note: str, *parts: str) -> str:
    """``note`` without the ``parts`` (see :func:`with_note`)."""
    return "; ".join(x for x in note.split("; ") if x not in parts)


def _exp(x: float) -> float:
    """exp that returns inf instead of raising OverflowError."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def wald_estimate(
    measure: str,
    estimate: float,
    se: float,
    *,
    alpha: float = 0.05,
    log_scale: bool = False,
    null: float | None = None,
    **kw: Any,
) -> EffectEstimate:
    """Build an :class:`EffectEstimate` with a Wald CI and two-sided p-value.

    With ``log_scale`` (hazard ratios) ``estimate`` is the ratio and ``se`` the
    SE of its logarithm; the CI is symmetric on the log scale and the p-value
    tests log(ratio) = 0.
    """
    z = normal_quantile(1 - alpha / 2)
    if log_scale:
        b = math.log(estimate) if estimate > 0 else -math.inf
        lo, hi = _exp(b - z * se), _exp(b + z * se)  # a monotone-likelihood fit (R warns) has a huge SE
        stat = b / se if se > 0 else math.nan
    else:
        lo, hi = estimate - z * se, estimate + z * se
        stat = (estimate - (null or 0.0)) / se if se > 0 else math.nan
    p = two_sided_p(stat) if np.isfinite(stat) else math.nan
    return EffectEstimate(measure=measure, estimate=float(estimate), se=float(se), ci_lower=float(lo),
                          ci_upper=float(hi), p_value=p, **kw)


@dataclass(frozen=True)
class SurvivalCurves:
    """Survival curves per group in one long table with :data:`CURVE_COLUMNS`.

    ``table`` has one row per (group, time). ``group`` is a string such as
    ``"treated"``/``"untreated"`` (or a strategy's arm name). ``method`` says
    how the curves were obtained (``"km"``, ``"iptw-km"``, ``"g-formula"``…)
    and ``variance_method`` how ``se`` was computed.
    """

    table: pd.DataFrame
    method: str = "km"
    variance_method: str = "greenwood"
    time_origin: float = 0.0
    #: times of the numbers-at-risk table (set on curves put on a grid by
    #: :func:`grid_curves`; empty for a full-resolution table)
    risk_times: tuple[float, ...] = ()
    #: what ``surv`` holds: ``"survival"`` (a survival probability) or ``"cumulative_incidence"``
    #: (outcomes with competing events: one group per arm and cause, ``"<arm>: cause <k>"``,
    #: ``surv`` = the cumulative incidence of cause k, 0 at the first time)
    kind: str = "survival"

    def __post_init__(self) -> None:
        missing = [c for c in CURVE_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"SurvivalCurves table lacks columns {missing}")

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


@dataclass
class StrategyOutput:
    """What one strategy returns for one outcome.

    ``diagnostics`` must be JSON-serialisable (numbers, strings, lists,
    dicts): it goes to ``results.json`` and the report. ``warnings`` are
    statistical caveats (positivity, low ESS, few events per variable) that
    the report lists; they never stop a run.
    """

    estimates: list[EffectEstimate] = field(default_factory=list)
    curves: SurvivalCurves | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: estimand label -> full estimand (``Estimand.to_dict()``) of the rows above
    estimands: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StrategyRecord:
    """One strategy x outcome as stored in ``results.json`` (aggregate only)."""

    strategy: str
    design: str
    adjustment: str
    outcome: str
    estimates: list[EffectEstimate]
    curves: SurvivalCurves | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: estimand label -> full estimand object (as a dict) of this record's rows
    estimands: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "design": self.design, "adjustment": self.adjustment,
            "outcome": self.outcome,
            "estimates": [_clean({**e.as_row(), **({"note": e.note} if e.note else {})}) for e in self.estimates],
            # the table itself is in curves.parquet (AnalysisResult.write_curves), keyed by record
            "curves": None if self.curves is None else {
                "method": self.curves.method, "variance_method": self.curves.variance_method,
                "kind": self.curves.kind,
                "time_origin": _num(self.curves.time_origin),
                "risk_times": [_num(float(t)) for t in self.curves.risk_times],
                "file": CURVES_FILE, "rows": int(len(self.curves.table)),
            },
            "diagnostics": _clean(self.diagnostics), "warnings": list(self.warnings), "notes": list(self.notes),
            "error": self.error, "estimands": _clean(self.estimands),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StrategyRecord":
        curves = None
        if d.get("curves"):
            c = d["curves"]
            # results.json of earlier versions held the table inline; now it is read from curves.parquet
            tab = pd.DataFrame(c["table"]) if "table" in c else pd.DataFrame(columns=list(CURVE_COLUMNS))
            curves = SurvivalCurves(tab.astype({"time": float, "surv": float}),
                                    method=c["method"], variance_method=c["variance_method"],
                                    time_origin=c.get("time_origin", 0.0),
                                    risk_times=tuple(float(t) for t in c.get("risk_times") or ()),
                                    kind=c.get("kind", "survival"))
        ests = [EffectEstimate(**{k: (math.nan if v is None and k in _FLOAT_FIELDS else v) for k, v in e.items()
                                  if k in _ESTIMATE_FIELDS})
                for e in d["estimates"]]
        return cls(d["strategy"], d["design"], d["adjustment"], d["outcome"], ests, curves,
                   d.get("diagnostics", {}), d.get("warnings", []), d.get("notes", []), d.get("error"),
                   d.get("estimands", {}))


_FLOAT_FIELDS = {"estimate", "se", "ci_lower", "ci_upper", "p_value"}


def _suppress_estimate(e: EffectEstimate, min_cell: int) -> EffectEstimate:
    """The estimate with its counts disclosed: None for 1 .. min_cell-1 patients, else rounded to min_cell.

    ``n_treated`` is also hidden when the untreated count ``n - n_treated``
    is small (it would follow by subtraction).
    """
    if min_cell <= 0:
        return e
    ch: dict[str, Any] = {}
    for c in COUNT_COLUMNS:
        v = _disc.round_count(getattr(e, c), min_cell)
        ch[c] = None if isinstance(v, str) else v
    n, nt = e.n, e.n_treated
    if isinstance(n, (int, np.integer)) and isinstance(nt, (int, np.integer)) and _disc.is_small(n - nt, min_cell):
        ch["n_treated"] = None
    return e.replace(**ch)


_NUMBER_FIELDS = ("estimate", "se", "ci_lower", "ci_upper", "p_value")


def _not_finite_notes(e: EffectEstimate) -> list[str]:
    """Notes for the infinite numbers of a row (written as empty cells / null): what and why."""
    where = f"{e.measure}" + (f" at {e.time:g}" if e.time is not None else "")
    out = []
    for c in _NUMBER_FIELDS:
        v = getattr(e, c)
        if isinstance(v, (float, np.floating)) and math.isinf(v):
            out.append(f"{where}: {c} is {'+' if v > 0 else '-'}infinite (e.g. a monotone likelihood or an "
                       "overflow on extreme times); written as empty")
    return out


def _withhold(e: EffectEstimate) -> EffectEstimate:
    return e.replace(estimate=math.nan, se=math.nan, ci_lower=math.nan, ci_upper=math.nan, p_value=math.nan)


_ESTIMATE_FIELDS = {f.name for f in dataclasses.fields(EffectEstimate)}


def _num(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _clean(obj: Any) -> Any:
    """Make diagnostics JSON-safe: NaN/inf -> None, numpy -> python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, pd.DataFrame):
        return {"columns": list(map(str, obj.columns)), "rows": _clean(obj.to_numpy().tolist())}
    return _num(obj)


@dataclass
class AnalysisResult:
    """Everything a run produced, aggregate numbers only.

    ``records`` holds one :class:`StrategyRecord` per strategy x outcome;
    ``cohort`` aggregate descriptions (counts, Table 1, attrition); ``truth``
    the twin's known effect (None for user data); ``provenance`` spec hash,
    data hash, seed, package versions, date.

    A data object only: presentation (``Summary``, figures, the report) lives
    in :mod:`causal_hcc.report` and takes the result as its argument
    (``causal_hcc.report.summary(result)``, ``plot_forest(result)``), so this
    module imports nothing from the report and the report's dependencies
    (sensitivity, strategies) never import back into it.

    In memory the records keep the full-resolution curves and exact counts
    (for further computation). Everything that is *written* goes through
    :meth:`disclosed`: curves on the disclosure grid and counts of 1 ..
    ``min_cell - 1`` patients suppressed (:mod:`causal_hcc.disclosure`).
    ``results.json`` and ``estimates.csv`` are written from it, the curves to
    ``curves.parquet`` (:meth:`write_curves`), and the report is drawn from
    it; a result read back with :meth:`load` is already disclosed.
    """

    study: str
    spec: dict[str, Any]
    records: list[StrategyRecord]
    cohort: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    alpha: float = 0.05
    #: counts of 1 .. min_cell-1 patients are suppressed in everything written (0 = off)
    min_cell: int = 0
    #: True for a result whose curves are on the grid and whose counts are suppressed
    is_disclosed: bool = False
    _grid_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def estimates(self) -> list[EffectEstimate]:
        return [e for r in self.records for e in r.estimates]

    def estimates_frame(self) -> pd.DataFrame:
        """The ``estimates.csv`` table: exactly :data:`ESTIMATE_COLUMNS` (disclosed: small counts empty)."""
        rows = [e.as_row() for e in self.disclosed().estimates]
        df = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
        if self.min_cell > 0:  # suppressed counts are empty cells: a nullable integer column, not floats
            for c in COUNT_COLUMNS:
                df[c] = pd.array(df[c].tolist(), dtype="Int64")
        return df

    def to_frame(self) -> pd.DataFrame:
        return self.estimates_frame()

    # -- disclosure control ----------------------------------------------------
    def curve_times(self) -> list[float]:
        """The requested times every curve grid contains (``survival_at`` and ``rmst_tau``)."""
        est = (self.spec or {}).get("estimands") or {}
        out = [float(t) for t in est.get("survival_at") or []]
        if est.get("rmst_tau") is not None:
            out.append(float(est["rmst_tau"]))
        return out

    def disclosed(self) -> "AnalysisResult":
        """This result as it may be written: curves on the grid, small counts suppressed.

        Curves: at most :data:`causal_hcc.disclosure.GRID_POINTS` times plus
        the requested ``survival_at`` and ``rmst_tau`` (step-function values
        at those times), cut where fewer than ``min_cell`` remain at risk.
        Counts of 1 .. ``min_cell - 1`` patients in diagnostics, the cohort
        summary and extras become ``"<min_cell"``; in the estimates they
        become None (an empty cell of ``estimates.csv``). The paper's own
        published numbers (``extras["audit"]``, ``extras["published"]``) are
        public already and are kept.
        """
        if self.is_disclosed:
            return self
        m = int(self.min_cell or 0)
        times = tuple(self.curve_times())
        records = []
        for r in self.records:
            curves = None
            if r.curves is not None:
                key = (id(r.curves), times, m)
                hit = self._grid_cache.get(key)
                if hit is None or hit[0] is not r.curves:
                    hit = (r.curves, _disc.grid_curves(r.curves, extra_times=times, min_cell=m, alpha=self.alpha))
                    self._grid_cache[key] = hit
                curves = hit[1]
            estimates, notes = self._disclosed_estimates(r, m)
            records.append(dataclasses.replace(
                r, estimates=estimates, curves=curves,
                diagnostics=_disc.suppress(_clean(r.diagnostics), m),
                warnings=[_disc.suppress_text(str(w), m) for w in r.warnings],
                notes=[_disc.suppress_text(str(w), m) for w in [*r.notes, *notes]],
                error=None if r.error is None else _disc.suppress_text(r.error, m)))
        public = {k: v for k, v in (self.extras or {}).items() if k in ("audit", "published")}
        extras = {**_disc.suppress(_clean({k: v for k, v in (self.extras or {}).items() if k not in public}), m),
                  **_clean(public)}
        out = dataclasses.replace(self, records=records, cohort=_disc.suppress(_clean(self.cohort), m),
                                  warnings=[_disc.suppress_text(str(w), m) for w in self.warnings], extras=extras,
                                  min_cell=m, is_disclosed=True)
        out._grid_cache = {}
        return out

    @staticmethod
    def _disclosed_estimates(r: "StrategyRecord", m: int) -> tuple[list[EffectEstimate], list[str]]:
        """The record's rows as written, and the notes saying what was withheld or emptied and why."""
        notes: list[str] = []
        hidden: set[float] = set()
        if m > 1 and r.curves is not None:
            ts = sorted({float(e.time) for e in r.estimates
                         if e.measure in _disc.TIME_POINT_MEASURES and e.time is not None})
            hidden = _disc.small_windows(r.curves.table, ts, m, getattr(r.curves, "kind", "survival"))
        out = []
        for e in r.estimates:
            notes += _not_finite_notes(e)
            e = _suppress_estimate(e, m)
            if hidden and e.measure in _disc.TIME_POINT_MEASURES and e.time is not None and float(e.time) in hidden:
                e = _withhold(e)
                notes.append(f"{e.measure} at {e.time:g}: withheld: an arm had fewer than {m} events since the "
                             f"previous time shown, which the difference of the two rows would reveal "
                             "(disclosure rule across rows, docs/disclosure.md)")
            out.append(e)
        return out, list(dict.fromkeys(notes))

    def curves_frame(self) -> pd.DataFrame:
        """All curves (disclosed) in one long table: ``record, strategy, outcome`` + the curve columns."""
        parts = []
        for i, r in enumerate(self.disclosed().records):
            if r.curves is None:
                continue
            t = r.curves.table
            part = t.copy()
            part.insert(0, "outcome", r.outcome)
            part.insert(0, "strategy", r.strategy)
            part.insert(0, "record", np.int32(i))
            parts.append(part)
        cols = ["record", "strategy", "outcome", *CURVE_COLUMNS, "n_at_risk_text"]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=float if c not in ("strategy", "outcome", "group",
                                                                       "n_at_risk_text") else object)
                                 for c in cols})
        df = pd.concat(parts, ignore_index=True)
        if "n_at_risk_text" not in df.columns:
            df["n_at_risk_text"] = ""
        df["n_at_risk_text"] = df["n_at_risk_text"].fillna("")
        return df[cols]

    def write_curves(self, folder: str) -> str:
        """Write :data:`CURVES_FILE` (Parquet, zstd) into ``folder``; returns its path.

        One row per record x group x grid time: ``record`` (index into
        ``results.json``'s ``records``), ``strategy``, ``outcome`` and
        :data:`CURVE_COLUMNS` plus ``n_at_risk_text`` (the risk-table text:
        a number, ``"<min_cell"`` or ``"*"``). ``n_at_risk`` is filled only at
        the risk-table times, NaN elsewhere and where suppressed.
        """
        import os

        import pyarrow as pa
        import pyarrow.parquet as pq

        df = self.curves_frame()
        table = pa.Table.from_pandas(df, preserve_index=False)
        path = os.path.join(folder, CURVES_FILE)
        pq.write_table(table, path, compression="zstd")
        return path

    # -- (de)serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``results.json`` content (disclosed; curve tables are in ``curves.parquet``)."""
        d = self.disclosed()
        return {"study": d.study, "alpha": d.alpha, "spec": _clean(d.spec),
                "records": [r.to_dict() for r in d.records], "cohort": _clean(d.cohort),
                "truth": _clean(d.truth), "provenance": _clean(d.provenance),
                "warnings": list(d.warnings), "extras": _clean(d.extras),
                "disclosure": {"min_cell": d.min_cell, "rounding_base": d.min_cell if d.min_cell > 1 else 0,
                               "curve_grid_points": _disc.GRID_POINTS, "curves_file": CURVES_FILE,
                               "rule": _disc.rule_text(d.min_cell),
                               "method": "OpenSAFELY: curves and SEs computed from rounded counts"
                               if d.min_cell > 1 else ""}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AnalysisResult":
        disc = d.get("disclosure") or {}
        return cls(study=d["study"], spec=d["spec"], records=[StrategyRecord.from_dict(r) for r in d["records"]],
                   cohort=d.get("cohort", {}), truth=d.get("truth"), provenance=d.get("provenance", {}),
                   warnings=d.get("warnings", []), extras=d.get("extras", {}), alpha=d.get("alpha", 0.05),
                   min_cell=int(disc.get("min_cell", 0) or 0), is_disclosed=bool(disc))

    @classmethod
    def load(cls, folder: str) -> "AnalysisResult":
        """Read ``results.json`` (and the curves from ``curves.parquet``) from a run's output folder."""
        import json
        import os

        with open(os.path.join(folder, "results.json"), encoding="utf-8") as fh:
            result = cls.from_dict(json.load(fh))
        path = os.path.join(folder, CURVES_FILE)
        if os.path.exists(path):
            result.attach_curves(pd.read_parquet(path))
        return result

    def attach_curves(self, curves: pd.DataFrame) -> None:
        """Put the tables of a ``curves.parquet`` (:meth:`write_curves`) into the records they belong to."""
        for i, part in curves.groupby("record", sort=False):
            rec = self.records[int(i)]
            if rec.curves is None:
                continue
            tab = part.drop(columns=["record", "strategy", "outcome"]).reset_index(drop=True)
            rec.curves = dataclasses.replace(rec.curves, table=tab)

    # ------------------------------------------------------------------
    # compact display (the spec and the curves are not shown)
    # ------------------------------------------------------------------
    def strategies(self) -> list[str]:
        """Strategy labels, in spec order."""
        return list(dict.fromkeys(r.strategy for r in self.records))

    def warnings_for(self, strategy: str, outcome: str | None = None) -> list[str]:
        """The caveats of one strategy (all outcomes, or one): positivity, ESS, EPV, failures…

        Raises
        ------
        SpecError
            ``no strategy labelled 'x' (did you mean 'y'?); strategies: ...``
            or an outcome the strategy was not run on.
        """
        from causal_hcc.errors import SpecError, closest

        labels = self.strategies()
        if strategy not in labels:
            raise SpecError(f"no strategy labelled '{strategy}'{closest(strategy, labels)}; "
                            f"strategies: {', '.join(labels)}")
        recs = [r for r in self.records if r.strategy == strategy]
        if outcome is not None:
            outs = [r.outcome for r in recs]
            if outcome not in outs:
                raise SpecError(f"strategy '{strategy}' has no outcome '{outcome}'; outcomes: {', '.join(outs)}")
            recs = [r for r in recs if r.outcome == outcome]
        out: list[str] = []
        for r in recs:
            tag = f"[{r.outcome}] " if outcome is None and len({x.outcome for x in self.records}) > 1 else ""
            out += [tag + w for w in r.warnings]
            if r.error:
                out.append(f"{tag}failed: {r.error}")
        return out

    def _headlines(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for r in self.records:
            e = next((e for e in r.estimates if e.measure == "hr" and e.strategy == r.strategy), None)
            if r.error:
                rows.append((r.strategy, r.outcome, "failed", ""))
            elif e is not None and not np.isfinite(e.estimate):  # e.g. an infinite MLE: see the row's note
                c = (f" ({e.ci_lower:.3f}-{e.ci_upper:.3f})" if not (np.isnan(e.ci_lower) or np.isnan(e.ci_upper))
                     else "")
                rows.append((r.strategy, r.outcome, "not estimable" + c, ""))
            elif e is not None:
                p = "" if not np.isfinite(e.p_value) else (f"{e.p_value:.3f}" if e.p_value >= 0.001 else "<0.001")
                rows.append((r.strategy, r.outcome, f"{e.estimate:.3f} ({e.ci_lower:.3f}-{e.ci_upper:.3f})", p))
            else:
                rows.append((r.strategy, r.outcome, "-", ""))
        return rows

    def __repr__(self) -> str:
        n_s, n_o = len(self.strategies()), len({r.outcome for r in self.records})
        c = self.cohort or {}
        who = f", n={c['n']} ({c.get('n_treated', '?')} treated)" if "n" in c else ""
        n_s_w = sum(len(r.warnings) for r in self.records)
        head = (f"AnalysisResult(study={self.study!r}, {n_s} strateg{'y' if n_s == 1 else 'ies'} x {n_o} "
                f"outcome{'' if n_o == 1 else 's'}, {len(self.estimates)} estimates{who}, "
                f"{len(self.warnings)} run warnings in .warnings, {n_s_w} strategy warnings in "
                f".warnings_for(label))")
        rows = self._headlines()
        if not rows:
            return head
        w = max(len(s) for s, *_ in rows)
        lines = [head] + [f"  {s:<{w}}  {o:<4} HR {hr:<22} p {p}".rstrip() for s, o, hr, p in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        c = self.cohort or {}
        cap = html.escape(f"{self.study}: n = {c.get('n', '?')}, {c.get('n_treated', '?')} treated")
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>" for row in self._headlines())
        n_w = len(self.warnings) + sum(len(r.warnings) for r in self.records)
        foot = (f"<p>{n_w} warnings (<code>result.warnings</code>, <code>result.warnings_for(label)</code>); "
                "<code>result.to_frame()</code> has every estimate.</p>")
        return (f"<table><caption>{cap}</caption><thead><tr><th>strategy</th><th>outcome</th>"
                f"<th>HR (95% CI)</th><th>p</th></tr></thead><tbody>{body}</tbody></table>{foot}")

    def record(self, strategy: str, outcome: str | None = None) -> "StrategyRecord":
        """The record of the strategy labelled ``strategy`` (for ``outcome``; default: its first outcome).

        Raises
        ------
        KeyError
            ``no strategy labelled 'iptw(ATF)' (did you mean 'iptw(ATE)'?); strategies: ...``, or an
            outcome the strategy was not run on.
        """
        labels = self.strategies()
        if strategy not in labels:
            raise KeyError(f"no strategy labelled '{strategy}'{closest(str(strategy), labels)}; "
                           f"strategies: {', '.join(labels)}")
        recs = [r for r in self.records if r.strategy == strategy]
        if outcome is None:
            return recs[0]
        for r in recs:
            if r.outcome == outcome:
                return r
        outs = [r.outcome for r in recs]
        raise KeyError(f"strategy '{strategy}' has no outcome '{outcome}'{closest(str(outcome), outs)}; "
                       f"outcomes: {', '.join(outs)}")

    def record_of(self, estimate: "EffectEstimate | str", outcome: str | None = None) -> "StrategyRecord | None":
        """The record holding ``estimate`` (matched by identity, then by value); None when no record holds it.

        Given a strategy label (a str) it is :meth:`record`: a label that is
        not in the result raises KeyError with the closest label.
        """
        if isinstance(estimate, str):
            return self.record(estimate, outcome)
        for r in self.records:
            if any(e is estimate for e in r.estimates):
                return r
        for r in self.records:
            if estimate in r.estimates:
                return r
        return None

    def truth_for(self, estimate: EffectEstimate) -> dict[str, Any]:
        """The truth to judge ``estimate`` against: that of its own estimand.

        Returns ``{"value", "kind", "label", "note"}``: ``kind`` is ``"own"``
        (the truth of the row's own estimand on the twin), ``"claimed"`` (the
        row's contrast is not causal, e.g. ever vs never: the truth of the
        estimand the paper claimed, labelled as such) or ``"undefined"`` (user
        data, another outcome than the twin's, or no truth for this measure);
        ``value`` is None unless defined. HRs are ratios.
        """
        none = {"value": None, "kind": "undefined", "label": estimate.estimand, "note": ""}
        rec = self.record_of(estimate)
        if self.truth is None or rec is None:
            return {**none, "note": "no known truth (not the digital twin)"}
        est = rec.estimands.get(estimate.estimand, {})
        t = est.get("truth")
        if not t:
            return {**none, "note": "undefined: no truth attached to this estimand"}
        if not t.get("defined", True):
            return {**none, "note": t.get("note", "")}
        se = t.get("mc_se") or {}
        if estimate.measure in ("hr", "median_difference"):
            v, m = t.get(estimate.measure), se.get(estimate.measure)
        elif estimate.measure in ("survival_difference", "rmst_difference", "risk_ratio"):
            key = f"{estimate.time:g}" if estimate.time is not None else None
            v = (t.get(estimate.measure) or {}).get(key) if key else None
            m = (se.get(estimate.measure) or {}).get(key) if key else None
        else:
            v = m = None
        if v is None:
            return {**none, "note": f"undefined: no truth for {estimate.measure}" + (
                f" at {estimate.time:g}" if estimate.time is not None else "")}
        # mc_se: the truth's Monte Carlo SE (log scale for an HR)
        return {"value": float(v), "kind": t.get("kind", "own"), "label": estimate.estimand,
                "note": t.get("note", ""), "mc_se": None if m is None else float(m)}


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
