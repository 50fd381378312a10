"""Design-specific truth for the sequential-trials simulation tests.

The twin's own truth (``causal_hcc.twin.truth``) is "operate when eligible"
vs "never operate" over the whole population. Sequential trials with
per-protocol censoring and ATT weights estimate another (well-defined)
contrast: among patients who start treatment at a trial start s (alive,
progression-free and untreated at s), survival from s if operated then vs
if never operated, pooled over trials. We compute it with counterfactuals
of the twin's data-generating process (common random numbers, no
censoring except the administrative horizon), then fit the same pooled Cox
model stratified by trial. Uses the twin's private simulation functions:
this is test code, kept beside the tests that need it.
"""
from __future__ import annotations

import numpy as np

from causal_hcc.core.cox import coxph
from causal_hcc.twin import TwinParams
from causal_hcc.twin.simulate import _draw, _event_times


def sequential_trials_att_truth(p: TwinParams, grid: float, window: float, n_large: int = 100_000) -> float:
    """Pooled per-trial HR of "operate at s" vs "never" among those operated at s."""
    pop = _draw(p, n_large, p.truth_seed)
    obs = _event_times(pop, p, "eligible", censor=False)
    never = _event_times(pop, p, "never", censor=False)
    horizon = p.followup_min + p.followup_span
    t1, t0, s_op = obs["t_death"], never["t_death"], obs["surgery_time"]
    times, events, arms, strata = [], [], [], []
    for k, s in enumerate(np.arange(0.0, window + 1e-9, grid)):
        m = np.isfinite(s_op) & (s_op >= s) & (s_op < s + grid)
        for arm, t in ((1, t1[m]), (0, t0[m])):
            times.append(np.minimum(t, horizon) - s)
            events.append((t <= horizon).astype(int))
            arms.append(np.full(m.sum(), arm))
            strata.append(np.full(m.sum(), k))
    f = coxph(np.concatenate(times), np.concatenate(events), np.concatenate(arms)[:, None].astype(float),
              strata=np.concatenate(strata))
    return float(np.exp(f.coef[0]))
