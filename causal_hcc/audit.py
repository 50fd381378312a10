"""Audit of a paper's reported statistics: recompute what a reader can recompute.

Input is a YAML file in the ``causal_hcc.audit/1`` format, documented at the
top of ``configs/published/zhang2024.yaml`` and summarised here:

``groups`` (required: ``treated``/``control`` with ``label`` and ``n``),
``table1`` (binary rows with counts per group and the reported p; continuous
rows flagged ``continuous: true``), ``text_imbalances`` (counts quoted in the
text with the paper's ``claim`` and whether they entered any model),
``ratios`` (HR/OR/RR with CI and p, the ``measure`` the model estimates and
what the table ``printed_as``), ``medians`` (Kaplan-Meier medians by group,
compared with ratio ids), ``consistency`` (numbers that must be ``equal`` or
``sum`` to a total), ``percentages`` (count / denominator vs printed
percent), and defaults ``rare_outcome`` and ``weibull_shapes``. Reported
p-values and percentages may be strings to keep trailing zeros: the number
of printed decimals sets the precision against which a recomputed value is
compared. All matching honours rounding: a check passes when some value
inside the printed rounding interval of every input reproduces the printed
output.

Checks
------
* every Table 1 p by Pearson chi-square, Yates-corrected chi-square and
  Fisher's exact test (two-sided), naming the tests that reproduce it;
* text-only imbalances against the paper's claim and its models;
* for each ratio: is the estimate the geometric centre of its CI; the p the
  CI implies (Wald, SE = (log U - log L) / (2 z)); the SE and the minimum
  number of events in the smaller group it implies (Var log HR ~ 1/d1 + 1/d0);
* the HR implied by the reported medians under proportional hazards
  (exponential: ratio of medians; Weibull shape k: its k-th power);
* counts that disagree, percentages that do not follow from their counts,
  "OR" printed for a hazard ratio;
* E-values of every ratio (point and CI limit nearer 1), with the
  common-outcome conversions of VanderWeele (2020); a ratio marked
  ``immortal_time: true`` (the treated counted from time zero although
  treated later) keeps its number with a caveat: immortal-time bias is part
  of its association, so its E-value overstates the robustness to
  unmeasured confounding.

References
----------
VanderWeele T.J., Ding P. Sensitivity analysis in observational research:
introducing the E-value. Ann Intern Med 167:268-274 (2017).
VanderWeele T.J. Optimal approximate conversions of odds ratios and hazard
ratios to risk ratios. Biometrics 76:746-752 (2020).
Altman D.G., Bland J.M. How to obtain the P value from a confidence
interval. BMJ 343:d2304 (2011).
Parmar M.K.B., Torri V., Stewart L. Extracting summary statistics to perform
meta-analyses of the published literature for survival endpoints. Stat Med
17:2815-2834 (1998) (Var log HR ~ 1/d1 + 1/d0).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from causal_hcc.core._dist import norm_ppf, norm_sf
from causal_hcc.errors import SpecError

AUDIT_COLUMNS: tuple[str, ...] = ("section", "check", "reported", "recomputed", "verdict", "detail")
VERDICTS: tuple[str, ...] = ("ok", "flag", "info", "not recomputable")

_TOP_KEYS = ("format", "paper", "groups", "rare_outcome", "weibull_shapes", "table1",
             "text_imbalances", "ratios", "medians", "consistency", "percentages")
_KEYS = {
    "table1": ("variable", "label", "treated", "control", "p", "continuous", "source"),
    "text_imbalances": ("variable", "label", "treated", "control", "claim", "in_models", "source"),
    "ratios": ("id", "table", "label", "measure", "printed_as", "estimate", "lower", "upper", "p",
               "level", "outcome", "groups", "rare_outcome", "treatment_effect", "immortal_time"),
    "medians": ("outcome", "treated", "control", "compare_with", "source"),
    "consistency": ("check", "kind", "values", "total", "parts"),
    "percentages": ("label", "count", "denominator", "percent", "source"),
}
_MEASURES = ("hr", "or", "rr")


# ----------------------------------------------------------------------------- E-value
def _evalue_rr(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): RR + sqrt(RR (RR - 1)), RR >= 1."""
    if rr < 1:
        rr = 1.0 / rr
    return rr + math.sqrt(rr * (rr - 1.0))


