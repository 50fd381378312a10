"""
Balance after weighting: ``balance_table`` and the love plot
=============================================================

cobalt's ``bal.tab`` for one strategy: standardized mean differences and
variance ratios before and after the adjustment.
"""
# %%
from causal_hcc.pipeline import run_analysis
from causal_hcc.report import balance_table, plot_love

spec = {
    "study": "twin-balance",
    "data": {"path": "twin", "twin": {"seed": 2030}},
    "roles": {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery",
              "treatment_time": "months_to_surgery"},
    "confounders": ["portal_vein_invasion", "first_line_effective", "oligometastases", "lung_met"],
    "strategies": [{"name": "iptw", "estimand": "ATO"}],
}
result = run_analysis(spec)
balance_table(result, "iptw(ATO)")

# %%
ax = plot_love(result, "iptw(ATO)")
