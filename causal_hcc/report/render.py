"""Write the report (HTML, Markdown, optional PDF) from an AnalysisResult.

Nothing is refitted: the report is a pure function of the result (so
``causal-hcc report RESULTS_DIR`` rebuilds it from ``results.json``). Only
aggregate numbers are shown. Every string that comes from the spec or the
data is escaped: HTML through Jinja2 autoescaping, Markdown through a
finalizer that escapes HTML and Markdown metacharacters in every value not
explicitly marked as Markdown produced here (:class:`MdSafe`).

``report.html`` is self-contained: figures are base64 PNGs, the style sheet
and the small table-sorting script are inline, and no resource is loaded
from the network.
"""
from __future__ import annotations

import base64
import html as _html
import math
import os
import re
from typing import Any, Sequence

import numpy as np

from causal_hcc.errors import OutputError, SpecError
from causal_hcc.report.summary import _p
from causal_hcc.results import ESTIMATE_COLUMNS

__all__ = ["write_report", "build_context", "render_html", "render_markdown", "REPORT_FORMATS"]

REPORT_FORMATS = ("html", "md", "pdf")

REFERENCES = {
    "rubin": "Rubin DB. Multiple Imputation for Nonresponse in Surveys. New York: Wiley; 1987.",
    "barnard": "Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation. "
               "Biometrika 1999;86:948-955.",
    "white": "White IR, Royston P. Imputing missing covariate values for the Cox model. Stat Med 2009;28:1982-1998.",
    "evalue": "VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the E-value. "
              "Ann Intern Med 2017;167:268-274.",
    "hrconv": "VanderWeele TJ. Optimal approximate conversions of odds ratios and hazard ratios to risk ratios. "
              "Biometrics 2020;76:746-752.",
    "lin": "Lin DY, Psaty BM, Kronmal RA. Assessing the sensitivity of regression results to unmeasured "
           "confounders in observational studies. Biometrics 1998;54:948-963.",
    "dowhy": "Sharma A, Kiciman E. DoWhy: an end-to-end library for causal inference. arXiv:2011.04216, 2020.",
    "suissa": "Suissa S. Immortal time bias in pharmaco-epidemiology. Am J Epidemiol 2008;167:492-499.",
    "austin": "Austin PC. Balance diagnostics for comparing the distribution of baseline covariates between "
              "treatment groups in propensity-score matched samples. Stat Med 2009;28:3083-3107.",
    "hernan": "Hernan MA, Robins JM. Using big data to emulate a target trial when a randomized trial is not "
              "available. Am J Epidemiol 2016;183:758-764.",
    "peduzzi": "Peduzzi P, Concato J, Feinstein AR, Holford TR. Importance of events per independent variable in "
               "proportional hazards regression analysis. J Clin Epidemiol 1995;48:1503-1510.",
}


# ---------------------------------------------------------------------------
# Markdown escaping
# ---------------------------------------------------------------------------
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


def _md_finalize(value: Any) -> Any:
    return value if isinstance(value, MdSafe) else md_escape(value)


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------
def _f(v: Any, digits: int = 3) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "" if v is None else str(v)
    if not math.isfinite(x):
        return ""
    return f"{x:.{digits}g}"


def _ci(lo: Any, hi: Any) -> str:
    a, b = _f(lo), _f(hi)
    return f"{a} to {b}" if a and b else ""


def _time(t: Any) -> str:
    if t is None:
        return ""
    try:
        x = float(t)
    except (TypeError, ValueError):
        return str(t)
    return "" if not math.isfinite(x) else f"{x:g}"


MEASURE_NAMES = {"hr": "HR", "survival_difference": "survival difference", "rmst_difference": "RMST difference",
                 "median_difference": "median difference"}


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------
class _Figures:
    """Rendered figures: name -> (title, png bytes); the Figure objects are kept for the PDF."""

    def __init__(self, keep: bool) -> None:
        self.items: list[dict[str, Any]] = []
        self.keep = keep

    def add(self, name: str, title: str, fig: Any) -> dict[str, Any]:
        from causal_hcc.report.figures import figure_png

        png = figure_png(fig)
        item = {"name": name, "title": title, "png": png, "file": f"figures/{name}.png",
                "b64": base64.b64encode(png).decode("ascii"), "fig": fig if self.keep else None}
        self.items.append(item)
        return item


def _safe_draw(figs: _Figures, name: str, title: str, width: float, height: float, draw) -> dict[str, Any] | None:
    from causal_hcc.report.figures import new_figure

    fig = new_figure(width, height)
    try:
        draw(fig)
    except SpecError:
        return None
    return figs.add(name, title, fig)


# ---------------------------------------------------------------------------
# context
# ---------------------------------------------------------------------------
def _records(result: Any, outcome: str | None) -> list[Any]:
    return [r for r in result.records if r.outcome == outcome and not r.error]


