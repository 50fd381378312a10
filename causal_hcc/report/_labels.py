"""Readable names for the report: the spec's ``title`` and ``labels``, else column names written readably.

The report, its figures and :func:`causal_hcc.report.summary` speak in the
study's own words. ``labels: {portal_vein_invasion: "Portal vein invasion",
surgery: "Surgery", os: "Overall survival"}`` names columns (confounders, the
treatment), outcomes and arms (``treated``/``untreated``); a name without a
label is written readably (``portal_vein_invasion`` -> "Portal vein invasion",
``hbv`` -> "HBV", ``os`` -> "Overall survival"). Strategy labels
(``landmark(3,pfs-free)+iptw(ATO)``) stay the identifiers of ``estimates.csv``;
:meth:`Names.strategy` gives the words a clinician reads in the summary
("Landmark at 3 months, overlap weights").
"""
from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["Names", "readable", "names_of"]

#: outcome names commonly used as column or outcome names
OUTCOME_WORDS = {
    "os": "Overall survival", "pfs": "Progression-free survival", "dfs": "Disease-free survival",
    "efs": "Event-free survival", "rfs": "Recurrence-free survival", "css": "Cancer-specific survival",
    "ttp": "Time to progression", "mfs": "Metastasis-free survival",
}
#: short clinical abbreviations written in capitals
ACRONYMS = {
    "afp", "alt", "ast", "bclc", "bmi", "cea", "crp", "ecog", "egfr", "hbv", "hcv", "hcc", "hiv", "icu", "inr",
    "ldh", "psa", "tnm", "who", "ps", "ca", "ct", "mri", "pet", "rt", "tace", "rfa", "sbrt", "os", "pfs", "hr",
    "ci", "ckd", "copd", "nyha", "asa", "alp", "ggt", "pivka", "tki", "ici", "pd", "pr", "cr", "sd", "id",
    "mvi", "pvtt", "nlr", "plr", "albi", "meld",
}
#: short words that are words, not abbreviations
_WORDS = {"age", "sex", "met", "and", "or", "of", "by", "in", "at", "to", "the", "per", "day", "yes", "no", "on",
          "off", "arm", "low", "high", "dose", "site", "type", "size", "line", "time", "date", "new", "old", "any",
          "all", "one", "two", "bone", "lung", "node", "liver", "male", "female", "stage", "grade", "status"}


def _token(tok: str) -> str:
    low = tok.lower()
    if low in ACRONYMS:
        return tok.upper()
    if low in _WORDS or not low.isalpha():
        return low
    if len(low) <= 3 and not re.search(r"[aeiouy]", low):
        return tok.upper()
    return low


def readable(name: Any) -> str:
    """A column name written readably: ``portal_vein_invasion`` -> 'Portal vein invasion', ``hbv`` -> 'HBV'.

    Names that already contain capitals or spaces are kept as they are
    (``BCLC stage``); formula terms keep their shape (``rcs(age, 4)``).
    """
    s = str(name)
    if not s:
        return s
    if s.lower() in OUTCOME_WORDS:
        return OUTCOME_WORDS[s.lower()]
    if " " in s.strip() or (any(ch.isupper() for ch in s) and not s.isupper()) or "(" in s:
        return s
    parts = [p for p in re.split(r"[_.]+", s) if p]
    if not parts:
        return s
    words = [_token(p) for p in parts]
    out = " ".join(words)
    return out[0].upper() + out[1:] if out[0].islower() else out