def _to_rr(x: float, measure: str, rare: bool) -> float:
    if measure == "rr" or rare:
        return x
    if measure == "or":
        return math.sqrt(x)
    # hazard ratio, common outcome (VanderWeele 2020)
    return (1.0 - 0.5 ** math.sqrt(x)) / (1.0 - 0.5 ** math.sqrt(1.0 / x))


def evalue(estimate: float, lo: float | None = None, hi: float | None = None,
           measure: str = "hr", rare: bool = False) -> dict[str, float]:
    """E-values of a ratio estimate and of its confidence limit nearer 1.

    Parameters
    ----------
    estimate, lo, hi : float
        Ratio and its confidence limits (limits optional).
    measure : {"hr", "or", "rr"}
        Scale of the ratio.
    rare : bool
        Outcome rare (< 15 % by end of follow-up): the ratio approximates a RR.
        Otherwise an OR is converted by its square root and an HR by
        ``(1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR))`` (VanderWeele 2020).

    Returns
    -------
    dict
        ``rr`` (the risk-ratio approximation), ``point`` (E-value of the
        estimate) and ``ci`` (E-value of the limit nearer 1; 1 if the CI
        contains 1; NaN if no limits).

    References
    ----------
    VanderWeele T.J., Ding P. Ann Intern Med 167:268-274 (2017).
    VanderWeele T.J. Biometrics 76:746-752 (2020).

    Examples
    --------
    >>> round(evalue(0.195, 0.061, 0.626)["point"], 2)
    5.46
    """
    if measure not in _MEASURES:
        raise SpecError(f"evalue: measure must be one of {', '.join(_MEASURES)} (got {measure!r})")
    for name, v in (("estimate", estimate), ("lo", lo), ("hi", hi)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise SpecError(f"evalue: {name} must be a positive finite ratio (got {v!r})")
    if lo is not None and hi is not None and not lo <= estimate <= hi:
        raise SpecError(f"evalue: estimate {estimate} lies outside its CI ({lo}, {hi})")
    rr = _to_rr(estimate, measure, rare)
    out = {"rr": rr, "point": _evalue_rr(rr), "ci": math.nan}
    if lo is not None and hi is not None:
        if lo <= 1.0 <= hi:
            out["ci"] = 1.0
        else:
            near = lo if estimate > 1 else hi
            out["ci"] = _evalue_rr(_to_rr(near, measure, rare))
    return out


# ----------------------------------------------------------------------------- helpers
def _decimals(v: Any) -> int:
    """Printed decimals of a reported number (strings keep trailing zeros)."""
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        return 3
    return max(0, -d.as_tuple().exponent)


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool):
        raise SpecError(f"{where}: expected a number (got {v!r})")
    try:
        x = float(str(v).strip().lstrip("<"))
    except (TypeError, ValueError):
        raise SpecError(f"{where}: expected a number (got {v!r})") from None
    if not math.isfinite(x):
        raise SpecError(f"{where}: expected a finite number (got {v!r})")
    return x