def _header(result: Any) -> dict[str, Any]:
    import yaml

    prov = result.provenance or {}
    src = prov.get("data_source")
    if isinstance(src, dict):
        src_text = ", ".join(f"{k}: {v}" for k, v in src.items() if not isinstance(v, (dict, list)))
    else:
        src_text = "" if src is None else str(src)
    versions = prov.get("versions") or {}
    items = [("Study", result.study), ("Data source", src_text), ("Data hash (sha256)", prov.get("data_hash", "")),
             ("Spec hash", prov.get("spec_hash", "")), ("Date", prov.get("date", "")), ("Seed", prov.get("seed", "")),
             ("Command", prov.get("command", "")),
             ("Confidence level", f"{100 * (1 - result.alpha):g}%")]
    items += [(k, v) for k, v in prov.items()
              if k not in ("data_source", "data_hash", "spec_hash", "date", "seed", "versions", "command")
              and not isinstance(v, (dict, list))]
    try:
        spec_text = yaml.safe_dump(result.spec, sort_keys=False, allow_unicode=True, default_flow_style=None)
    except yaml.YAMLError:  # pragma: no cover - spec comes from JSON, always dumpable
        spec_text = str(result.spec)
    return {"items": [(k, "" if v is None else str(v)) for k, v in items if v not in (None, "")],
            "versions": [(k, str(v)) for k, v in versions.items()], "spec_yaml": spec_text}


def _table1(result: Any) -> dict[str, Any] | None:
    t1 = (result.cohort or {}).get("table1")
    if not isinstance(t1, dict) or not t1.get("rows"):
        return None
    arms = list(t1.get("arms", ["untreated", "treated"]))
    n = t1.get("n", {})
    rows = []
    for r in t1["rows"]:
        label = str(r.get("variable", "")) if r.get("level") is None else f"    {r.get('level')}"
        kind = r.get("kind", "")
        if kind == "continuous" and r.get("level") is None:
            label += ", median (IQR)"
        elif kind == "binary" and r.get("level") is None:
            label += ", n (%)"
        text = r.get("text") or {}
        rows.append({"label": label, "indent": r.get("level") is not None,
                     "cells": [str(text.get(a, "")) for a in arms], "smd": _f(r.get("smd"), 2)})
    return {"arms": [f"{a} (n={n.get(a, '?')})" for a in arms], "rows": rows,
            "min_cell": t1.get("min_cell", 0), "suppressed": t1.get("suppressed", 0)}


