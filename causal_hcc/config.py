"""The YAML analysis spec, as pydantic models.

The spec is read with a ``yaml.SafeLoader`` (no tags, no code; alias, size
and encoding limits: :func:`read_spec_file`) and validated
into :class:`AnalysisSpec`. Unknown keys, unknown strategy names and
unsupported options fail here with one line that lists the valid choices.
Nothing in a spec is ever evaluated as code.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from causal_hcc import limits as L
from causal_hcc.base import Targets, closest
from causal_hcc.errors import SpecError, short, shown
from causal_hcc.strategies import StrategySpec, resolve, unique_labels


class _Strict(BaseModel):
    # allow_inf_nan=False: every number of the spec must be finite (".nan" or ".inf" is refused)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataSpec(_Strict):
    """Where the cohort comes from: a file path or ``twin``.

    ``path`` may be absent when the data are passed in memory
    (``run_analysis(spec, data=df)``). ``sep`` and ``decimal`` override the
    CSV/TSV delimiter and decimal mark, which are otherwise sniffed.
    """

    path: str | None = None
    twin: dict[str, Any] | None = None
    sheet: str | None = None
    sep: str | None = None
    decimal: str | None = None
    #: ``patient``: one row per patient (default); ``person_period``: one row per patient and period
    #: (roles ``period``, ``eligible``, ``censored``; :func:`causal_hcc.timeline.person_period`)
    layout: Literal["patient", "person_period"] = "patient"

    @field_validator("sep", "decimal")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 and v != "\\t"):
            raise ValueError(f"must be one character, got {shown(v)}")
        return "\t" if v == "\\t" else v

    @model_validator(mode="after")
    def _twin_only_with_twin(self) -> "DataSpec":
        if self.twin is not None and self.path != "twin":
            raise ValueError("data.twin parameters are only allowed with path: twin")
        if self.layout == "person_period" and self.path == "twin":
            raise ValueError("layout: person_period needs a data file or data=, not the twin")
        return self


class VisitsSpec(_Strict):
    """``visits: {path, id, time | date, columns}``: a long table of measurements (LOCF; :mod:`causal_hcc.timeline`).

    ``path`` may be absent when the table is passed in memory
    (``run_analysis(spec, visits=df)``).
    """

    path: str | None = None
    id: str
    time: str | None = None
    date: str | None = None
    columns: list[str]
    sheet: str | None = None
    sep: str | None = None
    decimal: str | None = None

    @field_validator("sep", "decimal")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        return DataSpec._one_char(v)

    @model_validator(mode="after")
    def _time_or_date(self) -> "VisitsSpec":
        if (self.time is None) == (self.date is None):
            raise ValueError("give one of 'time' (time from time zero) or 'date' (visit date)")
        if not self.columns:
            raise ValueError("'columns' must list at least one measured column")
        dup = [c for c in self.columns if self.columns.count(c) > 1]
        if dup:
            raise ValueError(f"column '{dup[0]}' is listed twice")
        return self


class RolesSpec(_Strict):
    """Column names for each role (the spec's ``roles`` mapping)."""

    id: str
    time: str | None = None
    event: str
    #: optional with ``treatment_date``: then derived (1 = a date on or before the end date)
    treatment: str | None = None
    treatment_time: str | None = None
    cluster: str | None = None
    #: name given to the primary outcome in outputs (estimates.csv ``outcome``)
    outcome: str = "os"
    #: dates instead of times (``time`` = end_date - start_date in ``time_unit``)
    start_date: str | None = None
    end_date: str | None = None
    treatment_date: str | None = None
    #: person-period layout: the period column; 1 = eligible for trial starts and clones; lost to follow-up
    period: str | None = None
    eligible: str | None = None
    #: 1 = lost to follow-up (not the administrative end); both layouts
    censored: str | None = None
    #: how the date roles are written when they are text: a strptime format such as ``"%d/%m/%Y"``
    #: (default: ISO 8601, ``2020-03-31``), or ``dayfirst: true`` for day-first dates (31/03/2020, 31.03.2020)
    date_format: str | None = None
    dayfirst: bool = False

    @model_validator(mode="after")
    def _time_or_dates(self) -> "RolesSpec":
        if self.period is not None:
            given = [k for k in ("time", "end_date", "start_date", "treatment_time", "treatment_date")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(f"with 'period' (person-period data) the follow-up and treatment times are derived "
                                 f"from the periods; remove '{given[0]}'")
            if self.treatment is None:
                raise ValueError("person-period data need 'treatment' (1 in the periods under treatment)")
            return self
        if self.time is None and self.end_date is None:
            raise ValueError("give the follow-up as 'time' or as 'start_date' and 'end_date'")
        if self.time is not None and self.end_date is not None:
            raise ValueError("give the follow-up either as 'time' or as 'start_date' and 'end_date', not both")
        if (self.end_date is not None or self.treatment_date is not None) and self.start_date is None:
            raise ValueError("'end_date' and 'treatment_date' need 'start_date' (time zero)")
        if self.start_date is not None and self.end_date is None:
            raise ValueError("'start_date' needs 'end_date' (the follow-up is then computed from dates)")
        if self.treatment_time is not None and self.treatment_date is not None:
            raise ValueError("give either 'treatment_time' or 'treatment_date', not both")
        if self.treatment is None and self.treatment_date is None:
            raise ValueError("give 'treatment', or 'treatment_date' to derive it from (treated = a date on or "
                             "before the end date)")
        if (self.date_format is not None or self.dayfirst) and self.start_date is None:
            raise ValueError("'date_format' and 'dayfirst' apply to the date roles (start_date, end_date, "
                             "treatment_date); give them or remove these keys")
        if self.date_format is not None and self.dayfirst:
            raise ValueError("give either 'date_format' or 'dayfirst', not both")
        if self.date_format is not None:
            from causal_hcc.recode import check_date_format

            check_date_format(self.date_format)
        return self

    def cohort_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~causal_hcc.cohort.Cohort` for these roles."""
        kw = {"id": self.id, "time": self.time, "event": self.event, "treatment": self.treatment,
              "treatment_time": self.treatment_time, "cluster": self.cluster, "outcome_name": self.outcome,
              "start_date": self.start_date, "end_date": self.end_date, "treatment_date": self.treatment_date}
        if self.date_format is not None or self.dayfirst:  # only when set: older callers pass no such keys
            kw.update(date_format=self.date_format, dayfirst=self.dayfirst)
        return kw


def _competing_codes(v: Any, key: str) -> list[int] | None:
    """Validated competing event codes (2, 3, ...; not 0 or 1), or None when not given."""
    if v is None:
        return None
    from causal_hcc.cohort import competing_codes

    return list(competing_codes(v, key))


class OutcomeSpec(_Strict):
    time: str | None = None
    end_date: str | None = None
    event: str
    #: event codes of competing events of this outcome (its event column holds 0, 1 and these)
    competing: list[Any] | None = None

    @model_validator(mode="after")
    def _time_or_end(self) -> "OutcomeSpec":
        if (self.time is None) == (self.end_date is None):
            raise ValueError("give one of 'time' or 'end_date'")
        return self

    def cohort_value(self) -> Any:
        out: dict[str, Any] = ({"end_date": self.end_date} if self.end_date is not None else {"time": self.time})
        out["event"] = self.event
        if self.competing:
            out["competing"] = list(self.competing)
            return out
        if self.end_date is not None:
            return out
        return (self.time, self.event)


def _at_most(what: str, value: int, limit: int, unit: str = "") -> None:
    if value > limit:
        raise SpecError(L.over(what, value, limit, unit))


class EstimandsSpec(_Strict):
    survival_at: list[float] = Field(default_factory=list)
    rmst_tau: float | None = None
    alpha: float = 0.05

    @field_validator("survival_at", mode="before")
    @classmethod
    def _not_too_many(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            _at_most("estimands.survival_at", len(v), L.MAX_SURVIVAL_AT, "times")
        return v

    @field_validator("survival_at")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(t <= 0 for t in v):
            raise ValueError("survival_at times must be > 0")
        if len(set(v)) != len(v):
            raise ValueError("survival_at lists a time twice")
        return sorted(v)

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not L.MIN_ALPHA <= v <= L.MAX_ALPHA:
            raise SpecError(f"estimands.alpha: {v!r} given; alpha must be between {L.MIN_ALPHA:g} and "
                            f"{L.MAX_ALPHA:g} (a {100 * (1 - L.MAX_ALPHA):g}% to {100 * (1 - L.MIN_ALPHA):g}% "
                            "confidence level)")
        return v

    @field_validator("rmst_tau")
    @classmethod
    def _tau(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("rmst_tau must be > 0")
        return v


class BootstrapSpec(_Strict):
    replicates: int = Field(200, ge=0)
    seed: int = Field(1, ge=-L.MAX_SEED, le=L.MAX_SEED)
    #: interval: percentile, normal (estimate +/- z * bootstrap SE) or bca
    ci: Literal["percentile", "normal", "bca"] = "percentile"


class SensitivitySpec(_Strict):
    evalues: bool = True
    refuters: list[Literal["placebo", "random_common_cause", "subset"]] = Field(default_factory=list)
    refuter_strategy: str | None = None
    dag: str | None = None


#: ``report.min_cell`` when the spec leaves it out and the data are not the digital twin.
DEFAULT_MIN_CELL = 5


class ReportSpec(_Strict):
    formats: list[Literal["html", "md", "pdf"]] = Field(default_factory=lambda: ["html", "md"])
    #: counts of 1 .. min_cell-1 patients are suppressed in every output; None (left out):
    #: 5 for real data, 0 (off) for the simulated digital twin (see AnalysisSpec.min_cell)
    min_cell: int | None = Field(None, ge=0)
    #: twin replicates of the spec's strategies for the report's Monte Carlo panel (0: none)
    monte_carlo: int = Field(0, ge=0)

    @field_validator("monte_carlo")
    @classmethod
    def _mc(cls, v: int) -> int:
        if v == 1:
            raise ValueError("monte_carlo must be 0 (off) or at least 2 replicates")
        _at_most("report.monte_carlo", v, L.MAX_MONTE_CARLO, "replicates")
        return v

    @field_validator("min_cell")
    @classmethod
    def _min_cell(cls, v: int | None) -> int | None:
        if v is not None:
            _at_most("report.min_cell", v, 100)
        return v


class MissingSpec(_Strict):
    """``missing: {method: mice, ...}``: multiple imputation by chained equations.

    Every confounder with missing values is imputed by predictive mean
    matching (:mod:`causal_hcc.missing`); every strategy runs on each of the
    ``m`` completed data sets and the estimates are pooled by Rubin's rules.
    """

    method: Literal["mice"]
    #: number of imputed data sets
    m: int = Field(20, ge=2)
    #: seed of the imputation (independent of ``bootstrap.seed``)
    seed: int = Field(1, ge=-L.MAX_SEED, le=L.MAX_SEED)
    #: chained-equation cycles per imputed data set (R ``mice``'s ``maxit``)
    iterations: int = Field(10, ge=1)
    #: predictive-mean-matching donors (R ``mice``'s ``donors``)
    donors: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _limits(self) -> "MissingSpec":
        _at_most("missing.m", self.m, L.MAX_IMPUTATIONS, "imputed data sets")
        _at_most("missing.iterations", self.iterations, L.MAX_MICE_ITERATIONS, "iterations")
        _at_most("missing.donors", self.donors, L.MAX_MICE_DONORS, "donors")
        return self


MISSING_STRINGS: tuple[str, ...] = ("error", "complete_case")


class AnalysisSpec(_Strict):
    """A validated analysis spec (see ``design.md``)."""

    study: str
    #: the report's title (default: ``study``)
    title: str | None = None
    #: readable names of columns, outcomes and the treatment, used in the report, figures and summary
    #: (``{portal_vein_invasion: "Portal vein invasion", os: "Overall survival"}``); others are written readably
    labels: dict[str, str] = Field(default_factory=dict)
    data: DataSpec = Field(default_factory=DataSpec)
    roles: RolesSpec
    time_unit: str = "months"
    outcomes: dict[str, OutcomeSpec] = Field(default_factory=dict)
    confounders: list[str] = Field(default_factory=list)
    codes: dict[str, dict[Any, Any]] = Field(default_factory=dict)
    #: event codes of competing events of the primary outcome (e.g. [2, 3]; see docs/competing_risks.md)
    competing: list[Any] | None = None
    categorical: list[str] = Field(default_factory=list)
    reference: dict[str, str] = Field(default_factory=dict)
    #: a long table of measurements (``visits.columns``), carried forward (:mod:`causal_hcc.timeline`)
    visits: VisitsSpec | None = None
    #: names or formula terms of visits columns (default: every visits column) / person-period columns
    time_varying_confounders: list[str] = Field(default_factory=list)
    missing: Literal["error", "complete_case"] | MissingSpec = "error"
    strategies: list[Any]
    estimands: EstimandsSpec = Field(default_factory=EstimandsSpec)
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)
    n_jobs: int = Field(1, ge=-1)
    on_error: Literal["stop", "record"] = "stop"
    published: str | None = None
    sensitivity: SensitivitySpec = Field(default_factory=SensitivitySpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    output: str | None = None

    # resolved at load (not part of the YAML)
    base_dir: str = Field(".", exclude=True)

    @field_validator("study")
    @classmethod
    def _study(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("study must not be empty")
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or len(v) > 300 or "\n" in v.strip()):
            raise ValueError("title must be one line of 1 to 300 characters")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for k, lab in v.items():
            if not str(lab).strip() or len(str(lab)) > 120 or "\n" in str(lab):
                raise ValueError(f"labels.{short(str(k))}: a label is one line of 1 to 120 characters")
        return {str(k): str(lab).strip() for k, lab in v.items()}

    @field_validator("codes")
    @classmethod
    def _codes(cls, v: dict[str, dict[Any, Any]]) -> dict[str, dict[str, Any]]:
        from causal_hcc.recode import normalize_codes

        _at_most("codes", sum(len(m) for m in v.values()), L.MAX_CODES, "entries")
        try:
            return normalize_codes(v)
        except SpecError as err:
            raise ValueError(str(err).removeprefix("codes: ")) from None

    @field_validator("competing", mode="before")
    @classmethod
    def _competing(cls, v: Any) -> Any:
        return _competing_codes(v, "competing")

    @model_validator(mode="after")
    def _competing_outcomes(self) -> "AnalysisSpec":
        for name, o in self.outcomes.items():
            _competing_codes(o.competing, f"outcomes.{name}.competing")
        if self.competing and self.data.layout == "person_period":
            raise ValueError("competing: person-period data carry a 0/1 event per period; competing events need "
                             "the one-row-per-patient layout (event column 0, 1, 2, ...)")
        return self

    @model_validator(mode="after")
    def _dates_need_a_unit(self) -> "AnalysisSpec":
        from causal_hcc.recode import TIME_UNITS

        if self.roles.start_date is not None and self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)} when times are computed from dates, "
                             f"got {shown(self.time_unit)}")
        for name, o in self.outcomes.items():
            if o.end_date is not None and self.roles.start_date is None:
                raise ValueError(f"outcomes.{name}: 'end_date' needs the role 'start_date' (time zero)")
        return self

    @model_validator(mode="after")
    def _time_varying(self) -> "AnalysisSpec":
        pp = self.data.layout == "person_period"
        r = self.roles
        if pp and r.period is None:
            raise ValueError("data.layout: person_period needs the role 'period' (the period column)")
        if not pp:
            for role in ("period", "eligible"):
                if getattr(r, role) is not None:
                    raise ValueError(f"the role '{role}' needs data.layout: person_period (one row per patient and "
                                     "period)")
        if pp and self.visits is not None:
            raise ValueError("visits: person-period data carry their time-varying values in their own rows; "
                             "remove visits (or use the patient layout)")
        if pp and self.outcomes:
            raise ValueError("outcomes: person-period data have one outcome (roles.event)")
        if self.visits is not None and self.visits.date is not None and r.start_date is None:
            raise ValueError("visits.date needs the role 'start_date' (time zero); give visits.time otherwise")
        if self.time_varying_confounders and self.visits is None and not pp:
            raise ValueError("time_varying_confounders need visits: {...} or data.layout: person_period")
        dup = [c for c in self.time_varying_confounders if self.time_varying_confounders.count(c) > 1]
        if dup:
            raise ValueError(f"time_varying_confounders: '{dup[0]}' is listed twice")
        if self.visits is not None:
            from causal_hcc.formula import is_term, term_variables

            cols = self.visits.columns
            for c in self.time_varying_confounders:
                for v in (term_variables(c) if is_term(c, cols) else [c]):
                    if v not in cols:
                        raise ValueError(f"time_varying_confounders: '{v}' is not among visits.columns"
                                         f"{closest(v, cols)}; visits.columns: {', '.join(cols)}")
        return self

    @property
    def time_varying(self) -> list[str]:
        """The time-varying confounders: as given, else every visits column."""
        if self.time_varying_confounders:
            return list(self.time_varying_confounders)
        return list(self.visits.columns) if self.visits is not None else []

    def visits_path(self) -> str:
        if self.visits is None or self.visits.path is None:
            raise SpecError("spec: visits.path is required, unless the visits are passed in memory with "
                            "run_analysis(spec, visits=df)")
        p = Path(self.visits.path)
        if not p.is_absolute():
            cand = Path(self.base_dir) / p
            p = cand if cand.exists() else p
        return str(p)

    @field_validator("missing", mode="before")
    @classmethod
    def _missing(cls, v: Any) -> Any:
        if isinstance(v, dict):
            try:
                return MissingSpec(**v)
            except ValidationError as err:
                raise SpecError(_format_error(err, MissingSpec, ("missing",))) from None
            except TypeError as err:  # non-string keys
                raise SpecError(f"missing: {err}") from None
        if isinstance(v, MissingSpec) or (isinstance(v, str) and v in MISSING_STRINGS):
            return v
        shown = repr(v) if isinstance(v, str) else type(v).__name__
        hint = closest(v, MISSING_STRINGS) if isinstance(v, str) else ""
        raise SpecError(f"missing: expected error, complete_case or a mapping such as "
                        f"{{method: mice, m: 20, seed: 1}}; got {shown}{hint}")

    @property
    def imputation(self) -> MissingSpec | None:
        """The multiple-imputation settings, or None for ``error``/``complete_case``."""
        return self.missing if isinstance(self.missing, MissingSpec) else None

    @property
    def cohort_missing(self) -> str:
        """The ``missing`` policy a :class:`~causal_hcc.cohort.Cohort` gets.

        With multiple imputation the cohorts are built from completed data
        sets, so a value still missing there is an error.
        """
        return "error" if isinstance(self.missing, MissingSpec) else self.missing

    @field_validator("strategies")
    @classmethod
    def _nonempty(cls, v: list[Any]) -> list[Any]:
        if not v:
            raise ValueError("at least one strategy is needed")
        _at_most("strategies", len(v), L.MAX_STRATEGIES, "entries")
        for i, entry in enumerate(v):
            lm = entry.get("landmark") if isinstance(entry, dict) else None
            if isinstance(lm, (list, tuple)):
                _at_most(f"strategies[{i}].landmark", len(lm), L.MAX_LANDMARKS, "landmark times")
        return v

    @field_validator("outcomes")
    @classmethod
    def _few_outcomes(cls, v: dict[str, Any]) -> dict[str, Any]:
        _at_most("outcomes", len(v), L.MAX_OUTCOMES, "outcomes")
        return v

    @field_validator("confounders")
    @classmethod
    def _few_confounders(cls, v: list[str]) -> list[str]:
        _at_most("confounders", len(v), L.MAX_COLUMNS, "terms")
        return v

    @field_validator("bootstrap")
    @classmethod
    def _replicates(cls, v: BootstrapSpec) -> BootstrapSpec:
        _at_most("bootstrap.replicates", v.replicates, L.MAX_BOOTSTRAP, "replicates")
        return v

    @property
    def targets(self) -> Targets:
        return Targets(tuple(self.estimands.survival_at), self.estimands.rmst_tau, self.estimands.alpha)

    def resolved_strategies(self) -> list[StrategySpec]:
        out: list[StrategySpec] = []
        for i, entry in enumerate(self.strategies):
            out.extend(resolve(entry, where=f"strategies[{i}]"))
        return unique_labels(out)

    def all_confounders(self) -> list[str]:
        """The spec's confounders, then any extra ones named by a strategy (order kept)."""
        out = list(self.confounders)
        for s in self.resolved_strategies():
            out += [c for c in (s.confounders or ()) if c not in out]
        return out

    def data_path(self) -> str:
        if self.data.path is None:
            raise SpecError("spec: data.path is required (a file or 'twin'), unless the data are passed in memory "
                            "with run_analysis(spec, data=df)")
        if self.data.path == "twin":
            return "twin"
        p = Path(self.data.path)
        if not p.is_absolute():
            cand = Path(self.base_dir) / p
            p = cand if cand.exists() else p
        return str(p)

    @property
    def min_cell(self) -> int:
        """The effective ``report.min_cell``: as given, else 0 on the twin and :data:`DEFAULT_MIN_CELL` otherwise.

        The twin is simulated (no patient can be identified), so its outputs
        keep every count unless the spec asks otherwise; any other data
        (a file, or a DataFrame passed in) gets the threshold by default.
        """
        if self.report.min_cell is not None:
            return int(self.report.min_cell)
        return 0 if self.data.path == "twin" else DEFAULT_MIN_CELL

    def output_dir(self) -> str:
        if self.output:
            return self.output
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.study)
        return os.path.join("reports", safe)

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"base_dir"})

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()


def _format_error(err: ValidationError, root: Any = None, prefix: tuple[str, ...] = ()) -> str:
    errs = err.errors()
    # an unknown key explains a missing one ('treatmnt' for 'treatment'): report it first
    e = next((x for x in errs if x["type"] == "extra_forbidden"), errs[0])
    loc = ".".join(str(p) for p in (*prefix, *e["loc"]))
    if e["type"] == "value_error" and isinstance((e.get("ctx") or {}).get("error"), SpecError):
        return str(e["ctx"]["error"])  # a validator's own one-line message
    if e["type"] == "extra_forbidden":
        parent_loc, key = e["loc"][:-1], str(e["loc"][-1])
        model: Any = root or AnalysisSpec
        for part in parent_loc:
            ann = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
            if ann is None:
                model = None
                break
            t = ann.annotation
            model = next((a for a in getattr(t, "__args__", (t,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                         t)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                model = None
                break
        valid = [k for k, f in model.model_fields.items() if not f.exclude] if model else []
        where = ".".join(str(p) for p in (*prefix, *parent_loc)) or "spec"
        return f"{where}: unknown key '{key}'{closest(key, valid)}; valid keys: {', '.join(valid)}"
    if e["type"] == "missing":
        return f"spec: required key '{loc}' is missing"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "finite_number":
        msg = f"must be a finite number, got {e.get('input')!r}"
    return f"spec key '{loc}': {msg}" if loc else f"spec: {msg}"


def parse_spec(raw: Any, base_dir: str = ".") -> AnalysisSpec:
    """Validate an already-loaded mapping into an :class:`AnalysisSpec`."""
    if not isinstance(raw, dict):
        raise SpecError(f"spec: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        spec = AnalysisSpec(**raw, base_dir=base_dir)
    except ValidationError as err:
        raise SpecError(_format_error(err)) from None
    except TypeError as err:  # non-string keys
        raise SpecError(f"spec: {err}") from None
    n = len(spec.resolved_strategies())  # fail early on unknown strategies/options
    _at_most("strategies", n, L.MAX_STRATEGIES, "strategies (landmark sweeps expanded)")
    _competing_outcome_options(spec)
    if spec.report.monte_carlo and spec.data.path != "twin":
        raise SpecError("spec key 'report.monte_carlo': needs data.path: twin (a Monte Carlo study needs a "
                        "data-generating process with a known truth)")
    return spec


def _competing_outcome_options(spec: AnalysisSpec) -> None:
    """Options the competing-events analysis does not implement, refused when the spec loads (not mid-run)."""
    names = ([spec.roles.outcome] if spec.competing else []) + [n for n, o in spec.outcomes.items() if o.competing]
    if not names:
        return
    for s in spec.resolved_strategies():
        o = s.adjustment_options
        bad = [f"{k}: {v}" for k, v in (("outcome_model", o.get("outcome_model")), ("ties", o.get("ties")))
               if v in ("pooled_logistic", "breslow")]
        if bad:
            raise SpecError(f"strategy '{s.label}': {' and '.join(bad)} is not implemented for outcome '{names[0]}', "
                            "which has competing events (its cause-specific and Fine-Gray models are Cox models with "
                            "Efron ties); remove the option")


#: a spec larger than this is refused unread (specs are a few kB)
MAX_SPEC_BYTES = 1_000_000
#: YAML aliases (``*name``) allowed in one spec, and nodes after expanding them
MAX_ALIASES = 200
MAX_NODES = 100_000


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses alias bombs ("billion laughs").

    Counts alias references while composing and, before constructing any
    Python object, the number of nodes the document would have with every
    alias expanded; either limit exceeded raises :class:`SpecError`.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise SpecError(f"more than {MAX_ALIASES} YAML aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: ANN401
        """A key written twice in one mapping is refused (YAML forbids it; PyYAML lets the last one win).

        Keys brought in by a merge (``<<: *base``) may be overridden, as YAML merge keys intend.
        """
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the constructor refuses it with its own message
                    continue
                if first is not None:
                    raise SpecError(f"the key {shown(key)} appears twice (lines {first.start_mark.line + 1} and "
                                    f"{key_node.start_mark.line + 1}); a key may appear once: remove one")
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_document(self, node: Any) -> Any:  # noqa: ANN401
        sizes: dict[int, int] = {}

        def size(n: Any) -> int:
            key = id(n)
            if key in sizes:
                return sizes[key]
            sizes[key] = 1  # a cycle (recursive alias) counts once; the constructor refuses it below
            if isinstance(n, yaml.SequenceNode):
                total = 1 + sum(size(c) for c in n.value)
            elif isinstance(n, yaml.MappingNode):
                total = 1 + sum(size(k) + size(v) for k, v in n.value)
            else:
                total = 1
            sizes[key] = min(total, MAX_NODES + 1)
            return sizes[key]

        if size(node) > MAX_NODES:
            raise SpecError(f"YAML aliases expand to more than {MAX_NODES:,} values (an alias bomb?); "
                            "write the values out")
        return super().construct_document(node)


def _decode_spec(raw: bytes, p: Path, what: str = "spec file") -> str:
    """Spec bytes as text: UTF-8 (BOM allowed) or UTF-16/32 with a BOM; else one line saying what it is."""
    import codecs

    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF8, "utf-8-sig")):
        if raw.startswith(bom):
            try:
                return raw.decode(enc)
            except UnicodeDecodeError as err:
                raise SpecError(f"{what} '{short(str(p), 160)}' is not valid {enc.upper()} text "
                                f"(byte {err.start}); save it as UTF-8") from None
    head = raw[:4096]
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > 0.3 * (len(head) / 2) and min(even, odd) < 0.05 * (len(head) / 2):
            raise SpecError(f"{what} '{short(str(p), 160)}' looks like UTF-16 without a byte-order mark; "
                            "save it as UTF-8")
        raise SpecError(f"{what} '{short(str(p), 160)}' is a binary file, not YAML text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise SpecError(f"{what} '{short(str(p), 160)}' is not UTF-8 text (byte 0x{raw[err.start]:02x} on "
                        f"line {line}); save it as UTF-8") from None


def read_spec_file(path: str | os.PathLike[str], what: str = "spec file") -> Any:
    """Read and safe-parse a YAML file with the size, encoding, alias, nesting and duplicate-key checks.

    Returns the raw value. ``what`` names the file in messages (``"spec file"``,
    ``"published tables"``): the spec and the published tables YAML get the
    same checks (regular file, at most :data:`MAX_SPEC_BYTES`, UTF-8 or
    UTF-16/32 with a BOM, no binary, at most :data:`MAX_ALIASES` aliases and
    :data:`MAX_NODES` values, no key twice, not nested too deeply).
    """
    p = Path(path)
    name = short(str(p), 160)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise SpecError(f"{what} '{name}' not found") from None
    except OSError as err:
        raise SpecError(f"{what} '{name}': {err.strerror or type(err).__name__}") from None
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode):
        raise SpecError(f"{what} '{name}' is a folder, not a YAML file")
    if not _stat.S_ISREG(st.st_mode):
        raise SpecError(f"{what} '{name}' is not a regular file")
    if st.st_size > MAX_SPEC_BYTES:
        tail = ("a spec is at most {:,} (data go in data.path, not in the spec)" if what == "spec file"
                else "at most {:,} are read").format(MAX_SPEC_BYTES)
        raise SpecError(f"{what} '{name}' is {st.st_size:,} bytes; {tail}")
    try:  # O_NONBLOCK + fstat: a FIFO swapped in after the stat above is refused, not waited on
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not _stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise SpecError(f"{what} '{name}' is not a regular file")
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as err:
        raise SpecError(f"{what} '{name}': {err.strerror or type(err).__name__}") from None
    text = _decode_spec(raw, p, what)
    try:
        return yaml.load(text, Loader=_LimitedLoader)  # noqa: S506 - a SafeLoader subclass
    except SpecError as err:
        raise SpecError(f"{what} '{name}': {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{what} '{name}': invalid YAML{where}: {short(problem, 200)}") from None
    except RecursionError:
        raise SpecError(f"{what} '{name}': nested too deeply") from None


def load_spec(path: str | os.PathLike[str]) -> AnalysisSpec:
    """Read a YAML spec (safe loader with alias and size limits) and validate it.

    Every problem with the file itself — missing, a folder, binary, not
    UTF-8, an alias bomb, invalid YAML — raises :class:`SpecError` with one
    line naming the file.
    """
    raw = read_spec_file(path)
    return parse_spec(raw, base_dir=str(Path(path).parent))