def _count(v: Any, where: str, n: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise SpecError(f"{where}: expected a non-negative integer count (got {v!r})")
    if n is not None and v > n:
        raise SpecError(f"{where}: count {v} exceeds the group size {n}")
    return v


def _half(v: Any) -> float:
    return 0.5 * 10.0 ** (-_decimals(v))


def _fmt(x: float, d: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    if x != 0 and abs(x) < 10 ** (-d):
        return f"{x:.1e}"
    return f"{x:.{d}f}"


def two_by_two_tests(a: int, n1: int, c: int, n0: int) -> dict[str, float]:
    """Two-sided p of Pearson chi-square, Yates chi-square and Fisher's exact test.

    ``a`` of ``n1`` vs ``c`` of ``n0``; scipy's Fisher p is R's ``fisher.test``
    (sum of tables no more likely than the observed one).
    """
    from scipy import stats  # here, not at module level: slow to import, and a run needs only the E-values

    t = np.array([[a, n1 - a], [c, n0 - c]])
    if (t.sum(axis=0) == 0).any():
        return {"pearson": 1.0, "yates": 1.0, "fisher": 1.0}
    return {
        "pearson": float(stats.chi2_contingency(t, correction=False)[1]),
        "yates": float(stats.chi2_contingency(t, correction=True)[1]),
        "fisher": float(stats.fisher_exact(t, alternative="two-sided")[1]),
    }


def ci_implied_p(estimate: float, lower: float, upper: float, level: float = 0.95) -> tuple[float, float]:
    """(p implied by the CI with the printed estimate, SE of the log ratio) -- Altman & Bland 2011."""
    z = norm_ppf(0.5 + level / 2)
    se = (math.log(upper) - math.log(lower)) / (2 * z)
    return float(2 * norm_sf(abs(math.log(estimate)) / se)), se


def _ci_p_range(r: Mapping[str, Any], level: float) -> tuple[float, float]:
    """Range of CI-implied p over the printed rounding of estimate and limits."""
    e, lo, hi = (_num(r[k], k) for k in ("estimate", "lower", "upper"))
    he, hl, hh = _half(r["estimate"]), _half(r["lower"]), _half(r["upper"])
    ps = []
    for de in (-he, he):
        for dl in (-hl, hl):
            for dh in (-hh, hh):
                if lo + dl > 0 and e + de > 0:
                    ps.append(ci_implied_p(e + de, lo + dl, hi + dh, level)[0])
    # |log e| may cross 0 inside the rounding interval
    if (e - he) <= 1.0 <= (e + he):
        ps.append(1.0)
    return min(ps), max(ps)


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class AuditResult:
    """Findings of an audit: ``table`` has columns :data:`AUDIT_COLUMNS`."""

    table: pd.DataFrame
    title: str = ""
    source: str = ""
    #: the published estimates of the treatment effect (ratios marked ``treatment_effect: true``)
    treatment_ratios: tuple[dict, ...] = ()

    def published_summary(self) -> dict[str, list[dict]]:
        """Published treatment-effect estimates by measure, for the report's forest plot."""
        out: dict[str, list[dict]] = {}
        for r in self.treatment_ratios:
            out.setdefault(str(r["measure"]), []).append(
                {"label": f"{r.get('table', '')} {r.get('label', '')}".strip(), "estimate": float(r["estimate"]),
                 "lower": float(r["lower"]), "upper": float(r["upper"]), "outcome": r.get("outcome")})
        return out

    @property
    def n_flags(self) -> int:
        return int((self.table["verdict"] == "flag").sum())

    def as_markdown(self) -> str:
        """A Markdown section (pipes and newlines in cells escaped)."""
        def cell(s: Any) -> str:
            return str(s).replace("|", "\\|").replace("\n", " ")
        lines = [f"## Audit of the reported statistics{': ' + cell(self.title) if self.title else ''}", "",
                 f"{self.n_flags} of {len(self.table)} checks flagged. Source: `{cell(self.source)}`.", ""]
        cols = list(AUDIT_COLUMNS)
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for _, row in self.table.iterrows():
            lines.append("| " + " | ".join(cell(row[c]) for c in cols) + " |")
        return "\n".join(lines) + "\n"

    def as_html(self) -> str:
        """An HTML section; every string is HTML-escaped."""
        e = html.escape
        head = "".join(f"<th>{e(c)}</th>" for c in AUDIT_COLUMNS)
        body = []
        for _, row in self.table.iterrows():
            cls = e(str(row["verdict"]).replace(" ", "-"))
            body.append(f'<tr class="verdict-{cls}">' +
                        "".join(f"<td>{e(str(row[c]))}</td>" for c in AUDIT_COLUMNS) + "</tr>")
        title = f": {e(self.title)}" if self.title else ""
        return (f'<section class="audit"><h2>Audit of the reported statistics{title}</h2>'
                f"<p>{self.n_flags} of {len(self.table)} checks flagged. Source: <code>{e(self.source)}</code>.</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></section>")

    def _repr_html_(self) -> str:
        return self.as_html()

    def to_csv(self, path: str | Path) -> None:
        """Write ``audit.csv`` (columns :data:`AUDIT_COLUMNS`)."""
        self.table.to_csv(path, index=False)


# ----------------------------------------------------------------------------- checks
class _Rows:
    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []

    def add(self, section: str, check: str, reported: str, recomputed: str, verdict: str, detail: str = "") -> None:
        if verdict not in VERDICTS:  # internal invariant, not an input check
            raise ValueError(f"unknown verdict {verdict!r}")
        self.rows.append({"section": section, "check": check, "reported": reported,
                          "recomputed": recomputed, "verdict": verdict, "detail": detail})


def _check_keys(items: Any, section: str) -> list[Mapping[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise SpecError(f"{section}: expected a list (got {type(items).__name__})")
    for i, it in enumerate(items):
        if not isinstance(it, Mapping):
            raise SpecError(f"{section}[{i}]: expected a mapping (got {type(it).__name__})")
        bad = [k for k in it if k not in _KEYS[section]]
        if bad:
            raise SpecError(f"{section}[{i}]: unknown key {bad[0]!r}; valid keys: {', '.join(_KEYS[section])}")
    return items


def _p_matches(p: float, reported: Any) -> bool:
    return abs(p - _num(reported, "p")) <= _half(reported) + 1e-12


def _table1(spec: Mapping[str, Any], n1: int, n0: int, out: _Rows) -> None:
    for i, r in enumerate(_check_keys(spec.get("table1"), "table1")):
        where = f"table1[{i}]"
        label = str(r.get("label", r.get("variable", where)))
        rep = r.get("p")
        if r.get("continuous"):
            out.add("Table 1 p-values", f"{label}: p", str(rep), "", "not recomputable",
                    "continuous row reported as median (IQR): the rank test needs the data")
            continue
        for k in ("treated", "control", "p"):
            if k not in r:
                raise SpecError(f"{where}: missing key {k!r}")
        a = _count(r["treated"], f"{where}.treated", n1)
        c = _count(r["control"], f"{where}.control", n0)
        _num(rep, f"{where}.p")
        ps = two_by_two_tests(a, n1, c, n0)
        matching = [name for name, p in ps.items() if _p_matches(p, rep)]
        rec = "; ".join(f"{k} {_fmt(v)}" for k, v in ps.items())
        names = {"pearson": "Pearson chi-square", "yates": "Yates chi-square", "fisher": "Fisher exact"}
        if matching:
            out.add("Table 1 p-values", f"{label}: p", str(rep), rec, "ok",
                    f"{a}/{n1} vs {c}/{n0}: reproduced by {', '.join(names[m] for m in matching)}")
        else:
            out.add("Table 1 p-values", f"{label}: p", str(rep), rec, "flag",
                    f"{a}/{n1} vs {c}/{n0}: no standard test gives {rep} (Fisher {_fmt(ps['fisher'])})")


def _imbalances(spec: Mapping[str, Any], n1: int, n0: int, out: _Rows) -> None:
    for i, r in enumerate(_check_keys(spec.get("text_imbalances"), "text_imbalances")):
        where = f"text_imbalances[{i}]"
        a = _count(r.get("treated"), f"{where}.treated", n1)
        c = _count(r.get("control"), f"{where}.control", n0)
        ps = two_by_two_tests(a, n1, c, n0)
        label = str(r.get("label", r.get("variable", where)))
        sig = [k for k, p in ps.items() if p < 0.05]
        verdict = "flag" if sig or r.get("in_models") is False else "info"
        detail = f"{a}/{n1} ({100 * a / n1:.1f}%) vs {c}/{n0} ({100 * c / n0:.1f}%)"
        if sig:
            detail += f"; p < 0.05 by {', '.join(sig)}, contradicting: {r.get('claim', 'the paper')!s}"
        if r.get("in_models") is False:
            detail += "; not adjusted for in any reported model"
        out.add("Imbalances reported only in the text", f"{label}: {r.get('source', '')}".rstrip(": "),
                f"{a}/{n1} vs {c}/{n0}", "; ".join(f"{k} {_fmt(v)}" for k, v in ps.items()), verdict, detail)


def _ratio_fields(r: Mapping[str, Any], where: str) -> tuple[float, float, float, float, str]:
    for k in ("estimate", "lower", "upper", "measure"):
        if k not in r:
            raise SpecError(f"{where}: missing key {k!r}")
    e, lo, hi = (_num(r[k], f"{where}.{k}") for k in ("estimate", "lower", "upper"))
    if not (0 < lo <= e <= hi):
        raise SpecError(f"{where}: need 0 < lower <= estimate <= upper (got {e} ({lo}-{hi}))")
    level = _num(r.get("level", 0.95), f"{where}.level")
    if not 0 < level < 1:
        raise SpecError(f"{where}.level: must be in (0, 1) (got {level})")
    m = str(r["measure"]).lower()
    if m not in _MEASURES:
        raise SpecError(f"{where}.measure: must be one of {', '.join(_MEASURES)} (got {r['measure']!r})")
    return e, lo, hi, level, m


def _ratios(spec: Mapping[str, Any], medians: list[Mapping[str, Any]], out: _Rows) -> dict[str, Mapping[str, Any]]:
    by_id: dict[str, Mapping[str, Any]] = {}
    rare_default = bool(spec.get("rare_outcome", False))
    reached = {}  # ratio id -> treated median reported (KM median reached)
    for m in medians:
        for rid in m.get("compare_with", []) or []:
            reached[rid] = m
    n1 = spec["groups"]["treated"]["n"]
    mislabels: dict[tuple[str, str, str], list[str]] = {}
    for i, r in enumerate(_check_keys(spec.get("ratios"), "ratios")):
        where = f"ratios[{i}]"
        e, lo, hi, level, m = _ratio_fields(r, where)
        rid = str(r.get("id", where))
        if rid in by_id:
            raise SpecError(f"{where}.id: duplicate id {rid!r}")
        by_id[rid] = r
        name = f"{r.get('table', '')} {r.get('label', rid)}".strip()
        printed = f"{e:g} ({lo:g}-{hi:g})"
        # geometric centre
        centre = math.sqrt(lo * hi)
        hl, hh, he = _half(r["lower"]), _half(r["upper"]), _half(r["estimate"])
        c_lo, c_hi = math.sqrt(max(lo - hl, 1e-300) * (hi - hh)), math.sqrt((lo + hl) * (hi + hh))
        ok = (e + he) >= c_lo and (e - he) <= c_hi
        out.add("Ratios: estimate vs CI", f"{name}: estimate is the geometric centre of its CI", printed,
                f"centre {_fmt(centre)}", "ok" if ok else "flag",
                f"sqrt(L*U) = {_fmt(centre)} (possible {_fmt(c_lo)}-{_fmt(c_hi)} given rounding); "
                f"estimate/centre = {_fmt(e / centre)}")
        # CI-implied p
        if r.get("p") is not None:
            p_ci, se = ci_implied_p(e, lo, hi, level)
            p_min, p_max = _ci_p_range(r, level)
            rep = _num(r["p"], f"{where}.p")
            hp = _half(r["p"])
            ok = (rep + hp) >= p_min - 1e-12 and (rep - hp) <= p_max + 1e-12
            p_centre = float(2 * norm_sf(abs(math.log(centre)) / se))
            out.add("Ratios: p implied by the CI", f"{name}: p", str(r["p"]), f"{_fmt(p_ci)}",
                    "ok" if ok else "flag",
                    f"Wald p from log({e:g}) / SE, SE = {_fmt(se, 4)} from the CI; range {_fmt(p_min)}-{_fmt(p_max)} "
                    f"over the printed rounding; with the CI centre instead: {_fmt(p_centre)}")
        # implied events
        _, se = ci_implied_p(e, lo, hi, level)
        d_min = 1.0 / se ** 2
        groups = r.get("groups")
        detail = (f"SE(log ratio) = {_fmt(se, 4)}; Var ~ 1/d1 + 1/d0 implies at least {d_min:.1f} events "
                  f"in the smaller group (exactly that many if the other group had infinitely many)")
        verdict = "info"
        if groups is not None:
            if not (isinstance(groups, list) and len(groups) == 2):
                raise SpecError(f"{where}.groups: expected [n_exposed, n_unexposed] (got {groups!r})")
            n_small = min(_count(g, f"{where}.groups") for g in groups)
            detail += f"; smaller group n = {n_small}"
            if d_min > n_small:
                verdict = "flag"
                detail += " -- more events than patients: impossible"
            med = reached.get(rid)
            if med is not None and m == "hr" and n_small == n1:
                d = max(1, round(d_min))
                must_censor = n_small - 2 * d
                if must_censor > n_small / 2:
                    verdict = "flag"
                    detail += (f"; yet a KM median ({med['treated']} months) is reported for this group: with "
                               f"{d} deaths the curve reaches 0.5 only if at most {2 * d} patients are at risk at the "
                               f"first of them, i.e. at least {must_censor} of {n_small} censored before it")
        out.add("Ratios: implied SE and events", f"{name}: events implied by the CI", printed,
                f"SE {_fmt(se, 4)}; >= {d_min:.1f} events", verdict, detail)
        # label (collected per table: one finding per mislabelled table)
        printed_as = r.get("printed_as")
        if printed_as is not None and str(printed_as).lower() != m:
            mislabels.setdefault((str(r.get("table", "")), str(printed_as), m), []).append(str(r.get("label", rid)))
        # E-value
        rare = bool(r.get("rare_outcome", rare_default))
        ev = evalue(e, lo, hi, measure=m, rare=rare)
        caveat = ""
        if r.get("immortal_time"):
            # the association is not only confounding: an E-value would credit all of it to confounding
            caveat = ("not a measure of robustness here: this ratio counts the treated from time zero although "
                      "they were treated later (immortal time), a bias no unmeasured confounder explains; the "
                      "E-value treats the whole association as confounding, so it overstates how strong an "
                      "unmeasured confounder would have to be. ")
        out.add("E-values", f"{name}: E-value", printed,
                f"{ev['point']:.2f} (CI {ev['ci']:.2f})" + ("; biased by immortal time" if caveat else ""), "info",
                caveat + f"{'rare' if rare else 'common'} outcome; RR approximation {_fmt(ev['rr'])}; the CI limit "
                f"nearer 1 {'includes 1' if ev['ci'] == 1.0 else 'gives ' + format(ev['ci'], '.2f')}")
    names = {"hr": "hazard ratios (Cox model)", "or": "odds ratios", "rr": "risk ratios"}
    for (table, printed_as, m), labels in mislabels.items():
        out.add("Labels", f"{table}: ratio column label".strip(": "), printed_as, m.upper(), "flag",
                f"'{printed_as}' printed for {names[m]} in {len(labels)} rows ({', '.join(labels)})")
    return by_id


def _medians(spec: Mapping[str, Any], ratios: dict[str, Mapping[str, Any]], out: _Rows) -> None:
    shapes = spec.get("weibull_shapes", [0.8, 1.3])
    if not (isinstance(shapes, list) and len(shapes) == 2):
        raise SpecError(f"weibull_shapes: expected [low, high] (got {shapes!r})")
    k_lo, k_hi = sorted(_num(s, "weibull_shapes") for s in shapes)
    for i, r in enumerate(_check_keys(spec.get("medians"), "medians")):
        where = f"medians[{i}]"
        mt, mc = _num(r.get("treated"), f"{where}.treated"), _num(r.get("control"), f"{where}.control")
        if mt <= 0 or mc <= 0:
            raise SpecError(f"{where}: medians must be positive (got {mt}, {mc})")
        ratio = mc / mt
        hr_exp = ratio
        hrs = sorted((ratio ** k_lo, ratio ** k_hi))
        for rid in r.get("compare_with", []) or []:
            if rid not in ratios:
                raise SpecError(f"{where}.compare_with: unknown ratio id {rid!r}; valid: {', '.join(ratios)}")
            rr = ratios[rid]
            e, lo, hi = (_num(rr[k], k) for k in ("estimate", "lower", "upper"))
            inside = hrs[0] - 1e-9 <= e <= hrs[1] + 1e-9
            ci_overlaps = lo <= hrs[1] and hi >= hrs[0]
            s_c = 0.5 ** (1.0 / e)
            out.add("Medians vs reported HR", f"{rr.get('table', '')} {rr.get('label', rid)} ({r.get('outcome', '')})".strip(),
                    f"HR {e:g} ({lo:g}-{hi:g}); medians {mt:g} vs {mc:g}",
                    f"HR {_fmt(hr_exp)} (exponential); {_fmt(hrs[0])}-{_fmt(hrs[1])} (Weibull shapes {k_hi:g}-{k_lo:g})",
                    "ok" if inside else "flag",
                    f"under proportional hazards the medians imply HR = ({mc:g}/{mt:g})^k; the CI "
                    f"{'overlaps' if ci_overlaps else 'excludes'} that range. Distribution-free: with HR {e:g}, "
                    f"S_control({mt:g}) must equal 0.5^(1/{e:g}) = {s_c:.3f} "
                    f"(exponential survival with median {mc:g} gives {0.5 ** (mt / mc):.3f})")


def _consistency(spec: Mapping[str, Any], out: _Rows) -> None:
    for i, r in enumerate(_check_keys(spec.get("consistency"), "consistency")):
        where = f"consistency[{i}]"
        kind = r.get("kind", "equal")
        check = str(r.get("check", where))
        if kind == "equal":
            vals = r.get("values")
            if not (isinstance(vals, list) and len(vals) >= 2):
                raise SpecError(f"{where}.values: expected a list of at least two {{value, source}}")
            nums = [_num(v.get("value"), f"{where}.values[{j}].value") for j, v in enumerate(vals)]
            ok = len(set(nums)) == 1
            out.add("Counts", check, " vs ".join(f"{v['value']}" for v in vals),
                    "equal" if ok else "differ", "ok" if ok else "flag",
                    "; ".join(f"{v['value']}: {v.get('source', '')}" for v in vals))
        elif kind == "sum":
            total, parts = r.get("total"), r.get("parts")
            if not isinstance(total, Mapping) or not isinstance(parts, list) or not parts:
                raise SpecError(f"{where}: kind 'sum' needs total: {{value, source}} and parts: [...]")
            t = _num(total.get("value"), f"{where}.total.value")
            s = sum(_num(p.get("value"), f"{where}.parts[{j}].value") for j, p in enumerate(parts))
            out.add("Counts", check, f"total {total['value']}", f"sum of parts {s:g}",
                    "ok" if abs(s - t) < 1e-9 else "flag",
                    " + ".join(f"{p['value']} ({p.get('source', '')})" for p in parts))
        else:
            raise SpecError(f"{where}.kind: must be 'equal' or 'sum' (got {kind!r})")


def _percentages(spec: Mapping[str, Any], out: _Rows) -> None:
    for i, r in enumerate(_check_keys(spec.get("percentages"), "percentages")):
        where = f"percentages[{i}]"
        k = _count(r.get("count"), f"{where}.count")
        n = _count(r.get("denominator"), f"{where}.denominator")
        if n == 0 or k > n:
            raise SpecError(f"{where}: need 0 <= count <= denominator and denominator > 0 (got {k}/{n})")
        pct = 100.0 * k / n
        rep = _num(r.get("percent"), f"{where}.percent")
        ok = abs(pct - rep) <= _half(r.get("percent")) + 1e-9
        out.add("Percentages", str(r.get("label", where)), f"{r.get('percent')}%", f"{k}/{n} = {pct:.2f}%",
                "ok" if ok else "flag", str(r.get("source", "")))


def load_published(path: str | Path) -> dict[str, Any]:
    """Read and validate the top level of a published-statistics YAML."""
    from causal_hcc.config import read_spec_file

    p = Path(path)
    # the spec file's checks: regular file (no FIFO), size, encoding, binary, aliases, nesting, duplicate keys
    spec = read_spec_file(p, what="published tables")
    if not isinstance(spec, Mapping):
        raise SpecError(f"{p}: expected a mapping at the top level")
    bad = [k for k in spec if k not in _TOP_KEYS]
    if bad:
        raise SpecError(f"{p}: unknown key {bad[0]!r}; valid keys: {', '.join(_TOP_KEYS)}")
    fmt = spec.get("format", "causal_hcc.audit/1")
    if fmt != "causal_hcc.audit/1":
        raise SpecError(f"{p}: format must be 'causal_hcc.audit/1' (got {fmt!r})")
    g = spec.get("groups")
    if not isinstance(g, Mapping) or not all(isinstance(g.get(k), Mapping) for k in ("treated", "control")):
        raise SpecError(f"{p}: groups must give treated and control, each with label and n")
    for k in ("treated", "control"):
        n = g[k].get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(f"{p}: groups.{k}.n must be a positive integer (got {n!r})")
    return dict(spec)


def run_audit(path: str | Path) -> AuditResult:
    """Recompute a paper's reported statistics from its transcribed tables.

    Parameters
    ----------
    path : str or Path
        YAML in the ``causal_hcc.audit/1`` format (see module docstring).

    Returns
    -------
    AuditResult
        ``table`` with one row per check (columns :data:`AUDIT_COLUMNS`),
        ``as_markdown()``, ``as_html()``, ``to_csv(path)``.

    Raises
    ------
    SpecError
        One line naming the key or entry at fault.

    References
    ----------
    VanderWeele & Ding (2017); VanderWeele (2020); Altman & Bland (2011);
    Parmar, Torri & Stewart (1998) -- see the module docstring.
    """
    spec = load_published(path)
    n1, n0 = spec["groups"]["treated"]["n"], spec["groups"]["control"]["n"]
    out = _Rows()
    _table1(spec, n1, n0, out)
    _imbalances(spec, n1, n0, out)
    medians = _check_keys(spec.get("medians"), "medians")
    ratios = _ratios(spec, medians, out)
    _medians(spec, ratios, out)
    _consistency(spec, out)
    _percentages(spec, out)
    title = ""
    if isinstance(spec.get("paper"), Mapping):
        title = " ".join(str(spec["paper"].get("title", "")).split())
    table = pd.DataFrame(out.rows, columns=list(AUDIT_COLUMNS))
    treat = tuple(dict(r) for r in (spec.get("ratios") or []) if isinstance(r, Mapping) and r.get("treatment_effect"))
    return AuditResult(table=table, title=title, source=str(path), treatment_ratios=treat)
