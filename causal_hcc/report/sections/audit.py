"""Audit of the published statistics: the flags first (most serious for the treatment effect on top), the
full audit collapsed."""
from __future__ import annotations

from typing import Any

from causal_hcc.report._fmt import sig

#: audit sections ranked by what a flag there implies for the published treatment effect
SEVERITY: tuple[str, ...] = (
    "Medians vs reported HR",            # the effect estimate contradicts the paper's own medians
    "Imbalances reported only in the text",  # confounders left out of every model
    "Ratios: implied SE and events",     # the CI implies implausibly few events
    "Ratios: p implied by the CI",
    "Ratios: estimate vs CI",
    "Table 1 p-values",
    "Counts",
    "Percentages",
    "Labels",
)


def _rank(row: dict[str, Any]) -> tuple[int, int]:
    sec = str(row.get("section", ""))
    r = next((i for i, s in enumerate(SEVERITY) if sec.startswith(s)), len(SEVERITY))
    treat = 0 if "treatment" in str(row.get("check", "")).lower() else 1
    return (r, treat)


def serious_flags(audit: list[dict[str, Any]], k: int | None = None) -> list[dict[str, str]]:
    """Flagged audit rows, most serious first (by :data:`SEVERITY`, then rows about the treatment)."""
    flags = [a for a in audit if isinstance(a, dict) and a.get("verdict") == "flag"]
    flags = sorted(flags, key=_rank)
    out = [{c: ("" if a.get(c) is None else sig(a[c]) if isinstance(a.get(c), float) else str(a.get(c)))
            for c in ("section", "check", "reported", "recomputed", "detail")} for a in flags]
    if k is None:
        return out
    # the top k, one per section where possible
    top, used = [], set()
    for a in out:
        if a["section"] not in used:
            top.append(a)
            used.add(a["section"])
        if len(top) == k:
            break
    return top


def build(ctx: Any) -> dict[str, Any] | None:
    audit = (ctx.result.extras or {}).get("audit")
    if not (isinstance(audit, list) and audit and all(isinstance(a, dict) for a in audit)):
        return None
    cols = list(dict.fromkeys(k for a in audit for k in a))
    counts: dict[str, int] = {}
    for a in audit:
        counts[str(a.get("verdict", ""))] = counts.get(str(a.get("verdict", "")), 0) + 1
    return {"flags": serious_flags(audit), "columns": cols, "n": len(audit), "counts": counts,
            "rows": [[sig(a.get(c)) if isinstance(a.get(c), float) else ("" if a.get(c) is None else str(a.get(c)))
                      for c in cols] for a in audit], "csv": "audit.csv"}