def _lower_first(text: str) -> str:
    """'Surgery' -> 'surgery' for use inside a sentence; acronyms ('TACE', 'HBV status') are kept."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _num(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{x:g}" if math.isfinite(x) else str(v)


def treatment_column(spec: dict[str, Any] | None, default: str = "treatment") -> str:
    """The column that names the treatment: ``roles.treatment``, else ``roles.treatment_date`` (a spec on dates
    has no treatment column; "None" must never reach the page), else ``default``."""
    roles = (spec or {}).get("roles") or {}
    return str(roles.get("treatment") or roles.get("treatment_date") or default)


class Names:
    """The readable names of one result's study (title, columns, outcomes, treatment, arms, strategies)."""

    def __init__(self, result: Any) -> None:
        spec = result.spec if isinstance(getattr(result, "spec", None), dict) else {}
        self.labels: dict[str, str] = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
        self.study = str(getattr(result, "study", "") or spec.get("study", ""))
        self.title = str(spec.get("title") or self.study)
        roles = spec.get("roles") or {}
        self.treatment_column = treatment_column(spec)
        self.unit = str(spec.get("time_unit") or (getattr(result, "cohort", None) or {}).get("time_unit")
                        or "months")
        self._resolved = {s.get("label"): s for s in spec.get("resolved_strategies") or [] if isinstance(s, dict)}

    # -- columns and outcomes -------------------------------------------------------------
    def column(self, name: Any) -> str:
        """A column, an indicator column (``stage=II`` -> 'Stage: II') or a formula term, readably."""
        s = str(name)
        if s in self.labels:
            return self.labels[s]
        if "=" in s and ":" not in s:
            var, _, level = s.partition("=")
            return f"{self.column(var)}: {level}"
        if ":" in s and "(" not in s:
            return " × ".join(self.column(p) for p in s.split(":"))
        m = re.fullmatch(r"([A-Za-z_][\w.]*)('+)", s)  # spline columns age, age', age''
        if m:
            return self.column(m.group(1)) + m.group(2)
        m = re.fullmatch(r"(\w+)\(\s*([A-Za-z_][\w.]*)\s*(,.*)?\)", s)
        if m:
            fun, var = m.group(1), m.group(2)
            inner = self.column(var)
            if fun == "rcs":
                return f"{inner} (spline)"
            return f"{fun}({inner}{m.group(3) or ''})"
        return readable(s)

    def outcome(self, name: Any) -> str:
        """'Overall survival' for ``os`` (a label wins)."""
        s = str(name)
        return self.labels.get(s) or OUTCOME_WORDS.get(s.lower()) or readable(s)

    def outcome_lower(self, name: Any) -> str:
        return _lower_first(self.outcome(name))

    @property
    def treatment(self) -> str:
        """'Surgery' (the treatment column's label or readable name)."""
        return self.column(self.treatment_column)

    @property
    def treatment_lower(self) -> str:
        return _lower_first(self.treatment)

    @property
    def no_treatment(self) -> str:
        """'No surgery' (label ``untreated`` wins)."""
        return self.labels.get("untreated") or f"No {self.treatment_lower}"

    @property
    def favours(self) -> tuple[str, str]:
        """Forest-plot direction labels ('favours surgery', 'favours no surgery') for HR < 1 and HR > 1."""
        t = self.labels.get("treated") or self.treatment
        return f"favours {_lower_first(t)}", f"favours {_lower_first(self.no_treatment)}"

    def arm(self, group: Any) -> str:
        """An arm of a curve table in words: treated -> 'Surgery', never treat -> 'No surgery', ..."""
        g = str(group)
        if g in self.labels:
            return self.labels[g]
        treated = self.labels.get("treated") or self.treatment
        if g == "treated":
            return treated
        if g == "untreated":
            return self.no_treatment
        if g == "treated time":
            return f"{treated}, from its start"
        if g == "untreated time":
            return f"{self.no_treatment} (yet)"
        if g == "never treat":
            return self.no_treatment
        m = re.fullmatch(r"treat within ([0-9.eE+-]+)", g)
        if m:
            return f"{treated} within {_num(m.group(1))} {self.unit}"
        return readable(g)

    # -- strategies --------------------------------------------------------------------------
    def strategy(self, label: str, design: str = "", adjustment: str = "") -> str:
        """The words for a strategy ('Landmark at 3 months, overlap weights'); the label when unknown.

        A label given in the spec's ``labels`` wins.
        """
        if label in self.labels:
            return self.labels[label]
        if label.endswith("(univariate)"):  # the published analysis' univariate screen
            return self.strategy(label[: -len("(univariate)")].rstrip(), design, adjustment) + ", univariate"
        s = self._resolved.get(label) or {}
        design = s.get("design") or design
        adjustment = s.get("adjustment") or adjustment
        if not design:
            return label
        d_opts = s.get("design_options") or {}
        a_opts = s.get("adjustment_options") or {}
        unit = self.unit
        if design == "baseline":
            d = "From time zero (ever vs never treated)"
        elif design == "landmark":
            L = d_opts.get("landmark")
            if L is None:
                m = re.search(r"landmark\(\s*([0-9.eE+-]+)", label)
                L = m.group(1) if m else "L"
            d = f"Landmark at {_num(L)} {unit[:-1] if _num(L) == '1' and unit.endswith('s') else unit}"
        elif design == "time_varying":
            state = d_opts.get("adjust_state")
            word = {"pfs": "progression", "dfs": "recurrence", "rfs": "recurrence"}.get(str(state).lower(),
                                                                                       self.outcome_lower(state))
            d = "Time-varying exposure" + (f" with {word} state" if state else "")
        elif design == "sequential_trials":
            pp = d_opts.get("analysis") == "per_protocol"
            d = "Sequential trials" + (" (per protocol)" if pp else "")
        elif design == "clone_censor":
            g = d_opts.get("grace")
            if g is None:
                m = re.search(r"clone_censor\(\s*([0-9.eE+-]+)", label)
                g = m.group(1) if m else None
            d = "Clone–censor–weight" + (f", {self.treatment_lower} within {_num(g)} {unit} vs none"
                                         if g is not None else "")
            if adjustment == "none":
                return d
        else:
            d = readable(design)
        est = a_opts.get("estimand")
        if est is None:
            m = re.search(r"iptw\((AT[ETO])\)", label)
            est = m.group(1) if m else None
        adj = {
            "none": "unadjusted", "multivariable": "Cox-adjusted", "psm": "propensity matched",
            "gformula": "g-formula", "aiptw": "doubly robust (AIPTW)", "paper": "the published model",
            "iptw": {"ATO": "overlap weights", "ATT": "IPT weights (treated)", "ATE": "IPT weights"}.get(est or "",
                                                                                                  "IPT weights"),
            "msm": "marginal structural model",
        }.get(adjustment, readable(adjustment) if adjustment else "")
        if design == "baseline":
            if adjustment == "none":
                return "Naive: ever vs never treated, from time zero"
            if adjustment == "paper":
                return "Published model (from time zero)"
            return f"From time zero, {adj}"
        return f"{d}, {adj}" if adj else d

    def strategies(self, records: list[Any]) -> dict[str, str]:
        """label -> words for ``records``, made unique (a repeat gets its label in brackets)."""
        out: dict[str, str] = {}
        for r in records:
            if r.strategy not in out:
                out[r.strategy] = self.strategy(r.strategy, r.design, r.adjustment)
        seen: dict[str, int] = {}
        for v in out.values():
            seen[v] = seen.get(v, 0) + 1
        return {k: (v if seen[v] == 1 or k in self.labels else f"{v} [{k}]") for k, v in out.items()}


def names_of(result: Any) -> Names:
    """:class:`Names` of a result."""
    return Names(result)
