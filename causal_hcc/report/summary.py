"""``causal_hcc.report.summary(result)``: a summary object that never prints.

Modelled on statsmodels' ``iolib.summary2.Summary``: tables plus notes, with
``as_text()``, ``as_html()`` (every string escaped), ``_repr_html_()`` for
Jupyter and ``to_frame()``.
"""
from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from causal_hcc.results import ESTIMATE_COLUMNS

__all__ = ["Summary"]


def _f(v: Any, digits: int = 3) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "" if v is None else str(v)
    if not math.isfinite(x):
        return ""
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _p(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(x):
        return ""
    return "<0.001" if x < 0.001 else f"{x:.3f}"


class Summary:
    """Summary of an :class:`~causal_hcc.results.AnalysisResult`.

    Parameters
    ----------
    result : AnalysisResult
    outcome : str, optional
        Restrict to one outcome (default: all).

    Notes
    -----
    ``to_frame()`` returns the ``estimates.csv`` columns plus ``evalue`` and
    ``evalue_ci`` (VanderWeele & Ding 2017; see
    :mod:`causal_hcc.sensitivity`).
    """

    def __init__(self, result: Any, outcome: str | None = None) -> None:
        self.result = result
        self.outcome = outcome

    # -- data ---------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Estimates (``estimates.csv`` columns) with E-value columns."""
        from causal_hcc.sensitivity import evalues_for_result

        df = self.result.estimates_frame()
        ev = pd.DataFrame(evalues_for_result(self.result))
        if len(df):
            df["evalue"] = ev["evalue"].to_numpy() if len(ev) == len(df) else math.nan
            df["evalue_ci"] = ev["evalue_ci"].to_numpy() if len(ev) == len(df) else math.nan
        else:
            df = pd.DataFrame(columns=list(ESTIMATE_COLUMNS) + ["evalue", "evalue_ci"])
        if self.outcome is not None:
            df = df[df["outcome"] == self.outcome].reset_index(drop=True)
        return df

    def notes(self) -> list[str]:
        """Caveats: run-level warnings, then each strategy's warnings and notes (deduplicated)."""
        out: list[str] = list(self.result.warnings)
        for r in self.result.records:
            if self.outcome is not None and r.outcome != self.outcome:
                continue
            if r.error:
                out.append(f"{r.strategy} [{r.outcome}]: failed: {r.error}")
            for w in list(r.warnings) + list(r.notes):
                out.append(f"{r.strategy} [{r.outcome}]: {w}")
        return list(dict.fromkeys(out))

    def _header(self) -> list[tuple[str, str]]:
        res = self.result
        c = res.cohort or {}
        prov = res.provenance or {}
        title = str((res.spec or {}).get("title") or "") if isinstance(res.spec, dict) else ""
        h = [("Study", str(res.study))] + ([("Title", title)] if title else [])
        if "n" in c:
            h.append(("Patients", f"{c.get('n')} ({c.get('n_treated', '?')} treated)"))
        h.append(("Strategies", str(len({r.strategy for r in res.records}))))
        h.append(("Confidence level", f"{100 * (1 - res.alpha):g}%"))
        if prov.get("data_hash"):
            h.append(("Data hash", str(prov["data_hash"])[:16]))
        if res.truth is not None:
            h.append(("Truth", "known (digital twin)"))
        return h

    def _rows(self) -> list[list[str]]:
        df = self.to_frame()
        rows = []
        for _, e in df.iterrows():
            t = e["time"]
            ci = f"{_f(e['ci_lower'])} to {_f(e['ci_upper'])}" if _f(e["ci_lower"]) else ""
            rows.append([str(e["strategy"]), str(e["outcome"]), str(e["measure"]),
                         "" if t is None or (isinstance(t, float) and math.isnan(t)) else f"{float(t):g}",
                         _f(e["estimate"]), ci, _p(e["p_value"]), str(e["variance_method"]),
                         _f(e["evalue"]), _f(e["evalue_ci"])])
        return rows

    _COLS = ["strategy", "outcome", "measure", "time", "estimate", f"CI", "p", "variance", "E-value", "E-value CI"]

    # -- renderings -----------------------------------------------------------
    def as_text(self) -> str:
        """Plain-text rendering (fixed-width table plus notes)."""
        head = self._header()
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}}  {v}" for k, v in head]
        cols = list(self._COLS)
        cols[5] = f"{100 * (1 - self.result.alpha):g}% CI"
        rows = self._rows()
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
        sep = "  "
        table = [sep.join(c.ljust(widths[i]) for i, c in enumerate(cols)),
                 sep.join("-" * widths[i] for i in range(len(cols)))]
        table += [sep.join(v.ljust(widths[i]) for i, v in enumerate(r)) for r in rows]
        rule = "=" * max(len(table[0]), 40)
        out = [rule, *lines, rule, *table, rule]
        notes = self.notes()
        if notes:
            out.append("Notes:")
            out += [f"[{i + 1}] {n}" for i, n in enumerate(notes)]
        return "\n".join(out)

    def as_html(self) -> str:
        """HTML rendering; every string from the spec or the data is escaped."""
        e = html.escape
        cols = list(self._COLS)
        cols[5] = f"{100 * (1 - self.result.alpha):g}% CI"
        parts = ['<div class="causal-hcc-summary">', '<table class="summary-header">']
        parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in self._header()]
        parts.append("</table>")
        parts.append('<table class="summary-estimates"><thead><tr>'
                     + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr></thead><tbody>")
        for r in self._rows():
            parts.append("<tr>" + "".join(f"<td>{e(v)}</td>" for v in r) + "</tr>")
        parts.append("</tbody></table>")
        notes = self.notes()
        if notes:
            parts.append("<p><b>Notes</b></p><ol>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ol>")
        parts.append("</div>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.as_html()

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return f"<Summary of '{self.result.study}': {len(self.result.records)} records>"
