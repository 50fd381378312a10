"""Diagnostics per strategy (propensity overlap, weights, matching, events per variable, log-rank,
bootstrap), the proportional-hazards tests of every Cox fit, and the warnings."""
from __future__ import annotations

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
        out.append(("matching", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m.items())))
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


def warnings(result: Any) -> list[dict[str, str]]:
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
                      "color": F.design_color(r.design), "figure": fig,
                      "items": its, "notes": list(r.notes)})
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
