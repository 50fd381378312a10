"""The schema of a run's ``results.json`` and ``curves.parquet``, checked before ``causal-hcc report`` reads them.

``report DIR`` rebuilds the report from files that anyone may have edited: an
estimate written as a string, 1e308 where a probability belongs, a 400-digit
integer, ``NaN`` tokens, a list where a number was, a 50,000-deep nesting.
Every field the report reads is validated here (pydantic), and the first bad
one is named in one line; free-form parts (diagnostics, estimands, extras)
get the generic JSON limits of :func:`check_json` (depth, finite numbers,
integer range, string length, size).
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from causal_hcc.errors import CausalHCCError, short
from causal_hcc.results import CURVE_COLUMNS, ESTIMATE_COLUMNS, MEASURES, VARIANCE_METHODS

#: deepest nesting of a results file (a run writes ~10 levels)
MAX_DEPTH = 64
#: integers beyond this are not counts, seeds or sizes a run writes
MAX_INT = 2**63
#: floats beyond this magnitude are not estimates a report can draw (a run writes at most ~1e300 on absurd
#: times; 1e308 overflows any arithmetic on it)
MAX_FLOAT = 1e300
MAX_STRING = 1_000_000
MAX_NODES = 5_000_000
#: a results.json larger than this is not one a run wrote (~33 KB at a million rows)
MAX_BYTES = 200 * 2**20

_FLOAT_FIELDS = ("estimate", "se", "ci_lower", "ci_upper", "p_value")


class ResultsFileError(CausalHCCError, ValueError):
    """A results.json or curves.parquet that the report cannot use; the message names the field."""


def _finite(v: float | None, what: str = "") -> float | None:
    if v is None:
        return None
    if not math.isfinite(v) or abs(v) > MAX_FLOAT:
        raise ValueError(f"must be a finite number of magnitude at most {MAX_FLOAT:g}, got {short(repr(v), 40)}")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=False)


class EstimateModel(_Model):
    strategy: str = Field(max_length=10_000)
    design: str = Field(max_length=1_000)
    adjustment: str = Field(max_length=1_000)
    estimand: str = Field("", max_length=10_000)
    outcome: str = Field(max_length=1_000)
    measure: Literal[MEASURES]  # type: ignore[valid-type]
    time: float | None = None
    estimate: float | None = None
    se: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    p_value: float | None = None
    variance_method: Literal[VARIANCE_METHODS]  # type: ignore[valid-type]
    n: int | None = Field(None, ge=0, le=MAX_INT)
    n_treated: int | None = Field(None, ge=0, le=MAX_INT)
    events: int | None = Field(None, ge=0, le=MAX_INT)

    @field_validator("time", *_FLOAT_FIELDS)
    @classmethod
    def _num(cls, v: float | None) -> float | None:
        return _finite(v)

    @field_validator("p_value")
    @classmethod
    def _p(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"a p-value must be between 0 and 1, got {v!r}")
        return v

    @field_validator("n", "n_treated", "events", mode="before")
    @classmethod
    def _count(cls, v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, (str, bool)):
            raise ValueError(f"a count must be a whole number or null, got {short(repr(v), 40)}")
        return v


class CurvesMeta(_Model):
    method: str = Field(max_length=200)
    variance_method: str = Field(max_length=200)
    kind: Literal["survival", "cumulative_incidence"] = "survival"
    time_origin: float = 0.0
    risk_times: list[float] = Field(default_factory=list, max_length=10_000)
    file: str = Field("curves.parquet", max_length=1_000)
    rows: int = Field(0, ge=0, le=MAX_INT)

    @field_validator("time_origin")
    @classmethod
    def _origin(cls, v: float) -> float:
        return _finite(v)  # type: ignore[return-value]

    @field_validator("risk_times")
    @classmethod
    def _times(cls, v: list[float]) -> list[float]:
        for t in v:
            _finite(t)
        return v


class RecordModel(_Model):
    strategy: str = Field(max_length=10_000)
    design: str = Field(max_length=1_000)
    adjustment: str = Field(max_length=1_000)
    outcome: str = Field(max_length=1_000)
    estimates: list[EstimateModel] = Field(max_length=1_000_000)
    curves: CurvesMeta | None = None
    diagnostics: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error: str | None = None
    estimands: dict[str, Any] = Field(default_factory=dict)


class EstimandsSpecModel(_Model):
    survival_at: list[float] = Field(default_factory=list, max_length=10_000)
    rmst_tau: float | None = None
    alpha: float | None = None

    @field_validator("survival_at")
    @classmethod
    def _times(cls, v: list[float]) -> list[float]:
        for t in v:
            _finite(t)
        return v

    @field_validator("rmst_tau", "alpha")
    @classmethod
    def _num(cls, v: float | None) -> float | None:
        return _finite(v)


class BootstrapSpecModel(_Model):
    replicates: int | None = Field(None, ge=0, le=MAX_INT)
    seed: int | None = Field(None, ge=-MAX_INT, le=MAX_INT)
    ci: str | None = Field(None, max_length=100)


class RolesModel(_Model):
    """The spec's roles: column names (each a string or null), and how dates are read (issue 23)."""

    __pydantic_extra__: dict[str, str | None]   # (no "= Field(init=False)": pydantic < 2.10 refuses it)
    dayfirst: bool = False
    date_format: str | None = Field(None, max_length=100)


