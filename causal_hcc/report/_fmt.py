"""Number and text formatting shared by the report's sections.

Tables show three significant digits (``sig``); the full-precision numbers
are in ``estimates.csv`` / ``results.json``, which the report links to.
Markdown escaping lives here too: every value that reaches ``report.md`` is
escaped unless it is a :class:`MdSafe` string produced by the report itself.
"""
from __future__ import annotations

import math
import re
from typing import Any

MEASURE_NAMES = {"hr": "HR", "survival_difference": "survival difference", "rmst_difference": "RMST difference",
                 "median_difference": "median difference", "risk_ratio": "risk ratio"}


def num(v: Any) -> float:
    """``float(v)``, NaN for anything that is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def sig(v: Any, digits: int = 3) -> str:
    """``v`` to ``digits`` significant digits, trailing zeros kept (1.00, 0.188, 12.2, 150); '' if not finite."""
    if v is None:
        return ""
    if isinstance(v, str):
        x = num(v)
        if not math.isfinite(x):
            return v
    x = num(v)
    if not math.isfinite(x):
        return ""
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    if abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    s = f"{x:#.{digits}g}"
    return s[:-1] if s.endswith(".") else s


def ci(lo: Any, hi: Any, digits: int = 3) -> str:
    a, b = sig(lo, digits), sig(hi, digits)
    if a and num(hi) == math.inf:  # an interval open at infinity (an infinite maximum-likelihood HR)
        b = "∞"
    return f"{a} to {b}" if a and b else ""


def est_ci(e: Any, digits: int = 3) -> str:
    """'0.552 (0.301 to 1.01)' for an EffectEstimate-like object or dict."""
    get = (lambda k: e.get(k)) if isinstance(e, dict) else (lambda k: getattr(e, k, None))
    c = ci(get("ci_lower"), get("ci_upper"), digits)
    est = sig(get("estimate"), digits) or ("not estimable" if c else "")
    return est + (f" ({c})" if c else "")


def as_printed(v: Any) -> str:
    """A transcribed (published) number as printed: shortest form, no padding to three digits."""
    x = num(v)
    return f"{x:g}" if math.isfinite(x) else ""


def published_text(p: dict[str, Any]) -> str:
    """'0.188 (0.059 to 0.602)' for a published estimate (its numbers as printed in the paper)."""
    lo, hi = as_printed(p.get("ci_lower")), as_printed(p.get("ci_upper"))
    return as_printed(p.get("estimate")) + (f" ({lo} to {hi})" if lo and hi else "")


def p_text(v: Any) -> str:
    x = num(v)
    if not math.isfinite(x):
        return ""
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def time_text(t: Any) -> str:
    if t is None:
        return ""
    x = num(t)
    if not math.isfinite(x):
        return "" if not isinstance(t, str) else t
    return f"{x:g}"


def time_unit(result: Any) -> str:
    """The spec's ``time_unit`` (``months`` by default)."""
    spec = result.spec if isinstance(getattr(result, "spec", None), dict) else {}
    unit = spec.get("time_unit") or (getattr(result, "cohort", None) or {}).get("time_unit")
    return str(unit) if unit else "months"


def at_time(t: Any, unit: str) -> str:
    """'12 months'."""
    return f"{time_text(t)} {unit}".strip()


# ---------------------------------------------------------------------------------------- Markdown
class MdSafe(str):
    """A string of Markdown produced by the report itself (not escaped again)."""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_escape(value: Any) -> str:
    """Escape a value for Markdown: HTML entities for <>&, backslashes for Markdown syntax."""
    if isinstance(value, MdSafe):
        return value
    s = "" if value is None else str(value)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("\n", " ")


def md_finalize(value: Any) -> Any:
    return value if isinstance(value, MdSafe) else md_escape(value)


def records(result: Any, outcome: str | None) -> list[Any]:
    """The successful records of one outcome, in pipeline order."""
    return [r for r in result.records if r.outcome == outcome and not r.error]


def primary_outcome(result: Any) -> str | None:
    for r in result.records:
        return r.outcome
    return None


_CONTRAST_SHORT = {
    "ever_vs_never": "ever vs never treated",
    "by_L_vs_not_yet": "treated by L = {L} vs not yet",
    "start_now_vs_not_now": "start now vs not now (intention to treat)",
    "start_now_vs_never": "start now vs never (per protocol)",
    "within_grace_vs_never": "treat within G = {grace} vs never",
    "structural": "treated vs not yet treated, from treatment on (structural)",
    "msm_treated_vs_untreated": "always vs never treated (marginal structural model)",
}
_POP_SHORT = {
    "all": "everyone at time zero", "all_positivity": "everyone with positivity",
    "at_risk_L": "alive{ef} at L = {landmark}", "eligible_trial": "eligible at each trial start{ef}",
    "treated": "the treated", "overlap": "overlap population", "matched_treated": "matched treated",
}


def short_estimand(est: dict[str, Any] | None, unit: str = "") -> str:
    """A short reading of an estimand (``Estimand.to_dict()``): 'contrast; population; scale'."""
    if not est:
        return ""
    params = {k: time_text(v) if isinstance(v, (int, float)) else v for k, v in (est.get("params") or {}).items()}
    ef = params.get("require_event_free")
    fill = {"landmark": f"{params.get('landmark', 'L')}{' ' + unit if unit else ''}",
            "grace": f"{params.get('grace', 'G')}{' ' + unit if unit else ''}",
            "ef": f", {ef}-free" if ef else "", "L": params.get("landmark", "L")}
    # only our own templates are formatted: a label read from a results.json is text, never a format string
    # ("{L.__class__}" would be str.format's attribute access on our values)
    contrast, population = str(est.get("contrast", "")), str(est.get("population", ""))
    c = _CONTRAST_SHORT[contrast].format(**fill) if contrast in _CONTRAST_SHORT else contrast
    pop = _POP_SHORT[population].format(**fill) if population in _POP_SHORT else population
    scale = est.get("scale", "")
    text = f"{c}; {pop}; {scale}"
    return text if est.get("causal", True) else text + " (not a causal contrast)"