def _df(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    return f"{x:.0f}" if math.isfinite(x) else ""


def _missing(result: Any) -> dict[str, Any] | None:
    """Multiple imputation: settings, missingness table and the fraction of missing information."""
    mi = (result.cohort or {}).get("missing")
    if not isinstance(mi, dict):
        return None

    def pct(v: Any) -> str:
        return "" if v is None else f"{float(v):.1f}%"

    table = mi.get("table") or {}
    rows = [[str(r.get("column")), str(r.get("n_missing")), pct(r.get("pct_missing"))] for r in table.get("rows", [])]
    fmi = []
    for rec in result.records:
        for p in ((rec.diagnostics or {}).get("imputation") or {}).get("pooling", []):
            fmi.append([rec.strategy, rec.outcome, MEASURE_NAMES.get(p.get("measure"), p.get("measure")),
                        _time(p.get("time")), _f(p.get("fmi")), _f(p.get("riv")), _df(p.get("df"))])
    settings = (f"multiple imputation by chained equations, predictive mean matching: m = {mi.get('m')} imputed "
                f"data sets, {mi.get('iterations')} iterations, {mi.get('donors')} donors, seed {mi.get('seed')}; "
                f"imputed: {', '.join(mi.get('imputed_columns') or []) or 'none'}; predictors: {mi.get('predictors')}")
    return {"settings": settings, "imputed": bool(mi.get("imputed_columns")), "rows": rows, "n": table.get("n"), "complete_cases": table.get("complete_cases"),
            "pct_complete": pct(table.get("pct_complete")), "min_cell": table.get("min_cell", 0), "fmi": fmi}


def _flows(result: Any) -> list[dict[str, Any]]:
    groups: dict[tuple, list[str]] = {}
    designs: dict[tuple, str] = {}
    for r in result.records:
        fl = r.diagnostics.get("flow") if isinstance(r.diagnostics, dict) else None
        if not fl:
            continue
        key = tuple((str(s), str(n)) for s, n in fl)
        groups.setdefault(key, [])
        label = f"{r.strategy} [{r.outcome}]"
        if label not in groups[key]:
            groups[key].append(label)
        designs.setdefault(key, r.design)
    return [{"design": designs[k], "strategies": ", ".join(v), "steps": [{"step": s, "n": n} for s, n in k]}
            for k, v in groups.items()]


def _estimate_rows(result: Any) -> list[dict[str, str]]:
    rows = []
    for e in result.estimates:
        d = e.as_row()
        rows.append({c: (_f(d[c], 4) if c in ("estimate", "se", "ci_lower", "ci_upper") else
                         _p(d[c]) if c == "p_value" else _time(d[c]) if c == "time" else
                         "" if d[c] is None else str(d[c])) for c in ESTIMATE_COLUMNS})
    return rows


def _truth_rows(result: Any) -> list[dict[str, str]]:
    """One row per estimate with a truth: that of the row's own estimand (or, for a contrast that
    is not causal, of the estimand the paper claimed, labelled so)."""
    rows = []
    for r in result.records:
        for e in r.estimates:
            tr = result.truth_for(e)
            tv = tr["value"]
            if tv is None or not math.isfinite(e.estimate):
                continue
            if e.measure == "hr":
                if e.estimate <= 0 or tv <= 0:
                    continue
                err = e.estimate / tv
                err_text, key = f"x{err:.2f} (log error {math.log(err):+.2f})", abs(math.log(err))
            else:
                err = e.estimate - tv
                err_text, key = f"{err:+.3g}", abs(err)
            covers = (e.ci_lower <= tv <= e.ci_upper) if np.isfinite(e.ci_lower) and np.isfinite(e.ci_upper) else None
            rows.append({"strategy": e.strategy or r.strategy, "outcome": r.outcome, "estimand": e.estimand,
                         "truth_kind": {"own": "own estimand", "claimed": "paper's claimed estimand (row not causal)"
                                        }.get(tr["kind"], tr["kind"]),
                         "measure": MEASURE_NAMES.get(e.measure, e.measure), "time": _time(e.time),
                         "truth": _f(tv), "estimate": _f(e.estimate), "ci": _ci(e.ci_lower, e.ci_upper),
                         "error": err_text, "covers": {True: "yes", False: "NO", None: ""}[covers], "_key": key,
                         "_m": e.measure})
    rows.sort(key=lambda x: (x["_m"], x["time"], x["_key"]))
    return rows


def _warnings(result: Any) -> list[dict[str, str]]:
    out = [{"where": "run", "text": str(w)} for w in result.warnings]
    for r in result.records:
        if r.error:
            out.append({"where": f"{r.strategy} [{r.outcome}]", "text": f"failed: {r.error}"})
        out += [{"where": f"{r.strategy} [{r.outcome}]", "text": str(w)} for w in r.warnings]
    seen, uniq = set(), []
    for w in out:
        k = (w["where"], w["text"])
        if k not in seen:
            seen.add(k)
            uniq.append(w)
    return uniq


def _diag_items(rec: Any) -> list[tuple[str, str]]:
    d = rec.diagnostics if isinstance(rec.diagnostics, dict) else {}
    items: list[tuple[str, str]] = []
    w = d.get("weights")
    if isinstance(w, dict):
        items += [("weights", f"{w.get('estimand', '')}: min {_f(w.get('min'))}, max {_f(w.get('max'))}"),
                  ("ESS", f"treated {_f(w.get('ess_treated'))}, untreated {_f(w.get('ess_untreated'))}")]
        if w.get("top5"):
            items.append(("top 5 weights", ", ".join(_f(v) for v in w["top5"])))
        items.append(("truncated / trimmed", f"{w.get('n_truncated', 0)} / {w.get('n_trimmed', 0)}"))
    m = d.get("matching")
    if isinstance(m, dict):
        items.append(("matching", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m.items())))
    p = d.get("propensity")
    if isinstance(p, dict):
        items.append(("propensity", f"range {_f(p.get('min'))} to {_f(p.get('max'))}, "
                                    f"{p.get('n_near_0_or_1', 0)} near 0 or 1"
                      + (f", learner {p['learner']}" if p.get("learner") else "")))
    b = d.get("balance")
    if isinstance(b, dict) and b.get("smd_after"):
        vals = [abs(float(v)) for v in b["smd_after"] if v is not None]
        if vals:
            items.append(("max |SMD| after", _f(max(vals), 2)))
    if "events_per_variable" in d:
        items.append(("events per variable", _f(d["events_per_variable"])))
    if "events_per_variable_smaller_arm" in d:
        items.append(("events per variable, smaller arm", _f(d["events_per_variable_smaller_arm"])))
    lr = d.get("logrank")
    if isinstance(lr, dict):
        items.append(("log-rank", f"chi2 {_f(lr.get('chi2'))}, df {lr.get('df')}, p {_p(lr.get('p_value'))}"))
    bs = d.get("bootstrap")
    if isinstance(bs, dict):
        items.append(("bootstrap", f"{bs.get('replicates')} replicates, {bs.get('failed', 0)} failed, "
                                   f"seed {bs.get('seed')}"))
    return items


def _ph_tables(result: Any) -> list[dict[str, Any]]:
    """Per outcome, the treatment term of every Cox fit's cox.zph test (``diagnostics["ph_test"]``)."""
    by_outcome: dict[str, list[dict[str, str]]] = {}
    for r in result.records:
        ph = (r.diagnostics or {}).get("ph_test")
        if not isinstance(ph, dict) or "terms" not in ph:
            continue
        tr = next((t for t in ph["terms"] if t.get("term") == "treatment"), None)
        if tr is None:
            continue
        g = ph.get("global") or {}
        by_outcome.setdefault(r.outcome, []).append({
            "strategy": r.strategy, "chisq": _f(tr.get("chisq"), 4), "p": _f(tr.get("p"), 3),
            "global_p": _f(g.get("p"), 3), "flag": "PH doubtful" if (tr.get("p") or 1.0) < 0.05 else ""})
    return [{"outcome": o, "rows": rows} for o, rows in by_outcome.items()]