class SpecModel(_Model):
    """The parts of the resolved spec the report reads."""

    study: str | None = Field(None, max_length=10_000)
    #: the report's title and readable names (issue 23)
    title: str | None = Field(None, max_length=10_000)
    labels: dict[str, str] = Field(default_factory=dict)
    time_unit: str | None = Field(None, max_length=100)
    roles: RolesModel = Field(default_factory=RolesModel)
    confounders: list[str] = Field(default_factory=list)
    outcomes: dict[str, Any] = Field(default_factory=dict)
    estimands: EstimandsSpecModel = Field(default_factory=EstimandsSpecModel)
    bootstrap: BootstrapSpecModel = Field(default_factory=BootstrapSpecModel)
    resolved_strategies: list[dict[str, Any]] = Field(default_factory=list)


class DisclosureModel(_Model):
    min_cell: int = Field(0, ge=0, le=10_000)


class ResultsModel(_Model):
    study: str = Field(max_length=10_000)
    alpha: float = Field(0.05, gt=0, lt=1)
    spec: SpecModel
    records: list[RecordModel] = Field(max_length=100_000)
    cohort: dict[str, Any] = Field(default_factory=dict)
    truth: dict[str, Any] | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    extras: dict[str, Any] = Field(default_factory=dict)
    disclosure: DisclosureModel | None = None


def check_json(obj: Any) -> None:
    """Generic limits on a parsed JSON value: depth, node count, integer range, finite floats, string length.

    Raises :class:`ValueError` naming the path of the first bad value.
    """
    stack = [(obj, "", 0)]
    nodes = 0
    while stack:
        o, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ValueError(f"more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise ValueError(f"{path or 'the top level'}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(o, dict):
            stack.extend((v, f"{path}.{short(str(k), 40)}" if path else short(str(k), 40), depth + 1)
                         for k, v in o.items())
        elif isinstance(o, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(o))
        elif isinstance(o, bool) or o is None:
            continue
        elif isinstance(o, int):
            if abs(o) > MAX_INT:
                raise ValueError(f"{path}: an integer of {len(str(abs(o)))} digits")
        elif isinstance(o, float):
            if not math.isfinite(o) or abs(o) > MAX_FLOAT:
                raise ValueError(f"{path}: {o!r} is not a finite number of magnitude at most {MAX_FLOAT:g}")
        elif isinstance(o, str):
            if len(o) > MAX_STRING:
                raise ValueError(f"{path}: a string of {len(o):,} characters")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity`` tokens (Python accepts them; JSON does not)."""
    import json

    return json.loads(text, parse_constant=_refuse_constant)


def validate_results(raw: Any) -> dict[str, Any]:
    """Check a parsed results.json; return it, or raise :class:`ResultsFileError` naming the first bad field."""
    if not isinstance(raw, dict):
        raise ResultsFileError(f"the top level is {type(raw).__name__}, not an object")
    try:
        check_json(raw)
    except ValueError as err:
        raise ResultsFileError(str(err)) from None
    try:
        ResultsModel.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in e["loc"]).replace(".[", "[")
        got = e.get("input")
        shown_got = "" if e["type"] == "missing" else f" (got {short(repr(got), 40)})"
        msg = e["msg"].removeprefix("Value error, ")
        raise ResultsFileError(f"{loc}: {msg}{shown_got}") from None
    return raw


def validate_curves(df: Any, n_records: int) -> None:
    """Check a curves.parquet table: its columns and types, finite times, survival in [0, 1], known records."""
    import numpy as np
    import pandas as pd

    need = ["record", "strategy", "outcome", *CURVE_COLUMNS]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ResultsFileError(f"curves.parquet: column '{missing[0]}' is missing")
    for c in ("record", "time", "surv", "se", "ci_lower", "ci_upper", "n_at_risk"):
        if not pd.api.types.is_numeric_dtype(df[c].dtype) or pd.api.types.is_bool_dtype(df[c].dtype):
            raise ResultsFileError(f"curves.parquet: column '{c}' must be numeric, not {df[c].dtype}")
    rec = df["record"].to_numpy(float)
    if len(rec) and (not np.isfinite(rec).all() or rec.min() < 0 or rec.max() >= n_records
                     or not (rec == np.round(rec)).all()):
        raise ResultsFileError(f"curves.parquet: column 'record' must index the {n_records} records of results.json")
    t = df["time"].to_numpy(float)
    if len(t) and (not np.isfinite(t).all() or np.abs(t).max() > MAX_FLOAT):
        raise ResultsFileError("curves.parquet: column 'time' must hold finite times")
    for c in ("surv", "ci_lower", "ci_upper"):
        x = df[c].to_numpy(float)
        x = x[np.isfinite(x)]
        if len(x) and (x.min() < -0.5 or x.max() > 1.5):
            raise ResultsFileError(f"curves.parquet: column '{c}' must hold probabilities")
    for c in ("se", "n_at_risk"):
        x = df[c].to_numpy(float)
        if np.isinf(x).any() or (np.abs(np.nan_to_num(x)) > MAX_FLOAT).any():
            raise ResultsFileError(f"curves.parquet: column '{c}' must hold finite numbers")


__all__ = ["ResultsFileError", "validate_results", "validate_curves", "check_json", "load_json", "ESTIMATE_COLUMNS"]

