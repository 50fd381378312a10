"""Diagnostics per strategy (propensity overlap, weights, matching, events per variable, log-rank,
bootstrap), the proportional-hazards tests of every Cox fit, and the warnings."""
from __future__ import annotations

import re
from typing import Any

from causal_hcc.report._fmt import p_text, records, sig


def items(rec: Any) -> list[tuple[str, str]]:
    d = rec.diagnostics if isinstance(rec.diagnostics, dict) else {}
    out: list[tuple[str, str]] = []
    w = d.get("weights")
    if isinstance(w, dict):
        out += [("weights", f"{w.get('estimand', '')}: min {sig(w.get('min'))}, max {sig(w.get('max'))}"),
                ("ESS", f"{sig(w.get('ess'))} (all person-intervals)" if "ess" in w else
                 f"treated {sig(w.get('ess_treated'))}, untreated {sig(w.get('ess_untreated'))}")]
        if w.get("top5"):
            out.append(("top 5 weights", ", ".join(sig(v) for v in w["top5"])))
        out.append(("truncated / trimmed", f"{w.get('n_truncated', 0)} / {w.get('n_trimmed', 0)}"))
    for label, src in (("weights by interval", w), ("design weights by interval", (d.get("design") or {}).get("weights")),
                       ("loss-to-follow-up weights by interval", d.get("loss_weights"))):
        if isinstance(src, dict) and isinstance(src.get("by_interval"), dict):
            out.append((label, by_interval_text(src["by_interval"])))
    m = d.get("matching")
    if isinstance(m, dict):
        out.append(("matching", ", ".join(f"{k.replace('_', ' ')} {value_text(v)}" for k, v in m.items()
                                          if v not in (None, [], ""))))
    p = d.get("propensity")
    if isinstance(p, dict):
        out.append(("propensity", f"range {sig(p.get('min'))} to {sig(p.get('max'))}, "
                                  f"{p.get('n_near_0_or_1', 0)} near 0 or 1"
                    + (f", learner {p['learner']}" if p.get("learner") else "")))
    b = d.get("balance")
    if isinstance(b, dict) and b.get("smd_after"):
        vals = [abs(float(v)) for v in b["smd_after"] if v is not None]
        if vals:
            out.append(("max |SMD| after", sig(max(vals), 2)))
    if "events_per_variable" in d:
        out.append(("events per variable", sig(d["events_per_variable"])))
    if "events_per_variable_smaller_arm" in d:
        out.append(("events per variable, smaller arm", sig(d["events_per_variable_smaller_arm"])))
    lr = d.get("logrank")
    if isinstance(lr, dict):
        out.append(("log-rank", f"chi2 {sig(lr.get('chi2'))}, df {lr.get('df')}, p {p_text(lr.get('p_value'))}"))
    bs = d.get("bootstrap")
    if isinstance(bs, dict):
        out.append(("bootstrap", f"{bs.get('replicates')} replicates, {bs.get('failed', 0)} failed, "
                                 f"seed {bs.get('seed')}"))
    return out


def by_interval_text(bi: dict[str, Any], shown: int = 6) -> str:
    """Per-interval weight summary (``diagnostics[...]["by_interval"]``) in one line: at most ``shown``
    intervals, evenly spaced, the last included: ``t 0: mean 1.00 (0.61-1.9), ESS 980; ...``."""
    times = bi.get("time") or []
    if not times:
        return ""
    idx = sorted({round(i * (len(times) - 1) / max(shown - 1, 1)) for i in range(min(shown, len(times)))})
    return "; ".join(f"t {sig(times[i])}: mean {sig(bi['mean'][i])} ({sig(bi['min'][i])}-{sig(bi['max'][i])}), "
                     f"ESS {sig(bi['ess'][i])}" for i in idx)


def ph_tables(result: Any) -> list[dict[str, Any]]:
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
            "strategy": r.strategy, "chisq": sig(tr.get("chisq"), 4), "p": sig(tr.get("p"), 3),
            "global_p": sig(g.get("p"), 3), "flag": "PH doubtful" if (tr.get("p") or 1.0) < 0.05 else ""})
    return [{"outcome": o, "rows": rows} for o, rows in by_outcome.items()]