def _evalue_rows(result: Any) -> list[dict[str, str]]:
    from causal_hcc.sensitivity import evalues_for_result

    rows = []
    for r in evalues_for_result(result):
        if r["measure"] not in ("hr", "survival_difference"):
            continue
        rows.append({"strategy": r["strategy"], "outcome": r["outcome"],
                     "measure": MEASURE_NAMES.get(r["measure"], r["measure"]), "time": _time(r["time"]),
                     "estimate": _f(r["estimate"]), "ci": _ci(r["ci_lower"], r["ci_upper"]),
                     "evalue": _f(r["evalue"], 3), "evalue_ci": _f(r["evalue_ci"], 3),
                     "conversion": {"hr-common": "HR, common outcome (sqrt conversion)",
                                    "hr-rare": "HR ~ RR (rare outcome)",
                                    "survival-difference": "risk ratio at t", "none": ""}.get(r["conversion"], ""),
                     "note": r["note"]})
    return rows


def _tipping(result: Any, outcome: str | None, chosen: Sequence[str]) -> dict[str, Any]:
    from causal_hcc.sensitivity import tipping_point

    summary, grids = [], []
    for r in _records(result, outcome):
        e = next((e for e in r.estimates if e.measure == "hr" and e.estimate > 0 and math.isfinite(e.estimate)), None)
        if e is None:
            continue
        tp = tipping_point(e.estimate, e.ci_lower, e.ci_upper, hr_ud=(1.5, 2.0, 3.0, 5.0))

        def pct(v: Any) -> str:
            return "not reachable" if v is None else f"{100 * v:.0f} pp"
        summary.append({"strategy": r.strategy, "hr": _f(e.estimate), "ci": _ci(e.ci_lower, e.ci_upper),
                        **{f"p{i}": pct(v) for i, v in enumerate(tp["tipping_difference"])},
                        **{f"c{i}": pct(v) for i, v in enumerate(tp["tipping_difference_ci"])}})
        if r.strategy in chosen:
            full = tipping_point(e.estimate, e.ci_lower, e.ci_upper)
            cells = []
            for i, g in enumerate(full["hr_ud"]):
                row = []
                for j, _ in enumerate(full["prevalence_difference"]):
                    a, lim = full["adjusted_hr"][i][j], full["adjusted_ci_limit"][i][j]
                    mark = " *" if full["moves_point_to_null"][i][j] else (" +" if full["moves_ci_to_null"][i][j] else "")
                    row.append(f"{_f(a)} ({_f(lim)}){mark}")
                cells.append({"hr_ud": _f(g), "cells": row})
            grids.append({"strategy": r.strategy, "hr": _f(e.estimate), "ci": _ci(e.ci_lower, e.ci_upper),
                          "direction": full["direction"],
                          "diffs": [f"{100 * d:.0f} pp" for d in full["prevalence_difference"]], "rows": cells})
    return {"summary": summary, "grids": grids, "hr_ud": ["1.5", "2", "3", "5"]}


