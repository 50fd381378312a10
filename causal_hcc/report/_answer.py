"""The plain-language answer of the report's first screen, computed from the estimates.

One sentence per outcome, for a clinician: the direction of the hazard
ratios of the designs that remove immortal time, their range, whether their
confidence intervals include no effect, and the effects that the intervals
together cannot rule out; hedged, without jargon. The designs that remove
immortal time are every design but ``baseline`` (landmark, time-varying
exposure, sequential trials, clone-censor-weight), restricted to estimates of
a causal contrast.
"""
from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["robust_hrs", "answer_sentence", "naive_sentence", "EVENT_WORDS"]

#: what the hazard is of, per usual outcome name
EVENT_WORDS = {"os": "death", "pfs": "progression or death", "dfs": "recurrence or death",
               "rfs": "recurrence or death", "efs": "an event", "css": "death from cancer",
               "ttp": "progression", "mfs": "metastasis or death"}


def _finite_hr(e: Any) -> bool:
    return e.measure == "hr" and math.isfinite(e.estimate) and e.estimate > 0 and \
        not (e.strategy or "").endswith("(univariate)")


def robust_hrs(result: Any, outcome: str) -> list[Any]:
    """The HR estimates of ``outcome`` from designs that remove immortal time (causal contrasts only)."""
    out = []
    for r in result.records:
        if r.outcome != outcome or r.error or r.design == "baseline":
            continue
        for e in r.estimates:
            if not _finite_hr(e):
                continue
            est = (r.estimands or {}).get(e.estimand) or {}
            if est.get("causal", True):
                out.append(e)
    return out


def _pct_lower(hr: float) -> str:
    return f"{100 * (1 - hr):.0f}% lower"


def _higher(hr: float) -> str:
    return f"{hr:.1f}-fold higher" if hr >= 2 else f"{100 * (hr - 1):.0f}% higher"


def _a(words: str) -> str:
    """'an 81% lower', 'a 2.7-fold higher': the article as the number is spoken (eight, eleven, eighteen)."""
    lead = re.match(r"\d+", words)
    n = lead.group(0) if lead else ""
    spoken_an = n.startswith("8") or n in ("11", "18") or (len(n) in (5, 6) and n[:2] in ("11", "18"))
    return ("an " if spoken_an else "a ") + words


def _span(lo: float, hi: float) -> str:
    """'anything from an 81% lower to a 2.7-fold higher hazard' (or both on one side of 1)."""
    if lo < 1 < hi:
        return f"anything from {_a(_pct_lower(lo))} to {_a(_higher(hi))} hazard"
    if hi <= 1:
        return f"a hazard between {_pct_lower(hi)} and {_pct_lower(lo)}"
    return f"a hazard between {_higher(lo)} and {_higher(hi)}"


def answer_sentence(result: Any, outcome: str, names: Any) -> str:
    """The first screen's sentence for one outcome (no Markdown, no HTML)."""
    es = robust_hrs(result, outcome)
    out_words = names.outcome(outcome)
    t = names.treatment_lower
    event = EVENT_WORDS.get(str(outcome).lower(), "the outcome")
    level = f"{100 * (1 - getattr(result, 'alpha', 0.05)):g}%"
    if not es:
        return (f"{out_words}: no analysis in this report removes immortal time (landmark, time-varying exposure, "
                f"sequential trials or clone–censor–weight), so the effect of {t} cannot be judged from it; the "
                f"comparisons from time zero credit {t} with the time patients had to survive to receive it.")
    vals = sorted(e.estimate for e in es)
    n = len(es)
    lo, hi = vals[0], vals[-1]
    below = sum(1 for v in vals if v < 1)
    they = "it" if n == 1 else "they"
    if below == n:
        direction = f"{'it points' if n == 1 else 'all point'} to a lower hazard of {event} with {t}"
    elif below == 0:
        direction = f"{'it points' if n == 1 else 'all point'} to a higher hazard of {event} with {t}"
    else:
        direction = f"they do not agree on the direction ({below} below 1, {n - below} above)"
    cis = [e for e in es if math.isfinite(e.ci_lower) and math.isfinite(e.ci_upper)]
    inc = sum(1 for e in cis if e.ci_lower <= 1 <= e.ci_upper)
    their = "its" if n == 1 else "their"
    if not cis:
        ci_part = f"{'it has' if n == 1 else 'none has'} a confidence interval"
    elif inc == len(cis):
        ci_part = (f"all {len(cis)} of their {level} confidence intervals include no effect (HR 1)" if len(cis) > 1
                   else f"{their} {level} confidence interval includes no effect (HR 1)")
    elif inc == 0:
        ci_part = (f"none of their {level} confidence intervals includes no effect (HR 1)" if len(cis) > 1
                   else f"{their} {level} confidence interval excludes no effect (HR 1)")
    else:
        ci_part = f"{inc} of their {len(cis)} {level} confidence intervals include no effect (HR 1)"
    what = ""
    if cis:
        clo = min(e.ci_lower for e in cis)
        chi = max(e.ci_upper for e in cis)
        if clo > 0 and math.isfinite(chi):
            what = f", and {'it' if len(cis) == 1 else 'together they'} cannot rule out {_span(clo, chi)} of {event}"
    rng = f"a hazard ratio of {lo:.2f}" if n == 1 else f"hazard ratios from {lo:.2f} to {hi:.2f}"
    who = "the one analysis that avoids" if n == 1 else f"the {n} analyses that avoid"
    verb = "gives" if n == 1 else "give"
    del they
    return f"{out_words}: {who} immortal-time bias {verb} {rng} for {t}; {direction}; {ci_part}{what}."


def naive_sentence(result: Any, outcome: str, names: Any, naive: Any) -> str:
    """How the naive comparison (from time zero, ever vs never) compares with the designs above."""
    if naive is None:
        return ""
    es = robust_hrs(result, outcome)
    t = names.treatment_lower
    text = (f"Counting {t} from time zero (the naive comparison, which credits {t} with the time patients had to "
            f"survive to receive it) gives a hazard ratio of {naive.estimate:.2f}")
    if math.isfinite(naive.ci_lower):
        text += f" ({naive.ci_lower:.2f} to {naive.ci_upper:.2f})"
    if es:
        lower = sum(1 for e in es if naive.estimate < e.estimate)
        if lower == len(es):
            text += ", more favourable to " + t + " than any of them"
        elif lower == 0:
            text += ", less favourable to " + t + " than any of them"
    return text + "."
