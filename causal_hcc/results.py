"""Result types with a fixed schema.

Column names never depend on alpha or options (cf. lifelines #1567): a CI is
always ``ci_lower``/``ci_upper`` and the confidence level is stored once on
the analysis. For ``measure == "hr"`` the estimate is the hazard ratio and
``se`` is the standard error of log(HR) (as R's ``coxph`` reports
``se(coef)``); the CI is ``exp(log HR +/- z se)``. For differences (survival,
RMST, median) ``se`` is on the estimate's own scale.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: ``estimates.csv`` columns, in order (design.md contract).
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "strategy", "design", "adjustment", "outcome", "measure", "time",
    "estimate", "se", "ci_lower", "ci_upper", "p_value", "variance_method",
    "n", "n_treated", "events",
)

MEASURES: tuple[str, ...] = ("hr", "survival_difference", "rmst_difference", "median_difference")
VARIANCE_METHODS: tuple[str, ...] = (
    "model", "robust", "cluster_robust", "influence_function", "bootstrap", "greenwood", "none",
)

#: Columns of every survival-curve table (adjustedCurves' fixed schema).
CURVE_COLUMNS: tuple[str, ...] = ("time", "group", "surv", "se", "ci_lower", "ci_upper", "n_at_risk")


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
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha / 2))
    if log_scale:
        b = math.log(estimate) if estimate > 0 else -math.inf
        lo, hi = math.exp(b - z * se), math.exp(b + z * se)
        stat = b / se if se > 0 else math.nan
    else:
        lo, hi = estimate - z * se, estimate + z * se
        stat = (estimate - (null or 0.0)) / se if se > 0 else math.nan
    p = float(2 * norm.sf(abs(stat))) if np.isfinite(stat) else math.nan
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

    def __post_init__(self) -> None:
        missing = [c for c in CURVE_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"SurvivalCurves table lacks columns {missing}")

    def at(self, group: str, t: float) -> float:
        """Step-function value of ``surv`` for ``group`` at time ``t``."""
        g = self.table[self.table["group"] == group]
        g = g[g["time"] <= t]
        return float(g["surv"].iloc[-1]) if len(g) else 1.0

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

    def extend(self, other: "StrategyOutput") -> "StrategyOutput":
        self.estimates.extend(other.estimates)
        if other.curves is not None and self.curves is None:
            self.curves = other.curves
        self.diagnostics.update(other.diagnostics)
        self.warnings.extend(other.warnings)
        self.notes.extend(other.notes)
        return self