def _methods(result: Any) -> dict[str, Any]:
    """Methods paragraphs generated from the spec and the records, with references."""
    from causal_hcc import strategies as reg

    try:
        reg.load()
    except Exception:  # noqa: BLE001 - a broken plug-in must not stop the report
        pass
    spec = result.spec or {}
    recs = result.records
    designs = list(dict.fromkeys(r.design for r in recs))
    adjs = list(dict.fromkeys(r.adjustment for r in recs))
    refs: list[str] = []

    def ref(text: str) -> int:
        if text not in refs:
            refs.append(text)
        return refs.index(text) + 1

    def describe(kind: str, name: str) -> str:
        table = reg.DESIGNS if kind == "design" else reg.ADJUSTMENTS
        cls = table.get(name)
        if cls is None:
            return name
        cites = "".join(f"[{ref(r)}]" for r in getattr(cls, "references", ()) or ())
        desc = (getattr(cls, "description", "") or "").strip().rstrip(".")
        return f"{name} ({desc}){cites}" if desc else f"{name}{cites}"

    paras = []
    conf = spec.get("confounders") or []
    n_s = len({r.strategy for r in recs})
    paras.append(f"We estimated the effect of {(spec.get('roles') or {}).get('treatment', 'the treatment')} on "
                 f"{', '.join(dict.fromkeys(r.outcome for r in recs))} under {n_s} analysis strategies, each combining "
                 f"a design (where follow-up starts and who counts as treated) with an adjustment (how the arms are "
                 f"made comparable). Designs: {'; '.join(describe('design', d) for d in designs)}. "
                 f"Adjustments: {'; '.join(describe('adjustment', a) for a in adjs)}.")
    if conf:
        paras.append(f"Confounders: {', '.join(map(str, conf))}.")
    est = spec.get("estimands") or {}
    targets = ["hazard ratios (Cox model)"]
    if est.get("survival_at"):
        targets.append(f"survival differences at {', '.join(_time(t) for t in est['survival_at'])} "
                       f"{spec.get('time_unit', '')}".rstrip())
    if est.get("rmst_tau"):
        targets.append(f"restricted mean survival time differences up to {_time(est['rmst_tau'])} "
                       f"{spec.get('time_unit', '')}".rstrip())
    paras.append("Effect measures: " + "; ".join(targets) + " (treated minus untreated).")
    vm: dict[str, list[str]] = {}
    for r in recs:
        for e in r.estimates:
            if e.measure == "median_difference" and e.variance_method == "none":
                continue  # medians carry no SE unless bootstrapped: said once below
            vm.setdefault(e.variance_method, [])
            if r.strategy not in vm[e.variance_method]:
                vm[e.variance_method].append(r.strategy)
    vm_names = {"model": "model-based", "robust": "robust sandwich", "cluster_robust": "cluster-robust sandwich",
                "influence_function": "influence-function", "bootstrap": "whole-pipeline bootstrap",
                "greenwood": "Greenwood", "rubin": "Rubin's rules (multiple imputation)", "none": "no"}
    if vm:
        parts = [f"{vm_names.get(k, k)} variance for {', '.join(v)}" for k, v in vm.items()]
        boot = spec.get("bootstrap") or {}
        level = f"{100 * (1 - result.alpha):g}%"
        tail = ""
        if "bootstrap" in vm and boot:
            kinds = {"percentile": "percentile", "normal": "normal (estimate ± z × bootstrap SE)",
                     "bca": "bias-corrected and accelerated (BCa)"}
            per = {}
            for s in spec.get("resolved_strategies") or []:
                if s.get("label") in vm["bootstrap"]:
                    per[s["label"]] = s.get("bootstrap_ci") or boot.get("ci") or "percentile"
            default = boot.get("ci") or "percentile"
            special = [f"{kinds.get(c, c)} for {lab}" for lab, c in per.items() if c != default]
            tail = (f" Bootstrap: {boot.get('replicates')} replicates resampling patients and re-running the whole "
                    f"pipeline (seed {boot.get('seed')}); {level} bootstrap intervals are {kinds.get(default, default)}"
                    + (f" ({'; '.join(special)})" if special else "") + ", on the log scale for HRs.")
        paras.append("Standard errors: " + "; ".join(parts) + "." + tail
                     + f" Other confidence intervals are {level} Wald intervals (log scale for HRs). Median "
                     "differences are reported without a standard error unless bootstrapped.")
    mi = (result.cohort or {}).get("missing")
    if isinstance(mi, dict) and mi.get("imputed_columns"):
        paras.append(
            f"Missing values of {', '.join(mi['imputed_columns'])} were multiply imputed ({mi.get('m')} data sets) by "
            f"chained equations with predictive mean matching, the imputation models including the other "
            f"confounders, the treatment, the event indicator and the Nelson-Aalen cumulative hazard of every "
            f"outcome [{ref(REFERENCES['white'])}]. Every strategy was fitted on each imputed data set and the "
            f"estimates combined by Rubin's rules [{ref(REFERENCES['rubin'])}] (hazard ratios on the log scale, "
            f"differences on their own scale), with t intervals on Barnard-Rubin degrees of freedom "
            f"[{ref(REFERENCES['barnard'])}]; strategies with bootstrap standard errors were bootstrapped within "
            f"each imputed data set.")
    paras.append(f"Sensitivity to unmeasured confounding was summarised by E-values [{ref(REFERENCES['evalue'])}], "
                 f"converting hazard ratios to risk ratios where the outcome is common "
                 f"[{ref(REFERENCES['hrconv'])}], and by the bias of an unmeasured binary confounder "
                 f"[{ref(REFERENCES['lin'])}].")
    sens = (result.extras or {}).get("sensitivity") or {}
    if sens.get("dag") or sens.get("refuters"):
        paras.append(f"A causal graph and refutation tests followed DoWhy [{ref(REFERENCES['dowhy'])}].")
    versions = (result.provenance or {}).get("versions") or {}
    if versions:
        paras.append("Software: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    return {"paragraphs": paras, "references": refs}


def _limitations(result: Any) -> list[str]:
    out = []
    recs = [r for r in result.records if not r.error]
    def unique(names):
        return list(dict.fromkeys(names))

    epv = [(f"{r.strategy} [{r.outcome}]", float(r.diagnostics["events_per_variable"])) for r in recs
           if isinstance(r.diagnostics.get("events_per_variable"), (int, float))
           and float(r.diagnostics["events_per_variable"]) < 10]
    if epv:
        out.append("Few events per variable (< 10) in " + ", ".join(f"{s} ({v:.1f})" for s, v in epv)
                   + ": the outcome model may be overfitted and its SE unreliable (Peduzzi et al. 1995).")
    pos = unique(r.strategy for r in recs if isinstance(r.diagnostics.get("propensity"), dict)
                 and (r.diagnostics["propensity"].get("n_near_0_or_1") or 0) > 0)
    if pos:
        out.append("Positivity: propensity scores near 0 or 1 in " + ", ".join(pos)
                   + "; weights are unstable and estimates lean on few patients.")
    ess = unique(r.strategy for r in recs if isinstance(r.diagnostics.get("weights"), dict)
                 and any(isinstance(r.diagnostics["weights"].get(k), (int, float)) and r.diagnostics["weights"][k] < 20
                         for k in ("ess_treated", "ess_untreated")))
    if ess:
        out.append("Effective sample size below 20 in an arm for " + ", ".join(ess) + ".")
    unm = [(f"{r.strategy} [{r.outcome}]", r.diagnostics["matching"].get("unmatched_treated")) for r in recs
           if isinstance(r.diagnostics.get("matching"), dict) and (r.diagnostics["matching"].get("unmatched_treated") or 0) > 0]
    if unm:
        out.append("Unmatched treated patients (" + ", ".join(f"{s}: {k}" for s, k in unm) + "): the matched "
                   "estimate refers to the treated patients who could be matched, not to all treated (ATT).")
    if any(r.design == "baseline" for r in recs) and (result.spec.get("roles") or {}).get("treatment_time"):
        out.append("Strategies on the baseline design count patients as treated from time zero although "
                   "treatment started later: they are subject to immortal-time bias (Suissa 2008).")
    failed = [r.strategy for r in result.records if r.error]
    if failed:
        out.append("Strategies that failed and are missing from the comparison: " + ", ".join(failed) + ".")
    nt = (result.cohort or {}).get("n_treated")
    if isinstance(nt, (int, float)) and nt < 50:
        out.append(f"Only {int(nt)} treated patients: every estimate is imprecise and small-sample bias is possible.")
    out.append("No analysis can remove confounding by unmeasured factors; the E-values and tipping points show "
               "how strong such a factor would need to be.")
    return out


def build_context(result: Any, *, keep_figures: bool = False) -> dict[str, Any]:
    """Everything the templates need, with the figures rendered (PNG)."""
    import matplotlib

    from causal_hcc.report import figures as F

    with matplotlib.rc_context({"font.size": 8}):
        return _build(result, keep_figures, F)


def _build(result: Any, keep_figures: bool, F: Any) -> dict[str, Any]:
    figs = _Figures(keep_figures)
    outcome = F.primary_outcome(result)
    recs = _records(result, outcome)
    # -- comparison -------------------------------------------------------
    forest = []
    nrow = len(recs) + 3
    h = max(2.2, 0.3 * nrow + 1.3)
    labels = [r.strategy for r in recs] + [p["label"] + " (paper)" for p in F.published_estimates(result)]

    def forest_fig(fig, measure, t=None):
        fig.subplots_adjust(left=F.left_margin(fig, labels), right=0.97, top=1 - 0.35 / h, bottom=0.55 / h)
        F.plot_forest(result, measure, fig.add_subplot(111), outcome=outcome, time=t)

    it = _safe_draw(figs, "forest_hr", "Hazard ratio by strategy", 7.5, h, lambda fig: forest_fig(fig, "hr"))
    if it:
        forest.append(it)
    for t in F.measure_times(result, "survival_difference", outcome):
        it = _safe_draw(figs, f"forest_survdiff_{len(forest)}", f"Survival difference at {t:g}", 7.5, h,
                        lambda fig, t=t: forest_fig(fig, "survival_difference", t))
        if it:
            forest.append(it)
    if F.forest_rows(result, "rmst_difference", outcome):
        it = _safe_draw(figs, "forest_rmst", "RMST difference by strategy", 7.5, h,
                        lambda fig: forest_fig(fig, "rmst_difference"))
        if it:
            forest.append(it)
    # the other outcomes (e.g. PFS): their hazard ratios too
    for k, other in enumerate(dict.fromkeys(r.outcome for r in result.records if r.outcome != outcome)):
        if not F.forest_rows(result, "hr", other):
            continue

        def other_fig(fig, other=other):
            fig.subplots_adjust(left=F.left_margin(fig, labels), right=0.97, top=1 - 0.35 / h, bottom=0.55 / h)
            F.plot_forest(result, "hr", fig.add_subplot(111), outcome=other)

        it = _safe_draw(figs, f"forest_hr_{k + 1}", f"Hazard ratio by strategy ({other})", 7.5, h, other_fig)
        if it:
            forest.append(it)
    # -- curves -------------------------------------------------------------
    curve_recs = []
    for r in recs:
        if r.curves is None:
            continue
        if not curve_recs:
            curve_recs.append(r)  # the first (naive) analysis
        elif r.adjustment not in ("none", "multivariable", "paper") or r.design in ("clone_censor",):
            curve_recs.append(r)
    curve_figs = []
    for i, r in enumerate(curve_recs[:12]):
        it = _safe_draw(figs, f"curves_{i}", f"Survival curves: {r.strategy}", 5.6, 4.4,
                        lambda fig, r=r: (fig.subplots_adjust(left=0.17, right=0.97, top=0.93, bottom=0.33),
                                          F.plot_curves(result, ax=fig.add_subplot(111), record=r)))
        if it:
            curve_figs.append(it)
    sweep = None
    if sum(1 for r in recs if r.design == "landmark") >= 2:
        sweep = _safe_draw(figs, "landmark_sweep", "Landmark sweep", 6.5, 3.8,
                           lambda fig: (fig.subplots_adjust(left=0.12, right=0.97, top=0.92, bottom=0.14),
                                        F.plot_landmark_sweep(result, "hr", outcome, fig.add_subplot(111))))
    # -- diagnostics ----------------------------------------------------------
    diags = []
    for i, r in enumerate(recs):
        d = r.diagnostics if isinstance(r.diagnostics, dict) else {}
        panels = [k for k in ("balance", "propensity", "weights") if isinstance(d.get(k), dict)]
        items = _diag_items(r)
        if not panels and not items:
            continue
        fig_item = None
        if panels:
            nb = len((d.get("balance") or {}).get("variables", []) or [])
            height = max(2.6, 0.28 * nb + 1.2)

            def draw(fig, r=r, panels=panels, height=height):
                var = (r.diagnostics.get("balance") or {}).get("variables", []) if "balance" in panels else []
                lm = F.left_margin(fig, var) if var else 0.08
                fig.subplots_adjust(left=lm, right=0.98, top=1 - 0.35 / height, bottom=0.55 / height,
                                    wspace=0.3)
                axs = fig.subplots(1, len(panels), squeeze=False)[0]
                for ax, k in zip(axs, panels):
                    {"balance": lambda a: F.plot_love(result, ax=a, record=r),
                     "propensity": lambda a: F.plot_propensity(r, a),
                     "weights": lambda a: F.plot_weights(r, a)}[k](ax)
            fig_item = _safe_draw(figs, f"diagnostics_{i}", f"Diagnostics: {r.strategy}", 4.2 * len(panels),
                                  height, draw)
        diags.append({"strategy": r.strategy, "adjustment": r.adjustment, "design": r.design, "figure": fig_item,
                      "items": items, "notes": list(r.notes)})
    # -- sensitivity ----------------------------------------------------------
    sens = dict((result.extras or {}).get("sensitivity") or {})
    dag = sens.get("dag") if isinstance(sens.get("dag"), dict) else None
    dag_fig = None
    if dag:
        dag_fig = _safe_draw(figs, "dag", "Causal graph", 6.0, 4.2,
                             lambda fig: (fig.subplots_adjust(left=0.02, right=0.98, top=0.92, bottom=0.02),
                                          F.plot_dag(dag, fig.add_subplot(111))))
    refuters = []
    for rf in sens.get("refuters") or []:
        if not isinstance(rf, dict):
            continue
        o, x = rf.get("original") or {}, rf.get("refuted") or {}
        refuters.append({"refuter": str(rf.get("refuter", "")).replace("_", " "), "strategy": rf.get("strategy", ""),
                         "measure": MEASURE_NAMES.get(rf.get("measure"), rf.get("measure", "")),
                         "original": f"{_f(o.get('estimate'))} ({_ci(o.get('ci_lower'), o.get('ci_upper'))})",
                         "refuted": f"{_f(x.get('estimate'))} ({_ci(x.get('ci_lower'), x.get('ci_upper'))})",
                         "passed": {True: "passed", False: "FAILED", None: "not judged"}.get(rf.get("passed"), ""),
                         "verdict": rf.get("verdict", ""), "semantics": rf.get("semantics", "")})
    chosen = [recs[0].strategy] if recs else []
    if refuters and refuters[0]["strategy"] not in chosen:
        chosen.append(refuters[0]["strategy"])
    truth_rows = _truth_rows(result) if result.truth is not None else []
    truth_items = []
    if isinstance(result.truth, dict):
        tr = result.truth
        if isinstance(tr.get("estimand"), str):
            truth_items.append(("estimand", tr["estimand"]))
        for k, v in tr.items():
            if k in MEASURE_NAMES and isinstance(v, dict):
                truth_items += [(f"{MEASURE_NAMES[k]} at {kk}", _f(vv)) for kk, vv in v.items()
                                if isinstance(vv, (int, float))]
            elif (k in MEASURE_NAMES or k.startswith("median_") or k == "hr_structural") \
                    and isinstance(v, (int, float)):
                truth_items.append((MEASURE_NAMES.get(k, k.replace("_", " ")), _f(v)))
    audit = (result.extras or {}).get("audit")
    audit_tab = None
    if isinstance(audit, list) and audit and all(isinstance(a, dict) for a in audit):
        cols = list(dict.fromkeys(k for a in audit for k in a))
        audit_tab = {"columns": cols,
                     "rows": [[_f(a.get(c), 4) if isinstance(a.get(c), float) else ("" if a.get(c) is None
                               else str(a.get(c))) for c in cols] for a in audit]}
    from causal_hcc.report.figures import published_estimates

    return {
        "study": str(result.study), "header": _header(result), "cohort": result.cohort or {},
        "counts": {k: result.cohort.get(k) for k in ("n", "n_treated", "rows_dropped") if k in (result.cohort or {})},
        "table1": _table1(result), "missing": _missing(result), "flows": _flows(result),
        "forest": forest, "estimate_columns": list(ESTIMATE_COLUMNS), "estimates": _estimate_rows(result),
        "published": [{"label": p["label"], "measure": MEASURE_NAMES.get(p["measure"], p["measure"]),
                       "estimate": _f(p["estimate"]), "ci": _ci(p["ci_lower"], p["ci_upper"])}
                      for p in published_estimates(result)],
        "curves": curve_figs, "sweep": sweep, "diagnostics": diags, "warnings": _warnings(result),
        "ph_tables": _ph_tables(result),
        "evalues": _evalue_rows(result), "tipping": _tipping(result, outcome, chosen),
        "dag": dag, "dag_figure": dag_fig, "refuters": refuters,
        "truth": result.truth is not None, "truth_items": truth_items, "truth_rows": truth_rows,
        "audit": audit_tab, "methods": _methods(result), "limitations": _limitations(result),
        "figures": figs.items, "outcome": outcome or "",
    }


# ---------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------
def _env(kind: str):
    import jinja2

    loader = jinja2.PackageLoader("causal_hcc.report", "templates")
    if kind == "html":
        return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                  undefined=jinja2.StrictUndefined)
    env = jinja2.Environment(loader=loader, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                             finalize=_md_finalize, undefined=jinja2.StrictUndefined)
    env.filters["raw"] = lambda v: MdSafe(v)  # only for paths the report itself made (figures/<name>.png)
    # inside a fenced code block nothing renders as Markdown/HTML; only a fence could break out
    env.filters["fence"] = lambda v: MdSafe(str(v).replace("```", "` ` `"))
    return env


