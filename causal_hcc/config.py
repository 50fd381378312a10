"""The YAML analysis spec, as pydantic models.

The spec is read with ``yaml.safe_load`` (no tags, no code) and validated
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

from causal_hcc.base import Targets, closest
from causal_hcc.errors import SpecError
from causal_hcc.strategies import StrategySpec, resolve, unique_labels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """Where the cohort comes from: a file path or ``twin``."""

    path: str
    twin: dict[str, Any] | None = None
    sheet: str | None = None

    @model_validator(mode="after")
    def _twin_only_with_twin(self) -> "DataSpec":
        if self.twin is not None and self.path != "twin":
            raise ValueError("data.twin parameters are only allowed with path: twin")
        return self


class RolesSpec(_Strict):
    """Column names for each role (the spec's ``roles`` mapping)."""

    id: str
    time: str
    event: str
    treatment: str
    treatment_time: str | None = None
    cluster: str | None = None
    #: name given to the primary outcome in outputs (estimates.csv ``outcome``)
    outcome: str = "os"


class OutcomeSpec(_Strict):
    time: str
    event: str


class EstimandsSpec(_Strict):
    survival_at: list[float] = Field(default_factory=list)
    rmst_tau: float | None = None
    alpha: float = Field(0.05, gt=0, lt=1)

    @field_validator("survival_at")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(t <= 0 for t in v):
            raise ValueError("survival_at times must be > 0")
        return sorted(v)

    @field_validator("rmst_tau")
    @classmethod
    def _tau(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("rmst_tau must be > 0")
        return v


class BootstrapSpec(_Strict):
    replicates: int = Field(200, ge=0)
    seed: int = 1
    #: interval: percentile, normal (estimate +/- z * bootstrap SE) or bca
    ci: Literal["percentile", "normal", "bca"] = "percentile"


class SensitivitySpec(_Strict):
    evalues: bool = True
    refuters: list[Literal["placebo", "random_common_cause", "subset"]] = Field(default_factory=list)
    refuter_strategy: str | None = None
    dag: str | None = None


class ReportSpec(_Strict):
    formats: list[Literal["html", "md", "pdf"]] = Field(default_factory=lambda: ["html", "md"])
    min_cell: int = Field(0, ge=0)
    #: twin replicates of the spec's strategies for the report's Monte Carlo panel (0: none)
    monte_carlo: int = Field(0, ge=0)

    @field_validator("monte_carlo")
    @classmethod
    def _mc(cls, v: int) -> int:
        if v == 1:
            raise ValueError("monte_carlo must be 0 (off) or at least 2 replicates")
        return v


class AnalysisSpec(_Strict):
    """A validated analysis spec (see ``design.md``)."""

    study: str
    data: DataSpec
    roles: RolesSpec
    time_unit: str = "months"
    outcomes: dict[str, OutcomeSpec] = Field(default_factory=dict)
    confounders: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    reference: dict[str, str] = Field(default_factory=dict)
    missing: Literal["error", "complete_case"] = "error"
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

    @field_validator("strategies")
    @classmethod
    def _nonempty(cls, v: list[Any]) -> list[Any]:
        if not v:
            raise ValueError("at least one strategy is needed")
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
        if self.data.path == "twin":
            return "twin"
        p = Path(self.data.path)
        if not p.is_absolute():
            cand = Path(self.base_dir) / p
            p = cand if cand.exists() else p
        return str(p)

    def output_dir(self) -> str:
        if self.output:
            return self.output
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.study)
        return os.path.join("reports", safe)

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"base_dir"})

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()


def _format_error(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        parent_loc, key = e["loc"][:-1], str(e["loc"][-1])
        model: Any = AnalysisSpec
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
        where = ".".join(str(p) for p in parent_loc) or "spec"
        return f"{where}: unknown key '{key}'{closest(key, valid)}; valid keys: {', '.join(valid)}"
    if e["type"] == "missing":
        return f"spec: required key '{loc}' is missing"
    msg = e["msg"].removeprefix("Value error, ")
    return f"spec key '{loc}': {msg}"


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
    spec.resolved_strategies()  # fail early on unknown strategies/options
    if spec.report.monte_carlo and spec.data.path != "twin":
        raise SpecError("spec key 'report.monte_carlo': needs data.path: twin (a Monte Carlo study needs a "
                        "data-generating process with a known truth)")
    return spec


def load_spec(path: str | os.PathLike[str]) -> AnalysisSpec:
    """Read a YAML spec with ``yaml.safe_load`` and validate it."""
    p = Path(path)
    if not p.exists():
        raise SpecError(f"spec file '{p}' not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"spec file '{p}': invalid YAML{where}: {problem}") from None
    return parse_spec(raw, base_dir=str(p.parent))
