"""Write the loss-weighted rows that tests/reference/outcome_competing_loss.R analyses in R.

Run from the repository root: ``.venv/bin/python tests/outcome/make_competing_loss_fixture.py``
then ``Rscript tests/reference/outcome_competing_loss.R``. The cohort is
``tests/competing_data.py``'s (codes 0, 1 = cancer death, 2 = liver failure)
with a loss-to-follow-up column ``lost`` (``roles.censored``): some censored
patients were lost, more often the unfit and stage III ones. For each design the
rows are those :func:`causal_hcc.outcome.effects.estimate_effects` fits: the
design's rows split at the weight grid by
:func:`causal_hcc.design._tv.loss_weights`, with the row weight ``w`` (design
x loss weights), its stabilising numerator ``num`` and the artificial
censorings ``art`` (deviations and losses), which the Fine-Gray model uses.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from competing_data import make_competing_frame  # noqa: E402

from causal_hcc.design._tv import loss_weights  # noqa: E402
from causal_hcc.config import parse_spec  # noqa: E402
from causal_hcc.pipeline import check  # noqa: E402
from causal_hcc.strategies import resolve  # noqa: E402

FX = ROOT / "tests" / "reference" / "fixtures"
CONF = ["fit_pt", "stage", "age_y"]
#: design label -> spec entry (adjustment none: the rows are the design's own)
DESIGNS = {
    "naive": {"design": "baseline"},
    "clone_censor": {"design": "clone_censor", "grace": 6},
    "sequential_trials_pp": {"design": "sequential_trials", "grid": 2.0, "window": 6.0, "analysis": "per_protocol"},
}


def frame() -> pd.DataFrame:
    df = make_competing_frame(n=150, seed=11)
    rng = np.random.default_rng(12)
    p = 1 / (1 + np.exp(-(0.2 - 1.0 * df.fit_pt + 0.8 * (df.stage == "III"))))
    df["lost"] = ((df.cause == 0) & (rng.random(len(df)) < p)).astype(int)
    return df


SPEC = {"study": "loss", "roles": {"id": "patient_no", "time": "fu_months", "event": "cause", "treatment": "operated",
                                   "treatment_time": "months_to_op", "censored": "lost"},
        "competing": [2], "confounders": CONF, "strategies": ["naive"], "bootstrap": {"replicates": 0},
        "sensitivity": {"evalues": False}}


def cohort(df: pd.DataFrame | None = None):
    c, _ = check(parse_spec(SPEC), data=frame() if df is None else df)
    return c


def design_data(name: str, c=None):
    """The design's rows (before the loss weights)."""
    c = cohort() if c is None else c
    (spec,) = resolve(DESIGNS[name])
    d = spec.build(default_confounders=None).design.fit(c, "os").data_
    if d.cohort is None:   # as Strategy.fit
        d.cohort = c
    return d


def loss_rows(name: str, c=None) -> pd.DataFrame:
    d, lw, _ = loss_weights(design_data(name, c))
    num = d.weight_numerator if d.weight_numerator is not None else np.ones(d.n_rows)
    art = d.artificial_censoring if d.artificial_censoring is not None else np.zeros(d.n_rows, bool)
    return pd.DataFrame({"start": d.start, "stop": d.stop, "status": d.status, "arm": d.treatment,
                         "w": d.weight, "num": num, "art": art.astype(int), "patient": d.patient, "unit": d.unit,
                         "trial": d.stratum if d.stratum is not None else 0})


if __name__ == "__main__":
    c = cohort()
    for name in DESIGNS:
        loss_rows(name, c).to_csv(FX / f"outcome_competing_loss_{name}.csv", index=False, float_format="%.17g")