def value_text(v: Any) -> str:
    """A diagnostic value as text: numbers to three significant digits (no raw float repr), lists joined,
    booleans as yes/no."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return sig(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(value_text(x) for x in v) or "none"
    return str(v)


_NUMBER = re.compile(r"(?<![\w'])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w'])")


def _where(places: list[tuple[str, str]], n_outcomes: int) -> str:
    """'iptw(ATE), iptw(ATT) (os, pfs); psm (os)': strategies, with their outcomes when not all of them."""
    by: dict[str, list[str]] = {}
    for strat, outcome in places:
        by.setdefault(strat, [])
        if outcome and outcome not in by[strat]:
            by[strat].append(outcome)
    groups: dict[tuple[str, ...], list[str]] = {}
    for strat, outs in by.items():
        groups.setdefault(tuple(outs), []).append(strat)
    parts = []
    for outs, strats in groups.items():
        tail = f" ({', '.join(outs)})" if outs and len(outs) < n_outcomes else ""
        parts.append(", ".join(strats) + tail)
    return "; ".join(parts)


def warnings(result: Any) -> list[dict[str, Any]]:
    """The run's warnings grouped by message, each with the strategies (and outcomes) it concerns.

    Messages that differ only in their numbers (``20 of 150 scores`` and
    ``13 of 121 scores``) are one group; it shows the first message and says
    that the values differ by strategy.
    """
    items: list[tuple[str, str, str]] = [(str(w), "run", "") for w in result.warnings]
    for r in result.records:
        if r.error:
            items.append((f"failed: {r.error}", r.strategy, r.outcome))
        items += [(str(w), r.strategy, r.outcome) for w in r.warnings]
    groups: dict[str, dict[str, Any]] = {}
    for text, strat, outcome in items:
        key = _NUMBER.sub("#", text)
        g = groups.setdefault(key, {"text": text, "texts": [], "places": []})
        if text not in g["texts"]:
            g["texts"].append(text)
        if (strat, outcome) not in g["places"]:
            g["places"].append((strat, outcome))
    n_out = len({r.outcome for r in result.records})
    out = []
    for g in groups.values():
        places = [p for p in g["places"] if p[0] != "run"]
        where = ("the run" if len(places) < len(g["places"]) else "") 
        if places:
            where = (where + "; " if where else "") + _where(places, n_out)
        out.append({"text": g["text"] + (" (values differ by strategy; see the per-strategy diagnostics)"
                                         if len(g["texts"]) > 1 else ""),
                    "where": where, "n": len(g["places"])})
    out.sort(key=lambda w: -w["n"])
    return out


def build(ctx: Any) -> dict[str, Any]:
    from causal_hcc.report import figures as F

    result = ctx.result
    diags = []
    for i, r in enumerate(records(result, ctx.outcome)):
        d = r.diagnostics if isinstance(r.diagnostics, dict) else {}
        panels = [k for k in ("propensity", "weights") if isinstance(d.get(k), dict)]
        its = items(r)
        if not panels and not its:
            continue
        fig = None
        if panels:
            def draw(fig, r=r, panels=panels):
                fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.2, wspace=0.35)
                axs = fig.subplots(1, len(panels), squeeze=False)[0]
                for ax, k in zip(axs, panels):
                    (F.plot_propensity if k == "propensity" else F.plot_weights)(r, ax)
            fig = ctx.figs.draw(f"diagnostics_{i}", f"Diagnostics: {r.strategy}", 4.6 * len(panels), 3.2, draw)
        diags.append({"strategy": r.strategy, "adjustment": r.adjustment, "design": r.design,
                      "color": F.design_color(r.design), "figure": fig, "name": ctx.names.strategy(
                          r.strategy, r.design, r.adjustment),
                      "items": its, "notes": list(r.notes), "row": summary_row(r)})
    schoenfeld = []
    for i, r in enumerate(records(result, ctx.outcome)):
        ph = (r.diagnostics or {}).get("ph_test")
        tr = next((t for t in ph.get("terms", []) if t.get("term") == "treatment"), None) \
            if isinstance(ph, dict) else None
        if tr is None or not ((tr.get("p") or 1.0) < 0.05) or len(schoenfeld) >= 4:
            continue
        def draw(fig, r=r):
            fig.subplots_adjust(left=0.14, right=0.97, top=0.9, bottom=0.16)
            ax = F.plot_schoenfeld(r, ax=fig.add_subplot(111))
            ax.set_xlabel(ax.get_xlabel().replace("time", f"time ({ctx.unit})", 1))  # the spec's time unit
        fig = ctx.figs.draw(f"schoenfeld_{i}", f"Scaled Schoenfeld residuals: {r.strategy}", 5.6, 3.6, draw)
        if fig:
            schoenfeld.append(fig)
    return {"strategies": diags, "ph_tables": ph_tables(result), "schoenfeld": schoenfeld,
            "warnings": warnings(result)}


def summary_row(rec: Any) -> dict[str, str]:
    """One line of the diagnostics overview: weights, ESS, positivity, balance, events per variable, bootstrap."""
    d = rec.diagnostics if isinstance(rec.diagnostics, dict) else {}
    w, p, b, bs = d.get("weights"), d.get("propensity"), d.get("balance"), d.get("bootstrap")
    row = {"weights": "", "ess": "", "near": "", "smd": "", "epv": "", "boot": ""}
    if isinstance(w, dict):
        row["weights"] = f"{sig(w.get('min'))} to {sig(w.get('max'))}"
        row["ess"] = f"{sig(w.get('ess_treated'))} / {sig(w.get('ess_untreated'))}"
    if isinstance(p, dict):
        row["near"] = value_text(p.get("n_near_0_or_1", 0))
    if isinstance(b, dict) and b.get("smd_after"):
        vals = [abs(float(v)) for v in b["smd_after"] if isinstance(v, (int, float))]
        row["smd"] = sig(max(vals), 2) if vals else ""
    if "events_per_variable" in d:
        row["epv"] = sig(d["events_per_variable"])
    if isinstance(bs, dict):
        row["boot"] = f"{bs.get('replicates')} ({bs.get('failed', 0)} failed)"
    return row
