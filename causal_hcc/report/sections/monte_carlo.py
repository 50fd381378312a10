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


#: what the coverage cell adds for each verdict (:func:`causal_hcc.simstudy.coverage_verdict`): an interval is
#: presented as valid only where its Monte Carlo coverage is within 0.92-0.98
_COVERAGE_WORDS = {"low": ": too low, not valid here", "high": ": too high (conservative)",
                   "uncertain": ": not shown valid (0.92-0.98 within MC error)"}
_BIAS_WORDS = {"finite-sample": " (finite-sample: the log of a ratio of estimated risks)"}


def _coverage_verdict(r: dict[str, Any]) -> str:
    """The row's coverage verdict; rows of an older simulation.csv without one are judged here the same way."""
    v = r.get("coverage_verdict")
    if isinstance(v, str):
        return v
    from causal_hcc.simstudy import coverage_verdict

    n = next((num(r.get(k)) for k in ("n_coverage", "n_valid", "n_replicates") if math.isfinite(num(r.get(k)))), 0.0)
    return coverage_verdict(num(r.get("coverage")), num(r.get("mcse_coverage")), int(n))


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
                     "bias": sig(r.get("bias")) + _BIAS_WORDS.get(str(r.get("bias_verdict") or ""), ""),
                     "mcse_bias": sig(r.get("mcse_bias"), 2),
                     "emp_se": sig(r.get("empirical_se")), "model_se": sig(r.get("model_se")),
                     # the interval whose coverage this is, and whether it was shown valid (simstudy's verdict)
                     "coverage": "" if not math.isfinite(cov) else f"{100 * cov:.0f}%" + (
                         f" ({r['variance_method']})" if r.get("variance_method") else "") + _COVERAGE_WORDS.get(
                             _coverage_verdict(r), ""),
                     "low_coverage": _coverage_verdict(r) in ("low", "high"),
                     "bias_verdict": str(r.get("bias_verdict") or ""),
                     "failed": f"{r.get('n_failed', 0)}/{r.get('n_replicates', '')}", "hr": hr})
    return {"figure": fig, "rows": rows, "n": mc.get("replicates_n"), "seed": mc.get("seed"),
            "seed_last": (mc.get("seed") or 0) + (mc.get("replicates_n") or 1) - 1, "outcome": outcome,
            "bootstrap_strategies": boot, "failures": mc.get("failures") or {}, "backend": mc.get("backend", "")}
