"""The truth a report row is judged against (digital twin only).

``AnalysisResult.truth_for(estimate)`` returns ``{"value", "kind", "label",
"note"}``: ``kind`` is ``"own"`` (the truth of the row's own estimand),
``"claimed"`` (the row's contrast is not causal — ever vs never treated —
so it is compared with the estimand the paper claimed, labelled as such)
or ``"undefined"`` (user data, or a truth the twin cannot compute). A
result without that method (an older ``results.json``) has no truths.
"""
from __future__ import annotations

import math
from typing import Any

UNDEFINED = {"value": None, "kind": "undefined", "label": "", "note": "no truth available", "mc_se": None}


def truth_of(result: Any, estimate: Any) -> dict[str, Any]:
    """The truth of ``estimate``'s estimand on the twin, or :data:`UNDEFINED`."""
    fn = getattr(result, "truth_for", None)
    if fn is None or getattr(result, "truth", None) is None:
        return dict(UNDEFINED)
    try:
        t = fn(estimate)
    except (KeyError, ValueError, TypeError):
        return dict(UNDEFINED)
    if not isinstance(t, dict):
        return dict(UNDEFINED)
    v = t.get("value")
    try:
        v = float(v) if v is not None else None
    except (TypeError, ValueError):
        v = None
    if v is not None and not math.isfinite(v):
        v = None
    kind = t.get("kind") if t.get("kind") in ("own", "claimed", "undefined") else "undefined"
    if v is None:
        kind = "undefined"
    mc = t.get("mc_se")
    mc = float(mc) if isinstance(mc, (int, float)) and v is not None and math.isfinite(mc) else None
    return {"value": v, "kind": kind, "label": str(t.get("label") or ""), "note": str(t.get("note") or ""),
            "mc_se": mc}


def covers(estimate: Any, value: float | None) -> bool | None:
    """Whether the estimate's CI contains ``value`` (None when either is missing)."""
    if value is None:
        return None
    lo, hi = getattr(estimate, "ci_lower", math.nan), getattr(estimate, "ci_upper", math.nan)
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and math.isfinite(lo) and math.isfinite(hi)):
        return None
    return bool(lo <= value <= hi)
