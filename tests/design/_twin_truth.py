"""Design-specific truth for the sequential-trials simulation tests.

Sequential trials with per-protocol censoring and ATT weights estimate "operate at the trial start vs
never", pooled over trials, among the patients who start treatment at each trial start (alive,
progression-free and untreated then). Its truth is the twin's own (``causal_hcc.twin.truth.estimand_truth``):
the limit of the stratified Cox estimator under the study's follow-up, with its Monte Carlo SE. (This
helper used to fit that Cox model on 100,000 patients censored at 84 months only: a small-stratum bias of
about -0.01 on the log HR and the wrong follow-up; docs/truth.md.)
"""
from __future__ import annotations

from causal_hcc.strategies import resolve
from causal_hcc.twin import TwinParams
from causal_hcc.twin.truth import estimand_truth

CONFOUNDERS = ("portal_vein_invasion", "first_line_effective", "lung_met", "bone_met", "oligometastases",
               "metastatic_sd", "bclc_d")


def sequential_trials_att_truth(p: TwinParams, grid: float, window: float, n_large: int = 400_000) -> float:
    """Pooled per-trial HR of "operate at s" vs "never" among those operated at s (study follow-up)."""
    e = resolve({"design": "sequential_trials", "adjustment": "iptw", "estimand": "ATT", "require_event_free": "pfs",
                 "analysis": "per_protocol", "grid": grid, "window": window})[0].build(list(CONFOUNDERS)).estimand()
    return float(estimand_truth(e.to_dict(), p, confounders=CONFOUNDERS, n_large=n_large)["hr"])
