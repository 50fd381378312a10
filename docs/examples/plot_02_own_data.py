"""
Your own data: dates, codes and missing values
==============================================

A clinic extract as it comes: day-first dates, R's survival coding of the
status (2 = dead), a code for "unknown" and missing values. The data here are
simulated in the script; replace ``df`` by ``pandas.read_excel(...)``.
"""
# %%
import numpy as np
import pandas as pd

from causal_hcc.pipeline import run_analysis
from causal_hcc.report import plot_curves

rng = np.random.default_rng(1)
n = 200
start = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
grade = rng.choice([1, 2, 3, 9], n, p=[0.3, 0.4, 0.2, 0.1])        # 9 = unknown
age = rng.normal(62, 9, n).round()
wait = rng.exponential(90, n)                                     # days to transplant
death = rng.exponential(700 / (1 + 0.3 * (grade == 3)), n)
end = np.minimum(death, 900)
transplanted = wait < end
df = pd.DataFrame({
    "patient_no": np.arange(1, n + 1),
    "listed_on": start.strftime("%d/%m/%Y"),
    "last_seen_on": (start + pd.to_timedelta(end.round(), unit="D")).strftime("%d/%m/%Y"),
    "transplanted_on": np.where(transplanted, (start + pd.to_timedelta(wait.round(), unit="D")).strftime("%d/%m/%Y"),
                                None),
    "status": np.where(death <= 900, 2, 1),                       # 2 = dead, 1 = censored
    "grade": grade, "age": np.where(rng.random(n) < 0.08, np.nan, age),
})
df.head()

# %%
spec = {
    "study": "transplant-demo",
    "title": "Liver transplant after listing: a reanalysis",
    "roles": {"id": "patient_no", "start_date": "listed_on", "end_date": "last_seen_on",
              "treatment_date": "transplanted_on", "event": "status", "dayfirst": True},
    "time_unit": "months",
    "codes": {"status": {2: 1, 1: 0}, "grade": {9: None}},
    "labels": {"transplanted_on": "Liver transplant", "grade": "Tumour grade"},
    "categorical": ["grade"],
    "confounders": ["age", "grade"],
    "missing": "complete_case",
    "strategies": ["naive", {"name": "landmark", "landmark": 3}, "time_varying"],
    "estimands": {"survival_at": [12]},
}
result = run_analysis(spec, data=df)
result

# %%
# Kaplan-Meier curves of the landmark analysis, with the arms in the study's words and a risk table.
ax = plot_curves(result, "landmark(3)")