def render_html(ctx: dict[str, Any]) -> str:
    """report.html text (self-contained)."""
    return _env("html").get_template("report.html.j2").render(**ctx)


def render_markdown(ctx: dict[str, Any]) -> str:
    """report.md text (figures referenced as files under figures/)."""
    return _env("md").get_template("report.md.j2").render(**ctx)


def _write_pdf(result: Any, ctx: dict[str, Any], path: str) -> None:
    """Figures and a text summary as a multi-page PDF (matplotlib PdfPages)."""
    from matplotlib.backends.backend_pdf import PdfPages

    from causal_hcc.report.figures import new_figure
    from causal_hcc.report.summary import Summary

    text = Summary(result).as_text().splitlines()
    with PdfPages(path) as pdf:
        for start in range(0, max(len(text), 1), 70):
            fig = new_figure(11.7, 8.3)
            fig.text(0.02, 0.98, "\n".join(text[start:start + 70]), family="monospace", fontsize=5.5, va="top")
            pdf.savefig(fig)
        for item in ctx["figures"]:
            if item["fig"] is not None:
                pdf.savefig(item["fig"])


def write_report(result: Any, folder: str, formats: Sequence[str] = ("html", "md")) -> dict[str, str]:
    """Write the report files into ``folder``.

    Parameters
    ----------
    result : AnalysisResult
    folder : str
        Output folder (created if missing).
    formats : sequence of {"html", "md", "pdf"}
        ``html`` writes ``report.html`` (self-contained), ``md`` writes
        ``report.md`` and ``figures/*.png``, ``pdf`` writes ``report.pdf``
        (matplotlib; the figures and the text summary).

    Returns
    -------
    dict
        format -> path written.
    """
    formats = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad:
        raise SpecError(f"report format '{bad[0]}' is not supported; valid: {', '.join(REPORT_FORMATS)}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create report folder '{folder}': {err.strerror}") from None
    ctx = build_context(result, keep_figures="pdf" in formats)
    written: dict[str, str] = {}
    if "html" in formats:
        p = os.path.join(folder, "report.html")
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(render_html(ctx))
        written["html"] = p
    if "md" in formats:
        fdir = os.path.join(folder, "figures")
        os.makedirs(fdir, exist_ok=True)
        for item in ctx["figures"]:
            with open(os.path.join(folder, item["file"]), "wb") as fh:
                fh.write(item["png"])
        p = os.path.join(folder, "report.md")
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(render_markdown(ctx))
        written["md"] = p
    if "pdf" in formats:
        p = os.path.join(folder, "report.pdf")
        _write_pdf(result, ctx, p)
        written["pdf"] = p
    return written


def escape_html(s: Any) -> str:
    """HTML-escape a value (exposed for tests and callers composing HTML)."""
    return _html.escape("" if s is None else str(s))
