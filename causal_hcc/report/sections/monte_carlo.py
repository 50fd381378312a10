"""Monte Carlo panel: the spec's strategies over ``report.monte_carlo`` simulated twin cohorts.

The numbers come from :func:`causal_hcc.simstudy.simulate_study` (run by
the pipeline, stored in ``results.json`` under ``extras.monte_carlo``):
each strategy's estimates against the truth of its own estimand, with bias,
empirical and model SE, and CI coverage (Morris, White & Crowther 2019).
One data set cannot show a bias (its CI may cover the truth by chance);
this panel can.
"""
from __future__ import annotations

import math
from typing import Any

from causal_hcc.report._fmt import MEASURE_NAMES, num, sig, time_text


def build(ctx: Any) -> dict[str, Any] | None:
    from causal_hcc.report import figures as F

    mc = (ctx.result.extras or {}).get("monte_carlo")
    if not isinstance(mc, dict) or not mc.get("table"):
        return None
    outcome = mc.get("outcome") or ctx.outcome
    table = [r for r in mc["table"] if r.get("outcome") == outcome]
    labels = [str(r.get("strategy")) for r in table if r.get("measure") == "hr"]
    h = 0.3 * len(labels) + 1.5
    fig = ctx.figs.draw(
        "monte_carlo", f"Hazard ratios over {mc.get('replicates_n')} simulated cohorts ({outcome})", 10.5, h,
        lambda fig: (fig.subplots_adjust(left=F.left_margin(fig, labels, fontsize=9.5), right=0.9,
                                         top=1 - 0.45 / h, bottom=0.6 / h),
                     F.plot_monte_carlo(mc, fig.add_subplot(111), unit=ctx.unit)))
    boot = sorted(s for s, nb in (mc.get("needs_bootstrap") or {}).items() if nb)
    rows = []
    # survival and RMST differences first (primary: their truths do not depend on follow-up)
    order = {"survival_difference": 0, "rmst_difference": 1, "risk_ratio": 2, "hr": 3}
    table = sorted(table, key=lambda r: order.get(r.get("measure"), 9))
    for r in table:
        if r.get("measure") == "median_difference":
            continue
        hr = r.get("measure") == "hr"
        cov = num(r.get("coverage"))
        rows.append({"strategy": r.get("strategy", ""), "design": r.get("design", ""),
                     "color": F.design_color(str(r.get("design", ""))),
                     "estimand": r.get("estimand", ""),
                     "measure": MEASURE_NAMES.get(r.get("measure"), r.get("measure")) + (
                         f" at {time_text(r.get('time'))}" if r.get("time") is not None
                         and not (isinstance(r.get("time"), float) and math.isnan(r["time"])) else ""),
                     "truth": sig(r.get("truth")) + (f" (MCSE {float(r['truth_mcse']):.1g})"
                                                       if num(r.get("truth_mcse")) > 0 else ""),
                     "mean": sig(r.get("mean_estimate")),
                     "bias": sig(r.get("bias")), "mcse_bias": sig(r.get("mcse_bias"), 2),
                     "emp_se": sig(r.get("empirical_se")), "model_se": sig(r.get("model_se")),
                     # the interval whose coverage this is (i20-infer owns the intervals themselves)
                     "coverage": "" if not math.isfinite(cov) else f"{100 * cov:.0f}%" + (
                         f" ({r['variance_method']})" if r.get("variance_method") else ""),
                     "low_coverage": math.isfinite(cov) and cov < 0.9,
                     "failed": f"{r.get('n_failed', 0)}/{r.get('n_replicates', '')}", "hr": hr})
    return {"figure": fig, "rows": rows, "n": mc.get("replicates_n"), "seed": mc.get("seed"),
            "seed_last": (mc.get("seed") or 0) + (mc.get("replicates_n") or 1) - 1, "outcome": outcome,
            "bootstrap_strategies": boot, "failures": mc.get("failures") or {}, "backend": mc.get("backend", "")}
